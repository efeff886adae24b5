//! What an introspection answer (RFC 7662 §2.2) must say for the token to be accepted.
//!
//! An authorization server's answer is trusted only as far as it goes: it says whether the
//! token is active, and the rest must be checked here as a JWT's claims would be, with the same
//! audience comparison and the same clock leeway. The implementations that got this wrong
//! accepted `"active": "true"`, ignored `aud` and `iss`, or matched audiences by prefix. So:
//!
//! - `active` must be the JSON boolean `true`: a string, a number, `null` or a missing member
//!   means inactive ([`Invalid::Inactive`]).
//! - `cnf` (a sender-constrained token, RFC 7800) must be a DPoP binding, an object with only a
//!   `jkt` (RFC 9449 §6.2): the identity records it, and the token is then accepted only with a
//!   DPoP proof by that key ([`crate::dpop`]); presented as a bearer token it is refused. Any
//!   other confirmation method is refused, since it could not be checked. `token_type`, when
//!   present, must name an access token (`Bearer`, `DPoP`, `access_token` or its RFC 8693 URI),
//!   not a refresh token or an ID token.
//! - `exp` is required and must not be past; `nbf`, when present, not in the future; both with
//!   the leeway, and each a NumericDate no later than the year 9999.
//! - `iss`, when issuers are configured, must be one of them (exactly); with several it is
//!   required. Without it and with one configured, the answer is that issuer's.
//! - `aud` (a string or an array of strings) must name this resource by the comparison JWTs
//!   get; an answer without `aud` is refused unless the verifier was told otherwise
//!   ([`allow_missing_audience`](super::IntrospectionVerifierBuilder::allow_missing_audience)).
//! - The subject is `sub`, else `client_id` (a client acting for itself); an answer with
//!   neither is refused. Scopes come from `scope` (space-separated).
//!
//! An answer that is not a JSON object is no answer at all: the call failed, and the request
//! gets `503`, not `401`.
//!
//! ```
//! use mcp_server_auth::introspection::read_answer; // for the fuzz target; not part of the API
//!
//! assert_eq!(read_answer(br#"{"active":"true","exp":99999999999,"aud":"x"}"#),
//!     Some(Err("the authorization server says the token is not active".to_owned())));
//! assert_eq!(read_answer(b"<html>"), None);
//! ```

use std::time::{Duration, UNIX_EPOCH};

use serde_json::{Map, Value};

use crate::{
    identity::{AuthInfo, AuthMethod},
    jwt::{MAX_NUMERIC_DATE, audience_is_ours, expired, not_yet_valid},
    rejection::Invalid,
    resource::ResourceUrl,
    scope::ScopeSet,
};

/// The `token_type` values that name an access token presented as a bearer token.
const ACCESS_TOKEN_TYPES: [&str; 4] = [
    "bearer",
    "dpop",
    "access_token",
    "urn:ietf:params:oauth:token-type:access_token",
];

/// What an answer is checked against.
#[derive(Debug, Clone)]
pub(crate) struct Rules {
    pub(crate) resource: Option<ResourceUrl>,
    /// Audiences accepted besides the resource, compared exactly.
    pub(crate) audiences: Vec<String>,
    /// The configured issuers (none: `iss` is not checked).
    pub(crate) issuers: Vec<String>,
    /// An answer without `aud` is accepted (an explicit opt-out).
    pub(crate) allow_missing_audience: bool,
    /// The clock leeway, in seconds.
    pub(crate) leeway: u64,
}

/// The verdict on an answer that was a JSON object.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// Accepted: the identity, and `exp`.
    Active(AuthInfo, u64),
    /// Inactive, or not acceptable.
    Refused(Invalid),
}

/// An answer that is no answer (not a JSON object): the call failed. Its text names no
/// content of the answer (an endpoint might echo the token).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NotAnAnswer(pub(crate) &'static str);

/// A NumericDate (RFC 7519 §2): a non-negative number of seconds (a fraction dropped), at most
/// the year 9999; `None` for anything else.
fn numeric_date(value: &Value) -> Option<u64> {
    let secs = value.as_u64().or_else(|| {
        let f = value.as_f64()?;
        (f.is_finite() && f >= 0.0).then_some(f as u64)
    })?;
    (secs <= MAX_NUMERIC_DATE).then_some(secs)
}

/// Reads `body` and judges it at `now` (seconds since the epoch).
pub(crate) fn judge(body: &[u8], rules: &Rules, now: u64) -> Result<Verdict, NotAnAnswer> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|_| NotAnAnswer("the answer is not JSON (RFC 7662 §2.2)"))?;
    let Value::Object(answer) = value else {
        return Err(NotAnAnswer(
            "the answer is not a JSON object (RFC 7662 §2.2)",
        ));
    };
    Ok(match accept(&answer, rules, now) {
        Ok((issuer, exp)) => Verdict::Active(identity(answer, issuer, exp), exp),
        Err(reason) => Verdict::Refused(reason),
    })
}

/// The acceptance rules, in order; the issuer to record and `exp` when they all pass.
fn accept(
    answer: &Map<String, Value>,
    rules: &Rules,
    now: u64,
) -> Result<(Option<String>, u64), Invalid> {
    if answer.get("active") != Some(&Value::Bool(true)) {
        return Err(Invalid::Inactive);
    }
    if answer.contains_key("cnf") && jkt(answer).is_none() {
        return Err(Invalid::Binding);
    }
    match answer.get("token_type") {
        None => {}
        Some(Value::String(t)) if ACCESS_TOKEN_TYPES.iter().any(|a| a.eq_ignore_ascii_case(t)) => {}
        Some(_) => return Err(Invalid::Unacceptable),
    }
    let exp = answer
        .get("exp")
        .and_then(numeric_date)
        .ok_or(Invalid::Claims)?;
    if expired(exp, now, rules.leeway) {
        return Err(Invalid::Expired);
    }
    if let Some(nbf) = answer.get("nbf") {
        let nbf = numeric_date(nbf).ok_or(Invalid::Claims)?;
        if not_yet_valid(nbf, now, rules.leeway) {
            return Err(Invalid::NotYetValid);
        }
    }
    let issuer = match (answer.get("iss"), rules.issuers.as_slice()) {
        (None, []) => None,
        (Some(Value::String(iss)), []) => Some(iss.clone()),
        (Some(_), []) => return Err(Invalid::Claims),
        (None, [one]) => Some(one.clone()),
        (Some(Value::String(iss)), configured) if configured.contains(iss) => Some(iss.clone()),
        (_, _) => return Err(Invalid::WrongIssuer),
    };
    let ours = |a: &str| audience_is_ours(&rules.audiences, rules.resource.as_ref(), a);
    match answer.get("aud") {
        None if rules.allow_missing_audience => {}
        None => return Err(Invalid::Claims),
        Some(Value::String(aud)) if ours(aud) => {}
        Some(Value::Array(list)) if list.iter().filter_map(Value::as_str).any(ours) => {}
        Some(Value::String(_) | Value::Array(_)) => return Err(Invalid::WrongAudience),
        Some(_) => return Err(Invalid::Claims),
    }
    if non_empty(answer, "sub")
        .or_else(|| non_empty(answer, "client_id"))
        .is_none()
    {
        return Err(Invalid::Claims);
    }
    Ok((issuer, exp))
}

/// The DPoP binding of the answer: `cnf` an object whose one member is a non-empty `jkt`.
fn jkt(answer: &Map<String, Value>) -> Option<&str> {
    let Some(Value::Object(cnf)) = answer.get("cnf") else {
        return None;
    };
    match cnf.get("jkt") {
        Some(Value::String(jkt)) if cnf.len() == 1 && !jkt.is_empty() => Some(jkt),
        _ => None,
    }
}

/// Member `name` if it is a non-empty string.
fn non_empty<'a>(answer: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    answer
        .get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// The identity of an accepted answer (it has a subject); the whole answer becomes its claims.
fn identity(answer: Map<String, Value>, issuer: Option<String>, exp: u64) -> AuthInfo {
    let client_id = non_empty(&answer, "client_id").map(str::to_owned);
    let subject = non_empty(&answer, "sub")
        .map(str::to_owned)
        .or_else(|| client_id.clone())
        .unwrap_or_default();
    let scopes = match answer.get("scope") {
        Some(Value::String(s)) => ScopeSet::from_iter_lossy(s.split(' ')),
        _ => ScopeSet::new(),
    };
    let mut info = AuthInfo::builder(subject, AuthMethod::Introspection)
        .scopes(scopes)
        .expires_at(UNIX_EPOCH + Duration::from_secs(exp));
    if let Some(issuer) = issuer {
        info = info.issuer(issuer);
    }
    if let Some(client) = client_id {
        info = info.client_id(client);
    }
    if let Some(jkt) = jkt(&answer) {
        info = info.dpop_jkt(jkt);
    }
    info.claims(answer).build()
}
