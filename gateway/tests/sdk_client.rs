//! The official TypeScript SDK client (`tests/interop/clients/gateway.mjs`, from the interop
//! clients' committed lock file) through `mcp-auth-gateway wrap` around the npm
//! `@modelcontextprotocol/server-everything` (from `tests/servers/package-lock.json`), with a
//! static bearer token: everything a bridge must carry, both ways.

mod common;

use std::process::Stdio;

use common::*;
use serde_json::Value;

/// Runs `node gateway.mjs --url URL --token TOKEN` (at most [`WAIT`] × 2) and returns its line.
async fn run_ts_client(url: &str, token: &str) -> Value {
    tokio::task::spawn_blocking(ensure_clients).await.unwrap();
    let child = tokio::process::Command::new("node")
        .args(["gateway.mjs", "--url", url, "--token", token])
        .current_dir(clients_dir())
        .env("NO_PROXY", "*")
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node is needed for the SDK client tests");
    let out = tokio::time::timeout(WAIT * 2, child.wait_with_output())
        .await
        .expect("the TypeScript client took too long")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|_| {
        panic!(
            "the client printed no JSON line ({}):\n{stdout}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[tokio::test]
async fn the_typescript_sdk_uses_server_everything_through_the_gateway_both_ways() {
    let command = everything();
    let gw = Gateway::start(&[("MCP_AUTH_BEARER_TOKEN", ALICE)], &[], &command).await;
    let out = run_ts_client(&gw.url, ALICE).await;
    let log = || gw.stderr();
    assert_eq!(out["connect"]["ok"], true, "{out}\n{}", log());
    assert_eq!(out["errors"], serde_json::json!({}), "{out}\n{}", log());
    // Tools, a tool call, a resource, a prompt.
    let tools: Vec<&str> = out["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    for tool in [
        "echo",
        "trigger-long-running-operation",
        "trigger-sampling-request",
    ] {
        assert!(tools.contains(&tool), "{tool} missing from {tools:?}");
    }
    assert_eq!(out["echo"], "Echo: through the gateway");
    assert!(
        out["resource"]["text"]
            .as_str()
            .is_some_and(|t| !t.is_empty()),
        "{out}"
    );
    assert!(
        out["prompt"].as_str().is_some_and(|t| !t.is_empty()),
        "{out}"
    );
    // Progress notifications reach the call's progress callback, in order.
    assert_eq!(out["progress"], serde_json::json!([1, 2, 3]), "{out}");
    assert!(out["long"].as_str().unwrap().contains("completed"), "{out}");
    // The server's own requests reach the client, and its answers get back to the server.
    let requests = out["server_requests"].as_array().unwrap();
    assert!(requests.contains(&"sampling/createMessage".into()), "{out}");
    assert!(requests.contains(&"elicitation/create".into()), "{out}");
    assert!(requests.contains(&"roots/list".into()), "{out}");
    assert!(
        out["sampling"]
            .as_str()
            .unwrap()
            .contains("sampled through the gateway"),
        "{out}"
    );
    assert!(
        out["elicitation"]
            .as_str()
            .unwrap()
            .contains("Gateway Tester"),
        "{out}"
    );
    // The client ended its session (DELETE): the child is gone.
    for _ in 0..100 {
        if children_of(gw.pid).is_empty() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!(
        "the session's child outlived its DELETE: {:?}",
        children_of(gw.pid)
    );
}
