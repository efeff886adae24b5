//! The proof's public key: its `jwk` header (RFC 9449 §4.2) read into the crypto backend's
//! verification key for the proof's `alg`, with its RFC 7638 thumbprint.
//!
//! The key must be public (no private member, RFC 9449 §4.3 check 7), asymmetric (no `oct`
//! key), of the type and curve `alg` names, with coordinates of the curve's exact size, and
//! for RSA a modulus of at least 2048 bits. It is parsed into the same verification keys the
//! JWT verifier uses ([`crate::jwt`]'s `signature` module), once per client: the result is
//! kept with the proof header it came in ([`super::keys`]).

use jsonwebtoken::{Algorithm, DecodingKey};

use super::{
    ProofError,
    thumbprint::{Jkt, thumbprint},
};
use crate::jwt::{
    base64url,
    json::{self, Json},
    signature::PreparedKey,
};

/// The members of a JWK that hold private key material (RFC 7518 §6.2.2, §6.3.2; RFC 8037
/// §2), or a symmetric key (`k`, RFC 7518 §6.4.1).
const PRIVATE: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// The smallest RSA modulus accepted, in bits.
const MIN_RSA_BITS: usize = 2048;
/// The largest RSA modulus read, in bytes (8192 bits).
const MAX_RSA_BYTES: usize = 1024;

/// A proof key ready to verify, and its thumbprint.
pub(crate) struct ProofKey {
    pub(crate) key: PreparedKey,
    pub(crate) jkt: Jkt,
}

/// The string members of a JWK this module reads.
#[derive(Default)]
struct Members<'a> {
    kty: Option<Json<'a>>,
    crv: Option<Json<'a>>,
    x: Option<Json<'a>>,
    y: Option<Json<'a>>,
    n: Option<Json<'a>>,
    e: Option<Json<'a>>,
}

/// A member's value as Base64url text (no escape can occur in one).
fn b64_member<'a>(value: Option<Json<'a>>) -> Result<&'a str, ProofError> {
    match value {
        Some(Json::Str {
            quoted,
            escaped: false,
        }) => Ok(&quoted[1..quoted.len() - 1]),
        _ => Err(ProofError::KeyMismatch),
    }
}

/// `b64` decoded into `out`, which it must fill exactly.
fn exact(b64: &str, out: &mut [u8]) -> Result<(), ProofError> {
    match base64url::decoded_len(b64.len()) {
        Some(len) if len == out.len() => {}
        _ => return Err(ProofError::KeyMismatch),
    }
    base64url::decode(b64.as_bytes(), out).ok_or(ProofError::KeyMismatch)?;
    Ok(())
}

/// Reads the `jwk` object `text` for `alg`.
pub(crate) fn read(text: &str, alg: Algorithm) -> Result<ProofKey, ProofError> {
    let mut m = Members::default();
    let (mut private, mut repeated) = (false, false);
    json::object(text, |member| {
        let name = member.name();
        if PRIVATE.contains(&&*name) {
            private = true;
        }
        let slot = match &*name {
            "kty" => &mut m.kty,
            "crv" => &mut m.crv,
            "x" => &mut m.x,
            "y" => &mut m.y,
            "n" => &mut m.n,
            "e" => &mut m.e,
            _ => return,
        };
        repeated |= slot.replace(member.value).is_some();
    })
    .ok_or(ProofError::Malformed)?;
    if repeated {
        return Err(ProofError::Malformed);
    }
    if private {
        return Err(ProofError::PrivateKey);
    }
    let kty = m
        .kty
        .and_then(|k| k.as_str())
        .ok_or(ProofError::KeyMismatch)?;
    let curve = |name: &str| match m.crv.and_then(|c| c.as_str()) {
        Some(c) if c == name => Ok(()),
        _ => Err(ProofError::KeyMismatch),
    };
    let (decoding, jkt) = match alg {
        Algorithm::ES256 | Algorithm::ES384 => {
            let (crv, size) = if alg == Algorithm::ES256 {
                ("P-256", 32)
            } else {
                ("P-384", 48)
            };
            if kty != "EC" {
                return Err(ProofError::KeyMismatch);
            }
            curve(crv)?;
            let (x, y) = (b64_member(m.x)?, b64_member(m.y)?);
            let mut point = [0u8; 97];
            point[0] = 0x04; // uncompressed (SEC 1 §2.3.3)
            exact(x, &mut point[1..1 + size])?;
            exact(y, &mut point[1 + size..1 + 2 * size])?;
            let jkt = thumbprint("EC", &[("crv", crv), ("x", x), ("y", y)]);
            (DecodingKey::from_ec_der(&point[..1 + 2 * size]), jkt)
        }
        Algorithm::EdDSA => {
            if kty != "OKP" {
                return Err(ProofError::KeyMismatch);
            }
            curve("Ed25519")?;
            let x = b64_member(m.x)?;
            let mut public = [0u8; 32];
            exact(x, &mut public)?;
            let jkt = thumbprint("OKP", &[("crv", "Ed25519"), ("x", x)]);
            (DecodingKey::from_ed_der(&public), jkt)
        }
        Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512 => {
            if kty != "RSA" {
                return Err(ProofError::KeyMismatch);
            }
            let (n, e) = (b64_member(m.n)?, b64_member(m.e)?);
            let n_len = base64url::decoded_len(n.len()).ok_or(ProofError::KeyMismatch)?;
            let e_len = base64url::decoded_len(e.len()).ok_or(ProofError::KeyMismatch)?;
            if n_len > MAX_RSA_BYTES || e_len > 8 || e_len == 0 {
                return Err(ProofError::WeakKey);
            }
            let mut modulus = vec![0u8; n_len];
            let mut exponent = [0u8; 8];
            exact(n, &mut modulus)?;
            exact(e, &mut exponent[..e_len])?;
            let leading = modulus.iter().take_while(|&&b| b == 0).count();
            let bits = modulus.get(leading).map_or(0, |&top| {
                (modulus.len() - leading - 1) * 8 + (8 - top.leading_zeros() as usize)
            });
            if bits < MIN_RSA_BITS {
                return Err(ProofError::WeakKey);
            }
            let jkt = thumbprint("RSA", &[("e", e), ("n", n)]);
            (
                DecodingKey::from_rsa_raw_components(&modulus, &exponent[..e_len]),
                jkt,
            )
        }
        _ => return Err(ProofError::Algorithm),
    };
    Ok(ProofKey {
        key: PreparedKey::new(alg, &decoding),
        jkt,
    })
}

#[cfg(test)]
mod tests {
    use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};

    use super::*;

    fn rsa(bits: usize) -> String {
        let mut n = vec![0xC5u8; bits / 8];
        n[0] |= 0x80;
        let n = URL_SAFE_NO_PAD.encode(n);
        format!(r#"{{"kty":"RSA","n":"{n}","e":"AQAB"}}"#)
    }

    fn ec(extra: &str) -> String {
        let c = URL_SAFE_NO_PAD.encode([1u8; 32]);
        format!(r#"{{"kty":"EC","crv":"P-256","x":"{c}","y":"{c}"{extra}}}"#)
    }

    #[test]
    fn an_rsa_key_shorter_than_2048_bits_is_weak() {
        assert_eq!(
            read(&rsa(1024), Algorithm::RS256).err(),
            Some(ProofError::WeakKey)
        );
        assert_eq!(
            read(&rsa(2040), Algorithm::PS256).err(),
            Some(ProofError::WeakKey)
        );
        assert!(read(&rsa(2048), Algorithm::RS256).is_ok());
    }

    #[test]
    fn private_or_symmetric_key_material_is_refused() {
        let d = URL_SAFE_NO_PAD.encode([2u8; 32]);
        let private = ec(&format!(r#","d":"{d}""#));
        assert_eq!(
            read(&private, Algorithm::ES256).err(),
            Some(ProofError::PrivateKey)
        );
        let oct = r#"{"kty":"oct","k":"c2VjcmV0"}"#;
        assert_eq!(
            read(oct, Algorithm::ES256).err(),
            Some(ProofError::PrivateKey)
        );
    }

    #[test]
    fn a_key_that_does_not_fit_the_algorithm_is_refused() {
        assert_eq!(
            read(&ec(""), Algorithm::ES384).err(),
            Some(ProofError::KeyMismatch)
        );
        assert_eq!(
            read(&ec(""), Algorithm::EdDSA).err(),
            Some(ProofError::KeyMismatch)
        );
        assert_eq!(
            read(&rsa(2048), Algorithm::ES256).err(),
            Some(ProofError::KeyMismatch)
        );
        let short = ec("").replace(&URL_SAFE_NO_PAD.encode([1u8; 32]), "AQ");
        assert_eq!(
            read(&short, Algorithm::ES256).err(),
            Some(ProofError::KeyMismatch)
        );
        assert_eq!(
            read(&ec(""), Algorithm::HS256).err(),
            Some(ProofError::Algorithm)
        );
        assert!(read(&ec(""), Algorithm::ES256).is_ok());
    }
}
