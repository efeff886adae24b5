//! Credentials in: reading the `Authorization` header.
//!
//! This is the first step of the data flow (credentials → [verifier](crate::verifier) →
//! [identity](crate::identity) → [policy](crate::scope) → [refusal](crate::refusal)). It only
//! reads the one place MCP allows credentials to travel, the `Authorization` request header
//! (RFC 6750 §2.1): tokens in the query string (`access_token=`) or in a form body are never
//! looked at, so they can never authenticate a request. `Bearer` (RFC 6750), `Basic`
//! (RFC 7617) and `DPoP` (RFC 9449) are recognized case-insensitively; any other scheme is
//! reported by name, for verifiers of schemes of their own.
//!
//! ```
//! use std::convert::Infallible;
//! use http::{Request, Response, header::AUTHORIZATION};
//! use mcp_server_auth::{AuthLayer, bearer::StaticBearer};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let tokens = StaticBearer::new([("ci", "c2VjcmV0LXRva2VuLWZvci1jaQ")]).unwrap();
//! let service = ServiceBuilder::new()
//!     .layer(AuthLayer::new(tokens))
//!     .service(service_fn(|_: Request<String>| async {
//!         Ok::<_, Infallible>(Response::new(String::new()))
//!     }));
//! let status = |request: Request<String>| {
//!     let service = service.clone();
//!     async move { service.oneshot(request).await.unwrap().status() }
//! };
//! // The scheme is case-insensitive.
//! let header = Request::get("/mcp")
//!     .header(AUTHORIZATION, "bearer c2VjcmV0LXRva2VuLWZvci1jaQ")
//!     .body(String::new())
//!     .unwrap();
//! assert_eq!(status(header).await, 200);
//! // A token in the query string is never read.
//! let query = Request::get("/mcp?access_token=c2VjcmV0LXRva2VuLWZvci1jaQ")
//!     .body(String::new())
//!     .unwrap();
//! assert_eq!(status(query).await, 401);
//! # });
//! ```

use std::fmt;

use base64::Engine as _;
use http::{HeaderMap, header::AUTHORIZATION};

/// The default limit on the size of the `Authorization` header: 8 KiB.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 8 * 1024;

/// The authentication scheme named in an `Authorization` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scheme {
    /// `Bearer` (RFC 6750), matched case-insensitively.
    Bearer,
    /// `Basic` (RFC 7617), matched case-insensitively.
    Basic,
    /// `DPoP` (RFC 9449 §7.1), matched case-insensitively: an access token bound to a key the
    /// client proves it holds with a `DPoP` header.
    DPoP,
    /// Any other scheme ([`Authorization::scheme_name`] says which). Unless a verifier
    /// understands it, it counts as "no credentials" (RFC 6750 §3.1).
    Other,
}

/// A parsed `Authorization` header: its scheme and the raw credentials after it.
///
/// `Debug` never prints the credentials.
#[derive(Clone, Copy)]
pub struct Authorization<'a> {
    scheme: Scheme,
    name: &'a str,
    credentials: &'a str,
}

impl<'a> Authorization<'a> {
    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The scheme as the request spelled it (compare it case-insensitively).
    pub fn scheme_name(&self) -> &'a str {
        self.name
    }

    /// Everything after the scheme and the spaces that follow it (may be empty).
    pub fn credentials(&self) -> &'a str {
        self.credentials
    }

    /// Whether the scheme and the credentials are ASCII (what lies between them is).
    pub fn is_ascii(&self) -> bool {
        self.name.is_ascii() && self.credentials.is_ascii()
    }
}

impl fmt::Debug for Authorization<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authorization")
            .field("scheme", &self.scheme)
            .field("scheme_name", &self.name)
            .field("credentials", &"<redacted>")
            .finish()
    }
}

/// Why an `Authorization` header is malformed. Each maps to `400 Bad Request` with
/// `error="invalid_request"` (RFC 6750 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    /// The request carries more than one `Authorization` field.
    #[error("more than one Authorization header field: send exactly one")]
    Duplicate,
    /// The header exceeds the configured size limit.
    #[error("the Authorization header is larger than {limit} bytes")]
    TooLarge {
        /// The configured limit in bytes.
        limit: usize,
    },
    /// The header is empty.
    #[error("the Authorization header is empty")]
    Empty,
    /// The header contains bytes other than visible ASCII, spaces and tabs.
    #[error("the Authorization header contains bytes that are not visible ASCII")]
    NotAscii,
    /// The scheme is followed by no credentials (`Bearer` alone, or only spaces).
    #[error("the Authorization header names a scheme but carries no credentials")]
    MissingCredentials,
    /// The bearer token has characters outside RFC 6750 `b64token`.
    #[error("the bearer token has characters outside RFC 6750 b64token")]
    InvalidToken,
    /// The Basic credentials are not strict, padded, standard base64.
    #[error("the Basic credentials are not valid base64")]
    BasicNotBase64,
    /// The decoded Basic credentials have no colon between user-id and password.
    #[error("the Basic credentials have no ':' between user-id and password")]
    BasicNoColon,
    /// The decoded Basic credentials are not UTF-8.
    #[error("the Basic credentials are not valid UTF-8")]
    BasicNotUtf8,
    /// The decoded Basic credentials contain control characters.
    #[error("the Basic credentials contain control characters")]
    BasicControlCharacters,
}

impl CredentialError {
    /// A short, fixed, human-readable description, safe to send to the client.
    pub fn description(&self) -> &'static str {
        match self {
            Self::Duplicate => "More than one Authorization header",
            Self::TooLarge { .. } => "Authorization header too large",
            Self::Empty => "Empty Authorization header",
            Self::NotAscii => "Authorization header is not ASCII",
            Self::MissingCredentials => "Authorization header has no credentials",
            Self::InvalidToken => "Bearer token has invalid characters",
            Self::BasicNotBase64 => "Basic credentials are not base64",
            Self::BasicNoColon => "Basic credentials have no colon",
            Self::BasicNotUtf8 => "Basic credentials are not UTF-8",
            Self::BasicControlCharacters => "Basic credentials contain control characters",
        }
    }
}

#[doc(hidden)] // Reachable for the fuzz targets and tests; not part of the API (no semver promise).
/// Reads the request's `Authorization` header.
///
/// Returns `Ok(None)` when there is no such header. Leading and trailing spaces and tabs are
/// not part of a field value (RFC 9110 §5.5) and are ignored; one or more spaces separate the
/// scheme from the credentials (RFC 9110 §11.4).
pub fn authorization(
    headers: &HeaderMap,
    max_bytes: usize,
) -> Result<Option<Authorization<'_>>, CredentialError> {
    match read_authorization(headers, max_bytes)? {
        Some(auth) if !auth.is_ascii() => Err(CredentialError::NotAscii),
        auth => Ok(auth),
    }
}

/// [`authorization`] without its last check, that the value is ASCII: the caller must refuse a
/// value for which [`Authorization::is_ascii`] is false with [`CredentialError::NotAscii`]. The
/// layer does so only where a scheme's own check has not implied it already (a `b64token` or
/// Base64 is ASCII), saving a pass over every token.
pub(crate) fn read_authorization(
    headers: &HeaderMap,
    max_bytes: usize,
) -> Result<Option<Authorization<'_>>, CredentialError> {
    match raw_authorization(headers, max_bytes)? {
        Some(raw) => raw.parse().map(Some),
        None => Ok(None),
    }
}

/// The `Authorization` field split into its scheme and credentials, before its text is checked
/// (the layer first offers a bearer token's bytes to [`crate::recall`]). `Debug` is not
/// derived: it would show the credentials.
#[derive(Clone, Copy)]
pub(crate) struct RawAuthorization<'a> {
    /// The field value without leading and trailing spaces and tabs; not empty.
    text: &'a [u8],
    /// Where the scheme ends (the first space, or the end).
    name_end: usize,
    /// Where the credentials start (after the spaces that follow the scheme).
    credentials_start: usize,
}

impl<'a> RawAuthorization<'a> {
    /// Whether the scheme is `Bearer` (case-insensitive, RFC 9110 §11.1).
    pub(crate) fn is_bearer(&self) -> bool {
        // One comparison of a word: `| 0x20` lowercases an ASCII letter, and maps no other byte
        // onto a lowercase letter, so this is `eq_ignore_ascii_case(b"bearer")`.
        let Ok(name) = <[u8; 6]>::try_from(&self.text[..self.name_end]) else {
            return false;
        };
        let word = |b: [u8; 6]| u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], 0, 0]);
        word(name) | 0x2020_2020_2020 == word(*b"bearer")
    }

    /// The credentials' bytes (may be empty), not checked.
    pub(crate) fn credentials(&self) -> &'a [u8] {
        &self.text[self.credentials_start..]
    }

    /// The header read as text, its scheme recognised.
    pub(crate) fn parse(self) -> Result<Authorization<'a>, CredentialError> {
        // Not UTF-8 is not ASCII either (the ASCII check of UTF-8 text is the caller's). The
        // split points are at spaces, which are character boundaries of UTF-8 text.
        let text = std::str::from_utf8(self.text).map_err(|_| CredentialError::NotAscii)?;
        let name = &text[..self.name_end];
        let credentials = &text[self.credentials_start..];
        let scheme = if name.eq_ignore_ascii_case("bearer") {
            Scheme::Bearer
        } else if name.eq_ignore_ascii_case("basic") {
            Scheme::Basic
        } else if name.eq_ignore_ascii_case("dpop") {
            Scheme::DPoP
        } else {
            Scheme::Other
        };
        Ok(Authorization {
            scheme,
            name,
            credentials,
        })
    }
}

/// Reads the one `Authorization` field of `headers` (none: `Ok(None)`), checks its size, and
/// splits it into scheme and credentials; nothing is checked of its text.
pub(crate) fn raw_authorization(
    headers: &HeaderMap,
    max_bytes: usize,
) -> Result<Option<RawAuthorization<'_>>, CredentialError> {
    let value = if headers.len() == headers.keys_len() {
        // No field name repeats at all (the common case): one lookup suffices.
        match headers.get(AUTHORIZATION) {
            Some(value) => value,
            None => return Ok(None),
        }
    } else {
        let mut values = headers.get_all(AUTHORIZATION).iter();
        let Some(value) = values.next() else {
            return Ok(None);
        };
        if values.next().is_some() {
            return Err(CredentialError::Duplicate);
        }
        value
    };
    if value.len() > max_bytes {
        return Err(CredentialError::TooLarge { limit: max_bytes });
    }
    // A `HeaderValue` holds no control bytes but tab (`http` refuses them), so ASCII means
    // visible ASCII, spaces and tabs.
    let bytes = value.as_bytes();
    let start = bytes
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    let end = bytes.len()
        - bytes[start..]
            .iter()
            .rev()
            .take_while(|&&b| b == b' ' || b == b'\t')
            .count();
    let text = &bytes[start..end];
    if text.is_empty() {
        return Err(CredentialError::Empty);
    }
    let (name_end, credentials_start) = match text.iter().position(|&b| b == b' ') {
        Some(i) => (
            i,
            i + 1 + text[i + 1..].iter().take_while(|&&b| b == b' ').count(),
        ),
        None => (text.len(), text.len()),
    };
    Ok(Some(RawAuthorization {
        text,
        name_end,
        credentials_start,
    }))
}

#[doc(hidden)] // Reachable for the fuzz targets and tests; not part of the API (no semver promise).
/// Checks a bearer token against RFC 6750 `b64token`:
/// `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
pub fn bearer_token(credentials: &str) -> Result<&str, CredentialError> {
    if credentials.is_empty() {
        return Err(CredentialError::MissingCredentials);
    }
    if is_b64token(credentials) {
        Ok(credentials)
    } else {
        Err(CredentialError::InvalidToken)
    }
}

#[doc(hidden)] // Reachable for the fuzz targets and tests; not part of the API (no semver promise).
/// Whether `s` matches RFC 6750 `b64token`.
pub fn is_b64token(s: &str) -> bool {
    let bytes = s.as_bytes();
    let body = bytes.len() - bytes.iter().rev().take_while(|&&b| b == b'=').count();
    // Whole 16-byte blocks: branch-free comparisons folded with AND, which the compiler turns
    // into vector code (a table lookup per byte would not vectorize). The last bytes: a table
    // lookup each, cheaper than the comparisons done one byte at a time. This runs on every
    // request.
    let (blocks, rest) = bytes[..body].split_at(body - body % 16);
    body > 0
        && blocks.iter().fold(true, |ok, &b| ok & is_b64token_byte(b))
        && rest
            .iter()
            .fold(true, |ok, &b| ok & B64TOKEN[usize::from(b)])
}

/// [`is_b64token_byte`] as a table.
static B64TOKEN: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = is_b64token_byte(b as u8);
        b += 1;
    }
    table
};

/// The bytes allowed before the padding of a `b64token`:
/// `ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/"`.
/// `ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/"`, without branches.
#[inline(always)]
const fn is_b64token_byte(b: u8) -> bool {
    // `| 0x20` maps `A`..=`Z` onto `a`..=`z` and no other byte into that range.
    ((b | 0x20).wrapping_sub(b'a') < 26)
        | (b.wrapping_sub(b'0') < 10)
        // `-`, `.` and `/` are adjacent.
        | (b.wrapping_sub(b'-') < 3)
        | (b == b'_')
        | (b == b'~')
        | (b == b'+')
}

/// Decoded HTTP Basic credentials (RFC 7617). `Debug` never prints the password.
#[derive(Clone, PartialEq, Eq)]
pub struct BasicCredentials {
    decoded: String,
    colon: usize,
}

impl BasicCredentials {
    /// The user-id: everything before the first colon.
    pub fn user(&self) -> &str {
        &self.decoded[..self.colon]
    }

    /// The password: everything after the first colon (it may contain colons).
    pub fn password(&self) -> &str {
        &self.decoded[self.colon + 1..]
    }
}

impl fmt::Debug for BasicCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicCredentials")
            .field("user", &self.user())
            .field("password", &"<redacted>")
            .finish()
    }
}

#[doc(hidden)] // Reachable for the fuzz targets and tests; not part of the API (no semver promise).
/// Decodes `Basic` credentials: strict, padded, standard base64 (RFC 4648 §4) of
/// `user-id ":" password` in UTF-8, split at the first colon, with no control characters.
///
/// ```
/// use mcp_server_auth::credentials::basic;
/// let c = basic("dXNlcjpwYTpzcw==").unwrap();
/// assert_eq!((c.user(), c.password()), ("user", "pa:ss"));
/// ```
pub fn basic(credentials: &str) -> Result<BasicCredentials, CredentialError> {
    if credentials.is_empty() {
        return Err(CredentialError::MissingCredentials);
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(credentials)
        .map_err(|_| CredentialError::BasicNotBase64)?;
    let decoded = String::from_utf8(bytes).map_err(|_| CredentialError::BasicNotUtf8)?;
    if decoded.chars().any(char::is_control) {
        return Err(CredentialError::BasicControlCharacters);
    }
    let colon = decoded.find(':').ok_or(CredentialError::BasicNoColon)?;
    Ok(BasicCredentials { decoded, colon })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn parse(v: &[u8]) -> Result<Option<(Scheme, String)>, CredentialError> {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_bytes(v).unwrap());
        authorization(&h, 64).map(|o| o.map(|a| (a.scheme(), a.credentials().to_owned())))
    }

    #[test]
    fn b64token_checks_every_byte_in_blocks_and_in_the_rest() {
        let reference = |t: &[u8]| {
            let body = t.iter().rposition(|&b| b != b'=').map_or(0, |i| i + 1);
            body > 0
                && t[..body]
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
        };
        // Every byte value at every position of tokens 1 to 40 bytes long (two blocks and a
        // rest), and before padding.
        for len in 1..=40 {
            for at in 0..len {
                for b in 0..=255u8 {
                    let mut t = vec![b'a'; len];
                    t[at] = b;
                    if let Ok(s) = std::str::from_utf8(&t) {
                        assert_eq!(is_b64token(s), reference(&t), "{t:?}");
                    }
                    t.push(b'=');
                    if let Ok(s) = std::str::from_utf8(&t) {
                        assert_eq!(is_b64token(s), reference(&t), "{t:?}");
                    }
                }
            }
        }
        assert!(!is_b64token("=="));
        assert!(!is_b64token(""));
    }

    #[test]
    fn the_raw_bearer_test_is_a_case_insensitive_match() {
        // `None` for bytes a header value cannot hold.
        let is_bearer = |v: &[u8]| {
            let mut h = HeaderMap::new();
            h.insert(AUTHORIZATION, HeaderValue::from_bytes(v).ok()?);
            Some(raw_authorization(&h, 1024).unwrap().unwrap().is_bearer())
        };
        for yes in [
            &b"Bearer t"[..],
            b"bearer t",
            b"BEARER",
            b"bEaReR  t",
            b"  Bearer",
        ] {
            assert_eq!(is_bearer(yes), Some(true), "{yes:?}");
        }
        // Bytes that `| 0x20` would fold onto a letter of "bearer" if the check were sloppy.
        for no in [
            &b"Bearez t"[..],
            b"Bearer1 t",
            b"Beare t",
            b"B\xc5arer t",
            b"Bea\x12er t",
        ] {
            assert_ne!(is_bearer(no), Some(true), "{no:?}");
        }
        assert_eq!(is_bearer(b"Basic dXNlcjpwYXNz"), Some(false));
    }

    #[test]
    fn schemes_and_spaces() {
        assert_eq!(
            parse(b"BEARER  t").unwrap(),
            Some((Scheme::Bearer, "t".into()))
        );
        assert_eq!(
            parse(b"Basic x ").unwrap(),
            Some((Scheme::Basic, "x".into()))
        );
        assert_eq!(
            parse(b"Digest x").unwrap(),
            Some((Scheme::Other, "x".into()))
        );
        assert_eq!(
            parse(b"Bearer").unwrap(),
            Some((Scheme::Bearer, String::new()))
        );
        assert_eq!(parse(b"  ").unwrap_err(), CredentialError::Empty);
        assert_eq!(
            parse(b"Bearer \xff").unwrap_err(),
            CredentialError::NotAscii
        );
        assert_eq!(
            parse(&[b'a'; 65]).unwrap_err(),
            CredentialError::TooLarge { limit: 64 }
        );
    }

    #[test]
    fn b64token_grammar() {
        assert!(is_b64token("abc-._~+/=="));
        assert!(!is_b64token("=="));
        assert!(!is_b64token("a=b"));
        assert!(!is_b64token("a b"));
        assert_eq!(
            bearer_token("").unwrap_err(),
            CredentialError::MissingCredentials
        );
    }

    #[test]
    fn every_byte_is_classified_as_rfc_6750_says() {
        for b in 0..=255u8 {
            let spec = b.is_ascii_alphanumeric() || b"-._~+/".contains(&b);
            assert_eq!(is_b64token_byte(b), spec, "byte {b:#04x}");
        }
    }

    #[test]
    fn basic_rfc7617_examples() {
        let c = basic("QWxhZGRpbjpvcGVuIHNlc2FtZQ==").unwrap();
        assert_eq!((c.user(), c.password()), ("Aladdin", "open sesame"));
        let c = basic("dGVzdDoxMjPCow==").unwrap();
        assert_eq!((c.user(), c.password()), ("test", "123£"));
        assert_eq!(
            basic("dXNlcg==").unwrap_err(),
            CredentialError::BasicNoColon
        );
        assert_eq!(
            basic("dXNlcjpwYXNz=").unwrap_err(),
            CredentialError::BasicNotBase64
        );
        assert_eq!(
            basic("dXNlcjpwYXN").unwrap_err(),
            CredentialError::BasicNotBase64
        );
        assert_eq!(basic("//79:").unwrap_err(), CredentialError::BasicNotBase64);
        assert_eq!(basic("/w==").unwrap_err(), CredentialError::BasicNotUtf8);
        assert!(!format!("{:?}", basic("dXNlcjpzZWNyZXQ=").unwrap()).contains("secret"));
    }
}
