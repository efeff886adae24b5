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
//! | `server/discover` | answers from the child's `initialize` result: its `serverInfo`, `capabilities`, `instructions`, and the protocol versions the gateway offers |
//! | any other request | sends it to the child through the bridge ([`crate::bridge`], which gives it an id of its own), and answers as JSON or an event stream as for a session |
//! | a notification | writes it to the child, `202 Accepted` |
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

use bytes::Bytes;
use mcp_server_auth::AuthInfo;
use serde_json::{Map, Value, json};

use crate::{
    bridge::{Ended, Exchange, INTERNAL_ERROR},
    message::{self, Kind, Message},
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
const INITIALIZED: &[u8] = br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;

/// What to answer one sessionless `POST`.
#[derive(Debug)]
pub enum Outcome {
    /// A JSON answer now (`server/discover`, or a JSON-RPC error with the client's id).
    Json(Bytes),
    /// The child's exchange; the lease keeps the child attached until it is dropped.
    Exchange(Exchange, Lease),
    /// A notification or answer written to the child.
    Sent,
    /// No child for the caller.
    Refused(CreateError),
}

/// One `POST` of a 2026-07-28 client `caller`: `msg`, whose bytes are `line`.
pub async fn post(
    sessions: &Sessions,
    caller: &AuthInfo,
    msg: &Message<'_>,
    line: Bytes,
) -> Outcome {
    let lease = match sessions.lease(caller) {
        Ok(lease) => lease,
        Err(e) => return Outcome::Refused(e),
    };
    let failed = |e: &str| {
        Outcome::Json(message::error_response(
            msg.id(),
            INTERNAL_ERROR,
            &format!("The MCP server is not available: {e}"),
        ))
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
        return Outcome::Json(discover(msg, &init));
    }
    match backend.request(lease.client(), msg).await {
        Ok(exchange) => Outcome::Exchange(exchange, lease),
        Err(e) => failed(&e.to_string()),
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
    for field in ["capabilities", "serverInfo", "instructions"] {
        if let Some(v) = init.get(field) {
            result.insert(field.into(), v.clone());
        }
    }
    let id = msg.id().map_or("null", |id| id.get());
    Bytes::from(format!(
        r#"{{"jsonrpc":"2.0","id":{id},"result":{}}}"#,
        Value::Object(result)
    ))
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
        assert_eq!(v["result"]["serverInfo"]["name"], "x");
        assert_eq!(v["result"]["supportedVersions"][0], VERSION);
    }
}
