//! Signature checks with keys parsed once, into the crypto backend's own verification keys.
//!
//! Why not `jsonwebtoken::crypto::verify`: it builds a verifier per call from the raw key
//! material (a boxed verifier, an HMAC key schedule, and for RSA the public key itself, parsed
//! from DER or rebuilt from `n` and `e` on every token), and decodes the signature into a fresh
//! `Vec`. Here each [`JwtKey`](super::JwtKey) parses its material once, when it is added, into
//! the backend's verification key for its one algorithm, so a token costs the backend's
//! verification alone:
//! - `aws-lc-rs` (the default; it wins when both backends are on, as in
//!   [`install_crypto_provider`](super::install_crypto_provider)): a `ParsedPublicKey` for
//!   RSA, ECDSA and Ed25519, an `hmac::Key` for HMAC;
//! - `rust-crypto`: `rsa`'s PKCS#1 v1.5 and PSS verifying keys, `p256` / `p384` ECDSA and
//!   `ed25519-dalek` verifying keys, and `hmac`'s keyed state.
//!
//! The parameters are those jsonwebtoken uses (RFC 7518 §3: RSA keys of 2048 bits or more with
//! aws-lc-rs, PSS salt the hash length, fixed-size `r || s` ECDSA signatures), and HMAC tags are
//! compared in constant time by the backend. Key material the backend cannot read is kept as a
//! key that verifies nothing, as before: tokens naming it are refused as badly signed.
//!
//! ```
//! use mcp_server_auth::jwt::{Algorithm, KeySet};
//!
//! // The key is parsed here, once; verifying a token no longer parses it.
//! let keys = KeySet::new()
//!     .add_hmac_secret(Some("k1"), Algorithm::HS256, b"0123456789abcdef0123456789abcdef")
//!     .unwrap();
//! assert_eq!(keys.len(), 1);
//! ```

use jsonwebtoken::{Algorithm, DecodingKey};

use super::base64url;

/// The largest signature of a supported algorithm: RSA with an 8192-bit modulus.
const MAX_SIGNATURE_BYTES: usize = 1024;
/// The largest signature of a non-RSA algorithm: ES384's `r || s` (HS512's tag is 64 bytes).
const SMALL_SIGNATURE_BYTES: usize = 96;

/// The signature is not Base64url (without padding): the token is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Malformed;

/// Decodes the signature (the third part of a compact JWS) on the stack, and gives it to `check`.
/// A signature longer than any supported one is not given to `check` (nothing could verify it):
/// the answer is then `R::default()`.
pub(crate) fn with_signature<R: Default>(
    encoded: &str,
    check: impl FnOnce(&[u8]) -> R,
) -> Result<R, Malformed> {
    let encoded = encoded.as_bytes();
    let len = base64url::decoded_len(encoded.len()).ok_or(Malformed)?;
    if len <= SMALL_SIGNATURE_BYTES {
        decode_into(encoded, &mut [0; SMALL_SIGNATURE_BYTES], check)
    } else if len <= MAX_SIGNATURE_BYTES {
        decode_into(encoded, &mut [0; MAX_SIGNATURE_BYTES], check)
    } else {
        // Only tell a malformed signature from one that is merely wrong.
        match base64url::decode(encoded, &mut vec![0; len]) {
            Some(_) => Ok(R::default()),
            None => Err(Malformed),
        }
    }
}

fn decode_into<R: Default>(
    encoded: &[u8],
    buf: &mut [u8],
    check: impl FnOnce(&[u8]) -> R,
) -> Result<R, Malformed> {
    let len = base64url::decode(encoded, buf).ok_or(Malformed)?;
    Ok(check(&buf[..len]))
}

/// A key parsed into the backend's verification key for one algorithm.
pub(crate) struct PreparedKey(Option<backend::Key>);

impl PreparedKey {
    /// Parses `key` for `alg`. Material the backend cannot read gives a key that verifies
    /// nothing.
    pub(crate) fn new(alg: Algorithm, key: &DecodingKey) -> Self {
        Self(backend::Key::new(alg, key))
    }

    /// Whether `signature` is a valid signature of `message` under this key.
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        self.0
            .as_ref()
            .is_some_and(|key| key.verify(message, signature))
    }
}

#[cfg(feature = "aws-lc-rs")]
use aws_lc as backend;
#[cfg(not(any(feature = "aws-lc-rs", feature = "rust-crypto")))]
use none as backend;
#[cfg(all(feature = "rust-crypto", not(feature = "aws-lc-rs")))]
use rust_crypto as backend;

#[cfg(feature = "aws-lc-rs")]
mod aws_lc {
    use aws_lc_rs::{
        hmac,
        signature::{self as sig, ParsedPublicKey, RsaParameters, RsaPublicKeyComponents},
    };
    use jsonwebtoken::{Algorithm, DecodingKey, DecodingKeyKind};

    pub(super) enum Key {
        Public(ParsedPublicKey),
        /// Boxed: aws-lc's HMAC state is large.
        Hmac(Box<hmac::Key>),
    }

    fn rsa(alg: Algorithm) -> Option<&'static RsaParameters> {
        Some(match alg {
            Algorithm::RS256 => &sig::RSA_PKCS1_2048_8192_SHA256,
            Algorithm::RS384 => &sig::RSA_PKCS1_2048_8192_SHA384,
            Algorithm::RS512 => &sig::RSA_PKCS1_2048_8192_SHA512,
            Algorithm::PS256 => &sig::RSA_PSS_2048_8192_SHA256,
            Algorithm::PS384 => &sig::RSA_PSS_2048_8192_SHA384,
            Algorithm::PS512 => &sig::RSA_PSS_2048_8192_SHA512,
            _ => return None,
        })
    }

    impl Key {
        pub(super) fn new(alg: Algorithm, key: &DecodingKey) -> Option<Self> {
            let hmac = |a| {
                Some(Key::Hmac(Box::new(hmac::Key::new(
                    a,
                    key.try_get_as_bytes().ok()?,
                ))))
            };
            let public = |a: &'static dyn sig::VerificationAlgorithm| {
                let bytes = key.try_get_as_bytes().ok()?;
                ParsedPublicKey::new(a, bytes).ok().map(Key::Public)
            };
            match alg {
                Algorithm::HS256 => hmac(hmac::HMAC_SHA256),
                Algorithm::HS384 => hmac(hmac::HMAC_SHA384),
                Algorithm::HS512 => hmac(hmac::HMAC_SHA512),
                Algorithm::ES256 => public(&sig::ECDSA_P256_SHA256_FIXED),
                Algorithm::ES384 => public(&sig::ECDSA_P384_SHA384_FIXED),
                Algorithm::EdDSA => public(&sig::ED25519),
                _ => {
                    let params = rsa(alg)?;
                    match key.kind() {
                        DecodingKeyKind::SecretOrDer(_) => public(params),
                        DecodingKeyKind::RsaModulusExponent { n, e } => {
                            RsaPublicKeyComponents { n, e }
                                .to_parsed_public_key(params)
                                .ok()
                                .map(Key::Public)
                        }
                    }
                }
            }
        }

        pub(super) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
            match self {
                Key::Public(key) => key.verify_sig(message, signature).is_ok(),
                // Constant-time comparison of the tags (aws-lc's `CRYPTO_memcmp`).
                Key::Hmac(key) => hmac::verify(key, message, signature).is_ok(),
            }
        }
    }
}

#[cfg(all(feature = "rust-crypto", not(feature = "aws-lc-rs")))]
mod rust_crypto {
    use ed25519_dalek::Verifier as _;
    use hmac::{Hmac, Mac};
    use jsonwebtoken::{Algorithm, DecodingKey, DecodingKeyKind};
    use rsa::{BigUint, RsaPublicKey, pkcs1::DecodeRsaPublicKey, pkcs1v15, pss};
    use sha2::{Sha256, Sha384, Sha512};

    pub(super) enum Key {
        Rs256(pkcs1v15::VerifyingKey<Sha256>),
        Rs384(pkcs1v15::VerifyingKey<Sha384>),
        Rs512(pkcs1v15::VerifyingKey<Sha512>),
        Ps256(pss::VerifyingKey<Sha256>),
        Ps384(pss::VerifyingKey<Sha384>),
        Ps512(pss::VerifyingKey<Sha512>),
        Es256(p256::ecdsa::VerifyingKey),
        Es384(p384::ecdsa::VerifyingKey),
        EdDsa(ed25519_dalek::VerifyingKey),
        Hs256(Hmac<Sha256>),
        Hs384(Hmac<Sha384>),
        Hs512(Hmac<Sha512>),
    }

    fn rsa_key(key: &DecodingKey) -> Option<RsaPublicKey> {
        match key.kind() {
            DecodingKeyKind::SecretOrDer(der) => RsaPublicKey::from_pkcs1_der(der).ok(),
            DecodingKeyKind::RsaModulusExponent { n, e } => {
                RsaPublicKey::new(BigUint::from_bytes_be(n), BigUint::from_bytes_be(e)).ok()
            }
        }
    }

    impl Key {
        pub(super) fn new(alg: Algorithm, key: &DecodingKey) -> Option<Self> {
            let bytes = || key.try_get_as_bytes().ok();
            Some(match alg {
                Algorithm::RS256 => Key::Rs256(pkcs1v15::VerifyingKey::new(rsa_key(key)?)),
                Algorithm::RS384 => Key::Rs384(pkcs1v15::VerifyingKey::new(rsa_key(key)?)),
                Algorithm::RS512 => Key::Rs512(pkcs1v15::VerifyingKey::new(rsa_key(key)?)),
                Algorithm::PS256 => Key::Ps256(pss::VerifyingKey::new(rsa_key(key)?)),
                Algorithm::PS384 => Key::Ps384(pss::VerifyingKey::new(rsa_key(key)?)),
                Algorithm::PS512 => Key::Ps512(pss::VerifyingKey::new(rsa_key(key)?)),
                Algorithm::ES256 => {
                    Key::Es256(p256::ecdsa::VerifyingKey::from_sec1_bytes(bytes()?).ok()?)
                }
                Algorithm::ES384 => {
                    Key::Es384(p384::ecdsa::VerifyingKey::from_sec1_bytes(bytes()?).ok()?)
                }
                Algorithm::EdDSA => Key::EdDsa(
                    ed25519_dalek::VerifyingKey::from_bytes(bytes()?.try_into().ok()?).ok()?,
                ),
                Algorithm::HS256 => Key::Hs256(Hmac::new_from_slice(bytes()?).ok()?),
                Algorithm::HS384 => Key::Hs384(Hmac::new_from_slice(bytes()?).ok()?),
                Algorithm::HS512 => Key::Hs512(Hmac::new_from_slice(bytes()?).ok()?),
                _ => return None,
            })
        }

        pub(super) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
            fn rsa<V: rsa::signature::Verifier<S>, S>(k: &V, m: &[u8], s: &[u8]) -> bool
            where
                S: for<'a> TryFrom<&'a [u8]>,
            {
                S::try_from(s).is_ok_and(|s| k.verify(m, &s).is_ok())
            }
            // `verify_slice` compares the tags in constant time (`subtle`).
            fn hmac<M: Mac + Clone>(k: &M, m: &[u8], s: &[u8]) -> bool {
                let mut mac = k.clone();
                mac.update(m);
                mac.verify_slice(s).is_ok()
            }
            match self {
                Key::Rs256(k) => rsa::<_, pkcs1v15::Signature>(k, message, signature),
                Key::Rs384(k) => rsa::<_, pkcs1v15::Signature>(k, message, signature),
                Key::Rs512(k) => rsa::<_, pkcs1v15::Signature>(k, message, signature),
                Key::Ps256(k) => rsa::<_, pss::Signature>(k, message, signature),
                Key::Ps384(k) => rsa::<_, pss::Signature>(k, message, signature),
                Key::Ps512(k) => rsa::<_, pss::Signature>(k, message, signature),
                Key::Es256(k) => p256::ecdsa::Signature::from_slice(signature)
                    .is_ok_and(|s| k.verify(message, &s).is_ok()),
                Key::Es384(k) => p384::ecdsa::Signature::from_slice(signature)
                    .is_ok_and(|s| k.verify(message, &s).is_ok()),
                Key::EdDsa(k) => ed25519_dalek::Signature::from_slice(signature)
                    .is_ok_and(|s| k.verify(message, &s).is_ok()),
                Key::Hs256(k) => hmac(k, message, signature),
                Key::Hs384(k) => hmac(k, message, signature),
                Key::Hs512(k) => hmac(k, message, signature),
            }
        }
    }
}

#[cfg(not(any(feature = "aws-lc-rs", feature = "rust-crypto")))]
mod none {
    use jsonwebtoken::{Algorithm, DecodingKey};

    /// No backend: no key verifies anything (and `JwtVerifierBuilder::build` refuses).
    pub(super) enum Key {}

    impl Key {
        pub(super) fn new(_: Algorithm, _: &DecodingKey) -> Option<Self> {
            None
        }

        pub(super) fn verify(&self, _: &[u8], _: &[u8]) -> bool {
            match *self {}
        }
    }
}

// The tests sign with jsonwebtoken, which needs a crypto backend.
#[cfg(all(test, any(feature = "aws-lc-rs", feature = "rust-crypto")))]
mod tests {
    use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
    use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, crypto::sign};

    use super::{Malformed, PreparedKey, with_signature};

    const SECRET: &[u8] = b"unit tests only: an HMAC secret of 48 bytes ....";
    const MESSAGE: &[u8] = b"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyIn0";

    /// Every algorithm with a test key: its signing key and its verification key.
    fn keys() -> Vec<(Algorithm, EncodingKey, DecodingKey)> {
        let rsa = || {
            (
                EncodingKey::from_rsa_pem(include_bytes!(
                    "../../tests/fixtures/jwt/rsa_private.pem"
                ))
                .unwrap(),
                DecodingKey::from_rsa_pem(include_bytes!(
                    "../../tests/fixtures/jwt/rsa_public.pem"
                ))
                .unwrap(),
            )
        };
        let mut all = Vec::new();
        for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
            all.push((
                alg,
                EncodingKey::from_secret(SECRET),
                DecodingKey::from_secret(SECRET),
            ));
        }
        for alg in [
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::PS256,
            Algorithm::PS384,
            Algorithm::PS512,
        ] {
            let (e, d) = rsa();
            all.push((alg, e, d));
        }
        all.push((
            Algorithm::ES256,
            EncodingKey::from_ec_pem(include_bytes!("../../tests/fixtures/jwt/ec_private.pem"))
                .unwrap(),
            DecodingKey::from_ec_pem(include_bytes!("../../tests/fixtures/jwt/ec_public.pem"))
                .unwrap(),
        ));
        all.push((
            Algorithm::EdDSA,
            EncodingKey::from_ed_pem(include_bytes!(
                "../../tests/fixtures/jwt/ed25519_private.pem"
            ))
            .unwrap(),
            DecodingKey::from_ed_pem(include_bytes!(
                "../../tests/fixtures/jwt/ed25519_public.pem"
            ))
            .unwrap(),
        ));
        all
    }

    fn signature(alg: Algorithm, key: &EncodingKey) -> Vec<u8> {
        crate::jwt::install_crypto_provider().unwrap();
        URL_SAFE_NO_PAD
            .decode(sign(MESSAGE, key, alg).unwrap())
            .unwrap()
    }

    #[test]
    fn a_prepared_key_verifies_its_signatures_and_refuses_any_change() {
        for (alg, encoding, decoding) in keys() {
            let key = PreparedKey::new(alg, &decoding);
            let mut sig = signature(alg, &encoding);
            assert!(key.verify(MESSAGE, &sig), "{alg:?}");
            assert!(
                !key.verify(b"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9", &sig),
                "{alg:?}"
            );
            assert!(!key.verify(MESSAGE, &sig[..sig.len() - 1]), "{alg:?}");
            assert!(!key.verify(MESSAGE, &[]), "{alg:?}");
            let middle = sig.len() / 2;
            sig[middle] ^= 1;
            assert!(!key.verify(MESSAGE, &sig), "{alg:?}");
        }
    }

    #[test]
    fn a_prepared_key_verifies_with_its_one_algorithm_only() {
        let all = keys();
        for (alg, encoding, _) in &all {
            let sig = signature(*alg, encoding);
            for (other, _, decoding) in all.iter().filter(|(other, ..)| other != alg) {
                assert!(
                    !PreparedKey::new(*other, decoding).verify(MESSAGE, &sig),
                    "a {alg:?} signature verified as {other:?}"
                );
            }
        }
    }

    #[test]
    fn key_material_the_backend_cannot_read_verifies_nothing() {
        let (_, encoding, _) = &keys()[3]; // RS256
        let sig = signature(Algorithm::RS256, encoding);
        for (alg, decoding) in [
            (Algorithm::RS256, DecodingKey::from_rsa_der(b"not DER")),
            (
                Algorithm::RS256,
                DecodingKey::from_rsa_raw_components(&[0, 1], &[1, 0, 1]),
            ),
            (Algorithm::ES256, DecodingKey::from_ec_der(&[4; 65])),
            (Algorithm::EdDSA, DecodingKey::from_ed_der(&[1; 31])),
        ] {
            let key = PreparedKey::new(alg, &decoding);
            assert!(key.0.is_none(), "{alg:?}");
            assert!(!key.verify(MESSAGE, &sig), "{alg:?}");
        }
    }

    #[test]
    fn a_signature_not_in_base64url_is_malformed_and_an_overlong_one_reaches_no_key() {
        for bad in ["a+b/", "abc=", "ab\n", "A", "A".repeat(1997).as_str()] {
            assert_eq!(with_signature(bad, |_| true), Err(Malformed), "{bad:?}");
        }
        // Every size up to the largest RSA signature (8192 bits) reaches the check intact.
        for len in [0, 32, 95, 96, 97, 98, 512, 1023, 1024] {
            let sig: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let encoded = URL_SAFE_NO_PAD.encode(&sig);
            assert_eq!(with_signature(&encoded, |s| s == sig), Ok(true), "{len}");
        }
        // Longer: valid, but nothing could verify it (the check is not run).
        let long = URL_SAFE_NO_PAD.encode([7; 1100]);
        assert_eq!(with_signature(&long, |_| true), Ok(false));
    }
}
