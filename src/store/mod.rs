//! The shared store: counters with expiry and set-if-absent with expiry, in memory or in Redis.
//!
//! Some decisions depend on what happened before: how many failed authentications came from
//! one address in the last minute (the [`throttle`](crate::throttle) layer), or whether a proof
//! has been seen before (replay protection). A server that runs as one process keeps that in
//! memory ([`MemoryStore`], the default). A server that runs as several replicas behind a load
//! balancer must share it, or each replica counts only its own share and an attacker gets
//! *n* times the limit; for that the crate uses a store operators already run, Redis or Valkey
//! ([`RedisStore`], feature `redis`), rather than one of its own.
//!
//! A [`Store`] has three operations, all keyed by bytes and all asynchronous:
//!
//! | operation | meaning |
//! |---|---|
//! | [`increment`](Store::increment) | add one to a counter that lives for a fixed window from its first increment; returns the count and the time left |
//! | [`get`](Store::get) | read a counter without changing it |
//! | [`set_if_absent`](Store::set_if_absent) | mark a key for a time; `true` only for the first caller |
//!
//! Their futures are named types that are `Unpin`, so a caller can poll one once and go on at
//! once when it is ready: the memory store always is (its futures are
//! [`std::future::Ready`]), and a request it judges pays for neither a box nor a task.
//!
//! A store that cannot answer (Redis down, a timeout) says so with a [`StoreError`]; what
//! follows is the caller's choice (the throttle layer then judges the request as if nothing
//! had been counted, and says why in its documentation).
//!
//! ```
//! use std::{future::Future, pin::pin, task::{Context, Poll, Waker}, time::Duration};
//! use mcp_server_auth::store::{MemoryStore, Store};
//!
//! let store = MemoryStore::new();
//! let window = Duration::from_secs(60);
//! # let mut cx = Context::from_waker(Waker::noop());
//! // The memory store answers on the first poll.
//! let Poll::Ready(Ok(counter)) = pin!(store.increment(b"failures:198.51.100.7", window)).poll(&mut cx) else {
//!     unreachable!()
//! };
//! assert_eq!(counter.count, 1);
//! assert!(counter.resets_in <= window);
//! let Poll::Ready(Ok(first)) = pin!(store.set_if_absent(b"seen:proof-1", window)).poll(&mut cx) else {
//!     unreachable!()
//! };
//! let Poll::Ready(Ok(again)) = pin!(store.set_if_absent(b"seen:proof-1", window)).poll(&mut cx) else {
//!     unreachable!()
//! };
//! assert!(first && !again);
//! ```

mod memory;
#[cfg(feature = "redis")]
mod redis;

pub use memory::MemoryStore;
#[cfg(feature = "redis")]
pub use redis::{RedisOptions, RedisStore};

use std::{future::Future, time::Duration};

/// A counter read from a [`Store`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counter {
    /// The count in the current window.
    pub count: u64,
    /// How long until the window ends and the counter is gone.
    pub resets_in: Duration,
}

/// Why a [`Store`] could not answer. Its messages never contain a key or a connection URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store did not answer within its timeout.
    #[error("the store did not answer in time: check that it is up and reachable")]
    Timeout,
    /// The store is not reachable, or answered with an error.
    #[error("the store is unavailable ({0}): check that it is up and reachable")]
    Unavailable(String),
    /// The store answered something this crate does not understand.
    #[error(
        "the store answered in an unexpected form: another program may use the same keys; \
         give this one its own key prefix"
    )]
    Unexpected,
}

/// Counters with expiry and set-if-absent with expiry, shared by the requests of one server,
/// or of several. See the [module documentation](self).
///
/// Implementations must be cheap to clone (a handle on shared state) and their futures must
/// not borrow the key.
pub trait Store: Clone + Send + Sync + 'static {
    /// The future of [`increment`](Store::increment).
    type Increment: Future<Output = Result<Counter, StoreError>> + Send + Unpin + 'static;
    /// The future of [`get`](Store::get).
    type Get: Future<Output = Result<Option<Counter>, StoreError>> + Send + Unpin + 'static;
    /// The future of [`set_if_absent`](Store::set_if_absent).
    type SetIfAbsent: Future<Output = Result<bool, StoreError>> + Send + Unpin + 'static;

    /// Adds one to the counter `key` and returns it. A counter that does not exist (or whose
    /// window has ended) starts at 1 with a window of `window` (a fixed window: later
    /// increments do not extend it).
    fn increment(&self, key: &[u8], window: Duration) -> Self::Increment;

    /// The counter `key`, or `None` if it does not exist or its window has ended.
    fn get(&self, key: &[u8]) -> Self::Get;

    /// Marks `key` for `ttl` if it is not marked: `true` if this call marked it, `false` if it
    /// was already marked (and is left as it was).
    fn set_if_absent(&self, key: &[u8], ttl: Duration) -> Self::SetIfAbsent;
}
