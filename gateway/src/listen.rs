//! `subscriptions/listen`: the child's list changes and resource updates for MCP 2026-07-28
//! clients (MCP 2026-07-28, "Subscriptions", SEP-2575).
//!
//! A 2025 client gets a server's notifications outside any request on its session's `GET`
//! stream. A 2026-07-28 client has neither session nor `GET`; it `POST`s
//! `subscriptions/listen` with a filter of the kinds it wants, and the answer *is* the
//! stream. The gateway serves it from the caller's principal's child, the one its other
//! requests use ([`crate::stateless`]):
//!
//! | on the stream | what |
//! |---|---|
//! | first | `notifications/subscriptions/acknowledged`: the filter as honored |
//! | then | each of the child's `notifications/{tools,prompts,resources}/list_changed` and `notifications/resources/updated` that the filter wants ([`crate::taps`]), as the child sent it |
//! | last, when the child ends (or the gateway shuts down) | the request's result, empty: the stream ended on purpose |
//!
//! and every frame carries `_meta["io.modelcontextprotocol/subscriptionId"]`, the listen
//! request's id, so that a client tells its streams apart. Nothing is replayed: a stream that
//! ends without its result (the client was too slow, see [`crate::taps`]) is lost, and the
//! client listens again and reads what it depends on.
//!
//! **Resource updates.** A 2025 server sends updates only for the URIs a client subscribed
//! to. If the child's `initialize` declares `resources.subscribe`, the gateway sends it
//! `resources/subscribe` for each URI of the filter that no other listener of the child has
//! asked for, before the acknowledgement, and `resources/unsubscribe` when the URI's last
//! listener goes away. If it does not, it cannot send updates at all: the acknowledgement
//! leaves `resourceSubscriptions` out (the revision's way of saying a kind is not honored),
//! and no update is delivered.
//!
//! **Whose.** The stream holds the child of the caller's principal, as any request does
//! ([`crate::pool::Lease`]): another principal's listener is on another child, except under
//! `--isolation shared`, where the operator chose one child for everyone. A principal has at
//! most [`MAX_LISTENERS`](crate::taps::MAX_LISTENERS) streams open on its child; one more gets
//! `429`. The stream ends when the client disconnects (the child is released, and the
//! resources nobody listens to any more are unsubscribed) or when the child ends.
//!
//! ```
//! use mcp_auth_gateway::listen::{METHOD, SUBSCRIPTION_ID};
//! assert_eq!(METHOD, "subscriptions/listen");
//! assert_eq!(SUBSCRIPTION_ID, "io.modelcontextprotocol/subscriptionId");
//! ```

use std::time::Duration;

use axum::http::StatusCode;
use bytes::Bytes;
use futures_util::Stream;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use crate::{
    bridge::{Exchange, INTERNAL_ERROR},
    message::{self, Message},
    pool::Lease,
    reshape::INVALID_PARAMS,
    taps::{Filter, TapError},
};

/// The method that opens a stream.
pub const METHOD: &str = "subscriptions/listen";
/// The `_meta` key every frame of a stream carries: the listen request's id.
pub const SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";
const ACKNOWLEDGED: &str = "notifications/subscriptions/acknowledged";
/// How long the child has to answer a `resources/subscribe` before the stream goes on.
const ANSWER_WAIT: Duration = Duration::from_secs(10);

/// One open `subscriptions/listen` stream: dropping it detaches it from the child.
#[derive(Debug)]
pub struct Listener {
    id: Value,
    honored: Filter,
    rx: mpsc::Receiver<Bytes>,
    guard: Guard,
}

/// The tap and the child, released when the listener goes.
#[derive(Debug)]
struct Guard {
    lease: Option<Lease>,
    tap: u64,
    uris: Vec<String>,
}

/// Opens the stream of `msg`, a `subscriptions/listen` request of `principal`, on the child of
/// `lease`, whose `initialize` result is `init`. A refusal is its status and JSON-RPC answer.
pub async fn open(
    lease: Lease,
    principal: &str,
    init: &Value,
    msg: &Message<'_>,
) -> Result<Listener, (StatusCode, Bytes)> {
    let refuse = |status, code, text: &str| (status, message::error_response(msg.id(), code, text));
    let params = msg
        .params()
        .and_then(|p| serde_json::from_str::<Value>(p.get()).ok())
        .unwrap_or_default();
    let Some(notifications) = params.get("notifications") else {
        let text = "params.notifications is required: the SubscriptionFilter of the kinds wanted";
        return Err(refuse(StatusCode::BAD_REQUEST, INVALID_PARAMS, text));
    };
    let mut filter = Filter::parse(notifications)
        .map_err(|e| refuse(StatusCode::BAD_REQUEST, INVALID_PARAMS, &e))?;
    let subscribable = init["capabilities"]["resources"]["subscribe"] == Value::Bool(true);
    if !subscribable && !filter.uris.is_empty() {
        tracing::info!(
            "a subscriptions/listen asked for resource updates, which the MCP server does not \
             offer (no resources.subscribe capability): not honored"
        );
        filter.uris.clear();
    }
    let id: Value = msg
        .id()
        .and_then(|id| serde_json::from_str(id.get()).ok())
        .unwrap_or_default();
    let bridge = lease.backend().bridge().clone();
    let (tap, rx, asked) = {
        let _order = bridge.taps().order().await;
        let (tap, rx, new) = match bridge.tap(lease.client(), principal, filter.clone()) {
            Ok(tap) => tap,
            Err(e @ TapError::TooMany(_)) => {
                return Err(refuse(
                    StatusCode::TOO_MANY_REQUESTS,
                    INTERNAL_ERROR,
                    &e.to_string(),
                ));
            }
            Err(e) => return Err(refuse(StatusCode::OK, INTERNAL_ERROR, &e.to_string())),
        };
        (tap, rx, ask(&lease, "resources/subscribe", &new).await)
    };
    let guard = Guard {
        lease: Some(lease),
        tap,
        uris: filter.uris.clone(),
    };
    settle(asked, "resources/subscribe").await;
    Ok(Listener {
        id,
        honored: filter,
        rx,
        guard,
    })
}

/// Sends the child `method` for each of `uris` (the caller holds the taps' order): their
/// exchanges.
async fn ask(lease: &Lease, method: &str, uris: &[String]) -> Vec<Exchange> {
    let mut asked = Vec::with_capacity(uris.len());
    for uri in uris {
        let line = json!({"jsonrpc": "2.0", "id": 0, "method": method, "params": {"uri": uri}})
            .to_string();
        let Ok(request) = Message::parse(line.as_bytes()) else {
            continue;
        };
        match lease.backend().request(lease.client(), &request).await {
            Ok(exchange) => asked.push(exchange),
            // The child has ended: the stream ends too.
            Err(_) => break,
        }
    }
    asked
}

/// Waits (boundedly) for the child's answers to `method`, logging its refusals.
async fn settle(asked: Vec<Exchange>, method: &str) {
    for Exchange { answer, .. } in asked {
        match tokio::time::timeout(ANSWER_WAIT, answer).await {
            Ok(Ok(answer)) if Message::parse(&answer).is_ok_and(|m| m.result().is_some()) => {}
            Ok(Ok(_)) => tracing::warn!("the MCP server refused {method}"),
            Ok(Err(_)) => {}
            Err(_) => tracing::warn!("the MCP server did not answer {method} in {ANSWER_WAIT:?}"),
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let Some(lease) = self.lease.take() else {
            return;
        };
        let (tap, uris) = (self.tap, std::mem::take(&mut self.uris));
        let runtime = tokio::runtime::Handle::try_current();
        let (true, Ok(runtime)) = (!uris.is_empty(), runtime) else {
            lease.backend().bridge().taps().remove(tap, &uris);
            return;
        };
        runtime.spawn(async move {
            let bridge = lease.backend().bridge().clone();
            let asked = {
                let _order = bridge.taps().order().await;
                let gone = bridge.taps().remove(tap, &uris);
                ask(&lease, "resources/unsubscribe", &gone).await
            };
            settle(asked, "resources/unsubscribe").await;
            drop(lease);
        });
    }
}

impl Listener {
    /// The filter the stream honors.
    pub fn honored(&self) -> &Filter {
        &self.honored
    }

    /// `_meta` with the subscription id.
    fn meta(&self) -> Value {
        json!({ SUBSCRIPTION_ID: self.id })
    }

    fn acknowledgement(&self) -> Bytes {
        let params = json!({"notifications": self.honored.to_json(), "_meta": self.meta()});
        Bytes::from(json!({"jsonrpc": "2.0", "method": ACKNOWLEDGED, "params": params}).to_string())
    }

    /// The last frame when the gateway ends the stream on purpose.
    fn result(&self) -> Bytes {
        let result = json!({"resultType": "complete", "_meta": self.meta()});
        Bytes::from(json!({"jsonrpc": "2.0", "id": self.id, "result": result}).to_string())
    }

    /// The child's notification with the subscription id in its `_meta`.
    fn stamp(&self, line: &[u8]) -> Bytes {
        let Ok(mut note) = serde_json::from_slice::<Value>(line) else {
            return Bytes::copy_from_slice(line);
        };
        let Some(note_map) = note.as_object_mut() else {
            return Bytes::copy_from_slice(line);
        };
        let params = note_map
            .entry("params")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(params) = params.as_object_mut() {
            let meta = params
                .entry("_meta")
                .or_insert_with(|| Value::Object(Map::new()));
            if !meta.is_object() {
                *meta = Value::Object(Map::new());
            }
            if let Some(meta) = meta.as_object_mut() {
                meta.insert(SUBSCRIPTION_ID.into(), self.id.clone());
            }
        }
        Bytes::from(note.to_string())
    }

    /// The stream's frames: the acknowledgement, the notifications, and the result if the
    /// child ended; dropping it detaches the listener.
    pub fn into_stream(self) -> impl Stream<Item = Bytes> + Send + 'static {
        let ack = self.acknowledgement();
        futures_util::stream::unfold(Some((self, Some(ack))), |state| async move {
            let (mut listener, first) = state?;
            if let Some(ack) = first {
                return Some((ack, Some((listener, None))));
            }
            match listener.rx.recv().await {
                Some(line) => {
                    let frame = listener.stamp(&line);
                    Some((frame, Some((listener, None))))
                }
                None => {
                    // The child ended (a result), or the tap was dropped for being slow
                    // (nothing: the stream is lost).
                    let lease = listener.guard.lease.as_ref();
                    let ended = lease.is_some_and(|l| l.backend().bridge().end_reason().is_some());
                    ended.then(|| (listener.result(), None))
                }
            }
        })
    }
}

/// Whether `msg` opens a listen stream.
pub fn is_listen(msg: &Message<'_>) -> bool {
    msg.method() == Some(METHOD)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_subscription_id_is_stamped_into_meta_and_the_rest_kept() {
        let (_, rx) = mpsc::channel(1);
        let listener = Listener {
            id: json!("listen-1"),
            honored: Filter::default(),
            rx,
            guard: Guard {
                lease: None,
                tap: 0,
                uris: Vec::new(),
            },
        };
        let stamped: Value = serde_json::from_slice(&listener.stamp(
            br#"{"jsonrpc":"2.0","method":"notifications/resources/updated","params":{"uri":"u","_meta":{"k":1}}}"#,
        ))
        .unwrap();
        assert_eq!(stamped["params"]["uri"], "u");
        assert_eq!(stamped["params"]["_meta"]["k"], 1);
        assert_eq!(stamped["params"]["_meta"][SUBSCRIPTION_ID], "listen-1");
        let bare: Value = serde_json::from_slice(
            &listener.stamp(br#"{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}"#),
        )
        .unwrap();
        assert_eq!(bare["params"]["_meta"][SUBSCRIPTION_ID], "listen-1");
        let ack: Value = serde_json::from_slice(&listener.acknowledgement()).unwrap();
        assert_eq!(ack["method"], ACKNOWLEDGED);
        assert_eq!(ack["params"]["notifications"], json!({}));
        let result: Value = serde_json::from_slice(&listener.result()).unwrap();
        assert_eq!(result["id"], "listen-1");
        assert_eq!(result["result"]["_meta"][SUBSCRIPTION_ID], "listen-1");
    }
}
