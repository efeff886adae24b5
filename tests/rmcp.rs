//! rmcp's streamable HTTP service behind the auth layer: real MCP JSON-RPC over HTTP with a real
//! client, in axum and in plain hyper.

mod common;

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::Router;
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
    service::TowerToHyperService,
};
use mcp_server_auth::{
    AuthInfo, AuthLayer, ProtectedResourceMetadata, ResourceUrl, ScopeSet, bearer::StaticBearer,
    rmcp::Caller,
};
use rmcp::{
    handler::server::{tool::Extension, wrapper::Parameters},
    schemars, tool, tool_router,
    transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
    },
};
use serde_json::{Value, json};
use tower::Layer;

use common::{TestServer, challenges, client, serve_axum, serve_with};

const LAPTOP: &str = "bGFwdG9wLXRva2VuLWZvci10ZXN0cy0wMQ";
const CI: &str = "Y2ktdG9rZW4tZm9yLXRoZS10ZXN0cy0wMg";
/// The protocol of the `initialize` handshake (the last revision that has one).
const PROTOCOL: &str = "2025-11-25";
/// No test may take longer than this.
const LIMIT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// The MCP server under test.

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct GreetArgs {
    /// Whom to greet.
    name: String,
}

#[derive(Debug, Clone, Default)]
struct WhoAmI;

#[tool_router(server_handler)]
impl WhoAmI {
    /// The recommended way: `Caller` as a tool parameter.
    #[tool(description = "Returns the caller's identity as JSON")]
    async fn whoami(&self, Caller(who): Caller) -> String {
        json!({
            "subject": who.subject(),
            "method": who.method().as_str(),
            "scopes": who.scopes().iter().collect::<Vec<_>>(),
            "client_id": who.client_id(),
        })
        .to_string()
    }

    /// The manual way, without the crate's `rmcp` feature: the HTTP request parts.
    #[tool(description = "Returns the caller's subject, read from the HTTP request parts")]
    async fn whoami_manual(&self, Extension(parts): Extension<http::request::Parts>) -> String {
        match parts.extensions.get::<AuthInfo>() {
            Some(who) => format!("manual:{}", who.subject()),
            None => "manual:anonymous".to_owned(),
        }
    }

    /// Tool arguments and the caller together.
    #[tool(description = "Greets someone, on behalf of the caller")]
    async fn greet(&self, Parameters(args): Parameters<GreetArgs>, Caller(who): Caller) -> String {
        format!("{} greets {}", who.subject(), args.name)
    }

    /// Whether the `Authorization` header reached the MCP server (it must not).
    #[tool(description = "Whether the Authorization header reached the tool")]
    async fn saw_authorization(&self, Extension(parts): Extension<http::request::Parts>) -> String {
        parts
            .headers
            .contains_key(http::header::AUTHORIZATION)
            .to_string()
    }
}

fn verifier() -> StaticBearer {
    StaticBearer::builder()
        .token_with_scopes(
            "laptop",
            LAPTOP,
            ScopeSet::parse("mcp:read mcp:write").unwrap(),
        )
        .token("ci", CI)
        .build()
        .unwrap()
}

type McpService = StreamableHttpService<WhoAmI, LocalSessionManager>;

/// The MCP service; `sessions` counts the server instances rmcp creates (one per session).
fn mcp_service(sessions: Arc<AtomicUsize>, config: StreamableHttpServerConfig) -> McpService {
    StreamableHttpService::new(
        move || {
            sessions.fetch_add(1, Ordering::SeqCst);
            Ok(WhoAmI)
        },
        Arc::new(LocalSessionManager::default()),
        config.with_sse_keep_alive(None),
    )
}

/// axum: `Router::new().nest_service("/mcp", mcp).layer(auth)`.
async fn serve_rmcp_axum(layer: AuthLayer<StaticBearer>) -> (TestServer, Arc<AtomicUsize>) {
    let sessions = Arc::new(AtomicUsize::new(0));
    let mcp = mcp_service(sessions.clone(), StreamableHttpServerConfig::default());
    let app = Router::new().nest_service("/mcp", mcp).layer(layer);
    (serve_axum(app).await, sessions)
}

/// Plain hyper: `AuthLayer.layer(StreamableHttpService)` in `TowerToHyperService`, no axum.
async fn serve_rmcp_hyper(config: StreamableHttpServerConfig) -> (TestServer, Arc<AtomicUsize>) {
    let sessions = Arc::new(AtomicUsize::new(0));
    let service = AuthLayer::new(verifier()).layer(mcp_service(sessions.clone(), config));
    let server = serve_with(move |listener| async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let service = TowerToHyperService::new(service.clone());
            tokio::spawn(async move {
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
    .await;
    (server, sessions)
}

// ---------------------------------------------------------------------------------------------
// A small MCP client over reqwest.

/// One MCP client: a URL, an optional token, and the session `initialize` opened.
struct Mcp {
    http: reqwest::Client,
    url: String,
    token: Option<String>,
    session: Option<String>,
    protocol: Option<String>,
    next_id: u64,
}

impl Mcp {
    fn new(url: String, token: Option<&str>) -> Self {
        Self {
            http: client(),
            url,
            token: token.map(str::to_owned),
            session: None,
            protocol: None,
            next_id: 1,
        }
    }

    /// A request with the MCP headers, the token and the session (if any).
    fn request(&self, method: reqwest::Method) -> reqwest::RequestBuilder {
        let mut req = self
            .http
            .request(method, &self.url)
            .header("accept", "application/json, text/event-stream");
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        if let Some(session) = &self.session {
            req = req.header("mcp-session-id", session);
        }
        if let Some(protocol) = &self.protocol {
            req = req.header("mcp-protocol-version", protocol);
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

    /// Sends a JSON-RPC request and returns its response message.
    async fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let res = self
            .post(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
        assert_eq!(res.status(), 200, "{method}: {:?}", res.headers());
        let message = read_message(res).await;
        assert_eq!(message["id"], id, "{message}");
        message
    }

    /// `initialize` then `notifications/initialized`: the legacy handshake, which opens a
    /// session.
    async fn initialize(&mut self) -> Value {
        let res = self.post(&initialize_request(1)).await;
        assert_eq!(res.status(), 200, "initialize: {:?}", res.headers());
        self.session = res
            .headers()
            .get("mcp-session-id")
            .map(|v| v.to_str().unwrap().to_owned());
        assert!(self.session.is_some(), "initialize opened no session");
        let message = read_message(res).await;
        let version = message["result"]["protocolVersion"].as_str().unwrap();
        self.protocol = Some(version.to_owned());
        self.next_id = 2;
        let res = self
            .post(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
        assert_eq!(res.status(), 202);
        message
    }

    /// Calls a tool and returns the text of its first content block.
    async fn tool(&mut self, name: &str, arguments: Value) -> String {
        let message = self
            .call("tools/call", json!({"name": name, "arguments": arguments}))
            .await;
        let result = &message["result"];
        assert_eq!(result["isError"], json!(false), "{message}");
        result["content"][0]["text"].as_str().unwrap().to_owned()
    }
}

fn initialize_request(id: u64) -> Value {
    json!({
        "jsonrpc": "2.0",
        "id": id,
        "method": "initialize",
        "params": {
            "protocolVersion": PROTOCOL,
            "capabilities": {},
            "clientInfo": {"name": "mcp-server-auth-tests", "version": "0.0.0"}
        }
    })
}

/// The JSON-RPC message of a response: the body itself (`application/json`), or the `data:` of
/// the SSE event that carries a response (`text/event-stream`; priming events have no data).
async fn read_message(res: reqwest::Response) -> Value {
    let sse = res
        .headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    let body = res.text().await.unwrap();
    if !sse {
        return serde_json::from_str(&body).unwrap();
    }
    body.lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
        .rfind(|m| m.get("result").is_some() || m.get("error").is_some())
        .unwrap_or_else(|| panic!("no response message in the event stream: {body:?}"))
}

/// Runs a test body under [`LIMIT`].
async fn bounded<F: Future<Output = ()>>(test: F) {
    tokio::time::timeout(LIMIT, test)
        .await
        .expect("the test took too long");
}

// ---------------------------------------------------------------------------------------------
// Tests.

#[tokio::test]
async fn tool_call_returns_the_callers_identity() {
    bounded(async {
        let (server, sessions) = serve_rmcp_axum(AuthLayer::new(verifier())).await;
        let mut mcp = Mcp::new(server.url("/mcp"), Some(LAPTOP));
        let init = mcp.initialize().await;
        assert_eq!(init["result"]["protocolVersion"], PROTOCOL);
        assert_eq!(sessions.load(Ordering::SeqCst), 1);

        let tools = mcp.call("tools/list", json!({})).await;
        let mut names: Vec<&str> = tools["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        names.sort_unstable();
        assert_eq!(
            names,
            ["greet", "saw_authorization", "whoami", "whoami_manual"]
        );

        let who: Value = serde_json::from_str(&mcp.tool("whoami", json!({})).await).unwrap();
        assert_eq!(
            who,
            json!({
                "subject": "laptop",
                "method": "static_bearer",
                "scopes": ["mcp:read", "mcp:write"],
                "client_id": null,
            })
        );
        assert_eq!(mcp.tool("whoami_manual", json!({})).await, "manual:laptop");
        assert_eq!(
            mcp.tool("greet", json!({"name": "Ada"})).await,
            "laptop greets Ada"
        );
        // No token passthrough: the layer removed the header before rmcp saw the request.
        assert_eq!(mcp.tool("saw_authorization", json!({})).await, "false");
    })
    .await;
}

#[tokio::test]
async fn no_token_is_refused_before_rmcp_sees_the_request() {
    bounded(async {
        let (server, sessions) = serve_rmcp_axum(AuthLayer::new(verifier())).await;
        let mcp = Mcp::new(server.url("/mcp"), None);

        let post = mcp.post(&initialize_request(1)).await;
        let get = mcp
            .request(reqwest::Method::GET)
            .header("accept", "text/event-stream")
            .send()
            .await
            .unwrap();
        let delete = mcp
            .request(reqwest::Method::DELETE)
            .header("mcp-session-id", "some-session")
            .send()
            .await
            .unwrap();
        for res in [post, get, delete] {
            assert_eq!(res.status(), 401);
            assert_eq!(challenges(&res), [r#"Bearer realm="mcp""#]);
            assert!(res.headers().get("mcp-session-id").is_none());
            assert_eq!(res.headers()["cache-control"], "no-store");
            assert_eq!(res.text().await.unwrap(), r#"{"error":"unauthorized"}"#);
        }
        // rmcp never created a server instance: it did not see any of these requests.
        assert_eq!(sessions.load(Ordering::SeqCst), 0);
    })
    .await;
}

#[tokio::test]
async fn wrong_token_is_refused_with_invalid_token() {
    bounded(async {
        let (server, sessions) = serve_rmcp_axum(AuthLayer::new(verifier())).await;
        let mcp = Mcp::new(server.url("/mcp"), Some("bm90LWEtdG9rZW4tdGhhdC1leGlzdHM"));
        let res = mcp.post(&initialize_request(1)).await;
        assert_eq!(res.status(), 401);
        assert_eq!(
            challenges(&res),
            [r#"Bearer realm="mcp", error="invalid_token""#]
        );
        assert_eq!(sessions.load(Ordering::SeqCst), 0);
    })
    .await;
}

/// A session id is not a credential (MCP 2025-11-25, Security Best Practices, “Session
/// Hijacking”; Authorization, “Token Handling”). Every request of a session must carry
/// the token; the session id alone (or with a wrong token) is refused.
#[tokio::test]
async fn session_id_without_token_is_refused() {
    bounded(async {
        let (server, _) = serve_rmcp_axum(AuthLayer::new(verifier())).await;
        let mut mcp = Mcp::new(server.url("/mcp"), Some(LAPTOP));
        mcp.initialize().await;
        let session = mcp.session.clone().unwrap();

        let call = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                          "params": {"name": "whoami", "arguments": {}}});
        let mut thief = Mcp::new(server.url("/mcp"), None);
        thief.session = Some(session.clone());
        thief.protocol = mcp.protocol.clone();
        let res = thief.post(&call).await;
        assert_eq!(res.status(), 401);
        assert_eq!(challenges(&res), [r#"Bearer realm="mcp""#]);
        let res = thief
            .request(reqwest::Method::GET)
            .header("accept", "text/event-stream")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401);
        let res = thief.request(reqwest::Method::DELETE).send().await.unwrap();
        assert_eq!(res.status(), 401);

        thief.token = Some("bm90LWEtdG9rZW4tdGhhdC1leGlzdHM".to_owned());
        let res = thief.post(&call).await;
        assert_eq!(res.status(), 401);
        assert_eq!(
            challenges(&res),
            [r#"Bearer realm="mcp", error="invalid_token""#]
        );

        // The refused DELETE did not end the session: its owner carries on.
        let who: Value = serde_json::from_str(&mcp.tool("whoami", json!({})).await).unwrap();
        assert_eq!(who["subject"], "laptop");
    })
    .await;
}

/// The identity comes from each HTTP request, not from the session: a request of a session
/// opened with one token, sent with another valid token, runs as the second token's subject.
/// (Binding a session to its principal is the job of `SessionBindingLayer`, tests/sessions.rs.)
#[tokio::test]
async fn identity_is_per_request_not_per_session() {
    bounded(async {
        let (server, _) = serve_rmcp_axum(AuthLayer::new(verifier())).await;
        let mut mcp = Mcp::new(server.url("/mcp"), Some(LAPTOP));
        mcp.initialize().await;
        mcp.token = Some(CI.to_owned());
        let who: Value = serde_json::from_str(&mcp.tool("whoami", json!({})).await).unwrap();
        assert_eq!(who["subject"], "ci");
        assert_eq!(who["scopes"], json!([]));
    })
    .await;
}

#[tokio::test]
async fn metadata_is_public_and_challenges_point_at_it() {
    bounded(async {
        let sessions = Arc::new(AtomicUsize::new(0));
        let mcp = mcp_service(sessions.clone(), StreamableHttpServerConfig::default());
        // The port is only known once bound, so bind first and build the layer for it.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let resource = ResourceUrl::parse(&format!("http://{addr}/mcp")).unwrap();
        let layer = AuthLayer::builder(verifier())
            .metadata(
                ProtectedResourceMetadata::builder(resource)
                    .authorization_server("https://auth.example.com")
                    .scopes_supported(["mcp:read"])
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        let app = Router::new().nest_service("/mcp", mcp).layer(layer);
        let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

        let http = client();
        let res = http
            .post(format!("http://{addr}/mcp"))
            .header("content-type", "application/json")
            .body(initialize_request(1).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401);
        let metadata_url = format!("http://{addr}/.well-known/oauth-protected-resource/mcp");
        assert_eq!(
            challenges(&res),
            [format!(
                r#"Bearer resource_metadata="{metadata_url}", scope="mcp:read""#
            )]
        );
        let doc: Value = http
            .get(&metadata_url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(doc["resource"], format!("http://{addr}/mcp"));
        assert_eq!(
            doc["authorization_servers"],
            json!(["https://auth.example.com"])
        );

        let mut mcp = Mcp::new(format!("http://{addr}/mcp"), Some(LAPTOP));
        mcp.initialize().await;
        assert_eq!(mcp.tool("whoami_manual", json!({})).await, "manual:laptop");
        server.abort();
    })
    .await;
}

/// rmcp served by plain hyper, without axum: `AuthLayer.layer(StreamableHttpService)`.
#[tokio::test]
async fn plain_hyper_without_axum() {
    bounded(async {
        let (server, sessions) = serve_rmcp_hyper(StreamableHttpServerConfig::default()).await;

        let anonymous = Mcp::new(server.url("/mcp"), None);
        let res = anonymous.post(&initialize_request(1)).await;
        assert_eq!(res.status(), 401);
        assert_eq!(challenges(&res), [r#"Bearer realm="mcp""#]);
        assert_eq!(sessions.load(Ordering::SeqCst), 0);

        let mut mcp = Mcp::new(server.url("/mcp"), Some(CI));
        mcp.initialize().await;
        let who: Value = serde_json::from_str(&mcp.tool("whoami", json!({})).await).unwrap();
        assert_eq!(who["subject"], "ci");
        assert_eq!(mcp.tool("whoami_manual", json!({})).await, "manual:ci");
        assert_eq!(sessions.load(Ordering::SeqCst), 1);
    })
    .await;
}

/// The 2026-07-28 revision has no handshake and no session: each request is stateless and
/// carries the protocol metadata. The identity reaches the tool the same way.
#[tokio::test]
async fn stateless_2026_07_28_tool_call() {
    bounded(async {
        let config = StreamableHttpServerConfig::default()
            .with_legacy_session_mode(false)
            .with_json_response(true);
        let (server, _) = serve_rmcp_hyper(config).await;
        let call = json!({
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {
                "name": "whoami",
                "arguments": {},
                "_meta": {
                    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                    "io.modelcontextprotocol/clientInfo": {"name": "tests", "version": "0"},
                    "io.modelcontextprotocol/clientCapabilities": {}
                }
            }
        });
        let send = |token: Option<&str>| {
            let mut req = client()
                .post(server.url("/mcp"))
                .header("accept", "application/json, text/event-stream")
                .header("content-type", "application/json")
                .header("mcp-protocol-version", "2026-07-28")
                .header("mcp-method", "tools/call")
                .header("mcp-name", "whoami")
                .body(call.to_string());
            if let Some(token) = token {
                req = req.bearer_auth(token);
            }
            req.send()
        };

        let res = send(None).await.unwrap();
        assert_eq!(res.status(), 401);

        let res = send(Some(LAPTOP)).await.unwrap();
        assert_eq!(res.status(), 200);
        assert!(res.headers().get("mcp-session-id").is_none());
        let message = read_message(res).await;
        let text = message["result"]["content"][0]["text"].as_str().unwrap();
        let who: Value = serde_json::from_str(text).unwrap();
        assert_eq!(who["subject"], "laptop");
    })
    .await;
}

/// Without an `AuthLayer` in front, `Caller` fails the tool call with an error instead of
/// running it anonymously.
#[tokio::test]
async fn caller_without_layer_is_an_error() {
    bounded(async {
        let sessions = Arc::new(AtomicUsize::new(0));
        let app = Router::new().nest_service(
            "/mcp",
            mcp_service(sessions, StreamableHttpServerConfig::default()),
        );
        let server = serve_axum(app).await;
        let mut mcp = Mcp::new(server.url("/mcp"), None);
        mcp.initialize().await;
        let message = mcp
            .call("tools/call", json!({"name": "whoami", "arguments": {}}))
            .await;
        let error = message.get("error").unwrap_or(&message["result"]);
        assert!(
            error.to_string().contains("no authenticated caller"),
            "{message}"
        );
        assert_eq!(
            mcp.tool("whoami_manual", json!({})).await,
            "manual:anonymous"
        );
    })
    .await;
}
