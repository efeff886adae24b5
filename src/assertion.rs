//! Verifier: the signed assertion of an identity-aware proxy (Cloudflare Access, Google IAP,
//! Pomerium) in front of the MCP server.
//!
//! An identity-aware proxy authenticates users (and service tokens) itself, then forwards each
//! request it lets through with a JWT it signs, in a header of its own: `Cf-Access-Jwt-Assertion`,
//! `X-Goog-IAP-JWT-Assertion`, `X-Pomerium-Jwt-Assertion`. A server that trusts the proxy without
//! checking that JWT trusts anyone who reaches it another way: a forgotten public address, a
//! neighbour on the network, a request that sets an identity header itself. All three vendors
//! say so, and ask the application to verify the assertion. [`AssertionVerifier`] does: it reads
//! the JWT from the configured header and checks it with this crate's JWT machinery
//! ([`crate::jwt`]): the signature by a key of the proxy's JWKS (fetched and rotated as for access
//! tokens), with the proxy's one algorithm; `iss` the proxy's issuer; `aud` exactly one of the
//! audiences configured, which need not be URLs (Cloudflare's AUD tag is hex), and no resource URL;
//! `exp`, `nbf`, `iat` with the leeway.
//!
//! The header must appear once (a repeated one is refused), be at most
//! [`max_header_bytes`](AssertionVerifierBuilder::max_header_bytes) long (8 KiB by default, as
//! `Authorization`), and is never logged. The identity ([`AuthInfo`](crate::AuthInfo)) has
//! [`AuthMethod::ProxyAssertion`], the proxy's issuer, the claims, and as subject the `email`, or
//! else the `common_name` of a Cloudflare service token (its client id, also the
//! [`client_id`](crate::AuthInfo::client_id)), or else `sub`. It grants no scope: read groups from the
//! claims.
//!
//! The verifier reads no `Authorization` scheme: it declares [`Schemes::PROXY`]. Combined with
//! other verifiers ([`VerifierExt::or`](crate::VerifierExt::or)), a request without the header is
//! theirs to judge, and gets their `401` challenges. Alone, a request whose assertion is missing
//! or invalid did not come through the proxy, and nothing an MCP client does can fix that: the
//! layer answers `403` with a JSON body saying so, no `WWW-Authenticate` and `Cache-Control:
//! no-store` ([`crate::refusal::challenge`]). Keys that cannot be fetched give `503` with
//! `Retry-After`, as for access tokens.
//!
//! Presets fill the header, the issuer, the JWKS URL and the algorithm (feature `remote-jwks`):
//!
//! | proxy | constructor | `iss` | `aud` |
//! |---|---|---|---|
//! | Cloudflare Access | [`cloudflare_access`](AssertionVerifier::cloudflare_access) | the team domain `https://<team>.cloudflareaccess.com` | the application's AUD tag |
//! | Google IAP | [`google_iap`](AssertionVerifier::google_iap) | `https://cloud.google.com/iap` | `/projects/<number>/global/backendServices/<id>` or `/projects/<number>/apps/<project>` |
//! | Pomerium | [`pomerium`](AssertionVerifier::pomerium) | the route host | the route host |
//!
//! From the environment ([`crate::config`]): `MCP_AUTH_ASSERTION_HEADER` (a header name, or a
//! preset: `cloudflare`, `google-iap`, `pomerium`), `MCP_AUTH_ASSERTION_ISSUER`,
//! `MCP_AUTH_ASSERTION_JWKS_URL` (a preset's by default) and `MCP_AUTH_ASSERTION_AUDIENCE`
//! (comma-separated).
//!
//! ```
//! # #[cfg(all(feature = "remote-jwks", any(feature = "aws-lc-rs", feature = "rust-crypto")))] {
//! use std::convert::Infallible;
//! use http::{Request, Response};
//! use mcp_server_auth::{AuthLayer, assertion::AssertionVerifier};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! // Keys are fetched from https://my-team.cloudflareaccess.com/cdn-cgi/access/certs when the
//! // first assertion arrives.
//! let verifier = AssertionVerifier::cloudflare_access("https://my-team.cloudflareaccess.com")
//!     .audience("4714c1358e65fe4b408ad6d432a5f878f08194bdb4752441fd56faefa9b2b6f2")
//!     .build()
//!     .unwrap();
//! let service = ServiceBuilder::new()
//!     .layer(AuthLayer::new(verifier))
//!     .service(service_fn(|_: Request<String>| async {
//!         Ok::<_, Infallible>(Response::new(String::new()))
//!     }));
//! // Sent around the proxy: no assertion.
//! let response = service.oneshot(Request::new(String::new())).await.unwrap();
//! assert_eq!(response.status(), 403);
//! assert!(response.headers().get("www-authenticate").is_none());
//! # });
//! # }
//! ```

use std::{fmt, sync::Arc, time::Duration};

use http::{HeaderName, header};

#[cfg(feature = "remote-jwks")]
use crate::jwt::RemoteJwksOptions;
use crate::{
    credentials::DEFAULT_MAX_HEADER_BYTES,
    identity::AuthMethod,
    jwt::{Algorithm, IdentityClaims, Issuer, JwtConfigError, JwtVerifier, KeySet},
    resource::Redacted,
    verifier::{AuthRequest, Credentials, Invalid, Rejection, Schemes, Verdict, Verifier},
};

/// The identity of an assertion: `email`, else a service token's `common_name`, else `sub`.
const IDENTITY: IdentityClaims = IdentityClaims {
    method: AuthMethod::ProxyAssertion,
    subject: &["email", "common_name", "sub"],
    client_id: &["common_name"],
};

/// The identity-aware proxies with a preset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Proxy {
    /// Cloudflare Access: `Cf-Access-Jwt-Assertion`, RS256.
    CloudflareAccess,
    /// Google Cloud Identity-Aware Proxy: `X-Goog-IAP-JWT-Assertion`, ES256.
    GoogleIap,
    /// Pomerium: `X-Pomerium-Jwt-Assertion`.
    Pomerium,
}

impl Proxy {
    /// The proxy a preset name names (case-insensitive): `cloudflare` (or `cloudflare-access`),
    /// `google-iap` (or `iap`), `pomerium`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "cloudflare" | "cloudflare-access" => Some(Self::CloudflareAccess),
            "google-iap" | "iap" => Some(Self::GoogleIap),
            "pomerium" => Some(Self::Pomerium),
            _ => None,
        }
    }

    /// The header the proxy puts its assertion in.
    pub fn header(self) -> HeaderName {
        HeaderName::from_static(match self {
            Self::CloudflareAccess => "cf-access-jwt-assertion",
            Self::GoogleIap => "x-goog-iap-jwt-assertion",
            Self::Pomerium => "x-pomerium-jwt-assertion",
        })
    }
}

/// What is wrong with an assertion verifier's configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AssertionError {
    /// No issuer is configured.
    #[error(
        "no issuer: set the `iss` the proxy signs with (AssertionVerifierBuilder::issuer, \
         MCP_AUTH_ASSERTION_ISSUER); for Cloudflare Access, the team domain \
         https://<team>.cloudflareaccess.com"
    )]
    NoIssuer,
    /// No key source is configured.
    #[error(
        "no keys: set the proxy's JWKS URL (AssertionVerifierBuilder::jwks_url, \
         MCP_AUTH_ASSERTION_JWKS_URL) or its keys"
    )]
    NoKeys,
    /// No audience is configured.
    #[error(
        "no audience: set the `aud` the proxy issues for this application \
         (AssertionVerifierBuilder::audience, MCP_AUTH_ASSERTION_AUDIENCE): Cloudflare Access, \
         the application's AUD tag; Google IAP, /projects/<number>/global/backendServices/<id> \
         or /projects/<number>/apps/<project>; Pomerium, the route host"
    )]
    NoAudience,
    /// The header is not usable for an assertion.
    #[error(
        "the assertion header must be a valid header name of the proxy's own (such as \
         Cf-Access-Jwt-Assertion), not Authorization, Cookie or Host; or a preset: cloudflare, \
         google-iap, pomerium"
    )]
    Header,
    /// The header size limit is too small to carry any assertion.
    #[error("max_header_bytes must be at least 64")]
    HeaderLimit,
    /// `MCP_AUTH_ASSERTION_ISSUER`, `_JWKS_URL` or `_AUDIENCE` is set without the header.
    #[error(
        "MCP_AUTH_ASSERTION_* is set without MCP_AUTH_ASSERTION_HEADER: name the header, or a \
         preset: cloudflare, google-iap, pomerium"
    )]
    NoHeader,
    /// Keys must be fetched, and the `remote-jwks` feature is off.
    #[error("fetching the proxy's keys needs this crate's `remote-jwks` feature")]
    RemoteJwks,
    /// The JWT verifier cannot be built.
    #[error("{0}")]
    Jwt(#[from] JwtConfigError),
}

/// Where the proxy's keys come from.
#[derive(Debug, Clone)]
enum Keys {
    Given(KeySet),
    #[cfg(feature = "remote-jwks")]
    Jwks(String),
}

/// Verifies an identity-aware proxy's signed assertion. Cheap to clone. See the
/// [module documentation](self).
#[derive(Clone)]
pub struct AssertionVerifier(Arc<Inner>);

struct Inner {
    header: HeaderName,
    max_bytes: usize,
    issuer: Issuer,
    jwt: JwtVerifier,
}

impl fmt::Debug for AssertionVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AssertionVerifier")
            .field("header", &self.0.header)
            .field("max_header_bytes", &self.0.max_bytes)
            .field("issuer", &self.0.issuer)
            .field("jwt", &self.0.jwt)
            .finish()
    }
}

impl AssertionVerifier {
    /// Starts a verifier of assertions in `header`; set the issuer, its keys and the audience.
    pub fn builder(header: HeaderName) -> AssertionVerifierBuilder {
        AssertionVerifierBuilder {
            header,
            issuer: None,
            keys: None,
            #[cfg(feature = "remote-jwks")]
            jwks_options: RemoteJwksOptions::default(),
            audiences: Vec::new(),
            algorithms: None,
            leeway: None,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
        }
    }

    /// Cloudflare Access: `Cf-Access-Jwt-Assertion`, issued by the team domain
    /// (`https://<team>.cloudflareaccess.com`; `https://` is added when missing), keys from
    /// `<team domain>/cdn-cgi/access/certs`, RS256. Add the application's AUD tag with
    /// [`audience`](AssertionVerifierBuilder::audience).
    #[cfg(feature = "remote-jwks")]
    pub fn cloudflare_access(team_domain: &str) -> AssertionVerifierBuilder {
        let team = team_domain.trim().trim_end_matches('/');
        let issuer = if team.contains("://") {
            team.to_owned()
        } else {
            format!("https://{team}")
        };
        let jwks = format!("{issuer}/cdn-cgi/access/certs");
        Self::builder(Proxy::CloudflareAccess.header())
            .issuer(issuer)
            .jwks_url(jwks)
            .algorithms([Algorithm::RS256])
    }

    /// Google Cloud IAP: `X-Goog-IAP-JWT-Assertion`, issued by `https://cloud.google.com/iap`,
    /// keys from `https://www.gstatic.com/iap/verify/public_key-jwk`, ES256. Add the audience
    /// with [`audience`](AssertionVerifierBuilder::audience):
    /// `/projects/<number>/global/backendServices/<id>` (load balancer) or
    /// `/projects/<number>/apps/<project>` (App Engine).
    #[cfg(feature = "remote-jwks")]
    pub fn google_iap() -> AssertionVerifierBuilder {
        Self::builder(Proxy::GoogleIap.header())
            .issuer("https://cloud.google.com/iap")
            .jwks_url("https://www.gstatic.com/iap/verify/public_key-jwk")
            .algorithms([Algorithm::ES256])
    }

    /// Pomerium: `X-Pomerium-Jwt-Assertion`, for the route `route_host` (such as
    /// `mcp.example.com`): issuer and audience the route host, keys from
    /// `https://<route host>/.well-known/pomerium/jwks.json`. Where the issuer is the
    /// authenticate service's host instead, set it with
    /// [`issuer`](AssertionVerifierBuilder::issuer).
    #[cfg(feature = "remote-jwks")]
    pub fn pomerium(route_host: &str) -> AssertionVerifierBuilder {
        let host = route_host.trim();
        Self::builder(Proxy::Pomerium.header())
            .issuer(host)
            .jwks_url(format!("https://{host}/.well-known/pomerium/jwks.json"))
            .audience(host)
    }

    /// The header assertions are read from.
    pub fn header(&self) -> &HeaderName {
        &self.0.header
    }

    /// The proxy's issuer (`iss`), and where its keys come from.
    pub fn issuer(&self) -> &Issuer {
        &self.0.issuer
    }

    /// The JWT verifier that checks the assertions.
    pub fn jwt(&self) -> &JwtVerifier {
        &self.0.jwt
    }

    /// The assertion of `request`: `None` without the header; refused when it is repeated,
    /// too long or not visible ASCII.
    fn assertion<'r>(&self, request: &AuthRequest<'r>) -> Result<Option<&'r str>, Rejection> {
        let malformed = Rejection::Invalid(Invalid::Malformed);
        let mut values = request.headers().get_all(&self.0.header).iter();
        let Some(value) = values.next() else {
            return Ok(None);
        };
        if values.next().is_some() || value.len() > self.0.max_bytes || value.is_empty() {
            return Err(malformed);
        }
        value.to_str().map(Some).map_err(|_| malformed)
    }
}

impl Verifier for AssertionVerifier {
    fn schemes(&self) -> Schemes {
        Schemes::PROXY
    }

    fn verify(&self, request: &AuthRequest<'_>) -> Verdict {
        match self.assertion(request) {
            Ok(Some(token)) => self
                .0
                .jwt
                .verify(&AuthRequest::credentials_only(Credentials::Bearer(token))),
            Ok(None) => Verdict::Ready(Err(Rejection::NoCredentials)),
            Err(refusal) => Verdict::Ready(Err(refusal)),
        }
    }
}

/// Configures an [`AssertionVerifier`].
#[derive(Clone)]
pub struct AssertionVerifierBuilder {
    header: HeaderName,
    issuer: Option<String>,
    keys: Option<Keys>,
    #[cfg(feature = "remote-jwks")]
    jwks_options: RemoteJwksOptions,
    audiences: Vec<String>,
    algorithms: Option<Vec<Algorithm>>,
    leeway: Option<Duration>,
    max_header_bytes: usize,
}

impl fmt::Debug for AssertionVerifierBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AssertionVerifierBuilder")
            .field("header", &self.header)
            .field("issuer", &self.issuer.as_deref().map(Redacted))
            .finish_non_exhaustive()
    }
}

impl AssertionVerifierBuilder {
    /// The issuer the proxy signs with (`iss`, compared exactly).
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// Fetches the proxy's keys from `url` (see [`crate::jwt::RemoteJwksOptions`]: `https`, or
    /// `http` on a loopback host).
    #[cfg(feature = "remote-jwks")]
    pub fn jwks_url(mut self, url: impl Into<String>) -> Self {
        self.keys = Some(Keys::Jwks(url.into()));
        self
    }

    /// How the keys are fetched and cached (timeouts, refresh, outages).
    #[cfg(feature = "remote-jwks")]
    pub fn jwks_options(mut self, options: RemoteJwksOptions) -> Self {
        self.jwks_options = options;
        self
    }

    /// The proxy's keys, given here instead of fetched.
    pub fn keys(mut self, keys: KeySet) -> Self {
        self.keys = Some(Keys::Given(keys));
        self
    }

    /// Accepts assertions whose `aud` is `audience`, compared exactly (at least one is needed;
    /// only these are accepted).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// The algorithm allow-list (a preset's one algorithm, else the JWT default).
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = Some(algorithms.into_iter().collect());
        self
    }

    /// The clock leeway for `exp`, `nbf` and `iat` (default 60 s, at most 300 s).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = Some(leeway);
        self
    }

    /// The longest assertion header accepted (default 8 KiB, as `Authorization`); a longer one is
    /// refused.
    pub fn max_header_bytes(mut self, bytes: usize) -> Self {
        self.max_header_bytes = bytes;
        self
    }

    /// Checks the configuration and builds the verifier. Nothing is fetched yet.
    pub fn build(self) -> Result<AssertionVerifier, AssertionError> {
        if [header::AUTHORIZATION, header::COOKIE, header::HOST].contains(&self.header) {
            return Err(AssertionError::Header);
        }
        if self.max_header_bytes < 64 {
            return Err(AssertionError::HeaderLimit);
        }
        let issuer = self.issuer.ok_or(AssertionError::NoIssuer)?;
        let issuer = match self.keys.ok_or(AssertionError::NoKeys)? {
            Keys::Given(keys) => Issuer::with_keys(issuer, keys),
            #[cfg(feature = "remote-jwks")]
            Keys::Jwks(url) => Issuer::with_jwks_uri(issuer, &url, self.jwks_options)?,
        };
        let mut audiences = self.audiences.into_iter();
        let first = audiences.next().ok_or(AssertionError::NoAudience)?;
        let mut jwt = audiences
            .fold(JwtVerifier::builder_for_audience(first), |b, a| {
                b.audience(a)
            })
            .issuer(issuer.clone())
            .scope_claims(Vec::<String>::new())
            .identity(IDENTITY);
        if let Some(algorithms) = self.algorithms {
            jwt = jwt.algorithms(algorithms);
        }
        if let Some(leeway) = self.leeway {
            jwt = jwt.leeway(leeway);
        }
        Ok(AssertionVerifier(Arc::new(Inner {
            header: self.header,
            max_bytes: self.max_header_bytes,
            issuer,
            jwt: jwt.build()?,
        })))
    }
}

/// The verifier `MCP_AUTH_ASSERTION_*` describe, if any is set: `header` a header name or a
/// preset name, `issuer` and `jwks_url` a preset's by default.
#[cfg(feature = "remote-jwks")]
pub(crate) fn from_env(
    header: Option<String>,
    mut issuer: Option<String>,
    jwks_url: Option<String>,
    audiences: Vec<String>,
) -> Result<Option<AssertionVerifier>, AssertionError> {
    if header.is_none() && issuer.is_none() && jwks_url.is_none() && audiences.is_empty() {
        return Ok(None);
    }
    let header = header.ok_or(AssertionError::NoHeader)?;
    let mut builder = match Proxy::from_name(&header) {
        // The team domain is the issuer; the preset derives the JWKS URL from it.
        Some(Proxy::CloudflareAccess) => {
            AssertionVerifier::cloudflare_access(&issuer.take().ok_or(AssertionError::NoIssuer)?)
        }
        Some(Proxy::GoogleIap) => AssertionVerifier::google_iap(),
        Some(Proxy::Pomerium) => {
            AssertionVerifier::pomerium(audiences.first().ok_or(AssertionError::NoAudience)?)
        }
        None => AssertionVerifier::builder(
            HeaderName::from_bytes(header.as_bytes()).map_err(|_| AssertionError::Header)?,
        ),
    };
    if let Some(issuer) = issuer {
        builder = builder.issuer(issuer);
    }
    if let Some(url) = jwks_url {
        builder = builder.jwks_url(url);
    }
    audiences
        .into_iter()
        .fold(builder, AssertionVerifierBuilder::audience)
        .build()
        .map(Some)
}

/// Without the `remote-jwks` feature the proxy's keys cannot be fetched.
#[cfg(not(feature = "remote-jwks"))]
pub(crate) fn from_env(
    header: Option<String>,
    issuer: Option<String>,
    jwks_url: Option<String>,
    audiences: Vec<String>,
) -> Result<Option<AssertionVerifier>, AssertionError> {
    if header.is_none() && issuer.is_none() && jwks_url.is_none() && audiences.is_empty() {
        return Ok(None);
    }
    Err(AssertionError::RemoteJwks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_name_their_header() {
        assert_eq!(
            Proxy::from_name(" Cloudflare "),
            Some(Proxy::CloudflareAccess)
        );
        assert_eq!(Proxy::from_name("google-iap"), Some(Proxy::GoogleIap));
        assert_eq!(Proxy::from_name("pomerium"), Some(Proxy::Pomerium));
        assert_eq!(Proxy::from_name("x-my-assertion"), None);
        assert_eq!(Proxy::GoogleIap.header(), "x-goog-iap-jwt-assertion");
    }
}
