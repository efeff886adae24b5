//! The one configured public URL of the protected MCP endpoint (the resource identifier).
//!
//! Everything that names the resource derives from this one value: the `resource` of the
//! Protected Resource Metadata document, the `resource_metadata` URL in every challenge, the
//! well-known path the document is served at, and (for JWTs) the audience tokens must carry. The
//! request's `Host` header is never used, so a spoofed `Host` cannot change any of them.
//!
//! ```
//! use mcp_server_auth::ResourceUrl;
//!
//! let r = ResourceUrl::parse("https://MCP.example.com/mcp").unwrap();
//! assert_eq!(r.as_str(), "https://mcp.example.com/mcp");
//! assert_eq!(r.metadata_path(), "/.well-known/oauth-protected-resource/mcp");
//! assert_eq!(
//!     r.metadata_url(),
//!     "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
//! );
//! ```

use std::{fmt, net::IpAddr};

/// The well-known URI suffix of RFC 9728 §3.
pub const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// `url` with any user information (`user:password@`) replaced by `…@`, for error messages:
/// a password pasted into a URL must not reach a log.
pub(crate) fn redact_userinfo(url: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let authority_end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| start + i);
    match url[start..authority_end].rfind('@') {
        Some(at) => format!("{}…{}", &url[..start], &url[start + at..]),
        None => url.to_owned(),
    }
}

/// `text` with the user information of every URL in it (`scheme://user:password@host`)
/// replaced by `…`, for messages that quote URLs this crate did not write itself (an HTTP
/// client's errors, a redirect's target, a server's answer). A URL's authority ends here at
/// `/`, `?`, `#`, white space, or a character a serialized URL never holds (`"`, `<`, `>`, `\`,
/// `` ` ``): the user information a URL parser serializes has each of them percent-encoded.
#[cfg(feature = "remote-jwks")]
pub(crate) fn redact_userinfo_in(text: &str) -> std::borrow::Cow<'_, str> {
    use std::borrow::Cow;
    if !text.contains('@') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (before, after) = rest.split_at(i + 3);
        out.push_str(before);
        let end = after
            .find(|c: char| {
                matches!(c, '/' | '?' | '#' | '"' | '<' | '>' | '\\' | '`') || c.is_whitespace()
            })
            .unwrap_or(after.len());
        rest = match after[..end].rfind('@') {
            Some(at) => {
                out.push('…');
                &after[at..]
            }
            None => after,
        };
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// A URL shown with its user information redacted ([`redact_userinfo`]), for `Debug`, log
/// fields and messages: `Display` writes the URL, `Debug` the quoted URL.
pub(crate) struct Redacted<'a>(pub(crate) &'a str);

impl fmt::Display for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_userinfo(self.0))
    }
}

impl fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&redact_userinfo(self.0), f)
    }
}

/// What is wrong with a resource URL. Messages repeat the URL with any user information
/// (`user:password@`) redacted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResourceUrlError {
    /// It does not parse as an absolute URL.
    #[error("{0:?} is not an absolute URL such as https://mcp.example.com/mcp")]
    NotAbsolute(String),
    /// The scheme is neither `https` nor `http`.
    #[error("{0:?} must use https (or http on a loopback host)")]
    Scheme(String),
    /// It carries a fragment (`#…`), which RFC 8707 and RFC 9728 forbid.
    #[error("{0:?} has a fragment (#…); remove it")]
    Fragment(String),
    /// It carries user information (`user@`).
    #[error("{0:?} has user information (user@host); remove it")]
    UserInfo(String),
    /// It uses plain `http` on a host that is not loopback.
    #[error(
        "{0:?} uses plain http on a host that is not loopback; tokens would travel in clear text. \
         Use the public https URL (behind a TLS-terminating proxy, that is the proxy's URL)"
    )]
    InsecureHttp(String),
    /// It contains `scope=`, `error=`, `error_description=` or `resource_metadata=`, which the
    /// official MCP clients would misread as a parameter of the challenges that carry the URL.
    #[error(
        "{0:?} contains `scope=`, `error=` or `resource_metadata=`, which MCP clients would \
         misread in challenges; choose another path or query"
    )]
    ChallengeParam(String),
}

/// An absolute `https` (or loopback `http`) URL in canonical form: lowercase scheme and host, no
/// default port, no fragment, and no trailing slash on a bare origin.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ResourceUrl {
    canonical: String,
    /// Byte index where the path (or query) starts in `canonical`.
    origin_end: usize,
    /// Byte index where the query (`?…`) starts, or `canonical.len()`.
    query_start: usize,
    loopback: bool,
}

impl ResourceUrl {
    /// Parses and canonicalizes `url`. Plain `http` is accepted only for loopback hosts
    /// (`localhost`, `127.0.0.0/8`, `[::1]`).
    pub fn parse(url: &str) -> Result<Self, ResourceUrlError> {
        let r = Self::parse_allowing_plain_http(url)?;
        if r.scheme() == "http" && !r.loopback {
            return Err(ResourceUrlError::InsecureHttp(redact_userinfo(url)));
        }
        Ok(r)
    }

    /// Like [`parse`](Self::parse) but also accepts plain `http` on any host. **An explicit
    /// opt-out**: only for a network where nothing can read the traffic.
    pub fn parse_allowing_plain_http(url: &str) -> Result<Self, ResourceUrlError> {
        let bad = || ResourceUrlError::NotAbsolute(redact_userinfo(url));
        if url.contains('#') {
            return Err(ResourceUrlError::Fragment(redact_userinfo(url)));
        }
        let uri: http::Uri = url.parse().map_err(|_| bad())?;
        let scheme = uri.scheme_str().ok_or_else(bad)?.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "https" => 443,
            "http" => 80,
            _ => return Err(ResourceUrlError::Scheme(redact_userinfo(url))),
        };
        let authority = uri.authority().ok_or_else(bad)?;
        if authority.as_str().contains('@') {
            return Err(ResourceUrlError::UserInfo(redact_userinfo(url)));
        }
        let host = authority.host().to_ascii_lowercase();
        if host.is_empty() || !valid_host(&host) {
            return Err(bad());
        }
        // `http` reads `h:99999` and `h:[x]:443` as host `h` without a port, and `[::1]x` as host
        // `[::1]`: whatever follows the host must be a valid port, never silently dropped.
        let port = &authority.as_str()[host.len()..];
        if !port.strip_prefix(':').map_or(port.is_empty(), |p| {
            p.is_empty() || (p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok())
        }) {
            return Err(bad());
        }
        let mut canonical = format!("{scheme}://{host}");
        if let Some(port) = authority.port_u16().filter(|p| *p != default_port) {
            canonical.push(':');
            canonical.push_str(&port.to_string());
        }
        let origin_end = canonical.len();
        let path = uri.path();
        let query = uri.query();
        if path != "/" || query.is_some() {
            canonical.push_str(path);
        }
        let query_start = canonical.len();
        if let Some(q) = query {
            canonical.push('?');
            canonical.push_str(q);
        }
        if crate::scope::mimics_challenge_param(&canonical) {
            return Err(ResourceUrlError::ChallengeParam(redact_userinfo(url)));
        }
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let loopback = bare == "localhost"
            || bare.ends_with(".localhost")
            || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
        Ok(Self {
            canonical,
            origin_end,
            query_start,
            loopback,
        })
    }

    /// The canonical URL.
    pub fn as_str(&self) -> &str {
        &self.canonical
    }

    /// `https` or `http`.
    pub fn scheme(&self) -> &str {
        &self.canonical[..self.canonical.find(':').unwrap_or(0)]
    }

    /// The origin: scheme, host and (non-default) port.
    pub fn origin(&self) -> &str {
        &self.canonical[..self.origin_end]
    }

    /// The host, lowercase (an IPv6 address keeps its brackets), without the port.
    pub fn host(&self) -> &str {
        let authority = &self.canonical[self.scheme().len() + 3..self.origin_end];
        match authority.rfind(':') {
            Some(i) if !authority[i..].contains(']') => &authority[..i],
            _ => authority,
        }
    }

    /// The path, empty for a bare origin.
    pub fn path(&self) -> &str {
        &self.canonical[self.origin_end..self.query_start]
    }

    /// The query without `?`, if any.
    pub fn query(&self) -> Option<&str> {
        self.canonical.get(self.query_start + 1..)
    }

    /// Whether the host is a loopback host.
    pub fn is_loopback(&self) -> bool {
        self.loopback
    }

    /// Whether this is a bare origin (no path, no query).
    pub fn is_origin(&self) -> bool {
        self.origin_end == self.canonical.len()
    }

    /// The path (and query) of the metadata document, by path insertion (RFC 9728 §3.1):
    /// `https://h/mcp` → `/.well-known/oauth-protected-resource/mcp`.
    pub fn metadata_path(&self) -> String {
        format!("{WELL_KNOWN}{}", &self.canonical[self.origin_end..])
    }

    /// The absolute URL of the metadata document, for the `resource_metadata` parameter.
    pub fn metadata_url(&self) -> String {
        format!("{}{}", self.origin(), self.metadata_path())
    }

    /// The resource identifier of the root document (the origin), served at
    /// `/.well-known/oauth-protected-resource` for older clients.
    pub fn root(&self) -> ResourceUrl {
        let canonical = self.origin().to_owned();
        let n = canonical.len();
        Self {
            canonical,
            origin_end: n,
            query_start: n,
            loopback: self.loopback,
        }
    }

    /// Whether `other` names this resource, comparing scheme and host case-insensitively and
    /// treating a bare origin with or without its trailing slash as the same (RFC 8707, MCP
    /// "Canonical Server URI"). Any other difference, including a path prefix, is a mismatch.
    pub fn matches(&self, other: &str) -> bool {
        ResourceUrl::parse_allowing_plain_http(other).is_ok_and(|o| o.canonical == self.canonical)
    }
}

/// A host `http` accepted is usable: a bracketed IPv6 address, or a name or IPv4 address with no
/// bracket in it (`http` lets `2[` or `[zz]` through).
fn valid_host(host: &str) -> bool {
    match host.strip_prefix('[') {
        Some(rest) => rest
            .strip_suffix(']')
            .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok()),
        None => !host.contains(['[', ']']),
    }
}

impl fmt::Display for ResourceUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical)
    }
}

impl fmt::Debug for ResourceUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ResourceUrl({:?})", self.canonical)
    }
}

impl std::str::FromStr for ResourceUrl {
    type Err = ResourceUrlError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_never_repeat_a_password() {
        assert_eq!(
            redact_userinfo("https://u:hunter2@h/p@q"),
            "https://…@h/p@q"
        );
        assert_eq!(redact_userinfo("https://h/p"), "https://h/p");
        assert_eq!(redact_userinfo("u:hunter2@h"), "…@h");
        for url in [
            "https://u:hunter2@h/mcp",
            "ftp://u:hunter2@h/mcp",
            "http://u:hunter2@example.com/mcp",
            "https://u:hunter2@h/mcp#f",
            "u:hunter2@h/mcp",
        ] {
            let e = ResourceUrl::parse(url).unwrap_err().to_string();
            assert!(!e.contains("hunter2"), "{e}");
        }
    }

    #[test]
    #[cfg(feature = "remote-jwks")]
    fn every_url_in_a_text_loses_its_password() {
        let cases = [
            ("no url here", "no url here"),
            ("mail a@b", "mail a@b"),
            (
                "error sending request for url (https://u:hunter2@h/jwks): refused",
                "error sending request for url (https://…@h/jwks): refused",
            ),
            (
                "a redirect to http://u:hunter2@h:8/x?y=a@b was refused; then https://v:pw2@g",
                "a redirect to http://…@h:8/x?y=a@b was refused; then https://…@g",
            ),
            (
                r#"the issuer is "https://u:hunter2@h", not "https://h""#,
                r#"the issuer is "https://…@h", not "https://h""#,
            ),
            ("https://h/p@q https://h", "https://h/p@q https://h"),
        ];
        for (text, want) in cases {
            assert_eq!(redact_userinfo_in(text), want);
        }
        assert_eq!(
            format!(
                "{} {:?}",
                Redacted("https://u:p@h/x"),
                Redacted("https://u:p@h")
            ),
            r#"https://…@h/x "https://…@h""#
        );
    }

    #[test]
    fn path_insertion() {
        let cases = [
            (
                "https://h/mcp",
                "https://h/.well-known/oauth-protected-resource/mcp",
            ),
            (
                "https://h",
                "https://h/.well-known/oauth-protected-resource",
            ),
            (
                "https://h/",
                "https://h/.well-known/oauth-protected-resource",
            ),
            (
                "https://H:443/a/mcp",
                "https://h/.well-known/oauth-protected-resource/a/mcp",
            ),
            (
                "http://127.0.0.1:8080/mcp",
                "http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp",
            ),
            (
                "https://h/mcp?t=1",
                "https://h/.well-known/oauth-protected-resource/mcp?t=1",
            ),
            (
                "https://h/mcp/",
                "https://h/.well-known/oauth-protected-resource/mcp/",
            ),
        ];
        for (r, m) in cases {
            assert_eq!(ResourceUrl::parse(r).unwrap().metadata_url(), m, "{r}");
        }
    }

    #[test]
    fn refusals() {
        assert!(matches!(
            ResourceUrl::parse("http://example.com/mcp"),
            Err(ResourceUrlError::InsecureHttp(_))
        ));
        assert!(ResourceUrl::parse_allowing_plain_http("http://example.com/mcp").is_ok());
        assert!(matches!(
            ResourceUrl::parse("https://h/mcp#x"),
            Err(ResourceUrlError::Fragment(_))
        ));
        assert!(matches!(
            ResourceUrl::parse("ftp://h/mcp"),
            Err(ResourceUrlError::Scheme(_))
        ));
        assert!(matches!(
            ResourceUrl::parse("/mcp"),
            Err(ResourceUrlError::NotAbsolute(_))
        ));
        assert!(matches!(
            ResourceUrl::parse("https://u@h/mcp"),
            Err(ResourceUrlError::UserInfo(_))
        ));
        assert!(ResourceUrl::parse("http://localhost:3000/mcp").is_ok());
        assert_eq!(
            ResourceUrl::parse("http://[::1]:3000/mcp").unwrap().host(),
            "[::1]"
        );
        assert_eq!(
            ResourceUrl::parse("https://H.example:8443/mcp")
                .unwrap()
                .host(),
            "h.example"
        );
        assert_eq!(
            ResourceUrl::parse("https://h.example/mcp").unwrap().host(),
            "h.example"
        );
    }

    #[test]
    fn matching() {
        let r = ResourceUrl::parse("https://h.example/mcp").unwrap();
        assert!(r.matches("https://H.EXAMPLE/mcp"));
        assert!(r.matches("HTTPS://h.example:443/mcp"));
        assert!(!r.matches("https://h.example/mcp2"));
        assert!(!r.matches("https://h.example/"));
        let o = ResourceUrl::parse("https://h.example").unwrap();
        assert!(o.matches("https://h.example/"));
    }
}
