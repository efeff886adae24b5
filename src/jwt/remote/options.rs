//! How keys are fetched and kept: [`RemoteJwksOptions`], and what goes wrong:
//! [`RemoteKeysError`].

use std::time::Duration;

/// The longest key-set lifetime accepted in the options (keys are kept for at most this long
/// between fetches; a longer one could also overflow the clock arithmetic).
const MAX_MAX_AGE_LIMIT: Duration = Duration::from_secs(366 * 24 * 60 * 60);

use crate::{
    fetch::Limits,
    jwt::JwtConfigError,
    resource::{redact_userinfo, redact_userinfo_in},
};

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
/// - **Start.** [`Issuer::with_jwks_uri`](crate::jwt::Issuer::with_jwks_uri) is lazy (the first request fetches);
///   [`Issuer::with_jwks_uri_eager`](crate::jwt::Issuer::with_jwks_uri_eager) and [`Issuer::discover`](crate::jwt::Issuer::discover) fetch before returning and return
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
    /// The transport rules of each fetch.
    pub(super) fn limits(&self) -> Limits {
        Limits {
            timeout: self.timeout,
            max_body_bytes: self.max_body_bytes,
            allow_plain_http: self.allow_plain_http_non_loopback,
            max_redirects: crate::fetch::MAX_REDIRECTS,
        }
    }

    pub(super) fn check(&self) -> Result<(), JwtConfigError> {
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
        if self.max_max_age > MAX_MAX_AGE_LIMIT || self.default_max_age > MAX_MAX_AGE_LIMIT {
            return bad("max_max_age and default_max_age must be at most 366 days");
        }
        Ok(())
    }

    /// How long a response with these headers is kept, within bounds.
    pub(super) fn lifetime(&self, cache_control: Option<&str>, age: Option<u64>) -> Duration {
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
    pub(super) fn fetch(url: &str, reason: &str) -> Self {
        Self::Fetch {
            url: redact_userinfo(url),
            reason: redact_userinfo_in(reason).into_owned(),
        }
    }

    pub(super) fn jwks(url: &str, reason: &str) -> Self {
        Self::Jwks {
            url: redact_userinfo(url),
            reason: redact_userinfo_in(reason).into_owned(),
        }
    }

    pub(super) fn issuer_mismatch(url: &str, expected: &str, found: &str) -> Self {
        Self::IssuerMismatch {
            url: redact_userinfo(url),
            expected: redact_userinfo(expected),
            found: redact_userinfo(found),
        }
    }

    pub(super) fn no_metadata(issuer: &str, tried: &str) -> Self {
        Self::NoMetadata {
            issuer: redact_userinfo(issuer),
            tried: redact_userinfo_in(tried).into_owned(),
        }
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
        let o = RemoteJwksOptions {
            max_max_age: Duration::MAX,
            ..Default::default()
        };
        assert!(o.check().is_err());
    }
}
