//! Protected Resource Metadata (RFC 9728 §2 and §3) served by the auth layer, and the
//! challenges that point at it (RFC 9728 §5.1; MCP 2025-11-25, Authorization, “Protected
//! Resource Metadata Discovery Requirements”), over real HTTP: an axum 0.8 server on 127.0.0.1
//! and reqwest (raw TCP for a spoofed `Host`).
//!
//! The resource is the fixed `https://mcp.example.com/mcp` while the server listens on
//! `127.0.0.1:<random>`: the layer never looks at `Host`, so the document is found by path alone
//! and nothing the client sends can change the URLs in it or in the challenges.

mod common;

use axum::{Router, routing::post};
use common::TestServer;
use http::{
    Method,
    header::{
        ACCEPT, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
        ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD,
        ALLOW, AUTHORIZATION, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, HOST, ORIGIN,
    },
};
use mcp_server_auth::{
    AuthInfo, AuthLayer, ProtectedResourceMetadata, ResourceUrl, bearer::StaticBearer,
};
use serde_json::{Value, json};

const GOOD: &str = "good-token-0123456789abcdef";
const PRM_PATH: &str = "/.well-known/oauth-protected-resource/mcp";
const ROOT_PATH: &str = "/.well-known/oauth-protected-resource";
const METADATA_URL: &str = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp";
const CHALLENGE: &str = r#"Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp", scope="mcp:read""#;
const DOC: &str = r#"{"resource":"https://mcp.example.com/mcp","authorization_servers":["https://auth.example.com"],"scopes_supported":["mcp:read"],"bearer_methods_supported":["header"]}"#;

fn metadata() -> ProtectedResourceMetadata {
    ProtectedResourceMetadata::builder(ResourceUrl::parse("https://mcp.example.com/mcp").unwrap())
        .authorization_server("https://auth.example.com")
        .scopes_supported(["mcp:read"])
        .build()
        .unwrap()
}

fn expected_doc() -> Value {
    json!({
        "resource": "https://mcp.example.com/mcp",
        "authorization_servers": ["https://auth.example.com"],
        "scopes_supported": ["mcp:read"],
        "bearer_methods_supported": ["header"],
    })
}

async fn whoami(who: AuthInfo) -> String {
    format!("{} {}", who.subject(), who.method())
}

async fn serve(serve_root: bool) -> TestServer {
    let layer = AuthLayer::builder(StaticBearer::new([("ci", GOOD)]).unwrap())
        .metadata(metadata())
        .serve_metadata_at_root(serve_root)
        .build()
        .unwrap();
    let app = Router::new()
        .route("/mcp", post(whoami).get(whoami).delete(whoami))
        .layer(layer);
    common::serve_axum(app).await
}

fn header(res: &reqwest::Response, name: http::HeaderName) -> Option<&str> {
    res.headers().get(name).map(|v| v.to_str().unwrap())
}

/// Asserts a successful metadata response and returns its body as JSON.
async fn assert_document(res: reqwest::Response, context: &str) -> Value {
    assert_eq!(res.status(), 200, "{context}");
    assert_eq!(
        header(&res, CONTENT_TYPE),
        Some("application/json"),
        "{context}"
    );
    assert_eq!(
        header(&res, CACHE_CONTROL),
        Some("public, max-age=3600"),
        "{context}"
    );
    assert_eq!(
        header(&res, ACCESS_CONTROL_ALLOW_ORIGIN),
        Some("*"),
        "{context}"
    );
    assert!(common::challenges(&res).is_empty(), "{context}");
    let text = res.text().await.unwrap();
    let value: Value = serde_json::from_str(&text).unwrap();
    let object = value.as_object().expect("a JSON object");
    for (k, v) in object {
        assert!(!v.is_null(), "{context}: {k} is null");
        if let Some(a) = v.as_array() {
            assert!(!a.is_empty(), "{context}: {k} is an empty array");
        }
    }
    value
}

#[tokio::test]
async fn metadata_document_is_served_at_the_path_inserted_url() {
    let server = serve(false).await;
    let res = common::client()
        .get(server.url(PRM_PATH))
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .unwrap();
    let len = res.headers().get(CONTENT_LENGTH).cloned();
    assert_eq!(assert_document(res, "GET").await, expected_doc());
    assert_eq!(len.unwrap().to_str().unwrap(), DOC.len().to_string());

    // The exact bytes, member order included.
    let text = common::client()
        .get(server.url(PRM_PATH))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(text, DOC);
}

#[tokio::test]
async fn metadata_tolerates_trailing_slash_and_query() {
    let server = serve(false).await;
    for path in [
        "/.well-known/oauth-protected-resource/mcp/",
        "/.well-known/oauth-protected-resource/mcp?x=1",
        "/.well-known/oauth-protected-resource/mcp/?x=1&y=2",
    ] {
        let res = common::client().get(server.url(path)).send().await.unwrap();
        assert_eq!(assert_document(res, path).await, expected_doc(), "{path}");
    }
}

#[tokio::test]
async fn metadata_head_has_headers_and_no_body() {
    let server = serve(false).await;
    let res = common::client()
        .head(server.url(PRM_PATH))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, CONTENT_TYPE), Some("application/json"));
    assert_eq!(header(&res, CACHE_CONTROL), Some("public, max-age=3600"));
    assert_eq!(header(&res, ACCESS_CONTROL_ALLOW_ORIGIN), Some("*"));
    assert_eq!(
        res.headers()
            .get(CONTENT_LENGTH)
            .map(|v| v.to_str().unwrap()),
        Some(DOC.len().to_string().as_str()),
        "HEAD announces the length of the GET body"
    );
    assert_eq!(res.bytes().await.unwrap().len(), 0);
}

#[tokio::test]
async fn metadata_answers_cors_preflight() {
    let server = serve(false).await;
    let res = common::client()
        .request(Method::OPTIONS, server.url(PRM_PATH))
        .header(ORIGIN, "http://localhost:6274")
        .header(ACCESS_CONTROL_REQUEST_METHOD, "GET")
        .header(ACCESS_CONTROL_REQUEST_HEADERS, "mcp-protocol-version")
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    assert_eq!(header(&res, ACCESS_CONTROL_ALLOW_ORIGIN), Some("*"));
    let allowed: Vec<String> = header(&res, ACCESS_CONTROL_ALLOW_HEADERS)
        .expect("Access-Control-Allow-Headers")
        .split(',')
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    assert!(
        allowed.iter().any(|h| h == "mcp-protocol-version"),
        "{allowed:?}"
    );
    let methods = header(&res, ACCESS_CONTROL_ALLOW_METHODS).expect("Access-Control-Allow-Methods");
    assert!(methods.split(',').any(|m| m.trim() == "GET"), "{methods}");
    assert!(common::challenges(&res).is_empty());
}

#[tokio::test]
async fn metadata_other_methods_are_405_with_allow() {
    let server = serve(false).await;
    for method in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
        // With and without credentials: the answer does not depend on them.
        for auth in [None, Some(format!("Bearer {GOOD}"))] {
            let mut req = common::client().request(method.clone(), server.url(PRM_PATH));
            if let Some(a) = &auth {
                req = req.header(AUTHORIZATION, a);
            }
            let res = req.send().await.unwrap();
            assert_eq!(res.status(), 405, "{method} {auth:?}");
            assert_eq!(
                header(&res, ALLOW),
                Some("GET, HEAD, OPTIONS"),
                "{method} {auth:?}"
            );
            assert!(common::challenges(&res).is_empty(), "{method} {auth:?}");
        }
    }
}

#[tokio::test]
async fn root_metadata_is_off_by_default() {
    let server = serve(false).await;
    let res = common::client()
        .get(server.url(ROOT_PATH))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    // Public, and readable cross-origin even when not found: browser-based clients fetch it.
    assert_eq!(header(&res, ACCESS_CONTROL_ALLOW_ORIGIN), Some("*"));
    assert!(common::challenges(&res).is_empty());

    // Another resource's path in the namespace: 404 too, never 401.
    let res = common::client()
        .get(server.url("/.well-known/oauth-protected-resource/other"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(header(&res, ACCESS_CONTROL_ALLOW_ORIGIN), Some("*"));

    // Not in the namespace at all: behind authentication like any other path.
    let res = common::client()
        .get(server.url("/.well-known/oauth-protected-resourcex"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(common::challenges(&res), [CHALLENGE]);
}

#[tokio::test]
async fn root_metadata_when_enabled_names_the_origin() {
    let server = serve(true).await;
    for path in [ROOT_PATH, "/.well-known/oauth-protected-resource/"] {
        let res = common::client().get(server.url(path)).send().await.unwrap();
        let value = assert_document(res, path).await;
        let mut expected = expected_doc();
        expected["resource"] = json!("https://mcp.example.com");
        assert_eq!(value, expected, "{path}");
    }
    // The path-inserted document is unchanged.
    let res = common::client()
        .get(server.url(PRM_PATH))
        .send()
        .await
        .unwrap();
    assert_eq!(assert_document(res, PRM_PATH).await, expected_doc());
}

#[tokio::test]
async fn metadata_is_public() {
    let server = serve(false).await;
    for auth in [
        None,
        Some(format!("Bearer {GOOD}")),
        Some("Bearer wrong-token-0123456789abcdef".to_owned()),
        Some("Bearer a b".to_owned()),
        Some("Basic Zm9vOmJhcg==".to_owned()),
    ] {
        let mut req = common::client()
            .get(server.url(PRM_PATH))
            .header("mcp-protocol-version", "2025-11-25");
        if let Some(a) = &auth {
            req = req.header(AUTHORIZATION, a);
        }
        let res = req.send().await.unwrap();
        assert_eq!(
            assert_document(res, &format!("{auth:?}")).await,
            expected_doc()
        );
    }
}

#[tokio::test]
async fn challenges_point_at_the_metadata() {
    let server = serve(false).await;
    let client = common::client();

    let res = client.post(server.url("/mcp")).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let challenges = common::challenges(&res);
    assert_eq!(challenges, [CHALLENGE]);

    // GET with Accept: text/event-stream (the SSE stream) too.
    let res = client
        .get(server.url("/mcp"))
        .header(ACCEPT, "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(common::challenges(&res), [CHALLENGE]);

    let res = client
        .post(server.url("/mcp"))
        .header(AUTHORIZATION, "Bearer wrong-token-0123456789abcdef")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(
        common::challenges(&res),
        [format!(r#"{CHALLENGE}, error="invalid_token""#)]
    );
    assert_eq!(res.text().await.unwrap(), r#"{"error":"invalid_token"}"#);

    let res = client
        .post(server.url("/mcp"))
        .header(AUTHORIZATION, "Bearer")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(
        common::challenges(&res),
        [format!(r#"{CHALLENGE}, error="invalid_request""#)]
    );

    // The resource_metadata URL, fetched by its path on this server, is the document, whose
    // `resource` is the URL of the endpoint that sent the challenge (RFC 9728 §3.3 and §5.1).
    let url = challenges[0]
        .strip_prefix("Bearer resource_metadata=\"")
        .and_then(|r| r.split('"').next())
        .unwrap();
    assert_eq!(url, METADATA_URL);
    let path = url.strip_prefix("https://mcp.example.com").unwrap();
    let res = client.get(server.url(path)).send().await.unwrap();
    let doc = assert_document(res, path).await;
    assert_eq!(doc["resource"], "https://mcp.example.com/mcp");

    let res = client
        .post(server.url("/mcp"))
        .header(AUTHORIZATION, format!("Bearer {GOOD}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "ci static_bearer");
}

/// A spoofed `Host` changes neither the challenge nor the document: the resource identifier is
/// configured, never read from the request (RFC 9728 §3.3 and §7.3).
#[tokio::test]
async fn host_header_is_never_used() {
    let server = serve(true).await;

    // Raw TCP, so that exactly this Host is sent.
    let (status, text) = common::raw_request(
        server.addr,
        b"POST /mcp HTTP/1.1\r\nHost: evil.example\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 401, "{text}");
    let challenges: Vec<&str> = text
        .split("\r\n\r\n")
        .next()
        .unwrap()
        .split("\r\n")
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("www-authenticate").then(|| v.trim())
        })
        .collect();
    assert_eq!(challenges, [CHALLENGE]);
    assert!(!text.contains("evil"), "{text}");

    for path in [PRM_PATH, ROOT_PATH] {
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: evil.example:8443\r\nX-Forwarded-Host: evil.example\r\nForwarded: host=evil.example;proto=http\r\nConnection: close\r\n\r\n"
        );
        let (status, text) = common::raw_request(server.addr, request.as_bytes()).await;
        assert_eq!(status, 200, "{text}");
        let body = text.split_once("\r\n\r\n").unwrap().1;
        let doc: Value = serde_json::from_str(body).unwrap();
        let expected = if path == PRM_PATH {
            "https://mcp.example.com/mcp"
        } else {
            "https://mcp.example.com"
        };
        assert_eq!(doc["resource"], expected);
        assert!(!body.contains("evil"));
    }

    // The same through reqwest with an explicit Host header.
    let res = common::client()
        .post(server.url("/mcp"))
        .header(HOST, "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(common::challenges(&res), [CHALLENGE]);
}
