//! Sender-constrained tokens from a real authorization server (npm `oidc-provider`, started with
//! `AS_DPOP=1` or `AS_MTLS=1`, see `tests/interop/as/server.mjs`) to the example server
//! (`examples/quickstart.rs`, configured from `MCP_AUTH_*` variables, in JWT mode), used by a
//! real MCP client: the TypeScript SDK with the authorization done by
//! `tests/interop/clients/bound_client.mjs` (the SDK in the lock file sends no DPoP proofs; the
//! script makes them with `jose`).
//!
//! - DPoP (RFC 9449): the client discovers the authorization server from the `401`, gets a token
//!   with a proof (`token_type: DPoP`, `cnf.jkt` = its key's thumbprint) and calls tools with a
//!   fresh proof each time; the same token sent as `Bearer` is refused (§7.2), and so is a proof
//!   sent twice (§11.1). Then with server nonces at both servers (§8–9) and `required` mode.
//! - Certificate-bound tokens (RFC 8705): the client gets its token from the authorization
//!   server's mutual-TLS endpoint (§5 `mtls_endpoint_aliases`) with a certificate made here by
//!   `rcgen`, and calls tools on the example server served over mutual TLS (tokio-rustls, as
//!   `examples/mtls.rs` does); over a connection without the certificate the token is refused.
//!
//! Needs Node.js 20+ with npm; the first run installs the packages from the lock files.
//! `INTEROP_VERBOSE=1` prints every client's output.
#![cfg(all(feature = "remote-jwks", feature = "aws-lc-rs"))] // Remote keys; the TLS example.

#[path = "common/clients.rs"]
mod clients;
#[path = "common/install.rs"]
mod install;
#[path = "../examples/mtls.rs"]
#[allow(dead_code)]
mod mtls_example;
#[path = "common/oidc.rs"]
mod oidc;
#[path = "../examples/quickstart.rs"]
#[allow(dead_code, unreachable_pub)]
mod quickstart;

use std::{future::Future, path::PathBuf, sync::Arc, time::Duration};

use base64::{
    Engine,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use mcp_server_auth::config::EnvConfig;
use oidc::{AuthServer, StartOptions};
use serde_json::Value;
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_rustls::rustls::ServerConfig;
use tokio_util::sync::CancellationToken;

const SCOPE: &str = "mcp:read mcp:write";
const STEPS: &str = r#"[{"call":"tools/list"},{"call":"whoami"},{"call":"echo","args":{"text":"bound"}},{"call":"write_note","args":{"text":"n"}}]"#;

/// Installs the npm packages first (not counted), then runs `test` for at most 120 s.
async fn bounded<F: Future<Output = ()>>(test: F) {
    oidc::ensure_npm_deps_async().await;
    clients::ensure_npm_installed_async().await;
    tokio::time::timeout(Duration::from_secs(120), test)
        .await
        .expect("test took more than 120 s");
}

/// The example server on a free port of 127.0.0.1; stopped when dropped.
struct McpServer {
    /// `http(s)://127.0.0.1:PORT/mcp`: the resource URL, and the URL the client is given.
    url: String,
    shutdown: CancellationToken,
    handle: JoinHandle<()>,
}

impl Drop for McpServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
        self.handle.abort();
    }
}

/// `quickstart::app` in JWT mode trusting `auth`, configured with `vars` too; over mutual TLS
/// when `tls` is given (the client's certificate in each request, as `examples/mtls.rs` does).
async fn serve(
    auth: &AuthServer,
    vars: &[(&str, &str)],
    tls: Option<Arc<ServerConfig>>,
) -> McpServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let scheme = if tls.is_some() { "https" } else { "http" };
    let url = format!("{scheme}://{addr}/mcp");
    let listen = addr.to_string();
    let mut all: Vec<(&str, &str)> = vec![
        ("MCP_AUTH_LISTEN", &listen),
        ("MCP_AUTH_RESOURCE_URL", &url),
        ("MCP_AUTH_ISSUER_URL", &auth.issuer),
        ("MCP_AUTH_SCOPES_SUPPORTED", SCOPE),
    ];
    all.extend_from_slice(vars);
    let config = EnvConfig::from_vars(all).unwrap();
    let (app, shutdown) = quickstart::app(&config).await.unwrap();
    let handle = tokio::spawn(mtls_example::serve(listener, tls, app));
    McpServer {
        url,
        shutdown,
        handle,
    }
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no string {key} in {v}"))
}

/// The client connected and every step succeeded; `whoami` says the client id.
fn assert_tools_called(out: &Value, client_id: &str) {
    assert_eq!(out["connect"]["ok"], true, "connect failed: {out:#}");
    let steps = out["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 4, "{out:#}");
    for step in steps {
        assert_eq!(step["ok"], true, "step failed: {step}\n{out:#}");
    }
    assert!(
        steps[0]["tools"]
            .as_array()
            .unwrap()
            .contains(&Value::from("write_note")),
        "{out:#}"
    );
    let who: Value = serde_json::from_str(str_of(&steps[1], "text")).unwrap();
    assert_eq!(who["client_id"], client_id, "{who}");
    assert_eq!(who["method"], "jwt", "{who}");
    assert_eq!(steps[2]["text"], "bound", "{out:#}");
}

/// The client's exchanges of `kind`, without step markers and probes.
fn of_kind<'a>(out: &'a Value, kind: &str) -> Vec<&'a Value> {
    clients::exchanges(out)
        .into_iter()
        .filter(|e| e["kind"] == kind && e.get("probe").is_none())
        .collect()
}

/// The challenges of a probe's answer, which must be `401`.
fn refused_probe<'a>(out: &'a Value, probe: &str) -> Vec<&'a str> {
    let answer = &out["probes"][probe];
    assert_eq!(answer["status"], 401, "probe {probe}: {out:#}");
    answer["www_authenticate"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect()
}

async fn dpop_client(server: &McpServer, probes: &[&str]) -> Value {
    let mut args = vec![
        "--url",
        &server.url,
        "--mode",
        "dpop",
        "--client-id",
        oidc::DPOP_CLIENT_ID,
        "--client-secret",
        oidc::DPOP_CLIENT_SECRET,
        "--scope",
        SCOPE,
        "--steps",
        STEPS,
    ];
    for probe in probes {
        args.extend(["--probe", probe]);
    }
    clients::run_bound(&args).await
}

/// The token the client got is a DPoP-bound JWT for `server`, bound to the client's key.
fn assert_dpop_bound(out: &Value, server: &McpServer) {
    let token = &out["token"];
    assert_eq!(token["token_type"], "DPoP", "{out:#}");
    let jkt = str_of(&out["key"], "jkt");
    assert_eq!(token["claims"]["cnf"]["jkt"], jkt, "{out:#}");
    assert_eq!(token["claims"]["aud"], server.url.as_str(), "{out:#}");
    let requests = of_kind(out, "token");
    assert!(requests.iter().all(|e| e["dpop"] == true), "{out:#}");
    assert_eq!(requests.last().unwrap()["status"], 200, "{out:#}");
    // Every MCP request with the token was `Authorization: DPoP` with a proof.
    let with_token: Vec<_> = of_kind(out, "mcp")
        .into_iter()
        .filter(|e| e.get("auth_scheme").is_some())
        .collect();
    assert!(with_token.len() >= 5, "{out:#}");
    assert!(
        with_token
            .iter()
            .all(|e| e["auth_scheme"] == "DPoP" && e["dpop"] == true),
        "{out:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dpop_client_gets_a_bound_token_from_oidc_provider_and_calls_tools() {
    bounded(async {
        let auth = AuthServer::start_opts(StartOptions {
            dpop: true,
            ..StartOptions::default()
        })
        .await;
        // DPoP is `allowed` by default in JWT mode: no MCP_AUTH_DPOP here.
        let server = serve(&auth, &[], None).await;
        let out = dpop_client(&server, &["downgrade", "replay"]).await;
        assert_tools_called(&out, oidc::DPOP_CLIENT_ID);
        assert_dpop_bound(&out, &server);

        // Discovery: the first request had no token; its 401 offered Bearer, then DPoP.
        let first = of_kind(&out, "mcp")[0];
        assert_eq!(first["status"], 401, "{out:#}");
        let challenge = str_of(first, "www_authenticate");
        let (bearer, dpop) = challenge
            .split_once(", DPoP ")
            .unwrap_or_else(|| panic!("no DPoP challenge after the Bearer one: {challenge}"));
        assert!(bearer.starts_with("Bearer "), "{challenge}");
        assert!(
            dpop.contains("algs=\"") && dpop.contains("ES256"),
            "{challenge}"
        );
        let prm = &out["prm"];
        assert!(
            prm["dpop_signing_alg_values_supported"]
                .as_array()
                .unwrap()
                .contains(&Value::from("ES256")),
            "{prm}"
        );
        // `allowed`: not required (absent means false, RFC 9728 §2).
        assert_ne!(prm["dpop_bound_access_tokens_required"], true, "{prm}");
        assert_eq!(out["as_metadata"]["issuer"], auth.issuer.as_str());

        // RFC 9449 §7.2: the bound token as a bearer token is refused.
        let downgrade = refused_probe(&out, "downgrade");
        assert!(
            downgrade[0].starts_with("Bearer ") && downgrade[0].contains("error=\"invalid_token\""),
            "{downgrade:?}"
        );
        // A proof is accepted once.
        let replay = refused_probe(&out, "replay");
        let dpop = replay
            .iter()
            .find(|c| c.starts_with("DPoP "))
            .unwrap_or_else(|| panic!("no DPoP challenge: {replay:?}"));
        assert!(dpop.contains("error=\"invalid_dpop_proof\""), "{replay:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_nonces_at_both_servers_and_dpop_required_the_client_still_calls_tools() {
    bounded(async {
        let auth = AuthServer::start_opts(StartOptions {
            dpop: true,
            dpop_nonce: true,
            ..StartOptions::default()
        })
        .await;
        let key = hex(&rand::random::<[u8; 32]>());
        let server = serve(
            &auth,
            &[
                ("MCP_AUTH_DPOP", "required"),
                ("MCP_AUTH_DPOP_NONCE_KEY", &key),
            ],
            None,
        )
        .await;
        let out = dpop_client(&server, &["downgrade", "replay"]).await;
        assert_tools_called(&out, oidc::DPOP_CLIENT_ID);
        assert_dpop_bound(&out, &server);
        assert_eq!(out["prm"]["dpop_bound_access_tokens_required"], true);

        // `required`: only the DPoP scheme is offered.
        let first = of_kind(&out, "mcp")[0];
        assert!(
            str_of(first, "www_authenticate").starts_with("DPoP "),
            "{first}"
        );
        // The authorization server asked for a nonce (400 use_dpop_nonce), then issued.
        let tokens = of_kind(&out, "token");
        assert_eq!(tokens.len(), 2, "{out:#}");
        assert_eq!(tokens[0]["status"], 400, "{out:#}");
        assert_eq!(tokens[0]["error"], "use_dpop_nonce", "{out:#}");
        assert_eq!(tokens[1]["nonce"], true, "{out:#}");
        // So did the MCP server: the first proof without its nonce got 401 use_dpop_nonce with
        // a fresh one, and the proof that carried it was accepted.
        let mcp = of_kind(&out, "mcp");
        let asked = mcp
            .iter()
            .position(|e| e["auth_scheme"] == "DPoP")
            .unwrap_or_else(|| panic!("no DPoP request: {out:#}"));
        assert_eq!(mcp[asked]["status"], 401, "{out:#}");
        assert_eq!(mcp[asked]["nonce"], false, "{out:#}");
        assert_eq!(mcp[asked]["dpop_nonce_received"], true, "{out:#}");
        let challenge = str_of(mcp[asked], "www_authenticate");
        assert!(
            challenge.contains("error=\"use_dpop_nonce\""),
            "{challenge}"
        );
        assert_eq!(mcp[asked + 1]["nonce"], true, "{out:#}");
        assert!(
            mcp[asked + 1]["status"].as_u64().is_some_and(|s| s < 300),
            "{out:#}"
        );
        // Every later request carried a nonce.
        assert!(
            mcp[asked + 1..].iter().all(|e| e["nonce"] == true),
            "{out:#}"
        );

        let downgrade = refused_probe(&out, "downgrade");
        assert!(
            downgrade.iter().all(|c| c.starts_with("DPoP ")),
            "Bearer is not offered in required mode: {downgrade:?}"
        );
        let replay = refused_probe(&out, "replay");
        assert!(
            replay[0].contains("error=\"invalid_dpop_proof\""),
            "{replay:?}"
        );
    })
    .await;
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `der` as a PEM `CERTIFICATE` block.
fn pem_of(der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        lines.join("\n")
    )
}

/// Writes `contents` to a fresh file of the target's test directory.
fn write_temp(name: &str, contents: &str) -> PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "interop-dpop-{}-{}",
        std::process::id(),
        URL_SAFE_NO_PAD.encode(rand::random::<[u8; 6]>())
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mutual_tls_client_gets_a_certificate_bound_token_and_calls_tools_over_mutual_tls() {
    bounded(async {
        mcp_server_auth::jwt::install_crypto_provider().unwrap();
        let ca = mtls_example::Ca::new("interop CA");
        let as_leaf = ca.issue("authorization server", &["127.0.0.1"]);
        let rs_leaf = ca.issue("mcp server", &["127.0.0.1"]);
        let alice = ca.issue("alice", &["alice.example"]);
        // Each PEM file holds a certificate then its key: both readers skip the other block.
        let as_pem = write_temp("as.pem", &as_leaf.pem);
        let alice_pem = write_temp("alice.pem", &alice.pem);
        let ca_pem = write_temp("ca.pem", &pem_of(ca.cert.as_ref()));

        let auth = AuthServer::start_opts(StartOptions {
            mtls: Some((as_pem.clone(), as_pem)),
            ..StartOptions::default()
        })
        .await;
        let mtls_token_endpoint = auth.mtls_token_endpoint.clone().unwrap();
        let tls = mtls_example::server_config(
            vec![rs_leaf.cert],
            rs_leaf.key.into(),
            vec![ca.cert.clone()],
        )
        .unwrap();
        let server = serve(&auth, &[], Some(tls)).await;
        let (alice_pem, ca_pem) = (alice_pem.to_str().unwrap(), ca_pem.to_str().unwrap());
        let out = clients::run_bound(&[
            "--url",
            &server.url,
            "--mode",
            "mtls",
            "--client-id",
            oidc::MTLS_CLIENT_ID,
            "--client-secret",
            oidc::MTLS_CLIENT_SECRET,
            "--scope",
            SCOPE,
            "--cert",
            alice_pem,
            "--key",
            alice_pem,
            "--ca",
            ca_pem,
            "--steps",
            STEPS,
            "--probe",
            "no_certificate",
        ])
        .await;
        assert_tools_called(&out, oidc::MTLS_CLIENT_ID);

        // RFC 8705 §3.1: `cnf.x5t#S256` is the SHA-256 of the certificate's DER, computed here.
        let x5t = URL_SAFE_NO_PAD.encode(oidc::sha256(alice.cert.as_ref()));
        assert_eq!(out["key"]["x5t#S256"], x5t.as_str(), "{out:#}");
        let token = &out["token"];
        assert_eq!(token["token_type"], "Bearer", "{out:#}");
        assert_eq!(token["claims"]["cnf"]["x5t#S256"], x5t.as_str(), "{out:#}");
        assert_eq!(token["claims"]["aud"], server.url.as_str(), "{out:#}");
        // Discovered: the metadata says bound tokens work here, and where the AS does mTLS.
        assert_eq!(
            out["prm"]["tls_client_certificate_bound_access_tokens"],
            true
        );
        let tokens = of_kind(&out, "token");
        assert_eq!(tokens.len(), 1, "{out:#}");
        assert_eq!(tokens[0]["url"], mtls_token_endpoint.as_str(), "{out:#}");
        assert_eq!(tokens[0]["status"], 200, "{out:#}");

        // Without the certificate, the same request with the same token is refused.
        let refused = refused_probe(&out, "no_certificate");
        assert!(
            refused[0].starts_with("Bearer ") && refused[0].contains("error=\"invalid_token\""),
            "{refused:?}"
        );
    })
    .await;
}
