//! Refusal out: every answer this crate gives instead of calling the inner service.
//!
//! Every layer refuses here, so that every refusal follows the same rules:
//!
//! | refusal | from | built by |
//! |---|---|---|
//! | `401` / `400` / `403` / `503` with `WWW-Authenticate` (RFC 6750 §3, RFC 9728 §5.1) | auth, `require_scopes`, MCP operation scopes | [`challenge`] |
//! | the same as a gRPC status, for gRPC calls over HTTP/2 | auth, `require_scopes` | [`grpc`] |
//! | `403` for an `Origin` not allowed (JSON-RPC `-32600`, no challenge) | [`OriginLayer`](crate::OriginLayer) | `json_rpc` |
//! | `400` / `413` for an MCP request that cannot be read (JSON-RPC errors) | [`McpScopeLayer`](crate::mcp::McpScopeLayer) | `json_rpc` |
//! | `404` for a session that is not the caller's | [`SessionBindingLayer`](crate::SessionBindingLayer) | `json_rpc` |
//! | `429` + `Retry-After` after too many failed authentications (RFC 6585 §4) | [`ThrottleLayer`](crate::throttle::ThrottleLayer) | `throttled` |
//!
//! The rules, whatever the refusal:
//! - `Cache-Control: no-store`: a refusal depends on credentials no cache can see;
//! - a JSON body, small and fixed, that names no secret and no validation internals;
//! - `Connection: close` when an HTTP/1.x request's body is left unread (the `connection` module says why);
//! - the same [`ResponseFuture`] and [`ResponseBody`] for every layer ([`future`]).
//!
//! ```
//! use http::StatusCode;
//! use mcp_server_auth::refusal::challenge::Challenge;
//!
//! let c = Challenge::bearer().param("realm", "mcp").param("error", "invalid_token");
//! assert_eq!(c.to_string(), r#"Bearer realm="mcp", error="invalid_token""#);
//! # let _ = StatusCode::UNAUTHORIZED;
//! ```

pub(crate) mod body;
pub mod challenge;
pub(crate) mod connection;
pub mod future;
pub mod grpc;
pub(crate) mod throttled;

use bytes::Bytes;
use http::{
    HeaderValue, Response, StatusCode,
    header::{CACHE_CONTROL, CONTENT_TYPE},
};
use serde_json::value::RawValue;

pub use body::ResponseBody;
pub use future::ResponseFuture;

pub(crate) const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");
pub(crate) const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// A refusal with a fixed JSON body: `status`, `Content-Type: application/json`,
/// `Cache-Control: no-store`.
pub(crate) fn fixed<B>(status: StatusCode, body: Bytes) -> Response<ResponseBody<B>> {
    let mut res = Response::new(ResponseBody::full(body));
    *res.status_mut() = status;
    res.headers_mut().insert(CONTENT_TYPE, JSON);
    res.headers_mut().insert(CACHE_CONTROL, NO_STORE);
    res
}

/// A JSON-RPC error response (JSON-RPC 2.0 §5.1) as a refusal: `{"jsonrpc":"2.0","id":…,
/// "error":{"code":…,"message":…}}`, with the request's `id` when it is known.
pub(crate) fn json_rpc<B>(
    status: StatusCode,
    code: i32,
    message: &str,
    id: Option<&RawValue>,
) -> Response<ResponseBody<B>> {
    #[derive(serde::Serialize)]
    struct Error<'a> {
        code: i32,
        message: &'a str,
    }
    #[derive(serde::Serialize)]
    struct Body<'a> {
        jsonrpc: &'static str,
        id: Option<&'a RawValue>,
        error: Error<'a>,
    }
    let body = serde_json::to_vec(&Body {
        jsonrpc: "2.0",
        id,
        error: Error { code, message },
    })
    .unwrap_or_default();
    fixed(status, Bytes::from(body))
}
