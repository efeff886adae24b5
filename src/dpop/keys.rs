//! The proof-header cache: a client's repeated proofs skip the reading of their header.
//!
//! A client signs every proof with the same key and sends the same protected header with each
//! (`typ`, `alg` and `jwk`; what changes from proof to proof is in the payload), so the first
//! part of its proofs is the same text every time. Reading it (Base64url, JSON, checks 2 to 5 of
//! [`super::proof`], then [`super::jwk::read`], which decodes and validates the public key, for
//! EC a point on the curve, and hashes its RFC 7638 thumbprint) is a fair share of a proof's cost
//! beside the signature. The result depends on nothing but that text (and the allow-list, fixed
//! for a verifier; a hit is checked against it all the same), so it is kept: a small
//! direct-mapped table of [`SLOTS`] entries, indexed by a seeded hash of the text (a folded
//! multiply, as in foldhash: anyone can fill the table with headers of their own keys anyway,
//! so resisting chosen collisions would buy nothing), each entry holding the exact text it was
//! read from, compared in full before use. So a hit is exactly the key a fresh read would give;
//! a collision or an eviction only costs a fresh read. Only headers that passed every check are kept, so a refused header is read, and
//! refused, again each time. The memory is bounded: [`SLOTS`] headers, each at most the size of a
//! `DPoP` header.
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

use std::sync::{Arc, Mutex};

use jsonwebtoken::Algorithm;

use super::{ProofError, jwk};

/// The number of headers kept.
pub(crate) const SLOTS: usize = 256;

/// A header read once: its text (Base64url, as sent), its `alg`, and its key.
struct Entry {
    header: Box<str>,
    alg: Algorithm,
    key: jwk::ProofKey,
}

/// The cache of proof headers.
pub(crate) struct KeyCache {
    /// The seed of the slot hash.
    seed: [u64; 2],
    slots: Box<[Mutex<Option<Arc<Entry>>>]>,
}

/// The product of `a` and `b`, its halves folded together.
fn fold(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
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
        let mut seed = [0u8; 16];
        // Without randomness the slots are still spread; only who can predict them changes.
        let _ = getrandom::fill(&mut seed);
        let word =
            |i: usize| u64::from_le_bytes(seed[8 * i..8 * i + 8].try_into().unwrap_or_default());
        Self {
            seed: [word(0), word(1) | 1],
            slots: (0..SLOTS).map(|_| Mutex::new(None)).collect(),
        }
    }

    fn slot(&self, header: &str) -> &Mutex<Option<Arc<Entry>>> {
        let [s0, s1] = self.seed;
        let bytes = header.as_bytes();
        let mut h = s0 ^ bytes.len() as u64;
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            h = fold(h ^ u64::from_le_bytes(w.try_into().unwrap_or_default()), s1);
        }
        let mut tail = [0u8; 8];
        tail[..words.remainder().len()].copy_from_slice(words.remainder());
        h = fold(h ^ u64::from_le_bytes(tail), s1);
        // The high bits mix the most; SLOTS is a power of two.
        &self.slots[(fold(h, s0 | 1) >> 56) as usize & (SLOTS - 1)]
    }

    /// The key of the proof header `header` (its first part, as sent), if that exact header
    /// passed every check before and its `alg` is in `algorithms`.
    pub(crate) fn find(&self, header: &str, algorithms: &[Algorithm]) -> Option<CachedKey> {
        let found = self.slot(header).lock().ok().and_then(|s| s.clone())?;
        (*found.header == *header && algorithms.contains(&found.alg)).then_some(CachedKey(found))
    }

    /// Reads the `jwk` object `jwk` for `alg`, from the header `header` that passed every other
    /// check; keeps it if it is acceptable.
    pub(crate) fn read(
        &self,
        header: &str,
        jwk: &str,
        alg: Algorithm,
    ) -> Result<CachedKey, ProofError> {
        let entry = Arc::new(Entry {
            header: header.into(),
            alg,
            key: jwk::read(jwk, alg)?,
        });
        if let Ok(mut s) = self.slot(header).lock() {
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

    const ES256: &[Algorithm] = &[Algorithm::ES256];

    #[test]
    fn a_hit_is_the_key_of_the_same_header_and_refusals_are_not_kept() {
        let cache = KeyCache::new();
        assert!(cache.find("h1", ES256).is_none());
        let a = cache.read("h1", &ec(1), Algorithm::ES256).unwrap();
        let again = cache.find("h1", ES256).unwrap();
        assert!(Arc::ptr_eq(&a.0, &again.0));
        assert_eq!(a.jkt, again.jkt);
        // Another header is another entry, found only by its own exact text.
        let b = cache.read("h2", &ec(2), Algorithm::ES256).unwrap();
        assert!(a.jkt != b.jkt);
        assert!(cache.find("h", ES256).is_none());
        assert!(cache.find("h1 ", ES256).is_none());
        // A header whose alg is no longer allowed is not a hit.
        assert!(cache.find("h1", &[Algorithm::EdDSA]).is_none());
        // A refused key is not kept.
        assert_eq!(
            cache.read("h3", &ec(1), Algorithm::ES384).err(),
            Some(ProofError::KeyMismatch)
        );
        assert!(cache.find("h3", &[Algorithm::ES384]).is_none());
        let private = ec(1).replace('}', r#","d":"AA"}"#);
        for _ in 0..2 {
            assert_eq!(
                cache.read("h4", &private, Algorithm::ES256).err(),
                Some(ProofError::PrivateKey)
            );
            assert!(cache.find("h4", ES256).is_none());
        }
    }
}
