//! tonic integration (feature `tonic`): reading the caller's [`AuthInfo`] in a gRPC method.
//!
//! tonic copies the HTTP request extensions into `tonic::Request::extensions()`, so the
//! [`AuthInfo`] the [`AuthLayer`](crate::AuthLayer) inserted is there.

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
