//! The child's messages to an MCP 2026-07-28 client, in that revision's shape
//! ([`crate::stateless`] serves such clients).
//!
//! The child answers in its own (2025) shape, which a
//! 2026-07-28 client refuses to read. So every result gains what the new revision requires and
//! the child cannot know: `resultType: "complete"`; for the cacheable methods (`tools/list`,
//! `prompts/list`, `resources/list`, `resources/templates/list`, `resources/read`,
//! `server/discover`) `ttlMs: 0` and `cacheScope: "private"` (MCP 2026-07-28, "Caching": the
//! gateway cannot tell how long a result stays fresh, and behind authentication a result may
//! differ by caller, so no cache may share it); and the child's `serverInfo` in `_meta`. A
//! field the child did set is left alone. An error gets the HTTP status the revision gives its
//! code (`404` for `-32601`, `400` for the envelope errors) when the answer is JSON.
//!
//! **The child's own requests.** A 2026-07-28 exchange is one `POST` and its answer, with no
//! way for the client to answer a request on it. A request the client can be asked for
//! (sampling, elicitation or roots during `tools/call`, `prompts/get` or `resources/read`, the
//! client having declared the capability in `_meta`) ends the `POST` with `input_required`
//! and the call waits for the client's retry ([`crate::mrtr`]); any other gets a JSON-RPC error
//! from the gateway at once, and the child's call goes on.
//!
//! **Notifications of no request.** The child's list changes and resource updates are sent to
//! every client of the child, and so reach a 2026-07-28 exchange that is open at the time. The
//! revision carries them on `subscriptions/listen` streams only, to the clients that asked
//! ([`crate::listen`]): on an exchange they are withheld.
//!
//! ```
//! use mcp_auth_gateway::reshape::{CACHEABLE, SERVER_INFO};
//! assert!(CACHEABLE.contains(&"tools/list"));
//! assert_eq!(SERVER_INFO, "io.modelcontextprotocol/serverInfo");
//! ```

use axum::http::StatusCode;
use bytes::Bytes;
use serde_json::{Map, Value, value::RawValue};

use crate::{
    bridge::{Exchange, INTERNAL_ERROR},
    message::{self, Kind, Message},
    mrtr::{self, Call, Slot, Waiting},
    pool::Lease,
    taps,
};

/// The `_meta` key of the server's name and version in a 2026-07-28 result.
pub const SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
/// The methods whose results carry `ttlMs` and `cacheScope` (MCP 2026-07-28, "Caching").
pub const CACHEABLE: [&str; 6] = [
    "tools/list",
    "prompts/list",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "server/discover",
];
pub(crate) const INVALID_PARAMS: i32 = -32602;
pub(crate) const METHOD_NOT_FOUND: i32 = -32601;
pub(crate) const HEADER_MISMATCH: i32 = -32020;
pub(crate) const UNSUPPORTED_PROTOCOL_VERSION: i32 = -32022;

/// The child's messages on one 2026-07-28 exchange, put in that revision's shape (see the
/// module's documentation). It keeps the child attached until it is dropped.
#[derive(Debug)]
pub struct Reshape {
    lease: Lease,
    /// The id of this `POST`, which the answer gets (a retry's differs from the call's).
    id: Box<RawValue>,
    /// The id the bridge knows the call by: its first `POST`'s.
    call_id: Box<RawValue>,
    cacheable: bool,
    server_info: Option<Value>,
    /// For the calls that may ask their client for input.
    ask: Option<Ask>,
}

/// What a call needs to ask its client for input ([`crate::mrtr`]).
#[derive(Debug)]
pub struct Ask {
    waiting: Waiting,
    principal: String,
    method: String,
    name: Option<String>,
    capabilities: Value,
    rounds: u64,
}

/// What becomes of a message of the child's on a 2026-07-28 exchange.
#[derive(Debug)]
pub enum Outbound {
    /// It goes to the client as it is.
    Forward(Bytes),
    /// A request of the child's that the gateway has answered for the client (with an error).
    Answered,
    /// A notification that is not this exchange's (it goes to listen streams only).
    Withheld,
    /// A request of the child's to ask the client for: the `POST` ends with
    /// `input_required` ([`Reshape::park`]); the slot holds room for the call to wait.
    Ask(Bytes, Slot),
}

impl Ask {
    /// `principal`'s call of `method` on `name` (its `Mcp-Name`), whose client declared
    /// `capabilities`, after `rounds` keys were handed out.
    pub fn new(
        waiting: Waiting,
        principal: String,
        method: String,
        name: Option<String>,
        capabilities: Value,
        rounds: u64,
    ) -> Self {
        Self {
            waiting,
            principal,
            method,
            name,
            capabilities,
            rounds,
        }
    }
}

impl Reshape {
    /// The exchange of the `POST` `id` for the call the bridge knows as `call_id` (the same
    /// but on a retry), of `method`; `server_info` from the child's `initialize`; `ask` for
    /// the calls that may ask their client for input.
    pub fn new(
        lease: Lease,
        id: Box<RawValue>,
        call_id: Box<RawValue>,
        method: &str,
        server_info: Option<Value>,
        ask: Option<Ask>,
    ) -> Self {
        Self {
            lease,
            id,
            call_id,
            cacheable: CACHEABLE.contains(&method),
            server_info,
            ask,
        }
    }

    /// A message of the child's before its answer. A request the client can be asked for
    /// (`may_ask`: the exchange can still end with `input_required`) becomes
    /// [`Outbound::Ask`]; any other request is answered for the client with an error.
    pub async fn message(&self, m: Bytes, may_ask: bool) -> Outbound {
        let Ok(msg) = Message::parse(&m) else {
            return Outbound::Forward(m);
        };
        if msg.kind() != Kind::Request {
            // A list change or resource update concerns no request: at 2026-07-28 it rides
            // only the `subscriptions/listen` streams that asked for it ([`crate::taps`]).
            if msg.method().is_some_and(taps::listen_only) {
                return Outbound::Withheld;
            }
            return Outbound::Forward(m);
        }
        if may_ask
            && let Some(ask) = &self.ask
            && let Some(needs) = msg.method().and_then(mrtr::capability)
            && ask.capabilities.get(needs).is_some_and(|c| !c.is_null())
            && let Some(slot) = ask.waiting.reserve(&ask.principal)
        {
            return Outbound::Ask(m, slot);
        }
        let refusal = message::error_response(
            msg.id(),
            METHOD_NOT_FOUND,
            "The client speaks MCP 2026-07-28 and cannot be asked this: it did not declare the \
             capability, or the request is not sampling, elicitation or roots during tools/call, \
             prompts/get or resources/read",
        );
        if let Ok(answer) = Message::parse(&refusal) {
            let _ = self
                .lease
                .backend()
                .send(self.lease.client(), &answer, refusal.clone())
                .await;
        }
        Outbound::Answered
    }

    /// Ends this `POST` with `input_required`, asking the client for the child's `request`
    /// (from [`Outbound::Ask`]); the call (`exchange`) waits for the retry in `slot`.
    pub fn park(self, exchange: Exchange, request: &Bytes, slot: Slot) -> Bytes {
        let Reshape {
            lease,
            id,
            call_id,
            ask,
            ..
        } = self;
        let (Some(ask), Ok(msg)) = (ask, Message::parse(request)) else {
            // Not from `message`: nothing to ask.
            let error = "The MCP server's request could not be passed on";
            return message::error_response(Some(&id), INTERNAL_ERROR, error);
        };
        let rounds = ask.rounds + 1;
        let key = format!("r{rounds}");
        let child_id = msg
            .id()
            .map(ToOwned::to_owned)
            .unwrap_or_else(|| call_id.clone());
        let call = Call {
            exchange,
            lease,
            call_id,
            method: ask.method,
            name: ask.name,
            rounds,
            asked: vec![(key.clone(), child_id)],
        };
        let state = ask.waiting.park(slot, ask.principal, call);
        mrtr::input_required(&id, &key, &msg, &state)
    }

    /// The answer, with this `POST`'s id and the HTTP status it gets when sent as JSON.
    pub fn answer(&self, a: Bytes) -> (StatusCode, Bytes) {
        let a = match Message::parse(&a) {
            Ok(msg) if self.id.get() != self.call_id.get() => {
                message::response_with_id(&msg, &self.id)
            }
            _ => a,
        };
        reshape(a, self.cacheable, self.server_info.as_ref())
    }
}

/// `answer` in the 2026-07-28 shape, and its HTTP status as JSON.
pub(crate) fn reshape(
    answer: Bytes,
    cacheable: bool,
    server_info: Option<&Value>,
) -> (StatusCode, Bytes) {
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

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
}
