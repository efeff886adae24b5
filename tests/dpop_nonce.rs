//! DPoP server nonces (RFC 9449 §8–9) through a real `AuthLayer` on 127.0.0.1, driven by
//! reqwest: the `use_dpop_nonce` refusal and the retry, nonces of older buckets and forged
//! ones, two instances sharing the key, the fresh nonce of a successful answer, and the CORS
//! recipe for browser clients (the `DPoP` request header allowed, `DPoP-Nonce` exposed).
//!
//! Nonces of other buckets are made here with the shared key, HMAC-SHA256 over the label and
//! the bucket as `src/dpop/nonce.rs` documents, independently of the crate.
#![cfg(feature = "aws-lc-rs")]

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::{
    digest::{SHA256, digest},
    hmac,
};
use axum::{Router, routing::post};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use common::{TestServer, challenges, client, serve_axum};
use http::{
    HeaderName, Method,
    header::{
        ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS,
        ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, AUTHORIZATION, CONTENT_TYPE,
        ORIGIN, WWW_AUTHENTICATE,
    },
};
use jsonwebtoken::{EncodingKey, Header, jwk::Jwk};
use mcp_server_auth::{
    AuthInfo, AuthLayer, ResourceUrl,
    dpop::{Dpop, DpopOptions, jwk_thumbprint},
    jwt::{Algorithm, Issuer, JwtVerifier, KeySet},
};
use serde_json::{Value, json};
use tower_http::cors::{Any, CorsLayer};

const RESOURCE: &str = "https://mcp.example.com/mcp";
const ISSUER: &str = "https://auth.example.com";
const KEY: [u8; 32] = [0x42; 32];
const OTHER_KEY: [u8; 32] = [0x24; 32];
const LABEL: &[u8] = b"mcp-server-auth DPoP-Nonce v1\0";
const NONCE_CHALLENGE: &str =
    r#"DPoP realm="mcp", algs="ES256 ES384 EdDSA Ed25519 RS256 PS256", error="use_dpop_nonce""#;

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{path}",
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

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The nonce of `bucket` (60 s long) under `key`: the bucket, big-endian, and the first 16
/// bytes of HMAC-SHA256(key, label ‖ bucket).
fn nonce_of(key: &[u8], bucket: u64) -> String {
    let tag = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, key),
        &[LABEL, &bucket.to_be_bytes()].concat(),
    );
    b64(&[&bucket.to_be_bytes()[..], &tag.as_ref()[..16]].concat())
}

/// The current bucket, waiting (at most 3 s) when it is about to end, so that a server
/// reading the clock a moment later sees the same one.
async fn bucket() -> u64 {
    if now() % 60 >= 58 {
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    now() / 60
}

/// The client's ES256 key: its public JWK and thumbprint.
struct ClientKey {
    encoding: EncodingKey,
    jwk: Value,
    jkt: String,
}

impl ClientKey {
    fn new() -> Self {
        let pem = fixture("jwt/issuer_b_ec_private.pem");
        let encoding = EncodingKey::from_ec_pem(&pem).unwrap();
        let jwk =
            serde_json::to_value(Jwk::from_encoding_key(&encoding, Algorithm::ES256).unwrap())
                .unwrap();
        let s = |n: &str| jwk[n].as_str().unwrap().to_owned();
        let jkt = jwk_thumbprint("EC", &[("crv", &s("crv")), ("x", &s("x")), ("y", &s("y"))]);
        Self { encoding, jwk, jkt }
    }

    /// A proof for `POST RESOURCE` with `token`, carrying `nonce` if given.
    fn proof(&self, token: &str, nonce: Option<&str>) -> String {
        let header = json!({ "typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk });
        let mut claims = json!({
            "jti": format!("jti-{}", rand::random::<u64>()),
            "htm": "POST", "htu": RESOURCE, "iat": now(),
            "ath": b64(digest(&SHA256, token.as_bytes()).as_ref()),
        });
        if let Some(n) = nonce {
            claims["nonce"] = json!(n);
        }
        let message = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let sig = jsonwebtoken::crypto::sign(message.as_bytes(), &self.encoding, Algorithm::ES256)
            .unwrap();
        format!("{message}.{sig}")
    }
}

fn token(jkt: &str) -> String {
    let claims = json!({
        "iss": ISSUER, "aud": RESOURCE, "sub": "alice", "iat": now(), "exp": now() + 600,
        "cnf": { "jkt": jkt },
    });
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("ec-1".into());
    let key = EncodingKey::from_ec_pem(&fixture("jwt/ec_private.pem")).unwrap();
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

fn app(key: &[u8]) -> Router {
    let keys = KeySet::new()
        .add_pem(
            Some("ec-1"),
            Algorithm::ES256,
            &fixture("jwt/ec_public.pem"),
        )
        .unwrap();
    let resource = ResourceUrl::parse(RESOURCE).unwrap();
    let tokens = JwtVerifier::builder(resource.clone())
        .issuer(Issuer::with_keys(ISSUER, keys))
        .build()
        .unwrap();
    let options = DpopOptions::builder(&resource)
        .nonce_key(key)
        .build()
        .unwrap();
    Router::new()
        .route(
            "/mcp",
            post(|who: AuthInfo| async move { who.subject().to_owned() }),
        )
        .layer(AuthLayer::new(Dpop::new(tokens, options)))
}

/// The answer: status, challenges, `DPoP-Nonce`, `Cache-Control`, body.
#[derive(Debug)]
struct Answer {
    status: u16,
    challenges: Vec<String>,
    nonce: Option<String>,
    cache_control: Option<String>,
    body: String,
}

async fn send(server: &TestServer, token: &str, proof: &str) -> Answer {
    let res = client()
        .post(server.url("/mcp"))
        .header("authorization", format!("DPoP {token}"))
        .header("dpop", proof)
        .send()
        .await
        .unwrap();
    let header = |n: &str| res.headers().get(n).map(|v| v.to_str().unwrap().to_owned());
    Answer {
        status: res.status().as_u16(),
        challenges: challenges(&res),
        nonce: header("dpop-nonce"),
        cache_control: header("cache-control"),
        body: String::new(),
    }
    .with_body(res)
    .await
}

impl Answer {
    async fn with_body(mut self, res: reqwest::Response) -> Self {
        self.body = res.text().await.unwrap();
        self
    }

    /// The `use_dpop_nonce` refusal, exactly; returns the nonce it gives.
    fn use_nonce(&self) -> String {
        assert_eq!(self.status, 401, "{self:?}");
        assert_eq!(
            self.challenges,
            [r#"Bearer realm="mcp""#, NONCE_CHALLENGE],
            "{self:?}"
        );
        assert_eq!(self.cache_control.as_deref(), Some("no-store"));
        assert_eq!(self.body, r#"{"error":"use_dpop_nonce"}"#);
        let nonce = self.nonce.clone().expect("a DPoP-Nonce header");
        assert_eq!(nonce.len(), 32, "{nonce}");
        nonce
    }
}

#[tokio::test]
async fn a_proof_without_a_nonce_gets_use_dpop_nonce_and_the_retry_with_it_is_accepted() {
    let server = serve_axum(app(&KEY)).await;
    let key = ClientKey::new();
    let token = token(&key.jkt);
    let bucket = bucket().await;
    let nonce = send(&server, &token, &key.proof(&token, None))
        .await
        .use_nonce();
    // The nonce is this bucket's, under the shared key.
    assert_eq!(nonce, nonce_of(&KEY, bucket));
    let res = send(&server, &token, &key.proof(&token, Some(&nonce))).await;
    assert_eq!((res.status, res.body.as_str()), (200, "alice"), "{res:?}");
    // A nonce of the current bucket is not renewed.
    assert_eq!(res.nonce, None);
}

#[tokio::test]
async fn a_nonce_of_the_previous_bucket_is_accepted_and_a_fresh_one_comes_with_the_answer() {
    let server = serve_axum(app(&KEY)).await;
    let key = ClientKey::new();
    let token = token(&key.jkt);
    let bucket = bucket().await;
    let previous = nonce_of(&KEY, bucket - 1);
    let res = send(&server, &token, &key.proof(&token, Some(&previous))).await;
    assert_eq!(res.status, 200, "{res:?}");
    assert_eq!(res.nonce, Some(nonce_of(&KEY, bucket)));
}

#[tokio::test]
async fn a_nonce_two_buckets_old_or_from_the_future_is_refused_with_a_fresh_one() {
    let server = serve_axum(app(&KEY)).await;
    let key = ClientKey::new();
    let token = token(&key.jkt);
    let bucket = bucket().await;
    for stale in [nonce_of(&KEY, bucket - 2), nonce_of(&KEY, bucket + 1)] {
        let res = send(&server, &token, &key.proof(&token, Some(&stale))).await;
        assert_eq!(res.use_nonce(), nonce_of(&KEY, bucket));
    }
}

#[tokio::test]
async fn a_forged_nonce_is_refused() {
    let server = serve_axum(app(&KEY)).await;
    let key = ClientKey::new();
    let token = token(&key.jkt);
    let bucket = bucket().await;
    let current = nonce_of(&KEY, bucket);
    let mut altered = URL_SAFE_NO_PAD.decode(&current).unwrap();
    altered[20] ^= 1;
    for forged in [
        nonce_of(&OTHER_KEY, bucket),
        b64(&altered),
        "not-a-nonce".to_owned(),
        String::new(),
    ] {
        let res = send(&server, &token, &key.proof(&token, Some(&forged))).await;
        res.use_nonce();
    }
}

#[tokio::test]
async fn two_instances_sharing_the_key_accept_each_others_nonces_and_another_key_does_not() {
    let (one, two, other) = (
        serve_axum(app(&KEY)).await,
        serve_axum(app(&KEY)).await,
        serve_axum(app(&OTHER_KEY)).await,
    );
    let key = ClientKey::new();
    let token = token(&key.jkt);
    bucket().await;
    let nonce = send(&one, &token, &key.proof(&token, None))
        .await
        .use_nonce();
    let res = send(&two, &token, &key.proof(&token, Some(&nonce))).await;
    assert_eq!(res.status, 200, "{res:?}");
    let res = send(&other, &token, &key.proof(&token, Some(&nonce))).await;
    assert_ne!(res.use_nonce(), nonce);
}

/// The CORS recipe of `crate::origin` and the README, with DPoP.
fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers([
            AUTHORIZATION,
            CONTENT_TYPE,
            HeaderName::from_static("mcp-protocol-version"),
            HeaderName::from_static("mcp-session-id"),
            HeaderName::from_static("dpop"),
        ])
        .expose_headers([
            WWW_AUTHENTICATE,
            HeaderName::from_static("mcp-session-id"),
            HeaderName::from_static("dpop-nonce"),
        ])
}

fn list(res: &reqwest::Response, name: HeaderName) -> Vec<String> {
    res.headers()
        .get_all(name)
        .iter()
        .flat_map(|v| v.to_str().unwrap().split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .collect()
}

#[tokio::test]
async fn a_browser_may_send_the_dpop_header_and_read_the_nonce_and_the_challenge() {
    let server = serve_axum(app(&KEY).layer(cors())).await;
    let preflight = client()
        .request(Method::OPTIONS, server.url("/mcp"))
        .header(ORIGIN, "http://localhost:6274")
        .header(ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .header(ACCESS_CONTROL_REQUEST_HEADERS, "authorization,dpop")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    let allowed = list(&preflight, ACCESS_CONTROL_ALLOW_HEADERS);
    assert!(allowed.contains(&"dpop".to_owned()), "{allowed:?}");
    assert!(allowed.contains(&"authorization".to_owned()), "{allowed:?}");

    let key = ClientKey::new();
    let token = token(&key.jkt);
    let res = client()
        .post(server.url("/mcp"))
        .header(ORIGIN, "http://localhost:6274")
        .header("authorization", format!("DPoP {token}"))
        .header("dpop", key.proof(&token, None))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(
        res.headers()
            .get(ACCESS_CONTROL_ALLOW_ORIGIN)
            .map(|v| v.to_str().unwrap()),
        Some("*")
    );
    let exposed = list(&res, ACCESS_CONTROL_EXPOSE_HEADERS);
    for h in ["dpop-nonce", "www-authenticate"] {
        assert!(exposed.contains(&h.to_owned()), "{h}: {exposed:?}");
    }
    assert!(res.headers().contains_key("dpop-nonce"));
}
