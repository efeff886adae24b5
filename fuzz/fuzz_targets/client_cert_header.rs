//! Arbitrary bytes → the client certificate header parser (URL-encoded PEM, Envoy's
//! `x-forwarded-client-cert`). It never panics, reads at most 16 KiB, and what it accepts is one
//! DER `SEQUENCE` no larger than the value it came from, read again the same way from its own
//! URL-encoded PEM.
#![no_main]

use base64::{Engine as _, engine::general_purpose::STANDARD};
use libfuzzer_sys::fuzz_target;
use mcp_server_auth::mtls::{MAX_CERT_HEADER_BYTES, parse_client_cert_header};

fuzz_target!(|data: &[u8]| {
    let Ok(der) = parse_client_cert_header(data) else {
        return;
    };
    assert!(data.len() <= MAX_CERT_HEADER_BYTES);
    assert!(der.len() < data.len(), "{data:?}");
    assert_eq!(der[0], 0x30);
    // Its own PEM, URL-encoded as nginx does, reads back to the same DER.
    let pem = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        STANDARD.encode(&der)
    );
    let escaped: String = pem
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect();
    if escaped.len() <= MAX_CERT_HEADER_BYTES {
        assert_eq!(parse_client_cert_header(escaped.as_bytes()), Ok(der));
    }
});
