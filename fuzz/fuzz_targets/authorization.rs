//! Arbitrary bytes as one or more `Authorization` header values → `credentials::authorization`,
//! then `bearer_token` / `basic` on what it returns, with the invariants each must keep.
//!
//! Input: the first byte picks the size limit and whether an unrelated header repeats (the
//! slow path of the duplicate check); the rest, split at `\n`, are the header values.
#![no_main]

use base64::Engine as _;
use http::{HeaderMap, HeaderName, HeaderValue, header::AUTHORIZATION};
use libfuzzer_sys::fuzz_target;
use mcp_server_auth::credentials::{self, CredentialError, Scheme};

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let max = [0, 1, 8, 64, 256, credentials::DEFAULT_MAX_HEADER_BYTES][usize::from(control % 6)];
    let mut headers = HeaderMap::new();
    if control & 0x80 != 0 {
        let other = HeaderName::from_static("x-other");
        headers.append(other.clone(), HeaderValue::from_static("a"));
        headers.append(other, HeaderValue::from_static("b"));
    }
    let mut values = Vec::new();
    for part in rest.split(|&b| b == b'\n').take(4) {
        if let Ok(v) = HeaderValue::from_bytes(part) {
            headers.append(AUTHORIZATION, v.clone());
            values.push(v);
        }
    }
    let result = credentials::authorization(&headers, max);
    let auth = match (values.as_slice(), result) {
        ([], r) => {
            assert!(matches!(r, Ok(None)), "no header: {r:?}");
            return;
        }
        ([_, _, ..], r) => {
            assert_eq!(r.unwrap_err(), CredentialError::Duplicate);
            return;
        }
        ([v], Err(e)) => {
            let bytes = v.as_bytes();
            let trimmed = bytes.trim_ascii();
            match e {
                CredentialError::TooLarge { limit } => {
                    assert_eq!(limit, max);
                    assert!(bytes.len() > max);
                }
                CredentialError::NotAscii => assert!(!bytes.is_ascii() && bytes.len() <= max),
                // Only spaces and tabs (a HeaderValue holds no other whitespace but those).
                CredentialError::Empty => assert!(trimmed.is_empty() && bytes.len() <= max),
                other => panic!("unexpected error {other:?}"),
            }
            return;
        }
        ([v], Ok(None)) => panic!("a header {v:?} read as none"),
        ([v], Ok(Some(a))) => (v, a),
    };
    let (value, auth) = auth;
    let bytes = value.as_bytes();
    assert!(bytes.len() <= max && bytes.is_ascii());
    let text = std::str::from_utf8(bytes).unwrap();
    let creds = auth.credentials();
    // The credentials are a slice of the value: no leading spaces, no trailing space or tab.
    assert!(text.contains(creds));
    assert!(!creds.starts_with(' '));
    assert!(!creds.ends_with([' ', '\t']));
    let inner = text.trim_matches([' ', '\t']);
    assert!(!inner.is_empty());
    let scheme = inner.split(' ').next().unwrap();
    let expected = if scheme.eq_ignore_ascii_case("bearer") {
        Scheme::Bearer
    } else if scheme.eq_ignore_ascii_case("basic") {
        Scheme::Basic
    } else if scheme.eq_ignore_ascii_case("dpop") {
        Scheme::DPoP
    } else {
        Scheme::Other
    };
    assert_eq!(auth.scheme(), expected);
    assert_eq!(auth.scheme_name(), scheme);
    assert_eq!(
        inner[scheme.len()..].trim_start_matches(' '),
        creds,
        "credentials are what follows the scheme"
    );

    match credentials::bearer_token(creds) {
        Ok(token) => {
            assert_eq!(token, creds);
            assert!(credentials::is_b64token(token));
            let body = token.trim_end_matches('=');
            assert!(!body.is_empty());
            assert!(body.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
            }));
        }
        Err(CredentialError::MissingCredentials) => assert!(creds.is_empty()),
        Err(CredentialError::InvalidToken) => assert!(!credentials::is_b64token(creds)),
        Err(e) => panic!("bearer_token: unexpected {e:?}"),
    }

    match credentials::basic(creds) {
        Ok(c) => {
            assert!(!c.user().contains(':'));
            let joined = format!("{}:{}", c.user(), c.password());
            assert!(!joined.chars().any(char::is_control));
            // Strict base64: the credentials are the one canonical encoding.
            assert_eq!(
                base64::engine::general_purpose::STANDARD.encode(&joined),
                creds
            );
            // Debug never shows the password.
            let debug = format!("{c:?}");
            assert!(debug.contains("<redacted>"));
        }
        Err(CredentialError::MissingCredentials) => assert!(creds.is_empty()),
        Err(
            CredentialError::BasicNotBase64
            | CredentialError::BasicNotUtf8
            | CredentialError::BasicNoColon
            | CredentialError::BasicControlCharacters,
        ) => {}
        Err(e) => panic!("basic: unexpected {e:?}"),
    }
    let _ = format!("{auth:?}");
});
