//! `MCP_AUTH_INTROSPECTION_*`: opaque access tokens, checked by the authorization server
//! (RFC 7662; see `crate::introspection`).
//!
//! Introspection is on when client credentials are given: the endpoint is
//! `MCP_AUTH_INTROSPECTION_URL`, or the `introspection_endpoint` of `MCP_AUTH_ISSUER_URL`'s
//! metadata (which then needs no `jwks_uri`). With an issuer, answers must name it in `iss`;
//! JWTs from it are verified locally when its keys are known (`MCP_AUTH_JWKS_URL`, or the
//! metadata's `jwks_uri`), and never introspected.
//!
//! ```
//! use mcp_server_auth::config::EnvConfig;
//!
//! let config = EnvConfig::from_vars([
//!     ("MCP_AUTH_ISSUER_URL", "https://auth.example.com"),
//!     ("MCP_AUTH_INTROSPECTION_CLIENT_ID", "mcp-server"),
//!     ("MCP_AUTH_INTROSPECTION_CLIENT_SECRET", "s3cr:t+%"),
//! ])
//! .unwrap();
//! assert!(config.introspection_enabled());
//! assert!(!format!("{config:?}").contains("s3cr"));
//! ```

use std::{fmt, time::Duration};

use super::{ConfigError, no_userinfo};
use crate::resource::Redacted;

/// The longest `MCP_AUTH_INTROSPECTION_CACHE_SECS` accepted: a day.
const MAX_CACHE_SECS: u64 = 24 * 60 * 60;

/// How this server authenticates to the endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Method {
    Basic,
    Post,
}

/// Introspection settings read from the environment. `Debug` shows no secret.
#[derive(Clone)]
pub(super) struct IntrospectionEnv {
    pub(super) url: Option<String>,
    pub(super) client_id: String,
    /// Read only where the verifier is built (feature `introspection`).
    #[cfg_attr(not(feature = "introspection"), allow(dead_code))]
    pub(super) client_secret: String,
    pub(super) method: Method,
    pub(super) max_age: Option<Duration>,
    /// `MCP_AUTH_AUDIENCE` and `MCP_AUTH_LEEWAY_SECS`, also without an issuer.
    pub(super) audiences: Vec<String>,
    pub(super) leeway: Option<Duration>,
    /// `MCP_AUTH_AUTHORIZATION_SERVERS`, for the metadata document without an issuer.
    pub(super) authorization_servers: Vec<String>,
}

impl fmt::Debug for IntrospectionEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntrospectionEnv")
            .field("url", &self.url.as_deref().map(Redacted))
            .field("client_id", &self.client_id)
            .field("method", &self.method)
            .field("max_age", &self.max_age)
            .finish_non_exhaustive()
    }
}

/// The variables read here, all of them introspection's.
pub(super) const VARS: [&str; 5] = [
    "MCP_AUTH_INTROSPECTION_URL",
    "MCP_AUTH_INTROSPECTION_CLIENT_ID",
    "MCP_AUTH_INTROSPECTION_CLIENT_SECRET",
    "MCP_AUTH_INTROSPECTION_AUTH",
    "MCP_AUTH_INTROSPECTION_CACHE_SECS",
];

/// Reads the introspection variables through `take`; `None` when none is set.
pub(super) fn read(
    mut take: impl FnMut(&str) -> Option<String>,
    issuer: Option<&str>,
) -> Result<Option<IntrospectionEnv>, ConfigError> {
    let [url, id, secret, method, cache] = VARS.map(&mut take);
    if [&url, &id, &secret, &method, &cache]
        .iter()
        .all(|v| v.is_none())
    {
        return Ok(None);
    }
    let url = no_userinfo("MCP_AUTH_INTROSPECTION_URL", url)?;
    let (Some(client_id), Some(client_secret)) = (id, secret) else {
        return Err(ConfigError::IntrospectionCredentials);
    };
    if url.is_none() && issuer.is_none() {
        return Err(ConfigError::IntrospectionEndpoint);
    }
    let method = match method.as_deref() {
        None | Some("client_secret_basic") => Method::Basic,
        Some("client_secret_post") => Method::Post,
        Some(_) => return Err(ConfigError::IntrospectionAuth),
    };
    let max_age = cache
        .map(|v| {
            v.parse::<u64>()
                .ok()
                .filter(|s| *s <= MAX_CACHE_SECS)
                .map(Duration::from_secs)
                .ok_or(ConfigError::IntrospectionCacheSecs)
        })
        .transpose()?;
    Ok(Some(IntrospectionEnv {
        url,
        client_id,
        client_secret,
        method,
        max_age,
        audiences: Vec::new(),
        leeway: None,
        authorization_servers: Vec::new(),
    }))
}

#[cfg(test)]
mod tests {
    use super::super::EnvConfig;
    use super::*;

    const SECRET: &str = "s3cr:t+%-Zq8wLx";

    #[test]
    fn the_variables_switch_introspection_on_and_say_what_is_missing() {
        let err = |vars: &[(&str, &str)]| EnvConfig::from_vars(vars.iter().copied()).unwrap_err();
        let id = ("MCP_AUTH_INTROSPECTION_CLIENT_ID", "mcp");
        let secret = ("MCP_AUTH_INTROSPECTION_CLIENT_SECRET", SECRET);
        let url = (
            "MCP_AUTH_INTROSPECTION_URL",
            "https://as.example.com/introspect",
        );
        let issuer = ("MCP_AUTH_ISSUER_URL", "https://as.example.com");
        assert_eq!(err(&[url, id]), ConfigError::IntrospectionCredentials);
        assert_eq!(err(&[id, secret]), ConfigError::IntrospectionEndpoint);
        let post = ("MCP_AUTH_INTROSPECTION_AUTH", "client_secret_jwt");
        assert_eq!(
            err(&[url, id, secret, post]),
            ConfigError::IntrospectionAuth
        );
        let cache = ("MCP_AUTH_INTROSPECTION_CACHE_SECS", "86401");
        assert_eq!(
            err(&[url, id, secret, cache]),
            ConfigError::IntrospectionCacheSecs
        );
        let userinfo = ("MCP_AUTH_INTROSPECTION_URL", "https://u:hunter2@as/i");
        let e = err(&[userinfo, id, secret]);
        assert!(matches!(e, ConfigError::UserInfo { .. }), "{e:?}");
        assert!(!e.to_string().contains("hunter2"));

        for vars in [&[url, id, secret][..], &[issuer, id, secret]] {
            let c = EnvConfig::from_vars(vars.iter().copied()).unwrap();
            assert!(c.has_credentials() && c.introspection_enabled());
            assert!(!format!("{c:?}").contains(SECRET));
        }
        let c = EnvConfig::from_vars([
            url,
            id,
            secret,
            ("MCP_AUTH_INTROSPECTION_AUTH", "client_secret_post"),
            ("MCP_AUTH_INTROSPECTION_CACHE_SECS", "30"),
        ])
        .unwrap();
        let env = c.introspection.as_ref().unwrap();
        assert_eq!(env.method, Method::Post);
        assert_eq!(env.max_age, Some(Duration::from_secs(30)));
        assert!(
            !EnvConfig::from_vars([issuer])
                .unwrap()
                .introspection_enabled()
        );
    }
}
