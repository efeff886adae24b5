//! The JWT verifier against a real authorization server (npm `oidc-provider`, started from
//! `tests/interop/as`), through a real server on 127.0.0.1 configured from the environment
//! variables exactly as the quickstart is: discovery from the issuer URL, a `client_credentials`
//! token for our resource accepted, a token for another resource refused, a read-only token
//! refused where writing is required, an opaque token refused.
#![cfg(all(
    feature = "remote-jwks",
    any(feature = "aws-lc-rs", feature = "rust-crypto")
))] // Remote keys and JWT verification.

mod common;
#[path = "common/install.rs"]
mod install;
#[path = "common/oidc.rs"]
mod oidc;

use std::{future::Future, time::Duration};

use axum::{Router, routing::post};
use mcp_server_auth::{AuthInfo, ScopeRequirement, config::EnvConfig};
use oidc::AuthServer;

/// Installs the npm packages first (not counted), then runs `test` for at most 90 s.
async fn bounded<F: Future<Output = ()>>(test: F) {
    oidc::ensure_npm_deps_async().await;
    tokio::time::timeout(Duration::from_secs(90), test)
        .await
        .expect("test took more than 90 s");
}

/// An MCP-like server configured from `MCP_AUTH_*` variables, with `/mcp` needing the
/// environment's required scopes and `/mcp/write` also `mcp:write`.
async fn protected_server(vars: &[(&str, &str)]) -> (common::TestServer, String) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let resource = format!("http://{addr}/mcp");
    let mut all: Vec<(&str, &str)> = vars.to_vec();
    all.push(("MCP_AUTH_RESOURCE_URL", &resource));
    let config = EnvConfig::from_vars(all).unwrap();
    let auth = config.layer().await.unwrap();
    let who = |who: AuthInfo| async move {
        format!(
            "{} {} {}",
            who.subject(),
            who.client_id().unwrap_or("-"),
            who.scopes()
        )
    };
    let write = auth.require_scopes(ScopeRequirement::all_of(["mcp:write"]).unwrap());
    let app = Router::new()
        .route("/mcp/write", post(who))
        .route_layer(write)
        .route("/mcp", post(who))
        .layer(auth);
    (common::serve_axum_on(listener, app), resource)
}

async fn send(url: &str, token: &str) -> (u16, String, Vec<String>) {
    let res = common::client()
        .post(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let challenges = common::challenges(&res);
    (res.status().as_u16(), res.text().await.unwrap(), challenges)
}

#[tokio::test]
async fn tokens_from_a_real_authorization_server() {
    bounded(async {
        let auth_server = AuthServer::start().await;
        let issuer = auth_server.issuer.clone();
        let (server, resource) = protected_server(&[
            ("MCP_AUTH_ISSUER_URL", &issuer),
            ("MCP_AUTH_REQUIRED_SCOPES", "mcp:read"),
        ])
        .await;
        let url = server.url("/mcp");
        let metadata_url = server.url("/.well-known/oauth-protected-resource/mcp");

        // The metadata names the issuer as the authorization server, and the resource exactly.
        let doc: serde_json::Value = common::client()
            .get(&metadata_url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(doc["resource"], resource.as_str());
        assert_eq!(doc["authorization_servers"], serde_json::json!([issuer]));
        assert_eq!(doc["scopes_supported"], serde_json::json!(["mcp:read"]));

        // A token for our resource, with both scopes: accepted everywhere.
        let token = auth_server
            .client_credentials(Some(&resource), "mcp:read mcp:write")
            .await;
        let (status, body, _) = send(&url, &token).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body, "mcp-test-client mcp-test-client mcp:read mcp:write");
        assert_eq!(send(&server.url("/mcp/write"), &token).await.0, 200);

        // A read-only token: accepted on /mcp, 403 naming mcp:write (and mcp:read, which it
        // holds) on /mcp/write.
        let read_only = auth_server
            .client_credentials(Some(&resource), "mcp:read")
            .await;
        assert_eq!(send(&url, &read_only).await.0, 200);
        let (status, _, challenges) = send(&server.url("/mcp/write"), &read_only).await;
        assert_eq!(status, 403);
        let rm = format!(r#"resource_metadata="{metadata_url}""#);
        assert_eq!(
            challenges,
            [format!(
                r#"Bearer {rm}, scope="mcp:read mcp:write", error="insufficient_scope""#
            )]
        );

        // A token for another resource: 401 invalid_token.
        let foreign = auth_server
            .client_credentials(Some("http://127.0.0.1:9/mcp"), "mcp:read")
            .await;
        let (status, _, challenges) = send(&url, &foreign).await;
        assert_eq!(status, 401);
        assert_eq!(
            challenges,
            [
                format!(r#"Bearer {rm}, scope="mcp:read", error="invalid_token""#),
                format!(
                    r#"DPoP {rm}, scope="mcp:read", algs="ES256 ES384 EdDSA Ed25519 RS256 PS256""#
                )
            ]
        );

        // An opaque token (no resource requested): 401 invalid_token.
        let opaque = auth_server.client_credentials(None, "mcp:read").await;
        assert!(!oidc::is_jwt(&opaque));
        assert_eq!(send(&url, &opaque).await.0, 401);

        // No token: 401 without error, pointing at the metadata; DPoP is allowed in JWT mode,
        // its challenge after the Bearer one.
        let res = common::client().post(&url).send().await.unwrap();
        assert_eq!(res.status(), 401);
        assert_eq!(
            common::challenges(&res),
            [
                format!(r#"Bearer {rm}, scope="mcp:read""#),
                format!(
                    r#"DPoP {rm}, scope="mcp:read", algs="ES256 ES384 EdDSA Ed25519 RS256 PS256""#
                )
            ]
        );
    })
    .await;
}

#[tokio::test]
async fn static_tokens_still_work_in_jwt_mode() {
    bounded(async {
        let auth_server = AuthServer::start().await;
        let (server, resource) = protected_server(&[
            ("MCP_AUTH_ISSUER_URL", &auth_server.issuer),
            ("MCP_AUTH_JWKS_URL", &auth_server.jwks_uri),
            (
                "MCP_AUTH_BEARER_TOKENS",
                "ci:c3RhdGljLXRva2VuLWZvci1jaS0wMTIz",
            ),
        ])
        .await;
        let url = server.url("/mcp");
        let (status, body, _) = send(&url, "c3RhdGljLXRva2VuLWZvci1jaS0wMTIz").await;
        assert_eq!((status, body.as_str()), (200, "ci - "));
        let token = auth_server
            .client_credentials(Some(&resource), "mcp:read")
            .await;
        let (status, body, _) = send(&url, &token).await;
        assert_eq!(
            (status, body.as_str()),
            (200, "mcp-test-client mcp-test-client mcp:read")
        );
    })
    .await;
}
