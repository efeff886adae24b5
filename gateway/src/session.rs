//! MCP sessions: created by `initialize`, ended by `DELETE`, the idle timeout, their child's
//! exit, or shutdown.
//!
//! Each session is attached to a child of the [`Pool`]: its own with `--isolation session`
//! (the default: two sessions never share a server's memory, whoever opened them), its
//! principal's with `principal`, everyone's with `shared`. The children are bounded by
//! `--max-children`; a session that would need one more is refused (`503`) rather than
//! queued, so that a burst of `initialize` requests cannot fork without limit.
//!
//! A session belongs to the principal that opened it. The library's
//! [`SessionBindingLayer`](mcp_server_auth::SessionBindingLayer) in front of the gateway
//! already answers `404` to anyone else; the table checks the owner again, so that the
//! binding does not rest on a layer being present in the stack.
//!
//! Idle means no request for `--idle-timeout` while none is in flight: a long tool call keeps
//! its session, an open `GET` stream alone does not (the same rule as the binding layer's
//! timer). A client whose session ended gets `404` and, as the transport requires, opens a
//! new one.
//!
//! ```no_run
//! # async fn run(owner: mcp_server_auth::AuthInfo) {
//! use std::time::Duration;
//! use mcp_auth_gateway::{bridge::Limits, child::Command, cli::Isolation, pool::PoolConfig};
//! use mcp_auth_gateway::session::Sessions;
//! let sessions = Sessions::new(PoolConfig {
//!     command: Command::new("mcp-server", ["--stdio"]),
//!     isolation: Isolation::Session,
//!     max_children: 64,
//!     idle_timeout: Duration::from_secs(600),
//!     limits: Limits::default(),
//! });
//! let session = sessions.create(&owner).unwrap();
//! assert!(sessions.get(session.id(), &owner).is_some());
//! sessions.shutdown(Duration::from_secs(10)).await; // ends every child
//! # }
//! ```

use std::{
    collections::HashMap,
    fmt, io,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use bytes::Bytes;
use mcp_server_auth::AuthInfo;
use tokio::{sync::mpsc, time::Instant};
use tokio_util::sync::CancellationToken;

use crate::{
    bridge::{Ended, Exchange},
    message::Message,
    pool::{Backend, Lease, Pool, PoolConfig},
};

/// Why a session cannot be created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CreateError {
    /// `--max-children` processes are running.
    #[error(
        "the gateway already runs its maximum of {0} MCP server processes (--max-children): \
         end a session (DELETE) or try again later"
    )]
    Full(usize),
    /// The shared process exited and is being restarted (`--isolation shared`).
    #[error("the MCP server exited and is restarting: try again in {0} s")]
    Restarting(u64),
    /// The gateway is shutting down.
    #[error("the gateway is shutting down")]
    ShuttingDown,
    /// The child cannot be started.
    #[error("cannot start the MCP server {program:?}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// The sessions. Clones share the table.
#[derive(Debug, Clone)]
pub struct Sessions {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    pool: Pool,
    idle_timeout: Duration,
    map: Mutex<HashMap<Arc<str>, Arc<Session>>>,
    seq: AtomicU64,
    closing: AtomicBool,
}

/// One session: its id, owner, number, and the child it is attached to.
pub struct Session {
    id: Arc<str>,
    seq: u64,
    owner: AuthInfo,
    backend: Arc<Backend>,
    activity: Mutex<Activity>,
    ended: CancellationToken,
}

impl fmt::Debug for Session {
    // The id is a bearer-like handle: never shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("seq", &self.seq)
            .field("owner", &self.owner.subject())
            .field("pid", &self.backend.pid())
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Activity {
    last: Instant,
    in_flight: usize,
}

/// Marks a session busy while alive (an HTTP exchange in flight); dropping it restarts the
/// idle timer.
#[derive(Debug)]
pub struct Busy(Arc<Session>);

impl Drop for Busy {
    fn drop(&mut self) {
        let mut a = self.0.activity();
        a.in_flight -= 1;
        a.last = Instant::now();
    }
}

impl Session {
    /// The `Mcp-Session-Id`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The session's number, for the log.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The child it is attached to.
    pub fn backend(&self) -> &Arc<Backend> {
        &self.backend
    }

    /// Its `initialize` (the request that opened it).
    pub async fn initialize(&self, msg: &Message<'_>) -> Result<Exchange, Ended> {
        self.backend.initialize(self.seq, msg).await
    }

    /// One of its requests.
    pub async fn request(&self, msg: &Message<'_>) -> Result<Exchange, Ended> {
        self.backend.request(self.seq, msg).await
    }

    /// One of its notifications or answers.
    pub async fn send(&self, msg: &Message<'_>, line: Bytes) -> Result<(), Ended> {
        self.backend.send(self.seq, msg, line).await
    }

    /// Opens its `GET` stream.
    pub fn open_stream(&self) -> Result<mpsc::Receiver<Bytes>, Ended> {
        self.backend.bridge().open_stream(self.seq)
    }

    fn activity(&self) -> MutexGuard<'_, Activity> {
        self.activity.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Marks the session busy until the guard is dropped.
    pub fn busy(self: &Arc<Self>) -> Busy {
        let mut a = self.activity();
        a.in_flight += 1;
        a.last = Instant::now();
        drop(a);
        Busy(self.clone())
    }

    /// When the session becomes idle, or `None` while busy.
    fn idle_at(&self, timeout: Duration) -> Option<Instant> {
        let a = self.activity();
        (a.in_flight == 0).then(|| a.last + timeout)
    }
}

impl Sessions {
    /// An empty table, whose sessions get children from a [`Pool`] made with `config`.
    pub fn new(config: PoolConfig) -> Self {
        let idle_timeout = config.idle_timeout;
        Self {
            inner: Arc::new(Inner {
                pool: Pool::new(config),
                idle_timeout,
                map: Mutex::new(HashMap::new()),
                seq: AtomicU64::new(1),
                closing: AtomicBool::new(false),
            }),
        }
    }

    fn map(&self) -> MutexGuard<'_, HashMap<Arc<str>, Arc<Session>>> {
        self.inner
            .map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The number of sessions now.
    pub fn len(&self) -> usize {
        self.map().len()
    }

    /// Whether there is no session.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The children.
    pub fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    /// Opens a session owned by `owner`, attached to its child (started if needed).
    pub fn create(&self, owner: &AuthInfo) -> Result<Arc<Session>, CreateError> {
        let session = {
            let mut map = self.map();
            if self.inner.closing.load(Ordering::Acquire) {
                return Err(CreateError::ShuttingDown);
            }
            let seq = self.inner.seq.fetch_add(1, Ordering::Relaxed);
            let backend = self.inner.pool.acquire(owner, seq)?;
            let session = Arc::new(Session {
                id: new_id(),
                seq,
                owner: owner.clone(),
                backend,
                activity: Mutex::new(Activity {
                    last: Instant::now(),
                    in_flight: 0,
                }),
                ended: CancellationToken::new(),
            });
            map.insert(session.id.clone(), session.clone());
            tracing::info!(
                subject = owner.subject(),
                pid = session.backend.pid(),
                "[session {seq}] opened ({} open)",
                map.len()
            );
            session
        };
        tokio::spawn(watch(self.clone(), session.clone()));
        Ok(session)
    }

    /// The child for one request of `owner` that belongs to no session (MCP 2026-07-28), with
    /// a client number no session has.
    pub fn lease(&self, owner: &AuthInfo) -> Result<Lease, CreateError> {
        if self.inner.closing.load(Ordering::Acquire) {
            return Err(CreateError::ShuttingDown);
        }
        let client = self.inner.seq.fetch_add(1, Ordering::Relaxed);
        self.inner.pool.lease(owner, client)
    }

    /// The session `id`, if it exists and belongs to `caller`'s principal.
    pub fn get(&self, id: &str, caller: &AuthInfo) -> Option<Arc<Session>> {
        let session = self.map().get(id).cloned()?;
        (session.owner.principal_key() == caller.principal_key()).then_some(session)
    }

    /// Ends `session` (its owner's `DELETE`, or its idle timeout): its requests in flight
    /// get an error, its streams end, and its child ends if no other session uses it.
    pub fn end(&self, session: &Session, reason: &str) {
        self.forget(session);
        if !session.ended.is_cancelled() {
            session.ended.cancel();
            self.inner
                .pool
                .release(&session.backend, session.seq, reason);
        }
    }

    fn forget(&self, session: &Session) {
        let mut map = self.map();
        if map.get(&session.id).is_some_and(|s| s.seq == session.seq) {
            map.remove(&session.id);
        }
    }

    /// Refuses new sessions and ends every session and child: waiting requests get an
    /// error, streams end, children are told to exit. Does not wait for them: see
    /// [`shutdown`](Self::shutdown).
    pub fn close_all(&self) {
        self.inner.closing.store(true, Ordering::Release);
        let sessions: Vec<Arc<Session>> = self.map().drain().map(|(_, s)| s).collect();
        for s in &sessions {
            s.ended.cancel();
        }
        self.inner.pool.close_all();
    }

    /// [`close_all`](Self::close_all), then waits (at most `wait`) until every child started
    /// has exited and its process group has been signalled, those of sessions that ended
    /// earlier included.
    pub async fn shutdown(&self, wait: Duration) {
        self.close_all();
        self.inner.pool.shutdown(wait).await;
    }
}

/// Ends the session when it is idle, and forgets it when it or its child ends.
async fn watch(sessions: Sessions, session: Arc<Session>) {
    let timeout = sessions.inner.idle_timeout;
    loop {
        let deadline = session
            .idle_at(timeout)
            .unwrap_or_else(|| Instant::now() + timeout);
        tokio::select! {
            () = session.backend.bridge().ended() => break,
            () = session.ended.cancelled() => return,
            () = tokio::time::sleep_until(deadline) => {
                if session.idle_at(timeout).is_some_and(|at| at <= Instant::now()) {
                    sessions.end(&session, &format!("idle for {timeout:?} (--idle-timeout)"));
                    return;
                }
            }
        }
    }
    sessions.forget(&session);
}

/// A new session id: 192 random bits, URL-safe Base64 (32 visible ASCII characters, as the
/// transport requires).
fn new_id() -> Arc<str> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    URL_SAFE_NO_PAD.encode(bytes).into()
}
