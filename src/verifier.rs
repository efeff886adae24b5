//! The verifier: turns what a request presents into an identity, or says why not.
//!
//! A [`Verifier`] is given an [`AuthRequest`]: a borrowed view of the request with its
//! `Authorization` credentials already parsed ([`Credentials`]: `Bearer`, `Basic`, `DPoP`, or
//! another scheme), and its method, URI, headers and extensions. Most verifiers read only the
//! credentials; a sender-constrained token needs the method, the URI and the `DPoP` header
//! (RFC 9449), a certificate-bound one the peer certificate the TLS acceptor put in the
//! extensions (RFC 8705), and a proxy's identity assertion a header of its own. Nothing is copied
//! to build the view: the layer's ready path allocates nothing.
//!
//! It answers with a [`Verdict`]: [`Verdict::Ready`] when it can decide at once (static tokens,
//! Basic, a JWT whose key is known), or [`Verdict::Pending`] with a future when it must do I/O
//! first (fetching keys). A pending future is `'static`: it owns what it needs of the request.
//! The layer takes the ready path without boxing anything or cloning the inner service.
//!
//! [`Verifier::schemes`] declares the `Authorization` schemes a verifier understands
//! ([`Schemes`]: `Bearer`, `Basic`, `DPoP` and names of your own). The layer parses and checks
//! credentials of those schemes (a malformed one is `400`), presents any other scheme as
//! [`Credentials::Other`], and builds its `401` challenges from the declared schemes. Every
//! verifier is asked about every request, with or without an `Authorization` header: return
//! [`Rejection::NoCredentials`] for what is not yours. A verifier that reads no `Authorization`
//! scheme, but credentials something in front of the server adds (a proxy's assertion header),
//! declares [`Schemes::PROXY`]: alone, its refusals are `403` without a challenge.
//!
//! Two verifiers combine with [`VerifierExt::or`]: the request is accepted if either accepts it,
//! and a `401` then carries one challenge per scheme, `Bearer` first.
//!
//! A verifier that remembers what it accepted (a cache, a table of tokens) may also answer
//! [`Verifier::recall`]: the layer offers it a bearer token's raw bytes before parsing them, and
//! admits at once what it recalls ([`crate::recall`]). The default answer leaves every request to
//! `verify`.
//!
//! ```
//! use mcp_server_auth::{AuthInfo, AuthMethod};
//! use mcp_server_auth::verifier::{
//!     AuthRequest, Credentials, Invalid, Rejection, Schemes, Verdict, Verifier,
//! };
//!
//! /// Accepts one hard-coded token (for illustration; use `StaticBearer` for real).
//! struct OneToken;
//!
//! impl Verifier for OneToken {
//!     fn schemes(&self) -> Schemes {
//!         Schemes::BEARER
//!     }
//!     fn verify(&self, request: &AuthRequest<'_>) -> Verdict {
//!         Verdict::Ready(match request.credentials() {
//!             Credentials::Bearer(t) if *t == "let-me-in-please-0123" => {
//!                 Ok(AuthInfo::builder("me", AuthMethod::Custom("one")).build())
//!             }
//!             Credentials::Bearer(_) => Err(Rejection::Invalid(Invalid::UnknownToken)),
//!             _ => Err(Rejection::NoCredentials),
//!         })
//!     }
//! }
//!
//! let request = AuthRequest::credentials_only(Credentials::Bearer("let-me-in-please-0123"));
//! assert!(matches!(OneToken.verify(&request), Verdict::Ready(Ok(_))));
//! ```
//!
//! # Migrating a verifier written for `verify(&Credentials)`
//!
//! Before, a verifier was given only the credentials:
//!
//! ```text
//! fn verify(&self, credentials: &Credentials<'_>) -> Verdict {
//!     let Credentials::Bearer(token) = credentials else { … };
//! ```
//!
//! Now it is given the request, and reads the credentials from it:
//!
//! ```text
//! fn verify(&self, request: &AuthRequest<'_>) -> Verdict {
//!     let Credentials::Bearer(token) = request.credentials() else { … };
//! ```
//!
//! `Schemes` is no longer `Copy` (it may hold scheme names of your own): clone it where you kept
//! a copy. To call a verifier outside the layer (tests, a CLI), build the request with
//! [`AuthRequest::credentials_only`] or [`AuthRequest::from_request`].

use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::{Arc, LazyLock},
};

use http::{Extensions, HeaderMap, Method, Uri, Version};

pub use crate::recall::{Presented, Recall};
pub use crate::rejection::{Invalid, Rejection};
use crate::{
    credentials::BasicCredentials,
    identity::AuthInfo,
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

/// The `Authorization` schemes a verifier understands: `Bearer`, `Basic`, `DPoP`, and names of
/// your own. The layer parses credentials of these schemes and challenges with them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Schemes {
    bearer: bool,
    basic: bool,
    dpop: bool,
    custom: Vec<Box<str>>,
    proxy: bool,
    /// The `algs` of the `DPoP` challenge (RFC 9449 §7.1), space-separated.
    dpop_algs: Option<Box<str>>,
}

impl Schemes {
    /// Nothing at all: a verifier that accepts no request (an absent one, say). A layer refuses
    /// to be built around it ([`BuildError::NoScheme`](crate::BuildError::NoScheme)); a verifier
    /// that reads credentials elsewhere than `Authorization` declares [`Schemes::PROXY`].
    pub const NONE: Self = Self {
        bearer: false,
        basic: false,
        dpop: false,
        custom: Vec::new(),
        proxy: false,
        dpop_algs: None,
    };
    /// `Bearer` (RFC 6750).
    pub const BEARER: Self = Self {
        bearer: true,
        basic: false,
        dpop: false,
        custom: Vec::new(),
        proxy: false,
        dpop_algs: None,
    };
    /// `Basic` (RFC 7617).
    pub const BASIC: Self = Self {
        bearer: false,
        basic: true,
        dpop: false,
        custom: Vec::new(),
        proxy: false,
        dpop_algs: None,
    };
    /// `DPoP` (RFC 9449).
    pub const DPOP: Self = Self {
        bearer: false,
        basic: false,
        dpop: true,
        custom: Vec::new(),
        proxy: false,
        dpop_algs: None,
    };

    /// No `Authorization` scheme: credentials that something in front of this server adds, in
    /// a header of its own, rather than the client (an identity-aware proxy's signed assertion,
    /// see [`crate::assertion`]; a client certificate a TLS terminator forwards). No
    /// `WWW-Authenticate` challenge can ask a client for them, and nothing a client does can fix
    /// their absence. So when no `Authorization` scheme is understood too, the layer refuses a
    /// request whose verifier answers [`Rejection::NoCredentials`] or [`Rejection::Invalid`]
    /// with `403` and a JSON body saying it did not come through the proxy, without a challenge
    /// (RFC 9110 §15.5.4); with other schemes, their `401` challenges as usual.
    pub const PROXY: Self = Self {
        bearer: false,
        basic: false,
        dpop: false,
        custom: Vec::new(),
        proxy: true,
        dpop_algs: None,
    };

    /// A scheme of your own, named `name` (a token, RFC 9110 §11.1; compared
    /// case-insensitively). Its credentials reach the verifier as [`Credentials::Other`], and the
    /// `401` challenges it with `name realm="…"`. A name that is not a token, or that names one
    /// of the schemes above, means that scheme's constant instead.
    pub fn custom(name: &str) -> Self {
        match name.to_ascii_lowercase().as_str() {
            "bearer" => Self::BEARER,
            "basic" => Self::BASIC,
            "dpop" => Self::DPOP,
            _ if is_token(name) => Self {
                custom: vec![name.into()],
                ..Self::default()
            },
            _ => Self::NONE,
        }
    }

    /// `DPoP` (RFC 9449), with the proof algorithms accepted: its challenge names them in
    /// `algs` (RFC 9449 §7.1). Names that are not tokens are left out.
    pub fn dpop_with_algorithms<I, S>(algorithms: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let algs: Vec<String> = algorithms
            .into_iter()
            .filter(|a| is_token(a.as_ref()))
            .map(|a| a.as_ref().to_owned())
            .collect();
        Self {
            dpop_algs: (!algs.is_empty()).then(|| algs.join(" ").into()),
            ..Self::DPOP
        }
    }

    /// The same set without `Bearer` (a layer that requires DPoP-bound tokens).
    pub fn without_bearer(mut self) -> Self {
        self.bearer = false;
        self
    }

    /// The proof algorithms the `DPoP` challenge names (`algs`), space-separated, if given.
    pub fn dpop_algorithms(&self) -> Option<&str> {
        self.dpop_algs.as_deref()
    }

    /// Both sets together.
    pub fn union(mut self, other: Self) -> Self {
        if self.dpop_algs.is_none() {
            self.dpop_algs = other.dpop_algs;
        }
        self.bearer |= other.bearer;
        self.basic |= other.basic;
        self.dpop |= other.dpop;
        self.proxy |= other.proxy;
        for name in other.custom {
            if !self.has_custom(&name) {
                self.custom.push(name);
            }
        }
        self
    }

    /// Whether `Bearer` is understood.
    pub const fn bearer(&self) -> bool {
        self.bearer
    }

    /// Whether `Basic` is understood.
    pub const fn basic(&self) -> bool {
        self.basic
    }

    /// Whether `DPoP` is understood.
    pub const fn dpop(&self) -> bool {
        self.dpop
    }

    /// The schemes of your own, in the order they were added.
    pub fn custom_names(&self) -> impl Iterator<Item = &str> {
        self.custom.iter().map(|n| &**n)
    }

    /// Whether a scheme of your own named `name` (case-insensitively) is understood.
    pub fn has_custom(&self, name: &str) -> bool {
        self.custom.iter().any(|n| n.eq_ignore_ascii_case(name))
    }

    /// Whether credentials added in front of this server are read ([`Schemes::PROXY`]).
    pub const fn proxy(&self) -> bool {
        self.proxy
    }

    /// Whether some `Authorization` scheme is understood: one a `401` can challenge with.
    pub fn has_authorization_scheme(&self) -> bool {
        self.bearer || self.basic || self.dpop || !self.custom.is_empty()
    }

    /// Whether nothing at all is understood: no `Authorization` scheme, and no
    /// [`Schemes::PROXY`] credentials.
    pub fn is_empty(&self) -> bool {
        !self.has_authorization_scheme() && !self.proxy
    }
}

/// Whether `s` is an RFC 9110 `token`.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A boxed verification future, for verifiers that must do I/O.
pub type VerifyFuture = Pin<Box<dyn Future<Output = Result<AuthInfo, Rejection>> + Send + 'static>>;

/// A verifier's answer.
#[must_use]
pub enum Verdict {
    /// Decided at once.
    Ready(Result<AuthInfo, Rejection>),
    /// Decided once the future completes.
    Pending(VerifyFuture),
}

impl std::fmt::Debug for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Ready(r) => f.debug_tuple("Ready").field(r).finish(),
            Self::Pending(_) => f.write_str("Pending(..)"),
        }
    }
}

impl Verdict {
    /// Waits for the verdict.
    pub async fn resolve(self) -> Result<AuthInfo, Rejection> {
        match self {
            Self::Ready(r) => r,
            Self::Pending(f) => f.await,
        }
    }
}

/// Checks what a request presents.
pub trait Verifier: Send + Sync + 'static {
    /// The `Authorization` schemes this verifier understands. The layer parses and checks
    /// credentials of these schemes, and names them in its challenges.
    fn schemes(&self) -> Schemes;

    /// Checks `request`. Return `Err(Rejection::NoCredentials)` when it presents nothing of
    /// yours, so that a combined verifier can try the next one and the `401` says what to send.
    fn verify(&self, request: &AuthRequest<'_>) -> Verdict;

    /// Answers from memory for credentials this verifier accepted before, before the layer
    /// parses them ([`crate::recall`]). [`Recall::Accepted`] only for exactly these bytes,
    /// accepted through [`verify`](Self::verify) before and acceptable now; `Recall::Refused`
    /// only when `verify` would refuse them whatever they are. The default, `Recall::Unsure`,
    /// is always right: the layer then parses the credentials and calls `verify`.
    ///
    /// Recall stands in for `verify` of every verifier on the way, so a wrapper may forward
    /// `recall` to the verifier it wraps only if its own `verify` never changes the inner
    /// verdict on an identity bound to no key or certificate (no extra check, no other scopes);
    /// otherwise it keeps the default.
    fn recall(&self, presented: &Presented<'_>) -> Recall {
        let _ = presented;
        Recall::Unsure
    }
}

impl<V: Verifier + ?Sized> Verifier for Arc<V> {
    fn schemes(&self) -> Schemes {
        (**self).schemes()
    }
    fn verify(&self, request: &AuthRequest<'_>) -> Verdict {
        (**self).verify(request)
    }
    fn recall(&self, presented: &Presented<'_>) -> Recall {
        (**self).recall(presented)
    }
}

impl<V: Verifier + ?Sized> Verifier for Box<V> {
    fn schemes(&self) -> Schemes {
        (**self).schemes()
    }
    fn verify(&self, request: &AuthRequest<'_>) -> Verdict {
        (**self).verify(request)
    }
    fn recall(&self, presented: &Presented<'_>) -> Recall {
        (**self).recall(presented)
    }
}

/// An absent verifier understands nothing, so configuration can switch verifiers on and off.
impl<V: Verifier> Verifier for Option<V> {
    fn schemes(&self) -> Schemes {
        self.as_ref().map_or(Schemes::NONE, Verifier::schemes)
    }
    fn verify(&self, request: &AuthRequest<'_>) -> Verdict {
        match self {
            Some(v) => v.verify(request),
            None => Verdict::Ready(Err(Rejection::NoCredentials)),
        }
    }
    fn recall(&self, presented: &Presented<'_>) -> Recall {
        match self {
            Some(v) => v.recall(presented),
            None => Recall::Refused,
        }
    }
}

/// Combinators for verifiers.
pub trait VerifierExt: Verifier + Sized {
    /// Accepts what either `self` or `other` accepts; `self` is asked first.
    fn or<W: Verifier>(self, other: W) -> Or<Self, W> {
        Or {
            first: Arc::new(self),
            second: Arc::new(other),
        }
    }
}

impl<V: Verifier> VerifierExt for V {}

/// Accepts what either of two verifiers accepts. Built by [`VerifierExt::or`].
///
/// The first is asked first; the second is asked when the first refuses at once. When the first
/// must wait (it fetches keys), the second is asked at once too, since the request is no longer
/// at hand once the first is done; the first's acceptance still wins.
#[derive(Debug)]
pub struct Or<A, B> {
    first: Arc<A>,
    second: Arc<B>,
}

impl<A, B> Clone for Or<A, B> {
    fn clone(&self) -> Self {
        Self {
            first: self.first.clone(),
            second: self.second.clone(),
        }
    }
}

impl<A, B> Or<A, B> {
    /// The first verifier.
    pub fn first(&self) -> &A {
        &self.first
    }
    /// The second verifier.
    pub fn second(&self) -> &B {
        &self.second
    }
}

impl<A: Verifier, B: Verifier> Verifier for Or<A, B> {
    fn schemes(&self) -> Schemes {
        self.first.schemes().union(self.second.schemes())
    }

    /// The first's answer; the second's only when the first would refuse, as `verify` would
    /// then ask the second (and the first's acceptance wins).
    fn recall(&self, presented: &Presented<'_>) -> Recall {
        match self.first.recall(presented) {
            Recall::Refused => self.second.recall(presented),
            known => known,
        }
    }

    fn verify(&self, request: &AuthRequest<'_>) -> Verdict {
        match self.first.verify(request) {
            Verdict::Ready(Ok(info)) => Verdict::Ready(Ok(info)),
            Verdict::Ready(Err(e)) => match self.second.verify(request) {
                Verdict::Ready(r) => Verdict::Ready(r.map_err(|e2| e.prefer(e2))),
                Verdict::Pending(f) => {
                    Verdict::Pending(Box::pin(async move { f.await.map_err(|e2| e.prefer(e2)) }))
                }
            },
            Verdict::Pending(first) => {
                let second = self.second.verify(request);
                Verdict::Pending(Box::pin(async move {
                    match first.await {
                        Ok(info) => Ok(info),
                        Err(e) => second.resolve().await.map_err(|e2| e.prefer(e2)),
                    }
                }))
            }
        }
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
