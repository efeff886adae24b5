//! Where an issuer's keys come from: the keys given in the configuration, or (feature
//! `remote-jwks`) a JWKS fetched and refreshed. A verifier asks a [`KeySource`] for the keys a
//! token may have been signed with, saying how far the lookup may go ([`Ask`]): a fetch is only
//! started for a token whose unverified claims could be valid.
//!
//! ```
//! # #[cfg(any(feature = "aws-lc-rs", feature = "rust-crypto"))] {
//! use mcp_server_auth::jwt::{Algorithm, Issuer, KeySet};
//!
//! let keys = KeySet::new()
//!     .add_hmac_secret(Some("k1"), Algorithm::HS256, b"0123456789abcdef0123456789abcdef")
//!     .unwrap();
//! let issuer = Issuer::with_keys("https://auth.example.com", keys);
//! assert_eq!(issuer.issuer(), "https://auth.example.com");
//! assert_eq!(issuer.jwks_uri(), None); // given, not fetched
//! # }
//! ```

use std::{
    fmt,
    sync::Arc,
    time::{Duration, Instant},
};

use super::{Algorithm, KeySet, keys::Candidates};
use crate::resource::Redacted;

/// The result of looking a key up in an issuer's key source. Without the `remote-jwks` feature
/// only `Found` and `Missing` are built (by static keys); the verifier handles every variant
/// either way, so they are not gated one by one.
#[cfg_attr(not(feature = "remote-jwks"), allow(dead_code))]
pub(crate) enum Lookup {
    /// The keys that may have signed the token (at least one; see [`KeySet::candidates`]).
    Found(Candidates),
    /// No such key, and a fetch that could have seen it says so.
    Missing,
    /// Not among the keys at hand; a fetch might find it (only for [`Ask::AtHand`]).
    NotAtHand,
    /// The keys cannot be had now, or cannot tell yet: try again after this long.
    Unavailable(Duration),
    /// A refresh was started (single-flight); look again once it completes.
    Refreshing(futures_util::future::BoxFuture<'static, ()>),
}

/// How far a key lookup may go. Static keys ignore it, so without the `remote-jwks` feature
/// its contents are never read.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(not(feature = "remote-jwks"), allow(dead_code))]
pub(crate) enum Ask {
    /// Only the keys at hand: a key not among them is [`Lookup::NotAtHand`], and no fetch starts.
    AtHand,
    /// A fetch may start (the token's unverified claims were judged first).
    MayFetch,
    /// After a fetch the request waited for; `asked` is when it asked for that fetch. Only a
    /// fetch that started at or after `asked` could have seen a key published just before.
    AfterFetch {
        /// When the request asked.
        asked: Instant,
    },
}

/// Where an issuer's keys come from.
pub(crate) trait KeySource: Send + Sync + fmt::Debug {
    /// The keys for `kid` and `alg`. May start a refresh when asked with [`Ask::MayFetch`].
    fn lookup(&self, kid: Option<&str>, alg: Algorithm, ask: Ask) -> Lookup;
    /// The algorithms the keys known now use (for the allow-list check at build time).
    fn algorithms(&self) -> Vec<Algorithm>;
    /// The URL keys are fetched from, if they are fetched.
    fn jwks_uri(&self) -> Option<&str> {
        None
    }
}

#[derive(Debug)]
struct StaticKeys(KeySet);

impl KeySource for StaticKeys {
    fn lookup(&self, kid: Option<&str>, alg: Algorithm, _ask: Ask) -> Lookup {
        let found = self.0.candidates(kid, alg);
        if found.is_empty() {
            Lookup::Missing
        } else {
            Lookup::Found(found)
        }
    }
    fn algorithms(&self) -> Vec<Algorithm> {
        self.0.iter().map(|k| k.algorithm()).collect()
    }
}

/// A trusted issuer and where its keys come from. `Debug` redacts any user information
/// (`user:password@`) in the issuer identifier.
#[derive(Clone)]
pub struct Issuer {
    /// Shared with every identity it issues (a reference count, not a copy per token).
    pub(super) issuer: Arc<str>,
    pub(super) source: Arc<dyn KeySource>,
}

impl fmt::Debug for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issuer")
            .field("issuer", &Redacted(&self.issuer))
            .field("source", &self.source)
            .finish()
    }
}

impl Issuer {
    /// An issuer whose keys are given here (PEM, JWK, JWKS or HMAC; see [`KeySet`]).
    pub fn with_keys(issuer: impl Into<String>, keys: KeySet) -> Self {
        Self {
            issuer: issuer.into().into(),
            source: Arc::new(StaticKeys(keys)),
        }
    }

    #[cfg(feature = "remote-jwks")]
    pub(crate) fn with_source(issuer: impl Into<String>, source: Arc<dyn KeySource>) -> Self {
        Self {
            issuer: issuer.into().into(),
            source,
        }
    }

    /// The issuer identifier (`iss`).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The JWKS URL this issuer's keys are fetched from (configured, or found by discovery);
    /// `None` for keys given in the configuration.
    pub fn jwks_uri(&self) -> Option<&str> {
        self.source.jwks_uri()
    }
}
