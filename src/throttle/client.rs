//! Who the client is: the peer address, or what trusted proxies say it is.
//!
//! Anyone can write `X-Forwarded-For: 203.0.113.9`. A throttle keyed on that header would let
//! a guesser pick a new key for every guess, or lock out someone else's address. So the header
//! is read only when the peer (the TCP connection's other end) is a proxy the operator trusts
//! ([`TrustedProxies`], by CIDR), and only the hops those proxies added are believed: the list
//! is read from the right, past every trusted address, and the first address that is not
//! trusted is the client (the "right-most untrusted hop"; the hops left of it were written by
//! the client and are ignored). A hop that cannot be read (`unknown`, an obfuscated
//! identifier, garbage) ends the walk at the last trusted hop, which is then the key: a proxy
//! that hides its clients is throttled as one client, never bypassed.
//!
//! A proxy writes one header; the other one is the client's, and must not be read. The default
//! is `X-Forwarded-For` (nginx, HAProxy, Envoy, the cloud load balancers); RFC 7239's
//! `Forwarded` is [`ForwardedHeader::Forwarded`].
//!
//! ```
//! use std::net::IpAddr;
//! use http::{HeaderMap, HeaderValue};
//! use mcp_server_auth::throttle::TrustedProxies;
//!
//! let proxies = TrustedProxies::parse("10.0.0.0/8, fd00::/8").unwrap();
//! let mut headers = HeaderMap::new();
//! headers.insert("x-forwarded-for", HeaderValue::from_static("198.51.100.1, 203.0.113.9, 10.1.1.1"));
//! let via_proxy: IpAddr = "10.0.0.2".parse().unwrap();
//! let direct: IpAddr = "192.0.2.7".parse().unwrap();
//! // Through the proxy: the right-most hop that is not a trusted proxy.
//! assert_eq!(proxies.client_ip(via_proxy, &headers), "203.0.113.9".parse::<IpAddr>().unwrap());
//! // Not through a trusted proxy: the header is ignored.
//! assert_eq!(proxies.client_ip(direct, &headers), direct);
//! ```

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    str::FromStr,
};

use http::{HeaderMap, HeaderName, header::FORWARDED};

/// The most hops read from the right of a forwarding header.
const MAX_HOPS: usize = 16;

/// `X-Forwarded-For`.
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// An IP network: an address and a prefix length, such as `10.0.0.0/8` or `fd00::/8`. A bare
/// address is a network of that one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

/// Why a trusted-proxy list cannot be read. The position counts entries from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TrustedProxiesError {
    /// An entry is not an address or a CIDR.
    #[error(
        "trusted proxy entry {0} is not an IP address or network: write one such as \
         10.0.0.0/8, 192.0.2.1 or fd00::/8"
    )]
    Invalid(usize),
    /// An entry has address bits set past its prefix (`10.0.0.1/8`): it is ambiguous.
    #[error(
        "trusted proxy entry {0} has address bits set past its prefix length: write the \
         network address (10.0.0.0/8), or the single address without a prefix"
    )]
    HostBits(usize),
}

impl Cidr {
    /// Whether `ip` is in this network. An IPv4-mapped IPv6 address counts as its IPv4
    /// address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                mask(u128::from(net.to_bits()), self.prefix, 32)
                    == mask(u128::from(ip.to_bits()), self.prefix, 32)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                mask(net.to_bits(), self.prefix, 128) == mask(ip.to_bits(), self.prefix, 128)
            }
            _ => false,
        }
    }

    fn parse_at(s: &str, position: usize) -> Result<Self, TrustedProxiesError> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| TrustedProxiesError::Invalid(position))?;
        let addr = addr.to_canonical();
        let bits = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => bits,
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= bits)
                .ok_or(TrustedProxiesError::Invalid(position))?,
            Some(_) => return Err(TrustedProxiesError::Invalid(position)),
        };
        let value = match addr {
            IpAddr::V4(a) => u128::from(a.to_bits()),
            IpAddr::V6(a) => a.to_bits(),
        };
        if mask(value, prefix, bits) != value {
            return Err(TrustedProxiesError::HostBits(position));
        }
        Ok(Self { addr, prefix })
    }
}

/// The top `prefix` bits of a `bits`-bit address.
fn mask(value: u128, prefix: u8, bits: u8) -> u128 {
    if prefix == 0 {
        return 0;
    }
    let keep = u128::MAX << (128 - u32::from(prefix));
    let shift = 128 - u32::from(bits);
    ((value << shift) & keep) >> shift
}

impl FromStr for Cidr {
    type Err = TrustedProxiesError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_at(s.trim(), 1)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Which header the trusted proxies write the client's address in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, …` (the default).
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for=proxy1;by=…, …` (its `for` parameters).
    Forwarded,
}

/// The proxies whose forwarding header is believed, and which header that is. The default
/// trusts none: the client is the peer address. See the [module documentation](self).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    networks: Vec<Cidr>,
    header: ForwardedHeader,
}

impl TrustedProxies {
    /// No trusted proxy: forwarding headers are never read.
    pub fn none() -> Self {
        Self::default()
    }

    /// The proxies in `networks`, writing `X-Forwarded-For`.
    pub fn new(networks: impl IntoIterator<Item = Cidr>) -> Self {
        Self {
            networks: networks.into_iter().collect(),
            header: ForwardedHeader::default(),
        }
    }

    /// A comma-separated list of addresses and CIDRs (`10.0.0.0/8, 192.0.2.1, fd00::/8`), as
    /// in `MCP_AUTH_TRUSTED_PROXIES`. Empty entries are ignored.
    ///
    /// # Errors
    /// The position of the first entry that is not an address or a network.
    pub fn parse(list: &str) -> Result<Self, TrustedProxiesError> {
        let networks = list
            .split(',')
            .map(str::trim)
            .enumerate()
            .filter(|(_, s)| !s.is_empty())
            .map(|(i, s)| Cidr::parse_at(s, i + 1))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            networks,
            header: ForwardedHeader::default(),
        })
    }

    /// Reads `header` instead of `X-Forwarded-For`.
    pub fn header(mut self, header: ForwardedHeader) -> Self {
        self.header = header;
        self
    }

    /// The trusted networks.
    pub fn networks(&self) -> &[Cidr] {
        &self.networks
    }

    /// Whether no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.networks.is_empty()
    }

    /// Whether `ip` is a trusted proxy.
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        self.networks.iter().any(|n| n.contains(ip))
    }

    /// The client's address: `peer` (IPv4-mapped IPv6 as IPv4), unless `peer` is a trusted
    /// proxy; then the right-most hop of the forwarding header that is not a trusted proxy
    /// (or the last trusted one, if a hop cannot be read or all are trusted; at most 16 hops
    /// are read).
    #[inline]
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if self.networks.is_empty() {
            return peer;
        }
        self.forwarded_client(peer, headers)
    }

    /// [`client_ip`](Self::client_ip) with trusted proxies: out of line, so that a layer without
    /// any pays only for the check above.
    #[inline(never)]
    fn forwarded_client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.is_trusted(peer) {
            return peer;
        }
        let mut hops = Hops::default();
        match self.header {
            ForwardedHeader::XForwardedFor => {
                for value in headers.get_all(X_FORWARDED_FOR) {
                    let Ok(value) = value.to_str() else {
                        hops.push(None);
                        continue;
                    };
                    for hop in value.split(',').map(str::trim).filter(|h| !h.is_empty()) {
                        hops.push(node(hop));
                    }
                }
            }
            ForwardedHeader::Forwarded => {
                for value in headers.get_all(FORWARDED) {
                    let Ok(value) = value.to_str() else {
                        hops.push(None);
                        continue;
                    };
                    for element in unquoted_split(value, b',').map(str::trim) {
                        if !element.is_empty() {
                            hops.push(forwarded_for(element));
                        }
                    }
                }
            }
        }
        let mut last = peer;
        for hop in hops.rev() {
            match hop {
                Some(ip) if !self.is_trusted(ip) => return ip,
                Some(ip) => last = ip,
                None => return last,
            }
        }
        last
    }
}

/// The last [`MAX_HOPS`] hops of a header, read left to right; `None` for one that cannot be
/// read. On the stack: reading a header allocates nothing.
#[derive(Default)]
struct Hops {
    ring: [Option<IpAddr>; MAX_HOPS],
    pushed: usize,
}

impl Hops {
    fn push(&mut self, hop: Option<IpAddr>) {
        self.ring[self.pushed % MAX_HOPS] = hop.map(|ip| ip.to_canonical());
        self.pushed += 1;
    }

    /// Right to left.
    fn rev(&self) -> impl Iterator<Item = Option<IpAddr>> + '_ {
        (self.pushed.saturating_sub(MAX_HOPS)..self.pushed)
            .rev()
            .map(|i| self.ring[i % MAX_HOPS])
    }
}

/// One hop: `192.0.2.1`, `192.0.2.1:443`, `2001:db8::1`, `[2001:db8::1]` or
/// `[2001:db8::1]:443`. Anything else (`unknown`, `_hidden`, garbage) is `None`.
fn node(s: &str) -> Option<IpAddr> {
    if let Some(rest) = s.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        if !(after.is_empty() || port(after)) {
            return None;
        }
        return v6.parse::<Ipv6Addr>().ok().map(IpAddr::V6);
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    let (v4, p) = s.split_once(':')?;
    if !port(p) {
        return None;
    }
    v4.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
}

/// `:` followed by 1 to 5 digits (the `:port` of a hop), or, given without its colon, the
/// digits alone.
fn port(s: &str) -> bool {
    let digits = s.strip_prefix(':').unwrap_or(s);
    (1..=5).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

/// The `for` node of one `Forwarded` element (`for=192.0.2.1;proto=https`), if readable.
fn forwarded_for(element: &str) -> Option<IpAddr> {
    let value = unquoted_split(element, b';').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("for")
            .then(|| value.trim())
    })?;
    let value = match value.strip_prefix('"') {
        Some(quoted) => {
            let inner = quoted.strip_suffix('"')?;
            // An escape has no place in an address.
            (!inner.contains(['\\', '"'])).then_some(inner)?
        }
        None => value,
    };
    node(value)
}

/// `s` split at each `sep` outside a quoted string (RFC 9110 §5.6.4, with `\` escapes).
fn unquoted_split(s: &str, sep: u8) -> impl Iterator<Item = &str> {
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    let mut quoted = false;
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        while i < bytes.len() {
            let b = bytes[i];
            if quoted && b == b'\\' {
                i += 2;
                continue;
            }
            if b == b'"' {
                quoted = !quoted;
            } else if b == sep && !quoted {
                let part = &s[start..i];
                i += 1;
                start = i;
                return Some(part);
            }
            i += 1;
        }
        done = true;
        Some(&s[start.min(s.len())..])
    })
}

/// The key a client is counted under: its IPv4 address, or the /64 of its IPv6 address (one
/// customer's allocation: a guesser on one network cannot get a fresh key per address),
/// written in hexadecimal on the stack: `throttle:4:c6336407` for 198.51.100.7,
/// `throttle:6:20010db800000001` for 2001:db8:0:1::/64, `throttle:unknown` without a peer.
#[derive(Clone, Copy)]
pub(crate) struct ClientKey {
    buf: [u8; 27],
    len: u8,
}

impl fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(std::str::from_utf8(self.as_bytes()).unwrap_or("throttle:?"))
    }
}

/// `x` in lowercase hexadecimal, eight digits, without a loop: each nibble is spread to a byte,
/// then turned into its digit (`'0' + n`, plus `'a' - '0' - 10` for n ≥ 10).
fn hex8(x: u32) -> [u8; 8] {
    let mut v = u64::from(x);
    v = (v | (v << 16)) & 0x0000_ffff_0000_ffff;
    v = (v | (v << 8)) & 0x00ff_00ff_00ff_00ff;
    v = (v | (v << 4)) & 0x0f0f_0f0f_0f0f_0f0f;
    let letters = ((v + 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101;
    (v + 0x3030_3030_3030_3030 + letters * 0x27).to_be_bytes()
}

impl ClientKey {
    /// The key of requests whose peer address is not known (they share one).
    pub(crate) fn unknown() -> Self {
        Self::new(b"throttle:unknown")
    }

    #[inline]
    fn new(text: &[u8]) -> Self {
        let mut buf = [0; 27];
        buf[..text.len()].copy_from_slice(text);
        Self {
            buf,
            len: text.len() as u8,
        }
    }

    /// The key of `ip`.
    #[inline]
    pub(crate) fn of(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => {
                let mut k = Self::new(b"throttle:4:");
                k.buf[11..19].copy_from_slice(&hex8(v4.to_bits()));
                k.len = 19;
                k
            }
            IpAddr::V6(v6) => {
                let mut k = Self::new(b"throttle:6:");
                let bits = v6.to_bits();
                k.buf[11..19].copy_from_slice(&hex8((bits >> 96) as u32));
                k.buf[19..27].copy_from_slice(&hex8((bits >> 64) as u32));
                k.len = 27;
                k
            }
        }
    }

    #[inline]
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn key(s: &str) -> String {
        String::from_utf8(ClientKey::of(ip(s)).as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn an_ipv6_client_is_counted_by_its_64() {
        assert_eq!(key("2001:db8:0:1::1"), "throttle:6:20010db800000001");
        assert_eq!(key("2001:db8:0:1:ffff:1:2:3"), key("2001:db8:0:1::1"));
        assert_ne!(key("2001:db8:0:2::1"), key("2001:db8:0:1::1"));
        assert_eq!(key("::1"), "throttle:6:0000000000000000");
        assert_eq!(
            key("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
            "throttle:6:ffffffffffffffff"
        );
    }

    #[test]
    fn hex8_writes_every_digit() {
        for x in [0, 1, 0x0123_4567, 0x89ab_cdef, 0xffff_ffff, 0xa0b1_c2d3] {
            assert_eq!(hex8(x), *format!("{x:08x}").as_bytes(), "{x:x}");
        }
    }

    #[test]
    fn an_ipv4_client_is_counted_by_its_address_also_when_mapped() {
        assert_eq!(key("198.51.100.7"), "throttle:4:c6336407");
        assert_eq!(key("0.0.0.0"), "throttle:4:00000000");
        assert_eq!(key("255.255.255.255"), "throttle:4:ffffffff");
        assert_eq!(key("::ffff:198.51.100.7"), "throttle:4:c6336407");
        assert_ne!(key("198.51.100.8"), key("198.51.100.7"));
    }

    #[test]
    fn networks_parse_and_contain() {
        let p = TrustedProxies::parse("10.0.0.0/8, 192.0.2.1,fd00::/8,,").unwrap();
        assert_eq!(p.networks().len(), 3);
        assert!(p.is_trusted(ip("10.255.0.1")));
        assert!(p.is_trusted(ip("::ffff:10.0.0.1")));
        assert!(p.is_trusted(ip("192.0.2.1")));
        assert!(!p.is_trusted(ip("192.0.2.2")));
        assert!(p.is_trusted(ip("fd12::1")));
        assert!(!p.is_trusted(ip("fe80::1")));
        assert!("0.0.0.0/0".parse::<Cidr>().unwrap().contains(ip("1.2.3.4")));
        assert!(!"0.0.0.0/0".parse::<Cidr>().unwrap().contains(ip("::2")));
        assert_eq!(
            TrustedProxies::parse("10.0.0.0/8, 10.0.0.1/8"),
            Err(TrustedProxiesError::HostBits(2))
        );
        for bad in ["10.0.0.0/33", "nope", "10.0.0.0/", "10.0.0.0/+8", "::/129"] {
            assert_eq!(
                TrustedProxies::parse(bad),
                Err(TrustedProxiesError::Invalid(1)),
                "{bad}"
            );
        }
    }

    fn client(header: ForwardedHeader, peer: &str, values: &[&'static str]) -> IpAddr {
        let proxies = TrustedProxies::parse("10.0.0.0/8, 2001:db8:ffff::/48")
            .unwrap()
            .header(header);
        let name = match header {
            ForwardedHeader::XForwardedFor => X_FORWARDED_FOR,
            ForwardedHeader::Forwarded => FORWARDED,
        };
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(&name, HeaderValue::from_static(v));
        }
        proxies.client_ip(ip(peer), &headers)
    }

    #[test]
    fn x_forwarded_for_is_read_from_the_right_past_trusted_hops() {
        use ForwardedHeader::XForwardedFor as X;
        let spoofed = "6.6.6.6, 198.51.100.1, 10.0.0.9";
        assert_eq!(client(X, "10.0.0.1", &[spoofed]), ip("198.51.100.1"));
        assert_eq!(client(X, "192.0.2.50", &[spoofed]), ip("192.0.2.50"));
        // Two fields are one list.
        assert_eq!(
            client(X, "10.0.0.1", &["6.6.6.6", "198.51.100.1"]),
            ip("198.51.100.1")
        );
        assert_eq!(
            client(X, "10.0.0.1", &["198.51.100.1:4711"]),
            ip("198.51.100.1")
        );
        assert_eq!(
            client(X, "10.0.0.1", &["[2001:db8::1]:4711"]),
            ip("2001:db8::1")
        );
        assert_eq!(client(X, "10.0.0.1", &["2001:db8::1"]), ip("2001:db8::1"));
        // Unreadable hop: the last trusted hop.
        assert_eq!(
            client(X, "10.0.0.1", &["198.51.100.1, unknown, 10.0.0.7"]),
            ip("10.0.0.7")
        );
        assert_eq!(
            client(X, "10.0.0.1", &["198.51.100.1, garbage"]),
            ip("10.0.0.1")
        );
        // All trusted, or no header: the left-most trusted, or the peer.
        assert_eq!(
            client(X, "10.0.0.1", &["10.0.0.3, 10.0.0.2"]),
            ip("10.0.0.3")
        );
        assert_eq!(client(X, "10.0.0.1", &[]), ip("10.0.0.1"));
        // The other header is the client's own: not read.
        assert_eq!(
            client(ForwardedHeader::Forwarded, "10.0.0.1", &[]),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn forwarded_is_read_from_the_right_past_trusted_hops() {
        use ForwardedHeader::Forwarded as F;
        let v = r#"for=6.6.6.6, for="[2001:db8::17]:4711";proto=https, for=10.0.0.2;by=10.0.0.1"#;
        assert_eq!(client(F, "10.0.0.1", &[v]), ip("2001:db8::17"));
        assert_eq!(client(F, "2001:db8:ffff::1", &[v]), ip("2001:db8::17"));
        assert_eq!(client(F, "192.0.2.1", &[v]), ip("192.0.2.1"));
        assert_eq!(
            client(F, "10.0.0.1", &[r#"FOR=198.51.100.1;host="a,b;c""#]),
            ip("198.51.100.1")
        );
        assert_eq!(
            client(F, "10.0.0.1", &["for=_hidden, for=10.0.0.4"]),
            ip("10.0.0.4")
        );
        assert_eq!(client(F, "10.0.0.1", &["proto=https"]), ip("10.0.0.1"));
        assert_eq!(
            client(F, "10.0.0.1", &[r#"for="198.51.100.1"#]),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn at_most_sixteen_hops_are_read() {
        let many = ["10.0.0.1"; 40].join(", ");
        let value = format!("198.51.100.1, {many}");
        let proxies = TrustedProxies::parse("10.0.0.0/8").unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(X_FORWARDED_FOR, HeaderValue::from_str(&value).unwrap());
        assert_eq!(proxies.client_ip(ip("10.0.0.9"), &headers), ip("10.0.0.1"));
    }
}
