//! [`MemoryStore`]: the store of one process, with a bound on its memory.
//!
//! Keys are not kept: each is reduced to a 64-bit SipHash digest under a random key drawn at
//! start-up, so an entry has a fixed size whatever the key, and nobody who does not know the
//! key can make two keys collide on purpose. The entries are split over 16 shards, each a
//! hash map behind its own mutex plus a queue of the entries in the order they were created.
//! A shard holds at most its share of the capacity; when it is full, its oldest entry goes
//! first (expired entries go before that, as they reach the front of the queue).
//!
//! Most reads are for keys that are not there (a client that never failed): a presence filter,
//! one atomic count per slot of the entries whose key falls there, answers those without taking
//! a lock or computing the SipHash digest. Its slot comes from a cheaper seeded hash (a folded
//! multiply, as in foldhash): a key that shares a slot with a stored one only takes the longer
//! way, so the filter needs no resistance to collisions, and the map keeps SipHash.

use std::{
    collections::{HashMap, VecDeque},
    fmt,
    future::{Ready, ready},
    hash::BuildHasherDefault,
    mem::size_of,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicU32, Ordering},
    },
    time::{Duration, Instant},
};

use siphasher::sip::SipHasher13;

use super::{Counter, Store, StoreError};
use crate::secret::TagHasher;

/// The number of shards: contention stays low on any machine this runs on.
const SHARDS: usize = 16;
/// The slots of the presence filter (64 KiB of counts): 14 bits.
const FILTER: usize = 1 << 14;

/// The product of `a` and `b`, its halves folded together.
fn fold(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

/// The filter slot of `key` under `seed`: a folded-multiply hash, as foldhash reads a key (its
/// 16-byte blocks, the last one overlapping the one before; a short key by its first and last
/// words), so that it takes no copy and one multiply per 16 bytes.
#[inline]
fn filter_slot(seed: [u64; 2], key: &[u8]) -> u16 {
    let n = key.len();
    let u64_at = |i: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&key[i..i + 8]);
        u64::from_le_bytes(w)
    };
    let u32_at = |i: usize| {
        let mut w = [0u8; 4];
        w.copy_from_slice(&key[i..i + 4]);
        u64::from(u32::from_le_bytes(w))
    };
    let mut h = seed[0] ^ n as u64;
    let (a, b) = match n {
        16.. => {
            let mut i = 0;
            while i + 16 < n {
                h = fold(u64_at(i) ^ seed[1], u64_at(i + 8) ^ h);
                i += 16;
            }
            (u64_at(n - 16), u64_at(n - 8))
        }
        8..16 => (u64_at(0), u64_at(n - 8)),
        4..8 => (u32_at(0), u32_at(n - 4)),
        1..4 => (
            u64::from(key[0]) | u64::from(key[n / 2]) << 8,
            u64::from(key[n - 1]),
        ),
        0 => (0, 0),
    };
    h = fold(a ^ seed[1], b ^ h);
    (fold(h, seed[0] | 1) >> 50) as u16
}

/// A store in this process's memory: the default, for a server that runs as one process.
///
/// Keys are not kept: each is reduced to a 64-bit SipHash-1-3 digest under a random key, so an
/// entry has a fixed size whatever the key, and nobody who does not know the random key can
/// make two keys collide on purpose. Entries are split over 16 shards, each a hash map behind
/// its own mutex plus a queue of its entries in the order they were created; a full shard
/// drops its oldest entry first (expired entries go as they reach the front of the queue). A
/// read of a key that is not there (most reads: a client that never failed) is answered by a
/// presence filter, without a lock or a SipHash.
///
/// Its memory is bounded: it holds at most [`capacity`](Self::capacity) keys (65,536 by
/// default), whatever it is asked to count; past that it forgets its oldest entries first. Each
/// key of capacity costs at most [`MAX_BYTES_PER_KEY`](Self::MAX_BYTES_PER_KEY) bytes of heap
/// (the hash map at its worst load, the queue at its largest), plus a fixed 64 KiB: at most
/// 8 MiB at the default capacity, and about half that in practice. Its futures are ready at
/// once, and a read of a key that is not there takes no lock.
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

struct Inner {
    shards: Box<[Mutex<Shard>]>,
    /// Per slot, the number of entries whose digest falls there (changed under the shard lock).
    filter: Box<[AtomicU32]>,
    /// SipHash-1-3 under a random key.
    hasher: SipHasher13,
    /// The seed of the filter's hash.
    seed: [u64; 2],
    /// Each shard's share of the capacity.
    per_shard: usize,
    /// The origin of the millisecond clock of the entries.
    epoch: Instant,
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("capacity", &self.capacity())
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// The capacity of [`new`](Self::new): 65,536 keys.
    pub const DEFAULT_CAPACITY: usize = 65_536;

    /// The most heap one key of capacity costs, in bytes: the map's entry with its control
    /// byte at the lowest load hashbrown allows (under 2.3 buckets per entry), plus queue
    /// records at the queue's largest (4 per entry).
    pub const MAX_BYTES_PER_KEY: usize =
        (size_of::<(u64, Slot)>() + 1) * 7 / 3 + 4 * size_of::<Record>();

    /// A store of [`DEFAULT_CAPACITY`](Self::DEFAULT_CAPACITY) keys.
    pub fn new() -> Self {
        Self::with_capacity(Self::DEFAULT_CAPACITY)
    }

    /// A store of at most `capacity` keys (at least one per shard: 16).
    pub fn with_capacity(capacity: usize) -> Self {
        let per_shard = capacity.div_ceil(SHARDS).max(1);
        let mut seed = [0u8; 32];
        // Without randomness the digests are still fixed-size; only their secrecy is lost.
        let _ = getrandom::fill(&mut seed);
        let word =
            |i: usize| u64::from_le_bytes(seed[8 * i..8 * i + 8].try_into().unwrap_or_default());
        Self {
            inner: Arc::new(Inner {
                shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
                filter: (0..FILTER).map(|_| AtomicU32::new(0)).collect(),
                hasher: SipHasher13::new_with_keys(word(0), word(1)),
                seed: [word(2), word(3)],
                per_shard,
                epoch: Instant::now(),
            }),
        }
    }

    /// The most keys this store holds.
    pub fn capacity(&self) -> usize {
        self.inner.per_shard * SHARDS
    }

    /// The number of keys held now (expired ones included until they are dropped).
    pub fn len(&self) -> usize {
        self.inner.shards.iter().map(|s| lock(s).map.len()).sum()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn digest(&self, key: &[u8]) -> u64 {
        self.inner.hasher.hash(key)
    }

    fn shard(&self, digest: u64) -> MutexGuard<'_, Shard> {
        // Bits the map itself does not use much (it takes the low bits and the top seven).
        lock(&self.inner.shards[(digest >> 40) as usize % SHARDS])
    }

    /// The live counter of `key`, past the presence filter (out of line: most reads are
    /// answered by the filter).
    #[inline(never)]
    fn find(&self, key: &[u8]) -> Option<Counter> {
        let digest = self.digest(key);
        let shard = self.shard(digest);
        // The clock is read only for a key that is there: most requests find none.
        let found = shard.map.get(&digest).copied();
        drop(shard);
        found.and_then(|slot| {
            let now = self.now_ms();
            (slot.expires > now).then(|| counter(&slot, now))
        })
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.inner.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

fn lock(shard: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    // A panic while a shard was held leaves counts, never a broken invariant worth refusing for.
    shard.lock().unwrap_or_else(|e| e.into_inner())
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

fn counter(slot: &Slot, now: u64) -> Counter {
    Counter {
        count: u64::from(slot.count),
        resets_in: Duration::from_millis(slot.expires.saturating_sub(now)),
    }
}

/// One key's entry: its count (0 for a mark) and when it expires, on the store's clock.
#[derive(Debug, Clone, Copy)]
struct Slot {
    expires: u64,
    count: u32,
    /// The filter slot the entry is counted in.
    filter: u16,
}

/// A queue record: an entry, as it was created. It is stale once its key has a newer entry.
#[derive(Debug, Clone, Copy)]
struct Record {
    digest: u64,
    expires: u64,
}

#[derive(Default)]
struct Shard {
    /// Keys are digests already (uniform): the map hashes them no further.
    map: HashMap<u64, Slot, BuildHasherDefault<TagHasher>>,
    order: VecDeque<Record>,
}

impl Shard {
    /// The live entry of `digest`.
    fn live(&mut self, digest: u64, now: u64) -> Option<&mut Slot> {
        self.map.get_mut(&digest).filter(|s| s.expires > now)
    }

    /// Drops the front record, and its entry if the record is the entry's own. Returns whether
    /// an entry was dropped; `None` if the queue is empty.
    fn pop_front(&mut self, filter: &[AtomicU32]) -> Option<bool> {
        let r = self.order.pop_front()?;
        let own = self
            .map
            .get(&r.digest)
            .is_some_and(|s| s.expires == r.expires);
        if own && let Some(slot) = self.map.remove(&r.digest) {
            filter[usize::from(slot.filter)].fetch_sub(1, Ordering::Release);
        }
        Some(own)
    }

    /// Creates (or restarts) the entry of `digest`, making room first.
    fn insert(&mut self, digest: u64, slot: Slot, now: u64, cap: usize, filter: &[AtomicU32]) {
        while self.order.front().is_some_and(|r| r.expires <= now) {
            self.pop_front(filter);
        }
        while self.map.len() >= cap && !self.map.contains_key(&digest) {
            if self.pop_front(filter).is_none() {
                break;
            }
        }
        match self.map.insert(digest, slot) {
            Some(old) if old.filter == slot.filter => {}
            old => {
                if let Some(old) = old {
                    filter[usize::from(old.filter)].fetch_sub(1, Ordering::Release);
                }
                filter[usize::from(slot.filter)].fetch_add(1, Ordering::Release);
            }
        }
        self.order.push_back(Record {
            digest,
            expires: slot.expires,
        });
        if self.order.len() > 2 * cap {
            // Stale records (of restarted entries) pile up behind longer-lived ones: drop them.
            let map = &self.map;
            self.order
                .retain(|r| map.get(&r.digest).is_some_and(|s| s.expires == r.expires));
        }
    }
}

impl Store for MemoryStore {
    type Increment = Ready<Result<Counter, StoreError>>;
    type Get = Ready<Result<Option<Counter>, StoreError>>;
    type SetIfAbsent = Ready<Result<bool, StoreError>>;

    fn increment(&self, key: &[u8], window: Duration) -> Self::Increment {
        let digest = self.digest(key);
        let now = self.now_ms();
        let mut shard = self.shard(digest);
        if let Some(slot) = shard.live(digest, now) {
            slot.count = slot.count.saturating_add(1);
            let c = counter(slot, now);
            return ready(Ok(c));
        }
        let slot = Slot {
            expires: now.saturating_add(millis(window)),
            count: 1,
            filter: filter_slot(self.inner.seed, key),
        };
        shard.insert(digest, slot, now, self.inner.per_shard, &self.inner.filter);
        ready(Ok(counter(&slot, now)))
    }

    #[inline]
    fn get(&self, key: &[u8]) -> Self::Get {
        let slot = filter_slot(self.inner.seed, key);
        if self.inner.filter[usize::from(slot)].load(Ordering::Acquire) == 0 {
            return ready(Ok(None));
        }
        ready(Ok(self.find(key)))
    }

    fn set_if_absent(&self, key: &[u8], ttl: Duration) -> Self::SetIfAbsent {
        let digest = self.digest(key);
        let now = self.now_ms();
        let mut shard = self.shard(digest);
        if shard.live(digest, now).is_some() {
            return ready(Ok(false));
        }
        let slot = Slot {
            expires: now.saturating_add(millis(ttl)),
            count: 0,
            filter: filter_slot(self.inner.seed, key),
        };
        shard.insert(digest, slot, now, self.inner.per_shard, &self.inner.filter);
        ready(Ok(true))
    }
}

#[cfg(test)]
mod tests {
    use std::{
        future::Future,
        pin::pin,
        task::{Context, Poll, Waker},
    };

    use super::*;

    fn now<T>(fut: impl Future<Output = Result<T, StoreError>>) -> T {
        let mut cx = Context::from_waker(Waker::noop());
        match pin!(fut).poll(&mut cx) {
            Poll::Ready(Ok(v)) => v,
            _ => panic!("the memory store answers at once"),
        }
    }

    #[test]
    fn a_counter_counts_within_its_window_and_is_read_without_change() {
        let store = MemoryStore::new();
        let w = Duration::from_secs(60);
        assert_eq!(now(store.get(b"k")), None);
        assert_eq!(now(store.increment(b"k", w)).count, 1);
        assert_eq!(now(store.increment(b"k", w)).count, 2);
        assert_eq!(now(store.get(b"k")).map(|c| c.count), Some(2));
        assert_eq!(now(store.get(b"k")).map(|c| c.count), Some(2));
        assert_eq!(now(store.get(b"other")), None);
        let c = now(store.get(b"k")).unwrap();
        assert!(c.resets_in <= w && c.resets_in > Duration::from_secs(50));
    }

    #[test]
    fn keys_of_every_length_are_counted_apart() {
        let store = MemoryStore::new();
        let w = Duration::from_secs(60);
        // Every way the filter reads a key: empty, 1-3, 4-7, 8-15 bytes, 16 and more (one
        // block, overlapping blocks, several blocks).
        let keys: Vec<Vec<u8>> = (0..=70u8).map(|n| (0..n).collect()).collect();
        for key in &keys {
            assert_eq!(now(store.get(key)), None, "{} bytes", key.len());
            assert_eq!(now(store.increment(key, w)).count, 1, "{} bytes", key.len());
        }
        for key in &keys {
            assert_eq!(
                now(store.get(key)).map(|c| c.count),
                Some(1),
                "{} bytes",
                key.len()
            );
        }
        assert_eq!(store.len(), keys.len());
    }

    #[test]
    fn the_filter_slot_depends_on_every_byte_of_a_key() {
        let seed = [0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210];
        // With a 14-bit slot, a byte the slot ignored would give the same slot for all its
        // values; one that counts gives many.
        for n in [1usize, 3, 4, 7, 8, 15, 16, 19, 27, 32, 33, 48, 70] {
            for i in 0..n {
                let mut key = vec![7u8; n];
                let slots: std::collections::HashSet<u16> = (0..=255u8)
                    .map(|b| {
                        key[i] = b;
                        filter_slot(seed, &key)
                    })
                    .collect();
                assert!(slots.len() > 200, "byte {i} of {n}: {} slots", slots.len());
            }
        }
    }

    #[test]
    fn an_expired_counter_starts_again_at_one() {
        let store = MemoryStore::new();
        let w = Duration::from_millis(1);
        assert_eq!(now(store.increment(b"k", w)).count, 1);
        // Bounded: the 1 ms window ends long before this loop does.
        let mut expired = false;
        for _ in 0..10_000 {
            std::thread::sleep(Duration::from_micros(100));
            if now(store.get(b"k")).is_none() {
                expired = true;
                break;
            }
        }
        assert!(expired, "a 1 ms window never ended");
        assert_eq!(now(store.increment(b"k", Duration::from_secs(60))).count, 1);
    }

    #[test]
    fn set_if_absent_is_true_once() {
        let store = MemoryStore::new();
        let ttl = Duration::from_secs(60);
        assert!(now(store.set_if_absent(b"jti-1", ttl)));
        assert!(!now(store.set_if_absent(b"jti-1", ttl)));
        assert!(now(store.set_if_absent(b"jti-2", ttl)));
    }

    #[test]
    fn a_flood_of_keys_never_holds_more_than_the_capacity() {
        let store = MemoryStore::with_capacity(1_000);
        let w = Duration::from_secs(60);
        for i in 0u32..100_000 {
            now(store.increment(&i.to_be_bytes(), w));
            assert!(store.len() <= store.capacity(), "at {i}");
        }
        assert_eq!(store.len(), store.capacity());
        for shard in store.inner.shards.iter() {
            assert!(lock(shard).order.len() <= 2 * store.inner.per_shard + 1);
        }
        let filtered: u32 = store
            .inner
            .filter
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum();
        assert_eq!(filtered as usize, store.len());
        // The newest keys are still counted, the oldest forgotten.
        assert_eq!(now(store.get(&99_999u32.to_be_bytes())).unwrap().count, 1);
        assert_eq!(now(store.get(&0u32.to_be_bytes())), None);
    }

    #[test]
    fn restarted_entries_leave_no_unbounded_queue() {
        let mut shard = Shard::default();
        let filter: Vec<AtomicU32> = (0..FILTER).map(|_| AtomicU32::new(0)).collect();
        let cap = 8;
        // A long-lived entry at the front keeps the expired records of `k` from the front.
        shard.insert(
            1,
            Slot {
                expires: u64::MAX,
                count: 0,
                filter: 1,
            },
            0,
            cap,
            &filter,
        );
        for t in 0..10_000u64 {
            // `k` expires at t + 1 and is restarted at t + 1: one stale record each time.
            shard.insert(
                2,
                Slot {
                    expires: t + 1,
                    count: 1,
                    filter: 2,
                },
                t,
                cap,
                &filter,
            );
            assert!(shard.order.len() <= 2 * cap + 1, "at {t}");
            assert!(shard.map.len() <= cap);
        }
        assert_eq!(shard.map.len(), 2);
        assert_eq!(filter[1].load(Ordering::Relaxed), 1);
        assert_eq!(filter[2].load(Ordering::Relaxed), 1);
    }
}
