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
