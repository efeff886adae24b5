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

use std::{borrow::Cow, fmt, str::FromStr, sync::OnceLock};

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

/// How many distinct headers a verifier remembers ([`KnownHeaders`]).
const KNOWN_HEADERS: usize = 8;
/// Longer header segments are not remembered (real ones are under 200 characters).
const MAX_KNOWN_HEADER_CHARS: usize = 256;

/// The headers of tokens this verifier accepted, exactly as they were encoded, with what the
/// check read from them: the tokens of one issuer and key share their header byte for byte, so
/// the next one skips decoding and reading it. Only a header that passed the header checks, on
/// a token that then verified, is remembered (so only an issuer can fill a slot), and only the
/// first [`KNOWN_HEADERS`] distinct ones: lookups take no lock, and a slot is never replaced.
/// A header past them (after that many key rotations, say) is read each time, as any is
/// without this.
#[derive(Default)]
pub(super) struct KnownHeaders([OnceLock<Known>; KNOWN_HEADERS]);

struct Known {
    segment: Box<str>,
    alg: Algorithm,
    kid: Option<Box<str>>,
}

impl KnownHeaders {
    /// The algorithm and key id of header segment `segment`, if it is a remembered one.
    pub(super) fn find(&self, segment: &str) -> Option<(Algorithm, Option<&str>)> {
        self.0
            .iter()
            .map_while(OnceLock::get)
            .find(|k| *k.segment == *segment)
            .map(|k| (k.alg, k.kid.as_deref()))
    }

    /// Remembers `segment` (a header that passed the checks, of a token that verified) if there
    /// is room and it is not remembered yet.
    pub(super) fn remember(&self, segment: &str, alg: Algorithm, kid: Option<&str>) {
        if segment.len() > MAX_KNOWN_HEADER_CHARS {
            return;
        }
        for slot in &self.0 {
            match slot.get() {
                Some(known) if *known.segment == *segment => return,
                Some(_) => {}
                None => {
                    // Another thread may fill this slot first: then try the next one.
                    let known = Known {
                        segment: segment.into(),
                        alg,
                        kid: kid.map(Into::into),
                    };
                    if slot.set(known).is_ok() {
                        return;
                    }
                }
            }
        }
    }
}

impl fmt::Debug for KnownHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.iter().map_while(OnceLock::get).count();
        write!(f, "KnownHeaders({n})")
    }
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
    fn a_remembered_header_is_found_by_its_exact_segment_and_room_is_bounded() {
        let known = KnownHeaders::default();
        assert_eq!(known.find("eyJh"), None);
        known.remember("eyJh", Algorithm::RS256, Some("k1"));
        known.remember("eyJh", Algorithm::RS256, Some("k1"));
        assert_eq!(known.find("eyJh"), Some((Algorithm::RS256, Some("k1"))));
        assert_eq!(known.find("eyJ"), None);
        assert_eq!(known.find("eyJhX"), None);
        for i in 0..KNOWN_HEADERS * 2 {
            known.remember(&format!("h{i}"), Algorithm::ES256, None);
        }
        // The first one and the next seven distinct ones; nothing replaced.
        assert_eq!(known.find("eyJh"), Some((Algorithm::RS256, Some("k1"))));
        assert_eq!(known.find("h6"), Some((Algorithm::ES256, None)));
        assert_eq!(known.find("h7"), None);
        assert_eq!(format!("{known:?}"), "KnownHeaders(8)");
        known.remember(
            &"x".repeat(MAX_KNOWN_HEADER_CHARS + 1),
            Algorithm::ES256,
            None,
        );
        assert_eq!(known.find(&"x".repeat(MAX_KNOWN_HEADER_CHARS + 1)), None);
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
