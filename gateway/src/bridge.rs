//! The bridge: JSON-RPC messages between HTTP exchanges and one child's stdin and stdout.
//!
//! Streamable HTTP and stdio carry the same messages but route them differently. Over HTTP an
//! answer travels on the `POST` that asked, and the server's own messages (notifications, its
//! requests to the client) travel on that `POST`'s event stream or on the session's `GET`
//! stream (MCP 2025-11-25, "Transports" § Streamable HTTP). Over stdio everything is one stream
//! of lines. The bridge puts the routes back:
//!
//! A child may serve several clients (MCP sessions, numbered by the caller: `--isolation
//! principal` and `shared`, [`crate::pool`]), so every route names one:
//!
//! | from the child | goes to |
//! |---|---|
//! | an answer | the `POST` whose request it answers ([`Exchange::answer`]), with the client's own id |
//! | `notifications/progress` | the `POST` whose request carried its `progressToken`, with the client's own token, if it is still open, else that client's streams |
//! | a request (sampling, elicitation, roots, ping) | one client: the one with the oldest request in flight (the call that most likely caused it), else the first attached; its answer is accepted from that client only |
//! | any other notification | every client but listeners: the child does not say whom it concerns (logging, list changes, resource updates); list changes and resource updates also to the child's `subscriptions/listen` streams that want them ([`crate::taps`], never waiting for them) |
//!
//! and within a client, a message for no particular exchange goes to its `GET` stream if open,
//! else its oldest open `POST` stream, else a bounded backlog that its next `GET` stream
//! receives first.
//!
//! From the clients, requests get an id the bridge chooses and their `progressToken` becomes
//! that id too, so that answers and progress are matched to exchanges without trusting
//! clients to keep their ids and tokens apart (two clients of one child may both send id 1);
//! `notifications/cancelled` is rewritten to match and only cancels the sender's own request.
//! Other notifications and the clients' answers to the server's requests pass unchanged.
//!
//! **Failure is prompt.** When the child exits, closes its stdout, writes a line over the
//! limit, or the session is closed, every request still waiting gets a JSON-RPC error at once
//! (`-32603`, naming the reason), streams end, and the child's process group is ended
//! ([`crate::child::supervise`]). A line that is not JSON-RPC is logged and skipped: servers
//! that print to stdout by mistake keep working.
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! use mcp_auth_gateway::{bridge::{Bridge, Limits}, child::Command, message::Message};
//! let child = Command::new("mcp-server", ["--stdio"]).spawn()?;
//! let children = tokio_util::task::TaskTracker::new();
//! let bridge = Bridge::start(child, "session 1".into(), Limits::default(), &children);
//! bridge.attach(1).unwrap(); // client (session) 1
//! let line = br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
//! let mut exchange = bridge.request(1, &Message::parse(line).unwrap()).await.unwrap();
//! let answer = (&mut exchange.answer).await.unwrap(); // {"jsonrpc":"2.0","id":1,"result":{}}
//! # let _ = answer; Ok(()) }
//! ```

use std::{
    collections::{HashMap, VecDeque},
    process::ExitStatus,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use serde_json::value::RawValue;
use tokio::{
    io::AsyncWriteExt,
    process::{ChildStdin, ChildStdout},
    sync::{mpsc, oneshot, watch},
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    child::{self, Spawned},
    framing::{Frame, LineReader},
    message::{self, Kind, Message},
    taps::{Filter, TapError, Taps},
};

/// The JSON-RPC code of the errors the bridge answers with: internal error.
pub const INTERNAL_ERROR: i32 = -32603;
/// Messages kept for a `GET` stream that is not open yet; beyond that the oldest go.
pub const MAX_BACKLOG: usize = 256;
/// Messages queued towards one HTTP exchange before the child waits for the client.
const EXCHANGE_QUEUE: usize = 32;
/// Messages queued towards the child before callers wait.
const CHILD_QUEUE: usize = 64;

/// A bridge's limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The longest line read from the child; a longer one ends the session.
    pub max_message_bytes: usize,
    /// How long the child has to exit after `SIGTERM` before its group gets `SIGKILL`.
    pub grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: 16 * 1024 * 1024,
            grace: Duration::from_secs(5),
        }
    }
}

/// Why the bridge no longer carries messages: its session has ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the MCP session has ended: {0}")]
pub struct Ended(pub Arc<str>);

/// The client's side of one request: the messages the bridge routes to it, then the answer.
#[derive(Debug)]
pub struct Exchange {
    /// Notifications and server requests for this exchange, in order; all of them arrive
    /// before [`answer`](Self::answer) is ready.
    pub messages: mpsc::Receiver<Bytes>,
    /// The answer, with the client's id (a JSON-RPC error if the session ends first).
    pub answer: oneshot::Receiver<Bytes>,
}

/// One child's bridge. Clones share it.
#[derive(Debug, Clone)]
pub struct Bridge {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    label: String,
    pid: u32,
    to_child: mpsc::Sender<Bytes>,
    state: Mutex<State>,
    next_id: AtomicU64,
    ended: CancellationToken,
    reaped: CancellationToken,
    taps: Taps,
}

#[derive(Debug, Default)]
struct State {
    /// The requests in flight, by the id the child knows.
    pending: HashMap<u64, Pending>,
    /// The attached clients, by number.
    clients: HashMap<u64, Client>,
    /// The server's requests in flight (raw id) and the client each was sent to.
    server_requests: HashMap<Box<str>, u64>,
    end: Option<Arc<str>>,
}

/// One client's streams for messages of no particular exchange.
#[derive(Debug, Default)]
struct Client {
    stream: Option<mpsc::Sender<Bytes>>,
    backlog: VecDeque<Bytes>,
    /// A listener's attachment ([`Bridge::tap`]): it holds the child, and gets neither the
    /// notifications for every client nor the server's requests.
    quiet: bool,
}

#[derive(Debug)]
struct Pending {
    client: u64,
    client_id: Box<RawValue>,
    /// The client's own `progressToken`, restored in the notifications.
    progress: Option<Box<RawValue>>,
    messages: mpsc::Sender<Bytes>,
    answer: oneshot::Sender<Bytes>,
}

impl Bridge {
    /// Starts bridging a spawned child; `label` prefixes its log lines. The task that waits
    /// for the child and ends its process group runs on `children`, so that a caller can wait
    /// until no child is left.
    pub fn start(spawned: Spawned, label: String, limits: Limits, children: &TaskTracker) -> Self {
        let Spawned {
            pid,
            process,
            stdin,
            stdout,
            stderr,
        } = spawned;
        let (to_child, from_bridge) = mpsc::channel(CHILD_QUEUE);
        let shared = Arc::new(Shared {
            label: label.clone(),
            pid,
            to_child,
            state: Mutex::new(State::default()),
            next_id: AtomicU64::new(1),
            ended: CancellationToken::new(),
            reaped: CancellationToken::new(),
            taps: Taps::default(),
        });
        let (status_tx, status_rx) = watch::channel(None);
        let reaped = shared.reaped.clone();
        let stop = shared.ended.clone();
        children.spawn(async move {
            child::supervise(process, pid, stop, limits.grace, status_tx).await;
            reaped.cancel();
        });
        tokio::spawn(child::log_stderr(stderr, label));
        tokio::spawn(write_loop(shared.clone(), stdin, from_bridge));
        tokio::spawn(read_loop(
            shared.clone(),
            stdout,
            limits.max_message_bytes,
            status_rx,
        ));
        Self { shared }
    }

    /// The child's process id (and process group id).
    pub fn pid(&self) -> u32 {
        self.shared.pid
    }

    /// Attaches client number `client` (an MCP session): messages for it are kept from now
    /// on. A client that is already attached stays as it is.
    pub fn attach(&self, client: u64) -> Result<(), Ended> {
        let mut state = self.shared.state();
        if let Some(reason) = &state.end {
            return Err(Ended(reason.clone()));
        }
        state.clients.entry(client).or_default();
        Ok(())
    }

    /// Detaches `client` (its session ended; the child goes on for the others): its requests
    /// still in flight get an error naming `reason`, its streams end, the server's requests
    /// sent to it are forgotten. Returns how many clients are left.
    pub fn detach(&self, client: u64, reason: &str) -> usize {
        let (pending, left) = {
            let mut state = self.shared.state();
            state.clients.remove(&client);
            state.server_requests.retain(|_, c| *c != client);
            let ids: Vec<u64> = state
                .pending
                .iter()
                .filter(|(_, p)| p.client == client)
                .map(|(id, _)| *id)
                .collect();
            let pending: Vec<Pending> = ids
                .iter()
                .filter_map(|id| state.pending.remove(id))
                .collect();
            (pending, state.clients.len())
        };
        let message = format!("The MCP session has ended: {reason}.");
        for p in pending {
            let _ = p.answer.send(message::error_response(
                Some(&p.client_id),
                INTERNAL_ERROR,
                &message,
            ));
        }
        left
    }

    /// A `subscriptions/listen` stream of `owner` (a principal) on attached client `client`,
    /// for the notifications `filter` wants ([`crate::taps`]): its tap number, its queue
    /// (which ends when the child does), and the resource URIs nobody listened to before. The
    /// client gets nothing else from now on.
    pub fn tap(
        &self,
        client: u64,
        owner: &str,
        filter: Filter,
    ) -> Result<(u64, mpsc::Receiver<Bytes>, Vec<String>), TapError> {
        // Under the state's lock: `end` either comes first (refused) or clears the new tap.
        let mut state = self.shared.state();
        if state.end.is_some() {
            return Err(TapError::Ended);
        }
        if let Some(c) = state.clients.get_mut(&client) {
            c.quiet = true;
            c.backlog.clear();
        }
        self.shared.taps.add(owner, filter)
    }

    /// The child's `subscriptions/listen` streams.
    pub fn taps(&self) -> &Taps {
        &self.shared.taps
    }

    /// Sends `client`'s request to the child; its answer comes back on the [`Exchange`].
    pub async fn request(&self, client: u64, msg: &Message<'_>) -> Result<Exchange, Ended> {
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let (messages_tx, messages) = mpsc::channel(EXCHANGE_QUEUE);
        let (answer_tx, answer) = oneshot::channel();
        let progress = msg.progress_token();
        {
            let mut state = self.shared.state();
            if let Some(reason) = &state.end {
                return Err(Ended(reason.clone()));
            }
            let client_id = msg.id().map_or_else(null, ToOwned::to_owned);
            state.pending.insert(
                id,
                Pending {
                    client,
                    client_id,
                    progress: progress.map(ToOwned::to_owned),
                    messages: messages_tx,
                    answer: answer_tx,
                },
            );
        }
        let line = match progress {
            Some(_) => message::request_with_id_and_progress(msg, id),
            None => message::request_with_id(msg, id),
        };
        self.write(line).await?;
        Ok(Exchange { messages, answer })
    }

    /// Sends `client`'s notification, or its answer to a request of the server's, to the
    /// child. A cancellation names the request by the id the child knows, and only one of
    /// the client's own requests; the request's exchange ends. An answer to a server request
    /// that was not sent to this client is dropped.
    pub async fn send(&self, client: u64, msg: &Message<'_>, line: Bytes) -> Result<(), Ended> {
        if msg.kind() == Kind::Response {
            let id = msg.id().map(RawValue::get).unwrap_or("null");
            let mut state = self.shared.state();
            if state.server_requests.get(id) != Some(&client) {
                tracing::debug!(
                    "[{}] dropped an answer to a request the server did not send this client",
                    self.shared.label
                );
                return Ok(());
            }
            state.server_requests.remove(id);
        }
        if let Some(client_id) = msg.cancelled_request() {
            let found = {
                let mut state = self.shared.state();
                let id = state
                    .pending
                    .iter()
                    .find(|(_, p)| p.client == client && p.client_id.get() == client_id.get())
                    .map(|(id, _)| *id);
                id.inspect(|id| {
                    state.pending.remove(id);
                })
            };
            // A cancellation of a request already answered has nothing to do.
            return match found {
                Some(id) => self.write(message::cancelled_with_id(msg, id)).await,
                None => Ok(()),
            };
        }
        self.write(message::one_line(line)).await
    }

    /// Opens `client`'s stream of the server's own messages (the session's `GET`), replacing
    /// the previous one (which ends). It starts with the client's backlog.
    pub fn open_stream(&self, client: u64) -> Result<mpsc::Receiver<Bytes>, Ended> {
        let mut state = self.shared.state();
        if let Some(reason) = &state.end {
            return Err(Ended(reason.clone()));
        }
        let Some(c) = state.clients.get_mut(&client) else {
            return Err(Ended("the session is not attached".into()));
        };
        let (tx, rx) = mpsc::channel(EXCHANGE_QUEUE + c.backlog.len());
        for line in c.backlog.drain(..) {
            // Cannot fail: the channel has room for the whole backlog.
            let _ = tx.try_send(line);
        }
        c.stream = Some(tx);
        Ok(rx)
    }

    /// Ends the session: waiting requests get an error naming `reason`, streams end, the
    /// child's process group is ended. Idempotent; the first reason stays.
    pub fn close(&self, reason: &str) {
        self.shared.end(reason);
    }

    /// Why the session ended, if it has.
    pub fn end_reason(&self) -> Option<Arc<str>> {
        self.shared.state().end.clone()
    }

    /// Resolves when the session has ended.
    pub async fn ended(&self) {
        self.shared.ended.cancelled().await;
    }

    /// Resolves when the child has exited and its process group has been signalled.
    pub async fn reaped(&self) {
        self.shared.reaped.cancelled().await;
    }

    async fn write(&self, line: Bytes) -> Result<(), Ended> {
        if self.shared.to_child.send(line).await.is_err() {
            let reason = self.end_reason();
            return Err(Ended(
                reason.unwrap_or_else(|| "its input is closed".into()),
            ));
        }
        Ok(())
    }
}

fn null() -> Box<RawValue> {
    RawValue::from_string("null".to_owned()).unwrap_or_else(|_| unreachable!())
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // No code panics while holding the lock; if one did, the state is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn end(&self, reason: &str) {
        let (pending, clients) = {
            let mut state = self.state();
            if state.end.is_some() {
                return;
            }
            state.end = Some(reason.into());
            state.server_requests.clear();
            (
                std::mem::take(&mut state.pending),
                std::mem::take(&mut state.clients),
            )
        };
        tracing::info!(pid = self.pid, "[{}] session ended: {reason}", self.label);
        let message = format!(
            "The MCP server's session ended before it answered: {reason}. Start a new session \
             (send initialize without Mcp-Session-Id)."
        );
        for p in pending.into_values() {
            let error = message::error_response(Some(&p.client_id), INTERNAL_ERROR, &message);
            let _ = p.answer.send(error);
        }
        drop(clients);
        self.taps.clear();
        self.ended.cancel();
    }

    /// Where a message for `client` and no particular exchange goes: its `GET` stream, else
    /// its oldest open exchange; `None` (and the message kept in its backlog) if there is
    /// neither, or if the client is gone.
    fn client_route(&self, client: u64, line: &Bytes) -> Option<mpsc::Sender<Bytes>> {
        let mut state = self.state();
        let oldest = state
            .pending
            .iter()
            .filter(|(_, p)| p.client == client && !p.messages.is_closed())
            .min_by_key(|(id, _)| **id)
            .map(|(_, p)| p.messages.clone());
        let c = state.clients.get_mut(&client)?;
        if let Some(stream) = c.stream.as_ref().filter(|s| !s.is_closed()) {
            return Some(stream.clone());
        }
        if oldest.is_none() {
            if c.backlog.len() == MAX_BACKLOG {
                c.backlog.pop_front();
                tracing::warn!(
                    "[{}] no stream of client {client} is open: a server message was dropped \
                     (backlog full)",
                    self.label
                );
            }
            c.backlog.push_back(line.clone());
        }
        oldest
    }

    /// Delivers `line` to `client`'s streams (or backlog).
    async fn deliver(&self, client: u64, line: &Bytes) {
        if let Some(target) = self.client_route(client, line)
            && target.send(line.clone()).await.is_err()
        {
            // The client went away meanwhile: keep it for the next stream.
            let _ = self.client_route(client, line);
        }
    }

    /// The client a server request goes to: the one with the oldest request in flight, else
    /// the first attached. It is remembered, so that only that client may answer.
    fn request_target(&self, id: &RawValue) -> Option<u64> {
        let mut state = self.state();
        let target = state
            .pending
            .iter()
            .min_by_key(|(id, _)| **id)
            .map(|(_, p)| p.client)
            .or_else(|| {
                let awake = state.clients.iter().filter(|(_, c)| !c.quiet);
                awake.map(|(k, _)| *k).min()
            })?;
        state.server_requests.insert(id.get().into(), target);
        Some(target)
    }

    /// Routes one line from the child.
    async fn route(&self, line: Bytes) {
        let msg = match Message::parse(&line) {
            Ok(msg) => msg,
            Err(e) => {
                tracing::warn!(
                    "[{}] ignored a line on the MCP server's stdout: {e} ({} bytes)",
                    self.label,
                    line.len()
                );
                return;
            }
        };
        if msg.kind() == Kind::Response {
            let id = msg.id().and_then(|id| id.get().parse::<u64>().ok());
            let pending = id.and_then(|id| self.state().pending.remove(&id));
            match pending {
                Some(p) => {
                    let _ = p.answer.send(message::response_with_id(&msg, &p.client_id));
                }
                None => tracing::debug!(
                    "[{}] an answer no exchange waits for (answered, cancelled, or an id the \
                     gateway never sent)",
                    self.label
                ),
            }
            return;
        }
        if msg.method() == Some("notifications/progress") {
            // The token is the id of the request it reports on (see `request`).
            let id = msg
                .progress_token()
                .and_then(|t| t.get().parse::<u64>().ok());
            let target = id.and_then(|id| {
                let state = self.state();
                let p = state.pending.get(&id)?;
                let token = p.progress.as_deref()?;
                Some((
                    p.client,
                    p.messages.clone(),
                    message::progress_with_token(&msg, token),
                ))
            });
            let Some((client, messages, line)) = target else {
                tracing::debug!(
                    "[{}] progress for no request in flight (answered, or cancelled)",
                    self.label
                );
                return;
            };
            if messages.send(line.clone()).await.is_err() {
                self.deliver(client, &line).await;
            }
            return;
        }
        let line = message::one_line(line.clone());
        if msg.kind() == Kind::Request {
            let target = msg.id().and_then(|id| self.request_target(id));
            match target {
                Some(client) => self.deliver(client, &line).await,
                None => tracing::warn!(
                    "[{}] the MCP server sent a request while no session is attached",
                    self.label
                ),
            }
            return;
        }
        self.taps.offer(&msg, &line, &self.label);
        let clients: Vec<u64> = {
            let state = self.state();
            let awake = state.clients.iter().filter(|(_, c)| !c.quiet);
            awake.map(|(k, _)| *k).collect()
        };
        for client in clients {
            self.deliver(client, &line).await;
        }
    }
}

async fn write_loop(shared: Arc<Shared>, mut stdin: ChildStdin, mut lines: mpsc::Receiver<Bytes>) {
    loop {
        let line = tokio::select! {
            line = lines.recv() => line,
            () = shared.ended.cancelled() => None,
        };
        let Some(line) = line else { break };
        let written = async {
            stdin.write_all(&line).await?;
            stdin.write_all(b"\n").await?;
            stdin.flush().await
        };
        if let Err(e) = written.await {
            shared.end(&format!("the MCP server's stdin is closed ({e})"));
            break;
        }
    }
    // Dropping stdin closes it: a well-behaved server exits on end of input.
}

async fn read_loop(
    shared: Arc<Shared>,
    stdout: ChildStdout,
    max: usize,
    mut status: watch::Receiver<Option<ExitStatus>>,
) {
    let mut lines = LineReader::new(stdout, max);
    let reason = loop {
        let frame = tokio::select! {
            frame = lines.next() => frame,
            () = shared.ended.cancelled() => return,
        };
        match frame {
            Ok(Frame::Line(line)) => shared.route(line).await,
            Ok(Frame::TooLong) => {
                break format!(
                    "the MCP server sent a message over {max} bytes (raise --max-message-bytes \
                     if it is legitimate)"
                );
            }
            Ok(Frame::Eof) => {
                // The exit status makes a better message; it follows end of output closely.
                let exited =
                    tokio::time::timeout(Duration::from_secs(1), status.wait_for(Option::is_some))
                        .await;
                break match exited {
                    Ok(Ok(status)) => match *status {
                        Some(s) => format!("the MCP server process exited ({s})"),
                        None => "the MCP server process exited".to_owned(),
                    },
                    _ => "the MCP server closed its stdout".to_owned(),
                };
            }
            Err(e) => break format!("cannot read the MCP server's stdout ({e})"),
        }
    };
    shared.end(&reason);
}
