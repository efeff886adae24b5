//! DPoP (RFC 9449, MCP SEP-1932) through a real `AuthLayer` in front of a real axum server on
//! 127.0.0.1, driven by reqwest: one test per proof check and per binding rule, each with its
//! exact status and `WWW-Authenticate` challenges; replay (one request, two at once, two
//! instances sharing a real `redis-server`); a store that cannot answer.
//!
//! Tokens are JWTs signed here with the issuer key of `tests/fixtures/jwt/` and carrying
//! `cnf.jkt`; proofs are signed here with client keys (ES256, EdDSA, RS256), every one made
//! valid but for the one thing a test changes, so that each test fails if its check is gone.
#![cfg(feature = "aws-lc-rs")]

mod common;
#[cfg(feature = "redis")]
#[path = "common/install.rs"]
mod install;
#[cfg(feature = "redis")]
#[path = "common/redis_server.rs"]
mod redis_server;

use std::{
    future::Ready,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use aws_lc_rs::digest::{SHA256, digest};
use axum::{Router, routing::post};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use common::{TestServer, challenges, client, serve_axum};
use jsonwebtoken::{EncodingKey, Header, jwk::Jwk};
use mcp_server_auth::{
    AuthInfo, AuthLayer, AuthMethod, ProtectedResourceMetadata, ResourceUrl, VerifierExt,
    bearer::StaticBearer,
    credentials::Scheme,
    dpop::{Dpop, DpopOptions, Mode},
    jwt::{Algorithm, Issuer, JwtVerifier, KeySet},
    store::{Counter, Store, StoreError},
    verifier::{AuthRequest, Presented, Recall, Schemes, Verdict, Verifier},
};
use serde_json::{Map, Value, json};

const RESOURCE: &str = "https://mcp.example.com/mcp";
const ISSUER: &str = "https://auth.example.com";
const ALGS: &str = "ES256 ES384 EdDSA Ed25519 RS256 PS256";

fn fixture(path: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
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

// ---------------------------------------------------------------------------------------------
// Client keys, tokens, proofs
// ---------------------------------------------------------------------------------------------

/// A client's DPoP key: how it signs, its public JWK, and its RFC 7638 thumbprint.
struct ClientKey {
    alg: Algorithm,
    encoding: EncodingKey,
    jwk: Map<String, Value>,
    jkt: String,
}

impl ClientKey {
    fn new(alg: Algorithm, encoding: EncodingKey) -> Self {
        let jwk = serde_json::to_value(Jwk::from_encoding_key(&encoding, alg).unwrap()).unwrap();
        let Value::Object(jwk) = jwk else { panic!() };
        Self::from_jwk(alg, encoding, jwk)
    }

    fn from_jwk(alg: Algorithm, encoding: EncodingKey, jwk: Map<String, Value>) -> Self {
        // RFC 7638 §3.2, computed independently of the crate: the required members, sorted.
        let required: &[&str] = match jwk["kty"].as_str().unwrap() {
            "EC" => &["crv", "kty", "x", "y"],
            "OKP" => &["crv", "kty", "x"],
            _ => &["e", "kty", "n"],
        };
        let canonical: std::collections::BTreeMap<&str, &Value> =
            required.iter().map(|k| (*k, &jwk[*k])).collect();
        let json = serde_json::to_string(&canonical).unwrap();
        let jkt = b64(digest(&SHA256, json.as_bytes()).as_ref());
        Self {
            alg,
            encoding,
            jwk,
            jkt,
        }
    }

    fn es256() -> Self {
        let pem = fixture("jwt/issuer_b_ec_private.pem");
        Self::new(Algorithm::ES256, EncodingKey::from_ec_pem(&pem).unwrap())
    }

    fn ed25519() -> Self {
        let pem = fixture("jwt/attacker_ed25519_private.pem");
        Self::new(Algorithm::EdDSA, EncodingKey::from_ed_pem(&pem).unwrap())
    }

    fn rs256() -> Self {
        let pem = fixture("jwt/rsa_private.pem");
        Self::new(Algorithm::RS256, EncodingKey::from_rsa_pem(&pem).unwrap())
    }
}

/// An access token from the issuer, bound to `jkt` when given.
fn token(jkt: Option<&str>) -> String {
    let mut claims = json!({
        "iss": ISSUER, "aud": RESOURCE, "sub": "alice", "client_id": "c1",
        "iat": now(), "exp": now() + 600, "scope": "mcp:read",
    });
    if let Some(jkt) = jkt {
        claims["cnf"] = json!({ "jkt": jkt });
    }
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("ec-1".into());
    let key = EncodingKey::from_ec_pem(&fixture("jwt/ec_private.pem")).unwrap();
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

/// The parts of a proof, each changeable before it is signed.
struct Proof {
    header: Map<String, Value>,
    claims: Map<String, Value>,
}

impl Proof {
    /// A valid proof by `key` for `POST RESOURCE` with `token`.
    fn new(key: &ClientKey, token: &str) -> Self {
        let alg = serde_json::to_value(key.alg).unwrap();
        let header = json!({ "typ": "dpop+jwt", "alg": alg, "jwk": key.jwk });
        let claims = json!({
            "jti": format!("jti-{}", rand::random::<u64>()),
            "htm": "POST",
            "htu": RESOURCE,
            "iat": now(),
            "ath": b64(digest(&SHA256, token.as_bytes()).as_ref()),
        });
        let (Value::Object(header), Value::Object(claims)) = (header, claims) else {
            panic!()
        };
        Self { header, claims }
    }

    fn header(mut self, name: &str, value: Option<Value>) -> Self {
        match value {
            Some(v) => self.header.insert(name.into(), v),
            None => self.header.remove(name),
        };
        self
    }

    fn claim(mut self, name: &str, value: Option<Value>) -> Self {
        match value {
            Some(v) => self.claims.insert(name.into(), v),
            None => self.claims.remove(name),
        };
        self
    }

    /// The compact JWS, signed by `key` with its algorithm.
    fn sign(&self, key: &ClientKey) -> String {
        self.sign_with(&key.encoding, key.alg)
    }

    fn sign_with(&self, encoding: &EncodingKey, alg: Algorithm) -> String {
        let message = format!(
            "{}.{}",
            b64(serde_json::to_string(&self.header).unwrap().as_bytes()),
            b64(serde_json::to_string(&self.claims).unwrap().as_bytes())
        );
        let signature = jsonwebtoken::crypto::sign(message.as_bytes(), encoding, alg).unwrap();
        format!("{message}.{signature}")
    }
}

// ---------------------------------------------------------------------------------------------
// Servers and requests
// ---------------------------------------------------------------------------------------------

fn tokens() -> JwtVerifier {
    let keys = KeySet::new()
        .add_pem(
            Some("ec-1"),
            Algorithm::ES256,
            &fixture("jwt/ec_public.pem"),
        )
        .unwrap();
    JwtVerifier::builder(ResourceUrl::parse(RESOURCE).unwrap())
        .issuer(Issuer::with_keys(ISSUER, keys))
        .build()
        .unwrap()
}

fn options(mode: Mode) -> DpopOptions {
    DpopOptions::builder(&ResourceUrl::parse(RESOURCE).unwrap())
        .mode(mode)
        .build()
        .unwrap()
}

fn app<V: Verifier, S: Store>(dpop: Dpop<V, S>) -> Router {
    Router::new()
        .route(
            "/mcp",
            post(
                |axum::Extension(who): axum::Extension<AuthInfo>| async move {
                    format!("{} {}", who.subject(), who.dpop_jkt().unwrap_or("unbound"))
                },
            ),
        )
        .layer(AuthLayer::new(dpop))
}

async fn server(mode: Mode) -> TestServer {
    serve_axum(app(Dpop::new(tokens(), options(mode)))).await
}

/// What a request got back: status, challenges, body.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    status: u16,
    challenges: Vec<String>,
    body: String,
}

async fn send(server: &TestServer, scheme: &str, token: &str, proofs: &[&str]) -> Answer {
    let mut req = client()
        .post(server.url("/mcp"))
        .header("authorization", format!("{scheme} {token}"));
    for p in proofs {
        req = req.header("dpop", *p);
    }
    let res = req.send().await.unwrap();
    Answer {
        status: res.status().as_u16(),
        challenges: challenges(&res),
        body: res.text().await.unwrap(),
    }
}

fn bearer(error: Option<&str>) -> String {
    match error {
        Some(e) => format!(r#"Bearer realm="mcp", error="{e}""#),
        None => r#"Bearer realm="mcp""#.to_owned(),
    }
}

fn dpop(error: Option<&str>) -> String {
    match error {
        Some(e) => format!(r#"DPoP realm="mcp", algs="{ALGS}", error="{e}""#),
        None => format!(r#"DPoP realm="mcp", algs="{ALGS}""#),
    }
}

/// The answer to a refused proof: 401, `invalid_dpop_proof` on the DPoP line, Bearer first.
fn bad_proof() -> Answer {
    Answer {
        status: 401,
        challenges: vec![bearer(None), dpop(Some("invalid_dpop_proof"))],
        body: r#"{"error":"invalid_dpop_proof"}"#.to_owned(),
    }
}

/// The answer to a token whose binding does not hold, presented with `scheme`.
fn bad_binding(scheme: &str) -> Answer {
    let (b, d) = match scheme {
        "Bearer" => (Some("invalid_token"), None),
        _ => (None, Some("invalid_token")),
    };
    Answer {
        status: 401,
        challenges: vec![bearer(b), dpop(d)],
        body: r#"{"error":"invalid_token"}"#.to_owned(),
    }
}

fn ok(key: &ClientKey) -> Answer {
    Answer {
        status: 200,
        challenges: vec![],
        body: format!("alice {}", key.jkt),
    }
}

/// Sends a proof changed by `change` (signed by the client key) with a token bound to the key.
async fn with_proof(change: impl FnOnce(Proof) -> Proof) -> Answer {
    let server = server(Mode::Allowed).await;
    let key = ClientKey::es256();
    let token = token(Some(&key.jkt));
    let proof = change(Proof::new(&key, &token)).sign(&key);
    send(&server, "DPoP", &token, &[&proof]).await
}

// ---------------------------------------------------------------------------------------------
// Accepted
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_bound_token_with_a_valid_es256_proof_is_accepted_and_the_identity_carries_the_jkt() {
    let server = server(Mode::Allowed).await;
    let key = ClientKey::es256();
    let token = token(Some(&key.jkt));
    let proof = Proof::new(&key, &token).sign(&key);
    assert_eq!(send(&server, "DPoP", &token, &[&proof]).await, ok(&key));
}

#[tokio::test]
async fn ed25519_and_rs256_proofs_are_accepted() {
    let server = server(Mode::Allowed).await;
    for key in [ClientKey::ed25519(), ClientKey::rs256()] {
        let token = token(Some(&key.jkt));
        let proof = Proof::new(&key, &token).sign(&key);
        assert_eq!(send(&server, "DPoP", &token, &[&proof]).await, ok(&key));
    }
}

#[tokio::test]
async fn the_lowercase_dpop_scheme_is_accepted_as_schemes_are_case_insensitive() {
    let server = server(Mode::Allowed).await;
    let key = ClientKey::es256();
    let token = token(Some(&key.jkt));
    let proof = Proof::new(&key, &token).sign(&key);
    assert_eq!(send(&server, "dpop", &token, &[&proof]).await, ok(&key));
}

#[tokio::test]
async fn an_htu_with_a_query_string_is_accepted_as_query_and_fragment_are_ignored() {
    let server = server(Mode::Allowed).await;
    let key = ClientKey::es256();
    let token = token(Some(&key.jkt));
    let proof = Proof::new(&key, &token)
        .claim("htu", Some(json!(format!("{RESOURCE}?session=1#top"))))
        .sign(&key);
    assert_eq!(send(&server, "DPoP", &token, &[&proof]).await, ok(&key));
    // And spelled differently but equivalent (RFC 3986 §6.2.2).
    let proof = Proof::new(&key, &token)
        .claim("htu", Some(json!("HTTPS://MCP.EXAMPLE.COM:443/%6Dcp")))
        .sign(&key);
    assert_eq!(send(&server, "DPoP", &token, &[&proof]).await, ok(&key));
}

#[tokio::test]
async fn a_cache_hit_still_checks_the_proof_of_every_request() {
    let server = server(Mode::Allowed).await;
    let key = ClientKey::es256();
    let token = token(Some(&key.jkt));
    let proof = Proof::new(&key, &token).sign(&key);
    assert_eq!(send(&server, "DPoP", &token, &[&proof]).await, ok(&key));
    // The token is cached now; a proof by another key is still refused.
    let other = ClientKey::ed25519();
    let proof = Proof::new(&other, &token).sign(&other);
    assert_eq!(
        send(&server, "DPoP", &token, &[&proof]).await,
        bad_binding("DPoP")
    );
    let proof = Proof::new(&key, &token)
        .claim("htm", Some(json!("GET")))
        .sign(&key);
    assert_eq!(send(&server, "DPoP", &token, &[&proof]).await, bad_proof());
}

#[tokio::test]
async fn a_client_seen_before_still_has_the_signature_and_ath_of_each_proof_checked() {
    // After a first request the server keeps the client's proof header and its token's hash:
    // neither may stand in for the checks of a later proof.
    let server = server(Mode::Allowed).await;
    let key = ClientKey::es256();
    let (first, second) = (token(Some(&key.jkt)), token(Some(&key.jkt)));
    assert_ne!(
        first, second,
        "two tokens (ES256 signatures are randomised)"
    );
    for t in [&first, &second] {
        let proof = Proof::new(&key, t).sign(&key);
        assert_eq!(send(&server, "DPoP", t, &[&proof]).await, ok(&key));
    }
    // The same header, a signature that does not verify.
    let proof = Proof::new(&key, &first).sign(&key);
    let (message, signature) = proof.rsplit_once('.').unwrap();
    let mut sig = URL_SAFE_NO_PAD.decode(signature).unwrap();
    sig[5] ^= 1;
    let tampered = format!("{message}.{}", b64(&sig));
    assert_eq!(
        send(&server, "DPoP", &first, &[&tampered]).await,
        bad_proof()
    );
    // A proof made for one token, sent with the other (both hashes were checked before).
    for (made_for, sent_with) in [(&first, &second), (&second, &first)] {
        let proof = Proof::new(&key, made_for).sign(&key);
        assert_eq!(
            send(&server, "DPoP", sent_with, &[&proof]).await,
            bad_proof()
        );
    }
    // Each still goes with its own.
    for t in [&first, &second] {
        let proof = Proof::new(&key, t).sign(&key);
        assert_eq!(send(&server, "DPoP", t, &[&proof]).await, ok(&key));
    }
}

#[tokio::test]
async fn a_claim_name_written_with_an_escape_is_read_as_that_name() {
    // RFC 8259 §7: "j\u0074i" is the name jti; a proof whose claims are spelled so is the same
    // proof.
    let server = server(Mode::Allowed).await;
    let key = ClientKey::es256();
    let token = token(Some(&key.jkt));
    // The escaped name counts as the claim: given twice, the proof is malformed, whether its
    // header is read now or was kept from an accepted proof ([`keys`]). Its jti is its own,
    // so that only the repetition can refuse it, not replay.
    let fresh = Proof::new(&key, &token);
    let twice =
        serde_json::to_string(&fresh.claims)
            .unwrap()
            .replacen('{', r#"{"j\u0074i":"again","#, 1);
    let message = format!(
        "{}.{}",
        b64(serde_json::to_string(&fresh.header).unwrap().as_bytes()),
        b64(twice.as_bytes())
    );
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &key.encoding, key.alg).unwrap();
    let repeated = format!("{message}.{signature}");
    assert_eq!(
        send(&server, "DPoP", &token, &[&repeated]).await,
        bad_proof()
    );
    let proof = Proof::new(&key, &token);
    let claims = serde_json::to_string(&proof.claims)
        .unwrap()
        .replace(r#""jti""#, r#""j\u0074i""#)
        .replace(r#""ath""#, r#""\u0061th""#);
    assert!(claims.contains(r#"\u0074"#) && claims.contains(r#"\u0061"#));
    let message = format!(
        "{}.{}",
        b64(serde_json::to_string(&proof.header).unwrap().as_bytes()),
        b64(claims.as_bytes())
    );
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &key.encoding, key.alg).unwrap();
    let escaped = format!("{message}.{signature}");
    assert_eq!(send(&server, "DPoP", &token, &[&escaped]).await, ok(&key));
    // Now that its header is kept.
    assert_eq!(
        send(&server, "DPoP", &token, &[&repeated]).await,
        bad_proof()
    );
}

// ---------------------------------------------------------------------------------------------
// One test per proof check (RFC 9449 §4.3)
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_tampered_signature_is_refused() {
    let server = server(Mode::Allowed).await;
    let key = ClientKey::es256();
    let token = token(Some(&key.jkt));
    let proof = Proof::new(&key, &token).sign(&key);
    let (message, signature) = proof.rsplit_once('.').unwrap();
    let mut sig = URL_SAFE_NO_PAD.decode(signature).unwrap();
    sig[5] ^= 1;
    let tampered = format!("{message}.{}", b64(&sig));
    assert_eq!(
        send(&server, "DPoP", &token, &[&tampered]).await,
        bad_proof()
    );
}

#[tokio::test]
async fn a_proof_without_jti_is_refused() {
    assert_eq!(with_proof(|p| p.claim("jti", None)).await, bad_proof());
}

#[tokio::test]
async fn a_proof_without_htm_is_refused() {
    assert_eq!(with_proof(|p| p.claim("htm", None)).await, bad_proof());
}

#[tokio::test]
async fn a_proof_without_htu_is_refused() {
    assert_eq!(with_proof(|p| p.claim("htu", None)).await, bad_proof());
}

#[tokio::test]
async fn a_proof_without_iat_is_refused() {
    assert_eq!(with_proof(|p| p.claim("iat", None)).await, bad_proof());
}

#[tokio::test]
async fn a_proof_without_ath_is_refused() {
    assert_eq!(with_proof(|p| p.claim("ath", None)).await, bad_proof());
}

#[tokio::test]
async fn a_proof_with_the_wrong_ath_is_refused() {
    let other = b64(digest(&SHA256, b"another token").as_ref());
    assert_eq!(
        with_proof(|p| p.claim("ath", Some(json!(other)))).await,
        bad_proof()
    );
}

#[tokio::test]
async fn a_proof_whose_typ_is_not_dpop_jwt_is_refused() {
    assert_eq!(
        with_proof(|p| p.header("typ", Some(json!("JWT")))).await,
        bad_proof()
    );
}

#[tokio::test]
async fn a_proof_with_a_crit_header_is_refused() {
    // RFC 7515 §4.1.11: a critical extension this server does not implement.
    assert_eq!(
        with_proof(|p| p.header("crit", Some(json!(["exp"])))).await,
        bad_proof()
    );
}

#[tokio::test]
async fn a_proof_by_an_asymmetric_algorithm_not_on_the_allow_list_is_refused() {
    // RS384: a good key and signature, but not on the default list (ALGS).
    let server = server(Mode::Allowed).await;
    let pem = fixture("jwt/rsa_private.pem");
    let key = ClientKey::new(Algorithm::RS384, EncodingKey::from_rsa_pem(&pem).unwrap());
    let token = token(Some(&key.jkt));
    let proof = Proof::new(&key, &token).sign(&key);
    assert_eq!(send(&server, "DPoP", &token, &[&proof]).await, bad_proof());
}

#[tokio::test]
async fn a_proof_whose_jwk_is_not_of_the_type_or_curve_its_alg_names_is_refused() {
    // The signer's own key, relabelled: the token is bound to its true thumbprint.
    let server = server(Mode::Allowed).await;
    for (key, member, value) in [
        (ClientKey::es256(), "kty", "OKP"),
        (ClientKey::ed25519(), "crv", "X25519"),
    ] {
        let token = token(Some(&key.jkt));
        let mut jwk = key.jwk.clone();
        jwk.insert(member.into(), json!(value));
        let proof = Proof::new(&key, &token)
            .header("jwk", Some(Value::Object(jwk)))
            .sign(&key);
        assert_eq!(
            send(&server, "DPoP", &token, &[&proof]).await,
            bad_proof(),
            "{member}: {value}"
        );
    }
}

#[tokio::test]
async fn a_proof_for_another_method_is_refused() {
    assert_eq!(
        with_proof(|p| p.claim("htm", Some(json!("GET")))).await,
        bad_proof()
    );
}

#[tokio::test]
async fn a_proof_for_another_url_or_path_is_refused() {
    let htu = json!("https://mcp.example.com/other");
    assert_eq!(with_proof(|p| p.claim("htu", Some(htu))).await, bad_proof());
    let htu = json!("https://evil.example.com/mcp");
    assert_eq!(with_proof(|p| p.claim("htu", Some(htu))).await, bad_proof());
}

#[tokio::test]
async fn a_proof_issued_301_seconds_ahead_is_refused() {
    // 301 s ahead of the server's clock only if the server read it within the same second:
    // when the second changed meanwhile, the proof was 300 s ahead, and is made again.
    for _ in 0..5 {
        let before = now();
        let iat = json!(before + 301);
        let answer = with_proof(|p| p.claim("iat", Some(iat))).await;
        if now() == before {
            assert_eq!(answer, bad_proof());
            return;
        }
    }
    panic!("the clock's second changed during each of 5 requests");
}

#[tokio::test]
async fn a_proof_issued_301_seconds_ago_is_refused() {
    let iat = json!(now() - 301);
    assert_eq!(with_proof(|p| p.claim("iat", Some(iat))).await, bad_proof());
}

#[tokio::test]
async fn a_proof_whose_jwk_holds_the_private_key_is_refused() {
    // The EC private scalar of the client key: the key is still the signer's, but is private.
    let d = b64(&[7u8; 32]);
    let key = ClientKey::es256();
    let mut jwk = key.jwk.clone();
    jwk.insert("d".into(), json!(d));
    assert_eq!(
        with_proof(|p| p.header("jwk", Some(Value::Object(jwk)))).await,
        bad_proof()
    );
}

#[tokio::test]
async fn a_proof_with_alg_none_is_refused() {
    let server = server(Mode::Allowed).await;
    let key = ClientKey::es256();
    let token = token(Some(&key.jkt));
    let p = Proof::new(&key, &token).header("alg", Some(json!("none")));
    let unsigned = format!(
        "{}.{}.",
        b64(serde_json::to_string(&p.header).unwrap().as_bytes()),
        b64(serde_json::to_string(&p.claims).unwrap().as_bytes())
    );
    assert_eq!(
        send(&server, "DPoP", &token, &[&unsigned]).await,
        bad_proof()
    );
}

#[tokio::test]
async fn a_proof_with_alg_hs256_is_refused() {
    let server = server(Mode::Allowed).await;
    let key = ClientKey::es256();
    let token = token(Some(&key.jkt));
    // HMAC keyed with the public JWK's text: the classic key-confusion attempt.
    let secret = serde_json::to_vec(&key.jwk).unwrap();
    let proof = Proof::new(&key, &token)
        .header("alg", Some(json!("HS256")))
        .sign_with(&EncodingKey::from_secret(&secret), Algorithm::HS256);
    assert_eq!(send(&server, "DPoP", &token, &[&proof]).await, bad_proof());
}

#[tokio::test]
async fn a_proof_by_an_rsa_key_of_1024_bits_is_refused() {
    let server = server(Mode::Allowed).await;
    let pem = fixture("dpop/rsa1024_private.pem");
    // The JOSE crates refuse such short keys: the modulus comes from openssl.
    let path = format!(
        "{}/tests/fixtures/dpop/rsa1024_private.pem",
        env!("CARGO_MANIFEST_DIR")
    );
    let out = std::process::Command::new("openssl")
        .args(["rsa", "-noout", "-modulus", "-in", &path])
        .output()
        .expect("openssl is needed for the 1024-bit RSA key");
    let text = String::from_utf8(out.stdout).unwrap();
    let hex = text.trim().strip_prefix("Modulus=").unwrap();
    let n: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    assert_eq!(n.len() * 8, 1024);
    let jwk = json!({ "kty": "RSA", "n": b64(&n), "e": "AQAB" });
    let Value::Object(jwk) = jwk else { panic!() };
    let unused = EncodingKey::from_secret(b"unused");
    let key = ClientKey::from_jwk(Algorithm::RS256, unused, jwk);
    let token = token(Some(&key.jkt));
    let p = Proof::new(&key, &token);
    // Signed with the 1024-bit key (via openssl: the JOSE signer refuses such short keys).
    let message = format!(
        "{}.{}",
        b64(serde_json::to_string(&p.header).unwrap().as_bytes()),
        b64(serde_json::to_string(&p.claims).unwrap().as_bytes())
    );
    let signature = openssl_sign(&pem, message.as_bytes());
    let proof = format!("{message}.{}", b64(&signature));
    assert_eq!(send(&server, "DPoP", &token, &[&proof]).await, bad_proof());
}

/// RS256 with `openssl dgst` (a 1024-bit key, which the Rust signers refuse to load).
fn openssl_sign(pem: &[u8], message: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let dir = std::env::temp_dir().join(format!("dpop-rsa1024-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("key.pem");
    std::fs::write(&key, pem).unwrap();
    let mut child = std::process::Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(&key)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("openssl is needed to sign with a 1024-bit RSA key");
    child.stdin.take().unwrap().write_all(message).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    out.stdout
}

#[tokio::test]
async fn a_repeated_dpop_header_is_refused() {
    let server = server(Mode::Allowed).await;
    let key = ClientKey::es256();
    let token = token(Some(&key.jkt));
    let one = Proof::new(&key, &token).sign(&key);
    let two = Proof::new(&key, &token).sign(&key);
    assert_eq!(
        send(&server, "DPoP", &token, &[&one, &two]).await,
        bad_proof()
    );
}

#[tokio::test]
async fn a_dpop_header_over_8_kib_is_refused() {
    // Valid but for its size: a padding claim makes it larger than 8 KiB.
    let pad = json!("x".repeat(8 * 1024));
    assert_eq!(with_proof(|p| p.claim("pad", Some(pad))).await, bad_proof());
}

#[tokio::test]
async fn a_dpop_request_without_a_proof_is_refused() {
    let server = server(Mode::Allowed).await;
    let key = ClientKey::es256();
    let token = token(Some(&key.jkt));
    assert_eq!(send(&server, "DPoP", &token, &[]).await, bad_proof());
}

// ---------------------------------------------------------------------------------------------
// Binding (RFC 9449 §6–7)
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_proof_by_another_key_than_the_tokens_jkt_is_refused() {
    let server = server(Mode::Allowed).await;
    let key = ClientKey::es256();
    let thief = ClientKey::ed25519();
    let token = token(Some(&key.jkt));
    let proof = Proof::new(&thief, &token).sign(&thief);
    assert_eq!(
        send(&server, "DPoP", &token, &[&proof]).await,
        bad_binding("DPoP")
    );
}

#[tokio::test]
async fn a_proof_naming_its_algorithm_ed25519_is_accepted_as_eddsa() {
    // RFC 9864 §2.2: `Ed25519` is the fully-specified name of EdDSA over Ed25519, which
    // authorization servers advertise for DPoP and clients may sign with.
    let server = server(Mode::Allowed).await;
    let key = ClientKey::ed25519();
    let bound = token(Some(&key.jkt));
    let proof = Proof::new(&key, &bound)
        .header("alg", Some(json!("Ed25519")))
        .sign(&key);
    assert_eq!(send(&server, "DPoP", &bound, &[&proof]).await, ok(&key));
    // Not for another key type: an EC key under `Ed25519` is refused.
    let ec = ClientKey::es256();
    let bound = token(Some(&ec.jkt));
    let proof = Proof::new(&ec, &bound)
        .header("alg", Some(json!("Ed25519")))
        .sign(&ec);
    assert_eq!(send(&server, "DPoP", &bound, &[&proof]).await, bad_proof());
}

#[tokio::test]
async fn a_bound_token_presented_as_bearer_is_refused_as_a_downgrade() {
    let server = server(Mode::Allowed).await;
    let key = ClientKey::es256();
    let token = token(Some(&key.jkt));
    let proof = Proof::new(&key, &token).sign(&key);
    assert_eq!(
        send(&server, "Bearer", &token, &[&proof]).await,
        bad_binding("Bearer")
    );
    assert_eq!(
        send(&server, "Bearer", &token, &[]).await,
        bad_binding("Bearer")
    );
}

#[tokio::test]
async fn a_bound_token_accepted_with_its_proof_is_refused_as_bearer_from_the_cache_too() {
    // The first request puts the token's identity in the JWT cache; the layer must not admit
    // it from there (`recall`) when the same token comes back without its proof.
    let server = server(Mode::Allowed).await;
    let key = ClientKey::es256();
    let token = token(Some(&key.jkt));
    let proof = Proof::new(&key, &token).sign(&key);
    assert_eq!(send(&server, "DPoP", &token, &[&proof]).await.status, 200);
    assert_eq!(
        send(&server, "Bearer", &token, &[]).await,
        bad_binding("Bearer")
    );
}

#[tokio::test]
async fn a_bound_token_is_refused_as_bearer_even_without_dpop_configured() {
    let server = serve_axum(
        Router::new()
            .route("/mcp", post(|| async { "in" }))
            .layer(AuthLayer::new(tokens())),
    )
    .await;
    let key = ClientKey::es256();
    let res = send(&server, "Bearer", &token(Some(&key.jkt)), &[]).await;
    assert_eq!(
        (res.status, res.challenges),
        (401, vec![bearer(Some("invalid_token"))])
    );
    assert_eq!(send(&server, "Bearer", &token(None), &[]).await.status, 200);
}

/// A verifier of your own: every token is alice's, bound to `jkt`, and remembered; it leaves
/// the binding to the `Dpop` around it (it does not refuse a bound token as a bearer token).
#[derive(Clone)]
struct BoundTo(String);

impl Verifier for BoundTo {
    fn schemes(&self) -> Schemes {
        Schemes::BEARER
    }
    fn verify(&self, _: &AuthRequest<'_>) -> Verdict {
        let info = AuthInfo::builder("alice", AuthMethod::Custom("own"))
            .dpop_jkt(self.0.clone())
            .build();
        Verdict::Ready(Ok(info))
    }
    fn recall(&self, _: &Presented<'_>) -> Recall {
        let info = AuthInfo::builder("alice", AuthMethod::Custom("own"))
            .dpop_jkt(self.0.clone())
            .build();
        Recall::Accepted(info)
    }
}

#[test]
fn a_dpop_token_is_never_recalled_so_its_proof_is_checked_on_every_request() {
    // Even when the verifier inside remembers the token.
    let dpop = Dpop::new(BoundTo("jkt".into()), options(Mode::Allowed));
    let presented = Presented::new(Scheme::DPoP, b"an-opaque-token-of-your-own");
    assert!(matches!(dpop.recall(&presented), Recall::Unsure));
}

#[tokio::test]
async fn a_bound_token_of_a_verifier_of_your_own_is_refused_as_bearer_by_the_dpop_wrapper() {
    let key = ClientKey::es256();
    let dpop = Dpop::new(BoundTo(key.jkt.clone()), options(Mode::Allowed));
    let server = serve_axum(app(dpop)).await;
    let token = "an-opaque-token-of-your-own";
    assert_eq!(
        send(&server, "Bearer", token, &[]).await,
        bad_binding("Bearer")
    );
    let proof = Proof::new(&key, token).sign(&key);
    assert_eq!(send(&server, "DPoP", token, &[&proof]).await, ok(&key));
}

#[tokio::test]
async fn an_unbound_token_with_the_dpop_scheme_is_refused() {
    let server = server(Mode::Allowed).await;
    let key = ClientKey::es256();
    let token = token(None);
    let proof = Proof::new(&key, &token).sign(&key);
    assert_eq!(
        send(&server, "DPoP", &token, &[&proof]).await,
        bad_binding("DPoP")
    );
}

// ---------------------------------------------------------------------------------------------
// Modes
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn allowed_mode_accepts_an_unbound_bearer_token_and_challenges_with_both_schemes() {
    let server = server(Mode::Allowed).await;
    let res = send(&server, "Bearer", &token(None), &[]).await;
    assert_eq!((res.status, res.body.as_str()), (200, "alice unbound"));
    let res = client().post(server.url("/mcp")).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(challenges(&res), [bearer(None), dpop(None)]);
}

#[tokio::test]
async fn required_mode_refuses_bearer_tokens_and_offers_only_dpop() {
    let server = server(Mode::Required).await;
    let res = send(&server, "Bearer", &token(None), &[]).await;
    assert_eq!((res.status, res.challenges), (401, vec![dpop(None)]));
    let key = ClientKey::es256();
    let token = token(Some(&key.jkt));
    let proof = Proof::new(&key, &token).sign(&key);
    assert_eq!(send(&server, "DPoP", &token, &[&proof]).await, ok(&key));
}

#[tokio::test]
async fn required_mode_beside_a_bearer_verifier_still_refuses_its_own_tokens_as_bearer() {
    // A static-token verifier beside it makes the layer parse `Bearer`: the DPoP verifier must
    // not then accept its unbound JWTs as bearer tokens, while the static token still works.
    let statics = StaticBearer::new([("ci", "c2VjcmV0LXRva2VuLWZvci1jaQ")]).unwrap();
    let verifier = Dpop::new(tokens(), options(Mode::Required)).or(statics);
    let server = serve_axum(
        Router::new()
            .route(
                "/mcp",
                post(
                    |axum::Extension(who): axum::Extension<AuthInfo>| async move {
                        who.subject().to_owned()
                    },
                ),
            )
            .layer(AuthLayer::new(verifier)),
    )
    .await;
    for _ in 0..2 {
        // Twice: the second time through the layer's recall.
        let res = send(&server, "Bearer", &token(None), &[]).await;
        assert_eq!(res.status, 401);
        let res = send(&server, "Bearer", "c2VjcmV0LXRva2VuLWZvci1jaQ", &[]).await;
        assert_eq!((res.status, res.body.as_str()), (200, "ci"));
    }
}

#[tokio::test]
async fn off_mode_offers_only_bearer_and_still_refuses_a_bound_token_as_bearer() {
    let server = server(Mode::Off).await;
    let res = client().post(server.url("/mcp")).send().await.unwrap();
    assert_eq!(
        (res.status().as_u16(), challenges(&res)),
        (401, vec![bearer(None)])
    );
    let res = send(&server, "Bearer", &token(None), &[]).await;
    assert_eq!((res.status, res.body.as_str()), (200, "alice unbound"));
    let key = ClientKey::es256();
    let res = send(&server, "Bearer", &token(Some(&key.jkt)), &[]).await;
    assert_eq!(
        (res.status, res.challenges),
        (401, vec![bearer(Some("invalid_token"))])
    );
}

#[tokio::test]
async fn a_dpop_request_lacking_a_scope_gets_a_dpop_insufficient_scope_challenge() {
    // RFC 9449 §7.1: the challenge of a refusal names the scheme the request used, here from a
    // scope layer inside the auth layer (it sees only the identity).
    let auth = AuthLayer::new(Dpop::new(tokens(), options(Mode::Allowed)));
    let need = mcp_server_auth::scope::ScopeRequirement::all_of(["mcp:write"]).unwrap();
    let server = serve_axum(
        Router::new()
            .route("/mcp", post(|| async { "in" }))
            .layer(auth.require_scopes(need))
            .layer(auth),
    )
    .await;
    let key = ClientKey::es256();
    let bound = token(Some(&key.jkt));
    let proof = Proof::new(&key, &bound).sign(&key);
    let res = send(&server, "DPoP", &bound, &[&proof]).await;
    assert_eq!(res.status, 403);
    assert_eq!(
        res.challenges,
        [format!(
            r#"DPoP realm="mcp", scope="mcp:write", algs="{ALGS}", error="insufficient_scope""#
        )]
    );
    // A bearer token lacking it gets the Bearer form, as before.
    let res = send(&server, "Bearer", &token(None), &[]).await;
    assert_eq!(
        (res.status, res.challenges),
        (
            403,
            vec![r#"Bearer realm="mcp", scope="mcp:write", error="insufficient_scope""#.to_owned()]
        )
    );
}

#[tokio::test]
async fn the_metadata_document_advertises_dpop() {
    let resource = ResourceUrl::parse(RESOURCE).unwrap();
    let options = options(Mode::Required);
    let metadata = ProtectedResourceMetadata::builder(resource)
        .authorization_server(ISSUER)
        .dpop_signing_alg_values_supported(options.algorithm_names())
        .dpop_bound_access_tokens_required(options.requires_bound_tokens())
        .build()
        .unwrap();
    let doc = serde_json::to_value(&metadata).unwrap();
    assert_eq!(
        doc["dpop_signing_alg_values_supported"],
        json!(["ES256", "ES384", "EdDSA", "Ed25519", "RS256", "PS256"])
    );
    assert_eq!(doc["dpop_bound_access_tokens_required"], json!(true));
}

// ---------------------------------------------------------------------------------------------
// Replay (RFC 9449 §11.1)
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_same_proof_twice_is_refused_the_second_time() {
    let server = server(Mode::Allowed).await;
    let key = ClientKey::es256();
    let token = token(Some(&key.jkt));
    let proof = Proof::new(&key, &token).sign(&key);
    assert_eq!(send(&server, "DPoP", &token, &[&proof]).await, ok(&key));
    assert_eq!(send(&server, "DPoP", &token, &[&proof]).await, bad_proof());
}

#[tokio::test]
async fn a_refused_proof_is_not_remembered() {
    // Stored only once every check passed: a proof refused for its binding leaves no mark.
    let server = server(Mode::Allowed).await;
    let key = ClientKey::es256();
    let bound = token(Some(&key.jkt));
    let unbound = token(None);
    let refused = Proof::new(&key, &unbound).sign(&key);
    assert_eq!(
        send(&server, "DPoP", &unbound, &[&refused]).await,
        bad_binding("DPoP")
    );
    // The same key and jti, now with the token bound to the key: not a replay.
    let same_jti = Proof::new(&key, &bound)
        .claim("jti", Some(jti_of(&refused)))
        .sign(&key);
    assert_eq!(send(&server, "DPoP", &bound, &[&same_jti]).await, ok(&key));
}

/// The `jti` of a signed proof.
fn jti_of(proof: &str) -> Value {
    let payload = proof.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    claims["jti"].clone()
}

#[tokio::test]
async fn two_identical_proofs_at_once_get_exactly_one_acceptance() {
    let server = server(Mode::Allowed).await;
    let key = ClientKey::es256();
    let token = token(Some(&key.jkt));
    for _ in 0..10 {
        let proof = Proof::new(&key, &token).sign(&key);
        let proofs = [proof.as_str()];
        let (a, b) = tokio::join!(
            send(&server, "DPoP", &token, &proofs),
            send(&server, "DPoP", &token, &proofs)
        );
        let mut statuses = [a.status, b.status];
        statuses.sort();
        assert_eq!(statuses, [200, 401]);
    }
}

/// A store that never answers: every operation fails, as Redis down does.
#[derive(Clone)]
struct DownStore;

impl Store for DownStore {
    type Increment = Ready<Result<Counter, StoreError>>;
    type Get = Ready<Result<Option<Counter>, StoreError>>;
    type SetIfAbsent = Ready<Result<bool, StoreError>>;
    fn increment(&self, _: &[u8], _: Duration) -> Self::Increment {
        std::future::ready(Err(StoreError::Timeout))
    }
    fn get(&self, _: &[u8]) -> Self::Get {
        std::future::ready(Err(StoreError::Timeout))
    }
    fn set_if_absent(&self, _: &[u8], _: Duration) -> Self::SetIfAbsent {
        std::future::ready(Err(StoreError::Timeout))
    }
}

#[tokio::test]
async fn a_replay_store_that_cannot_answer_makes_dpop_requests_503() {
    let server = serve_axum(app(Dpop::with_store(
        tokens(),
        options(Mode::Allowed),
        DownStore,
    )))
    .await;
    let key = ClientKey::es256();
    let bound = token(Some(&key.jkt));
    let proof = Proof::new(&key, &bound).sign(&key);
    let res = send(&server, "DPoP", &bound, &[&proof]).await;
    assert_eq!(res.status, 503);
    assert_eq!(res.challenges, Vec::<String>::new());
    // Bearer requests do not need the store.
    assert_eq!(send(&server, "Bearer", &token(None), &[]).await.status, 200);
}

#[cfg(feature = "redis")]
mod redis_shared {
    use super::*;
    use crate::redis_server::Redis;
    use mcp_server_auth::store::{RedisOptions, RedisStore};

    async fn instance(redis: &Redis) -> TestServer {
        let url = redis.url();
        let mut options = RedisOptions::default();
        options.timeout = Duration::from_millis(500);
        let store = RedisStore::connect(&url, options).await.unwrap();
        serve_axum(app(Dpop::with_store(
            tokens(),
            super::options(Mode::Allowed),
            store,
        )))
        .await
    }

    #[tokio::test]
    async fn a_proof_accepted_by_one_instance_is_refused_by_another_sharing_redis_and_redis_down_is_503()
     {
        let mut redis = Redis::start();
        let one = instance(&redis).await;
        let two = instance(&redis).await;
        let key = ClientKey::es256();
        let token = token(Some(&key.jkt));
        let proof = Proof::new(&key, &token).sign(&key);
        assert_eq!(send(&one, "DPoP", &token, &[&proof]).await, ok(&key));
        assert_eq!(send(&two, "DPoP", &token, &[&proof]).await, bad_proof());
        let fresh = Proof::new(&key, &token).sign(&key);
        assert_eq!(send(&two, "DPoP", &token, &[&fresh]).await, ok(&key));

        redis.stop();
        let fresh = Proof::new(&key, &token).sign(&key);
        let res = send(&one, "DPoP", &token, &[&fresh]).await;
        assert_eq!(res.status, 503, "{res:?}");
    }
}
