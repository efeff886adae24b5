//! The `htu` comparison (RFC 9449 §4.3 check 9): the proof's `htu` and the configured resource
//! URL compared as RFC 3986 §6.2.2 normalised URIs, without query and fragment.
//!
//! Why normalise: clients build `htu` from the URL they were given, and may spell it
//! `HTTPS://MCP.Example.com:443/mcp`, or percent-encode an unreserved character; a byte
//! comparison would refuse them. Why the *configured* URL: a URL built from the request's
//! `Host` header is whatever the client says it is, so a proof made for another server would
//! match it.
//!
//! The normal form: scheme and host lowercased, the scheme's default port dropped (an empty
//! port too), percent-encodings of unreserved characters decoded and the others' hex digits
//! uppercased, dot segments removed, an empty path `/`; query and fragment dropped. A URI
//! with user information, without an authority, or with characters outside printable ASCII
//! has no normal form here and matches nothing.
//!
//! ```
//! # #[cfg(any(feature = "aws-lc-rs", feature = "rust-crypto"))] {
//! use mcp_server_auth::dpop::normalize_htu; // for the fuzz target; not part of the API
//!
//! assert_eq!(
//!     normalize_htu("HTTPS://MCP.Example.com:443/a/./%7euser/../mcp?x=1#f").as_deref(),
//!     Some("https://mcp.example.com/a/mcp"),
//! );
//! assert_eq!(normalize_htu("https://user@mcp.example.com/mcp"), None);
//! # }
//! ```

/// `uri` in the normal form described in this module's documentation (RFC 3986 §6.2.2), or
/// `None`.
pub fn normalize_htu(uri: &str) -> Option<String> {
    if !uri.bytes().all(|b| b.is_ascii_graphic()) {
        return None;
    }
    let uri = uri.split(['#', '?']).next().unwrap_or_default();
    let (scheme, rest) = uri.split_once("://")?;
    let mut chars = scheme.bytes();
    if !chars.next()?.is_ascii_alphabetic()
        || !chars.all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
    {
        return None;
    }
    let scheme = scheme.to_ascii_lowercase();
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    if authority.contains('@') {
        return None;
    }
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let end = v6.find(']')?;
            let port = &v6[end + 1..];
            (&authority[..end + 2], port)
        }
        None => match authority.find(':') {
            Some(i) => (&authority[..i], &authority[i..]),
            None => (authority, ""),
        },
    };
    if host.is_empty() || (host.contains(']') && !host.starts_with('[')) || host[1..].contains('[')
    {
        return None;
    }
    let port = match port {
        "" | ":" => None,
        p => {
            let digits = p.strip_prefix(':')?;
            if !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let n: u16 = digits.parse().ok()?;
            let default = match scheme.as_str() {
                "http" => Some(80),
                "https" => Some(443),
                _ => None,
            };
            (default != Some(n)).then_some(n)
        }
    };
    let host = percent_normalize(host)?.to_ascii_lowercase();
    let path = remove_dot_segments(&percent_normalize(if path.is_empty() {
        "/"
    } else {
        path
    })?);
    let mut out = String::with_capacity(scheme.len() + 3 + host.len() + 6 + path.len());
    out.push_str(&scheme);
    out.push_str("://");
    out.push_str(&host);
    if let Some(port) = port {
        out.push(':');
        out.push_str(&port.to_string());
    }
    out.push_str(&path);
    Some(out)
}

/// RFC 3986 §6.2.2.2: `%XX` of an unreserved character decoded, the others' hex uppercased;
/// `None` for a `%` not followed by two hex digits.
fn percent_normalize(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = |c: u8| (c as char).to_digit(16);
            let (h, l) = (hex(*b.get(i + 1)?)?, hex(*b.get(i + 2)?)?);
            let c = (h * 16 + l) as u8;
            if c.is_ascii_alphanumeric() || b"-._~".contains(&c) {
                out.push(c as char);
            } else {
                out.push('%');
                out.push_str(&format!("{c:02X}"));
            }
            i += 3;
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    Some(out)
}

/// RFC 3986 §5.2.4 for an absolute path (it starts with `/`).
fn remove_dot_segments(path: &str) -> String {
    let segments: Vec<&str> = path[1..].split('/').collect();
    let mut out: Vec<&str> = Vec::with_capacity(segments.len());
    let last = segments.len() - 1;
    for (i, segment) in segments.iter().enumerate() {
        match *segment {
            "." => {}
            ".." => {
                out.pop();
            }
            s => {
                out.push(s);
                continue;
            }
        }
        if i == last {
            out.push("");
        }
    }
    format!("/{}", out.join("/"))
}

/// A URL normalised once, compared with a proof's `htu`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Htu(String);

impl Htu {
    /// The normal form of `url`, if it has one.
    pub(crate) fn new(url: &str) -> Option<Self> {
        normalize_htu(url).map(Self)
    }

    /// Whether `htu` names this URL (query and fragment ignored).
    pub(crate) fn matches(&self, htu: &str) -> bool {
        // Most clients send the URL in its normal form. The normal form is a fixed point of
        // `normalize_htu` (the fuzz target `dpop_proof` checks it), so an `htu` that is this
        // form before any query or fragment, in printable ASCII, normalises to it: no need to
        // build the normal form again.
        // (The normal form holds no `?` or `#`: the first one in `htu` must come right after.)
        let (htu_bytes, ours) = (htu.as_bytes(), self.0.as_bytes());
        if htu_bytes.starts_with(ours)
            && matches!(htu_bytes.get(ours.len()), None | Some(b'?' | b'#'))
            && htu_bytes.iter().all(|b| b.is_ascii_graphic())
        {
            return true;
        }
        normalize_htu(htu).is_some_and(|n| n == self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equivalent_spellings_normalise_to_one_form() {
        let ours = Htu::new("https://mcp.example.com/mcp").unwrap();
        for same in [
            "https://mcp.example.com/mcp",
            "HTTPS://MCP.EXAMPLE.COM/mcp",
            "https://mcp.example.com:443/mcp",
            "https://mcp.example.com:/mcp",
            "https://mcp.example.com/%6Dcp",
            "https://mcp.example.com/x/../mcp",
            "https://mcp.example.com/./mcp",
            "https://mcp.example.com/mcp?query=1",
            "https://mcp.example.com/mcp#fragment",
            "https://mcp.example.com/mcp?#",
        ] {
            assert!(ours.matches(same), "{same}");
        }
        for other in [
            "https://mcp.example.com/MCP",
            "https://mcp.example.com/mcp/",
            "https://mcp.example.com/mcp/tools",
            "http://mcp.example.com/mcp",
            "https://mcp.example.com:8443/mcp",
            "https://evil.example.com/mcp",
            "https://u@mcp.example.com/mcp",
            "https://mcp.example.com/m%zzcp",
            "https://mcp.example.com/mcp\u{e9}",
            "https://mcp.example.com/mcp?q=\u{e9}",
            "https://mcp.example.com/mcp?q= ",
            "https://mcp.example.com/mc",
            "//mcp.example.com/mcp",
            "mcp.example.com/mcp",
            "",
        ] {
            assert!(!ours.matches(other), "{other}");
        }
    }

    #[test]
    fn an_empty_path_is_the_root_and_encoded_reserved_characters_stay_encoded() {
        assert_eq!(normalize_htu("http://H").as_deref(), Some("http://h/"));
        assert_eq!(
            normalize_htu("http://h:8080/a%2fb").as_deref(),
            Some("http://h:8080/a%2Fb")
        );
        assert_eq!(
            normalize_htu("http://[::1]:80/a/b/..").as_deref(),
            Some("http://[::1]/a/")
        );
        // A decoded host character is lowercased too; a second colon is no port.
        assert_eq!(normalize_htu("http://h%41/").as_deref(), Some("http://ha/"));
        assert_eq!(normalize_htu("http://a:b:80/"), None);
        assert_eq!(normalize_htu("http://a]/"), None);
    }
}
