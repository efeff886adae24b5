//! Verifier: JWT access tokens (RFC 9068, OAuth 2.1 §5.2, RFC 8725), the OAuth 2.1
//! resource-server mode the MCP specification requires of servers open to third parties.
//!
//! Every token is checked for:
//! - a signature by a key of a configured issuer, with the one algorithm that key is bound to and
//!   which is on the allow-list (`none` never is; keys never come from the token's header; an
//!   unknown `crit` header parameter is refused);
//! - `iss` equal to that key's issuer, byte for byte;
//! - `aud` (required, a string or an array) naming this resource: the configured
//!   [`ResourceUrl`], compared with scheme and host case-insensitive and a bare origin's trailing
//!   slash tolerated, or one of the extra audiences configured. A verifier for JWTs that are not
//!   access tokens for this server ([`JwtVerifier::builder_for_audience`], for an identity-aware
//!   proxy's assertion) accepts exactly the audiences configured, and no resource URL;
//! - `exp` (required), `nbf`, and `iat` not in the future, each with a leeway (default 60 s, at
//!   most 300 s); each a NumericDate no later than the year 9999;
//! - `typ`: `at+jwt` accepted; plain `JWT` or none too, unless
//!   [`strict_rfc9068`](JwtVerifierBuilder::strict_rfc9068) is on, which also requires `sub`,
//!   `client_id`, `iat` and `jti` (RFC 9068 §2.2);
//! - an optional check of your own ([`claims_check`](JwtVerifierBuilder::claims_check)).
//!
//! Scopes are the union of `scope` (space-separated, or an array) and `scp` (an array or a
//! string). Where an authorization server lets clients influence one of them, read only the one
//! it controls with [`scope_claims`](JwtVerifierBuilder::scope_claims) (`MCP_AUTH_SCOPE_CLAIM`
//! from the environment). Verified tokens are cached (see [`TokenCacheConfig`]).
//!
//! A key set may hold several keys under one `kid` (an old and a new key during a rotation, an
//! RSA and an EC key), or several keys for one algorithm without `kid`s: each key matching the
//! token's `kid` and `alg` is tried, at most four.
//!
//! ```
//! # #[cfg(any(feature = "aws-lc-rs", feature = "rust-crypto"))] { // a crypto backend is needed
//! use mcp_server_auth::jwt::{Algorithm, Issuer, JwtVerifier, KeySet};
//! use mcp_server_auth::{AuthLayer, ResourceUrl};
//!
//! let pem = b"-----BEGIN PUBLIC KEY-----
//! MCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=
//! -----END PUBLIC KEY-----";
//! let keys = KeySet::new().add_pem(Some("k1"), Algorithm::EdDSA, pem).unwrap();
//! let verifier = JwtVerifier::builder(ResourceUrl::parse("https://mcp.example.com/mcp").unwrap())
//!     .issuer(Issuer::with_keys("https://auth.example.com", keys))
//!     .build()
//!     .unwrap();
//! let layer = AuthLayer::new(verifier);
//! # let _ = layer;
//! # }
//! ```

pub(crate) mod base64url;
mod builder;
mod cache;
mod check;
mod claims;
mod header;
pub(crate) mod json;
mod key_source;
mod keys;
#[cfg(feature = "remote-jwks")]
mod remote;
mod segment;
pub(crate) mod signature;

use std::{fmt, sync::Arc, time::Duration};

use serde_json::{Map, Value};

pub use builder::JwtVerifierBuilder;
pub use cache::{DEFAULT_MAX_BYTES, DEFAULT_MAX_ENTRIES, TokenCacheConfig};
#[cfg(feature = "introspection")]
pub(crate) use cache::{estimate_bytes, now_secs};
#[cfg(feature = "introspection")]
pub(crate) use claims::{MAX_NUMERIC_DATE, audience_is_ours, expired, not_yet_valid};
pub use key_source::Issuer;
#[cfg(feature = "remote-jwks")]
pub(crate) use key_source::KeySource;
pub(crate) use key_source::{Ask, Lookup};
pub use keys::{Algorithm, JwtKey, KeyError, KeySet, MIN_HMAC_SECRET_BYTES};
#[cfg(feature = "introspection")]
pub(crate) use remote::find_metadata;
#[cfg(feature = "remote-jwks")]
pub use remote::{RemoteJwksOptions, RemoteKeysError};

use crate::{
    identity::{AuthInfo, AuthMethod},
    resource::{Redacted, ResourceUrl},
    verifier::{
        AuthRequest, Credentials, Presented, Recall, Rejection, Schemes, Verdict, Verifier,
    },
};
use cache::TokenCache;
use check::{Cached, refuse};
use header::KnownHeaders;

/// The default clock leeway: 60 seconds.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);
/// The largest leeway accepted: 300 seconds.
pub const MAX_LEEWAY: Duration = Duration::from_secs(300);

/// The asymmetric algorithms accepted by default. HMAC algorithms are accepted only for keys
/// added explicitly with [`KeySet::add_hmac_secret`].
pub const DEFAULT_ALGORITHMS: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// What is wrong with a JWT verifier's configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwtConfigError {
    /// No issuer was configured.
    #[error("no issuer is configured: add one with JwtVerifierBuilder::issuer")]
    NoIssuer,
    /// An issuer identifier is empty.
    #[error("an issuer identifier is empty")]
    EmptyIssuer,
    /// An accepted audience is empty (it would accept tokens whose `aud` is `""`).
    #[error("an accepted audience is empty: name the audience tokens must carry")]
    EmptyAudience,
    /// The leeway is larger than [`MAX_LEEWAY`].
    #[error("the clock leeway is {0} s; at most 300 s is accepted")]
    Leeway(u64),
    /// The algorithm allow-list is empty.
    #[error("the algorithm allow-list is empty")]
    NoAlgorithms,
    /// No JWT crypto backend feature (`aws-lc-rs` or `rust-crypto`) is enabled.
    #[error("no JWT crypto backend: enable the `aws-lc-rs` (default) or `rust-crypto` feature")]
    NoCryptoBackend,
    /// A key is unusable.
    #[error("key: {0}")]
    Key(#[from] KeyError),
    /// A scope claim name is empty.
    #[error("a scope claim name is empty")]
    ScopeClaim,
    /// A JWKS URL (or an issuer URL to discover it from) cannot be used.
    #[error("the URL {url:?} cannot be used: {reason}")]
    JwksUri {
        /// The URL, with any user information (`user:password@`) redacted.
        url: String,
        /// Why, and what to do.
        reason: String,
    },
    /// Remote key options are inconsistent.
    #[error("remote key options: {0}")]
    RemoteOptions(&'static str),
}

impl JwtConfigError {
    /// [`JwtConfigError::JwksUri`]: the one way this crate builds it, so that neither the
    /// user information of `url` nor that of a URL `reason` quotes reaches a message.
    #[cfg(feature = "remote-jwks")]
    pub(crate) fn jwks_uri(url: &str, reason: &str) -> Self {
        use crate::resource::{redact_userinfo, redact_userinfo_in};
        Self::JwksUri {
            url: redact_userinfo(url),
            reason: redact_userinfo_in(reason).into_owned(),
        }
    }
}

/// Installs the crypto backend chosen by this crate's features as jsonwebtoken's process-wide
/// provider, so that another crate turning on jsonwebtoken's other backend (rmcp's auth features
/// enable `aws_lc_rs`) can never make it panic. A provider installed earlier is kept.
pub fn install_crypto_provider() -> Result<(), JwtConfigError> {
    #[cfg(feature = "aws-lc-rs")]
    {
        let _ = jsonwebtoken::crypto::CryptoProvider::install_default(
            &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER,
        );
        Ok(())
    }
    #[cfg(all(feature = "rust-crypto", not(feature = "aws-lc-rs")))]
    {
        let _ = jsonwebtoken::crypto::CryptoProvider::install_default(
            &jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER,
        );
        Ok(())
    }
    #[cfg(not(any(feature = "aws-lc-rs", feature = "rust-crypto")))]
    {
        Err(JwtConfigError::NoCryptoBackend)
    }
}

/// A check of your own on the claims of a token whose signature and standard claims are valid.
/// Return `Err` with a short reason (logged, never sent) to refuse it with `401 invalid_token`.
pub type ClaimsCheck = dyn Fn(&Map<String, Value>) -> Result<(), &'static str> + Send + Sync;

/// Which claims name the identity of a verified token, for JWTs that are not access tokens
/// (an identity-aware proxy's assertion, [`crate::assertion`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct IdentityClaims {
    /// The method the identity is reported with.
    pub(crate) method: AuthMethod,
    /// The subject: the first of these claims that is a non-empty string (none: refused).
    pub(crate) subject: &'static [&'static str],
    /// The client, if one of these claims is a non-empty string.
    pub(crate) client_id: &'static [&'static str],
}

struct Inner {
    issuers: Vec<Issuer>,
    /// `None` for a verifier built with [`JwtVerifier::builder_for_audience`].
    resource: Option<ResourceUrl>,
    /// Accepted `aud` values, compared as strings first (the resource first).
    audiences: Vec<String>,
    /// `None`: an access token's (`sub`, else the client; RFC 9068 §2.2).
    identity: Option<IdentityClaims>,
    algorithms: Vec<Algorithm>,
    leeway: u64,
    strict: bool,
    scope_claims: Vec<String>,
    check: Option<Arc<ClaimsCheck>>,
    cache: Option<TokenCache>,
    /// Headers of accepted tokens, read once.
    headers: KnownHeaders,
}

/// Verifies JWT access tokens. Cheap to clone.
#[derive(Clone)]
pub struct JwtVerifier(Arc<Inner>);

impl fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let issuers: Vec<_> = self.0.issuers.iter().map(|i| Redacted(&i.issuer)).collect();
        let audiences: Vec<_> = self.0.audiences.iter().map(|a| Redacted(a)).collect();
        f.debug_struct("JwtVerifier")
            .field("issuers", &issuers)
            .field("resource", &self.0.resource)
            .field("audiences", &audiences)
            .field("algorithms", &self.0.algorithms)
            .field("leeway", &self.0.leeway)
            .field("strict_rfc9068", &self.0.strict)
            .field("cache", &self.0.cache)
            .finish_non_exhaustive()
    }
}

impl JwtVerifier {
    /// Starts a verifier for tokens issued for `resource` (the public URL of the MCP endpoint,
    /// the one the metadata document names).
    pub fn builder(resource: ResourceUrl) -> JwtVerifierBuilder {
        Self::start(Some(resource), Vec::new())
    }

    /// Starts a verifier for JWTs that are not access tokens for an MCP endpoint, whose `aud`
    /// must be `audience`, compared exactly as a string (or another one added with
    /// [`audience`](JwtVerifierBuilder::audience)): nothing else is accepted, no resource URL
    /// among them. For an identity-aware proxy's assertion ([`crate::assertion`] builds on it),
    /// whose audience may be no URL at all (Cloudflare Access's AUD tag is hex). Access tokens
    /// for this server are verified with [`builder`](Self::builder), which always accepts the
    /// resource URL.
    ///
    /// ```
    /// # #[cfg(any(feature = "aws-lc-rs", feature = "rust-crypto"))] { // a crypto backend is needed
    /// use mcp_server_auth::jwt::{Algorithm, Issuer, JwtVerifier, KeySet};
    ///
    /// # let keys = KeySet::new().add_hmac_secret(Some("k"), Algorithm::HS256,
    /// #     b"0123456789abcdef0123456789abcdef").unwrap();
    /// let verifier = JwtVerifier::builder_for_audience("4714c1358e65fe4b408ad6d432a5f878f0")
    ///     .issuer(Issuer::with_keys("https://team.cloudflareaccess.com", keys))
    ///     .build()
    ///     .unwrap();
    /// assert!(verifier.resource().is_none());
    /// # }
    /// ```
    pub fn builder_for_audience(audience: impl Into<String>) -> JwtVerifierBuilder {
        Self::start(None, vec![audience.into()])
    }

    fn start(resource: Option<ResourceUrl>, audiences: Vec<String>) -> JwtVerifierBuilder {
        JwtVerifierBuilder::new(resource, audiences)
    }

    /// The resource tokens must be issued for; `None` for a verifier built with
    /// [`builder_for_audience`](Self::builder_for_audience).
    pub fn resource(&self) -> Option<&ResourceUrl> {
        self.0.resource.as_ref()
    }

    /// The number of verified tokens cached, and their estimated memory.
    pub fn cache_usage(&self) -> Option<(usize, usize)> {
        self.0.cache.as_ref().map(|c| (c.len(), c.bytes()))
    }

    /// The verdict on `token` if it is this verifier's to judge: in its verified-token cache, or
    /// reading as a JWT whose (unverified) `iss` is one of its issuers; `None` for any other
    /// token, which this verifier must not judge (another one may). `tag` gives the token's tag
    /// when the caller has it already.
    #[cfg(feature = "introspection")]
    pub(crate) fn verify_if_ours(
        &self,
        token: &str,
        tag: impl FnOnce() -> Option<crate::secret::SecretTag>,
    ) -> Option<Verdict> {
        match self.0.cached_as(token, tag) {
            Cached::Hit(info) => Some(Verdict::Ready(Ok(info))),
            Cached::Miss(tag) => self
                .claims_to_be_ours(token)
                .then(|| self.0.verify_uncached(token, tag)),
        }
    }

    /// Whether `token` reads as a JWT (a compact JWS whose payload is a JSON object) whose
    /// `iss`, not verified, is one of this verifier's issuers: a token this verifier alone
    /// judges. Nothing is verified here.
    #[cfg(feature = "introspection")]
    fn claims_to_be_ours(&self, token: &str) -> bool {
        let Some(payload) = claims::payload(token) else {
            return false;
        };
        let mut scratch = segment::Scratch::<{ claims::STACK_CLAIMS_BYTES }>::new();
        let Some(claims) = claims::Claims::read(payload, &mut scratch) else {
            return false;
        };
        claims
            .str("iss")
            .is_some_and(|iss| self.0.issuers.iter().any(|i| *i.issuer == *iss))
    }

    /// Verifies `token` as the layer does (through the verified-token cache, when it is on).
    pub async fn verify_token(&self, token: &str) -> Result<AuthInfo, Rejection> {
        self.verify(&AuthRequest::credentials_only(Credentials::Bearer(token)))
            .resolve()
            .await
    }
}

/// `text` decoded as the token reader decodes a segment (unpadded canonical Base64url), or
/// `None` where it refuses it.
#[doc(hidden)] // Reachable for the fuzz targets and tests; not part of the API (no semver promise).
pub fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = vec![0; base64url::decoded_len(text.len())?];
    base64url::decode(text.as_bytes(), &mut out)?;
    Some(out)
}

/// The top-level members of the JSON object `text` as the token reader sees them (name
/// unescaped, value as its text), or `None` where it refuses the text.
#[doc(hidden)] // Reachable for the fuzz targets and tests; not part of the API (no semver promise).
pub fn json_members(text: &str) -> Option<Vec<(String, String)>> {
    let text_of = |v: json::Json<'_>| match v {
        json::Json::Str { quoted, .. } => quoted.to_owned(),
        json::Json::Number(t) | json::Json::Array(t) | json::Json::Object(t) => t.to_owned(),
        json::Json::Bool(b) => b.to_string(),
        json::Json::Null => "null".to_owned(),
    };
    let mut members = Vec::new();
    json::object(text, |m| {
        members.push((m.name().into_owned(), text_of(m.value)));
    })?;
    Some(members)
}

impl Verifier for JwtVerifier {
    fn schemes(&self) -> Schemes {
        Schemes::BEARER
    }

    fn verify(&self, request: &AuthRequest<'_>) -> Verdict {
        let Credentials::Bearer(token) = request.credentials() else {
            return Verdict::Ready(Err(Rejection::NoCredentials));
        };
        // A token bound to a key is refused here unless its proof was checked (RFC 9449 §7.2),
        // and one bound to a certificate unless the certificate is compared (RFC 8705 §3), on a
        // cache hit as on a miss.
        request.refuse_unproven(match self.0.cached_as(token, || request.token_tag()) {
            Cached::Hit(info) => Verdict::Ready(Ok(info)),
            Cached::Miss(tag) => self.0.verify_uncached(token, tag),
        })
    }

    /// A cache hit. Only tokens that passed the layer's checks and this verifier's are cached,
    /// until their `exp`; one bound to a key or a certificate is not admitted by recall (the
    /// layer goes the whole way for it).
    fn recall(&self, presented: &Presented<'_>) -> Recall {
        match &self.0.cache {
            Some(cache) if presented.scheme() == crate::credentials::Scheme::Bearer => cache
                .recall(&presented.tag())
                .map_or(Recall::Unsure, Recall::Accepted),
            _ => Recall::Unsure,
        }
    }
}
