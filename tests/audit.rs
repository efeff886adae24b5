//! The audit trail over real sockets: the example server (as `EnvConfig` builds it, with the
//! example's own JSON-lines layer) and one test per kind of decision, each event checked field
//! by field; then every secret the tests present searched for in the audit output.
//!
//! Each test runs on a current-thread runtime with its own subscriber (`set_default`): the
//! server, its connections and the client all run on the test's thread, so every audit event
//! lands in that test's buffer.
#![cfg(all(
    feature = "remote-jwks",
    any(feature = "aws-lc-rs", feature = "rust-crypto")
))] // JWT verification with remote keys.

mod common;
#[path = "common/jwks_server.rs"]
mod jwks_server;
#[path = "../examples/quickstart.rs"]
#[allow(dead_code, unreachable_pub)]
mod quickstart;

use std::{
    io,
    sync::{Arc, Mutex},
};

use axum::{Router, routing};
use http::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, ORIGIN};
use jwks_server::{ISSUER, JwksServer, RESOURCE, expired_token, k1, wrong_audience_token};
use mcp_server_auth::{ScopeRequirement, config::EnvConfig};
use serde_json::{Map, Value, json};
use tracing_subscriber::layer::SubscriberExt;

use common::{TestServer, client, serve_axum_with_peers};

const LAPTOP: &str = "bGFwdG9wLWF1ZGl0LXRva2VuLVE3eEtwMnZM";
const READER: &str = "cmVhZGVyLWF1ZGl0LXRva2VuLVo0dE45cVcy";
const WRONG: &str = "d3JvbmctYXVkaXQtdG9rZW4tSDVqUjhrTTM";
const PASSWORD: &str = "audit-Pa55word-Xc8vBn2m";
const COOKIE_SECRET: &str = "session=cookie-secret-Lp0oKi9uJy";

/// A buffer of JSON lines.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl io::Write for Lines {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Lines {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }

    /// Every event so far, parsed.
    fn events(&self) -> Vec<Map<String, Value>> {
        self.text()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .map(|v| v.as_object().unwrap().clone())
            .collect()
    }
}

/// Runs `test` with the example's audit layer writing to a fresh buffer; returns the buffer.
fn audited<F, Fut>(test: F) -> Lines
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = ()>,
{
    let lines = Lines::default();
    let writer = lines.clone();
    let subscriber =
        tracing_subscriber::registry().with(quickstart::audit_layer(move || writer.clone()));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tracing::subscriber::with_default(subscriber, || {
        runtime.block_on(async {
            tokio::time::timeout(std::time::Duration::from_secs(60), test())
                .await
                .expect("test took more than 60 s")
        })
    });
    lines
}

/// Checks an event field by field: exactly `expected`, plus the subscriber's `timestamp`,
/// `level`, `target`, `message` and a `latency_us` number.
fn check(event: &Map<String, Value>, expected: Value) {
    let mut event = event.clone();
    assert!(event.remove("timestamp").unwrap().is_string());
    assert!(event.remove("latency_us").unwrap().is_u64());
    assert_eq!(event.remove("level").unwrap(), "INFO");
    assert_eq!(event.remove("target").unwrap(), "mcp_server_auth::audit");
    assert_eq!(event.remove("message").unwrap(), "auth decision");
    assert_eq!(Value::Object(event), expected);
}

/// The example server configured by `vars` only.
async fn example_with(vars: &[(&str, &str)]) -> TestServer {
    let config = EnvConfig::from_vars(vars.iter().copied()).unwrap();
    let (app, _shutdown) = quickstart::app(&config).await.unwrap();
    serve_axum_with_peers(app).await
}

/// The example server with static tokens `laptop` (mcp:read mcp:write) and `reader`
/// (mcp:read), a Basic user, `write_note` needing mcp:write, and `extra` variables.
async fn example(extra: &[(&str, &str)]) -> TestServer {
    let tokens = format!("laptop:{LAPTOP},reader:{READER}");
    let mut vars = vec![
        ("MCP_AUTH_BEARER_TOKENS", tokens.as_str()),
        (
            "MCP_AUTH_BEARER_TOKEN_SCOPES",
            "laptop=mcp:read mcp:write,reader=mcp:read",
        ),
        ("MCP_AUTH_USER", "alice"),
        ("MCP_AUTH_PASSWORD", PASSWORD),
        ("MCP_AUTH_TOOL_SCOPES", "write_note=mcp:write"),
    ];
    vars.extend_from_slice(extra);
    let config = EnvConfig::from_vars(vars).unwrap();
    let (app, _shutdown) = quickstart::app(&config).await.unwrap();
    serve_axum_with_peers(app).await
}

/// POSTs the JSON-RPC `body` to `/mcp` with `authorization` and `headers`; the status.
async fn post(
    server: &TestServer,
    authorization: Option<&str>,
    headers: &[(&str, &str)],
    body: Value,
) -> u16 {
    let mut req = client()
        .post(server.url("/mcp"))
        .header(CONTENT_TYPE, "application/json")
        .header("accept", "application/json, text/event-stream")
        .header(COOKIE, COOKIE_SECRET)
        .json(&body);
    if let Some(a) = authorization {
        req = req.header(AUTHORIZATION, a);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap().status().as_u16()
}

fn initialize() -> Value {
    json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{
        "protocolVersion":"2025-11-25","capabilities":{},
        "clientInfo":{"name":"audit-test","version":"0"}}})
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[test]
fn an_admitted_request_is_one_allowed_event_with_every_field() {
    let lines = audited(|| async {
        let server = example(&[]).await;
        let headers = [("mcp-method", "initialize"), ("x-request-id", "req-1")];
        let status = post(&server, Some(&bearer(LAPTOP)), &headers, initialize()).await;
        assert_eq!(status, 200);
    });
    let events = lines.events();
    assert_eq!(events.len(), 1, "{}", lines.text());
    check(
        &events[0],
        json!({"layer":"auth","outcome":"allowed","scheme":"bearer","method":"static_bearer",
            "subject":"laptop","mcp_method":"initialize","peer":"127.0.0.1","request_id":"req-1"}),
    );
}

#[test]
fn a_request_without_credentials_is_refused_as_no_credentials() {
    let lines = audited(|| async {
        let server = example(&[]).await;
        assert_eq!(post(&server, None, &[], initialize()).await, 401);
    });
    let events = lines.events();
    assert_eq!(events.len(), 1, "{}", lines.text());
    check(
        &events[0],
        json!({"layer":"auth","outcome":"refused","status":401,"reason":"no_credentials",
            "scheme":"none","peer":"127.0.0.1"}),
    );
}

#[test]
fn a_wrong_token_is_refused_as_invalid_token_and_a_wrong_password_as_such() {
    let lines = audited(|| async {
        let server = example(&[]).await;
        let id = [("x-request-id", "bad \"id\" <x>")];
        assert_eq!(
            post(&server, Some(&bearer(WRONG)), &id, initialize()).await,
            401
        );
        let basic = format!("Basic {}", base64_of(&format!("alice:{WRONG}")));
        assert_eq!(post(&server, Some(&basic), &[], initialize()).await, 401);
    });
    let events = lines.events();
    assert_eq!(events.len(), 2, "{}", lines.text());
    check(
        &events[0],
        json!({"layer":"auth","outcome":"refused","status":401,"reason":"invalid_token",
            "scheme":"bearer","peer":"127.0.0.1","request_id":"bad__id___x_"}),
    );
    check(
        &events[1],
        json!({"layer":"auth","outcome":"refused","status":401,"reason":"wrong_password",
            "scheme":"basic","peer":"127.0.0.1"}),
    );
}

fn base64_of(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[test]
fn expired_and_wrong_audience_jwts_are_audited_with_their_reason_beside_static_tokens() {
    let key = k1();
    let (expired, other) = (expired_token(&key), wrong_audience_token(&key));
    let lines = audited(|| async {
        let jwks = JwksServer::start(&[&key]).await;
        let url = jwks.url();
        // Static tokens beside the JWTs: the JWT verifier's reason wins over the static
        // tokens' "not one of mine".
        let server = example_with(&[
            ("MCP_AUTH_BEARER_TOKEN", READER),
            ("MCP_AUTH_ISSUER_URL", ISSUER),
            ("MCP_AUTH_JWKS_URL", &url),
            ("MCP_AUTH_AUDIENCE", RESOURCE),
        ])
        .await;
        assert_eq!(
            post(&server, Some(&bearer(&expired)), &[], initialize()).await,
            401
        );
        assert_eq!(
            post(&server, Some(&bearer(&other)), &[], initialize()).await,
            401
        );
    });
    let events = lines.events();
    assert_eq!(events.len(), 2, "{}", lines.text());
    for (event, reason) in events.iter().zip(["expired", "wrong_audience"]) {
        check(
            event,
            json!({"layer":"auth","outcome":"refused","status":401,"reason":reason,
                "scheme":"bearer","peer":"127.0.0.1"}),
        );
    }
    let text = lines.text();
    assert!(!text.contains(&expired) && !text.contains(&other), "{text}");
}

#[test]
fn a_route_needing_a_scope_refuses_after_the_auth_layer_allowed() {
    let lines = audited(|| async {
        let tokens = format!("reader:{READER}");
        let config = EnvConfig::from_vars([
            ("MCP_AUTH_BEARER_TOKENS", tokens.as_str()),
            ("MCP_AUTH_BEARER_TOKEN_SCOPES", "reader=mcp:read"),
        ])
        .unwrap();
        let auth = config.layer().await.unwrap();
        let write = auth.require_scopes(ScopeRequirement::all_of(["mcp:write"]).unwrap());
        let app = Router::new()
            .route("/mcp", routing::post(|| async { "written" }))
            .route_layer(write)
            .layer(auth);
        let server = serve_axum_with_peers(app).await;
        let headers = [("x-request-id", "route-1")];
        assert_eq!(
            post(&server, Some(&bearer(READER)), &headers, json!({})).await,
            403
        );
    });
    let events = lines.events();
    assert_eq!(events.len(), 2, "{}", lines.text());
    check(
        &events[0],
        json!({"layer":"auth","outcome":"allowed","scheme":"bearer","method":"static_bearer",
            "subject":"reader","peer":"127.0.0.1","request_id":"route-1"}),
    );
    check(
        &events[1],
        json!({"layer":"scopes","outcome":"refused","status":403,"reason":"insufficient_scope",
            "scheme":"bearer","method":"static_bearer","subject":"reader","peer":"127.0.0.1",
            "request_id":"route-1"}),
    );
}

#[test]
fn a_tool_needing_a_scope_is_refused_naming_the_tool() {
    let lines = audited(|| async {
        let server = example(&[]).await;
        let call = json!({"jsonrpc":"2.0","id":2,"method":"tools/call",
            "params":{"name":"write_note","arguments":{"text":"hi"}}});
        let headers = [("mcp-method", "tools/call"), ("mcp-name", "write_note")];
        assert_eq!(
            post(&server, Some(&bearer(READER)), &headers, call).await,
            403
        );
    });
    let events = lines.events();
    assert_eq!(events.len(), 2, "{}", lines.text());
    check(
        &events[0],
        json!({"layer":"auth","outcome":"allowed","scheme":"bearer","method":"static_bearer",
            "subject":"reader","mcp_method":"tools/call","mcp_name":"write_note",
            "peer":"127.0.0.1"}),
    );
    check(
        &events[1],
        json!({"layer":"mcp_scopes","outcome":"refused","status":403,
            "reason":"insufficient_scope","scheme":"bearer","method":"static_bearer",
            "subject":"reader","mcp_method":"tools/call","mcp_name":"write_note",
            "peer":"127.0.0.1"}),
    );
}

#[test]
fn a_foreign_origin_is_refused_before_any_credential_is_checked() {
    let lines = audited(|| async {
        let server = example(&[]).await;
        let headers = [(ORIGIN.as_str(), "https://evil.example")];
        assert_eq!(
            post(&server, Some(&bearer(LAPTOP)), &headers, initialize()).await,
            403
        );
    });
    let events = lines.events();
    assert_eq!(events.len(), 1, "{}", lines.text());
    check(
        &events[0],
        json!({"layer":"origin","outcome":"refused","status":403,"reason":"origin",
            "scheme":"bearer","peer":"127.0.0.1"}),
    );
}

#[test]
fn a_client_past_the_failure_limit_is_throttled() {
    let lines = audited(|| async {
        let server = example(&[("MCP_AUTH_FAILURE_LIMIT", "2")]).await;
        for _ in 0..2 {
            assert_eq!(
                post(&server, Some(&bearer(WRONG)), &[], initialize()).await,
                401
            );
        }
        assert_eq!(
            post(&server, Some(&bearer(LAPTOP)), &[], initialize()).await,
            429
        );
    });
    let events = lines.events();
    assert_eq!(events.len(), 3, "{}", lines.text());
    check(
        &events[2],
        json!({"layer":"throttle","outcome":"throttled","status":429,"reason":"throttled",
            "scheme":"bearer","peer":"127.0.0.1"}),
    );
}

#[test]
fn no_secret_presented_or_configured_reaches_the_audit_output() {
    let key = k1();
    let (expired, other) = (expired_token(&key), wrong_audience_token(&key));
    let basic_good = format!("Basic {}", base64_of(&format!("alice:{PASSWORD}")));
    let basic_wrong = format!("Basic {}", base64_of(&format!("alice:{WRONG}")));
    let lines = audited(|| async {
        let jwks = JwksServer::start(&[&key]).await;
        let url = jwks.url();
        let server = example(&[
            ("MCP_AUTH_ISSUER_URL", ISSUER),
            ("MCP_AUTH_JWKS_URL", &url),
            ("MCP_AUTH_AUDIENCE", RESOURCE),
            ("MCP_AUTH_FAILURE_LIMIT", "6"),
        ])
        .await;
        let call = json!({"jsonrpc":"2.0","id":2,"method":"tools/call",
            "params":{"name":"write_note","arguments":{"text":"hi"}}});
        for authorization in [
            bearer(LAPTOP),
            bearer(READER),
            basic_good.clone(),
            basic_wrong.clone(),
            bearer(WRONG),
            bearer(&expired),
            bearer(&other),
        ] {
            post(&server, Some(&authorization), &[], initialize()).await;
            post(&server, Some(&authorization), &[], call.clone()).await;
        }
    });
    let text = lines.text();
    assert!(lines.events().len() >= 14, "{text}");
    for secret in [
        LAPTOP,
        READER,
        WRONG,
        PASSWORD,
        COOKIE_SECRET,
        "cookie-secret",
        &expired,
        &other,
        &basic_good,
        &basic_wrong,
        basic_good.trim_start_matches("Basic "),
    ] {
        assert!(!text.contains(secret), "{secret} leaks:\n{text}");
    }
}
