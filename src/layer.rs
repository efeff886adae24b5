//! The layer: ties credentials → verifier → identity → policy → challenge together.
//!
//! [`AuthLayer`] wraps any `Service<http::Request<B>>` that answers `http::Response<B2>`: an axum
//! `Router` (`.layer(...)` or `.route_layer(...)`), a hyper service, a tonic server
//! (`Server::builder().layer(...)`), or rmcp's `StreamableHttpService` directly.
//!
//! For each request it:
//! 1. answers the Protected Resource Metadata document itself, if the path is its well-known
//!    path (public: no credentials needed);
//! 2. reads the `Authorization` header ([`crate::credentials`]);
//! 3. asks the [`Verifier`] ([`crate::verifier`]);
//! 4. checks the required scopes ([`crate::scope`]);
//! 5. on success, removes the `Authorization` header (no token passthrough), puts the
//!    [`AuthInfo`] in the request extensions and calls the inner service; otherwise it answers
//!    the refusal ([`crate::refusal`]) without calling it. A gRPC call (HTTP/2 or later with
//!    a `application/grpc…` content type) gets a gRPC refusal; any HTTP/1.x request gets an HTTP
//!    one, since a gRPC refusal's `200` would read as success there (`refusal::grpc` says why).
//!    An HTTP/1.x request whose body is left unread gets `Connection: close` with its refusal
//!    (`refusal`: why a refusal must say so). Every refusal, gRPC or not, carries
//!    `Cache-Control: no-store`.

use std::{
    mem,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
    time::Duration,
};

use http::{Request, Response, header::AUTHORIZATION};
use tower_layer::Layer;
use tower_service::Service;

use crate::{
    credentials::{self, CredentialError, DEFAULT_MAX_HEADER_BYTES, Scheme},
    identity::AuthInfo,
    metadata::{DEFAULT_MAX_AGE, MetadataEndpoint, ProtectedResourceMetadata},
    refusal::{
        ResponseBody, ResponseFuture,
        challenge::{ChallengeSettings, Responder},
        connection,
        future::{Outcome, Prelude},
        grpc::is_grpc,
    },
    scope::{ScopeError, ScopeHierarchy, ScopeRequirement, ScopeSet},
    verifier::{AuthRequest, Credentials, Rejection, Schemes, Verdict, Verifier, VerifyFuture},
};

/// What is wrong with a layer's configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The verifier understands no scheme, so every request would be refused.
    #[error("the verifier accepts no credentials at all (no token, user or key is configured)")]
    NoScheme,
    /// The realm is empty or not printable ASCII.
    #[error(
        "the realm must be non-empty printable ASCII without '\"' or '\\\\', and must not contain \
         `scope=`, `error=` or `resource_metadata=` (MCP clients would misread the challenge)"
    )]
    Realm,
    /// A scope is invalid, or `offline_access` would be advertised.
    #[error("challenge scope: {0}")]
    Scope(#[from] ScopeError),
    /// The header size limit is too small to carry any credentials.
    #[error("max_header_bytes must be at least 64")]
    HeaderLimit,
}

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
            .field("policy", &self.shared.policy)
            .finish_non_exhaustive()
    }
}

struct Shared<V> {
    verifier: V,
    /// `verifier.schemes()`, fixed at construction.
    schemes: Schemes,
    metadata: Option<MetadataEndpoint>,
    max_header_bytes: usize,
    policy: Arc<Policy>,
}

/// What happens after verification; shared with pending futures, so not generic.
#[derive(Debug)]
pub(crate) struct Policy {
    required: Option<ScopeRequirement>,
    hierarchy: Option<Arc<dyn ScopeHierarchy>>,
    forward_authorization: bool,
    responder: Responder,
    /// The scopes this server asks for anywhere: required, challenged or advertised.
    known: ScopeSet,
    /// Whether `insufficient_scope` challenges also name the known scopes already granted.
    challenge_granted: bool,
}

/// The scheme an authenticated identity presented, for the challenges of a later refusal.
pub(crate) fn presented_scheme(info: &AuthInfo) -> Scheme {
    match info.method() {
        crate::AuthMethod::Basic => Scheme::Basic,
        _ => Scheme::Bearer,
    }
}

impl Policy {
    /// Whether the identity's scopes meet `required`, honouring the hierarchy.
    pub(crate) fn satisfies(&self, required: &ScopeRequirement, info: &AuthInfo) -> bool {
        match &self.hierarchy {
            Some(h) => required.is_satisfied_with(info.scopes(), h.as_ref()),
            None => required.is_satisfied_by(info.scopes()),
        }
    }

    /// Checks `required` against the identity's scopes, honouring the hierarchy.
    fn check_scopes(&self, required: &ScopeRequirement, info: &AuthInfo) -> Result<(), Rejection> {
        if self.satisfies(required, info) {
            return Ok(());
        }
        tracing::debug!(subject = info.subject(), "refused: insufficient scope");
        Err(self.insufficient(required.challenge_scopes().iter(), info, None))
    }

    /// The refusal for an identity lacking scopes: the challenge names `required` and, unless
    /// switched off, the scopes the identity already holds that this server uses (in `known` or
    /// `also_known`), so that a client which replaces its scopes with the challenged ones
    /// (MCP 2025-11-25 and older clients) keeps what it had. Never `offline_access`.
    pub(crate) fn insufficient<'a>(
        &self,
        required: impl Iterator<Item = &'a str>,
        info: &AuthInfo,
        also_known: Option<&ScopeSet>,
    ) -> Rejection {
        let granted = info.scopes().iter().filter(|s| {
            self.challenge_granted
                && *s != "offline_access"
                && (self.known.contains(s) || also_known.is_some_and(|k| k.contains(s)))
        });
        let mut scopes: Vec<&str> = required.collect();
        scopes.extend(granted);
        Rejection::InsufficientScope {
            required: ScopeSet::from_iter_lossy(scopes),
        }
    }

    fn admit<B>(&self, info: AuthInfo, req: &mut Request<B>) -> Result<(), Rejection> {
        if let Some(required) = &self.required {
            self.check_scopes(required, &info)?;
        }
        if !self.forward_authorization {
            req.headers_mut().remove(AUTHORIZATION);
        }
        tracing::trace!(subject = info.subject(), method = %info.method(), "authenticated");
        req.extensions_mut().insert(info);
        Ok(())
    }

    pub(crate) fn refuse<B>(
        &self,
        rejection: &Rejection,
        presented: Option<Scheme>,
        grpc: bool,
    ) -> Response<ResponseBody<B>> {
        match rejection {
            Rejection::NoCredentials => tracing::debug!("refused: no credentials"),
            Rejection::Malformed(e) => {
                tracing::debug!(reason = %e, "refused: malformed credentials")
            }
            Rejection::Invalid(e) => tracing::debug!(reason = %e, "refused: invalid credentials"),
            Rejection::InsufficientScope { .. } => {}
            Rejection::Unavailable { .. } => {
                tracing::warn!("refused: credentials cannot be checked now")
            }
        }
        self.responder.respond(rejection, presented, grpc)
    }

    /// The refusal of `req`: a gRPC one for a gRPC call (HTTP/2 or later only), and `Connection: close` if `req`'s
    /// body is left unread ([`crate::refusal::connection`]).
    fn refuse_request<B, R>(
        &self,
        rejection: &Rejection,
        presented: Option<Scheme>,
        req: &Request<R>,
    ) -> Response<ResponseBody<B>> {
        let res = self.refuse(rejection, presented, is_grpc(req.version(), req.headers()));
        connection::close_if_body_unread(res, req.version(), req.headers())
    }
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
        AuthLayerBuilder {
            verifier,
            metadata: None,
            serve_root: false,
            metadata_max_age: DEFAULT_MAX_AGE,
            required: None,
            hierarchy: None,
            challenge_scope: None,
            realm: "mcp".to_owned(),
            descriptions: false,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            forward_authorization: false,
            challenge_granted: true,
        }
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
        RequireScopesLayer {
            requirement: Arc::new(requirement),
            policy: self.shared.policy.clone(),
        }
    }

    /// A layer requiring the scopes each MCP operation needs (per tool, prompt, resource or
    /// method) of requests this layer has authenticated. Put it inside this layer, in front of
    /// the MCP service; its `403` challenges point at the same metadata and honour the same
    /// scope hierarchy. See [`crate::mcp`].
    pub fn mcp_scopes(&self, scopes: crate::mcp::McpScopes) -> crate::mcp::McpScopeLayer {
        crate::mcp::McpScopeLayer::new(scopes, self.shared.policy.clone())
    }
}

/// Requires scopes of requests an [`AuthLayer`] has authenticated; built by
/// [`AuthLayer::require_scopes`]. A request without an [`AuthInfo`] (not behind the auth layer)
/// is refused with `401`: it fails closed.
#[derive(Debug, Clone)]
pub struct RequireScopesLayer {
    requirement: Arc<ScopeRequirement>,
    policy: Arc<Policy>,
}

impl<S> Layer<S> for RequireScopesLayer {
    type Service = RequireScopes<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireScopes {
            inner,
            requirement: self.requirement.clone(),
            policy: self.policy.clone(),
        }
    }
}

/// The service built by [`RequireScopesLayer`].
#[derive(Debug, Clone)]
pub struct RequireScopes<S> {
    inner: S,
    requirement: Arc<ScopeRequirement>,
    policy: Arc<Policy>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RequireScopes<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let verdict = match req.extensions().get::<AuthInfo>() {
            None => Err((Rejection::NoCredentials, None)),
            Some(info) => {
                let presented = presented_scheme(info);
                self.policy
                    .check_scopes(&self.requirement, info)
                    .map_err(|r| (r, Some(presented)))
            }
        };
        match verdict {
            Ok(()) => ResponseFuture::inner(self.inner.call(req)),
            Err((rejection, presented)) => {
                ResponseFuture::refused(self.policy.refuse_request(&rejection, presented, &req))
            }
        }
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

/// Configures an [`AuthLayer`].
#[derive(Debug)]
pub struct AuthLayerBuilder<V> {
    verifier: V,
    metadata: Option<ProtectedResourceMetadata>,
    serve_root: bool,
    metadata_max_age: Duration,
    required: Option<ScopeRequirement>,
    hierarchy: Option<Arc<dyn ScopeHierarchy>>,
    challenge_scope: Option<ScopeSet>,
    realm: String,
    descriptions: bool,
    max_header_bytes: usize,
    forward_authorization: bool,
    challenge_granted: bool,
}

impl<V: Verifier> AuthLayerBuilder<V> {
    /// Advertises and serves this Protected Resource Metadata document. Every Bearer challenge
    /// then carries `resource_metadata` (its absolute URL) and `scope`, and the layer answers
    /// the document's well-known path without authentication.
    pub fn metadata(mut self, metadata: ProtectedResourceMetadata) -> Self {
        self.metadata = Some(metadata);
        self
    }

    /// Also serves the document at the root, `/.well-known/oauth-protected-resource`, with
    /// `resource` = the origin, for clients that predate path insertion (off by default; use it
    /// only when this is the one resource on its host).
    pub fn serve_metadata_at_root(mut self, yes: bool) -> Self {
        self.serve_root = yes;
        self
    }

    /// How long clients may cache the document (`Cache-Control: public, max-age=…`); one hour
    /// by default.
    pub fn metadata_max_age(mut self, max_age: Duration) -> Self {
        self.metadata_max_age = max_age;
        self
    }

    /// Scopes every request must have; otherwise `403 insufficient_scope` naming them all.
    pub fn required_scopes(mut self, requirement: ScopeRequirement) -> Self {
        self.required = Some(requirement);
        self
    }

    /// A scope hierarchy: a broader scope held satisfies a narrower one required (MCP
    /// 2026-07-28). Used by this layer and by its [`require_scopes`](AuthLayer::require_scopes)
    /// layers. By default scopes match exactly.
    pub fn scope_hierarchy(mut self, hierarchy: impl ScopeHierarchy + 'static) -> Self {
        self.hierarchy = Some(Arc::new(hierarchy));
        self
    }

    /// The `scope` of the `401` challenges: the scopes a client should ask for at first contact.
    /// By default: the required scopes, else the metadata's `scopes_supported`, else none.
    pub fn challenge_scope(mut self, scopes: ScopeSet) -> Self {
        self.challenge_scope = Some(scopes);
        self
    }

    /// The realm of the Basic challenge, and of the Bearer challenge when no metadata is
    /// configured. Default `mcp`.
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = realm.into();
        self
    }

    /// Sends `error_description` (fixed texts that reveal no validation internals) in
    /// challenges and bodies. Off by default.
    pub fn error_descriptions(mut self, yes: bool) -> Self {
        self.descriptions = yes;
        self
    }

    /// The largest `Authorization` header accepted (default 8 KiB); larger → `400`.
    pub fn max_header_bytes(mut self, bytes: usize) -> Self {
        self.max_header_bytes = bytes;
        self
    }

    /// **Opt-out**: keep the `Authorization` header on requests passed to the inner service.
    /// By default it is removed, so that the token cannot be passed through to another
    /// service (MCP forbids token passthrough). Only turn this on if the inner service must see
    /// the header and never forwards it.
    pub fn forward_authorization_header(mut self, yes: bool) -> Self {
        self.forward_authorization = yes;
        self
    }

    /// Whether a `403 insufficient_scope` challenge also names the scopes the caller already
    /// holds that this server uses (required, challenged, advertised or per-operation ones).
    /// On by default: MCP clients of 2025-11-25 and before (the TypeScript SDK 1.x among them)
    /// *replace* their scopes with the challenged ones when they re-authorize, and would lose
    /// what they had; MCP 2026-07-28 clients take the union either way, and the spec allows
    /// either form. Turn off to name only what the operation needs.
    pub fn challenge_granted_scopes(mut self, yes: bool) -> Self {
        self.challenge_granted = yes;
        self
    }

    /// Checks the configuration and builds the layer.
    pub fn build(self) -> Result<AuthLayer<V>, BuildError> {
        let schemes = self.verifier.schemes();
        if schemes.is_empty() {
            return Err(BuildError::NoScheme);
        }
        if self.realm.is_empty()
            || !self
                .realm
                .bytes()
                .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\')
            || crate::refusal::challenge::mimics_challenge_param(&self.realm)
        {
            return Err(BuildError::Realm);
        }
        if self.max_header_bytes < 64 {
            return Err(BuildError::HeaderLimit);
        }
        let scope = match self.challenge_scope {
            Some(s) => Some(s),
            None => match (&self.required, &self.metadata) {
                (Some(r), _) if !r.is_any_of() => Some(r.challenge_scopes().clone()),
                (_, Some(m)) if !m.scopes_supported().is_empty() => {
                    Some(ScopeSet::try_from_iter(m.scopes_supported())?)
                }
                _ => None,
            },
        }
        .filter(|s| !s.is_empty());
        if let Some(s) = &scope {
            s.refuse_offline_access()?;
        }
        let known = ScopeSet::from_iter_lossy(
            scope
                .iter()
                .flat_map(ScopeSet::iter)
                .chain(
                    self.required
                        .iter()
                        .flat_map(|r| r.challenge_scopes().iter()),
                )
                .chain(
                    self.metadata
                        .iter()
                        .flat_map(|m| m.scopes_supported().iter().map(String::as_str)),
                ),
        );
        let responder = Responder::new(ChallengeSettings {
            schemes: schemes.clone(),
            realm: self.realm,
            resource_metadata: self
                .metadata
                .as_ref()
                .and_then(ProtectedResourceMetadata::url),
            scope,
            descriptions: self.descriptions,
            required: self.required.as_ref().map(|r| r.challenge_scopes().clone()),
        });
        let metadata = self
            .metadata
            .as_ref()
            .map(|m| MetadataEndpoint::new(m, self.serve_root, self.metadata_max_age));
        Ok(AuthLayer {
            shared: Arc::new(Shared {
                verifier: self.verifier,
                schemes,
                metadata,
                max_header_bytes: self.max_header_bytes,
                policy: Arc::new(Policy {
                    required: self.required,
                    hierarchy: self.hierarchy,
                    forward_authorization: self.forward_authorization,
                    responder,
                    known,
                    challenge_granted: self.challenge_granted,
                }),
            }),
        })
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
        let refuse = |e: CredentialError| Verdict::Ready(Err(Rejection::Malformed(e)));
        let auth = match credentials::authorization(req.headers(), self.max_header_bytes) {
            Ok(auth) => auth,
            Err(e) => return (None, refuse(e)),
        };
        let Some(auth) = auth else {
            let request = AuthRequest::from_request(req, Credentials::None);
            return (None, self.verifier.verify(&request));
        };
        let schemes = &self.schemes;
        let value = auth.credentials();
        let verdict = match auth.scheme() {
            Scheme::Bearer if schemes.bearer() => match credentials::bearer_token(value) {
                Ok(token) => self.ask(req, Credentials::Bearer(token)),
                Err(e) => refuse(e),
            },
            Scheme::DPoP if schemes.dpop() => match credentials::bearer_token(value) {
                // RFC 9449 §7.1: the same token68 syntax as Bearer's b64token.
                Ok(token) => self.ask(req, Credentials::DPoP(token)),
                Err(e) => refuse(e),
            },
            Scheme::Basic if schemes.basic() => match credentials::basic(value) {
                Ok(basic) => self.ask(req, Credentials::Basic(&basic)),
                Err(e) => refuse(e),
            },
            _ => {
                let scheme = auth.scheme_name();
                self.ask(req, Credentials::Other { scheme, value })
            }
        };
        (Some(auth.scheme()), verdict)
    }

    fn ask<B>(&self, req: &Request<B>, credentials: Credentials<'_>) -> Verdict {
        self.verifier
            .verify(&AuthRequest::from_request(req, credentials))
    }
}

impl<S, V, ReqBody, ResBody> Service<Request<ReqBody>> for AuthService<S, V>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    V: Verifier,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody, Verifying<S, ReqBody>>;

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
        let (presented, verdict) = shared.check(&req);
        let policy = &shared.policy;
        let refuse = |rejection: Rejection, req: &Request<ReqBody>| {
            ResponseFuture::refused(policy.refuse_request(&rejection, presented, req))
        };
        match verdict {
            Verdict::Ready(Ok(info)) => match policy.admit(info, &mut req) {
                Ok(()) => ResponseFuture::inner(self.inner.call(req)),
                Err(rejection) => refuse(rejection, &req),
            },
            Verdict::Ready(Err(rejection)) => refuse(rejection, &req),
            Verdict::Pending(fut) => {
                // Take the service that was driven to readiness; leave a clone in its place.
                let clone = self.inner.clone();
                let inner = mem::replace(&mut self.inner, clone);
                ResponseFuture::prelude(Verifying {
                    fut,
                    pending: Some(Box::new(Pending {
                        req,
                        inner,
                        policy: policy.clone(),
                        presented,
                    })),
                })
            }
        }
    }
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
    policy: Arc<Policy>,
    presented: Option<Scheme>,
}

impl<S, ReqBody, ResBody> Prelude<S::Future, ResBody> for Verifying<S, ReqBody>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    fn poll_prelude(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Outcome<S::Future, ResBody>> {
        // Both fields are Unpin (a boxed future and a box).
        let this = self.get_mut();
        let result = ready!(this.fut.as_mut().poll(cx));
        let Pending {
            mut req,
            mut inner,
            policy,
            presented,
        } = *this
            .pending
            .take()
            .expect("ResponseFuture polled after completion");
        Poll::Ready(match result.and_then(|info| policy.admit(info, &mut req)) {
            Ok(()) => Outcome::Call(inner.call(req)),
            Err(rejection) => Outcome::Refuse(policy.refuse_request(&rejection, presented, &req)),
        })
    }
}
