//! From the variables to the layers: the verifiers, the metadata document and the
//! [`AuthLayer`] that an [`EnvConfig`] describes.

#[cfg(feature = "introspection")]
use super::introspection::Method as IntrospectionMethod;
use super::{ConfigError, EnvConfig, JwtEnv};
use crate::{
    assertion::AssertionVerifier,
    auth::AuthLayer,
    basic::BasicAuth,
    bearer::StaticBearer,
    jwt::{Issuer, JwtVerifier},
    metadata::ProtectedResourceMetadata,
    reload::{DEFAULT_WATCH_INTERVAL, ReloadHandle, ReloadableBearer},
    verifier::{AuthRequest, Or, Presented, Recall, Schemes, Verdict, Verifier, VerifierExt},
};

impl EnvConfig {
    /// The JWT verifier, in JWT mode: keys from `MCP_AUTH_JWKS_URL` (fetched on first use), or
    /// found by discovery from `MCP_AUTH_ISSUER_URL` (fetched now). `None` in introspection
    /// mode, where the [introspection verifier](Self::introspection_verifier) holds it.
    pub async fn jwt_verifier(&self) -> Result<Option<JwtVerifier>, ConfigError> {
        let Some(jwt) = &self.jwt else {
            return Ok(None);
        };
        if self.introspection.is_some() {
            return Ok(None);
        }
        let issuer = remote_issuer(jwt).await?;
        self.jwt_verifier_for(jwt, issuer).map(Some)
    }

    /// The JWT verifier of the JWT settings, for `issuer`.
    fn jwt_verifier_for(&self, jwt: &JwtEnv, issuer: Issuer) -> Result<JwtVerifier, ConfigError> {
        let mut builder = JwtVerifier::builder(self.resource_url.clone()).issuer(issuer);
        for audience in &jwt.audiences {
            builder = builder.audience(audience.clone());
        }
        if let Some(leeway) = jwt.leeway {
            builder = builder.leeway(leeway);
        }
        if let Some(algorithms) = &jwt.algorithms {
            builder = builder.algorithms(algorithms.iter().copied());
        }
        if let Some(claim) = &jwt.scope_claim {
            // An empty name is refused by the builder (JwtConfigError::ScopeClaim).
            builder = builder.scope_claims([claim.as_str()]);
        }
        Ok(builder.build()?)
    }

    /// The introspection verifier, in introspection mode (`MCP_AUTH_INTROSPECTION_*`): the
    /// endpoint from `MCP_AUTH_INTROSPECTION_URL`, or found now in the metadata of
    /// `MCP_AUTH_ISSUER_URL`. With the issuer's keys known (`MCP_AUTH_JWKS_URL`, or the
    /// metadata's `jwks_uri`), JWTs from it are verified locally, never introspected.
    #[cfg(feature = "introspection")]
    pub async fn introspection_verifier(
        &self,
    ) -> Result<Option<crate::introspection::IntrospectionVerifier>, ConfigError> {
        use crate::introspection::{ClientAuth, IntrospectionOptions, IntrospectionVerifier};
        let Some(env) = &self.introspection else {
            return Ok(None);
        };
        let failed = |e: &dyn std::fmt::Display| ConfigError::Introspection(e.to_string());
        let auth = match env.method {
            IntrospectionMethod::Basic => {
                ClientAuth::client_secret_basic(&env.client_id, &env.client_secret)
            }
            IntrospectionMethod::Post => {
                ClientAuth::client_secret_post(&env.client_id, &env.client_secret)
            }
        };
        let mut options = IntrospectionOptions::default();
        if let Some(max_age) = env.max_age {
            options.max_age = max_age;
        }
        let mut builder = IntrospectionVerifier::builder(self.resource_url.clone(), auth);
        for audience in &env.audiences {
            builder = builder.audience(audience.clone());
        }
        if let Some(leeway) = env.leeway {
            builder = builder.leeway(leeway);
        }
        let (endpoint, jwks_uri) = match (&env.url, &self.jwt) {
            (Some(url), jwt) => (url.clone(), jwt.as_ref().and_then(|j| j.jwks_url.clone())),
            (None, Some(jwt)) => {
                let mut remote = crate::jwt::RemoteJwksOptions::default();
                let found =
                    crate::jwt::find_metadata(&jwt.issuer, &mut remote, "introspection_endpoint")
                        .await
                        .map_err(|e| failed(&e))?;
                let jwks = jwt.jwks_url.clone().or(found.jwks_uri);
                (found.introspection_endpoint.unwrap_or_default(), jwks)
            }
            (None, None) => return Err(ConfigError::IntrospectionEndpoint),
        };
        builder = builder.endpoint(endpoint).options(options);
        if let Some(jwt) = &self.jwt {
            builder = builder.issuer(jwt.issuer.clone());
            if let Some(jwks) = jwks_uri {
                let options = crate::jwt::RemoteJwksOptions::default();
                let issuer = Issuer::with_jwks_uri(jwt.issuer.clone(), &jwks, options)?;
                builder = builder.jwt(self.jwt_verifier_for(jwt, issuer)?);
            }
        }
        builder.build().map(Some).map_err(|e| failed(&e))
    }

    /// The Protected Resource Metadata document, in JWT mode (and in introspection mode with
    /// an issuer or `MCP_AUTH_AUTHORIZATION_SERVERS`).
    pub fn metadata(&self) -> Result<Option<ProtectedResourceMetadata>, ConfigError> {
        let servers = match (&self.jwt, &self.introspection) {
            (Some(jwt), _) => &jwt.authorization_servers,
            (None, Some(env)) if !env.authorization_servers.is_empty() => {
                &env.authorization_servers
            }
            _ => return Ok(None),
        };
        let supported: Vec<String> = match (&self.tool_scopes, self.scopes_supported.is_empty()) {
            // Nothing said: advertise what the tools need, so that clients ask for it at once.
            (Some(tools), true) => tools.all_scopes().iter().map(str::to_owned).collect(),
            _ => self.scopes_supported.clone(),
        };
        let mut builder = ProtectedResourceMetadata::builder(self.resource_url.clone())
            .scopes_supported(supported)
            // Certificate-bound tokens are checked whenever tokens are (see `verifier`).
            .tls_client_certificate_bound_access_tokens(cfg!(any(
                feature = "aws-lc-rs",
                feature = "rust-crypto"
            )));
        builder = self.dpop_metadata(builder);
        for server in servers {
            builder = builder.authorization_server(server.clone());
        }
        Ok(Some(builder.build()?))
    }

    /// The names of the configured bearer tokens.
    pub fn bearer_token_names(&self) -> impl Iterator<Item = &str> {
        self.tokens.iter().map(|(n, _)| n.as_str())
    }

    /// The Basic user-id, if one is configured.
    pub fn basic_user(&self) -> Option<&str> {
        self.basic.as_ref().map(|(u, _)| u.as_str())
    }

    /// Adds a bearer token (for example one generated at start-up).
    pub fn add_bearer_token(&mut self, name: impl Into<String>, token: impl Into<String>) {
        self.tokens.push((name.into(), token.into()));
    }

    /// The static-token verifier of the variables, if any token is configured. Each token
    /// grants the scopes `MCP_AUTH_BEARER_TOKEN_SCOPES` gives its name, and none without an
    /// entry. The tokens of `MCP_AUTH_BEARER_TOKENS_FILE` are not in it: see
    /// [`bearer_tokens_file`](Self::bearer_tokens_file).
    pub fn static_bearer(&self) -> Result<Option<StaticBearer>, ConfigError> {
        if self.tokens.is_empty() {
            return Ok(None);
        }
        let builder = self
            .tokens
            .iter()
            .fold(StaticBearer::builder(), |b, (n, t)| {
                let scopes = self.token_scopes.get(n).cloned().unwrap_or_default();
                b.token_with_scopes(n.clone(), t, scopes)
            });
        Ok(Some(builder.build()?))
    }

    /// The Basic verifier, if a user is configured; the user is granted
    /// `MCP_AUTH_USER_SCOPES`.
    pub fn basic_auth(&self) -> Result<Option<BasicAuth>, ConfigError> {
        match &self.basic {
            Some((u, p)) => Ok(Some(
                BasicAuth::builder()
                    .user_with_scopes(u.clone(), p, self.user_scopes.clone())
                    .build()?,
            )),
            None => Ok(None),
        }
    }

    /// A verifier accepting every configured token, user, (in JWT mode) JWT, (in introspection
    /// mode) opaque token and proxy assertion (a JWT or opaque token bound to a client
    /// certificate only with that certificate, see [`crate::mtls`]): static tokens (those of the token file as the
    /// file says now: this starts its watcher) are tried first (a miss costs tens
    /// of nanoseconds), then the JWT or introspection verifier.
    pub async fn verifier(&self) -> Result<EnvVerifier, ConfigError> {
        let tokens = match &self.introspection {
            None => EnvTokens::Jwt(self.jwt_verifier().await?),
            #[cfg(feature = "introspection")]
            Some(_) => EnvTokens::Introspection(self.introspection_verifier().await?),
            #[cfg(not(feature = "introspection"))]
            Some(_) => {
                return Err(ConfigError::Introspection(
                    "MCP_AUTH_INTROSPECTION_* need this crate's `introspection` feature".to_owned(),
                ));
            }
        };
        // Certificate-bound tokens (RFC 8705) are accepted with their client certificate; the
        // token verifiers refuse them otherwise.
        #[cfg(any(feature = "aws-lc-rs", feature = "rust-crypto"))]
        let tokens = crate::mtls::CertificateBound::new(tokens, self.certificate_options());
        let file = self.token_file.as_ref().map(FileTokens::new);
        let bearer = VerifierExt::or(VerifierExt::or(self.static_bearer()?, file), tokens);
        // DPoP (off unless configured) around every token verifier: a bound token needs its
        // proof whichever verifier knows it.
        let bearer = self.wrap_dpop(bearer).await?;
        let credentials = VerifierExt::or(bearer, self.basic_auth()?);
        Ok(EnvVerifier(credentials.or(self.assertion.clone())))
    }

    /// A layer with [`verifier`](Self::verifier), the realm, the required scopes and, in JWT
    /// mode, the metadata document.
    pub async fn layer(&self) -> Result<AuthLayer<EnvVerifier>, ConfigError> {
        let mut builder = AuthLayer::builder(self.verifier().await?).realm(self.realm.clone());
        if let Some(metadata) = self.metadata()? {
            builder = builder.metadata(metadata);
        }
        if let Some(required) = &self.required_scopes {
            builder = builder.required_scopes(required.clone());
        }
        Ok(builder.build()?)
    }
}

/// The issuer, with its keys fetched from `MCP_AUTH_JWKS_URL` (lazily) or found by discovery.
#[cfg(feature = "remote-jwks")]
async fn remote_issuer(jwt: &JwtEnv) -> Result<Issuer, ConfigError> {
    let options = crate::jwt::RemoteJwksOptions::default();
    Ok(match &jwt.jwks_url {
        Some(url) => Issuer::with_jwks_uri(jwt.issuer.clone(), url, options)?,
        None => Issuer::discover(&jwt.issuer, options)
            .await
            .map_err(|e| ConfigError::Keys(e.to_string()))?,
    })
}

/// Without the `remote-jwks` feature, keys cannot be fetched.
#[cfg(not(feature = "remote-jwks"))]
async fn remote_issuer(jwt: &JwtEnv) -> Result<Issuer, ConfigError> {
    use crate::resource::Redacted;
    Err(ConfigError::Keys(format!(
        "fetching the keys of {} needs this crate's `remote-jwks` feature",
        Redacted(&jwt.issuer)
    )))
}

/// The token verifier of the environment: JWTs, or (introspection mode) opaque tokens with the
/// issuer's JWTs verified locally.
#[derive(Debug, Clone)]
enum EnvTokens {
    Jwt(Option<JwtVerifier>),
    #[cfg(feature = "introspection")]
    Introspection(Option<crate::introspection::IntrospectionVerifier>),
}

impl Verifier for EnvTokens {
    fn schemes(&self) -> Schemes {
        match self {
            Self::Jwt(v) => v.schemes(),
            #[cfg(feature = "introspection")]
            Self::Introspection(v) => v.schemes(),
        }
    }
    fn verify(&self, request: &AuthRequest<'_>) -> Verdict {
        match self {
            Self::Jwt(v) => v.verify(request),
            #[cfg(feature = "introspection")]
            Self::Introspection(v) => v.verify(request),
        }
    }
    fn recall(&self, presented: &Presented<'_>) -> Recall {
        match self {
            Self::Jwt(v) => v.recall(presented),
            #[cfg(feature = "introspection")]
            Self::Introspection(v) => v.recall(presented),
        }
    }
}

/// The tokens of `MCP_AUTH_BEARER_TOKENS_FILE`, with their handle: the file is watched for as
/// long as a verifier built from the configuration is in use.
#[derive(Debug, Clone)]
struct FileTokens {
    verifier: ReloadableBearer,
    /// Held, not read: the watcher runs while a handle lives.
    _watched: ReloadHandle,
}

impl FileTokens {
    fn new(handle: &ReloadHandle) -> Self {
        handle.watch(DEFAULT_WATCH_INTERVAL);
        Self {
            verifier: handle.verifier(),
            _watched: handle.clone(),
        }
    }
}

impl Verifier for FileTokens {
    fn schemes(&self) -> Schemes {
        self.verifier.schemes()
    }
    fn verify(&self, request: &AuthRequest<'_>) -> Verdict {
        self.verifier.verify(request)
    }
    fn recall(&self, presented: &Presented<'_>) -> Recall {
        self.verifier.recall(presented)
    }
}

#[cfg(any(feature = "aws-lc-rs", feature = "rust-crypto"))]
type BoundTokens = crate::mtls::CertificateBound<EnvTokens>;
#[cfg(not(any(feature = "aws-lc-rs", feature = "rust-crypto")))]
type BoundTokens = EnvTokens;

type EnvBearer =
    super::dpop::Wrapped<Or<Or<Option<StaticBearer>, Option<FileTokens>>, BoundTokens>>;

/// The verifier built from the environment by [`EnvConfig::verifier`].
#[derive(Debug, Clone)]
pub struct EnvVerifier(Or<Or<EnvBearer, Option<BasicAuth>>, Option<AssertionVerifier>>);

impl Verifier for EnvVerifier {
    fn schemes(&self) -> Schemes {
        self.0.schemes()
    }
    fn verify(&self, request: &AuthRequest<'_>) -> Verdict {
        self.0.verify(request)
    }
    fn recall(&self, presented: &Presented<'_>) -> Recall {
        self.0.recall(presented)
    }
}
