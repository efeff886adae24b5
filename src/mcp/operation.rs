//! Which MCP operation a request asks for: from the `Mcp-Method` / `Mcp-Name` request headers
//! (MCP 2026-07-28, SEP-2243) or from the JSON-RPC body.
//!
//! ```
//! use http::HeaderMap;
//! use mcp_server_auth::mcp::operation::{self, Operation};
//!
//! let mut headers = HeaderMap::new();
//! headers.insert("mcp-method", "tools/call".parse().unwrap());
//! // A name that is not plain ASCII travels in the Base64 sentinel form.
//! headers.insert("mcp-name", "=?base64?w6ljaG8=?=".parse().unwrap());
//! let op = operation::from_headers(&headers).unwrap().unwrap();
//! assert_eq!(op, Operation::new("tools/call", Some("écho")));
//!
//! let body = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{}}}"#;
//! let ops = operation::from_body(body).unwrap();
//! assert_eq!(ops.operations(), [Operation::new("tools/call", Some("echo"))]);
//! ```

use std::fmt;

use base64::Engine as _;
use http::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use serde_json::value::RawValue;

/// The `Mcp-Method` request header (MCP 2026-07-28): the JSON-RPC method of the body.
pub const MCP_METHOD: HeaderName = HeaderName::from_static("mcp-method");
/// The `Mcp-Name` request header (MCP 2026-07-28): the tool or prompt name, or resource URI.
pub const MCP_NAME: HeaderName = HeaderName::from_static("mcp-name");
/// The `MCP-Protocol-Version` request header.
pub const MCP_PROTOCOL_VERSION: HeaderName = HeaderName::from_static("mcp-protocol-version");

/// The first protocol revision whose servers must reject a request whose `Mcp-Method` /
/// `Mcp-Name` headers disagree with its body.
pub const HEADERS_VALIDATED_SINCE: &str = "2026-07-28";

/// The methods whose requests name a tool, prompt or resource, and the `params` field that
/// holds the name: `tools/call` and `prompts/get` → `name`, `resources/read` → `uri`.
pub fn name_field(method: &str) -> Option<&'static str> {
    match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        _ => None,
    }
}

/// One MCP operation: a JSON-RPC method and, for `tools/call`, `prompts/get` and
/// `resources/read`, the tool name, prompt name or resource URI.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Operation {
    method: String,
    name: Option<String>,
}

impl Operation {
    /// An operation.
    pub fn new(method: impl Into<String>, name: Option<impl Into<String>>) -> Self {
        Self {
            method: method.into(),
            name: name.map(Into::into),
        }
    }

    /// `tools/call` of the tool `name`.
    pub fn tool(name: impl Into<String>) -> Self {
        Self::new("tools/call", Some(name))
    }

    /// The JSON-RPC method (`tools/call`, `initialize`, …).
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The tool or prompt name, or the resource URI, when the method names one.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(f, "{} {name:?}", self.method),
            None => f.write_str(&self.method),
        }
    }
}

/// Why the operation of a request cannot be determined. Each is answered `400 Bad Request`;
/// header problems carry the JSON-RPC error `-32020` (HeaderMismatch), body problems `-32700`
/// (parse error) or `-32600` (invalid request).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OperationError {
    /// A routing header appears more than once.
    #[error("the {0} header appears more than once: send it once")]
    DuplicateHeader(&'static str),
    /// A routing header is empty, not ASCII, or a malformed Base64 sentinel.
    #[error("the {0} header value is empty, not visible ASCII, or badly encoded")]
    InvalidHeader(&'static str),
    /// `Mcp-Name` is missing for a method that names a tool, prompt or resource.
    #[error("the Mcp-Name header is required for {0}")]
    MissingName(String),
    /// A header disagrees with the body.
    #[error("the {0} header does not match the request body")]
    Mismatch(&'static str),
    /// The body is not JSON.
    #[error("the request body is not valid JSON")]
    NotJson,
    /// The body is JSON but not a JSON-RPC message or batch of messages.
    #[error("the request body is not a JSON-RPC message: {0}")]
    NotJsonRpc(&'static str),
}

impl OperationError {
    /// The JSON-RPC error code that goes with this error.
    pub fn code(&self) -> i32 {
        match self {
            Self::NotJson => -32700,
            Self::NotJsonRpc(_) => -32600,
            _ => -32020,
        }
    }
}

/// Reads one header that may appear at most once; trims optional whitespace.
fn single<'a>(
    headers: &'a HeaderMap,
    name: &HeaderName,
    label: &'static str,
) -> Result<Option<&'a str>, OperationError> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(OperationError::DuplicateHeader(label));
    }
    let text = visible_ascii(value)
        .map(|s| s.trim_matches([' ', '\t']))
        .filter(|s| !s.is_empty())
        .ok_or(OperationError::InvalidHeader(label))?;
    Ok(Some(text))
}

fn visible_ascii(value: &HeaderValue) -> Option<&str> {
    // `HeaderValue` holds no control bytes but tab; ASCII is then visible ASCII and spaces.
    let bytes = value.as_bytes();
    bytes
        .is_ascii()
        .then(|| std::str::from_utf8(bytes).ok())
        .flatten()
}

/// Decodes an `Mcp-Name` value: plain ASCII as is, or the Base64 sentinel form
/// `=?base64?{standard base64 of the UTF-8 value}?=` (markers case-sensitive).
pub fn decode_name(value: &str) -> Result<String, OperationError> {
    let invalid = OperationError::InvalidHeader("Mcp-Name");
    let Some(encoded) = value
        .strip_prefix("=?base64?")
        .and_then(|rest| rest.strip_suffix("?="))
    else {
        return Ok(value.to_owned());
    };
    let bytes = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    )
    .decode(encoded)
    .map_err(|_| invalid.clone())?;
    String::from_utf8(bytes).map_err(|_| invalid)
}

/// What the routing headers of a request say, if they are present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderOperation {
    /// The operation from `Mcp-Method` and, if present, the decoded `Mcp-Name`.
    pub operation: Operation,
    /// Whether `MCP-Protocol-Version` names a revision (2026-07-28 or later) whose servers must
    /// reject a request whose headers disagree with its body.
    pub validated_by_server: bool,
}

/// Reads `Mcp-Method`, `Mcp-Name` and `MCP-Protocol-Version`. `Ok(None)` when `Mcp-Method` is
/// absent (clients before 2026-07-28).
pub fn from_headers(headers: &HeaderMap) -> Result<Option<Operation>, OperationError> {
    Ok(read_headers(headers)?.map(|h| h.operation))
}

/// [`from_headers`], with whether the protocol version makes the server check them.
pub fn read_headers(headers: &HeaderMap) -> Result<Option<HeaderOperation>, OperationError> {
    let name = single(headers, &MCP_NAME, "Mcp-Name")?
        .map(decode_name)
        .transpose()?;
    let Some(method) = single(headers, &MCP_METHOD, "Mcp-Method")? else {
        return Ok(None);
    };
    let validated_by_server = single(headers, &MCP_PROTOCOL_VERSION, "MCP-Protocol-Version")
        .ok()
        .flatten()
        // Revisions are dates (YYYY-MM-DD), so they compare as strings.
        .is_some_and(|v| v.len() == 10 && v >= HEADERS_VALIDATED_SINCE);
    Ok(Some(HeaderOperation {
        // Mcp-Name matters only for the methods that name something.
        operation: Operation {
            name: name.filter(|_| name_field(method).is_some()),
            method: method.to_owned(),
        },
        validated_by_server,
    }))
}

/// The operations of a JSON-RPC body: one message, or every element of a batch.
#[derive(Debug, Clone)]
pub struct BodyOperations {
    operations: Vec<Operation>,
    /// The `id` of a single request, as raw JSON, for error responses.
    id: Option<Box<RawValue>>,
    batch: bool,
}

impl BodyOperations {
    /// The operations, in body order. A JSON-RPC response or a message without a method
    /// (a client answering a server request) has no operation.
    pub fn operations(&self) -> &[Operation] {
        &self.operations
    }

    /// Whether the body is a batch (a JSON array).
    pub fn is_batch(&self) -> bool {
        self.batch
    }

    /// The raw JSON `id` of a single request, if it has one.
    pub fn id(&self) -> Option<&RawValue> {
        self.id.as_deref()
    }
}

impl PartialEq for BodyOperations {
    fn eq(&self, other: &Self) -> bool {
        self.operations == other.operations
            && self.batch == other.batch
            && self.id.as_deref().map(RawValue::get) == other.id.as_deref().map(RawValue::get)
    }
}

impl Eq for BodyOperations {}

#[derive(Deserialize)]
struct Message<'a> {
    // Present-but-`null` must not read as absent: keep the raw value whenever the key exists.
    #[serde(borrow, default, deserialize_with = "present")]
    method: Option<&'a RawValue>,
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    params: Option<&'a RawValue>,
    // serde_json's private marker keys. With its `raw_value` feature (which this crate turns on
    // for the whole build) `serde_json::Value` reads `{"$serde_json::private::RawValue":"…"}` as
    // the JSON inside the string: a server reading `Value` would see a message this layer does
    // not. Refused.
    #[serde(borrow, default, deserialize_with = "present")]
    #[serde(rename = "$serde_json::private::RawValue")]
    raw_marker: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    #[serde(rename = "$serde_json::private::Number")]
    number_marker: Option<&'a RawValue>,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

#[derive(Deserialize)]
struct Params<'a> {
    #[serde(borrow, default)]
    name: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    uri: Option<std::borrow::Cow<'a, str>>,
    // The same marker keys as in `Message`: a server reading `Value` would replace these
    // params with the JSON inside the marker's string, and so call another tool.
    #[serde(borrow, default, deserialize_with = "present")]
    #[serde(rename = "$serde_json::private::RawValue")]
    raw_marker: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    #[serde(rename = "$serde_json::private::Number")]
    number_marker: Option<&'a RawValue>,
}

/// Reads the operations of a JSON-RPC body (a message or a batch). Duplicate keys, a batch
/// element that is not an object, `params` that is not an object for a method that names
/// something, or a missing name are errors: a body this layer cannot read is refused, never
/// passed on unchecked.
pub fn from_body(body: &[u8]) -> Result<BodyOperations, OperationError> {
    let first = body
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .ok_or(OperationError::NotJson)?;
    if *first == b'[' {
        let items: Vec<&RawValue> =
            serde_json::from_slice(body).map_err(|_| OperationError::NotJson)?;
        if items.is_empty() {
            return Err(OperationError::NotJsonRpc("an empty batch"));
        }
        let operations = items
            .iter()
            .map(|raw| message(raw.get()).map(|(op, _)| op))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .flatten()
            .collect();
        return Ok(BodyOperations {
            operations,
            id: None,
            batch: true,
        });
    }
    // Validates the whole document (no trailing bytes) while borrowing from it.
    let raw: &RawValue = serde_json::from_slice(body).map_err(|_| OperationError::NotJson)?;
    let (op, id) = message(raw.get())?;
    Ok(BodyOperations {
        operations: op.into_iter().collect(),
        id,
        batch: false,
    })
}

type Parsed = (Option<Operation>, Option<Box<RawValue>>);

fn message(json: &str) -> Result<Parsed, OperationError> {
    if !json.starts_with('{') {
        return Err(OperationError::NotJsonRpc(
            "a message must be a JSON object",
        ));
    }
    let msg: Message<'_> = serde_json::from_str(json)
        .map_err(|_| OperationError::NotJsonRpc("a member has the wrong type or repeats"))?;
    if msg.raw_marker.is_some() || msg.number_marker.is_some() {
        return Err(OperationError::NotJsonRpc(
            "a member name is reserved by serde_json",
        ));
    }
    let id = msg.id.map(RawValue::to_owned);
    let Some(method) = msg.method else {
        return Ok((None, id));
    };
    // A method that is present must be a string (`null` is not "no method").
    let method: std::borrow::Cow<'_, str> = serde_json::from_str(method.get())
        .map_err(|_| OperationError::NotJsonRpc("the method is not a string"))?;
    let name = match name_field(&method) {
        None => None,
        Some(field) => {
            let params = msg
                .params
                .filter(|p| p.get().starts_with('{'))
                .ok_or(OperationError::NotJsonRpc("params must be an object"))?;
            let params: Params<'_> = serde_json::from_str(params.get()).map_err(|_| {
                OperationError::NotJsonRpc("a member has the wrong type or repeats")
            })?;
            if params.raw_marker.is_some() || params.number_marker.is_some() {
                return Err(OperationError::NotJsonRpc(
                    "a member name is reserved by serde_json",
                ));
            }
            let name = if field == "name" {
                params.name
            } else {
                params.uri
            };
            Some(
                name.ok_or(OperationError::NotJsonRpc("params lacks the name or uri"))?
                    .into_owned(),
            )
        }
    };
    Ok((
        Some(Operation {
            method: method.into_owned(),
            name,
        }),
        id,
    ))
}

/// Checks that the routing headers agree with a single-message body.
pub fn check_match(header: &Operation, body: &BodyOperations) -> Result<(), OperationError> {
    if body.batch {
        return Err(OperationError::Mismatch("Mcp-Method"));
    }
    let Some(op) = body.operations.first() else {
        return Err(OperationError::Mismatch("Mcp-Method"));
    };
    if op.method != header.method {
        return Err(OperationError::Mismatch("Mcp-Method"));
    }
    if op.name != header.name {
        return Err(if header.name.is_none() {
            OperationError::MissingName(op.method.clone())
        } else {
            OperationError::Mismatch("Mcp-Name")
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_bytes(v.as_bytes()).unwrap(),
            );
        }
        h
    }

    #[test]
    fn headers_are_read_trimmed_and_decoded() {
        let h = headers(&[
            ("mcp-method", " tools/call\t"),
            ("mcp-name", "=?base64?d3JpdGVfbm90ZQ==?="),
            ("mcp-protocol-version", "2026-07-28"),
        ]);
        let got = read_headers(&h).unwrap().unwrap();
        assert_eq!(got.operation, Operation::tool("write_note"));
        assert!(got.validated_by_server);
        // Unpadded Base64 is accepted too.
        assert_eq!(
            decode_name("=?base64?d3JpdGVfbm90ZQ?=").unwrap(),
            "write_note"
        );
        // Markers are case-sensitive: anything else is a plain name.
        assert_eq!(decode_name("=?BASE64?eA==?=").unwrap(), "=?BASE64?eA==?=");
    }

    #[test]
    fn header_versions_decide_trust() {
        for (version, trusted) in [
            ("2025-11-25", false),
            ("2026-07-28", true),
            ("2027-01-01", true),
            ("garbage", false),
        ] {
            let h = headers(&[
                ("mcp-method", "tools/list"),
                ("mcp-protocol-version", version),
            ]);
            assert_eq!(
                read_headers(&h).unwrap().unwrap().validated_by_server,
                trusted,
                "{version}"
            );
        }
        let h = headers(&[("mcp-method", "tools/list")]);
        assert!(!read_headers(&h).unwrap().unwrap().validated_by_server);
        assert_eq!(read_headers(&HeaderMap::new()).unwrap(), None);
    }

    #[test]
    fn bad_headers_are_errors() {
        for (pairs, err) in [
            (
                &[("mcp-method", "tools/call"), ("mcp-method", "tools/call")][..],
                OperationError::DuplicateHeader("Mcp-Method"),
            ),
            (
                &[
                    ("mcp-method", "tools/call"),
                    ("mcp-name", "a"),
                    ("mcp-name", "b"),
                ][..],
                OperationError::DuplicateHeader("Mcp-Name"),
            ),
            (
                &[("mcp-method", "  ")][..],
                OperationError::InvalidHeader("Mcp-Method"),
            ),
            (
                &[("mcp-method", "tools/call"), ("mcp-name", "=?base64?***?=")][..],
                OperationError::InvalidHeader("Mcp-Name"),
            ),
            (
                // Base64 of the bytes FF FE: not UTF-8.
                &[
                    ("mcp-method", "tools/call"),
                    ("mcp-name", "=?base64?//4=?="),
                ][..],
                OperationError::InvalidHeader("Mcp-Name"),
            ),
        ] {
            assert_eq!(read_headers(&headers(pairs)), Err(err));
        }
        let mut h = HeaderMap::new();
        h.insert(
            MCP_METHOD,
            HeaderValue::from_bytes(b"tools/\xffcall").unwrap(),
        );
        assert_eq!(
            read_headers(&h),
            Err(OperationError::InvalidHeader("Mcp-Method"))
        );
    }

    #[test]
    fn bodies_give_operations() {
        let ops = from_body(
            br#"{"jsonrpc":"2.0","id":"x","method":"resources/read","params":{"uri":"file:///a"}}"#,
        )
        .unwrap();
        assert_eq!(
            ops.operations(),
            [Operation::new("resources/read", Some("file:///a"))]
        );
        assert_eq!(ops.id().unwrap().get(), r#""x""#);
        // Escapes are decoded as the server will decode them.
        let ops =
            from_body(br#"{"method":"tools/call","params":{"name":"write\u005fnote"}}"#).unwrap();
        assert_eq!(ops.operations(), [Operation::tool("write_note")]);
        // A batch: every element; responses have no operation.
        let ops = from_body(
            br#" [{"method":"tools/list","id":1},{"id":2,"result":{}},{"method":"tools/call","id":3,"params":{"name":"a","arguments":{"name":"b"}}}]"#,
        )
        .unwrap();
        assert!(ops.is_batch());
        assert_eq!(
            ops.operations(),
            [
                Operation::new("tools/list", None::<String>),
                Operation::tool("a")
            ]
        );
        // A notification.
        let ops = from_body(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap();
        assert_eq!(ops.operations()[0].method(), "notifications/initialized");
    }

    #[test]
    fn unreadable_bodies_are_errors() {
        for body in [
            &b""[..],
            b"   ",
            b"{",
            b"not json",
            br#"{"method":"tools/list"} trailing"#,
            b"[1,2",
        ] {
            assert_eq!(from_body(body), Err(OperationError::NotJson), "{body:?}");
        }
        for body in [
            &b"[]"[..],
            b"[1]",
            b"42",
            br#""tools/call""#,
            br#"{"method":7}"#,
            br#"{"method":null,"params":{"name":"write_note"}}"#,
            br#"{"method":"tools/list","method":"tools/call","params":{"name":"w"}}"#,
            br#"{"method":"tools/call","params":{"name":"a","name":"b"}}"#,
            br#"{"method":"tools/call","params":["write_note"]}"#,
            br#"{"method":"tools/call"}"#,
            br#"{"method":"tools/call","params":{}}"#,
            br#"{"method":"tools/call","params":{"name":3}}"#,
            br#"{"method":"resources/read","params":{"name":"x"}}"#,
        ] {
            assert!(
                matches!(from_body(body), Err(OperationError::NotJsonRpc(_))),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn headers_must_match_bodies() {
        let body = from_body(br#"{"method":"tools/call","params":{"name":"write_note"}}"#).unwrap();
        assert_eq!(check_match(&Operation::tool("write_note"), &body), Ok(()));
        assert_eq!(
            check_match(&Operation::tool("echo"), &body),
            Err(OperationError::Mismatch("Mcp-Name"))
        );
        assert_eq!(
            check_match(&Operation::new("tools/call", None::<String>), &body),
            Err(OperationError::MissingName("tools/call".into()))
        );
        assert_eq!(
            check_match(&Operation::new("TOOLS/CALL", Some("write_note")), &body),
            Err(OperationError::Mismatch("Mcp-Method"))
        );
        let batch = from_body(br#"[{"method":"tools/list"}]"#).unwrap();
        assert!(check_match(&Operation::new("tools/list", None::<String>), &batch).is_err());
    }
}
