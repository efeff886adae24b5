//! Scope policy over real sockets: per-route requirements (`AuthLayer::require_scopes` under
//! axum `route_layer`), all-of / any-of, and a scope hierarchy (MCP 2026-07-28: a broader scope
//! satisfies a narrower one, while challenges still name the narrower scope).

mod common;

use axum::{Router, routing::post};
use mcp_server_auth::{
    AuthInfo, AuthLayer, ImplicationMap, ProtectedResourceMetadata, ResourceUrl, ScopeRequirement,
    ScopeSet, bearer::StaticBearer,
};

const READER: &str = "reader-token-0123456789abcdef";
const WRITER: &str = "writer-token-0123456789abcdef";
const ADMIN: &str = "admin-token-0123456789abcdefgh";
const NOBODY: &str = "nobody-token-0123456789abcdef";

fn tokens() -> StaticBearer {
    let s = |list: &str| ScopeSet::parse(list).unwrap();
    StaticBearer::builder()
        .token_with_scopes("reader", READER, s("mcp:read"))
        .token_with_scopes("writer", WRITER, s("mcp:read mcp:write"))
        .token_with_scopes("admin", ADMIN, s("mcp:admin"))
        .token("nobody", NOBODY)
        .build()
        .unwrap()
}

fn app(hierarchy: bool) -> Router {
    let resource = ResourceUrl::parse("https://mcp.example.com/mcp").unwrap();
    let metadata = ProtectedResourceMetadata::builder(resource)
        .authorization_server("https://auth.example.com")
        .scopes_supported(["mcp:read"])
        .build()
        .unwrap();
    let mut builder = AuthLayer::builder(tokens()).metadata(metadata);
    if hierarchy {
        builder = builder.scope_hierarchy(
            ImplicationMap::new()
                .implies("mcp:admin", ["mcp:write"])
                .implies("mcp:write", ["mcp:read"]),
        );
    }
    let auth = builder.build().unwrap();
    let who = |who: AuthInfo| async move { who.subject().to_owned() };
    let all = |scopes: &[&str]| auth.require_scopes(ScopeRequirement::all_of(scopes).unwrap());
    let any = |scopes: &[&str]| auth.require_scopes(ScopeRequirement::any_of(scopes).unwrap());
    Router::new()
        .route("/read", post(who))
        .route_layer(all(&["mcp:read"]))
        .merge(
            Router::new()
                .route("/write", post(who))
                .route_layer(all(&["mcp:read", "mcp:write"])),
        )
        .merge(
            Router::new()
                .route("/either", post(who))
                .route_layer(any(&["mcp:write", "mcp:admin"])),
        )
        .merge(Router::new().route("/open", post(who)))
        .layer(auth)
}

async fn call(server: &common::TestServer, path: &str, token: &str) -> (u16, String, Vec<String>) {
    let res = common::client()
        .post(server.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let challenges = common::challenges(&res);
    (res.status().as_u16(), res.text().await.unwrap(), challenges)
}

const RM: &str =
    r#"resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp""#;

#[tokio::test]
async fn per_route_requirements_without_hierarchy() {
    let server = common::serve_axum(app(false)).await;
    assert_eq!(call(&server, "/read", READER).await.0, 200);
    assert_eq!(call(&server, "/open", NOBODY).await.0, 200);
    let (status, _, challenges) = call(&server, "/write", READER).await;
    assert_eq!(status, 403);
    // The full required set, in one challenge, pointing at the metadata.
    assert_eq!(
        challenges,
        [format!(
            r#"Bearer {RM}, scope="mcp:read mcp:write", error="insufficient_scope""#
        )]
    );
    assert_eq!(call(&server, "/write", WRITER).await.0, 200);
    // Exact matching: admin holds no listed scope.
    let (status, _, challenges) = call(&server, "/read", ADMIN).await;
    assert_eq!(status, 403);
    assert_eq!(
        challenges,
        [format!(
            r#"Bearer {RM}, scope="mcp:read", error="insufficient_scope""#
        )]
    );
    // Any-of: either scope suffices; the challenge lists the alternatives, plus the advertised
    // scope the caller already holds (mcp:read), so a client that replaces its scopes with the
    // challenged ones keeps it.
    assert_eq!(call(&server, "/either", WRITER).await.0, 200);
    assert_eq!(call(&server, "/either", ADMIN).await.0, 200);
    let (status, _, challenges) = call(&server, "/either", READER).await;
    assert_eq!(status, 403);
    assert_eq!(
        challenges,
        [format!(
            r#"Bearer {RM}, scope="mcp:admin mcp:read mcp:write", error="insufficient_scope""#
        )]
    );
    // Authentication still comes first: a bad token is 401 on every route.
    assert_eq!(
        call(&server, "/write", "wrong-token-0123456789abcdef")
            .await
            .0,
        401
    );
}

#[tokio::test]
async fn hierarchy_lets_broader_scopes_through() {
    let server = common::serve_axum(app(true)).await;
    // admin → write → read.
    let (status, body, _) = call(&server, "/read", ADMIN).await;
    assert_eq!((status, body.as_str()), (200, "admin"));
    assert_eq!(call(&server, "/write", ADMIN).await.0, 200);
    // write → read, but read does not imply write.
    let (status, _, challenges) = call(&server, "/write", READER).await;
    assert_eq!(status, 403);
    // The challenge names the required scopes, not the broader ones.
    assert_eq!(
        challenges,
        [format!(
            r#"Bearer {RM}, scope="mcp:read mcp:write", error="insufficient_scope""#
        )]
    );
    assert_eq!(call(&server, "/read", NOBODY).await.0, 403);
}

#[tokio::test]
async fn scope_layer_without_auth_layer_fails_closed() {
    let auth = AuthLayer::new(tokens());
    let app = Router::new()
        .route("/write", post(|| async { "written" }))
        .route_layer(auth.require_scopes(ScopeRequirement::all_of(["mcp:write"]).unwrap()));
    let server = common::serve_axum(app).await;
    let (status, _, challenges) = call(&server, "/write", WRITER).await;
    assert_eq!(status, 401);
    assert_eq!(challenges, [r#"Bearer realm="mcp""#]);
}
