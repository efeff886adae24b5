//! Arbitrary strings as challenge parameter values → the `Challenge` builder. The header value
//! must be a valid single-line `HeaderValue` that a strict auth-param parser reads back into
//! exactly the parameters given, sanitized as documented.
//!
//! Input, split at `\n`: the first line is `basic <realm>` for a Basic challenge, anything else
//! for Bearer; each further line is one parameter, its first byte picking the name and the rest
//! (lossily decoded as UTF-8) the value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_server_auth::refusal::challenge::{Challenge, MAX_DESCRIPTION_BYTES};

/// Parameter names must be lowercase `&'static str` tokens (a debug assertion): pick them here.
const NAMES: [&str; 8] = [
    "realm",
    "resource_metadata",
    "scope",
    "error",
    "error_description",
    "charset",
    "a",
    "x_y",
];

/// The documented sanitization, written independently of the library.
fn sanitize(name: &str, value: &str) -> Option<String> {
    let description = name == "error_description";
    let v: String = value
        .chars()
        .filter_map(|c| match c {
            '"' => Some('\''),
            '\\' => Some('/'),
            '=' if description => Some(':'),
            ' '..='~' => Some(c),
            _ => None,
        })
        .take(if description {
            MAX_DESCRIPTION_BYTES
        } else {
            usize::MAX
        })
        .collect();
    let v = if description { v.trim().to_owned() } else { v };
    (!v.is_empty()).then_some(v)
}

/// A strict parser of one challenge: `scheme [SP name="value" *(", " name="value")]`, names
/// lowercase tokens, values printable ASCII without `"` or `\`.
fn parse(s: &str) -> Option<(&str, Vec<(&str, &str)>)> {
    let (scheme, mut rest) = match s.find(' ') {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, ""),
    };
    if scheme.is_empty() || !scheme.bytes().all(|b| b.is_ascii_alphabetic()) {
        return None;
    }
    let mut params = Vec::new();
    if s.len() == scheme.len() {
        return Some((scheme, params));
    }
    loop {
        let eq = rest.find('=')?;
        let name = &rest[..eq];
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            return None;
        }
        let after = rest[eq + 1..].strip_prefix('"')?;
        let close = after.find('"')?;
        let value = &after[..close];
        if !value
            .bytes()
            .all(|b| (b' '..=b'~').contains(&b) && b != b'\\')
        {
            return None;
        }
        params.push((name, value));
        rest = &after[close + 1..];
        if rest.is_empty() {
            return Some((scheme, params));
        }
        rest = rest.strip_prefix(", ")?;
    }
}

fuzz_target!(|data: &[u8]| {
    let mut lines = data.split(|&b| b == b'\n');
    let first = String::from_utf8_lossy(lines.next().unwrap_or_default());
    let (mut challenge, scheme, mut expected) = match first.strip_prefix("basic ") {
        Some(realm) => {
            let mut expected = Vec::new();
            expected.extend(sanitize("realm", realm).map(|v| ("realm", v)));
            expected.push(("charset", "UTF-8".to_owned()));
            (Challenge::basic(realm), "Basic", expected)
        }
        None => (Challenge::bearer(), "Bearer", Vec::new()),
    };
    for line in lines.take(16) {
        let Some((&pick, value)) = line.split_first() else {
            continue;
        };
        let name = NAMES[usize::from(pick) % NAMES.len()];
        let value = String::from_utf8_lossy(value);
        expected.extend(sanitize(name, &value).map(|v| (name, v)));
        challenge = challenge.param(name, &*value);
    }

    let text = challenge.to_string();
    let header = challenge.to_header_value();
    assert_eq!(header.as_bytes(), text.as_bytes());
    assert_eq!(header.to_str().unwrap(), text);
    assert!(!text.contains(['\r', '\n', '\\']));
    assert!(text.bytes().all(|b| (b' '..=b'~').contains(&b)));
    assert_eq!(
        text.matches('"').count() % 2,
        0,
        "unbalanced quotes: {text}"
    );
    let (s, params) = parse(&text).unwrap_or_else(|| panic!("does not parse back: {text:?}"));
    assert_eq!(s, scheme);
    let expected: Vec<(&str, &str)> = expected.iter().map(|(n, v)| (*n, v.as_str())).collect();
    assert_eq!(params, expected, "{text:?}");
    for (name, value) in &params {
        if *name == "error_description" {
            assert!(value.len() <= MAX_DESCRIPTION_BYTES);
            assert!(
                !value.contains('='),
                "a description must not mimic a parameter"
            );
        }
    }
});
