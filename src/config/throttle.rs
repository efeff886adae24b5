//! `MCP_AUTH_FAILURE_*`, `MCP_AUTH_TRUSTED_PROXIES`, `MCP_AUTH_FORWARDED_HEADER` and
//! `MCP_AUTH_REDIS_URL`: failed-authentication throttling and the store it counts in (see
//! [`crate::throttle`] and [`crate::store`]).
//!
//! Throttling is on by default (20 failures per client per 60 s), in memory;
//! `MCP_AUTH_FAILURE_LIMIT=0` turns it off. With `MCP_AUTH_REDIS_URL` (feature `redis`) the
//! counts are kept in Redis or Valkey, shared by every replica that names the same one.
//!
//! ```
//! use std::time::Duration;
//! use mcp_server_auth::config::EnvConfig;
//!
//! let config = EnvConfig::from_vars([
//!     ("MCP_AUTH_BEARER_TOKEN", "c2VjcmV0LXRva2VuLWZvci1jaQ"),
//!     ("MCP_AUTH_FAILURE_LIMIT", "5"),
//!     ("MCP_AUTH_TRUSTED_PROXIES", "10.0.0.0/8"),
//! ])
//! .unwrap();
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let throttle = config.throttle_layer().await.unwrap();
//! assert_eq!(throttle.limit(), 5);
//! assert_eq!(throttle.window(), Some(Duration::from_secs(60)));
//! # });
//! ```

use std::{
    fmt,
    future::{Future, Ready},
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use super::{ConfigError, EnvConfig};
use crate::{
    resource::redact_userinfo,
    store::{Counter, MemoryStore, Store, StoreError},
    throttle::{ForwardedHeader, ThrottleLayer, TrustedProxies},
};

/// The default of `MCP_AUTH_FAILURE_LIMIT`.
pub const DEFAULT_FAILURE_LIMIT: u32 = 20;
/// The default of `MCP_AUTH_FAILURE_WINDOW_SECS`.
pub const DEFAULT_FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// The longest window accepted: a day.
const MAX_WINDOW_SECS: u64 = 24 * 60 * 60;

/// The variables read here.
pub(super) const VARS: [&str; 5] = [
    "MCP_AUTH_FAILURE_LIMIT",
    "MCP_AUTH_FAILURE_WINDOW_SECS",
    "MCP_AUTH_TRUSTED_PROXIES",
    "MCP_AUTH_FORWARDED_HEADER",
    "MCP_AUTH_REDIS_URL",
];

/// Throttling settings read from the environment. `Debug` shows no password.
#[derive(Clone)]
pub(super) struct ThrottleEnv {
    limit: u32,
    window: Duration,
    proxies: TrustedProxies,
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    redis_url: Option<String>,
}

impl fmt::Debug for ThrottleEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThrottleEnv")
            .field("limit", &self.limit)
            .field("window", &self.window)
            .field("trusted_proxies", &self.proxies)
            .field("redis_url", &self.redis_url.as_deref().map(redact_userinfo))
            .finish()
    }
}

impl ThrottleEnv {
    /// The trusted proxies.
    pub(super) fn proxies(&self) -> &TrustedProxies {
        &self.proxies
    }
}

/// Reads the throttling variables through `take`.
pub(super) fn read(
    mut take: impl FnMut(&str) -> Option<String>,
) -> Result<ThrottleEnv, ConfigError> {
    let [limit, window, proxies, header, redis_url] = VARS.map(&mut take);
    let limit = match limit {
        None => DEFAULT_FAILURE_LIMIT,
        Some(v) => v.parse().map_err(|_| ConfigError::FailureLimit)?,
    };
    let window = match window {
        None => DEFAULT_FAILURE_WINDOW,
        Some(v) => v
            .parse::<u64>()
            .ok()
            .filter(|s| (1..=MAX_WINDOW_SECS).contains(s))
            .map(Duration::from_secs)
            .ok_or(ConfigError::FailureWindow)?,
    };
    let header = match header.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("x-forwarded-for") => ForwardedHeader::XForwardedFor,
        Some("forwarded") => ForwardedHeader::Forwarded,
        Some(_) => return Err(ConfigError::ForwardedHeader),
    };
    let proxies = TrustedProxies::parse(proxies.as_deref().unwrap_or_default())?.header(header);
    if let Some(url) = &redis_url {
        if !(url.starts_with("redis://")
            || url.starts_with("redis+unix://")
            || url.starts_with("unix://"))
        {
            return Err(ConfigError::RedisUrl);
        }
        if cfg!(not(feature = "redis")) {
            return Err(ConfigError::RedisFeature);
        }
    }
    Ok(ThrottleEnv {
        limit,
        window,
        proxies,
        redis_url,
    })
}

impl EnvConfig {
    /// The failed authentications allowed per client per window (`MCP_AUTH_FAILURE_LIMIT`;
    /// 0: throttling is off).
    pub fn failure_limit(&self) -> u32 {
        self.throttle.limit
    }

    /// The throttling window (`MCP_AUTH_FAILURE_WINDOW_SECS`).
    pub fn failure_window(&self) -> Duration {
        self.throttle.window
    }

    /// The trusted proxies (`MCP_AUTH_TRUSTED_PROXIES`, `MCP_AUTH_FORWARDED_HEADER`).
    pub fn trusted_proxies(&self) -> &TrustedProxies {
        &self.throttle.proxies
    }

    /// Whether the counts are kept in Redis (`MCP_AUTH_REDIS_URL`).
    pub fn redis_enabled(&self) -> bool {
        self.throttle.redis_url.is_some()
    }

    /// The throttle layer: put it outside the auth layer (and inside Origin). Off when
    /// `MCP_AUTH_FAILURE_LIMIT` is 0. With `MCP_AUTH_REDIS_URL`, it connects in the background:
    /// a Redis that is down is logged, not fatal (see [`crate::throttle`]).
    ///
    /// # Errors
    /// If the Redis URL cannot be used (the error does not repeat it).
    pub async fn throttle_layer(&self) -> Result<ThrottleLayer<EnvStore>, ConfigError> {
        let env = &self.throttle;
        if env.limit == 0 {
            return Ok(ThrottleLayer::disabled());
        }
        let store = self.env_store().await?;
        Ok(ThrottleLayer::with_store(store, env.limit, env.window)
            .trusted_proxies(env.proxies.clone()))
    }
}

impl EnvConfig {
    /// A store of the configuration: in memory, or in Redis with `MCP_AUTH_REDIS_URL` (the
    /// throttle's counts, DPoP proofs already seen).
    pub(super) async fn env_store(&self) -> Result<EnvStore, ConfigError> {
        Ok(match &self.throttle.redis_url {
            #[cfg(feature = "redis")]
            Some(url) => EnvStore::Redis(
                crate::store::RedisStore::connect(url, crate::store::RedisOptions::default())
                    .await
                    .map_err(|_| ConfigError::RedisUrl)?,
            ),
            _ => EnvStore::Memory(MemoryStore::new()),
        })
    }
}

/// The store [`EnvConfig`] chose: in memory, or in Redis with `MCP_AUTH_REDIS_URL`.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum EnvStore {
    /// In this process.
    Memory(MemoryStore),
    /// In Redis or Valkey (feature `redis`).
    #[cfg(feature = "redis")]
    Redis(crate::store::RedisStore),
}

/// A future of [`EnvStore`]: ready at once in memory, boxed for Redis.
pub struct EnvStoreFuture<T>(Kind<T>);

enum Kind<T> {
    Memory(Ready<Result<T, StoreError>>),
    #[cfg(feature = "redis")]
    Redis(Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send>>),
}

impl<T> fmt::Debug for EnvStoreFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EnvStoreFuture")
    }
}

impl<T> Future for EnvStoreFuture<T> {
    type Output = Result<T, StoreError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().0 {
            Kind::Memory(f) => Pin::new(f).poll(cx),
            #[cfg(feature = "redis")]
            Kind::Redis(f) => f.as_mut().poll(cx),
        }
    }
}

macro_rules! dispatch {
    ($self:ident, $method:ident($($arg:expr),*)) => {
        match $self {
            EnvStore::Memory(s) => EnvStoreFuture(Kind::Memory(s.$method($($arg),*))),
            #[cfg(feature = "redis")]
            EnvStore::Redis(s) => EnvStoreFuture(Kind::Redis(s.$method($($arg),*))),
        }
    };
}

impl Store for EnvStore {
    type Increment = EnvStoreFuture<Counter>;
    type Get = EnvStoreFuture<Option<Counter>>;
    type SetIfAbsent = EnvStoreFuture<bool>;

    fn increment(&self, key: &[u8], window: Duration) -> Self::Increment {
        dispatch!(self, increment(key, window))
    }

    fn get(&self, key: &[u8]) -> Self::Get {
        dispatch!(self, get(key))
    }

    fn set_if_absent(&self, key: &[u8], ttl: Duration) -> Self::SetIfAbsent {
        dispatch!(self, set_if_absent(key, ttl))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_is_on_by_default_and_zero_turns_it_off() {
        let c = EnvConfig::from_vars([("MCP_AUTH_BEARER_TOKEN", "c2VjcmV0LXRva2VuLWZvci1jaQ")])
            .unwrap();
        assert_eq!(c.failure_limit(), 20);
        assert_eq!(c.failure_window(), Duration::from_secs(60));
        assert!(c.trusted_proxies().is_empty());
        let c = EnvConfig::from_vars([("MCP_AUTH_FAILURE_LIMIT", "0")]).unwrap();
        assert_eq!(c.failure_limit(), 0);
    }

    #[test]
    fn bad_throttling_variables_are_named_and_not_repeated() {
        let err = |k: &'static str, v: &'static str| EnvConfig::from_vars([(k, v)]).unwrap_err();
        assert_eq!(
            err("MCP_AUTH_FAILURE_LIMIT", "-1"),
            ConfigError::FailureLimit
        );
        assert_eq!(
            err("MCP_AUTH_FAILURE_WINDOW_SECS", "0"),
            ConfigError::FailureWindow
        );
        assert_eq!(
            err("MCP_AUTH_FAILURE_WINDOW_SECS", "86401"),
            ConfigError::FailureWindow
        );
        assert_eq!(
            err("MCP_AUTH_FORWARDED_HEADER", "x-real-ip"),
            ConfigError::ForwardedHeader
        );
        assert!(matches!(
            err("MCP_AUTH_TRUSTED_PROXIES", "10.0.0.0/8,proxy"),
            ConfigError::TrustedProxies(crate::throttle::TrustedProxiesError::Invalid(2))
        ));
        let e = err("MCP_AUTH_REDIS_URL", "http://:hunter2@cache:6379");
        assert_eq!(e, ConfigError::RedisUrl);
        assert!(!e.to_string().contains("hunter2"));
        let c = EnvConfig::from_vars([("MCP_AUTH_FORWARDED_HEADER", "Forwarded")]).unwrap();
        assert_eq!(
            c.trusted_proxies(),
            &TrustedProxies::none().header(ForwardedHeader::Forwarded)
        );
    }

    #[cfg(feature = "redis")]
    #[test]
    fn the_redis_url_is_not_shown() {
        let c = EnvConfig::from_vars([("MCP_AUTH_REDIS_URL", "redis://:hunter2@cache:6379/0")])
            .unwrap();
        assert!(c.redis_enabled());
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
