//! The auth layer: ties credentials → verifier → identity → scopes → refusal together.
//!
//! [`AuthLayer`] wraps any `Service<http::Request<B>>` that answers `http::Response<B2>`: an axum
//! `Router` (`.layer(...)` or `.route_layer(...)`), a hyper service, a tonic server
//! (`Server::builder().layer(...)`), or rmcp's `StreamableHttpService` directly.
//!
//! For each request it:
//! 1. answers the Protected Resource Metadata document itself, if the path is its well-known
//!    path (public: no credentials needed);
//! 2. reads the `Authorization` header ([`crate::credentials`]);
//! 3. asks the [`Verifier`], with a view of the request ([`crate::verifier`]);
//! 4. checks the required scopes ([`crate::scope`]);
//! 5. on success, removes the `Authorization` header (no token passthrough), puts the
//!    [`AuthInfo`](crate::AuthInfo) in the request extensions and calls the inner service;
//!    otherwise it answers the refusal ([`crate::refusal`]: the status, the challenges, the gRPC
//!    form, `no-store`, `Connection: close`) without calling it.
//!
//! The files: this one (the layer and its service), `builder` ([`AuthLayerBuilder`]) and
//! `require_scopes` ([`RequireScopesLayer`]). What happens after the verifier (scopes, the
//! identity into the request, the refusal) is `crate::admission`, shared with the MCP
//! operation scope layer.
//!
//! ```
//! use std::convert::Infallible;
//! use http::{Request, Response, header::AUTHORIZATION};
//! use mcp_server_auth::{AuthInfo, AuthLayer, bearer::StaticBearer};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let tokens = StaticBearer::new([("ci", "c2VjcmV0LXRva2VuLWZvci1jaQ")]).unwrap();
//! let service = ServiceBuilder::new()
//!     .layer(AuthLayer::new(tokens))
//!     .service(service_fn(|req: Request<String>| async move {
//!         let who = req.extensions().get::<AuthInfo>().unwrap().subject().to_owned();
//!         Ok::<_, Infallible>(Response::new(who))
//!     }));
//! let request = Request::builder()
//!     .header(AUTHORIZATION, "Bearer c2VjcmV0LXRva2VuLWZvci1jaQ")
//!     .body(String::new())
//!     .unwrap();
//! let response = service.oneshot(request).await.unwrap();
//! assert_eq!(response.status(), 200);
//! # });
//! ```

mod builder;
mod dpop_nonce;
mod require_scopes;

use std::{
    mem,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
};

use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use crate::{
    audit::{self, Decision, Start},
    credentials::{self, CredentialError, Scheme},
    metadata::MetadataEndpoint,
    refusal::{
        ResponseBody, ResponseFuture, connection,
        future::{Outcome, Prelude},
    },
    scope::ScopeRequirement,
    secret::TagMemo,
    verifier::{
        AuthRequest, Credentials, Presented, Recall, Rejection, Schemes, Verdict, Verifier,
        VerifyFuture,
    },
};

use crate::admission::Admission;
pub use builder::{AuthLayerBuilder, BuildError};
pub use dpop_nonce::WithDpopNonce;
pub use require_scopes::{RequireScopes, RequireScopesLayer};

/// A Tower layer that authenticates every request with a [`Verifier`]. See the
/// [crate documentation](crate) for a complete example.
pub struct AuthLayer<V> {
    shared: Arc<Shared<V>>,
}

impl<V> Clone for AuthLayer<V> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<V: std::fmt::Debug> std::fmt::Debug for AuthLayer<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthLayer")
            .field("verifier", &self.shared.verifier)
            .field("admission", &self.shared.admission)
            .finish_non_exhaustive()
    }
}

struct Shared<V> {
    verifier: V,
    /// `verifier.schemes()`, fixed at construction.
    schemes: Schemes,
    metadata: Option<MetadataEndpoint>,
    max_header_bytes: usize,
    admission: Arc<Admission>,
}

impl<V: Verifier> AuthLayer<V> {
    /// A layer with the default settings: no metadata, no required scopes, realm `mcp`.
    ///
    /// # Panics
    /// If the verifier understands no scheme; use [`builder`](Self::builder) to get an error
    /// instead.
    pub fn new(verifier: V) -> Self {
        Self::builder(verifier)
            .build()
            .expect("the verifier accepts no credentials at all")
    }

    /// Starts configuring a layer around `verifier`.
    pub fn builder(verifier: V) -> AuthLayerBuilder<V> {
        AuthLayerBuilder::new(verifier)
    }

    /// The verifier.
    pub fn verifier(&self) -> &V {
        &self.shared.verifier
    }

    /// A layer requiring `requirement` of requests this layer has authenticated, for one route
    /// or a group of routes (for example with axum's `route_layer`). Its `403` challenges point
    /// at the same metadata and honour the same scope hierarchy as this layer.
    ///
    /// ```
    /// use axum::{Router, routing::post};
    /// use mcp_server_auth::{AuthLayer, ScopeRequirement, bearer::StaticBearer};
    ///
    /// # let tokens = StaticBearer::new([("a", "c2VjcmV0LXRva2VuLWZvci1sYXB0b3A")]).unwrap();
    /// let auth = AuthLayer::new(tokens);
    /// let app: Router = Router::new()
    ///     .route("/notes", post(|| async { "written" }))
    ///     .route_layer(auth.require_scopes(ScopeRequirement::all_of(["notes:write"]).unwrap()))
    ///     .route("/health", post(|| async { "ok" }))
    ///     .layer(auth);
    /// ```
    pub fn require_scopes(&self, requirement: ScopeRequirement) -> RequireScopesLayer {
        RequireScopesLayer::new(requirement, self.shared.admission.clone())
    }

    /// A layer requiring the scopes each MCP operation needs (per tool, prompt, resource or
    /// method) of requests this layer has authenticated. Put it inside this layer, in front of
    /// the MCP service; its `403` challenges point at the same metadata and honour the same
    /// scope hierarchy. See [`crate::mcp`].
    pub fn mcp_scopes(&self, scopes: crate::mcp::OperationScopes) -> crate::mcp::McpScopeLayer {
        crate::mcp::McpScopeLayer::new(scopes, self.shared.admission.clone())
    }
}

impl<S, V> Layer<S> for AuthLayer<V> {
    type Service = AuthService<S, V>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service built by [`AuthLayer`].
pub struct AuthService<S, V> {
    inner: S,
    shared: Arc<Shared<V>>,
}

impl<S: Clone, V> Clone for AuthService<S, V> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<S: std::fmt::Debug, V> std::fmt::Debug for AuthService<S, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<V: Verifier> Shared<V> {
    /// Reads the credentials and asks the verifier. Returns the scheme presented, if any.
    ///
    /// Credentials of a declared scheme are parsed and checked (malformed: `400`); any other
    /// scheme reaches the verifier as [`Credentials::Other`], unchecked.
    fn check<B>(&self, req: &Request<B>) -> (Option<Scheme>, Verdict) {
        if !self.schemes.has_authorization_scheme() {
            // No verifier reads `Authorization` (a proxy's assertion only): whatever the header
            // holds is not this layer's to judge.
            let request = AuthRequest::from_request(req, Credentials::None);
            return (None, self.verifier.verify(&request));
        }
        let refuse = |e: CredentialError| Verdict::Ready(Err(Rejection::InvalidRequest(e)));
        let raw = match credentials::raw_authorization(req.headers(), self.max_header_bytes) {
            Ok(Some(raw)) => raw,
            Ok(None) => {
                let request = AuthRequest::from_request(req, Credentials::None);
                return (None, self.verifier.verify(&request));
            }
            Err(e) => return (None, refuse(e)),
        };
        let schemes = &self.schemes;
        // A bearer token a verifier accepted before is admitted without being parsed again
        // (`crate::recall`); its tag, computed once, serves `verify` when it is not.
        let tag = TagMemo::default();
        if raw.is_bearer() && schemes.bearer() {
            let presented = Presented::kept(Scheme::Bearer, raw.credentials(), &tag);
            if let Recall::Accepted(info) = self.verifier.recall(&presented)
                // A bound token's proof or certificate is checked on every request.
                && info.dpop_jkt().is_none()
                && info.certificate_thumbprint().is_none()
            {
                return (Some(Scheme::Bearer), Verdict::Ready(Ok(info)));
            }
        }
        let auth = match raw.parse() {
            Ok(auth) => auth,
            Err(e) => return (None, refuse(e)),
        };
        let value = auth.credentials();
        // The value was not checked to be ASCII (`read_authorization`): a scheme whose syntax
        // is ASCII implies it when it parses; when it does not, or has no syntax of ours, a
        // value that is not ASCII is refused as such, as `credentials::authorization` would.
        let refuse_parsed = |e: CredentialError| {
            refuse(if auth.is_ascii() {
                e
            } else {
                CredentialError::NotAscii
            })
        };
        let verdict = match auth.scheme() {
            Scheme::Bearer if schemes.bearer() => match credentials::bearer_token(value) {
                Ok(token) => self.ask(req, Credentials::Bearer(token), &tag),
                Err(e) => refuse_parsed(e),
            },
            Scheme::DPoP if schemes.dpop() => match credentials::bearer_token(value) {
                // RFC 9449 §7.1: the same token68 syntax as Bearer's b64token.
                Ok(token) => self.ask(req, Credentials::DPoP(token), &tag),
                Err(e) => refuse_parsed(e),
            },
            Scheme::Basic if schemes.basic() => match credentials::basic(value) {
                Ok(basic) => self.ask(req, Credentials::Basic(&basic), &tag),
                Err(e) => refuse_parsed(e),
            },
            _ if !auth.is_ascii() => refuse(CredentialError::NotAscii),
            _ => {
                let scheme = auth.scheme_name();
                self.ask(req, Credentials::Other { scheme, value }, &tag)
            }
        };
        (Some(auth.scheme()), verdict)
    }

    /// Asks the verifier; `tag` keeps the tag of the token (if any) for the request.
    fn ask<B>(&self, req: &Request<B>, credentials: Credentials<'_>, tag: &TagMemo) -> Verdict {
        self.verifier
            .verify(&AuthRequest::from_request(req, credentials).keeping_tag(tag))
    }
}

impl<S, V, ReqBody, ResBody> Service<Request<ReqBody>> for AuthService<S, V>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    V: Verifier,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<WithDpopNonce<S::Future>, ResBody, Verifying<S, ReqBody>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let shared = &*self.shared;
        if let Some(metadata) = &shared.metadata
            && let Some(res) = metadata.respond(req.method(), req.uri().path())
        {
            let res = res.map(ResponseBody::full);
            return ResponseFuture::refused(connection::close_if_body_unread(
                res,
                req.version(),
                req.headers(),
            ));
        }
        let start = Start::now();
        let (presented, verdict) = shared.check(&req);
        let admission = &shared.admission;
        match verdict {
            Verdict::Ready(Ok(info)) => {
                let nonce = info.dpop_nonce().cloned();
                match admission.admit(info, &mut req) {
                    Ok(()) => {
                        allowed(start, presented, &req);
                        ResponseFuture::inner(WithDpopNonce::new(self.inner.call(req), nonce))
                    }
                    Err(rejection) => ResponseFuture::refused(refused(
                        admission, start, &rejection, presented, &req,
                    )),
                }
            }
            Verdict::Ready(Err(rejection)) => {
                ResponseFuture::refused(refused(admission, start, &rejection, presented, &req))
            }
            Verdict::Pending(fut) => {
                // Take the service that was driven to readiness; leave a clone in its place.
                let clone = self.inner.clone();
                let inner = mem::replace(&mut self.inner, clone);
                ResponseFuture::prelude(Verifying {
                    fut,
                    pending: Some(Box::new(Pending {
                        req,
                        inner,
                        admission: admission.clone(),
                        presented,
                        start,
                    })),
                })
            }
        }
    }
}

/// Records the admission of `req` (its identity is in its extensions now).
#[inline]
fn allowed<B>(start: Start, presented: Option<Scheme>, req: &Request<B>) {
    if start.recording() {
        let info = req.extensions().get::<crate::AuthInfo>();
        Decision::allowed(presented, info).record(start, req.headers(), req.extensions());
    }
}

/// The refusal of `req` for `rejection`, recorded.
fn refused<B, R>(
    admission: &Admission,
    start: Start,
    rejection: &Rejection,
    presented: Option<Scheme>,
    req: &Request<R>,
) -> Response<ResponseBody<B>> {
    let res = admission.refuse_request(rejection, presented, req);
    Decision::refused(audit::Layer::Auth, res.status(), rejection.reason_code())
        .scheme(presented)
        .record(start, req.headers(), req.extensions());
    res
}

/// The auth layer's work before it calls the inner service: waiting for a verifier that does
/// I/O (fetching keys). The rest of the request waits boxed: the rare path keeps the future
/// small.
pub struct Verifying<S, ReqBody> {
    fut: VerifyFuture,
    pending: Option<Box<Pending<S, ReqBody>>>,
}

/// What a request waiting for its verdict holds.
struct Pending<S, ReqBody> {
    req: Request<ReqBody>,
    inner: S,
    admission: Arc<Admission>,
    presented: Option<Scheme>,
    start: Start,
}

impl<S, ReqBody> crate::refusal::future::Sealed for Verifying<S, ReqBody> {}

impl<S, ReqBody, ResBody> Prelude<WithDpopNonce<S::Future>, ResBody> for Verifying<S, ReqBody>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    fn poll_prelude(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Outcome<WithDpopNonce<S::Future>, ResBody>> {
        // Both fields are Unpin (a boxed future and a box).
        let this = self.get_mut();
        let result = ready!(this.fut.as_mut().poll(cx));
        let Pending {
            mut req,
            mut inner,
            admission,
            presented,
            start,
        } = *this
            .pending
            .take()
            .expect("ResponseFuture polled after completion");
        let mut nonce = None;
        let admitted = result.and_then(|info| {
            nonce = info.dpop_nonce().cloned();
            admission.admit(info, &mut req)
        });
        Poll::Ready(match admitted {
            Ok(()) => {
                allowed(start, presented, &req);
                Outcome::Call(WithDpopNonce::new(inner.call(req), nonce))
            }
            Err(rejection) => {
                Outcome::Refuse(refused(&admission, start, &rejection, presented, &req))
            }
        })
    }
}
