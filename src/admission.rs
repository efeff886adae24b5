//! Scope policy: what happens once a verifier has spoken. The required scopes are checked
//! (honouring the scope hierarchy), the identity goes into the request extensions and the
//! `Authorization` header leaves it (no token passthrough); or the refusal is built
//! ([`crate::refusal`]). The auth layer, `require_scopes` and the MCP operation scope layer
//! share one `Admission`, so their `403`s point at the same metadata and name scopes alike.
//!
//! ```
//! use std::convert::Infallible;
//! use http::{Request, Response, header::AUTHORIZATION};
//! use mcp_server_auth::{AuthLayer, ScopeRequirement, ScopeSet, bearer::StaticBearer};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let tokens = StaticBearer::builder()
//!     .token_with_scopes("ci", "c2VjcmV0LXRva2VuLWZvci1jaQ", ScopeSet::parse("mcp:read").unwrap())
//!     .build()
//!     .unwrap();
//! let auth = AuthLayer::builder(tokens)
//!     .required_scopes(ScopeRequirement::all_of(["mcp:write"]).unwrap())
//!     .build()
//!     .unwrap();
//! let service = ServiceBuilder::new().layer(auth).service(service_fn(|_: Request<String>| async {
//!     Ok::<_, Infallible>(Response::new(String::new()))
//! }));
//! let request = Request::get("/mcp")
//!     .header(AUTHORIZATION, "Bearer c2VjcmV0LXRva2VuLWZvci1jaQ")
//!     .body(String::new())
//!     .unwrap();
//! let response = service.oneshot(request).await.unwrap();
//! assert_eq!(response.status(), 403); // valid token, missing scope
//! # });
//! ```

use std::sync::Arc;

use http::{Request, Response, header::AUTHORIZATION};

use crate::{
    credentials::Scheme,
    identity::AuthInfo,
    refusal::{ResponseBody, challenge::Responder, connection, grpc::is_grpc},
    scope::{ScopeHierarchy, ScopeRequirement, ScopeSet},
    verifier::Rejection,
};

/// What happens after verification; shared with pending futures, so not generic.
#[derive(Debug)]
pub(crate) struct Admission {
    pub(crate) required: Option<ScopeRequirement>,
    pub(crate) hierarchy: Option<Arc<dyn ScopeHierarchy>>,
    pub(crate) forward_authorization: bool,
    pub(crate) responder: Responder,
    /// The scopes this server asks for anywhere: required, challenged or advertised.
    pub(crate) known: ScopeSet,
    /// Whether `insufficient_scope` challenges also name the known scopes already granted.
    pub(crate) challenge_granted: bool,
}

/// The scheme an authenticated identity presented, for the challenges of a later refusal: an
/// identity bound to a DPoP key was admitted only with its proof, so with the `DPoP` scheme
/// (RFC 9449 §7.1: the challenge names the scheme of the request).
pub(crate) fn presented_scheme(info: &AuthInfo) -> Scheme {
    match info.method() {
        crate::AuthMethod::Basic => Scheme::Basic,
        _ if info.dpop_jkt().is_some() => Scheme::DPoP,
        _ => Scheme::Bearer,
    }
}

impl Admission {
    /// Whether the identity's scopes meet `required`, honouring the hierarchy.
    pub(crate) fn satisfies(&self, required: &ScopeRequirement, info: &AuthInfo) -> bool {
        match &self.hierarchy {
            Some(h) => required.is_satisfied_with(info.scopes(), h.as_ref()),
            None => required.is_satisfied_by(info.scopes()),
        }
    }

    /// Checks `required` against the identity's scopes, honouring the hierarchy.
    pub(crate) fn check_scopes(
        &self,
        required: &ScopeRequirement,
        info: &AuthInfo,
    ) -> Result<(), Rejection> {
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

    pub(crate) fn admit<B>(&self, info: AuthInfo, req: &mut Request<B>) -> Result<(), Rejection> {
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
            Rejection::InvalidRequest(e) => {
                tracing::debug!(reason = %e, "refused: malformed credentials")
            }
            Rejection::Invalid(e) => tracing::debug!(reason = %e, "refused: invalid credentials"),
            Rejection::InsufficientScope { .. } => {}
            Rejection::Unavailable { .. } => {
                tracing::warn!("refused: credentials cannot be checked now")
            }
            Rejection::UseDpopNonce { .. } => tracing::debug!("refused: DPoP nonce needed"),
        }
        self.responder.respond(rejection, presented, grpc)
    }

    /// The refusal of `req`: a gRPC one for a gRPC call (HTTP/2 or later only), and `Connection: close` if `req`'s
    /// body is left unread ([`crate::refusal::connection`]).
    pub(crate) fn refuse_request<B, R>(
        &self,
        rejection: &Rejection,
        presented: Option<Scheme>,
        req: &Request<R>,
    ) -> Response<ResponseBody<B>> {
        let res = self.refuse(rejection, presented, is_grpc(req.version(), req.headers()));
        connection::close_if_body_unread(res, req.version(), req.headers())
    }
}
