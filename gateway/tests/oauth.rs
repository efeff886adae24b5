//! OAuth through `mcp-auth-gateway wrap`: the gateway trusts a real authorization server (npm
//! `oidc-provider`, the one the library's tests start, `tests/common/oidc.rs`) through
//! `MCP_AUTH_ISSUER_URL`, and the TypeScript SDK's client (`tests/interop/clients/client.mjs`,
//! the library's interop client, unchanged) starts with nothing but the gateway's URL: it gets
//! the 401 challenge, reads the protected resource metadata (RFC 9728), the authorization
//! server's metadata (RFC 8414), registers itself (RFC 7591), runs the authorization code flow
//! with PKCE and a resource indicator (RFC 8707) naming the gateway, and calls
//! `@modelcontextprotocol/server-everything` (over stdio, behind the gateway) with the token.

mod common;

// The library's test authorization server, included as the library's tests include it (it
// finds its npm project in the workspace); `oidc.rs` reaches `super::install`: the one `common`
// already includes.
use common::install;
#[path = "../../tests/common/oidc.rs"]
mod oidc;

use common::*;
use oidc::AuthServer;
use serde_json::Value;

/// The client's HTTP exchanges, in order (`kind`: mcp, prm, as_metadata, register, authorize,
/// token, step).
fn exchanges(out: &Value) -> Vec<&Value> {
    out["http"]
        .as_array()
        .unwrap_or_else(|| panic!("no exchanges: {out}"))
        .iter()
        .collect()
}

/// The first exchange at or after `from` that `pred` accepts.
fn find_from(list: &[&Value], from: usize, what: &str, pred: impl Fn(&Value) -> bool) -> usize {
    list.iter()
        .skip(from)
        .position(|e| pred(e))
        .map(|i| i + from)
        .unwrap_or_else(|| panic!("no {what} after exchange {from}: {list:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typescript_sdk_discovers_the_authorization_server_and_calls_a_tool_through_the_gateway()
 {
    let auth = AuthServer::start().await;
    let command = everything();
    let env = [
        ("MCP_AUTH_ISSUER_URL", auth.issuer.as_str()),
        ("MCP_AUTH_SCOPES_SUPPORTED", "mcp:read mcp:write"),
    ];
    let gw = Gateway::start(&env, &[], &command).await;
    let steps = r#"[{"call":"tools/list"},{"call":"echo","args":{"message":"through OAuth"}}]"#;
    let out = run_node_client(&[
        "client.mjs",
        "--url",
        &gw.url,
        "--flow",
        "auth_code",
        "--steps",
        steps,
    ])
    .await;
    assert_eq!(out["connect"]["ok"], true, "{out}\n{}", gw.stderr());

    // Discovery, in order, all before the first successful MCP request.
    let list = exchanges(&out);
    assert_eq!(list[0]["kind"], "mcp", "{list:#?}");
    assert_eq!(list[0]["status"], 401, "{list:#?}");
    let metadata_url = gw
        .url
        .replace("/mcp", "/.well-known/oauth-protected-resource/mcp");
    let challenge = list[0]["www_authenticate"].as_str().unwrap_or_default();
    assert!(
        challenge.starts_with("Bearer ")
            && challenge.contains(&format!("resource_metadata=\"{metadata_url}\"")),
        "{challenge}"
    );
    let prm = find_from(&list, 1, "metadata fetch", |e| {
        e["kind"] == "prm" && e["url"] == metadata_url.as_str() && e["status"] == 200
    });
    let as_metadata = find_from(&list, prm, "authorization server metadata", |e| {
        e["kind"] == "as_metadata"
            && e["url"]
                .as_str()
                .is_some_and(|u| u.starts_with(&format!("{}/.well-known/", auth.issuer)))
            && e["status"] == 200
    });
    find_from(&list, as_metadata, "registration", |e| {
        e["kind"] == "register" && e["status"] == 201
    });
    let authorize = find_from(&list, as_metadata, "authorization request", |e| {
        e["kind"] == "authorize"
    });
    assert_eq!(list[authorize]["resource"], gw.url.as_str(), "{list:#?}");
    assert_eq!(list[authorize]["code_challenge_method"], "S256");
    let token = find_from(&list, authorize, "token request", |e| {
        e["kind"] == "token" && e["grant_type"] == "authorization_code"
    });
    assert_eq!(list[token]["url"], auth.token_endpoint.as_str());
    assert_eq!(list[token]["resource"], gw.url.as_str(), "{list:#?}");
    assert_eq!(list[token]["status"], 200, "{list:#?}");
    let first_ok = list
        .iter()
        .position(|e| e["kind"] == "mcp" && e["status"].as_u64().is_some_and(|s| s < 300))
        .unwrap_or_else(|| panic!("no successful MCP request: {list:#?}"));
    assert!(token < first_ok, "{list:#?}");

    // Then the wrapped server answers, with the token the client got.
    let steps = &out["steps"];
    assert_eq!(steps[0]["ok"], true, "{out}\n{}", gw.stderr());
    assert!(
        steps[0]["tools"]
            .as_array()
            .is_some_and(|t| t.contains(&"echo".into())),
        "{out}"
    );
    assert_eq!(steps[1]["ok"], true, "{out}\n{}", gw.stderr());
    assert_eq!(steps[1]["text"], "Echo: through OAuth", "{out}");
    // The signed-in user's token never reaches the log.
    assert!(!gw.stderr().contains("eyJ"), "{}", gw.stderr());
}
