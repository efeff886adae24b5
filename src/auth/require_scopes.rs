//! Requiring scopes of requests the auth layer has authenticated: [`RequireScopesLayer`].

use std::{
    sync::Arc,
    task::{Context, Poll},
};

use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use crate::admission::{Admission, presented_scheme};
use crate::{
    audit::{Decision, Layer as Audited, Start},
    identity::AuthInfo,
    refusal::{ResponseBody, ResponseFuture},
    scope::ScopeRequirement,
    verifier::Rejection,
};

/// Requires scopes of requests an [`AuthLayer`](super::AuthLayer) has authenticated; built by
/// [`AuthLayer::require_scopes`](super::AuthLayer::require_scopes). A request without an [`AuthInfo`] (not behind the auth layer)
/// is refused with `401`: it fails closed.
#[derive(Debug, Clone)]
pub struct RequireScopesLayer {
    requirement: Arc<ScopeRequirement>,
    admission: Arc<Admission>,
}

impl RequireScopesLayer {
    pub(super) fn new(requirement: ScopeRequirement, admission: Arc<Admission>) -> Self {
        Self {
            requirement: Arc::new(requirement),
            admission,
        }
    }
}

impl<S> Layer<S> for RequireScopesLayer {
    type Service = RequireScopes<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireScopes {
            inner,
            requirement: self.requirement.clone(),
            admission: self.admission.clone(),
        }
    }
}

/// The service built by [`RequireScopesLayer`].
#[derive(Debug, Clone)]
pub struct RequireScopes<S> {
    inner: S,
    requirement: Arc<ScopeRequirement>,
    admission: Arc<Admission>,
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
        let start = Start::now();
        let verdict = match req.extensions().get::<AuthInfo>() {
            None => Err((Rejection::NoCredentials, None)),
            Some(info) => {
                let presented = presented_scheme(info);
                self.admission
                    .check_scopes(&self.requirement, info)
                    .map_err(|r| (r, Some(presented)))
            }
        };
        match verdict {
            Ok(()) => ResponseFuture::inner(self.inner.call(req)),
            Err((rejection, presented)) => {
                let res = self.admission.refuse_request(&rejection, presented, &req);
                Decision::refused(Audited::Scopes, res.status(), rejection.reason_code())
                    .scheme(presented)
                    .info(req.extensions().get::<AuthInfo>())
                    .record(start, req.headers(), req.extensions());
                ResponseFuture::refused(res)
            }
        }
    }
}
