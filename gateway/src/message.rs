//! JSON-RPC 2.0 messages as the bridge sees them: what kind each one is, and the few rewrites
//! it makes.
//!
//! The bridge passes messages through rather than modelling MCP: a method it has never heard
//! of (a newer revision's, an extension's) must cross it unchanged. So a message is parsed only
//! far enough to route it ([`Message::parse`]: its `id`, `method` and the raw `params`,
//! `result` or `error`), and rebuilt only where the route needs it: a client's request leaves
//! with an id the bridge chose ([`request_with_id`]), so that answers are matched without
//! trusting clients to keep their ids apart (a `shared` child will serve many clients), and
//! the answer returns with the client's id ([`response_with_id`]). Everything else passes as
//! the bytes that came in, on one line ([`one_line`]: a pretty-printed body would otherwise be
//! several messages to the child).
//!
//! ```
//! use mcp_auth_gateway::message::{Message, request_with_id};
//!
//! let line = br#"{"jsonrpc":"2.0","id":"a-7","method":"tools/list","params":{}}"#;
//! let msg = Message::parse(line).unwrap();
//! assert_eq!(msg.method(), Some("tools/list"));
//! assert_eq!(msg.id().unwrap().get(), r#""a-7""#);
//! let out = request_with_id(&msg, 3);
//! assert_eq!(&out[..], br#"{"jsonrpc":"2.0","id":3,"method":"tools/list","params":{}}"#);
//! ```

use std::borrow::Cow;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;

/// A parsed JSON-RPC message, borrowing from its line.
#[derive(Debug)]
pub struct Message<'a> {
    id: Option<&'a RawValue>,
    method: Option<Cow<'a, str>>,
    params: Option<&'a RawValue>,
    result: Option<&'a RawValue>,
    error: Option<&'a RawValue>,
}

/// What a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A request: `method` and `id`; it expects an answer.
    Request,
    /// A notification: `method`, no `id`.
    Notification,
    /// An answer: `result` or `error`, and the `id` of the request (`null` when the request
    /// could not be read).
    Response,
}

/// Why a message is not a JSON-RPC 2.0 message the bridge can route.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Invalid {
    /// Not JSON, or not an object.
    #[error("not a JSON object")]
    Json,
    /// A JSON array: a batch.
    #[error(
        "JSON-RPC batches are not supported (MCP 2025-06-18 removed them): send one message \
         per request"
    )]
    Batch,
    /// Not `"jsonrpc": "2.0"`, or neither a method nor a result or error.
    #[error("not a JSON-RPC 2.0 request, notification or response")]
    Shape,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    jsonrpc: Cow<'a, str>,
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    method: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    params: Option<&'a RawValue>,
    #[serde(borrow, default)]
    result: Option<&'a RawValue>,
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
}

impl<'a> Message<'a> {
    /// Parses one message.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Invalid> {
        match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{') => {}
            Some(b'[') => return Err(Invalid::Batch),
            _ => return Err(Invalid::Json),
        }
        let e: Envelope<'a> = serde_json::from_slice(bytes).map_err(|_| Invalid::Json)?;
        // `"id": null` reads as no id; only an answer may carry it.
        let msg = Message {
            id: e.id.filter(|id| id.get() != "null"),
            method: e.method,
            params: e.params,
            result: e.result,
            error: e.error,
        };
        let answer = msg.result.is_some() != msg.error.is_some();
        if e.jsonrpc != "2.0" || (msg.method.is_none() && !answer) {
            return Err(Invalid::Shape);
        }
        if msg.method.is_some() && (msg.result.is_some() || msg.error.is_some()) {
            return Err(Invalid::Shape);
        }
        Ok(msg)
    }

    /// The kind of message.
    pub fn kind(&self) -> Kind {
        match (&self.method, self.id) {
            (Some(_), Some(_)) => Kind::Request,
            (Some(_), None) => Kind::Notification,
            (None, _) => Kind::Response,
        }
    }

    /// The `id`, unless absent or `null`.
    pub fn id(&self) -> Option<&'a RawValue> {
        self.id
    }

    /// The `method` of a request or notification.
    pub fn method(&self) -> Option<&str> {
        self.method.as_deref()
    }

    /// The raw `result` of an answer that succeeded.
    pub fn result(&self) -> Option<&'a RawValue> {
        self.result
    }

    /// The raw `params`.
    pub fn params(&self) -> Option<&'a RawValue> {
        self.params
    }

    /// `params._meta.progressToken` of a request, or `params.progressToken` of a
    /// `notifications/progress`, as raw JSON.
    pub fn progress_token(&self) -> Option<&'a RawValue> {
        #[derive(Deserialize)]
        struct Meta<'a> {
            #[serde(rename = "progressToken", borrow, default)]
            token: Option<&'a RawValue>,
        }
        #[derive(Deserialize)]
        struct Params<'a> {
            #[serde(rename = "_meta", borrow, default)]
            meta: Option<Meta<'a>>,
            #[serde(rename = "progressToken", borrow, default)]
            token: Option<&'a RawValue>,
        }
        let params: Params<'a> = serde_json::from_str(self.params?.get()).ok()?;
        match self.kind() {
            Kind::Notification => params.token,
            _ => params.meta?.token,
        }
    }

    /// `params.requestId` of a `notifications/cancelled`, as raw JSON.
    pub fn cancelled_request(&self) -> Option<&'a RawValue> {
        #[derive(Deserialize)]
        struct Params<'a> {
            #[serde(rename = "requestId", borrow)]
            request_id: &'a RawValue,
        }
        if self.method() != Some("notifications/cancelled") {
            return None;
        }
        let params: Params<'a> = serde_json::from_str(self.params?.get()).ok()?;
        Some(params.request_id)
    }
}

/// The message on one line: without `\n` or `\r`. JSON allows them only as whitespace
/// between tokens (inside strings they must be escaped), so removing them changes nothing;
/// left in, they would split a message in two on the child's stdin (MCP 2025-11-25,
/// "Transports" § stdio: messages "MUST NOT contain embedded newlines") or end an SSE line.
pub fn one_line(line: Bytes) -> Bytes {
    if line.iter().any(|b| matches!(b, b'\n' | b'\r')) {
        line.iter()
            .copied()
            .filter(|b| !matches!(b, b'\n' | b'\r'))
            .collect()
    } else {
        line
    }
}

fn method_json(msg: &Message<'_>) -> String {
    serde_json::to_string(msg.method().unwrap_or_default()).unwrap_or_default()
}

/// A request or notification `msg` rebuilt with `id` (a request) and `params`.
fn rebuild(msg: &Message<'_>, id: Option<&str>, params: Option<&str>) -> Bytes {
    let method = method_json(msg);
    let mut out = String::with_capacity(64 + method.len() + params.map_or(0, str::len));
    out.push_str(r#"{"jsonrpc":"2.0","#);
    if let Some(id) = id {
        out.push_str(r#""id":"#);
        out.push_str(id);
        out.push(',');
    }
    out.push_str(r#""method":"#);
    out.push_str(&method);
    if let Some(params) = params {
        out.push_str(r#","params":"#);
        out.push_str(params);
    }
    out.push('}');
    one_line(Bytes::from(out))
}

/// The request `msg` with the id `id` instead of its own.
pub fn request_with_id(msg: &Message<'_>, id: u64) -> Bytes {
    rebuild(msg, Some(&id.to_string()), msg.params.map(RawValue::get))
}

type RawMap = serde_json::Map<String, serde_json::Value>;

/// `params` as an object whose members stay raw (numbers, strings and nesting as sent).
fn raw_members(params: Option<&RawValue>) -> Vec<(String, Box<RawValue>)> {
    params
        .and_then(|p| {
            serde_json::from_str::<std::collections::BTreeMap<String, Box<RawValue>>>(p.get()).ok()
        })
        .map(|m| m.into_iter().collect())
        .unwrap_or_default()
}

/// `members` as a JSON object, `name` set to `value` (raw JSON).
fn object_with(members: Vec<(String, Box<RawValue>)>, name: &str, value: &str) -> String {
    let mut out = String::from("{");
    let mut first = true;
    let mut push = |out: &mut String, k: &str, v: &str| {
        if !std::mem::take(&mut first) {
            out.push(',');
        }
        out.push_str(&serde_json::to_string(k).unwrap_or_default());
        out.push(':');
        out.push_str(v);
    };
    for (k, v) in &members {
        if k != name {
            push(&mut out, k, v.get());
        }
    }
    push(&mut out, name, value);
    out.push('}');
    out
}

/// The request `msg` with the id `id`, and `params._meta.progressToken` replaced by the same
/// id, so that progress is matched without trusting clients to keep their tokens apart.
pub fn request_with_id_and_progress(msg: &Message<'_>, id: u64) -> Bytes {
    let id = id.to_string();
    let mut members = raw_members(msg.params);
    let meta = members
        .iter()
        .position(|(k, _)| k == "_meta")
        .map(|i| members.remove(i).1);
    let meta = object_with(raw_members(meta.as_deref()), "progressToken", &id);
    let params = object_with(members, "_meta", &meta);
    rebuild(msg, Some(&id), Some(&params))
}

/// The notification `notifications/progress` `msg` with `params.progressToken` replaced by
/// `token` (raw JSON): the client's own token again.
pub fn progress_with_token(msg: &Message<'_>, token: &RawValue) -> Bytes {
    let params = object_with(raw_members(msg.params), "progressToken", token.get());
    rebuild(msg, None, Some(&params))
}

/// The notification `notifications/cancelled` with `params.requestId` replaced by `id`.
pub fn cancelled_with_id(msg: &Message<'_>, id: u64) -> Bytes {
    let mut params: RawMap = msg
        .params
        .and_then(|p| serde_json::from_str(p.get()).ok())
        .unwrap_or_default();
    params.insert("requestId".to_owned(), id.into());
    let params = serde_json::Value::Object(params).to_string();
    rebuild(msg, None, Some(&params))
}

/// The answer `msg` with the id `id` (raw JSON) instead of its own.
pub fn response_with_id(msg: &Message<'_>, id: &RawValue) -> Bytes {
    let (name, value) = match (msg.result, msg.error) {
        (Some(result), _) => ("result", result),
        (None, Some(error)) => ("error", error),
        (None, None) => unreachable!("an answer has a result or an error"),
    };
    let mut out = String::with_capacity(48 + value.get().len());
    out.push_str(r#"{"jsonrpc":"2.0","id":"#);
    out.push_str(id.get());
    out.push_str(",\"");
    out.push_str(name);
    out.push_str("\":");
    out.push_str(value.get());
    out.push('}');
    one_line(Bytes::from(out))
}

/// A JSON-RPC error answer to `id` (`null` when `None`).
pub fn error_response(id: Option<&RawValue>, code: i32, message: &str) -> Bytes {
    error_response_with_data(id, code, message, None)
}

/// A JSON-RPC error answer to `id` with `data`.
pub fn error_response_with_data(
    id: Option<&RawValue>,
    code: i32,
    message: &str,
    data: Option<serde_json::Value>,
) -> Bytes {
    let mut error = serde_json::json!({ "code": code, "message": message });
    if let Some(data) = data {
        error["data"] = data;
    }
    let id = id.map_or("null", RawValue::get);
    Bytes::from(format!(r#"{{"jsonrpc":"2.0","id":{id},"error":{error}}}"#))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_invalid_messages() {
        let kind = |s: &str| Message::parse(s.as_bytes()).map(|m| m.kind());
        assert_eq!(
            kind(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#),
            Ok(Kind::Request)
        );
        assert_eq!(
            kind(r#"{"jsonrpc":"2.0","method":"x"}"#),
            Ok(Kind::Notification)
        );
        assert_eq!(
            kind(r#"{"jsonrpc":"2.0","id":1,"result":{}}"#),
            Ok(Kind::Response)
        );
        let null_id = r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"m"}}"#;
        assert_eq!(kind(null_id), Ok(Kind::Response));
        assert_eq!(kind("[]"), Err(Invalid::Batch));
        assert_eq!(kind("not json"), Err(Invalid::Json));
        assert_eq!(kind(r#"{"jsonrpc":"2.0","id":1"#), Err(Invalid::Json));
        assert_eq!(
            kind(r#"{"jsonrpc":"1.0","method":"x"}"#),
            Err(Invalid::Shape)
        );
        assert_eq!(kind(r#"{"jsonrpc":"2.0","id":1}"#), Err(Invalid::Shape));
        let both = r#"{"jsonrpc":"2.0","id":1,"result":1,"error":{}}"#;
        assert_eq!(kind(both), Err(Invalid::Shape));
    }

    #[test]
    fn ids_are_rewritten_both_ways_and_everything_else_kept() {
        let line = br#"{"jsonrpc":"2.0","id":"x\"y","method":"tools/call","params":{"name":"echo","_meta":{"progressToken":"p1"}}}"#;
        let msg = Message::parse(line).unwrap();
        assert_eq!(msg.progress_token().unwrap().get(), r#""p1""#);
        let out = request_with_id(&msg, 42);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["id"], 42);
        assert_eq!(v["params"]["name"], "echo");
        let answer = br#"{"jsonrpc":"2.0","id":42,"result":{"content":[]}}"#;
        let back = response_with_id(&Message::parse(answer).unwrap(), msg.id().unwrap());
        let v: serde_json::Value = serde_json::from_slice(&back).unwrap();
        assert_eq!(v["id"], "x\"y");
        assert_eq!(v["result"]["content"], serde_json::json!([]));
        let cancel = br#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"x","reason":"r"}}"#;
        let msg = Message::parse(cancel).unwrap();
        assert_eq!(msg.cancelled_request().unwrap().get(), r#""x""#);
        let v: serde_json::Value = serde_json::from_slice(&cancelled_with_id(&msg, 7)).unwrap();
        assert_eq!(
            v["params"],
            serde_json::json!({"requestId": 7, "reason": "r"})
        );
    }

    #[test]
    fn progress_tokens_are_rewritten_both_ways_and_the_rest_kept_raw() {
        let line = br#"{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"n","arguments":{"big":12345678901234567890,"f":1.50},"_meta":{"progressToken":"mine","other":true}}}"#;
        let msg = Message::parse(line).unwrap();
        let out = request_with_id_and_progress(&msg, 9);
        let sent = Message::parse(&out).unwrap();
        assert_eq!(sent.id().unwrap().get(), "9");
        assert_eq!(sent.progress_token().unwrap().get(), "9");
        let text = std::str::from_utf8(&out).unwrap();
        assert!(
            text.contains(r#""big":12345678901234567890,"f":1.50"#),
            "{text}"
        );
        assert!(text.contains(r#""other":true"#), "{text}");
        let note = br#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":9,"progress":2,"total":3}}"#;
        let back = progress_with_token(
            &Message::parse(note).unwrap(),
            msg.progress_token().unwrap(),
        );
        let v: serde_json::Value = serde_json::from_slice(&back).unwrap();
        assert_eq!(
            v["params"],
            serde_json::json!({"progressToken": "mine", "progress": 2, "total": 3})
        );
    }

    #[test]
    fn a_pretty_printed_message_becomes_one_line() {
        let pretty = b"{\r\n  \"jsonrpc\": \"2.0\",\n  \"id\": 1,\n  \"method\": \"a\\nb\",\n  \"params\": {\n    \"x\": [\n      1\n    ]\n  }\n}";
        let line = one_line(Bytes::from_static(pretty));
        assert!(!line.iter().any(|b| matches!(b, b'\n' | b'\r')));
        let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(v["method"], "a\nb"); // an escaped newline inside a string stays
        // Rebuilt requests keep the raw params: they are made one line too.
        let msg = Message::parse(pretty).unwrap();
        let out = request_with_id(&msg, 2);
        assert!(!out.contains(&b'\n'));
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&out).unwrap()["params"]["x"][0],
            1
        );
    }
}
