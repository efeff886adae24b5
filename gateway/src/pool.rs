//! The server processes of `wrap`, and who shares them (`--isolation`).
//!
//! | `--isolation` | one child per | ends |
//! |---|---|---|
//! | `session` (default) | MCP session | with its session |
//! | `principal` | authenticated principal ([`AuthInfo::principal_key`]): that principal's sessions share it, no other principal's ever do | `--idle-timeout` after its last session ended |
//! | `shared` | gateway: every session of every principal | never while the gateway runs: when it exits it is restarted, after a delay that doubles with each quick exit (0.5 s up to 30 s) |
//!
//! `session` gives every client a process of its own; `principal` keeps users apart (no
//! user can see another's data in the server's memory) while a user's many sessions (an IDE
//! that reconnects, several agents) cost one process; `shared` is for servers that are
//! stateless or meant to be shared, where one process for a team is what the operator wants.
//! `--max-children` bounds the processes in every mode: a session that would need one more
//! gets `503`.
//!
//! **One handshake per child.** Each MCP session starts with `initialize`, but a stdio
//! server is initialized once in its life (MCP 2025-11-25, "Lifecycle": initialization is
//! the first interaction, and a second `initialize` is not defined; many servers refuse it
//! or reset their state, which would break the sessions already open). So a session that
//! joins a child someone already initialized gets the child's answer to the *first*
//! `initialize`, with its own id, without the child seeing anything; its
//! `notifications/initialized` is dropped too. The answer is the truth about the process it
//! will talk to: its capabilities and the protocol version it speaks. What a joining client
//! cannot do is change the child's view of the client: the capabilities the child knows are
//! the first client's, so a server may, say, send a sampling request that a later client
//! did not offer, and that client answers with an error as the protocol allows. Concurrent
//! first sessions wait for the one handshake in flight; a handshake that fails is not kept.
//!
//! **Routing between sessions** is the bridge's ([`crate::bridge`]): answers by the ids the
//! gateway gave the requests, progress by the token the gateway gave them, the server's own
//! requests to one session (the one with the oldest call in flight), and notifications that
//! name no request to every session of the child. Under `principal` those are all one
//! principal's; under `shared`, a notification such as a log message reaches everyone
//! connected, which is the price of sharing one process.
//!
//! **Failure.** A child that exits fails every request in flight at once (the bridge) and
//! ends its sessions: their clients get `404` and open new ones, as the transport requires,
//! rather than talk to a fresh process that never heard of them. The next session starts a
//! new child, except under `shared`, where the gateway restarts it itself, with backoff, and
//! refuses new sessions with `503` and `Retry-After` until it is back.
//!
//! ```no_run
//! # async fn run(alice: mcp_server_auth::AuthInfo) {
//! use std::time::Duration;
//! use mcp_auth_gateway::{bridge::Limits, child::Command, cli::Isolation, pool::{Pool, PoolConfig}};
//! let pool = Pool::new(PoolConfig {
//!     command: Command::new("mcp-server", ["--stdio"]),
//!     isolation: Isolation::Principal,
//!     max_children: 64,
//!     idle_timeout: Duration::from_secs(600),
//!     limits: Limits::default(),
//! });
//! let child = pool.acquire(&alice, 1).unwrap(); // session 1 of alice
//! let again = pool.acquire(&alice, 2).unwrap(); // session 2: the same process
//! assert_eq!(child.pid(), again.pid());
//! pool.shutdown(Duration::from_secs(10)).await;
//! # }
//! ```

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use mcp_server_auth::AuthInfo;
use tokio::{
    sync::{mpsc, oneshot},
    time::Instant,
};
use tokio_util::task::TaskTracker;

use crate::{
    bridge::{Bridge, Ended, Exchange, Limits},
    child::Command,
    cli::Isolation,
    message::{self, Message},
    session::CreateError,
};

/// The first delay before a `shared` child is restarted; it doubles with each quick exit.
const RESTART_MIN: Duration = Duration::from_millis(500);
/// The longest delay before a restart.
const RESTART_MAX: Duration = Duration::from_secs(30);
/// A child that ran this long had no quick exit: the delay starts over.
const STABLE: Duration = Duration::from_secs(60);

/// How children are made and shared.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// The child's command.
    pub command: Command,
    /// Who shares a child.
    pub isolation: Isolation,
    /// The most children at once.
    pub max_children: usize,
    /// Under `principal`, a child with no session for this long ends.
    pub idle_timeout: Duration,
    /// The bridges' limits.
    pub limits: Limits,
}

/// Who a child belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Session(u64),
    Principal(String),
    Shared,
}

/// One child, the sessions attached to it, and its one `initialize` handshake.
#[derive(Debug)]
pub struct Backend {
    seq: u64,
    key: Key,
    bridge: Bridge,
    started: Instant,
    /// The child's answer to the first `initialize` that succeeded (shared children only).
    init: Arc<tokio::sync::Mutex<Option<Bytes>>>,
    initialized: AtomicBool,
    /// The attached sessions, and since when there is none.
    attached: Mutex<(usize, Instant)>,
}

impl Backend {
    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.bridge.pid()
    }

    /// The bridge to the child.
    pub fn bridge(&self) -> &Bridge {
        &self.bridge
    }

    fn shares_handshake(&self) -> bool {
        !matches!(self.key, Key::Session(_))
    }

    fn attached(&self) -> MutexGuard<'_, (usize, Instant)> {
        self.attached.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Session `client`'s `initialize`: sent to the child if it is the child's first (or
    /// the child is the session's own), else answered from the first one's result.
    pub async fn initialize(&self, client: u64, msg: &Message<'_>) -> Result<Exchange, Ended> {
        if !self.shares_handshake() {
            return self.bridge.request(client, msg).await;
        }
        let mut first = self.init.clone().lock_owned().await;
        if let Some(answer) = first.as_ref().and_then(|a| {
            let a = Message::parse(a).ok()?;
            let id = msg.id().map(ToOwned::to_owned);
            Some(message::response_with_id(&a, id.as_deref()?))
        }) {
            tracing::debug!("[child {}] initialize answered from the first", self.seq);
            return Ok(ready(answer));
        }
        let Exchange { messages, answer } = self.bridge.request(client, msg).await?;
        let (tx, rx) = oneshot::channel();
        tokio::spawn(async move {
            // The lock is held until the child answers: a second session waits for it.
            let Ok(answer) = answer.await else { return };
            if Message::parse(&answer).is_ok_and(|m| m.result().is_some()) {
                *first = Some(answer.clone());
            }
            let _ = tx.send(answer);
        });
        Ok(Exchange {
            messages,
            answer: rx,
        })
    }

    /// The child's answer to its first `initialize`, once it succeeded and
    /// `notifications/initialized` was sent (children shared by principal or gateway only).
    pub async fn handshake(&self) -> Option<Bytes> {
        if !self.initialized.load(Ordering::Acquire) {
            return None;
        }
        self.init.lock().await.clone()
    }

    /// Session `client`'s request.
    pub async fn request(&self, client: u64, msg: &Message<'_>) -> Result<Exchange, Ended> {
        self.bridge.request(client, msg).await
    }

    /// Session `client`'s notification or answer; a shared child gets only the first
    /// `notifications/initialized`.
    pub async fn send(&self, client: u64, msg: &Message<'_>, line: Bytes) -> Result<(), Ended> {
        if self.shares_handshake()
            && msg.method() == Some("notifications/initialized")
            && self.initialized.swap(true, Ordering::AcqRel)
        {
            return Ok(());
        }
        self.bridge.send(client, msg, line).await
    }
}

/// An exchange whose answer is already there.
fn ready(answer: Bytes) -> Exchange {
    let (tx, rx) = oneshot::channel();
    let _ = tx.send(answer);
    let (_, messages) = mpsc::channel(1);
    Exchange {
        messages,
        answer: rx,
    }
}

/// The children. Clones share them.
#[derive(Debug, Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: PoolConfig,
    backends: Mutex<HashMap<Key, Arc<Backend>>>,
    seq: AtomicU64,
    closing: AtomicBool,
    /// Under `shared`: no child is started before this instant (a restart's backoff), and
    /// the delay before the next restart.
    restart: Mutex<(Option<Instant>, Duration)>,
    /// The tasks that wait for each child and end its process group.
    children: TaskTracker,
}

impl Pool {
    /// No children yet.
    pub fn new(config: PoolConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                backends: Mutex::new(HashMap::new()),
                seq: AtomicU64::new(1),
                closing: AtomicBool::new(false),
                restart: Mutex::new((None, RESTART_MIN)),
                children: TaskTracker::new(),
            }),
        }
    }

    fn backends(&self) -> MutexGuard<'_, HashMap<Key, Arc<Backend>>> {
        self.inner
            .backends
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The number of children now.
    pub fn len(&self) -> usize {
        self.backends().len()
    }

    /// Whether no child runs.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The child for session `session` of `owner`, started if needed, with the session
    /// attached.
    pub fn acquire(&self, owner: &AuthInfo, session: u64) -> Result<Arc<Backend>, CreateError> {
        let key = match self.inner.config.isolation {
            Isolation::Session => Key::Session(session),
            Isolation::Principal => Key::Principal(format!("{:?}", owner.principal_key())),
            Isolation::Shared => Key::Shared,
        };
        self.acquire_key(key, session)
    }

    /// The child of `owner`'s principal (the gateway's one child under `--isolation shared`),
    /// whatever `--isolation` says otherwise, started if needed, with `client` attached until
    /// the [`Lease`] is dropped. For requests that belong to no session (MCP 2026-07-28,
    /// [`crate::stateless`]): another principal never shares it unless the operator chose
    /// `shared`.
    pub fn lease(&self, owner: &AuthInfo, client: u64) -> Result<Lease, CreateError> {
        let key = match self.inner.config.isolation {
            Isolation::Shared => Key::Shared,
            _ => Key::Principal(format!("{:?}", owner.principal_key())),
        };
        let backend = self.acquire_key(key, client)?;
        Ok(Lease {
            pool: self.clone(),
            backend,
            client,
        })
    }

    fn acquire_key(&self, key: Key, session: u64) -> Result<Arc<Backend>, CreateError> {
        let mut backends = self.backends();
        if self.inner.closing.load(Ordering::Acquire) {
            return Err(CreateError::ShuttingDown);
        }
        if let Some(backend) = backends.get(&key)
            && backend.bridge.attach(session).is_ok()
        {
            let mut a = backend.attached();
            a.0 += 1;
            return Ok(backend.clone());
        }
        if key == Key::Shared {
            let wait = self
                .not_before()
                .map(|at| at.saturating_duration_since(Instant::now()));
            if let Some(wait) = wait.filter(|w| !w.is_zero()) {
                return Err(CreateError::Restarting(wait.as_secs() + 1));
            }
        }
        let backend = self.spawn(&mut backends, key)?;
        backend
            .bridge
            .attach(session)
            .map_err(|_| CreateError::ShuttingDown)?;
        backend.attached().0 += 1;
        Ok(backend)
    }

    fn restart(&self) -> MutexGuard<'_, (Option<Instant>, Duration)> {
        self.inner
            .restart
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn not_before(&self) -> Option<Instant> {
        self.restart().0
    }

    /// The delay before restarting the shared child that started at `started` and has just
    /// ended: doubled after each quick exit, reset after a stable run.
    fn next_delay(&self, started: Instant) -> Duration {
        let mut restart = self.restart();
        let delay = if started.elapsed() >= STABLE {
            RESTART_MIN
        } else {
            restart.1
        };
        *restart = (Some(Instant::now() + delay), (delay * 2).min(RESTART_MAX));
        delay
    }

    /// Starts a child for `key` (the table is locked by the caller).
    fn spawn(
        &self,
        backends: &mut HashMap<Key, Arc<Backend>>,
        key: Key,
    ) -> Result<Arc<Backend>, CreateError> {
        let config = &self.inner.config;
        backends.retain(|_, b| b.bridge.end_reason().is_none());
        if backends.len() >= config.max_children {
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
        let label = match key {
            Key::Session(session) => format!("session {session}"),
            _ => format!("child {seq}"),
        };
        let pid = spawned.pid;
        let bridge = Bridge::start(spawned, label.clone(), config.limits, &self.inner.children);
        let backend = Arc::new(Backend {
            seq,
            key: key.clone(),
            bridge,
            started: Instant::now(),
            init: Arc::default(),
            initialized: AtomicBool::new(false),
            attached: Mutex::new((0, Instant::now())),
        });
        backends.insert(key, backend.clone());
        tracing::info!(
            pid,
            isolation = ?config.isolation,
            "[{label}] started the MCP server ({} running)",
            backends.len()
        );
        tokio::spawn(watch(self.clone(), backend.clone()));
        Ok(backend)
    }

    /// Detaches session `session` from `backend` (the session ended for `reason`). Under
    /// `session` the child ends with it; under `principal` it ends after `--idle-timeout`
    /// with no session.
    pub fn release(&self, backend: &Arc<Backend>, session: u64, reason: &str) {
        if !backend.shares_handshake() {
            backend.bridge.close(reason);
            return;
        }
        backend.bridge.detach(session, reason);
        let mut a = backend.attached();
        a.0 = a.0.saturating_sub(1);
        a.1 = Instant::now();
        if a.0 == 0 && backend.key != Key::Shared {
            let timeout = self.inner.config.idle_timeout;
            let backend = backend.clone();
            tokio::spawn(async move {
                tokio::select! {
                    () = tokio::time::sleep(timeout) => {}
                    () = backend.bridge.ended() => return,
                }
                let a = backend.attached();
                if a.0 == 0 && a.1 + timeout <= Instant::now() {
                    backend
                        .bridge
                        .close(&format!("no session for {timeout:?} (--idle-timeout)"));
                }
            });
        }
    }

    /// Refuses new children and ends every child (without waiting).
    pub fn close_all(&self) {
        self.inner.closing.store(true, Ordering::Release);
        let backends: Vec<Arc<Backend>> = self.backends().drain().map(|(_, b)| b).collect();
        for b in &backends {
            b.bridge.close("the gateway is shutting down");
        }
    }

    /// [`close_all`](Self::close_all), then waits (at most `wait`) until every child started
    /// has exited and its process group has been signalled.
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

/// A child attached to one client for one request without a session: dropping it detaches
/// the client, and the child ends after `--idle-timeout` with no client (except the
/// `shared` one).
#[derive(Debug)]
pub struct Lease {
    pool: Pool,
    backend: Arc<Backend>,
    client: u64,
}

impl Lease {
    /// The child.
    pub fn backend(&self) -> &Arc<Backend> {
        &self.backend
    }

    /// The client number the child's bridge knows this request by.
    pub fn client(&self) -> u64 {
        self.client
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.pool
            .release(&self.backend, self.client, "the request has ended");
    }
}

/// Forgets the child when it ends; under `shared`, restarts it after the backoff.
async fn watch(pool: Pool, backend: Arc<Backend>) {
    backend.bridge.ended().await;
    {
        let mut backends = pool.backends();
        if backends
            .get(&backend.key)
            .is_some_and(|b| b.seq == backend.seq)
        {
            backends.remove(&backend.key);
        }
    }
    if backend.key != Key::Shared {
        return;
    }
    let mut started = backend.started;
    // Bounded by the gateway's life: each round sleeps at least RESTART_MIN.
    loop {
        if pool.inner.closing.load(Ordering::Acquire) {
            return;
        }
        let delay = pool.next_delay(started);
        tracing::warn!("the shared MCP server will restart in {delay:?}");
        tokio::time::sleep(delay).await;
        let mut backends = pool.backends();
        if pool.inner.closing.load(Ordering::Acquire) || backends.contains_key(&Key::Shared) {
            return;
        }
        match pool.spawn(&mut backends, Key::Shared) {
            // Its own watch takes over.
            Ok(_) => return,
            Err(e) => tracing::error!("cannot restart the shared MCP server: {e}"),
        }
        started = Instant::now();
        drop(backends);
    }
}
