//! The child's own requests (sampling, elicitation, roots) for MCP 2026-07-28 clients through
//! `mcp-auth-gateway wrap`: the call answers `input_required`, the client retries with its
//! answers and the `requestState` (MCP 2026-07-28, "Multi Round-Trip Requests"). The real
//! binary on 127.0.0.1, server-everything and `tests/servers/stub.mjs`, raw HTTP; every wait
//! is bounded (`common::WAIT`).

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};

/// The one key of an `input_required` answer and the request under it.
fn asked(answer: &Value) -> (String, Value) {
    assert_eq!(answer["result"]["resultType"], "input_required", "{answer}");
    let requests = answer["result"]["inputRequests"].as_object().unwrap();
    assert_eq!(requests.len(), 1, "{answer}");
    let (key, request) = requests.iter().next().unwrap();
    (key.clone(), request.clone())
}

fn state(answer: &Value) -> String {
    answer["result"]["requestState"]
        .as_str()
        .unwrap_or_else(|| panic!("no requestState in {answer}"))
        .to_owned()
}

/// `call` again as request `id`, with `responses` and `state`.
fn retry(call: &Value, id: u64, responses: Value, state: &str) -> Value {
    let mut again = call.clone();
    again["id"] = id.into();
    again["params"]["inputResponses"] = responses;
    again["params"]["requestState"] = state.into();
    again
}

/// The answer of a `POST`, with its status.
async fn answer(gw: &Gateway, token: &str, body: Value) -> (u16, Value) {
    let res = tokio::time::timeout(WAIT, post_2026(gw, token, body))
        .await
        .expect("the POST hung");
    let status = res.status().as_u16();
    (status, answer_of(res).await)
}

/// A `tools/call` of the stub's `ask`, sending the client `requests`.
fn ask(id: u64, requests: Value, log: bool, capabilities: Value) -> Value {
    let args = json!({"requests": requests, "log": log});
    with_capabilities(
        id,
        "tools/call",
        json!({"name": "ask", "arguments": args}),
        capabilities,
    )
}

fn sampling(text: &str) -> Value {
    json!({"role": "assistant", "content": {"type": "text", "text": text}, "model": "test-model"})
}

fn sampling_request() -> Value {
    json!({"method": "sampling/createMessage", "params": {"messages": [], "maxTokens": 5}})
}

#[tokio::test]
async fn a_2026_client_answers_the_childs_sampling_request_on_a_retry_and_gets_the_result() {
    let gw = Gateway::start(&[("MCP_AUTH_BEARER_TOKEN", ALICE)], &[], &everything()).await;
    let call = with_capabilities(
        1,
        "tools/call",
        json!({"name": "trigger-sampling-request", "arguments": {"prompt": "hi", "maxTokens": 5}}),
        json!({"sampling": {}}),
    );
    let (status, first) = answer(&gw, ALICE, call.clone()).await;
    assert_eq!(status, 200, "{first}\n{}", gw.stderr());
    assert_eq!(first["id"], 1, "{first}");
    let (key, request) = asked(&first);
    assert_eq!(request["method"], "sampling/createMessage", "{first}");
    assert!(
        request["params"]["messages"][0]["content"]["text"]
            .as_str()
            .unwrap()
            .contains("hi"),
        "{first}"
    );
    // The retry is a new request (its own id); the answer is the original call's.
    let responses = json!({ &key: sampling("sampled over MRTR") });
    let (status, done) = answer(&gw, ALICE, retry(&call, 2, responses, &state(&first))).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["id"], 2, "{done}");
    assert_eq!(done["result"]["resultType"], "complete", "{done}");
    assert!(tool_text(&done).contains("sampled over MRTR"), "{done}");
}

#[tokio::test]
async fn a_2026_client_answers_the_childs_elicitation_request_on_a_retry() {
    let gw = Gateway::start(&[("MCP_AUTH_BEARER_TOKEN", ALICE)], &[], &everything()).await;
    let call = with_capabilities(
        7,
        "tools/call",
        json!({"name": "trigger-elicitation-request", "arguments": {}}),
        json!({"elicitation": {"form": {}}}),
    );
    let (status, first) = answer(&gw, ALICE, call.clone()).await;
    assert_eq!(status, 200, "{first}\n{}", gw.stderr());
    let (key, request) = asked(&first);
    assert_eq!(request["method"], "elicitation/create", "{first}");
    assert!(request["params"]["requestedSchema"].is_object(), "{first}");
    let responses = json!({ &key: {"action": "accept", "content": {"name": "MRTR Tester"}} });
    let (status, done) = answer(&gw, ALICE, retry(&call, 8, responses, &state(&first))).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["id"], 8, "{done}");
    let texts: Vec<&str> = done["result"]["content"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["text"].as_str())
        .collect();
    assert!(
        texts.contains(&"User inputs:\n- Name: MRTR Tester"),
        "{done}"
    );
}

#[tokio::test]
async fn each_request_of_the_child_is_one_round_and_notifications_come_first() {
    let gw = Gateway::start(&[("MCP_AUTH_BEARER_TOKEN", ALICE)], &[], &stub(&[])).await;
    let roots = json!({"method": "roots/list", "params": {}});
    let capabilities = json!({"sampling": {}, "roots": {}});
    // With `log`, the child sends a log message before each request: the answer is an event
    // stream that ends with `input_required`.
    let call = ask(1, json!([sampling_request(), roots]), true, capabilities);
    let res = post_2026(&gw, ALICE, call.clone()).await;
    assert_eq!(res.status(), 200, "{}", gw.stderr());
    let kind = res.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(kind.starts_with("text/event-stream"), "{kind}");
    let text = tokio::time::timeout(WAIT, res.text())
        .await
        .unwrap()
        .unwrap();
    let events = events(&text);
    assert_eq!(events.len(), 2, "{text}");
    assert_eq!(events[0]["method"], "notifications/message", "{text}");
    let first = events[1].clone();
    let (key, request) = asked(&first);
    assert_eq!(
        (key.as_str(), &request["method"]),
        ("r1", &"sampling/createMessage".into())
    );
    let responses = json!({"r1": sampling("one")});
    let (_, second) = answer(&gw, ALICE, retry(&call, 2, responses, &state(&first))).await;
    assert_eq!(second["id"], 2, "{second}");
    let (key, request) = asked(&second);
    assert_eq!(
        (key.as_str(), &request["method"]),
        ("r2", &"roots/list".into())
    );
    // The first round's state was good for one retry only.
    let stale = retry(&call, 3, json!({"r1": sampling("again")}), &state(&first));
    assert_eq!(answer(&gw, ALICE, stale).await.0, 400);
    let responses = json!({"r2": {"roots": [{"uri": "file:///mrtr", "name": "r"}]}});
    let (_, done) = answer(&gw, ALICE, retry(&call, 4, responses, &state(&second))).await;
    assert_eq!(done["id"], 4, "{done}");
    let got: Value = serde_json::from_str(&tool_text(&done)).unwrap();
    assert_eq!(got[0]["result"]["content"]["text"], "one", "{done}");
    assert_eq!(
        got[1]["result"]["roots"][0]["uri"], "file:///mrtr",
        "{done}"
    );
}

#[tokio::test]
async fn a_request_state_that_was_altered_or_is_anothers_is_refused_and_the_owner_keeps_it() {
    let tokens = two_tokens();
    let gw = Gateway::start(&[("MCP_AUTH_BEARER_TOKENS", &tokens)], &[], &stub(&[])).await;
    let call = ask(
        1,
        json!([sampling_request()]),
        false,
        json!({"sampling": {}}),
    );
    let (status, first) = answer(&gw, ALICE, call.clone()).await;
    assert_eq!(status, 200, "{first}\n{}", gw.stderr());
    let good = state(&first);
    let responses = json!({"r1": sampling("the owner's")});
    let refused = async |token: &str, body: Value| {
        let (status, body) = answer(&gw, token, body).await;
        (
            status,
            body["error"]["code"].clone(),
            body["error"]["message"].clone(),
        )
    };
    let invalid = (
        400,
        json!(-32602),
        json!("Invalid or expired requestState: send the request again without requestState"),
    );
    // One character changed.
    let mut altered = good.clone().into_bytes();
    altered[3] = if altered[3] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).unwrap();
    assert_eq!(
        refused(ALICE, retry(&call, 2, responses.clone(), &altered)).await,
        invalid
    );
    // Made up, and not even a state.
    let made_up = "A".repeat(good.len());
    assert_eq!(
        refused(ALICE, retry(&call, 3, responses.clone(), &made_up)).await,
        invalid
    );
    assert_eq!(
        refused(ALICE, retry(&call, 4, responses.clone(), "x")).await,
        invalid
    );
    // Another principal, with the state as it was given.
    assert_eq!(
        refused(BOB, retry(&call, 5, responses.clone(), &good)).await,
        invalid
    );
    // The owner, on another tool.
    let mut other = retry(&call, 6, responses.clone(), &good);
    other["params"]["name"] = "asked".into();
    assert_eq!(refused(ALICE, other).await, invalid);
    // The owner can still continue the call.
    let (status, done) = answer(&gw, ALICE, retry(&call, 7, responses, &good)).await;
    assert_eq!(status, 200, "{done}");
    assert!(tool_text(&done).contains("the owner's"), "{done}");
}

#[tokio::test]
async fn a_call_not_retried_in_time_answers_the_childs_request_and_is_cancelled() {
    let options = ["--input-timeout", "300ms"];
    let gw = Gateway::start(&[("MCP_AUTH_BEARER_TOKEN", ALICE)], &options, &stub(&[])).await;
    let call = ask(
        1,
        json!([sampling_request()]),
        false,
        json!({"sampling": {}}),
    );
    let (status, first) = answer(&gw, ALICE, call.clone()).await;
    assert_eq!(status, 200, "{first}\n{}", gw.stderr());
    asked(&first);
    // The child (this principal's) hears of it: an error for its request, and the call
    // cancelled. Polled, at most WAIT.
    let mut seen = Value::Null;
    for id in 10..(10 + 150) {
        let (_, got) = answer(
            &gw,
            ALICE,
            request_2026(id, "tools/call", json!({"name": "asked", "arguments": {}})),
        )
        .await;
        seen = serde_json::from_str(&tool_text(&got)).unwrap();
        let heard = |k: &str| !seen[k].as_array().unwrap().is_empty();
        if heard("cancelled") && heard("answers") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let answers = seen["answers"].as_array().unwrap();
    assert_eq!(answers.len(), 1, "{seen}");
    let error = answers[0]["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("{seen}"));
    assert!(error.contains("--input-timeout"), "{seen}");
    // The call is cancelled by the id the child knows it by (a number of the gateway's).
    assert!(seen["cancelled"][0].is_number(), "{seen}");
    // The state is no good now.
    let late = retry(&call, 2, json!({"r1": sampling("late")}), &state(&first));
    assert_eq!(answer(&gw, ALICE, late).await.0, 400);
}
