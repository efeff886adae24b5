//! Arbitrary bytes as `X-Forwarded-For` or `Forwarded` header values →
//! `throttle::TrustedProxies::client_ip`, with the invariants it must keep.
//!
//! Input: the first byte picks the header (bit 0) and the peer (bits 1–2: a trusted IPv4, a
//! trusted IPv6, an IPv4-mapped trusted IPv4, an untrusted address); the rest, split at `\n`,
//! are the header values (four at most).
#![no_main]

use std::net::IpAddr;

use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use mcp_server_auth::throttle::{ForwardedHeader, TrustedProxies};

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let (header, name, marker) = if control & 1 == 0 {
        (ForwardedHeader::XForwardedFor, "x-forwarded-for", "198.51.100.77")
    } else {
        (ForwardedHeader::Forwarded, "forwarded", "for=198.51.100.77")
    };
    let peer: IpAddr = ["10.0.0.1", "fd00::1", "::ffff:10.0.0.2", "203.0.113.5"]
        [usize::from(control >> 1 & 3)]
    .parse()
    .unwrap();
    let proxies = TrustedProxies::parse("10.0.0.0/8, fd00::/8, 192.0.2.0/24")
        .unwrap()
        .header(header);
    let name = HeaderName::from_static(name);
    let mut headers = HeaderMap::new();
    for part in rest.split(|&b| b == b'\n').take(4) {
        if let Ok(v) = HeaderValue::from_bytes(part) {
            headers.append(&name, v);
        }
    }
    let client = proxies.client_ip(peer, &headers);
    let canonical = peer.to_canonical();
    // Never an IPv4-mapped IPv6 address: one IPv4 client has one key.
    assert_eq!(client, client.to_canonical());
    if !proxies.is_trusted(canonical) {
        // From an untrusted peer the header is never read.
        assert_eq!(client, canonical);
    } else if !proxies.is_trusted(client) {
        // An untrusted client came from the header: never the (trusted) peer.
        assert_ne!(client, canonical);
    }
    // The same answer twice.
    assert_eq!(client, proxies.client_ip(peer, &headers));
    // An untrusted hop added on the right by a trusted proxy is the client, whatever came
    // before it (the client's own part of the header is never believed over it).
    headers.append(&name, HeaderValue::from_static(marker));
    let appended = proxies.client_ip(peer, &headers);
    if proxies.is_trusted(canonical) {
        assert_eq!(appended, "198.51.100.77".parse::<IpAddr>().unwrap());
    } else {
        assert_eq!(appended, canonical);
    }
});
