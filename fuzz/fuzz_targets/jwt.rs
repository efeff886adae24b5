//! Arbitrary text as a token → `JwtVerifier::verify_token`, against a fixed key set (HS256
//! secret, RS256, ES256 and EdDSA public keys), with the token cache off. It must never panic,
//! must answer at once, and may refuse only with `invalid_token`.
#![no_main]

#[path = "common/jwt.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let token = String::from_utf8_lossy(data);
    let _ = common::verify_both(&token);
});
