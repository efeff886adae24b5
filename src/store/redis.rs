//! [`RedisStore`]: the store shared by several replicas, in Redis or Valkey.
//!
//! One connection manager (the `redis` crate's: one multiplexed connection, reconnected in the
//! background) serves every request. Each operation is one round trip, atomic on the server:
//! `increment` is `SET key 0 NX PX window`, `INCR key`, `PTTL key` in a `MULTI`/`EXEC`, so the
//! window starts with the first increment and is never extended; `get` is `GET` and `PTTL`;
//! `set_if_absent` is `SET key 1 NX PX ttl`. All of these exist in Redis 2.6.12 and later and
//! in every Valkey.
//!
//! Every call has a short timeout ([`RedisOptions::timeout`], 100 ms by default). After a
//! failure the store answers [`StoreError::Unavailable`] at once for a pause
//! ([`RedisOptions::pause`], 1 s by default) before it tries Redis again, so that an outage
//! costs the requests in it nothing but the first timeout. It logs one `warn` when Redis stops
//! answering and one `info` when it answers again, never a key or the URL.

use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use redis::{
    Client, RedisError, Value,
    aio::{ConnectionManager, ConnectionManagerConfig},
};

use super::{Counter, Store, StoreError};

/// A boxed store future: Redis round trips are not the hot path.
type BoxFuture<T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send>>;

/// Settings of a [`RedisStore`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RedisOptions {
    /// The longest one operation may take, connecting included (default 100 ms).
    pub timeout: Duration,
    /// How long the store answers "unavailable" at once after a failure (default 1 s).
    pub pause: Duration,
    /// Prepended to every key (default `mcp-auth:`): several applications can share one Redis.
    pub prefix: String,
}

impl Default for RedisOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_millis(100),
            pause: Duration::from_secs(1),
            prefix: "mcp-auth:".to_owned(),
        }
    }
}

/// A [`Store`] in Redis or Valkey (feature `redis`), shared by every replica that names the
/// same one.
///
/// One connection manager (the `redis` crate's: one multiplexed connection, reconnected in the
/// background) serves every request. Each operation is one round trip, atomic on the server:
/// `increment` is `SET key 0 NX PX window`, `INCR key`, `PTTL key` in a `MULTI`/`EXEC` (the
/// window starts with the first increment and is never extended); `get` is `GET` and `PTTL`;
/// `set_if_absent` is `SET key 1 NX PX ttl`: Redis 2.6.12 and later, and every Valkey. Keys are
/// [`RedisOptions::prefix`] (`mcp-auth:`) followed by the caller's key.
///
/// Every call has a short timeout ([`RedisOptions::timeout`], 100 ms by default). After a
/// failure the store answers [`StoreError::Unavailable`] at once for a pause
/// ([`RedisOptions::pause`], 1 s) before it tries Redis again, so that an outage costs the
/// requests in it nothing but the first timeout. It logs one `warn` when Redis stops answering
/// and one `info` when it answers again, never a key or the URL.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    manager: ConnectionManager,
    options: RedisOptions,
    epoch: Instant,
    /// Until when (ms since `epoch`) the store answers "unavailable" at once; 0 when healthy.
    paused_until: AtomicU64,
    /// Whether the last outcome was a failure (for one log line per outage).
    down: AtomicBool,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may hold a password: it is not kept, and never shown.
        f.debug_struct("RedisStore")
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

/// The reason of a Redis failure, without anything from the URL.
fn reason(e: &RedisError) -> String {
    format!("{:?}", e.kind())
}

impl RedisStore {
    /// A store on the Redis (or Valkey) at `url` (`redis://[:password@]host[:port][/db]`, or
    /// `redis+unix:///path`). It connects in the background: a Redis that is down at start-up
    /// is logged, not fatal, and the store answers [`StoreError::Unavailable`] until it is up.
    /// Must be called within a Tokio runtime.
    ///
    /// # Errors
    /// If `url` is not a Redis URL. The error does not repeat the URL.
    pub async fn connect(url: &str, options: RedisOptions) -> Result<Self, StoreError> {
        let client = Client::open(url).map_err(|e| StoreError::Unavailable(reason(&e)))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(options.timeout))
            .set_response_timeout(Some(options.timeout))
            .set_number_of_retries(1)
            .set_max_delay(options.pause);
        let manager = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| StoreError::Unavailable(reason(&e)))?;
        let store = Self {
            inner: Arc::new(Inner {
                manager,
                options,
                epoch: Instant::now(),
                paused_until: AtomicU64::new(0),
                down: AtomicBool::new(false),
            }),
        };
        let mut conn = store.inner.manager.clone();
        let ping = store.run(async move {
            redis::cmd("PING")
                .query_async::<String>(&mut conn)
                .await
                .map(drop)
        });
        if ping.await.is_ok() {
            tracing::info!("Redis store connected");
        }
        Ok(store)
    }

    /// The options.
    pub fn options(&self) -> &RedisOptions {
        &self.inner.options
    }

    fn key(&self, key: &[u8]) -> Vec<u8> {
        let prefix = self.inner.options.prefix.as_bytes();
        let mut k = Vec::with_capacity(prefix.len() + key.len());
        k.extend_from_slice(prefix);
        k.extend_from_slice(key);
        k
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.inner.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Runs one operation with the timeout, the pause after a failure, and the outage log.
    fn run<T, F>(&self, op: F) -> BoxFuture<T>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, RedisError>> + Send + 'static,
    {
        let inner = self.inner.clone();
        let paused = inner.paused_until.load(Ordering::Relaxed) > self.now_ms();
        let now_ms = self.now_ms();
        Box::pin(async move {
            if paused {
                return Err(StoreError::Unavailable("paused after a failure".to_owned()));
            }
            let result = match tokio::time::timeout(inner.options.timeout, op).await {
                Ok(Ok(v)) => Ok(v),
                Ok(Err(e)) if e.kind() == redis::ErrorKind::UnexpectedReturnType => {
                    Err(StoreError::Unexpected)
                }
                Ok(Err(e)) => Err(StoreError::Unavailable(reason(&e))),
                Err(_) => Err(StoreError::Timeout),
            };
            match &result {
                Ok(_) | Err(StoreError::Unexpected) => {
                    if inner.down.swap(false, Ordering::Relaxed) {
                        tracing::info!("Redis store answers again");
                    }
                }
                Err(e) => {
                    let pause = u64::try_from(inner.options.pause.as_millis()).unwrap_or(0);
                    inner
                        .paused_until
                        .store(now_ms.saturating_add(pause), Ordering::Relaxed);
                    if !inner.down.swap(true, Ordering::Relaxed) {
                        tracing::warn!(
                            error = %e,
                            "Redis store unavailable: requests are judged as if nothing were \
                             counted until it answers again"
                        );
                    }
                }
            }
            result
        })
    }
}

/// A `PTTL` reply as the time left (a key without expiry, -1, is reported as expiring now).
fn ttl(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl Store for RedisStore {
    type Increment = BoxFuture<Counter>;
    type Get = BoxFuture<Option<Counter>>;
    type SetIfAbsent = BoxFuture<bool>;

    fn increment(&self, key: &[u8], window: Duration) -> Self::Increment {
        let key = self.key(key);
        let mut conn = self.inner.manager.clone();
        self.run(async move {
            let (count, left): (u64, i64) = redis::pipe()
                .atomic()
                .cmd("SET")
                .arg(&key)
                .arg(0)
                .arg("NX")
                .arg("PX")
                .arg(millis(window))
                .ignore()
                .incr(&key, 1)
                .pttl(&key)
                .query_async(&mut conn)
                .await?;
            Ok(Counter {
                count,
                resets_in: ttl(left),
            })
        })
    }

    fn get(&self, key: &[u8]) -> Self::Get {
        let key = self.key(key);
        let mut conn = self.inner.manager.clone();
        self.run(async move {
            let (count, left): (Option<u64>, i64) = redis::pipe()
                .get(&key)
                .pttl(&key)
                .query_async(&mut conn)
                .await?;
            Ok(count.map(|count| Counter {
                count,
                resets_in: ttl(left),
            }))
        })
    }

    fn set_if_absent(&self, key: &[u8], ttl: Duration) -> Self::SetIfAbsent {
        let key = self.key(key);
        let mut conn = self.inner.manager.clone();
        self.run(async move {
            let set: Value = redis::cmd("SET")
                .arg(&key)
                .arg(1)
                .arg("NX")
                .arg("PX")
                .arg(millis(ttl))
                .query_async(&mut conn)
                .await?;
            // `OK` when set; nil when the key was there.
            Ok(!matches!(set, Value::Nil))
        })
    }
}
