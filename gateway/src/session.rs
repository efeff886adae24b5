//! MCP sessions, one child each: created by `initialize`, ended by `DELETE`, the idle timeout,
//! the child's exit, or shutdown.
//!
//! With `--isolation session` (this phase's only mode) every MCP session of a 2025-06-18 or
//! 2025-11-25 client gets a process of its own: two sessions never share a server's memory,
//! whoever opened them. The table is bounded by `--max-children`; a session over the bound is
//! refused (`503`) rather than queued, so that a burst of `initialize` requests cannot fork
//! without limit.
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
//! use mcp_auth_gateway::{bridge::Limits, child::Command, session::{Config, Sessions}};
//! let sessions = Sessions::new(Config {
//!     command: Command::new("mcp-server", ["--stdio"]),
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
use mcp_server_auth::AuthInfo;
use tokio::time::Instant;
use tokio_util::task::TaskTracker;

use crate::{
    bridge::{Bridge, Limits},
    child::Command,
};

/// How sessions are made.
#[derive(Debug, Clone)]
pub struct Config {
    /// The child's command.
    pub command: Command,
    /// The most children (sessions) at once.
    pub max_children: usize,
    /// A session without a request for this long, and none in flight, ends.
    pub idle_timeout: Duration,
    /// The bridges' limits.
    pub limits: Limits,
}

/// Why a session cannot be created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CreateError {
    /// `--max-children` sessions are open.
    #[error(
        "the gateway already runs its maximum of {0} MCP server processes (--max-children): \
         end a session (DELETE) or try again later"
    )]
    Full(usize),
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
    config: Config,
    map: Mutex<HashMap<Arc<str>, Arc<Session>>>,
    seq: AtomicU64,
    closing: AtomicBool,
    /// The tasks that wait for each child and end its process group.
    children: TaskTracker,
}

/// One session: its id, owner, number (for the log) and bridge.
pub struct Session {
    id: Arc<str>,
    seq: u64,
    owner: AuthInfo,
    bridge: Bridge,
    activity: Mutex<Activity>,
}

impl fmt::Debug for Session {
    // The id is a bearer-like handle: never shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("seq", &self.seq)
            .field("owner", &self.owner.subject())
            .field("pid", &self.bridge.pid())
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

    /// The bridge to its child.
    pub fn bridge(&self) -> &Bridge {
        &self.bridge
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
    /// An empty table.
    pub fn new(config: Config) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                map: Mutex::new(HashMap::new()),
                seq: AtomicU64::new(1),
                closing: AtomicBool::new(false),
                children: TaskTracker::new(),
            }),
        }
    }

    fn map(&self) -> MutexGuard<'_, HashMap<Arc<str>, Arc<Session>>> {
        self.inner
            .map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The number of sessions (children) now.
    pub fn len(&self) -> usize {
        self.map().len()
    }

    /// Whether there is no session.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Starts a child and opens a session owned by `owner`.
    pub fn create(&self, owner: &AuthInfo) -> Result<Arc<Session>, CreateError> {
        let config = &self.inner.config;
        let session = {
            let mut map = self.map();
            if self.inner.closing.load(Ordering::Acquire) {
                return Err(CreateError::ShuttingDown);
            }
            if map.len() >= config.max_children {
                return Err(CreateError::Full(config.max_children));
            }
            let spawned = config
                .command
                .spawn()
                .map_err(|source| CreateError::Spawn {
                    program: config.command.program().to_string_lossy().into_owned(),
                    source,
                })?;
            let seq = self.inner.seq.fetch_add(1, Ordering::Relaxed);
            let label = format!("session {seq}");
            let pid = spawned.pid;
            let bridge = Bridge::start(spawned, label, config.limits, &self.inner.children);
            let session = Arc::new(Session {
                id: new_id(),
                seq,
                owner: owner.clone(),
                bridge,
                activity: Mutex::new(Activity {
                    last: Instant::now(),
                    in_flight: 0,
                }),
            });
            map.insert(session.id.clone(), session.clone());
            tracing::info!(
                pid,
                subject = owner.subject(),
                "[session {seq}] started the MCP server ({} running)",
                map.len()
            );
            session
        };
        tokio::spawn(watch(self.clone(), session.clone()));
        Ok(session)
    }

    /// The session `id`, if it exists and belongs to `caller`'s principal.
    pub fn get(&self, id: &str, caller: &AuthInfo) -> Option<Arc<Session>> {
        let session = self.map().get(id).cloned()?;
        (session.owner.principal_key() == caller.principal_key()).then_some(session)
    }

    /// Ends the session `id` (its owner's `DELETE`).
    pub fn end(&self, session: &Session, reason: &str) {
        session.bridge.close(reason);
        self.forget(session);
    }

    fn forget(&self, session: &Session) {
        let mut map = self.map();
        if map.get(&session.id).is_some_and(|s| s.seq == session.seq) {
            map.remove(&session.id);
        }
    }

    /// Refuses new sessions and ends every session: waiting requests get an error, streams
    /// end, children are told to exit. Does not wait for them: see [`shutdown`](Self::shutdown).
    pub fn close_all(&self) {
        self.inner.closing.store(true, Ordering::Release);
        let sessions: Vec<Arc<Session>> = self.map().drain().map(|(_, s)| s).collect();
        for s in &sessions {
            s.bridge.close("the gateway is shutting down");
        }
    }

    /// [`close_all`](Self::close_all), then waits (at most `wait`) until every child started
    /// has exited and its process group has been signalled, those of sessions that ended
    /// earlier included.
    pub async fn shutdown(&self, wait: Duration) {
        self.close_all();
        self.inner.children.close();
        if tokio::time::timeout(wait, self.inner.children.wait())
            .await
            .is_err()
        {
            tracing::error!("some MCP server processes had not exited after {wait:?}");
        }
    }
}

/// Ends the session when it is idle, and forgets it when it ends.
async fn watch(sessions: Sessions, session: Arc<Session>) {
    let timeout = sessions.inner.config.idle_timeout;
    loop {
        let deadline = session
            .idle_at(timeout)
            .unwrap_or_else(|| Instant::now() + timeout);
        tokio::select! {
            () = session.bridge.ended() => break,
            () = tokio::time::sleep_until(deadline) => {
                if session.idle_at(timeout).is_some_and(|at| at <= Instant::now()) {
                    session.bridge.close(&format!("idle for {timeout:?} (--idle-timeout)"));
                    break;
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
