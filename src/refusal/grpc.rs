//! gRPC refusals: the same refusal as a gRPC status.
//!
//! A gRPC call gets HTTP `200` and no body (a "trailers-only" response), `grpc-status` 16
//! (unauthenticated; also for malformed credentials), 7 (permission denied), 14
//! (unavailable) or 8 (resource exhausted, for the throttle's `429`), `grpc-message`, and the `WWW-Authenticate` and `Retry-After` fields of the
//! HTTP refusal as metadata, with `Cache-Control: no-store` too. Only a request over HTTP/2 or
//! later whose `Content-Type` is `application/grpc…` is a gRPC call: gRPC runs over HTTP/2 only
//! ("gRPC over HTTP2", PROTOCOL-HTTP2.md), and the `200` of a gRPC refusal reads as success to
//! anything that does not speak gRPC. Over HTTP/1.x, which proxies, monitors, caches and any
//! client can use with any `Content-Type`, a refusal is always an HTTP status.
//!
//! ```
//! use http::{HeaderMap, HeaderValue, Version, header::CONTENT_TYPE};
//! # use mcp_server_auth::refusal::grpc;
//! let mut headers = HeaderMap::new();
//! headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc+proto"));
//! assert!(grpc::is_grpc(Version::HTTP_2, &headers));
//! assert!(!grpc::is_grpc(Version::HTTP_11, &headers));
//! ```

use http::{
    HeaderMap, HeaderValue, Response, StatusCode, Version,
    header::{CACHE_CONTROL, CONTENT_TYPE},
};

use super::{NO_STORE, body::ResponseBody};

/// `grpc-status` of a refusal of the credentials: unauthenticated.
const UNAUTHENTICATED: &str = "16";

/// A gRPC refusal: HTTP 200, trailers-only, `grpc-status` 16 (unauthenticated), 7 (permission
/// denied), 14 (unavailable) or 8 (resource exhausted), keeping `www-authenticate` as metadata. `no-store` as every
/// refusal: a `200` is what a cache would keep.
pub(crate) fn refusal<B>(status: StatusCode, mut headers: HeaderMap) -> Response<ResponseBody<B>> {
    let (code, message) = match status {
        StatusCode::FORBIDDEN => ("7", "insufficient scope"),
        StatusCode::SERVICE_UNAVAILABLE => ("14", "authentication temporarily unavailable"),
        // Not 14 (unavailable), which gRPC clients may retry at once: RESOURCE_EXHAUSTED.
        StatusCode::TOO_MANY_REQUESTS => ("8", "too many failed authentication attempts"),
        StatusCode::BAD_REQUEST => (UNAUTHENTICATED, "malformed credentials"),
        _ => (UNAUTHENTICATED, "authentication required"),
    };
    headers.insert(CACHE_CONTROL, NO_STORE);
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    headers.insert("grpc-status", HeaderValue::from_static(code));
    headers.insert("grpc-message", HeaderValue::from_static(message));
    let mut res = Response::new(ResponseBody::empty());
    *res.headers_mut() = headers;
    res
}

/// Whether `res`, the answer to a gRPC call, is a refusal of the credentials: the HTTP `200`
/// with `grpc-status` unauthenticated that [`refusal`] builds for a `401` (or a `400`).
pub(crate) fn is_unauthenticated<B>(res: &Response<B>) -> bool {
    res.status() == StatusCode::OK
        && res
            .headers()
            .get("grpc-status")
            .is_some_and(|v| v.as_bytes() == UNAUTHENTICATED.as_bytes())
}

/// Whether a request is a gRPC call: HTTP/2 or later, with `content-type: application/grpc…`.
/// An HTTP/1.x request is never one, whatever its content type (the module documentation says
/// why).
#[inline]
pub fn is_grpc(version: Version, headers: &HeaderMap) -> bool {
    version >= Version::HTTP_2
        && headers
            .get(CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}
