//! Keys fetched from a JWKS URL, and found by discovery from an issuer URL (feature
//! `remote-jwks`, on by default). The behaviour is documented on [`RemoteJwksOptions`].

use std::{
    fmt,
    sync::{Arc, OnceLock, Weak},
    time::{Duration, Instant},
};

use arc_swap::{ArcSwap, ArcSwapOption};
use futures_util::future::{BoxFuture, FutureExt, Shared};
use reqwest::Url;
use tokio::task::AbortHandle;

use super::{Algorithm, Ask, Issuer, JwtConfigError, KeySet, KeySource, Lookup};
use crate::{fetch, resource::Redacted};

mod discovery;
mod options;

#[cfg(feature = "introspection")]
pub(crate) use discovery::find_metadata;
pub use options::{RemoteJwksOptions, RemoteKeysError};

/// The most unknown key ids remembered.
const MAX_UNKNOWN_KIDS: usize = 256;
/// The most key ids remembered as having left the key set.
const MAX_RETIRED_KIDS: usize = 64;
/// Longer key ids are never remembered (they are attacker-chosen).
const MAX_REMEMBERED_KID_BYTES: usize = 128;

/// What is known about the key set. Replaced whole (never mutated) by the one refresh running.
struct State {
    keys: KeySet,
    /// When the last successful fetch ended.
    fetched_at: Option<Instant>,
    /// When the last successful fetch started: it could have seen a key asked for before then.
    fetch_started: Option<Instant>,
    /// Key ids that left the set (newest last): every later fetch says they are unknown, so
    /// tokens naming them are refused at once for as long as they are remembered.
    retired: Vec<Box<str>>,
    /// When the keys go stale.
    expires_at: Instant,
    /// When the background task refreshes them.
    refresh_at: Instant,
    /// When the last fetch (successful or not) ended.
    last_attempt: Option<Instant>,
    /// Why the last fetch failed, if it did.
    last_error: Option<String>,
    /// Failed fetches in a row.
    failures: u32,
}

impl State {
    /// Whether the keys may be used: there are some, and they are not stale for too long.
    fn usable(&self, now: Instant, max_stale: Duration) -> bool {
        !self.keys.is_empty()
            && self
                .expires_at
                .checked_add(max_stale)
                .is_none_or(|limit| now < limit)
    }

    /// What is left of the cooldown after the last fetch.
    fn cooldown_left(&self, now: Instant, cooldown: Duration) -> Duration {
        self.last_attempt.map_or(Duration::ZERO, |t| {
            cooldown.saturating_sub(now.saturating_duration_since(t))
        })
    }
}

type Refresh = Shared<BoxFuture<'static, ()>>;

/// An issuer's keys, fetched from a JWKS URL.
pub(crate) struct RemoteKeys {
    /// Never has user information ([`check_url`] refuses it), so it may be logged as it is.
    uri: Url,
    options: RemoteJwksOptions,
    client: reqwest::Client,
    state: ArcSwap<State>,
    /// Key ids unknown after a successful fetch, with when they were found unknown.
    unknown: ArcSwap<Vec<(Box<str>, Instant)>>,
    /// The refresh running, if any: every caller waits for the same one.
    inflight: ArcSwapOption<Refresh>,
    background: OnceLock<AbortHandle>,
    /// Wakes the background task when the state changed, so that it plans again.
    wake: Arc<tokio::sync::Notify>,
    me: Weak<RemoteKeys>,
}

impl fmt::Debug for RemoteKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.load();
        f.debug_struct("RemoteKeys")
            .field("jwks_uri", &Redacted(self.uri.as_str()))
            .field("keys", &state.keys.len())
            .field("last_error", &state.last_error)
            .finish_non_exhaustive()
    }
}

impl Drop for RemoteKeys {
    fn drop(&mut self) {
        if let Some(task) = self.background.get() {
            task.abort();
        }
    }
}

impl RemoteKeys {
    pub(crate) fn new(
        jwks_uri: &str,
        options: RemoteJwksOptions,
    ) -> Result<Arc<Self>, JwtConfigError> {
        options.check()?;
        let bad = |reason: String| JwtConfigError::jwks_uri(jwks_uri, &reason);
        let uri = fetch::check_url(jwks_uri, options.allow_plain_http_non_loopback).map_err(bad)?;
        let client = match &options.client {
            Some(client) => client.clone(),
            None => fetch::client(&options.limits())
                .map_err(|e| bad(format!("cannot build the HTTP client: {e}")))?,
        };
        let now = Instant::now();
        Ok(Arc::new_cyclic(|me| Self {
            uri,
            options,
            client,
            state: ArcSwap::from_pointee(State {
                keys: KeySet::new(),
                fetched_at: None,
                fetch_started: None,
                retired: Vec::new(),
                expires_at: now,
                refresh_at: now,
                last_attempt: None,
                last_error: None,
                failures: 0,
            }),
            unknown: ArcSwap::from_pointee(Vec::new()),
            inflight: ArcSwapOption::empty(),
            background: OnceLock::new(),
            wake: Arc::new(tokio::sync::Notify::new()),
            me: me.clone(),
        }))
    }

    /// Fetches and parses the key set, with how long to keep it.
    async fn fetch(&self) -> Result<(KeySet, Duration, usize), RemoteKeysError> {
        let url = self.uri.as_str();
        let body = fetch::get(&self.client, &self.uri, &self.options.limits())
            .await
            .map_err(|e| RemoteKeysError::fetch(url, &e.to_string()))?;
        let bad = |reason: String| RemoteKeysError::jwks(url, &reason);
        let text = std::str::from_utf8(&body.bytes)
            .map_err(|_| bad("the body is not UTF-8".to_owned()))?;
        let (keys, skipped) =
            KeySet::from_jwks_json_counting(text).map_err(|e| bad(e.to_string()))?;
        if keys.is_empty() {
            return Err(bad(if skipped > 0 {
                format!(
                    "none of its {skipped} keys is usable (signature keys of type RSA, EC P-256/P-384 \
                     or Ed25519 are needed)"
                )
            } else {
                "it has no keys".to_owned()
            }));
        }
        let lifetime = self
            .options
            .lifetime(body.cache_control.as_deref(), body.age);
        Ok((keys, lifetime, skipped))
    }

    /// Fetches the keys now and publishes the result. Only one runs at a time: it is called by
    /// the refresh task that owns `inflight`, or before anyone else can see these keys.
    async fn refresh(&self, force: bool) -> Result<(), RemoteKeysError> {
        let cooldown = self.options.cooldown;
        if !force
            && !self
                .state
                .load()
                .cooldown_left(Instant::now(), cooldown)
                .is_zero()
        {
            return Ok(());
        }
        let started = Instant::now();
        let result = self.fetch().await;
        crate::audit::metrics::jwks_fetch(result.is_ok());
        let now = Instant::now();
        let old = self.state.load_full();
        let url = self.uri.as_str();
        let next = match &result {
            Ok((keys, lifetime, skipped)) => {
                tracing::debug!(
                    jwks_uri = url,
                    keys = keys.len(),
                    skipped,
                    max_age_secs = lifetime.as_secs(),
                    "JWKS fetched"
                );
                if *skipped > 0 {
                    tracing::warn!(jwks_uri = url, skipped, "JWKS: unusable keys skipped");
                }
                let keys = old.keys.merge_from(keys.clone());
                let retired = retired_kids(&old, &keys);
                State {
                    keys,
                    fetched_at: Some(now),
                    fetch_started: Some(started),
                    retired,
                    expires_at: now + *lifetime,
                    refresh_at: now + lifetime.mul_f64(0.8),
                    last_attempt: Some(now),
                    last_error: None,
                    failures: 0,
                }
            }
            Err(e) => {
                let too_stale = !old.keys.is_empty() && !old.usable(now, self.options.max_stale);
                let keys = if too_stale {
                    tracing::warn!(
                        jwks_uri = url,
                        error = %e,
                        "JWKS fetch failed and the keys known are stale beyond max_stale: dropping them"
                    );
                    // Retires them, so that the verdicts they signed leave the token cache.
                    old.keys.merge_from(KeySet::new())
                } else {
                    tracing::warn!(jwks_uri = url, error = %e, kept = old.keys.len(), "JWKS fetch failed; keeping the keys known");
                    old.keys.clone()
                };
                State {
                    keys,
                    fetched_at: old.fetched_at,
                    fetch_started: old.fetch_started,
                    retired: old.retired.clone(),
                    expires_at: old.expires_at,
                    refresh_at: old.refresh_at,
                    last_attempt: Some(now),
                    last_error: Some(e.to_string()),
                    failures: old.failures.saturating_add(1),
                }
            }
        };
        self.state.store(Arc::new(next));
        self.ensure_background();
        self.wake.notify_one();
        result.map(|_| ())
    }

    /// Starts a refresh in its own task, or joins the one running. `None` without a Tokio
    /// runtime.
    fn start_refresh(&self, force: bool) -> Option<Refresh> {
        let current = self.inflight.load();
        if let Some(running) = current.as_ref() {
            return Some((**running).clone());
        }
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let this = self.me.upgrade()?;
        let (done, wait) = tokio::sync::oneshot::channel::<()>();
        let refresh: Refresh = async move {
            let _ = wait.await;
        }
        .boxed()
        .shared();
        let previous = self
            .inflight
            .compare_and_swap(&current, Some(Arc::new(refresh.clone())));
        if let Some(running) = previous.as_ref() {
            // Another caller started one in the meantime.
            return Some((**running).clone());
        }
        runtime.spawn(async move {
            /// Ends the refresh even if it panics: otherwise every later lookup would join a
            /// refresh that never ends again, and the keys would never be fetched.
            struct Finished(Arc<RemoteKeys>);
            impl Drop for Finished {
                fn drop(&mut self) {
                    self.0.inflight.store(None);
                }
            }
            let finished = Finished(this);
            let _ = finished.0.refresh(force).await;
            drop(finished);
            drop(done);
        });
        Some(refresh)
    }

    /// Starts the background refresh task once (in the runtime the first fetch ran in).
    fn ensure_background(&self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        self.background.get_or_init(|| {
            let (me, wake) = (self.me.clone(), self.wake.clone());
            runtime.spawn(background(me, wake)).abort_handle()
        });
    }

    /// How long the background task sleeps before the next refresh.
    fn next_wait(&self, now: Instant) -> Duration {
        let state = self.state.load();
        let wait = if state.last_error.is_some() || state.fetched_at.is_none() {
            // Retry with backoff: the cooldown, doubled per failure, up to min_max_age.
            let base = self.options.cooldown.max(Duration::from_secs(1));
            let cap = self.options.min_max_age.max(base);
            let backoff = base
                .saturating_mul(1 << state.failures.saturating_sub(1).min(16))
                .min(cap);
            let since = state
                .last_attempt
                .map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
            backoff.saturating_sub(since)
        } else {
            state.refresh_at.saturating_duration_since(now)
        };
        wait.max(Duration::from_millis(100))
    }

    /// The `Retry-After` for a 503: the rest of the cooldown, at most `retry_after`, at least 1 s.
    fn retry_after(&self, state: &State, now: Instant) -> Duration {
        let left = state.cooldown_left(now, self.options.cooldown);
        let after = if left.is_zero() {
            self.options.retry_after
        } else {
            left.min(self.options.retry_after)
        };
        let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
        Duration::from_secs(secs.max(1))
    }

    /// Whether `kid` was found unknown by a recent successful fetch.
    fn known_unknown(&self, kid: &str, now: Instant) -> bool {
        let ttl = self.options.unknown_kid_ttl;
        self.unknown
            .load()
            .iter()
            .any(|(k, at)| &**k == kid && now.saturating_duration_since(*at) < ttl)
    }

    /// Remembers that `kid` is unknown after a successful fetch (bounded; oldest dropped).
    fn remember_unknown(&self, kid: &str, now: Instant) {
        let ttl = self.options.unknown_kid_ttl;
        if ttl.is_zero() || kid.len() > MAX_REMEMBERED_KID_BYTES {
            return;
        }
        self.unknown.rcu(|list| {
            let mut next: Vec<(Box<str>, Instant)> = list
                .iter()
                .filter(|(k, at)| &**k != kid && now.saturating_duration_since(*at) < ttl)
                .cloned()
                .collect();
            if next.len() >= MAX_UNKNOWN_KIDS {
                next.remove(0);
            }
            next.push((kid.into(), now));
            next
        });
    }
}

/// The key ids that have left the set by `next` (fetched after `old`'s): those already
/// remembered and those `old` had, unless `next` has them (again); the newest
/// [`MAX_RETIRED_KIDS`].
fn retired_kids(old: &State, next: &KeySet) -> Vec<Box<str>> {
    let mut retired: Vec<Box<str>> = old.retired.clone();
    for kid in old.keys.iter().filter_map(|k| k.kid()) {
        if !retired.iter().any(|k| &**k == kid) {
            retired.push(kid.into());
        }
    }
    retired.retain(|kid| !next.has_kid(kid));
    let excess = retired.len().saturating_sub(MAX_RETIRED_KIDS);
    retired.drain(..excess);
    retired
}

/// Refreshes ahead of expiry (and retries failed fetches) until the keys are dropped.
async fn background(me: Weak<RemoteKeys>, wake: Arc<tokio::sync::Notify>) {
    loop {
        let wait = match me.upgrade() {
            Some(keys) => keys.next_wait(Instant::now()),
            None => return,
        };
        if tokio::time::timeout(wait, wake.notified()).await.is_ok() {
            // A fetch ended (a failure to retry, or a new lifetime): plan again.
            continue;
        }
        let refresh = match me.upgrade() {
            Some(keys) => keys.start_refresh(true),
            None => return,
        };
        match refresh {
            Some(refresh) => refresh.await,
            None => return,
        }
    }
}

impl KeySource for RemoteKeys {
    fn lookup(&self, kid: Option<&str>, alg: Algorithm, ask: Ask) -> Lookup {
        let now = Instant::now();
        let options = &self.options;
        let state = self.state.load();
        let usable = state.usable(now, options.max_stale);
        if usable {
            let found = state.keys.candidates(kid, alg);
            if !found.is_empty() {
                if !matches!(ask, Ask::AfterFetch { .. })
                    && now >= state.expires_at
                    && state.cooldown_left(now, options.cooldown).is_zero()
                {
                    // Stale: answer with the keys known and refresh behind.
                    let _ = self.start_refresh(false);
                }
                return Lookup::Found(found);
            }
            if let Some(kid) = kid
                && (state.keys.has_kid(kid)
                    || state.retired.iter().any(|k| &**k == kid)
                    || self.known_unknown(kid, now))
            {
                // A known key for another algorithm, a key that left the set, or a key id a
                // fetch just said is unknown.
                return Lookup::Missing;
            }
        }
        // Whether the keys, as they stand, cannot say that this key does not exist.
        let cannot_tell = !usable || state.last_error.is_some();
        let later = || Lookup::Unavailable(self.retry_after(&state, now));
        match ask {
            Ask::AtHand => Lookup::NotAtHand,
            Ask::AfterFetch { asked } => {
                // Unknown for sure only after a successful fetch that started once the request
                // asked: one that started before may have missed a key published meanwhile.
                if cannot_tell || state.fetch_started.is_none_or(|started| started < asked) {
                    return later();
                }
                if let Some(kid) = kid {
                    self.remember_unknown(kid, now);
                }
                Lookup::Missing
            }
            Ask::MayFetch => {
                let running = self.inflight.load().is_some();
                if !running && !state.cooldown_left(now, options.cooldown).is_zero() {
                    // No fetch has looked for this key yet, and none may start before the
                    // cooldown ends: a key published since the last fetch would be refused
                    // (401, "log in again") if this said it does not exist. Try again later.
                    return later();
                }
                match self.start_refresh(false) {
                    Some(refresh) => Lookup::Refreshing(refresh.boxed()),
                    None => {
                        tracing::warn!(
                            jwks_uri = self.uri.as_str(),
                            "cannot fetch keys outside a Tokio runtime"
                        );
                        later()
                    }
                }
            }
        }
    }

    fn algorithms(&self) -> Vec<Algorithm> {
        self.state
            .load()
            .keys
            .iter()
            .map(|k| k.algorithm())
            .collect()
    }

    fn jwks_uri(&self) -> Option<&str> {
        Some(self.uri.as_str())
    }
}

impl Issuer {
    /// An issuer whose keys are fetched from `jwks_uri`, lazily: nothing is fetched until the
    /// first token arrives (which then waits for the fetch). The URL must use `https`, or
    /// `http` on a loopback host (see
    /// [`allow_plain_http_non_loopback`](RemoteJwksOptions::allow_plain_http_non_loopback)).
    /// See [`RemoteJwksOptions`] for caching, refresh and outages.
    pub fn with_jwks_uri(
        issuer: impl Into<String>,
        jwks_uri: &str,
        options: RemoteJwksOptions,
    ) -> Result<Self, JwtConfigError> {
        let keys = RemoteKeys::new(jwks_uri, options)?;
        Ok(Self::with_source(issuer, keys))
    }

    /// Like [`with_jwks_uri`](Self::with_jwks_uri), but fetches the keys before returning, so
    /// that a wrong URL or an unreachable server is found at startup. On failure, returns the
    /// error (nothing panics); to start anyway and fetch later, use
    /// [`with_jwks_uri`](Self::with_jwks_uri).
    pub async fn with_jwks_uri_eager(
        issuer: impl Into<String>,
        jwks_uri: &str,
        options: RemoteJwksOptions,
    ) -> Result<Self, RemoteKeysError> {
        let keys = RemoteKeys::new(jwks_uri, options)?;
        keys.refresh(true).await?;
        Ok(Self::with_source(issuer, keys))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_runtime_no_panic() {
        let keys = RemoteKeys::new(
            "https://auth.example.com/jwks",
            RemoteJwksOptions::default(),
        )
        .unwrap();
        match keys.lookup(Some("k1"), Algorithm::EdDSA, Ask::MayFetch) {
            Lookup::Unavailable(d) => assert!(d >= Duration::from_secs(1)),
            _ => panic!("expected Unavailable"),
        }
    }
}
