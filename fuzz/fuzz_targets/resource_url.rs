//! Arbitrary text → `ResourceUrl::parse` and `parse_allowing_plain_http`. An accepted URL is
//! canonical (it re-parses to itself), its metadata URL is an absolute URL with the
//! well-known path inserted, and a metadata document for it builds, serializes, and is served
//! at that path.
#![no_main]

use std::task::{Context, Poll, Waker};

use http::{Method, Request, StatusCode};
use libfuzzer_sys::fuzz_target;
use mcp_server_auth::{
    ProtectedResourceMetadata, ResourceUrl,
    metadata::MetadataBuilder,
    resource::{ResourceUrlError, WELL_KNOWN},
};
use tower_service::Service;

fn check(r: &ResourceUrl, input: &str) {
    let canonical = r.as_str();
    assert_eq!(r.to_string(), canonical);
    // Canonical form is a fixed point.
    let again = ResourceUrl::parse_allowing_plain_http(canonical)
        .unwrap_or_else(|e| panic!("canonical {canonical:?} of {input:?} re-parses: {e}"));
    assert_eq!(again.as_str(), canonical, "input {input:?}");
    assert_eq!(&again, r);
    assert!(r.matches(canonical));
    assert!(
        r.matches(input),
        "{input:?} should match its own canonical form {canonical:?}"
    );
    assert!(matches!(r.scheme(), "https" | "http"));
    // No fragment; no user information (an `@` in the path or query is fine).
    assert!(!canonical.contains('#') && !r.origin().contains('@'));
    // The parts put back together give the whole.
    let mut whole = format!("{}{}", r.origin(), r.path());
    if let Some(q) = r.query() {
        whole.push('?');
        whole.push_str(q);
    }
    assert_eq!(whole, canonical);
    assert!(r.origin().starts_with(&format!("{}://", r.scheme())));
    assert!(r.origin()[r.scheme().len() + 3..].starts_with(r.host()));
    assert_eq!(r.host(), r.host().to_ascii_lowercase());
    assert_eq!(r.is_origin(), r.path().is_empty() && r.query().is_none());
    assert!(r.root().is_origin());
    assert_eq!(r.root().as_str(), r.origin());

    // The metadata URL: absolute, same origin, path inserted after it.
    let path = r.metadata_path();
    let url = r.metadata_url();
    assert!(path.starts_with(WELL_KNOWN));
    assert!(url.contains("/.well-known/oauth-protected-resource"));
    assert_eq!(url, format!("{}{}", r.origin(), path));
    let uri: http::Uri = url
        .parse()
        .unwrap_or_else(|e| panic!("metadata URL {url:?}: {e}"));
    assert_eq!(uri.scheme_str(), Some(r.scheme()));
    assert!(uri.authority().is_some());
    let m = ResourceUrl::parse_allowing_plain_http(&url)
        .unwrap_or_else(|e| panic!("metadata URL {url:?} of {canonical:?}: {e}"));
    assert_eq!(m.origin(), r.origin());
    assert_eq!(m.as_str(), url);

    // The document builds and serializes, and the endpoint serves it at that path.
    let doc = ProtectedResourceMetadata::builder(r.clone())
        .authorization_server("https://auth.example.com")
        .scopes_supported(["mcp:read"])
        .build()
        .unwrap_or_else(|e| panic!("metadata for {canonical:?}: {e}"));
    assert_eq!(doc.url().as_deref(), Some(url.as_str()));
    let json = serde_json::to_string(&doc).unwrap();
    let back: ProtectedResourceMetadata = serde_json::from_str(&json).unwrap();
    assert_eq!(back.resource(), canonical);
    let uri: http::Uri = path
        .parse()
        .unwrap_or_else(|e| panic!("metadata path {path:?}: {e}"));
    let mut service = doc.clone().into_service().serve_at_root();
    let req = Request::builder()
        .method(Method::GET)
        .uri(uri)
        .body(())
        .unwrap();
    let mut cx = Context::from_waker(Waker::noop());
    assert!(matches!(
        Service::<Request<()>>::poll_ready(&mut service, &mut cx),
        Poll::Ready(Ok(()))
    ));
    let res = service.call(req).into_inner().unwrap();
    assert_eq!(res.status(), StatusCode::OK, "GET {path} for {canonical:?}");
}

fn metadata_field(input: &str) {
    // The same text as an authorization server or a URL field of the document.
    let base = || {
        ProtectedResourceMetadata::builder(
            ResourceUrl::parse("https://mcp.example.com/mcp").unwrap(),
        )
    };
    let issuer: MetadataBuilder = base().authorization_server(input);
    if issuer.build().is_ok() {
        let r = ResourceUrl::parse(input).expect("an accepted issuer is a resource URL");
        assert!(r.query().is_none());
    }
    let jwks = base()
        .authorization_server("https://a.example")
        .jwks_uri(input)
        .build();
    assert_eq!(jwks.is_ok(), ResourceUrl::parse(input).is_ok());
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let strict = ResourceUrl::parse(input);
    let lax = ResourceUrl::parse_allowing_plain_http(input);
    match (&strict, &lax) {
        (Ok(s), Ok(l)) => {
            assert_eq!(s, l);
            assert!(s.scheme() == "https" || s.is_loopback());
        }
        (Err(ResourceUrlError::InsecureHttp(_)), Ok(l)) => {
            assert!(l.scheme() == "http" && !l.is_loopback());
        }
        (Err(a), Err(b)) => assert_eq!(a, b),
        (s, l) => panic!("strict {s:?} vs lax {l:?}"),
    }
    if let Ok(r) = &lax {
        check(r, input);
    }
    if let Err(e) = &lax {
        // Error messages never repeat user information (`user:password@`). Checked on the URL
        // the error carries: the fixed text around it says `user@host`, which a one-letter
        // "password" like `r` would match.
        let msg = match e {
            ResourceUrlError::NotAbsolute(url)
            | ResourceUrlError::Scheme(url)
            | ResourceUrlError::Fragment(url)
            | ResourceUrlError::UserInfo(url)
            | ResourceUrlError::InsecureHttp(url)
            | ResourceUrlError::ChallengeParam(url) => url.clone(),
            other => other.to_string(),
        };
        if input.matches('@').count() == 1 {
            let userinfo = &input[..input.find('@').unwrap()];
            if let Some(start) = userinfo.find("://") {
                let secret = &userinfo[start + 3..];
                // (`…` is the mark redaction writes: a "secret" of just `…` reads the same.)
                if !secret.is_empty() && secret != "…" && !secret.contains(['/', '?', '#']) {
                    assert!(!msg.contains(&format!("{secret}@")), "{msg}");
                }
            }
        }
    }
    metadata_field(input);
});
