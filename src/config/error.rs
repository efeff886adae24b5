//! [`ConfigError`]: everything that can be wrong with the `MCP_AUTH_*` variables.
//!
//! An operator reads these messages in a start-up log, often far from the code, so each one
//! names the variable and says what to write instead; and since the variables hold tokens,
//! passwords and client secrets, no variant carries a value that might be one (a misplaced
//! token is reported by its position, a URL without its user information). The enum is
//! `#[non_exhaustive]`: a new variable may bring a new way to be wrong.
//!
//! ```
//! use mcp_server_auth::config::{ConfigError, EnvConfig};
//!
//! let err = EnvConfig::from_vars([("MCP_AUTH_USER", "alice")]).unwrap_err();
//! assert_eq!(err, ConfigError::BasicPair);
//! assert_eq!(err.to_string(), "set both MCP_AUTH_USER and MCP_AUTH_PASSWORD, or neither");
//! ```

use crate::{
    assertion::AssertionError, auth::BuildError, basic::BasicUserError, bearer::StaticTokenError,
    jwt::JwtConfigError, mcp::OperationScopesError, metadata::MetadataError, origin::OriginError,
    reload::TokenFileError, resource::ResourceUrlError, scope::ScopeError,
    throttle::TrustedProxiesError,
};

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
    /// `MCP_AUTH_METRICS_LISTEN` is not a socket address.
    #[error("MCP_AUTH_METRICS_LISTEN must be an address such as 127.0.0.1:9464")]
    MetricsListen,
    /// `MCP_AUTH_RESOURCE_URL` is not acceptable.
    #[error("MCP_AUTH_RESOURCE_URL: {0}")]
    ResourceUrl(#[from] ResourceUrlError),
    /// An entry of `MCP_AUTH_BEARER_TOKENS` has an empty name or token.
    #[error("MCP_AUTH_BEARER_TOKENS entry {0} is malformed: use `token` or `name:token`")]
    TokenEntry(usize),
    /// A configured token is not acceptable.
    #[error("bearer token: {0}")]
    Token(#[from] StaticTokenError),
    /// An entry of `MCP_AUTH_BEARER_TOKEN_SCOPES` (counted from 1) is not `name=scope [scope…]`,
    /// or names a token a second time.
    #[error(
        "MCP_AUTH_BEARER_TOKEN_SCOPES entry {0} is malformed: use `name=scope [scope…]`, one \
         entry per token name"
    )]
    TokenScopesEntry(usize),
    /// An entry of `MCP_AUTH_BEARER_TOKEN_SCOPES` (counted from 1) names no configured token.
    /// The name is not repeated: it might be a token pasted in the wrong place.
    #[error(
        "MCP_AUTH_BEARER_TOKEN_SCOPES entry {0} names no configured token: use a name of \
         MCP_AUTH_BEARER_TOKENS (`name:token`; a bare token is `token-<position>`), or `default` \
         for MCP_AUTH_BEARER_TOKEN"
    )]
    UnknownTokenName(usize),
    /// `MCP_AUTH_BEARER_TOKENS_FILE` is set with `MCP_AUTH_BEARER_TOKEN`,
    /// `MCP_AUTH_BEARER_TOKENS` or `MCP_AUTH_BEARER_TOKEN_SCOPES`.
    #[error(
        "MCP_AUTH_BEARER_TOKENS_FILE cannot be combined with MCP_AUTH_BEARER_TOKEN, \
         MCP_AUTH_BEARER_TOKENS or MCP_AUTH_BEARER_TOKEN_SCOPES: put every static token, with \
         its scopes, in the file (`name:token [scope …]` per line), or use the variables alone"
    )]
    TokenFileWithVariables,
    /// The file of `MCP_AUTH_BEARER_TOKENS_FILE` cannot be read, or a line of it is wrong
    /// (named by its number, never its text).
    #[error("MCP_AUTH_BEARER_TOKENS_FILE: {0}")]
    TokenFile(#[from] TokenFileError),
    /// `MCP_AUTH_USER_SCOPES` is set without a Basic user.
    #[error("MCP_AUTH_USER_SCOPES needs MCP_AUTH_USER and MCP_AUTH_PASSWORD")]
    UserScopesWithoutUser,
    /// Only one of `MCP_AUTH_USER` and `MCP_AUTH_PASSWORD` is set.
    #[error("set both MCP_AUTH_USER and MCP_AUTH_PASSWORD, or neither")]
    BasicPair,
    /// The Basic user is not acceptable.
    #[error("Basic user: {0}")]
    Basic(#[from] BasicUserError),
    /// The layer cannot be built.
    #[error("{0}")]
    Build(#[from] BuildError),
    /// `MCP_AUTH_ISSUER_URL` or `MCP_AUTH_JWKS_URL` carries user information
    /// (`user:password@`), which is no part of an issuer identifier and is never sent to fetch
    /// keys.
    #[error(
        "{var}: {url:?} has user information (user:password@host); remove it (a password there \
         would be sent to no one and printed everywhere)"
    )]
    UserInfo {
        /// The variable.
        var: &'static str,
        /// The URL, with the user information redacted.
        url: String,
    },
    /// `MCP_AUTH_JWKS_URL` is set without `MCP_AUTH_ISSUER_URL`.
    #[error("MCP_AUTH_JWKS_URL needs MCP_AUTH_ISSUER_URL too: tokens' `iss` is always checked")]
    JwksWithoutIssuer,
    /// A scope list is not acceptable.
    #[error("{var}: {source}")]
    Scopes {
        /// The variable.
        var: &'static str,
        /// What is wrong.
        #[source]
        source: ScopeError,
    },
    /// `MCP_AUTH_LEEWAY_SECS` is not a number of seconds.
    #[error("MCP_AUTH_LEEWAY_SECS must be a whole number of seconds, at most 300")]
    Leeway,
    /// `MCP_AUTH_ALGORITHMS` names an unknown algorithm.
    #[error("MCP_AUTH_ALGORITHMS: unknown algorithm {0:?} (use names such as RS256, ES256, EdDSA)")]
    Algorithm(String),
    /// The JWT verifier cannot be built.
    #[error("JWT: {0}")]
    Jwt(#[from] JwtConfigError),
    /// The issuer's keys cannot be found (discovery failed).
    #[error("JWT keys: {0}")]
    Keys(String),
    /// The metadata document cannot be built.
    #[error("metadata: {0}")]
    Metadata(#[from] MetadataError),
    /// An origin of `MCP_AUTH_ALLOWED_ORIGINS` is not acceptable.
    #[error("MCP_AUTH_ALLOWED_ORIGINS: {0}")]
    Origin(#[from] OriginError),
    /// `MCP_AUTH_TOOL_SCOPES` is not acceptable.
    #[error("MCP_AUTH_TOOL_SCOPES: {0}")]
    ToolScopes(#[from] OperationScopesError),
    /// `MCP_AUTH_ASSERTION_*` do not describe a usable proxy assertion verifier.
    #[error("proxy assertion: {0}")]
    Assertion(#[from] AssertionError),
    /// Only one of the introspection client id and secret is set (or neither, with other
    /// introspection variables).
    #[error(
        "token introspection needs this server's client credentials: set both \
         MCP_AUTH_INTROSPECTION_CLIENT_ID and MCP_AUTH_INTROSPECTION_CLIENT_SECRET"
    )]
    IntrospectionCredentials,
    /// Introspection is on, but no endpoint is set and none can be discovered.
    #[error(
        "token introspection needs its endpoint: set MCP_AUTH_INTROSPECTION_URL, or \
         MCP_AUTH_ISSUER_URL to find it in the issuer's metadata"
    )]
    IntrospectionEndpoint,
    /// `MCP_AUTH_INTROSPECTION_AUTH` names no supported method (the value is not repeated).
    #[error(
        "MCP_AUTH_INTROSPECTION_AUTH must be client_secret_basic (default) or client_secret_post"
    )]
    IntrospectionAuth,
    /// `MCP_AUTH_INTROSPECTION_CACHE_SECS` is not a number of seconds up to a day.
    #[error("MCP_AUTH_INTROSPECTION_CACHE_SECS must be a whole number of seconds, at most 86400")]
    IntrospectionCacheSecs,
    /// `MCP_AUTH_FAILURE_LIMIT` is not a whole number.
    #[error(
        "MCP_AUTH_FAILURE_LIMIT must be a whole number of failures per window (0 turns throttling off)"
    )]
    FailureLimit,
    /// `MCP_AUTH_FAILURE_WINDOW_SECS` is not a number of seconds from 1 to a day.
    #[error("MCP_AUTH_FAILURE_WINDOW_SECS must be a whole number of seconds, from 1 to 86400")]
    FailureWindow,
    /// `MCP_AUTH_TRUSTED_PROXIES` is not a list of addresses and networks.
    #[error("MCP_AUTH_TRUSTED_PROXIES: {0}")]
    TrustedProxies(#[from] TrustedProxiesError),
    /// `MCP_AUTH_FORWARDED_HEADER` names no supported header.
    #[error("MCP_AUTH_FORWARDED_HEADER must be x-forwarded-for (default) or forwarded")]
    ForwardedHeader,
    /// `MCP_AUTH_REDIS_URL` is not a Redis URL (it is not repeated: it may hold a password).
    #[error(
        "MCP_AUTH_REDIS_URL must be a Redis URL: redis://[:password@]host[:port][/db] or \
         redis+unix:///path (TLS, rediss://, is not supported: use a TLS tunnel or a local \
         socket)"
    )]
    RedisUrl,
    /// `MCP_AUTH_REDIS_URL` is set, but the crate was built without the `redis` feature.
    #[error("MCP_AUTH_REDIS_URL needs the crate's `redis` feature: build with --features redis")]
    RedisFeature,
    /// The introspection verifier cannot be built (or its endpoint found).
    #[error("token introspection: {0}")]
    Introspection(String),
    /// A DPoP variable (`MCP_AUTH_DPOP*`) is not acceptable, or does not fit the rest of the
    /// configuration. The reason never repeats the nonce key.
    #[error("{var}: {reason}")]
    Dpop {
        /// The variable.
        var: &'static str,
        /// What is wrong, and what to write instead.
        reason: String,
    },
    /// `MCP_AUTH_CLIENT_CERT_HEADER` is not a header name.
    #[error("MCP_AUTH_CLIENT_CERT_HEADER must be a header name such as x-ssl-client-cert")]
    ClientCertHeader,
    /// `MCP_AUTH_CLIENT_CERT_HEADER` is set without `MCP_AUTH_TRUSTED_PROXIES`.
    #[error(
        "MCP_AUTH_CLIENT_CERT_HEADER is read only from trusted proxies: set \
         MCP_AUTH_TRUSTED_PROXIES to the address of the proxy that sets it"
    )]
    ClientCertHeaderWithoutProxies,
}
