//! The `ath` check (RFC 9449 §4.3 check 12), with a cache of the tokens already hashed.
//!
//! A proof's `ath` is the SHA-256 of the access token it goes with. A client sends the same
//! token with many proofs, and hashing it is, after the signature, the largest cost of a proof
//! (a token of a few hundred bytes is several SHA-256 blocks; issuers' tokens are often over a
//! kilobyte). So the hashes of tokens recently checked are kept: a small direct-mapped table of
//! [`SLOTS`] entries, each holding the 128-bit keyed tag of a token ([`crate::secret`]: SipHash
//! under a random key, the token itself is not kept) and its SHA-256, indexed by the tag. A
//! token whose tag is in its slot with the proof's `ath` needs no hash; anything else (a token
//! not seen, a collision, an `ath` that differs) is hashed and compared as without the cache,
//! and a match is kept. Only a true `SHA-256(token) = ath` is ever kept, so the cache can only
//! confirm what a hash would: two tokens with one tag would take an unknown 128-bit keyed
//! function to collide, the same bet the token caches make. The memory is fixed: [`SLOTS`]
//! entries of 48 bytes.
//!
//! ```
//! # #[cfg(any(feature = "aws-lc-rs", feature = "rust-crypto"))] {
//! // The cache is internal: a Dpop verifier has one, shared by its clones.
//! use mcp_server_auth::{ResourceUrl, dpop::{Dpop, DpopOptions}};
//! # use mcp_server_auth::bearer::StaticBearer;
//! # let tokens = StaticBearer::new([("a", "c2VjcmV0LXRva2VuLWZvci1sYXB0b3A")]).unwrap();
//! let resource = ResourceUrl::parse("https://mcp.example.com/mcp").unwrap();
//! let dpop = Dpop::new(tokens, DpopOptions::builder(&resource).build().unwrap());
//! # let _ = dpop;
//! # }
//! ```

use std::sync::Mutex;

use super::thumbprint::Sha256;
use crate::secret::{SecretTag, TagKey};

/// The number of tokens whose hash is kept.
pub(crate) const SLOTS: usize = 256;

/// A token checked before: its tag and its SHA-256.
type Entry = (SecretTag, [u8; 32]);

/// The hashes of recently checked tokens.
pub(crate) struct AthCache {
    key: TagKey,
    slots: Box<[Mutex<Option<Entry>>]>,
}

impl AthCache {
    pub(crate) fn new() -> Self {
        Self {
            key: TagKey::random(),
            slots: (0..SLOTS).map(|_| Mutex::new(None)).collect(),
        }
    }

    /// Whether `ath` is the SHA-256 of `token`.
    pub(crate) fn matches(&self, token: &str, ath: &[u8; 32]) -> bool {
        let tag = self.key.tag(token.as_bytes());
        // SLOTS is a power of two.
        let slot = &self.slots[(tag.low() as usize) & (SLOTS - 1)];
        if let Ok(s) = slot.lock()
            && let Some((known, hash)) = &*s
            && *known == tag
            && hash == ath
        {
            return true;
        }
        let hash = Sha256::digest(token.as_bytes());
        if hash != *ath {
            return false;
        }
        if let Ok(mut s) = slot.lock() {
            *s = Some((tag, hash));
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_hash_of_the_token_matches_with_or_without_a_kept_entry() {
        let cache = AthCache::new();
        let (token, other) = ("token-a", "token-b");
        let hash = Sha256::digest(token.as_bytes());
        let mut wrong = hash;
        wrong[31] ^= 1;
        for _ in 0..2 {
            // The first round hashes and keeps; the second finds the entry.
            assert!(!cache.matches(token, &wrong));
            assert!(cache.matches(token, &hash));
            assert!(!cache.matches(other, &hash));
            assert!(!cache.matches(token, &wrong));
        }
        assert!(cache.matches(other, &Sha256::digest(other.as_bytes())));
        assert!(cache.matches(token, &hash));
    }
}
