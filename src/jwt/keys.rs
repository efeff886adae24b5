//! Verification keys: each bound to exactly one algorithm and one issuer, parsed once.
//!
//! Keys come from PEM (RSA, EC P-256/P-384, Ed25519), a JWK, a JWKS document, or an HMAC secret
//! (an explicit opt-in). Never from a token's own header (`jku`, `x5u`, `jwk`, `x5c` are ignored).
//! A JWKS key without `alg` gets the one algorithm its type implies (RSA → RS256, P-256 → ES256,
//! P-384 → ES384, Ed25519 → EdDSA); symmetric (`oct`) keys in a JWKS document are skipped, so a
//! public key can never be used as an HMAC secret.
//!
//! ```
//! use mcp_server_auth::jwt::{Algorithm, KeySet};
//!
//! let jwks = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;
//! let keys = KeySet::from_jwks_json(jwks).unwrap();
//! assert_eq!(keys.len(), 1);
//! assert_eq!(keys.iter().next().unwrap().algorithm(), Algorithm::EdDSA);
//! ```

use std::{
    fmt,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

pub use jsonwebtoken::Algorithm;
use jsonwebtoken::{
    DecodingKey,
    jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse},
};

use super::signature::PreparedKey;

/// The smallest HMAC secret accepted: 32 bytes (RFC 7518 §3.2 asks for at least the hash size).
pub const MIN_HMAC_SECRET_BYTES: usize = 32;

/// What is wrong with a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The PEM or JWK could not be parsed as a key of the named kind.
    #[error("cannot read the key: {0}")]
    Parse(String),
    /// The algorithm does not fit the key's type.
    #[error("algorithm {alg:?} does not fit a {kind} key")]
    AlgorithmMismatch {
        /// The algorithm.
        alg: Algorithm,
        /// The key's kind.
        kind: &'static str,
    },
    /// The JWKS document is not valid JSON of the right shape.
    #[error("the JWKS document is not valid: {0}")]
    Jwks(String),
    /// An HMAC secret is too short to be a key.
    #[error("an HMAC secret must have at least {MIN_HMAC_SECRET_BYTES} bytes of random data")]
    WeakSecret,
    /// An HMAC algorithm was asked for with a non-HMAC key, or the reverse.
    #[error("{0:?} is not an HMAC algorithm (HS256, HS384, HS512)")]
    NotHmac(Algorithm),
}

/// The family of a key, for messages.
fn family_name(alg: Algorithm) -> &'static str {
    use Algorithm::*;
    match alg {
        HS256 | HS384 | HS512 => "HMAC",
        RS256 | RS384 | RS512 | PS256 | PS384 | PS512 => "RSA",
        ES256 | ES384 => "EC",
        EdDSA => "Ed25519",
        _ => "unsupported",
    }
}

/// One verification key.
pub struct JwtKey {
    kid: Option<String>,
    alg: Algorithm,
    /// The key material as read, compared when a fetched key set replaces another.
    #[cfg(feature = "remote-jwks")]
    decoding: DecodingKey,
    /// The material parsed once into the crypto backend's verification key for `alg`.
    prepared: PreparedKey,
    /// Set when the key leaves its key set, so that cached verdicts it signed are dropped.
    retired: AtomicBool,
}

impl fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl JwtKey {
    fn new(kid: Option<String>, alg: Algorithm, decoding: DecodingKey) -> Self {
        Self {
            kid,
            alg,
            prepared: PreparedKey::new(alg, &decoding),
            #[cfg(feature = "remote-jwks")]
            decoding,
            retired: AtomicBool::new(false),
        }
    }

    /// The key id, if any.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The one algorithm this key verifies.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// Whether `signature` is this key's signature of `message` with its one algorithm.
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        self.prepared.verify(message, signature)
    }

    /// Whether the key has left its key set.
    pub(crate) fn is_retired(&self) -> bool {
        self.retired.load(Ordering::Relaxed)
    }

    #[cfg(feature = "remote-jwks")]
    pub(crate) fn retire(&self) {
        self.retired.store(true, Ordering::Relaxed);
    }

    /// Whether this and `other` are the same key material for the same algorithm and kid.
    #[cfg(feature = "remote-jwks")]
    pub(crate) fn same_as(&self, other: &JwtKey) -> bool {
        use jsonwebtoken::DecodingKeyKind::{RsaModulusExponent, SecretOrDer};
        let same = match (self.decoding.kind(), other.decoding.kind()) {
            (SecretOrDer(a), SecretOrDer(b)) => a == b,
            (RsaModulusExponent { n: n1, e: e1 }, RsaModulusExponent { n: n2, e: e2 }) => {
                n1 == n2 && e1 == e2
            }
            _ => false,
        };
        self.kid == other.kid && self.alg == other.alg && same
    }
}

/// The most keys tried for one token (see [`KeySet::candidates`]): a bound on the signature
/// checks one request can cost.
pub(crate) const MAX_CANDIDATE_KEYS: usize = 4;

/// The keys that may have signed a token (see [`KeySet::candidates`]), held inline: a lookup
/// on every uncached token allocates nothing.
#[derive(Default)]
pub(crate) struct Candidates([Option<Arc<JwtKey>>; MAX_CANDIDATE_KEYS]);

impl Candidates {
    /// Whether there is none.
    pub(crate) fn is_empty(&self) -> bool {
        self.0[0].is_none()
    }
}

impl IntoIterator for Candidates {
    type Item = Arc<JwtKey>;
    type IntoIter =
        std::iter::Flatten<std::array::IntoIter<Option<Arc<JwtKey>>, MAX_CANDIDATE_KEYS>>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter().flatten()
    }
}

/// A set of verification keys of one issuer.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: Vec<Arc<JwtKey>>,
}

impl KeySet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads a JWKS document (RFC 7517). Keys that cannot be used (unknown type, `use` other
    /// than `sig`, symmetric, unreadable) are skipped rather than failing the set; see
    /// [`from_jwks_json_counting`](Self::from_jwks_json_counting) for how many.
    pub fn from_jwks_json(json: &str) -> Result<Self, KeyError> {
        Self::from_jwks_json_counting(json).map(|(set, _)| set)
    }

    /// Like [`from_jwks_json`](Self::from_jwks_json), also returning the number of keys skipped.
    pub fn from_jwks_json_counting(json: &str) -> Result<(Self, usize), KeyError> {
        // Parse key by key, so that one odd key does not void the others.
        #[derive(serde::Deserialize)]
        struct Raw {
            keys: Vec<serde_json::Value>,
        }
        // A JWKS is a JSON object (RFC 7517 §5); serde would also read `[[…]]` as `Raw`.
        if !json.trim_ascii_start().starts_with('{') {
            return Err(KeyError::Jwks("not a JSON object".into()));
        }
        let raw: Raw = serde_json::from_str(json).map_err(|e| KeyError::Jwks(e.to_string()))?;
        let mut set = KeySet::new();
        let mut skipped = 0;
        for value in raw.keys {
            match serde_json::from_value::<Jwk>(value)
                .map_err(|e| KeyError::Jwks(e.to_string()))
                .and_then(|jwk| Self::key_from_jwk(&jwk))
            {
                Ok(key) => set.keys.push(Arc::new(key)),
                Err(_) => skipped += 1,
            }
        }
        Ok((set, skipped))
    }

    /// Reads a typed JWKS.
    pub fn from_jwk_set(jwks: &JwkSet) -> Self {
        Self {
            keys: jwks
                .keys
                .iter()
                .filter_map(|jwk| Self::key_from_jwk(jwk).ok())
                .map(Arc::new)
                .collect(),
        }
    }

    /// Adds one JWK (asymmetric only).
    pub fn add_jwk(mut self, jwk: &Jwk) -> Result<Self, KeyError> {
        self.keys.push(Arc::new(Self::key_from_jwk(jwk)?));
        Ok(self)
    }

    fn key_from_jwk(jwk: &Jwk) -> Result<JwtKey, KeyError> {
        if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
            return Err(KeyError::Parse(
                "the key is not for signatures (use != sig)".into(),
            ));
        }
        let implied = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => Algorithm::RS256,
            AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
                EllipticCurve::P256 => Algorithm::ES256,
                EllipticCurve::P384 => Algorithm::ES384,
                _ => return Err(KeyError::Parse("unsupported elliptic curve".into())),
            },
            AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => {
                Algorithm::EdDSA
            }
            AlgorithmParameters::OctetKeyPair(_) => {
                return Err(KeyError::Parse("unsupported OKP curve".into()));
            }
            AlgorithmParameters::OctetKey(_) => {
                return Err(KeyError::Parse(
                    "symmetric (oct) keys are not taken from JWKS; use KeySet::add_hmac_secret"
                        .into(),
                ));
            }
            _ => return Err(KeyError::Parse("unsupported key type".into())),
        };
        let alg = match jwk.common.key_algorithm {
            None => implied,
            Some(ka) => {
                let alg = key_algorithm(ka)
                    .ok_or_else(|| KeyError::Parse(format!("unsupported alg {ka:?}")))?;
                // RSA keys serve any RS*/PS* algorithm named; EC and Ed25519 keys only theirs.
                let fits = match implied {
                    Algorithm::RS256 => family_name(alg) == "RSA",
                    other => alg == other,
                };
                if !fits {
                    return Err(KeyError::AlgorithmMismatch {
                        alg,
                        kind: family_name(implied),
                    });
                }
                alg
            }
        };
        let decoding = DecodingKey::from_jwk(jwk).map_err(|e| KeyError::Parse(e.to_string()))?;
        Ok(JwtKey::new(jwk.common.key_id.clone(), alg, decoding))
    }

    /// Adds a PEM public key (or certificate-free SPKI) for `alg`: RSA (`RS*`, `PS*`), EC
    /// (`ES256` P-256, `ES384` P-384) or Ed25519 (`EdDSA`).
    pub fn add_pem(
        mut self,
        kid: Option<&str>,
        alg: Algorithm,
        pem: &[u8],
    ) -> Result<Self, KeyError> {
        let parsed = match family_name(alg) {
            "RSA" => DecodingKey::from_rsa_pem(pem),
            "EC" => DecodingKey::from_ec_pem(pem),
            "Ed25519" => DecodingKey::from_ed_pem(pem),
            _ => {
                return Err(KeyError::AlgorithmMismatch {
                    alg,
                    kind: "PEM public",
                });
            }
        }
        .map_err(|e| KeyError::Parse(e.to_string()))?;
        self.keys
            .push(Arc::new(JwtKey::new(kid.map(str::to_owned), alg, parsed)));
        Ok(self)
    }

    /// Adds an HMAC secret for `alg` (`HS256`, `HS384` or `HS512`). **An explicit opt-in**: an
    /// HMAC key can also sign, so whoever holds it can mint tokens. It must have at least
    /// [`MIN_HMAC_SECRET_BYTES`] bytes.
    pub fn add_hmac_secret(
        mut self,
        kid: Option<&str>,
        alg: Algorithm,
        secret: &[u8],
    ) -> Result<Self, KeyError> {
        if family_name(alg) != "HMAC" {
            return Err(KeyError::NotHmac(alg));
        }
        if secret.len() < MIN_HMAC_SECRET_BYTES {
            return Err(KeyError::WeakSecret);
        }
        self.keys.push(Arc::new(JwtKey::new(
            kid.map(str::to_owned),
            alg,
            DecodingKey::from_secret(secret),
        )));
        Ok(self)
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The keys.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<JwtKey>> {
        self.keys.iter()
    }

    /// The keys that may have signed a token with this `kid` and `alg`, in the set's order: the
    /// keys with that kid and algorithm (a JWKS may reuse a kid, for an old and a new key, or for
    /// an RSA and an EC key); without a kid, every key for `alg`. At most
    /// [`MAX_CANDIDATE_KEYS`]: each costs a signature check.
    pub(crate) fn candidates(&self, kid: Option<&str>, alg: Algorithm) -> Candidates {
        let mut found = Candidates::default();
        let matching = self
            .keys
            .iter()
            .filter(|k| k.alg == alg && (kid.is_none() || k.kid.as_deref() == kid));
        for (slot, key) in found.0.iter_mut().zip(matching) {
            *slot = Some(key.clone());
        }
        found
    }

    /// Whether a key with this kid exists (whatever its algorithm).
    #[cfg(feature = "remote-jwks")]
    pub(crate) fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }

    /// Replaces this set's keys by `next`'s, keeping the `Arc`s of unchanged keys (so that their
    /// cached verdicts stay valid) and retiring the keys that left.
    #[cfg(feature = "remote-jwks")]
    pub(crate) fn merge_from(&self, next: KeySet) -> KeySet {
        let mut keys = Vec::with_capacity(next.keys.len());
        for k in next.keys {
            match self.keys.iter().find(|old| old.same_as(&k)) {
                Some(old) => keys.push(old.clone()),
                None => keys.push(k),
            }
        }
        for old in &self.keys {
            if !keys.iter().any(|k| Arc::ptr_eq(k, old)) {
                old.retire();
            }
        }
        KeySet { keys }
    }
}

fn key_algorithm(ka: KeyAlgorithm) -> Option<Algorithm> {
    Some(match ka {
        KeyAlgorithm::HS256 => Algorithm::HS256,
        KeyAlgorithm::HS384 => Algorithm::HS384,
        KeyAlgorithm::HS512 => Algorithm::HS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}
