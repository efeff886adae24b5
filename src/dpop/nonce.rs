//! Server nonces (RFC 9449 §8–9): proofs must carry a value this server issued recently.
//!
//! Why: a proof's `iat` is whatever the client's clock (or an attacker who took the key for a
//! moment) says, so a proof made in advance, dated in the future, stays usable for as long as
//! its `iat` is accepted. A nonce issued by the server bounds that: a proof can only be made
//! after the nonce was given out.
//!
//! Why stateless: replicas behind a load balancer must accept each other's nonces without
//! sharing state per client. A nonce is the time bucket it was issued in (60 s long) and a
//! keyed MAC of it, HMAC-SHA256 with a key every replica shares, cut to 128 bits: 8 + 16
//! bytes, 32 Base64url characters. It is accepted in its own bucket and the next, so it lives
//! 60 to 120 s; anything else (another key, another bucket, altered, missing) is refused with
//! `401`, `error="use_dpop_nonce"` on the `DPoP` challenge, a fresh nonce in `DPoP-Nonce` and
//! `Cache-Control: no-store`. A successful answer carries a fresh nonce when the proof's is from
//! the previous bucket, so that a client that keeps making requests never sees that `401`; a
//! nonce of the current bucket is what the server would send anyway, so it sends nothing then
//! (no header and no MAC on the common path). The MACs are compared in constant time.
//!
//! ```
//! # #[cfg(any(feature = "aws-lc-rs", feature = "rust-crypto"))] {
//! use mcp_server_auth::{ResourceUrl, dpop::DpopOptions};
//!
//! let resource = ResourceUrl::parse("https://mcp.example.com/mcp").unwrap();
//! // The shared key: at least 32 random bytes (e.g. `openssl rand -hex 32`).
//! let key = [0x5au8; 32];
//! let options = DpopOptions::builder(&resource).nonce_key(&key).build().unwrap();
//! assert!(options.nonces_required());
//! assert!(DpopOptions::builder(&resource).nonce_key(&key[..16]).build().is_err());
//! # }
//! ```

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use http::HeaderValue;

use super::{ProofError, proof::NonceCheck};
use crate::jwt::base64url;

/// The length of a time bucket, in seconds.
pub(crate) const BUCKET_SECS: u64 = 60;
/// The shortest key accepted, in bytes.
pub(crate) const MIN_KEY_BYTES: usize = 32;
/// The MAC bytes kept.
const TAG: usize = 16;
/// A nonce's bytes: the bucket (big-endian) and the tag.
const RAW: usize = 8 + TAG;
/// A nonce's length in Base64url characters.
const TEXT: usize = RAW * 4 / 3;

/// The domain of the MAC, so that the key could not produce a tag for anything else.
const LABEL: &[u8] = b"mcp-server-auth DPoP-Nonce v1\0";

/// Issues and checks nonces with a shared key.
pub(crate) struct Nonces {
    key: backend::Key,
}

impl std::fmt::Debug for Nonces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Nonces(<key redacted>)")
    }
}

#[cfg(feature = "aws-lc-rs")]
mod backend {
    use aws_lc_rs::hmac;
    pub(super) struct Key(hmac::Key);
    impl Key {
        pub(super) fn new(secret: &[u8]) -> Self {
            Self(hmac::Key::new(hmac::HMAC_SHA256, secret))
        }
        pub(super) fn tag(&self, parts: &[&[u8]]) -> [u8; 32] {
            let mut c = hmac::Context::with_key(&self.0);
            for p in parts {
                c.update(p);
            }
            c.sign().as_ref().try_into().unwrap_or_default()
        }
    }
    pub(super) fn equal(a: &[u8], b: &[u8]) -> bool {
        aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok()
    }
}

#[cfg(all(feature = "rust-crypto", not(feature = "aws-lc-rs")))]
mod backend {
    use hmac::{Hmac, Mac};
    use sha2::Sha256;
    pub(super) struct Key(Hmac<Sha256>);
    impl Key {
        pub(super) fn new(secret: &[u8]) -> Self {
            // HMAC takes keys of any length.
            Self(Hmac::new_from_slice(secret).unwrap_or_else(|_| unreachable!()))
        }
        pub(super) fn tag(&self, parts: &[&[u8]]) -> [u8; 32] {
            let mut c = self.0.clone();
            for p in parts {
                c.update(p);
            }
            c.finalize().into_bytes().into()
        }
    }
    pub(super) fn equal(a: &[u8], b: &[u8]) -> bool {
        // Constant time: every byte is looked at.
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl Nonces {
    /// Nonces keyed by `secret` (the caller checked its length).
    pub(crate) fn new(secret: &[u8]) -> Self {
        Self {
            key: backend::Key::new(secret),
        }
    }

    fn tag(&self, bucket: u64) -> [u8; TAG] {
        let full = self.key.tag(&[LABEL, &bucket.to_be_bytes()]);
        let mut tag = [0u8; TAG];
        tag.copy_from_slice(&full[..TAG]);
        tag
    }

    /// The nonce to give out at `now` (seconds since the epoch).
    pub(crate) fn issue(&self, now: u64) -> HeaderValue {
        let bucket = now / BUCKET_SECS;
        let mut raw = [0u8; RAW];
        raw[..8].copy_from_slice(&bucket.to_be_bytes());
        raw[8..].copy_from_slice(&self.tag(bucket));
        let mut text = [0u8; TEXT];
        // 24 bytes are always 32 characters unpadded.
        let n = URL_SAFE_NO_PAD.encode_slice(raw, &mut text).unwrap_or(0);
        // Base64url text is a valid header value.
        HeaderValue::from_bytes(&text[..n]).unwrap_or_else(|_| HeaderValue::from_static(""))
    }
}

impl NonceCheck for Nonces {
    /// Accepts a nonce of the current or the previous bucket; `Ok(true)` for the previous one
    /// (a fresh nonce should go with the answer).
    fn check(&self, nonce: Option<&str>, now: u64) -> Result<bool, ProofError> {
        let nonce = nonce.ok_or(ProofError::Nonce)?;
        let mut raw = [0u8; RAW];
        if nonce.len() != TEXT || base64url::decode(nonce.as_bytes(), &mut raw) != Some(RAW) {
            return Err(ProofError::Nonce);
        }
        let bucket = u64::from_be_bytes(raw[..8].try_into().unwrap_or_default());
        let current = now / BUCKET_SECS;
        if bucket != current && bucket.checked_add(1) != Some(current) {
            return Err(ProofError::Nonce);
        }
        if !backend::equal(&raw[8..], &self.tag(bucket)) {
            return Err(ProofError::Nonce);
        }
        Ok(bucket != current)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000;

    #[test]
    fn a_nonce_lives_in_its_bucket_and_the_next_only() {
        let n = Nonces::new(&[7; 32]);
        let issued = n.issue(NOW);
        let text = issued.to_str().unwrap();
        assert_eq!(text.len(), TEXT);
        assert_eq!(n.check(Some(text), NOW), Ok(false));
        assert_eq!(n.check(Some(text), NOW + BUCKET_SECS), Ok(true));
        assert_eq!(
            n.check(Some(text), NOW + 2 * BUCKET_SECS),
            Err(ProofError::Nonce)
        );
        assert_eq!(
            n.check(Some(text), NOW - BUCKET_SECS),
            Err(ProofError::Nonce)
        );
        assert_eq!(n.check(None, NOW), Err(ProofError::Nonce));
    }

    #[test]
    fn a_nonce_of_another_key_or_altered_is_refused_and_one_of_the_same_key_is_not() {
        let (a, b) = (Nonces::new(&[7; 32]), Nonces::new(&[8; 32]));
        let issued = a.issue(NOW);
        let text = issued.to_str().unwrap();
        assert_eq!(b.check(Some(text), NOW), Err(ProofError::Nonce));
        assert_eq!(Nonces::new(&[7; 32]).check(Some(text), NOW), Ok(false));
        let mut altered = text.as_bytes().to_vec();
        altered[TEXT - 2] = if altered[TEXT - 2] == b'A' {
            b'B'
        } else {
            b'A'
        };
        let altered = String::from_utf8(altered).unwrap();
        assert_eq!(a.check(Some(&altered), NOW), Err(ProofError::Nonce));
        assert_eq!(a.check(Some(&text[1..]), NOW), Err(ProofError::Nonce));
    }
}
