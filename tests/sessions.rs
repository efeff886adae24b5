//! Session binding ([`SessionBindingLayer`]) in front of the example's real rmcp server: an MCP
//! session (`Mcp-Session-Id`, protocol 2025-11-25) belongs to the principal that opened it;
//! anyone else, and any id the layer does not know, gets `404`.

mod common;
#[path = "../examples/quickstart.rs"]
#[allow(dead_code, unreachable_pub)]
mod quickstart;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{Router, routing::any};
use mcp_server_auth::{
    AuthLayer, bearer::StaticBearer, config::EnvConfig, session::SessionBindingLayer,
};
use serde_json::{Value, json};

use common::{TestServer, client, raw_request, serve_axum};

const ALICE: &str = "YWxpY2UtdG9rZW4tZm9yLXNlc3Npb24tdGVzdHM";
const MALLORY: &str = "bWFsbG9yeS10b2tlbi1mb3Itc2Vzc2lvbi10ZXN0cw";
const ALICE_PASSWORD: &str = "correct horse battery staple";
const PROTOCOL: &str = "2025-11-25";
const LIMIT: Duration = Duration::from_secs(30);

async fn bounded<F: Future<Output = ()>>(test: F) {
    tokio::time::timeout(LIMIT, test)
        .await
        .expect("the test took too long");
}

/// The example server itself (`quickstart::app`): tokens `alice` and `mallory`, and a Basic
/// user also named `alice`.
async fn serve_example() -> TestServer {
    let tokens = format!("alice:{ALICE},mallory:{MALLORY}");
    let config = EnvConfig::from_vars([
        ("MCP_AUTH_BEARER_TOKENS", tokens.as_str()),
        ("MCP_AUTH_USER", "alice"),
        ("MCP_AUTH_PASSWORD", ALICE_PASSWORD),
    ])
    .unwrap();
    let (app, _shutdown) = quickstart::app(&config).await.unwrap();
    serve_axum(app).await
}

fn tokens() -> StaticBearer {
    StaticBearer::new([("alice", ALICE), ("mallory", MALLORY)]).unwrap()
}

/// The example's MCP service behind `layer` and an auth layer accepting alice and mallory.
async fn serve_with_layer(layer: SessionBindingLayer) -> TestServer {
    let config = EnvConfig::from_vars([("MCP_AUTH_BEARER_TOKEN", ALICE)]).unwrap();
    let (router, _shutdown) = quickstart::mcp_router(&config);
    serve_axum(router.layer(layer).layer(AuthLayer::new(tokens()))).await
}

/// How a client authenticates.
#[derive(Clone, Copy)]
enum Who {
    Bearer(&'static str),
    Basic(&'static str, &'static str),
}

/// A small MCP client: one principal, and the session it opened or borrowed.
struct Mcp {
    http: reqwest::Client,
    url: String,
    who: Who,
    session: Option<String>,
    next_id: u64,
}

impl Mcp {
    fn new(server: &TestServer, who: Who) -> Self {
        Self {
            http: client(),
            url: server.url("/mcp"),
            who,
            session: None,
            next_id: 1,
        }
    }

    /// The same principal's client in `session`.
    fn in_session(server: &TestServer, who: Who, session: &str) -> Self {
        let mut mcp = Self::new(server, who);
        mcp.session = Some(session.to_owned());
        mcp
    }

    fn request(&self, method: reqwest::Method) -> reqwest::RequestBuilder {
        let req = self
            .http
            .request(method, &self.url)
            .header("accept", "application/json, text/event-stream");
        let mut req = match self.who {
            Who::Bearer(token) => req.bearer_auth(token),
            Who::Basic(user, password) => req.basic_auth(user, Some(password)),
        };
        if let Some(session) = &self.session {
            req = req
                .header("mcp-session-id", session)
                .header("mcp-protocol-version", PROTOCOL);
        }
        req
    }

    async fn post(&self, message: &Value) -> reqwest::Response {
        self.request(reqwest::Method::POST)
            .header("content-type", "application/json")
            .body(message.to_string())
            .send()
            .await
            .unwrap()
    }

    /// `initialize` then `notifications/initialized`; returns the new session id.
    async fn initialize(&mut self) -> String {
        self.session = None;
        let res = self
            .post(&json!({
                "jsonrpc": "2.0", "id": 0, "method": "initialize",
                "params": {
                    "protocolVersion": PROTOCOL,
                    "capabilities": {},
                    "clientInfo": {"name": "sessions-tests", "version": "0"}
                }
            }))
            .await;
        assert_eq!(res.status(), 200);
        let session = res.headers()["mcp-session-id"].to_str().unwrap().to_owned();
        read_message(res).await;
        self.session = Some(session.clone());
        let res = self
            .post(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
        assert_eq!(res.status(), 202);
        session
    }

    /// `tools/call` of `whoami`, as a raw response.
    async fn call_whoami(&mut self) -> reqwest::Response {
        self.next_id += 1;
        self.post(&json!({
            "jsonrpc": "2.0", "id": self.next_id, "method": "tools/call",
            "params": {"name": "whoami", "arguments": {}}
        }))
        .await
    }

    /// The subject `whoami` reports; the call must succeed.
    async fn whoami(&mut self) -> String {
        let res = self.call_whoami().await;
        assert_eq!(res.status(), 200);
        let message = read_message(res).await;
        let text = message["result"]["content"][0]["text"].as_str().unwrap();
        let who: Value = serde_json::from_str(text).unwrap();
        who["subject"].as_str().unwrap().to_owned()
    }

    /// Opens the standalone event stream (`GET`); returns the status.
    async fn get(&self) -> u16 {
        let res = self
            .request(reqwest::Method::GET)
            .header("accept", "text/event-stream")
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        if status != 200 {
            assert_refused(res).await;
        }
        status
    }

    async fn delete(&self) -> reqwest::Response {
        self.request(reqwest::Method::DELETE).send().await.unwrap()
    }
}

/// The JSON-RPC response of a response body (`application/json`, or the SSE event with one).
async fn read_message(res: reqwest::Response) -> Value {
    let body = res.text().await.unwrap();
    if let Ok(message) = serde_json::from_str(&body) {
        return message;
    }
    body.lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
        .rfind(|m| m.get("result").is_some() || m.get("error").is_some())
        .unwrap_or_else(|| panic!("no response message: {body:?}"))
}

/// The layer's `404`: JSON, not cached, the same body whatever the reason.
async fn assert_refused(res: reqwest::Response) {
    assert_eq!(res.status(), 404);
    assert_eq!(res.headers()["content-type"], "application/json");
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert!(res.headers().get("www-authenticate").is_none());
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body,
        json!({"jsonrpc": "2.0", "error": {"code": -32600, "message": "Session not found"}})
    );
}

#[tokio::test]
async fn another_principal_can_neither_use_nor_end_someone_elses_session() {
    bounded(async {
        let server = serve_example().await;
        let mut alice = Mcp::new(&server, Who::Bearer(ALICE));
        let session = alice.initialize().await;
        assert_eq!(alice.whoami().await, "alice");

        let mut mallory = Mcp::in_session(&server, Who::Bearer(MALLORY), &session);
        assert_refused(mallory.call_whoami().await).await;
        assert_eq!(mallory.get().await, 404);
        assert_refused(mallory.delete().await).await;
        // A Basic user of the same name is another principal.
        let mut basic = Mcp::in_session(&server, Who::Basic("alice", ALICE_PASSWORD), &session);
        assert_refused(basic.call_whoami().await).await;

        // Alice's session is intact, and her own requests all pass.
        assert_eq!(alice.whoami().await, "alice");
        assert_eq!(alice.get().await, 200);
        // Mallory's own session works as well.
        let mut mallory = Mcp::new(&server, Who::Bearer(MALLORY));
        mallory.initialize().await;
        assert_eq!(mallory.whoami().await, "mallory");
    })
    .await;
}

#[tokio::test]
async fn the_owner_uses_and_ends_her_own_session() {
    bounded(async {
        let layer = SessionBindingLayer::new();
        let server = serve_with_layer(layer.clone()).await;
        let mut mallory = Mcp::new(&server, Who::Bearer(MALLORY));
        mallory.initialize().await;
        let mut alice = Mcp::new(&server, Who::Bearer(ALICE));
        alice.initialize().await;
        assert_eq!(layer.session_count(), 2);
        assert_eq!(alice.whoami().await, "alice");

        let res = alice.delete().await;
        assert!(res.status().is_success(), "{}", res.status());
        assert_eq!(layer.session_count(), 1);
        // Gone for its owner too, and refused by the layer before the server sees it.
        assert_refused(alice.call_whoami().await).await;
        assert_eq!(alice.get().await, 404);
        assert_refused(alice.delete().await).await;

        assert_eq!(mallory.whoami().await, "mallory");
    })
    .await;
}

#[tokio::test]
async fn an_unknown_or_unusable_session_id_is_not_found() {
    bounded(async {
        let server = serve_example().await;
        let long = "a".repeat(257);
        for id in ["6f9619ff-8b86-d011-b42d-00cf4fc964ff", "a b", "x", &long] {
            let mut alice = Mcp::in_session(&server, Who::Bearer(ALICE), id);
            assert_refused(alice.call_whoami().await).await;
            assert_eq!(alice.get().await, 404);
            assert_refused(alice.delete().await).await;
        }
        // Two session fields: ambiguous, refused.
        let mut alice = Mcp::new(&server, Who::Bearer(ALICE));
        let session = alice.initialize().await;
        let res = alice
            .request(reqwest::Method::GET)
            .header("mcp-session-id", &session)
            .send()
            .await
            .unwrap();
        assert_refused(res).await;
        // Refused unread: an HTTP/1.1 request with a body gets `Connection: close`.
        let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
        let request = format!(
            "POST /mcp HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {ALICE}\r\n\
             Mcp-Session-Id: not-a-session-of-anyone\r\nContent-Type: application/json\r\n\
             Accept: application/json, text/event-stream\r\nContent-Length: {}\r\n\r\n{body}",
            server.addr,
            body.len()
        );
        let (status, head) = raw_request(server.addr, request.as_bytes()).await;
        assert_eq!(status, 404);
        assert!(
            head.to_ascii_lowercase().contains("connection: close"),
            "{head}"
        );
    })
    .await;
}

#[tokio::test]
async fn an_idle_session_is_forgotten() {
    bounded(async {
        let idle = Duration::from_millis(100);
        let layer = SessionBindingLayer::builder().idle_timeout(idle).build();
        let server = serve_with_layer(layer.clone()).await;
        let mut alice = Mcp::new(&server, Who::Bearer(ALICE));
        alice.initialize().await;
        // More than the idle timeout since its last use: it must be gone, whatever the load.
        tokio::time::sleep(idle * 3).await;
        assert_refused(alice.call_whoami().await).await;
        assert_eq!(layer.session_count(), 0);
        // A new session works.
        alice.initialize().await;
        assert_eq!(alice.whoami().await, "alice");
    })
    .await;
}

#[tokio::test]
async fn a_principal_over_its_cap_loses_only_its_own_oldest_session() {
    bounded(async {
        let layer = SessionBindingLayer::builder()
            .max_sessions_per_principal(2)
            .build();
        let server = serve_with_layer(layer.clone()).await;
        let mut mallory = Mcp::new(&server, Who::Bearer(MALLORY));
        mallory.initialize().await;
        let mut alice = Vec::new();
        for _ in 0..3 {
            let mut mcp = Mcp::new(&server, Who::Bearer(ALICE));
            mcp.initialize().await;
            alice.push(mcp);
        }
        assert_eq!(layer.session_count(), 3);
        assert_refused(alice[0].call_whoami().await).await;
        assert_eq!(alice[1].whoami().await, "alice");
        assert_eq!(alice[2].whoami().await, "alice");
        assert_eq!(mallory.whoami().await, "mallory");
    })
    .await;
}

#[tokio::test]
async fn a_full_table_evicts_the_oldest_session_not_used_since() {
    bounded(async {
        let layer = SessionBindingLayer::builder().max_sessions(2).build();
        let server = serve_with_layer(layer.clone()).await;
        let mut first = Mcp::new(&server, Who::Bearer(ALICE));
        first.initialize().await;
        let mut mallory = Mcp::new(&server, Who::Bearer(MALLORY));
        mallory.initialize().await;
        let mut second = Mcp::new(&server, Who::Bearer(ALICE));
        second.initialize().await;
        assert_eq!(layer.session_count(), 2);
        assert_refused(first.call_whoami().await).await;
        assert_eq!(mallory.whoami().await, "mallory");
        assert_eq!(second.whoami().await, "alice");
    })
    .await;
}

/// An MCP server stub that can end its one session on its own, and refuses `DELETE` (`405`).
async fn serve_stub(layer: SessionBindingLayer, ended: Arc<AtomicBool>) -> TestServer {
    let handler = any(move |req: axum::extract::Request| {
        let ended = ended.clone();
        async move {
            let session = req.headers().get("mcp-session-id");
            let res = http::Response::builder();
            let res = if req.method() == http::Method::DELETE {
                res.status(405).body(String::new())
            } else {
                match session {
                    None => res
                        .header("mcp-session-id", "stub-session-0001")
                        .body("opened".to_owned()),
                    Some(_) if ended.load(Ordering::SeqCst) => {
                        res.status(404).body("ended by the server".to_owned())
                    }
                    Some(_) => res.body("in session".to_owned()),
                }
            };
            res.unwrap()
        }
    });
    let app = Router::new()
        .route("/mcp", handler)
        .layer(layer)
        .layer(AuthLayer::new(tokens()));
    serve_axum(app).await
}

#[tokio::test]
async fn a_session_the_server_ended_is_forgotten_and_a_refused_delete_is_not() {
    bounded(async {
        let layer = SessionBindingLayer::new();
        let ended = Arc::new(AtomicBool::new(false));
        let server = serve_stub(layer.clone(), ended.clone()).await;
        let http = client();
        let url = server.url("/mcp");
        let res = http.post(&url).bearer_auth(ALICE).send().await.unwrap();
        assert_eq!(res.headers()["mcp-session-id"], "stub-session-0001");
        assert_eq!(layer.session_count(), 1);
        let in_session = |method| {
            http.request(method, &url)
                .bearer_auth(ALICE)
                .header("mcp-session-id", "stub-session-0001")
        };

        let res = in_session(reqwest::Method::DELETE).send().await.unwrap();
        assert_eq!(res.status(), 405);
        assert_eq!(layer.session_count(), 1);
        let res = in_session(reqwest::Method::POST).send().await.unwrap();
        assert_eq!(res.text().await.unwrap(), "in session");

        ended.store(true, Ordering::SeqCst);
        let res = in_session(reqwest::Method::POST).send().await.unwrap();
        assert_eq!(res.text().await.unwrap(), "ended by the server");
        assert_eq!(layer.session_count(), 0);
        // Forgotten: even if the server answered again, the layer refuses the id now.
        ended.store(false, Ordering::SeqCst);
        assert_refused(in_session(reqwest::Method::POST).send().await.unwrap()).await;
    })
    .await;
}

#[tokio::test]
async fn a_request_that_skipped_authentication_is_refused_with_500() {
    bounded(async {
        let calls = Arc::new(AtomicUsize::new(0));
        let handler = any({
            let calls = calls.clone();
            move || async move {
                calls.fetch_add(1, Ordering::SeqCst);
                "reached"
            }
        });
        // Misplaced: no auth layer outside, so no AuthInfo.
        let app = Router::new()
            .route("/mcp", handler)
            .layer(SessionBindingLayer::new());
        let server = serve_axum(app).await;
        for session in [None, Some("6f9619ff-8b86-d011-b42d-00cf4fc964ff")] {
            let mut req = client().post(server.url("/mcp")).bearer_auth(ALICE);
            if let Some(session) = session {
                req = req.header("mcp-session-id", session);
            }
            let res = req.send().await.unwrap();
            assert_eq!(res.status(), 500);
            assert_eq!(res.headers()["cache-control"], "no-store");
            let body: Value = res.json().await.unwrap();
            assert_eq!(body["error"]["code"], -32603);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 0);
    })
    .await;
}
