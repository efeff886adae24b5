//! Configuration from the environment, for the examples and for servers that want the same
//! variables.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `MCP_AUTH_LISTEN` | the address the examples bind | `127.0.0.1:8080` |
//! | `MCP_AUTH_RESOURCE_URL` | the public URL of the MCP endpoint | `http://<listen>/mcp` |
//! | `MCP_AUTH_BEARER_TOKEN` | one static bearer token (named `default`) | — |
//! | `MCP_AUTH_BEARER_TOKENS` | comma-separated tokens, each `token` or `name:token` | — |
//! | `MCP_AUTH_USER`, `MCP_AUTH_PASSWORD` | one HTTP Basic user | — |
//! | `MCP_AUTH_REALM` | the realm of the challenges | `mcp` |
//!
//! ```
//! use mcp_server_auth::config::EnvConfig;
//!
//! let config = EnvConfig::from_vars([
//!     ("MCP_AUTH_BEARER_TOKENS", "ci:c2VjcmV0LXRva2VuLWZvci1jaQ,laptop:bGFwdG9wLXRva2VuLTEyMzQ1Ng"),
//! ])
//! .unwrap();
//! assert_eq!(config.resource_url().as_str(), "http://127.0.0.1:8080/mcp");
//! let layer = config.layer().unwrap(); // an AuthLayer accepting both tokens
//! # let _ = layer;
//! ```

use std::{
    collections::HashMap,
    fmt,
    net::{IpAddr, Ipv4Addr, SocketAddr},
};

use crate::{
    basic::{BasicAuth, BasicUserError},
    bearer::{StaticBearer, StaticTokenError},
    layer::{AuthLayer, BuildError},
    resource::{ResourceUrl, ResourceUrlError},
    verifier::{Credentials, Or, Schemes, Verdict, Verifier, VerifierExt},
};

/// The default listen address of the examples.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080);

const VARS: [&str; 7] = [
    "MCP_AUTH_LISTEN",
    "MCP_AUTH_RESOURCE_URL",
    "MCP_AUTH_BEARER_TOKEN",
    "MCP_AUTH_BEARER_TOKENS",
    "MCP_AUTH_USER",
    "MCP_AUTH_PASSWORD",
    "MCP_AUTH_REALM",
];

/// What is wrong with the configuration. No variant contains a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A variable is not valid Unicode.
    #[error("{0} is not valid Unicode")]
    NotUnicode(&'static str),
    /// `MCP_AUTH_LISTEN` is not a socket address.
    #[error("MCP_AUTH_LISTEN must be an address such as 127.0.0.1:8080")]
    Listen,
    /// `MCP_AUTH_RESOURCE_URL` is not acceptable.
    #[error("MCP_AUTH_RESOURCE_URL: {0}")]
    ResourceUrl(#[from] ResourceUrlError),
    /// An entry of `MCP_AUTH_BEARER_TOKENS` has an empty name or token.
    #[error("MCP_AUTH_BEARER_TOKENS entry {0} is malformed: use `token` or `name:token`")]
    TokenEntry(usize),
    /// A configured token is not acceptable.
    #[error("bearer token: {0}")]
    Token(#[from] StaticTokenError),
    /// Only one of `MCP_AUTH_USER` and `MCP_AUTH_PASSWORD` is set.
    #[error("set both MCP_AUTH_USER and MCP_AUTH_PASSWORD, or neither")]
    BasicPair,
    /// The Basic user is not acceptable.
    #[error("Basic user: {0}")]
    Basic(#[from] BasicUserError),
    /// The layer cannot be built.
    #[error("{0}")]
    Build(#[from] BuildError),
}

/// Settings read from `MCP_AUTH_*` variables. `Debug` never prints a secret.
#[derive(Clone)]
pub struct EnvConfig {
    listen: SocketAddr,
    resource_url: ResourceUrl,
    tokens: Vec<(String, String)>,
    basic: Option<(String, String)>,
    realm: String,
}

impl fmt::Debug for EnvConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.tokens.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("EnvConfig")
            .field("listen", &self.listen)
            .field("resource_url", &self.resource_url)
            .field("bearer_token_names", &names)
            .field("basic_user", &self.basic.as_ref().map(|(u, _)| u))
            .field("realm", &self.realm)
            .finish()
    }
}

impl EnvConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        let mut vars = Vec::new();
        for name in VARS {
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
        let mut tokens = Vec::new();
        if let Some(t) = take("MCP_AUTH_BEARER_TOKEN") {
            tokens.push(("default".to_owned(), t));
        }
        if let Some(list) = take("MCP_AUTH_BEARER_TOKENS") {
            for (i, entry) in list.split(',').map(str::trim).enumerate() {
                if entry.is_empty() {
                    continue;
                }
                let (name, token) = match entry.split_once(':') {
                    Some((n, t)) => (n.trim().to_owned(), t.trim().to_owned()),
                    None => (format!("token-{}", i + 1), entry.to_owned()),
                };
                if name.is_empty() || token.is_empty() {
                    return Err(ConfigError::TokenEntry(i + 1));
                }
                tokens.push((name, token));
            }
        }
        let basic = match (take("MCP_AUTH_USER"), take("MCP_AUTH_PASSWORD")) {
            (Some(u), Some(p)) => Some((u, p)),
            (None, None) => None,
            _ => return Err(ConfigError::BasicPair),
        };
        let realm = take("MCP_AUTH_REALM").unwrap_or_else(|| "mcp".to_owned());
        let config = Self {
            listen,
            resource_url,
            tokens,
            basic,
            realm,
        };
        // Report bad tokens and users now, not at first use.
        config.static_bearer()?;
        config.basic_auth()?;
        Ok(config)
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

    /// Whether any token or user is configured.
    pub fn has_credentials(&self) -> bool {
        !self.tokens.is_empty() || self.basic.is_some()
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

    /// The static-token verifier, if any token is configured.
    pub fn static_bearer(&self) -> Result<Option<StaticBearer>, ConfigError> {
        if self.tokens.is_empty() {
            return Ok(None);
        }
        Ok(Some(StaticBearer::new(
            self.tokens.iter().map(|(n, t)| (n.clone(), t)),
        )?))
    }

    /// The Basic verifier, if a user is configured.
    pub fn basic_auth(&self) -> Result<Option<BasicAuth>, ConfigError> {
        match &self.basic {
            Some((u, p)) => Ok(Some(BasicAuth::builder().user(u.clone(), p).build()?)),
            None => Ok(None),
        }
    }

    /// A verifier accepting every configured token and user.
    pub fn verifier(&self) -> Result<EnvVerifier, ConfigError> {
        Ok(EnvVerifier(VerifierExt::or(
            self.static_bearer()?,
            self.basic_auth()?,
        )))
    }

    /// A layer with [`verifier`](Self::verifier) and the configured realm.
    pub fn layer(&self) -> Result<AuthLayer<EnvVerifier>, ConfigError> {
        Ok(AuthLayer::builder(self.verifier()?)
            .realm(self.realm.clone())
            .build()?)
    }
}

/// The verifier built from the environment by [`EnvConfig::verifier`].
#[derive(Debug, Clone)]
pub struct EnvVerifier(Or<Option<StaticBearer>, Option<BasicAuth>>);

impl Verifier for EnvVerifier {
    fn schemes(&self) -> Schemes {
        self.0.schemes()
    }
    fn verify(&self, credentials: &Credentials<'_>) -> Verdict {
        self.0.verify(credentials)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn debug_redacts() {
        let c = EnvConfig::from_vars([
            ("MCP_AUTH_BEARER_TOKENS", "ci:c2VjcmV0LXRva2VuLWZvci1jaQ"),
            ("MCP_AUTH_USER", "alice"),
            ("MCP_AUTH_PASSWORD", "hunter2-hunter2"),
        ])
        .unwrap();
        let d = format!("{c:?} {:?}", c.verifier().unwrap());
        assert!(!d.contains("c2VjcmV0LXRva2VuLWZvci1jaQ") && !d.contains("hunter2"));
        assert!(d.contains("ci") && d.contains("alice"));
    }
}
