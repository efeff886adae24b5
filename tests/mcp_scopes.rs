//! Per-operation MCP scopes ([`McpScopeLayer`]) in front of the example's real rmcp server:
//! MCP 2026-07-28 requests decided on their `Mcp-Method` / `Mcp-Name` headers, older requests
//! (and requests with a protocol version not known to make the server check the headers) on
//! their JSON-RPC bodies (which must reach the server intact), over HTTP/1.1 and HTTP/2;
//! per-prompt and per-resource scopes on every method that names the prompt or resource;
//! batches, header/body mismatches, and bad input.

mod common;
#[path = "../examples/quickstart.rs"]
#[allow(dead_code, unreachable_pub)]
mod quickstart;

use std::time::Duration;

use axum::Router;
use base64::{Engine, engine::general_purpose::STANDARD};
use mcp_server_auth::{
    AuthLayer, ImplicationMap, ProtectedResourceMetadata, ResourceUrl, ScopeSet,
    bearer::StaticBearer, config::EnvConfig, mcp::OperationScopes,
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

fn policy() -> OperationScopes {
    OperationScopes::parse(quickstart::DEFAULT_TOOL_SCOPES).unwrap()
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
    serve_policy(policy(), tune, granted).await
}

/// [`serve_granted`] with the per-operation scopes `scopes`.
async fn serve_policy(
    scopes: OperationScopes,
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
    let app: Router = router.layer(tune(auth.mcp_scopes(scopes))).layer(auth);
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
    post_with(&client(), server, token, body)
}

/// An HTTP/2 client (prior knowledge: h2c, which `axum::serve` speaks on plain TCP). Unlike
/// HTTP/1.1 parsers, HTTP/2 keeps whitespace around header values.
fn client_h2() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .unwrap()
}

/// [`post`] with `client`.
fn post_with(
    client: &reqwest::Client,
    server: &TestServer,
    token: &str,
    body: &str,
) -> reqwest::RequestBuilder {
    client
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

/// The reader's request whose headers (with `MCP-Protocol-Version: version`) say `tools/call`
/// of `echo` while its body, whose `_meta` names the same version, calls `write_note`.
fn lying(client: &reqwest::Client, s: &TestServer, version: &str) -> reqwest::RequestBuilder {
    calling(client, s, version, "echo")
}

/// [`lying`], with `Mcp-Name: header_name`.
fn calling(
    client: &reqwest::Client,
    s: &TestServer,
    version: &str,
    header_name: &str,
) -> reqwest::RequestBuilder {
    let body = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call",
        "params": {"name": "write_note", "arguments": {"text": "x"}, "_meta": meta(version)}});
    post_with(client, s, READER, &body.to_string())
        .header("mcp-protocol-version", version)
        .header("mcp-method", "tools/call")
        .header("mcp-name", header_name)
}

/// This layer's refusal of headers that disagree with the body it read.
async fn assert_body_read_and_mismatched(res: reqwest::Response) {
    let msg = assert_jsonrpc_error(res, 400, -32020).await;
    assert_eq!(msg, "the Mcp-Name header does not match the request body");
}

#[tokio::test]
async fn a_padded_protocol_version_over_http2_is_decided_on_the_body() {
    timed(async {
        let s = serve(|l| l).await;
        let h2 = client_h2();
        for version in [" 2026-07-28", "2026-07-28 ", "\t2026-07-28"] {
            let res = lying(&h2, &s, version).send().await.unwrap();
            assert_eq!(res.version(), reqwest::Version::HTTP_2);
            assert_body_read_and_mismatched(res).await;
            // Headers that agree with the body: decided on it, write_note needs mcp:write.
            let res = calling(&h2, &s, version, "write_note")
                .send()
                .await
                .unwrap();
            assert_insufficient(res, "mcp:read mcp:write").await;
        }
        // HTTP/1.1 strips the whitespace: the version is exactly 2026-07-28, the headers are
        // trusted, and rmcp refuses the mismatch itself. The tool never runs either way.
        let res = lying(&client(), &s, " 2026-07-28").send().await.unwrap();
        assert_eq!(res.version(), reqwest::Version::HTTP_11);
        let msg = assert_jsonrpc_error(res, 400, -32020).await;
        assert!(
            !msg.contains("the request body"),
            "rmcp's answer, not ours: {msg}"
        );
    })
    .await;
}

#[tokio::test]
async fn an_unknown_or_repeated_protocol_version_is_decided_on_the_body() {
    timed(async {
        let s = serve(|l| l).await;
        for client in [client(), client_h2()] {
            // A later revision: nothing says its servers check the headers.
            let res = lying(&client, &s, "2099-01-01").send().await.unwrap();
            assert_body_read_and_mismatched(res).await;
            // Twice the known revision: which one the server reads is its business.
            let res = lying(&client, &s, MODERN)
                .header("mcp-protocol-version", MODERN)
                .send()
                .await
                .unwrap();
            assert_body_read_and_mismatched(res).await;
        }
    })
    .await;
}

/// The example's tool scopes, and `mcp:write` for the prompt `draft` and the resource
/// `file:///notes`.
fn named_policy() -> OperationScopes {
    OperationScopes::builder()
        .tool("echo", ["mcp:read"])
        .tool("write_note", ["mcp:write"])
        .prompt("draft", ["mcp:write"])
        .resource("file:///notes", ["mcp:write"])
        .build()
        .unwrap()
}

/// Methods that name a prompt or resource other than `prompts/get` and `resources/read`, and
/// what they name.
const NAMING: [(&str, &str); 4] = [
    ("resources/subscribe", "file:///notes"),
    ("resources/unsubscribe", "file:///notes"),
    ("completion/complete", "draft"),
    ("completion/complete", "file:///notes"),
];

/// The params of a `method` request naming `target` (a URI, or else a prompt name).
fn naming(method: &str, target: &str) -> Value {
    let reference = if target.contains(':') {
        json!({"type": "ref/resource", "uri": target})
    } else {
        json!({"type": "ref/prompt", "name": target})
    };
    match method {
        "completion/complete" => json!({"ref": reference, "argument": {"name": "a", "value": ""}}),
        _ => json!({"uri": target}),
    }
}

/// An answer of the MCP server itself to the request `id`, not a refusal by the layers in
/// front: no challenge, and a result or rmcp's own error (these methods are not implemented
/// by the example server).
async fn reached_server(res: reqwest::Response, id: u64) {
    assert!(challenges(&res).is_empty(), "{res:?}");
    assert_ne!(res.status(), 403);
    let m = message(res).await;
    assert_eq!(m["id"], json!(id), "{m}");
    assert!(
        m.get("result").is_some() || m["error"]["code"] == json!(-32601),
        "{m}"
    );
}

#[tokio::test]
async fn prompt_and_resource_scopes_cover_subscriptions_and_completions() {
    timed(async {
        let s = serve_policy(named_policy(), |l| l, true).await;
        // MCP 2026-07-28, over both HTTP versions: the headers are trusted, but for these
        // methods they carry no name the server must check, so the body decides.
        for (method, target) in NAMING {
            for client in [client(), client_h2()] {
                let mut params = naming(method, target);
                params["_meta"] = meta(MODERN);
                let body = json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params});
                let send = |token| {
                    let mut req = post_with(&client, &s, token, &body.to_string())
                        .header("mcp-protocol-version", MODERN)
                        .header("mcp-method", method);
                    if method != "completion/complete" {
                        req = req.header("mcp-name", target);
                    }
                    req.send()
                };
                assert_insufficient(send(READER).await.unwrap(), "mcp:read mcp:write").await;
                reached_server(send(WRITER).await.unwrap(), 7).await;
            }
        }
        // 2025-11-25 sessions: decided on the body as before.
        let reader = legacy_session(&s, READER).await;
        let writer = legacy_session(&s, WRITER).await;
        for (method, target) in NAMING {
            let body = json!({"jsonrpc": "2.0", "id": 8, "method": method,
                "params": naming(method, target)});
            let res = legacy(&s, READER, &reader, &body).send().await.unwrap();
            assert_insufficient(res, "mcp:read mcp:write").await;
            let res = legacy(&s, WRITER, &writer, &body).send().await.unwrap();
            reached_server(res, 8).await;
        }
        // What has no entry needs nothing more.
        let body = json!({"jsonrpc": "2.0", "id": 8, "method": "completion/complete",
            "params": naming("completion/complete", "other")});
        let res = legacy(&s, READER, &reader, &body).send().await.unwrap();
        reached_server(res, 8).await;
        // A reference this layer cannot check fails closed, whoever asks.
        for reference in [
            json!({"type": "ref/tool", "name": "draft"}),
            json!({"type": "ref/prompt"}),
            json!("draft"),
        ] {
            let body = json!({"jsonrpc": "2.0", "id": 8, "method": "completion/complete",
                "params": {"ref": reference, "argument": {"name": "a", "value": ""}}});
            let res = legacy(&s, WRITER, &writer, &body).send().await.unwrap();
            assert_jsonrpc_error(res, 400, -32600).await;
        }
    })
    .await;
}

/// The example server (`quickstart::app`) configured from the environment only: static tokens
/// granted scopes by `MCP_AUTH_BEARER_TOKEN_SCOPES`, per-tool scopes by `MCP_AUTH_TOOL_SCOPES`.
#[tokio::test]
async fn static_tokens_from_the_environment_get_their_configured_scopes() {
    timed(async {
        let tokens = format!("laptop:{WRITER},ci:{READER},other:{NOBODY}");
        let config = EnvConfig::from_vars([
            ("MCP_AUTH_BEARER_TOKENS", tokens.as_str()),
            (
                "MCP_AUTH_BEARER_TOKEN_SCOPES",
                "laptop=mcp:read mcp:write,ci=mcp:read",
            ),
            ("MCP_AUTH_TOOL_SCOPES", quickstart::DEFAULT_TOOL_SCOPES),
        ])
        .unwrap();
        let (app, _shutdown) = quickstart::app(&config).await.unwrap();
        let s = serve_axum(app).await;
        let call = |token, tool| modern(&s, token, "tools/call", Some(tool)).send();
        let refused = |res: reqwest::Response, scope: &str| {
            assert_eq!(res.status(), 403);
            let expected = format!(r#"scope="{scope}", error="insufficient_scope""#);
            let challenge = challenges(&res).join("\n");
            assert!(challenge.contains(&expected), "{challenge}");
        };
        // ci (mcp:read): echo, not write_note.
        assert_eq!(
            tool_text(call(READER, "echo").await.unwrap()).await,
            "hello"
        );
        refused(
            call(READER, "write_note").await.unwrap(),
            "mcp:read mcp:write",
        );
        // laptop (mcp:read mcp:write): both.
        assert_eq!(
            tool_text(call(WRITER, "echo").await.unwrap()).await,
            "hello"
        );
        let saved = tool_text(call(WRITER, "write_note").await.unwrap()).await;
        assert!(saved.contains("saved for laptop"), "{saved}");
        // A token without an entry has no scopes: only the tools that need none.
        refused(call(NOBODY, "echo").await.unwrap(), "mcp:read");
        let who = tool_text(call(NOBODY, "whoami").await.unwrap()).await;
        assert!(who.contains(r#""subject":"other""#), "{who}");
    })
    .await;
}
