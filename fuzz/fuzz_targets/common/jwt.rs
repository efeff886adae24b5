//! The fixed keys and verifiers of the JWT targets (test-only keys from tests/fixtures/jwt).

use std::{
    future::Future,
    pin::pin,
    task::{Context, Poll, Waker},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use mcp_server_auth::{
    AuthInfo, AuthMethod, ResourceUrl,
    jwt::{Algorithm, Issuer, JwtVerifier, KeySet},
    verifier::Rejection,
};
use serde_json::Value;

/// The test-only HMAC secret of tests/jwt.rs.
pub const HMAC_SECRET: &[u8] = b"test-only-hmac-secret-0123456789-abcdefghij";
pub const RSA_PUBLIC: &[u8] = include_bytes!("../../../tests/fixtures/jwt/rsa_public.pem");
pub const EC_PUBLIC: &[u8] = include_bytes!("../../../tests/fixtures/jwt/ec_public.pem");
pub const ED_PUBLIC: &[u8] = include_bytes!("../../../tests/fixtures/jwt/ed25519_public.pem");
pub const B_EC_PUBLIC: &[u8] = include_bytes!("../../../tests/fixtures/jwt/issuer_b_ec_public.pem");
#[allow(dead_code)]
pub const EC_PRIVATE: &[u8] = include_bytes!("../../../tests/fixtures/jwt/ec_private.pem");
#[allow(dead_code)]
pub const ED_PRIVATE: &[u8] = include_bytes!("../../../tests/fixtures/jwt/ed25519_private.pem");

pub const ISSUER_A: &str = "https://auth.example.com";
pub const ISSUER_B: &str = "https://issuer-b.example";
pub const RESOURCE: &str = "https://mcp.example.com/mcp";
pub const EXTRA_AUDIENCE: &str = "api://mcp";

pub fn keys_a() -> KeySet {
    KeySet::new()
        .add_hmac_secret(Some("hs-1"), Algorithm::HS256, HMAC_SECRET)
        .unwrap()
        .add_pem(Some("rsa-1"), Algorithm::RS256, RSA_PUBLIC)
        .unwrap()
        .add_pem(Some("ec-1"), Algorithm::ES256, EC_PUBLIC)
        .unwrap()
        .add_pem(Some("ed-1"), Algorithm::EdDSA, ED_PUBLIC)
        .unwrap()
}

/// Verifier A: one issuer, default settings, no token cache.
pub fn verifier_a() -> JwtVerifier {
    JwtVerifier::builder(ResourceUrl::parse(RESOURCE).unwrap())
        .issuer(Issuer::with_keys(ISSUER_A, keys_a()))
        .no_token_cache()
        .build()
        .unwrap()
}

/// Verifier B: two issuers (key lookup by the token's `iss`), strict RFC 9068, an extra
/// audience, no leeway, three scope claims and a claims check of its own.
pub fn verifier_b() -> JwtVerifier {
    let b = KeySet::new()
        .add_pem(Some("b-ec-1"), Algorithm::ES256, B_EC_PUBLIC)
        .unwrap();
    JwtVerifier::builder(ResourceUrl::parse(RESOURCE).unwrap())
        .issuer(Issuer::with_keys(ISSUER_A, keys_a()))
        .issuer(Issuer::with_keys(ISSUER_B, b))
        .strict_rfc9068(true)
        .audience(EXTRA_AUDIENCE)
        .leeway(Duration::ZERO)
        .scope_claims(["scope", "scp", "roles"])
        .claims_check(|c| match c.get("blocked") {
            Some(Value::Bool(true)) => Err("blocked"),
            _ => Ok(()),
        })
        .no_token_cache()
        .build()
        .unwrap()
}

/// Polls once: a verifier with static keys decides at once.
pub fn at_once<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("a verifier with static keys must answer at once"),
    }
}

/// Verifies with both verifiers and checks what an accepted token must satisfy.
pub fn verify_both(token: &str) -> [Result<AuthInfo, Rejection>; 2] {
    let a = at_once(verifier_a_cached().verify_token(token));
    let b = at_once(verifier_b_cached().verify_token(token));
    for (r, strict) in [(&a, false), (&b, true)] {
        match r {
            Ok(info) => check_accepted(info, strict),
            // Static keys: never "unavailable", and a bearer token is always credentials.
            Err(Rejection::Invalid(_)) => {}
            Err(e) => panic!("unexpected rejection {e:?}"),
        }
    }
    [a, b]
}

fn verifier_a_cached() -> &'static JwtVerifier {
    static V: std::sync::OnceLock<JwtVerifier> = std::sync::OnceLock::new();
    V.get_or_init(verifier_a)
}

fn verifier_b_cached() -> &'static JwtVerifier {
    static V: std::sync::OnceLock<JwtVerifier> = std::sync::OnceLock::new();
    V.get_or_init(verifier_b)
}

fn check_accepted(info: &AuthInfo, strict: bool) {
    assert_eq!(info.method(), AuthMethod::Jwt);
    let claims = info.claims().expect("a JWT identity carries its claims");
    let iss = claims.get("iss").and_then(Value::as_str).expect("iss");
    assert_eq!(info.issuer(), Some(iss));
    assert!(iss == ISSUER_A || (strict && iss == ISSUER_B));
    let resource = ResourceUrl::parse(RESOURCE).unwrap();
    let ours = |a: &str| resource.matches(a) || (strict && a == EXTRA_AUDIENCE);
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => ours(a),
        Some(Value::Array(l)) => l.iter().filter_map(Value::as_str).any(ours),
        _ => false,
    };
    assert!(aud_ok, "accepted a token for another audience: {claims:?}");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let exp = info.expires_at().expect("exp");
    let exp = exp.duration_since(UNIX_EPOCH).unwrap().as_secs();
    let leeway = if strict { 0 } else { 60 };
    // A second of slack: the verifier read the clock a moment before this check did.
    assert!(exp + leeway + 1 >= now, "accepted an expired token");
    let sub = claims.get("sub").and_then(Value::as_str);
    let client = claims
        .get("client_id")
        .and_then(Value::as_str)
        .or_else(|| claims.get("azp").and_then(Value::as_str));
    assert_eq!(Some(info.subject()), sub.or(client));
    if strict {
        assert!(sub.is_some() && claims.get("jti").and_then(Value::as_str).is_some());
        assert!(claims.get("client_id").and_then(Value::as_str).is_some());
        assert!(claims.get("iat").is_some());
        assert_ne!(claims.get("blocked"), Some(&Value::Bool(true)));
    }
    // Every scope granted is written in one of the scope claims.
    let names: &[&str] = if strict {
        &["scope", "scp", "roles"]
    } else {
        &["scope", "scp"]
    };
    for s in info.scopes().iter() {
        let written = names.iter().any(|n| match claims.get(*n) {
            Some(Value::String(v)) => v.split(' ').any(|x| x == s),
            Some(Value::Array(l)) => l.iter().any(|x| x.as_str() == Some(s)),
            _ => false,
        });
        assert!(written, "scope {s:?} granted but not in the claims");
    }
}
