//! Structure-aware JWT fuzzing: the input is `header JSON \n claims JSON \n signature mode`.
//! Header and claims are base64url-encoded and joined with dots; the mode line says how to sign:
//! `hs` (the trusted HS256 secret), `ed` (the trusted Ed25519 key), `es` (the trusted P-256
//! key), `raw:<text>` (the text itself as the signature), anything else (base64url of that
//! line). Correctly signed tokens get through the signature check, so the fuzzer reaches claim
//! validation; a token signed with the key its header names must never be refused as a bad
//! signature.
#![no_main]

#[path = "common/jwt.rs"]
mod common;

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey};
use libfuzzer_sys::fuzz_target;
use mcp_server_auth::verifier::{Invalid, Rejection};
use std::sync::OnceLock;

struct Signers {
    hs: EncodingKey,
    ed: EncodingKey,
    es: EncodingKey,
}

fn signers() -> &'static Signers {
    static S: OnceLock<Signers> = OnceLock::new();
    S.get_or_init(|| {
        mcp_server_auth::jwt::install_crypto_provider().unwrap();
        Signers {
            hs: EncodingKey::from_secret(common::HMAC_SECRET),
            ed: EncodingKey::from_ed_pem(common::ED_PRIVATE).unwrap(),
            es: EncodingKey::from_ec_pem(common::EC_PRIVATE).unwrap(),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |&b| b == b'\n');
    let header = parts.next().unwrap_or_default();
    let claims = parts.next().unwrap_or_default();
    let mode = parts.next().unwrap_or_default();
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let s = signers();
    let signed = match mode {
        b"hs" => Some((&s.hs, Algorithm::HS256, "hs-1")),
        b"ed" => Some((&s.ed, Algorithm::EdDSA, "ed-1")),
        b"es" => Some((&s.es, Algorithm::ES256, "ec-1")),
        _ => None,
    };
    let signature = match (signed, mode.strip_prefix(b"raw:")) {
        (Some((key, alg, _)), _) => {
            jsonwebtoken::crypto::sign(message.as_bytes(), key, alg).unwrap()
        }
        (None, Some(raw)) => String::from_utf8_lossy(raw).into_owned(),
        (None, None) => URL_SAFE_NO_PAD.encode(mode),
    };
    let token = format!("{message}.{signature}");
    let [a, _b] = common::verify_both(&token);

    // Signed with the very key the header names: the signature check must pass (verifier A:
    // one issuer, so the key is found by kid, or as the only key of its algorithm).
    if let Some((_, alg, kid)) = signed
        && let Ok(h) = jsonwebtoken::decode_header(&token)
        && h.alg == alg
        && h.kid.as_deref().is_none_or(|k| k == kid)
    {
        assert!(
            !matches!(a, Err(Rejection::Invalid(Invalid::BadSignature))),
            "a correctly signed token was refused as a bad signature: {token}"
        );
    }
});
