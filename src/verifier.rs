//! The verifier: turns credentials into an identity, or says why not.
//!
//! A [`Verifier`] answers with a [`Verdict`]: [`Verdict::Ready`] when it can decide at once
//! (static tokens, Basic, a JWT whose key is known), or [`Verdict::Pending`] with a future when it
//! must do I/O first (fetching keys). The layer takes the ready path without boxing anything
//! or cloning the inner service, so verifiers that need no I/O cost no allocation.
//!
//! Two verifiers combine with [`VerifierExt::or`]: the request is accepted if either accepts it,
//! and a `401` then carries one challenge per scheme, `Bearer` first.
//!
//! ```
//! use mcp_server_auth::{AuthInfo, AuthMethod};
//! use mcp_server_auth::verifier::{Credentials, Invalid, Rejection, Schemes, Verdict, Verifier};
//!
//! /// Accepts one hard-coded token (for illustration; use `StaticBearer` for real).
//! struct OneToken;
//!
//! impl Verifier for OneToken {
//!     fn schemes(&self) -> Schemes {
//!         Schemes::BEARER
//!     }
//!     fn verify(&self, credentials: &Credentials<'_>) -> Verdict {
//!         Verdict::Ready(match credentials {
//!             Credentials::Bearer(t) if *t == "let-me-in-please-0123" => {
//!                 Ok(AuthInfo::builder("me", AuthMethod::Custom("one")).build())
//!             }
//!             Credentials::Bearer(_) => Err(Rejection::Invalid(Invalid::UnknownToken)),
//!             _ => Err(Rejection::NoCredentials),
//!         })
//!     }
//! }
//! ```

use std::{future::Future, pin::Pin, sync::Arc, time::Duration};

use crate::{credentials::BasicCredentials, identity::AuthInfo, scope::ScopeSet};

/// Credentials a verifier is asked to check. Only schemes in [`Verifier::schemes`] are passed.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Credentials<'a> {
    /// A bearer token, already checked against RFC 6750 `b64token`.
    Bearer(&'a str),
    /// Decoded HTTP Basic credentials.
    Basic(&'a BasicCredentials),
}

/// The schemes a verifier understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Schemes {
    bearer: bool,
    basic: bool,
}

impl Schemes {
    /// No scheme.
    pub const NONE: Self = Self {
        bearer: false,
        basic: false,
    };
    /// `Bearer`.
    pub const BEARER: Self = Self {
        bearer: true,
        basic: false,
    };
    /// `Basic`.
    pub const BASIC: Self = Self {
        bearer: false,
        basic: true,
    };

    /// Both sets together.
    pub const fn union(self, other: Self) -> Self {
        Self {
            bearer: self.bearer || other.bearer,
            basic: self.basic || other.basic,
        }
    }

    /// Whether `Bearer` is understood.
    pub const fn bearer(&self) -> bool {
        self.bearer
    }

    /// Whether `Basic` is understood.
    pub const fn basic(&self) -> bool {
        self.basic
    }
}

/// Why presented credentials are not valid. It decides nothing about the status (always 401);
/// it goes to logs, and only a generic form of it reaches the client, when
/// `error_description` is switched on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Invalid {
    /// The bearer token is not one of the configured tokens.
    #[error("the token is not one of the configured tokens")]
    UnknownToken,
    /// Unknown user or wrong password.
    #[error("unknown user or wrong password")]
    WrongPassword,
    /// The token is not a well-formed token of the expected kind.
    #[error("the token is malformed")]
    Malformed,
    /// The token has expired.
    #[error("the token has expired")]
    Expired,
    /// The token is not valid yet (`nbf`, or `iat` in the future).
    #[error("the token is not valid yet")]
    NotYetValid,
    /// The signature does not verify.
    #[error("the token signature does not verify")]
    BadSignature,
    /// The token was issued for another resource.
    #[error("the token was issued for another audience")]
    WrongAudience,
    /// The token was issued by an issuer that is not trusted.
    #[error("the token issuer is not trusted")]
    WrongIssuer,
    /// The token names a key that is not known.
    #[error("the token is signed by an unknown key")]
    UnknownKey,
    /// The token's algorithm or type is not accepted.
    #[error("the token algorithm or type is not accepted")]
    Unacceptable,
    /// A required claim is missing or has the wrong form.
    #[error("a required claim is missing or malformed")]
    Claims,
    /// A custom check refused the token.
    #[error("the token was refused: {0}")]
    Custom(&'static str),
}

impl Invalid {
    /// The description sent in `error_description` when descriptions are switched on. It names no
    /// validation internals (which key, which claim) beyond expiry.
    pub fn public_description(&self) -> &'static str {
        match self {
            Self::Expired => "The access token expired",
            Self::WrongPassword => "Invalid credentials",
            _ => "The access token is invalid",
        }
    }
}

/// Why a request is refused. The layer turns each into its response (see
/// [`crate::challenge`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// No credentials this verifier understands: `401` with no `error` (RFC 6750 §3.1).
    NoCredentials,
    /// The credentials are malformed: `400` with `error="invalid_request"`.
    Malformed(crate::credentials::CredentialError),
    /// The credentials are not valid: `401` with `error="invalid_token"`.
    Invalid(Invalid),
    /// Valid credentials without the scopes needed: `403` with `error="insufficient_scope"`
    /// naming the full set in `required`.
    InsufficientScope {
        /// The scopes the operation needs.
        required: ScopeSet,
    },
    /// The credentials cannot be checked now (a dependency such as a JWKS endpoint is down):
    /// `503` with `Retry-After`, never `401`.
    Unavailable {
        /// When to try again.
        retry_after: Duration,
    },
}

impl Rejection {
    /// Of two refusals of the same request by two verifiers, the one to report: being unable
    /// to check beats a definite "invalid", which beats "not mine".
    fn prefer(self, other: Self) -> Self {
        fn rank(r: &Rejection) -> u8 {
            match r {
                Rejection::NoCredentials => 0,
                Rejection::Invalid(_) => 1,
                Rejection::Malformed(_) | Rejection::InsufficientScope { .. } => 2,
                Rejection::Unavailable { .. } => 3,
            }
        }
        if rank(&other) > rank(&self) {
            other
        } else {
            self
        }
    }
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

/// Checks credentials.
pub trait Verifier: Send + Sync + 'static {
    /// The schemes this verifier understands. The layer passes it only credentials of these
    /// schemes and names these schemes in its challenges.
    fn schemes(&self) -> Schemes;

    /// Checks `credentials`. Return `Err(Rejection::NoCredentials)` for credentials that are
    /// not yours, so that a combined verifier can try the next one.
    fn verify(&self, credentials: &Credentials<'_>) -> Verdict;
}

impl<V: Verifier + ?Sized> Verifier for Arc<V> {
    fn schemes(&self) -> Schemes {
        (**self).schemes()
    }
    fn verify(&self, credentials: &Credentials<'_>) -> Verdict {
        (**self).verify(credentials)
    }
}

impl<V: Verifier + ?Sized> Verifier for Box<V> {
    fn schemes(&self) -> Schemes {
        (**self).schemes()
    }
    fn verify(&self, credentials: &Credentials<'_>) -> Verdict {
        (**self).verify(credentials)
    }
}

/// An absent verifier understands nothing, so configuration can switch verifiers on and off.
impl<V: Verifier> Verifier for Option<V> {
    fn schemes(&self) -> Schemes {
        self.as_ref().map_or(Schemes::NONE, Verifier::schemes)
    }
    fn verify(&self, credentials: &Credentials<'_>) -> Verdict {
        match self {
            Some(v) => v.verify(credentials),
            None => Verdict::Ready(Err(Rejection::NoCredentials)),
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

fn understands(schemes: Schemes, credentials: &Credentials<'_>) -> bool {
    match credentials {
        Credentials::Bearer(_) => schemes.bearer(),
        Credentials::Basic(_) => schemes.basic(),
    }
}

impl<A: Verifier, B: Verifier> Verifier for Or<A, B> {
    fn schemes(&self) -> Schemes {
        self.first.schemes().union(self.second.schemes())
    }

    fn verify(&self, credentials: &Credentials<'_>) -> Verdict {
        let first = if understands(self.first.schemes(), credentials) {
            self.first.verify(credentials)
        } else {
            Verdict::Ready(Err(Rejection::NoCredentials))
        };
        if !understands(self.second.schemes(), credentials) {
            return first;
        }
        match first {
            Verdict::Ready(Ok(info)) => Verdict::Ready(Ok(info)),
            Verdict::Ready(Err(e)) => match self.second.verify(credentials) {
                Verdict::Ready(r) => Verdict::Ready(r.map_err(|e2| e.prefer(e2))),
                Verdict::Pending(f) => {
                    Verdict::Pending(Box::pin(async move { f.await.map_err(|e2| e.prefer(e2)) }))
                }
            },
            Verdict::Pending(f) => {
                // The second verifier may have to run after the first finishes: own what it needs.
                let second = self.second.clone();
                let owned = OwnedCredentials::from(credentials);
                Verdict::Pending(Box::pin(async move {
                    match f.await {
                        Ok(info) => Ok(info),
                        Err(e) => {
                            let again = second.verify(&owned.borrow()).resolve().await;
                            again.map_err(|e2| e.prefer(e2))
                        }
                    }
                }))
            }
        }
    }
}

enum OwnedCredentials {
    Bearer(String),
    Basic(BasicCredentials),
}

impl From<&Credentials<'_>> for OwnedCredentials {
    fn from(c: &Credentials<'_>) -> Self {
        match c {
            Credentials::Bearer(t) => Self::Bearer((*t).to_owned()),
            Credentials::Basic(b) => Self::Basic((*b).clone()),
        }
    }
}

impl OwnedCredentials {
    fn borrow(&self) -> Credentials<'_> {
        match self {
            Self::Bearer(t) => Credentials::Bearer(t),
            Self::Basic(b) => Credentials::Basic(b),
        }
    }
}
