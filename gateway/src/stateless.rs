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
//! | any other request | sends it to the child through the bridge ([`crate::bridge`], which gives it an id of its own), and answers as JSON or an event stream as for a session, the answer reshaped ([`Reshape`]) |
//! | a notification | writes it to the child, `202 Accepted` |
//!
//! **Answers in the 2026-07-28 shape.** The child answers in its own (2025) shape, which a
//! 2026-07-28 client refuses to read. So every result gains what the new revision requires and
//! the child cannot know: `resultType: "complete"`; for the cacheable methods (`tools/list`,
//! `prompts/list`, `resources/list`, `resources/templates/list`, `resources/read`,
//! `server/discover`) `ttlMs: 0` and `cacheScope: "private"` (MCP 2026-07-28, "Caching": the
//! gateway cannot tell how long a result stays fresh, and behind authentication a result may
//! differ by caller, so no cache may share it); and the child's `serverInfo` in `_meta`. A
//! field the child did set is left alone. An error gets the HTTP status the revision gives its
//! code (`404` for `-32601`, `400` for the envelope errors) when the answer is JSON.
//!
//! **No requests from the child.** A 2026-07-28 exchange is one `POST` and its answer: the
//! client has no way to answer a request of the server's (sampling, elicitation, roots) on it.
//! The gateway answers such a request to the child at once with a JSON-RPC error saying so,
//! and the child's call goes on; notifications (progress, logging) reach the client on the
//! answer's event stream. Clients that need sampling or elicitation use a 2025-11-25 session,
//! which every such client still speaks. Notifications outside any request (list changes) have
//! no stream to go to and are dropped.
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

use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use mcp_server_auth::{AuthInfo, mcp::operation};
use serde_json::{Map, Value, json};

use crate::{
    bridge::{Ended, Exchange, INTERNAL_ERROR},
    message::{self, Kind, Message},
    pool::Backend,
    pool::Lease,
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
/// The `_meta` key of the server's name and version in a 2026-07-28 result.
const SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
/// The methods whose results carry `ttlMs` and `cacheScope` (MCP 2026-07-28, "Caching").
const CACHEABLE: [&str; 6] = [
    "tools/list",
    "prompts/list",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "server/discover",
];
const INVALID_PARAMS: i32 = -32602;
const METHOD_NOT_FOUND: i32 = -32601;
const HEADER_MISMATCH: i32 = -32020;
const UNSUPPORTED_PROTOCOL_VERSION: i32 = -32022;
const INITIALIZED: &[u8] = br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;

/// What to answer one sessionless `POST`.
#[derive(Debug)]
pub enum Outcome {
    /// A JSON answer now (`server/discover`, or a JSON-RPC error with the client's id).
    Json(StatusCode, Bytes),
    /// The child's exchange, its answer to be reshaped; the lease keeps the child attached
    /// until it is dropped.
    Exchange(Exchange, Lease, Reshape),
    /// A notification or answer written to the child.
    Sent,
    /// No child for the caller.
    Refused(CreateError),
}

/// One `POST` of a 2026-07-28 client `caller`: `msg`, whose bytes are `line`, with `headers`.
pub async fn post(
    sessions: &Sessions,
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
    let reshape = Reshape {
        backend: backend.clone(),
        client: lease.client(),
        cacheable: msg.method().is_some_and(|m| CACHEABLE.contains(&m)),
        server_info: init.get("serverInfo").cloned(),
    };
    match backend.request(lease.client(), msg).await {
        Ok(exchange) => Outcome::Exchange(exchange, lease, reshape),
        Err(e) => failed(&e.to_string()),
    }
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
                    "params._meta must be an object carrying {PROTOCOL_VERSION:?} and                      {CLIENT_CAPABILITIES:?}"
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

/// The child's messages on a 2026-07-28 exchange, put in that revision's shape (see the
/// module's documentation).
#[derive(Debug)]
pub struct Reshape {
    backend: Arc<Backend>,
    client: u64,
    cacheable: bool,
    server_info: Option<Value>,
}

impl Reshape {
    /// A message of the child's before its answer: `None` when it is a request, which the
    /// client cannot answer and the gateway has answered for it.
    pub async fn message(&self, m: Bytes) -> Option<Bytes> {
        let Ok(msg) = Message::parse(&m) else {
            return Some(m);
        };
        if msg.kind() != Kind::Request {
            return Some(m);
        }
        let refusal = message::error_response(
            msg.id(),
            METHOD_NOT_FOUND,
            "The client speaks MCP 2026-07-28, whose requests cannot be answered by requests              of the server's (sampling, elicitation, roots): it needs a 2025-11-25 session",
        );
        if let Ok(answer) = Message::parse(&refusal) {
            let _ = self
                .backend
                .send(self.client, &answer, refusal.clone())
                .await;
        }
        None
    }

    /// The answer, with the HTTP status it gets when sent as JSON.
    pub fn answer(&self, a: Bytes) -> (StatusCode, Bytes) {
        reshape(a, self.cacheable, self.server_info.as_ref())
    }
}

/// `answer` in the 2026-07-28 shape, and its HTTP status as JSON.
fn reshape(answer: Bytes, cacheable: bool, server_info: Option<&Value>) -> (StatusCode, Bytes) {
    let Ok(Value::Object(mut whole)) = serde_json::from_slice::<Value>(&answer) else {
        return (StatusCode::OK, answer);
    };
    if let Some(code) = whole
        .get("error")
        .and_then(|e| e.get("code"))
        .and_then(Value::as_i64)
    {
        let status = match i32::try_from(code) {
            Ok(-32700 | -32600 | INVALID_PARAMS | HEADER_MISMATCH | -32021) => {
                StatusCode::BAD_REQUEST
            }
            Ok(UNSUPPORTED_PROTOCOL_VERSION) => StatusCode::BAD_REQUEST,
            Ok(METHOD_NOT_FOUND) => StatusCode::NOT_FOUND,
            _ => StatusCode::OK,
        };
        return (status, answer);
    }
    let Some(Value::Object(result)) = whole.get_mut("result") else {
        return (StatusCode::OK, answer);
    };
    result
        .entry("resultType")
        .or_insert_with(|| "complete".into());
    if cacheable {
        result.entry("ttlMs").or_insert_with(|| 0.into());
        result
            .entry("cacheScope")
            .or_insert_with(|| "private".into());
    }
    if let Some(info) = server_info {
        let meta = result
            .entry("_meta")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(meta) = meta
            && meta.get(SERVER_INFO).is_none_or(Value::is_null)
        {
            meta.insert(SERVER_INFO.into(), info.clone());
        }
    }
    match serde_json::to_vec(&whole) {
        Ok(v) => (StatusCode::OK, Bytes::from(v)),
        Err(_) => (StatusCode::OK, answer),
    }
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

    fn reshaped(answer: Value, cacheable: bool) -> (StatusCode, Value) {
        let info = json!({"name": "child", "version": "1"});
        let (status, bytes) = reshape(Bytes::from(answer.to_string()), cacheable, Some(&info));
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[test]
    fn a_result_gains_what_2026_requires_and_keeps_what_the_child_set() {
        let (status, v) = reshaped(
            json!({"jsonrpc": "2.0", "id": 1, "result": {"tools": []}}),
            true,
        );
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            v["result"],
            json!({"tools": [], "resultType": "complete", "ttlMs": 0, "cacheScope": "private",
                   "_meta": {SERVER_INFO: {"name": "child", "version": "1"}}})
        );
        let set = json!({"jsonrpc": "2.0", "id": 1, "result": {"contents": [], "ttlMs": 5000,
            "cacheScope": "public", "resultType": "complete", "_meta": {"k": 1}}});
        let (_, v) = reshaped(set, true);
        assert_eq!(v["result"]["ttlMs"], 5000);
        assert_eq!(v["result"]["cacheScope"], "public");
        assert_eq!(v["result"]["_meta"]["k"], 1);
        assert_eq!(v["result"]["_meta"][SERVER_INFO]["name"], "child");
    }

    #[test]
    fn a_call_result_gets_no_cache_fields() {
        let (_, v) = reshaped(
            json!({"jsonrpc": "2.0", "id": 1, "result": {"content": []}}),
            false,
        );
        assert_eq!(v["result"]["resultType"], "complete");
        assert!(v["result"].get("ttlMs").is_none());
        assert!(v["result"].get("cacheScope").is_none());
    }

    #[test]
    fn an_error_keeps_its_body_and_gets_the_status_of_its_code() {
        for (code, status) in [
            (-32601, StatusCode::NOT_FOUND),
            (-32602, StatusCode::BAD_REQUEST),
            (-32020, StatusCode::BAD_REQUEST),
            (-32603, StatusCode::OK),
            (-32000, StatusCode::OK),
        ] {
            let error = json!({"jsonrpc": "2.0", "id": 1, "error": {"code": code, "message": "m"}});
            assert_eq!(reshaped(error.clone(), false), (status, error), "{code}");
        }
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
