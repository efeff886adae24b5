//! The gateway's audit trail and metrics: one JSON line per decision in `MCP_AUTH_AUDIT_LOG`
//! (reopened on `SIGHUP`), the library's counters at `/metrics` on `MCP_AUTH_METRICS_LISTEN`,
//! and neither in the gateway's own log.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};

/// A free loopback address.
fn free_addr() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// The JSON lines of `path`, once there are at least `n` (bounded polling).
async fn lines(path: &std::path::Path, n: usize) -> Vec<Value> {
    for _ in 0..100 {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        if lines.len() >= n {
            return lines;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("fewer than {n} lines in {}", path.display());
}

#[tokio::test]
async fn decisions_go_to_the_audit_file_and_metrics_never_to_the_log() {
    let dir = std::env::temp_dir().join(format!("gateway-audit-{}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    let audit = dir.join("audit.jsonl");
    let metrics = free_addr().to_string();
    let gw = Gateway::start(
        &[
            ("MCP_AUTH_BEARER_TOKEN", ALICE),
            ("MCP_AUTH_AUDIT_LOG", audit.to_str().unwrap()),
            ("MCP_AUTH_METRICS_LISTEN", &metrics),
        ],
        &[],
        &stub(&[]),
    )
    .await;
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "t", "version": "0"}}});
    let send = async |token: &str| {
        http_client()
            .post(&gw.url)
            .bearer_auth(token)
            .header("accept", "application/json, text/event-stream")
            .header("x-request-id", "req-42")
            .json(&initialize)
            .send()
            .await
            .unwrap()
            .status()
    };
    let wrong = "d3JvbmctdG9rZW4tbm90LWNvbmZpZ3VyZWQtaGVyZQ";
    assert_eq!(send(ALICE).await, 200, "{}", gw.stderr());
    assert_eq!(send(wrong).await, 401);

    let events = lines(&audit, 2).await;
    let allowed = &events[0];
    assert_eq!(allowed["target"], "mcp_server_auth::audit", "{allowed}");
    assert_eq!(allowed["outcome"], "allowed", "{allowed}");
    assert_eq!(allowed["layer"], "auth");
    assert_eq!(allowed["subject"], "default");
    assert_eq!(allowed["peer"], "127.0.0.1");
    assert_eq!(allowed["request_id"], "req-42");
    let refused = &events[1];
    assert_eq!(refused["outcome"], "refused", "{refused}");
    assert_eq!(refused["status"], 401);
    assert_eq!(refused["reason"], "invalid_token");
    let text = std::fs::read_to_string(&audit).unwrap();
    assert!(!text.contains(ALICE) && !text.contains(wrong), "{text}");
    // The gateway's own log has no line per request.
    assert!(!gw.stderr().contains("\"outcome\""), "{}", gw.stderr());

    // Rotated away, then SIGHUP: the next decision goes to a new file at the same path.
    let rotated = dir.join("audit.jsonl.1");
    std::fs::rename(&audit, &rotated).unwrap();
    signal(gw.pid, rustix::process::Signal::HUP);
    let mut reopened = false;
    for _ in 0..100 {
        assert_eq!(send(wrong).await, 401);
        if audit.exists() {
            reopened = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(reopened, "no new audit file after SIGHUP: {}", gw.stderr());
    assert_eq!(lines(&audit, 1).await[0]["reason"], "invalid_token");

    let scrape = http_client()
        .get(format!("http://{metrics}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let allowed_line = scrape
        .lines()
        .find(|l| {
            l.starts_with("mcp_auth_decisions_total{")
                && l.contains("outcome=\"allowed\"")
                && l.contains("layer=\"auth\"")
        })
        .unwrap_or_else(|| panic!("{scrape}"));
    assert!(allowed_line.ends_with(" 1"), "{allowed_line}");
    assert!(scrape.contains("mcp_auth_verification_seconds"), "{scrape}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_wrong_metrics_address_stops_the_gateway_with_an_error_naming_it() {
    let env = [
        ("MCP_AUTH_BEARER_TOKEN", ALICE),
        ("MCP_AUTH_METRICS_LISTEN", "not-an-address"),
    ];
    let out = gateway_command(&env, &["--listen", "127.0.0.1:0"], &stub(&[])).output();
    let out = tokio::time::timeout(WAIT, out).await.unwrap().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("MCP_AUTH_METRICS_LISTEN"), "{stderr}");
}
