//! Per-request cost of a DPoP request (RFC 9449) through [`AuthLayer`] with a [`Dpop`] verifier
//! around a [`JwtVerifier`] whose token cache is warm, against the ES256 signature check alone,
//! all in one run: no sockets, no runtime.
//!
//! Cases (one criterion group `dpop`):
//! - `es256/signature` (s): aws-lc-rs's verification of an ES256 proof signature over its
//!   signing input, the key parsed once (`ParsedPublicKey`), the signature decoded beforehand;
//! - `es256/warm` (d): the layer, the bound token cached, an ES256 proof signed beforehand (each
//!   request its own proof: a proof is accepted once);
//! - `eddsa/warm` (e): the same with an Ed25519 proof.
//!
//! A request's proof is checked in full (parsing, the `jwk` parsed into a verification key, the
//! RFC 7638 thumbprint, the signature, `htu`, `ath`), then the token (cache hit), the binding,
//! and the replay mark in the memory store. After criterion, a manual loop over fresh proofs
//! gives the mean of each case and the ratio of (d) and (e) to the target 1.1 × (s) + 1 µs
//! (≤ 1 passes). `BENCH_SHORT=1` runs a short version.

use std::{
    convert::Infallible,
    env,
    future::Future,
    pin::pin,
    task::{Context, Poll, Waker},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use aws_lc_rs::{
    digest::{SHA256, digest},
    signature::{ECDSA_P256_SHA256_FIXED, ParsedPublicKey},
};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use criterion::{BatchSize, Criterion};
use http::{Request, Response};
use jsonwebtoken::{EncodingKey, Header, jwk::Jwk};
use mcp_server_auth::{
    AuthLayer, ResourceUrl,
    dpop::{Dpop, DpopOptions, jwk_thumbprint},
    jwt::{Algorithm, Issuer, JwtVerifier, KeySet},
};
use serde_json::{Value, json};
use tower::{Layer, Service, service_fn};

const RESOURCE: &str = "https://mcp.example.com/mcp";
const ISSUER: &str = "https://auth.example.com";

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/jwt/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn b64(b: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(b)
}

struct Client {
    alg: Algorithm,
    key: EncodingKey,
    jwk: Value,
    jkt: String,
}

impl Client {
    fn new(alg: Algorithm, key: EncodingKey) -> Self {
        let jwk = serde_json::to_value(Jwk::from_encoding_key(&key, alg).unwrap()).unwrap();
        let s = |n: &str| jwk[n].as_str().unwrap_or_default().to_owned();
        let jkt = match s("kty").as_str() {
            "EC" => jwk_thumbprint("EC", &[("crv", &s("crv")), ("x", &s("x")), ("y", &s("y"))]),
            _ => jwk_thumbprint("OKP", &[("crv", &s("crv")), ("x", &s("x"))]),
        };
        Self { alg, key, jwk, jkt }
    }

    fn proof(&self, token: &str, n: u64) -> String {
        let header = json!({"typ": "dpop+jwt", "alg": self.alg, "jwk": self.jwk});
        let claims = json!({"jti": format!("bench-{n}"), "htm": "POST", "htu": RESOURCE,
            "iat": now(), "ath": b64(digest(&SHA256, token.as_bytes()).as_ref())});
        let m = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let sig = jsonwebtoken::crypto::sign(m.as_bytes(), &self.key, self.alg).unwrap();
        format!("{m}.{sig}")
    }
}

fn token(jkt: &str) -> String {
    let claims = json!({"iss": ISSUER, "aud": RESOURCE, "sub": "bench", "iat": now(),
        "exp": now() + 3600, "cnf": {"jkt": jkt}});
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("ec-1".into());
    let key = EncodingKey::from_ec_pem(&fixture("ec_private.pem")).unwrap();
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

type Svc = Box<dyn FnMut(Request<()>) -> u16>;

/// The layer around a no-op service; calling it polls once (everything is ready at once).
fn service() -> Svc {
    let keys = KeySet::new()
        .add_pem(Some("ec-1"), Algorithm::ES256, &fixture("ec_public.pem"))
        .unwrap();
    let resource = ResourceUrl::parse(RESOURCE).unwrap();
    let tokens = JwtVerifier::builder(resource.clone())
        .issuer(Issuer::with_keys(ISSUER, keys))
        .build()
        .unwrap();
    let dpop = Dpop::new(tokens, DpopOptions::builder(&resource).build().unwrap());
    let mut svc = AuthLayer::new(dpop).layer(service_fn(|_: Request<()>| async {
        Ok::<_, Infallible>(Response::new(()))
    }));
    Box::new(move |req| {
        let mut cx = Context::from_waker(Waker::noop());
        assert!(svc.poll_ready(&mut cx).is_ready());
        match pin!(svc.call(req)).poll(&mut cx) {
            Poll::Ready(Ok(res)) => res.status().as_u16(),
            _ => panic!("not ready at once"),
        }
    })
}

fn request(token: &str, proof: &str) -> Request<()> {
    Request::post("/mcp")
        .header("authorization", format!("DPoP {token}"))
        .header("dpop", proof)
        .body(())
        .unwrap()
}

fn main() {
    let short = env::var("BENCH_SHORT").is_ok_and(|v| v == "1");
    let es = Client::new(
        Algorithm::ES256,
        EncodingKey::from_ec_pem(&fixture("issuer_b_ec_private.pem")).unwrap(),
    );
    let ed = Client::new(
        Algorithm::EdDSA,
        EncodingKey::from_ed_pem(&fixture("attacker_ed25519_private.pem")).unwrap(),
    );
    let (es_token, ed_token) = (token(&es.jkt), token(&ed.jkt));

    // The signature alone: one ES256 proof's signing input and signature.
    let proof = es.proof(&es_token, 0);
    let (message, sig) = proof.rsplit_once('.').unwrap();
    let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
    let x = URL_SAFE_NO_PAD
        .decode(es.jwk["x"].as_str().unwrap())
        .unwrap();
    let y = URL_SAFE_NO_PAD
        .decode(es.jwk["y"].as_str().unwrap())
        .unwrap();
    let point = [&[4u8][..], &x, &y].concat();
    let key = ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point).unwrap();
    assert!(key.verify_sig(message.as_bytes(), &sig).is_ok());

    let mut svc = service();
    let mut n = 1;
    // Warm the token caches (and check the whole path once).
    for (c, t) in [(&es, &es_token), (&ed, &ed_token)] {
        n += 1;
        assert_eq!(svc(request(t, &c.proof(t, n))), 200);
    }

    let mut criterion = Criterion::default().configure_from_args();
    if short {
        criterion = criterion
            .warm_up_time(Duration::from_millis(100))
            .measurement_time(Duration::from_millis(300))
            .sample_size(10);
    }
    {
        let mut group = criterion.benchmark_group("dpop");
        group.bench_function("es256/signature", |b| {
            b.iter(|| assert!(key.verify_sig(message.as_bytes(), &sig).is_ok()))
        });
        for (name, c, t) in [
            ("es256/warm", &es, &es_token),
            ("eddsa/warm", &ed, &ed_token),
        ] {
            group.bench_function(name, |b| {
                b.iter_batched(
                    || {
                        n += 1;
                        request(t, &c.proof(t, n))
                    },
                    |req| assert_eq!(svc(req), 200),
                    BatchSize::SmallInput,
                )
            });
        }
        group.finish();
    }
    criterion.final_summary();

    // The manual loop: fresh proofs signed beforehand, the lowest mean over a few rounds.
    let per_round = if short { 300 } else { 2000 };
    let rounds = if short { 3 } else { 5 };
    let mut best = [f64::MAX; 3];
    for _ in 0..rounds {
        let t = Instant::now();
        for _ in 0..per_round {
            assert!(key.verify_sig(message.as_bytes(), &sig).is_ok());
        }
        best[0] = best[0].min(t.elapsed().as_secs_f64() / per_round as f64);
        for (i, (c, tok)) in [(&es, &es_token), (&ed, &ed_token)].into_iter().enumerate() {
            let reqs: Vec<_> = (0..per_round)
                .map(|_| {
                    n += 1;
                    request(tok, &c.proof(tok, n))
                })
                .collect();
            let t = Instant::now();
            for req in reqs {
                assert_eq!(svc(req), 200);
            }
            best[i + 1] = best[i + 1].min(t.elapsed().as_secs_f64() / per_round as f64);
        }
    }
    let us = |s: f64| s * 1e6;
    let target = 1.1 * best[0] + 1e-6;
    println!(
        "\nDPoP, warm token cache (manual loop, lowest mean of {rounds} rounds × {per_round}):"
    );
    println!("  ES256 signature alone (s)      {:8.2} µs", us(best[0]));
    println!("  target 1.1 × s + 1 µs          {:8.2} µs", us(target));
    for (name, t) in [("ES256 proof", best[1]), ("Ed25519 proof", best[2])] {
        let ratio = t / target;
        let verdict = if ratio <= 1.0 { "PASS" } else { "FAIL" };
        println!("  {name:<30} {:8.2} µs  ratio {ratio:.3}  {verdict}", us(t));
    }
}
