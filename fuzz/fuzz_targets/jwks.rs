//! Arbitrary bytes as a JWKS document → `KeySet::from_jwks_json_counting` (and the typed
//! `from_jwk_set`). Every key is counted as read or skipped, no symmetric key is ever taken from
//! a JWKS, and a verifier builds from whatever set comes out.
#![no_main]

use std::{
    pin::pin,
    task::{Context, Poll, Waker},
};

use libfuzzer_sys::fuzz_target;
use mcp_server_auth::{
    ResourceUrl,
    jwt::{Algorithm, Issuer, JwtVerifier, KeySet},
    verifier::Rejection,
};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(json) = std::str::from_utf8(data) else {
        return;
    };
    let Ok((set, skipped)) = KeySet::from_jwks_json_counting(json) else {
        return;
    };
    let value: Value = serde_json::from_str(json).expect("an accepted JWKS is JSON");
    let keys = value
        .get("keys")
        .and_then(Value::as_array)
        .expect("an accepted JWKS has a keys array");
    assert_eq!(
        set.len() + skipped,
        keys.len(),
        "every key is read or skipped"
    );
    for key in set.iter() {
        assert!(
            !matches!(
                key.algorithm(),
                Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
            ),
            "a JWKS key became an HMAC secret"
        );
        let _ = (key.kid(), format!("{key:?}"));
    }
    // The typed path agrees on the keys it reads. (From the same `Value`: a JWK with a repeated
    // member is read with the last one, RFC 7517 §4, by `from_jwks_json`, whereas
    // jsonwebtoken's own `Jwk` deserializer, through `serde(flatten)`, may keep another.)
    if let Ok(typed) = serde_json::from_value::<jsonwebtoken::jwk::JwkSet>(value.clone()) {
        assert_eq!(KeySet::from_jwk_set(&typed).len(), set.len());
    }
    if set.is_empty() {
        return;
    }
    let verifier = JwtVerifier::builder(ResourceUrl::parse("https://mcp.example.com/mcp").unwrap())
        .issuer(Issuer::with_keys("https://auth.example.com", set))
        .no_token_cache()
        .build()
        .expect("a verifier builds from any non-empty JWKS key set");
    // A token naming the first key: it is looked up, and the answer comes at once.
    let token =
        "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIn0.eyJpc3MiOiJodHRwczovL2F1dGguZXhhbXBsZS5jb20ifQ.c2ln";
    let mut f = pin!(verifier.verify_token(token));
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(Err(Rejection::Invalid(_))) => {}
        other => panic!(
            "unexpected {:?}",
            other.map(|r| r.map(|i| i.subject().to_owned()))
        ),
    }
});
