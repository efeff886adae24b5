//! Failed-authentication throttling over real sockets: clients on 127.0.0.1 and 127.0.0.2, the
//! example's rmcp server behind the stack `EnvConfig` builds (Origin → throttle → auth), and a
//! counting verifier to show that a blocked client's credentials are never checked.

mod common;
#[path = "../examples/quickstart.rs"]
#[allow(dead_code, unreachable_pub)]
mod quickstart;

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{Router, routing::post};
use http::{
    Method,
    header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE},
};
use mcp_server_auth::{
    AuthLayer, ProtectedResourceMetadata, ResourceUrl, Verifier,
    bearer::StaticBearer,
    config::EnvConfig,
    throttle::{ForwardedHeader, ThrottleLayer, TrustedProxies},
    verifier::{AuthRequest, Schemes, Verdict},
};
use serde_json::{Value, json};

use common::{TestServer, client_from, serve_axum_with_peers};

const GOOD: &str = "Z29vZC10b2tlbi1mb3ItdGhyb3R0bGUtdGVzdHM";
const WRONG: &str = "d3JvbmctdG9rZW4tZm9yLXRocm90dGxlLXRlc3Rz";
const A: [u8; 4] = [127, 0, 0, 1];
const B: [u8; 4] = [127, 0, 0, 2];

/// The exact body of every `429`.
fn throttled_body() -> Value {
    json!({
        "error": "too_many_requests",
        "error_description": "Too many failed authentication attempts from this address: wait \
            the number of seconds in Retry-After, then try again with valid credentials"
    })
}

/// The example server, as `EnvConfig` configures it, with a limit of `limit`.
async fn example(limit: &str, extra: &[(&'static str, &'static str)]) -> TestServer {
    let mut vars = vec![
        ("MCP_AUTH_BEARER_TOKEN", GOOD),
        ("MCP_AUTH_FAILURE_LIMIT", limit),
    ];
    vars.extend_from_slice(extra);
    let config = EnvConfig::from_vars(vars).unwrap();
    let (app, _shutdown) = quickstart::app(&config).await.unwrap();
    serve_axum_with_peers(app).await
}

/// A POST of an MCP `initialize` to `/mcp`, with `token` if given.
async fn call(
    from: [u8; 4],
    server: &TestServer,
    token: Option<&str>,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut req = client_from(from)
        .post(server.url("/mcp"))
        .header(CONTENT_TYPE, "application/json")
        .header("accept", "application/json, text/event-stream")
        .json(
            &json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{
            "protocolVersion":"2025-11-25","capabilities":{},
            "clientInfo":{"name":"throttle-test","version":"0"}}}),
        );
    if let Some(t) = token {
        req = req.header(AUTHORIZATION, format!("Bearer {t}"));
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

async fn status(from: [u8; 4], server: &TestServer, token: Option<&str>) -> u16 {
    call(from, server, token, &[]).await.status().as_u16()
}

/// Checks a `429` field by field.
async fn assert_throttled(res: reqwest::Response, window_secs: u64) {
    assert_eq!(res.status(), 429);
    let retry: u64 = res.headers()[RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=window_secs).contains(&retry), "Retry-After {retry}");
    assert_eq!(res.headers()[CACHE_CONTROL], "no-store");
    assert_eq!(res.headers()[CONTENT_TYPE], "application/json");
    assert!(res.headers().get(WWW_AUTHENTICATE).is_none());
    assert_eq!(res.json::<Value>().await.unwrap(), throttled_body());
}

#[tokio::test]
async fn a_client_past_the_limit_gets_429_and_another_address_does_not() {
    let server = example("3", &[]).await;
    for _ in 0..3 {
        assert_eq!(status(A, &server, Some(WRONG)).await, 401);
    }
    assert_throttled(call(A, &server, Some(WRONG), &[]).await, 60).await;
    // Blocked whatever the credentials: the right token is not even checked.
    assert_throttled(call(A, &server, Some(GOOD), &[]).await, 60).await;
    // The other address is counted apart.
    assert_eq!(status(B, &server, Some(GOOD)).await, 200);
    assert_eq!(status(B, &server, Some(WRONG)).await, 401);
    assert_eq!(status(B, &server, Some(GOOD)).await, 200);
}

#[tokio::test]
async fn a_limit_of_zero_never_throttles() {
    let server = example("0", &[]).await;
    for _ in 0..30 {
        assert_eq!(status(A, &server, Some(WRONG)).await, 401);
    }
    assert_eq!(status(A, &server, Some(GOOD)).await, 200);
}

#[tokio::test]
async fn successes_do_not_count() {
    let server = example("2", &[]).await;
    for _ in 0..10 {
        assert_eq!(status(A, &server, Some(GOOD)).await, 200);
    }
    assert_eq!(status(A, &server, Some(WRONG)).await, 401);
    assert_eq!(status(A, &server, Some(GOOD)).await, 200);
    assert_eq!(status(A, &server, Some(WRONG)).await, 401);
    // Two failures: the limit. A success did not reset the count either.
    assert_eq!(status(A, &server, Some(GOOD)).await, 429);
}

#[tokio::test]
async fn requests_without_credentials_are_never_blocked_nor_counted() {
    let server = example("1", &[]).await;
    for _ in 0..5 {
        assert_eq!(status(A, &server, None).await, 401);
    }
    assert_eq!(status(A, &server, Some(GOOD)).await, 200);
    assert_eq!(status(A, &server, Some(WRONG)).await, 401);
    assert_eq!(status(A, &server, Some(GOOD)).await, 429);
    // First contact still gets its challenge, not a 429.
    let res = call(A, &server, None, &[]).await;
    assert_eq!(res.status(), 401);
    assert!(res.headers().contains_key(WWW_AUTHENTICATE));
}

/// A verifier that counts the credentials it checks.
#[derive(Debug, Clone)]
struct Counting {
    tokens: StaticBearer,
    checked: Arc<AtomicUsize>,
}

impl Verifier for Counting {
    fn schemes(&self) -> Schemes {
        Schemes::BEARER
    }
    fn verify(&self, request: &AuthRequest<'_>) -> Verdict {
        self.checked.fetch_add(1, Ordering::SeqCst);
        self.tokens.verify(request)
    }
}

/// A small app behind throttle → auth (with the metadata document), counting verifications.
async fn counted(throttle: ThrottleLayer) -> (TestServer, Arc<AtomicUsize>) {
    let checked = Arc::new(AtomicUsize::new(0));
    let verifier = Counting {
        tokens: StaticBearer::new([("good", GOOD)]).unwrap(),
        checked: checked.clone(),
    };
    let metadata =
        ProtectedResourceMetadata::builder(ResourceUrl::parse("http://127.0.0.1/mcp").unwrap())
            .authorization_server("https://auth.example.com")
            .build()
            .unwrap();
    let auth = AuthLayer::builder(verifier)
        .metadata(metadata)
        .build()
        .unwrap();
    let app = Router::new()
        .route(
            "/mcp",
            post(|| async { "ok" }).options(|| async { "preflight" }),
        )
        .layer(auth)
        .layer(throttle);
    (serve_axum_with_peers(app).await, checked)
}

#[tokio::test]
async fn credentials_are_not_checked_while_blocked() {
    let (server, checked) = counted(ThrottleLayer::new(2, Duration::from_secs(60))).await;
    assert_eq!(status(A, &server, Some(WRONG)).await, 401);
    assert_eq!(status(A, &server, Some(WRONG)).await, 401);
    assert_eq!(checked.load(Ordering::SeqCst), 2);
    for token in [WRONG, GOOD, WRONG, GOOD] {
        assert_throttled(call(A, &server, Some(token), &[]).await, 60).await;
    }
    assert_eq!(
        checked.load(Ordering::SeqCst),
        2,
        "a blocked request was verified"
    );
    assert_eq!(status(B, &server, Some(GOOD)).await, 200);
    assert_eq!(checked.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn the_metadata_document_and_preflights_are_never_blocked_nor_counted() {
    let (server, _) = counted(ThrottleLayer::new(1, Duration::from_secs(60))).await;
    let prm = server.url("/.well-known/oauth-protected-resource/mcp");
    let bearer = format!("Bearer {WRONG}");
    let metadata_and_preflight = |from| {
        let client = client_from(from);
        let (prm, bearer, mcp) = (prm.clone(), bearer.clone(), server.url("/mcp"));
        async move {
            let res = client.get(&prm).header(AUTHORIZATION, &bearer).send();
            let metadata = res.await.unwrap().status().as_u16();
            let res = client
                .request(Method::OPTIONS, &mcp)
                .header(AUTHORIZATION, &bearer);
            let preflight = res.send().await.unwrap().status().as_u16();
            (metadata, preflight)
        }
    };
    // A is blocked; its metadata reads and preflights still go through.
    assert_eq!(status(A, &server, Some(WRONG)).await, 401);
    assert_eq!(status(A, &server, Some(GOOD)).await, 429);
    let (metadata, preflight) = metadata_and_preflight(A).await;
    assert_eq!(metadata, 200);
    assert_ne!(preflight, 429);
    // B sends them with wrong credentials (the preflight gets its 401 from the auth layer), and
    // none is counted: with a limit of 1, one counted failure would block B's next request.
    for _ in 0..3 {
        let (metadata, preflight) = metadata_and_preflight(B).await;
        assert_eq!(metadata, 200);
        assert_eq!(preflight, 401);
    }
    assert_eq!(status(B, &server, Some(GOOD)).await, 200);
}

#[tokio::test]
async fn the_window_lets_a_blocked_client_through_again() {
    let (server, _) = counted(ThrottleLayer::new(1, Duration::from_millis(300))).await;
    assert_eq!(status(A, &server, Some(WRONG)).await, 401);
    assert_eq!(status(A, &server, Some(GOOD)).await, 429);
    // Poll, bounded: the window ends and the right token is accepted again.
    let mut through = false;
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(25)).await;
        match status(A, &server, Some(GOOD)).await {
            429 => continue,
            200 => {
                through = true;
                break;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(through, "still blocked after 200 polls");
}

/// Throttle → auth with 127.0.0.1 as the only trusted proxy, reading `header`.
async fn behind_proxy(header: ForwardedHeader) -> TestServer {
    let proxies = TrustedProxies::parse("127.0.0.1").unwrap().header(header);
    let throttle = ThrottleLayer::new(2, Duration::from_secs(60)).trusted_proxies(proxies);
    counted(throttle).await.0
}

#[tokio::test]
async fn x_forwarded_for_is_believed_only_from_a_trusted_proxy() {
    let server = behind_proxy(ForwardedHeader::XForwardedFor).await;
    let xff = |v: &'static str| [("x-forwarded-for", v)];
    // Through the trusted proxy (A), the client is the right-most untrusted hop.
    let spoofed_then_real = "203.0.113.66, 198.51.100.1";
    for _ in 0..2 {
        let res = call(A, &server, Some(WRONG), &xff(spoofed_then_real)).await;
        assert_eq!(res.status(), 401);
    }
    let res = call(A, &server, Some(GOOD), &xff("198.51.100.1")).await;
    assert_eq!(res.status(), 429);
    // Another client behind the same proxy, and the proxy itself, are not blocked.
    let res = call(A, &server, Some(GOOD), &xff("198.51.100.2")).await;
    assert_eq!(res.status(), 200);
    assert_eq!(status(A, &server, Some(GOOD)).await, 200);
    // The spoofed left-most hop was never the key.
    let res = call(A, &server, Some(GOOD), &xff("203.0.113.66")).await;
    assert_eq!(res.status(), 200);

    // From an untrusted peer (B) the header is ignored: a new value per guess changes nothing.
    for v in ["192.0.2.1", "192.0.2.2"] {
        assert_eq!(call(B, &server, Some(WRONG), &xff(v)).await.status(), 401);
    }
    assert_eq!(
        call(B, &server, Some(GOOD), &xff("192.0.2.3"))
            .await
            .status(),
        429
    );
}

#[tokio::test]
async fn forwarded_is_believed_only_from_a_trusted_proxy() {
    let server = behind_proxy(ForwardedHeader::Forwarded).await;
    let fwd = |v: &'static str| [("forwarded", v)];
    let real = r#"for=203.0.113.66, for="[2001:db8:0:1::7]:4711";proto=http"#;
    for _ in 0..2 {
        assert_eq!(
            call(A, &server, Some(WRONG), &fwd(real)).await.status(),
            401
        );
    }
    // Same /64, another address: the same client.
    let same_64 = r#"for="[2001:db8:0:1::8]""#;
    assert_eq!(
        call(A, &server, Some(GOOD), &fwd(same_64)).await.status(),
        429
    );
    let other_64 = r#"for="[2001:db8:0:2::8]""#;
    assert_eq!(
        call(A, &server, Some(GOOD), &fwd(other_64)).await.status(),
        200
    );
    // X-Forwarded-For is not the configured header: not read, the client is the proxy.
    let xff = [("x-forwarded-for", "2001:db8:0:1::7")];
    assert_eq!(call(A, &server, Some(GOOD), &xff).await.status(), 200);

    for v in ["for=192.0.2.1", "for=192.0.2.2"] {
        assert_eq!(call(B, &server, Some(WRONG), &fwd(v)).await.status(), 401);
    }
    assert_eq!(
        call(B, &server, Some(GOOD), &fwd("for=192.0.2.3"))
            .await
            .status(),
        429
    );
}
