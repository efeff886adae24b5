//! Verifier: opaque access tokens, checked by asking the authorization server (RFC 7662 token
//! introspection; feature `introspection`, on by default).
//!
//! Many authorization servers hand MCP clients opaque tokens rather than JWTs (for dynamically
//! registered clients, or by default). Such a token means nothing here: only its issuer can say
//! whether it is live, for whom and for what. So the verifier POSTs it to the introspection
//! endpoint, authenticated as this server ([`ClientAuth`]), and judges the answer as strictly
//! as a JWT's claims (`answer` explains the rules: `active` the boolean `true`, `exp`, `nbf`,
//! `iss`, `aud` naming this resource, a `cnf` only as a DPoP binding, see [`crate::dpop`]).
//!
//! Why each choice:
//! - **Failures are `503`, never `401`.** When the endpoint is down, slow, refuses this
//!   server's own credentials, or answers garbage, the token may well be good; a `401` would
//!   send every client to log in again, for nothing. They get `503` with `Retry-After`, and the
//!   failure is logged as an error (the operator must act: a wrong client secret shows here).
//!   Only an inactive or unacceptable token is `401 invalid_token`.
//! - **A cache, because every request carries the token.** A positive answer is kept until the
//!   earlier of its `exp` and [`max_age`](IntrospectionOptions::max_age) (60 s by default: a
//!   revoked token stops working within a minute; [`invalidate`](IntrospectionVerifier::invalidate)
//!   for sooner); a negative one for
//!   [`inactive_ttl`](IntrospectionOptions::inactive_ttl) (5 s). Failures are not cached: the
//!   next request asks again, so an outage ends for every token the moment the endpoint is
//!   back; single flight and the cap below already keep the load bounded. Keys are keyed
//!   digests of the tokens (never the tokens), and entries and memory are bounded.
//! - **One call per token, and a cap overall.** Concurrent requests with the same new token
//!   share one call (an MCP client sends several at once); at most
//!   [`max_concurrent_calls`](IntrospectionOptions::max_concurrent_calls) calls are in the air,
//!   and beyond them a new token gets `503` at once, with no call: a flood of made-up tokens
//!   cannot turn this server into an amplifier against its authorization server.
//! - **The transport rules of key fetching** (https except loopback, 5 s timeout, 1 MiB cap),
//!   and **no redirect**: the call carries a token and this server's credentials.
//! - **JWTs stay local.** Given a [`JwtVerifier`](IntrospectionVerifierBuilder::jwt), a token
//!   that reads as a JWT whose (unverified) `iss` is one of its issuers is verified by it alone;
//!   everything else is introspected. A JWT that fails locally is refused, never sent to the
//!   endpoint as a second chance (`jwt.or(introspection)` would do exactly that).
//!
//! ```no_run
//! use mcp_server_auth::introspection::{ClientAuth, IntrospectionVerifier};
//! use mcp_server_auth::{AuthLayer, ResourceUrl};
//!
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! let resource = ResourceUrl::parse("https://mcp.example.com/mcp")?;
//! let verifier = IntrospectionVerifier::builder(
//!     resource,
//!     ClientAuth::client_secret_basic("mcp-server", "the-client-secret"),
//! )
//! // The endpoint from the issuer's metadata (RFC 8414); `iss` must then be that issuer.
//! .discover("https://auth.example.com")
//! .await?
//! .build()?;
//! let layer = AuthLayer::new(verifier);
//! # let _ = layer;
//! # Ok(())
//! # }
//! ```
//!
//! ```
//! use mcp_server_auth::introspection::{ClientAuth, IntrospectionVerifier};
//! use mcp_server_auth::ResourceUrl;
//!
//! let verifier = IntrospectionVerifier::builder(
//!     ResourceUrl::parse("https://mcp.example.com/mcp").unwrap(),
//!     ClientAuth::client_secret_post("mcp-server", "the-client-secret"),
//! )
//! .endpoint("https://auth.example.com/oauth2/introspect")
//! .issuer("https://auth.example.com")
//! .build()
//! .unwrap();
//! assert_eq!(verifier.cache_usage(), (0, 0));
//! ```

mod answer;
mod builder;
mod client_auth;

use std::{
    fmt,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use http::header;
use reqwest::Url;

pub use builder::{IntrospectionError, IntrospectionOptions, IntrospectionVerifierBuilder};
pub use client_auth::{ClientAuth, SigningKey};

use crate::{
    audit::metrics,
    cache::{Busy, Current, Deadline, Flights, TtlCache},
    fetch::{self, FetchError, Limits},
    identity::AuthInfo,
    jwt::{JwtVerifier, estimate_bytes, now_secs},
    rejection::{Invalid, Rejection},
    secret::SecretTag,
    verifier::{AuthRequest, Credentials, Schemes, Verdict, Verifier},
};
use answer::Rules;

/// What a refused token's cache entry is estimated to take.
const REFUSED_ENTRY_BYTES: usize = 128;

/// A cached answer.
#[derive(Clone)]
enum Outcome {
    Active(AuthInfo),
    Refused(Invalid),
}

impl Current for Outcome {
    fn is_current(&self) -> bool {
        true
    }
}

impl Outcome {
    fn verdict(&self) -> Result<AuthInfo, Rejection> {
        match self {
            Self::Active(info) => Ok(info.clone()),
            Self::Refused(reason) => Err(Rejection::Invalid(*reason)),
        }
    }
}

type Answer = Result<AuthInfo, Rejection>;

struct Inner {
    /// Never has user information (`check_url` refuses it): it may be logged as it is.
    endpoint: Url,
    client: reqwest::Client,
    limits: Limits,
    auth: ClientAuth,
    rules: Rules,
    options: IntrospectionOptions,
    cache: TtlCache<Outcome>,
    flights: Flights<Answer>,
    jwt: Option<JwtVerifier>,
}

/// Verifies opaque access tokens by RFC 7662 introspection, with a cache. Cheap to clone.
/// Built with [`IntrospectionVerifier::builder`]. `Debug` shows no secret and no token.
#[derive(Clone)]
pub struct IntrospectionVerifier(Arc<Inner>);

impl fmt::Debug for IntrospectionVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.0;
        f.debug_struct("IntrospectionVerifier")
            .field("endpoint", &inner.endpoint.as_str())
            .field("client_auth", &inner.auth)
            .field("issuers", &inner.rules.issuers)
            .field("resource", &inner.rules.resource)
            .field("cache", &inner.cache)
            .field("flights", &inner.flights)
            .field("jwt", &inner.jwt)
            .finish_non_exhaustive()
    }
}

impl IntrospectionVerifier {
    /// Starts a verifier for tokens issued for `resource` (the public URL of the MCP endpoint),
    /// authenticating to the introspection endpoint with `auth`.
    pub fn builder(resource: crate::ResourceUrl, auth: ClientAuth) -> IntrospectionVerifierBuilder {
        IntrospectionVerifierBuilder::new(resource, auth)
    }

    /// The introspection endpoint.
    pub fn endpoint(&self) -> &str {
        self.0.endpoint.as_str()
    }

    /// Forgets what is cached about `token` (a server that learns of a revocation: a logout, an
    /// RFC 7009 revocation it relays), so that its next request is introspected again. Whether
    /// something was cached. Tokens verified locally as JWTs are not affected.
    pub fn invalidate(&self, token: &str) -> bool {
        let cache = &self.0.cache;
        cache.invalidate(&cache.tag(token.as_bytes()))
    }

    /// The number of cached answers, and their estimated memory.
    pub fn cache_usage(&self) -> (usize, usize) {
        (self.0.cache.len(), self.0.cache.bytes())
    }

    /// Verifies `token` as the layer does (through the cache).
    pub async fn verify_token(&self, token: &str) -> Result<AuthInfo, Rejection> {
        self.verify(&AuthRequest::credentials_only(Credentials::Bearer(token)))
            .resolve()
            .await
    }
}

/// `token` has the shape of a compact JWS (three parts): only then may it be a JWT.
fn jwt_shaped(token: &str) -> bool {
    token.bytes().filter(|&b| b == b'.').count() == 2
}

impl Verifier for IntrospectionVerifier {
    fn schemes(&self) -> Schemes {
        Schemes::BEARER
    }

    fn verify(&self, request: &AuthRequest<'_>) -> Verdict {
        // A token bound to a key is refused unless its proof was checked (RFC 9449 §7.2), one
        // bound to a certificate unless the certificate is compared (RFC 8705 §3).
        request.refuse_unproven(self.verify_token_of(request))
    }
}

impl IntrospectionVerifier {
    fn verify_token_of(&self, request: &AuthRequest<'_>) -> Verdict {
        let Credentials::Bearer(token) = request.credentials() else {
            return Verdict::Ready(Err(Rejection::NoCredentials));
        };
        let inner = &self.0;
        if let Some(jwt) = &inner.jwt
            && jwt_shaped(token)
            // Judged locally, whatever the outcome: never introspected as a fallback.
            && let Some(verdict) = jwt.verify_if_ours(token, || request.token_tag())
        {
            return verdict;
        }
        // The layer's tag of the token, when it has one (the same key as the cache's).
        let tag = request
            .token_tag()
            .unwrap_or_else(|| inner.cache.tag(token.as_bytes()));
        if let Some(answer) = inner.cache.get(&tag, Outcome::verdict) {
            return Verdict::Ready(answer);
        }
        let this = inner.clone();
        let token = String::from(*token);
        match inner.flights.join(tag, move || this.introspect(tag, token)) {
            Ok(flight) => Verdict::Pending(Box::pin(flight)),
            Err(Busy) => {
                tracing::warn!(
                    endpoint = inner.endpoint.as_str(),
                    max_concurrent_calls = inner.options.max_concurrent_calls,
                    "token introspection: too many calls in the air; a new token is answered 503"
                );
                Verdict::Ready(Err(inner.unavailable()))
            }
        }
    }
}

impl Inner {
    fn unavailable(&self) -> Rejection {
        Rejection::Unavailable {
            retry_after: self.options.retry_after,
        }
    }

    /// One flight: asks the endpoint about `token`, caches what it says, and answers.
    async fn introspect(self: Arc<Self>, tag: SecretTag, token: String) -> Answer {
        // A flight that ended a moment ago may have answered already.
        if let Some(answer) = self.cache.recheck(&tag, Outcome::verdict) {
            return answer;
        }
        let body = match self.call(&token).await {
            Ok(body) => body,
            Err(why) => {
                metrics::introspection_call("error");
                tracing::error!(
                    endpoint = self.endpoint.as_str(),
                    error = %why,
                    "token introspection failed; the request is answered 503"
                );
                return Err(self.unavailable());
            }
        };
        drop(token);
        let verdict = match answer::judge(&body, &self.rules, now_secs()) {
            Ok(verdict) => verdict,
            Err(why) => {
                metrics::introspection_call("error");
                tracing::error!(
                    endpoint = self.endpoint.as_str(),
                    error = why.0,
                    "token introspection: unusable answer; the request is answered 503"
                );
                return Err(self.unavailable());
            }
        };
        let now = SystemTime::now();
        match verdict {
            answer::Verdict::Active(info, exp) => {
                metrics::introspection_call("active");
                let until = (UNIX_EPOCH + Duration::from_secs(exp)).min(now + self.options.max_age);
                let bytes = estimate_bytes(&info);
                self.cache.insert(
                    tag,
                    Outcome::Active(info.clone()),
                    Deadline::at(until),
                    bytes,
                );
                Ok(info)
            }
            answer::Verdict::Refused(reason) => {
                metrics::introspection_call("inactive");
                let until = Deadline::at(now + self.options.inactive_ttl);
                self.cache
                    .insert(tag, Outcome::Refused(reason), until, REFUSED_ENTRY_BYTES);
                Err(Rejection::Invalid(reason))
            }
        }
    }

    /// POSTs `token` to the endpoint; the answer's body, or why there is none.
    async fn call(&self, token: &str) -> Result<Vec<u8>, String> {
        let mut form = String::with_capacity(token.len() + 128);
        client_auth::form_field(&mut form, "token", token);
        client_auth::form_field(&mut form, "token_type_hint", "access_token");
        let authorization = self.auth.apply(self.endpoint.as_str(), &mut form)?;
        let mut request = self
            .client
            .post(self.endpoint.clone())
            .header(header::ACCEPT, "application/json")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form);
        if let Some(value) = authorization {
            request = request.header(header::AUTHORIZATION, value);
        }
        match fetch::send(request, &self.endpoint, &self.limits).await {
            Ok(body) => Ok(body.bytes),
            Err(FetchError::Status(status)) if status == 401 || status == 403 => Err(format!(
                "the endpoint refused this server's client credentials ({status}): check the \
                 client id and secret (or key) and the authentication method ({})",
                self.auth.method()
            )),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Judges an introspection answer as the verifier does, for `https://mcp.example.com/mcp`,
/// issuer `https://auth.example.com`, leeway 60 s: `None` if it is no answer (the call would
/// count as failed, `503`), `Some(Ok(subject))` if accepted, `Some(Err(why))` if refused.
#[doc(hidden)] // Reachable for the fuzz target and tests; not part of the API (no semver promise).
pub fn read_answer(body: &[u8]) -> Option<Result<String, String>> {
    let rules = Rules {
        resource: crate::ResourceUrl::parse("https://mcp.example.com/mcp").ok(),
        audiences: Vec::new(),
        issuers: vec!["https://auth.example.com".to_owned()],
        allow_missing_audience: false,
        leeway: crate::jwt::DEFAULT_LEEWAY.as_secs(),
    };
    match answer::judge(body, &rules, now_secs()).ok()? {
        answer::Verdict::Active(info, _) => Some(Ok(info.subject().to_owned())),
        answer::Verdict::Refused(why) => Some(Err(why.to_string())),
    }
}
