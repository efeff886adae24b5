//! Per-operation MCP scopes ([`McpScopeLayer`]) in front of the example's real rmcp server:
//! MCP 2026-07-28 requests decided on their `Mcp-Method` / `Mcp-Name` headers, older requests
//! on their JSON-RPC bodies (which must reach the server intact), batches, header/body
//! mismatches, and bad input.

mod common;
#[path = "../examples/quickstart.rs"]
#[allow(dead_code, unreachable_pub)]
mod quickstart;

use std::time::Duration;

use axum::Router;
use base64::{Engine, engine::general_purpose::STANDARD};
use mcp_server_auth::{
    AuthLayer, ImplicationMap, ProtectedResourceMetadata, ResourceUrl, ScopeSet,
    bearer::StaticBearer, config::EnvConfig, mcp::McpScopes,
};
use serde_json::{Value, json};

use common::{TestServer, challenges, client, serve_axum};

const READER: &str = "cmVhZGVyLXRva2VuLWZvci10aGUtdGVzdHM";
const WRITER: &str = "d3JpdGVyLXRva2VuLWZvci10aGUtdGVzdHM";
const ADMIN: &str = "YWRtaW4tdG9rZW4tZm9yLXRoZS10ZXN0cw";
const NOBODY: &str = "bm9ib2R5LXRva2VuLWZvci10aGUtdGVzdHM";
const STRANGER: &str = "c3RyYW5nZXItdG9rZW4tZm9yLXRoZS10ZXN0cw";
const RESOURCE: &str = "https://mcp.example.com/mcp";
const RM: &str =
    r#"resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp""#;
const MODERN: &str = "2026-07-28";
const LEGACY: &str = "2025-11-25";
const LIMIT: Duration = Duration::from_secs(30);

fn tokens() -> StaticBearer {
    let scoped = |s: &str| ScopeSet::parse(s).unwrap();
    StaticBearer::builder()
        .token_with_scopes("reader", READER, scoped("mcp:read"))
        .token_with_scopes("writer", WRITER, scoped("mcp:read mcp:write"))
        .token_with_scopes("admin", ADMIN, scoped("mcp:admin"))
        .token("nobody", NOBODY)
        .token_with_scopes(
            "stranger",
            STRANGER,
            scoped("openid offline_access other:read"),
        )
        .build()
        .unwrap()
}

fn policy() -> McpScopes {
    McpScopes::parse(quickstart::DEFAULT_TOOL_SCOPES).unwrap()
}

/// The example's MCP service behind auth (with metadata and a hierarchy in which `mcp:admin`
/// implies the others) and the per-tool scopes; `tune` adjusts the scope layer.
async fn serve(
    tune: impl FnOnce(mcp_server_auth::mcp::McpScopeLayer) -> mcp_server_auth::mcp::McpScopeLayer,
) -> TestServer {
    serve_granted(tune, true).await
}

/// [`serve`], choosing whether challenges also name the scopes already granted.
async fn serve_granted(
    tune: impl FnOnce(mcp_server_auth::mcp::McpScopeLayer) -> mcp_server_auth::mcp::McpScopeLayer,
    granted: bool,
) -> TestServer {
    let config = EnvConfig::from_vars([("MCP_AUTH_RESOURCE_URL", RESOURCE)]).unwrap();
    let (router, _shutdown) = quickstart::mcp_router(&config);
    let metadata = ProtectedResourceMetadata::builder(ResourceUrl::parse(RESOURCE).unwrap())
        .authorization_server("https://auth.example.com")
        .scopes_supported(["mcp:read"])
        .build()
        .unwrap();
    let auth = AuthLayer::builder(tokens())
        .metadata(metadata)
        .scope_hierarchy(ImplicationMap::new().implies("mcp:admin", ["mcp:read", "mcp:write"]))
        .challenge_granted_scopes(granted)
        .build()
        .unwrap();
    let app: Router = router.layer(tune(auth.mcp_scopes(policy()))).layer(auth);
    serve_axum(app).await
}

fn meta(version: &str) -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": version,
        "io.modelcontextprotocol/clientInfo": {"name": "tests", "version": "0"},
        "io.modelcontextprotocol/clientCapabilities": {}
    })
}

/// A stateless MCP 2026-07-28 request: the headers as a conforming client sends them.
fn modern(
    server: &TestServer,
    token: &str,
    method: &str,
    name: Option<&str>,
) -> reqwest::RequestBuilder {
    modern_named(server, token, method, name, name)
}

/// [`modern`] with `Mcp-Name: header_name` (or none).
fn modern_named(
    server: &TestServer,
    token: &str,
    method: &str,
    name: Option<&str>,
    header_name: Option<&str>,
) -> reqwest::RequestBuilder {
    let mut params = json!({"_meta": meta(MODERN)});
    if let Some(name) = name {
        params["name"] = json!(name);
        params["arguments"] = json!({"text": "hello"});
    }
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params});
    let mut req = post(server, token, &body.to_string())
        .header("mcp-protocol-version", MODERN)
        .header("mcp-method", method);
    if let Some(name) = header_name {
        req = req.header("mcp-name", name);
    }
    req
}

fn post(server: &TestServer, token: &str, body: &str) -> reqwest::RequestBuilder {
    client()
        .post(server.url("/mcp"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body.to_owned())
}

/// The JSON-RPC message of a response (`application/json`, or the SSE event with data).
async fn message(res: reqwest::Response) -> Value {
    let text = res.text().await.unwrap();
    let json = text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(str::trim)
        .find(|d| !d.is_empty())
        .unwrap_or(&text)
        .to_owned();
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {text}"))
}

async fn tool_text(res: reqwest::Response) -> String {
    assert_eq!(res.status(), 200);
    let m = message(res).await;
    assert_eq!(m["result"]["isError"], json!(false), "{m}");
    m["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn assert_insufficient(res: reqwest::Response, scope: &str) {
    assert_eq!(res.status(), 403);
    assert_eq!(
        challenges(&res),
        [format!(
            r#"Bearer {RM}, scope="{scope}", error="insufficient_scope""#
        )]
    );
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "insufficient_scope");
}

/// A `400` (or other status) with a JSON-RPC error of `code`; returns its message.
async fn assert_jsonrpc_error(res: reqwest::Response, status: u16, code: i64) -> String {
    assert_eq!(res.status(), status);
    assert!(challenges(&res).is_empty(), "not an authorization failure");
    let m = message(res).await;
    assert_eq!(m["error"]["code"], json!(code), "{m}");
    m["error"]["message"].as_str().unwrap().to_owned()
}

async fn timed<F: std::future::Future<Output = ()>>(f: F) {
    tokio::time::timeout(LIMIT, f)
        .await
        .expect("test timed out");
}

#[tokio::test]
async fn modern_requests_are_decided_on_their_headers() {
    timed(async {
        let s = serve(|l| l).await;
        // Baseline methods and unlisted tools need nothing beyond authentication.
        let res = modern(&s, NOBODY, "tools/list", None).send().await.unwrap();
        assert_eq!(res.status(), 200);
        let tools = message(res).await;
        assert_eq!(
            tools["result"]["tools"].as_array().unwrap().len(),
            3,
            "{tools}"
        );
        let who = tool_text(
            modern(&s, NOBODY, "tools/call", Some("whoami"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert!(who.contains(r#""subject":"nobody""#), "{who}");
        // echo needs mcp:read, write_note mcp:write.
        let res = modern(&s, NOBODY, "tools/call", Some("echo"))
            .send()
            .await
            .unwrap();
        assert_insufficient(res, "mcp:read").await;
        let res = modern(&s, READER, "tools/call", Some("echo"))
            .send()
            .await
            .unwrap();
        assert_eq!(tool_text(res).await, "hello");
        let res = modern(&s, READER, "tools/call", Some("write_note"))
            .send()
            .await
            .unwrap();
        assert_insufficient(res, "mcp:read mcp:write").await;
        let res = modern(&s, WRITER, "tools/call", Some("write_note"))
            .send()
            .await
            .unwrap();
        assert!(tool_text(res).await.contains("saved for writer"));
        // The hierarchy: mcp:admin implies mcp:write.
        let res = modern(&s, ADMIN, "tools/call", Some("write_note"))
            .send()
            .await
            .unwrap();
        assert!(tool_text(res).await.contains("saved for admin"));
    })
    .await;
}

#[tokio::test]
async fn encoded_and_malformed_names() {
    timed(async {
        let s = serve(|l| l).await;
        // The Base64 sentinel form is decoded before the lookup.
        let encoded = format!("=?base64?{}?=", STANDARD.encode("write_note"));
        let res = modern_named(&s, READER, "tools/call", Some("write_note"), Some(&encoded))
            .send()
            .await
            .unwrap();
        assert_insufficient(res, "mcp:read mcp:write").await;
        // …and rmcp agrees with the decoded value: the writer's call runs.
        let res = modern_named(&s, WRITER, "tools/call", Some("write_note"), Some(&encoded))
            .send()
            .await
            .unwrap();
        assert!(tool_text(res).await.contains("saved for writer"));
        // Duplicated routing headers: 400 with -32020, whatever the values.
        let res = modern(&s, WRITER, "tools/call", None)
            .header("mcp-name", "echo")
            .header("mcp-name", "write_note")
            .send()
            .await
            .unwrap();
        let msg = assert_jsonrpc_error(res, 400, -32020).await;
        assert!(
            msg.contains("Mcp-Name header appears more than once"),
            "{msg}"
        );
        let res = modern(&s, WRITER, "tools/list", None)
            .header("mcp-method", "tools/list")
            .send()
            .await
            .unwrap();
        // `.header` appends: two Mcp-Method fields.
        assert_jsonrpc_error(res, 400, -32020).await;
        let res = modern(&s, WRITER, "tools/call", None)
            .header("mcp-name", "=?base64?not base64!?=")
            .send()
            .await
            .unwrap();
        assert_jsonrpc_error(res, 400, -32020).await;
        // A modern tools/call without Mcp-Name.
        let res = modern(&s, WRITER, "tools/call", None).send().await.unwrap();
        let msg = assert_jsonrpc_error(res, 400, -32020).await;
        assert!(
            msg.contains("Mcp-Name header is required for tools/call"),
            "{msg}"
        );
    })
    .await;
}

#[tokio::test]
async fn challenges_can_name_only_what_the_operation_needs() {
    timed(async {
        let s = serve_granted(|l| l, false).await;
        let res = modern(&s, READER, "tools/call", Some("write_note"))
            .send()
            .await
            .unwrap();
        assert_insufficient(res, "mcp:write").await;
    })
    .await;
}

/// A modern request whose headers name `echo` while its body calls `write_note`.
fn smuggled(s: &TestServer) -> reqwest::RequestBuilder {
    let body = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call",
        "params": {"name": "write_note", "arguments": {"text": "x"}, "_meta": meta(MODERN)}});
    post(s, READER, &body.to_string())
        .header("mcp-protocol-version", MODERN)
        .header("mcp-method", "tools/call")
        .header("mcp-name", "echo")
}

#[tokio::test]
async fn header_body_mismatch_never_runs_the_tool() {
    timed(async {
        // Trusting the headers: rmcp (2026-07-28) refuses the mismatch itself.
        let s = serve(|l| l).await;
        let msg = assert_jsonrpc_error(smuggled(&s).send().await.unwrap(), 400, -32020).await;
        assert!(
            !msg.contains("the request body"),
            "rmcp's answer, not ours: {msg}"
        );
        // verify_headers: this layer reads the body and refuses first.
        let s = serve(|l| l.verify_headers(true)).await;
        let msg = assert_jsonrpc_error(smuggled(&s).send().await.unwrap(), 400, -32020).await;
        assert_eq!(msg, "the Mcp-Name header does not match the request body");
        // …and still admits a consistent request, passing the body on.
        let res = modern(&s, READER, "tools/call", Some("echo"))
            .send()
            .await
            .unwrap();
        assert_eq!(tool_text(res).await, "hello");
        let res = modern(&s, READER, "tools/call", Some("write_note"))
            .send()
            .await
            .unwrap();
        assert_insufficient(res, "mcp:read mcp:write").await;
    })
    .await;
}

/// Opens a 2025-11-25 session (no Mcp-Method / Mcp-Name headers): returns its id.
async fn legacy_session(s: &TestServer, token: &str) -> String {
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": LEGACY, "capabilities": {},
        "clientInfo": {"name": "tests", "version": "0"}}});
    let res = post(s, token, &init.to_string()).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let session = res.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    let _ = message(res).await;
    let res = legacy(
        s,
        token,
        &session,
        &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), 202);
    session
}

fn legacy(s: &TestServer, token: &str, session: &str, body: &Value) -> reqwest::RequestBuilder {
    post(s, token, &body.to_string())
        .header("mcp-session-id", session)
        .header("mcp-protocol-version", LEGACY)
}

fn call(id: u64, tool: &str, text: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": tool, "arguments": {"text": text}}})
}

#[tokio::test]
async fn legacy_requests_are_decided_on_their_bodies() {
    timed(async {
        let s = serve(|l| l).await;
        let session = legacy_session(&s, READER).await;
        // The body reaches the server intact: a large argument comes back byte for byte.
        let text = "é\u{1F980}\"\\".repeat(20_000);
        let res = legacy(&s, READER, &session, &call(2, "echo", &text)).send().await.unwrap();
        assert_eq!(tool_text(res).await, text);
        let res = legacy(&s, READER, &session, &call(3, "write_note", "x")).send().await.unwrap();
        assert_insufficient(res, "mcp:read mcp:write").await;
        // Escaped names are read as the server reads them.
        let body = r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"write\u005fnote","arguments":{"text":"x"}}}"#;
        let res = post(&s, READER, body)
            .header("mcp-session-id", &session)
            .header("mcp-protocol-version", LEGACY)
            .send()
            .await
            .unwrap();
        assert_insufficient(res, "mcp:read mcp:write").await;
        // A legacy request that does carry Mcp-Method is checked against its body.
        let res = legacy(&s, READER, &session, &call(5, "write_note", "x"))
            .header("mcp-method", "tools/list")
            .send()
            .await
            .unwrap();
        let msg = assert_jsonrpc_error(res, 400, -32020).await;
        assert_eq!(msg, "the Mcp-Method header does not match the request body");
    })
    .await;
}

#[tokio::test]
async fn batches_need_every_elements_scopes() {
    timed(async {
        let s = serve(|l| l).await;
        let batch = json!([call(2, "echo", "a"), call(3, "write_note", "b")]);
        let res = post(&s, READER, &batch.to_string())
            .header("mcp-protocol-version", LEGACY)
            .send()
            .await
            .unwrap();
        // One challenge naming everything the batch needs.
        assert_insufficient(res, "mcp:read mcp:write").await;
        let res = post(&s, NOBODY, &json!([call(2, "echo", "a")]).to_string())
            .send()
            .await
            .unwrap();
        assert_insufficient(res, "mcp:read").await;
    })
    .await;
}

#[tokio::test]
async fn unreadable_bodies_fail_closed() {
    timed(async {
        let s = serve(|l| l.max_body_bytes(64 * 1024)).await;
        for (body, code) in [
            ("", -32700),
            ("{not json", -32700),
            (
                r#"{"method":"tools/call","params":{"name":"echo"}} {}"#,
                -32700,
            ),
            ("[]", -32600),
            ("17", -32600),
            (r#"{"method":null,"params":{"name":"write_note"}}"#, -32600),
            (r#"{"method":"tools/call","params":["write_note"]}"#, -32600),
            (
                r#"{"method":"tools/call","params":{"name":"echo","name":"write_note"}}"#,
                -32600,
            ),
        ] {
            let res = post(&s, WRITER, body).send().await.unwrap();
            assert_jsonrpc_error(res, 400, code).await;
        }
        // Too large, announced by Content-Length or not.
        let big = call(2, "echo", &"x".repeat(70 * 1024)).to_string();
        let res = post(&s, WRITER, &big).send().await.unwrap();
        assert_jsonrpc_error(res, 413, -32600).await;
        let chunks = futures_util::stream::iter((0..80).map(|_| {
            Ok::<_, std::io::Error>(http_body::Frame::data(bytes::Bytes::from(vec![b' '; 1024])))
        }));
        let res = client()
            .post(s.url("/mcp"))
            .bearer_auth(WRITER)
            .header("content-type", "application/json")
            .body(reqwest::Body::wrap(http_body_util::StreamBody::new(chunks)))
            .send()
            .await
            .unwrap();
        assert_jsonrpc_error(res, 413, -32600).await;
    })
    .await;
}

#[tokio::test]
async fn other_methods_and_missing_identity() {
    timed(async {
        let s = serve(|l| l).await;
        // GET and DELETE carry no operation: the scope layer lets them through to rmcp.
        for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
            let res = client()
                .request(method.clone(), s.url("/mcp"))
                .bearer_auth(NOBODY)
                .header("accept", "text/event-stream")
                .send()
                .await
                .unwrap();
            assert!(challenges(&res).is_empty(), "{method}: {res:?}");
            assert_ne!(res.status(), 403, "{method}");
        }
        // Without the auth layer in front, the scope layer fails closed.
        let auth = AuthLayer::new(tokens());
        let config = EnvConfig::from_vars([("MCP_AUTH_RESOURCE_URL", RESOURCE)]).unwrap();
        let (router, _) = quickstart::mcp_router(&config);
        let bare = serve_axum(router.layer(auth.mcp_scopes(policy()))).await;
        let res = modern(&bare, READER, "tools/call", Some("echo"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401);
        assert_eq!(challenges(&res), [r#"Bearer realm="mcp""#]);
    })
    .await;
}
