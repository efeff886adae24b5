//! Keys fetched from a JWKS URL, and found by discovery from an issuer URL (feature
//! `remote-jwks`, on by default). The behaviour is documented on [`RemoteJwksOptions`].

use std::{
    error::Error as _,
    fmt,
    sync::{Arc, OnceLock, Weak},
    time::{Duration, Instant},
};

use arc_swap::{ArcSwap, ArcSwapOption};
use futures_util::future::{BoxFuture, FutureExt, Shared};
use reqwest::{Url, header, redirect};
use tokio::task::AbortHandle;

use super::{Algorithm, Ask, Issuer, JwtConfigError, KeySet, KeySource, Lookup};
use crate::resource::{
    Redacted, ResourceUrl, ResourceUrlError, redact_userinfo, redact_userinfo_in,
};

/// The most redirects followed when fetching keys or metadata.
const MAX_REDIRECTS: usize = 3;
/// The most unknown key ids remembered.
const MAX_UNKNOWN_KIDS: usize = 256;
/// The most key ids remembered as having left the key set.
const MAX_RETIRED_KIDS: usize = 64;
/// Longer key ids are never remembered (they are attacker-chosen).
const MAX_REMEMBERED_KID_BYTES: usize = 128;

/// How keys are fetched from a JWKS URL and cached (feature `remote-jwks`, on by default).
/// Every field has a sensible default ([`RemoteJwksOptions::default`]); change what you need
/// with `..Default::default()`.
///
/// - **Cache.** The key set is kept for the `Cache-Control: max-age` the server sends, bounded by
///   [`min_max_age`](RemoteJwksOptions::min_max_age) and
///   [`max_max_age`](RemoteJwksOptions::max_max_age) (5 min to 24 h by default; `no-store` and
///   `no-cache` count as the lower bound, `s-maxage` is ignored, `Age` is subtracted). A
///   background task refreshes it at 80 % of that lifetime, and stops when the verifier is
///   dropped. A lookup that finds the keys expired still answers with them and starts a refresh
///   behind (stale-while-revalidate).
/// - **Unknown `kid`.** A token naming a key not in the set is first judged on its claims, read
///   unverified (issuer, audience, expiry): one that no key could make valid is refused (`401`)
///   without a fetch. Otherwise it starts one refresh, shared by every request waiting for it
///   (single-flight), at most once per [`cooldown`](RemoteJwksOptions::cooldown) (30 s by
///   default): a flood of made-up key ids costs the JWKS endpoint at most one request per
///   cooldown. A key id is refused as unknown (`401 invalid_token`) only once a successful
///   fetch that started after the token asked for it, or one that saw the key leave the set,
///   says it is not there; it is then remembered for
///   [`unknown_kid_ttl`](RemoteJwksOptions::unknown_kid_ttl) and refused at once, without
///   spending the refresh budget. Within the cooldown a key id that no fetch has looked for yet
///   gets `503` with `Retry-After` (the rest of the cooldown): it may be a key the
///   authorization server published after the last fetch, and a `401` would send its clients
///   to log in again.
/// - **Outages.** While the endpoint is down, answers garbage, or serves no usable key, the keys
///   known keep working (stale-if-error, for at most
///   [`max_stale`](RemoteJwksOptions::max_stale) past their expiry). A token whose key cannot be
///   known because the keys cannot be fetched gets `503` with `Retry-After`, never `401`, so that
///   clients do not start a pointless re-authorization; unless its claims alone refuse it
///   (expired, not yet valid, another issuer or resource), which gets `401 invalid_token`.
/// - **Fetching.** `GET` with `Accept: application/json`, a total timeout (5 s), a body cap
///   (1 MiB), at most 3 redirects and never from https to http; `https` is required except on
///   loopback hosts (or with the explicit
///   [`allow_plain_http_non_loopback`](RemoteJwksOptions::allow_plain_http_non_loopback)).
///   Unusable keys in a set are skipped; a set with no usable key at all counts as a failed
///   fetch, and the keys known are kept.
/// - **Hot path.** A lookup reads an [`arc_swap`] snapshot: no lock, no I/O, no global mutex.
///   Refreshes run in their own task, so a client that disconnects cannot cancel one.
/// - **Start.** [`Issuer::with_jwks_uri`] is lazy (the first request fetches);
///   [`Issuer::with_jwks_uri_eager`] and [`Issuer::discover`] fetch before returning and return
///   an error, never panic, when they cannot.
///
/// ```no_run
/// use mcp_server_auth::jwt::{Issuer, JwtVerifier, RemoteJwksOptions};
/// use mcp_server_auth::ResourceUrl;
///
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// // Lazy: nothing is fetched until the first token arrives.
/// let issuer = Issuer::with_jwks_uri(
///     "https://auth.example.com",
///     "https://auth.example.com/.well-known/jwks.json",
///     RemoteJwksOptions::default(),
/// )?;
/// // Or: discovery from the issuer URL (RFC 8414, then OpenID Connect), keys fetched at once.
/// let issuer = Issuer::discover("https://auth.example.com", RemoteJwksOptions::default()).await?;
/// let verifier = JwtVerifier::builder(ResourceUrl::parse("https://mcp.example.com/mcp")?)
///     .issuer(issuer)
///     .build()?;
/// # let _ = verifier;
/// # Ok(())
/// # }
/// ```
///
/// ```
/// use std::time::Duration;
/// use mcp_server_auth::jwt::RemoteJwksOptions;
///
/// let options = RemoteJwksOptions {
///     timeout: Duration::from_secs(2),
///     ..Default::default()
/// };
/// # let _ = options;
/// ```
#[derive(Debug, Clone)]
pub struct RemoteJwksOptions {
    /// The whole time one fetch may take: connecting, the response and its body. Default 5 s.
    pub timeout: Duration,
    /// The largest response body read; a larger one fails the fetch. Default 1 MiB.
    pub max_body_bytes: usize,
    /// The shortest time between two fetches started by tokens with an unknown key id (or by
    /// requests while no key could be fetched). Default 30 s.
    pub cooldown: Duration,
    /// The shortest time a key set is kept, whatever `Cache-Control` says (also what
    /// `no-store` and `no-cache` mean here). Default 5 min; at least 1 s.
    pub min_max_age: Duration,
    /// The longest time a key set is kept, whatever `Cache-Control` says. Default 24 h.
    pub max_max_age: Duration,
    /// How long a key set is kept when the response has no `max-age`. Default 10 min.
    pub default_max_age: Duration,
    /// The most `Retry-After` sent with a `503` when keys cannot be fetched (less when the next
    /// fetch is due sooner). Default 30 s.
    pub retry_after: Duration,
    /// How long a key id still unknown after a successful fetch is refused without another
    /// fetch. Default 30 s, the default cooldown: longer saves the JWKS endpoint nothing (fetches
    /// are limited to one per cooldown anyway) and delays a new key that a token used before
    /// the JWKS published it. Zero switches this off.
    pub unknown_kid_ttl: Duration,
    /// How long past their expiry keys keep working while they cannot be fetched again. After
    /// that, tokens get `503` until a fetch succeeds. Default 24 h.
    pub max_stale: Duration,
    /// Accepts plain `http` URLs on hosts that are not loopback. **An explicit opt-out**:
    /// anyone on the path could substitute keys and forge tokens. Default `false`.
    pub allow_plain_http_non_loopback: bool,
    /// An HTTP client of your own (proxies, a private certificate authority). The timeout and
    /// size cap above still apply to each request, and a response whose final URL is not
    /// acceptable is refused, but its redirect policy is its own: limit it. Default: a client
    /// built here with rustls and the platform's certificate roots.
    pub client: Option<reqwest::Client>,
}

impl Default for RemoteJwksOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            max_body_bytes: 1 << 20,
            cooldown: Duration::from_secs(30),
            min_max_age: Duration::from_secs(5 * 60),
            max_max_age: Duration::from_secs(24 * 60 * 60),
            default_max_age: Duration::from_secs(10 * 60),
            retry_after: Duration::from_secs(30),
            unknown_kid_ttl: Duration::from_secs(30),
            max_stale: Duration::from_secs(24 * 60 * 60),
            allow_plain_http_non_loopback: false,
            client: None,
        }
    }
}

impl RemoteJwksOptions {
    fn check(&self) -> Result<(), JwtConfigError> {
        let bad = |why| Err(JwtConfigError::RemoteOptions(why));
        if self.timeout.is_zero() {
            return bad("the timeout must not be zero");
        }
        if self.max_body_bytes == 0 {
            return bad("max_body_bytes must not be zero");
        }
        if self.min_max_age < Duration::from_secs(1) {
            return bad("min_max_age must be at least 1 s");
        }
        if self.min_max_age > self.max_max_age {
            return bad("min_max_age must not be larger than max_max_age");
        }
        Ok(())
    }

    /// How long a response with these headers is kept, within bounds.
    fn lifetime(&self, cache_control: Option<&str>, age: Option<u64>) -> Duration {
        let mut max_age: Option<u64> = None;
        let mut no_cache = false;
        for directive in cache_control.unwrap_or("").split(',') {
            let (name, value) = match directive.split_once('=') {
                Some((n, v)) => (n.trim(), Some(v.trim().trim_matches('"'))),
                None => (directive.trim(), None),
            };
            if name.eq_ignore_ascii_case("max-age") {
                if let Some(secs) = value.and_then(|v| v.parse::<u64>().ok()) {
                    max_age = Some(max_age.map_or(secs, |m| m.min(secs)));
                }
            } else if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache")
            {
                no_cache = true;
            }
        }
        let lifetime = match (no_cache, max_age) {
            (true, _) => Duration::ZERO,
            (false, Some(secs)) => Duration::from_secs(secs.saturating_sub(age.unwrap_or(0))),
            (false, None) => self.default_max_age,
        };
        lifetime.max(self.min_max_age).min(self.max_max_age)
    }
}

/// Why keys (or authorization server metadata) could not be had. No URL in it carries user
/// information (`user:password@`): it is redacted, also in URLs that a reason quotes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteKeysError {
    /// The configuration is wrong (a URL, or the options).
    #[error(transparent)]
    Config(#[from] JwtConfigError),
    /// The request failed: network, timeout, status, size, or a refused redirect.
    #[error(
        "fetching {url} failed: {reason}. Check the URL, and that the server answers from here"
    )]
    Fetch {
        /// The URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The response is not a JWKS document with at least one usable key.
    #[error("{url} did not serve a usable JWKS document: {reason}")]
    Jwks {
        /// The URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The metadata document names another issuer than the one configured (RFC 8414 §3.3).
    #[error(
        "the metadata at {url} is for the issuer {found:?}, not {expected:?}: configure the issuer \
         exactly as the authorization server names itself (scheme, host, path, trailing slash)"
    )]
    IssuerMismatch {
        /// The metadata URL.
        url: String,
        /// The issuer configured.
        expected: String,
        /// The issuer the document names.
        found: String,
    },
    /// No usable metadata document was found at any well-known URL.
    #[error(
        "no authorization server metadata found for {issuer:?} ({tried}). Check the issuer URL, \
         or configure the JWKS URL with Issuer::with_jwks_uri"
    )]
    NoMetadata {
        /// The issuer.
        issuer: String,
        /// Each URL tried and what went wrong there.
        tried: String,
    },
}

/// The one way these errors are built: every URL in them, and every URL a reason quotes (an
/// HTTP client's error, a redirect's target, a server's answer), loses its user information
/// here, so that no message, log line or `Debug` shows a password.
impl RemoteKeysError {
    fn fetch(url: &str, reason: &str) -> Self {
        Self::Fetch {
            url: redact_userinfo(url),
            reason: redact_userinfo_in(reason).into_owned(),
        }
    }

    fn jwks(url: &str, reason: &str) -> Self {
        Self::Jwks {
            url: redact_userinfo(url),
            reason: redact_userinfo_in(reason).into_owned(),
        }
    }

    fn issuer_mismatch(url: &str, expected: &str, found: &str) -> Self {
        Self::IssuerMismatch {
            url: redact_userinfo(url),
            expected: redact_userinfo(expected),
            found: redact_userinfo(found),
        }
    }

    fn no_metadata(issuer: &str, tried: &str) -> Self {
        Self::NoMetadata {
            issuer: redact_userinfo(issuer),
            tried: redact_userinfo_in(tried).into_owned(),
        }
    }
}

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

/// Checks a URL keys or metadata are fetched from: https, or http on a loopback host.
fn check_url(url: &str, allow_plain_http: bool) -> Result<Url, String> {
    let checked = if allow_plain_http {
        ResourceUrl::parse_allowing_plain_http(url)
    } else {
        ResourceUrl::parse(url)
    };
    match checked {
        Ok(_) => {}
        Err(ResourceUrlError::InsecureHttp(_)) => {
            return Err(
                "it uses plain http on a host that is not loopback, so anyone on the path \
                        could substitute keys and forge tokens. Use https (or set \
                        allow_plain_http_non_loopback on a network nothing else can reach)"
                    .to_owned(),
            );
        }
        Err(e) => return Err(e.to_string()),
    }
    let parsed = Url::parse(url).map_err(|e| format!("it is not a valid URL: {e}"))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("it has user information (user:password@host); remove it".to_owned());
    }
    Ok(parsed)
}

fn build_client(options: &RemoteJwksOptions) -> Result<reqwest::Client, String> {
    let allow_plain_http = options.allow_plain_http_non_loopback;
    let policy = redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() > MAX_REDIRECTS {
            return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
        }
        if attempt.url().scheme() == "http"
            && attempt.previous().iter().any(|u| u.scheme() == "https")
        {
            return attempt.error("a redirect from https to plain http was refused");
        }
        match check_url(attempt.url().as_str(), allow_plain_http) {
            Ok(_) => attempt.follow(),
            Err(why) => {
                let message = format!("a redirect to {} was refused: {why}", attempt.url());
                attempt.error(message)
            }
        }
    });
    reqwest::Client::builder()
        .timeout(options.timeout)
        .connect_timeout(options.timeout)
        .redirect(policy)
        .user_agent(concat!("mcp-server-auth/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| describe(&e, options.timeout))
}

/// A reqwest error with its causes, for messages.
fn describe(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        return format!(
            "no complete answer within {} ms (the timeout)",
            timeout.as_millis()
        );
    }
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A response that was read whole.
struct Body {
    bytes: Vec<u8>,
    cache_control: Option<String>,
    age: Option<u64>,
}

/// Its messages may quote URLs with user information (reqwest's errors name the URL); the
/// [`RemoteKeysError`] they end up in redacts them.
enum GetError {
    /// A response with a status other than 2xx.
    Status(reqwest::StatusCode),
    Other(String),
}

impl fmt::Display for GetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Status(s) => write!(f, "the server answered {s}"),
            Self::Other(why) => f.write_str(why),
        }
    }
}

/// GETs `url`, within the timeout and the size cap.
async fn get(
    client: &reqwest::Client,
    url: &Url,
    options: &RemoteJwksOptions,
) -> Result<Body, GetError> {
    let max = options.max_body_bytes;
    let too_big = || {
        GetError::Other(format!(
            "the body is larger than max_body_bytes ({max} bytes)"
        ))
    };
    let fetch = async {
        let mut response = client
            .get(url.clone())
            .header(header::ACCEPT, "application/json")
            .timeout(options.timeout)
            .send()
            .await
            .map_err(|e| GetError::Other(describe(&e, options.timeout)))?;
        // A client of the user's own may follow redirects anywhere: check where it ended.
        if response.url() != url {
            check_url(
                response.url().as_str(),
                options.allow_plain_http_non_loopback,
            )
            .map_err(|why| GetError::Other(format!("redirected to {}: {why}", response.url())))?;
        }
        if !response.status().is_success() {
            return Err(GetError::Status(response.status()));
        }
        if response.content_length().is_some_and(|n| n > max as u64) {
            return Err(too_big());
        }
        let headers = response.headers();
        let cache_control = headers
            .get_all(header::CACHE_CONTROL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(",");
        let cache_control = (!cache_control.is_empty()).then_some(cache_control);
        let age = headers
            .get(header::AGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| GetError::Other(describe(&e, options.timeout)))?
        {
            if bytes.len() + chunk.len() > max {
                return Err(too_big());
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(Body {
            bytes,
            cache_control,
            age,
        })
    };
    match tokio::time::timeout(options.timeout, fetch).await {
        Ok(result) => result,
        Err(_) => Err(GetError::Other(format!(
            "no complete answer within {} ms (the timeout)",
            options.timeout.as_millis()
        ))),
    }
}

impl RemoteKeys {
    pub(crate) fn new(
        jwks_uri: &str,
        options: RemoteJwksOptions,
    ) -> Result<Arc<Self>, JwtConfigError> {
        options.check()?;
        let bad = |reason: String| JwtConfigError::jwks_uri(jwks_uri, &reason);
        let uri = check_url(jwks_uri, options.allow_plain_http_non_loopback).map_err(bad)?;
        let client = match &options.client {
            Some(client) => client.clone(),
            None => build_client(&options)
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
        let body = get(&self.client, &self.uri, &self.options)
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
            let _ = this.refresh(force).await;
            this.inflight.store(None);
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

/// The well-known URLs metadata is looked for at: RFC 8414 (path inserted after the host),
/// then OpenID Connect Discovery (path appended).
fn metadata_urls(issuer: &Url, issuer_str: &str) -> Vec<String> {
    let origin = issuer.origin().ascii_serialization();
    let path = issuer.path().trim_end_matches('/');
    vec![
        format!("{origin}/.well-known/oauth-authorization-server{path}"),
        format!(
            "{}/.well-known/openid-configuration",
            issuer_str.trim_end_matches('/')
        ),
    ]
}

/// Reads `issuer` and `jwks_uri` from a metadata document.
fn read_metadata(body: &[u8]) -> Result<(String, Option<String>), String> {
    let doc: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("not a JSON document ({e})"))?;
    let issuer = doc
        .get("issuer")
        .and_then(serde_json::Value::as_str)
        .ok_or("the document has no issuer")?;
    let jwks_uri = doc.get("jwks_uri").and_then(serde_json::Value::as_str);
    Ok((issuer.to_owned(), jwks_uri.map(str::to_owned)))
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

    /// Finds the issuer's `jwks_uri` from its metadata, then fetches the keys (eagerly).
    ///
    /// Looks first for RFC 8414 authorization server metadata
    /// (`https://h/tenant` → `https://h/.well-known/oauth-authorization-server/tenant`), then for
    /// OpenID Connect metadata (`https://h/tenant/.well-known/openid-configuration`). The
    /// document's `issuer` must equal `issuer_url` exactly; tokens must then carry that same
    /// `iss`. The URLs follow the same rules as [`with_jwks_uri`](Self::with_jwks_uri).
    pub async fn discover(
        issuer_url: &str,
        mut options: RemoteJwksOptions,
    ) -> Result<Self, RemoteKeysError> {
        options.check()?;
        let bad =
            |reason: String| RemoteKeysError::Config(JwtConfigError::jwks_uri(issuer_url, &reason));
        let issuer = check_url(issuer_url, options.allow_plain_http_non_loopback).map_err(bad)?;
        if issuer.query().is_some() {
            return Err(bad(
                "an issuer identifier has no query (RFC 8414 §2)".to_owned()
            ));
        }
        let client = match &options.client {
            Some(client) => client.clone(),
            None => build_client(&options)
                .map_err(|e| bad(format!("cannot build the HTTP client: {e}")))?,
        };
        options.client = Some(client.clone());
        let mut tried = Vec::new();
        let mut mismatch = None;
        for url in metadata_urls(&issuer, issuer_url) {
            let parsed = match Url::parse(&url) {
                Ok(u) => u,
                Err(e) => {
                    tried.push(format!("{url}: {e}"));
                    continue;
                }
            };
            let found = match get(&client, &parsed, &options).await {
                Ok(body) => read_metadata(&body.bytes),
                Err(e) => Err(e.to_string()),
            };
            match found {
                Ok((found, _)) if found != issuer_url => {
                    tried.push(format!("{url}: the issuer is {found:?}"));
                    mismatch
                        .get_or_insert(RemoteKeysError::issuer_mismatch(&url, issuer_url, &found));
                }
                Ok((_, None)) => tried.push(format!("{url}: the document has no jwks_uri")),
                Ok((_, Some(jwks_uri))) => {
                    tracing::debug!(
                        issuer = %Redacted(issuer_url),
                        metadata = %Redacted(&url),
                        jwks_uri = %Redacted(&jwks_uri),
                        "issuer discovered"
                    );
                    return Self::with_jwks_uri_eager(issuer_url, &jwks_uri, options).await;
                }
                Err(why) => tried.push(format!("{url}: {why}")),
            }
        }
        Err(mismatch.unwrap_or_else(|| RemoteKeysError::no_metadata(issuer_url, &tried.join("; "))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetime_within_bounds() {
        let o = RemoteJwksOptions::default();
        let secs = |s| Duration::from_secs(s);
        assert_eq!(o.lifetime(None, None), secs(600));
        assert_eq!(o.lifetime(Some("public, max-age=3600"), None), secs(3600));
        assert_eq!(o.lifetime(Some("max-age=\"3600\""), None), secs(3600));
        assert_eq!(o.lifetime(Some("MAX-AGE=3600"), Some(600)), secs(3000));
        assert_eq!(o.lifetime(Some("max-age=10"), None), secs(300));
        assert_eq!(o.lifetime(Some("max-age=999999999"), None), secs(86_400));
        assert_eq!(o.lifetime(Some("no-store"), None), secs(300));
        assert_eq!(o.lifetime(Some("max-age=3600, no-cache"), None), secs(300));
        assert_eq!(o.lifetime(Some("s-maxage=7200"), None), secs(600));
        assert_eq!(
            o.lifetime(Some("s-maxage=7200, max-age=1200"), None),
            secs(1200)
        );
        assert_eq!(o.lifetime(Some("max-age=abc"), None), secs(600));
        assert_eq!(
            o.lifetime(Some("max-age=3600,max-age=1800"), None),
            secs(1800)
        );
    }

    #[test]
    fn urls_checked() {
        assert!(check_url("https://auth.example.com/jwks", false).is_ok());
        assert!(check_url("http://127.0.0.1:8080/jwks", false).is_ok());
        assert!(check_url("http://localhost/jwks", false).is_ok());
        assert!(check_url("http://[::1]/jwks", false).is_ok());
        assert!(check_url("http://auth.example.com/jwks", false).is_err());
        assert!(check_url("http://auth.example.com/jwks", true).is_ok());
        assert!(check_url("ftp://auth.example.com/jwks", true).is_err());
        assert!(check_url("https://user@auth.example.com/jwks", false).is_err());
        assert!(check_url("https://u:p@auth.example.com/jwks", false).is_err());
        assert!(check_url("https://auth.example.com/jwks#x", false).is_err());
        assert!(check_url("/jwks", false).is_err());
    }

    #[test]
    fn metadata_urls_rfc8414_then_oidc() {
        let urls = |s: &str| metadata_urls(&Url::parse(s).unwrap(), s);
        assert_eq!(
            urls("https://h/tenant"),
            [
                "https://h/.well-known/oauth-authorization-server/tenant",
                "https://h/tenant/.well-known/openid-configuration"
            ]
        );
        assert_eq!(
            urls("https://h"),
            [
                "https://h/.well-known/oauth-authorization-server",
                "https://h/.well-known/openid-configuration"
            ]
        );
        assert_eq!(
            urls("https://h:8443/"),
            [
                "https://h:8443/.well-known/oauth-authorization-server",
                "https://h:8443/.well-known/openid-configuration"
            ]
        );
    }

    #[test]
    fn options_checked() {
        assert!(RemoteJwksOptions::default().check().is_ok());
        let o = RemoteJwksOptions {
            min_max_age: Duration::from_secs(10),
            max_max_age: Duration::from_secs(5),
            ..Default::default()
        };
        assert!(o.check().is_err());
        let o = RemoteJwksOptions {
            timeout: Duration::ZERO,
            ..Default::default()
        };
        assert!(o.check().is_err());
    }

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
