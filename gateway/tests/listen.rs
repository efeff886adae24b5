//! `subscriptions/listen` for MCP 2026-07-28 clients through `mcp-auth-gateway wrap`: the
//! child's list changes and resource updates on the listen request's own event stream (MCP
//! 2026-07-28, "Subscriptions"). The real binary on 127.0.0.1, `tests/servers/stub.mjs` and
//! server-everything, raw HTTP read frame by frame, and the Python SDK's own `listen`
//! (`tests/clients/listen_2026.py`); every wait is bounded (`common::WAIT`).

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};

const SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";
const TOOLS: &str = "notifications/tools/list_changed";
const PROMPTS: &str = "notifications/prompts/list_changed";
const UPDATED: &str = "notifications/resources/updated";

/// An open listen stream, read one event at a time.
struct Stream {
    res: reqwest::Response,
    buf: String,
}

impl Stream {
    /// `POST`s `subscriptions/listen` as request `id` with `filter`.
    async fn open(gw: &Gateway, token: &str, id: u64, filter: Value) -> Stream {
        let res = post_2026(gw, token, listen(id, filter)).await;
        assert_eq!(res.status(), 200, "{}", gw.stderr());
        let kind = res.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(kind.starts_with("text/event-stream"), "{kind}");
        Stream {
            res,
            buf: String::new(),
        }
    }

    /// The next event's JSON, `None` when the stream ended; at most [`WAIT`].
    async fn next(&mut self) -> Option<Value> {
        tokio::time::timeout(WAIT, self.read())
            .await
            .expect("no event on the listen stream in time")
    }

    async fn read(&mut self) -> Option<Value> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let event: String = self.buf.drain(..end + 2).collect();
                let data: Vec<&str> = event
                    .lines()
                    .filter_map(|l| l.strip_prefix("data: "))
                    .collect();
                if data.is_empty() {
                    continue; // a keep-alive comment
                }
                return Some(serde_json::from_str(&data.join("\n")).unwrap());
            }
            let chunk = self.res.chunk().await.ok()??;
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// The acknowledgement, which must come first and carry the subscription id: its filter.
    async fn acknowledged(&mut self, id: u64) -> Value {
        let ack = self
            .next()
            .await
            .expect("the stream ended before its acknowledgement");
        assert_eq!(
            ack["method"], "notifications/subscriptions/acknowledged",
            "{ack}"
        );
        assert_eq!(ack["params"]["_meta"][SUBSCRIPTION_ID], id, "{ack}");
        ack["params"]["notifications"].clone()
    }
}

fn listen(id: u64, filter: Value) -> Value {
    request_2026(id, "subscriptions/listen", json!({"notifications": filter}))
}

/// Has the stub's child send `notifications` ([{method, params}]).
async fn notify(gw: &Gateway, token: &str, notifications: Value) {
    let call = request_2026(
        90,
        "tools/call",
        json!({"name": "notify", "arguments": {"notifications": notifications}}),
    );
    let answer = answer_of(post_2026(gw, token, call).await).await;
    assert_eq!(tool_text(&answer), "notified", "{answer}");
}

/// What the stub's child was asked to subscribe to and unsubscribe from.
async fn subscribed(gw: &Gateway, token: &str) -> Value {
    let call = request_2026(
        91,
        "tools/call",
        json!({"name": "subscribed", "arguments": {}}),
    );
    let answer = answer_of(post_2026(gw, token, call).await).await;
    serde_json::from_str(&tool_text(&answer)).unwrap()
}

fn note(method: &str) -> Value {
    json!({"method": method})
}

fn updated(uri: &str) -> Value {
    json!({"method": UPDATED, "params": {"uri": uri}})
}

/// The method of an event, after checking that it carries subscription `id`.
fn method_of(event: &Value, id: u64) -> String {
    assert_eq!(event["params"]["_meta"][SUBSCRIPTION_ID], id, "{event}");
    event["method"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_listener_gets_the_acknowledgement_first_then_only_the_kinds_it_asked_for() {
    let gw = Gateway::start(&[("MCP_AUTH_BEARER_TOKEN", ALICE)], &[], &stub(&[])).await;
    let mut tools = Stream::open(&gw, ALICE, 1, json!({"toolsListChanged": true})).await;
    assert_eq!(
        tools.acknowledged(1).await,
        json!({"toolsListChanged": true})
    );
    let mut prompts = Stream::open(&gw, ALICE, 2, json!({"promptsListChanged": true})).await;
    assert_eq!(
        prompts.acknowledged(2).await,
        json!({"promptsListChanged": true})
    );
    let log = json!({"method": "notifications/message", "params": {"level": "info", "data": "x"}});
    notify(
        &gw,
        ALICE,
        json!([note(TOOLS), log, note(PROMPTS), note(TOOLS)]),
    )
    .await;
    // Neither the prompts change nor the log message comes between the two tools changes.
    let first = tools.next().await.unwrap();
    assert_eq!(method_of(&first, 1), TOOLS);
    let second = tools.next().await.unwrap();
    assert_eq!(method_of(&second, 1), TOOLS, "{second}");
    let only = prompts.next().await.unwrap();
    assert_eq!(method_of(&only, 2), PROMPTS, "{only}");
}

#[tokio::test]
async fn a_resource_update_for_a_subscribed_uri_reaches_its_listener_and_the_child_is_subscribed_once()
 {
    let gw = Gateway::start(
        &[("MCP_AUTH_BEARER_TOKEN", ALICE)],
        &[],
        &stub(&["--subscribe"]),
    )
    .await;
    let filter = json!({"resourceSubscriptions": ["test://a"]});
    let mut one = Stream::open(&gw, ALICE, 1, filter.clone()).await;
    assert_eq!(one.acknowledged(1).await, filter);
    let mut two = Stream::open(&gw, ALICE, 2, filter.clone()).await;
    assert_eq!(two.acknowledged(2).await, filter);
    assert_eq!(
        subscribed(&gw, ALICE).await,
        json!({"subscribe": ["test://a"], "unsubscribe": []})
    );
    notify(
        &gw,
        ALICE,
        json!([updated("test://b"), updated("test://a")]),
    )
    .await;
    for (stream, id) in [(&mut one, 1), (&mut two, 2)] {
        let event = stream.next().await.unwrap();
        assert_eq!(method_of(&event, id), UPDATED);
        assert_eq!(event["params"]["uri"], "test://a", "{event}");
    }
}

#[tokio::test]
async fn resource_updates_are_not_acknowledged_when_the_child_cannot_subscribe() {
    let gw = Gateway::start(&[("MCP_AUTH_BEARER_TOKEN", ALICE)], &[], &stub(&[])).await;
    let filter = json!({"toolsListChanged": true, "resourceSubscriptions": ["test://a"]});
    let mut stream = Stream::open(&gw, ALICE, 1, filter).await;
    assert_eq!(
        stream.acknowledged(1).await,
        json!({"toolsListChanged": true})
    );
    assert_eq!(
        subscribed(&gw, ALICE).await,
        json!({"subscribe": [], "unsubscribe": []})
    );
    notify(&gw, ALICE, json!([updated("test://a"), note(TOOLS)])).await;
    let event = stream.next().await.unwrap();
    assert_eq!(method_of(&event, 1), TOOLS, "{event}");
}

#[tokio::test]
async fn another_principals_listener_never_sees_this_principals_notifications() {
    let gw = Gateway::start(
        &[("MCP_AUTH_BEARER_TOKENS", &two_tokens())],
        &[],
        &stub(&[]),
    )
    .await;
    let everything = json!({"toolsListChanged": true, "promptsListChanged": true});
    let mut alice = Stream::open(&gw, ALICE, 1, everything.clone()).await;
    alice.acknowledged(1).await;
    let mut bob = Stream::open(&gw, BOB, 1, everything).await;
    bob.acknowledged(1).await;
    notify(&gw, ALICE, json!([note(TOOLS)])).await;
    notify(&gw, BOB, json!([note(PROMPTS)])).await;
    let event = alice.next().await.unwrap();
    assert_eq!(method_of(&event, 1), TOOLS);
    // Bob's first event is his own child's: Alice's change never reached him.
    let event = bob.next().await.unwrap();
    assert_eq!(method_of(&event, 1), PROMPTS, "{event}");
}

#[tokio::test]
async fn a_listener_that_disconnects_is_detached_and_its_resources_unsubscribed() {
    let gw = Gateway::start(
        &[("MCP_AUTH_BEARER_TOKEN", ALICE)],
        &[],
        &stub(&["--subscribe"]),
    )
    .await;
    let mut stream = Stream::open(
        &gw,
        ALICE,
        1,
        json!({"resourceSubscriptions": ["test://a"]}),
    )
    .await;
    stream.acknowledged(1).await;
    drop(stream);
    let mut last = Value::Null;
    for _ in 0..300 {
        last = subscribed(&gw, ALICE).await;
        if last["unsubscribe"] == json!(["test://a"]) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the child was never unsubscribed: {last}\n{}", gw.stderr());
}

#[tokio::test]
async fn a_principal_has_at_most_eight_listeners_and_one_that_leaves_frees_its_place() {
    let gw = Gateway::start(
        &[("MCP_AUTH_BEARER_TOKENS", &two_tokens())],
        &[],
        &stub(&[]),
    )
    .await;
    let mut open = Vec::new();
    for id in 1..=8 {
        let mut stream = Stream::open(&gw, ALICE, id, json!({"toolsListChanged": true})).await;
        stream.acknowledged(id).await;
        open.push(stream);
    }
    let res = post_2026(&gw, ALICE, listen(9, json!({"toolsListChanged": true}))).await;
    assert_eq!(res.status(), 429);
    let answer = answer_of(res).await;
    assert_eq!(answer["id"], 9, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("close one")
    );
    // Another principal is not counted against Alice.
    let mut bob = Stream::open(&gw, BOB, 1, json!({"toolsListChanged": true})).await;
    bob.acknowledged(1).await;
    drop(open.pop());
    for _ in 0..300 {
        let res = post_2026(&gw, ALICE, listen(10, json!({"toolsListChanged": true}))).await;
        if res.status() == 200 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the place of a listener that left was never freed");
}

#[tokio::test]
async fn a_listen_stream_ends_with_its_result_when_the_child_ends() {
    let gw = Gateway::start(&[("MCP_AUTH_BEARER_TOKEN", ALICE)], &[], &stub(&[])).await;
    let mut stream = Stream::open(&gw, ALICE, 7, json!({"toolsListChanged": true})).await;
    stream.acknowledged(7).await;
    let call = request_2026(2, "tools/call", json!({"name": "pids", "arguments": {}}));
    let pids: Value = serde_json::from_str(&tool_text(
        &answer_of(post_2026(&gw, ALICE, call).await).await,
    ))
    .unwrap();
    signal(
        pids["pid"].as_u64().unwrap() as u32,
        rustix::process::Signal::KILL,
    );
    let result = stream
        .next()
        .await
        .expect("the stream ended without its result");
    assert_eq!(result["id"], 7, "{result}");
    assert_eq!(result["result"]["_meta"][SUBSCRIPTION_ID], 7, "{result}");
    assert!(stream.next().await.is_none());
}

#[tokio::test]
async fn a_gateway_that_shuts_down_ends_its_listen_streams_with_their_result() {
    let mut gw = Gateway::start(&[("MCP_AUTH_BEARER_TOKEN", ALICE)], &[], &stub(&[])).await;
    let mut stream = Stream::open(&gw, ALICE, 8, json!({"toolsListChanged": true})).await;
    stream.acknowledged(8).await;
    gw.sigterm();
    let result = stream
        .next()
        .await
        .expect("the stream ended without its result");
    assert_eq!(result["result"]["_meta"][SUBSCRIPTION_ID], 8, "{result}");
    assert!(gw.wait().await.success());
}

#[tokio::test]
async fn a_listen_request_without_a_filter_is_refused() {
    let gw = Gateway::start(&[("MCP_AUTH_BEARER_TOKEN", ALICE)], &[], &stub(&[])).await;
    let body = request_2026(3, "subscriptions/listen", json!({}));
    let res = post_2026(&gw, ALICE, body).await;
    assert_eq!(res.status(), 400);
    let answer = answer_of(res).await;
    assert_eq!(answer["error"]["code"], -32602, "{answer}");
}

#[tokio::test]
async fn server_everythings_resource_updates_reach_a_2026_listener() {
    let gw = Gateway::start(&[("MCP_AUTH_BEARER_TOKEN", ALICE)], &[], &everything()).await;
    let uri = "demo://resource/static/document/architecture.md";
    let filter = json!({"resourceSubscriptions": [uri]});
    let mut stream = Stream::open(&gw, ALICE, 1, filter.clone()).await;
    assert_eq!(stream.acknowledged(1).await, filter);
    let call = request_2026(
        2,
        "tools/call",
        json!({"name": "toggle-subscriber-updates", "arguments": {}}),
    );
    let answer = answer_of(post_2026(&gw, ALICE, call).await).await;
    assert!(tool_text(&answer).contains("Started"), "{answer}");
    let event = stream.next().await.unwrap();
    assert_eq!(method_of(&event, 1), UPDATED);
    assert_eq!(event["params"]["uri"], uri, "{event}");
}

#[tokio::test]
async fn a_list_change_rides_no_exchange_of_a_2026_client() {
    let gw = Gateway::start(&[("MCP_AUTH_BEARER_TOKEN", ALICE)], &[], &stub(&[])).await;
    let log = json!({"method": "notifications/message", "params": {"level": "info", "data": "x"}});
    let call = request_2026(
        1,
        "tools/call",
        json!({"name": "notify", "arguments": {"notifications": [note(TOOLS), updated("test://a"), log]}}),
    );
    let text = post_2026(&gw, ALICE, call).await.text().await.unwrap();
    let methods: Vec<Value> = events(&text).iter().map(|e| e["method"].clone()).collect();
    // The log message is the call's; the list change and the update are for listeners only.
    assert_eq!(
        methods,
        [json!("notifications/message"), Value::Null],
        "{text}"
    );
}

#[tokio::test]
async fn the_python_sdk_listens_over_2026_07_28_and_gets_what_it_asked_for() {
    let gw = Gateway::start(
        &[("MCP_AUTH_BEARER_TOKEN", ALICE)],
        &[],
        &stub(&["--subscribe"]),
    )
    .await;
    let args = ["listen_2026.py", "--url", &gw.url];
    let env = [("GATEWAY_TEST_TOKEN", ALICE)];
    let out = run_python_client(&gateway_clients_dir(), &args, &env).await;
    assert!(out.get("error").is_none(), "{out}\n{}", gw.stderr());
    assert_eq!(out["version"], "2026-07-28", "{out}");
    assert_eq!(
        out["honored"],
        json!({"toolsListChanged": true, "resourceSubscriptions": ["test://a"]}),
        "{out}"
    );
    // The update of test://b, which it did not subscribe to, never came.
    assert_eq!(out["events"], json!(["tools", "updated test://a"]), "{out}");
}
