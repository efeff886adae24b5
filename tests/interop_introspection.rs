//! Opaque access tokens against a real authorization server (npm `oidc-provider`, started with
//! `AS_TOKEN_FORMAT=opaque`: the tokens it issues for a resource are opaque, and its RFC 7662
//! answers name the resource in `aud`). The example server (`examples/quickstart.rs`) runs in
//! introspection mode, configured from `MCP_AUTH_*` variables: the issuer, and this server's own
//! client at the authorization server (`mcp-resource-server`, whose secret has `:`, `%` and
//! `+`); the endpoint comes from the issuer's metadata (RFC 8414).
//!
//! - The official TypeScript and Python SDK clients discover everything (RFC 9728 → RFC 8414),
//!   get an opaque token and call tools; the server introspects with `client_secret_basic` in
//!   one test and `client_secret_post` in the other.
//! - A token revoked at the authorization server (RFC 7009) is refused once its cache entry
//!   lapses.
//! - `private_key_jwt` (RFC 7523): the authorization server checks our assertion.
//! - A JWT of the issuer is verified locally: a bad signature is `401`, with no introspection.
//!
//! Needs Node.js 20+ with npm and Python 3.11+ with venv, installed on first use as for
//! `tests/interop_clients.rs`. `INTEROP_VERBOSE=1` prints every client's output.
#![cfg(all(
    feature = "introspection",
    feature = "remote-jwks",
    any(feature = "aws-lc-rs", feature = "rust-crypto")
))]

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

use std::{future::Future, path::Path, time::Duration};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use mcp_server_auth::{
    ResourceUrl,
    config::EnvConfig,
    introspection::{ClientAuth, IntrospectionOptions, IntrospectionVerifier, SigningKey},
    jwt::Algorithm,
    rejection::Rejection,
};
use oidc::{AuthServer, StartOptions};
use serde_json::{Value, json};
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_util::sync::CancellationToken;

use clients::{exchanges, run_py, run_ts};

/// Installs the npm and pip packages first (not counted), then runs `test` for at most 150 s.
async fn bounded<F: Future<Output = ()>>(test: F) {
    oidc::ensure_npm_deps_async().await;
    clients::ensure_installed_async().await;
    tokio::time::timeout(Duration::from_secs(150), test)
        .await
        .expect("test took more than 150 s");
}

/// An authorization server issuing opaque tokens for resources.
async fn opaque_auth_server() -> AuthServer {
    AuthServer::start_opts(StartOptions {
        opaque: true,
        ..StartOptions::default()
    })
    .await
}

/// The example server on a free port of 127.0.0.1; stopped when dropped.
struct McpServer {
    /// `http://127.0.0.1:PORT/mcp`: the URL the clients are given, and the resource.
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

/// The example server in introspection mode for `auth`, as its operator would configure it:
/// the issuer and this server's client credentials; the endpoint from discovery. `extra`
/// adds variables.
async fn serve_introspecting(auth: &AuthServer, extra: &[(&str, &str)]) -> McpServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let url = format!("http://{addr}/mcp");
    let listen = addr.to_string();
    let mut vars: Vec<(&str, &str)> = vec![
        ("MCP_AUTH_LISTEN", &listen),
        ("MCP_AUTH_RESOURCE_URL", &url),
        ("MCP_AUTH_ISSUER_URL", &auth.issuer),
        ("MCP_AUTH_SCOPES_SUPPORTED", "mcp:read mcp:write"),
        ("MCP_AUTH_INTROSPECTION_CLIENT_ID", oidc::RS_CLIENT_ID),
        ("MCP_AUTH_INTROSPECTION_CLIENT_SECRET", oidc::RS_SECRET),
    ];
    vars.extend_from_slice(extra);
    let config = EnvConfig::from_vars(vars).unwrap();
    assert!(config.introspection_enabled());
    let (app, shutdown) = quickstart::app(&config).await.unwrap();
    let handle = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    McpServer {
        metadata_url: format!("http://{addr}/.well-known/oauth-protected-resource/mcp"),
        url,
        shutdown,
        handle,
    }
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or("")
}

fn pretty(list: &[&Value]) -> String {
    list.iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("\n")
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

/// The discovery went over the wire in order: a 401 pointing at our metadata, the metadata,
/// the authorization server's metadata, a token request for the MCP URL, then MCP calls.
fn assert_discovery(out: &Value, server: &McpServer, auth: &AuthServer) {
    let list = exchanges(out);
    let position = |from: usize, what: &str, pred: &dyn Fn(&Value) -> bool| {
        list.iter()
            .skip(from)
            .position(|e| pred(e))
            .map(|i| i + from)
            .unwrap_or_else(|| panic!("no {what} after {from}:\n{}", pretty(&list)))
    };
    let first = position(0, "401", &|e| e["kind"] == "mcp" && e["status"] == 401);
    let challenge = str_of(list[first], "www_authenticate");
    assert!(
        challenge.contains(&format!("resource_metadata=\"{}\"", server.metadata_url)),
        "{challenge}"
    );
    let prm = position(first, "metadata fetch", &|e| {
        e["kind"] == "prm" && e["status"] == 200
    });
    let as_metadata = position(prm, "authorization server metadata", &|e| {
        e["kind"] == "as_metadata"
            && str_of(e, "url").starts_with(&format!("{}/.well-known/", auth.issuer))
            && e["status"] == 200
    });
    let token = position(as_metadata, "token request", &|e| {
        e["kind"] == "token" && e["status"] == 200
    });
    assert_eq!(list[token]["url"], auth.token_endpoint.as_str());
    assert_eq!(list[token]["resource"], server.url.as_str());
    position(token, "successful MCP call", &|e| {
        e["kind"] == "mcp" && e["status"].as_u64().is_some_and(|s| s < 300)
    });
}

/// The TypeScript or Python client, in both flows, against a server introspecting with `auth`
/// (`MCP_AUTH_INTROSPECTION_AUTH`): discovery, an opaque token, tool calls.
async fn clients_call_tools_with_opaque_tokens(python: bool, method: &str) {
    let auth = opaque_auth_server().await;
    let server = serve_introspecting(&auth, &[("MCP_AUTH_INTROSPECTION_AUTH", method)]).await;
    let steps =
        r#"[{"call":"tools/list"},{"call":"whoami"},{"call":"echo","args":{"text":"opaque"}}]"#;
    let cc = [
        "--url",
        &server.url,
        "--flow",
        "client_credentials",
        "--issuer",
        &auth.issuer,
        "--scope",
        "mcp:read mcp:write",
        "--steps",
        steps,
    ];
    let code = [
        "--url",
        &server.url,
        "--flow",
        "auth_code",
        "--steps",
        steps,
    ];
    let (cc, code) = if python {
        tokio::join!(run_py(&cc), run_py(&code))
    } else {
        tokio::join!(run_ts(&cc), run_ts(&code))
    };
    for (out, subject) in [(&cc, oidc::CLIENT_ID), (&code, oidc::ACCOUNT_ID)] {
        assert_eq!(out["connect"]["ok"], true, "did not connect: {out}");
        assert_discovery(out, &server, &auth);
        let tools = ok_step(out, 0)["tools"].as_array().unwrap().len();
        assert_eq!(tools, 3, "{out}");
        let text = str_of(ok_step(out, 1), "text");
        let who: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"));
        // Introspected (a JWT of the issuer would say "jwt"), and read from the answer.
        assert_eq!(who["method"], "introspection", "{who}");
        assert_eq!(who["subject"], subject, "{who}");
        assert_eq!(who["scopes"], json!(["mcp:read", "mcp:write"]), "{who}");
        assert_eq!(ok_step(out, 2)["text"], "opaque", "{out}");
    }
    // Each token was introspected once (the cache answers the rest of the session).
    assert_eq!(auth.introspection_calls().await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_clients_call_tools_with_opaque_tokens_introspected_by_client_secret_basic() {
    bounded(clients_call_tools_with_opaque_tokens(
        false,
        "client_secret_basic",
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_clients_call_tools_with_opaque_tokens_introspected_by_client_secret_post() {
    bounded(clients_call_tools_with_opaque_tokens(
        true,
        "client_secret_post",
    ))
    .await;
}

/// An MCP `initialize` with `token`: the status and the `WWW-Authenticate` field.
async fn initialize(url: &str, token: &str) -> (u16, String) {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "test", "version": "1"}}});
    let res = common::client()
        .post(url)
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .json(&body)
        .send()
        .await
        .unwrap();
    let challenge = res
        .headers()
        .get(http::header::WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (res.status().as_u16(), challenge)
}

fn assert_invalid_token(reply: &(u16, String), what: &str) {
    assert_eq!(reply.0, 401, "{what}: {reply:?}");
    assert!(reply.1.starts_with("Bearer "), "{what}: {reply:?}");
    assert!(
        reply.1.contains("error=\"invalid_token\""),
        "{what}: {reply:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_revoked_at_the_authorization_server_is_refused_once_its_cache_entry_lapses() {
    bounded(async {
        let auth = opaque_auth_server().await;
        let server =
            serve_introspecting(&auth, &[("MCP_AUTH_INTROSPECTION_CACHE_SECS", "1")]).await;
        let token = auth
            .client_credentials(Some(&server.url), "mcp:read mcp:write")
            .await;
        assert!(!oidc::is_jwt(&token), "not an opaque token: {token}");
        assert_eq!(initialize(&server.url, &token).await.0, 200);
        assert_eq!(auth.introspection_calls().await, 1);

        auth.revoke(&token).await;
        // Until the cached answer lapses (1 s) the token may still pass; then it is asked
        // about again and refused. At most 100 tries, 100 ms apart.
        let mut refused = None;
        for _ in 0..100 {
            let reply = initialize(&server.url, &token).await;
            if reply.0 != 200 {
                refused = Some(reply);
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let refused = refused.expect("the revoked token was still accepted after 10 s");
        assert_invalid_token(&refused, "revoked");
        assert_eq!(auth.introspection_calls().await, 2);
        // And it stays refused.
        assert_invalid_token(&initialize(&server.url, &token).await, "revoked, again");
    })
    .await;
}

/// `tests/keys/jwks-k4-es256.pem`: a committed test-only P-256 key.
fn es256_key_file() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/keys/jwks-k4-es256.pem")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_key_jwt_authenticates_this_server_at_a_real_authorization_server() {
    bounded(async {
        let key_file = es256_key_file();
        let auth = AuthServer::start_opts(StartOptions {
            opaque: true,
            rs_key_file: Some(key_file.clone()),
            ..StartOptions::default()
        })
        .await;
        let resource = "http://127.0.0.1:9/mcp";
        let verifier = |alg, pem: &[u8]| {
            let key = SigningKey::from_pem(alg, pem, None).unwrap();
            IntrospectionVerifier::builder(
                ResourceUrl::parse(resource).unwrap(),
                ClientAuth::private_key_jwt(oidc::RS_JWT_CLIENT_ID, key),
            )
            .options(IntrospectionOptions {
                // Every verification is a call, with a fresh assertion (a new `jti`).
                max_age: Duration::ZERO,
                ..IntrospectionOptions::default()
            })
        };
        let pem = std::fs::read(&key_file).unwrap();
        let good = verifier(Algorithm::ES256, &pem)
            .discover(&auth.issuer)
            .await
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(good.endpoint(), auth.introspection_endpoint);
        for _ in 0..2 {
            let token = auth.client_credentials(Some(resource), "mcp:read").await;
            let who = good.verify_token(&token).await.unwrap();
            assert_eq!(who.subject(), oidc::CLIENT_ID);
            assert_eq!(who.client_id(), Some(oidc::CLIENT_ID));
            // Two verifications of the same token: two calls, two assertions, both accepted.
            good.verify_token(&token).await.unwrap();
        }
        assert_eq!(auth.introspection_calls().await, 4);

        // An assertion signed with a key the authorization server does not know is refused
        // there: our own credentials failed, so 503, not 401.
        let other = std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/keys/jwks-k1-ed25519.pem"),
        )
        .unwrap();
        let wrong = verifier(Algorithm::EdDSA, &other)
            .discover(&auth.issuer)
            .await
            .unwrap()
            .build()
            .unwrap();
        let token = auth.client_credentials(Some(resource), "mcp:read").await;
        let refused = wrong.verify_token(&token).await.unwrap_err();
        assert!(
            matches!(refused, Rejection::Unavailable { .. }),
            "{refused:?}"
        );
        assert_eq!(auth.introspection_calls().await, 5);
    })
    .await;
}

/// `token` with one character of its signature changed.
fn tampered(token: &str) -> String {
    let (signed, signature) = token.rsplit_once('.').unwrap();
    let mut sig = signature.as_bytes().to_vec();
    // Not the last character: its low bits may be padding.
    let i = sig.len() / 2;
    sig[i] = if sig[i] == b'A' { b'B' } else { b'A' };
    format!("{signed}.{}", String::from_utf8(sig).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jwt_of_the_issuer_with_a_bad_signature_is_401_and_never_introspected() {
    bounded(async {
        // JWT access tokens for resources; the issuer's metadata has a `jwks_uri`, so the
        // server in introspection mode verifies the issuer's JWTs itself.
        let auth = AuthServer::start().await;
        let server = serve_introspecting(&auth, &[]).await;
        let jwt = auth.client_credentials(Some(&server.url), "mcp:read").await;
        assert!(oidc::is_jwt(&jwt), "{jwt}");
        assert_eq!(initialize(&server.url, &jwt).await.0, 200);
        let bad = tampered(&jwt);
        assert_ne!(bad, jwt);
        for _ in 0..3 {
            assert_invalid_token(&initialize(&server.url, &bad).await, "bad signature");
        }
        // Another issuer's claim: a JWT from our issuer with a made-up signature.
        let (header, claims) = oidc::jwt_parts(&jwt);
        let forged = format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string()),
            URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>()),
        );
        assert_invalid_token(&initialize(&server.url, &forged).await, "forged");
        assert_eq!(
            auth.introspection_calls().await,
            0,
            "a JWT of the configured issuer was sent to introspection"
        );
        // The count is live: an opaque token (no resource asked for, so no `aud`) is
        // introspected, and refused for naming no audience.
        let opaque = auth.client_credentials(None, "mcp:read").await;
        assert!(!oidc::is_jwt(&opaque), "{opaque}");
        assert_invalid_token(&initialize(&server.url, &opaque).await, "no aud");
        assert_eq!(auth.introspection_calls().await, 1);
    })
    .await;
}
