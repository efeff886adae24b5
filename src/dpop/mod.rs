//! Verifier: DPoP-bound access tokens (RFC 9449, MCP SEP-1932) — a token that works only for
//! the client holding its key.
//!
//! A bearer token works for whoever holds it. A DPoP-bound token carries the thumbprint of a
//! client key (`cnf.jkt`, RFC 9449 §6), and each request must come with a fresh proof signed
//! by that key: a JWT in the `DPoP` header naming the request's method and URL, the time, a
//! unique id, and the hash of the token. A stolen token without the key is useless, and a
//! captured proof cannot be used again or for another request.
//!
//! [`Dpop`] wraps the verifier that checks tokens ([`JwtVerifier`](crate::jwt::JwtVerifier),
//! the introspection verifier, one of your own) and, for `Authorization: DPoP <token>`:
//! 1. checks the proof, in the order of RFC 9449 §4.3 (see [`proof`](self::ProofError) for
//!    each check); a refusal is `401` with `error="invalid_dpop_proof"` on the `DPoP`
//!    challenge;
//! 2. checks the token with the inner verifier, as for a bearer token (a cache hit included);
//! 3. requires its `cnf.jkt` to be the RFC 7638 thumbprint of the proof's key
//!    ([`AuthInfo::dpop_jkt`](crate::AuthInfo::dpop_jkt)): an unbound token, or one bound to
//!    another key, is `401 invalid_token`;
//! 4. marks the proof as used in a [`Store`](crate::store::Store), only once every check has
//!    passed; a proof seen before is refused (`invalid_dpop_proof`), and a store that cannot
//!    answer makes the request `503` (fail closed).
//!
//! A token bound to a key and presented with the `Bearer` scheme is refused (`invalid_token`,
//! RFC 9449 §7.2), with or without this wrapper: the crate's token verifiers refuse it unless
//! a `Dpop` checked its proof.
//!
//! Modes ([`Mode`]): `allowed` (the default) accepts DPoP and unbound Bearer tokens; `required`
//! accepts DPoP-bound tokens only (the `Bearer` scheme is no longer offered); `off` leaves the
//! inner verifier alone (bound tokens are still refused as bearer tokens). The `401` carries a
//! `DPoP algs="…"` challenge after the `Bearer` one (the TypeScript SDK reads only the first);
//! advertise the algorithms and the mode in the metadata with
//! [`MetadataBuilder::dpop_signing_alg_values_supported`](crate::metadata::MetadataBuilder::dpop_signing_alg_values_supported)
//! and [`dpop_bound_access_tokens_required`](crate::metadata::MetadataBuilder::dpop_bound_access_tokens_required).
//! A browser client needs CORS to allow the `DPoP` request header (and to expose `DPoP-Nonce`,
//! for nonces): see [`crate::origin`].
//!
//! Server nonces (RFC 9449 §8–9) are optional: with
//! [`DpopOptionsBuilder::nonce_key`], a proof must carry a nonce this server (or a replica with
//! the same key) issued in the last one to two minutes. Nonces are stateless, a MAC of a 60 s
//! time bucket; a proof without one, or with a stale or forged one, gets `401` with
//! `error="use_dpop_nonce"` on the `DPoP` challenge and a fresh nonce in `DPoP-Nonce`; an
//! accepted proof whose nonce is from the previous bucket gets a fresh nonce with the answer.
//! Each client's proof header (with its key) is read once and kept in a small cache (256
//! headers), and so is the hash of each token checked against an `ath` (256 tokens, kept as
//! keyed tags): a client's next proofs skip both.
//!
//! With several replicas, give them one shared store ([`Dpop::with_store`] and a
//! `RedisStore`), or a proof accepted at one is accepted again at another. The memory store
//! holds a bounded number of keys and forgets the oldest first: size it
//! ([`MemoryStore::with_capacity`](crate::store::MemoryStore::with_capacity)) above the number
//! of DPoP requests a server takes in twice the accepted proof age.
//!
//! ```
//! use std::time::Duration;
//! use mcp_server_auth::{AuthLayer, ResourceUrl};
//! use mcp_server_auth::dpop::{Dpop, DpopOptions, Mode};
//! use mcp_server_auth::jwt::{Algorithm, Issuer, JwtVerifier, KeySet};
//!
//! let resource = ResourceUrl::parse("https://mcp.example.com/mcp").unwrap();
//! # let pem = b"-----BEGIN PUBLIC KEY-----
//! # MCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=
//! # -----END PUBLIC KEY-----";
//! # let keys = KeySet::new().add_pem(Some("k1"), Algorithm::EdDSA, pem).unwrap();
//! let tokens = JwtVerifier::builder(resource.clone())
//!     .issuer(Issuer::with_keys("https://auth.example.com", keys))
//!     .build()
//!     .unwrap();
//! let options = DpopOptions::builder(&resource)
//!     .mode(Mode::Required)
//!     .max_age(Duration::from_secs(120))
//!     .build()
//!     .unwrap();
//! let layer = AuthLayer::new(Dpop::new(tokens, options));
//! # let _ = layer;
//! ```

mod ath;
mod htu;
mod jwk;
mod keys;
mod nonce;
mod proof;
mod replay;
pub(crate) mod thumbprint;
mod verifier;

use std::{fmt, str::FromStr, sync::Arc, time::Duration};

use jsonwebtoken::Algorithm;

pub use htu::normalize_htu;
pub use proof::{ProofError, check_proof_for_fuzzing};
#[doc(hidden)]
pub use thumbprint::jwk_thumbprint;
pub use verifier::{Dpop, MAX_PROOF_BYTES};

use crate::resource::ResourceUrl;

/// The proof algorithms accepted by default: `ES256`, `ES384`, `EdDSA`, `RS256`, `PS256`.
pub const DEFAULT_ALGORITHMS: [Algorithm; 5] = [
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
    Algorithm::RS256,
    Algorithm::PS256,
];

/// Every asymmetric algorithm a proof may use.
const ALL_ALGORITHMS: [Algorithm; 9] = [
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];

/// The accepted age of a proof, either way from now, by default and at most: 300 s (MCP
/// SEP-1932).
pub const MAX_PROOF_AGE: Duration = Duration::from_secs(300);

/// Whether DPoP is off, allowed or required.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Mode {
    /// The inner verifier alone; the `DPoP` scheme is not offered. Bound tokens are still
    /// refused as bearer tokens.
    Off,
    /// DPoP-bound tokens with proofs, and unbound tokens with `Bearer`.
    #[default]
    Allowed,
    /// DPoP-bound tokens with proofs only; `Bearer` is not offered.
    Required,
}

impl FromStr for Mode {
    type Err = DpopConfigError;

    /// `off`, `allowed` or `required` (case-insensitive).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "off" => Ok(Self::Off),
            "allowed" => Ok(Self::Allowed),
            "required" => Ok(Self::Required),
            _ => Err(DpopConfigError::Mode(s.to_owned())),
        }
    }
}

/// What is wrong with a DPoP configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DpopConfigError {
    /// Not a mode.
    #[error("DPoP mode {0:?} is not one of off, allowed, required")]
    Mode(String),
    /// An algorithm that is not asymmetric, or not known.
    #[error(
        "DPoP proof algorithm {0:?} is not accepted: use ES256, ES384, EdDSA (or Ed25519), RS256, RS384, \
         RS512, PS256, PS384 or PS512 (never none or HMAC)"
    )]
    Algorithm(String),
    /// The allow-list is empty.
    #[error("the DPoP proof algorithm allow-list is empty: name at least one, e.g. ES256")]
    NoAlgorithms,
    /// The accepted proof age is zero or more than 300 s.
    #[error("the accepted DPoP proof age is {0} s: use 1 to 300 s")]
    MaxAge(u64),
    /// The resource URL has no RFC 3986 normal form.
    #[error("the resource URL cannot be compared with proofs' htu: give an absolute http(s) URL")]
    ResourceUrl,
    /// The nonce key is shorter than 32 bytes.
    #[error("the DPoP nonce key is shorter than 32 bytes: use 32 random bytes or more")]
    NonceKey,
}

/// What a [`Dpop`] verifier checks: the resource URL proofs must name, the algorithms, the
/// accepted age, the mode.
#[derive(Clone)]
pub struct DpopOptions {
    mode: Mode,
    algorithms: Vec<Algorithm>,
    max_age: Duration,
    htu: htu::Htu,
    nonces: Option<Arc<nonce::Nonces>>,
}

impl fmt::Debug for DpopOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopOptions")
            .field("mode", &self.mode)
            .field("algorithms", &self.algorithms)
            .field("max_age", &self.max_age)
            .field("nonces", &self.nonces.is_some())
            .finish_non_exhaustive()
    }
}

/// The fully-specified JOSE name of EdDSA with the Ed25519 curve (RFC 9864 §2.2), which
/// authorization servers and clients now advertise beside, or instead of, `EdDSA` (its only
/// curve here).
const ED25519: &str = "Ed25519";

/// The algorithm a proof's `alg` names: a JWS name, or [`ED25519`].
fn algorithm(name: &str) -> Option<Algorithm> {
    if name == ED25519 {
        return Some(Algorithm::EdDSA);
    }
    name.parse().ok()
}

/// The names `alg` is known by: its JWS name, and for EdDSA also [`ED25519`].
fn known_names(alg: Algorithm) -> impl Iterator<Item = &'static str> {
    let fully_specified = (alg == Algorithm::EdDSA).then_some(ED25519);
    std::iter::once(name(alg)).chain(fully_specified)
}

/// The JWS name of `alg`.
fn name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::ES256 => "ES256",
        Algorithm::ES384 => "ES384",
        Algorithm::EdDSA => "EdDSA",
        Algorithm::RS256 => "RS256",
        Algorithm::RS384 => "RS384",
        Algorithm::RS512 => "RS512",
        Algorithm::PS256 => "PS256",
        Algorithm::PS384 => "PS384",
        Algorithm::PS512 => "PS512",
        _ => "",
    }
}

impl DpopOptions {
    /// Starts the options for the resource at `resource`: proofs' `htu` must name it.
    pub fn builder(resource: &ResourceUrl) -> DpopOptionsBuilder {
        DpopOptionsBuilder {
            resource: resource.as_str().to_owned(),
            mode: Mode::default(),
            algorithms: DEFAULT_ALGORITHMS.to_vec(),
            bad_algorithm: None,
            max_age: MAX_PROOF_AGE,
            nonce_key: None,
        }
    }

    /// The mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The accepted proof algorithms' names, for the challenge and the metadata's
    /// `dpop_signing_alg_values_supported`: EdDSA as `EdDSA` and as `Ed25519` (RFC 9864).
    pub fn algorithm_names(&self) -> Vec<&'static str> {
        self.algorithms
            .iter()
            .flat_map(|a| known_names(*a))
            .collect()
    }

    /// Whether every token must be DPoP-bound (the metadata's
    /// `dpop_bound_access_tokens_required`).
    pub fn requires_bound_tokens(&self) -> bool {
        self.mode == Mode::Required
    }

    /// Whether proofs must carry a server nonce ([`DpopOptionsBuilder::nonce_key`]).
    pub fn nonces_required(&self) -> bool {
        self.nonces.is_some()
    }
}

/// Builds [`DpopOptions`]. `Debug` never shows the nonce key.
#[derive(Clone)]
pub struct DpopOptionsBuilder {
    resource: String,
    mode: Mode,
    algorithms: Vec<Algorithm>,
    bad_algorithm: Option<String>,
    max_age: Duration,
    /// The nonces of the key given, or the error: the key itself is not kept.
    nonce_key: Option<Result<Arc<nonce::Nonces>, DpopConfigError>>,
}

impl fmt::Debug for DpopOptionsBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopOptionsBuilder")
            .field("resource", &self.resource)
            .field("mode", &self.mode)
            .field("algorithms", &self.algorithms)
            .field("max_age", &self.max_age)
            .field("nonces", &self.nonce_key.is_some())
            .finish_non_exhaustive()
    }
}

impl DpopOptionsBuilder {
    /// The mode ([`Mode::Allowed`] by default).
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// The proof algorithm allow-list, by JWS name ([`DEFAULT_ALGORITHMS`] by default;
    /// `Ed25519`, RFC 9864's name, is EdDSA).
    /// `none` and HMAC algorithms are refused by [`build`](Self::build).
    pub fn algorithms<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.algorithms.clear();
        for n in names {
            let n = n.as_ref().trim();
            match ALL_ALGORITHMS
                .iter()
                .find(|a| known_names(**a).any(|m| m == n))
            {
                Some(a) if !self.algorithms.contains(a) => self.algorithms.push(*a),
                Some(_) => {}
                None => self.bad_algorithm = Some(n.to_owned()),
            }
        }
        self
    }

    /// How far a proof's `iat` may be from now, either way (300 s by default, and at most).
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// Requires server nonces in proofs (RFC 9449 §8–9), made and checked with `key`: at least
    /// 32 random bytes, the same at every replica, so that each accepts the others' nonces
    /// (stateless: a MAC of the 60 s time bucket; a nonce is accepted in its bucket and the
    /// next). Never logged.
    pub fn nonce_key(mut self, key: &[u8]) -> Self {
        self.nonce_key = Some(if key.len() < nonce::MIN_KEY_BYTES {
            Err(DpopConfigError::NonceKey)
        } else {
            Ok(Arc::new(nonce::Nonces::new(key)))
        });
        self
    }

    /// Checks the options.
    pub fn build(self) -> Result<DpopOptions, DpopConfigError> {
        if let Some(bad) = self.bad_algorithm {
            return Err(DpopConfigError::Algorithm(bad));
        }
        if self.algorithms.is_empty() {
            return Err(DpopConfigError::NoAlgorithms);
        }
        if self.max_age.is_zero() || self.max_age > MAX_PROOF_AGE {
            return Err(DpopConfigError::MaxAge(self.max_age.as_secs()));
        }
        Ok(DpopOptions {
            mode: self.mode,
            algorithms: self.algorithms,
            max_age: self.max_age,
            htu: htu::Htu::new(&self.resource).ok_or(DpopConfigError::ResourceUrl)?,
            nonces: self.nonce_key.transpose()?,
        })
    }
}
