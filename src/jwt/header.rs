//! The JOSE header (RFC 7515 §4) of a token, read before any key is looked up: the algorithm,
//! the key id, the type and whether critical extensions are named. Other parameters are not
//! read: keys never come from the token (`jwk`, `jku`, `x5u`, `x5c` are ignored, RFC 8725
//! §3.10), and the algorithm must be one the key is bound to.
//!
//! The header is decoded onto the stack and its strings borrow from it (see [`super::segment`]).
//!
//! ```
//! # #[cfg(any(feature = "aws-lc-rs", feature = "rust-crypto"))] {
//! use mcp_server_auth::jwt::{Algorithm, Issuer, JwtVerifier, KeySet};
//! use mcp_server_auth::ResourceUrl;
//! # let keys = KeySet::new().add_hmac_secret(Some("k"), Algorithm::HS256,
//! #     b"0123456789abcdef0123456789abcdef").unwrap();
//! // Only these algorithms are accepted, whatever a token's header names.
//! let verifier = JwtVerifier::builder(ResourceUrl::parse("https://mcp.example.com/mcp").unwrap())
//!     .issuer(Issuer::with_keys("https://auth.example.com", keys))
//!     .algorithms([Algorithm::HS256])
//!     .build()
//!     .unwrap();
//! # let _ = verifier;
//! # }
//! ```

use std::{borrow::Cow, str::FromStr};

use jsonwebtoken::Algorithm;

use super::{
    json::{self, Json},
    segment::Scratch,
};

/// Headers up to this size (decoded) are read on the stack; real ones are under 200 bytes.
pub(super) const STACK_HEADER_BYTES: usize = 512;

/// What the check reads from a token's header.
#[derive(Debug)]
pub(super) struct Header<'a> {
    pub(super) alg: Algorithm,
    pub(super) kid: Option<Cow<'a, str>>,
    pub(super) typ: Option<Cow<'a, str>>,
    /// `crit` is present (and not `null`): it names extensions, and we understand none.
    pub(super) crit: bool,
}

/// The token is not a compact JWS with a JSON object header naming a known algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Malformed;

/// Reads a token's header (its first segment, `segment`) into `scratch`.
///
/// Malformed: the segment is not Base64url, not UTF-8, not a JSON object, repeats a parameter
/// read here, has `alg` (required), `kid` or `typ` other than a string (`kid` and `typ` may be
/// `null`), or an `alg` jsonwebtoken does not know (`none` among them).
pub(super) fn read<'s, const N: usize>(
    segment: &str,
    scratch: &'s mut Scratch<N>,
) -> Result<Header<'s>, Malformed> {
    let text = scratch.decode_str(segment).ok_or(Malformed)?;
    let (mut alg, mut kid, mut typ, mut crit) = (None, None, None, None);
    let mut repeated = false;
    json::object(text, |member| {
        let slot = match member.plain_name() {
            Some("alg") => &mut alg,
            Some("kid") => &mut kid,
            Some("typ") => &mut typ,
            Some("crit") => &mut crit,
            Some(_) => return,
            // An escaped name (rare): unescape it to compare.
            None => match &*member.name() {
                "alg" => &mut alg,
                "kid" => &mut kid,
                "typ" => &mut typ,
                "crit" => &mut crit,
                _ => return,
            },
        };
        repeated |= slot.replace(member.value).is_some();
    })
    .ok_or(Malformed)?;
    if repeated {
        return Err(Malformed); // a repeated parameter
    }
    let string = |value: Option<Json<'s>>| match value {
        None | Some(Json::Null) => Ok(None),
        Some(v) => v.as_str().map(Some).ok_or(Malformed),
    };
    let alg = string(alg)?.ok_or(Malformed)?;
    Ok(Header {
        alg: Algorithm::from_str(&alg).map_err(|_| Malformed)?,
        kid: string(kid)?,
        typ: string(typ)?,
        crit: crit.is_some_and(|c| c != Json::Null),
    })
}

#[cfg(test)]
mod tests {
    use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};

    use super::*;

    fn header(json: &str) -> Result<(Algorithm, Option<String>, Option<String>, bool), Malformed> {
        let segment = URL_SAFE_NO_PAD.encode(json);
        let mut scratch = Scratch::<STACK_HEADER_BYTES>::new();
        let h = read(&segment, &mut scratch)?;
        Ok((
            h.alg,
            h.kid.map(Cow::into_owned),
            h.typ.map(Cow::into_owned),
            h.crit,
        ))
    }

    #[test]
    fn the_parameters_the_check_needs_are_read() {
        assert_eq!(
            header(r#"{"alg":"RS256","kid":"k\u0031","typ":"at+jwt","x5u":"https://x"}"#),
            Ok((
                Algorithm::RS256,
                Some("k1".into()),
                Some("at+jwt".into()),
                false
            ))
        );
        assert!(header(r#"{"alg":"ES256","crit":["b64"]}"#).unwrap().3);
        assert!(!header(r#"{"alg":"ES256","crit":null}"#).unwrap().3);
    }

    #[test]
    fn a_header_jsonwebtoken_would_refuse_is_malformed() {
        for json in [
            r#"{"alg":"none"}"#,
            r#"{"alg":"HS257"}"#,
            r#"{"kid":"k"}"#,
            r#"{"alg":5}"#,
            r#"{"alg":"RS256","kid":7}"#,
            r#"{"alg":"RS256","typ":["JWT"]}"#,
            r#"{"alg":"RS256","alg":"HS256"}"#,
            r#"["alg","RS256"]"#,
            r#"{"alg":"RS256"} x"#,
            r#"{"alg":null}"#,
        ] {
            assert_eq!(header(json), Err(Malformed), "{json}");
        }
        let mut scratch = Scratch::<STACK_HEADER_BYTES>::new();
        assert!(read("not.base64url", &mut scratch).is_err());
    }
}
