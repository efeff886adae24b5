//! The verified-token cache: MCP clients send the same token on every request for its whole
//! lifetime, so a verification result is kept, keyed by a keyed digest of the token.
//!
//! Bounded in entries and in (estimated) memory; an entry never outlives the token's `exp`;
//! an entry whose signing key has left its key set is dropped. Lookups take one shard's read
//! lock for a hash-map probe (no lock is ever held across I/O, and there is no global lock).

use std::{
    collections::HashMap,
    sync::{
        Arc, RwLock,
        atomic::{AtomicUsize, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};

use super::keys::JwtKey;
use crate::{
    identity::AuthInfo,
    secret::{SecretTag, TagHasher, TagKey},
};

/// The default number of cached tokens: 10 000.
pub const DEFAULT_MAX_ENTRIES: usize = 10_000;
/// The default memory budget of the cache: 32 MiB (estimated from what each entry keeps: its
/// strings, every JSON value and object member of its claims, and a fixed overhead).
pub const DEFAULT_MAX_BYTES: usize = 32 << 20;

const SHARDS: usize = 16;

/// What one entry costs besides its identity's strings and claims: the entry, its hash-map slot,
/// the identity's shared allocation and the key's reference.
const ENTRY_OVERHEAD: usize = 256;

/// The memory an entry for `info` takes, estimated from what it keeps (not from the token's
/// length: claims such as `[1,1,1,…]` take some twenty times their JSON size once parsed).
/// Strings count their length, every JSON value its inline size, every object member its key
/// and a share of its tree node.
pub(crate) fn estimate_bytes(info: &AuthInfo) -> usize {
    const STRING: usize = std::mem::size_of::<String>();
    const VALUE: usize = std::mem::size_of::<serde_json::Value>();
    /// A B-tree node's share per member (parent pointer, lengths, spare capacity).
    const MEMBER: usize = 16;
    fn members(map: &serde_json::Map<String, serde_json::Value>) -> usize {
        map.iter()
            .map(|(k, v)| STRING + k.len() + VALUE + MEMBER + heap(v))
            .sum()
    }
    /// The heap a value owns, beyond its inline size (counted by its container).
    fn heap(value: &serde_json::Value) -> usize {
        use serde_json::Value;
        match value {
            Value::String(s) => s.len(),
            Value::Array(list) => list.iter().map(|v| VALUE + heap(v)).sum(),
            Value::Object(map) => members(map),
            Value::Null | Value::Bool(_) | Value::Number(_) => 0,
        }
    }
    let strings = info.subject().len()
        + info.issuer().map_or(0, str::len)
        + info.client_id().map_or(0, str::len)
        + info
            .scopes()
            .iter()
            .map(|s| STRING + s.len())
            .sum::<usize>();
    // Claims kept as text count the text and what it would take once parsed (on first ask).
    let claims = match info.claims_json() {
        Some(json) => super::claims::parsed_size_bound(json),
        None => info.claims().map_or(0, members),
    };
    ENTRY_OVERHEAD + strings + claims
}

/// Settings of the verified-token cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenCacheConfig {
    /// The most tokens kept.
    pub max_entries: usize,
    /// The most memory (estimated) the entries may take.
    pub max_bytes: usize,
}

impl Default for TokenCacheConfig {
    fn default() -> Self {
        Self {
            max_entries: DEFAULT_MAX_ENTRIES,
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }
}

struct Entry {
    info: AuthInfo,
    /// `exp`, in seconds since the epoch.
    expires: u64,
    key: Arc<JwtKey>,
    bytes: usize,
}

type Shard = HashMap<SecretTag, Entry, TagHasher>;

pub(crate) struct TokenCache {
    key: TagKey,
    shards: Box<[RwLock<Shard>]>,
    /// Every shard holds `per_shard` entries, and the first `extra` shards one more, so that
    /// the shards together hold exactly `max_entries`.
    per_shard: usize,
    extra: usize,
    max_bytes: usize,
    bytes: AtomicUsize,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("entries", &self.len())
            .field("bytes", &self.bytes.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl TokenCache {
    pub(crate) fn new(config: TokenCacheConfig) -> Self {
        Self {
            key: TagKey::random(),
            shards: (0..SHARDS).map(|_| RwLock::new(Shard::default())).collect(),
            per_shard: config.max_entries / SHARDS,
            extra: config.max_entries % SHARDS,
            max_bytes: config.max_bytes,
            bytes: AtomicUsize::new(0),
        }
    }

    pub(crate) fn tag(&self, token: &str) -> SecretTag {
        self.key.tag(token.as_bytes())
    }

    fn index(tag: &SecretTag) -> usize {
        (tag.low() as usize) % SHARDS
    }

    fn shard(&self, tag: &SecretTag) -> &RwLock<Shard> {
        &self.shards[Self::index(tag)]
    }

    /// How many entries shard `i` may hold.
    fn capacity(&self, i: usize) -> usize {
        self.per_shard + usize::from(i < self.extra)
    }

    /// The cached identity for this token, if still valid.
    pub(crate) fn get(&self, tag: &SecretTag) -> Option<AuthInfo> {
        let shard = self.shard(tag).read().unwrap_or_else(|e| e.into_inner());
        let entry = shard.get(tag)?;
        (entry.expires > now_secs() && !entry.key.is_retired()).then(|| entry.info.clone())
    }

    /// Caches a verified token until `expires`, unless it alone would take more than a shard's
    /// share of the memory budget.
    pub(crate) fn insert(&self, tag: SecretTag, info: AuthInfo, expires: u64, key: Arc<JwtKey>) {
        let bytes = estimate_bytes(&info);
        let capacity = self.capacity(Self::index(&tag));
        if bytes > self.max_bytes / SHARDS || capacity == 0 {
            return;
        }
        let mut shard = self.shard(&tag).write().unwrap_or_else(|e| e.into_inner());
        if shard.len() >= capacity || self.bytes.load(Ordering::Relaxed) + bytes > self.max_bytes {
            let now = now_secs();
            let before: usize = shard.values().map(|e| e.bytes).sum();
            shard.retain(|_, e| e.expires > now && !e.key.is_retired());
            // Still full: make room by dropping an arbitrary entry of this shard.
            if shard.len() >= capacity
                && let Some(victim) = shard.keys().next().copied()
            {
                shard.remove(&victim);
            }
            let after: usize = shard.values().map(|e| e.bytes).sum();
            self.bytes.fetch_sub(before - after, Ordering::Relaxed);
            if self.bytes.load(Ordering::Relaxed) + bytes > self.max_bytes {
                return;
            }
        }
        let entry = Entry {
            info,
            expires,
            key,
            bytes,
        };
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        if let Some(old) = shard.insert(tag, entry) {
            self.bytes.fetch_sub(old.bytes, Ordering::Relaxed);
        }
    }

    /// The number of entries.
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
}
