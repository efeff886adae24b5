//! Secrets kept as keyed tags and compared without leaking timing (crate-private).
//!
//! A secret (a static token, a password, a verified token in a cache) is kept only as its
//! SipHash-1-3 128-bit tag under a random 128-bit key. Tokens are tagged under one key drawn
//! once per process ([`TagKey::process`]), so that a request's token is tagged once however many
//! verifiers look it up (a static token table, then the JWT cache); passwords under a key of
//! their verifier's own. SipHash
//! is a pseudorandom function made for short inputs: without the key, a tag says nothing about
//! the secret and an attacker cannot steer which tag a guess produces, so looking tags up in a
//! hash map and comparing them leaks nothing useful through timing.
//!
//! Why 1-3 rounds and not 2-4: the tag is computed on every request (the token cache is looked
//! up by it), and 1-3 takes about half the time (a 300-byte token: some 1 000 instructions
//! rather than 1 800). The tags never leave the process (no response, log or `Debug` shows
//! one), so an attacker who wants two secrets with one tag has no output to work from: they
//! would have to find a collision of an unknown 128-bit keyed function blind, which no known
//! analysis of the reduced-round variant brings within reach. It is the variant Rust's standard
//! library uses against hash flooding, where the attacker is in the same position.

use std::{
    hash::{BuildHasher, Hash, Hasher},
    sync::{
        LazyLock,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use siphasher::sip128::SipHasher13;

/// The random key under which a verifier tags its secrets.
#[derive(Clone)]
pub(crate) struct TagKey(SipHasher13);

impl TagKey {
    /// A fresh key from the operating system's random source.
    pub(crate) fn random() -> Self {
        let mut key = [0u8; 16];
        getrandom::fill(&mut key).expect("the operating system's random source is unavailable");
        Self(SipHasher13::new_with_key(&key))
    }

    /// The key of every token tag in this process: static tokens, the token caches, and the
    /// tag the layer computes once per request ([`crate::verifier::AuthRequest`]).
    pub(crate) fn process() -> &'static Self {
        static KEY: LazyLock<TagKey> = LazyLock::new(TagKey::random);
        &KEY
    }

    /// The tag of `secret`.
    pub(crate) fn tag(&self, secret: &[u8]) -> SecretTag {
        let t = self.0.hash(secret);
        SecretTag(t.h1, t.h2)
    }
}

impl std::fmt::Debug for TagKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TagKey(<redacted>)")
    }
}

/// A 128-bit keyed tag of a secret. Equality is branch-free; hashing passes the first half
/// through (it is already uniformly distributed).
#[derive(Clone, Copy)]
pub(crate) struct SecretTag(u64, u64);

impl SecretTag {
    /// The second half, uniformly distributed and independent of the hash-map hash: for
    /// choosing a shard.
    pub(crate) fn low(&self) -> u64 {
        self.1
    }
}

impl PartialEq for SecretTag {
    fn eq(&self, other: &Self) -> bool {
        std::hint::black_box((self.0 ^ other.0) | (self.1 ^ other.1)) == 0
    }
}

impl Eq for SecretTag {}

impl Hash for SecretTag {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.0);
    }
}

/// A tag computed at most once for a request (in practice; two threads racing would both
/// compute the same tag, and either may store it). Cheaper than a `OnceLock`: no lock, no
/// state machine, on a path every request takes.
#[derive(Default)]
pub(crate) struct TagMemo {
    halves: [AtomicU64; 2],
    /// Set, with release ordering, after both halves are stored.
    set: AtomicBool,
}

impl TagMemo {
    /// The tag kept here, or `compute`'s, which is then kept.
    pub(crate) fn get_or(&self, compute: impl FnOnce() -> SecretTag) -> SecretTag {
        if self.set.load(Ordering::Acquire) {
            return SecretTag(
                self.halves[0].load(Ordering::Relaxed),
                self.halves[1].load(Ordering::Relaxed),
            );
        }
        let tag = compute();
        self.halves[0].store(tag.0, Ordering::Relaxed);
        self.halves[1].store(tag.1, Ordering::Relaxed);
        self.set.store(true, Ordering::Release);
        tag
    }
}

impl std::fmt::Debug for SecretTag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretTag(<redacted>)")
    }
}

/// A hasher that passes a tag's first half through.
#[derive(Default, Clone, Copy, Debug)]
pub(crate) struct TagHasher(u64);

impl Hasher for TagHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Not reached for `SecretTag`; a fallback that still mixes every byte.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl BuildHasher for TagHasher {
    type Hasher = TagHasher;
    fn build_hasher(&self) -> TagHasher {
        TagHasher(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_depend_on_key_and_secret() {
        let (a, b) = (TagKey::random(), TagKey::random());
        assert!(a.tag(b"secret") == a.tag(b"secret"));
        assert!(a.tag(b"secret") != a.tag(b"secreu"));
        assert!(a.tag(b"secret") != b.tag(b"secret"));
    }
}
