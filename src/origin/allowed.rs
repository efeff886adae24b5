//! The allow-list of an [`OriginLayer`](super::OriginLayer): [`AllowedOrigins`], and the parser
//! of serialized origins (RFC 6454 §6.2) it checks `Origin` fields with, without allocating.
//!
//! ```
//! use http::HeaderValue;
//! use mcp_server_auth::origin::AllowedOrigins;
//!
//! let origins = AllowedOrigins::localhost();
//! assert!(origins.is_allowed(&HeaderValue::from_static("http://127.0.0.1:6274")));
//! assert!(!origins.is_allowed(&HeaderValue::from_static("http://localhost.evil.com")));
//! ```

use std::{
    fmt,
    net::{Ipv4Addr, Ipv6Addr},
};

use http::{HeaderMap, HeaderValue, header::ORIGIN};

/// Why a value cannot be put on an [`AllowedOrigins`] list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OriginError {
    /// The value has no `scheme://` prefix.
    #[error(
        "allowed origin `{0}` has no scheme: write it as scheme://host[:port], \
         for example https://app.example.com"
    )]
    NoScheme(String),
    /// The scheme is neither `http` nor `https`.
    #[error("allowed origin `{0}`: only http and https origins can be allowed")]
    Scheme(String),
    /// The value has a path (even a lone `/`), a query or a fragment: it is a URL, not an origin.
    #[error(
        "allowed origin `{value}` is a URL, not an origin (scheme://host[:port], without path, \
         query, fragment or trailing slash): allow `{origin}` instead"
    )]
    NotAnOrigin {
        /// The value given.
        value: String,
        /// The origin it contains, to allow instead.
        origin: String,
    },
    /// The value carries user information (`user:password@`).
    #[error(
        "allowed origin `{0}` contains user information (`…@`): an origin is scheme://host[:port] \
         only"
    )]
    Userinfo(String),
    /// The host is missing or not a valid host name, IPv4 or bracketed IPv6 address.
    #[error(
        "allowed origin `{0}`: the host is missing or invalid (use letters, digits, `-`, `.` and \
         `_`; the punycode form `xn--…` for international names; four decimal numbers for IPv4; \
         [brackets] around IPv6)"
    )]
    Host(String),
    /// The port is empty, not a number, or outside 1..=65535.
    #[error("allowed origin `{0}`: the port must be a number from 1 to 65535")]
    Port(String),
    /// `null` was given by name.
    #[error("`null` is not allowed by name: use AllowedOrigins::allow_null() to allow it")]
    Null,
    /// `*` was given.
    #[error("`*` is not an origin: use AllowedOrigins::any() to switch the Origin check off")]
    Wildcard,
}

/// The two schemes an allowed origin can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Http,
    Https,
}

impl Scheme {
    fn parse(s: &[u8]) -> Option<Self> {
        if s.eq_ignore_ascii_case(b"http") {
            Some(Self::Http)
        } else if s.eq_ignore_ascii_case(b"https") {
            Some(Self::Https)
        } else {
            None
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Self::Http => 80,
            Self::Https => 443,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
        }
    }
}

/// An origin split into its parts, borrowed from the value parsed.
struct Parts<'a> {
    scheme: &'a [u8],
    host: &'a [u8],
    /// The explicit port, if any.
    port: Option<u16>,
}

/// Why bytes are not a serialized origin.
enum Malformed {
    NoScheme,
    /// A path, query or fragment starts at this index.
    Path(usize),
    Userinfo,
    Host,
    Port,
}

/// Splits `scheme "://" host [":" port]` without allocating.
fn split(b: &[u8]) -> Result<Parts<'_>, Malformed> {
    let sep = b
        .windows(3)
        .position(|w| w == b"://")
        .ok_or(Malformed::NoScheme)?;
    let scheme = &b[..sep];
    let scheme_ok = scheme.first().is_some_and(u8::is_ascii_alphabetic)
        && scheme
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'));
    if !scheme_ok {
        return Err(Malformed::NoScheme);
    }
    let start = sep + 3;
    let end = b[start..]
        .iter()
        .position(|&c| matches!(c, b'/' | b'?' | b'#'))
        .map_or(b.len(), |i| start + i);
    let authority = &b[start..end];
    if authority.contains(&b'@') {
        return Err(Malformed::Userinfo);
    }
    if end < b.len() {
        return Err(Malformed::Path(end));
    }
    let (host, port) = if authority.first() == Some(&b'[') {
        let close = authority
            .iter()
            .position(|&c| c == b']')
            .ok_or(Malformed::Host)?;
        let inner = &authority[1..close];
        if inner.is_empty()
            || !inner
                .iter()
                .all(|&c| c.is_ascii_hexdigit() || matches!(c, b':' | b'.'))
        {
            return Err(Malformed::Host);
        }
        let rest = &authority[close + 1..];
        let port = match rest {
            [] => None,
            [b':', port @ ..] => Some(port),
            _ => return Err(Malformed::Host),
        };
        (&authority[..=close], port)
    } else {
        match authority.iter().position(|&c| c == b':') {
            Some(i) => (&authority[..i], Some(&authority[i + 1..])),
            None => (authority, None),
        }
    };
    if host.is_empty()
        || (host[0] != b'['
            && !host
                .iter()
                .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_')))
    {
        return Err(Malformed::Host);
    }
    let port = match port {
        None => None,
        Some(p) => Some(parse_port(p).ok_or(Malformed::Port)?),
    };
    Ok(Parts { scheme, host, port })
}

/// 1..=65535, decimal digits only.
fn parse_port(p: &[u8]) -> Option<u16> {
    if p.is_empty() || p.len() > 5 || !p.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = p.iter().fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'));
    u16::try_from(n).ok().filter(|&n| n != 0)
}

/// One origin on the list, normalized: lowercase host, default port dropped.
#[derive(Clone, PartialEq, Eq)]
struct Entry {
    scheme: Scheme,
    host: Box<str>,
    port: Option<u16>,
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme.as_str(), self.host)?;
        match self.port {
            Some(port) => write!(f, ":{port}"),
            None => Ok(()),
        }
    }
}

impl Entry {
    fn parse(value: &str) -> Result<Self, OriginError> {
        let owned = || crate::resource::redact_userinfo(value);
        match value {
            "null" => return Err(OriginError::Null),
            "*" => return Err(OriginError::Wildcard),
            _ => {}
        }
        let parts = split(value.as_bytes()).map_err(|e| match e {
            Malformed::NoScheme => OriginError::NoScheme(owned()),
            Malformed::Path(i) => OriginError::NotAnOrigin {
                value: owned(),
                origin: value[..i].to_owned(),
            },
            Malformed::Userinfo => OriginError::Userinfo(owned()),
            Malformed::Host => OriginError::Host(owned()),
            Malformed::Port => OriginError::Port(owned()),
        })?;
        let scheme = Scheme::parse(parts.scheme).ok_or_else(|| OriginError::Scheme(owned()))?;
        // `split` admits ASCII only, so this is valid UTF-8 and a char boundary.
        let host = std::str::from_utf8(parts.host)
            .map_err(|_| OriginError::Host(owned()))?
            .to_ascii_lowercase();
        let host = if let Some(inner) = host.strip_prefix('[') {
            // Browsers send the canonical (RFC 5952) form; store that.
            let addr: Ipv6Addr = inner
                .strip_suffix(']')
                .and_then(|a| a.parse().ok())
                .ok_or_else(|| OriginError::Host(owned()))?;
            format!("[{addr}]")
        } else {
            // A host whose last label is numeric is an IPv4 address (WHATWG URL): only the
            // dotted-decimal form can match what browsers send.
            // (A trailing dot ends the name; the label before it is the last one.)
            let name = host.strip_suffix('.').unwrap_or(&host);
            let last = name.rsplit('.').next().unwrap_or_default();
            let numeric = !last.is_empty() && last.bytes().all(|c| c.is_ascii_digit());
            if numeric && host.parse::<Ipv4Addr>().is_err() {
                return Err(OriginError::Host(owned()));
            }
            host
        };
        Ok(Self {
            scheme,
            host: host.into_boxed_str(),
            port: parts.port.filter(|&p| p != scheme.default_port()),
        })
    }
}

/// The origins an [`OriginLayer`](super::OriginLayer) admits. Comparison is exact on the normalized origin: scheme
/// and host are case-insensitive, and the default port (`80` for `http`, `443` for `https`)
/// may be written or left out. Checking a request does not allocate.
///
/// ```
/// use http::HeaderValue;
/// use mcp_server_auth::origin::AllowedOrigins;
///
/// # fn main() -> Result<(), mcp_server_auth::origin::OriginError> {
/// let origins = AllowedOrigins::localhost().allow("https://app.example.com")?;
/// assert!(origins.is_allowed(&HeaderValue::from_static("https://app.example.com:443")));
/// assert!(origins.is_allowed(&HeaderValue::from_static("http://localhost:6274")));
/// assert!(!origins.is_allowed(&HeaderValue::from_static("https://app.example.com.evil.com")));
///
/// // Bad configuration is an error that says what to write instead.
/// let err = AllowedOrigins::none().allow("https://app.example.com/").unwrap_err();
/// assert!(err.to_string().contains("allow `https://app.example.com` instead"));
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct AllowedOrigins {
    any: bool,
    localhost: bool,
    null: bool,
    exact: Vec<Entry>,
}

impl Default for AllowedOrigins {
    /// [`AllowedOrigins::localhost`].
    fn default() -> Self {
        Self::localhost()
    }
}

impl AllowedOrigins {
    /// The default: `http` and `https` origins whose host is `localhost`, `127.0.0.1` or
    /// `[::1]`, with any port or none. Add more with [`allow`](Self::allow).
    pub fn localhost() -> Self {
        Self {
            localhost: true,
            ..Self::none()
        }
    }

    /// No origin at all: only requests without `Origin` (non-browser clients) pass. Add origins
    /// with [`allow`](Self::allow), for example for a remote server with one web client.
    pub fn none() -> Self {
        Self {
            any: false,
            localhost: false,
            null: false,
            exact: Vec::new(),
        }
    }

    /// **Opt-out**: every request passes, whatever its `Origin` fields (even malformed or
    /// repeated ones). Only for servers that validate `Origin` themselves, or that no browser
    /// can reach; MCP requires the check.
    pub fn any() -> Self {
        Self {
            any: true,
            ..Self::none()
        }
    }

    /// Adds one origin, written `scheme://host[:port]` with `http` or `https` (for example
    /// `https://app.example.com` or `http://10.0.0.5:8080`). Scheme and host are lowercased and
    /// a default port is dropped. Anything else (a path or trailing slash, query, fragment, user
    /// information, another scheme, `*`, `null`, a host not in ASCII) is an [`OriginError`] that
    /// says what to write instead.
    pub fn allow(mut self, origin: impl AsRef<str>) -> Result<Self, OriginError> {
        let entry = Entry::parse(origin.as_ref())?;
        if !self.exact.contains(&entry) {
            self.exact.push(entry);
        }
        Ok(self)
    }

    /// Also admits the literal `Origin: null`, which browsers send from sandboxed iframes,
    /// `file:` pages and some redirects. Refused by default: any such page shares it.
    pub fn allow_null(mut self) -> Self {
        self.null = true;
        self
    }

    /// Whether one `Origin` value is admitted. Usable elsewhere, for example as tower-http's
    /// `AllowOrigin::predicate`, so that CORS and this check share one list.
    pub fn is_allowed(&self, origin: &HeaderValue) -> bool {
        if self.any {
            return true;
        }
        let b = origin.as_bytes();
        if b == b"null" {
            return self.null;
        }
        let Ok(parts) = split(b) else {
            return false;
        };
        let Some(scheme) = Scheme::parse(parts.scheme) else {
            return false;
        };
        if self.localhost
            && [&b"localhost"[..], b"127.0.0.1", b"[::1]"]
                .iter()
                .any(|h| parts.host.eq_ignore_ascii_case(h))
        {
            return true;
        }
        let port = parts.port.filter(|&p| p != scheme.default_port());
        self.exact.iter().any(|e| {
            e.scheme == scheme
                && e.port == port
                && parts.host.eq_ignore_ascii_case(e.host.as_bytes())
        })
    }

    /// Whether a request with these headers passes: no `Origin` field, or exactly one that is
    /// admitted.
    pub(super) fn admits<'h>(&self, headers: &'h HeaderMap) -> Result<(), Refusal<'h>> {
        if self.any {
            return Ok(());
        }
        let mut fields = headers.get_all(ORIGIN).iter();
        match (fields.next(), fields.next()) {
            (None, _) => Ok(()),
            (Some(origin), None) if self.is_allowed(origin) => Ok(()),
            (Some(origin), None) => Err(Refusal::NotAllowed(origin)),
            (Some(_), Some(_)) => Err(Refusal::Repeated),
        }
    }
}

/// Why a request is refused, for the log.
pub(super) enum Refusal<'a> {
    NotAllowed(&'a HeaderValue),
    Repeated,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hv(s: &'static str) -> HeaderValue {
        HeaderValue::from_static(s)
    }

    fn allowed(list: &AllowedOrigins, origin: &'static str) -> bool {
        list.is_allowed(&hv(origin))
    }

    #[test]
    fn localhost_variants() {
        let l = AllowedOrigins::localhost();
        for o in [
            "http://localhost",
            "http://localhost:6274",
            "http://LOCALHOST:6274",
            "HTTP://LocalHost:3000",
            "https://localhost",
            "http://127.0.0.1",
            "http://127.0.0.1:8080",
            "https://127.0.0.1:443",
            "http://[::1]",
            "http://[::1]:3000",
        ] {
            assert!(allowed(&l, o), "{o}");
        }
        for o in [
            "http://localhost.evil.com",
            "http://127.0.0.1.evil.com",
            "http://evil.com",
            "http://localhost:",
            "http://localhost:0",
            "http://localhost:65536",
            "http://localhost:6274/",
            "http://localhost/path",
            "http://user@localhost",
            "ws://localhost",
            "file://localhost",
            "localhost",
            "localhost:3000",
            "http://[::2]",
            "http://127.0.0.2",
            "http://0.0.0.0",
            "http://localhost.",
            "",
            "null",
            "*",
        ] {
            assert!(!allowed(&l, o), "{o}");
        }
        assert!(!l.is_allowed(&HeaderValue::from_bytes(b"http://l\xc3\xb6calhost").unwrap()));
    }

    #[test]
    fn none_admits_nothing_and_any_admits_everything() {
        let none = AllowedOrigins::none();
        let any = AllowedOrigins::any();
        for o in ["http://localhost", "https://evil.com", "null", "garbage"] {
            assert!(!allowed(&none, o), "{o}");
            assert!(allowed(&any, o), "{o}");
        }
    }

    #[test]
    fn exact_origins_are_normalized() {
        let list = AllowedOrigins::none()
            .allow("HTTPS://App.Example.COM:443")
            .unwrap()
            .allow("http://example.org:80")
            .unwrap()
            .allow("http://10.0.0.5:8080")
            .unwrap()
            .allow("https://[0:0:0:0:0:0:0:2]:8443")
            .unwrap();
        assert_eq!(
            format!("{:?}", list.exact),
            r#"["https://app.example.com", "http://example.org", "http://10.0.0.5:8080", "https://[::2]:8443"]"#
        );
        for o in [
            "https://app.example.com",
            "https://app.example.com:443",
            "https://APP.example.com",
            "http://example.org",
            "http://example.org:80",
            "http://10.0.0.5:8080",
            "https://[::2]:8443",
        ] {
            assert!(allowed(&list, o), "{o}");
        }
        for o in [
            "http://app.example.com",
            "https://app.example.com:8443",
            "https://example.org",
            "http://example.org:8080",
            "https://app.example.com.evil.com",
            "https://evil.app.example.com",
            "http://10.0.0.5",
            "http://localhost",
        ] {
            assert!(!allowed(&list, o), "{o}");
        }
        // Duplicates after normalization are kept once.
        let twice = AllowedOrigins::none()
            .allow("https://a.example")
            .unwrap()
            .allow("https://A.example:443")
            .unwrap();
        assert_eq!(twice.exact.len(), 1);
        // A trailing dot is part of a name, not an IPv4 address.
        let dot = AllowedOrigins::none()
            .allow("https://example.com.")
            .unwrap();
        assert!(allowed(&dot, "https://example.com."));
        assert!(!allowed(&dot, "https://example.com"));
    }

    #[test]
    fn null_is_opt_in() {
        assert!(!allowed(&AllowedOrigins::localhost(), "null"));
        let l = AllowedOrigins::localhost().allow_null();
        assert!(allowed(&l, "null"));
        assert!(!allowed(&l, "NULL"));
        assert!(allowed(&l, "http://localhost"));
    }

    #[test]
    fn bad_configuration_is_a_clear_error() {
        let err = |s: &str| AllowedOrigins::none().allow(s).unwrap_err();
        assert_eq!(
            err("https://app.example.com/"),
            OriginError::NotAnOrigin {
                value: "https://app.example.com/".into(),
                origin: "https://app.example.com".into()
            }
        );
        assert!(matches!(
            err("https://app.example.com/mcp?x#y"),
            OriginError::NotAnOrigin { origin, .. } if origin == "https://app.example.com"
        ));
        assert!(matches!(
            err("https://h?q"),
            OriginError::NotAnOrigin { .. }
        ));
        assert!(matches!(
            err("https://h#f"),
            OriginError::NotAnOrigin { .. }
        ));
        assert_eq!(
            err("app.example.com"),
            OriginError::NoScheme("app.example.com".into())
        );
        assert_eq!(
            err("//app.example.com"),
            OriginError::NoScheme("//app.example.com".into())
        );
        assert_eq!(err("ws://h"), OriginError::Scheme("ws://h".into()));
        assert_eq!(
            err("https://u:p@h"),
            OriginError::Userinfo("https://…@h".into())
        );
        for s in [
            "https://",
            "https://:443",
            "https://münchen.de",
            "https://a b",
            "https://[::1",
            "https://[zz]",
            "https://[::1]x",
            "https://127.1",
            "https://1.2.3.4.5",
            "https://0x7f.0.0.1.2",
        ] {
            assert_eq!(err(s), OriginError::Host(s.into()), "{s}");
        }
        for s in [
            "https://h:",
            "https://h:0",
            "https://h:65536",
            "https://h:8o",
            "https://h:123456",
        ] {
            assert_eq!(err(s), OriginError::Port(s.into()), "{s}");
        }
        assert_eq!(err("null"), OriginError::Null);
        assert_eq!(err("*"), OriginError::Wildcard);
        let msg = err("https://app.example.com/").to_string();
        assert!(
            msg.contains("allow `https://app.example.com` instead"),
            "{msg}"
        );
        assert!(err("*").to_string().contains("AllowedOrigins::any()"));
    }
}
