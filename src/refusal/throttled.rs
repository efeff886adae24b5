//! `429 Too Many Requests`: the refusal of the [`throttle`](crate::throttle) layer.
//!
//! RFC 6585 §4: the client "has sent too many requests in a given amount of time", and the
//! response "MAY include a Retry-After header indicating how long to wait" (RFC 9110 §10.2.3:
//! a number of seconds). It says nothing about the credentials it was sent with, which were not
//! checked: no `WWW-Authenticate` (it is not a challenge: new credentials change nothing until
//! the window lets the client through), and the same fixed body whatever they were. A gRPC
//! call gets `grpc-status` 8 (resource exhausted), which gRPC clients do not retry on their
//! own, with `Retry-After` as metadata.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header::RETRY_AFTER};

use super::{ResponseBody, connection, fixed, grpc};

/// The body: what happened and what to do, never why the credentials were wrong.
pub(crate) const BODY: &[u8] = br#"{"error":"too_many_requests","error_description":"Too many failed authentication attempts from this address: wait the number of seconds in Retry-After, then try again with valid credentials"}"#;

/// The `429` refusal of `req`, telling the client to come back in `retry_after` (whole seconds,
/// rounded up, at least 1).
pub(crate) fn refusal<B, R>(retry_after: Duration, req: &Request<R>) -> Response<ResponseBody<B>> {
    let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    let retry = HeaderValue::from(secs.max(1));
    let res = if grpc::is_grpc(req.version(), req.headers()) {
        let mut headers = HeaderMap::with_capacity(5);
        headers.insert(RETRY_AFTER, retry);
        grpc::refusal(StatusCode::TOO_MANY_REQUESTS, headers)
    } else {
        let mut res = fixed(StatusCode::TOO_MANY_REQUESTS, Bytes::from_static(BODY));
        res.headers_mut().insert(RETRY_AFTER, retry);
        res
    };
    connection::close_if_body_unread(res, req.version(), req.headers())
}

#[cfg(test)]
mod tests {
    use http::{
        Version,
        header::{CACHE_CONTROL, CONNECTION, CONTENT_TYPE, WWW_AUTHENTICATE},
    };

    use super::*;

    #[test]
    fn a_throttled_request_gets_429_with_retry_after_and_no_challenge() {
        let req = Request::post("/mcp")
            .header("content-length", "5")
            .body(())
            .unwrap();
        let res = refusal::<(), _>(Duration::from_millis(41_200), &req);
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(res.headers()[RETRY_AFTER], "42");
        assert_eq!(res.headers()[CACHE_CONTROL], "no-store");
        assert_eq!(res.headers()[CONTENT_TYPE], "application/json");
        assert_eq!(res.headers()[CONNECTION], "close");
        assert!(res.headers().get(WWW_AUTHENTICATE).is_none());
        let body: serde_json::Value = serde_json::from_slice(BODY).unwrap();
        assert_eq!(body["error"], "too_many_requests");

        let res = refusal::<(), _>(Duration::ZERO, &Request::get("/mcp").body(()).unwrap());
        assert_eq!(res.headers()[RETRY_AFTER], "1");
        assert!(res.headers().get(CONNECTION).is_none());
    }

    #[test]
    fn a_throttled_grpc_call_gets_resource_exhausted() {
        let req = Request::post("/pkg.Svc/Call")
            .version(Version::HTTP_2)
            .header("content-type", "application/grpc")
            .body(())
            .unwrap();
        let res = refusal::<(), _>(Duration::from_secs(7), &req);
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()["grpc-status"], "8");
        assert_eq!(res.headers()[RETRY_AFTER], "7");
        assert_eq!(res.headers()[CACHE_CONTROL], "no-store");
    }
}
