//! Verifier: certificate-bound access tokens (RFC 8705) — a token that works only over a
//! connection with the client certificate it was issued to.
//!
//! A bearer token works for whoever holds it. With mutual TLS, the authorization server can
//! bind the token to the client's certificate: the token carries the certificate's SHA-256
//! thumbprint (`cnf.x5t#S256`, RFC 8705 §3.1), and the resource server accepts it only when
//! the TLS client certificate of this request has that thumbprint. A stolen token is useless
//! without the client's private key.
//!
//! [`CertificateBound`] wraps the verifier that checks tokens ([`JwtVerifier`], the
//! introspection verifier, a [`Dpop`](crate::dpop::Dpop), one of your own): once it has
//! accepted a token, a token with `cnf.x5t#S256` is accepted only if the Base64url SHA-256 of
//! the request's client certificate (DER) equals it (compared in constant time); with no
//! certificate, or another one, the answer is `401 invalid_token` (the audit reason is
//! `token_binding`). A token-cache hit is compared on every request. A token bound to both a
//! DPoP key and a certificate (`cnf` with `jkt` and `x5t#S256`) needs both wrappers, in either
//! order. Without this wrapper, the crate's token verifiers refuse certificate-bound tokens
//! outright: a binding nobody compares is never ignored.
//!
//! Where the certificate comes from:
//! - **Your TLS acceptor** puts a [`ClientCertificate`] in each request's extensions (the leaf
//!   of `ServerConnection::peer_certificates()` with tokio-rustls; see its documentation and
//!   `examples/mtls.rs`). Its thumbprint is computed once per connection.
//! - **A TLS-terminating proxy** forwards it in a header
//!   ([`CertificateOptions::header_from_trusted_proxies`]; `MCP_AUTH_CLIENT_CERT_HEADER`):
//!   URL-encoded PEM (nginx `$ssl_client_escaped_cert`) or Envoy's `x-forwarded-client-cert`
//!   (`Cert="…"`). The header is read only from a peer in the
//!   [`TrustedProxies`] (the same trust decision as the
//!   throttle's, from the peer address the server puts in the extensions); from anyone else it
//!   is ignored, never believed. It is not removed from the request: the MCP server behind
//!   does not read it, and an application that does must apply the same trust. From a trusted
//!   proxy, the header is the only source (its own TLS certificate, if any, is not the
//!   client's): no header, several, or one that cannot be read, and a bound token is refused.
//!
//! Advertise the support in the metadata with
//! [`MetadataBuilder::tls_client_certificate_bound_access_tokens`](crate::metadata::MetadataBuilder::tls_client_certificate_bound_access_tokens)
//! (RFC 9728 §2).
//!
//! [`JwtVerifier`]: crate::jwt::JwtVerifier
//!
//! ```
//! use mcp_server_auth::{AuthLayer, ResourceUrl};
//! use mcp_server_auth::jwt::{Algorithm, Issuer, JwtVerifier, KeySet};
//! use mcp_server_auth::mtls::{CertificateBound, CertificateOptions, ClientCertificate};
//! use mcp_server_auth::throttle::TrustedProxies;
//!
//! let resource = ResourceUrl::parse("https://mcp.example.com/mcp").unwrap();
//! # let pem = b"-----BEGIN PUBLIC KEY-----
//! # MCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=
//! # -----END PUBLIC KEY-----";
//! # let keys = KeySet::new().add_pem(Some("k1"), Algorithm::EdDSA, pem).unwrap();
//! let tokens = JwtVerifier::builder(resource)
//!     .issuer(Issuer::with_keys("https://auth.example.com", keys))
//!     .build()
//!     .unwrap();
//! // Certificates from the TLS acceptor, or from nginx at 10.0.0.5 in `x-ssl-client-cert`.
//! let options = CertificateOptions::new().header_from_trusted_proxies(
//!     http::HeaderName::from_static("x-ssl-client-cert"),
//!     TrustedProxies::parse("10.0.0.5").unwrap(),
//! );
//! let layer = AuthLayer::new(CertificateBound::new(tokens, options));
//! # let _ = layer;
//!
//! // What the acceptor inserts: the leaf certificate's DER, its thumbprint computed once.
//! let cert = ClientCertificate::from_der(vec![0x30, 0x03, 0x02, 0x01, 0x05]);
//! assert_eq!(cert.thumbprint().len(), 43);
//! ```

mod header;
mod verifier;

use std::{fmt, sync::Arc};

use http::HeaderName;

pub use header::{CertHeaderError, MAX_CERT_HEADER_BYTES, parse_client_cert_header};
pub use verifier::CertificateBound;

use crate::{
    dpop::thumbprint::{Jkt, Sha256},
    throttle::TrustedProxies,
};

/// The TLS client certificate of a connection: the request extension a server's TLS acceptor
/// inserts, for [`CertificateBound`]. It holds the leaf certificate's DER and its SHA-256
/// thumbprint, computed once; cloning it (once per request) is one reference count.
///
/// With tokio-rustls and hyper, after the handshake (`examples/mtls.rs` runs it):
///
/// ```no_run
/// # use std::{convert::Infallible, sync::Arc};
/// # use hyper_util::{rt::{TokioExecutor, TokioIo}, server::conn::auto, service::TowerToHyperService};
/// # use mcp_server_auth::mtls::ClientCertificate;
/// # use tower::ServiceExt as _;
/// # async fn serve(
/// #     acceptor: tokio_rustls::TlsAcceptor,
/// #     tcp: tokio::net::TcpStream,
/// #     service: tower::util::BoxCloneSyncService<http::Request<hyper::body::Incoming>, http::Response<String>, Infallible>,
/// # ) -> std::io::Result<()> {
/// let peer = tcp.peer_addr()?; // for the throttle, and to trust a proxy's header
/// let tls = acceptor.accept(tcp).await?;
/// // The leaf comes first (RFC 8446 §4.4.2); none if the client sent no certificate.
/// let cert = tls.get_ref().1.peer_certificates()
///     .and_then(|chain| chain.first())
///     .map(|leaf| ClientCertificate::from_der(leaf.as_ref()));
/// let service = service.map_request(move |mut req: http::Request<_>| {
///     req.extensions_mut().insert(peer);
///     if let Some(cert) = &cert {
///         req.extensions_mut().insert(cert.clone());
///     }
///     req
/// });
/// auto::Builder::new(TokioExecutor::new())
///     .serve_connection(TokioIo::new(tls), TowerToHyperService::new(service))
///     .await
///     .ok();
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct ClientCertificate {
    der: Arc<[u8]>,
    thumbprint: Jkt,
}

impl ClientCertificate {
    /// The certificate whose DER is `der` (as the TLS library verified it).
    pub fn from_der(der: impl Into<Arc<[u8]>>) -> Self {
        let der = der.into();
        let thumbprint = Jkt::from_digest(&Sha256::digest(&der));
        Self { der, thumbprint }
    }

    /// The DER.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The Base64url SHA-256 of the DER (43 characters): what `cnf.x5t#S256` of a token bound
    /// to this certificate says (RFC 8705 §3.1).
    pub fn thumbprint(&self) -> &str {
        self.thumbprint.as_str()
    }
}

impl fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("thumbprint", &self.thumbprint())
            .finish_non_exhaustive()
    }
}

/// Where [`CertificateBound`] finds the client certificate. The default (`new`) reads only the
/// acceptor's [`ClientCertificate`].
#[derive(Debug, Clone, Default)]
pub struct CertificateOptions {
    header: Option<HeaderName>,
    proxies: TrustedProxies,
}

impl CertificateOptions {
    /// The certificate from the TLS acceptor's [`ClientCertificate`] only.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also from header `name` (URL-encoded PEM, or Envoy's `x-forwarded-client-cert`), for
    /// requests whose peer is one of `proxies`: then from the header only. From other peers,
    /// the header is ignored. With no proxy listed, it is never read.
    pub fn header_from_trusted_proxies(
        mut self,
        name: HeaderName,
        proxies: TrustedProxies,
    ) -> Self {
        self.header = Some(name);
        self.proxies = proxies;
        self
    }

    /// The header a trusted proxy forwards the certificate in, if any.
    pub fn header(&self) -> Option<&HeaderName> {
        self.header.as_ref()
    }

    /// The proxies whose header is believed.
    pub fn trusted_proxies(&self) -> &TrustedProxies {
        &self.proxies
    }
}
