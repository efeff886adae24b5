//! `wrap --isolation principal` and `--isolation shared`: who shares a server process, one
//! handshake per process, answers and progress that never cross between clients, and the
//! shared process's restart. The real binary on 127.0.0.1 around `tests/servers/stub.mjs`;
//! every wait is bounded (`common::WAIT`).

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};

async fn pid_of(client: &Mcp, session: &str) -> u32 {
    let text = tool_text(&client.call(session, 90, "pids", json!({})).await);
    serde_json::from_str::<Value>(&text).unwrap()["pid"]
        .as_u64()
        .unwrap() as u32
}

fn init_body(id: u64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "initialize",
           "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                      "clientInfo": {"name": "t", "version": "0"}}})
}

#[tokio::test]
async fn a_principals_sessions_share_one_child_initialized_once_and_never_another_principals() {
    let tokens = two_tokens();
    let gw = Gateway::start(
        &[("MCP_AUTH_BEARER_TOKENS", &tokens)],
        &["--isolation", "principal", "--max-children", "1"],
        &stub(&[]),
    )
    .await;
    let (alice, bob) = (gw.client(ALICE), gw.client(BOB));
    let first = alice.initialize().await;
    let second = alice.initialize().await;
    assert_ne!(first, second);
    let pid = pid_of(&alice, &first).await;
    assert_eq!(pid_of(&alice, &second).await, pid);
    // The child saw one handshake: the second session was answered from the first.
    let counts = tool_text(&alice.call(&second, 2, "counts", json!({})).await);
    assert_eq!(
        serde_json::from_str::<Value>(&counts).unwrap(),
        json!({"initialize": 1, "initialized": 1})
    );
    // Bob needs a child of his own: over --max-children, refused rather than shared.
    let res = bob.post(None, &init_body(5)).await;
    assert_eq!(res.status(), 503);
    // Alice's sessions stay hers.
    let list = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"});
    assert_eq!(bob.post(Some(&first), &list).await.status(), 404);
    // Ending one session leaves the child to the other.
    let res = alice
        .http
        .delete(&gw.url)
        .bearer_auth(ALICE)
        .header("mcp-session-id", &first)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(pid_of(&alice, &second).await, pid);
    assert!(alive(pid));
}

#[tokio::test]
async fn a_principals_child_ends_after_the_idle_timeout_once_no_session_is_left() {
    let tokens = two_tokens();
    let gw = Gateway::start(
        &[("MCP_AUTH_BEARER_TOKENS", &tokens)],
        &["--isolation", "principal", "--idle-timeout", "1s"],
        &stub(&[]),
    )
    .await;
    let (alice, bob) = (gw.client(ALICE), gw.client(BOB));
    let a = alice.initialize().await;
    let b = bob.initialize().await;
    let (pa, pb) = (pid_of(&alice, &a).await, pid_of(&bob, &b).await);
    assert_ne!(pa, pb, "two principals share a process");
    let res = alice
        .http
        .delete(&gw.url)
        .bearer_auth(ALICE)
        .header("mcp-session-id", &a)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(gone(pa).await, "alice's child outlived her last session");
    assert!(gone(pb).await, "bob's idle session did not end his child");
}

#[tokio::test]
async fn two_clients_with_colliding_request_ids_and_progress_tokens_each_get_their_own() {
    let tokens = two_tokens();
    let gw = Gateway::start(
        &[("MCP_AUTH_BEARER_TOKENS", &tokens)],
        &["--isolation", "shared"],
        &stub(&[]),
    )
    .await;
    let (alice, bob) = (gw.client(ALICE), gw.client(BOB));
    let (sa, sb) = (alice.initialize().await, bob.initialize().await);
    assert_eq!(pid_of(&alice, &sa).await, pid_of(&bob, &sb).await);
    // Both in flight at once with id 1 and token "p": the stub answers only when both are.
    let gate = |text: &str| {
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
               "params": {"name": "gate", "arguments": {"text": text},
                          "_meta": {"progressToken": "p"}}})
    };
    let (ga, gb) = (gate("for alice"), gate("for bob"));
    let (ra, rb) = tokio::join!(alice.post(Some(&sa), &ga), bob.post(Some(&sb), &gb));
    for (res, who) in [(ra, "for alice"), (rb, "for bob")] {
        let text = res.text().await.unwrap();
        let events = events(&text);
        let progress: Vec<&Value> = events
            .iter()
            .filter(|e| e["method"] == "notifications/progress")
            .collect();
        assert_eq!(progress.len(), 1, "{text}");
        assert_eq!(progress[0]["params"]["progressToken"], "p", "{text}");
        assert_eq!(progress[0]["params"]["message"], who, "{text}");
        let answer = events.last().unwrap();
        assert_eq!(answer["id"], 1);
        assert_eq!(tool_text(answer), who, "{text}");
    }
}

#[tokio::test]
async fn the_shared_child_restarts_after_it_exits_and_in_flight_requests_fail_at_once() {
    let gw = Gateway::start(
        &[("MCP_AUTH_BEARER_TOKEN", ALICE)],
        &["--isolation", "shared"],
        &stub(&[]),
    )
    .await;
    let alice = gw.client(ALICE);
    let session = alice.initialize().await;
    let pid = pid_of(&alice, &session).await;
    let hang = json!({"jsonrpc": "2.0", "id": "h", "method": "tools/call",
                      "params": {"name": "hang", "arguments": {}}});
    let call = alice.post(Some(&session), &hang);
    let kill = async {
        // The call is in flight once the child has it; a `hang` never answers.
        tokio::time::sleep(Duration::from_millis(300)).await;
        signal(pid, rustix::process::Signal::KILL);
    };
    let (res, ()) = tokio::join!(call, kill);
    let answer = answer_of(res).await;
    assert_eq!(answer["id"], "h");
    assert_eq!(answer["error"]["code"], -32603, "{answer}");
    // The session is over (404); the gateway restarts the child on its own, with backoff.
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    assert_eq!(alice.post(Some(&session), &list).await.status(), 404);
    let mut restarted = None;
    for _ in 0..300 {
        let res = alice.post(None, &init_body(3)).await;
        if res.status() == 503 {
            assert!(res.headers().contains_key("retry-after"));
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        assert_eq!(res.status(), 200);
        restarted = Some(res.headers()["mcp-session-id"].to_str().unwrap().to_owned());
        break;
    }
    let again = restarted.expect("the shared child was not restarted");
    let new_pid = pid_of(&alice, &again).await;
    assert_ne!(new_pid, pid);
    // A fresh child: the handshake reached it (it was not answered from the dead one's).
    let counts = tool_text(&alice.call(&again, 4, "counts", json!({})).await);
    assert_eq!(
        serde_json::from_str::<Value>(&counts).unwrap()["initialize"],
        1
    );
}

#[tokio::test]
async fn a_cancellation_from_another_client_never_cancels_a_shared_childs_request() {
    let tokens = two_tokens();
    let gw = Gateway::start(
        &[("MCP_AUTH_BEARER_TOKENS", &tokens)],
        &["--isolation", "shared"],
        &stub(&[]),
    )
    .await;
    let (alice, bob) = (gw.client(ALICE), gw.client(BOB));
    let (sa, sb) = (alice.initialize().await, bob.initialize().await);
    let gate = |id: u64, text: &str| {
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
               "params": {"name": "gate", "arguments": {"text": text}}})
    };
    let bob_side = async {
        // Bob names Alice's request id in a cancellation, then opens the gate himself.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let cancel = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                            "params": {"requestId": 1, "reason": "not yours"}});
        assert_eq!(bob.post(Some(&sb), &cancel).await.status(), 202);
        answer_of(bob.post(Some(&sb), &gate(7, "for bob")).await).await
    };
    let first = gate(1, "for alice");
    let (ra, rb) = tokio::join!(alice.post(Some(&sa), &first), bob_side);
    let answer = answer_of(ra).await;
    assert_eq!(tool_text(&answer), "for alice", "{answer}");
    assert_eq!(tool_text(&rb), "for bob", "{rb}");
}
