//! Arbitrary text → `operation::decode_name`; headers built from arbitrary bytes →
//! `operation::read_headers`.
//!
//! Input: the whole input is one `Mcp-Name` value for `decode_name`; then, split at `\n`, each
//! line is one header: its first byte picks `Mcp-Method`, `Mcp-Name` or `MCP-Protocol-Version`,
//! the rest is the value (lines that are not valid header values are skipped).
#![no_main]

use base64::{Engine as _, engine::general_purpose::STANDARD_NO_PAD};
use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use mcp_server_auth::mcp::operation::{
    self, HEADER_CHECKING_REVISIONS, MCP_METHOD, MCP_NAME, MCP_PROTOCOL_VERSION, OperationError,
};

fn check_decode(value: &str) {
    let decoded = operation::decode_name(value);
    let encoded = value
        .strip_prefix("=?base64?")
        .and_then(|r| r.strip_suffix("?="));
    match (encoded, decoded) {
        (None, Ok(s)) => assert_eq!(s, value, "a plain name is taken as is"),
        (None, Err(e)) => panic!("a plain name refused: {e:?}"),
        (Some(enc), Ok(s)) => {
            // Padding optional, but otherwise canonical: re-encoding gives the same text.
            assert_eq!(
                STANDARD_NO_PAD.encode(s.as_bytes()),
                enc.trim_end_matches('=')
            );
        }
        (Some(_), Err(e)) => assert_eq!(e, OperationError::InvalidHeader("Mcp-Name")),
    }
}

fn visible(v: &HeaderValue) -> Option<&str> {
    let s = std::str::from_utf8(v.as_bytes())
        .ok()
        .filter(|s| s.is_ascii())?;
    Some(s.trim_matches([' ', '\t'])).filter(|s| !s.is_empty())
}

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        check_decode(s);
    }
    let names: [HeaderName; 3] = [MCP_METHOD, MCP_NAME, MCP_PROTOCOL_VERSION];
    let mut headers = HeaderMap::new();
    let mut given: [Vec<HeaderValue>; 3] = Default::default();
    for line in data.split(|&b| b == b'\n').take(8) {
        let Some((&pick, value)) = line.split_first() else {
            continue;
        };
        let Ok(v) = HeaderValue::from_bytes(value) else {
            continue;
        };
        let i = usize::from(pick) % 3;
        headers.append(names[i].clone(), v.clone());
        given[i].push(v);
    }
    let [methods, mcp_names, versions] = &given;
    let result = operation::read_headers(&headers);
    let name_ok = match mcp_names.as_slice() {
        [] => Some(None),
        [v] => visible(v)
            .and_then(|t| operation::decode_name(t).ok())
            .map(Some),
        _ => None,
    };
    match result {
        Err(OperationError::DuplicateHeader("Mcp-Name")) => assert!(mcp_names.len() > 1),
        Err(OperationError::InvalidHeader("Mcp-Name")) => {
            assert_eq!(mcp_names.len(), 1);
            assert!(name_ok.is_none());
        }
        Err(OperationError::DuplicateHeader("Mcp-Method")) => {
            assert!(name_ok.is_some() && methods.len() > 1)
        }
        Err(OperationError::InvalidHeader("Mcp-Method")) => {
            assert!(name_ok.is_some() && methods.len() == 1 && visible(&methods[0]).is_none())
        }
        Err(e) => panic!("unexpected {e:?}"),
        Ok(None) => assert!(name_ok.is_some() && methods.is_empty()),
        Ok(Some(h)) => {
            let name = name_ok.expect("Mcp-Name was readable");
            assert_eq!(methods.len(), 1);
            let method = visible(&methods[0]).expect("a readable method");
            assert_eq!(h.operation.method(), method);
            let names_something = operation::name_field(method).is_some();
            assert_eq!(
                h.operation.name(),
                name.as_deref().filter(|_| names_something)
            );
            // Trusted only with one version, byte for byte a header-checking revision, and
            // routing headers that needed no trimming.
            let unpadded = |v: &HeaderValue| visible(v).is_some_and(|t| t.len() == v.len());
            let trusted = match versions.as_slice() {
                [v] => HEADER_CHECKING_REVISIONS.iter().any(|r| v.as_bytes() == r.as_bytes()),
                _ => false,
            } && unpadded(&methods[0])
                && mcp_names.iter().all(unpadded);
            assert_eq!(h.validated_by_server, trusted);
            assert_eq!(
                operation::from_headers(&headers).unwrap().as_ref(),
                Some(&h.operation)
            );
        }
    }
});
