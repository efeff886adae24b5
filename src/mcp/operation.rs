//! Which MCP operation a request asks for: from the `Mcp-Method` / `Mcp-Name` request headers
//! (MCP 2026-07-28, SEP-2243) or from the JSON-RPC body.
//!
//! The headers are worth trusting only where the server behind checks them against the body,
//! and a server only has to for the revisions that require it. So [`read_headers`] says the
//! server checks ([`HeaderOperation::validated_by_server`]) only when `MCP-Protocol-Version`
//! appears once and its raw bytes are one of [`HEADER_CHECKING_REVISIONS`]: no trimming (a
//! server that compares the raw value and does not recognize ` 2026-07-28` skips its check),
//! and no "this revision or later" (a later revision may drop or change the requirement).
//! Everything else is decided on the body.
//!
//! An operation's name is what per-name scopes ([`OperationScopes`](super::OperationScopes)) key on: a tool
//! name, a prompt name or a resource URI ([`NameKind`]). `Mcp-Name` carries it only for
//! `tools/call`, `prompts/get` and `resources/read` ([`name_in_header`]); for
//! `resources/subscribe`, `resources/unsubscribe` and `completion/complete`
//! ([`names_something`]) it comes from the body.
//!
//! ```
//! use http::HeaderMap;
//! use mcp_server_auth::mcp::operation::{self, NameKind, Operation};
//!
//! let mut headers = HeaderMap::new();
//! headers.insert("mcp-method", "tools/call".parse().unwrap());
//! // A name that is not plain ASCII travels in the Base64 sentinel form.
//! headers.insert("mcp-name", "=?base64?w6ljaG8=?=".parse().unwrap());
//! let op = operation::from_headers(&headers).unwrap().unwrap();
//! assert_eq!(op, Operation::new("tools/call", Some("écho")));
//!
//! // The routing headers are trusted only with exactly a revision that makes servers check them.
//! assert!(!operation::read_headers(&headers).unwrap().unwrap().validated_by_server);
//! headers.insert("mcp-protocol-version", " 2026-07-28".parse().unwrap());
//! assert!(!operation::read_headers(&headers).unwrap().unwrap().validated_by_server);
//! headers.insert("mcp-protocol-version", "2026-07-28".parse().unwrap());
//! assert!(operation::read_headers(&headers).unwrap().unwrap().validated_by_server);
//!
//! let body = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{}}}"#;
//! let ops = operation::from_body(body).unwrap();
//! assert_eq!(ops.operations(), [Operation::new("tools/call", Some("echo"))]);
//!
//! // completion/complete names its prompt or resource in params.ref.
//! let body = br#"{"jsonrpc":"2.0","id":2,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"review"},"argument":{"name":"lang","value":"py"}}}"#;
//! let ops = operation::from_body(body).unwrap();
//! assert_eq!(ops.operations(), [Operation::completion(NameKind::Prompt, "review")]);
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

/// The protocol revisions whose servers must refuse a request whose `Mcp-Method` / `Mcp-Name`
/// headers disagree with its body (MCP 2026-07-28, SEP-2243 "Server Behavior"), spelled as
/// they appear in `MCP-Protocol-Version`.
///
/// Only a request whose `MCP-Protocol-Version` header appears once and whose raw value is one
/// of these, byte for byte, is decided on its headers ([`HeaderOperation::validated_by_server`]).
/// Anything else is decided on its body: a revision this crate does not know yet (nothing says
/// its servers check the headers), and a known revision with whitespace around it (HTTP/2
/// keeps it; a server that compares the raw value then does not recognize the revision and
/// skips its check). A revision joins this list when it is known to keep the requirement.
pub const HEADER_CHECKING_REVISIONS: &[&str] = &["2026-07-28"];

/// The methods whose requests name a tool, prompt or resource in a `params` field of their
/// own, and that field: `tools/call` and `prompts/get` → `name`; `resources/read`,
/// `resources/subscribe` and `resources/unsubscribe` → `uri`.
///
/// `completion/complete` names a prompt or a resource too, one level down, in `params.ref`
/// (`{"type": "ref/prompt", "name": …}` or `{"type": "ref/resource", "uri": …}`), so it is not
/// listed here; [`from_body`] reads it.
pub fn name_field(method: &str) -> Option<&'static str> {
    match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" => Some("uri"),
        _ => None,
    }
}

/// Whether requests of `method` name a tool, prompt or resource: the methods of
/// [`name_field`], and `completion/complete`.
pub fn names_something(method: &str) -> bool {
    name_field(method).is_some() || method == "completion/complete"
}

/// Whether MCP 2026-07-28 requires `Mcp-Name` for `method`, and so requires servers to check
/// it against the body: `tools/call`, `prompts/get` and `resources/read` only (SEP-2243,
/// "Standard Headers"). For the other methods that name something (`resources/subscribe`,
/// `resources/unsubscribe`, `completion/complete`) the header is not defined, a server need
/// not check it, and the scope layer reads the name from the body.
pub fn name_in_header(method: &str) -> bool {
    matches!(method, "tools/call" | "prompts/get" | "resources/read")
}

/// What the name of an [`Operation`] refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NameKind {
    /// A tool name (`tools/call`).
    Tool,
    /// A prompt name (`prompts/get`, and `completion/complete` with a `ref/prompt`).
    Prompt,
    /// A resource URI (`resources/read`, `resources/subscribe`, `resources/unsubscribe`, and
    /// `completion/complete` with a `ref/resource`).
    Resource,
}

impl NameKind {
    /// The method that calls, gets or reads what is named, under which
    /// [`OperationScopes`](super::OperationScopes) keeps per-name entries: `tools/call`, `prompts/get` or
    /// `resources/read`.
    pub fn method(self) -> &'static str {
        match self {
            Self::Tool => "tools/call",
            Self::Prompt => "prompts/get",
            Self::Resource => "resources/read",
        }
    }

    /// What the name of a `method` request refers to, for the methods of [`name_field`].
    pub fn of_method(method: &str) -> Option<Self> {
        match method {
            "tools/call" => Some(Self::Tool),
            "prompts/get" => Some(Self::Prompt),
            "resources/read" | "resources/subscribe" | "resources/unsubscribe" => {
                Some(Self::Resource)
            }
            _ => None,
        }
    }
}

/// One MCP operation: a JSON-RPC method and, for the methods that name a tool, prompt or
/// resource, that name or URI and what it refers to ([`NameKind`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Operation {
    method: String,
    name: Option<String>,
    kind: Option<NameKind>,
}

impl Operation {
    /// An operation. With a name, its [`kind`](Self::kind) follows from the method
    /// ([`NameKind::of_method`]); for `completion/complete` use [`completion`](Self::completion).
    pub fn new(method: impl Into<String>, name: Option<impl Into<String>>) -> Self {
        let method = method.into();
        let name = name.map(Into::into);
        let kind = name.as_ref().and_then(|_| NameKind::of_method(&method));
        Self { method, name, kind }
    }

    /// `tools/call` of the tool `name`.
    pub fn tool(name: impl Into<String>) -> Self {
        Self::new("tools/call", Some(name))
    }

    /// `completion/complete` for the prompt ([`NameKind::Prompt`]) or resource
    /// ([`NameKind::Resource`]) `name`.
    pub fn completion(kind: NameKind, name: impl Into<String>) -> Self {
        Self {
            method: "completion/complete".to_owned(),
            name: Some(name.into()),
            kind: Some(kind),
        }
    }

    /// The JSON-RPC method (`tools/call`, `initialize`, …).
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The tool or prompt name, or the resource URI, when the method names one.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// What [`name`](Self::name) refers to; `None` without a name.
    pub fn kind(&self) -> Option<NameKind> {
        self.kind
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
    /// Whether the server must refuse the request if these headers disagree with its body:
    /// `MCP-Protocol-Version` appears once and its raw value is one of
    /// [`HEADER_CHECKING_REVISIONS`], and neither `Mcp-Method` nor `Mcp-Name` has whitespace
    /// around its value (this crate trims it; a server comparing raw values would not).
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
    let validated_by_server =
        checking_revision(headers) && !padded(headers, &MCP_METHOD) && !padded(headers, &MCP_NAME);
    Ok(Some(HeaderOperation {
        // Mcp-Name matters only for the methods that name something.
        operation: Operation::new(method, name.filter(|_| name_field(method).is_some())),
        validated_by_server,
    }))
}

/// Whether `MCP-Protocol-Version` appears once and is, byte for byte, a revision whose servers
/// check the routing headers. No trimming: the server may compare the raw value.
fn checking_revision(headers: &HeaderMap) -> bool {
    let mut values = headers.get_all(&MCP_PROTOCOL_VERSION).iter();
    match (values.next(), values.next()) {
        (Some(v), None) => HEADER_CHECKING_REVISIONS
            .iter()
            .any(|r| v.as_bytes() == r.as_bytes()),
        _ => false,
    }
}

/// Whether a (single) header value starts or ends with a space or tab.
fn padded(headers: &HeaderMap, name: &HeaderName) -> bool {
    headers.get(name).is_some_and(|v| {
        let b = v.as_bytes();
        [b.first(), b.last()]
            .into_iter()
            .flatten()
            .any(|c| matches!(c, b' ' | b'\t'))
    })
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
    // `completion/complete`: what the completion is for.
    #[serde(borrow, default, rename = "ref")]
    reference: Option<&'a RawValue>,
    // The same marker keys as in `Message`: a server reading `Value` would replace these
    // params with the JSON inside the marker's string, and so call another tool.
    #[serde(borrow, default, deserialize_with = "present")]
    #[serde(rename = "$serde_json::private::RawValue")]
    raw_marker: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    #[serde(rename = "$serde_json::private::Number")]
    number_marker: Option<&'a RawValue>,
}

/// `params.ref` of `completion/complete`: a `PromptReference` or `ResourceTemplateReference`.
#[derive(Deserialize)]
struct Reference<'a> {
    #[serde(borrow, rename = "type")]
    kind: std::borrow::Cow<'a, str>,
    #[serde(borrow, default)]
    name: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    uri: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "present")]
    #[serde(rename = "$serde_json::private::RawValue")]
    raw_marker: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    #[serde(rename = "$serde_json::private::Number")]
    number_marker: Option<&'a RawValue>,
}

/// Reads a JSON object that names something: `params`, or `params.ref`.
fn object<'a, T: Deserialize<'a>>(
    raw: Option<&'a RawValue>,
    not_object: &'static str,
    markers: impl FnOnce(&T) -> bool,
) -> Result<T, OperationError> {
    let raw = raw
        .filter(|p| p.get().starts_with('{'))
        .ok_or(OperationError::NotJsonRpc(not_object))?;
    let value: T = serde_json::from_str(raw.get())
        .map_err(|_| OperationError::NotJsonRpc("a member has the wrong type or repeats"))?;
    if markers(&value) {
        return Err(OperationError::NotJsonRpc(
            "a member name is reserved by serde_json",
        ));
    }
    Ok(value)
}

/// The name a message's `params` give, and what it refers to.
fn named(
    method: &str,
    params: Option<&RawValue>,
) -> Result<Option<(String, NameKind)>, OperationError> {
    if !names_something(method) {
        return Ok(None);
    }
    let params: Params<'_> = object(params, "params must be an object", |p: &Params<'_>| {
        p.raw_marker.is_some() || p.number_marker.is_some()
    })?;
    let (name, kind) = match NameKind::of_method(method) {
        Some(NameKind::Resource) => (params.uri, NameKind::Resource),
        Some(kind) => (params.name, kind),
        None => {
            // completion/complete: only the two reference types MCP defines. Another type
            // (or none) names nothing this layer can check, so it is refused.
            let r: Reference<'_> = object(
                params.reference,
                "completion/complete needs params.ref, an object",
                |r: &Reference<'_>| r.raw_marker.is_some() || r.number_marker.is_some(),
            )?;
            match &*r.kind {
                "ref/prompt" => (r.name, NameKind::Prompt),
                "ref/resource" => (r.uri, NameKind::Resource),
                _ => {
                    return Err(OperationError::NotJsonRpc(
                        "params.ref.type is neither ref/prompt nor ref/resource",
                    ));
                }
            }
        }
    };
    let name = name.ok_or(OperationError::NotJsonRpc("params lacks the name or uri"))?;
    Ok(Some((name.into_owned(), kind)))
}

/// Reads the operations of a JSON-RPC body (a message or a batch). Duplicate keys, a batch
/// element that is not an object, `params` that is not an object for a method that names
/// something, or a missing name are errors: a body this layer cannot read is refused, never
/// passed on unchecked.
///
/// The name is `params.name` or `params.uri` ([`name_field`]); for `completion/complete`, the
/// prompt name or resource URI of `params.ref`. A `completion/complete` whose `ref` is not an
/// object of type `ref/prompt` with a `name` or `ref/resource` with a `uri` (the only two MCP
/// defines) is an error too: what it completes for cannot be checked against a per-prompt or
/// per-resource policy, so it is refused whatever the policy (the server would refuse it too).
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
    let named = named(&method, msg.params)?;
    Ok((
        Some(Operation {
            method: method.into_owned(),
            kind: named.as_ref().map(|(_, kind)| *kind),
            name: named.map(|(name, _)| name),
        }),
        id,
    ))
}

#[doc(hidden)] // Reachable for the fuzz targets; not part of the API (no semver promise).
/// Checks that the routing headers agree with a single-message body: the method, and the name
/// where the headers carry one. `Mcp-Name` must be present for the methods of
/// [`name_in_header`]; for the others it is optional, and checked when present
/// (`completion/complete` has none: [`read_headers`] ignores it).
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
    match &header.name {
        None if name_in_header(&op.method) && op.name.is_some() => {
            Err(OperationError::MissingName(op.method.clone()))
        }
        Some(name) if op.name.as_ref() != Some(name) => Err(OperationError::Mismatch("Mcp-Name")),
        _ => Ok(()),
    }
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
        // Trimmed, so not what a server comparing raw values checks: the body decides.
        assert!(!got.validated_by_server);
        let h = headers(&[
            ("mcp-method", "tools/call"),
            ("mcp-name", "=?base64?d3JpdGVfbm90ZQ==?="),
            ("mcp-protocol-version", "2026-07-28"),
        ]);
        assert!(read_headers(&h).unwrap().unwrap().validated_by_server);
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
            // Not known to make servers check the headers.
            ("2027-01-01", false),
            ("2099-01-01", false),
            // Whitespace HTTP/2 keeps: a server comparing raw values skips its check.
            (" 2026-07-28", false),
            ("2026-07-28\t", false),
            ("2026-07-28,2026-07-28", false),
            ("garbage", false),
        ] {
            let h = headers(&[
                ("mcp-method", "tools/list"),
                ("mcp-protocol-version", version),
            ]);
            assert_eq!(
                read_headers(&h).unwrap().unwrap().validated_by_server,
                trusted,
                "{version:?}"
            );
        }
        let h = headers(&[("mcp-method", "tools/list")]);
        assert!(!read_headers(&h).unwrap().unwrap().validated_by_server);
        assert_eq!(read_headers(&HeaderMap::new()).unwrap(), None);
        // The version appears twice: not trusted (the server may read either).
        let h = headers(&[
            ("mcp-method", "tools/list"),
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-protocol-version", "2026-07-28"),
        ]);
        assert!(!read_headers(&h).unwrap().unwrap().validated_by_server);
        // Routing headers with whitespace around them: read trimmed, but not trusted.
        for (method, name) in [(" tools/call", "echo"), ("tools/call", "echo\t")] {
            let h = headers(&[
                ("mcp-method", method),
                ("mcp-name", name),
                ("mcp-protocol-version", "2026-07-28"),
            ]);
            let got = read_headers(&h).unwrap().unwrap();
            assert_eq!(got.operation, Operation::tool("echo"));
            assert!(!got.validated_by_server, "{method:?} {name:?}");
        }
    }

    #[test]
    fn header_names_are_kept_only_for_methods_that_name_something() {
        for (method, kept) in [
            ("tools/call", true),
            ("resources/subscribe", true),
            ("resources/unsubscribe", true),
            ("completion/complete", false),
            ("tools/list", false),
        ] {
            let h = headers(&[("mcp-method", method), ("mcp-name", "x")]);
            let op = from_headers(&h).unwrap().unwrap();
            assert_eq!(op.name().is_some(), kept, "{method}");
        }
        for method in ["tools/call", "prompts/get", "resources/read"] {
            assert!(name_in_header(method) && names_something(method));
        }
        for method in [
            "resources/subscribe",
            "resources/unsubscribe",
            "completion/complete",
        ] {
            assert!(!name_in_header(method) && names_something(method));
        }
        assert!(!names_something("tools/list"));
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
    fn subscriptions_and_completions_name_their_resource_or_prompt() {
        let one = |body: &str| from_body(body.as_bytes()).unwrap().operations()[0].clone();
        for method in ["resources/subscribe", "resources/unsubscribe"] {
            let op = one(&format!(
                r#"{{"method":"{method}","id":1,"params":{{"uri":"file:///a"}}}}"#
            ));
            assert_eq!(op, Operation::new(method, Some("file:///a")));
            assert_eq!(op.kind(), Some(NameKind::Resource));
        }
        let op = one(
            r#"{"method":"completion/complete","id":1,"params":{"ref":{"type":"ref/prompt","name":"dr\u0061ft"},"argument":{"name":"a","value":""}}}"#,
        );
        assert_eq!(op, Operation::completion(NameKind::Prompt, "draft"));
        let op = one(
            r#"{"method":"completion/complete","params":{"argument":{"name":"a","value":""},"ref":{"uri":"file:///{p}","type":"ref/resource"}}}"#,
        );
        assert_eq!(op, Operation::completion(NameKind::Resource, "file:///{p}"));
        // A prompt and a resource of the same name are different operations.
        assert_ne!(
            Operation::completion(NameKind::Prompt, "x"),
            Operation::completion(NameKind::Resource, "x")
        );
        assert_eq!(Operation::tool("x").kind(), Some(NameKind::Tool));
        assert_eq!(Operation::new("tools/list", None::<String>).kind(), None);
        // Names that cannot be read fail closed.
        for body in [
            r#"{"method":"resources/subscribe"}"#,
            r#"{"method":"resources/subscribe","params":{"name":"file:///a"}}"#,
            r#"{"method":"resources/unsubscribe","params":{"uri":1}}"#,
            r#"{"method":"completion/complete","params":{}}"#,
            r#"{"method":"completion/complete","params":{"ref":"ref/prompt"}}"#,
            r#"{"method":"completion/complete","params":{"ref":{"name":"draft"}}}"#,
            r#"{"method":"completion/complete","params":{"ref":{"type":"ref/tool","name":"x"}}}"#,
            r#"{"method":"completion/complete","params":{"ref":{"type":"ref/prompt","uri":"x"}}}"#,
            r#"{"method":"completion/complete","params":{"ref":{"type":"ref/resource","name":"x"}}}"#,
            r#"{"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"a","name":"b"}}}"#,
            r#"{"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"a","$serde_json::private::RawValue":"{}"}}}"#,
        ] {
            assert!(
                matches!(
                    from_body(body.as_bytes()),
                    Err(OperationError::NotJsonRpc(_))
                ),
                "{body}"
            );
        }
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
        // Mcp-Name is optional where MCP 2026-07-28 does not define it, but checked if sent.
        let body =
            from_body(br#"{"method":"resources/subscribe","params":{"uri":"file:///a"}}"#).unwrap();
        let method = |name: Option<&str>| Operation::new("resources/subscribe", name);
        assert_eq!(check_match(&method(None), &body), Ok(()));
        assert_eq!(check_match(&method(Some("file:///a")), &body), Ok(()));
        assert_eq!(
            check_match(&method(Some("file:///b")), &body),
            Err(OperationError::Mismatch("Mcp-Name"))
        );
        let body = from_body(
            br#"{"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"p"}}}"#,
        )
        .unwrap();
        let header = Operation::new("completion/complete", None::<String>);
        assert_eq!(check_match(&header, &body), Ok(()));
    }
}
