//! `mcp-auth-gateway wrap` as a client sees it: the real binary on 127.0.0.1, real stdio
//! servers (server-everything from its committed lock file, and `tests/servers/stub.mjs`),
//! raw HTTP. Every wait is bounded (`common::WAIT`).

mod common;

use common::*;
use serde_json::{Value, json};

#[tokio::test]
async fn a_request_without_a_token_gets_401_with_the_exact_challenge() {
    let tokens = two_tokens();
    let gw = Gateway::start(&[("MCP_AUTH_BEARER_TOKENS", &tokens)], &[], &stub(&[])).await;
    let res = http_client()
        .post(&gw.url)
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let challenges: Vec<&str> = res
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(challenges, [r#"Bearer realm="mcp""#]);
    // A wrong token: 401 too, and no child was started for either.
    let res = gw
        .client("d3JvbmctdG9rZW4tZm9yLWdhdGV3YXktdGVzdHM")
        .post(
            None,
            &json!({
                "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}
            }),
        )
        .await;
    assert_eq!(res.status(), 401);
    assert!(children_of(gw.pid).is_empty());
}

#[tokio::test]
async fn a_session_id_used_by_another_principal_gets_404_and_the_session_lives_on() {
    let tokens = two_tokens();
    let gw = Gateway::start(&[("MCP_AUTH_BEARER_TOKENS", &tokens)], &[], &stub(&[])).await;
    let (alice, bob) = (gw.client(ALICE), gw.client(BOB));
    let session = alice.initialize().await;
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    let res = bob.post(Some(&session), &list).await;
    assert_eq!(res.status(), 404);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32600);
    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let res = bob
            .http
            .request(method.clone(), &gw.url)
            .bearer_auth(BOB)
            .header("accept", "text/event-stream")
            .header("mcp-session-id", &session)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "{method}");
    }
    // Alice's session is untouched.
    let answer = answer_of(alice.post(Some(&session), &list).await).await;
    assert_eq!(answer["result"]["tools"][0]["name"], "env");
}

#[tokio::test]
async fn the_child_environment_holds_no_auth_variable() {
    let tokens = two_tokens();
    let env = [
        ("MCP_AUTH_BEARER_TOKENS", tokens.as_str()),
        ("FLY_MCP_USER", "fly-user"),
        ("FLY_MCP_PASSWORD", "fly-password-not-for-the-child"),
        ("MCP_AUTH_REALM", "gateway-test"),
        ("GATEWAY_TEST_MARKER", "passed-through"),
    ];
    let gw = Gateway::start(&env, &[], &stub(&[])).await;
    let alice = gw.client(ALICE);
    let session = alice.initialize().await;
    let text = tool_text(&alice.call(&session, 1, "env", json!({})).await);
    let child_env: serde_json::Map<String, Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(child_env["GATEWAY_TEST_MARKER"], "passed-through");
    let leaked: Vec<&String> = child_env
        .keys()
        .filter(|k| k.starts_with("MCP_AUTH_") || k.starts_with("FLY_MCP_"))
        .collect();
    assert!(leaked.is_empty(), "the child sees {leaked:?}");
    for secret in [ALICE, BOB, "fly-password-not-for-the-child"] {
        assert!(!text.contains(secret));
    }
}

#[tokio::test]
async fn killing_the_child_mid_call_fails_the_call_at_once_and_a_new_session_works() {
    let gw = Gateway::start(&[("MCP_AUTH_BEARER_TOKEN", ALICE)], &[], &everything()).await;
    let alice = gw.client(ALICE);
    let session = alice.initialize().await;
    let children = children_of(gw.pid);
    assert_eq!(children.len(), 1, "{children:?}");
    // A call that would take 60 s; the child is killed once it is under way.
    let long = json!({
        "jsonrpc": "2.0", "id": "long", "method": "tools/call",
        "params": {"name": "trigger-long-running-operation",
                   "arguments": {"duration": 60, "steps": 60}}
    });
    let call = alice.post(Some(&session), &long);
    let kill = async {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        signal(children[0], rustix::process::Signal::KILL);
    };
    let (res, ()) = tokio::join!(call, kill);
    let answer = answer_of(res).await;
    assert_eq!(answer["id"], "long");
    assert_eq!(answer["error"]["code"], -32603, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("exited") && message.contains("initialize"),
        "{message}"
    );
    // The session is over; a new one gets a new child.
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    assert_eq!(alice.post(Some(&session), &list).await.status(), 404);
    let again = alice.initialize().await;
    let echo = alice
        .call(&again, 3, "echo", json!({"message": "still here"}))
        .await;
    assert_eq!(tool_text(&echo), "Echo: still here");
}

#[tokio::test]
async fn sigterm_ends_the_gateway_and_every_process_it_started() {
    // A stubborn server ignores SIGTERM and has a grandchild in its process group.
    let command = stub(&["--stubborn"]);
    let mut gw = Gateway::start(
        &[("MCP_AUTH_BEARER_TOKEN", ALICE)],
        &["--kill-grace", "1s"],
        &command,
    )
    .await;
    let alice = gw.client(ALICE);
    let mut pids = Vec::new();
    for id in 0..2 {
        let session = alice.initialize().await;
        let text = tool_text(&alice.call(&session, id, "pids", json!({})).await);
        let p: Value = serde_json::from_str(&text).unwrap();
        pids.push(p["pid"].as_u64().unwrap() as u32);
        pids.push(p["grandchild"].as_u64().unwrap() as u32);
    }
    assert!(pids.iter().all(|p| alive(*p)), "{pids:?}");
    // An open GET stream must not keep the gateway from exiting.
    let session = alice.initialize().await;
    let stream = alice
        .http
        .get(&gw.url)
        .bearer_auth(ALICE)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    gw.sigterm();
    let status = gw.wait().await;
    assert!(status.success(), "{status}; log:\n{}", gw.stderr());
    // The stream ended with the gateway (its body completes rather than hanging).
    let _ = stream.text().await;
    for pid in pids {
        assert!(gone(pid).await, "process {pid} outlived the gateway");
    }
}

#[tokio::test]
async fn max_children_is_a_503_with_a_json_rpc_error_until_a_session_ends() {
    let gw = Gateway::start(
        &[("MCP_AUTH_BEARER_TOKEN", ALICE)],
        &["--max-children", "1"],
        &stub(&[]),
    )
    .await;
    let alice = gw.client(ALICE);
    let first = alice.initialize().await;
    let init = json!({"jsonrpc": "2.0", "id": 9, "method": "initialize",
                      "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                                 "clientInfo": {"name": "t", "version": "0"}}});
    let res = alice.post(None, &init).await;
    assert_eq!(res.status(), 503);
    assert!(res.headers().contains_key("retry-after"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["id"], 9);
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("--max-children"), "{message}");
    // Ending the first session makes room.
    let res = alice
        .http
        .delete(&gw.url)
        .bearer_auth(ALICE)
        .header("mcp-session-id", &first)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(alice.post(None, &init).await.status(), 200);
}

#[tokio::test]
async fn requests_outside_a_session_and_2026_clients_get_precise_errors() {
    let gw = Gateway::start(&[("MCP_AUTH_BEARER_TOKEN", ALICE)], &[], &stub(&[])).await;
    let alice = gw.client(ALICE);
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
    let res = alice.post(None, &list).await;
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("initialize")
    );
    // A version the gateway does not speak: 400, with the versions to fall back to.
    let res = alice
        .http
        .post(&gw.url)
        .bearer_auth(ALICE)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2099-01-01")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "server/discover"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32022);
    assert_eq!(body["error"]["data"]["requested"], "2099-01-01");
    assert_eq!(body["error"]["data"]["supported"][0], "2026-07-28");
    assert_eq!(body["error"]["data"]["supported"][1], "2025-11-25");
    // GET and DELETE without a session: 405.
    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let res = alice
            .http
            .request(method, &gw.url)
            .bearer_auth(ALICE)
            .header("accept", "text/event-stream")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 405);
    }
    assert!(children_of(gw.pid).is_empty());
}

#[tokio::test]
async fn a_server_line_over_the_limit_ends_its_session_with_an_error_not_memory() {
    let gw = Gateway::start(
        &[("MCP_AUTH_BEARER_TOKEN", ALICE)],
        &["--max-message-bytes", "64KiB"],
        &stub(&[]),
    )
    .await;
    let alice = gw.client(ALICE);
    let session = alice.initialize().await;
    // Under the limit: fine.
    let small = alice
        .call(&session, 1, "big", json!({"bytes": 32 * 1024}))
        .await;
    assert_eq!(tool_text(&small).len(), 32 * 1024);
    // Over it: an error naming the option, and the session is over.
    let answer = alice
        .call(&session, 2, "big", json!({"bytes": 1024 * 1024}))
        .await;
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains("--max-message-bytes"), "{answer}");
    let list = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"});
    assert_eq!(alice.post(Some(&session), &list).await.status(), 404);
}

#[tokio::test]
async fn lines_that_are_not_json_rpc_are_skipped_and_the_session_goes_on() {
    let gw = Gateway::start(&[("MCP_AUTH_BEARER_TOKEN", ALICE)], &[], &stub(&[])).await;
    let alice = gw.client(ALICE);
    let session = alice.initialize().await;
    let answer = alice.call(&session, 1, "garbage", json!({})).await;
    assert_eq!(tool_text(&answer), "after garbage");
    let again = alice.call(&session, 2, "env", json!({})).await;
    assert_eq!(again["id"], 2);
}

#[tokio::test]
async fn an_idle_session_ends_with_its_child() {
    let gw = Gateway::start(
        &[("MCP_AUTH_BEARER_TOKEN", ALICE)],
        &["--idle-timeout", "1s"],
        &stub(&[]),
    )
    .await;
    let alice = gw.client(ALICE);
    let session = alice.initialize().await;
    let text = tool_text(&alice.call(&session, 1, "pids", json!({})).await);
    let pid = serde_json::from_str::<Value>(&text).unwrap()["pid"]
        .as_u64()
        .unwrap() as u32;
    assert!(gone(pid).await, "the idle session's child is still running");
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    assert_eq!(alice.post(Some(&session), &list).await.status(), 404);
}

#[tokio::test]
async fn without_credentials_only_a_loopback_address_serves_with_a_generated_token() {
    // Another address: refused at start, naming the variables.
    let out = gateway_command(&[], &["--listen", "0.0.0.0:0"], &stub(&[]))
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("MCP_AUTH_BEARER_TOKEN") && err.contains("FLY_MCP_BEARER_TOKEN"),
        "{err}"
    );
    // Loopback: a generated token, printed with a client configuration, that works.
    let gw = Gateway::start(&[], &[], &stub(&[])).await;
    let token = {
        let mut token = None;
        for _ in 0..100 {
            let out = gw.stdout();
            if let Some(line) = out
                .lines()
                .skip_while(|l| !l.starts_with("Generated"))
                .nth(1)
            {
                token = Some(line.trim().to_owned());
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        token.expect("no generated token printed")
    };
    assert!(gw.stdout().contains(&format!("Bearer {token}")));
    gw.client(&token).initialize().await;
}

#[tokio::test]
async fn per_tool_scopes_are_checked_on_the_json_rpc_body_before_the_child_sees_it() {
    let tokens = two_tokens();
    let env = [
        ("MCP_AUTH_BEARER_TOKENS", tokens.as_str()),
        ("MCP_AUTH_BEARER_TOKEN_SCOPES", "alice=mcp:admin"),
        ("MCP_AUTH_TOOL_SCOPES", "env=mcp:admin"),
    ];
    let gw = Gateway::start(&env, &[], &stub(&[])).await;
    let (alice, bob) = (gw.client(ALICE), gw.client(BOB));
    let session = bob.initialize().await;
    let call_env = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                          "params": {"name": "env", "arguments": {}}});
    let res = bob.post(Some(&session), &call_env).await;
    assert_eq!(res.status(), 403);
    let challenge = res.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains(r#"error="insufficient_scope""#),
        "{challenge}"
    );
    assert!(challenge.contains(r#"scope="mcp:admin""#), "{challenge}");
    // Headers naming another tool than the body are refused (SEP-2243 header mismatch).
    let res = bob
        .http
        .post(&gw.url)
        .bearer_auth(BOB)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", &session)
        .header("mcp-method", "tools/call")
        .header("mcp-name", "pids")
        .json(&call_env)
        .send()
        .await
        .unwrap();
    assert!(
        matches!(res.status().as_u16(), 400 | 403),
        "{}",
        res.status()
    );
    // Tools without a policy stay open; the scope holder may call `env`.
    let pids = bob.call(&session, 2, "pids", json!({})).await;
    assert!(pids["result"].is_object(), "{pids}");
    let own = alice.initialize().await;
    assert!(alice.call(&own, 3, "env", json!({})).await["result"].is_object());
}

#[tokio::test]
async fn a_pretty_printed_request_reaches_the_child_as_one_line() {
    let gw = Gateway::start(&[("MCP_AUTH_BEARER_TOKEN", ALICE)], &[], &stub(&[])).await;
    let alice = gw.client(ALICE);
    let session = alice.initialize().await;
    // JSON allows newlines between tokens; the stdio transport does not allow them in a
    // message. A notification (passed through) and a request (rebuilt), both pretty-printed.
    let note =
        json!({"jsonrpc": "2.0", "method": "notifications/roots/list_changed", "params": {}});
    let pretty = serde_json::to_string_pretty(&note).unwrap();
    assert!(pretty.contains('\n'));
    let send = |body: String| {
        alice
            .http
            .post(&gw.url)
            .bearer_auth(ALICE)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .header("mcp-session-id", &session)
            .body(body)
            .send()
    };
    assert_eq!(send(pretty).await.unwrap().status(), 202);
    let call = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                      "params": {"name": "big", "arguments": {"bytes": 5}}});
    let res = send(serde_json::to_string_pretty(&call).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let answer = answer_of(res).await;
    assert_eq!(tool_text(&answer), "xxxxx", "{answer}");
}

#[tokio::test]
async fn a_2026_client_discovers_lists_and_calls_tools_without_a_session() {
    let gw = Gateway::start(&[("MCP_AUTH_BEARER_TOKEN", ALICE)], &[], &everything()).await;
    let res = post_2026(&gw, ALICE, request_2026(1, "server/discover", json!({}))).await;
    assert_eq!(res.status(), 200, "{}", gw.stderr());
    assert!(res.headers().get("mcp-session-id").is_none());
    let discovered = answer_of(res).await;
    assert_eq!(discovered["id"], 1, "{discovered}");
    assert_eq!(discovered["result"]["supportedVersions"][0], "2026-07-28");
    assert!(
        discovered["result"]["_meta"]["io.modelcontextprotocol/serverInfo"]["name"].is_string(),
        "{discovered}"
    );
    assert_eq!(discovered["result"]["resultType"], "complete");
    assert!(
        discovered["result"]["capabilities"]["tools"].is_object(),
        "{discovered}"
    );

    let res = post_2026(&gw, ALICE, request_2026(2, "tools/list", json!({}))).await;
    assert_eq!(res.status(), 200);
    let listed = answer_of(res).await;
    assert_eq!(listed["id"], 2, "{listed}");
    let tools = listed["result"]["tools"].as_array().unwrap();
    assert!(tools.iter().any(|t| t["name"] == "echo"), "{listed}");
    // The child answers in its 2025 shape; the client gets what 2026-07-28 requires.
    assert_eq!(listed["result"]["resultType"], "complete", "{listed}");
    assert_eq!(listed["result"]["ttlMs"], 0, "{listed}");
    assert_eq!(listed["result"]["cacheScope"], "private", "{listed}");

    let call = json!({"name": "echo", "arguments": {"message": "from 2026"}});
    let res = post_2026(&gw, ALICE, request_2026(3, "tools/call", call)).await;
    assert_eq!(res.status(), 200);
    let called = answer_of(res).await;
    assert_eq!(called["id"], 3, "{called}");
    assert_eq!(tool_text(&called), "Echo: from 2026");
    assert_eq!(called["result"]["resultType"], "complete", "{called}");
    assert!(called["result"].get("ttlMs").is_none(), "{called}");

    // Still no session to GET or DELETE.
    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let res = http_client()
            .request(method, &gw.url)
            .bearer_auth(ALICE)
            .header("accept", "text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 405);
    }
}

#[tokio::test]
async fn a_2026_client_never_shares_another_principals_child() {
    let tokens = two_tokens();
    // The default isolation is per session; sessionless requests get their principal's child.
    let gw = Gateway::start(&[("MCP_AUTH_BEARER_TOKENS", &tokens)], &[], &stub(&[])).await;
    let pid_of = async |token: &str, id: u64| {
        let call = json!({"name": "pids", "arguments": {}});
        let res = post_2026(&gw, token, request_2026(id, "tools/call", call)).await;
        assert_eq!(res.status(), 200, "{}", gw.stderr());
        let answer = answer_of(res).await;
        let pids: Value = serde_json::from_str(&tool_text(&answer)).unwrap();
        pids["pid"].as_u64().unwrap()
    };
    let alice = pid_of(ALICE, 1).await;
    let bob = pid_of(BOB, 1).await;
    assert_ne!(alice, bob);
    assert_eq!(pid_of(ALICE, 2).await, alice);
    assert_eq!(pid_of(BOB, 2).await, bob);
}

#[tokio::test]
async fn a_2026_request_whose_envelope_is_wrong_is_refused_before_the_child_sees_it() {
    let gw = Gateway::start(&[("MCP_AUTH_BEARER_TOKEN", ALICE)], &[], &stub(&[])).await;
    let refused = async |res: reqwest::Response| {
        let status = res.status().as_u16();
        let body: Value = res.json().await.unwrap();
        (
            status,
            body["error"]["code"].as_i64().unwrap(),
            body["id"].clone(),
        )
    };
    // No `_meta` envelope: invalid params.
    let bare = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}});
    let res = post_2026(&gw, ALICE, bare).await;
    assert_eq!(refused(res).await, (400, -32602, json!(1)));
    // `Mcp-Name` naming another tool than the body: HeaderMismatch.
    let call = request_2026(2, "tools/call", json!({"name": "counts", "arguments": {}}));
    let res = http_client()
        .post(&gw.url)
        .bearer_auth(ALICE)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "env")
        .json(&call)
        .send()
        .await
        .unwrap();
    assert_eq!(refused(res).await, (400, -32020, json!(2)));
    // A method the child does not know: its -32601, as 404.
    let res = post_2026(&gw, ALICE, request_2026(3, "nothing/here", json!({}))).await;
    assert_eq!(refused(res).await, (404, -32601, json!(3)));
    // The child saw one handshake and none of the refused requests.
    let res = post_2026(
        &gw,
        ALICE,
        request_2026(4, "tools/call", json!({"name": "counts", "arguments": {}})),
    )
    .await;
    let counts: Value = serde_json::from_str(&tool_text(&answer_of(res).await)).unwrap();
    assert_eq!(counts, json!({"initialize": 1, "initialized": 1}));
}

#[tokio::test]
async fn a_childs_sampling_request_for_a_2026_client_without_the_capability_is_refused_at_once() {
    // A client that did not declare `sampling` cannot be asked for it (MCP 2026-07-28,
    // "Multi Round-Trip Requests"): the gateway answers the child's `sampling/createMessage`
    // with an error, and the call ends instead of hanging.
    let gw = Gateway::start(&[("MCP_AUTH_BEARER_TOKEN", ALICE)], &[], &everything()).await;
    // The child is initialized with the first request's capabilities: with sampling, so that
    // server-everything offers the tool at all.
    let list = with_capabilities(1, "tools/list", json!({}), json!({"sampling": {}}));
    assert_eq!(post_2026(&gw, ALICE, list).await.status(), 200);
    let call = request_2026(
        1,
        "tools/call",
        json!({"name": "trigger-sampling-request", "arguments": {"prompt": "hi", "maxTokens": 5}}),
    );
    let res = tokio::time::timeout(WAIT, post_2026(&gw, ALICE, call))
        .await
        .expect("the call hung");
    assert_eq!(res.status(), 200, "{}", gw.stderr());
    let text = tokio::time::timeout(WAIT, res.text())
        .await
        .expect("the answer hung")
        .unwrap();
    // No request of the server's reached the client, and the answer is the call's, failed.
    assert!(!text.contains("sampling/createMessage"), "{text}");
    let answer: Value = serde_json::from_str(&text).unwrap_or_else(|_| {
        events(&text)
            .into_iter()
            .rfind(|e| e.get("id").is_some())
            .unwrap_or_else(|| panic!("no answer: {text}"))
    });
    assert_eq!(answer["id"], 1, "{answer}");
    let failed = answer.get("error").is_some() || answer["result"]["isError"] == true;
    assert!(failed, "{answer}");
    assert!(answer.to_string().contains("2026-07-28"), "{answer}");
}

#[tokio::test]
async fn a_client_that_keeps_failing_is_throttled_and_others_are_not() {
    let gw = Gateway::start(
        &[
            ("MCP_AUTH_BEARER_TOKEN", ALICE),
            ("MCP_AUTH_FAILURE_LIMIT", "2"),
        ],
        &[],
        &stub(&[]),
    )
    .await;
    let post = async |token: &str, from: &str| {
        let client = reqwest::Client::builder()
            .no_proxy()
            .local_address(from.parse::<std::net::IpAddr>().unwrap())
            .build()
            .unwrap();
        let res = client
            .post(&gw.url)
            .bearer_auth(token)
            .header("accept", "application/json, text/event-stream")
            .json(
                &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": {"name": "t", "version": "0"}}}),
            )
            .send()
            .await
            .unwrap();
        (
            res.status().as_u16(),
            res.headers().contains_key("retry-after"),
        )
    };
    let wrong = "not-the-token-0123456789";
    assert_eq!(post(wrong, "127.0.0.1").await, (401, false));
    assert_eq!(post(wrong, "127.0.0.1").await, (401, false));
    // Past the limit the credentials are not even checked: the right token is 429 too.
    assert_eq!(post(wrong, "127.0.0.1").await, (429, true));
    assert_eq!(post(ALICE, "127.0.0.1").await, (429, true));
    // Another address is counted apart.
    assert_eq!(post(ALICE, "127.0.0.2").await.0, 200, "{}", gw.stderr());
}
