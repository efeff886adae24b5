//! What a refusal says about its connection: `Connection: close` when the request's body is
//! left unread.
//!
//! Every refusal of this crate is answered without reading the request's body. On HTTP/1.x the
//! unread bytes sit in the connection ahead of the next request, so the server must either drain
//! them or close the connection, and a response that is followed by a close must say so
//! (`Connection: close`, RFC 9112 §9.6). hyper drains a body that has already arrived and closes
//! the connection otherwise, but it can only tell once the request is dropped, and axum and
//! hyper-util call the service when the response future is first polled: the refusal is written
//! first, as if the connection stayed open, and the close comes after. A client that sends its
//! next request on that connection at once gets no answer at all. The Python MCP SDK does just
//! that with the metadata request it sends after a `401`, and fails with "Server disconnected".
//!
//! So the refusal of an HTTP/1.x request with a body says `Connection: close`, and the client
//! sends its next request on a new connection. A request without a body (a `GET`, or
//! `Content-Length: 0`) keeps its connection. HTTP/2 and HTTP/3 need nothing: the stream ends on
//! its own, and the `Connection` field is not allowed there.

use http::{
    HeaderMap, HeaderValue, Response, Version,
    header::{CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING},
};

/// `res`, marked as the last response on its connection if the request it refuses (of `version`,
/// with `headers`) has a body that is left unread.
pub(crate) fn close_if_body_unread<B>(
    mut res: Response<B>,
    version: Version,
    headers: &HeaderMap,
) -> Response<B> {
    if has_body(version, headers) {
        res.headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    res
}

/// Whether an HTTP/1.x request has a body: `Transfer-Encoding`, or a `Content-Length` other than
/// `0` (RFC 9112 §6.3). Anything unusual counts as a body: closing is always safe.
fn has_body(version: Version, headers: &HeaderMap) -> bool {
    matches!(
        version,
        Version::HTTP_09 | Version::HTTP_10 | Version::HTTP_11
    ) && (headers.contains_key(TRANSFER_ENCODING)
        || headers
            .get_all(CONTENT_LENGTH)
            .iter()
            .any(|v| v.as_bytes() != b"0"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn closes(version: Version, fields: &[(&'static str, &'static str)]) -> bool {
        let mut headers = HeaderMap::new();
        for (name, value) in fields {
            headers.append(*name, HeaderValue::from_static(value));
        }
        let res = close_if_body_unread(Response::new(()), version, &headers);
        match res.headers().get(CONNECTION) {
            Some(v) => {
                assert_eq!(v, "close");
                true
            }
            None => false,
        }
    }

    #[test]
    fn a_body_left_unread_closes_an_http1_connection() {
        for version in [Version::HTTP_10, Version::HTTP_11] {
            assert!(closes(version, &[("content-length", "57")]));
            assert!(closes(version, &[("transfer-encoding", "chunked")]));
            // Not a length we can trust: closing is the safe answer.
            assert!(closes(version, &[("content-length", "00")]));
            assert!(closes(
                version,
                &[("content-length", "0"), ("content-length", "5")]
            ));
        }
    }

    #[test]
    fn no_body_keeps_the_connection() {
        assert!(!closes(Version::HTTP_11, &[]));
        assert!(!closes(Version::HTTP_11, &[("content-length", "0")]));
        assert!(!closes(
            Version::HTTP_10,
            &[("content-type", "application/json")]
        ));
    }

    #[test]
    fn http2_and_http3_are_left_alone() {
        for version in [Version::HTTP_2, Version::HTTP_3] {
            assert!(!closes(version, &[("content-length", "57")]));
            assert!(!closes(version, &[("transfer-encoding", "chunked")]));
        }
    }
}
