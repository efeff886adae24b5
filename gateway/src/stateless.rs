//! MCP 2026-07-28 clients in `wrap`: every `POST` stands alone, with no session and no
//! `initialize` (MCP 2026-07-28, "Lifecycle" and "Transports" § Streamable HTTP).
//!
//! A stdio server still speaks 2025-11-25: it must be initialized once before anything else
//! and keeps its state between requests. So the gateway does for such a client what its
//! session would have done, once per child:
//!
//! | the client sends | the gateway |
//! |---|---|
//! | any request, the child not yet initialized | first sends the child its own `initialize` (2025-11-25, the capabilities the client declares in the request's `_meta`, else none) and `notifications/initialized` |
//! | a request whose envelope is wrong | `400`: no `_meta` with the protocol version and client capabilities → `-32602`; `MCP-Protocol-Version`, `Mcp-Method` or `Mcp-Name` disagreeing with the body → `-32020` (HeaderMismatch); a version it does not speak → `-32022` |
//! | `server/discover` | answers from the child's `initialize` result: its `capabilities` and `instructions`, the protocol versions the gateway offers, and its `serverInfo` in `_meta` |
//! | `subscriptions/listen` | an event stream of the child's list changes and resource updates that its filter wants, each stamped with the request's id, until the client leaves or the child ends ([`crate::listen`]) |
//! | any other request | sends it to the child through the bridge ([`crate::bridge`], which gives it an id of its own), and answers as JSON or an event stream as for a session, the answer in the 2026-07-28 shape ([`crate::reshape`]) |
//! | during a `tools/call`, `prompts/get` or `resources/read`, the child asks for sampling, elicitation or roots and the request's `_meta` declares that capability | ends the `POST` with `input_required`: the child's request and a `requestState`; the call waits ([`crate::mrtr`]) |
//! | the same request again with `inputResponses` and that `requestState` | the answers go to the child, and the `POST` gets the rest of the call: its answer, or the next `input_required`; a `requestState` that is altered, another principal's, for another tool, used or expired → `400`, `-32602` |
//! | a notification | writes it to the child, `202 Accepted` |
//!
//! **Requests from the child.** A 2026-07-28 exchange is one `POST` and its answer: the
//! client cannot answer a request of the server's on it. Instead the revision's multi
//! round-trip requests turn the child's request into the call's answer (`input_required`) and
//! the client's answer into a retry of the call, which the gateway maps back onto the child's
//! one waiting call ([`crate::mrtr`]), one request per round. A request the client did not
//! declare the capability for, one during any other method, or `ping`, is answered for the
//! client at once with a JSON-RPC error, and the child's call goes on. Notifications
//! (progress, logging) reach the client on the answer's event stream.
//!
//! **Notifications outside any request.** The child's list changes and resource updates
//! concern no request, and the revision has no `GET` stream for them: a client that wants
//! them opens a `subscriptions/listen` stream, which the gateway feeds from the same child
//! (subscribing the child to the resources asked for, when it offers that), and they reach
//! no other exchange ([`crate::listen`], [`crate::taps`]). Other notifications of no request
//! (logging) reach the client's exchanges that are open at the time, else nobody.
//!
//! **Which child.** With no session, the only stable owner of state is the authenticated
//! principal ([`AuthInfo::principal_key`]): every request of a principal goes to that
//! principal's child, whatever `--isolation` says, so that another principal never reads its
//! state; under `--isolation shared` to the gateway's one child, as the operator chose. The
//! child ends after `--idle-timeout` with no request in flight ([`crate::pool::Lease`]).
//! `GET` and `DELETE` without a session get `405` ([`crate::http`]).
//!
//! ```
//! use mcp_auth_gateway::stateless::{OFFERED_VERSIONS, VERSION};
//! assert_eq!(VERSION, "2026-07-28");
//! assert!(OFFERED_VERSIONS.contains(&VERSION));
//! ```

use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use mcp_server_auth::{AuthInfo, mcp::operation};
use serde_json::{Map, Value, json, value::RawValue};

use crate::{
    bridge::{Ended, Exchange, INTERNAL_ERROR},
    listen::{self, Listener},
    message::{self, Kind, Message},
    mrtr::{self, Call, Waiting},
    pool::Lease,
    reshape::{
        Ask, HEADER_MISMATCH, INVALID_PARAMS, Reshape, UNSUPPORTED_PROTOCOL_VERSION, reshape,
    },
    session::{CreateError, Sessions},
};

/// The protocol version served without sessions.
pub const VERSION: &str = "2026-07-28";
/// The versions the gateway offers in `server/discover`.
pub const OFFERED_VERSIONS: [&str; 4] = [VERSION, "2025-11-25", "2025-06-18", "2025-03-26"];
/// The version the gateway speaks to the child.
const CHILD_VERSION: &str = "2025-11-25";
/// The `_meta` key of the client's capabilities in a 2026-07-28 request.
const CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
/// The `_meta` key of the protocol version in a 2026-07-28 request.
const PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
const INITIALIZED: &[u8] = br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;

/// What to answer one sessionless `POST`.
#[derive(Debug)]
pub enum Outcome {
    /// A JSON answer now (`server/discover`, or a JSON-RPC error with the client's id).
    Json(StatusCode, Bytes),
    /// The child's exchange, its answer to be reshaped (the [`Reshape`] keeps the child
    /// attached until it is dropped).
    Exchange(Exchange, Reshape),
    /// A `subscriptions/listen` stream ([`crate::listen`]).
    Listen(Listener),
    /// A notification or answer written to the child.
    Sent,
    /// No child for the caller.
    Refused(CreateError),
}

/// One `POST` of a 2026-07-28 client `caller`: `msg`, whose bytes are `line`, with `headers`;
/// `waiting` holds the calls waiting for a client's input ([`crate::mrtr`]).
pub async fn post(
    sessions: &Sessions,
    waiting: &Waiting,
    caller: &AuthInfo,
    headers: &HeaderMap,
    msg: &Message<'_>,
    line: Bytes,
) -> Outcome {
    if msg.kind() == Kind::Request
        && let Err(refusal) = envelope(headers, msg, &line)
    {
        return Outcome::Json(StatusCode::BAD_REQUEST, refusal.answer(msg));
    }
    let interactive =
        msg.kind() == Kind::Request && msg.method().is_some_and(|m| mrtr::METHODS.contains(&m));
    let params = interactive
        .then(|| {
            msg.params()
                .and_then(|p| serde_json::from_str::<Value>(p.get()).ok())
        })
        .flatten();
    let principal = format!("{:?}", caller.principal_key());
    if let Some(params) = &params
        && let Some(state) = params.get("requestState").filter(|s| !s.is_null())
    {
        return resume(waiting, principal, msg, params, state.as_str()).await;
    }
    let lease = match sessions.lease(caller) {
        Ok(lease) => lease,
        Err(e) => return Outcome::Refused(e),
    };
    let failed = |e: &str| {
        Outcome::Json(
            StatusCode::OK,
            message::error_response(
                msg.id(),
                INTERNAL_ERROR,
                &format!("The MCP server is not available: {e}"),
            ),
        )
    };
    let init = match handshake(&lease, msg).await {
        Ok(init) => init,
        Err(e) => return failed(&e),
    };
    let backend = lease.backend();
    if msg.kind() != Kind::Request {
        return match backend.send(lease.client(), msg, line).await {
            Ok(()) => Outcome::Sent,
            Err(e) => failed(&e.to_string()),
        };
    }
    if msg.method() == Some("server/discover") {
        return Outcome::Json(StatusCode::OK, discover(msg, &init));
    }
    if listen::is_listen(msg) {
        return match listen::open(lease, &principal, &init, msg).await {
            Ok(listener) => Outcome::Listen(listener),
            Err((status, answer)) => Outcome::Json(status, answer),
        };
    }
    let exchange = match backend.request(lease.client(), msg).await {
        Ok(exchange) => exchange,
        Err(e) => return failed(&e.to_string()),
    };
    let id = request_id(msg);
    let method = msg.method().unwrap_or_default();
    let ask = params.map(|params| {
        let name = target(&params);
        let capabilities = client_capabilities(msg);
        Ask::new(
            waiting.clone(),
            principal,
            method.to_owned(),
            name,
            capabilities,
            0,
        )
    });
    let server_info = init.get("serverInfo").cloned();
    let reshape = Reshape::new(lease, id.clone(), id, method, server_info, ask);
    Outcome::Exchange(exchange, reshape)
}

/// A retry of a call that waits for input, with the `requestState` it was given: the client's
/// answers go to the child, and the call goes on (see [`crate::mrtr`]).
async fn resume(
    waiting: &Waiting,
    principal: String,
    msg: &Message<'_>,
    params: &Value,
    state: Option<&str>,
) -> Outcome {
    let method = msg.method().unwrap_or_default();
    let name = target(params);
    let call = state.and_then(|s| waiting.resume(s, &principal, method, name.as_deref()));
    let Some(mut call) = call else {
        let refusal = message::error_response(msg.id(), INVALID_PARAMS, mrtr::INVALID_STATE);
        return Outcome::Json(StatusCode::BAD_REQUEST, refusal);
    };
    call.deliver(params.get("inputResponses").and_then(Value::as_object))
        .await;
    // The child was initialized for the call: this is its first answer, kept.
    let init = handshake(&call.lease, msg).await.unwrap_or_default();
    let Call {
        exchange,
        lease,
        call_id,
        method,
        name,
        rounds,
        ..
    } = call;
    let capabilities = client_capabilities(msg);
    let server_info = init.get("serverInfo").cloned();
    let ask = Ask::new(
        waiting.clone(),
        principal,
        method.clone(),
        name,
        capabilities,
        rounds,
    );
    let reshape = Reshape::new(
        lease,
        request_id(msg),
        call_id,
        &method,
        server_info,
        Some(ask),
    );
    Outcome::Exchange(exchange, reshape)
}

/// The request's id (`null` if it has none, which a request cannot).
fn request_id(msg: &Message<'_>) -> Box<RawValue> {
    msg.id().map_or_else(
        || RawValue::from_string("null".to_owned()).unwrap_or_else(|_| unreachable!()),
        ToOwned::to_owned,
    )
}

/// The tool or prompt (`name`) or resource (`uri`) of an interactive call: its `Mcp-Name`.
fn target(params: &Value) -> Option<String> {
    ["name", "uri"]
        .iter()
        .find_map(|k| params.get(*k)?.as_str().map(str::to_owned))
}

/// Why a request's envelope is refused: its JSON-RPC error.
#[derive(Debug, PartialEq)]
struct Refusal {
    code: i32,
    message: String,
    data: Option<Value>,
}

impl Refusal {
    fn new(code: i32, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }

    fn answer(self, msg: &Message<'_>) -> Bytes {
        message::error_response_with_data(msg.id(), self.code, &self.message, self.data)
    }
}

/// The checks of a 2026-07-28 request that a stdio child cannot make, in the order of the
/// revision's "Per-request protocol fields" and "Streamable HTTP" § standard headers: the
/// `_meta` envelope, then the headers against the body, then the version.
fn envelope(headers: &HeaderMap, msg: &Message<'_>, line: &[u8]) -> Result<(), Refusal> {
    let meta = msg
        .params()
        .and_then(|p| serde_json::from_str::<Value>(p.get()).ok())
        .and_then(|mut p| p.get_mut("_meta").map(Value::take))
        .filter(Value::is_object)
        .ok_or_else(|| {
            Refusal::new(
                INVALID_PARAMS,
                format!(
                    "params._meta must be an object carrying {PROTOCOL_VERSION:?} and \
                     {CLIENT_CAPABILITIES:?}"
                ),
            )
        })?;
    let missing: Vec<&str> = [PROTOCOL_VERSION, CLIENT_CAPABILITIES]
        .into_iter()
        .filter(|k| meta.get(*k).is_none())
        .collect();
    if !missing.is_empty() {
        return Err(Refusal::new(
            INVALID_PARAMS,
            format!("params._meta lacks {}", missing.join(" and ")),
        ));
    }
    let version = &meta[PROTOCOL_VERSION];
    let header_version = headers
        .get(crate::http::MCP_PROTOCOL_VERSION)
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    if header_version.is_none() || version.as_str() != header_version {
        return Err(Refusal::new(
            HEADER_MISMATCH,
            "the MCP-Protocol-Version header does not match params._meta's protocol version",
        ));
    }
    let mismatch = |e: operation::OperationError| Refusal::new(HEADER_MISMATCH, e.to_string());
    let from_headers = operation::from_headers(headers).map_err(mismatch)?;
    let Some(from_headers) = from_headers else {
        return Err(Refusal::new(
            HEADER_MISMATCH,
            "the Mcp-Method header is required and must match the request body's method",
        ));
    };
    let from_body = operation::from_body(line).map_err(mismatch)?;
    operation::check_match(&from_headers, &from_body).map_err(mismatch)?;
    if version.as_str() != Some(VERSION) {
        let mut refusal = Refusal::new(
            UNSUPPORTED_PROTOCOL_VERSION,
            "Unsupported protocol version: this gateway speaks MCP 2026-07-28 without sessions",
        );
        refusal.data = Some(json!({ "supported": OFFERED_VERSIONS, "requested": version }));
        return Err(refusal);
    }
    Ok(())
}

/// The child's `initialize` result, the handshake done first if nobody did it yet.
async fn handshake(lease: &Lease, msg: &Message<'_>) -> Result<Value, String> {
    let backend = lease.backend();
    let answer = match backend.handshake().await {
        Some(answer) => answer,
        None => {
            let request = json!({
                "jsonrpc": "2.0",
                "id": 0,
                "method": "initialize",
                "params": {
                    "protocolVersion": CHILD_VERSION,
                    "capabilities": client_capabilities(msg),
                    "clientInfo": { "name": "mcp-auth-gateway", "version": env!("CARGO_PKG_VERSION") },
                },
            })
            .to_string();
            let request = Message::parse(request.as_bytes()).map_err(|e| e.to_string())?;
            let Exchange { answer, .. } = backend
                .initialize(lease.client(), &request)
                .await
                .map_err(|Ended(reason)| reason.to_string())?;
            let answer = answer
                .await
                .map_err(|_| "the handshake was cancelled".to_owned())?;
            let note = Message::parse(INITIALIZED).map_err(|e| e.to_string())?;
            backend
                .send(lease.client(), &note, Bytes::from_static(INITIALIZED))
                .await
                .map_err(|e| e.to_string())?;
            answer
        }
    };
    let mut answer: Value = serde_json::from_slice(&answer).map_err(|e| e.to_string())?;
    match answer.get_mut("result") {
        Some(result) => Ok(result.take()),
        None => Err("it refused initialize".to_owned()),
    }
}

/// The capabilities the client declares in the request's `_meta`, else none.
fn client_capabilities(msg: &Message<'_>) -> Value {
    msg.params()
        .and_then(|p| serde_json::from_str::<Value>(p.get()).ok())
        .and_then(|mut p| Some(p.get_mut("_meta")?.get_mut(CLIENT_CAPABILITIES)?.take()))
        .filter(Value::is_object)
        .unwrap_or_else(|| Value::Object(Map::new()))
}

/// The answer to `server/discover`, from the child's `initialize` result.
fn discover(msg: &Message<'_>, init: &Value) -> Bytes {
    let mut result = Map::new();
    result.insert("supportedVersions".into(), json!(OFFERED_VERSIONS));
    result.insert(
        "capabilities".into(),
        init.get("capabilities")
            .cloned()
            .unwrap_or_else(|| Value::Object(Map::new())),
    );
    if let Some(v) = init.get("instructions") {
        result.insert("instructions".into(), v.clone());
    }
    let id = msg.id().map_or("null", |id| id.get());
    let answer = Bytes::from(format!(
        r#"{{"jsonrpc":"2.0","id":{id},"result":{}}}"#,
        Value::Object(result)
    ));
    reshape(answer, true, init.get("serverInfo")).1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reshape::SERVER_INFO;

    #[test]
    fn the_client_capabilities_come_from_meta_or_are_none() {
        let with = br#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/clientCapabilities":{"roots":{}}}}}"#;
        let without = br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
        assert_eq!(
            client_capabilities(&Message::parse(with).unwrap()),
            json!({"roots": {}})
        );
        assert_eq!(
            client_capabilities(&Message::parse(without).unwrap()),
            json!({})
        );
    }

    #[test]
    fn discover_answers_with_the_clients_id_and_the_childs_server_info() {
        let msg =
            Message::parse(br#"{"jsonrpc":"2.0","id":"d1","method":"server/discover"}"#).unwrap();
        let init = json!({"protocolVersion": "2025-11-25", "serverInfo": {"name": "x"}, "capabilities": {"tools": {}}});
        let v: Value = serde_json::from_slice(&discover(&msg, &init)).unwrap();
        assert_eq!(v["id"], "d1");
        assert_eq!(v["result"]["_meta"][SERVER_INFO]["name"], "x");
        assert_eq!(v["result"]["supportedVersions"][0], VERSION);
        assert_eq!(v["result"]["capabilities"], json!({"tools": {}}));
        assert_eq!(v["result"]["resultType"], "complete");
        assert_eq!(v["result"]["ttlMs"], 0);
        assert_eq!(v["result"]["cacheScope"], "private");
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    fn check(h: &HeaderMap, body: Value) -> Result<(), Refusal> {
        let line = body.to_string();
        envelope(
            h,
            &Message::parse(line.as_bytes()).unwrap(),
            line.as_bytes(),
        )
    }

    fn call(meta: Value) -> Value {
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
               "params": {"name": "echo", "arguments": {}, "_meta": meta}})
    }

    fn meta() -> Value {
        json!({PROTOCOL_VERSION: VERSION, CLIENT_CAPABILITIES: {}})
    }

    #[test]
    fn the_envelope_is_checked_in_the_order_of_the_revision() {
        let good = headers(&[
            ("mcp-protocol-version", VERSION),
            ("mcp-method", "tools/call"),
            ("mcp-name", "echo"),
        ]);
        assert_eq!(check(&good, call(meta())), Ok(()));
        // No `_meta`, or one without both keys: invalid params.
        let no_meta = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
        assert_eq!(check(&good, no_meta).unwrap_err().code, INVALID_PARAMS);
        let half = call(json!({PROTOCOL_VERSION: VERSION}));
        assert_eq!(check(&good, half).unwrap_err().code, INVALID_PARAMS);
        // Headers that disagree with the body, or are missing: HeaderMismatch.
        let other_name = headers(&[
            ("mcp-protocol-version", VERSION),
            ("mcp-method", "tools/call"),
            ("mcp-name", "add"),
        ]);
        assert_eq!(
            check(&other_name, call(meta())).unwrap_err().code,
            HEADER_MISMATCH
        );
        let no_method = headers(&[("mcp-protocol-version", VERSION), ("mcp-name", "echo")]);
        assert_eq!(
            check(&no_method, call(meta())).unwrap_err().code,
            HEADER_MISMATCH
        );
        let old = call(json!({PROTOCOL_VERSION: "2025-11-25", CLIENT_CAPABILITIES: {}}));
        assert_eq!(check(&good, old).unwrap_err().code, HEADER_MISMATCH);
        // A version both sides agree on but the gateway does not speak this way: -32022.
        let future = headers(&[
            ("mcp-protocol-version", "2027-01-01"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "echo"),
        ]);
        let refusal = check(
            &future,
            call(json!({PROTOCOL_VERSION: "2027-01-01", CLIENT_CAPABILITIES: {}})),
        )
        .unwrap_err();
        assert_eq!(refusal.code, UNSUPPORTED_PROTOCOL_VERSION);
        assert_eq!(refusal.data.unwrap()["requested"], "2027-01-01");
    }
}
