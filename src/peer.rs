//! The peer address the server put in a request's extensions, read in one place.
//!
//! The failed-auth throttle counts clients by it, and the audit events name it; both must
//! read the same address, or an operator could not match a `throttled` event to the failures
//! that led to it. A server puts it there itself (see [`crate::throttle`] for axum, hyper and
//! tonic): a `SocketAddr`, or axum's `ConnectInfo<SocketAddr>` (with the `axum` feature).
//!
//! ```
//! use std::net::SocketAddr;
//! use http::Request;
//! use mcp_server_auth::throttle::ThrottleLayer;
//!
//! let mut req = Request::new(());
//! // What a hyper server (or `ConnectInfo`) puts there: the TCP peer.
//! req.extensions_mut().insert(SocketAddr::from(([203, 0, 113, 9], 50000)));
//! # let _ = ThrottleLayer::new(3, std::time::Duration::from_secs(60));
//! ```

use std::net::{IpAddr, SocketAddr};

use http::Extensions;

/// The peer address in `extensions`: a `SocketAddr`, or axum's `ConnectInfo`.
#[inline]
pub(crate) fn peer(extensions: &Extensions) -> Option<IpAddr> {
    #[cfg(feature = "axum")]
    if let Some(info) = extensions.get::<axum::extract::ConnectInfo<SocketAddr>>() {
        return Some(info.0.ip());
    }
    extensions.get::<SocketAddr>().map(SocketAddr::ip)
}
