//! The verified-token cache: MCP clients send the same token on every request for its whole
//! lifetime, so a verification result is kept, keyed by a keyed digest of the token.
//!
//! Bounded in entries and in (estimated) memory; an entry never outlives the token's `exp`;
//! an entry whose signing key has left its key set is dropped. The cache itself is the crate's
//! [`TtlCache`] (how it is bounded, sharded and locked is explained there); this module says
//! what a verified token keeps and what it costs.

use std::{
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

use super::keys::JwtKey;
use crate::{
    cache::{Current, Deadline, TtlCache},
    identity::AuthInfo,
    secret::SecretTag,
};

/// The default number of cached tokens: 10 000.
pub const DEFAULT_MAX_ENTRIES: usize = 10_000;
/// The default memory budget of the cache: 32 MiB (estimated from what each entry keeps: its
/// strings, every JSON value and object member of its claims, and a fixed overhead).
pub const DEFAULT_MAX_BYTES: usize = 32 << 20;

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

/// A verified token: its identity, and the key that signed it.
struct Verified {
    info: AuthInfo,
    key: Arc<JwtKey>,
}

impl Current for Verified {
    /// The verdict goes with its key: once the key has left its key set, the token is verified
    /// again (and refused).
    fn is_current(&self) -> bool {
        !self.key.is_retired()
    }
}

/// The verified-token cache: a [`TtlCache`] of [`Verified`] tokens, each kept until its `exp`.
pub(crate) struct TokenCache(TtlCache<Verified>);

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("entries", &self.len())
            .field("bytes", &self.bytes())
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
        Self(TtlCache::new(config.max_entries, config.max_bytes))
    }

    pub(crate) fn tag(&self, token: &str) -> SecretTag {
        self.0.tag(token.as_bytes())
    }

    /// The cached identity for this tag, if still valid and bound to no key or certificate
    /// (the layer would not admit a bound one by recall, and `verify` must see it); anything
    /// else is not counted (the layer's [`crate::recall`] looks first, and `verify` looks again
    /// and counts).
    pub(crate) fn recall(&self, tag: &SecretTag) -> Option<AuthInfo> {
        let unbound =
            |info: &AuthInfo| info.dpop_jkt().is_none() && info.certificate_thumbprint().is_none();
        let found = self
            .0
            .recheck(tag, |v| unbound(&v.info).then(|| v.info.clone()))
            .flatten();
        if found.is_some() {
            crate::audit::metrics::cache_lookup(true);
        }
        found
    }

    /// The cached identity for this token, if still valid.
    pub(crate) fn get(&self, tag: &SecretTag) -> Option<AuthInfo> {
        // Only the identity is cloned: the key is shared by every token it signed, and cloning
        // its `Arc` on every hit would make all requests contend for one counter.
        self.0.get(tag, |v| v.info.clone())
    }

    /// Caches a verified token until its `exp` (an identity without one is not served), unless
    /// it alone would take more than a shard's share of the memory budget.
    pub(crate) fn insert(&self, tag: SecretTag, info: AuthInfo, key: Arc<JwtKey>) {
        let bytes = estimate_bytes(&info);
        let until = Deadline::at(info.expires_at().unwrap_or(UNIX_EPOCH));
        self.0.insert(tag, Verified { info, key }, until, bytes);
    }

    /// The number of entries.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// The estimated memory the entries take.
    pub(crate) fn bytes(&self) -> usize {
        self.0.bytes()
    }
}
