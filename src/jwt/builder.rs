//! Configuring a [`JwtVerifier`]: issuers, audiences, algorithms, leeway, scope claims, checks
//! of your own and the token cache. [`JwtVerifierBuilder::build`] checks the whole
//! configuration and says what to change.

use std::{fmt, sync::Arc, time::Duration};

use serde_json::{Map, Value};

use super::*;

/// Configures a [`JwtVerifier`].
pub struct JwtVerifierBuilder {
    resource: Option<ResourceUrl>,
    identity: Option<IdentityClaims>,
    issuers: Vec<Issuer>,
    audiences: Vec<String>,
    algorithms: Option<Vec<Algorithm>>,
    leeway: Duration,
    strict: bool,
    scope_claims: Vec<String>,
    check: Option<Arc<ClaimsCheck>>,
    cache: Option<TokenCacheConfig>,
}

impl fmt::Debug for JwtVerifierBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtVerifierBuilder")
            .field("resource", &self.resource)
            .field("issuers", &self.issuers)
            .finish_non_exhaustive()
    }
}

impl JwtVerifierBuilder {
    pub(super) fn new(resource: Option<ResourceUrl>, audiences: Vec<String>) -> Self {
        Self {
            resource,
            identity: None,
            issuers: Vec::new(),
            audiences,
            algorithms: None,
            leeway: DEFAULT_LEEWAY,
            strict: false,
            scope_claims: vec!["scope".to_owned(), "scp".to_owned()],
            check: None,
            cache: Some(TokenCacheConfig::default()),
        }
    }

    /// Trusts an issuer (several may be trusted, each with its own keys).
    pub fn issuer(mut self, issuer: Issuer) -> Self {
        self.issuers.push(issuer);
        self
    }

    /// Also accepts tokens whose `aud` is `audience`, compared exactly (for example Entra ID's
    /// `api://…`, or the origin when the metadata document is also served at the root). An empty
    /// audience is refused by [`build`](Self::build).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// The algorithm allow-list (default: [`DEFAULT_ALGORITHMS`] plus the algorithm of any HMAC
    /// key configured). A key's algorithm must also be on it.
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = Some(algorithms.into_iter().collect());
        self
    }

    /// The clock leeway for `exp`, `nbf` and `iat` (default 60 s, at most 300 s).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Strict RFC 9068: `typ` must be `at+jwt` (or `application/at+jwt`), and `sub`,
    /// `client_id`, `iat` and `jti` must be present. Off by default, because many authorization
    /// servers still sign access tokens as plain `JWT`.
    pub fn strict_rfc9068(mut self, yes: bool) -> Self {
        self.strict = yes;
        self
    }

    /// The claims scopes are read from (default `scope` and `scp`); the token's scopes are the
    /// union of what they hold. Each may be a space-separated string or an array of strings.
    ///
    /// Name only the claim your authorization server alone decides: some let a client put
    /// what it likes in one of them (a `scope` parameter copied into `scp`, say), and with the
    /// default union that one would grant scopes too.
    ///
    /// ```
    /// # #[cfg(any(feature = "aws-lc-rs", feature = "rust-crypto"))] { // a crypto backend is needed
    /// # use mcp_server_auth::{ResourceUrl, jwt::{Issuer, JwtVerifier, KeySet}};
    /// # let keys = KeySet::new().add_hmac_secret(Some("k"), mcp_server_auth::jwt::Algorithm::HS256,
    /// #     b"0123456789abcdef0123456789abcdef").unwrap();
    /// let verifier = JwtVerifier::builder(ResourceUrl::parse("https://mcp.example.com/mcp")?)
    ///     .issuer(Issuer::with_keys("https://auth.example.com", keys))
    ///     .scope_claims(["scp"]) // Entra ID: `scope` is not read at all
    ///     .build()?;
    /// # let _ = verifier;
    /// # }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn scope_claims<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scope_claims = names.into_iter().map(Into::into).collect();
        self
    }

    /// A check of your own on the claims of every otherwise valid token.
    pub fn claims_check<F>(mut self, check: F) -> Self
    where
        F: Fn(&Map<String, Value>) -> Result<(), &'static str> + Send + Sync + 'static,
    {
        self.check = Some(Arc::new(check));
        self
    }

    /// The verified-token cache settings (on by default with [`TokenCacheConfig::default`]).
    pub fn token_cache(mut self, config: TokenCacheConfig) -> Self {
        self.cache = Some(config);
        self
    }

    /// Switches the verified-token cache off: every request is verified in full.
    pub fn no_token_cache(mut self) -> Self {
        self.cache = None;
        self
    }

    /// Which claims name the identity (for JWTs that are not access tokens).
    pub(crate) fn identity(mut self, identity: IdentityClaims) -> Self {
        self.identity = Some(identity);
        self
    }

    /// Checks the configuration and builds the verifier.
    pub fn build(self) -> Result<JwtVerifier, JwtConfigError> {
        install_crypto_provider()?;
        if self.issuers.is_empty() {
            return Err(JwtConfigError::NoIssuer);
        }
        if self.issuers.iter().any(|i| i.issuer.is_empty()) {
            return Err(JwtConfigError::EmptyIssuer);
        }
        if self.leeway > MAX_LEEWAY {
            return Err(JwtConfigError::Leeway(self.leeway.as_secs()));
        }
        if self.scope_claims.iter().any(String::is_empty) {
            return Err(JwtConfigError::ScopeClaim);
        }
        if self.audiences.iter().any(String::is_empty) {
            return Err(JwtConfigError::EmptyAudience);
        }
        let algorithms = match self.algorithms {
            Some(list) => list,
            None => {
                let mut list = DEFAULT_ALGORITHMS.to_vec();
                for issuer in &self.issuers {
                    for alg in issuer.source.algorithms() {
                        if matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
                            && !list.contains(&alg)
                        {
                            list.push(alg);
                        }
                    }
                }
                list
            }
        };
        if algorithms.is_empty() {
            return Err(JwtConfigError::NoAlgorithms);
        }
        let leeway = self.leeway.as_secs();
        let issuers = self.issuers;
        let mut audiences: Vec<String> = self.resource.iter().map(|r| r.as_str().into()).collect();
        audiences.extend(self.audiences);
        Ok(JwtVerifier(Arc::new(Inner {
            issuers,
            resource: self.resource,
            audiences,
            identity: self.identity,
            algorithms,
            leeway,
            strict: self.strict,
            scope_claims: self.scope_claims,
            check: self.check,
            cache: self.cache.map(TokenCache::new),
            headers: Default::default(),
        })))
    }
}
