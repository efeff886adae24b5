//! Origin validation (MCP 2025-11-25, Transports, Streamable HTTP “Security Warning”: DNS
//! rebinding; a present, invalid `Origin` gets `403`) over real HTTP: an axum 0.8 server on
//! 127.0.0.1 with `OriginLayer` outside the real `AuthLayer`, and reqwest (raw TCP for bytes no
//! client would send).

mod common;

use std::{future::Future, time::Duration};

use axum::{Router, routing::post};
use common::TestServer;
use http::{
    HeaderName, Method,
    header::{
        ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS,
        ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, AUTHORIZATION,
        CACHE_CONTROL, CONTENT_TYPE, ORIGIN, WWW_AUTHENTICATE,
    },
};
use mcp_server_auth::{
    AuthInfo, AuthLayer, ProtectedResourceMetadata, ResourceUrl,
    bearer::StaticBearer,
    origin::{AllowedOrigins, OriginLayer},
};
use serde_json::{Value, json};
use tower_http::cors::{AllowOrigin, CorsLayer};

const GOOD: &str = "a-token-of-at-least-16-bytes";
const LOCAL: &str = "http://localhost:6274";
const EVIL: &str = "http://evil.example.com";
const PRM_PATH: &str = "/.well-known/oauth-protected-resource/mcp";

/// Every test is bounded in time, whatever the client timeout.
async fn bounded<F: Future<Output = ()>>(test: F) {
    tokio::time::timeout(Duration::from_secs(30), test)
        .await
        .expect("test timed out");
}

async fn whoami(who: AuthInfo) -> String {
    format!("{} {}", who.subject(), who.method())
}

fn auth() -> AuthLayer<StaticBearer> {
    let metadata = ProtectedResourceMetadata::builder(
        ResourceUrl::parse("https://mcp.example.com/mcp").unwrap(),
    )
    .authorization_server("https://auth.example.com")
    .scopes_supported(["mcp:read"])
    .build()
    .unwrap();
    AuthLayer::builder(StaticBearer::new([("t", GOOD)]).unwrap())
        .metadata(metadata)
        .build()
        .unwrap()
}

fn routes() -> Router {
    Router::new().route("/mcp", post(whoami).get(whoami).delete(whoami))
}

/// Origin (outer) → auth (inner) → the MCP route.
async fn serve() -> TestServer {
    let app = routes().layer(auth()).layer(OriginLayer::localhost());
    common::serve_axum(app).await
}

/// The recommended stack: CORS (outermost, sharing the Origin allow-list) → Origin → auth.
async fn serve_with_cors() -> TestServer {
    let origins = AllowedOrigins::localhost()
        .allow("https://app.example.com")
        .unwrap();
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::predicate({
            let origins = origins.clone();
            move |origin, _| origins.is_allowed(origin)
        }))
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers([
            AUTHORIZATION,
            CONTENT_TYPE,
            HeaderName::from_static("mcp-protocol-version"),
        ])
        .expose_headers([WWW_AUTHENTICATE]);
    let app = routes()
        .layer(auth())
        .layer(OriginLayer::new(origins))
        .layer(cors);
    common::serve_axum(app).await
}

fn post_mcp(
    server: &TestServer,
    origin: Option<&str>,
    token: Option<&str>,
) -> reqwest::RequestBuilder {
    let mut req = common::client()
        .post(server.url("/mcp"))
        .header(CONTENT_TYPE, "application/json")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#);
    if let Some(o) = origin {
        req = req.header(ORIGIN, o);
    }
    if let Some(t) = token {
        req = req.header(AUTHORIZATION, format!("Bearer {t}"));
    }
    req
}

fn header(res: &reqwest::Response, name: HeaderName) -> Option<&str> {
    res.headers().get(name).map(|v| v.to_str().unwrap())
}

/// The Origin refusal: 403, JSON-RPC error without id, no-store, and no challenge at all.
async fn assert_refused(res: reqwest::Response, context: &str) {
    assert_eq!(res.status(), 403, "{context}");
    assert!(
        common::challenges(&res).is_empty(),
        "{context}: no WWW-Authenticate"
    );
    assert_eq!(
        header(&res, CONTENT_TYPE),
        Some("application/json"),
        "{context}"
    );
    assert_eq!(header(&res, CACHE_CONTROL), Some("no-store"), "{context}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body,
        json!({"jsonrpc":"2.0","error":{"code":-32600,"message":"Origin not allowed"}}),
        "{context}"
    );
    assert!(body.get("id").is_none(), "{context}");
}

#[tokio::test]
async fn evil_origin_with_a_good_token_is_forbidden_without_a_challenge() {
    bounded(async {
        let server = serve().await;
        let res = post_mcp(&server, Some(EVIL), Some(GOOD))
            .send()
            .await
            .unwrap();
        assert_refused(res, "evil + good token").await;
        // The DNS-rebinding shape of the conformance scenario: a page on evil.example.com that
        // resolves to 127.0.0.1.
        let res = post_mcp(&server, Some("http://evil.example.com:8080"), None)
            .header("host", "evil.example.com")
            .send()
            .await
            .unwrap();
        assert_refused(res, "rebinding").await;
    })
    .await;
}

#[tokio::test]
async fn evil_origin_without_a_token_is_forbidden_before_auth() {
    bounded(async {
        let server = serve().await;
        let res = post_mcp(&server, Some(EVIL), None).send().await.unwrap();
        assert_refused(res, "evil, no token").await;
        for origin in [
            "http://localhost.evil.com",
            "http://127.0.0.1.evil.com",
            "null",
            "http://localhost:6274/",
            "localhost",
        ] {
            let res = post_mcp(&server, Some(origin), None).send().await.unwrap();
            assert_refused(res, origin).await;
        }
    })
    .await;
}

#[tokio::test]
async fn local_origin_without_a_token_reaches_auth() {
    bounded(async {
        let server = serve().await;
        for origin in [
            LOCAL,
            "http://LOCALHOST:6274",
            "http://127.0.0.1",
            "http://[::1]:3000",
        ] {
            let res = post_mcp(&server, Some(origin), None).send().await.unwrap();
            assert_eq!(res.status(), 401, "{origin}");
            assert_eq!(common::challenges(&res).len(), 1, "{origin}");
        }
    })
    .await;
}

#[tokio::test]
async fn good_token_passes_without_origin_or_from_a_local_origin() {
    bounded(async {
        let server = serve().await;
        for origin in [None, Some(LOCAL)] {
            let res = post_mcp(&server, origin, Some(GOOD)).send().await.unwrap();
            assert_eq!(res.status(), 200, "{origin:?}");
            assert_eq!(res.text().await.unwrap(), "t static_bearer", "{origin:?}");
        }
    })
    .await;
}

#[tokio::test]
async fn repeated_or_non_ascii_origin_is_forbidden() {
    bounded(async {
        let server = serve().await;
        // Two fields, each allowed on its own.
        let res = post_mcp(&server, Some(LOCAL), Some(GOOD))
            .header(ORIGIN, LOCAL)
            .send()
            .await
            .unwrap();
        assert_refused(res, "two Origin fields").await;

        let (status, head) = common::raw_request(
            server.addr,
            b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://l\xc3\xb6calhost\r\n\
              Authorization: Bearer a-token-of-at-least-16-bytes\r\nContent-Length: 0\r\n\
              Connection: close\r\n\r\n",
        )
        .await;
        assert_eq!(status, 403, "{head}");
        assert!(
            !head.to_ascii_lowercase().contains("www-authenticate"),
            "{head}"
        );
    })
    .await;
}

#[tokio::test]
async fn metadata_is_readable_from_any_origin() {
    bounded(async {
        let server = serve().await;
        for method in [Method::GET, Method::HEAD] {
            let res = common::client()
                .request(method.clone(), server.url(PRM_PATH))
                .header(ORIGIN, EVIL)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200, "{method}");
            assert_eq!(
                header(&res, ACCESS_CONTROL_ALLOW_ORIGIN),
                Some("*"),
                "{method}"
            );
            if method == Method::GET {
                let doc: Value = res.json().await.unwrap();
                assert_eq!(doc["resource"], "https://mcp.example.com/mcp");
            }
        }
        // Its preflight too.
        let res = common::client()
            .request(Method::OPTIONS, server.url(PRM_PATH))
            .header(ORIGIN, EVIL)
            .header(ACCESS_CONTROL_REQUEST_METHOD, "GET")
            .header(ACCESS_CONTROL_REQUEST_HEADERS, "mcp-protocol-version")
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "{}", res.status());
        // Anything but reading it is checked as usual.
        let res = common::client()
            .post(server.url(PRM_PATH))
            .header(ORIGIN, EVIL)
            .send()
            .await
            .unwrap();
        assert_refused(res, "POST metadata").await;
    })
    .await;
}

#[tokio::test]
async fn cors_outermost_answers_preflights_and_labels_refusals() {
    bounded(async {
        let server = serve_with_cors().await;
        for origin in [LOCAL, "https://app.example.com"] {
            let res = common::client()
                .request(Method::OPTIONS, server.url("/mcp"))
                .header(ORIGIN, origin)
                .header(ACCESS_CONTROL_REQUEST_METHOD, "POST")
                .header(ACCESS_CONTROL_REQUEST_HEADERS, "authorization,content-type")
                .send()
                .await
                .unwrap();
            assert!(res.status().is_success(), "{origin}: {}", res.status());
            assert_eq!(header(&res, ACCESS_CONTROL_ALLOW_ORIGIN), Some(origin));
            let allowed = header(&res, ACCESS_CONTROL_ALLOW_HEADERS)
                .unwrap()
                .to_ascii_lowercase();
            assert!(allowed.contains("authorization"), "{allowed}");

            // The real request then reaches auth, and its 401 is readable.
            let res = post_mcp(&server, Some(origin), None).send().await.unwrap();
            assert_eq!(res.status(), 401, "{origin}");
            assert_eq!(header(&res, ACCESS_CONTROL_ALLOW_ORIGIN), Some(origin));
            let exposed = header(&res, ACCESS_CONTROL_EXPOSE_HEADERS)
                .unwrap()
                .to_ascii_lowercase();
            assert!(exposed.contains("www-authenticate"), "{exposed}");
        }

        // A foreign page: its preflight gets no ACAO (the browser stops there), and a request
        // sent anyway is refused by the Origin layer.
        let res = common::client()
            .request(Method::OPTIONS, server.url("/mcp"))
            .header(ORIGIN, EVIL)
            .header(ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .send()
            .await
            .unwrap();
        assert!(res.headers().get(ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
        let res = post_mcp(&server, Some(EVIL), Some(GOOD))
            .send()
            .await
            .unwrap();
        assert!(res.headers().get(ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
        assert_refused(res, "evil through CORS").await;
    })
    .await;
}
