//! axum integration (feature `axum`): [`AuthInfo`] as an extractor, and a metadata router.
//!
//! ```
//! use axum::{Router, routing::post};
//! use mcp_server_auth::{AuthInfo, AuthLayer, bearer::StaticBearer};
//!
//! async fn handler(who: AuthInfo) -> String {
//!     format!("hello {}", who.subject())
//! }
//! # let tokens = StaticBearer::new([("a", "c2VjcmV0LXRva2VuLWZvci1sYXB0b3A")]).unwrap();
//! let app: Router = Router::new().route("/mcp", post(handler)).layer(AuthLayer::new(tokens));
//! ```

use std::convert::Infallible;

use axum::{
    extract::{FromRequestParts, OptionalFromRequestParts},
    response::{IntoResponse, Response},
};
use http::{StatusCode, header::CACHE_CONTROL, request::Parts};

use crate::{identity::AuthInfo, metadata::ProtectedResourceMetadata};

/// The extractor's refusal when no [`AuthInfo`] is present: the route is not behind an
/// [`AuthLayer`](crate::AuthLayer). That is a server configuration error, so it answers `500`,
/// with `Cache-Control: no-store` as every refusal of this crate.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("no AuthInfo in the request extensions: put this route behind an AuthLayer")]
pub struct MissingAuthInfo;

impl IntoResponse for MissingAuthInfo {
    fn into_response(self) -> Response {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(CACHE_CONTROL, "no-store")],
            self.to_string(),
        )
            .into_response()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for AuthInfo {
    type Rejection = MissingAuthInfo;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<AuthInfo>()
            .cloned()
            .ok_or(MissingAuthInfo)
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for AuthInfo {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<AuthInfo>().cloned())
    }
}

impl ProtectedResourceMetadata {
    /// An axum router that serves this document at its well-known path (with and without a
    /// trailing slash), for apps whose [`AuthLayer`](crate::AuthLayer) does not wrap the whole
    /// router (for example one applied with `route_layer`). Merge it into your router.
    pub fn router<S: Clone + Send + Sync + 'static>(&self) -> axum::Router<S> {
        let service = self.clone().into_service();
        let path = service.path().to_owned();
        axum::Router::new()
            .route_service(&path, service.clone())
            .route_service(&format!("{path}/"), service)
    }
}
