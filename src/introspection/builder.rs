//! Configuring an [`IntrospectionVerifier`]: the endpoint (given, or from the issuer's
//! metadata), the issuers and audiences answers must name, the JWT verifier tokens of its
//! issuers go to, and the transport and cache options. [`build`](IntrospectionVerifierBuilder::build)
//! checks it all and says what to change.
//!
//! ```
//! use std::time::Duration;
//! use mcp_server_auth::introspection::IntrospectionOptions;
//!
//! let options = IntrospectionOptions {
//!     max_age: Duration::from_secs(30), // a revoked token works for at most 30 s more
//!     ..Default::default()
//! };
//! # let _ = options;
//! ```

use std::{fmt, sync::Arc, time::Duration};

use super::{ClientAuth, Inner, IntrospectionVerifier, answer::Rules};
use crate::{
    cache::{Flights, TtlCache},
    fetch::{self, Limits},
    jwt::{DEFAULT_LEEWAY, JwtVerifier, MAX_LEEWAY, RemoteJwksOptions, RemoteKeysError},
    resource::{ResourceUrl, redact_userinfo, redact_userinfo_in},
};

/// How the introspection endpoint is called and its answers cached. Every field has a default
/// ([`IntrospectionOptions::default`]); change what you need with `..Default::default()`.
#[derive(Debug, Clone)]
pub struct IntrospectionOptions {
    /// The whole time one call may take: connecting, the answer and its body. Default 5 s.
    pub timeout: Duration,
    /// The largest answer read; a larger one fails the call (`503`). Default 1 MiB.
    pub max_body_bytes: usize,
    /// The longest a positive answer is served from the cache (never past the token's `exp`):
    /// how long a revoked token may still work. Default 60 s. Zero: every request is
    /// introspected.
    pub max_age: Duration,
    /// How long an inactive or unacceptable answer is served from the cache. Default 5 s.
    pub inactive_ttl: Duration,
    /// The most answers cached. Default 10 000.
    pub max_entries: usize,
    /// The most memory (estimated) the cached answers may take. Default 32 MiB.
    pub max_bytes: usize,
    /// The most calls in the air at once; beyond, a request with a new token gets `503` at
    /// once (joining the call already made for its token is always allowed). Default 32.
    pub max_concurrent_calls: usize,
    /// The `Retry-After` of a `503` (the endpoint failed, or too many calls). Default 5 s.
    pub retry_after: Duration,
    /// Accepts a plain `http` endpoint on a host that is not loopback. **An explicit
    /// opt-out**: tokens and this server's credentials would cross the network in clear, and
    /// anyone on the path could answer "active". Default `false`.
    pub allow_plain_http_non_loopback: bool,
    /// An HTTP client of your own (proxies, a private certificate authority). The timeout and
    /// size cap still apply, and an answer from any URL but the endpoint is refused; disable
    /// redirects in it. Default: a client built here that follows no redirect.
    pub client: Option<reqwest::Client>,
}

impl Default for IntrospectionOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            max_body_bytes: 1 << 20,
            max_age: Duration::from_secs(60),
            inactive_ttl: Duration::from_secs(5),
            max_entries: crate::jwt::DEFAULT_MAX_ENTRIES,
            max_bytes: crate::jwt::DEFAULT_MAX_BYTES,
            max_concurrent_calls: 32,
            retry_after: Duration::from_secs(5),
            allow_plain_http_non_loopback: false,
            client: None,
        }
    }
}

/// The longest cache lifetime accepted (a day): longer, and a revoked token lives on.
const MAX_CACHE_AGE: Duration = Duration::from_secs(24 * 60 * 60);

impl IntrospectionOptions {
    fn check(&self) -> Result<(), IntrospectionError> {
        let bad = |why| Err(IntrospectionError::Options(why));
        if self.timeout.is_zero() {
            return bad("the timeout must not be zero");
        }
        if self.max_body_bytes == 0 {
            return bad("max_body_bytes must not be zero");
        }
        if self.max_age > MAX_CACHE_AGE || self.inactive_ttl > MAX_CACHE_AGE {
            return bad("max_age and inactive_ttl must be at most 24 h");
        }
        if self.max_concurrent_calls == 0 {
            return bad("max_concurrent_calls must be at least 1");
        }
        if self.retry_after < Duration::from_secs(1) {
            return bad("retry_after must be at least 1 s");
        }
        Ok(())
    }

    fn limits(&self) -> Limits {
        Limits {
            timeout: self.timeout,
            max_body_bytes: self.max_body_bytes,
            allow_plain_http: self.allow_plain_http_non_loopback,
            max_redirects: 0,
        }
    }
}

/// What is wrong with an introspection verifier's configuration. No variant holds a secret;
/// URLs lose their user information.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IntrospectionError {
    /// No endpoint: neither given nor discovered.
    #[error(
        "no introspection endpoint: set one with IntrospectionVerifierBuilder::endpoint, or find \
         it in the issuer's metadata with IntrospectionVerifierBuilder::discover"
    )]
    NoEndpoint,
    /// The endpoint URL cannot be used.
    #[error("the introspection endpoint {url:?} cannot be used: {reason}")]
    Endpoint {
        /// The URL, with any user information redacted.
        url: String,
        /// Why, and what to do.
        reason: String,
    },
    /// The client id or secret is empty.
    #[error(
        "the client credentials are incomplete: the introspection endpoint needs this server's \
         client id and its secret (or key)"
    )]
    ClientAuth,
    /// The `private_key_jwt` key cannot be used.
    #[error("the client assertion key cannot be used: {0}")]
    SigningKey(&'static str),
    /// `private_key_jwt` needs a JWT crypto backend.
    #[error(
        "private_key_jwt needs a JWT crypto backend: enable `aws-lc-rs` (default) or `rust-crypto`"
    )]
    NoCryptoBackend,
    /// An issuer identifier or an audience is empty.
    #[error("an issuer or an audience is empty: name the value answers must carry")]
    Empty,
    /// The leeway is larger than [`MAX_LEEWAY`].
    #[error("the clock leeway is {0} s; at most 300 s is accepted")]
    Leeway(u64),
    /// The options are inconsistent.
    #[error("introspection options: {0}")]
    Options(&'static str),
    /// Discovery failed: no metadata, or none with an `introspection_endpoint`.
    #[error("{0}")]
    Discovery(#[from] RemoteKeysError),
}

/// Configures an [`IntrospectionVerifier`].
pub struct IntrospectionVerifierBuilder {
    resource: ResourceUrl,
    auth: ClientAuth,
    endpoint: Option<String>,
    issuers: Vec<String>,
    audiences: Vec<String>,
    allow_missing_audience: bool,
    leeway: Duration,
    jwt: Option<JwtVerifier>,
    options: IntrospectionOptions,
}

impl fmt::Debug for IntrospectionVerifierBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntrospectionVerifierBuilder")
            .field("resource", &self.resource)
            .field("auth", &self.auth)
            .field("endpoint", &self.endpoint.as_deref().map(redact_userinfo))
            .field("issuers", &self.issuers)
            .finish_non_exhaustive()
    }
}

impl IntrospectionVerifierBuilder {
    pub(super) fn new(resource: ResourceUrl, auth: ClientAuth) -> Self {
        Self {
            resource,
            auth,
            endpoint: None,
            issuers: Vec::new(),
            audiences: Vec::new(),
            allow_missing_audience: false,
            leeway: DEFAULT_LEEWAY,
            jwt: None,
            options: IntrospectionOptions::default(),
        }
    }

    /// The introspection endpoint's URL (https, or http on a loopback host).
    pub fn endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoint = Some(url.into());
        self
    }

    /// Finds the endpoint in the metadata of `issuer_url` (`introspection_endpoint`, RFC 8414
    /// §2; OpenID Connect Discovery as a fallback), whose `issuer` must be `issuer_url`
    /// exactly, and trusts that issuer: answers must name it in `iss`, when they have one. A
    /// document without `jwks_uri` is fine here.
    ///
    /// The metadata is fetched as the endpoint will be called: with the
    /// [`client`](IntrospectionOptions::client), the timeout, the size cap and the plain-http
    /// rule of the [`options`](Self::options) set so far, so set those first.
    pub async fn discover(mut self, issuer_url: &str) -> Result<Self, IntrospectionError> {
        self.options.check()?;
        let mut options = RemoteJwksOptions {
            timeout: self.options.timeout,
            max_body_bytes: self.options.max_body_bytes,
            allow_plain_http_non_loopback: self.options.allow_plain_http_non_loopback,
            client: self.options.client.clone(),
            ..Default::default()
        };
        let metadata =
            crate::jwt::find_metadata(issuer_url, &mut options, "introspection_endpoint").await?;
        self.endpoint = metadata.introspection_endpoint;
        self.issuers.push(issuer_url.to_owned());
        Ok(self)
    }

    /// Trusts an issuer: an answer's `iss` must be one of those trusted (exactly), and is
    /// required when several are.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuers.push(issuer.into());
        self
    }

    /// Also accepts answers whose `aud` is `audience`, compared exactly (the resource URL
    /// always is).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Accepts answers without `aud`. **An explicit opt-out**, for authorization servers that
    /// never say for whom a token is: any token of theirs, meant for any resource, is then
    /// accepted here. Default `false`.
    pub fn allow_missing_audience(mut self, yes: bool) -> Self {
        self.allow_missing_audience = yes;
        self
    }

    /// The clock leeway for `exp` and `nbf` (default 60 s, at most 300 s: the JWT verifier's).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Verifies JWTs locally with `jwt`: a token that reads as a JWT whose `iss` (not verified
    /// yet) is one of `jwt`'s issuers is judged by it alone, and never introspected, whatever
    /// it decides. Other tokens are introspected.
    pub fn jwt(mut self, jwt: JwtVerifier) -> Self {
        self.jwt = Some(jwt);
        self
    }

    /// The transport and cache options (default: [`IntrospectionOptions::default`]).
    pub fn options(mut self, options: IntrospectionOptions) -> Self {
        self.options = options;
        self
    }

    /// Checks the configuration and builds the verifier.
    pub fn build(self) -> Result<IntrospectionVerifier, IntrospectionError> {
        self.options.check()?;
        self.auth.check()?;
        if self.leeway > MAX_LEEWAY {
            return Err(IntrospectionError::Leeway(self.leeway.as_secs()));
        }
        if self
            .issuers
            .iter()
            .chain(&self.audiences)
            .any(String::is_empty)
        {
            return Err(IntrospectionError::Empty);
        }
        let url = self.endpoint.ok_or(IntrospectionError::NoEndpoint)?;
        let bad = |reason: String| IntrospectionError::Endpoint {
            url: redact_userinfo(&url),
            reason: redact_userinfo_in(&reason).into_owned(),
        };
        let limits = self.options.limits();
        let endpoint = fetch::check_url(&url, limits.allow_plain_http).map_err(bad)?;
        let client = match &self.options.client {
            Some(client) => client.clone(),
            None => fetch::client(&limits)
                .map_err(|e| bad(format!("cannot build the HTTP client: {e}")))?,
        };
        let options = self.options;
        Ok(IntrospectionVerifier(Arc::new(Inner {
            endpoint,
            client,
            limits,
            auth: self.auth,
            rules: Rules {
                resource: Some(self.resource),
                audiences: self.audiences,
                issuers: self.issuers,
                allow_missing_audience: self.allow_missing_audience,
                leeway: self.leeway.as_secs(),
            },
            cache: TtlCache::new(options.max_entries, options.max_bytes),
            flights: Flights::new(options.max_concurrent_calls),
            jwt: self.jwt,
            options,
        })))
    }
}
