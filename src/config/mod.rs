//! Configuration from the environment: the `MCP_AUTH_*` variables, a first-class API.
//!
//! A server configured by its operator rather than its code (a container, the examples, a
//! gateway in front of a server in another language) needs the same variables to mean the same
//! thing everywhere, with errors that name the variable and never repeat a secret. So they are
//! part of this crate's public API, covered by semver like its types: a variable is not renamed
//! or given another meaning within a major version. It needs nothing the crate does not already
//! depend on, so it is not behind a feature. [`EnvConfig`] reads them, checks them all at
//! start-up, and builds the layers; code that configures the layers itself never has to use it.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `MCP_AUTH_LISTEN` | the address the examples bind | `127.0.0.1:8080` |
//! | `MCP_AUTH_RESOURCE_URL` | the public URL of the MCP endpoint | `http://<listen>/mcp` |
//! | `MCP_AUTH_BEARER_TOKEN` | one static bearer token (named `default`) | — |
//! | `MCP_AUTH_BEARER_TOKENS` | comma-separated tokens, each `name:token` or a bare `token` (named `token-<position>`) | — |
//! | `MCP_AUTH_BEARER_TOKENS_FILE` | a file of static tokens, one `name:token [scope …]` per line, reloaded when it changes (and on `SIGHUP` in the example server and the gateway); instead of the three variables around it ([`crate::reload`]) | — |
//! | `MCP_AUTH_BEARER_TOKEN_SCOPES` | scopes granted to static tokens, by name: `name=scope [scope…]`, comma-separated (e.g. `laptop=mcp:read mcp:write,ci=mcp:read`) | none: a token without an entry has no scopes |
//! | `MCP_AUTH_USER`, `MCP_AUTH_PASSWORD` | one HTTP Basic user | — |
//! | `MCP_AUTH_USER_SCOPES` | scopes granted to the Basic user (space-separated) | none |
//! | `MCP_AUTH_REALM` | the realm of the challenges | `mcp` |
//! | `MCP_AUTH_ISSUER_URL` | JWT mode: the trusted issuer (`iss`); its keys are found by discovery | — |
//! | `MCP_AUTH_JWKS_URL` | JWT mode: the issuer's JWKS URL (skips discovery; needs the issuer) | — |
//! | `MCP_AUTH_AUDIENCE` | comma-separated extra accepted audiences (the resource URL always is) | — |
//! | `MCP_AUTH_REQUIRED_SCOPES` | scopes every request needs (space- or comma-separated) | — |
//! | `MCP_AUTH_SCOPES_SUPPORTED` | the metadata's `scopes_supported` | the required scopes, else every scope of `MCP_AUTH_TOOL_SCOPES` |
//! | `MCP_AUTH_AUTHORIZATION_SERVERS` | the metadata's `authorization_servers` (comma-separated) | the issuer |
//! | `MCP_AUTH_LEEWAY_SECS` | clock leeway for `exp`, `nbf`, `iat` (at most 300) | `60` |
//! | `MCP_AUTH_ALGORITHMS` | comma-separated JWT algorithm allow-list | RS*, PS*, ES256, ES384, EdDSA |
//! | `MCP_AUTH_SCOPE_CLAIM` | the one JWT claim scopes are read from (e.g. `scope` or `scp`) | the union of `scope` and `scp` |
//! | `MCP_AUTH_ALLOWED_ORIGINS` | browser origins allowed besides localhost (comma-separated `scheme://host[:port]`; `*` allows any) | localhost only |
//! | `MCP_AUTH_TOOL_SCOPES` | per-tool scopes, `tool=scope [scope…]`, comma-separated (see [`OperationScopes::parse`]) | — |
//! | `MCP_AUTH_ASSERTION_HEADER` | an identity-aware proxy's assertion header, or a preset: `cloudflare`, `google-iap`, `pomerium` ([`crate::assertion`]) | — |
//! | `MCP_AUTH_ASSERTION_ISSUER` | the proxy's `iss` (Cloudflare: the team domain `https://<team>.cloudflareaccess.com`) | the preset's (Google IAP; Pomerium: the audience) |
//! | `MCP_AUTH_ASSERTION_JWKS_URL` | the proxy's JWKS URL | the preset's |
//! | `MCP_AUTH_ASSERTION_AUDIENCE` | the accepted `aud` values, comma-separated (Cloudflare: the AUD tag) | — |
//! | `MCP_AUTH_INTROSPECTION_URL` | opaque tokens: the RFC 7662 introspection endpoint | with the issuer, its metadata's `introspection_endpoint` |
//! | `MCP_AUTH_INTROSPECTION_CLIENT_ID`, `MCP_AUTH_INTROSPECTION_CLIENT_SECRET` | this server's client credentials at the endpoint (both set: introspection on) | — |
//! | `MCP_AUTH_INTROSPECTION_AUTH` | `client_secret_basic` or `client_secret_post` | `client_secret_basic` |
//! | `MCP_AUTH_FAILURE_LIMIT` | failed authentications allowed per client per window, then `429` ([`crate::throttle`]); `0` turns throttling off | `20` |
//! | `MCP_AUTH_FAILURE_WINDOW_SECS` | the throttling window (at most 86400) | `60` |
//! | `MCP_AUTH_TRUSTED_PROXIES` | comma-separated addresses and CIDRs of reverse proxies whose forwarding header names the client | none: the client is the peer |
//! | `MCP_AUTH_CLIENT_CERT_HEADER` | the header those proxies forward the client's TLS certificate in, for certificate-bound tokens (RFC 8705): URL-encoded PEM (nginx `$ssl_client_escaped_cert`) or Envoy's `x-forwarded-client-cert` ([`crate::mtls`]; needs `MCP_AUTH_TRUSTED_PROXIES`) | only the server's own TLS acceptor |
//! | `MCP_AUTH_FORWARDED_HEADER` | the header those proxies write: `x-forwarded-for` or `forwarded` (RFC 7239) | `x-forwarded-for` |
//! | `MCP_AUTH_REDIS_URL` | keep the throttling counts in Redis or Valkey (`redis://…`; feature `redis`), shared by replicas | in memory |
//! | `MCP_AUTH_AUDIT_LOG` | where the examples and the gateway write the [audit events](crate::audit) as JSON lines: `stderr`, `stdout` or a file path (appended to, reopened on `SIGHUP`) | not written |
//! | `MCP_AUTH_METRICS_LISTEN` | the separate address where the examples and the gateway serve Prometheus metrics at `/metrics` ([`crate::audit::metrics`]) | not served |
//! | `MCP_AUTH_INTROSPECTION_CACHE_SECS` | the longest a positive answer is cached (a revoked token works this long at most; at most 86400) | `60` |
//! | `MCP_AUTH_DPOP` | DPoP-bound tokens ([`crate::dpop`]): `off`, `allowed` (bound tokens need proofs, unbound bearer tokens still work) or `required` (every token must be bound; no static tokens) | `allowed` with `MCP_AUTH_ISSUER_URL` or introspection, else `off` |
//! | `MCP_AUTH_DPOP_ALGORITHMS` | comma-separated proof algorithms (asymmetric only: ES256, ES384, EdDSA (also named Ed25519, RFC 9864), RS256, RS384, RS512, PS256, PS384, PS512) | ES256, ES384, EdDSA, RS256, PS256 |
//! | `MCP_AUTH_DPOP_MAX_AGE_SECS` | how far a proof's `iat` may be from now, either way (1 to 300) | `300` |
//! | `MCP_AUTH_DPOP_NONCE_KEY` | turns server nonces on (RFC 9449 §9): the key shared by every replica, at least 32 bytes in hex (`openssl rand -hex 32`); never logged | no nonces |
//!
//! In JWT mode the layer serves the Protected Resource Metadata document and every challenge
//! points at it; static tokens and a Basic user, if also set, are still accepted. In
//! introspection mode (client credentials set) opaque tokens are introspected; with an issuer,
//! answers must name it, and JWTs from it are verified locally when its keys are known
//! (`MCP_AUTH_JWKS_URL`, or a `jwks_uri` in its metadata), never introspected. A proxy's
//! assertion is accepted besides whatever else is set; set alone, a request without a valid one
//! gets `403` (see [`crate::assertion`]).
//!
//! ```
//! use mcp_server_auth::config::EnvConfig;
//!
//! let config = EnvConfig::from_vars([
//!     ("MCP_AUTH_BEARER_TOKENS", "ci:c2VjcmV0LXRva2VuLWZvci1jaQ,laptop:bGFwdG9wLXRva2VuLTEyMzQ1Ng"),
//! ])
//! .unwrap();
//! assert_eq!(config.resource_url().as_str(), "http://127.0.0.1:8080/mcp");
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let layer = config.layer().await.unwrap(); // an AuthLayer accepting both tokens
//! # let _ = layer;
//! # });
//! ```

mod build;
mod dpop;
mod error;
mod introspection;
mod mtls;
mod telemetry;
mod throttle;

pub use build::EnvVerifier;
pub use error::ConfigError;
pub use throttle::{DEFAULT_FAILURE_LIMIT, DEFAULT_FAILURE_WINDOW, EnvStore, EnvStoreFuture};

use std::{
    collections::{BTreeMap, HashMap},
    fmt,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    str::FromStr,
    time::Duration,
};

use crate::{
    assertion::AssertionVerifier,
    jwt::Algorithm,
    mcp::OperationScopes,
    origin::AllowedOrigins,
    reload::ReloadHandle,
    resource::{Redacted, ResourceUrl, redact_userinfo},
    scope::{ScopeRequirement, ScopeSet},
};

/// The default listen address of the examples.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080);

const VARS: [&str; 36] = [
    "MCP_AUTH_LISTEN",
    "MCP_AUTH_RESOURCE_URL",
    "MCP_AUTH_BEARER_TOKEN",
    "MCP_AUTH_BEARER_TOKENS",
    "MCP_AUTH_BEARER_TOKENS_FILE",
    "MCP_AUTH_BEARER_TOKEN_SCOPES",
    "MCP_AUTH_USER",
    "MCP_AUTH_PASSWORD",
    "MCP_AUTH_USER_SCOPES",
    "MCP_AUTH_REALM",
    "MCP_AUTH_ISSUER_URL",
    "MCP_AUTH_JWKS_URL",
    "MCP_AUTH_AUDIENCE",
    "MCP_AUTH_REQUIRED_SCOPES",
    "MCP_AUTH_SCOPES_SUPPORTED",
    "MCP_AUTH_AUTHORIZATION_SERVERS",
    "MCP_AUTH_LEEWAY_SECS",
    "MCP_AUTH_ALGORITHMS",
    "MCP_AUTH_SCOPE_CLAIM",
    "MCP_AUTH_TOOL_SCOPES",
    "MCP_AUTH_ALLOWED_ORIGINS",
    "MCP_AUTH_ASSERTION_HEADER",
    "MCP_AUTH_ASSERTION_ISSUER",
    "MCP_AUTH_ASSERTION_JWKS_URL",
    "MCP_AUTH_ASSERTION_AUDIENCE",
    introspection::VARS[0],
    introspection::VARS[1],
    introspection::VARS[2],
    introspection::VARS[3],
    introspection::VARS[4],
    throttle::VARS[0],
    throttle::VARS[1],
    throttle::VARS[2],
    throttle::VARS[3],
    throttle::VARS[4],
    mtls::VARS[0],
];

/// JWT settings read from the environment. `Debug` redacts the user information of URLs.
#[derive(Clone)]
struct JwtEnv {
    issuer: String,
    /// Read only where keys are fetched (feature `remote-jwks`).
    #[cfg_attr(not(feature = "remote-jwks"), allow(dead_code))]
    jwks_url: Option<String>,
    audiences: Vec<String>,
    leeway: Option<Duration>,
    algorithms: Option<Vec<Algorithm>>,
    scope_claim: Option<String>,
    authorization_servers: Vec<String>,
}

impl fmt::Debug for JwtEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn urls(v: &[String]) -> Vec<Redacted<'_>> {
            v.iter().map(|u| Redacted(u)).collect()
        }
        f.debug_struct("JwtEnv")
            .field("issuer", &Redacted(&self.issuer))
            .field("jwks_url", &self.jwks_url.as_deref().map(Redacted))
            .field("audiences", &urls(&self.audiences))
            .field("leeway", &self.leeway)
            .field("algorithms", &self.algorithms)
            .field("authorization_servers", &urls(&self.authorization_servers))
            .finish()
    }
}

/// Refuses a URL variable with user information: it has no use there, and would be printed.
fn no_userinfo(var: &'static str, url: Option<String>) -> Result<Option<String>, ConfigError> {
    match url {
        Some(u) if redact_userinfo(&u) != u => Err(ConfigError::UserInfo {
            var,
            url: redact_userinfo(&u),
        }),
        u => Ok(u),
    }
}

fn list(value: &str) -> impl Iterator<Item = &str> {
    value
        .split([',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn comma_list(value: Option<String>) -> Vec<String> {
    value
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Parses `MCP_AUTH_BEARER_TOKEN_SCOPES`: `name=scope [scope…]` entries, comma-separated, each
/// naming one of `tokens` at most once. Errors give the entry's position, never its text.
fn token_scopes(
    value: Option<String>,
    tokens: &[(String, String)],
) -> Result<BTreeMap<String, ScopeSet>, ConfigError> {
    let mut scopes = BTreeMap::new();
    let entries = value.iter().flat_map(|v| v.split(',')).map(str::trim);
    for (i, entry) in entries.enumerate().filter(|(_, e)| !e.is_empty()) {
        let malformed = || ConfigError::TokenScopesEntry(i + 1);
        let (name, list) = entry.split_once('=').ok_or_else(malformed)?;
        let name = name.trim();
        let set = ScopeSet::parse(list.trim()).map_err(|source| ConfigError::Scopes {
            var: "MCP_AUTH_BEARER_TOKEN_SCOPES",
            source,
        })?;
        if name.is_empty() || set.is_empty() || scopes.contains_key(name) {
            return Err(malformed());
        }
        if !tokens.iter().any(|(n, _)| n == name) {
            return Err(ConfigError::UnknownTokenName(i + 1));
        }
        scopes.insert(name.to_owned(), set);
    }
    Ok(scopes)
}

/// Settings read from `MCP_AUTH_*` variables. `Debug` never prints a secret.
#[derive(Clone)]
pub struct EnvConfig {
    listen: SocketAddr,
    resource_url: ResourceUrl,
    tokens: Vec<(String, String)>,
    token_scopes: BTreeMap<String, ScopeSet>,
    token_file: Option<ReloadHandle>,
    basic: Option<(String, String)>,
    user_scopes: ScopeSet,
    realm: String,
    jwt: Option<JwtEnv>,
    required_scopes: Option<ScopeRequirement>,
    scopes_supported: Vec<String>,
    tool_scopes: Option<OperationScopes>,
    allowed_origins: AllowedOrigins,
    assertion: Option<AssertionVerifier>,
    introspection: Option<introspection::IntrospectionEnv>,
    throttle: throttle::ThrottleEnv,
    telemetry: telemetry::TelemetryEnv,
    dpop: dpop::DpopEnv,
    client_cert_header: Option<http::HeaderName>,
}

impl fmt::Debug for EnvConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.tokens.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("EnvConfig")
            .field("listen", &self.listen)
            .field("resource_url", &self.resource_url)
            .field("bearer_token_names", &names)
            .field("bearer_token_scopes", &self.token_scopes)
            .field("bearer_tokens_file", &self.token_file)
            .field("basic_user", &self.basic.as_ref().map(|(u, _)| u))
            .field("basic_user_scopes", &self.user_scopes)
            .field("realm", &self.realm)
            .field("jwt", &self.jwt)
            .field("required_scopes", &self.required_scopes)
            .field("scopes_supported", &self.scopes_supported)
            .field("tool_scopes", &self.tool_scopes)
            .field("allowed_origins", &self.allowed_origins)
            .field("assertion", &self.assertion)
            .field("introspection", &self.introspection)
            .field("throttle", &self.throttle)
            .field("telemetry", &self.telemetry)
            .field("dpop", &self.dpop)
            .field("client_cert_header", &self.client_cert_header)
            .finish()
    }
}

impl EnvConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        let mut vars = Vec::new();
        for name in VARS.into_iter().chain(telemetry::VARS).chain(dpop::VARS) {
            match std::env::var(name) {
                Ok(v) => vars.push((name, v)),
                Err(std::env::VarError::NotPresent) => {}
                Err(std::env::VarError::NotUnicode(_)) => {
                    return Err(ConfigError::NotUnicode(name));
                }
            }
        }
        Self::from_vars(vars)
    }

    /// Reads the given variables instead of the environment (unknown names are ignored; an
    /// empty value counts as unset).
    pub fn from_vars<I, K, V>(vars: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: Into<String>,
    {
        let mut map: HashMap<String, String> = vars
            .into_iter()
            .map(|(k, v)| (k.as_ref().to_owned(), v.into()))
            .filter(|(_, v)| !v.trim().is_empty())
            .collect();
        let mut take = |k: &str| map.remove(k).map(|v| v.trim().to_owned());

        let listen = match take("MCP_AUTH_LISTEN") {
            Some(v) => v.parse().map_err(|_| ConfigError::Listen)?,
            None => DEFAULT_LISTEN,
        };
        let resource_url = match take("MCP_AUTH_RESOURCE_URL") {
            Some(v) => ResourceUrl::parse(&v)?,
            None => {
                let mut addr = listen;
                if addr.ip().is_unspecified() {
                    addr.set_ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
                }
                ResourceUrl::parse(&format!("http://{addr}/mcp"))?
            }
        };
        let token_file = take("MCP_AUTH_BEARER_TOKENS_FILE");
        let mut tokens = Vec::new();
        if let Some(t) = take("MCP_AUTH_BEARER_TOKEN") {
            tokens.push(("default".to_owned(), t));
        }
        if let Some(list) = take("MCP_AUTH_BEARER_TOKENS") {
            for (i, entry) in list.split(',').map(str::trim).enumerate() {
                if entry.is_empty() {
                    continue;
                }
                let (name, token) = crate::bearer::parse_entry(entry, i + 1)
                    .ok_or(ConfigError::TokenEntry(i + 1))?;
                tokens.push((name, token.to_owned()));
            }
        }
        let scopes_of_tokens = take("MCP_AUTH_BEARER_TOKEN_SCOPES");
        let token_file = match token_file {
            Some(_) if !tokens.is_empty() || scopes_of_tokens.is_some() => {
                return Err(ConfigError::TokenFileWithVariables);
            }
            // Read now: a file that cannot be read or parsed stops the start.
            Some(path) => Some(ReloadHandle::from_file(path)?),
            None => None,
        };
        let token_scopes = token_scopes(scopes_of_tokens, &tokens)?;
        let basic = match (take("MCP_AUTH_USER"), take("MCP_AUTH_PASSWORD")) {
            (Some(u), Some(p)) => Some((u, p)),
            (None, None) => None,
            _ => return Err(ConfigError::BasicPair),
        };
        let user_scopes = match take("MCP_AUTH_USER_SCOPES") {
            Some(_) if basic.is_none() => return Err(ConfigError::UserScopesWithoutUser),
            Some(v) => ScopeSet::try_from_iter(list(&v)).map_err(|source| ConfigError::Scopes {
                var: "MCP_AUTH_USER_SCOPES",
                source,
            })?,
            None => ScopeSet::new(),
        };
        let realm = take("MCP_AUTH_REALM").unwrap_or_else(|| "mcp".to_owned());
        let scopes =
            |var: &'static str, value: Option<String>| -> Result<Vec<String>, ConfigError> {
                let value = value.unwrap_or_default();
                let err = |source| ConfigError::Scopes { var, source };
                ScopeSet::try_from_iter(list(&value))
                    .map_err(err)?
                    .refuse_offline_access()
                    .map_err(err)?;
                Ok(list(&value).map(str::to_owned).collect())
            };
        let required = scopes("MCP_AUTH_REQUIRED_SCOPES", take("MCP_AUTH_REQUIRED_SCOPES"))?;
        let required_scopes = if required.is_empty() {
            None
        } else {
            Some(
                ScopeRequirement::all_of(&required).map_err(|source| ConfigError::Scopes {
                    var: "MCP_AUTH_REQUIRED_SCOPES",
                    source,
                })?,
            )
        };
        let mut scopes_supported = scopes(
            "MCP_AUTH_SCOPES_SUPPORTED",
            take("MCP_AUTH_SCOPES_SUPPORTED"),
        )?;
        if scopes_supported.is_empty() {
            scopes_supported = required;
        }
        let issuer = no_userinfo("MCP_AUTH_ISSUER_URL", take("MCP_AUTH_ISSUER_URL"))?;
        let jwks_url = no_userinfo("MCP_AUTH_JWKS_URL", take("MCP_AUTH_JWKS_URL"))?;
        let audiences = comma_list(take("MCP_AUTH_AUDIENCE"));
        let leeway = take("MCP_AUTH_LEEWAY_SECS")
            .map(|v| {
                v.parse::<u64>()
                    .ok()
                    .filter(|s| *s <= 300)
                    .ok_or(ConfigError::Leeway)
            })
            .transpose()?
            .map(Duration::from_secs);
        let algorithms = take("MCP_AUTH_ALGORITHMS")
            .map(|v| {
                list(&v)
                    .map(|a| {
                        Algorithm::from_str(a).map_err(|_| ConfigError::Algorithm(a.to_owned()))
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        let scope_claim = take("MCP_AUTH_SCOPE_CLAIM").map(|v| v.trim().to_owned());
        let servers = comma_list(take("MCP_AUTH_AUTHORIZATION_SERVERS"));
        let introspection = introspection::read(&mut take, issuer.as_deref())?.map(|mut env| {
            env.audiences.clone_from(&audiences);
            env.leeway = leeway;
            env.authorization_servers.clone_from(&servers);
            env
        });
        let jwt = match (issuer, jwks_url) {
            (None, None) => None,
            (None, Some(_)) => return Err(ConfigError::JwksWithoutIssuer),
            (Some(issuer), jwks_url) => Some(JwtEnv {
                authorization_servers: if servers.is_empty() {
                    vec![issuer.clone()]
                } else {
                    servers
                },
                issuer,
                jwks_url,
                audiences,
                leeway,
                algorithms,
                scope_claim,
            }),
        };
        let tool_scopes = take("MCP_AUTH_TOOL_SCOPES")
            .map(|v| OperationScopes::parse(&v))
            .transpose()?
            .filter(|p| !p.is_empty());
        let allowed_origins = match take("MCP_AUTH_ALLOWED_ORIGINS") {
            None => AllowedOrigins::localhost(),
            Some(v) if v.trim() == "*" => AllowedOrigins::any(),
            Some(v) => comma_list(Some(v))
                .iter()
                .try_fold(AllowedOrigins::localhost(), |a, o| a.allow(o))?,
        };
        let assertion = crate::assertion::from_env(
            take("MCP_AUTH_ASSERTION_HEADER"),
            no_userinfo(
                "MCP_AUTH_ASSERTION_ISSUER",
                take("MCP_AUTH_ASSERTION_ISSUER"),
            )?,
            no_userinfo(
                "MCP_AUTH_ASSERTION_JWKS_URL",
                take("MCP_AUTH_ASSERTION_JWKS_URL"),
            )?,
            comma_list(take("MCP_AUTH_ASSERTION_AUDIENCE")),
        )?;
        let verifiers = dpop::Verifiers {
            bound_tokens: jwt.is_some() || introspection.is_some(),
            static_tokens: !tokens.is_empty() || token_file.is_some(),
        };
        let dpop = dpop::read(&mut take, &resource_url, verifiers)?;
        let throttle = throttle::read(&mut take)?;
        let client_cert_header = mtls::read(&mut take, throttle.proxies())?;
        let telemetry = telemetry::read(&mut take)?;
        let config = Self {
            dpop,
            client_cert_header,
            throttle,
            telemetry,
            introspection,
            assertion,
            tool_scopes,
            allowed_origins,
            listen,
            resource_url,
            tokens,
            token_scopes,
            token_file,
            basic,
            user_scopes,
            realm,
            jwt,
            required_scopes,
            scopes_supported,
        };
        // Report bad tokens and users now, not at first use.
        config.static_bearer()?;
        config.basic_auth()?;
        Ok(config)
    }

    /// The per-operation scopes of `MCP_AUTH_TOOL_SCOPES`, if set: give them to
    /// [`AuthLayer::mcp_scopes`](crate::AuthLayer::mcp_scopes).
    pub fn tool_scopes(&self) -> Option<&OperationScopes> {
        self.tool_scopes.as_ref()
    }

    /// Sets the per-operation scopes (for example a program's default when
    /// `MCP_AUTH_TOOL_SCOPES` is not set). Without `MCP_AUTH_SCOPES_SUPPORTED` and
    /// `MCP_AUTH_REQUIRED_SCOPES`, the metadata then advertises every scope they name.
    pub fn set_tool_scopes(&mut self, scopes: OperationScopes) {
        self.tool_scopes = Some(scopes).filter(|s| !s.is_empty());
    }

    /// The browser origins to admit (`MCP_AUTH_ALLOWED_ORIGINS` besides localhost): give them
    /// to [`OriginLayer::new`](crate::origin::OriginLayer::new).
    pub fn allowed_origins(&self) -> &AllowedOrigins {
        &self.allowed_origins
    }

    /// The address to bind.
    pub fn listen(&self) -> SocketAddr {
        self.listen
    }

    /// The public URL of the MCP endpoint.
    pub fn resource_url(&self) -> &ResourceUrl {
        &self.resource_url
    }

    /// The realm.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// Whether any token, user or proxy assertion is configured.
    pub fn has_credentials(&self) -> bool {
        !self.tokens.is_empty()
            || self.token_file.is_some()
            || self.basic.is_some()
            || self.jwt.is_some()
            || self.assertion.is_some()
            || self.introspection.is_some()
    }

    /// The handle of the static tokens of `MCP_AUTH_BEARER_TOKENS_FILE`, if set: the layers
    /// built from this configuration follow the file (a thread looks at it every second);
    /// call [`ReloadHandle::reload`] on `SIGHUP` to reload at once.
    pub fn bearer_tokens_file(&self) -> Option<&ReloadHandle> {
        self.token_file.as_ref()
    }

    /// Whether opaque tokens are introspected (`MCP_AUTH_INTROSPECTION_*` set).
    pub fn introspection_enabled(&self) -> bool {
        self.introspection.is_some()
    }

    /// The verifier of an identity-aware proxy's assertion (`MCP_AUTH_ASSERTION_*`), if set.
    pub fn assertion_verifier(&self) -> Option<&AssertionVerifier> {
        self.assertion.as_ref()
    }

    /// The trusted JWT issuer, in JWT mode.
    pub fn issuer(&self) -> Option<&str> {
        self.jwt.as_ref().map(|j| j.issuer.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        bearer::StaticTokenError,
        scope::ScopeError,
        verifier::{AuthRequest, Credentials, Verdict, Verifier},
    };

    #[test]
    fn tool_scopes_and_origins() {
        use crate::mcp::Operation;
        let c = EnvConfig::from_vars([
            (
                "MCP_AUTH_TOOL_SCOPES",
                "echo=mcp:read, write_note=mcp:write",
            ),
            (
                "MCP_AUTH_ALLOWED_ORIGINS",
                "https://app.example.com, http://10.0.0.5:8080",
            ),
        ])
        .unwrap();
        let scopes = c.tool_scopes().unwrap();
        // Nothing else configured: no metadata without JWT mode.
        assert!(c.metadata().unwrap().is_none());
        let needs = |tool| {
            scopes
                .requirement(&Operation::tool(tool))
                .map(|r| r.challenge_scopes().to_string())
        };
        assert_eq!(needs("write_note").as_deref(), Some("mcp:write"));
        assert_eq!(needs("whoami"), None);
        let allowed = |o: &'static str| c.allowed_origins().is_allowed(&o.parse().unwrap());
        assert!(allowed("https://app.example.com"));
        assert!(allowed("http://10.0.0.5:8080"));
        assert!(allowed("http://localhost:6274"));
        assert!(!allowed("https://evil.example"));
        // Defaults: no tool scopes, localhost origins only; `*` opts out.
        let c = EnvConfig::from_vars::<_, &str, &str>([]).unwrap();
        assert!(c.tool_scopes().is_none());
        assert!(
            !c.allowed_origins()
                .is_allowed(&"https://evil.example".parse().unwrap())
        );
        let c = EnvConfig::from_vars([("MCP_AUTH_ALLOWED_ORIGINS", "*")]).unwrap();
        assert!(
            c.allowed_origins()
                .is_allowed(&"https://evil.example".parse().unwrap())
        );
        // Clear errors.
        let e = EnvConfig::from_vars([("MCP_AUTH_TOOL_SCOPES", "echo")]).unwrap_err();
        assert!(matches!(e, ConfigError::ToolScopes(_)), "{e}");
        assert!(e.to_string().starts_with("MCP_AUTH_TOOL_SCOPES: "), "{e}");
        let e =
            EnvConfig::from_vars([("MCP_AUTH_ALLOWED_ORIGINS", "https://a.example/")]).unwrap_err();
        assert!(matches!(e, ConfigError::Origin(_)), "{e}");
    }

    #[test]
    fn defaults_and_errors() {
        let c = EnvConfig::from_vars::<_, &str, &str>([]).unwrap();
        assert_eq!(c.listen(), DEFAULT_LISTEN);
        assert!(!c.has_credentials());
        let c = EnvConfig::from_vars([("MCP_AUTH_LISTEN", "0.0.0.0:9000")]).unwrap();
        assert_eq!(c.resource_url().as_str(), "http://127.0.0.1:9000/mcp");
        assert_eq!(
            EnvConfig::from_vars([("MCP_AUTH_LISTEN", "nope")]).unwrap_err(),
            ConfigError::Listen
        );
        assert_eq!(
            EnvConfig::from_vars([("MCP_AUTH_USER", "u")]).unwrap_err(),
            ConfigError::BasicPair
        );
        assert_eq!(
            EnvConfig::from_vars([("MCP_AUTH_BEARER_TOKENS", "a:,b")]).unwrap_err(),
            ConfigError::TokenEntry(1)
        );
        let e = EnvConfig::from_vars([("MCP_AUTH_BEARER_TOKEN", "tiny-secret")]).unwrap_err();
        assert!(matches!(
            e,
            ConfigError::Token(StaticTokenError::TooShort { .. })
        ));
        assert!(!e.to_string().contains("tiny-secret"));
        assert!(matches!(
            EnvConfig::from_vars([("MCP_AUTH_RESOURCE_URL", "http://example.com/mcp")]),
            Err(ConfigError::ResourceUrl(_))
        ));
    }

    #[test]
    fn jwt_variables() {
        let c = EnvConfig::from_vars([
            ("MCP_AUTH_ISSUER_URL", "https://auth.example.com"),
            ("MCP_AUTH_REQUIRED_SCOPES", "mcp:read, mcp:write"),
            (
                "MCP_AUTH_AUDIENCE",
                "api://mcp, https://alias.example.com/mcp",
            ),
            ("MCP_AUTH_LEEWAY_SECS", "30"),
            ("MCP_AUTH_ALGORITHMS", "RS256,ES256"),
            ("MCP_AUTH_SCOPE_CLAIM", " scp "),
        ])
        .unwrap();
        assert!(c.has_credentials());
        assert_eq!(c.issuer(), Some("https://auth.example.com"));
        let m = c.metadata().unwrap().unwrap();
        assert_eq!(m.authorization_servers(), ["https://auth.example.com"]);
        assert_eq!(m.scopes_supported(), ["mcp:read", "mcp:write"]);
        let jwt = c.jwt.as_ref().unwrap();
        assert_eq!(
            jwt.audiences,
            ["api://mcp", "https://alias.example.com/mcp"]
        );
        assert_eq!(jwt.leeway, Some(Duration::from_secs(30)));
        assert_eq!(jwt.scope_claim.as_deref(), Some("scp"));
        assert_eq!(
            jwt.algorithms.as_deref(),
            Some(&[Algorithm::RS256, Algorithm::ES256][..])
        );

        let c = EnvConfig::from_vars([
            ("MCP_AUTH_ISSUER_URL", "https://auth.example.com"),
            (
                "MCP_AUTH_AUTHORIZATION_SERVERS",
                "https://a.example.com,https://b.example.com",
            ),
            ("MCP_AUTH_SCOPES_SUPPORTED", "mcp:basic"),
        ])
        .unwrap();
        let m = c.metadata().unwrap().unwrap();
        assert_eq!(
            m.authorization_servers(),
            ["https://a.example.com", "https://b.example.com"]
        );
        assert_eq!(m.scopes_supported(), ["mcp:basic"]);
        // Tool scopes fill an empty scopes_supported; an explicit one wins.
        let mut c = EnvConfig::from_vars([
            ("MCP_AUTH_ISSUER_URL", "https://auth.example.com"),
            ("MCP_AUTH_TOOL_SCOPES", "echo=mcp:read,write_note=mcp:write"),
        ])
        .unwrap();
        let m = c.metadata().unwrap().unwrap();
        assert_eq!(m.scopes_supported(), ["mcp:read", "mcp:write"]);
        c.set_tool_scopes(OperationScopes::parse("a=x:y").unwrap());
        assert_eq!(c.metadata().unwrap().unwrap().scopes_supported(), ["x:y"]);
        let c = EnvConfig::from_vars([
            ("MCP_AUTH_ISSUER_URL", "https://auth.example.com"),
            ("MCP_AUTH_TOOL_SCOPES", "echo=mcp:read,write_note=mcp:write"),
            ("MCP_AUTH_SCOPES_SUPPORTED", "mcp:read"),
        ])
        .unwrap();
        assert_eq!(
            c.metadata().unwrap().unwrap().scopes_supported(),
            ["mcp:read"]
        );
        assert!(
            EnvConfig::from_vars::<_, &str, &str>([])
                .unwrap()
                .metadata()
                .unwrap()
                .is_none()
        );
    }

    #[cfg(feature = "remote-jwks")]
    #[test]
    fn assertion_variables_fill_a_preset_and_say_what_is_missing() {
        use crate::assertion::AssertionError as E;
        let c = EnvConfig::from_vars([
            ("MCP_AUTH_ASSERTION_HEADER", "google-iap"),
            ("MCP_AUTH_ASSERTION_AUDIENCE", "/projects/1/apps/p"),
        ])
        .unwrap();
        assert!(c.has_credentials());
        let v = c.assertion_verifier().unwrap();
        assert_eq!(v.header(), "x-goog-iap-jwt-assertion");
        let jwks = "https://www.gstatic.com/iap/verify/public_key-jwk";
        assert_eq!(v.issuer().issuer(), "https://cloud.google.com/iap");
        assert_eq!(v.issuer().jwks_uri(), Some(jwks));
        let c = EnvConfig::from_vars([
            ("MCP_AUTH_ASSERTION_HEADER", "X-Proxy-Assertion"),
            ("MCP_AUTH_ASSERTION_ISSUER", "https://proxy.example.com"),
            (
                "MCP_AUTH_ASSERTION_JWKS_URL",
                "https://proxy.example.com/jwks",
            ),
            ("MCP_AUTH_ASSERTION_AUDIENCE", "mcp-a, mcp-b"),
        ])
        .unwrap();
        let v = c.assertion_verifier().unwrap();
        assert_eq!(v.header(), "x-proxy-assertion");
        assert_eq!(
            v.issuer().jwks_uri(),
            Some("https://proxy.example.com/jwks")
        );
        let c = EnvConfig::from_vars([
            ("MCP_AUTH_ASSERTION_HEADER", "cloudflare"),
            ("MCP_AUTH_ASSERTION_ISSUER", "acme.cloudflareaccess.com/"),
            ("MCP_AUTH_ASSERTION_AUDIENCE", "4714c1358e65fe4b"),
        ])
        .unwrap();
        let v = c.assertion_verifier().unwrap().issuer();
        assert_eq!(v.issuer(), "https://acme.cloudflareaccess.com");
        let certs = "https://acme.cloudflareaccess.com/cdn-cgi/access/certs";
        assert_eq!(v.jwks_uri(), Some(certs));

        let err = |vars: &[(&str, &str)]| EnvConfig::from_vars(vars.iter().copied()).unwrap_err();
        let header = ("MCP_AUTH_ASSERTION_HEADER", "cloudflare");
        let aud = ("MCP_AUTH_ASSERTION_AUDIENCE", "4714c1358e65fe4b");
        assert_eq!(err(&[aud]), ConfigError::Assertion(E::NoHeader));
        assert_eq!(err(&[header, aud]), ConfigError::Assertion(E::NoIssuer));
        let team = (
            "MCP_AUTH_ASSERTION_ISSUER",
            "https://t.cloudflareaccess.com",
        );
        assert_eq!(err(&[header, team]), ConfigError::Assertion(E::NoAudience));
        let custom = ("MCP_AUTH_ASSERTION_HEADER", "X-Proxy-Assertion");
        assert_eq!(err(&[custom, team, aud]), ConfigError::Assertion(E::NoKeys));
        let auth = ("MCP_AUTH_ASSERTION_HEADER", "Authorization");
        let jwks = ("MCP_AUTH_ASSERTION_JWKS_URL", "https://t/jwks");
        assert_eq!(
            err(&[auth, team, jwks, aud]),
            ConfigError::Assertion(E::Header)
        );
        let secret = ("MCP_AUTH_ASSERTION_ISSUER", "https://u:hunter2@t.example");
        let e = err(&[header, secret, aud]);
        assert!(matches!(e, ConfigError::UserInfo { .. }), "{e:?}");
        assert!(!e.to_string().contains("hunter2"));
    }

    #[test]
    fn jwt_variable_errors() {
        let err = |vars: &[(&str, &str)]| EnvConfig::from_vars(vars.iter().copied()).unwrap_err();
        assert_eq!(
            err(&[("MCP_AUTH_JWKS_URL", "https://a/jwks")]),
            ConfigError::JwksWithoutIssuer
        );
        assert_eq!(
            err(&[
                ("MCP_AUTH_ISSUER_URL", "https://a"),
                ("MCP_AUTH_LEEWAY_SECS", "301")
            ]),
            ConfigError::Leeway
        );
        assert_eq!(
            err(&[
                ("MCP_AUTH_ISSUER_URL", "https://a"),
                ("MCP_AUTH_ALGORITHMS", "RS256,none")
            ]),
            ConfigError::Algorithm("none".into())
        );
        assert!(matches!(
            err(&[("MCP_AUTH_REQUIRED_SCOPES", "mcp:read offline_access")]),
            ConfigError::Scopes {
                var: "MCP_AUTH_REQUIRED_SCOPES",
                source: ScopeError::OfflineAccess
            }
        ));
        assert!(matches!(
            err(&[("MCP_AUTH_SCOPES_SUPPORTED", "bad\"scope")]),
            ConfigError::Scopes {
                var: "MCP_AUTH_SCOPES_SUPPORTED",
                ..
            }
        ));
    }

    const LAPTOP: &str = "bGFwdG9wLXRva2VuLTEyMzQ1Ng";
    const CI: &str = "c2VjcmV0LXRva2VuLWZvci1jaQ";

    /// The scopes granted to whoever presents `token`, or `None` if it is refused.
    fn granted_to(c: &EnvConfig, token: &str) -> Option<String> {
        match c
            .static_bearer()
            .unwrap()?
            .verify(&AuthRequest::credentials_only(Credentials::Bearer(token)))
        {
            Verdict::Ready(Ok(info)) => Some(info.scopes().to_string()),
            _ => None,
        }
    }

    #[test]
    fn static_tokens_get_the_scopes_named_for_them() {
        let tokens = format!("laptop:{LAPTOP},ci:{CI}");
        let c = EnvConfig::from_vars([
            ("MCP_AUTH_BEARER_TOKENS", tokens.as_str()),
            (
                "MCP_AUTH_BEARER_TOKEN_SCOPES",
                " laptop = mcp:read  mcp:write , ci=mcp:read,",
            ),
        ])
        .unwrap();
        assert_eq!(
            granted_to(&c, LAPTOP).as_deref(),
            Some("mcp:read mcp:write")
        );
        assert_eq!(granted_to(&c, CI).as_deref(), Some("mcp:read"));
        // A token without an entry has no scopes; `default` and `token-<n>` are names too.
        let bare = "YmFyZS10b2tlbi1mb3ItdGhlLXRlc3Rz";
        let tokens = format!("{bare},ci:{CI}");
        let c = EnvConfig::from_vars([
            ("MCP_AUTH_BEARER_TOKEN", LAPTOP),
            ("MCP_AUTH_BEARER_TOKENS", tokens.as_str()),
            ("MCP_AUTH_BEARER_TOKEN_SCOPES", "default=a:b,token-1=c:d"),
        ])
        .unwrap();
        assert_eq!(granted_to(&c, LAPTOP).as_deref(), Some("a:b"));
        assert_eq!(granted_to(&c, bare).as_deref(), Some("c:d"));
        assert_eq!(granted_to(&c, CI).as_deref(), Some(""));
    }

    #[test]
    fn token_scope_errors_name_the_variable_and_never_a_token() {
        let err = |scopes: &str| {
            let tokens = format!("laptop:{LAPTOP},ci:{CI}");
            EnvConfig::from_vars([
                ("MCP_AUTH_BEARER_TOKENS", tokens.as_str()),
                ("MCP_AUTH_BEARER_TOKEN_SCOPES", scopes),
            ])
            .unwrap_err()
        };
        // An unknown name (here a token pasted in place of its name) is reported by position.
        let e = err(&format!("ci=mcp:read,{LAPTOP}=mcp:read"));
        assert_eq!(e, ConfigError::UnknownTokenName(2));
        let message = e.to_string();
        assert!(
            message.starts_with("MCP_AUTH_BEARER_TOKEN_SCOPES"),
            "{message}"
        );
        assert!(!message.contains(LAPTOP), "{message}");
        assert_eq!(err("nobody=mcp:read"), ConfigError::UnknownTokenName(1));
        // Malformed entries: no `=`, no name, no scope, a name given twice.
        for (scopes, entry) in [
            ("ci:mcp:read", 1),
            ("ci=mcp:read,=mcp:read", 2),
            ("ci=", 1),
            ("ci=a:b,ci=c:d", 2),
        ] {
            let e = err(scopes);
            assert_eq!(e, ConfigError::TokenScopesEntry(entry), "{scopes}");
            assert!(e.to_string().starts_with("MCP_AUTH_BEARER_TOKEN_SCOPES"));
        }
        // A malformed scope.
        assert!(matches!(
            err("ci=mcp:read bad\"scope"),
            ConfigError::Scopes {
                var: "MCP_AUTH_BEARER_TOKEN_SCOPES",
                source: ScopeError::Invalid(_)
            }
        ));
    }

    #[test]
    fn the_basic_user_gets_the_user_scopes() {
        let granted = |c: &EnvConfig, header: &str| {
            let basic = crate::credentials::basic(header).unwrap();
            match c
                .basic_auth()
                .unwrap()
                .unwrap()
                .verify(&AuthRequest::credentials_only(Credentials::Basic(&basic)))
            {
                Verdict::Ready(Ok(info)) => info.scopes().to_string(),
                _ => panic!("refused"),
            }
        };
        let user = [("MCP_AUTH_USER", "alice"), ("MCP_AUTH_PASSWORD", "pw")];
        let alice = "YWxpY2U6cHc="; // alice:pw
        let mut vars = user.to_vec();
        vars.push(("MCP_AUTH_USER_SCOPES", "mcp:write  mcp:read"));
        let c = EnvConfig::from_vars(vars).unwrap();
        assert_eq!(granted(&c, alice), "mcp:read mcp:write");
        assert_eq!(granted(&EnvConfig::from_vars(user).unwrap(), alice), "");
        let mut vars = user.to_vec();
        vars.push(("MCP_AUTH_USER_SCOPES", "mcp:read bad\"scope"));
        assert!(matches!(
            EnvConfig::from_vars(vars).unwrap_err(),
            ConfigError::Scopes {
                var: "MCP_AUTH_USER_SCOPES",
                ..
            }
        ));
        assert_eq!(
            EnvConfig::from_vars([("MCP_AUTH_USER_SCOPES", "mcp:read")]).unwrap_err(),
            ConfigError::UserScopesWithoutUser
        );
    }

    #[test]
    fn debug_redacts() {
        let c = EnvConfig::from_vars([
            ("MCP_AUTH_BEARER_TOKENS", "ci:c2VjcmV0LXRva2VuLWZvci1jaQ"),
            ("MCP_AUTH_USER", "alice"),
            ("MCP_AUTH_PASSWORD", "hunter2-hunter2"),
        ])
        .unwrap();
        let d = format!("{c:?} {:?}", c.static_bearer().unwrap());
        assert!(!d.contains("c2VjcmV0LXRva2VuLWZvci1jaQ") && !d.contains("hunter2"));
        assert!(d.contains("ci") && d.contains("alice"));
    }
}
