//! Challenges out: the `WWW-Authenticate` challenges and error responses of every refusal.
//!
//! | refusal | status | `WWW-Authenticate` (Bearer line) |
//! |---|---|---|
//! | no credentials, or a scheme not accepted | 401 | no `error` (RFC 6750 §3.1) |
//! | malformed `Authorization` | 400 | `error="invalid_request"` |
//! | invalid, unknown or expired credentials | 401 | `error="invalid_token"` |
//! | a missing, invalid or replayed DPoP proof | 401 | on the `DPoP` line: `error="invalid_dpop_proof"` (RFC 9449 §7.1) |
//! | a DPoP proof without this server's current nonce | 401 + `DPoP-Nonce` | on the `DPoP` line: `error="use_dpop_nonce"` (RFC 9449 §9) |
//! | valid, but a scope is missing | 403 | `error="insufficient_scope"`, `scope` = the full required set |
//! | credentials cannot be checked now | 503 + `Retry-After` | none |
//! | only [`Schemes::PROXY`] credentials are read, and they are missing or invalid | 403 | none |
//!
//! Format, for the parsers real MCP clients use (RFC 6750 §3, RFC 9728 §5.1; see the Conformance section of this crate's README):
//! lowercase parameter names, `name="value"` with no spaces around `=`, values sanitized rather
//! than escaped (no `"` or `\` and nothing outside printable ASCII), all on one line, in the
//! fixed order `realm`, `resource_metadata`, `scope`, `error`, `error_description`; empty values
//! are left out. With metadata configured every Bearer challenge carries `resource_metadata`
//! (absolute) and `scope`. When Basic is accepted too, its challenge is a second
//! `WWW-Authenticate` field line, after the Bearer one. When DPoP is accepted, its challenge
//! (RFC 9449 §7.1: the same parameters, and `algs` naming the proof algorithms) is a field
//! line after the Bearer one and before Basic's. Every refusal has
//! `Cache-Control: no-store` and a JSON body `{"error":…[,"error_description":…]}`.
//! `error_description` is off by default ([`AuthLayerBuilder::error_descriptions`]).
//!
//! A layer whose verifier reads no `Authorization` scheme, only credentials something in front
//! of the server adds ([`Schemes::PROXY`]: an identity-aware proxy's assertion), has no challenge
//! to send, and a client can do nothing about a missing or invalid assertion: only the proxy
//! adds it. Such a request did not come through the proxy, or the proxy is misconfigured. It gets
//! `403` (RFC 9110 §15.5.4) with no `WWW-Authenticate`, so that no MCP client starts an
//! authorization flow, `Cache-Control: no-store`, and the fixed body
//! `{"error":"forbidden","error_description":"The request did not come through the proxy in front
//! of this server"}` (always: it names no validation internals). Keys that cannot be fetched are
//! still `503` with `Retry-After`.
//!
//! A gRPC call gets the same refusal in gRPC form ([`super::grpc`]).
//!
//! [`AuthLayerBuilder::error_descriptions`]: crate::AuthLayerBuilder::error_descriptions
//!
//! ```
//! use mcp_server_auth::refusal::challenge::Challenge;
//!
//! let c = Challenge::bearer()
//!     .param("resource_metadata", "https://h/.well-known/oauth-protected-resource/mcp")
//!     .param("scope", "files:read")
//!     .param("error_description", "bad \"quote\" and scope=admin");
//! assert_eq!(
//!     c.to_string(),
//!     "Bearer resource_metadata=\"https://h/.well-known/oauth-protected-resource/mcp\", \
//!      scope=\"files:read\", error_description=\"bad 'quote' and scope:admin\""
//! );
//! ```

use std::{fmt, time::Duration};

use bytes::Bytes;
use http::{
    HeaderMap, HeaderValue, Response, StatusCode,
    header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE},
};

use crate::{
    credentials::Scheme,
    refusal::ResponseBody,
    scope::ScopeSet,
    verifier::{Invalid, Rejection, Schemes},
};

/// The longest `error_description` sent, in bytes.
pub const MAX_DESCRIPTION_BYTES: usize = 256;

/// The RFC 6750 error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// `invalid_request`: malformed request (400).
    InvalidRequest,
    /// `invalid_token`: invalid, expired or foreign token (401).
    InvalidToken,
    /// `insufficient_scope`: valid token lacking a scope (403).
    InsufficientScope,
    /// `invalid_dpop_proof`: the DPoP proof is missing, invalid or replayed (401, on the `DPoP`
    /// challenge; RFC 9449 §7.1).
    InvalidDpopProof,
    /// `use_dpop_nonce`: the DPoP proof must carry the server's nonce, given in `DPoP-Nonce`
    /// (401, on the `DPoP` challenge; RFC 9449 §9).
    UseDpopNonce,
}

impl ErrorCode {
    /// The code as sent.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidToken => "invalid_token",
            Self::InsufficientScope => "insufficient_scope",
            Self::InvalidDpopProof => "invalid_dpop_proof",
            Self::UseDpopNonce => "use_dpop_nonce",
        }
    }
}

/// One challenge of a `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    scheme: Box<str>,
    params: Vec<(&'static str, String)>,
}

impl Challenge {
    /// A `Bearer` challenge with no parameters yet.
    pub fn bearer() -> Self {
        Self::new("Bearer")
    }

    /// A `DPoP` challenge (RFC 9449 §7.1) with no parameters yet.
    pub fn dpop() -> Self {
        Self::new("DPoP")
    }

    /// A challenge of another scheme with no parameters yet. `scheme` must be a token
    /// (RFC 9110 §11.1).
    pub fn new(scheme: impl Into<Box<str>>) -> Self {
        Self {
            scheme: scheme.into(),
            params: Vec::new(),
        }
    }

    /// `Basic realm="…", charset="UTF-8"` (RFC 7617 §2.1).
    pub fn basic(realm: &str) -> Self {
        Self::new("Basic")
            .param("realm", realm)
            .param("charset", "UTF-8")
    }

    /// Appends `name="value"`. The name must be a lowercase token. The value is sanitized: `"`
    /// becomes `'`, `\` becomes `/`, characters outside printable ASCII are dropped, and in
    /// `error_description` `=` becomes `:` (so that no client regex finds `scope=` inside it)
    /// and the text is cut at [`MAX_DESCRIPTION_BYTES`]. An empty value is left out.
    pub fn param(mut self, name: &'static str, value: impl AsRef<str>) -> Self {
        debug_assert!(
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "parameter names are lowercase tokens"
        );
        let description = name == "error_description";
        let mut v = String::with_capacity(value.as_ref().len());
        for c in value.as_ref().chars() {
            let c = match c {
                '"' => '\'',
                '\\' => '/',
                '=' if description => ':',
                ' '..='~' => c,
                _ => continue,
            };
            if description && v.len() >= MAX_DESCRIPTION_BYTES {
                break;
            }
            v.push(c);
        }
        let v = if description { v.trim().to_owned() } else { v };
        if !v.is_empty() {
            self.params.push((name, v));
        }
        self
    }

    /// The challenge as a header value.
    pub fn to_header_value(&self) -> HeaderValue {
        // Only printable ASCII is ever written, so this cannot fail.
        HeaderValue::from_str(&self.to_string()).expect("challenge is printable ASCII")
    }
}

impl fmt::Display for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.scheme)?;
        for (i, (name, value)) in self.params.iter().enumerate() {
            f.write_str(if i == 0 { " " } else { ", " })?;
            write!(f, "{name}=\"{value}\"")?;
        }
        Ok(())
    }
}

/// What the challenges say, fixed at construction.
#[derive(Debug, Clone)]
pub(crate) struct ChallengeSettings {
    pub(crate) schemes: Schemes,
    pub(crate) realm: String,
    pub(crate) resource_metadata: Option<String>,
    pub(crate) scope: Option<ScopeSet>,
    pub(crate) descriptions: bool,
    pub(crate) required: Option<ScopeSet>,
}

/// Builds the response for each refusal. Everything that does not depend on the request is
/// built once, here.
#[derive(Debug, Clone)]
pub(crate) struct Responder {
    settings: ChallengeSettings,
    /// Complete header maps of the refusals that do not depend on the request, by [`Cached`].
    cached: Vec<HeaderMap>,
    bearer_plain: Option<HeaderValue>,
    bearer_invalid_token: Option<HeaderValue>,
    bearer_invalid_request: Option<HeaderValue>,
    bearer_insufficient: Option<HeaderValue>,
    /// `DPoP` without an error, when DPoP is understood.
    dpop_plain: Option<HeaderValue>,
    basic: Option<HeaderValue>,
    /// `<name> realm="…"` for each scheme of the user's own.
    custom: Vec<HeaderValue>,
    /// Only [`Schemes::PROXY`] credentials are read: no challenge, `403` instead of `401`.
    proxy_only: bool,
}

/// The `403` of a request without valid [`Schemes::PROXY`] credentials when nothing else is
/// accepted: nothing to challenge with, nothing a client can fix.
fn not_proxied<B>(grpc: bool) -> Response<ResponseBody<B>> {
    if grpc {
        let mut res = super::grpc::refusal(StatusCode::FORBIDDEN, HeaderMap::new());
        res.headers_mut().insert(
            "grpc-message",
            HeaderValue::from_static("the request did not come through the proxy"),
        );
        return res;
    }
    super::fixed(StatusCode::FORBIDDEN, Bytes::from_static(BODY_NOT_PROXIED))
}

const BODY_UNAUTHORIZED: &[u8] = br#"{"error":"unauthorized"}"#;
const BODY_INVALID_TOKEN: &[u8] = br#"{"error":"invalid_token"}"#;
const BODY_INVALID_REQUEST: &[u8] = br#"{"error":"invalid_request"}"#;
const BODY_INVALID_DPOP_PROOF: &[u8] = br#"{"error":"invalid_dpop_proof"}"#;
const BODY_USE_DPOP_NONCE: &[u8] = br#"{"error":"use_dpop_nonce"}"#;
const BODY_INSUFFICIENT: &[u8] = br#"{"error":"insufficient_scope"}"#;
const BODY_UNAVAILABLE: &[u8] = br#"{"error":"temporarily_unavailable"}"#;
const BODY_NOT_PROXIED: &[u8] = br#"{"error":"forbidden","error_description":"The request did not come through the proxy in front of this server"}"#;

/// RFC 9449 §8.1: the nonce a DPoP proof must carry.
const DPOP_NONCE: http::HeaderName = http::HeaderName::from_static("dpop-nonce");

const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");
const JSON: HeaderValue = HeaderValue::from_static("application/json");

impl Responder {
    pub(crate) fn new(settings: ChallengeSettings) -> Self {
        let mut r = Self {
            cached: Vec::new(),
            bearer_plain: None,
            bearer_invalid_token: None,
            bearer_invalid_request: None,
            bearer_insufficient: None,
            dpop_plain: None,
            proxy_only: settings.schemes.proxy() && !settings.schemes.has_authorization_scheme(),
            basic: settings
                .schemes
                .basic()
                .then(|| Challenge::basic(&settings.realm).to_header_value()),
            custom: settings
                .schemes
                .custom_names()
                .map(|name| {
                    Challenge::new(name)
                        .param("realm", &settings.realm)
                        .to_header_value()
                })
                .collect(),
            settings,
        };
        if r.settings.schemes.dpop() {
            r.dpop_plain = Some(r.token_challenge(Challenge::dpop(), None, None, None));
        }
        if r.settings.schemes.bearer() {
            r.bearer_plain = Some(r.bearer(None, None, None));
            r.bearer_invalid_token = Some(r.bearer(None, Some(ErrorCode::InvalidToken), None));
            r.bearer_invalid_request = Some(r.bearer(None, Some(ErrorCode::InvalidRequest), None));
            if let Some(required) = r.settings.required.clone() {
                r.bearer_insufficient =
                    Some(r.bearer(Some(&required), Some(ErrorCode::InsufficientScope), None));
            }
        }
        if !r.settings.descriptions {
            let required = r.settings.required.clone().unwrap_or_default();
            let malformed = Rejection::InvalidRequest(crate::credentials::CredentialError::Empty);
            let invalid = Rejection::Invalid(crate::verifier::Invalid::UnknownToken);
            let insufficient = Rejection::InsufficientScope { required };
            let cases = [
                (&Rejection::NoCredentials, None),
                (&malformed, None),
                (&malformed, Some(Scheme::Basic)),
                (&invalid, Some(Scheme::Bearer)),
                (&invalid, Some(Scheme::Basic)),
                (&insufficient, Some(Scheme::Bearer)),
            ];
            r.cached = cases
                .iter()
                .map(|(rejection, presented)| {
                    std::mem::take(r.build::<()>(rejection, *presented, false).headers_mut())
                })
                .collect();
        }
        r
    }

    /// The prebuilt header map for a refusal, if there is one.
    fn cached(&self, rejection: &Rejection, presented: Option<Scheme>) -> Option<&HeaderMap> {
        if presented == Some(Scheme::DPoP) {
            // Its challenge carries the error: built per request (DPoP verifiers are rare yet).
            return None;
        }
        let basic = presented == Some(Scheme::Basic);
        let i = match rejection {
            Rejection::NoCredentials => 0,
            Rejection::InvalidRequest(_) if !basic => 1,
            Rejection::InvalidRequest(_) => 2,
            Rejection::Invalid(_) if presented == Some(Scheme::Bearer) => 3,
            Rejection::Invalid(_) => 4,
            Rejection::InsufficientScope { required }
                if presented == Some(Scheme::Bearer)
                    && self.settings.required.as_ref() == Some(required) =>
            {
                5
            }
            _ => return None,
        };
        self.cached.get(i)
    }

    /// A Bearer challenge: `realm` (only without metadata), `resource_metadata`, `scope`,
    /// `error`, `error_description`.
    fn bearer(
        &self,
        scope: Option<&ScopeSet>,
        error: Option<ErrorCode>,
        description: Option<&str>,
    ) -> HeaderValue {
        self.token_challenge(Challenge::bearer(), scope, error, description)
    }

    /// A challenge of a token scheme (`Bearer`, `DPoP`): the parameters of [`Self::bearer`].
    fn token_challenge(
        &self,
        mut c: Challenge,
        scope: Option<&ScopeSet>,
        error: Option<ErrorCode>,
        description: Option<&str>,
    ) -> HeaderValue {
        let s = &self.settings;
        match &s.resource_metadata {
            Some(url) => c = c.param("resource_metadata", url),
            None => c = c.param("realm", &s.realm),
        }
        if let Some(scope) = scope.or(s.scope.as_ref()) {
            c = c.param("scope", scope.to_string());
        }
        if &*c.scheme == "DPoP"
            && let Some(algs) = s.schemes.dpop_algorithms()
        {
            // RFC 9449 §7.1: the proof algorithms accepted.
            c = c.param("algs", algs);
        }
        if let Some(e) = error {
            c = c.param("error", e.as_str());
        }
        if let Some(d) = description.filter(|_| s.descriptions) {
            c = c.param("error_description", d);
        }
        c.to_header_value()
    }

    /// The response to `rejection`; `presented` is the scheme the request used, if any.
    pub(crate) fn respond<B>(
        &self,
        rejection: &Rejection,
        presented: Option<Scheme>,
        grpc: bool,
    ) -> Response<ResponseBody<B>> {
        if self.proxy_only && matches!(rejection, Rejection::NoCredentials | Rejection::Invalid(_))
        {
            return not_proxied(grpc);
        }
        if !grpc && let Some(headers) = self.cached(rejection, presented) {
            let (status, body) = match rejection {
                Rejection::NoCredentials => (StatusCode::UNAUTHORIZED, BODY_UNAUTHORIZED),
                Rejection::InvalidRequest(_) => (StatusCode::BAD_REQUEST, BODY_INVALID_REQUEST),
                Rejection::Invalid(_) if presented == Some(Scheme::Bearer) => {
                    (StatusCode::UNAUTHORIZED, BODY_INVALID_TOKEN)
                }
                Rejection::Invalid(_) => (StatusCode::UNAUTHORIZED, BODY_UNAUTHORIZED),
                _ => (StatusCode::FORBIDDEN, BODY_INSUFFICIENT),
            };
            let mut res = Response::new(ResponseBody::full(Bytes::from_static(body)));
            *res.status_mut() = status;
            *res.headers_mut() = headers.clone();
            return res;
        }
        self.build(rejection, presented, grpc)
    }

    /// Builds the response to `rejection` from its parts.
    fn build<B>(
        &self,
        rejection: &Rejection,
        presented: Option<Scheme>,
        grpc: bool,
    ) -> Response<ResponseBody<B>> {
        let d = self.settings.descriptions;
        // The token scheme the request used, whose challenge carries the error.
        let token_used = matches!(presented, Some(Scheme::Bearer | Scheme::DPoP));
        let mut headers = HeaderMap::new();
        let (status, code, description, body): (_, _, Option<&str>, &'static [u8]) =
            match rejection {
                Rejection::NoCredentials => {
                    self.push_challenges(&mut headers, None);
                    (StatusCode::UNAUTHORIZED, None, None, BODY_UNAUTHORIZED)
                }
                Rejection::InvalidRequest(e) => {
                    let desc = e.description();
                    // Malformed Basic credentials: no token scheme was used, so no token challenge
                    // carries an error (as for a wrong password); otherwise `invalid_request`, on
                    // the scheme used (Bearer when none could be told, as for a repeated header).
                    let erring = match presented {
                        Some(Scheme::Basic) => None,
                        Some(Scheme::DPoP) => Some((Scheme::DPoP, ErrorCode::InvalidRequest)),
                        _ => Some((Scheme::Bearer, ErrorCode::InvalidRequest)),
                    };
                    self.push_erring(&mut headers, erring, None, Some(desc));
                    (
                        StatusCode::BAD_REQUEST,
                        Some(ErrorCode::InvalidRequest),
                        Some(desc),
                        BODY_INVALID_REQUEST,
                    )
                }
                Rejection::Invalid(reason) => {
                    let desc = reason.public_description();
                    // RFC 9449 §7.1: a bad proof is `invalid_dpop_proof`, the rest `invalid_token`.
                    let token_code = match (presented, reason) {
                        (Some(Scheme::DPoP), Invalid::DpopProof) => ErrorCode::InvalidDpopProof,
                        _ => ErrorCode::InvalidToken,
                    };
                    let erring = presented
                        .filter(|_| token_used)
                        .map(|scheme| (scheme, token_code));
                    self.push_erring(&mut headers, erring, None, Some(desc));
                    let code = token_used.then_some(token_code);
                    let body = match code {
                        Some(ErrorCode::InvalidDpopProof) => BODY_INVALID_DPOP_PROOF,
                        Some(_) => BODY_INVALID_TOKEN,
                        None => BODY_UNAUTHORIZED,
                    };
                    (StatusCode::UNAUTHORIZED, code, Some(desc), body)
                }
                Rejection::InsufficientScope { required } => {
                    let desc = "The access token lacks a scope this operation requires";
                    let value = match presented {
                        Some(Scheme::Bearer) if self.settings.schemes.bearer() => {
                            let prebuilt = self.bearer_insufficient.as_ref().filter(|_| {
                                !d && self.settings.required.as_ref() == Some(required)
                            });
                            Some(match prebuilt {
                                Some(v) => v.clone(),
                                None => self.bearer(
                                    Some(required),
                                    Some(ErrorCode::InsufficientScope),
                                    Some(desc),
                                ),
                            })
                        }
                        Some(Scheme::DPoP) if self.settings.schemes.dpop() => {
                            Some(self.token_challenge(
                                Challenge::dpop(),
                                Some(required),
                                Some(ErrorCode::InsufficientScope),
                                Some(desc),
                            ))
                        }
                        _ => None,
                    };
                    if let Some(value) = value {
                        headers.append(WWW_AUTHENTICATE, value);
                    }
                    (
                        StatusCode::FORBIDDEN,
                        Some(ErrorCode::InsufficientScope),
                        Some(desc),
                        BODY_INSUFFICIENT,
                    )
                }
                Rejection::UseDpopNonce { nonce } => {
                    let desc = "The DPoP proof must carry the nonce given in DPoP-Nonce";
                    let erring = Some((Scheme::DPoP, ErrorCode::UseDpopNonce));
                    self.push_erring(&mut headers, erring, None, Some(desc));
                    headers.insert(DPOP_NONCE, nonce.clone());
                    (
                        StatusCode::UNAUTHORIZED,
                        Some(ErrorCode::UseDpopNonce),
                        Some(desc),
                        BODY_USE_DPOP_NONCE,
                    )
                }
                Rejection::Unavailable { retry_after } => {
                    let secs = retry_after.max(&Duration::from_secs(1)).as_secs();
                    headers.insert(RETRY_AFTER, HeaderValue::from(secs));
                    let desc = "Credentials cannot be checked right now; try again later";
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        None,
                        Some(desc),
                        BODY_UNAVAILABLE,
                    )
                }
            };
        if grpc {
            return super::grpc::refusal(status, headers);
        }
        let body = match (code, description) {
            (Some(code), Some(desc)) if d => Bytes::from(
                serde_json::json!({"error": code.as_str(), "error_description": desc}).to_string(),
            ),
            _ => Bytes::from_static(body),
        };
        headers.insert(CACHE_CONTROL, NO_STORE);
        headers.insert(CONTENT_TYPE, JSON);
        let mut res = Response::new(ResponseBody::full(body));
        *res.status_mut() = status;
        *res.headers_mut() = headers;
        res
    }

    /// The challenges, with `error` (and the description, when they are on) on the token
    /// scheme named in `erring`, if it is understood; the others plain.
    fn push_erring(
        &self,
        headers: &mut HeaderMap,
        erring: Option<(Scheme, ErrorCode)>,
        scope: Option<&ScopeSet>,
        description: Option<&str>,
    ) {
        let d = self.settings.descriptions;
        let schemes = &self.settings.schemes;
        let erring_value = match erring {
            Some((Scheme::Bearer, code)) if schemes.bearer() => Some(if d {
                self.bearer(scope, Some(code), description)
            } else {
                match code {
                    ErrorCode::InvalidToken => self.bearer_invalid_token.clone(),
                    ErrorCode::InvalidRequest => self.bearer_invalid_request.clone(),
                    ErrorCode::InsufficientScope
                    | ErrorCode::InvalidDpopProof
                    | ErrorCode::UseDpopNonce => None,
                }
                .unwrap_or_else(|| self.bearer(scope, Some(code), None))
            }),
            Some((Scheme::DPoP, code)) if schemes.dpop() => Some(self.token_challenge(
                Challenge::dpop(),
                scope,
                Some(code),
                description.filter(|_| d),
            )),
            _ => None,
        };
        self.push_challenges(headers, erring.zip(erring_value).map(|((s, _), v)| (s, v)));
    }

    /// Every challenge, each on its own field line: Bearer first (the TypeScript SDK reads only
    /// the first), then DPoP, Basic and the schemes of the user's own. `erring` replaces the
    /// plain challenge of its scheme.
    fn push_challenges(&self, headers: &mut HeaderMap, erring: Option<(Scheme, HeaderValue)>) {
        let pick = |scheme: Scheme, plain: &Option<HeaderValue>| match &erring {
            Some((s, v)) if *s == scheme => Some(v.clone()),
            _ => plain.clone(),
        };
        let token_schemes = [
            pick(Scheme::Bearer, &self.bearer_plain),
            pick(Scheme::DPoP, &self.dpop_plain),
        ];
        for value in token_schemes.into_iter().flatten() {
            headers.append(WWW_AUTHENTICATE, value);
        }
        if let Some(b) = &self.basic {
            headers.append(WWW_AUTHENTICATE, b.clone());
        }
        for c in &self.custom {
            headers.append(WWW_AUTHENTICATE, c.clone());
        }
    }
}
