//! Property tests (proptest) of what the crate emits and parses.
//!
//! 1. Every challenge is a valid one-line header value and parses back to the parameters it
//!    was built with, by a strict RFC 9110 §11 (RFC 7235) parser of our own and by Rust ports of
//!    the official MCP clients' `WWW-Authenticate` readers (RFC 6750 §3, RFC 9728 §5.1), as
//!    their sources have them:
//!    - TypeScript SDK ≥ 1.21.1 `extractWWWAuthenticateParams` / `extractFieldFromWwwAuth`: the
//!      first space-separated word must be `bearer` (any case) and a second word must follow,
//!      then ``new RegExp(`${name}=(?:"([^"]+)"|([^\s,]+))`)`` over the whole joined header,
//!      `m[1] || m[2]`, and `new URL(…)` of `resource_metadata` (an invalid URL is ignored);
//!    - TypeScript SDK ≤ 1.21.0 `extractResourceMetadataUrl`: the same scheme check, then
//!      `/resource_metadata="([^"]*)"/`;
//!    - Python SDK `extract_field_from_www_auth`: `re.search(rf'{name}=(?:"([^"]+)"|([^\s,]+))')`
//!      over the joined header, no scheme check, `group(1) or group(2)`; `resource_metadata` is
//!      read from 401s only.
//!
//!    Both clients join repeated `WWW-Authenticate` fields with `", "` (fetch `Headers.get`,
//!    httpx `Headers.__getitem__`). The regexes are hand-ported; every header here is ASCII, so
//!    `\s` is ported for ASCII only (JS: TAB LF VT FF CR SP; Python adds 0x1C–0x1F).
//! 2. Scope sets and resource URLs round-trip through their canonical forms; audience matching
//!    (`ResourceUrl::matches` and the JWT verifier's `aud` check) ignores scheme/host case, a
//!    default port and a bare origin's trailing slash, and nothing else.
//! 3. Any resource URL yields the RFC 9728 path-inserted metadata URL; the layer serves the
//!    document there with `resource` equal to the canonical URL, and its 401 points at it.
//! 4. `mcp::operation::decode_name` round-trips the Base64 sentinel form; `from_body` never
//!    panics and agrees with `serde_json` on generated JSON-RPC messages and batches.
//! 5. The layer's recall of a remembered token changes no answer: for any `Authorization`
//!    fields, the layer answers exactly as it does with recall switched off.
//!
//! A configured realm, resource URL or scope that contains `scope=`, `error=` or
//! `resource_metadata=` would be read by the SDK regexes as that parameter, so the library
//! refuses such configuration (`param_names_inside_configured_values_are_refused`).
#![cfg(any(feature = "aws-lc-rs", feature = "rust-crypto"))] // JWT verification needs a crypto backend.

use std::{collections::BTreeSet, convert::Infallible};

use base64::{
    Engine as _,
    engine::general_purpose::{STANDARD, STANDARD_NO_PAD},
};
use http::{
    Request, Response, StatusCode,
    header::{AUTHORIZATION, WWW_AUTHENTICATE},
};
use http_body_util::BodyExt as _;
use mcp_server_auth::{
    AuthLayer, BuildError, ProtectedResourceMetadata, ResourceUrl, ScopeRequirement, ScopeSet,
    Verifier, VerifierExt,
    basic::BasicAuth,
    bearer::StaticBearer,
    jwt::{Algorithm, Issuer, JwtVerifier, KeySet},
    mcp::operation::{self, NameKind, Operation, OperationError},
    refusal::challenge::{Challenge, MAX_DESCRIPTION_BYTES},
    resource::ResourceUrlError,
    scope::{ScopeError, is_scope_token},
    verifier::{Invalid, Rejection},
};
use proptest::{prelude::*, sample::select, test_runner::TestCaseError};
use serde_json::{Map, Value, json};
use tower::{Layer as _, ServiceExt as _};

/// Cases per property. The whole file runs in about 15 s on 2 cores (debug build).
const CASES: u32 = 512;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        // Keep shrinking bounded on a slow machine.
        max_shrink_iters: 2048,
        ..ProptestConfig::default()
    }
}

// =============================================================================================
// Client ports
// =============================================================================================

/// JavaScript `\s`, restricted to ASCII.
fn js_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ')
}

/// Python `re` `\s` on `str`, restricted to ASCII (`str.isspace`: also 0x1C–0x1F).
fn py_space(c: char) -> bool {
    js_space(c) || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// The first match of `{name}=(?:"([^"]+)"|([^\s,]+))` in `h`, as `m[1] || m[2]`.
///
/// A regex engine tries each start position in turn; at a position where the literal
/// `{name}=` matches it tries the quoted alternative (a `"`, at least one non-`"`, a `"`), then
/// the bare one (at least one character that is neither `\s` nor `,`, greedy), and moves on if
/// both fail.
fn regex_field(h: &str, name: &str, space: fn(char) -> bool) -> Option<String> {
    let needle = format!("{name}=");
    let mut from = 0;
    while let Some(i) = h[from..].find(&needle) {
        let start = from + i;
        let rest = &h[start + needle.len()..];
        if let Some(quoted) = rest.strip_prefix('"')
            && let Some(end) = quoted.find('"')
            && end > 0
        {
            return Some(quoted[..end].to_owned());
        }
        let n = rest
            .find(|c: char| space(c) || c == ',')
            .unwrap_or(rest.len());
        if n > 0 {
            return Some(rest[..n].to_owned());
        }
        // `name` starts with an ASCII letter, so `start + 1` is a character boundary.
        from = start + 1;
    }
    None
}

/// Whether `new URL(s)` (no base) would succeed, for the absolute http(s) URLs generated here:
/// a scheme and an authority. (An approximation of the WHATWG parser that agrees with it on
/// every URL these tests emit.)
fn js_url_parses(s: &str) -> bool {
    s.parse::<http::Uri>()
        .is_ok_and(|u| u.scheme().is_some() && u.authority().is_some_and(|a| !a.host().is_empty()))
}

/// What a client read from a response's challenges.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct ClientView {
    resource_metadata: Option<String>,
    scope: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// The `[type, scheme] = header.split(' ')` check of the TypeScript SDK.
fn ts_scheme_ok(joined: &str) -> bool {
    let mut words = joined.split(' ');
    let ty = words.next().unwrap_or("");
    let scheme = words.next().unwrap_or("");
    ty.to_lowercase() == "bearer" && !scheme.is_empty()
}

/// TypeScript SDK ≥ 1.21.1 `extractWWWAuthenticateParams` (v2 also reads `error_description`).
fn ts_client(joined: &str) -> ClientView {
    if !ts_scheme_ok(joined) {
        return ClientView::default();
    }
    let field = |name| regex_field(joined, name, js_space);
    ClientView {
        resource_metadata: field("resource_metadata").filter(|u| js_url_parses(u)),
        scope: field("scope"),
        error: field("error"),
        error_description: field("error_description"),
    }
}

/// TypeScript SDK ≤ 1.21.0 `extractResourceMetadataUrl`: `/resource_metadata="([^"]*)"/`.
fn ts_legacy_resource_metadata(joined: &str) -> Option<String> {
    if !ts_scheme_ok(joined) {
        return None;
    }
    let needle = "resource_metadata=\"";
    let start = joined.find(needle)? + needle.len();
    let end = joined[start..].find('"')?;
    Some(joined[start..start + end].to_owned()).filter(|u| js_url_parses(u))
}

/// Python SDK `extract_field_from_www_auth` (no scheme check); `resource_metadata` is only
/// read from a 401 (`extract_resource_metadata_from_www_auth`).
fn py_client(status: u16, joined: &str) -> ClientView {
    let field = |name| regex_field(joined, name, py_space);
    ClientView {
        resource_metadata: field("resource_metadata").filter(|_| status == 401),
        scope: field("scope"),
        error: field("error"),
        error_description: field("error_description"),
    }
}

// =============================================================================================
// A strict RFC 9110 §11 parser
// =============================================================================================

/// One parsed challenge: the scheme and its auth-params, names as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Parsed {
    scheme: String,
    params: Vec<(String, String)>,
}

impl Parsed {
    fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Parses a `WWW-Authenticate` field value (`#challenge`, RFC 9110 §11.6.1):
/// `challenge = auth-scheme [ 1*SP #auth-param ]`,
/// `auth-param = token BWS "=" BWS ( token / quoted-string )`. `token68` is refused: every
/// challenge of this crate uses auth-params.
fn parse_challenges(v: &str) -> Result<Vec<Parsed>, String> {
    let b = v.as_bytes();
    let n = b.len();
    let ows = |i: &mut usize| {
        while *i < n && (b[*i] == b' ' || b[*i] == b'\t') {
            *i += 1;
        }
    };
    let token = |i: &mut usize| -> Option<String> {
        let s = *i;
        while *i < n && is_tchar(b[*i]) {
            *i += 1;
        }
        (*i > s).then(|| v[s..*i].to_owned())
    };
    // Whether an auth-param (`token BWS "="`) starts at `i`.
    let param_ahead = |i: usize| {
        let mut j = i;
        let name = token(&mut j);
        ows(&mut j);
        name.is_some() && j < n && b[j] == b'='
    };
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        // Empty list elements are allowed (RFC 9110 §5.6.1).
        ows(&mut i);
        while i < n && b[i] == b',' {
            i += 1;
            ows(&mut i);
        }
        if i == n {
            break;
        }
        let scheme = token(&mut i).ok_or(format!("auth-scheme expected at {i} in {v:?}"))?;
        let mut params = Vec::new();
        let spaces = i;
        while i < n && b[i] == b' ' {
            i += 1;
        }
        if i > spaces && i < n && b[i] != b',' {
            if !param_ahead(i) {
                return Err(format!("auth-param expected at {i} in {v:?}"));
            }
            loop {
                let name = token(&mut i).expect("checked by param_ahead");
                ows(&mut i);
                i += 1; // '='
                ows(&mut i);
                let value = if i < n && b[i] == b'"' {
                    i += 1;
                    let mut value = Vec::new();
                    loop {
                        let Some(&c) = b.get(i) else {
                            return Err(format!("unterminated quoted-string in {v:?}"));
                        };
                        i += 1;
                        match c {
                            b'"' => break,
                            b'\\' => {
                                let Some(&q) = b.get(i).filter(|&&q| q == b'\t' || q >= b' ')
                                else {
                                    return Err(format!("bad quoted-pair in {v:?}"));
                                };
                                value.push(q);
                                i += 1;
                            }
                            b'\t' | b' ' | 0x21 | 0x23..=0x5b | 0x5d..=0x7e | 0x80..=0xff => {
                                value.push(c)
                            }
                            _ => return Err(format!("bad byte {c:#x} in quoted-string {v:?}")),
                        }
                    }
                    String::from_utf8(value).map_err(|e| e.to_string())?
                } else {
                    token(&mut i).ok_or(format!("token or quoted-string expected at {i}"))?
                };
                params.push((name, value));
                ows(&mut i);
                if i == n {
                    break;
                }
                if b[i] != b',' {
                    return Err(format!("',' expected at {i} in {v:?}"));
                }
                while i < n && (b[i] == b',' || b[i] == b' ' || b[i] == b'\t') {
                    i += 1;
                }
                if i == n || !param_ahead(i) {
                    // The next element is another challenge.
                    break;
                }
            }
        } else if i > spaces && i == n {
            return Err(format!("trailing space in {v:?}"));
        }
        out.push(Parsed { scheme, params });
    }
    Ok(out)
}

/// Checks one emitted field value: visible ASCII and SP only, one line, no escapes, one
/// challenge whose parameter names are lowercase, unique and in `order`, none empty; returns it.
fn check_field(value: &http::HeaderValue) -> Result<Parsed, TestCaseError> {
    let bytes = value.as_bytes();
    prop_assert!(
        bytes.iter().all(|&b| (b' '..=b'~').contains(&b)),
        "not printable ASCII: {value:?}"
    );
    let text = value.to_str().unwrap();
    prop_assert!(
        !text.contains('\\'),
        "escapes are not read by clients: {text}"
    );
    prop_assert!(!text.contains("=\"\""), "empty value: {text}");
    let mut parsed = parse_challenges(text).map_err(TestCaseError::fail)?;
    prop_assert_eq!(parsed.len(), 1, "one challenge per field line: {}", text);
    let c = parsed.remove(0);
    let names: Vec<&str> = c.params.iter().map(|(n, _)| n.as_str()).collect();
    prop_assert!(
        !names.is_empty(),
        "a scheme alone is ignored by clients: {}",
        text
    );
    for n in &names {
        prop_assert!(
            n.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "name not lowercase: {text}"
        );
    }
    let unique: BTreeSet<&str> = names.iter().copied().collect();
    prop_assert_eq!(unique.len(), names.len(), "duplicate parameter: {}", text);
    // The documented fixed order.
    let order = [
        "realm",
        "charset",
        "resource_metadata",
        "scope",
        "error",
        "error_description",
    ];
    let ranks: Vec<usize> = names
        .iter()
        .map(|n| order.iter().position(|o| o == n).unwrap_or(usize::MAX))
        .collect();
    prop_assert!(ranks.windows(2).all(|w| w[0] < w[1]), "order: {}", text);
    Ok(c)
}

#[test]
fn strict_parser_sanity() {
    let p = parse_challenges(
        r#"Bearer resource_metadata="https://h/x", scope="a b", Basic realm="m\"q", charset=UTF-8"#,
    )
    .unwrap();
    assert_eq!(p.len(), 2);
    assert_eq!(p[0].get("scope"), Some("a b"));
    assert_eq!(p[1].get("realm"), Some("m\"q"));
    assert_eq!(p[1].get("charset"), Some("UTF-8"));
    assert!(parse_challenges(r#"Bearer scope="a"#).is_err());
    assert!(parse_challenges("Bearer abc==").is_err());
    assert!(parse_challenges(r#"Bearer scope="a" error="b""#).is_err());
}

#[test]
fn client_ports_misread_edge_case_challenges_as_the_sdks_do() {
    // How the SDKs' readers (above) take challenges whose values hold `scope=`, an empty quoted
    // string or another scheme first: what the crate's challenges must never look like.
    let g = r#"Bearer error="insufficient_scope", error_description="need scope=admin", scope="files:write""#;
    assert_eq!(ts_client(g).scope.as_deref(), Some("admin\""));
    assert_eq!(py_client(403, g).scope.as_deref(), Some("admin\""));
    let i = r#"Bearer resource_metadata="https://h/x", scope="""#;
    assert_eq!(ts_client(i).scope.as_deref(), Some("\"\""));
    assert_eq!(py_client(401, i).scope.as_deref(), Some("\"\""));
    let b = r#"Basic realm="mcp", Bearer resource_metadata="https://h/x""#;
    assert_eq!(ts_client(b), ClientView::default());
    assert_eq!(
        py_client(401, b).resource_metadata.as_deref(),
        Some("https://h/x")
    );
    let e = r#"Bearer RESOURCE_METADATA="https://h/x", Scope="a b""#;
    assert_eq!(ts_client(e), ClientView::default());
    let f = r#"Bearer resource_metadata = "https://h/x", scope = "a""#;
    assert_eq!(ts_client(f), ClientView::default());
    let h = r#"Bearer resource_metadata="/.well-known/oauth-protected-resource""#;
    assert_eq!(ts_client(h).resource_metadata, None);
    let k = r#"bearer resource_metadata="https://h/x""#;
    assert_eq!(
        ts_client(k).resource_metadata.as_deref(),
        Some("https://h/x")
    );
    let n = "Bearer resource_metadata=https://h/x, scope=files:read";
    assert_eq!(ts_client(n).scope.as_deref(), Some("files:read"));
    assert_eq!(
        ts_client(n).resource_metadata.as_deref(),
        Some("https://h/x")
    );
    assert_eq!(ts_client("Bearer").resource_metadata, None);
    assert_eq!(
        ts_legacy_resource_metadata(r#"Bearer resource_metadata="https://h/x""#).as_deref(),
        Some("https://h/x")
    );
    assert_eq!(ts_legacy_resource_metadata(n), None);
}

// =============================================================================================
// Generators
// =============================================================================================

/// The substrings the SDK regexes find anywhere in a header.
const NEEDLES: [&str; 4] = [
    "scope=",
    "error=",
    "resource_metadata=",
    "error_description=",
];

fn hazard_free(values: &[&str]) -> bool {
    values
        .iter()
        .all(|v| NEEDLES.iter().all(|n| !v.contains(n)))
}

/// Nothing: configured values holding a parameter name and `=` are refused by the library
/// (see [`hazardous_configuration`]), so the generators of valid configuration leave them out.
fn hazard() -> impl Strategy<Value = String> {
    Just(String::new())
}

/// A parameter name and `=`.
fn needle() -> impl Strategy<Value = String> {
    select(NEEDLES.to_vec()).prop_map(str::to_owned)
}

/// A valid scope token other than `offline_access`, sometimes with a parameter name inside.
fn scope_token() -> impl Strategy<Value = String> {
    ("[!#-\\[\\]-~]{1,10}", hazard(), "[!#-\\[\\]-~]{0,4}")
        .prop_map(|(a, h, b)| format!("{a}{h}{b}"))
        .prop_filter("offline_access is refused", |s| s != "offline_access")
}

/// A valid realm (printable ASCII without `"` and `\`), sometimes with a parameter name inside.
fn realm() -> impl Strategy<Value = String> {
    ("[ !#-\\[\\]-~]{1,16}", hazard()).prop_map(|(r, h)| format!("{r}{h}"))
}

#[derive(Debug, Clone)]
enum Host {
    Name(Vec<String>),
    V4([u8; 3]),
    Localhost,
    V6Loopback,
}

/// The parts of a resource URL, and the variants of it that must compare equal.
#[derive(Debug, Clone)]
struct UrlParts {
    https: bool,
    /// Which letters of the scheme and host to uppercase (bit i for letter i, cycled).
    case_mask: u64,
    host: Host,
    /// `None`: no port; `Some(None)`: the default port written out; `Some(Some(p))`: port `p`.
    port: Option<Option<u16>>,
    segments: Vec<String>,
    trailing_slash: bool,
    query: Option<String>,
}

impl UrlParts {
    fn default_port(&self) -> u16 {
        if self.https { 443 } else { 80 }
    }

    fn host_lower(&self) -> String {
        match &self.host {
            Host::Name(labels) => labels.join("."),
            Host::V4([a, b, c]) => format!("127.{a}.{b}.{c}"),
            Host::Localhost => "localhost".to_owned(),
            Host::V6Loopback => "[::1]".to_owned(),
        }
    }

    fn is_loopback(&self) -> bool {
        !matches!(self.host, Host::Name(_))
    }

    fn explicit_port(&self) -> Option<u16> {
        match self.port {
            None => None,
            Some(None) => Some(self.default_port()),
            Some(Some(p)) => Some(p),
        }
    }

    fn effective_port(&self) -> Option<u16> {
        self.explicit_port().filter(|&p| p != self.default_port())
    }

    fn path(&self) -> String {
        if self.segments.is_empty() {
            return if self.trailing_slash {
                "/".into()
            } else {
                String::new()
            };
        }
        let mut p = format!("/{}", self.segments.join("/"));
        if self.trailing_slash {
            p.push('/');
        }
        p
    }

    fn query_part(&self) -> String {
        self.query
            .as_ref()
            .map_or(String::new(), |q| format!("?{q}"))
    }

    /// The URL as a user might write it: mixed case, the default port perhaps spelled out.
    fn written(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        let mut letter = 0;
        let mut recase = |s: &str| -> String {
            s.chars()
                .map(|c| {
                    if c.is_ascii_alphabetic() {
                        letter += 1;
                        if self.case_mask >> (letter % 64) & 1 == 1 {
                            return c.to_ascii_uppercase();
                        }
                    }
                    c
                })
                .collect()
        };
        let scheme = recase(scheme);
        let host = recase(&self.host_lower());
        let port = self
            .explicit_port()
            .map_or(String::new(), |p| format!(":{p}"));
        format!(
            "{scheme}://{host}{port}{}{}",
            self.path(),
            self.query_part()
        )
    }

    fn origin(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        let port = self
            .effective_port()
            .map_or(String::new(), |p| format!(":{p}"));
        format!("{scheme}://{}{port}", self.host_lower())
    }

    /// The documented canonical form: lowercase scheme and host, no default port, no trailing
    /// slash on a bare origin, path and query kept as written.
    fn canonical(&self) -> String {
        let path = if self.segments.is_empty() && self.query.is_none() {
            String::new()
        } else {
            self.path()
        };
        format!("{}{path}{}", self.origin(), self.query_part())
    }

    /// RFC 9728 §3.1: the well-known suffix inserted between the host and the path.
    fn metadata_url(&self) -> String {
        let path = if self.segments.is_empty() && self.query.is_none() {
            String::new()
        } else {
            self.path()
        };
        format!(
            "{}/.well-known/oauth-protected-resource{path}{}",
            self.origin(),
            self.query_part()
        )
    }
}

fn label() -> impl Strategy<Value = String> {
    "[a-z0-9]([a-z0-9-]{0,6}[a-z0-9])?"
}

fn host(https: bool) -> BoxedStrategy<Host> {
    let loopback = prop_oneof![
        Just(Host::Localhost),
        Just(Host::V6Loopback),
        any::<[u8; 3]>().prop_map(Host::V4),
    ];
    if https {
        prop_oneof![
            3 => prop::collection::vec(label(), 1..4)
                .prop_filter("not a loopback name", |l| {
                    l.last().is_some_and(|t| t != "localhost")
                        // A dotted-decimal name would parse as an IPv4 address.
                        && !l.last().is_some_and(|t| t.bytes().all(|b| b.is_ascii_digit()))
                })
                .prop_map(Host::Name),
            1 => loopback,
        ]
        .boxed()
    } else {
        loopback.boxed()
    }
}

/// A path segment: unreserved and sub-delimiter characters (no `=`) or a percent-encoded octet,
/// never `.` or `..`; sometimes with a parameter name and `=` inside.
fn segment() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(
            prop_oneof![
                6 => "[A-Za-z0-9._~!$&()*+,;:@-]",
                1 => "%[0-9A-F]{2}",
            ],
            1..6,
        ),
        hazard(),
    )
        .prop_map(|(parts, h)| format!("{}{h}", parts.concat()))
        .prop_filter("no dot segments", |s| s != "." && s != "..")
}

fn url_parts() -> impl Strategy<Value = UrlParts> {
    any::<bool>().prop_flat_map(|https| {
        (
            Just(https),
            any::<u64>(),
            host(https),
            prop_oneof![
                Just(None),
                Just(Some(None)),
                (1u16..=65535).prop_map(|p| Some(Some(p)))
            ],
            prop::collection::vec(segment(), 0..4),
            any::<bool>(),
            proptest::option::weighted(0.25, "[A-Za-z0-9._~!$&()*+,;:@/?=-]{0,12}"),
        )
            .prop_map(
                |(https, case_mask, host, port, segments, trailing_slash, query)| UrlParts {
                    https,
                    case_mask,
                    host,
                    port,
                    // A query only after a path (`https://h?q` has no path to keep).
                    query: query.filter(|_| !segments.is_empty()),
                    segments,
                    trailing_slash,
                },
            )
    })
}

// =============================================================================================
// Part 1: challenges built with `Challenge`
// =============================================================================================

const PARAM_NAMES: [&str; 7] = [
    "realm",
    "resource_metadata",
    "scope",
    "error",
    "error_description",
    "error_uri",
    "charset",
];

/// The documented sanitization of `Challenge::param`: `"` → `'`, `\` → `/`, characters outside
/// printable ASCII dropped; in `error_description` also `=` → `:`, the text cut at
/// `MAX_DESCRIPTION_BYTES` and trimmed of spaces (the trim is not in the docs); an empty result
/// is left out.
fn sanitized(name: &str, value: &str) -> Option<String> {
    let description = name == "error_description";
    let mapped = value.chars().filter_map(|c| match c {
        '"' => Some('\''),
        '\\' => Some('/'),
        '=' if description => Some(':'),
        ' '..='~' => Some(c),
        _ => None,
    });
    let v: String = if description {
        mapped
            .take(MAX_DESCRIPTION_BYTES)
            .collect::<String>()
            .trim()
            .to_owned()
    } else {
        mapped.collect()
    };
    (!v.is_empty()).then_some(v)
}

/// A parameter value: any Unicode, or long printable text (to reach the description limit).
fn param_text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => wild_text(),
        1 => "[ -~]{200,400}",
    ]
}

/// Any Unicode, with the characters that matter here more likely than at random.
fn wild_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            4 => any::<char>(),
            4 => proptest::char::range(' ', '~'),
            1 => select(vec!['"', '\\', '=', '\r', '\n', '\t', '\0', '\u{7f}', ' ', ',']),
        ],
        0..300,
    )
    .prop_map(|cs| cs.into_iter().collect())
}

proptest! {
    #![proptest_config(config(CASES))]

    /// Any parameters, any values: a valid, one-line header value whose parameters read back
    /// as the documented sanitization of what was given, in the order given.
    #[test]
    fn challenge_params_are_sanitized_and_read_back(
        params in prop::collection::vec((select(PARAM_NAMES.to_vec()), param_text()), 0..6),
    ) {
        let mut c = Challenge::bearer();
        let mut expected = Vec::new();
        for (name, value) in &params {
            c = c.param(name, value);
            if let Some(v) = sanitized(name, value) {
                expected.push((name.to_string(), v));
            }
        }
        let value = c.to_header_value();
        prop_assert_eq!(value.to_str().unwrap(), c.to_string());
        prop_assert!(value.as_bytes().iter().all(|&b| (b' '..=b'~').contains(&b)));
        let parsed = parse_challenges(value.to_str().unwrap()).map_err(TestCaseError::fail)?;
        if expected.is_empty() {
            prop_assert_eq!(value.to_str().unwrap(), "Bearer");
        } else {
            prop_assert_eq!(parsed, vec![Parsed { scheme: "Bearer".into(), params: expected }]);
        }
        // Deterministic.
        prop_assert_eq!(c.clone().to_header_value(), value);
    }

    /// The recommended challenge with any resource URL, scope set, error and description: both
    /// SDK clients read back exactly what was configured, whatever the description says.
    #[test]
    fn challenges_read_back_by_sdk_clients(
        url in url_parts(),
        scopes in prop::collection::vec(scope_token(), 0..5),
        error in prop::option::of(select(vec!["invalid_request", "invalid_token", "insufficient_scope"])),
        description in param_text(),
    ) {
        let resource = ResourceUrl::parse(&url.written()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let rm = resource.metadata_url();
        let set = ScopeSet::try_from_iter(&scopes).unwrap();
        let mut c = Challenge::bearer().param("resource_metadata", &rm);
        if !set.is_empty() {
            c = c.param("scope", set.to_string());
        }
        if let Some(e) = error {
            c = c.param("error", e);
        }
        c = c.param("error_description", &description);
        let value = c.to_header_value();
        let text = value.to_str().unwrap();
        let parsed = check_field(&value)?;
        let scope = (!set.is_empty()).then(|| set.to_string());
        let desc = sanitized("error_description", &description);
        prop_assert_eq!(parsed.get("resource_metadata"), Some(rm.as_str()));
        prop_assert_eq!(parsed.get("scope"), scope.as_deref());
        prop_assert_eq!(parsed.get("error"), error);
        prop_assert_eq!(parsed.get("error_description"), desc.as_deref());
        let mut configured = vec![url.written()];
        configured.extend(scopes.iter().cloned());
        if hazard_free(&configured.iter().map(String::as_str).collect::<Vec<_>>()) {
            let want = ClientView {
                resource_metadata: Some(rm.clone()),
                scope: scope.clone(),
                error: error.map(str::to_owned),
                error_description: desc.clone(),
            };
            prop_assert_eq!(ts_client(text), want.clone(), "{}", text);
            prop_assert_eq!(py_client(401, text), want, "{}", text);
            prop_assert_eq!(ts_legacy_resource_metadata(text), Some(rm));
        }
    }
}

// =============================================================================================
// Part 1 and 3: challenges and metadata of a real `AuthLayer`, driven with `oneshot`
// =============================================================================================

const GOOD: &str = "Z29vZC10b2tlbi1mb3ItcHJvcGVydGllcw";
const USER: &str = "alice";
const PASSWORD: &str = "correct horse battery staple";

/// Where the challenge's `scope` comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ScopeSource {
    None,
    Required,
    ChallengeScope,
    ScopesSupported,
}

/// What the request presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Presented {
    Nothing,
    WrongBearer,
    MalformedBearer,
    GoodBearer,
    WrongBasic,
    OtherScheme,
}

#[derive(Debug, Clone)]
struct LayerCase {
    realm: String,
    metadata: Option<UrlParts>,
    scopes: Vec<String>,
    source: ScopeSource,
    descriptions: bool,
    basic: bool,
    presented: Presented,
}

fn layer_case() -> impl Strategy<Value = LayerCase> {
    (
        realm(),
        prop::option::of(url_parts()),
        prop::collection::vec(scope_token(), 1..4),
        select(vec![
            ScopeSource::None,
            ScopeSource::Required,
            ScopeSource::ChallengeScope,
            ScopeSource::ScopesSupported,
        ]),
        any::<bool>(),
        any::<bool>(),
        select(vec![
            Presented::Nothing,
            Presented::WrongBearer,
            Presented::MalformedBearer,
            Presented::GoodBearer,
            Presented::WrongBasic,
            Presented::OtherScheme,
        ]),
    )
        .prop_map(
            |(realm, metadata, scopes, source, descriptions, basic, presented)| LayerCase {
                realm,
                // scopes_supported lives in the metadata document.
                source: if source == ScopeSource::ScopesSupported && metadata.is_none() {
                    ScopeSource::ChallengeScope
                } else {
                    source
                },
                metadata,
                scopes,
                descriptions,
                basic,
                presented,
            },
        )
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn metadata_doc(resource: ResourceUrl, scopes: &[String]) -> ProtectedResourceMetadata {
    ProtectedResourceMetadata::builder(resource)
        .authorization_server("https://auth.example.com")
        .scopes_supported(scopes.iter().cloned())
        .build()
        .unwrap()
}

/// What came back from the layer.
struct Answer {
    status: StatusCode,
    challenges: Vec<http::HeaderValue>,
    headers: http::HeaderMap,
    body: bytes::Bytes,
}

async fn call<V: Verifier>(layer: &AuthLayer<V>, req: Request<String>) -> Answer {
    let inner = tower::service_fn(|_req: Request<String>| async {
        Ok::<_, Infallible>(Response::new(String::from("inner")))
    });
    let res = layer.layer(inner).oneshot(req).await.unwrap();
    let (parts, body) = res.into_parts();
    Answer {
        status: parts.status,
        challenges: parts
            .headers
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .cloned()
            .collect(),
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes(),
    }
}

proptest! {
    #![proptest_config(config(CASES))]

    /// A real layer, any configuration and any refusal: every challenge field is valid and
    /// in the documented order, the Bearer one comes first, and the parameters read back —
    /// by the strict parser always, by the SDK ports whenever no configured value contains a
    /// parameter name and `=`.
    #[test]
    fn layer_challenges_read_back(case in layer_case()) {
        let set = ScopeSet::try_from_iter(&case.scopes).unwrap();
        let bearer = StaticBearer::new([("ci", GOOD)]).unwrap();
        let verifier: Box<dyn Verifier> = if case.basic {
            Box::new(bearer.or(BasicAuth::builder().user(USER, PASSWORD).build().unwrap()))
        } else {
            Box::new(bearer)
        };
        let mut b = AuthLayer::builder(verifier)
            .realm(case.realm.clone())
            .error_descriptions(case.descriptions);
        let mut rm = None;
        if let Some(url) = &case.metadata {
            let resource = ResourceUrl::parse(&url.written()).unwrap();
            let doc = metadata_doc(
                resource,
                if case.source == ScopeSource::ScopesSupported { &case.scopes } else { &[] },
            );
            rm = Some(url.metadata_url());
            b = b.metadata(doc);
        }
        match case.source {
            ScopeSource::Required => {
                b = b.required_scopes(ScopeRequirement::all_of(&case.scopes).unwrap())
            }
            ScopeSource::ChallengeScope => b = b.challenge_scope(set.clone()),
            ScopeSource::None | ScopeSource::ScopesSupported => {}
        }
        let layer = b.build().map_err(|e| TestCaseError::fail(e.to_string()))?;

        let answer = runtime().block_on(call(&layer, request_for(&case)));

        // What the documentation promises.
        let required = case.source == ScopeSource::Required;
        let (status, error, description) = match case.presented {
            Presented::Nothing | Presented::OtherScheme => (401, None, None),
            Presented::WrongBearer => {
                (401, Some("invalid_token"), Some(Invalid::UnknownToken.public_description()))
            }
            Presented::MalformedBearer => {
                (400, Some("invalid_request"), Some("Bearer token has invalid characters"))
            }
            Presented::GoodBearer if required => (
                403,
                Some("insufficient_scope"),
                Some("The access token lacks a scope this operation requires"),
            ),
            Presented::GoodBearer => (200, None, None),
            // Basic accepted: a wrong password leaves the Bearer challenge without an error;
            // Basic not accepted: no credentials at all.
            Presented::WrongBasic => (401, None, None),
        };
        prop_assert_eq!(answer.status.as_u16(), status);
        if status == 200 {
            prop_assert!(answer.challenges.is_empty());
            prop_assert_eq!(&answer.body[..], b"inner");
            return Ok(());
        }
        prop_assert_eq!(answer.headers.get("cache-control").unwrap(), "no-store");
        let scope = match case.source {
            ScopeSource::None => None,
            _ => Some(set.to_string()),
        };
        let description = description.filter(|_| case.descriptions);
        let basic_line = case.basic && status != 403;
        prop_assert_eq!(answer.challenges.len(), 1 + usize::from(basic_line));

        let bearer = check_field(&answer.challenges[0])?;
        prop_assert_eq!(&bearer.scheme, "Bearer");
        prop_assert_eq!(bearer.get("realm"), rm.is_none().then_some(case.realm.as_str()));
        prop_assert_eq!(bearer.get("resource_metadata"), rm.as_deref());
        prop_assert_eq!(bearer.get("scope"), scope.as_deref());
        prop_assert_eq!(bearer.get("error"), error);
        prop_assert_eq!(bearer.get("error_description"), description);
        if basic_line {
            let basic = check_field(&answer.challenges[1])?;
            prop_assert_eq!(
                basic,
                Parsed {
                    scheme: "Basic".into(),
                    params: vec![
                        ("realm".into(), case.realm.clone()),
                        ("charset".into(), "UTF-8".into()),
                    ],
                }
            );
        }
        // The JSON body says the same.
        let body: Value = serde_json::from_slice(&answer.body).unwrap();
        let body_error = error.unwrap_or("unauthorized");
        prop_assert_eq!(&body["error"], body_error);
        prop_assert_eq!(body.get("error_description").and_then(Value::as_str), description.filter(|_| error.is_some()));

        // The SDK clients, on the joined header.
        let joined = answer
            .challenges
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect::<Vec<_>>()
            .join(", ");
        let mut configured: Vec<&str> = vec![case.realm.as_str()];
        configured.extend(case.scopes.iter().map(String::as_str));
        let written = case.metadata.as_ref().map(UrlParts::written);
        configured.extend(written.as_deref());
        if hazard_free(&configured) {
            let want = ClientView {
                resource_metadata: rm.clone(),
                scope: scope.clone(),
                error: error.map(str::to_owned),
                error_description: description.map(str::to_owned),
            };
            prop_assert_eq!(ts_client(&joined), want.clone(), "{}", joined);
            prop_assert_eq!(ts_legacy_resource_metadata(&joined), rm.clone(), "{}", joined);
            let py_want = ClientView {
                resource_metadata: want.resource_metadata.clone().filter(|_| status == 401),
                ..want
            };
            prop_assert_eq!(py_client(status, &joined), py_want, "{}", joined);
        }

        // Deterministic: the same request gets the same header bytes.
        let again = runtime().block_on(call(&layer, request_for(&case)));
        prop_assert_eq!(again.challenges, answer.challenges);
    }

    /// Any resource URL: the metadata URL is the RFC 9728 path-inserted one, the document's
    /// `resource` is the canonical URL exactly, the layer serves the document at that URL, and
    /// its 401 points there; a TypeScript client configured with the URL as written accepts the
    /// document's `resource`.
    #[test]
    fn metadata_is_served_where_challenges_point(url in url_parts(), slash in any::<bool>()) {
        let resource = ResourceUrl::parse(&url.written()).unwrap();
        prop_assert_eq!(resource.as_str(), url.canonical());
        prop_assert_eq!(resource.metadata_url(), url.metadata_url());
        let doc = metadata_doc(resource.clone(), &[]);
        prop_assert_eq!(doc.url(), Some(url.metadata_url()));
        let json = serde_json::to_value(&doc).unwrap();
        prop_assert_eq!(&json["resource"], &Value::from(url.canonical()));
        prop_assert!(ts_check_resource_allowed(&url.written(), &url.canonical()));

        let layer = AuthLayer::builder(StaticBearer::new([("ci", GOOD)]).unwrap())
            .metadata(doc)
            .build()
            .unwrap();
        let metadata_url: http::Uri = url.metadata_url().parse().unwrap();
        let mut target = metadata_url.path_and_query().unwrap().as_str().to_owned();
        if slash && metadata_url.query().is_none() && !target.ends_with('/') {
            // Documented: served with or without a trailing slash.
            target.push('/');
        }
        let rt = runtime();
        let got = rt.block_on(call(&layer, Request::get(&target).body(String::new()).unwrap()));
        prop_assert_eq!(got.status, StatusCode::OK, "GET {}", target);
        prop_assert!(got.challenges.is_empty());
        let served: Value = serde_json::from_slice(&got.body).unwrap();
        prop_assert_eq!(&served, &json);

        let path = if url.path().is_empty() { "/".to_owned() } else { url.path() };
        let refused = rt.block_on(call(&layer, Request::post(path).body(String::new()).unwrap()));
        prop_assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
        let bearer = check_field(&refused.challenges[0])?;
        let metadata_url = url.metadata_url();
        prop_assert_eq!(bearer.get("resource_metadata"), Some(metadata_url.as_str()));
        if hazard_free(&[url.written().as_str()]) {
            let joined = refused.challenges[0].to_str().unwrap();
            prop_assert_eq!(ts_client(joined).resource_metadata, Some(url.metadata_url()));
            prop_assert_eq!(py_client(401, joined).resource_metadata, Some(url.metadata_url()));
        }
    }
}

/// The request of a case: `POST /mcp` with what the case presents.
fn request_for(case: &LayerCase) -> Request<String> {
    let value = match case.presented {
        Presented::Nothing => None,
        Presented::WrongBearer => Some("Bearer d3JvbmctdG9rZW4tMDEyMzQ1Njc4OQ".to_owned()),
        Presented::MalformedBearer => Some("Bearer a,b".to_owned()),
        Presented::GoodBearer => Some(format!("Bearer {GOOD}")),
        Presented::WrongBasic => Some(format!(
            "Basic {}",
            STANDARD.encode(format!("{USER}:wrong"))
        )),
        Presented::OtherScheme => Some("Digest x=1".to_owned()),
    };
    let mut req = Request::post("/mcp");
    if let Some(v) = value {
        req = req.header(AUTHORIZATION, v);
    }
    req.body(String::new()).unwrap()
}

/// The TypeScript SDK's `checkResourceAllowed(requestedResource, configuredResource)`: equal
/// origins (`URL.origin`: lowercase scheme and host, default port dropped), and the requested
/// path + `/` starts with the configured path + `/`. (WHATWG parsing approximated for the URLs
/// generated here: the path is taken as written, `""` read as `/`.)
fn ts_check_resource_allowed(requested: &str, configured: &str) -> bool {
    fn parts(u: &str) -> Option<(String, String)> {
        let uri: http::Uri = u.parse().ok()?;
        let scheme = uri.scheme_str()?.to_ascii_lowercase();
        let authority = uri.authority()?;
        let default = if scheme == "https" { 443 } else { 80 };
        let port = authority
            .port_u16()
            .filter(|p| *p != default)
            .map_or(String::new(), |p| format!(":{p}"));
        let origin = format!("{scheme}://{}{port}", authority.host().to_ascii_lowercase());
        let path = match uri.path() {
            "" => "/".to_owned(),
            p => p.to_owned(),
        };
        Some((origin, path))
    }
    let (Some((ro, rp)), Some((co, cp))) = (parts(requested), parts(configured)) else {
        return false;
    };
    let slash = |p: String| if p.ends_with('/') { p } else { p + "/" };
    ro == co && slash(rp).starts_with(&slash(cp))
}

/// Found by `challenges_read_back_by_sdk_clients` / `layer_challenges_read_back` when the
/// generators injected parameter names into configured values: the SDK clients read a
/// parameter out of another parameter's value. Such configurations are now refused.
#[test]
fn param_names_inside_configured_values_are_refused() {
    assert!(matches!(
        ResourceUrl::parse("https://h.example/mcp?scope=admin"),
        Err(mcp_server_auth::resource::ResourceUrlError::ChallengeParam(
            _
        ))
    ));
    assert!(ResourceUrl::parse("https://h.example/resource_metadata=x/mcp").is_err());
    assert!(matches!(
        AuthLayer::builder(StaticBearer::new([("ci", GOOD)]).unwrap())
            .realm("x error=oops")
            .build(),
        Err(mcp_server_auth::BuildError::Realm)
    ));
    assert!(ScopeRequirement::all_of(["a:error=x"]).is_err());
    assert!(ScopeSet::parse("ok scope=x").is_err());
    // `=` elsewhere stays allowed.
    assert!(ResourceUrl::parse("https://h.example/mcp?tenant=a").is_ok());
    assert!(ScopeSet::parse("role=admin").is_ok());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// A realm, scope or resource URL with a parameter name and `=` anywhere inside is refused
    /// at configuration, whatever surrounds it.
    #[test]
    fn hazardous_configuration(
        a in "[!#-\\[\\]-~]{0,6}",
        n in needle(),
        b in "[!#-\\[\\]-~]{0,6}",
        seg in "[A-Za-z0-9]{0,6}",
    ) {
        let token = format!("{a}{n}{b}");
        prop_assert!(ScopeSet::parse(&token).is_err());
        prop_assert!(ScopeRequirement::all_of([token.as_str()]).is_err());
        let realm = format!("r{token}");
        prop_assert!(
            AuthLayer::builder(StaticBearer::new([("ci", GOOD)]).unwrap())
                .realm(realm)
                .build()
                .is_err()
        );
        let path = format!("https://h.example/{seg}{n}x");
        prop_assert!(ResourceUrl::parse(&path).is_err(), "{}", path);
        let query = format!("https://h.example/mcp?{seg}{n}x");
        prop_assert!(ResourceUrl::parse(&query).is_err(), "{}", query);
    }
}

// =============================================================================================
// Part 2: scope sets, resource URLs and audiences
// =============================================================================================

/// A string with at least one character that no scope token may have (besides space, which
/// separates a list).
fn bad_token() -> impl Strategy<Value = String> {
    (
        "[!#-\\[\\]-~]{0,5}",
        prop_oneof![
            Just('"'),
            Just('\\'),
            Just('\t'),
            Just('\u{7f}'),
            any::<char>().prop_filter("not a scope character or space", |c| {
                !(*c == '!' || ('#'..='[').contains(c) || (']'..='~').contains(c) || *c == ' ')
            }),
        ],
        "[!#-\\[\\]-~]{0,5}",
    )
        .prop_map(|(a, c, b)| format!("{a}{c}{b}"))
}

proptest! {
    #![proptest_config(config(CASES))]

    /// `ScopeSet::parse(set.to_string()) == set`; the display is sorted, deduplicated and
    /// single-spaced; runs of spaces parse the same.
    #[test]
    fn scope_sets_round_trip(tokens in prop::collection::vec(scope_token(), 0..8), gaps in prop::collection::vec(1usize..4, 8)) {
        let set = ScopeSet::try_from_iter(&tokens).unwrap();
        let text = set.to_string();
        prop_assert_eq!(ScopeSet::parse(&text).unwrap(), set.clone());
        let listed: Vec<&str> = set.iter().collect();
        prop_assert!(listed.windows(2).all(|w| w[0] < w[1]), "sorted and unique: {}", text);
        let distinct: BTreeSet<&str> = tokens.iter().map(String::as_str).collect();
        prop_assert_eq!(listed, distinct.into_iter().collect::<Vec<_>>());
        prop_assert!(!text.contains("  ") && !text.starts_with(' ') && !text.ends_with(' '));
        // Any spacing between the same tokens.
        let spaced: String = tokens
            .iter()
            .zip(gaps.iter().cycle())
            .map(|(t, g)| format!("{}{t}", " ".repeat(*g)))
            .collect();
        prop_assert_eq!(ScopeSet::parse(&spaced).unwrap(), set.clone());
        for t in &tokens {
            prop_assert!(set.contains(t));
        }
        let with_offline = format!("{text} offline_access");
        let refused = ScopeSet::parse(&with_offline).unwrap().refuse_offline_access().is_err();
        prop_assert!(refused);
    }

    /// A token with a character outside RFC 6749 `scope-token` is refused, alone or in a list,
    /// and `is_scope_token` is exactly the grammar.
    #[test]
    fn invalid_scope_tokens_are_refused(
        good in prop::collection::vec(scope_token(), 0..4),
        bad in bad_token(),
        any_text in wild_text(),
    ) {
        prop_assert_eq!(
            ScopeSet::try_from_iter(good.iter().chain([&bad])),
            Err(ScopeError::Invalid(bad.clone()))
        );
        let list = format!("{} {bad}", good.join(" "));
        let refused = ScopeSet::parse(&list).is_err();
        prop_assert!(refused);
        prop_assert!(ScopeRequirement::all_of([&bad]).is_err());
        prop_assert_eq!(ScopeSet::from_iter_lossy(good.iter().chain([&bad])), ScopeSet::try_from_iter(&good).unwrap());
        let grammar = !any_text.is_empty()
            && any_text.chars().all(|c| c == '!' || ('#'..='[').contains(&c) || (']'..='~').contains(&c));
        prop_assert_eq!(is_scope_token(&any_text), grammar);
    }

    /// The canonical form: lowercase scheme and host, no default port, a bare origin without
    /// its trailing slash; parsing it again gives it back; case and the default port do not
    /// change equality or `matches`; a path's trailing slash does.
    #[test]
    fn resource_urls_canonicalize(url in url_parts(), other_mask in any::<u64>()) {
        let written = url.written();
        let r = ResourceUrl::parse(&written).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(r.as_str(), url.canonical());
        prop_assert_eq!(r.to_string(), url.canonical());
        let again = ResourceUrl::parse(r.as_str()).unwrap();
        prop_assert_eq!(again.as_str(), r.as_str());
        prop_assert_eq!(&again, &r);
        prop_assert_eq!(r.origin(), url.origin());
        prop_assert_eq!(r.is_loopback(), url.is_loopback());
        prop_assert_eq!(r.scheme(), if url.https { "https" } else { "http" });
        // Another spelling of the same URL: other letter case, default port spelled or not.
        let variant = UrlParts {
            case_mask: other_mask,
            port: match url.port {
                None => Some(None),
                Some(None) => None,
                p => p,
            },
            ..url.clone()
        };
        let v = ResourceUrl::parse(&variant.written()).unwrap();
        prop_assert_eq!(&v, &r);
        prop_assert!(r.matches(&variant.written()));
        prop_assert!(r.matches(&written));
        // Trailing slash: tolerated on a bare origin only.
        let toggled = UrlParts { trailing_slash: !url.trailing_slash, ..url.clone() };
        if url.segments.is_empty() {
            prop_assert!(r.matches(&toggled.written()));
            prop_assert_eq!(&ResourceUrl::parse(&toggled.written()).unwrap(), &r);
        } else {
            prop_assert!(!r.matches(&toggled.written()));
            prop_assert!(ResourceUrl::parse(&toggled.written()).unwrap() != r);
        }
        // Another path is another resource.
        let longer = UrlParts { segments: [url.segments.clone(), vec!["x".into()]].concat(), ..url.clone() };
        prop_assert!(!r.matches(&longer.written()));
        // Plain http only on loopback.
        let http = UrlParts { https: false, port: None, ..url.clone() };
        let parsed = ResourceUrl::parse(&http.written());
        if url.is_loopback() {
            prop_assert!(parsed.is_ok());
        } else {
            prop_assert!(matches!(parsed, Err(ResourceUrlError::InsecureHttp(_))), "{:?}", parsed);
            prop_assert!(ResourceUrl::parse_allowing_plain_http(&http.written()).is_ok());
        }
    }
}

/// A test-only HMAC secret.
const HMAC: &[u8] = b"property-test-hmac-secret-0123456789abcdef";

fn hs256(claims: &Value) -> String {
    // Signing needs jsonwebtoken's crypto provider, which building a verifier installs.
    mcp_server_auth::jwt::install_crypto_provider().unwrap();
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    jsonwebtoken::encode(
        &header,
        claims,
        &jsonwebtoken::EncodingKey::from_secret(HMAC),
    )
    .unwrap()
}

proptest! {
    #![proptest_config(config(CASES))]

    /// The JWT verifier's `aud` check agrees with `ResourceUrl::matches`: any spelling of the
    /// configured URL (case, default port, a bare origin's trailing slash) is accepted, and a
    /// different path, a path with a trailing slash toggled, or a path in another case is
    /// refused as `WrongAudience`.
    #[test]
    fn jwt_audience_matches_resource_spellings(url in url_parts(), mask in any::<u64>(), which in 0u8..4, as_array in any::<bool>()) {
        let resource = ResourceUrl::parse(&url.written()).unwrap();
        let verifier = JwtVerifier::builder(resource.clone())
            .issuer(Issuer::with_keys(
                "https://issuer.example",
                KeySet::new().add_hmac_secret(None, Algorithm::HS256, HMAC).unwrap(),
            ))
            .build()
            .unwrap();
        let spelled = UrlParts {
            case_mask: mask,
            port: match url.port { None => Some(None), Some(None) => None, p => p },
            trailing_slash: if url.segments.is_empty() { !url.trailing_slash } else { url.trailing_slash },
            ..url.clone()
        };
        let (aud, accepted) = match which {
            0 => (spelled.written(), true),
            1 => (
                UrlParts { segments: [url.segments.clone(), vec!["other".into()]].concat(), ..url.clone() }.written(),
                false,
            ),
            2 if !url.segments.is_empty() => (
                UrlParts { trailing_slash: !url.trailing_slash, ..url.clone() }.written(),
                false,
            ),
            3 if url.segments.iter().any(|s| s.bytes().any(|b| b.is_ascii_lowercase())) => (
                format!("{}{}{}", url.origin(), url.path().to_ascii_uppercase(), url.query_part()),
                false,
            ),
            _ => (url.canonical(), true),
        };
        prop_assert_eq!(resource.matches(&aud), accepted, "{}", aud);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let aud_claim = if as_array { json!(["https://unrelated.example", aud]) } else { json!(aud) };
        let token = hs256(&json!({
            "iss": "https://issuer.example",
            "sub": "someone",
            "aud": aud_claim,
            "exp": now + 600,
            "iat": now,
        }));
        let got = runtime().block_on(verifier.verify_token(&token));
        if accepted {
            prop_assert!(got.is_ok(), "{:?} for aud {}", got, aud);
        } else {
            prop_assert_eq!(got.unwrap_err(), Rejection::Invalid(Invalid::WrongAudience));
        }
    }
}

#[test]
fn invalid_realms_are_refused() {
    for realm in ["", "a\"b", "a\\b", "caf\u{e9}", "tab\there", "new\nline"] {
        let built = AuthLayer::builder(StaticBearer::new([("ci", GOOD)]).unwrap())
            .realm(realm)
            .build();
        assert_eq!(built.err(), Some(BuildError::Realm), "{realm:?}");
    }
}

proptest! {
    #![proptest_config(config(CASES))]

    /// Any realm: the layer accepts exactly the non-empty printable-ASCII realms without `"` and
    /// `\`, and then sends each one unchanged in the Basic challenge and, without metadata, in
    /// the Bearer challenge.
    #[test]
    fn realms_are_validated_and_sent_unchanged(
        realm in prop_oneof![wild_text(), realm(), "[ -~]{0,12}"],
    ) {
        let valid = !realm.is_empty()
            && realm.bytes().all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\');
        let verifier = StaticBearer::new([("ci", GOOD)])
            .unwrap()
            .or(BasicAuth::builder().user(USER, PASSWORD).build().unwrap());
        let built = AuthLayer::builder(verifier).realm(realm.clone()).build();
        prop_assert_eq!(built.is_ok(), valid, "{:?}", built.as_ref().err());
        let Ok(layer) = built else {
            prop_assert_eq!(built.err(), Some(BuildError::Realm));
            return Ok(());
        };
        let answer = runtime().block_on(call(&layer, Request::post("/mcp").body(String::new()).unwrap()));
        prop_assert_eq!(answer.challenges.len(), 2);
        for field in &answer.challenges {
            let c = check_field(field)?;
            prop_assert_eq!(c.get("realm"), Some(realm.as_str()));
        }
    }
}

// =============================================================================================
// Part 4: MCP operations
// =============================================================================================

/// JSON text of `v` with some characters of strings written as `\u` escapes (surrogate pairs
/// beyond the BMP), as a client may send them.
fn escaped_json(v: &Value, mask: u64) -> String {
    fn go(v: &Value, mask: u64, n: &mut u32, out: &mut String) {
        match v {
            Value::String(s) => {
                out.push('"');
                for c in s.chars() {
                    *n += 1;
                    let plain = serde_json::to_string(&c.to_string()).unwrap();
                    if mask >> (*n % 64) & 1 == 1 {
                        let mut units = [0u16; 2];
                        for u in c.encode_utf16(&mut units) {
                            out.push_str(&format!("\\u{u:04x}"));
                        }
                    } else {
                        out.push_str(&plain[1..plain.len() - 1]);
                    }
                }
                out.push('"');
            }
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    go(item, mask, n, out);
                }
                out.push(']');
            }
            Value::Object(map) => {
                out.push('{');
                for (i, (k, item)) in map.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    go(&Value::String(k.clone()), mask, n, out);
                    out.push(':');
                    go(item, mask, n, out);
                }
                out.push('}');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut out = String::new();
    go(v, mask, &mut 0, &mut out);
    out
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        wild_text().prop_map(Value::from),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A JSON-RPC message: mostly well-formed requests, notifications and responses, sometimes
/// with a member of the wrong type.
fn message() -> impl Strategy<Value = Value> {
    let method = prop_oneof![
        3 => select(vec![
            "tools/call", "prompts/get", "resources/read", "tools/list", "initialize",
            "notifications/initialized", "resources/subscribe", "completion/complete",
        ])
        .prop_map(Value::from),
        1 => wild_text().prop_map(Value::from),
        1 => json_leaf(),
    ];
    let name = prop_oneof![4 => wild_text().prop_map(Value::from), 1 => json_leaf()];
    (
        prop::option::weighted(0.9, method),
        prop::option::of(prop_oneof![
            any::<i64>().prop_map(Value::from),
            wild_text().prop_map(Value::from),
            Just(Value::Null),
        ]),
        prop::option::weighted(
            0.9,
            (
                select(vec!["name", "uri", "other"]),
                name,
                json_value(),
                any::<bool>(),
            ),
        ),
        any::<bool>(),
    )
        .prop_map(|(method, id, params, response)| {
            let mut m = Map::new();
            m.insert("jsonrpc".into(), "2.0".into());
            if let Some(id) = id {
                m.insert("id".into(), id);
            }
            match method {
                Some(method) => {
                    m.insert("method".into(), method);
                }
                None if response => {
                    m.insert("result".into(), json!({}));
                }
                None => {}
            }
            if let Some((field, name, arguments, as_object)) = params {
                let p = json!({ field: name, "arguments": arguments });
                m.insert("params".into(), if as_object { p } else { json!([p]) });
            }
            Value::Object(m)
        })
}

/// What `from_body` should make of one message, from `serde_json`'s reading of it.
fn expected_operation(msg: &Value) -> Result<Option<Operation>, ()> {
    let Value::Object(m) = msg else {
        return Err(());
    };
    let Some(method) = m.get("method") else {
        return Ok(None);
    };
    let method = method.as_str().ok_or(())?;
    if method == "completion/complete" {
        // The prompt or resource of `params.ref`, one of the two types MCP defines.
        let reference = m
            .get("params")
            .and_then(Value::as_object)
            .and_then(|p| p.get("ref"))
            .and_then(Value::as_object)
            .ok_or(())?;
        let text = |f: &str| reference.get(f).and_then(Value::as_str).ok_or(());
        return match text("type")? {
            "ref/prompt" => Ok(Some(Operation::completion(NameKind::Prompt, text("name")?))),
            "ref/resource" => Ok(Some(Operation::completion(
                NameKind::Resource,
                text("uri")?,
            ))),
            _ => Err(()),
        };
    }
    let name = match operation::name_field(method) {
        None => None,
        Some(field) => Some(
            m.get("params")
                .and_then(Value::as_object)
                .and_then(|p| p.get(field))
                .and_then(Value::as_str)
                .ok_or(())?
                .to_owned(),
        ),
    };
    Ok(Some(Operation::new(method, name)))
}

proptest! {
    #![proptest_config(config(CASES))]

    /// The Base64 sentinel form of `Mcp-Name` round-trips any Unicode name, padded or not;
    /// a value outside the sentinel form is the name itself.
    #[test]
    fn mcp_name_sentinel_round_trips(name in wild_text(), plain in "[ -~]{0,40}") {
        let padded = format!("=?base64?{}?=", STANDARD.encode(&name));
        prop_assert_eq!(operation::decode_name(&padded).unwrap(), name.clone());
        let unpadded = format!("=?base64?{}?=", STANDARD_NO_PAD.encode(&name));
        prop_assert_eq!(operation::decode_name(&unpadded).unwrap(), name.clone());
        if !(plain.starts_with("=?base64?") && plain.ends_with("?=")) {
            prop_assert_eq!(operation::decode_name(&plain).unwrap(), plain.clone());
        }
        // Through the headers, as a client sends them.
        let mut headers = http::HeaderMap::new();
        headers.insert(operation::MCP_METHOD, "tools/call".parse().unwrap());
        headers.insert(operation::MCP_NAME, padded.parse().unwrap());
        prop_assert_eq!(
            operation::from_headers(&headers).unwrap(),
            Some(Operation::tool(name))
        );
    }

    /// `from_body` never panics, whatever the bytes; mutations of valid messages included.
    #[test]
    fn from_body_never_panics(
        bytes in prop::collection::vec(any::<u8>(), 0..512),
        msg in message(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 0..6),
    ) {
        let _ = operation::from_body(&bytes);
        let mut body = serde_json::to_vec(&msg).unwrap();
        for (at, byte, kind) in edits {
            if body.is_empty() {
                body.push(byte);
                continue;
            }
            let i = at.index(body.len());
            match kind {
                0 => body[i] = byte,
                1 => body.insert(i, byte),
                _ => {
                    body.remove(i);
                }
            }
        }
        let _ = operation::from_body(&body);
    }

    /// On generated JSON-RPC messages and batches, `from_body` reads what `serde_json` reads:
    /// the operations in order, the single message's `id`, and an error exactly when some
    /// message is not a readable JSON-RPC message.
    #[test]
    fn from_body_agrees_with_serde_json(
        msgs in prop::collection::vec(message(), 1..5),
        batch in any::<bool>(),
        mask in any::<u64>(),
        ws in "[ \t\r\n]{0,3}",
    ) {
        let (doc, msgs) = if batch || msgs.len() > 1 {
            (Value::Array(msgs.clone()), msgs)
        } else {
            (msgs[0].clone(), msgs)
        };
        let body = format!("{ws}{}{ws}", escaped_json(&doc, mask));
        // The escaped text is the same JSON.
        prop_assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), doc.clone());
        let expected: Result<Vec<Option<Operation>>, ()> = msgs.iter().map(expected_operation).collect();
        let got = operation::from_body(body.as_bytes());
        match (expected, got) {
            (Ok(ops), Ok(got)) => {
                let ops: Vec<Operation> = ops.into_iter().flatten().collect();
                prop_assert_eq!(got.operations(), &ops[..]);
                prop_assert_eq!(got.is_batch(), doc.is_array());
                let id = got.id().map(|raw| serde_json::from_str::<Value>(raw.get()).unwrap());
                // `"id": null` reads as no id (and is answered with `null` all the same).
                let want_id = if doc.is_array() { None } else { doc.get("id").filter(|v| !v.is_null()).cloned() };
                prop_assert_eq!(id, want_id);
            }
            (Err(()), Err(e)) => prop_assert!(matches!(e, OperationError::NotJsonRpc(_)), "{:?}", e),
            (want, got) => prop_assert!(false, "expected {:?}, got {:?} for {}", want, got, body),
        }
    }
}

// =============================================================================================
// 5. Recall changes no answer
// =============================================================================================

/// `V` with the default `recall` (always `Unsure`): the layer takes the whole way every time.
struct WithoutRecall<V>(V);

impl<V: Verifier> Verifier for WithoutRecall<V> {
    fn schemes(&self) -> mcp_server_auth::verifier::Schemes {
        self.0.schemes()
    }
    fn verify(
        &self,
        request: &mcp_server_auth::verifier::AuthRequest<'_>,
    ) -> mcp_server_auth::verifier::Verdict {
        self.0.verify(request)
    }
}

fn remembering() -> impl Verifier {
    StaticBearer::new([("ci", GOOD)])
        .unwrap()
        .or(BasicAuth::builder().user(USER, PASSWORD).build().unwrap())
}

/// One `Authorization` field: the good token, or something near it, in any spelling.
fn authorization_field() -> impl Strategy<Value = Vec<u8>> {
    let scheme = select(vec![
        "Bearer", "bearer", "BEARER", "bEaReR", "Bearer1", "Beare", "Basic", "DPoP", "",
    ]);
    let token = prop_oneof![
        Just(GOOD.to_owned()),
        Just(format!("{GOOD}=")),
        Just(format!("{GOOD} x")),
        Just(GOOD[..GOOD.len() - 1].to_owned()),
        "[A-Za-z0-9._~+/=-]{0,40}",
        Just(String::new()),
    ];
    let space = select(vec!["", " ", "  ", "\t", " \t "]);
    (
        space.clone(),
        scheme,
        select(vec![" ", "  ", "\t", ""]),
        token,
        space,
        any::<Option<u8>>(),
    )
        .prop_map(|(lead, scheme, sep, token, trail, byte)| {
            let mut v = format!("{lead}{scheme}{sep}{token}{trail}").into_bytes();
            if let Some(b) = byte {
                // Now and then a byte anywhere: non-ASCII, control, or anything.
                let at = usize::from(b) % (v.len() + 1);
                v.insert(at, b);
            }
            v
        })
}

proptest! {
    #![proptest_config(config(CASES))]

    #[test]
    fn recall_changes_no_answer(
        fields in proptest::collection::vec(authorization_field(), 0..3),
        limit in select(vec![64usize, 8192]),
    ) {
        let mut builder = Request::builder().method("POST").uri("/mcp");
        for f in &fields {
            let Ok(v) = http::HeaderValue::from_bytes(f) else {
                return Ok(());
            };
            builder = builder.header(AUTHORIZATION, v);
        }
        let req = || builder_clone(&builder);
        let with = AuthLayer::builder(remembering()).max_header_bytes(limit).build().unwrap();
        let without = AuthLayer::builder(WithoutRecall(remembering()))
            .max_header_bytes(limit)
            .build()
            .unwrap();
        let rt = runtime();
        // Twice each: the second time, whatever was accepted is remembered.
        for _ in 0..2 {
            let a = rt.block_on(call(&with, req()));
            let b = rt.block_on(call(&without, req()));
            prop_assert_eq!(a.status, b.status);
            prop_assert_eq!(&a.challenges, &b.challenges);
            prop_assert_eq!(&a.body, &b.body);
        }
    }
}

/// A request with the headers of `builder` (which cannot be cloned itself).
fn builder_clone(builder: &http::request::Builder) -> Request<String> {
    let mut req = Request::new(String::new());
    *req.method_mut() = http::Method::POST;
    *req.uri_mut() = "/mcp".parse().unwrap();
    *req.headers_mut() = builder.headers_ref().unwrap().clone();
    req
}
