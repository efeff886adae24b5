//! The proof-key cache: a client's repeated proofs skip the parsing of their `jwk`.
//!
//! A client signs every proof with the same key and sends the same `jwk` with each. Reading it
//! ([`super::jwk::read`]) decodes and validates the public key (for EC, a point on the curve)
//! and hashes its RFC 7638 thumbprint: a fair share of a proof's cost beside the signature.
//! The result depends on nothing but the `jwk` text and the `alg`, so it is kept: a small
//! direct-mapped table of [`SLOTS`] entries, indexed by a keyed hash (SipHash-1-3, random keys)
//! of `alg` and the text, each entry holding the exact text and `alg` it was read from and
//! compared in full before use. So a hit is exactly the key a fresh read would give; a
//! collision or an eviction only costs a fresh read. Only keys that passed every check of
//! [`super::jwk::read`] are kept, so a refused `jwk` is refused again each time. The memory is
//! bounded: [`SLOTS`] keys, each at most the size of a `DPoP` header.
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

use std::{
    hash::{BuildHasher, Hasher},
    sync::{Arc, Mutex},
};

use jsonwebtoken::Algorithm;

use super::{ProofError, jwk};

/// The number of keys kept.
pub(crate) const SLOTS: usize = 256;

/// A key read once: the text and `alg` it came from, and the key.
struct Entry {
    alg: Algorithm,
    text: Box<str>,
    key: jwk::ProofKey,
}

/// The cache of proof keys.
pub(crate) struct KeyCache {
    hasher: std::collections::hash_map::RandomState,
    slots: Box<[Mutex<Option<Arc<Entry>>>]>,
}

/// A proof key, from the cache or read now.
pub(crate) struct CachedKey(Arc<Entry>);

impl std::ops::Deref for CachedKey {
    type Target = jwk::ProofKey;
    fn deref(&self) -> &jwk::ProofKey {
        &self.0.key
    }
}

impl KeyCache {
    pub(crate) fn new() -> Self {
        Self {
            hasher: std::collections::hash_map::RandomState::new(),
            slots: (0..SLOTS).map(|_| Mutex::new(None)).collect(),
        }
    }

    fn slot(&self, text: &str, alg: Algorithm) -> &Mutex<Option<Arc<Entry>>> {
        let mut h = self.hasher.build_hasher();
        h.write(super::name(alg).as_bytes());
        h.write_u8(0);
        h.write(text.as_bytes());
        // SLOTS is a power of two.
        &self.slots[(h.finish() as usize) & (SLOTS - 1)]
    }

    /// The key of the `jwk` object `text` for `alg`: the one read before from the same text
    /// and `alg`, else read now (and kept if it is acceptable).
    pub(crate) fn get(&self, text: &str, alg: Algorithm) -> Result<CachedKey, ProofError> {
        let slot = self.slot(text, alg);
        let found = slot.lock().ok().and_then(|s| s.clone());
        if let Some(entry) = found
            && entry.alg == alg
            && *entry.text == *text
        {
            return Ok(CachedKey(entry));
        }
        let entry = Arc::new(Entry {
            alg,
            text: text.into(),
            key: jwk::read(text, alg)?,
        });
        if let Ok(mut s) = slot.lock() {
            *s = Some(entry.clone());
        }
        Ok(CachedKey(entry))
    }
}

#[cfg(test)]
mod tests {
    use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};

    use super::*;

    fn ec(x: u8) -> String {
        let c = URL_SAFE_NO_PAD.encode([x; 32]);
        format!(r#"{{"kty":"EC","crv":"P-256","x":"{c}","y":"{c}"}}"#)
    }

    #[test]
    fn a_hit_is_the_key_of_the_same_text_and_alg_and_refusals_are_not_kept() {
        let cache = KeyCache::new();
        let a = cache.get(&ec(1), Algorithm::ES256).unwrap();
        let again = cache.get(&ec(1), Algorithm::ES256).unwrap();
        assert!(Arc::ptr_eq(&a.0, &again.0));
        assert_eq!(a.jkt, again.jkt);
        let b = cache.get(&ec(2), Algorithm::ES256).unwrap();
        assert!(a.jkt != b.jkt);
        // The same text for another alg is read (and refused) for that alg.
        assert_eq!(
            cache.get(&ec(1), Algorithm::ES384).err(),
            Some(ProofError::KeyMismatch)
        );
        let private = ec(1).replace('}', r#","d":"AA"}"#);
        for _ in 0..2 {
            assert_eq!(
                cache.get(&private, Algorithm::ES256).err(),
                Some(ProofError::PrivateKey)
            );
        }
    }
}
