//! What an introspection answer (RFC 7662 §2.2) must say for the token to be accepted.
//!
//! An authorization server's answer is trusted only as far as it goes: it says whether the
//! token is active, and the rest must be checked here as a JWT's claims would be, with the same
//! audience comparison and the same clock leeway. The implementations that got this wrong
//! accepted `"active": "true"`, ignored `aud` and `iss`, or matched audiences by prefix. So:
//!
//! - `active` must be the JSON boolean `true`: a string, a number, `null` or a missing member
//!   means inactive ([`Invalid::Inactive`]).
//! - `cnf` (a sender-constrained token, RFC 7800) must be an object with a DPoP binding `jkt`
//!   (RFC 9449 §6.2), a certificate binding `x5t#S256` (RFC 8705 §3.2), or both, and nothing
//!   else: the identity records them, and the token is then accepted only with a DPoP proof by
//!   that key (`crate::dpop`) and over a connection with that client certificate
//!   (`crate::mtls`); presented as a plain bearer token it is refused. Any other confirmation
//!   method is refused, since it could not be checked. `token_type`, when
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
    if answer.contains_key("cnf") && confirmation(answer).is_none() {
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

/// The binding of the answer (`jkt`, `x5t#S256`): `cnf` an object with one or both of them,
/// each a non-empty string, and no other member; `None` otherwise.
fn confirmation(answer: &Map<String, Value>) -> Option<(Option<&str>, Option<&str>)> {
    let Some(Value::Object(cnf)) = answer.get("cnf") else {
        return None;
    };
    let read = |name: &str| match cnf.get(name) {
        None => Ok(None),
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.as_str())),
        Some(_) => Err(()),
    };
    let (jkt, x5t) = (read("jkt").ok()?, read("x5t#S256").ok()?);
    let known = usize::from(jkt.is_some()) + usize::from(x5t.is_some());
    (known > 0 && known == cnf.len()).then_some((jkt, x5t))
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
    if let Some((jkt, x5t)) = confirmation(&answer) {
        if let Some(jkt) = jkt {
            info = info.dpop_jkt(jkt);
        }
        if let Some(x5t) = x5t {
            info = info.certificate_thumbprint(x5t);
        }
    }
    info.claims(answer).build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cnf(value: Value) -> Option<(Option<String>, Option<String>)> {
        let Value::Object(answer) = serde_json::json!({ "cnf": value }) else {
            unreachable!()
        };
        confirmation(&answer).map(|(j, x)| (j.map(str::to_owned), x.map(str::to_owned)))
    }

    #[test]
    fn a_binding_is_a_jkt_an_x5t_or_both_and_nothing_else() {
        let some = |s: &str| Some(s.to_owned());
        assert_eq!(
            cnf(serde_json::json!({"jkt": "k"})),
            Some((some("k"), None))
        );
        assert_eq!(
            cnf(serde_json::json!({"x5t#S256": "c"})),
            Some((None, some("c")))
        );
        assert_eq!(
            cnf(serde_json::json!({"jkt": "k", "x5t#S256": "c"})),
            Some((some("k"), some("c")))
        );
        for refused in [
            serde_json::json!({}),
            serde_json::json!({"x5t#S256": ""}),
            serde_json::json!({"x5t#S256": 1}),
            serde_json::json!({"x5t#S256": "c", "kid": "k"}),
            serde_json::json!("c"),
        ] {
            assert_eq!(cnf(refused.clone()), None, "{refused}");
        }
    }
}
