//! The official SDK clients through `mcp-auth-gateway wrap` around the npm
//! `@modelcontextprotocol/server-everything` (from `tests/servers/package-lock.json`), with a
//! static bearer token: the TypeScript SDK (`tests/interop/clients/gateway.mjs`) for
//! everything a bridge must carry both ways, and the Python SDK (`client.py`, the library's
//! interop client, unchanged) for the basics. Both come from the interop clients' committed
//! lock files. The TypeScript SDK also drives a Python SDK stdio server
//! (`tests/servers/stdio_server.py`, run with the interop clients' virtual environment), so
//! that `wrap` is shown in front of both official server SDKs. The Python SDK's `Client` also
//! answers a sampling request over MCP 2026-07-28 (`tests/clients/sampling_2026.py`): the
//! gateway turns it into `input_required` and the SDK's callback answers it on a retry.

mod common;

use common::*;
use serde_json::Value;

/// Runs `node gateway.mjs --url URL --token TOKEN` and returns its line.
async fn run_ts_client(url: &str, token: &str) -> Value {
    run_node_client(&["gateway.mjs", "--url", url, "--token", token]).await
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
    // The child's stderr is in the gateway's log, prefixed with its session; the token is not.
    let log = log();
    assert!(
        log.contains("[session 1] Starting default (STDIO) server"),
        "{log}"
    );
    assert!(!log.contains(ALICE) && !gw.stdout().contains(ALICE));
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

/// The command of the Python SDK stdio server, in the interop clients' virtual environment.
fn python_stdio_server() -> Vec<String> {
    ensure_python_client();
    vec![
        venv_python().display().to_string(),
        servers_dir().join("stdio_server.py").display().to_string(),
    ]
}

#[tokio::test]
async fn the_typescript_sdk_uses_a_python_sdk_stdio_server_through_the_gateway_both_ways() {
    let command = tokio::task::spawn_blocking(python_stdio_server)
        .await
        .unwrap();
    let gw = Gateway::start(&[("MCP_AUTH_BEARER_TOKEN", ALICE)], &[], &command).await;
    let out = run_ts_client(&gw.url, ALICE).await;
    let log = || gw.stderr();
    assert_eq!(out["connect"]["ok"], true, "{out}\n{}", log());
    assert_eq!(out["errors"], serde_json::json!({}), "{out}\n{}", log());
    // tools/call, resources/read and prompts/get, answered by the Python SDK.
    assert_eq!(out["echo"], "Echo: through the gateway", "{out}");
    assert_eq!(
        out["resource"],
        serde_json::json!({
            "uri": "test://python/greeting",
            "text": "Hello from the Python SDK over stdio",
            "count": 1
        }),
        "{out}"
    );
    assert_eq!(
        out["prompt"], "This is a simple prompt from the Python SDK.",
        "{out}"
    );
    // Progress notifications, in order, then the answer.
    assert_eq!(out["progress"], serde_json::json!([1, 2, 3]), "{out}");
    assert!(out["long"].as_str().unwrap().contains("completed"), "{out}");
    // The server's requests (roots, sampling, elicitation) reach the client and come back.
    let requests = out["server_requests"].as_array().unwrap();
    for method in ["roots/list", "sampling/createMessage", "elicitation/create"] {
        assert!(requests.contains(&method.into()), "{method}: {out}");
    }
    assert_eq!(
        out["sampling"], "LLM sampling result: sampled through the gateway (roots: test root)",
        "{out}"
    );
    assert_eq!(
        out["elicitation"], "Elicitation accepted: name=Gateway Tester",
        "{out}"
    );
    // The child's stderr is in the gateway's log, prefixed with its session.
    let log = log();
    assert!(
        log.contains("[session 1] Starting the Python SDK stdio server"),
        "{log}"
    );
    assert!(!log.contains(ALICE) && !gw.stdout().contains(ALICE));
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

#[tokio::test]
async fn the_python_sdk_speaks_2026_07_28_without_a_session_and_calls_tools_through_the_gateway() {
    let command = everything();
    let gw = Gateway::start(&[("MCP_AUTH_BEARER_TOKEN", ALICE)], &[], &command).await;
    let header = format!("Authorization: Bearer {ALICE}");
    let steps = r#"[{"call":"tools/list"},{"call":"echo","args":{"message":"from python"}}]"#;
    let args = [
        "client.py",
        "--url",
        &gw.url,
        "--flow",
        "static",
        "--header",
        &header,
        "--steps",
        steps,
    ];
    let out = run_python_client(&clients_dir(), &args, &[]).await;
    assert_eq!(out["connect"]["ok"], true, "{out}\n{}", gw.stderr());
    let steps = out["steps"].as_array().unwrap();
    assert_eq!(steps[0]["ok"], true, "{out}");
    assert!(
        steps[0]["tools"]
            .as_array()
            .unwrap()
            .contains(&"echo".into()),
        "{out}"
    );
    assert_eq!(steps[1]["ok"], true, "{out}");
    assert_eq!(steps[1]["text"], "Echo: from python", "{out}");
    // This SDK speaks MCP 2026-07-28 first, and so does the gateway: `server/discover`, then
    // every request on its own, never an `initialize` or a session.
    let rpcs: Vec<(&str, u64)> = out["http"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| Some((e["rpc"].as_str()?, e["status"].as_u64()?)))
        .collect();
    assert_eq!(
        rpcs,
        [
            ("server/discover", 200),
            ("tools/list", 200),
            ("tools/call", 200)
        ],
        "{out}"
    );
}

#[tokio::test]
async fn the_python_sdk_answers_a_sampling_request_over_2026_07_28_with_its_callback() {
    let command = everything();
    let gw = Gateway::start(&[("MCP_AUTH_BEARER_TOKEN", ALICE)], &[], &command).await;
    let args = ["sampling_2026.py", "--url", &gw.url];
    let env = [("GATEWAY_TEST_TOKEN", ALICE)];
    let out = run_python_client(&gateway_clients_dir(), &args, &env).await;
    assert!(out.get("error").is_none(), "{out}\n{}", gw.stderr());
    assert_eq!(out["version"], "2026-07-28", "{out}");
    // The SDK's own callback answered the child's request, and the tool saw its answer.
    assert_eq!(out["sampled"].as_array().unwrap().len(), 1, "{out}");
    assert!(
        out["sampled"][0].as_str().unwrap().contains("from python"),
        "{out}"
    );
    assert!(
        out["text"]
            .as_str()
            .unwrap()
            .contains("sampled by the Python SDK over MRTR"),
        "{out}"
    );
    // Through multi round-trip requests: the call, then its retry with the requestState.
    let calls: Vec<&Value> = out["posts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p[0] == "tools/call")
        .collect();
    assert_eq!(
        calls,
        [
            &serde_json::json!(["tools/call", false]),
            &serde_json::json!(["tools/call", true])
        ],
        "{out}"
    );
}
