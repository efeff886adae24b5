//! What a verifier is given: the parsed credentials and a borrowed view of the request.

use std::{fmt, sync::LazyLock};

use http::{Extensions, HeaderMap, Method, Uri, Version};

use super::Verdict;
use crate::{
    credentials::BasicCredentials,
    identity::AuthInfo,
    rejection::{Invalid, Rejection},
    secret::{SecretTag, TagKey, TagMemo},
};

/// The credentials of the request's `Authorization` header, as the layer parsed them.
/// `Debug` shows the scheme, never the credentials.
#[derive(Clone, Copy)]
#[non_exhaustive]
pub enum Credentials<'a> {
    /// The request has no `Authorization` header.
    None,
    /// A bearer token (RFC 6750), already checked against the `b64token` syntax.
    Bearer(&'a str),
    /// Decoded HTTP Basic credentials (RFC 7617).
    Basic(&'a BasicCredentials),
    /// A DPoP-bound access token (RFC 9449 §7.1), already checked against the `token68` syntax;
    /// the proof is in the request's `DPoP` header.
    DPoP(&'a str),
    /// A scheme the layer does not parse, or one of the three above that no configured verifier
    /// declares (then unchecked): its name as the request spelled it, and what follows it.
    Other {
        /// The scheme name (compare it case-insensitively).
        scheme: &'a str,
        /// Everything after the scheme (may be empty).
        value: &'a str,
    },
}

/// What a verifier sees of a request: its parsed credentials, method, URI, version, headers
/// and extensions, all borrowed. `Debug` shows the credentials' scheme and the header names,
/// never a header's value (a token, a cookie, a proof or a proxy's assertion may be among them).
#[derive(Clone, Copy)]
pub struct AuthRequest<'a> {
    credentials: Credentials<'a>,
    method: &'a Method,
    uri: &'a Uri,
    version: Version,
    headers: &'a HeaderMap,
    extensions: &'a Extensions,
    /// Set by [`crate::dpop::Dpop`] once the request's DPoP proof checked out: the token may
    /// then be bound to the proof's key, and the caller compares the binding.
    proof_checked: bool,
    /// Set by [`crate::mtls::CertificateBound`]: the token may be bound to a client
    /// certificate, and the caller compares the binding with this request's certificate.
    certificate_checked: bool,
    /// The tag of the token, kept by the layer for the request (computed at most once, however
    /// many verifiers look the token up: see [`crate::recall`]).
    tag: Option<&'a TagMemo>,
}

impl fmt::Debug for Credentials<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self {
            Self::None => return f.write_str("None"),
            Self::Bearer(_) => "Bearer",
            Self::Basic(_) => "Basic",
            Self::DPoP(_) => "DPoP",
            Self::Other { scheme, .. } => scheme,
        };
        write!(f, "{scheme}(<redacted>)")
    }
}

impl fmt::Debug for AuthRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.keys().map(|k| k.as_str()).collect();
        f.debug_struct("AuthRequest")
            .field("credentials", &self.credentials)
            .field("method", self.method)
            .field("path", &self.uri.path())
            .field("version", &self.version)
            .field("header_names", &names)
            .finish_non_exhaustive()
    }
}

/// The empty parts of [`AuthRequest::credentials_only`].
static NO_URI: LazyLock<Uri> = LazyLock::new(|| Uri::from_static("/"));
static NO_HEADERS: LazyLock<HeaderMap> = LazyLock::new(HeaderMap::new);
static NO_EXTENSIONS: LazyLock<Extensions> = LazyLock::new(Extensions::new);

impl<'a> AuthRequest<'a> {
    /// A view of `request` with `credentials` (parsed from it by the caller).
    pub fn from_request<B>(request: &'a http::Request<B>, credentials: Credentials<'a>) -> Self {
        Self {
            credentials,
            method: request.method(),
            uri: request.uri(),
            version: request.version(),
            headers: request.headers(),
            extensions: request.extensions(),
            proof_checked: false,
            certificate_checked: false,
            tag: None,
        }
    }

    /// A view of a request that has only these credentials: `GET /`, HTTP/1.1, no header, no
    /// extension. For calling a verifier outside the layer.
    pub fn credentials_only(credentials: Credentials<'a>) -> Self {
        Self {
            credentials,
            method: &Method::GET,
            uri: &NO_URI,
            version: Version::HTTP_11,
            headers: &NO_HEADERS,
            extensions: &NO_EXTENSIONS,
            proof_checked: false,
            certificate_checked: false,
            tag: None,
        }
    }

    /// The same request, presenting `token` as a bearer token whose proof of possession the
    /// caller has checked and whose binding it compares ([`crate::dpop::Dpop`]).
    #[cfg(any(feature = "aws-lc-rs", feature = "rust-crypto"))]
    pub(crate) fn with_proven_token(self, token: &'a str) -> Self {
        // The kept tag is the presented token's: it stays only if `token` is that token.
        let same = matches!(self.credentials,
            Credentials::Bearer(t) | Credentials::DPoP(t) if std::ptr::eq(t, token));
        Self {
            credentials: Credentials::Bearer(token),
            proof_checked: true,
            tag: self.tag.filter(|_| same),
            ..self
        }
    }

    /// The same request, whose token's tag is kept in `tag` (by the layer, which tagged the
    /// token's bytes when it asked for [`Verifier::recall`]).
    pub(crate) fn keeping_tag(self, tag: &'a TagMemo) -> Self {
        Self {
            tag: Some(tag),
            ..self
        }
    }

    /// The tag of the `Bearer` or `DPoP` token under the process's token key: computed once
    /// per request when the layer keeps it. `None` for other credentials.
    pub(crate) fn token_tag(&self) -> Option<SecretTag> {
        let (Credentials::Bearer(token) | Credentials::DPoP(token)) = self.credentials else {
            return None;
        };
        let tag = || TagKey::process().tag(token.as_bytes());
        Some(match self.tag {
            Some(memo) => memo.get_or(tag),
            None => tag(),
        })
    }

    /// The same request, whose caller compares the token's certificate binding (`cnf.x5t#S256`)
    /// with the client certificate ([`crate::mtls::CertificateBound`]).
    #[cfg(any(feature = "aws-lc-rs", feature = "rust-crypto"))]
    pub(crate) fn with_certificate_checked(self) -> Self {
        Self {
            certificate_checked: true,
            ..self
        }
    }

    /// Whether the caller compares a certificate-bound token's `cnf.x5t#S256` with the request's
    /// client certificate ([`crate::mtls::CertificateBound`], RFC 8705 §3). When this is
    /// `false`, a verifier must refuse a token bound to a certificate
    /// ([`AuthInfo::certificate_thumbprint`] set).
    pub fn certificate_checked(&self) -> bool {
        self.certificate_checked
    }

    /// Whether the caller checked a proof of possession for the token (a DPoP proof, by
    /// [`crate::dpop::Dpop`]) and compares the token's binding to it. When this is `false`, a
    /// verifier must refuse a token bound to a key ([`AuthInfo::dpop_jkt`] set): presented as
    /// a bearer token, its proof of possession would go unchecked (RFC 9449 §7.2).
    pub fn proof_checked(&self) -> bool {
        self.proof_checked
    }

    /// `verdict`, with a token bound to a key refused unless [`proof_checked`](Self::proof_checked)
    /// (RFC 9449 §7.2: a bound token presented with the `Bearer` scheme is a downgrade), and one
    /// bound to a certificate unless [`certificate_checked`](Self::certificate_checked)
    /// (RFC 8705 §3: its binding would go unchecked).
    pub(crate) fn refuse_unproven(&self, verdict: Verdict) -> Verdict {
        let (proof_checked, certificate_checked) = (self.proof_checked, self.certificate_checked);
        if proof_checked && certificate_checked {
            return verdict;
        }
        let refuse = move |info: AuthInfo| {
            let key_unchecked = info.dpop_jkt().is_some() && !proof_checked;
            let certificate_unchecked =
                info.certificate_thumbprint().is_some() && !certificate_checked;
            if key_unchecked || certificate_unchecked {
                Err(Rejection::Invalid(Invalid::Binding))
            } else {
                Ok(info)
            }
        };
        match verdict {
            Verdict::Ready(r) => Verdict::Ready(r.and_then(refuse)),
            Verdict::Pending(f) => {
                Verdict::Pending(Box::pin(async move { f.await.and_then(refuse) }))
            }
        }
    }

    /// The credentials of the `Authorization` header.
    pub fn credentials(&self) -> &Credentials<'a> {
        &self.credentials
    }

    /// The request method.
    pub fn method(&self) -> &'a Method {
        self.method
    }

    /// The request URI, as the request line (or `:path`) gave it.
    pub fn uri(&self) -> &'a Uri {
        self.uri
    }

    /// The HTTP version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// Every request header (`Authorization` included).
    pub fn headers(&self) -> &'a HeaderMap {
        self.headers
    }

    /// The request extensions: what the server and outer layers put there (a peer address, a
    /// TLS peer certificate).
    pub fn extensions(&self) -> &'a Extensions {
        self.extensions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_no_credentials_and_no_header_value() {
        let request = http::Request::builder()
            .uri("/mcp?x=1")
            .header("authorization", "DPoP secret-token-0123")
            .header("dpop", "secret-proof-4567")
            .header("cookie", "session=secret-cookie-89")
            .body(())
            .unwrap();
        let credentials = Credentials::DPoP("secret-token-0123");
        let shown = format!("{:?}", AuthRequest::from_request(&request, credentials));
        assert!(!shown.contains("secret"), "{shown}");
        assert!(
            shown.contains("DPoP(<redacted>)") && shown.contains("cookie"),
            "{shown}"
        );
        let other = Credentials::Other {
            scheme: "ApiKey",
            value: "secret-key",
        };
        assert_eq!(format!("{other:?}"), "ApiKey(<redacted>)");
    }
}
