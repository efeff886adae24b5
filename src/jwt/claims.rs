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

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::{
    Inner,
    cache::now_secs,
    json::{self, Json},
    refuse,
    segment::{Scratch, Segments},
};
use crate::{
    rejection::{Invalid, Rejection},
    resource::ResourceUrl,
    scope::ScopeSet,
};

/// The latest NumericDate accepted: 9999-12-31T23:59:59Z. Later ones are refused as malformed
/// claims: no issuer means them, and `SystemTime` cannot hold every `u64` of seconds (adding
/// one to the epoch would panic).
pub(crate) const MAX_NUMERIC_DATE: u64 = 253_402_300_799;

/// Whether `aud` names this resource: one of the `accepted` audiences exactly, or the
/// `resource` URL (scheme and host case-insensitive, a bare origin's trailing slash tolerated).
/// The one audience comparison of the crate: JWTs and introspection answers alike.
pub(crate) fn audience_is_ours(
    accepted: &[String],
    resource: Option<&ResourceUrl>,
    aud: &str,
) -> bool {
    accepted.iter().any(|x| x == aud) || resource.is_some_and(|r| r.matches(aud))
}

/// Whether `exp` is past at `now`, beyond the `leeway` (all in seconds).
pub(crate) fn expired(exp: u64, now: u64, leeway: u64) -> bool {
    exp.saturating_add(leeway) < now
}

/// Whether `nbf` (or `iat`) is still in the future at `now`, beyond the `leeway`.
pub(crate) fn not_yet_valid(nbf: u64, now: u64, leeway: u64) -> bool {
    nbf > now.saturating_add(leeway)
}

/// Claims payloads up to this size (decoded) are read on the stack.
pub(super) const STACK_CLAIMS_BYTES: usize = 2048;

/// A token's claims, read in place (see [`super::json`]): each member's name and value as
/// slices of the JSON text. A value is looked at only when a check asks for it.
pub(super) struct Claims<'a> {
    json: &'a str,
    /// The values of the [`KNOWN`] claims, found in one pass (each the last of its name).
    known: [Option<Json<'a>>; KNOWN.len()],
}

/// The claims the checks and the identity read, indexed once rather than searched for each
/// time (`email` to `preferred_username` name the identity behind an identity-aware proxy;
/// `cnf` binds the token to a key or a certificate, RFC 7800 / RFC 9449 §6 / RFC 8705 §3).
const KNOWN: [&str; 15] = [
    "exp",
    "nbf",
    "iat",
    "iss",
    "aud",
    "sub",
    "client_id",
    "azp",
    "jti",
    "scope",
    "scp",
    "email",
    "common_name",
    "preferred_username",
    "cnf",
];

#[inline(always)] // a constant name folds to its index at compile time
fn known_index(name: &str) -> Option<usize> {
    // Most names are three bytes: match those as one integer, the rest by length first.
    let i = match *name.as_bytes() {
        [a, b, c] => match u32::from_le_bytes([a, b, c, 0]) {
            n if n == three("exp") => 0,
            n if n == three("nbf") => 1,
            n if n == three("iat") => 2,
            n if n == three("iss") => 3,
            n if n == three("aud") => 4,
            n if n == three("sub") => 5,
            n if n == three("azp") => 7,
            n if n == three("jti") => 8,
            n if n == three("scp") => 10,
            n if n == three("cnf") => 14,
            _ => return None,
        },
        _ => match name {
            "client_id" => 6,
            "scope" => 9,
            "email" => 11,
            "common_name" => 12,
            "preferred_username" => 13,
            _ => return None,
        },
    };
    Some(i)
}

/// A three-byte name as the integer [`known_index`] compares.
const fn three(name: &str) -> u32 {
    let b = name.as_bytes();
    u32::from_le_bytes([b[0], b[1], b[2], 0])
}

impl<'a> Claims<'a> {
    /// The claims of the payload segment `payload`, decoded into `scratch`; `None` if it is not
    /// Base64url, UTF-8 and a JSON object (a malformed token).
    pub(super) fn read<const N: usize>(payload: &str, scratch: &'a mut Scratch<N>) -> Option<Self> {
        Self::parse(scratch.decode_str(payload)?)
    }

    /// The claims of the decoded payload `json`; `None` if it is not a JSON object.
    pub(super) fn parse(json: &'a str) -> Option<Self> {
        let mut known = [None; KNOWN.len()];
        json::object(json, |member| {
            let i = match member.plain_name() {
                Some(name) => known_index(name),
                None => known_index(&member.name()),
            };
            if let Some(i) = i {
                known[i] = Some(member.value);
            }
        })?;
        Some(Self { json, known })
    }

    /// The value of claim `name`: the last one when a name repeats, as a parser that keeps
    /// "only the lexically last duplicate member name" (RFC 7519 §4).
    #[inline(always)] // the checks name known claims: their lookup is one load
    pub(super) fn get(&self, name: &str) -> Option<Json<'a>> {
        if let Some(i) = known_index(name) {
            return self.known[i];
        }
        self.get_other(name)
    }

    /// The value of claim `name`, not one of the [`KNOWN`] claims.
    #[inline(never)]
    fn get_other(&self, name: &str) -> Option<Json<'a>> {
        // Another claim (a scope or identity claim you configured): read the text again.
        let mut last = None;
        json::object(self.json, |m| {
            if m.is(name) {
                last = Some(m.value);
            }
        })?;
        last
    }

    /// Whether claim `name` is present (whatever its value, `null` included).
    #[inline]
    pub(super) fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Claim `name` if it is a string.
    #[inline]
    pub(super) fn str(&self, name: &str) -> Option<Cow<'a, str>> {
        self.get(name)?.as_str()
    }

    /// Claim `name` as a NumericDate (RFC 7519 §2: seconds since the epoch, possibly with a
    /// fraction, here at most [`MAX_NUMERIC_DATE`]): `None` if absent, `Some(None)` if it is
    /// not one.
    #[inline]
    pub(super) fn date(&self, name: &str) -> Option<Option<u64>> {
        let value = self.get(name)?;
        Some(value.as_seconds().filter(|&s| s <= MAX_NUMERIC_DATE))
    }

    /// Whether one of the strings of claim `name` (see [`strings`](Self::strings)) passes
    /// `test`; nothing is collected.
    #[inline]
    pub(super) fn any_string(&self, name: &str, mut test: impl FnMut(&str) -> bool) -> bool {
        match self.get(name) {
            Some(list @ Json::Array(_)) => list
                .elements()
                .any(|v| v.as_str().is_some_and(|s| test(&s))),
            Some(value) => value.as_str().is_some_and(|s| test(&s)),
            None => false,
        }
    }

    /// The strings of claim `name`: itself if it is a string, its string elements if it is an
    /// array, none otherwise.
    pub(super) fn strings(&self, name: &str) -> Vec<Cow<'a, str>> {
        match self.get(name) {
            Some(list @ Json::Array(_)) => list.elements().filter_map(|v| v.as_str()).collect(),
            Some(value) => value.as_str().into_iter().collect(),
            None => Vec::new(),
        }
    }

    /// The binding (RFC 7800 `cnf`): none without `cnf`; a DPoP key's thumbprint `jkt`
    /// (RFC 9449 §6.1), a client certificate's thumbprint `x5t#S256` (RFC 8705 §3.1), or both.
    /// Any other form or confirmation method is refused, since it could not be checked
    /// (RFC 7800 §3.1).
    pub(super) fn binding(&self) -> Result<Confirmation<'a>, Invalid> {
        let Some(cnf) = self.get("cnf") else {
            return Ok(Confirmation::default());
        };
        let Json::Object(text) = cnf else {
            return Err(Invalid::Binding);
        };
        let (mut jkt, mut x5t, mut other) = (None, None, false);
        json::object(text, |m| {
            if m.is("jkt") {
                jkt = Some(m.value);
            } else if m.is("x5t#S256") {
                x5t = Some(m.value);
            } else {
                other = true;
            }
        })
        .ok_or(Invalid::Malformed)?;
        // Each present member a non-empty string, at least one of them, nothing else.
        let read = |v: Option<Json<'a>>| match v {
            None => Ok(None),
            Some(v) => match v.as_str() {
                Some(s) if !s.is_empty() => Ok(Some(s)),
                _ => Err(Invalid::Binding),
            },
        };
        let confirmation = Confirmation {
            jkt: read(jkt)?,
            x5t: read(x5t)?,
        };
        if other || (confirmation.jkt.is_none() && confirmation.x5t.is_none()) {
            return Err(Invalid::Binding);
        }
        Ok(confirmation)
    }

    /// The claims as a map (for a [`ClaimsCheck`](super::ClaimsCheck)): the last value of a
    /// repeated name, as [`get`](Self::get).
    pub(super) fn to_map(&self) -> Map<String, Value> {
        serde_json::from_str(self.json).unwrap_or_default()
    }
}

/// What a token is bound to (its `cnf`): a DPoP key, a client certificate, both or nothing.
#[derive(Default)]
pub(super) struct Confirmation<'a> {
    /// `cnf.jkt` (RFC 9449 §6.1).
    pub(super) jkt: Option<Cow<'a, str>>,
    /// `cnf.x5t#S256` (RFC 8705 §3.1).
    pub(super) x5t: Option<Cow<'a, str>>,
}

/// An upper bound on the memory the claims in `json` take once parsed into a
/// `Map<String, Value>` ([`AuthInfo::claims`](crate::AuthInfo::claims) does so when asked), for
/// the cache's budget: claims such as `[1,1,1,…]` take some twenty times their JSON size.
/// Every string byte counts once, every member a `String`, a `Value` and a tree node's share,
/// every other value a `Value`: members are counted by `:`, array elements by `[` and `,`
/// outside strings.
pub(crate) fn parsed_size_bound(json: &str) -> usize {
    const STRING: usize = std::mem::size_of::<String>();
    const VALUE: usize = std::mem::size_of::<Value>();
    /// A B-tree node's share per member (parent pointer, lengths, spare capacity).
    const MEMBER: usize = 16;
    let (mut members, mut values) = (0usize, 1usize);
    let (mut in_string, mut escaped) = (false, false);
    for &b in json.as_bytes() {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b':' => members += 1,
            b'[' | b',' | b'{' => values += 1,
            _ => {}
        }
    }
    json.len() + members * (STRING + VALUE + MEMBER) + values * VALUE
}

impl Inner {
    /// Whether one of the token's audiences is ours.
    fn audience_ok(&self, claims: &Claims<'_>) -> bool {
        let ours = |a: &str| audience_is_ours(&self.audiences, self.resource.as_ref(), a);
        claims.any_string("aud", ours)
    }

    /// The union of the scope claims: a string is space-separated, an array lists them.
    pub(super) fn scopes(&self, claims: &Claims<'_>) -> ScopeSet {
        // Most tokens carry one scope claim, a string: read it without collecting.
        let mut present = self.scope_claims.iter().filter(|n| claims.contains(n));
        match (present.next(), present.next()) {
            (None, _) => return ScopeSet::new(),
            (Some(name), None) => {
                if let Some(Json::Str { .. }) = claims.get(name) {
                    return ScopeSet::from_spaced_lossy(&claims.str(name).unwrap_or_default());
                }
            }
            _ => {}
        }
        let (mut spaced, mut listed) = (Vec::new(), Vec::new());
        for name in &self.scope_claims {
            match claims.get(name) {
                Some(Json::Str { .. }) => spaced.extend(claims.str(name)),
                Some(_) => listed.extend(claims.strings(name)),
                None => {}
            }
        }
        ScopeSet::from_iter_lossy(
            (spaced.iter().flat_map(|s| s.split(' '))).chain(listed.iter().map(|s| &**s)),
        )
    }

    /// Checks the registered claims (RFC 9068 §4, RFC 7519 §4.1) against issuer `issuer`: the
    /// required ones, then time, then issuer and audience. Returns `exp`.
    pub(super) fn check_claims(&self, issuer: &str, claims: &Claims<'_>) -> Result<u64, Rejection> {
        let now = now_secs();
        // Required claims, then time, then issuer (RFC 9068 §4, RFC 7519 §4.1).
        let date = |name: &str| claims.date(name);
        let exp = match date("exp") {
            Some(Some(exp)) => exp,
            _ => return Err(refuse(Invalid::Claims)),
        };
        if !claims.contains("iss") || !claims.contains("aud") {
            return Err(refuse(Invalid::Claims));
        }
        if expired(exp, now, self.leeway) {
            return Err(refuse(Invalid::Expired));
        }
        match date("nbf") {
            None => {}
            Some(None) => return Err(refuse(Invalid::Claims)),
            Some(Some(nbf)) if not_yet_valid(nbf, now, self.leeway) => {
                return Err(refuse(Invalid::NotYetValid));
            }
            Some(Some(_)) => {}
        }
        if claims.str("iss").as_deref() != Some(issuer) {
            return Err(refuse(Invalid::WrongIssuer));
        }
        if !self.audience_ok(claims) {
            return Err(refuse(Invalid::WrongAudience));
        }
        let number = |name: &str| date(name).flatten();
        match date("iat") {
            None => {}
            Some(None) => return Err(refuse(Invalid::Claims)),
            Some(Some(iat)) if not_yet_valid(iat, now, self.leeway) => {
                return Err(refuse(Invalid::NotYetValid));
            }
            Some(Some(_)) => {}
        }
        let string = |name: &str| claims.str(name);
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
        let mut scratch = Scratch::<STACK_CLAIMS_BYTES>::new();
        let claims = Claims::read(payload(token)?, &mut scratch)?;
        let issuer = match self.issuers.as_slice() {
            [one] => one,
            many => {
                let iss = claims.str("iss");
                many.iter().find(|i| Some(&*i.issuer) == iss.as_deref())?
            }
        };
        self.check_claims(&issuer.issuer, &claims).err()
    }
}

/// The payload segment of a compact JWS (see [`Segments`]).
pub(super) fn payload(token: &str) -> Option<&str> {
    Some(Segments::split(token)?.payload)
}

#[cfg(test)]
mod tests {
    use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};

    use super::*;

    #[test]
    fn every_known_claim_is_found_at_its_index() {
        for (i, name) in KNOWN.iter().enumerate() {
            assert_eq!(known_index(name), Some(i), "{name}");
        }
        assert_eq!(known_index("ex"), None);
    }

    #[test]
    fn a_repeated_or_escaped_claim_reads_as_serde_json_would_read_it() {
        let json = r#"{"sub":"first","\u0073ub":"last","exp":1.7e9,"aud":["a",1,"b"],
            "scope":"x y","xs":[1,[2]]}"#;
        let payload = URL_SAFE_NO_PAD.encode(json);
        let mut scratch = Scratch::<64>::new(); // smaller than the payload: read from the heap
        let claims = Claims::read(&payload, &mut scratch).unwrap();
        let map: Map<String, Value> = serde_json::from_str(json).unwrap();
        assert_eq!(claims.str("sub").as_deref(), map["sub"].as_str());
        assert_eq!(claims.date("exp"), Some(Some(1_700_000_000)));
        assert_eq!(claims.date("nbf"), None);
        assert_eq!(claims.strings("aud"), ["a", "b"]);
        assert!(claims.any_string("aud", |a| a == "b") && !claims.any_string("aud", |a| a == "1"));
        assert!(claims.any_string("scope", |s| s == "x y") && !claims.any_string("nope", |_| true));
        assert_eq!(claims.strings("scope"), ["x y"]);
        assert!(claims.contains("xs") && !claims.contains("xz"));
        assert_eq!(claims.to_map(), map);
        assert!(parsed_size_bound(json) >= json.len());
    }
}
