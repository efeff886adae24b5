//! A cache of answers about secrets (verified tokens, introspection results), keyed by a keyed
//! digest of the secret, with a deadline per entry and bounds on entries and memory.
//!
//! MCP clients send the same bearer token on every request for the token's whole lifetime, so
//! the work of judging it (a signature check, or an RFC 7662 introspection call to the
//! authorization server) is worth keeping. What is kept must not become a second copy of the
//! secrets, nor a way to exhaust the server's memory, nor a way to accept a token longer than
//! it may be accepted:
//!
//! - The key is the secret's [`SecretTag`] under the process's random [`TagKey`] (the one the
//!   layer tags each request's token with, so that a lookup costs no second digest), never the secret itself: a heap dump or a stray `Debug` shows no token, and an
//!   attacker cannot steer tokens into one hash bucket or one shard.
//! - Every entry has a [`Deadline`], given by the caller when it inserts: a JWT's `exp`; for
//!   introspection the earlier of `exp` and a configured maximum, and a short one for a negative
//!   answer. Deadlines are kept in milliseconds and rounded down, so that a five-second lifetime
//!   is not stretched to the next whole second: an entry never outlives what was asked.
//! - The value itself can say it is no longer good ([`Current`]): a verified JWT whose signing
//!   key has left its key set is dropped at once, before its deadline.
//! - The number of entries and their estimated memory are bounded (the caller estimates each
//!   entry's size, since only it knows what the value keeps). A full shard first drops what has
//!   expired or is no longer current, then an arbitrary entry: the cache is an accelerator, and
//!   losing an entry only costs a verification.
//!
//! Lookups are the hot path of every authenticated request: one shard's read lock for one
//! hash-map probe, no allocation, the value handed out through a closure (so that a caller can
//! clone only what it needs). There is no global lock, and no lock is ever held across I/O.
//!
//! Concurrent misses on one key share one computation through the single-flight map in
//! `flight`, so that a burst of requests with a new token makes one introspection call.

// Token introspection (RFC 7662) is its user. The module is compiled in every build all the
// same, so that every feature set checks it (it needs no runtime: no Tokio); without the
// `introspection` feature only its tests use it.
#[cfg_attr(
    not(any(test, feature = "introspection")),
    expect(dead_code, reason = "only token introspection uses it")
)]
mod flight;

#[cfg(feature = "introspection")]
pub(crate) use flight::{Busy, Flights};

use std::{
    collections::HashMap,
    sync::{
        RwLock,
        atomic::{AtomicUsize, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};

use crate::secret::{SecretTag, TagHasher, TagKey};

const SHARDS: usize = 16;

/// Whether a cached value may still be served, besides its deadline.
pub(crate) trait Current {
    /// `false` once the value must no longer be served (a JWT whose signing key was retired).
    fn is_current(&self) -> bool;
}

/// When an entry stops being served: milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Deadline(u64);

impl Deadline {
    /// The deadline `at`, rounded down to the millisecond (never later than asked); the epoch
    /// for a time before it.
    pub(crate) fn at(at: SystemTime) -> Self {
        Self(
            at.duration_since(UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        )
    }

    fn now() -> Self {
        Self::at(SystemTime::now())
    }
}

struct Entry<V> {
    value: V,
    until: Deadline,
    bytes: usize,
}

impl<V: Current> Entry<V> {
    fn live(&self, now: Deadline) -> bool {
        self.until > now && self.value.is_current()
    }
}

type Shard<V> = HashMap<SecretTag, Entry<V>, TagHasher>;

/// The cache: `SHARDS` hash maps, each behind its own lock.
pub(crate) struct TtlCache<V> {
    key: TagKey,
    shards: Box<[RwLock<Shard<V>>]>,
    /// Every shard holds `per_shard` entries, and the first `extra` shards one more, so that
    /// the shards together hold exactly the most entries asked for.
    per_shard: usize,
    extra: usize,
    max_bytes: usize,
    bytes: AtomicUsize,
}

impl<V> std::fmt::Debug for TtlCache<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TtlCache")
            .field("entries", &self.len())
            .field("bytes", &self.bytes())
            .finish_non_exhaustive()
    }
}

impl<V> TtlCache<V> {
    /// A cache of at most `max_entries` entries taking at most `max_bytes` (as estimated by the
    /// callers of [`insert`](Self::insert)).
    pub(crate) fn new(max_entries: usize, max_bytes: usize) -> Self {
        Self {
            key: TagKey::process().clone(),
            shards: (0..SHARDS).map(|_| RwLock::new(Shard::default())).collect(),
            per_shard: max_entries / SHARDS,
            extra: max_entries % SHARDS,
            max_bytes,
            bytes: AtomicUsize::new(0),
        }
    }

    /// The key under which `secret` is cached.
    pub(crate) fn tag(&self, secret: &[u8]) -> SecretTag {
        self.key.tag(secret)
    }

    fn index(tag: &SecretTag) -> usize {
        (tag.low() as usize) % SHARDS
    }

    fn shard(&self, tag: &SecretTag) -> &RwLock<Shard<V>> {
        &self.shards[Self::index(tag)]
    }

    /// How many entries shard `i` may hold.
    fn capacity(&self, i: usize) -> usize {
        self.per_shard + usize::from(i < self.extra)
    }

    /// The number of entries (expired ones included, until they are dropped).
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.read().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }

    /// The estimated memory the entries take.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Forgets `tag`'s entry (a token learnt to be revoked); whether there was one.
    #[cfg_attr(
        not(any(test, feature = "introspection")),
        expect(dead_code, reason = "only introspection's invalidate(token) uses it")
    )]
    pub(crate) fn invalidate(&self, tag: &SecretTag) -> bool {
        let mut shard = self.shard(tag).write().unwrap_or_else(|e| e.into_inner());
        let old = shard.remove(tag);
        if let Some(old) = &old {
            self.bytes.fetch_sub(old.bytes, Ordering::Relaxed);
            crate::audit::metrics::cache_entries(-1);
        }
        drop(shard);
        old.is_some()
    }
}

impl<V: Current> TtlCache<V> {
    /// What `read` makes of `tag`'s value, if it is cached, before its deadline and current.
    /// Counted as a hit or a miss in the metrics.
    pub(crate) fn get<R>(&self, tag: &SecretTag, read: impl FnOnce(&V) -> R) -> Option<R> {
        let found = self.get_at(tag, Deadline::now(), read);
        crate::audit::metrics::cache_lookup(found.is_some());
        found
    }

    /// [`get`](Self::get), not counted: a second look by whoever already missed (a flight
    /// that starts just after another one answered), or a first look that counts only its hits
    /// (the layer's recall, before `verify` looks again).
    pub(crate) fn recheck<R>(&self, tag: &SecretTag, read: impl FnOnce(&V) -> R) -> Option<R> {
        self.get_at(tag, Deadline::now(), read)
    }

    fn get_at<R>(&self, tag: &SecretTag, now: Deadline, read: impl FnOnce(&V) -> R) -> Option<R> {
        let shard = self.shard(tag).read().unwrap_or_else(|e| e.into_inner());
        let entry = shard.get(tag)?;
        entry.live(now).then(|| read(&entry.value))
    }

    /// Caches `value` for `tag` until `until`, estimated to take `bytes`; unless it alone would
    /// take more than a shard's share of the memory budget, or there is no room even after
    /// dropping what is stale and one arbitrary entry of its shard.
    pub(crate) fn insert(&self, tag: SecretTag, value: V, until: Deadline, bytes: usize) {
        self.insert_at(tag, value, until, bytes, Deadline::now());
    }

    fn insert_at(&self, tag: SecretTag, value: V, until: Deadline, bytes: usize, now: Deadline) {
        let capacity = self.capacity(Self::index(&tag));
        if bytes > self.max_bytes / SHARDS || capacity == 0 {
            return;
        }
        let mut shard = self.shard(&tag).write().unwrap_or_else(|e| e.into_inner());
        let entries = shard.len();
        if shard.len() >= capacity || self.bytes() + bytes > self.max_bytes {
            let before: usize = shard.values().map(|e| e.bytes).sum();
            shard.retain(|_, e| e.live(now));
            // Still full: make room by dropping an arbitrary entry of this shard.
            if shard.len() >= capacity
                && let Some(victim) = shard.keys().next().copied()
            {
                shard.remove(&victim);
            }
            let after: usize = shard.values().map(|e| e.bytes).sum();
            self.bytes.fetch_sub(before - after, Ordering::Relaxed);
            if self.bytes() + bytes > self.max_bytes {
                crate::audit::metrics::cache_entries(delta(entries, shard.len()));
                return;
            }
        }
        let entry = Entry {
            value,
            until,
            bytes,
        };
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        if let Some(old) = shard.insert(tag, entry) {
            self.bytes.fetch_sub(old.bytes, Ordering::Relaxed);
        }
        crate::audit::metrics::cache_entries(delta(entries, shard.len()));
    }
}

/// How many entries a shard gained (or, negative, lost).
fn delta(before: usize, after: usize) -> isize {
    isize::try_from(after).unwrap_or(isize::MAX) - isize::try_from(before).unwrap_or(isize::MAX)
}

impl<V> Drop for TtlCache<V> {
    /// Its entries leave the `mcp_auth_token_cache_entries` gauge with it.
    fn drop(&mut self) {
        let left = isize::try_from(self.len()).unwrap_or(isize::MAX);
        crate::audit::metrics::cache_entries(-left);
    }
}

#[cfg(test)]
mod tests {
    use std::{
        sync::{Arc, atomic::AtomicBool},
        time::Duration,
    };

    use super::*;

    /// A value whose currency the test switches.
    #[derive(Clone)]
    struct Value(u32, Arc<AtomicBool>);

    impl Value {
        fn new(n: u32) -> Self {
            Self(n, Arc::new(AtomicBool::new(true)))
        }
    }

    impl Current for Value {
        fn is_current(&self) -> bool {
            self.1.load(Ordering::SeqCst)
        }
    }

    const FAR: Deadline = Deadline(u64::MAX);
    const NOW: Deadline = Deadline(1_000_000);

    fn at(cache: &TtlCache<Value>, tag: &SecretTag, now: Deadline) -> Option<u32> {
        cache.get_at(tag, now, |v| v.0)
    }

    fn tags(cache: &TtlCache<Value>) -> impl Iterator<Item = SecretTag> + '_ {
        (0u32..).map(move |i| cache.tag(&i.to_le_bytes()))
    }

    /// `n` tags that fall in one shard (pigeonhole: among `n * SHARDS` tags, one shard has `n`).
    fn same_shard(cache: &TtlCache<Value>, n: usize) -> Vec<SecretTag> {
        let all: Vec<_> = tags(cache).take(n * SHARDS).collect();
        (0..SHARDS)
            .map(|i| {
                all.iter()
                    .filter(|t| TtlCache::<Value>::index(t) == i)
                    .copied()
                    .collect::<Vec<_>>()
            })
            .find(|s| s.len() >= n)
            .unwrap()[..n]
            .to_vec()
    }

    /// The bytes the entries take, counted one by one.
    fn counted(cache: &TtlCache<Value>) -> usize {
        cache
            .shards
            .iter()
            .map(|s| s.read().unwrap().values().map(|e| e.bytes).sum::<usize>())
            .sum()
    }

    #[test]
    fn an_entry_is_served_until_its_deadline_to_the_millisecond() {
        let cache = TtlCache::new(100, 1 << 20);
        let tag = cache.tag(b"token");
        // Five seconds and a half after NOW: a cache that kept whole seconds would serve it
        // until the next whole second.
        let until = Deadline(NOW.0 + 5_500);
        cache.insert_at(tag, Value::new(1), until, 100, NOW);
        assert_eq!(at(&cache, &tag, NOW), Some(1));
        assert_eq!(at(&cache, &tag, Deadline(until.0 - 1)), Some(1));
        assert_eq!(at(&cache, &tag, until), None);
        assert_eq!(at(&cache, &tag, Deadline(until.0 + 1)), None);
        assert_eq!(at(&cache, &cache.tag(b"other"), NOW), None);
    }

    #[test]
    fn a_deadline_is_rounded_down_to_the_millisecond() {
        let at = |d: Duration| Deadline::at(UNIX_EPOCH + d);
        assert_eq!(at(Duration::from_micros(5_000_999)), Deadline(5_000));
        assert_eq!(at(Duration::from_millis(5_001)), Deadline(5_001));
        assert_eq!(
            Deadline::at(UNIX_EPOCH - Duration::from_secs(1)),
            Deadline(0)
        );
        // The latest `exp` a JWT may have (9999-12-31T23:59:59Z) keeps its milliseconds.
        assert_eq!(
            at(Duration::from_secs(253_402_300_799)),
            Deadline(253_402_300_799_000)
        );
        // A deadline five seconds from now is never later than five seconds from now.
        let asked = SystemTime::now() + Duration::from_secs(5);
        assert!(Deadline::at(asked) <= Deadline::at(asked + Duration::from_micros(999)));
        assert!(UNIX_EPOCH + Duration::from_millis(Deadline::at(asked).0) <= asked);
    }

    #[test]
    fn a_value_no_longer_current_is_not_served() {
        let cache = TtlCache::new(100, 1 << 20);
        let tag = cache.tag(b"token");
        let value = Value::new(1);
        cache.insert_at(tag, value.clone(), FAR, 100, NOW);
        assert_eq!(at(&cache, &tag, NOW), Some(1));
        value.1.store(false, Ordering::SeqCst);
        assert_eq!(at(&cache, &tag, NOW), None);
    }

    #[test]
    fn the_cache_never_holds_more_entries_than_asked() {
        for max_entries in [0, 1, 3, SHARDS, 40] {
            let cache = TtlCache::new(max_entries, 1 << 20);
            for tag in tags(&cache).take(500).collect::<Vec<_>>() {
                cache.insert_at(tag, Value::new(1), FAR, 10, NOW);
                assert!(
                    cache.len() <= max_entries,
                    "{} > {max_entries}",
                    cache.len()
                );
            }
            assert_eq!(cache.bytes(), counted(&cache));
            // Every shard fills to its share: the bound is reached, not only respected.
            assert_eq!(cache.len(), max_entries);
        }
    }

    #[test]
    fn the_cache_never_takes_more_memory_than_asked() {
        let max_bytes = SHARDS * 1_000;
        let cache = TtlCache::new(10_000, max_bytes);
        for tag in tags(&cache).take(500).collect::<Vec<_>>() {
            cache.insert_at(tag, Value::new(1), FAR, 300, NOW);
            assert!(cache.bytes() <= max_bytes);
        }
        assert_eq!(cache.bytes(), counted(&cache));
        assert_eq!(cache.bytes(), cache.len() * 300);
        assert!(cache.len() >= max_bytes / 300 - SHARDS, "{}", cache.len());
        // An entry larger than a shard's share of the budget is not kept.
        let cache = TtlCache::new(10_000, max_bytes);
        let tag = cache.tag(b"large");
        cache.insert_at(tag, Value::new(1), FAR, 1_001, NOW);
        assert_eq!((cache.len(), cache.bytes()), (0, 0));
        cache.insert_at(tag, Value::new(1), FAR, 1_000, NOW);
        assert_eq!((cache.len(), cache.bytes()), (1, 1_000));
    }

    #[test]
    fn invalidate_forgets_an_entry_and_its_memory() {
        let cache = TtlCache::new(100, 1 << 20);
        let (a, b) = (cache.tag(b"a"), cache.tag(b"b"));
        cache.insert_at(a, Value::new(1), FAR, 100, NOW);
        cache.insert_at(b, Value::new(2), FAR, 200, NOW);
        assert!(cache.invalidate(&a));
        assert!(!cache.invalidate(&a));
        assert_eq!(at(&cache, &a, NOW), None);
        assert_eq!(at(&cache, &b, NOW), Some(2));
        assert_eq!((cache.len(), cache.bytes()), (1, 200));
    }

    #[test]
    fn replacing_an_entry_counts_its_memory_once() {
        let cache = TtlCache::new(100, 1 << 20);
        let tag = cache.tag(b"token");
        cache.insert_at(tag, Value::new(1), FAR, 100, NOW);
        cache.insert_at(tag, Value::new(2), FAR, 300, NOW);
        assert_eq!(at(&cache, &tag, NOW), Some(2));
        assert_eq!((cache.len(), cache.bytes()), (1, 300));
    }

    #[test]
    fn a_full_shard_drops_what_is_stale_before_anything_live() {
        // Two entries a shard.
        let cache = TtlCache::new(2 * SHARDS, 1 << 20);
        let t = same_shard(&cache, 5);
        let retired = Value::new(2);
        cache.insert_at(t[0], Value::new(0), FAR, 10, NOW);
        cache.insert_at(t[1], Value::new(1), Deadline(NOW.0 + 1), 20, NOW);
        // Expired by now: dropped to make room, the live entry kept.
        let later = Deadline(NOW.0 + 1);
        cache.insert_at(t[2], retired.clone(), FAR, 30, later);
        assert_eq!(at(&cache, &t[0], later), Some(0));
        assert_eq!(at(&cache, &t[2], later), Some(2));
        assert_eq!((cache.len(), cache.bytes()), (2, 40));
        // No longer current: dropped to make room.
        retired.1.store(false, Ordering::SeqCst);
        cache.insert_at(t[3], Value::new(3), FAR, 40, later);
        assert_eq!(at(&cache, &t[0], later), Some(0));
        assert_eq!(at(&cache, &t[3], later), Some(3));
        assert_eq!((cache.len(), cache.bytes()), (2, 50));
        // Everything live: one entry goes, the new one is kept.
        cache.insert_at(t[4], Value::new(4), FAR, 50, later);
        assert_eq!(at(&cache, &t[4], later), Some(4));
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.bytes(), counted(&cache));
    }

    #[test]
    fn a_full_budget_drops_what_is_stale_to_make_room() {
        let cache = TtlCache::new(10_000, SHARDS * 100);
        let t = same_shard(&cache, 2);
        // Fill the budget with entries that expire at once, in other shards too.
        let others: Vec<_> = tags(&cache)
            .filter(|o| TtlCache::<Value>::index(o) != TtlCache::<Value>::index(&t[0]))
            .take(SHARDS - 2)
            .collect();
        for o in &others {
            cache.insert_at(*o, Value::new(9), FAR, 100, NOW);
        }
        let retired = Value::new(1);
        cache.insert_at(t[0], Value::new(0), Deadline(NOW.0 + 1), 100, NOW);
        cache.insert_at(t[1], retired.clone(), FAR, 100, NOW);
        assert_eq!(cache.bytes(), SHARDS * 100);
        // The budget is full (the shard is not): the expired entry of the new one's shard makes
        // room, and nothing else goes.
        let later = Deadline(NOW.0 + 1);
        let fresh = same_shard_as(&cache, &t[0], &t);
        cache.insert_at(fresh, Value::new(5), FAR, 100, later);
        assert_eq!(at(&cache, &fresh, later), Some(5));
        assert_eq!(at(&cache, &t[1], later), Some(1));
        assert_eq!(cache.bytes(), SHARDS * 100);
        // Full again: an entry no longer current makes room.
        retired.1.store(false, Ordering::SeqCst);
        let fresher = same_shard_as(&cache, &t[0], &[t[0], t[1], fresh]);
        cache.insert_at(fresher, Value::new(6), FAR, 100, later);
        assert_eq!(at(&cache, &fresher, later), Some(6));
        assert_eq!(at(&cache, &fresh, later), Some(5));
        assert_eq!((cache.len(), cache.bytes()), (SHARDS, SHARDS * 100));
        assert_eq!(cache.bytes(), counted(&cache));
    }

    /// A tag in `tag`'s shard, other than those in `not`.
    fn same_shard_as(cache: &TtlCache<Value>, tag: &SecretTag, not: &[SecretTag]) -> SecretTag {
        tags(cache)
            .take(10_000)
            .find(|t| {
                TtlCache::<Value>::index(t) == TtlCache::<Value>::index(tag) && !not.contains(t)
            })
            .unwrap()
    }
}
