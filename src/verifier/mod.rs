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
//!
//! The files: this one (the trait and its verdict), `request` ([`AuthRequest`],
//! [`Credentials`]), `schemes` ([`Schemes`]) and `or` ([`Or`]).

mod or;
mod request;
mod schemes;

use std::{future::Future, pin::Pin, sync::Arc};

use crate::identity::AuthInfo;
pub use crate::recall::{Presented, Recall};
pub use crate::rejection::{Invalid, Rejection};
pub use or::{Or, VerifierExt};
pub use request::{AuthRequest, Credentials};
pub use schemes::Schemes;

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
