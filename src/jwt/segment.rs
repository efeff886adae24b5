//! Reading a compact JWS's segments (RFC 7515 §7.1) without building what the check does not
//! need.
//!
//! Why not `jsonwebtoken::decode_header` and a `serde_json::Map` of the claims: for an
//! uncached token those were most of the work besides the signature (a heap buffer per
//! segment, a `String` per header parameter, a tree node and a `String` per claim, all freed
//! again). Here a segment is Base64url-decoded into a buffer on the stack ([`Scratch`]), its
//! JSON is read in place ([`super::json`]), and the claims are kept as the verified JSON text,
//! which [`AuthInfo::claims`](crate::AuthInfo::claims) parses only if it is asked for.
//!
//! ```
//! # #[cfg(any(feature = "aws-lc-rs", feature = "rust-crypto"))] {
//! use mcp_server_auth::jwt::{Algorithm, Issuer, JwtVerifier, KeySet};
//! use mcp_server_auth::ResourceUrl;
//! # let keys = KeySet::new().add_hmac_secret(Some("k"), Algorithm::HS256,
//! #     b"0123456789abcdef0123456789abcdef").unwrap();
//! let verifier = JwtVerifier::builder(ResourceUrl::parse("https://mcp.example.com/mcp").unwrap())
//!     .issuer(Issuer::with_keys("https://auth.example.com", keys))
//!     .build()
//!     .unwrap();
//! // A segment that is not Base64url, or not a JSON object once decoded, is a malformed token.
//! let answer = futures_executor_free_poll(verifier.verify_token("e30.%%%.e30"));
//! # fn futures_executor_free_poll<F: std::future::Future>(f: F) -> F::Output {
//! #     let mut f = std::pin::pin!(f);
//! #     let waker = std::task::Waker::noop();
//! #     match f.as_mut().poll(&mut std::task::Context::from_waker(waker)) {
//! #         std::task::Poll::Ready(v) => v,
//! #         std::task::Poll::Pending => unreachable!("keys at hand never wait"),
//! #     }
//! # }
//! assert!(answer.is_err());
//! # }
//! ```

use super::base64url;

/// The three segments of a compact JWS (RFC 7515 §7.1), split at its first and its last dot.
///
/// Only the short ends are scanned (the header and the signature): a payload holding another
/// dot (a token of more than three segments) is refused when it is decoded, since `.` is not
/// Base64url, and it is decoded before the signature is checked.
#[derive(Debug, Clone, Copy)]
pub(super) struct Segments<'a> {
    pub(super) header: &'a str,
    pub(super) payload: &'a str,
    pub(super) signature: &'a str,
    /// The signing input: header and payload with the dot between them.
    pub(super) message: &'a str,
}

impl<'a> Segments<'a> {
    /// `None` if `token` has fewer than two dots.
    pub(super) fn split(token: &'a str) -> Option<Self> {
        let first = token.find('.')?;
        let last = token.rfind('.')?;
        (first < last).then(|| Self {
            header: &token[..first],
            payload: &token[first + 1..last],
            signature: &token[last + 1..],
            message: &token[..last],
        })
    }
}

/// `segment` Base64url-decoded (no padding, canonical trailing bits) into a string of its own,
/// checked to be UTF-8; `None` if it is not. For the claims of a token that may be accepted: the
/// string becomes the identity's buffer (see [`crate::AuthInfo`]), so that the claims are
/// decoded once and copied never.
#[allow(clippy::slow_vector_initialization)] // measured: see below
pub(super) fn decode_string(segment: &str) -> Option<String> {
    let len = base64url::decoded_len(segment.len())?;
    // Not `vec![0; len]`: that asks the allocator for zeroed memory (`calloc`), which is
    // slower for a short buffer than allocating and zeroing it.
    let mut bytes = Vec::with_capacity(len);
    bytes.resize(len, 0);
    base64url::decode(segment.as_bytes(), &mut bytes)?;
    String::from_utf8(bytes).ok()
}

/// A buffer for one decoded segment: `N` bytes on the stack, the heap only beyond them.
pub(super) struct Scratch<const N: usize> {
    stack: [u8; N],
    heap: Vec<u8>,
}

impl<const N: usize> Scratch<N> {
    pub(super) fn new() -> Self {
        Self {
            stack: [0; N],
            heap: Vec::new(),
        }
    }

    /// `segment` Base64url-decoded (no padding, canonical trailing bits) and checked to be UTF-8;
    /// `None` if it is not.
    pub(super) fn decode_str(&mut self, segment: &str) -> Option<&str> {
        let bytes = if base64url::decoded_len(segment.len())? <= N {
            let len = base64url::decode(segment.as_bytes(), &mut self.stack)?;
            &self.stack[..len]
        } else {
            self.heap = vec![0; segment.len()];
            let len = base64url::decode(segment.as_bytes(), &mut self.heap)?;
            &self.heap[..len]
        };
        std::str::from_utf8(bytes).ok()
    }
}

#[cfg(test)]
mod tests {
    use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};

    use super::*;

    #[test]
    fn a_token_splits_at_its_first_and_last_dot_and_extra_dots_stay_in_the_payload() {
        let s = Segments::split("h.p.s").unwrap();
        assert_eq!(
            (s.header, s.payload, s.signature, s.message),
            ("h", "p", "s", "h.p")
        );
        let s = Segments::split("h.p.q.s").unwrap();
        assert_eq!(s.payload, "p.q");
        assert!(Scratch::<64>::new().decode_str(s.payload).is_none());
        assert!(Segments::split("h.s").is_none() && Segments::split("hs").is_none());
        assert_eq!(Segments::split("..").unwrap().payload, "");
    }

    #[test]
    fn segments_decode_on_the_stack_or_the_heap_alike() {
        let json = format!("{{\"a\":\"{}\"}}", "x".repeat(600));
        let segment = URL_SAFE_NO_PAD.encode(&json);
        assert_eq!(
            Scratch::<64>::new().decode_str(&segment),
            Some(json.as_str())
        );
        assert_eq!(
            Scratch::<2048>::new().decode_str(&segment),
            Some(json.as_str())
        );
    }

    #[test]
    fn padding_non_base64url_and_non_utf8_are_refused() {
        assert_eq!(Scratch::<64>::new().decode_str("e30="), None);
        assert_eq!(Scratch::<64>::new().decode_str("e3+"), None);
        // Non-canonical trailing bits ("e31" decodes to "{}" with stray bits).
        assert_eq!(Scratch::<64>::new().decode_str("e31"), None);
        assert_eq!(
            Scratch::<64>::new().decode_str(&URL_SAFE_NO_PAD.encode([0xff])),
            None
        );
        assert_eq!(Scratch::<64>::new().decode_str("e30"), Some("{}"));
    }
}
