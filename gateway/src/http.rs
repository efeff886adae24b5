//! The Streamable HTTP side of `wrap`: `POST`, `GET` and `DELETE` at the MCP endpoint, for
//! clients of MCP 2025-06-18 and 2025-11-25 (MCP 2025-11-25, "Transports" § Streamable HTTP).
//!
//! | request | answer |
//! |---|---|
//! | `POST` `initialize`, no `Mcp-Session-Id` | a new session, attached to its child ([`crate::pool`]); the answer carries `Mcp-Session-Id` |
//! | `POST` a request in a session | the answer as `application/json` when it is the child's first word on the matter, else an event stream of the related messages ending with the answer |
//! | `POST` a notification or an answer in a session | `202 Accepted` once it is written to the child |
//! | `GET` in a session | the event stream of the server's own messages (one per session; a new one replaces the old) |
//! | `DELETE` in a session | `200`; the session ends, and its child unless other sessions share it |
//! | an id that is unknown, ended, or another principal's | `404` (the client starts a new session) |
//! | `GET` or `DELETE` without a session | `405` |
//! | `POST` other than `initialize` without a session | `400` |
//! | `POST` with `MCP-Protocol-Version: 2026-07-28` | served without a session ([`crate::stateless`]); `subscriptions/listen` answers a long-lived event stream ([`crate::listen`]) |
//! | `MCP-Protocol-Version` other than 2026-07-28, 2025-11-25, 2025-06-18 or 2025-03-26 | `400`, JSON-RPC `-32022` listing those |
//!
//! **MCP 2026-07-28 clients** have no `initialize` and no sessions: every `POST` carries
//! `MCP-Protocol-Version`, and `GET` and `DELETE` get `405` (MCP 2026-07-28, "Transports" §
//! Streamable HTTP). Their requests go to their principal's child, which the gateway
//! initializes itself ([`crate::stateless`]).
//!
//! This service does no authentication itself: it runs inside the library's stack
//! ([`crate::wrap`]) and reads the caller's [`AuthInfo`] from the request.
//!
//! ```
//! # fn f(gateway: mcp_auth_gateway::http::Gateway) {
//! let app: axum::Router = mcp_auth_gateway::http::router(gateway, "/mcp");
//! # }
//! ```

use std::{collections::VecDeque, convert::Infallible};

use axum::{
    Extension, Router,
    body::Body,
    extract::State,
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
    routing::post,
};
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use mcp_server_auth::AuthInfo;
use serde_json::{json, value::RawValue};
use tokio::sync::{mpsc, oneshot};

use crate::{
    bridge::{Exchange, INTERNAL_ERROR},
    message::{self, Invalid, Kind, Message},
    mrtr::Waiting,
    reshape::{Outbound, Reshape},
    session::{Busy, CreateError, Session, Sessions},
    stateless::{self, OFFERED_VERSIONS, Outcome},
};

/// `Mcp-Session-Id`.
pub const MCP_SESSION_ID: HeaderName = HeaderName::from_static("mcp-session-id");
/// `MCP-Protocol-Version`.
pub const MCP_PROTOCOL_VERSION: HeaderName = HeaderName::from_static("mcp-protocol-version");
/// The protocol versions the HTTP side speaks with sessions (and [`stateless::VERSION`]
/// without).
pub const SUPPORTED_VERSIONS: [&str; 3] = ["2025-11-25", "2025-06-18", "2025-03-26"];

const INVALID_REQUEST: i32 = -32600;
const PARSE_ERROR: i32 = -32700;
const UNSUPPORTED_PROTOCOL_VERSION: i32 = -32022;

/// The state of the MCP endpoint.
#[derive(Debug, Clone)]
pub struct Gateway {
    /// The sessions.
    pub sessions: Sessions,
    /// The largest request body.
    pub max_message_bytes: usize,
    /// The calls of 2026-07-28 clients waiting for their input ([`crate::mrtr`]).
    pub waiting: Waiting,
}

/// The MCP endpoint at `path`, without protection: put it inside the auth stack.
pub fn router(gateway: Gateway, path: &str) -> Router {
    Router::new()
        .route(path, post(post_mcp).get(get_mcp).delete(delete_mcp))
        .with_state(gateway)
}

/// A JSON-RPC error as an HTTP response, never cached.
fn rpc_error(status: StatusCode, code: i32, message: &str) -> Response {
    json_response(status, message::error_response(None, code, message))
}

/// A JSON answer that no cache keeps.
pub(crate) fn json_response(status: StatusCode, body: Bytes) -> Response {
    let mut res = (status, body).into_response();
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

fn not_found() -> Response {
    rpc_error(StatusCode::NOT_FOUND, INVALID_REQUEST, "Session not found")
}

fn no_session() -> Response {
    let mut res = rpc_error(
        StatusCode::METHOD_NOT_ALLOWED,
        INVALID_REQUEST,
        "Method not allowed without Mcp-Session-Id: open a session with a POST of initialize",
    );
    res.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    res
}

/// Whether `Accept` admits `wanted` (`type/subtype`).
fn accepts(headers: &HeaderMap, wanted: &str) -> bool {
    let (kind, _) = wanted.split_once('/').unwrap_or((wanted, ""));
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|range| range.split(';').next().unwrap_or("").trim())
        .any(|range| {
            range.eq_ignore_ascii_case(wanted)
                || range == "*/*"
                || range
                    .strip_suffix("/*")
                    .is_some_and(|t| t.eq_ignore_ascii_case(kind))
        })
}

/// `400` with `-32022` when `MCP-Protocol-Version` names a version this side does not speak.
fn version_refusal(headers: &HeaderMap) -> Option<Response> {
    let value = headers.get(MCP_PROTOCOL_VERSION)?;
    let requested = value.to_str().unwrap_or("").trim();
    if OFFERED_VERSIONS.contains(&requested) {
        return None;
    }
    let body = message::error_response_with_data(
        None,
        UNSUPPORTED_PROTOCOL_VERSION,
        "Unsupported protocol version: this gateway speaks MCP 2026-07-28 (no sessions), \
         2025-11-25 and 2025-06-18 (sessions opened by initialize)",
        Some(json!({ "supported": OFFERED_VERSIONS, "requested": requested })),
    );
    Some(json_response(StatusCode::BAD_REQUEST, body))
}

/// A session id that is unknown, ended, another principal's, repeated or malformed: `404`.
struct NotFound;

impl IntoResponse for NotFound {
    fn into_response(self) -> Response {
        not_found()
    }
}

/// The caller's session: `Ok(None)` without `Mcp-Session-Id`.
fn session_of(
    gateway: &Gateway,
    headers: &HeaderMap,
    caller: &AuthInfo,
) -> Result<Option<std::sync::Arc<Session>>, NotFound> {
    let mut values = headers.get_all(MCP_SESSION_ID).iter();
    let id = match (values.next(), values.next()) {
        (None, _) => return Ok(None),
        (Some(v), None) => v.to_str().map_err(|_| NotFound)?,
        _ => return Err(NotFound),
    };
    gateway.sessions.get(id, caller).map(Some).ok_or(NotFound)
}

async fn post_mcp(
    State(gateway): State<Gateway>,
    Extension(caller): Extension<AuthInfo>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if !accepts(&headers, "application/json") || !accepts(&headers, "text/event-stream") {
        return rpc_error(
            StatusCode::NOT_ACCEPTABLE,
            INVALID_REQUEST,
            "Not Acceptable: the client must accept both application/json and text/event-stream",
        );
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return rpc_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            INVALID_REQUEST,
            "Unsupported Media Type: send Content-Type: application/json",
        );
    }
    if let Some(res) = version_refusal(&headers) {
        return res;
    }
    let Ok(body) = axum::body::to_bytes(body, gateway.max_message_bytes).await else {
        return rpc_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            INVALID_REQUEST,
            &format!(
                "The message is over {} bytes (--max-message-bytes)",
                gateway.max_message_bytes
            ),
        );
    };
    let msg = match Message::parse(&body) {
        Ok(msg) => msg,
        Err(e @ (Invalid::Batch | Invalid::Shape)) => {
            return rpc_error(StatusCode::BAD_REQUEST, INVALID_REQUEST, &e.to_string());
        }
        Err(Invalid::Json) => {
            return rpc_error(StatusCode::BAD_REQUEST, PARSE_ERROR, "Parse error");
        }
    };
    let sessionless = headers
        .get(MCP_PROTOCOL_VERSION)
        .is_some_and(|v| v.to_str().is_ok_and(|v| v.trim() == stateless::VERSION));
    if sessionless {
        let outcome = stateless::post(
            &gateway.sessions,
            &gateway.waiting,
            &caller,
            &headers,
            &msg,
            body.clone(),
        )
        .await;
        return match outcome {
            Outcome::Json(status, answer) => json_response(status, answer),
            Outcome::Exchange(exchange, reshape) => {
                answer(exchange, msg.id(), Hold::None, Some(reshape)).await
            }
            Outcome::Listen(listener) => sse(listener.into_stream()),
            Outcome::Sent => StatusCode::ACCEPTED.into_response(),
            Outcome::Refused(e) => create_failed(&msg, &e),
        };
    }
    let (session, new) = match session_of(&gateway, &headers, &caller) {
        Err(e) => return e.into_response(),
        Ok(Some(session)) => (session, false),
        Ok(None) if msg.kind() == Kind::Request && msg.method() == Some("initialize") => {
            match gateway.sessions.create(&caller) {
                Ok(session) => (session, true),
                Err(e) => return create_failed(&msg, &e),
            }
        }
        Ok(None) => {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                INVALID_REQUEST,
                "Bad Request: Mcp-Session-Id is missing; open a session with initialize",
            );
        }
    };
    let busy = session.busy();
    let mut res = if msg.kind() == Kind::Request {
        let exchange = if new {
            session.initialize(&msg).await
        } else {
            session.request(&msg).await
        };
        match exchange {
            Ok(exchange) => answer(exchange, msg.id(), Hold::Session { _busy: busy }, None).await,
            Err(_) => return not_found(),
        }
    } else {
        match session.send(&msg, body.clone()).await {
            Ok(()) => StatusCode::ACCEPTED.into_response(),
            Err(_) => return not_found(),
        }
    };
    if new && let Ok(id) = HeaderValue::from_str(session.id()) {
        res.headers_mut().insert(MCP_SESSION_ID, id);
    }
    res
}

fn create_failed(msg: &Message<'_>, e: &CreateError) -> Response {
    let status = match e {
        CreateError::Full(_) | CreateError::ShuttingDown | CreateError::Restarting(_) => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    tracing::warn!("refused a new session: {e}");
    let mut res = json_response(
        status,
        message::error_response(msg.id(), INTERNAL_ERROR, &e.to_string()),
    );
    if status == StatusCode::SERVICE_UNAVAILABLE {
        let after = match e {
            CreateError::Restarting(secs) => HeaderValue::from(*secs),
            _ => HeaderValue::from_static("5"),
        };
        res.headers_mut().insert(header::RETRY_AFTER, after);
    }
    res
}

/// What an answer keeps alive until it is sent: its session busy (a sessionless answer's
/// [`Reshape`] keeps its child).
enum Hold {
    None,
    Session { _busy: Busy },
}

/// The answer to a request: JSON if the answer is the first message, else an event stream;
/// with `reshape`, in the 2026-07-28 shape.
async fn answer(
    exchange: Exchange,
    id: Option<&RawValue>,
    hold: Hold,
    reshape: Option<Reshape>,
) -> Response {
    let Exchange {
        mut messages,
        mut answer,
    } = exchange;
    let cancelled = || {
        message::error_response(
            id,
            INTERNAL_ERROR,
            "The request was cancelled by the client",
        )
    };
    let mut queue = VecDeque::new();
    let mut open = true;
    let mut reshape = reshape;
    let rest = loop {
        tokio::select! {
            biased;
            m = messages.recv(), if open => match m {
                Some(m) => match outbound(reshape.as_ref(), m, true).await {
                    Outbound::Forward(m) => {
                        queue.push_back(m);
                        break Some(answer);
                    }
                    Outbound::Answered | Outbound::Withheld => {}
                    Outbound::Ask(request, slot) => {
                        // Nothing was sent yet: the `POST` ends here, the call waits.
                        let Some(r) = reshape.take() else { continue };
                        let asked = r.park(Exchange { messages, answer }, &request, slot);
                        return json_response(StatusCode::OK, asked);
                    }
                },
                None => open = false,
            },
            a = &mut answer => {
                while let Ok(m) = messages.try_recv() {
                    if let Outbound::Forward(m) = outbound(reshape.as_ref(), m, false).await {
                        queue.push_back(m);
                    }
                }
                let a = a.unwrap_or_else(|_| cancelled());
                let (status, a) = match &reshape {
                    Some(r) => r.answer(a),
                    None => (StatusCode::OK, a),
                };
                if queue.is_empty() {
                    return json_response(status, a);
                }
                queue.push_back(a);
                break None;
            }
        }
    };
    event_stream(Stream {
        queue,
        messages,
        open,
        answer: rest,
        cancelled: cancelled(),
        reshape,
        _hold: hold,
    })
}

/// A message of the child's on its way to the client, reshaped when the client speaks
/// 2026-07-28; `may_ask`: the exchange could still end with `input_required`.
async fn outbound(reshape: Option<&Reshape>, m: Bytes, may_ask: bool) -> Outbound {
    match reshape {
        Some(r) => r.message(m, may_ask).await,
        None => Outbound::Forward(m),
    }
}

/// The state of a response event stream.
struct Stream {
    queue: VecDeque<Bytes>,
    messages: mpsc::Receiver<Bytes>,
    open: bool,
    /// The answer still to come (`None`: the stream ends with the queue, or goes on until the
    /// channel closes when it is a `GET` stream).
    answer: Option<oneshot::Receiver<Bytes>>,
    cancelled: Bytes,
    reshape: Option<Reshape>,
    _hold: Hold,
}

impl Stream {
    async fn next(&mut self) -> Option<Bytes> {
        loop {
            if let Some(m) = self.queue.pop_front() {
                return Some(m);
            }
            let Some(answer) = self.answer.as_mut() else {
                // A `GET` stream (never an answer): until the bridge drops it.
                return if self.open {
                    self.messages.recv().await
                } else {
                    None
                };
            };
            tokio::select! {
                biased;
                m = self.messages.recv(), if self.open => match m {
                    Some(m) => match outbound(self.reshape.as_ref(), m, true).await {
                        Outbound::Forward(m) => return Some(m),
                        Outbound::Answered | Outbound::Withheld => {}
                        Outbound::Ask(request, slot) => return Some(self.park(&request, slot)),
                    },
                    None => self.open = false,
                },
                a = answer => {
                    self.answer = None;
                    self.open = false;
                    while let Ok(m) = self.messages.try_recv() {
                        if let Outbound::Forward(m) =
                            outbound(self.reshape.as_ref(), m, false).await
                        {
                            self.queue.push_back(m);
                        }
                    }
                    let a = a.unwrap_or_else(|_| self.cancelled.clone());
                    let a = match &self.reshape {
                        Some(r) => r.answer(a).1,
                        None => a,
                    };
                    self.queue.push_back(a);
                }
            }
        }
    }
}

impl Stream {
    /// Ends the stream with `input_required`: the call (the rest of this stream) waits for the
    /// client's retry ([`Reshape::park`]).
    fn park(&mut self, request: &Bytes, slot: crate::mrtr::Slot) -> Bytes {
        let (_, closed) = mpsc::channel(1);
        let messages = std::mem::replace(&mut self.messages, closed);
        self.open = false;
        let (Some(reshape), Some(answer)) = (self.reshape.take(), self.answer.take()) else {
            // Only a 2026-07-28 answer still to come can ask.
            return self.cancelled.clone();
        };
        reshape.park(Exchange { messages, answer }, request, slot)
    }
}

fn event_stream(stream: Stream) -> Response {
    sse(futures_util::stream::unfold(stream, |mut s| async move {
        Some((s.next().await?, s))
    }))
}

/// An event stream of `messages`, one event each.
fn sse(messages: impl futures_util::Stream<Item = Bytes> + Send + 'static) -> Response {
    use futures_util::StreamExt;
    let events = messages.map(|m| {
        let data = String::from_utf8_lossy(&m).into_owned();
        Ok::<_, Infallible>(Event::default().event("message").data(data))
    });
    let mut res = Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

async fn get_mcp(
    State(gateway): State<Gateway>,
    Extension(caller): Extension<AuthInfo>,
    headers: HeaderMap,
) -> Response {
    let session = match session_of(&gateway, &headers, &caller) {
        Err(e) => return e.into_response(),
        Ok(None) => return no_session(),
        Ok(Some(session)) => session,
    };
    if !accepts(&headers, "text/event-stream") {
        return rpc_error(
            StatusCode::NOT_ACCEPTABLE,
            INVALID_REQUEST,
            "Not Acceptable: the client must accept text/event-stream",
        );
    }
    if let Some(res) = version_refusal(&headers) {
        return res;
    }
    match session.open_stream() {
        Ok(messages) => event_stream(Stream {
            queue: VecDeque::new(),
            messages,
            open: true,
            answer: None,
            cancelled: Bytes::new(),
            reshape: None,
            _hold: Hold::None,
        }),
        Err(_) => not_found(),
    }
}

async fn delete_mcp(
    State(gateway): State<Gateway>,
    Extension(caller): Extension<AuthInfo>,
    headers: HeaderMap,
) -> Response {
    match session_of(&gateway, &headers, &caller) {
        Err(e) => e.into_response(),
        Ok(None) => no_session(),
        Ok(Some(session)) => {
            gateway
                .sessions
                .end(&session, "ended by the client (DELETE)");
            StatusCode::OK.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_ranges() {
        let h = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT, HeaderValue::from_static(v));
            h
        };
        let both = h("application/json, text/event-stream");
        assert!(accepts(&both, "application/json") && accepts(&both, "text/event-stream"));
        assert!(accepts(&h("*/*"), "text/event-stream"));
        assert!(accepts(&h("text/*;q=0.5"), "text/event-stream"));
        assert!(!accepts(&h("application/json"), "text/event-stream"));
        assert!(!accepts(&HeaderMap::new(), "application/json"));
    }
}
