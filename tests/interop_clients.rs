//! Real MCP clients against the example server (`examples/quickstart.rs`, run in-process and
//! configured from `MCP_AUTH_*` variables) and a real authorization server (npm `oidc-provider`):
//! the TypeScript SDK (`@modelcontextprotocol/sdk`) and the Python SDK (`mcp`), installed from
//! the lock files in `tests/interop/clients` and driven headlessly (see `tests/common/clients.rs`).
//!
//! Each client prints the HTTP exchanges it made, so discovery is asserted on what really went
//! over the wire: 401 with `resource_metadata` → Protected Resource Metadata → authorization
//! server metadata → token request with `resource` = the MCP URL → MCP calls. Then: step-up on a
//! 403 `insufficient_scope`, renewal of expired tokens, refusal of a metadata document for
//! another resource, a static bearer token, and HTTP Basic.
//!
//! Needs Node.js 20+ with npm and Python 3.11+ with venv; the first run installs the packages
//! (about 20 s; see `CARGO_TARGET_TMPDIR/interop-clients-*.log`). `INTEROP_VERBOSE=1` prints
//! every client's output.
#![cfg(all(
    feature = "remote-jwks",
    any(feature = "aws-lc-rs", feature = "rust-crypto")
))] // Remote keys and JWT verification.

#[path = "common/clients.rs"]
mod clients;
mod common;
#[path = "common/install.rs"]
mod install;
#[path = "common/oidc.rs"]
mod oidc;
#[path = "../examples/quickstart.rs"]
#[allow(dead_code, unreachable_pub)]
mod quickstart;

use std::{future::Future, time::Duration};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use mcp_server_auth::config::EnvConfig;
use oidc::AuthServer;
use serde_json::{Value, json};
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_util::sync::CancellationToken;

use clients::{exchanges, run_py, run_ts, step_exchanges};

/// Installs the npm and pip packages first (not counted), then runs `test` for at most 150 s.
async fn bounded<F: Future<Output = ()>>(test: F) {
    oidc::ensure_npm_deps_async().await;
    clients::ensure_installed_async().await;
    tokio::time::timeout(Duration::from_secs(150), test)
        .await
        .expect("test took more than 150 s");
}

/// The example server on a free port of 127.0.0.1; stopped when dropped.
struct McpServer {
    /// `http://127.0.0.1:PORT/mcp`: the URL the clients are given.
    url: String,
    /// `http://127.0.0.1:PORT/.well-known/oauth-protected-resource/mcp`.
    metadata_url: String,
    shutdown: CancellationToken,
    handle: JoinHandle<()>,
}

impl Drop for McpServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
        self.handle.abort();
    }
}

/// Starts `quickstart::app` configured with `vars`, and with `MCP_AUTH_RESOURCE_URL` =
/// `http://{resource_host}:PORT/mcp` (PORT being the one actually bound).
async fn serve_as(resource_host: &str, vars: &[(&str, &str)]) -> McpServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let resource = format!("http://{resource_host}:{}/mcp", addr.port());
    let listen = addr.to_string();
    let mut all: Vec<(&str, &str)> = vec![
        ("MCP_AUTH_LISTEN", &listen),
        ("MCP_AUTH_RESOURCE_URL", &resource),
    ];
    all.extend_from_slice(vars);
    let config = EnvConfig::from_vars(all).unwrap();
    let (app, shutdown) = quickstart::app(&config).await.unwrap();
    let handle = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    McpServer {
        url: format!("http://{addr}/mcp"),
        metadata_url: format!("http://{addr}/.well-known/oauth-protected-resource/mcp"),
        shutdown,
        handle,
    }
}

/// The example server in JWT mode, trusting `auth`, advertising `scopes_supported`.
async fn serve_jwt(auth: &AuthServer, scopes_supported: &str) -> McpServer {
    serve_as(
        "127.0.0.1",
        &[
            ("MCP_AUTH_ISSUER_URL", &auth.issuer),
            ("MCP_AUTH_SCOPES_SUPPORTED", scopes_supported),
            // Expiry is exact: the short-lived tokens of the expiry tests must be refused.
            ("MCP_AUTH_LEEWAY_SECS", "0"),
        ],
    )
    .await
}

/// A random secret of 32 bytes, base64url (a static token, a password).
fn random_secret() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// The client's command line for an OAuth flow.
fn oauth_args<'a>(
    server: &'a McpServer,
    auth: &'a AuthServer,
    flow: &'a str,
    scope: Option<&'a str>,
    steps: &'a str,
) -> Vec<&'a str> {
    let mut args = vec!["--url", &server.url, "--flow", flow, "--steps", steps];
    if flow == "client_credentials" {
        args.extend(["--issuer", &auth.issuer]);
    }
    if let Some(scope) = scope {
        args.extend(["--scope", scope]);
    }
    args
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Sdk {
    TypeScript,
    Python,
}

async fn run(sdk: Sdk, args: &[&str]) -> Value {
    match sdk {
        Sdk::TypeScript => run_ts(args).await,
        Sdk::Python => run_py(args).await,
    }
}

/// The value of auth-param `name` in a challenge (`name="value"` or `name=token`).
fn challenge_param(challenge: &str, name: &str) -> Option<String> {
    let mut rest = challenge;
    while let Some(i) = rest.find(&format!("{name}=")) {
        let before = rest[..i].chars().last();
        let value = &rest[i + name.len() + 1..];
        rest = value;
        if before.is_some_and(|c| c != ' ' && c != ',') {
            continue;
        }
        return Some(match value.strip_prefix('"') {
            Some(quoted) => quoted.split('"').next().unwrap_or("").to_owned(),
            None => value
                .split([',', ' '])
                .next()
                .unwrap_or("")
                .trim()
                .to_owned(),
        });
    }
    None
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or("")
}

/// The index of the first exchange after `from` that satisfies `pred`.
fn find_from(list: &[&Value], from: usize, what: &str, pred: impl Fn(&Value) -> bool) -> usize {
    list.iter()
        .skip(from)
        .position(|e| pred(e))
        .map(|i| i + from)
        .unwrap_or_else(|| {
            panic!(
                "no {what} after exchange {from}; exchanges:\n{}",
                pretty(list)
            )
        })
}

fn pretty(list: &[&Value]) -> String {
    list.iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

fn assert_connected(out: &Value) {
    assert_eq!(
        out["connect"]["ok"], true,
        "{} client did not connect: {}",
        out["sdk"], out["connect"]
    );
}

/// Step `index` succeeded; its result.
fn ok_step(out: &Value, index: usize) -> &Value {
    let step = &out["steps"][index];
    assert_eq!(
        step["ok"], true,
        "{} step {index} failed: {out}",
        out["sdk"]
    );
    step
}

/// Step `index` was a successful `tools/list` naming the example's three tools.
fn assert_lists_tools(out: &Value, index: usize) {
    let mut tools: Vec<&str> = ok_step(out, index)["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("no tools in {out}"))
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    tools.sort_unstable();
    assert_eq!(tools, ["echo", "whoami", "write_note"], "{out}");
}

/// Step `index` was a successful `whoami`: the identity the server saw.
fn whoami(out: &Value, index: usize) -> Value {
    let text = str_of(ok_step(out, index), "text");
    serde_json::from_str(text).unwrap_or_else(|e| panic!("whoami answered {text:?} ({e}): {out}"))
}

fn scopes(who: &Value) -> Vec<&str> {
    let mut s: Vec<&str> = who["scopes"]
        .as_array()
        .unwrap_or_else(|| panic!("no scopes in {who}"))
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    s.sort_unstable();
    s
}

/// The whole discovery happened, in order, before the first successful MCP request: a 401 on
/// the MCP URL pointing at our metadata, the metadata fetched, the authorization server's
/// metadata fetched, a token request of `grant` carrying `resource` = the MCP URL.
fn assert_discovery(out: &Value, server: &McpServer, auth: &AuthServer, grant: &str) {
    let list = exchanges(out);
    let first = list
        .first()
        .unwrap_or_else(|| panic!("no exchanges: {out}"));
    assert_eq!(str_of(first, "kind"), "mcp", "{}", pretty(&list));
    assert_eq!(first["status"], 401, "{}", pretty(&list));
    let challenge = str_of(first, "www_authenticate");
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert_eq!(
        challenge_param(challenge, "resource_metadata").as_deref(),
        Some(server.metadata_url.as_str()),
        "{challenge}"
    );
    let prm = find_from(&list, 1, "metadata fetch", |e| {
        e["kind"] == "prm" && e["url"] == server.metadata_url.as_str() && e["status"] == 200
    });
    let as_metadata = find_from(&list, prm, "authorization server metadata fetch", |e| {
        e["kind"] == "as_metadata"
            && str_of(e, "url").starts_with(&format!("{}/.well-known/", auth.issuer))
            && e["status"] == 200
    });
    let token = find_from(&list, as_metadata, "token request", |e| {
        e["kind"] == "token" && e["grant_type"] == grant
    });
    let token = list[token];
    assert_eq!(token["url"], auth.token_endpoint.as_str(), "{token}");
    assert_eq!(token["resource"], server.url.as_str(), "{token}");
    assert_eq!(token["status"], 200, "{token}");
    let first_ok = list
        .iter()
        .position(|e| e["kind"] == "mcp" && e["status"].as_u64().is_some_and(|s| s < 300))
        .unwrap_or_else(|| panic!("no successful MCP request: {}", pretty(&list)));
    let token_at = list.iter().position(|e| std::ptr::eq(*e, token)).unwrap();
    assert!(token_at < first_ok, "{}", pretty(&list));
    if grant == "authorization_code" {
        // The client registered itself, and its authorization request named the resource too.
        find_from(&list, as_metadata, "registration", |e| {
            e["kind"] == "register" && e["status"] == 201
        });
        let authorize = find_from(&list, as_metadata, "authorization request", |e| {
            e["kind"] == "authorize"
        });
        assert_eq!(
            list[authorize]["resource"],
            server.url.as_str(),
            "{}",
            pretty(&list)
        );
        assert_eq!(list[authorize]["code_challenge_method"], "S256");
    }
}

/// Discovery, `tools/list` and `whoami` through one SDK and one flow.
async fn discovery_and_tools(sdk: Sdk, flow: &str) {
    let auth = AuthServer::start().await;
    let server = serve_jwt(&auth, "mcp:read mcp:write").await;
    let steps =
        r#"[{"call":"tools/list"},{"call":"whoami"},{"call":"echo","args":{"text":"héllo"}}]"#;
    // The TypeScript client_credentials provider asks for its own configured scope only (not
    // the challenge's); the others take the challenge's `scope`.
    let scope = (flow == "client_credentials").then_some("mcp:read mcp:write");
    let out = run(sdk, &oauth_args(&server, &auth, flow, scope, steps)).await;
    assert_connected(&out);
    let grant = match flow {
        "client_credentials" => "client_credentials",
        _ => "authorization_code",
    };
    assert_discovery(&out, &server, &auth, grant);
    assert_lists_tools(&out, 0);
    let who = whoami(&out, 1);
    assert_eq!(who["method"], "jwt", "{who}");
    assert_eq!(scopes(&who), ["mcp:read", "mcp:write"], "{who}");
    if flow == "client_credentials" {
        assert_eq!(who["subject"], oidc::CLIENT_ID, "{who}");
        assert_eq!(who["client_id"], oidc::CLIENT_ID, "{who}");
    } else {
        // The signed-in user, through a client registered on the fly.
        assert_eq!(who["subject"], oidc::ACCOUNT_ID, "{who}");
        let client_id = str_of(&who, "client_id");
        assert!(
            !client_id.is_empty() && client_id != oidc::CLIENT_ID,
            "{who}"
        );
    }
    assert_eq!(ok_step(&out, 2)["text"], "héllo", "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_client_credentials_discovers_and_calls_tools() {
    bounded(discovery_and_tools(Sdk::TypeScript, "client_credentials")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_auth_code_discovers_and_calls_tools() {
    bounded(discovery_and_tools(Sdk::TypeScript, "auth_code")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_client_credentials_discovers_and_calls_tools() {
    bounded(discovery_and_tools(Sdk::Python, "client_credentials")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_auth_code_discovers_and_calls_tools() {
    bounded(discovery_and_tools(Sdk::Python, "auth_code")).await;
}

/// The first 403 `insufficient_scope` of `list` (a step's exchanges): its challenge names the
/// missing `mcp:write`. Returns its index.
fn assert_insufficient_scope(list: &[&Value], server: &McpServer) -> usize {
    let at = find_from(list, 0, "403", |e| e["kind"] == "mcp" && e["status"] == 403);
    let challenge = str_of(list[at], "www_authenticate");
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert_eq!(
        challenge_param(challenge, "error").as_deref(),
        Some("insufficient_scope"),
        "{challenge}"
    );
    let scope = challenge_param(challenge, "scope").unwrap_or_default();
    assert!(
        scope.split(' ').any(|s| s == "mcp:write"),
        "the 403 must name the scope write_note needs: {challenge}"
    );
    assert_eq!(
        challenge_param(challenge, "resource_metadata").as_deref(),
        Some(server.metadata_url.as_str()),
        "{challenge}"
    );
    at
}

const STEP_UP_STEPS: &str =
    r#"[{"call":"whoami"},{"call":"write_note","args":{"text":"step up"}},{"call":"whoami"}]"#;

/// A token with only `mcp:read` calls `write_note`: 403 `insufficient_scope`, scope `mcp:write`;
/// the Python client asks for the union of scopes, gets a new token, and the call succeeds.
///
/// The code flow uses the pre-registered client: a client the Python SDK registers itself is
/// registered with the scope of the first challenge (`mcp:read`), which `oidc-provider` then
/// enforces as the client's allow-list, refusing the step-up with `invalid_scope`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_step_up_reauthorizes_on_insufficient_scope() {
    bounded(async {
        let auth = AuthServer::start().await;
        // The server advertises only the base scope: clients start with mcp:read.
        let server = serve_jwt(&auth, "mcp:read").await;
        let cc = oauth_args(&server, &auth, "client_credentials", None, STEP_UP_STEPS);
        let mut code = oauth_args(&server, &auth, "auth_code", None, STEP_UP_STEPS);
        code.extend([
            "--client-id",
            oidc::CLIENT_ID,
            "--client-secret",
            oidc::CLIENT_SECRET,
            "--issuer",
            &auth.issuer,
        ]);
        let (cc, code) = tokio::join!(run_py(&cc), run_py(&code));
        for (out, grant) in [(cc, "client_credentials"), (code, "authorization_code")] {
            assert_connected(&out);
            let before = whoami(&out, 0);
            assert!(
                scopes(&before).contains(&"mcp:read") && !scopes(&before).contains(&"mcp:write"),
                "{grant}: the first token must have mcp:read only: {before}"
            );
            let list = step_exchanges(&out, 1);
            let denied = assert_insufficient_scope(&list, &server);
            let token = find_from(&list, denied, "new token request", |e| {
                e["kind"] == "token" && e["grant_type"] == grant
            });
            let token = list[token];
            assert_eq!(token["status"], 200, "{token}");
            assert_eq!(token["resource"], server.url.as_str(), "{token}");
            if grant == "client_credentials" {
                let requested = str_of(token, "scope");
                assert!(requested.split(' ').any(|s| s == "mcp:write"), "{token}");
            }
            let saved = str_of(ok_step(&out, 1), "text");
            assert!(saved.starts_with("note "), "{grant}: {saved}");
            let after = whoami(&out, 2);
            assert!(
                scopes(&after).contains(&"mcp:read") && scopes(&after).contains(&"mcp:write"),
                "{grant}: {after}"
            );
        }
    })
    .await;
}

/// The TypeScript client tries once to get a better token (client_credentials with its own
/// configured scope; in the code flow a refresh, which cannot widen the scope), gets the same
/// 403 and reports it; the session goes on for what the token allows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_step_up_reports_the_403() {
    bounded(async {
        let auth = AuthServer::start().await;
        let server = serve_jwt(&auth, "mcp:read").await;
        let steps = r#"[{"call":"whoami"},{"call":"write_note","args":{"text":"step up"}},{"call":"echo","args":{"text":"still here"}}]"#;
        let cc = oauth_args(&server, &auth, "client_credentials", Some("mcp:read"), steps);
        let code = oauth_args(&server, &auth, "auth_code", None, steps);
        let (cc, code) = tokio::join!(run_ts(&cc), run_ts(&code));
        for (out, grant) in [(cc, "client_credentials"), (code, "refresh_token")] {
            assert_connected(&out);
            assert_eq!(scopes(&whoami(&out, 0)), ["mcp:read"], "{out}");
            let step = &out["steps"][1];
            assert_eq!(step["ok"], false, "write_note must be refused: {out}");
            assert_eq!(step["status"], 403, "{step}");
            assert!(
                str_of(step, "error").contains("Server returned 403 after trying upscoping"),
                "{step}"
            );
            let list = step_exchanges(&out, 1);
            let denied = assert_insufficient_scope(&list, &server);
            let retried = find_from(&list, denied, "token request", |e| {
                e["kind"] == "token" && e["grant_type"] == grant
            });
            assert_eq!(list[retried]["resource"], server.url.as_str());
            find_from(&list, retried, "second 403", |e| {
                e["kind"] == "mcp" && e["status"] == 403
            });
            // Nothing was written: no 2xx on the MCP URL during the step.
            assert!(
                !list
                    .iter()
                    .any(|e| e["kind"] == "mcp" && e["status"].as_u64().is_some_and(|s| s < 300)),
                "{}",
                pretty(&list)
            );
            assert_eq!(ok_step(&out, 2)["text"], "still here", "{out}");
        }
    })
    .await;
}

const EXPIRY_STEPS: &str = r#"[{"call":"whoami"},{"sleep_ms":4500},{"call":"whoami"}]"#;
const TOKEN_TTL_SECS: u64 = 3;

/// Tokens that live 3 s: the TypeScript client sends its expired token, gets 401
/// `invalid_token`, gets a new token (client_credentials again, or a refresh) and carries on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_renews_expired_tokens() {
    bounded(async {
        let auth = AuthServer::start_with(TOKEN_TTL_SECS).await;
        let server = serve_jwt(&auth, "mcp:read mcp:write").await;
        let cc = oauth_args(&server, &auth, "client_credentials", None, EXPIRY_STEPS);
        let code = oauth_args(&server, &auth, "auth_code", None, EXPIRY_STEPS);
        let (cc, code) = tokio::join!(run_ts(&cc), run_ts(&code));
        for (out, grant) in [(cc, "client_credentials"), (code, "refresh_token")] {
            assert_connected(&out);
            let first = whoami(&out, 0);
            // The call after expiry succeeded (its error, if not, comes with the whole output).
            let second = whoami(&out, 2);
            let list = step_exchanges(&out, 2);
            let expired = find_from(&list, 0, "401", |e| {
                e["kind"] == "mcp" && e["status"] == 401
            });
            let challenge = str_of(list[expired], "www_authenticate");
            assert_eq!(
                challenge_param(challenge, "error").as_deref(),
                Some("invalid_token"),
                "{grant}: {challenge}"
            );
            let token = find_from(&list, expired, "new token", |e| {
                e["kind"] == "token" && e["grant_type"] == grant
            });
            assert_eq!(list[token]["resource"], server.url.as_str());
            assert_eq!(list[token]["status"], 200);
            find_from(&list, token, "successful retry", |e| {
                e["kind"] == "mcp" && e["status"] == 200
            });
            assert_eq!(second["subject"], first["subject"], "{grant}");
        }
    })
    .await;
}

/// Tokens that live 3 s: the Python client knows when its token expires. With
/// client_credentials it drops the token and sends the request without one (401 with no
/// `error`), then gets a new token; with a refresh token it refreshes before sending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_renews_expired_tokens() {
    bounded(async {
        let auth = AuthServer::start_with(TOKEN_TTL_SECS).await;
        let server = serve_jwt(&auth, "mcp:read mcp:write").await;
        let cc = oauth_args(&server, &auth, "client_credentials", None, EXPIRY_STEPS);
        let code = oauth_args(&server, &auth, "auth_code", None, EXPIRY_STEPS);
        let (cc, code) = tokio::join!(run_py(&cc), run_py(&code));

        assert_connected(&cc);
        let first = whoami(&cc, 0);
        // The call after expiry succeeded (its error, if not, comes with the whole output).
        let second = whoami(&cc, 2);
        let list = step_exchanges(&cc, 2);
        let unauthorized = find_from(&list, 0, "401", |e| {
            e["kind"] == "mcp" && e["status"] == 401
        });
        let challenge = str_of(list[unauthorized], "www_authenticate");
        assert!(challenge.starts_with("Bearer "), "{challenge}");
        assert_eq!(challenge_param(challenge, "error"), None, "{challenge}");
        let token = find_from(&list, unauthorized, "new token", |e| {
            e["kind"] == "token" && e["grant_type"] == "client_credentials"
        });
        assert_eq!(list[token]["resource"], server.url.as_str());
        find_from(&list, token, "successful retry", |e| {
            e["kind"] == "mcp" && e["status"] == 200
        });
        assert_eq!(second["subject"], first["subject"]);

        assert_connected(&code);
        let first = whoami(&code, 0);
        let second = whoami(&code, 2);
        let list = step_exchanges(&code, 2);
        let refresh = find_from(&list, 0, "refresh", |e| {
            e["kind"] == "token" && e["grant_type"] == "refresh_token"
        });
        assert_eq!(list[refresh]["resource"], server.url.as_str());
        assert_eq!(list[refresh]["status"], 200);
        find_from(&list, refresh, "successful call", |e| {
            e["kind"] == "mcp" && e["status"] == 200
        });
        assert!(
            !list
                .iter()
                .any(|e| e["kind"] == "mcp" && e["status"] == 401),
            "{}",
            pretty(&list)
        );
        assert_eq!(second["subject"], first["subject"]);
    })
    .await;
}

/// The server's resource URL says `localhost`, the clients connect to `127.0.0.1`: both SDKs,
/// in both flows, read the metadata, see that it is for another resource, and stop before asking
/// for a token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_refuse_metadata_for_another_resource() {
    bounded(async {
        let auth = AuthServer::start().await;
        let server = serve_as(
            "localhost",
            &[
                ("MCP_AUTH_ISSUER_URL", &auth.issuer),
                ("MCP_AUTH_SCOPES_SUPPORTED", "mcp:read mcp:write"),
            ],
        )
        .await;
        let resource = server.url.replace("127.0.0.1", "localhost");
        let steps = r#"[{"call":"whoami"}]"#;
        let cc = oauth_args(&server, &auth, "client_credentials", None, steps);
        let code = oauth_args(&server, &auth, "auth_code", None, steps);
        let (ts_cc, ts_code, py_cc, py_code) =
            tokio::join!(run_ts(&cc), run_ts(&code), run_py(&cc), run_py(&code));
        for out in [ts_cc, ts_code, py_cc, py_code] {
            assert_eq!(out["connect"]["ok"], false, "the client went on: {out}");
            let error = str_of(&out["connect"], "error");
            assert!(
                error.contains("does not match")
                    && error.contains(&resource)
                    && error.contains(&server.url),
                "{}: {error}",
                out["sdk"]
            );
            assert_eq!(out["steps"], json!([]), "{out}");
            let list = exchanges(&out);
            // It did read our metadata (the refusal is the resource check, not a failure)...
            find_from(&list, 0, "metadata fetch", |e| {
                e["kind"] == "prm" && e["status"] == 200
            });
            // ...and then neither registered, nor asked for a token, nor reached a tool.
            for e in &list {
                assert!(
                    !matches!(str_of(e, "kind"), "token" | "register" | "authorize"),
                    "{}: {e}",
                    out["sdk"]
                );
                assert!(
                    e["kind"] != "mcp" || e["status"] == 401,
                    "{}: {e}",
                    out["sdk"]
                );
            }
        }
    })
    .await;
}

/// A static token in a fixed `Authorization` header: accepted when right (no discovery needed),
/// 401 `invalid_token` when wrong.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_bearer_header() {
    bounded(async {
        let token = random_secret();
        let server = serve_as("127.0.0.1", &[("MCP_AUTH_BEARER_TOKEN", &token)]).await;
        let good = format!("Authorization: Bearer {token}");
        let bad = format!("Authorization: Bearer {}", random_secret());
        let steps = r#"[{"call":"tools/list"},{"call":"whoami"}]"#;
        let with = |header| {
            [
                "--url",
                &server.url,
                "--flow",
                "static",
                "--header",
                header,
                "--steps",
                steps,
            ]
        };
        let (good_args, bad_args) = (with(&good), with(&bad));
        let (ts_good, py_good, ts_bad) =
            tokio::join!(run_ts(&good_args), run_py(&good_args), run_ts(&bad_args));

        for out in [ts_good, py_good] {
            assert_connected(&out);
            assert_lists_tools(&out, 0);
            let who = whoami(&out, 1);
            assert_eq!(who["method"], "static_bearer", "{who}");
            assert_eq!(who["subject"], "default", "{who}");
            let list = exchanges(&out);
            assert!(
                list.iter()
                    .all(|e| e["kind"] == "mcp" && e["status"].as_u64().is_some_and(|s| s < 300)),
                "{}",
                pretty(&list)
            );
        }

        assert_eq!(ts_bad["connect"]["ok"], false, "{ts_bad}");
        assert_eq!(ts_bad["connect"]["status"], 401, "{ts_bad}");
        let list = exchanges(&ts_bad);
        assert_eq!(list.len(), 1, "{}", pretty(&list));
        let challenge = str_of(list[0], "www_authenticate");
        assert!(challenge.starts_with("Bearer "), "{challenge}");
        assert_eq!(
            challenge_param(challenge, "error").as_deref(),
            Some("invalid_token"),
            "{challenge}"
        );
    })
    .await;
}

/// The JSON-RPC answer in a 200 of the MCP endpoint, whether sent as JSON or as one SSE event.
fn jsonrpc_answer(content_type: &str, body: &str) -> Value {
    let json = if content_type.starts_with("text/event-stream") {
        body.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .map(str::trim)
            .find(|d| d.starts_with('{'))
            .unwrap_or_else(|| panic!("no JSON event in {body:?}"))
            .to_owned()
    } else {
        body.to_owned()
    };
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("not JSON ({e}): {body:?}"))
}

/// HTTP Basic, with a plain HTTP client speaking MCP 2026-07-28 (stateless: one POST).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_user_with_a_raw_http_client() {
    bounded(async {
        let password = random_secret();
        let server = serve_as(
            "127.0.0.1",
            &[("MCP_AUTH_USER", "alice"), ("MCP_AUTH_PASSWORD", &password)],
        )
        .await;
        let body = json!({
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {
                "name": "whoami",
                "arguments": {},
                "_meta": {
                    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                    "io.modelcontextprotocol/clientInfo": { "name": "t", "version": "0" },
                    "io.modelcontextprotocol/clientCapabilities": {}
                }
            }
        });
        let call = |password: Option<&str>| {
            let mut req = common::client()
                .post(&server.url)
                .header("MCP-Protocol-Version", "2026-07-28")
                .header("Mcp-Method", "tools/call")
                .header("Mcp-Name", "whoami")
                .header("Accept", "application/json, text/event-stream")
                .json(&body);
            if let Some(password) = password {
                req = req.basic_auth("alice", Some(password));
            }
            req.send()
        };

        let res = call(Some(&password)).await.unwrap();
        assert_eq!(res.status(), 200);
        let content_type = res.headers()[http::header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_owned();
        let answer = jsonrpc_answer(&content_type, &res.text().await.unwrap());
        assert_eq!(answer["id"], 1, "{answer}");
        let text = answer["result"]["content"][0]["text"]
            .as_str()
            .unwrap_or_else(|| panic!("no text content: {answer}"));
        let who: Value = serde_json::from_str(text).unwrap();
        assert_eq!(who["subject"], "alice", "{who}");
        assert_eq!(who["method"], "basic", "{who}");

        for password in [Some("not-the-password"), None] {
            let res = call(password).await.unwrap();
            assert_eq!(res.status(), 401, "{password:?}");
            let challenges = common::challenges(&res);
            assert!(
                challenges
                    .iter()
                    .any(|c| c.starts_with("Basic realm=\"mcp\"")),
                "{challenges:?}"
            );
        }
    })
    .await;
}
