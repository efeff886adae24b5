//! From the variables to the layers: the verifiers, the metadata document and the
//! [`AuthLayer`] that an [`EnvConfig`] describes.

use super::{ConfigError, EnvConfig, JwtEnv};
use crate::{
    assertion::AssertionVerifier,
    auth::AuthLayer,
    basic::BasicAuth,
    bearer::StaticBearer,
    jwt::{Issuer, JwtVerifier},
    metadata::ProtectedResourceMetadata,
    verifier::{AuthRequest, Or, Schemes, Verdict, Verifier, VerifierExt},
};

impl EnvConfig {
    /// The JWT verifier, in JWT mode: keys from `MCP_AUTH_JWKS_URL` (fetched on first use), or
    /// found by discovery from `MCP_AUTH_ISSUER_URL` (fetched now).
    pub async fn jwt_verifier(&self) -> Result<Option<JwtVerifier>, ConfigError> {
        let Some(jwt) = &self.jwt else {
            return Ok(None);
        };
        let issuer = remote_issuer(jwt).await?;
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
        Ok(Some(builder.build()?))
    }

    /// The Protected Resource Metadata document, in JWT mode.
    pub fn metadata(&self) -> Result<Option<ProtectedResourceMetadata>, ConfigError> {
        let Some(jwt) = &self.jwt else {
            return Ok(None);
        };
        let supported: Vec<String> = match (&self.tool_scopes, self.scopes_supported.is_empty()) {
            // Nothing said: advertise what the tools need, so that clients ask for it at once.
            (Some(tools), true) => tools.all_scopes().iter().map(str::to_owned).collect(),
            _ => self.scopes_supported.clone(),
        };
        let mut builder = ProtectedResourceMetadata::builder(self.resource_url.clone())
            .scopes_supported(supported);
        for server in &jwt.authorization_servers {
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

    /// The static-token verifier, if any token is configured. Each token grants the scopes
    /// `MCP_AUTH_BEARER_TOKEN_SCOPES` gives its name, and none without an entry.
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

    /// A verifier accepting every configured token, user, (in JWT mode) JWT and proxy
    /// assertion: static tokens are tried first (a miss costs tens of nanoseconds), then the JWT
    /// verifier.
    pub async fn verifier(&self) -> Result<EnvVerifier, ConfigError> {
        let bearer = VerifierExt::or(self.static_bearer()?, self.jwt_verifier().await?);
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

type EnvBearer = Or<Option<StaticBearer>, Option<JwtVerifier>>;

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
}
