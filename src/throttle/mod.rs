//! Failed-authentication throttling: a limit on guessing credentials.
//!
//! A static token, a password or an API key can be guessed if nothing limits the guesses. So
//! [`ThrottleLayer`] counts the failed authentications (`401`s from the auth layer inside it)
//! of each client over a window; once a client reaches the limit, each of its requests with
//! credentials gets `429 Too Many Requests` with `Retry-After` (RFC 6585 §4, RFC 9110
//! §10.2.3) and a JSON body **without its credentials being checked**, until the window ends.
//! A refusal that does not depend on the credentials tells a guesser nothing: right and wrong
//! guesses get the same `429`.
//!
//! | request | what the layer does |
//! |---|---|
//! | with an `Authorization` header, client under the limit | passed on; a `401` (or a gRPC `unauthenticated`) adds one to the client's count |
//! | with an `Authorization` header, client at the limit | `429`, not passed on |
//! | without credentials (first contact: it gets its `401` challenge) | passed on, never counted |
//! | `OPTIONS` (CORS preflight), `GET`/`HEAD` of the metadata document | passed on, never counted |
//!
//! Successful requests do not count, and do not reset the count: a client that holds one valid
//! token and guesses another is still limited. The limit holds for guesses one after another;
//! guesses sent at the same time are each judged before any of their failures is counted, so
//! a burst can pass the limit by the number of requests in flight at once (a few with a static
//! verifier, which decides at once; more with one that waits for keys or an introspection
//! endpoint) before every later one gets `429`.
//!
//! # The client
//!
//! A client is its address as the server sees it, the TCP peer, with an IPv6 address counted
//! by its /64 (one customer's network: a guesser on it cannot take a fresh address per guess)
//! and an IPv4-mapped IPv6 address by its IPv4 address. The server puts the peer address in the
//! request extensions:
//!
//! - **axum**: serve with `into_make_service_with_connect_info::<SocketAddr>()`; the layer reads
//!   `ConnectInfo<SocketAddr>` (with this crate's `axum` feature) or a `SocketAddr`.
//! - **hyper** (and hyper-util): insert the `SocketAddr` that `accept` returned into each
//!   request, e.g. with `service_fn(move |mut req| { req.extensions_mut().insert(peer); … })`
//!   or tower's `MapRequestLayer`.
//! - **tonic**: its transport puts a `TcpConnectInfo` in the request; map it to a
//!   `SocketAddr` extension in front of this layer, e.g. with `MapRequestLayer` and
//!   `req.extensions().get::<TcpConnectInfo>().and_then(|i| i.remote_addr())`.
//!
//! Requests without a peer address share one count (and the layer warns once): a
//! misconfiguration limits everyone, it does not switch the limit off. Behind a reverse proxy
//! every peer is the proxy: list it in [`TrustedProxies`], and the client is read from its
//! `X-Forwarded-For` (or RFC 7239 `Forwarded`) header, as the [`client`] module explains.
//!
//! # The store, and when it is down
//!
//! The counts live in a [`Store`]: [`MemoryStore`] by default (bounded: 65,536 clients at
//! most, 8 MiB at most), or Redis / Valkey ([`RedisStore`](crate::store::RedisStore), feature
//! `redis`), so that several replicas trip the limit at their combined count. When the store
//! cannot answer within its short timeout, the layer **fails open**: the request is judged as if
//! nothing had been counted (passed on to authentication, which still checks its credentials),
//! and the store logs a warning. Throttling is a brake on guessing, not the check of the
//! credentials: refusing every request while Redis is down would turn a Redis outage into an
//! outage of every MCP server behind it, while letting requests through only lets guessing go
//! at its unthrottled pace for that time. The wait is bounded by the store's timeout (100 ms by
//! default for Redis, then none for a pause of 1 s).
//!
//! # Where it goes in the stack
//!
//! Outermost first: CORS → Origin → **throttle** → authentication → the rest. It must be
//! outside the auth layer, whose `401`s it counts; inside Origin, which refuses foreign pages
//! before any credential is looked at.
//!
//! ```
//! use std::{convert::Infallible, net::SocketAddr, time::Duration};
//! use http::{Request, Response, header::AUTHORIZATION};
//! use mcp_server_auth::{AuthLayer, bearer::StaticBearer, throttle::ThrottleLayer};
//! use tower::{Service, ServiceBuilder, ServiceExt, service_fn};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let tokens = StaticBearer::new([("ci", "c2VjcmV0LXRva2VuLWZvci1jaQ")]).unwrap();
//! let mut service = ServiceBuilder::new()
//!     .layer(ThrottleLayer::new(3, Duration::from_secs(60))) // 3 failures a minute
//!     .layer(AuthLayer::new(tokens))
//!     .service(service_fn(|_: Request<String>| async { Ok::<_, Infallible>(Response::new(String::new())) }));
//! let guess = |token: &str| {
//!     let mut req = Request::builder()
//!         .header(AUTHORIZATION, format!("Bearer {token}"))
//!         .body(String::new())
//!         .unwrap();
//!     // What `ConnectInfo` or a hyper server puts there: the peer address.
//!     req.extensions_mut().insert(SocketAddr::from(([203, 0, 113, 9], 50000)));
//!     req
//! };
//! for _ in 0..3 {
//!     let res = service.ready().await.unwrap().call(guess("wrong")).await.unwrap();
//!     assert_eq!(res.status(), 401);
//! }
//! // The limit is reached: even the right token is not checked now.
//! let res = service.ready().await.unwrap().call(guess("c2VjcmV0LXRva2VuLWZvci1jaQ")).await.unwrap();
//! assert_eq!(res.status(), 429);
//! assert!(res.headers().contains_key("retry-after"));
//! # });
//! ```

pub mod client;
mod future;

pub use client::{Cidr, ForwardedHeader, TrustedProxies, TrustedProxiesError};
pub use future::ResponseFuture;

use std::{
    fmt,
    future::Future,
    mem,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll, Waker},
    time::Duration,
};

use http::{Method, Request, Response, header::AUTHORIZATION};
use tower_layer::Layer;
use tower_service::Service;

use self::{
    client::ClientKey,
    future::{Count, Pending},
};
use crate::{
    audit::{self, Decision, Start},
    origin::is_metadata_read,
    refusal::ResponseBody,
    store::{Counter, MemoryStore, Store, StoreError},
};

/// A Tower layer that answers `429` to clients with too many failed authentications. See the
/// [module documentation](self).
pub struct ThrottleLayer<St = MemoryStore> {
    /// `None`: switched off (a limit of 0).
    shared: Option<Arc<Shared<St>>>,
}

/// What every service of one layer shares.
#[derive(Clone)]
pub(crate) struct Shared<St> {
    pub(crate) store: St,
    limit: u64,
    pub(crate) window: Duration,
    proxies: TrustedProxies,
}

impl<St> Clone for ThrottleLayer<St> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<St: fmt::Debug> fmt::Debug for ThrottleLayer<St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.shared {
            None => f.write_str("ThrottleLayer(off)"),
            Some(s) => f
                .debug_struct("ThrottleLayer")
                .field("limit", &s.limit)
                .field("window", &s.window)
                .field("trusted_proxies", &s.proxies)
                .field("store", &s.store)
                .finish(),
        }
    }
}

impl ThrottleLayer<MemoryStore> {
    /// A layer allowing `limit` failed authentications per client per `window`, counted in a
    /// new [`MemoryStore`]. A `limit` of 0 switches it off.
    pub fn new(limit: u32, window: Duration) -> Self {
        Self::with_store(MemoryStore::new(), limit, window)
    }
}

impl<St: Store> ThrottleLayer<St> {
    /// A layer allowing `limit` failed authentications per client per `window` (at least 1 ms),
    /// counted in `store`. A `limit` of 0 switches it off.
    pub fn with_store(store: St, limit: u32, window: Duration) -> Self {
        if limit == 0 {
            return Self::disabled();
        }
        Self {
            shared: Some(Arc::new(Shared {
                store,
                limit: u64::from(limit),
                window: window.max(Duration::from_millis(1)),
                proxies: TrustedProxies::none(),
            })),
        }
    }

    /// Reads the client from the forwarding header of these proxies (by default none is
    /// trusted: the client is the peer).
    pub fn trusted_proxies(mut self, proxies: TrustedProxies) -> Self {
        if let Some(shared) = &mut self.shared {
            Arc::make_mut(shared).proxies = proxies;
        }
        self
    }
}

impl<St> ThrottleLayer<St> {
    /// A layer that passes every request on and counts nothing.
    pub fn disabled() -> Self {
        Self { shared: None }
    }

    /// Whether the layer throttles (a limit above 0).
    pub fn is_enabled(&self) -> bool {
        self.shared.is_some()
    }

    /// The failed authentications allowed per window (0: off).
    pub fn limit(&self) -> u32 {
        self.shared
            .as_ref()
            .map_or(0, |s| u32::try_from(s.limit).unwrap_or(u32::MAX))
    }

    /// The window, if the layer is on.
    pub fn window(&self) -> Option<Duration> {
        self.shared.as_ref().map(|s| s.window)
    }

    /// The store, if the layer is on.
    pub fn store(&self) -> Option<&St> {
        self.shared.as_ref().map(|s| &s.store)
    }
}

impl<S, St> Layer<S> for ThrottleLayer<St> {
    type Service = ThrottleService<S, St>;

    fn layer(&self, inner: S) -> Self::Service {
        ThrottleService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service built by [`ThrottleLayer`].
pub struct ThrottleService<S, St = MemoryStore> {
    inner: S,
    shared: Option<Arc<Shared<St>>>,
}

impl<S: Clone, St> Clone for ThrottleService<S, St> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<S: fmt::Debug, St> fmt::Debug for ThrottleService<S, St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThrottleService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

/// Whether the warning about requests without a peer address was given.
static WARNED_NO_PEER: AtomicBool = AtomicBool::new(false);

impl<St: Store> Shared<St> {
    /// The key `req` is counted under.
    #[inline(always)]
    fn key<B>(&self, req: &Request<B>) -> ClientKey {
        match crate::peer::peer(req.extensions()) {
            Some(ip) => ClientKey::of(self.proxies.client_ip(ip, req.headers())),
            None => no_peer(),
        }
    }
}

/// The key of a request without a peer address (out of line: a misconfiguration), with its
/// warning, given once.
#[cold]
#[inline(never)]
fn no_peer() -> ClientKey {
    if !WARNED_NO_PEER.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            "failed-auth throttling: a request carries no peer address, so all such requests \
             share one count; serve axum with into_make_service_with_connect_info::<SocketAddr>(), \
             or put the peer's SocketAddr in the request extensions"
        );
    }
    ClientKey::unknown()
}

impl<St> Shared<St> {
    /// How long the client of `key` must wait, if it is at the limit. A store that cannot
    /// answer blocks nobody (see "The store, and when it is down").
    #[inline]
    pub(crate) fn blocked(
        &self,
        found: Result<Option<Counter>, StoreError>,
        key: &ClientKey,
    ) -> Option<Duration> {
        match found {
            // The common case (a client that never failed) stays inline.
            Ok(None) => None,
            found => self.found(found, key),
        }
    }

    /// [`blocked`](Self::blocked) for a client the store knows, or a store that failed.
    #[inline(never)]
    fn found(
        &self,
        found: Result<Option<Counter>, StoreError>,
        key: &ClientKey,
    ) -> Option<Duration> {
        match found {
            Ok(Some(c)) if c.count >= self.limit => {
                tracing::debug!(
                    reason = "throttled",
                    client = ?key,
                    failures = c.count,
                    "refused: too many failed authentications"
                );
                Some(c.resets_in)
            }
            Ok(_) => None,
            Err(_) => {
                audit::metrics::store_error();
                None
            }
        }
    }
}

/// The `429` (out of line: the common path stays small), recorded.
#[cold]
#[inline(never)]
pub(crate) fn refusal<B, R>(
    start: Start,
    retry_after: Duration,
    req: &Request<R>,
) -> Response<ResponseBody<B>> {
    let res = crate::refusal::throttled::refusal(retry_after, req);
    if start.recording() {
        Decision::refused(audit::Layer::Throttle, res.status(), "throttled")
            .scheme(audit::presented(req.headers()))
            .record(start, req.headers(), req.extensions());
    }
    res
}

/// Whether the layer judges `req`: it carries credentials, and is neither a preflight nor a
/// read of the metadata document.
#[inline]
fn judged<B>(req: &Request<B>) -> bool {
    let method = req.method();
    *method != Method::OPTIONS
        && has_authorization(req.headers())
        // The metadata document is read with `GET` or `HEAD`: an MCP `POST` skips the path.
        && !(matches!(*method, Method::GET | Method::HEAD)
            && is_metadata_read(method, req.uri().path()))
}

/// Whether `headers` has an `Authorization` field. For the dozen or so names a request carries,
/// a scan of the names (a compare each) costs less than the map's lookup (a hash, then a probe
/// that may visit several slots); past that, the lookup.
#[inline]
fn has_authorization(headers: &http::HeaderMap) -> bool {
    if headers.keys_len() <= 16 {
        headers.keys().any(|name| *name == AUTHORIZATION)
    } else {
        headers.contains_key(&AUTHORIZATION)
    }
}

impl<S, St, ReqBody, ResBody> Service<Request<ReqBody>> for ThrottleService<S, St>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    St: Store,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody, ResBody, St>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let count = match self.shared.as_ref().filter(|_| judged(&req)) {
            None => None,
            Some(shared) => {
                let key = shared.key(&req);
                let mut get = shared.store.get(key.as_bytes());
                // A store in memory answers at once: decide now, without waiting (and without
                // reading the clock: the decision takes no time worth recording).
                match Pin::new(&mut get).poll(&mut Context::from_waker(Waker::noop())) {
                    Poll::Ready(found) => match shared.blocked(found, &key) {
                        Some(retry_after) => {
                            return ResponseFuture::refused(refusal(
                                Start::now(),
                                retry_after,
                                &req,
                            ));
                        }
                        None => Some(Count::new(key, shared, &req)),
                    },
                    Poll::Pending => {
                        let count = Count::new(key, shared, &req);
                        return self.wait(get, count, req);
                    }
                }
            }
        };
        // One way in for every request that is passed on: the future is built in one place.
        ResponseFuture::inner(self.inner.call(req), count)
    }
}

impl<S, St> ThrottleService<S, St>
where
    S: Clone,
    St: Store,
{
    /// The future of a request that waits for the store (one that does I/O) before the call.
    fn wait<ReqBody, ResBody>(
        &mut self,
        get: St::Get,
        count: Count<St>,
        req: Request<ReqBody>,
    ) -> ResponseFuture<S, ReqBody, ResBody, St>
    where
        S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    {
        let start = Start::now();
        // Take the service that was driven to readiness; leave a clone in its place.
        let clone = self.inner.clone();
        let inner = mem::replace(&mut self.inner, clone);
        let pending = Pending {
            req,
            inner,
            count,
            start,
        };
        ResponseFuture::checking(get, pending)
    }
}

#[cfg(test)]
mod tests {
    use http::header::{ACCEPT, CONTENT_TYPE, HeaderName};

    use super::*;

    fn request(method: Method, path: &str, names: usize, authorization: bool) -> Request<()> {
        let mut req = Request::builder().method(method).uri(path);
        for i in 0..names {
            req = req.header(format!("x-field-{i}"), "1");
        }
        req = req.header(CONTENT_TYPE, "application/json");
        if authorization {
            req = req.header(AUTHORIZATION, "Bearer x");
        }
        req.header(ACCEPT, "*/*").body(()).unwrap()
    }

    #[test]
    fn a_request_is_judged_when_it_carries_credentials_however_many_fields_it_has() {
        // Both ways of looking for the field: a scan of a few names, a lookup among many.
        for names in [0, 1, 13, 14, 15, 40] {
            let post = |auth| request(Method::POST, "/mcp", names, auth);
            assert!(judged(&post(true)), "{names} other fields");
            assert!(!judged(&post(false)), "{names} other fields");
            let mut repeated = post(false);
            repeated
                .headers_mut()
                .append(HeaderName::from_static("x-field-0"), "2".parse().unwrap());
            assert!(!judged(&repeated), "{names} other fields, one repeated");
        }
    }

    #[test]
    fn preflights_and_reads_of_the_metadata_document_are_not_judged() {
        let metadata = "/.well-known/oauth-protected-resource/mcp";
        assert!(!judged(&request(Method::OPTIONS, "/mcp", 0, true)));
        assert!(!judged(&request(Method::GET, metadata, 0, true)));
        assert!(!judged(&request(Method::HEAD, metadata, 0, true)));
        assert!(judged(&request(Method::POST, metadata, 0, true)));
        assert!(judged(&request(Method::GET, "/mcp", 0, true)));
        assert!(judged(&request(Method::DELETE, "/mcp", 0, true)));
    }
}
