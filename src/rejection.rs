//! Why a request is refused: one vocabulary for every layer.
//!
//! A verifier says why credentials are not accepted ([`Rejection::NoCredentials`],
//! [`Rejection::InvalidRequest`], [`Rejection::Invalid`] with the reason, [`Rejection::Unavailable`]);
//! the scope checks add [`Rejection::InsufficientScope`]. Each maps to one answer, built in
//! [`crate::refusal`]: `401` without an error, `400 invalid_request`, `401 invalid_token`, `503`
//! with `Retry-After`, and `403 insufficient_scope` (RFC 6750 §3.1). The reason in
//! [`Invalid`] goes to logs; a client sees at most its [public
//! description](Invalid::public_description).
//!
//! ```
//! use mcp_server_auth::rejection::{Invalid, Rejection};
//!
//! let why = Rejection::Invalid(Invalid::Expired);
//! assert_eq!(Invalid::Expired.public_description(), "The access token expired");
//! # let _ = why;
//! ```

use std::time::Duration;

use crate::{credentials::CredentialError, scope::ScopeSet};

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
    /// The authorization server says the token is not active (RFC 7662 §2.2: revoked,
    /// expired, unknown, or an answer whose `active` is not the JSON boolean `true`).
    #[error("the authorization server says the token is not active")]
    Inactive,
    /// The DPoP proof (RFC 9449 §4.3) is missing, malformed, or fails a check, or was seen
    /// before: `401` with `error="invalid_dpop_proof"` on the `DPoP` challenge.
    #[error("the DPoP proof is missing, invalid or replayed")]
    DpopProof,
    /// The token's binding to a key or a certificate does not hold (RFC 9449 §6–7, RFC 8705
    /// §3): a bound token presented as a bearer token, an unbound one presented with a DPoP
    /// proof, a proof by another key, or a certificate-bound token over a connection without
    /// that client certificate.
    #[error("the token's key binding (cnf) does not match how it was presented")]
    Binding,
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
            Self::DpopProof => "The DPoP proof is invalid",
            _ => "The access token is invalid",
        }
    }

    /// A stable, lowercase code for logs and metrics (the `reason` of the [audit
    /// events](crate::audit) and of the `mcp_auth_decisions_total` counter): `invalid_token`
    /// (a token that is not one of ours, malformed, or refused by a custom check),
    /// `wrong_password`, `expired`, `not_yet_valid`, `bad_signature`, `wrong_audience`,
    /// `wrong_issuer`, `unknown_key`, `unacceptable` (algorithm or type), `invalid_claims`,
    /// `inactive`, `invalid_dpop_proof` or `token_binding` (a sender-constrained token
    /// presented without its proof of possession, or with another key's or certificate's).
    /// Codes are never renamed within a major version.
    ///
    /// ```
    /// use mcp_server_auth::rejection::Invalid;
    /// assert_eq!(Invalid::WrongAudience.reason_code(), "wrong_audience");
    /// ```
    pub fn reason_code(&self) -> &'static str {
        match self {
            Self::UnknownToken | Self::Malformed | Self::Custom(_) => "invalid_token",
            Self::WrongPassword => "wrong_password",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::BadSignature => "bad_signature",
            Self::WrongAudience => "wrong_audience",
            Self::WrongIssuer => "wrong_issuer",
            Self::UnknownKey => "unknown_key",
            Self::Unacceptable => "unacceptable",
            Self::Claims => "invalid_claims",
            Self::Inactive => "inactive",
            Self::DpopProof => "invalid_dpop_proof",
            Self::Binding => "token_binding",
        }
    }
}

/// Why a request is refused. The layer turns each into its response (see
/// [`crate::refusal`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// No credentials this verifier understands: `401` with no `error` (RFC 6750 §3.1).
    NoCredentials,
    /// The `Authorization` header or its credentials are malformed: `400` with
    /// `error="invalid_request"`.
    InvalidRequest(CredentialError),
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
    /// The DPoP proof lacks this server's current nonce (RFC 9449 §9): `401` with
    /// `error="use_dpop_nonce"` on the `DPoP` challenge and the nonce to use in the
    /// `DPoP-Nonce` header.
    UseDpopNonce {
        /// The nonce the next proof must carry.
        nonce: http::HeaderValue,
    },
}

impl Rejection {
    /// A stable, lowercase code for logs and metrics: `no_credentials`, `invalid_request`,
    /// `insufficient_scope`, `unavailable`, `use_dpop_nonce`, or the [code of the
    /// reason](Invalid::reason_code)
    /// credentials are invalid. The [audit events](crate::audit) add `origin` and
    /// `throttled` for the refusals of those layers.
    ///
    /// ```
    /// use mcp_server_auth::rejection::{Invalid, Rejection};
    /// assert_eq!(Rejection::NoCredentials.reason_code(), "no_credentials");
    /// assert_eq!(Rejection::Invalid(Invalid::Expired).reason_code(), "expired");
    /// ```
    pub fn reason_code(&self) -> &'static str {
        match self {
            Self::NoCredentials => "no_credentials",
            Self::InvalidRequest(_) => "invalid_request",
            Self::Invalid(invalid) => invalid.reason_code(),
            Self::InsufficientScope { .. } => "insufficient_scope",
            Self::Unavailable { .. } => "unavailable",
            Self::UseDpopNonce { .. } => "use_dpop_nonce",
        }
    }

    /// Of two refusals of the same request by two verifiers, the one to report: being unable
    /// to check beats a definite "invalid", which beats "not mine". Among "invalid", a reason
    /// only the token's own kind can give (expired, wrong audience, …) beats "not one of my
    /// tokens" or "not my format": a JWT refused as expired by the JWT verifier is reported as
    /// expired, not as unknown to the static tokens tried beside it.
    pub(crate) fn prefer(self, other: Self) -> Self {
        fn rank(r: &Rejection) -> u8 {
            match r {
                Rejection::NoCredentials => 0,
                Rejection::Invalid(Invalid::UnknownToken | Invalid::Malformed) => 1,
                Rejection::Invalid(_) => 2,
                Rejection::InvalidRequest(_)
                | Rejection::InsufficientScope { .. }
                | Rejection::UseDpopNonce { .. } => 3,
                Rejection::Unavailable { .. } => 4,
            }
        }
        if rank(&other) > rank(&self) {
            other
        } else {
            self
        }
    }
}
