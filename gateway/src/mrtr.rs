//! The child's own requests for MCP 2026-07-28 clients: multi round-trip requests (MCP
//! 2026-07-28, "Multi Round-Trip Requests").
//!
//! A stdio server asks its client for sampling, elicitation or the roots with a request of its
//! own in the middle of a call, and waits for the answer. A 2026-07-28 client has no stream
//! the server could send that request on: instead the server *answers* the call with
//! `resultType: "input_required"`, the requests it needs (`inputRequests`, by key) and an
//! opaque `requestState`; the client performs them and sends the call again with
//! `inputResponses` (same keys) and the `requestState`. The child knows nothing of this: it
//! still waits on its request. So the gateway keeps the child's call where it is and hands out
//! a handle to it:
//!
//! | when | the gateway |
//! |---|---|
//! | the child asks during a `tools/call`, `prompts/get` or `resources/read` whose client declared the matching capability (`sampling`, `elicitation`, `roots`) | ends the client's `POST` with `input_required`: the child's request under a key of its own (`r1`, `r2`, …) and a `requestState`; the call waits here |
//! | the client retries with that `requestState` | gives each of its `inputResponses` to the child as the answer to its request (a missing one as an error), and answers the retry with the rest of the call: its answer, or the next `input_required` |
//! | no retry within `--input-timeout` (60 s) | answers the child's request with an error and cancels the call (`notifications/cancelled`) |
//!
//! One request at a time: each `input_required` carries the child's first request, and a
//! second one the child sent meanwhile comes with the answer to the retry, as the next round.
//! While a call waits, the child's other messages for it wait in its exchange's queue, as for a
//! slow client.
//!
//! **The `requestState` is a capability, and the client is not trusted with anything else.**
//! The spec makes the server treat it as attacker-controlled, protect its integrity and bind it
//! to the authenticated principal. It holds no call data at all: it is a random 128-bit handle
//! and an HMAC-SHA256 tag, under a key drawn when the gateway starts, over the handle and the
//! caller's principal ([`AuthInfo::principal_key`](mcp_server_auth::AuthInfo::principal_key)).
//! A state that was altered, that another principal presents, that names another method or
//! tool, or whose call has ended or timed out, gets `400` with JSON-RPC `-32602` and the same
//! message for every reason; the owner can still use a state someone else tried. A state is
//! good for one retry. The waiting calls are bounded, 1024 in all and 64 per principal (so that
//! one caller cannot take the room of the others): past that, the child's request is refused at
//! once as if the client could not answer it.
//!
//! ```
//! use std::time::Duration;
//! use mcp_auth_gateway::mrtr::Waiting;
//! let waiting = Waiting::new(Duration::from_secs(60));
//! assert!(waiting.is_empty());
//! ```

use std::{
    collections::HashMap,
    fmt,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use aws_lc_rs::{
    hmac,
    rand::{SecureRandom, SystemRandom},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use bytes::Bytes;
use serde_json::{Map, Value, json, value::RawValue};
use tokio::task::AbortHandle;

use crate::{
    bridge::{Exchange, INTERNAL_ERROR},
    message::{self, Message},
    pool::Lease,
};

/// How long a call waits for its client's retry by default (`--input-timeout`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// The most calls waiting for input at once.
pub const MAX_WAITING: usize = 1024;
/// The most calls of one principal waiting for input at once.
pub const MAX_WAITING_PER_PRINCIPAL: usize = 64;
/// The methods whose answer may be `input_required` (MCP 2026-07-28).
pub const METHODS: [&str; 3] = ["tools/call", "prompts/get", "resources/read"];
/// The one message for every refused `requestState`.
pub const INVALID_STATE: &str =
    "Invalid or expired requestState: send the request again without requestState";

const HANDLE: usize = 16;
const TAG: usize = 32;
const LABEL: &[u8] = b"mcp-auth-gateway requestState v1\0";

/// The client capability a request of the child's needs, if the protocol lets a 2026-07-28
/// client answer it.
pub fn capability(method: &str) -> Option<&'static str> {
    match method {
        "sampling/createMessage" => Some("sampling"),
        "elicitation/create" => Some("elicitation"),
        "roots/list" => Some("roots"),
        _ => None,
    }
}

/// The calls waiting for their clients' input. Clones share the table.
#[derive(Debug, Clone)]
pub struct Waiting {
    inner: Arc<Inner>,
}

struct Inner {
    key: hmac::Key,
    timeout: Duration,
    /// Entries plus reservations: never over [`MAX_WAITING`].
    used: AtomicUsize,
    /// The same, per principal: never over [`MAX_WAITING_PER_PRINCIPAL`]; a principal with none
    /// has no entry.
    principals: Mutex<HashMap<String, usize>>,
    table: Mutex<HashMap<[u8; HANDLE], Parked>>,
}

impl fmt::Debug for Inner {
    // The key is never shown, nor the handles.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Waiting")
            .field("timeout", &self.timeout)
            .field("used", &self.used)
            .finish_non_exhaustive()
    }
}

/// Room for one more waiting call, reserved before the client is told to retry.
#[derive(Debug)]
pub struct Slot {
    inner: Arc<Inner>,
    principal: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut principals = self.inner.principals();
        if let Some(n) = principals.get_mut(&self.principal) {
            *n -= 1;
            if *n == 0 {
                principals.remove(&self.principal);
            }
        }
        self.inner.used.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Inner {
    fn principals(&self) -> MutexGuard<'_, HashMap<String, usize>> {
        self.principals
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// A call of a 2026-07-28 client in the child, which may wait for its client's input.
#[derive(Debug)]
pub struct Call {
    /// The rest of the call.
    pub exchange: Exchange,
    /// The child, attached for the call.
    pub lease: Lease,
    /// The id the bridge knows the call by (its first `POST`'s).
    pub call_id: Box<RawValue>,
    /// The method of the call, and its `Mcp-Name`.
    pub method: String,
    /// The tool, prompt or resource of the call.
    pub name: Option<String>,
    /// The keys handed out so far in this call.
    pub rounds: u64,
    /// The child's requests the client is asked for: key, and the child's request id.
    pub asked: Vec<(String, Box<RawValue>)>,
}

#[derive(Debug)]
struct Parked {
    call: Call,
    principal: String,
    _slot: Slot,
    expiry: Option<AbortHandle>,
}

impl Waiting {
    /// An empty table; a call waits at most `timeout` for its retry.
    pub fn new(timeout: Duration) -> Self {
        let mut key = [0u8; TAG];
        // No randomness, no gateway: a predictable key would let clients forge states.
        SystemRandom::new()
            .fill(&mut key)
            .expect("the system's random number generator failed");
        Self {
            inner: Arc::new(Inner {
                key: hmac::Key::new(hmac::HMAC_SHA256, &key),
                timeout,
                used: AtomicUsize::new(0),
                principals: Mutex::new(HashMap::new()),
                table: Mutex::new(HashMap::new()),
            }),
        }
    }

    fn table(&self) -> MutexGuard<'_, HashMap<[u8; HANDLE], Parked>> {
        self.inner
            .table
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The calls waiting now.
    pub fn len(&self) -> usize {
        self.table().len()
    }

    /// Whether no call waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Room for one more call of `principal`, unless [`MAX_WAITING`] calls are waiting, or
    /// [`MAX_WAITING_PER_PRINCIPAL`] of its own.
    pub fn reserve(&self, principal: &str) -> Option<Slot> {
        let mut principals = self.inner.principals();
        let own = principals.get(principal).copied().unwrap_or(0);
        if own >= MAX_WAITING_PER_PRINCIPAL {
            return None;
        }
        self.inner
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_WAITING).then_some(n + 1)
            })
            .ok()?;
        principals.insert(principal.to_owned(), own + 1);
        Some(Slot {
            inner: self.inner.clone(),
            principal: principal.to_owned(),
        })
    }

    fn tag(&self, handle: &[u8; HANDLE], principal: &str) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(&self.inner.key);
        ctx.update(LABEL);
        ctx.update(handle);
        ctx.update(principal.as_bytes());
        ctx.sign()
    }

    /// Keeps `call` of `principal` (its key as the pool writes it) in `slot` until the retry
    /// or the timeout, and returns its `requestState`.
    pub fn park(&self, slot: Slot, principal: String, call: Call) -> String {
        let mut handle = [0u8; HANDLE];
        let mut table = self.table();
        loop {
            SystemRandom::new()
                .fill(&mut handle)
                .expect("the system's random number generator failed");
            if !table.contains_key(&handle) {
                break;
            }
        }
        let mut token = handle.to_vec();
        token.extend_from_slice(self.tag(&handle, &principal).as_ref());
        let waiting = self.clone();
        let timeout = self.inner.timeout;
        let expiry = tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            let parked = waiting.table().remove(&handle);
            if let Some(parked) = parked {
                parked.call.abandon(timeout).await;
            }
        });
        table.insert(
            handle,
            Parked {
                call,
                principal,
                _slot: slot,
                expiry: Some(expiry.abort_handle()),
            },
        );
        URL_SAFE_NO_PAD.encode(token)
    }

    /// The call `state` names, taken out of the table, if `principal` may continue it with
    /// `method` on `name`; else `None`, and the table is as it was.
    pub fn resume(
        &self,
        state: &str,
        principal: &str,
        method: &str,
        name: Option<&str>,
    ) -> Option<Call> {
        let token = URL_SAFE_NO_PAD.decode(state).ok()?;
        if token.len() != HANDLE + TAG {
            return None;
        }
        let (handle, tag) = token.split_at(HANDLE);
        let handle: [u8; HANDLE] = handle.try_into().ok()?;
        let mut data = LABEL.to_vec();
        data.extend_from_slice(&handle);
        data.extend_from_slice(principal.as_bytes());
        // Constant time: the tag says nothing about how close a forgery came.
        hmac::verify(&self.inner.key, &data, tag).ok()?;
        let mut table = self.table();
        let parked = table.get(&handle)?;
        let call = &parked.call;
        if parked.principal != principal || call.method != method || call.name.as_deref() != name {
            return None;
        }
        let mut parked = table.remove(&handle)?;
        drop(table);
        if let Some(expiry) = parked.expiry.take() {
            expiry.abort();
        }
        Some(parked.call)
    }
}

impl Call {
    /// Gives the child the client's `responses` (`inputResponses`, by key) as the answers to
    /// its requests; a request with no response gets an error.
    pub async fn deliver(&mut self, responses: Option<&Map<String, Value>>) {
        for (key, child_id) in std::mem::take(&mut self.asked) {
            let line = match responses.and_then(|r| r.get(&key)) {
                Some(result @ Value::Object(_)) => Bytes::from(
                    json!({"jsonrpc": "2.0", "id": &*child_id, "result": result}).to_string(),
                ),
                _ => message::error_response(
                    Some(&child_id),
                    INTERNAL_ERROR,
                    "The client retried without answering this request",
                ),
            };
            self.send(line).await;
        }
    }

    async fn send(&self, line: Bytes) {
        if let Ok(msg) = Message::parse(&line) {
            let _ = self
                .lease
                .backend()
                .send(self.lease.client(), &msg, line.clone())
                .await;
        }
    }

    /// No retry came in `timeout`: the call is cancelled, then the child's requests get an
    /// error (in that order, so that the cancellation names a call still in flight).
    async fn abandon(self, timeout: Duration) {
        let cancel = json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {
            "requestId": &*self.call_id,
            "reason": "the client did not retry within --input-timeout",
        }});
        self.send(Bytes::from(cancel.to_string())).await;
        for (_, child_id) in &self.asked {
            self.send(message::error_response(
                Some(child_id),
                INTERNAL_ERROR,
                &format!(
                    "The client did not answer within {timeout:?} (--input-timeout): the call is \
                     cancelled"
                ),
            ))
            .await;
        }
        tracing::info!(
            "a call waiting for its client's input was cancelled after {timeout:?} \
             (--input-timeout)"
        );
    }
}

/// The answer `input_required` to the `POST` `id`: the child's `request` under `key`, and
/// `state`.
pub fn input_required(id: &RawValue, key: &str, request: &Message<'_>, state: &str) -> Bytes {
    let mut asked = Map::new();
    asked.insert("method".into(), request.method().unwrap_or_default().into());
    if let Some(params) = request
        .params()
        .and_then(|p| serde_json::from_str::<Value>(p.get()).ok())
    {
        asked.insert("params".into(), params);
    }
    let answer = json!({"jsonrpc": "2.0", "id": id, "result": {
        "resultType": "input_required",
        "inputRequests": { key: asked },
        "requestState": state,
    }});
    Bytes::from(answer.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state_of(waiting: &Waiting, handle: [u8; HANDLE], principal: &str) -> String {
        let mut token = handle.to_vec();
        token.extend_from_slice(waiting.tag(&handle, principal).as_ref());
        URL_SAFE_NO_PAD.encode(token)
    }

    #[test]
    fn a_state_verifies_only_with_its_key_and_principal() {
        let waiting = Waiting::new(DEFAULT_TIMEOUT);
        let other = Waiting::new(DEFAULT_TIMEOUT);
        let handle = [7u8; HANDLE];
        let state = state_of(&waiting, handle, "alice");
        assert_ne!(state, state_of(&waiting, handle, "bob"));
        assert_ne!(state, state_of(&other, handle, "alice"));
        // Nothing is parked under it: every check fails the same way.
        assert!(
            waiting
                .resume(&state, "alice", "tools/call", None)
                .is_none()
        );
        assert!(
            waiting
                .resume("not base64!", "alice", "tools/call", None)
                .is_none()
        );
        assert!(waiting.resume("", "alice", "tools/call", None).is_none());
    }

    #[test]
    fn the_waiting_calls_are_bounded() {
        let waiting = Waiting::new(DEFAULT_TIMEOUT);
        let principals: Vec<String> = (0..MAX_WAITING).map(|i| format!("p{i}")).collect();
        let slots: Vec<Slot> = principals
            .iter()
            .map_while(|p| waiting.reserve(p))
            .collect();
        assert_eq!(slots.len(), MAX_WAITING);
        assert!(waiting.reserve("another").is_none());
        drop(slots);
        assert!(waiting.reserve("another").is_some());
    }

    #[test]
    fn one_principal_cannot_take_the_room_of_the_others() {
        let waiting = Waiting::new(DEFAULT_TIMEOUT);
        let slots: Vec<Slot> = (0..MAX_WAITING)
            .map_while(|_| waiting.reserve("alice"))
            .collect();
        assert_eq!(slots.len(), MAX_WAITING_PER_PRINCIPAL);
        assert!(waiting.reserve("alice").is_none());
        let bob = waiting.reserve("bob");
        assert!(bob.is_some());
        // Alice's room comes back as her calls end; the counts are forgotten at zero.
        drop(slots);
        assert!(waiting.reserve("alice").is_some());
        drop(bob);
        assert_eq!(waiting.inner.principals().len(), 0);
    }

    #[test]
    fn input_required_carries_the_childs_request_under_the_key() {
        let request = br#"{"jsonrpc":"2.0","id":5,"method":"roots/list","params":{"x":1}}"#;
        let request = Message::parse(request).unwrap();
        let id = RawValue::from_string("\"c1\"".into()).unwrap();
        let v: Value = serde_json::from_slice(&input_required(&id, "r1", &request, "S")).unwrap();
        assert_eq!(
            v,
            json!({"jsonrpc": "2.0", "id": "c1", "result": {"resultType": "input_required",
                "inputRequests": {"r1": {"method": "roots/list", "params": {"x": 1}}},
                "requestState": "S"}})
        );
    }
}
