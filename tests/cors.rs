//! CORS (the Fetch standard's CORS protocol) for browser-based MCP clients over real HTTP: an axum 0.8
//! server on 127.0.0.1 with `tower_http::cors::CorsLayer` around the auth layer, and reqwest
//! playing the browser.

mod common;

use axum::{Router, routing::post};
use common::TestServer;
use http::{
    HeaderName, Method,
    header::{
        ACCEPT, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
        ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_REQUEST_HEADERS,
        ACCESS_CONTROL_REQUEST_METHOD, AUTHORIZATION, CONTENT_TYPE, ORIGIN, WWW_AUTHENTICATE,
    },
};
use mcp_server_auth::{
    AuthInfo, AuthLayer, ProtectedResourceMetadata, ResourceUrl, ScopeRequirement, ScopeSet,
    bearer::StaticBearer,
};
use tower_http::cors::{Any, CorsLayer};

const GOOD: &str = "good-token-0123456789abcdef";
const READER: &str = "reader-token-0123456789abcdef";
const BROWSER: &str = "http://localhost:6274";
const CHALLENGE: &str = r#"Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp", scope="mcp:write""#;

async fn whoami(who: AuthInfo) -> String {
    format!("{} {}", who.subject(), who.method())
}

/// The recommended stack for browser-based MCP clients (MCP Inspector, web apps):
///
/// ```ignore
/// use http::{HeaderName, Method, header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE}};
/// use tower_http::cors::{Any, CorsLayer};
///
/// let cors = CorsLayer::new()
///     .allow_origin(Any) // restrict this in production
///     .allow_methods([Method::GET, Method::POST, Method::DELETE])
///     // `authorization` must be listed by name: `*` does not cover it.
///     .allow_headers([
///         AUTHORIZATION,
///         CONTENT_TYPE,
///         ACCEPT,
///         HeaderName::from_static("mcp-protocol-version"),
///         HeaderName::from_static("mcp-session-id"),
///         HeaderName::from_static("last-event-id"),
///         HeaderName::from_static("dpop"), // DPoP proofs (RFC 9449)
///     ])
///     // Without this a browser cannot read the challenge, and OAuth discovery never starts.
///     .expose_headers([
///         WWW_AUTHENTICATE,
///         HeaderName::from_static("mcp-session-id"),
///         HeaderName::from_static("mcp-protocol-version"),
///         HeaderName::from_static("last-event-id"),
///         HeaderName::from_static("dpop-nonce"), // DPoP server nonces
///     ]);
/// let app = Router::new()
///     .route("/mcp", post(handler).get(handler).delete(handler))
///     .layer(auth)  // inner: authentication
///     .layer(cors); // outer: answers preflights (they carry no credentials) before auth,
///                   // and adds CORS headers to every response, 401 and 403 included
/// ```
fn recommended_stack() -> Router {
    let tokens = StaticBearer::builder()
        .token_with_scopes("ci", GOOD, ScopeSet::parse("mcp:read mcp:write").unwrap())
        .token_with_scopes("reader", READER, ScopeSet::parse("mcp:read").unwrap())
        .build()
        .unwrap();
    let metadata = ProtectedResourceMetadata::builder(
        ResourceUrl::parse("https://mcp.example.com/mcp").unwrap(),
    )
    .authorization_server("https://auth.example.com")
    .scopes_supported(["mcp:read"])
    .build()
    .unwrap();
    let auth = AuthLayer::builder(tokens)
        .metadata(metadata)
        .required_scopes(ScopeRequirement::all_of(["mcp:write"]).unwrap())
        .build()
        .unwrap();
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers([
            AUTHORIZATION,
            CONTENT_TYPE,
            ACCEPT,
            HeaderName::from_static("mcp-protocol-version"),
            HeaderName::from_static("mcp-session-id"),
            HeaderName::from_static("last-event-id"),
            HeaderName::from_static("dpop"),
        ])
        .expose_headers([
            WWW_AUTHENTICATE,
            HeaderName::from_static("mcp-session-id"),
            HeaderName::from_static("mcp-protocol-version"),
            HeaderName::from_static("last-event-id"),
            HeaderName::from_static("dpop-nonce"),
        ]);
    Router::new()
        .route("/mcp", post(whoami).get(whoami).delete(whoami))
        .layer(auth)
        .layer(cors)
}

async fn serve() -> TestServer {
    common::serve_axum(recommended_stack()).await
}

/// A comma-separated header as a lowercase list.
fn list(res: &reqwest::Response, name: HeaderName) -> Vec<String> {
    res.headers()
        .get_all(name)
        .iter()
        .flat_map(|v| v.to_str().unwrap().split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

fn acao(res: &reqwest::Response) -> Option<&str> {
    res.headers()
        .get(ACCESS_CONTROL_ALLOW_ORIGIN)
        .map(|v| v.to_str().unwrap())
}

/// A preflight never reaches the auth layer, and it allows `authorization` by name.
#[tokio::test]
async fn preflight_to_mcp_is_answered_before_auth() {
    let server = serve().await;
    for method in ["POST", "GET", "DELETE"] {
        let res = common::client()
            .request(Method::OPTIONS, server.url("/mcp"))
            .header(ORIGIN, BROWSER)
            .header(ACCESS_CONTROL_REQUEST_METHOD, method)
            .header(
                ACCESS_CONTROL_REQUEST_HEADERS,
                "authorization,content-type,mcp-protocol-version,dpop",
            )
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "{method}: {}", res.status());
        assert!(common::challenges(&res).is_empty(), "{method}");
        assert_eq!(acao(&res), Some("*"), "{method}");
        let allowed = list(&res, ACCESS_CONTROL_ALLOW_HEADERS);
        for h in [
            "authorization",
            "content-type",
            "mcp-protocol-version",
            "dpop",
        ] {
            assert!(
                allowed.iter().any(|a| a == h),
                "{method}: {h} not in {allowed:?}"
            );
        }
        // Not the wildcard, which would not cover `authorization`.
        assert!(!allowed.iter().any(|a| a == "*"), "{allowed:?}");
        let methods = list(&res, ACCESS_CONTROL_ALLOW_METHODS);
        assert!(
            methods.iter().any(|m| m.eq_ignore_ascii_case(method)),
            "{methods:?}"
        );
    }
}

/// Refusals carry ACAO and expose `WWW-Authenticate`, so a browser can read the
/// challenge.
#[tokio::test]
async fn refusals_are_readable_cross_origin() {
    let server = serve().await;
    // (authorization, status, challenge)
    let cases = [
        (None, 401, CHALLENGE.to_owned()),
        (
            Some("Bearer wrong-token-0123456789abcdef".to_owned()),
            401,
            format!(r#"{CHALLENGE}, error="invalid_token""#),
        ),
        (
            Some("Bearer".to_owned()),
            400,
            format!(r#"{CHALLENGE}, error="invalid_request""#),
        ),
        (
            Some(format!("Bearer {READER}")),
            403,
            // The required scope plus the advertised one the reader already holds.
            r#"Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp", scope="mcp:read mcp:write", error="insufficient_scope""#.to_owned(),
        ),
    ];
    for (auth, status, challenge) in cases {
        let mut req = common::client()
            .post(server.url("/mcp"))
            .header(ORIGIN, BROWSER)
            .header(CONTENT_TYPE, "application/json")
            .header("mcp-protocol-version", "2025-11-25")
            .body(r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#);
        if let Some(a) = &auth {
            req = req.header(AUTHORIZATION, a);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), status, "{auth:?}");
        assert_eq!(common::challenges(&res), [challenge], "{auth:?}");
        assert_eq!(acao(&res), Some("*"), "{auth:?}");
        let exposed = list(&res, ACCESS_CONTROL_EXPOSE_HEADERS);
        assert!(
            exposed.iter().any(|h| h == "www-authenticate"),
            "{auth:?}: {exposed:?}"
        );
    }

    // And a success is readable too.
    let res = common::client()
        .post(server.url("/mcp"))
        .header(ORIGIN, BROWSER)
        .header(AUTHORIZATION, format!("Bearer {GOOD}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(acao(&res), Some("*"));
    assert_eq!(res.text().await.unwrap(), "ci static_bearer");
}

/// Through the whole stack, the metadata (and its 404 neighbours) stay readable
/// cross-origin, and its preflight allows `mcp-protocol-version`.
#[tokio::test]
async fn metadata_is_readable_cross_origin_through_the_stack() {
    let server = serve().await;
    let res = common::client()
        .request(
            Method::OPTIONS,
            server.url("/.well-known/oauth-protected-resource/mcp"),
        )
        .header(ORIGIN, BROWSER)
        .header(ACCESS_CONTROL_REQUEST_METHOD, "GET")
        .header(ACCESS_CONTROL_REQUEST_HEADERS, "mcp-protocol-version")
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    assert_eq!(acao(&res), Some("*"));
    assert!(
        list(&res, ACCESS_CONTROL_ALLOW_HEADERS)
            .iter()
            .any(|h| h == "mcp-protocol-version")
    );

    for (path, status) in [
        ("/.well-known/oauth-protected-resource/mcp", 200),
        ("/.well-known/oauth-protected-resource", 404),
    ] {
        let res = common::client()
            .get(server.url(path))
            .header(ORIGIN, BROWSER)
            .header("mcp-protocol-version", "2025-11-25")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), status, "{path}");
        assert_eq!(
            res.headers()
                .get_all(ACCESS_CONTROL_ALLOW_ORIGIN)
                .iter()
                .count(),
            1,
            "{path}: exactly one Access-Control-Allow-Origin"
        );
        assert_eq!(acao(&res), Some("*"), "{path}");
    }
}
