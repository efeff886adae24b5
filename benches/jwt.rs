//! Per-request cost of [`AuthLayer`] with a [`JwtVerifier`] (static keys), compared with a bare
//! `jsonwebtoken::decode` of the same tokens, measured in process: no sockets, no runtime.
//!
//! For each algorithm (HS256, RS256 2048-bit, ES256, EdDSA) a pool of distinct valid tokens is
//! minted at start (distinct `jti`; claims `iss`, `aud` = the resource URL, `sub`, `client_id`,
//! `scope`, `iat`, `exp` = now + 1 h; header `typ: at+jwt`, `kid`). Keys are the test-only PEM
//! fixtures of `tests/fixtures/jwt/` (RSA 2048, P-256, Ed25519; HS256 uses a constant secret).
//!
//! Cases, all in the one criterion group `jwt` so that they share conditions:
//! - `baseline/no_auth`: the inner service alone, with the same request clone as the layered
//!   cases;
//! - `<alg>/raw` (a): `jsonwebtoken::decode::<Map<String, Value>>` of the next pool token with a
//!   `Validation` equivalent to the library's (the one algorithm, leeway 60 s, `exp` required
//!   and checked, `nbf` checked, `iss` set, `exp`/`iss`/`aud` required, and `aud` validated by
//!   jsonwebtoken against the same one-element set: the resource URL). No request, no service;
//! - `<alg>/signature` (s): the floor — the crypto backend's own verification of the next pool
//!   token's signature (Base64-decoded beforehand) over its signing input, with the key parsed
//!   once into the backend's verification key (aws-lc-rs `ParsedPublicKey` / `hmac::Key`; with
//!   `rust-crypto` alone, the `rsa` / `p256` / `ed25519-dalek` verifying keys and `hmac`'s
//!   state). Nothing else: no Base64, no JSON, no request;
//! - `<alg>/layer_nocache` (b): the layer with `no_token_cache()`, each request carrying the next
//!   pool token (one request is prebuilt per token and cloned per iteration);
//! - `<alg>/cache_hit` (c): the layer with the default cache, the same token every time (cached
//!   before measuring).
//!
//! Layered cases call `poll_ready` and `call` and poll the response future once with a no-op
//! waker: static keys need no I/O, so the future must be ready on its first poll (anything else
//! panics). Before measuring, every pool token is checked once through raw decode and through
//! the layer (inner service sees the identity and no `Authorization` header), and statuses are
//! checked again inside every measured loop.
//!
//! After criterion, a table gives (a), (b), (b)/(a) against the targets (≤ 1.10 for RS256, ES256
//! and EdDSA, ≤ 1.3 for HS256) and (c) against 1 µs per request (absolute, request clone
//! included; (c) − baseline is shown too). A second table compares with the floor: (s), then
//! (b) − baseline − (s), the cost of a cold check over the signature alone (target ≤ 1 µs), and
//! (c) − baseline, the cost of a warm check (target ≤ 0.3 µs). Its numbers come from a manual loop in this same
//! process (lowest over several rounds of the mean time per request; rounds visit the cases in
//! turn, so drift hits them all alike); criterion's estimate from this run is shown next to it.
//! Then a multi-threaded run (1..=available cores, each thread with its own clone of the
//! service, for a fixed wall time) gives requests/s and the speed-up over one thread, with PASS
//! when it is ≥ 0.8 × the thread count (≥ 1.6 on 2 cores). Nothing panics on FAIL.
//!
//! `BENCH_SHORT=1 cargo bench --bench jwt` runs a short version (for CI).
//! `cargo bench --no-default-features --features rust-crypto --bench jwt` measures the RustCrypto
//! backend (its floor then uses the RustCrypto verifying keys); without a backend it exits.
//! `BENCH_COUNT=jwt/es256/raw:2000` runs one case that many times and exits, for
//! `benches/instructions.sh 200 jwt` under callgrind (`BENCH_POOL` sets the pool size there).
//! `cargo test --benches` runs each case once and prints no table; so does `--profile-time`.

mod common;

use std::{
    convert::Infallible,
    env,
    future::{Ready, ready},
    hint::black_box,
    path::PathBuf,
    sync::{
        Barrier,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use criterion::Criterion;
use http::{Request, Response, StatusCode, header::AUTHORIZATION};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use mcp_server_auth::{
    AuthInfo, AuthLayer, ResourceUrl,
    jwt::{Issuer, JwtVerifier, KeySet},
};
use serde_json::{Map, Value, json};
use tower::{Layer, service_fn};

/// The criterion group holding every case.
const GROUP: &str = "jwt";
const ISSUER: &str = "https://auth.example.com";
const RESOURCE: &str = "https://mcp.example.com/mcp";
const KID: &str = "bench-key";
/// The HMAC secret of the HS256 case (test only).
const HMAC_SECRET: &[u8] = b"bench-only hmac secret, 48 bytes long, not real!";
/// Distinct tokens minted per algorithm.
const POOL: usize = 2000;
/// The target for (c): at most this many ns per request, absolute.
const CACHE_HIT_TARGET_NS: f64 = 1000.0;
/// The target for (b) − baseline − (s): a cold check costs at most this many ns over the
/// signature check alone.
const OVER_FLOOR_TARGET_NS: f64 = 1000.0;
/// The target for (c) − baseline: a warm check costs at most this many ns.
const WARM_TARGET_NS: f64 = 300.0;
/// The target for the multi-threaded speed-up: at least this fraction of the thread count.
const SCALING_TARGET: f64 = 0.8;

/// The inner service: answers `200` with an empty body at once.
fn inner_ok(req: Request<()>) -> Ready<Result<Response<()>, Infallible>> {
    drop(black_box(req));
    ready(Ok(Response::new(())))
}

/// Used before measuring: the inner service of an accepted request must see the identity and
/// must not see the `Authorization` header.
fn inner_check(req: Request<()>) -> Ready<Result<Response<()>, Infallible>> {
    let info = req
        .extensions()
        .get::<AuthInfo>()
        .expect("the inner service got no AuthInfo");
    assert_eq!(info.subject(), "user-42");
    assert!(info.scopes().contains("mcp:read"));
    assert!(
        req.headers().get(AUTHORIZATION).is_none(),
        "the Authorization header reached the inner service"
    );
    ready(Ok(Response::new(())))
}

/// A typical MCP request with `token` as its bearer token.
fn request(token: &str) -> Request<()> {
    common::request(&format!("Bearer {token}"))
}

/// One algorithm under test: its keys and its token pool.
struct Alg {
    /// Lower-case name, used in case names.
    name: &'static str,
    alg: Algorithm,
    /// The (b)/(a) target.
    target: f64,
    decoding: DecodingKey,
    /// The floor (s): the backend's verification with the key parsed once.
    floor: Floor,
    keys: KeySet,
    tokens: Vec<String>,
    /// One prebuilt request per token.
    requests: Vec<Request<()>>,
}

fn key_file(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/jwt")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// Mints `n` distinct tokens (on up to two threads: RSA signing is slow).
fn mint(name: &str, alg: Algorithm, encoding: &EncodingKey, n: usize) -> Vec<String> {
    let mut header = Header::new(alg);
    header.typ = Some("at+jwt".to_owned());
    header.kid = Some(KID.to_owned());
    let now = now_secs();
    let one = |i: usize| {
        let claims = json!({
            "iss": ISSUER,
            "aud": RESOURCE,
            "sub": "user-42",
            "client_id": "bench-client",
            "scope": "mcp:read mcp:write",
            "iat": now,
            "exp": now + 3600,
            "jti": format!("{name}-{i:06}"),
        });
        jsonwebtoken::encode(&header, &claims, encoding).expect("mint a token")
    };
    let half = n / 2;
    let tokens = thread::scope(|s| {
        let second = s.spawn(|| (half..n).map(one).collect::<Vec<_>>());
        let mut first: Vec<String> = (0..half).map(one).collect();
        first.extend(second.join().expect("minting thread"));
        first
    });
    assert_eq!(tokens.len(), n);
    tokens
}

impl Alg {
    fn new(name: &'static str, pool: usize) -> Self {
        let (alg, target, encoding, decoding, keys) = match name {
            "hs256" => (
                Algorithm::HS256,
                1.3,
                EncodingKey::from_secret(HMAC_SECRET),
                DecodingKey::from_secret(HMAC_SECRET),
                KeySet::new().add_hmac_secret(Some(KID), Algorithm::HS256, HMAC_SECRET),
            ),
            "rs256" => {
                let public = key_file("rsa_public.pem");
                (
                    Algorithm::RS256,
                    1.10,
                    EncodingKey::from_rsa_pem(&key_file("rsa_private.pem")).unwrap(),
                    DecodingKey::from_rsa_pem(&public).unwrap(),
                    KeySet::new().add_pem(Some(KID), Algorithm::RS256, &public),
                )
            }
            "es256" => {
                let public = key_file("ec_public.pem");
                (
                    Algorithm::ES256,
                    1.10,
                    EncodingKey::from_ec_pem(&key_file("ec_private.pem")).unwrap(),
                    DecodingKey::from_ec_pem(&public).unwrap(),
                    KeySet::new().add_pem(Some(KID), Algorithm::ES256, &public),
                )
            }
            "eddsa" => {
                let public = key_file("ed25519_public.pem");
                (
                    Algorithm::EdDSA,
                    1.10,
                    EncodingKey::from_ed_pem(&key_file("ed25519_private.pem")).unwrap(),
                    DecodingKey::from_ed_pem(&public).unwrap(),
                    KeySet::new().add_pem(Some(KID), Algorithm::EdDSA, &public),
                )
            }
            other => panic!("unknown algorithm {other}"),
        };
        let keys = keys.expect("a valid key");
        let tokens = mint(name, alg, &encoding, pool);
        let requests = tokens.iter().map(|t| request(t)).collect();
        Self {
            name,
            alg,
            target,
            floor: floor(alg, &decoding),
            decoding,
            keys,
            tokens,
            requests,
        }
    }

    /// The validation of (a): what the library's verifier checks, done by jsonwebtoken alone.
    fn validation(&self) -> Validation {
        let mut v = Validation::new(self.alg);
        v.leeway = 60;
        v.validate_exp = true;
        v.validate_nbf = true;
        v.validate_aud = true;
        v.set_required_spec_claims(&["exp", "iss", "aud"]);
        v.set_issuer(&[ISSUER]);
        v.set_audience(&[RESOURCE]);
        v
    }

    fn layer(&self, cache: bool) -> AuthLayer<JwtVerifier> {
        let builder = JwtVerifier::builder(ResourceUrl::parse(RESOURCE).unwrap())
            .issuer(Issuer::with_keys(ISSUER, self.keys.clone()));
        let builder = if cache {
            builder
        } else {
            builder.no_token_cache()
        };
        AuthLayer::new(builder.build().expect("a valid verifier"))
    }
}

/// The runner of a case: one request (or one decode); returns whether it went as expected.
type Run = Box<dyn FnMut() -> bool>;

/// The floor (s): whether the signature (decoded) verifies over the message (the signing input)
/// with the backend's verification key for one algorithm, parsed once.
type Floor = Box<dyn Fn(&[u8], &[u8]) -> bool>;

/// The floor with aws-lc-rs (the backend the library uses whenever its feature is on).
#[cfg(feature = "aws-lc-rs")]
fn floor(alg: Algorithm, decoding: &DecodingKey) -> Floor {
    use aws_lc_rs::{hmac, signature as sig};
    let bytes = decoding.try_get_as_bytes().expect("raw key material");
    let public: &'static dyn sig::VerificationAlgorithm = match alg {
        Algorithm::HS256 => {
            let key = hmac::Key::new(hmac::HMAC_SHA256, bytes);
            return Box::new(move |m, s| hmac::verify(&key, m, s).is_ok());
        }
        Algorithm::RS256 => &sig::RSA_PKCS1_2048_8192_SHA256,
        Algorithm::ES256 => &sig::ECDSA_P256_SHA256_FIXED,
        Algorithm::EdDSA => &sig::ED25519,
        other => panic!("no floor for {other:?}"),
    };
    let key = sig::ParsedPublicKey::new(public, bytes).expect("a valid public key");
    Box::new(move |m, s| key.verify_sig(m, s).is_ok())
}

/// The floor with the RustCrypto crates (the library's backend when `aws-lc-rs` is off).
#[cfg(all(feature = "rust-crypto", not(feature = "aws-lc-rs")))]
fn floor(alg: Algorithm, decoding: &DecodingKey) -> Floor {
    use hmac::{Hmac, Mac};
    use rsa::{RsaPublicKey, pkcs1::DecodeRsaPublicKey, pkcs1v15, signature::Verifier};
    use sha2::Sha256;
    let bytes = decoding.try_get_as_bytes().expect("raw key material");
    match alg {
        Algorithm::HS256 => {
            let key = Hmac::<Sha256>::new_from_slice(bytes).expect("an HMAC key");
            Box::new(move |m, s| {
                let mut mac = key.clone();
                mac.update(m);
                mac.verify_slice(s).is_ok()
            })
        }
        Algorithm::RS256 => {
            let key = pkcs1v15::VerifyingKey::<Sha256>::new(
                RsaPublicKey::from_pkcs1_der(bytes).expect("an RSA key"),
            );
            Box::new(move |m, s| {
                pkcs1v15::Signature::try_from(s).is_ok_and(|s| key.verify(m, &s).is_ok())
            })
        }
        Algorithm::ES256 => {
            let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(bytes).expect("a P-256 key");
            Box::new(move |m, s| {
                p256::ecdsa::Signature::from_slice(s).is_ok_and(|s| key.verify(m, &s).is_ok())
            })
        }
        Algorithm::EdDSA => {
            let key = ed25519_dalek::VerifyingKey::from_bytes(bytes.try_into().expect("32 bytes"))
                .expect("an Ed25519 key");
            Box::new(move |m, s| {
                ed25519_dalek::Signature::from_slice(s).is_ok_and(|s| key.verify(m, &s).is_ok())
            })
        }
        other => panic!("no floor for {other:?}"),
    }
}

/// No crypto backend: `main` stops before any case is set up.
#[cfg(not(any(feature = "aws-lc-rs", feature = "rust-crypto")))]
fn floor(_: Algorithm, _: &DecodingKey) -> Floor {
    unreachable!("no JWT crypto backend")
}

/// The signing input and the decoded signature of a compact JWS.
fn signing_input(token: &str) -> (Vec<u8>, Vec<u8>) {
    use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
    let (message, signature) = token.rsplit_once('.').expect("a compact JWS");
    let signature = URL_SAFE_NO_PAD.decode(signature).expect("Base64url");
    (message.as_bytes().to_vec(), signature)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Baseline,
    Raw,
    Signature,
    NoCache,
    CacheHit,
}

struct Case {
    name: String,
    /// Index into the algorithms (unused by the baseline).
    alg: usize,
    kind: Kind,
    run: Run,
}

fn baseline(token: &str) -> Case {
    let mut svc = service_fn(inner_ok);
    let req = request(token);
    Case {
        name: "baseline/no_auth".to_owned(),
        alg: 0,
        kind: Kind::Baseline,
        run: Box::new(move || common::once(&mut svc, black_box(&req).clone()) == StatusCode::OK),
    }
}

/// The three cases of one algorithm, each checked once against every pool token first.
fn alg_cases(index: usize, a: &Alg) -> Vec<Case> {
    let n = a.tokens.len();

    // (a) raw decode.
    let validation = a.validation();
    for t in &a.tokens {
        let data = jsonwebtoken::decode::<Map<String, Value>>(t, &a.decoding, &validation)
            .unwrap_or_else(|e| panic!("{}: raw decode refused a pool token: {e}", a.name));
        assert_eq!(data.claims.get("sub"), Some(&json!("user-42")));
    }
    let tokens = a.tokens.clone();
    let decoding = a.decoding.clone();
    let mut i = 0;
    let raw: Run = Box::new(move || {
        let t = black_box(tokens[i].as_str());
        i += 1;
        if i == n {
            i = 0;
        }
        jsonwebtoken::decode::<Map<String, Value>>(t, &decoding, &validation)
            .map(|d| black_box(d).claims.len())
            .is_ok()
    });

    // (s) the floor: the backend's verification alone, key parsed once.
    let inputs: Vec<(Vec<u8>, Vec<u8>)> = a.tokens.iter().map(|t| signing_input(t)).collect();
    for (m, s) in &inputs {
        assert!(
            (a.floor)(m, s),
            "{}: the floor refused a pool token",
            a.name
        );
    }
    let floor = floor(a.alg, &a.decoding);
    let mut i = 0;
    let signature: Run = Box::new(move || {
        let (m, s) = black_box(&inputs[i]);
        i += 1;
        if i == n {
            i = 0;
        }
        floor(m, s)
    });

    // (b) the layer, cache off, a distinct token per request.
    let layer = a.layer(false);
    assert_eq!(layer.verifier().cache_usage(), None);
    let mut check = layer.layer(service_fn(inner_check));
    for req in &a.requests {
        assert_eq!(
            common::once(&mut check, req.clone()),
            StatusCode::OK,
            "{}: (b)",
            a.name
        );
    }
    let mut svc = layer.layer(service_fn(inner_ok));
    let requests = a.requests.clone();
    let mut i = 0;
    let nocache: Run = Box::new(move || {
        let req = black_box(&requests[i]).clone();
        i += 1;
        if i == n {
            i = 0;
        }
        common::once(&mut svc, req) == StatusCode::OK
    });

    // (c) the layer, cache on, the same token every time.
    let layer = a.layer(true);
    let req = a.requests[n / 2].clone();
    let mut check = layer.layer(service_fn(inner_check));
    assert_eq!(
        common::once(&mut check, req.clone()),
        StatusCode::OK,
        "{}: (c)",
        a.name
    );
    assert_eq!(
        common::once(&mut check, req.clone()),
        StatusCode::OK,
        "{}: (c)",
        a.name
    );
    assert_eq!(
        layer.verifier().cache_usage().map(|(entries, _)| entries),
        Some(1),
        "{}: the token is not cached",
        a.name
    );
    let mut svc = layer.layer(service_fn(inner_ok));
    let hit: Run =
        Box::new(move || common::once(&mut svc, black_box(&req).clone()) == StatusCode::OK);

    vec![
        Case {
            name: format!("{}/raw", a.name),
            alg: index,
            kind: Kind::Raw,
            run: raw,
        },
        Case {
            name: format!("{}/signature", a.name),
            alg: index,
            kind: Kind::Signature,
            run: signature,
        },
        Case {
            name: format!("{}/layer_nocache", a.name),
            alg: index,
            kind: Kind::NoCache,
            run: nocache,
        },
        Case {
            name: format!("{}/cache_hit", a.name),
            alg: index,
            kind: Kind::CacheHit,
            run: hit,
        },
    ]
}

const ALGS: [&str; 4] = ["hs256", "rs256", "es256", "eddsa"];

/// Measures the calibrated number of runs of each case, `rounds` times, the cases taken in turn;
/// returns, per case, the lowest of the rounds' mean times per run, in ns.
fn manual(cases: &mut [Case], round: Duration, rounds: u32) -> Vec<f64> {
    // Calibrate: runs per round for each case (also warms every case up).
    let iters: Vec<u64> = cases
        .iter_mut()
        .map(|case| {
            let mut n = 1u64;
            loop {
                let start = Instant::now();
                for _ in 0..n {
                    assert!((case.run)(), "{}: unexpected result", case.name);
                }
                let elapsed = start.elapsed();
                if elapsed >= round / 10 {
                    let per = elapsed.as_secs_f64() / n as f64;
                    break ((round.as_secs_f64() / per) as u64).max(1);
                }
                n *= 2;
            }
        })
        .collect();
    let mut best = vec![f64::INFINITY; cases.len()];
    for _ in 0..rounds {
        for ((case, best), &n) in cases.iter_mut().zip(&mut best).zip(&iters) {
            let mut bad = 0u64;
            let start = Instant::now();
            for _ in 0..n {
                if !(case.run)() {
                    bad += 1;
                }
            }
            let elapsed = start.elapsed();
            assert_eq!(
                bad, 0,
                "{}: unexpected result in the manual loop",
                case.name
            );
            *best = best.min(elapsed.as_nanos() as f64 / n as f64);
        }
    }
    best
}

fn verdict(pass: bool) -> &'static str {
    if pass { "PASS" } else { "FAIL" }
}

fn print_table(
    algs: &[Alg],
    cases: &[Case],
    ns: &[f64],
    crit: &[Option<f64>],
    round: Duration,
    rounds: u32,
) {
    let find = |alg: usize, kind: Kind| {
        cases
            .iter()
            .position(|c| c.kind == kind && (kind == Kind::Baseline || c.alg == alg))
            .expect("every case is there")
    };
    let base = ns[find(0, Kind::Baseline)];
    println!();
    println!(
        "JWT per-request cost — MANUAL LOOP in this process: lowest over {rounds} rounds of the \
         mean over ~{} ms of requests (rounds take the cases in turn); criterion's estimate from \
         this run in [brackets] (`-` if not found).",
        round.as_millis()
    );
    println!(
        "(a) raw = jsonwebtoken::decode::<Map<String, Value>>, same token pool, same validation; \
         `aud` checked BY JSONWEBTOKEN (validate_aud = true, audience set = {{{RESOURCE}}}), the \
         library checks it itself (validate_aud = false + string compare)."
    );
    println!(
        "(b) = layer, cache off, distinct token per request; (c) = layer, cache on, same token. \
         (b) and (c) include the request clone; baseline (no auth, same clone) = {base:.1} ns \
         [{}].",
        crit[find(0, Kind::Baseline)].map_or_else(|| "-".to_owned(), |c| format!("{c:.1}"))
    );
    println!();
    println!(
        "{:<6} {:>10} {:>10} {:>8} {:>7} {:>6} {:>10} {:>9} {:>7} {:>6}   {:<23} {:<23}",
        "alg",
        "(a) ns",
        "(b) ns",
        "(b)/(a)",
        "target",
        "",
        "(b)-base",
        "(c) ns",
        "(c)-base",
        "≤1µs",
        "criterion (a)/(b)",
        "criterion (c)",
    );
    println!("{}", "-".repeat(140));
    let mut all = true;
    for (i, a) in algs.iter().enumerate() {
        let (ra, rb, rc) = (
            find(i, Kind::Raw),
            find(i, Kind::NoCache),
            find(i, Kind::CacheHit),
        );
        let ratio = ns[rb] / ns[ra];
        let ratio_ok = ratio <= a.target;
        let hit_ok = ns[rc] <= CACHE_HIT_TARGET_NS;
        all &= ratio_ok && hit_ok;
        let c = |i: usize| crit[i].map_or_else(|| "-".to_owned(), |c| format!("{c:.0}"));
        println!(
            "{:<6} {:>10.0} {:>10.0} {:>7.3}x {:>6.2}x {:>6} {:>+10.0} {:>9.1} {:>+8.1} {:>6}   {:<23} {:<23}",
            a.name.to_uppercase(),
            ns[ra],
            ns[rb],
            ratio,
            a.target,
            verdict(ratio_ok),
            ns[rb] - base,
            ns[rc],
            ns[rc] - base,
            verdict(hit_ok),
            format!("{} / {}", c(ra), c(rb)),
            c(rc),
        );
    }
    println!("{}", "-".repeat(140));
    println!(
        "TARGETS (b)/(a) ≤ 1.10 (RS256, ES256, EdDSA), ≤ 1.3 (HS256); (c) ≤ 1 µs: {}",
        verdict(all)
    );
    println!(
        "Layer overhead over raw decode, request clone excluded ((b) − baseline − (a)): {}",
        algs.iter()
            .enumerate()
            .map(|(i, a)| format!(
                "{} {:+.0} ns",
                a.name.to_uppercase(),
                ns[find(i, Kind::NoCache)] - base - ns[find(i, Kind::Raw)]
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!();
    println!(
        "Against the floor (s) = the backend's signature check alone, key parsed once, signature \
         already decoded (same pool, same loop). Cold = (b) − baseline − (s), target ≤ {:.0} ns; \
         warm = (c) − baseline, target ≤ {:.0} ns.",
        OVER_FLOOR_TARGET_NS, WARM_TARGET_NS
    );
    println!();
    println!(
        "{:<6} {:>10} {:>10} {:>9} {:>13} {:>6} {:>9} {:>10} {:>6}   {:<23}",
        "alg",
        "(s) ns",
        "(b) ns",
        "(b)/(s)",
        "(b)-base-(s)",
        "≤1µs",
        "(c) ns",
        "(c)-base",
        "≤.3µs",
        "criterion (s)",
    );
    println!("{}", "-".repeat(110));
    let mut floor_ok = true;
    for (i, a) in algs.iter().enumerate() {
        let (rs, rb, rc) = (
            find(i, Kind::Signature),
            find(i, Kind::NoCache),
            find(i, Kind::CacheHit),
        );
        let over = ns[rb] - base - ns[rs];
        let warm = ns[rc] - base;
        let (cold_ok, warm_ok) = (over <= OVER_FLOOR_TARGET_NS, warm <= WARM_TARGET_NS);
        floor_ok &= cold_ok && warm_ok;
        println!(
            "{:<6} {:>10.0} {:>10.0} {:>8.3}x {:>+13.0} {:>6} {:>9.1} {:>+10.1} {:>6}   {:<23}",
            a.name.to_uppercase(),
            ns[rs],
            ns[rb],
            ns[rb] / ns[rs],
            over,
            verdict(cold_ok),
            ns[rc],
            warm,
            verdict(warm_ok),
            crit[rs].map_or_else(|| "-".to_owned(), |c| format!("{c:.0}")),
        );
    }
    println!("{}", "-".repeat(110));
    println!(
        "TARGETS (b) − baseline − (s) ≤ {:.0} ns; (c) − baseline ≤ {:.0} ns: {}",
        OVER_FLOOR_TARGET_NS,
        WARM_TARGET_NS,
        verdict(floor_ok)
    );
    println!();
}

/// Runs `make(thread)`'s runner on `threads` threads for `wall` and returns the total rate
/// (requests/s): the sum of each thread's count over its own measured time.
fn rate<F, R>(threads: usize, wall: Duration, make: &F) -> f64
where
    F: Fn(usize) -> R + Sync,
    R: FnMut() -> bool,
{
    let barrier = Barrier::new(threads + 1);
    let stop = AtomicBool::new(false);
    thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (barrier, stop) = (&barrier, &stop);
                s.spawn(move || {
                    let mut run = make(t);
                    for _ in 0..16 {
                        assert!(run(), "unexpected result before the scaling run");
                    }
                    barrier.wait();
                    let start = Instant::now();
                    let (mut n, mut bad) = (0u64, 0u64);
                    while !stop.load(Ordering::Relaxed) {
                        if !run() {
                            bad += 1;
                        }
                        n += 1;
                    }
                    let elapsed = start.elapsed();
                    assert_eq!(bad, 0, "unexpected result in the scaling run");
                    n as f64 / elapsed.as_secs_f64()
                })
            })
            .collect();
        barrier.wait();
        thread::sleep(wall);
        stop.store(true, Ordering::Relaxed);
        handles
            .into_iter()
            .map(|h| h.join().expect("scaling thread"))
            .sum()
    })
}

/// The best rate for each thread count 1..=cores over `rounds` rounds (thread counts in turn).
fn scaling<F, R>(cores: usize, wall: Duration, rounds: u32, make: F) -> Vec<f64>
where
    F: Fn(usize) -> R + Sync,
    R: FnMut() -> bool,
{
    let mut best = vec![0f64; cores];
    for _ in 0..rounds {
        for (t, best) in best.iter_mut().enumerate() {
            *best = best.max(rate(t + 1, wall, &make));
        }
    }
    best
}

fn print_scaling(es: &Alg, short: bool) {
    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    let (wall, rounds) = if short {
        (Duration::from_millis(300), 3)
    } else {
        (Duration::from_secs(1), 5)
    };
    let hit = es.layer(true);
    let nocache = es.layer(false);
    // Warm the cache with every token a thread of the cache-hit cases uses.
    let mut warm = hit.layer(service_fn(inner_ok));
    for t in 0..cores {
        assert_eq!(
            common::once(&mut warm, es.requests[t].clone()),
            StatusCode::OK
        );
    }
    // Every thread builds its own requests: clones of one `Request` share the header values'
    // reference counts, which would make the threads contend in `Bytes::clone` (a benchmark
    // artifact, not something a server does: its requests come from distinct connections).
    let tokens = &es.tokens;

    type Row<'a> = (&'a str, &'a str, Vec<f64>);
    let rows: Vec<Row<'_>> = vec![
        (
            "baseline/no_auth",
            "control: request clone + inner service only",
            scaling(cores, wall, rounds, |t| {
                let mut svc = service_fn(inner_ok);
                let req = request(&tokens[t]);
                move || common::once(&mut svc, black_box(&req).clone()) == StatusCode::OK
            }),
        ),
        (
            "es256/cache_hit/same_token",
            "(c), every thread the same token (one shard, one AuthInfo)",
            scaling(cores, wall, rounds, |_| {
                let mut svc = hit.layer(service_fn(inner_ok));
                let req = request(&tokens[0]);
                move || common::once(&mut svc, black_box(&req).clone()) == StatusCode::OK
            }),
        ),
        (
            "es256/cache_hit/token_per_thread",
            "(c), each thread its own cached token",
            scaling(cores, wall, rounds, |t| {
                let mut svc = hit.layer(service_fn(inner_ok));
                let req = request(&tokens[t]);
                move || common::once(&mut svc, black_box(&req).clone()) == StatusCode::OK
            }),
        ),
        (
            "es256/layer_nocache",
            "(b), distinct tokens",
            scaling(cores, wall, rounds, |t| {
                let mut svc = nocache.layer(service_fn(inner_ok));
                // This thread's share of the pool.
                let requests: Vec<Request<()>> = tokens
                    .iter()
                    .skip(t)
                    .step_by(cores)
                    .map(|token| request(token))
                    .collect();
                let n = requests.len();
                let mut i = 0;
                move || {
                    let req = black_box(&requests[i]).clone();
                    i += 1;
                    if i == n {
                        i = 0;
                    }
                    common::once(&mut svc, req) == StatusCode::OK
                }
            }),
        ),
    ];

    println!(
        "Multi-threaded throughput — {cores} core(s) available; each thread its own service \
         clone and its own requests; best of {rounds} rounds of {} ms per thread count. Target: speed-up ≥ \
         {SCALING_TARGET} × threads (≥ {:.1} on {cores} cores).",
        wall.as_millis(),
        SCALING_TARGET * cores as f64
    );
    println!();
    let mut header = format!("{:<34}", "case");
    for t in 1..=cores {
        header += &format!(" {:>14}", format!("{t} thr req/s"));
    }
    header += &format!(" {:>9} {:>6}   note", "speed-up", "");
    println!("{header}");
    println!("{}", "-".repeat(header.chars().count() + 40));
    for (name, note, rates) in &rows {
        let mut line = format!("{name:<34}");
        for r in rates {
            line += &format!(" {r:>14.0}");
        }
        let speedup = rates[cores - 1] / rates[0];
        let target = SCALING_TARGET * cores as f64;
        let mark = if cores == 1 {
            "n/a"
        } else if name.starts_with("es256/") {
            verdict(speedup >= target)
        } else {
            ""
        };
        line += &format!(" {speedup:>8.2}x {mark:>6}   {note}");
        println!("{line}");
    }
    println!();
}

fn main() {
    if let Err(e) = mcp_server_auth::jwt::install_crypto_provider() {
        eprintln!("jwt benchmark skipped: {e}");
        return;
    }

    // Instruction-count mode, for `benches/instructions.sh` under callgrind: run one case
    // `BENCH_COUNT=case:iterations` times and exit (no criterion, no timing). Only that case's
    // algorithm is set up, with a pool of `BENCH_POOL` tokens (default 100).
    if let Ok(spec) = env::var("BENCH_COUNT") {
        let (name, n) = spec.rsplit_once(':').expect("BENCH_COUNT=case:iterations");
        let n: u64 = n.parse().expect("BENCH_COUNT iterations");
        let name = name.strip_prefix("jwt/").unwrap_or(name);
        let pool = env::var("BENCH_POOL").map_or(100, |p| p.parse().expect("BENCH_POOL"));
        let alg = name.split('/').next().unwrap_or_default();
        let mut cases = if name == "baseline/no_auth" {
            vec![baseline(
                &mint(
                    "hs256",
                    Algorithm::HS256,
                    &EncodingKey::from_secret(HMAC_SECRET),
                    1,
                )[0],
            )]
        } else {
            assert!(ALGS.contains(&alg), "BENCH_COUNT names an unknown case");
            alg_cases(
                0,
                &Alg::new(ALGS[ALGS.iter().position(|a| *a == alg).unwrap()], pool),
            )
        };
        let case = cases
            .iter_mut()
            .find(|c| c.name == name)
            .expect("BENCH_COUNT names an unknown case");
        assert_eq!(
            common::measured(&mut case.run, n),
            0,
            "{name}: unexpected result"
        );
        return;
    }

    let args: Vec<String> = env::args().collect();
    let has = |flag: &str| args.iter().any(|a| a == flag);
    // As criterion decides: `cargo bench` passes `--bench`; `cargo test --benches` does not.
    let benchmarking = has("--bench")
        && !has("--test")
        && !has("--list")
        && !args.iter().any(|a| a.starts_with("--profile-time"));
    let short = env::var("BENCH_SHORT").is_ok_and(|v| v == "1");

    let started = SystemTime::now();
    let setup = Instant::now();
    let algs: Vec<Alg> = ALGS.iter().map(|name| Alg::new(name, POOL)).collect();
    let mut cases = vec![baseline(&algs[0].tokens[0])];
    for (i, a) in algs.iter().enumerate() {
        cases.extend(alg_cases(i, a));
    }
    if benchmarking {
        println!(
            "setup: {} tokens per algorithm minted and checked in {:.1} s",
            POOL,
            setup.elapsed().as_secs_f64()
        );
    }

    let mut criterion = Criterion::default();
    if short {
        criterion = criterion
            .warm_up_time(Duration::from_millis(100))
            .measurement_time(Duration::from_millis(300))
            .sample_size(10);
    }
    let mut criterion = criterion.configure_from_args();
    let mut group = criterion.benchmark_group(GROUP);
    for case in &mut cases {
        let mut bad = 0u64;
        group.bench_function(case.name.as_str(), |b| {
            b.iter(|| {
                if !(case.run)() {
                    bad += 1;
                }
            })
        });
        assert_eq!(
            bad, 0,
            "{}: unexpected result while benchmarking",
            case.name
        );
    }
    group.finish();
    criterion.final_summary();

    if !benchmarking {
        return;
    }
    // Many short rounds: on a shared machine their minimum filters out bursts of other load
    // better than a few long ones, and (a) and (b) of one algorithm run milliseconds apart.
    let (round, rounds) = if short {
        (Duration::from_millis(5), 40)
    } else {
        (Duration::from_millis(20), 60)
    };
    let ns = manual(&mut cases, round, rounds);
    let dir = common::criterion_dir();
    let crit: Vec<Option<f64>> = cases
        .iter()
        .map(|c| common::criterion_mean(&dir, GROUP, &c.name, started))
        .collect();
    print_table(&algs, &cases, &ns, &crit, round, rounds);
    let es = algs.iter().find(|a| a.name == "es256").expect("ES256");
    print_scaling(es, short);
}
