//! Arbitrary text → `credentials::basic`. Accepted credentials must be the canonical (strict,
//! padded, standard) base64 of `user:password`, split at the first colon.
#![no_main]

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use mcp_server_auth::credentials::{self, CredentialError};

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let decoded = base64::engine::general_purpose::STANDARD.decode(input);
    match credentials::basic(input) {
        Ok(c) => {
            let joined = format!("{}:{}", c.user(), c.password());
            assert_eq!(
                base64::engine::general_purpose::STANDARD.encode(&joined),
                input
            );
            assert!(!c.user().contains(':'));
            assert_eq!(decoded.unwrap(), joined.as_bytes());
            assert!(!joined.chars().any(char::is_control));
        }
        Err(CredentialError::MissingCredentials) => assert!(input.is_empty()),
        Err(CredentialError::BasicNotBase64) => assert!(decoded.is_err()),
        Err(CredentialError::BasicNotUtf8) => {
            assert!(String::from_utf8(decoded.unwrap()).is_err());
        }
        Err(CredentialError::BasicControlCharacters) => {
            let s = String::from_utf8(decoded.unwrap()).unwrap();
            assert!(s.chars().any(char::is_control));
        }
        Err(CredentialError::BasicNoColon) => {
            let s = String::from_utf8(decoded.unwrap()).unwrap();
            assert!(!s.contains(':'));
        }
        Err(e) => panic!("unexpected {e:?}"),
    }
});
