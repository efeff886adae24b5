//! [`CertificateBound`]: the verifier that compares a token's certificate binding with the
//! request's client certificate, around another verifier.

use std::sync::Arc;

use super::{CertificateOptions, ClientCertificate, header::parse_client_cert_header};
use crate::{
    dpop::thumbprint::{Jkt, Sha256},
    identity::AuthInfo,
    peer::peer,
    rejection::{Invalid, Rejection},
    verifier::{self, AuthRequest, Recall, Schemes, Verdict, Verifier},
};

/// Accepts a token bound to a client certificate (`cnf.x5t#S256`, RFC 8705 §3) only when the
/// request's client certificate has that thumbprint; leaves unbound tokens to `V`. See the
/// [module documentation](super).
pub struct CertificateBound<V> {
    inner: V,
    options: Arc<CertificateOptions>,
}

impl<V: std::fmt::Debug> std::fmt::Debug for CertificateBound<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateBound")
            .field("inner", &self.inner)
            .field("options", &self.options)
            .finish()
    }
}

impl<V: Clone> Clone for CertificateBound<V> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            options: self.options.clone(),
        }
    }
}

impl<V: Verifier> CertificateBound<V> {
    /// Certificate binding around `inner`, the certificate read as `options` say.
    pub fn new(inner: V, options: CertificateOptions) -> Self {
        Self {
            inner,
            options: Arc::new(options),
        }
    }

    /// The verifier of the tokens.
    pub fn inner(&self) -> &V {
        &self.inner
    }

    /// The options.
    pub fn options(&self) -> &CertificateOptions {
        &self.options
    }
}

/// The thumbprint of the client certificate of a request, or why there is none.
#[derive(Clone, Copy)]
enum Presented {
    Thumbprint(Jkt),
    /// No certificate, or one that cannot be read; the reason goes to the debug log.
    Missing(&'static str),
}

impl CertificateOptions {
    /// The client certificate of `request`: from the header when the peer is a trusted proxy
    /// and a header is configured (the proxy's own certificate, if it has one, is not the
    /// client's), else from the acceptor's [`ClientCertificate`].
    fn presented(&self, request: &AuthRequest<'_>) -> Presented {
        if let Some(name) = &self.header
            && peer(request.extensions()).is_some_and(|ip| self.proxies.is_trusted(ip))
        {
            let mut values = request.headers().get_all(name).iter();
            let (Some(value), None) = (values.next(), values.next()) else {
                return Presented::Missing("the trusted proxy sent no single certificate header");
            };
            return match parse_client_cert_header(value.as_bytes()) {
                Ok(der) => Presented::Thumbprint(Jkt::from_digest(&Sha256::digest(&der))),
                Err(_) => {
                    Presented::Missing("the trusted proxy's certificate header is unreadable")
                }
            };
        }
        match request.extensions().get::<ClientCertificate>() {
            Some(cert) => Presented::Thumbprint(cert.thumbprint),
            None => Presented::Missing("the connection has no client certificate"),
        }
    }
}

/// `info`, if its certificate binding (if any) is the `presented` certificate.
fn bind(info: AuthInfo, presented: impl FnOnce() -> Presented) -> Result<AuthInfo, Rejection> {
    let Some(bound) = info.certificate_thumbprint() else {
        return Ok(info);
    };
    let refuse = |why: &str| {
        tracing::debug!(reason = why, "certificate-bound token refused");
        Err(Rejection::Invalid(Invalid::Binding))
    };
    match presented() {
        Presented::Thumbprint(t) if same(t.as_str().as_bytes(), bound.as_bytes()) => Ok(info),
        Presented::Thumbprint(_) => {
            refuse("the client certificate is not the one the token is bound to")
        }
        Presented::Missing(why) => refuse(why),
    }
}

/// Whether `a` and `b` are equal, in time that depends on their lengths only.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len()
        && std::hint::black_box(a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y))) == 0
}

impl<V: Verifier> Verifier for CertificateBound<V> {
    fn schemes(&self) -> Schemes {
        self.inner.schemes()
    }

    /// The inner verifier's: an unbound identity needs no certificate, and the layer does not
    /// admit a bound one by recall.
    fn recall(&self, presented: &verifier::Presented<'_>) -> Recall {
        self.inner.recall(presented)
    }

    fn verify(&self, request: &AuthRequest<'_>) -> Verdict {
        match self.inner.verify(&request.with_certificate_checked()) {
            // The certificate is read only for a bound token: an unbound one costs nothing.
            Verdict::Ready(verdict) => Verdict::Ready(
                verdict.and_then(|info| bind(info, || self.options.presented(request))),
            ),
            // The request is gone once the inner verifier is done: read the certificate now.
            Verdict::Pending(fut) => {
                let presented = self.options.presented(request);
                Verdict::Pending(Box::pin(async move { bind(fut.await?, || presented) }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_compares_whole_slices() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"ab"));
        assert!(same(b"", b""));
    }
}
