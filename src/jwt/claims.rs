//! Validating a token's claims (RFC 9068 §4, RFC 7519 §4.1): the registered claims, time with
//! a leeway, issuer and audience, and the scopes. The same checks judge a token whose key is not
//! at hand on its claims read unverified, where they only ever refuse.
//!
//! ```
//! # #[cfg(any(feature = "aws-lc-rs", feature = "rust-crypto"))] {
//! use mcp_server_auth::jwt::{Algorithm, Issuer, JwtVerifier, KeySet};
//! use mcp_server_auth::ResourceUrl;
//! # let keys = KeySet::new().add_hmac_secret(Some("k"), Algorithm::HS256,
//! #     b"0123456789abcdef0123456789abcdef").unwrap();
//! let verifier = JwtVerifier::builder(ResourceUrl::parse("https://mcp.example.com/mcp").unwrap())
//!     .issuer(Issuer::with_keys("https://auth.example.com", keys))
//!     .leeway(std::time::Duration::from_secs(30)) // for `exp`, `nbf` and `iat`
//!     .build()
//!     .unwrap();
//! # let _ = verifier;
//! # }
//! ```

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::{Map, Value};

use super::{Inner, cache::now_secs, refuse};
use crate::{
    rejection::{Invalid, Rejection},
    scope::ScopeSet,
};

/// The latest NumericDate accepted: 9999-12-31T23:59:59Z. Later ones are refused as malformed
/// claims: no issuer means them, and `SystemTime` cannot hold every `u64` of seconds (adding
/// one to the epoch would panic).
const MAX_NUMERIC_DATE: u64 = 253_402_300_799;

/// A NumericDate (RFC 7519 §2): seconds since the epoch, possibly with a fraction, at most
/// [`MAX_NUMERIC_DATE`] (a fraction too large for `u64` saturates, and so is refused by it).
fn numeric_date(value: &Value) -> Option<u64> {
    value
        .as_u64()
        .or_else(|| {
            value
                .as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0)
                .map(|f| f as u64)
        })
        .filter(|&secs| secs <= MAX_NUMERIC_DATE)
}

/// Claims payloads up to this size are Base64url-decoded on the stack.
const STACK_CLAIMS_BYTES: usize = 2048;

/// Reads the claims of a token whose signature was verified, once: Base64url-decoded (on the
/// stack when small enough), UTF-8 checked once for the whole document, then parsed into the map
/// [`AuthInfo`] keeps. `None` if any step fails (a malformed token).
pub(super) fn read_claims(payload: &str) -> Option<Map<String, Value>> {
    let parse = |json: &[u8]| serde_json::from_str(std::str::from_utf8(json).ok()?).ok();
    if payload.len().div_ceil(4) * 3 <= STACK_CLAIMS_BYTES {
        let mut buf = [0; STACK_CLAIMS_BYTES];
        let len = URL_SAFE_NO_PAD.decode_slice(payload, &mut buf).ok()?;
        parse(&buf[..len])
    } else {
        parse(&URL_SAFE_NO_PAD.decode(payload).ok()?)
    }
}

impl Inner {
    /// Whether one of the token's audiences is ours.
    fn audience_ok(&self, aud: Option<&Value>) -> bool {
        let ours = |a: &str| {
            self.audiences.iter().any(|x| x == a)
                || self.resource.as_ref().is_some_and(|r| r.matches(a))
        };
        match aud {
            Some(Value::String(a)) => ours(a),
            Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).any(ours),
            _ => false,
        }
    }

    pub(super) fn scopes(&self, claims: &Map<String, Value>) -> ScopeSet {
        let mut all: Vec<&str> = Vec::new();
        for name in &self.scope_claims {
            match claims.get(name) {
                Some(Value::String(s)) => all.extend(s.split(' ')),
                Some(Value::Array(list)) => all.extend(list.iter().filter_map(Value::as_str)),
                _ => {}
            }
        }
        ScopeSet::from_iter_lossy(all)
    }

    /// Checks the registered claims (RFC 9068 §4, RFC 7519 §4.1) against issuer `issuer`: the
    /// required ones, then time, then issuer and audience. Returns `exp`.
    pub(super) fn check_claims(
        &self,
        issuer: &str,
        claims: &Map<String, Value>,
    ) -> Result<u64, Rejection> {
        let now = now_secs();
        // Required claims, then time, then issuer (RFC 9068 §4, RFC 7519 §4.1).
        let date = |name: &str| claims.get(name).map(numeric_date);
        let exp = match date("exp") {
            Some(Some(exp)) => exp,
            _ => return Err(refuse(Invalid::Claims)),
        };
        if !claims.contains_key("iss") || !claims.contains_key("aud") {
            return Err(refuse(Invalid::Claims));
        }
        if exp.saturating_add(self.leeway) < now {
            return Err(refuse(Invalid::Expired));
        }
        match date("nbf") {
            None => {}
            Some(None) => return Err(refuse(Invalid::Claims)),
            Some(Some(nbf)) if nbf > now + self.leeway => return Err(refuse(Invalid::NotYetValid)),
            Some(Some(_)) => {}
        }
        if claims.get("iss").and_then(Value::as_str) != Some(issuer) {
            return Err(refuse(Invalid::WrongIssuer));
        }
        if !self.audience_ok(claims.get("aud")) {
            return Err(refuse(Invalid::WrongAudience));
        }
        let number = |name: &str| date(name).flatten();
        match date("iat") {
            None => {}
            Some(None) => return Err(refuse(Invalid::Claims)),
            Some(Some(iat)) if iat > now + self.leeway => return Err(refuse(Invalid::NotYetValid)),
            Some(Some(_)) => {}
        }
        let string = |name: &str| claims.get(name).and_then(Value::as_str);
        // Strict RFC 9068 (§2.2): these claims are required too (looked up only in strict mode).
        if self.strict
            && (["sub", "client_id", "jti"]
                .iter()
                .any(|c| string(c).is_none())
                || number("iat").is_none())
        {
            return Err(refuse(Invalid::Claims));
        }
        Ok(exp)
    }

    /// The refusal a token gets from its claims alone, read without checking the signature: for a
    /// token whose key is not at hand (unknown, or the keys cannot be fetched now), so that one
    /// that is expired, not yet valid or for another issuer or resource gets `401` at once rather
    /// than `503` or "unknown key". Unverified claims only ever refuse here; they never accept.
    /// The custom claims check is not run on unverified claims.
    pub(super) fn refuse_unverified(&self, token: &str) -> Option<Rejection> {
        let claims: Map<String, Value> =
            jsonwebtoken::dangerous::insecure_decode_claims(token).ok()?;
        let issuer = match self.issuers.as_slice() {
            [one] => one,
            many => {
                let iss = claims.get("iss").and_then(Value::as_str);
                many.iter().find(|i| Some(i.issuer.as_str()) == iss)?
            }
        };
        self.check_claims(&issuer.issuer, &claims).err()
    }
}
