//! Session binding: an MCP session belongs to the principal that opened it.
//!
//! In the Streamable HTTP transport of MCP 2025-06-18 and 2025-11-25, the server answers
//! `initialize` with an `Mcp-Session-Id` header, and the client sends that id with every later
//! request of the session (`POST`, the `GET` event stream, the `DELETE` that ends it). The id
//! says which session a request belongs to; it is not a credential, and every request is still
//! authenticated on its own. But nothing in the transport ties the id to *who* opened the
//! session: a caller with credentials of their own who learns someone else's session id (from a
//! log, a proxy, a shared debugging transcript) could send requests into that session, read
//! its event stream, or end it. MCP's security best practices ("Session Hijacking") say servers
//! **MUST NOT** use sessions for authentication and **SHOULD** bind session ids to
//! user-specific information; MCP 2026-07-28 removes protocol sessions but keeps the same
//! advice for the state handles servers hand out.
//!
//! [`SessionBindingLayer`] does this binding in front of any MCP server. Placed inside the
//! [`AuthLayer`](crate::AuthLayer), it reads the caller's [`AuthInfo`] and keys each session
//! on its [principal](AuthInfo::principal_key) (issuer and subject, or method and subject):
//!
//! | request | outcome |
//! |---|---|
//! | no `Mcp-Session-Id`; the response opens a session | the new id is bound to the caller |
//! | an id bound to the caller | passed on untouched (the binding's idle timer restarts) |
//! | an id bound to another principal | `404 Not Found`; the inner service is not called |
//! | an id the layer does not know (ended, expired, evicted, malformed…) | `404 Not Found` |
//! | more than one `Mcp-Session-Id` field | `404 Not Found` |
//! | no [`AuthInfo`] at all (the layer is not inside an auth layer) | `500 Internal Server Error` |
//!
//! `404` is what the transport prescribes for a session the server does not have, and MCP
//! clients answer it by opening a new session: the owner of a session never sees a difference,
//! and another caller learns nothing (an id bound to someone else and an id that does not exist
//! get the same answer). The refusal is `Content-Type: application/json`,
//! `Cache-Control: no-store`, with the JSON-RPC error
//! `{"jsonrpc":"2.0","error":{"code":-32600,"message":"Session not found"}}`, and no
//! `WWW-Authenticate`: new credentials would not help.
//!
//! A request without an [`AuthInfo`] gets `500` (JSON-RPC `-32603`, "Internal error") and an
//! error in the log, whatever it carries: the layer cannot bind a session to nobody, and a `401`
//! would send clients off to re-authenticate for what is a mistake in the server's stack. It
//! never passes such a request on.
//!
//! A `DELETE` of the owner that succeeds (`2xx`) forgets the binding; so does a `404` from the
//! inner service for a bound id (the server has ended the session). Other answers leave it.
//!
//! # Fail closed, and what it costs
//! The bindings live in this process's memory, so a session the layer does not know is refused
//! even if the MCP server behind still knows it:
//! - After a restart, every session open before it gets `404`, and clients open new ones (an
//!   MCP server whose sessions survive restarts, in an external store, loses that here).
//! - Behind a load balancer, each instance has its own table: route a session's requests to the
//!   instance that opened it (sticky sessions), or bind sessions in the shared store instead.
//! - Memory is bounded. A binding unused for the
//!   [idle timeout](SessionBindingLayerBuilder::idle_timeout) is forgotten (default one hour; a
//!   long-lived `GET` event stream does not count as use). At most
//!   [`max_sessions`](SessionBindingLayerBuilder::max_sessions) bindings are kept (default
//!   10 000; when full, the oldest binding not used since the last eviction round goes), and at
//!   most [`max_sessions_per_principal`](SessionBindingLayerBuilder::max_sessions_per_principal)
//!   per principal (default 100; a principal over it loses its own oldest, never someone
//!   else's). A forgotten session gets `404` and its client opens a new one; the MCP server is
//!   not told, and ends it on its own terms.
//! - Session ids longer than [`max_session_id_len`](SessionBindingLayerBuilder::max_session_id_len)
//!   (default 256) or with a byte outside visible ASCII (`0x21`–`0x7E`, as the transport
//!   requires) are never bound, and are refused when presented.
//!
//! Session ids are bearer-like handles: the layer never logs one in full, and its `Debug`
//! shows none.
//!
//! # Where it goes in the stack
//! Outermost first: Origin → [`AuthLayer`](crate::AuthLayer) → **session binding** →
//! [`McpScopeLayer`](crate::mcp::McpScopeLayer) → the MCP service. In axum the last
//! `.layer(...)` is the outermost:
//!
//! ```
//! use axum::{Router, routing::post};
//! use mcp_server_auth::{AuthLayer, bearer::StaticBearer, session::SessionBindingLayer};
//!
//! let tokens = StaticBearer::new([("alice", "YWxpY2UtdG9rZW4tZm9yLWRvY3MtMDE")]).unwrap();
//! let app: Router = Router::new()
//!     .route("/mcp", post(|| async { "the MCP service goes here" }))
//!     .layer(SessionBindingLayer::new()) // inside: sees who is calling
//!     .layer(AuthLayer::new(tokens)); // outside: authenticates
//! ```

mod table;

use std::{
    fmt,
    sync::{Arc, Mutex, PoisonError},
    task::{Context, Poll},
    time::{Duration, Instant},
};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use tower_layer::Layer;
use tower_service::Service;

use self::table::{Bind, Limits, Lookup, Table};
use crate::{
    identity::AuthInfo,
    refusal::{
        self, ResponseBody, ResponseFuture, connection,
        future::{After, NoPrelude},
    },
};

/// The session header of the Streamable HTTP transport.
pub const MCP_SESSION_ID: HeaderName = HeaderName::from_static("mcp-session-id");
/// The default idle timeout of a binding: one hour.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(3600);
/// The default cap on bindings in all: 10 000.
pub const DEFAULT_MAX_SESSIONS: usize = 10_000;
/// The default cap on bindings per principal: 100.
pub const DEFAULT_MAX_SESSIONS_PER_PRINCIPAL: usize = 100;
/// The default cap on the length of a session id: 256 bytes.
pub const DEFAULT_MAX_SESSION_ID_LEN: usize = 256;

const NOT_FOUND_BODY: &[u8] =
    br#"{"jsonrpc":"2.0","error":{"code":-32600,"message":"Session not found"}}"#;
const MISCONFIGURED_BODY: &[u8] =
    br#"{"jsonrpc":"2.0","error":{"code":-32603,"message":"Internal error"}}"#;

/// Binds MCP sessions to the principal that opened them; see the [module
/// documentation](crate::session). Clones share one table of bindings.
#[derive(Clone)]
pub struct SessionBindingLayer {
    shared: Arc<Shared>,
}

struct Shared {
    limits: Limits,
    max_id_len: usize,
    table: Mutex<Table>,
}

impl Shared {
    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        // The table never panics while locked; if a panic did poison it, its state is still
        // consistent (every operation leaves it so before it could panic).
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The session id of a header value, if it is one the layer binds.
    fn valid<'v>(&self, value: &'v HeaderValue) -> Option<&'v str> {
        let bytes = value.as_bytes();
        let ok = !bytes.is_empty()
            && bytes.len() <= self.max_id_len
            && bytes.iter().all(|b| (0x21..=0x7e).contains(b));
        ok.then(|| std::str::from_utf8(bytes).ok()).flatten()
    }

    /// The one session id of `headers`: `Ok(None)` when there is none, `Err` when there is
    /// more than one field or a value the layer never binds.
    fn session_id<'h>(&self, headers: &'h HeaderMap) -> Result<Option<&'h str>, ()> {
        let mut values = headers.get_all(MCP_SESSION_ID).iter();
        match (values.next(), values.next()) {
            (None, _) => Ok(None),
            (Some(v), None) => self.valid(v).map(Some).ok_or(()),
            (Some(_), Some(_)) => Err(()),
        }
    }
}

impl fmt::Debug for SessionBindingLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionBindingLayer")
            .field("idle_timeout", &self.shared.limits.idle)
            .field("max_sessions", &self.shared.limits.max_sessions)
            .field(
                "max_sessions_per_principal",
                &self.shared.limits.per_principal,
            )
            .field("max_session_id_len", &self.shared.max_id_len)
            .field("sessions", &self.session_count())
            .finish()
    }
}

impl Default for SessionBindingLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl SessionBindingLayer {
    /// A layer with the default limits: idle timeout one hour, 10 000 sessions, 100 per
    /// principal, ids of at most 256 bytes.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A layer with limits of your choice.
    pub fn builder() -> SessionBindingLayerBuilder {
        SessionBindingLayerBuilder {
            idle: DEFAULT_IDLE_TIMEOUT,
            max_sessions: DEFAULT_MAX_SESSIONS,
            per_principal: DEFAULT_MAX_SESSIONS_PER_PRINCIPAL,
            max_id_len: DEFAULT_MAX_SESSION_ID_LEN,
        }
    }

    /// The number of sessions bound now (expired bindings may count until they are swept out).
    pub fn session_count(&self) -> usize {
        self.shared.table().len()
    }
}

/// Builds a [`SessionBindingLayer`].
#[derive(Debug, Clone)]
pub struct SessionBindingLayerBuilder {
    idle: Duration,
    max_sessions: usize,
    per_principal: usize,
    max_id_len: usize,
}

impl SessionBindingLayerBuilder {
    /// How long a binding lives without a request of its session (default one hour). Each
    /// request of the owner starts it again; an open `GET` event stream does not.
    pub fn idle_timeout(mut self, idle: Duration) -> Self {
        self.idle = idle;
        self
    }

    /// The most sessions bound at once (default 10 000; at least 1). When full, binding a new
    /// session evicts the oldest binding that was not used since the last eviction round.
    pub fn max_sessions(mut self, max: usize) -> Self {
        self.max_sessions = max.max(1);
        self
    }

    /// The most sessions bound to one principal at once (default 100; at least 1). A principal
    /// that opens more loses its own oldest binding.
    pub fn max_sessions_per_principal(mut self, max: usize) -> Self {
        self.per_principal = max.max(1);
        self
    }

    /// The longest session id bound or accepted, in bytes (default 256; at least 1). rmcp and
    /// the official SDKs use 32 to 36.
    pub fn max_session_id_len(mut self, max: usize) -> Self {
        self.max_id_len = max.max(1);
        self
    }

    /// Builds the layer, with an empty table.
    pub fn build(self) -> SessionBindingLayer {
        SessionBindingLayer {
            shared: Arc::new(Shared {
                limits: Limits {
                    idle: self.idle,
                    max_sessions: self.max_sessions,
                    per_principal: self.per_principal.min(self.max_sessions),
                },
                max_id_len: self.max_id_len,
                table: Mutex::new(Table::new(Instant::now())),
            }),
        }
    }
}

impl<S> Layer<S> for SessionBindingLayer {
    type Service = SessionBinding<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionBinding {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service built by [`SessionBindingLayer`].
#[derive(Clone)]
pub struct SessionBinding<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S: fmt::Debug> fmt::Debug for SessionBinding<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionBinding")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

/// A session id for the log: its length, and its first four characters if it has at least 16.
struct Redacted<'a>(&'a str);

impl fmt::Display for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let head = if self.0.len() >= 16 {
            self.0.get(..4).unwrap_or("")
        } else {
            ""
        };
        write!(f, "{head}… ({} bytes)", self.0.len())
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SessionBinding<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody, NoPrelude, Record>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        // Every refusal comes before the body is read.
        let unread = |res| connection::close_if_body_unread(res, req.version(), req.headers());
        let Some(info) = AuthInfo::from_extensions(req.extensions()) else {
            tracing::error!(
                "refused: no AuthInfo; SessionBindingLayer must be inside an AuthLayer"
            );
            let res = refusal::fixed(
                StatusCode::INTERNAL_SERVER_ERROR,
                Bytes::from_static(MISCONFIGURED_BODY),
            );
            return ResponseFuture::refused(unread(res));
        };
        let shared = &*self.shared;
        let id = match shared.session_id(req.headers()) {
            Ok(Some(id)) => id,
            Ok(None) => {
                let after = Record {
                    shared: self.shared.clone(),
                    step: Step::Open(info.clone()),
                };
                return ResponseFuture::inner(self.inner.call(req)).with_after(after);
            }
            Err(()) => {
                tracing::debug!(subject = info.subject(), "refused: unusable Mcp-Session-Id");
                return ResponseFuture::refused(unread(not_found()));
            }
        };
        let lookup =
            shared
                .table()
                .check(id, info.principal_key(), Instant::now(), shared.limits.idle);
        match lookup {
            Lookup::Owned(id, seq) => {
                let after = Record {
                    shared: self.shared.clone(),
                    step: Step::Known {
                        id,
                        seq,
                        delete: req.method() == Method::DELETE,
                    },
                };
                ResponseFuture::inner(self.inner.call(req)).with_after(after)
            }
            Lookup::NotOwner => {
                tracing::debug!(
                    subject = info.subject(),
                    session = %Redacted(id),
                    "refused: the session belongs to another principal"
                );
                ResponseFuture::refused(unread(not_found()))
            }
            Lookup::Unknown => {
                tracing::debug!(
                    subject = info.subject(),
                    session = %Redacted(id),
                    "refused: unknown session"
                );
                ResponseFuture::refused(unread(not_found()))
            }
        }
    }
}

fn not_found<B>() -> Response<ResponseBody<B>> {
    refusal::fixed(StatusCode::NOT_FOUND, Bytes::from_static(NOT_FOUND_BODY))
}

/// What the session binding does with the inner service's response: binds the session it
/// opens, or forgets the one it ends.
pub struct Record {
    shared: Arc<Shared>,
    step: Step,
}

enum Step {
    /// The request had no session id: bind the one the response opens, if any.
    Open(AuthInfo),
    /// The request was in a session bound to its principal.
    Known {
        id: Arc<str>,
        seq: u64,
        delete: bool,
    },
}

impl crate::refusal::future::Sealed for Record {}

impl After for Record {
    fn after<B>(self, response: &Response<B>) {
        self.finish(response.headers(), response.status());
    }
}

impl Record {
    fn finish(self, headers: &HeaderMap, status: StatusCode) {
        let shared = &*self.shared;
        match self.step {
            Step::Open(info) => {
                let mut values = headers.get_all(MCP_SESSION_ID).iter();
                let Some(value) = values.next() else {
                    return;
                };
                let id = match (shared.valid(value), values.next()) {
                    (Some(id), None) => id,
                    _ => {
                        tracing::warn!(
                            "the MCP server opened a session whose id cannot be bound \
                             (repeated, too long, or not visible ASCII); it will be refused"
                        );
                        return;
                    }
                };
                let bound =
                    shared
                        .table()
                        .bind(id, info.principal_key(), Instant::now(), &shared.limits);
                if bound == Bind::Conflict {
                    tracing::warn!(
                        session = %Redacted(id),
                        "the MCP server reissued a session id bound to another principal; \
                         the first binding stays"
                    );
                }
            }
            Step::Known { id, seq, delete } => {
                if status == StatusCode::NOT_FOUND || (delete && status.is_success()) {
                    shared.table().remove(&id, seq);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_visible_ascii_ids_within_the_limit_are_bound() {
        let layer = SessionBindingLayer::builder().max_session_id_len(8).build();
        let valid = |v: &'static [u8]| {
            layer
                .shared
                .valid(&HeaderValue::from_bytes(v).unwrap())
                .is_some()
        };
        assert!(valid(b"abc-123!"));
        assert!(valid(b"~"));
        assert!(!valid(b"abc-1234!")); // 9 bytes
        assert!(!valid(b"a b"));
        assert!(!valid(b"a\tb"));
        assert!(!valid(b"caf\xc3\xa9"));
        assert!(!valid(b""));
    }

    #[test]
    fn debug_shows_no_session_id() {
        let layer = SessionBindingLayer::new();
        let key = AuthInfo::builder("alice", crate::AuthMethod::StaticBearer).build();
        let limits = layer.shared.limits;
        layer.shared.table().bind(
            "secret-session-id-0123",
            key.principal_key(),
            Instant::now(),
            &limits,
        );
        let debug = format!("{layer:?}");
        assert!(!debug.contains("secret-session"), "{debug}");
        assert!(debug.contains("sessions: 1"), "{debug}");
        let log = Redacted("secret-session-id-0123").to_string();
        assert_eq!(log, "secr… (22 bytes)");
        assert_eq!(Redacted("short-id").to_string(), "… (8 bytes)");
    }
}
