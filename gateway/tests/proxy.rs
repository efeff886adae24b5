//! `mcp-auth-gateway proxy` as a client and an upstream see it: the real binary on 127.0.0.1
//! in front of a small upstream written here (which records what reaches it and streams
//! events when the test says so), and of the Python SDK's Streamable HTTP server
//! (`tests/servers/progress_server.py`, from the interop clients' hashed requirements). Every
//! wait is bounded (`common::WAIT`).

mod common;

use std::{
    process::Stdio,
    sync::{Arc, Mutex},
};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::any,
};
use common::*;
use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    sync::mpsc,
};

/// What the upstream saw, and the lever that releases its second event.
#[derive(Clone)]
struct Upstream {
    seen: Arc<Mutex<Vec<HeaderMap>>>,
    release: Arc<tokio::sync::Mutex<mpsc::Receiver<()>>>,
}

/// The upstream: `initialize` opens session `upstream-session-1`; a `POST` of method `stream`
/// answers with an event stream whose first event goes at once and whose second waits until
/// the test releases it; a `GET` answers an event that names the `Last-Event-ID` it got.
async fn upstream(
    State(up): State<Upstream>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // What the upstream saw, its query string as a made-up header.
    let mut seen = headers.clone();
    if let Some(query) = uri.query() {
        seen.insert("x-test-query", query.parse().unwrap());
    }
    up.seen.lock().unwrap().push(seen);
    let sse = [("content-type", "text/event-stream")];
    if body.is_empty() {
        let last = headers
            .get("last-event-id")
            .map(|v| v.to_str().unwrap().to_owned());
        let event = json!({"jsonrpc": "2.0", "method": "last", "params": {"id": last}});
        return (sse, format!("id: e-9\ndata: {event}\n\n")).into_response();
    }
    let msg: Value = serde_json::from_slice(&body).unwrap();
    match msg["method"].as_str() {
        Some("initialize") => (
            [
                ("content-type", "application/json"),
                ("mcp-session-id", "upstream-session-1"),
            ],
            json!({"jsonrpc": "2.0", "id": msg["id"], "result": {}}).to_string(),
        )
            .into_response(),
        Some("stream") => {
            let id = msg["id"].clone();
            let events = futures_util::stream::unfold(0, move |step| {
                let (up, id) = (up.clone(), id.clone());
                async move {
                    let data = match step {
                        0 => json!({"jsonrpc": "2.0", "method": "notifications/progress",
                                    "params": {"progressToken": "t", "progress": 1}}),
                        1 => {
                            // Bounded: the test releases it, or gives up and drops the sender.
                            up.release.lock().await.recv().await?;
                            json!({"jsonrpc": "2.0", "id": id, "result": {"done": true}})
                        }
                        _ => return None,
                    };
                    let event = format!("id: e-{step}\nevent: message\ndata: {data}\n\n");
                    Some((Ok::<_, std::convert::Infallible>(event), step + 1))
                }
            });
            (sse, Body::from_stream(events)).into_response()
        }
        _ => StatusCode::ACCEPTED.into_response(),
    }
}

/// Starts the upstream on a free loopback port; returns its URL, what it saw, and the sender
/// that releases the second event of a `stream`.
async fn start_upstream() -> (String, Arc<Mutex<Vec<HeaderMap>>>, mpsc::Sender<()>) {
    let (tx, rx) = mpsc::channel(1);
    let up = Upstream {
        seen: Arc::default(),
        release: Arc::new(tokio::sync::Mutex::new(rx)),
    };
    let seen = up.seen.clone();
    let app = Router::new().route("/mcp", any(upstream)).with_state(up);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/mcp"), seen, tx)
}

/// Reads `res` until its body holds `needle`; panics after [`WAIT`].
async fn read_until(res: &mut reqwest::Response, text: &mut String, needle: &str) {
    let read = async {
        while !text.contains(needle) {
            match res.chunk().await.unwrap() {
                Some(chunk) => text.push_str(&String::from_utf8_lossy(&chunk)),
                None => return false,
            }
        }
        true
    };
    match tokio::time::timeout(WAIT, read).await {
        Ok(true) => {}
        Ok(false) => panic!("the stream ended without {needle:?}: {text}"),
        Err(_) => panic!("{needle:?} did not arrive (buffered?); got so far: {text:?}"),
    }
}

#[tokio::test]
async fn an_event_stream_reaches_the_client_event_by_event_not_buffered() {
    let (url, _seen, release) = start_upstream().await;
    let gw = Gateway::proxy(&[("MCP_AUTH_BEARER_TOKEN", ALICE)], &[], &url).await;
    let alice = gw.client(ALICE);
    let mut res = alice
        .post(
            Some("upstream-session-1"),
            &json!({"jsonrpc": "2.0", "id": 1, "method": "stream"}),
        )
        .await;
    // The session id was never opened through the gateway: the binding layer refuses it.
    assert_eq!(res.status(), 404);
    let session = {
        let res = alice
            .post(
                None,
                &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {}}),
            )
            .await;
        assert_eq!(res.status(), 200);
        res.headers()["mcp-session-id"].to_str().unwrap().to_owned()
    };
    assert_eq!(session, "upstream-session-1");
    res = alice
        .post(
            Some(&session),
            &json!({"jsonrpc": "2.0", "id": 1, "method": "stream"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    // The first event arrives while the upstream still holds the second one back.
    let mut text = String::new();
    read_until(&mut res, &mut text, "notifications/progress").await;
    assert!(!text.contains("\"done\""), "{text}");
    release.send(()).await.unwrap();
    read_until(&mut res, &mut text, "\"done\":true").await;
    let events = events(&text);
    assert_eq!(events.len(), 2, "{text}");
    assert_eq!(events[1]["id"], 1);
}

#[tokio::test]
async fn identity_headers_name_the_caller_and_a_spoofed_subject_never_reaches_the_upstream() {
    let (url, seen, _release) = start_upstream().await;
    let tokens = two_tokens();
    let env = [
        ("MCP_AUTH_BEARER_TOKENS", tokens.as_str()),
        ("MCP_AUTH_BEARER_TOKEN_SCOPES", "alice=mcp:read mcp:write"),
    ];
    let send = |gw_url: String, token: &'static str| async move {
        http_client()
            .post(gw_url)
            .bearer_auth(token)
            .header("accept", "application/json, text/event-stream")
            .header("x-mcp-auth-subject", "bob")
            .header("X-MCP-Auth-Scopes", "mcp:admin")
            .header("x-mcp-auth-client-id", "spoofed-client")
            .header("x-mcp-auth-issuer", "https://spoofed.example")
            .json(&json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {}}))
            .send()
            .await
            .unwrap()
    };
    let gw = Gateway::proxy(&env, &[], &url).await;
    assert_eq!(send(gw.url.clone(), ALICE).await.status(), 200);
    {
        let seen = seen.lock().unwrap();
        let h = seen.last().unwrap();
        let all = |name: &str| -> Vec<&str> {
            h.get_all(name)
                .iter()
                .map(|v| v.to_str().unwrap())
                .collect()
        };
        assert_eq!(all("x-mcp-auth-subject"), ["alice"]);
        assert_eq!(all("x-mcp-auth-scopes"), ["mcp:read mcp:write"]);
        // A static token has no client or issuer: the spoofed ones are gone, not passed.
        assert!(all("x-mcp-auth-client-id").is_empty(), "{h:?}");
        assert!(all("x-mcp-auth-issuer").is_empty(), "{h:?}");
        assert!(
            h.get("authorization").is_none(),
            "the client's token went up"
        );
        assert!(!format!("{h:?}").contains(ALICE));
    }
    drop(gw);
    // Turned off: no identity header at all, the spoofed ones still removed.
    let gw = Gateway::proxy(&env, &["--no-identity-headers"], &url).await;
    assert_eq!(send(gw.url.clone(), BOB).await.status(), 200);
    let seen = seen.lock().unwrap();
    let h = seen.last().unwrap();
    let identity: Vec<_> = h
        .keys()
        .filter(|k| k.as_str().starts_with("x-mcp-auth-"))
        .collect();
    assert!(identity.is_empty(), "{identity:?}");
    assert!(h.get("authorization").is_none());
}

#[tokio::test]
async fn the_query_string_reaches_the_upstream_without_a_token_in_it() {
    let (url, seen, _release) = start_upstream().await;
    let gw = Gateway::proxy(&[("MCP_AUTH_BEARER_TOKEN", ALICE)], &[], &url).await;
    let res = http_client()
        .post(format!("{}?tenant=a&access_token={ALICE}&x=1", gw.url))
        .bearer_auth(ALICE)
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let seen = seen.lock().unwrap();
    let h = seen.last().unwrap();
    assert_eq!(h.get("x-test-query").unwrap(), "tenant=a&x=1");
    assert!(!format!("{h:?}").contains(ALICE));
}

#[tokio::test]
async fn session_ids_and_last_event_id_pass_and_another_principal_gets_404() {
    let (url, seen, _release) = start_upstream().await;
    let tokens = two_tokens();
    let gw = Gateway::proxy(&[("MCP_AUTH_BEARER_TOKENS", &tokens)], &[], &url).await;
    let (alice, bob) = (gw.client(ALICE), gw.client(BOB));
    let res = alice
        .post(
            None,
            &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {}}),
        )
        .await;
    let session = res.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    // Resuming a stream: Last-Event-ID and the session go up unchanged.
    let get = |token: &str| {
        http_client()
            .get(&gw.url)
            .bearer_auth(token)
            .header("accept", "text/event-stream")
            .header("mcp-session-id", &session)
            .header("last-event-id", "e-4")
    };
    let res = get(ALICE).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let text = res.text().await.unwrap();
    assert!(text.starts_with("id: e-9\n"), "{text}");
    assert_eq!(events(&text)[0]["params"]["id"], "e-4");
    let before = seen.lock().unwrap().len();
    {
        let seen = seen.lock().unwrap();
        let h = seen.last().unwrap();
        assert_eq!(h["mcp-session-id"], session.as_str());
        assert_eq!(h["last-event-id"], "e-4");
    }
    // Bob with Alice's session id: 404 from the gateway, and the upstream never hears of it.
    assert_eq!(get(BOB).send().await.unwrap().status(), 404);
    let post = bob
        .post(
            Some(&session),
            &json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
        )
        .await;
    assert_eq!(post.status(), 404);
    assert_eq!(seen.lock().unwrap().len(), before);
}

#[tokio::test]
async fn an_unreachable_upstream_is_a_502_with_a_json_rpc_error() {
    // A port that was free a moment ago and has no listener now.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/mcp");
    let gw = Gateway::proxy(&[("MCP_AUTH_BEARER_TOKEN", ALICE)], &[], &url).await;
    let res = gw
        .client(ALICE)
        .post(
            None,
            &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {}}),
        )
        .await;
    assert_eq!(res.status(), 502);
    assert_eq!(res.headers()["content-type"], "application/json");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["jsonrpc"], "2.0");
    assert_eq!(body["error"]["code"], -32603);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cannot be reached"),
        "{body}"
    );
    // Authentication still comes first.
    let res = http_client()
        .post(&gw.url)
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

/// The Python SDK's Streamable HTTP server on a free port; killed when dropped.
struct PythonServer {
    _child: tokio::process::Child,
    url: String,
}

async fn python_server() -> PythonServer {
    tokio::task::spawn_blocking(ensure_python_client)
        .await
        .unwrap();
    let mut child = tokio::process::Command::new(venv_python())
        .arg(servers_dir().join("progress_server.py"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(WAIT, lines.next_line())
        .await
        .expect("the Python server did not start")
        .unwrap()
        .expect("the Python server exited");
    let port = line.strip_prefix("PORT ").expect(&line);
    PythonServer {
        _child: child,
        url: format!("http://127.0.0.1:{port}/mcp"),
    }
}

#[tokio::test]
async fn the_python_sdk_http_server_streams_progress_through_the_proxy() {
    let upstream = python_server().await;
    let tokens = two_tokens();
    let gw = Gateway::proxy(&[("MCP_AUTH_BEARER_TOKENS", &tokens)], &[], &upstream.url).await;
    let alice = gw.client(ALICE);
    let session = alice.initialize().await;
    let call = json!({"jsonrpc": "2.0", "id": "c-1", "method": "tools/call",
                      "params": {"name": "count", "arguments": {"steps": 3},
                                 "_meta": {"progressToken": "p-1"}}});
    let res = alice.post(Some(&session), &call).await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let events = events(&res.text().await.unwrap());
    let progress: Vec<(Value, Value)> = events
        .iter()
        .filter(|e| e["method"] == "notifications/progress")
        .map(|e| {
            (
                e["params"]["progressToken"].clone(),
                e["params"]["progress"].clone(),
            )
        })
        .collect();
    assert_eq!(
        progress,
        [
            (json!("p-1"), json!(1)),
            (json!("p-1"), json!(2)),
            (json!("p-1"), json!(3))
        ]
    );
    let answer = events.last().unwrap();
    assert_eq!(answer["id"], "c-1");
    assert_eq!(tool_text(answer), "counted 3");
    // Bob cannot use Alice's session; the upstream's own sessions are bound to principals.
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    assert_eq!(
        gw.client(BOB).post(Some(&session), &list).await.status(),
        404
    );
    // DELETE ends it upstream too; the id is then unknown to the gateway.
    let res = alice
        .http
        .delete(&gw.url)
        .bearer_auth(ALICE)
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(alice.post(Some(&session), &list).await.status(), 404);
}
