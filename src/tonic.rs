//! tonic integration (feature `tonic`): reading the caller's [`AuthInfo`] in a gRPC method.
//!
//! tonic copies the HTTP request extensions into `tonic::Request::extensions()`, so the
//! [`AuthInfo`] the [`AuthLayer`](crate::AuthLayer) inserted is there.
//!
//! With the layer in front of a tonic server (`Server::builder().layer(auth)`), a refused gRPC
//! call gets a gRPC status, as tonic clients expect: `UNAUTHENTICATED` (16), `PERMISSION_DENIED`
//! (7) or `UNAVAILABLE` (14), with the `www-authenticate` (or `retry-after`) metadata and
//! `cache-control: no-store`, in an HTTP `200` with no body. That holds only for calls over
//! HTTP/2 with a `application/grpc…` content type. A server that also accepts HTTP/1.1
//! (`accept_http1`, for gRPC-Web) answers a refused HTTP/1.1 request with the plain `401`, `403`
//! or `503`, whatever its content type: a `200` there would read as success to proxies, monitors
//! and caches, and gRPC-Web clients map those statuses to the same gRPC codes. See
//! [`crate::refusal`].
//!
//! ```
//! use mcp_server_auth::{AuthInfo, AuthMethod, tonic::TonicRequestExt};
//!
//! // What a gRPC method sees once the layer has accepted the call.
//! let mut http = http::Request::new(());
//! http.extensions_mut().insert(AuthInfo::builder("ci", AuthMethod::StaticBearer).build());
//! let request = tonic::Request::from_http(http);
//! assert_eq!(request.auth_info().map(AuthInfo::subject), Some("ci"));
//! ```

use crate::identity::AuthInfo;

/// Reads the [`AuthInfo`] of a tonic request.
pub trait TonicRequestExt {
    /// The authenticated caller, if an [`AuthLayer`](crate::AuthLayer) accepted the request.
    fn auth_info(&self) -> Option<&AuthInfo>;
}

impl<T> TonicRequestExt for tonic::Request<T> {
    fn auth_info(&self) -> Option<&AuthInfo> {
        self.extensions().get::<AuthInfo>()
    }
}
