//! Every refusal of every layer of this crate says `Cache-Control: no-store` (RFC 9111 §5.2.2.5):
//! the authentication layer (each refusal, from prebuilt headers and built per request),
//! `require_scopes`, the MCP operation scope layer (in front of the example's real rmcp server),
//! the Origin layer, the metadata endpoint's error answers, `MetadataService` and the axum
//! extractor. A refusal that a cache may keep would be served to the next caller, token or not.
//! (gRPC refusals over HTTP/2: tests/tonic.rs.)

mod common;
#[path = "../examples/quickstart.rs"]
#[allow(dead_code, unreachable_pub)]
mod quickstart;

use std::time::Duration;

use axum::{Router, routing::post};
use mcp_server_auth::{
    AuthInfo, AuthLayer, OriginLayer, ProtectedResourceMetadata, ResourceUrl, ScopeRequirement,
    ScopeSet,
    bearer::StaticBearer,
    config::EnvConfig,
    mcp::OperationScopes,
    verifier::{AuthRequest, Credentials, Rejection, Schemes, Verdict, Verifier},
};

use common::{TestServer, client, serve_axum};

const READER: &str = "cmVhZGVyLXRva2VuLWZvci10aGUtdGVzdHM";
const NOBODY: &str = "bm9ib2R5LXRva2VuLWZvci10aGUtdGVzdHM";
const WRONG: &str = "bm90LWEtdG9rZW4tdGhhdC1leGlzdHM";
/// The token for which the verifier "cannot check credentials now".
const DOWN: &str = "a2V5LXNlcnZlci1pcy1kb3duLW5vdy0wMw";
const RESOURCE: &str = "https://mcp.example.com/mcp";
const METADATA: &str = "/.well-known/oauth-protected-resource/mcp";
const LIMIT: Duration = Duration::from_secs(30);

/// Static tokens, and `503` for [`DOWN`].
#[derive(Debug, Clone)]
struct Tokens(StaticBearer);

impl Verifier for Tokens {
    fn schemes(&self) -> Schemes {
        Schemes::BEARER
    }
    fn verify(&self, request: &AuthRequest<'_>) -> Verdict {
        let credentials = request.credentials();
        if matches!(credentials, Credentials::Bearer(t) if *t == DOWN) {
            return Verdict::Ready(Err(Rejection::Unavailable {
                retry_after: Duration::from_secs(5),
            }));
        }
        self.0.verify(request)
    }
}

fn tokens() -> Tokens {
    Tokens(
        StaticBearer::builder()
            .token_with_scopes("reader", READER, ScopeSet::parse("mcp:read").unwrap())
            .token("nobody", NOBODY)
            .build()
            .unwrap(),
    )
}

fn metadata() -> ProtectedResourceMetadata {
    ProtectedResourceMetadata::builder(ResourceUrl::parse(RESOURCE).unwrap())
        .authorization_server("https://auth.example.com")
        .scopes_supported(["mcp:read"])
        .build()
        .unwrap()
}

fn admin() -> ScopeRequirement {
    ScopeRequirement::all_of(["mcp:admin"]).unwrap()
}

async fn ok() -> &'static str {
    "ok"
}

/// Origin → auth → (MCP scopes → the example's MCP server at `/mcp`; `require_scopes` →
/// `/admin`). `descriptions` switches the auth layer from prebuilt refusals to built ones.
async fn full_stack(descriptions: bool) -> TestServer {
    let config = EnvConfig::from_vars([("MCP_AUTH_RESOURCE_URL", RESOURCE)]).unwrap();
    let (mcp, _shutdown) = quickstart::mcp_router(&config);
    let auth = AuthLayer::builder(tokens())
        .metadata(metadata())
        .error_descriptions(descriptions)
        .build()
        .unwrap();
    let policy = OperationScopes::parse(quickstart::DEFAULT_TOOL_SCOPES).unwrap();
    let admin_routes = Router::new()
        .route("/admin", post(ok))
        .route_layer(auth.require_scopes(admin()));
    let app = mcp
        .layer(auth.mcp_scopes(policy).max_body_bytes(512))
        .merge(admin_routes)
        .layer(auth)
        .layer(OriginLayer::localhost());
    serve_axum(app).await
}

/// The layers that need an authenticated caller, and the axum extractor, without the auth
/// layer in front: each fails closed.
async fn without_auth() -> TestServer {
    let auth = AuthLayer::new(tokens());
    let policy = OperationScopes::parse(quickstart::DEFAULT_TOOL_SCOPES).unwrap();
    let app = Router::new()
        .route("/admin", post(ok))
        .route_layer(auth.require_scopes(admin()))
        .route("/mcp", post(ok).layer(auth.mcp_scopes(policy)))
        .route(
            "/who",
            post(|who: AuthInfo| async move { who.subject().to_owned() }),
        )
        .fallback_service(metadata().into_service());
    serve_axum(app).await
}

fn mcp_call(tool: &str) -> String {
    serde_json::json!({
        "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": tool, "arguments": {"text": "hello"}}
    })
    .to_string()
}

/// One request: method, path, token, extra headers, body; and the refusal expected.
struct Case {
    label: &'static str,
    method: &'static str,
    path: &'static str,
    token: Option<&'static str>,
    headers: Vec<(&'static str, &'static str)>,
    body: String,
    status: u16,
}

fn case(label: &'static str, method: &'static str, path: &'static str, status: u16) -> Case {
    Case {
        label,
        method,
        path,
        token: None,
        headers: Vec::new(),
        body: String::new(),
        status,
    }
}

impl Case {
    fn token(mut self, token: &'static str) -> Self {
        self.token = Some(token);
        self
    }
    fn header(mut self, name: &'static str, value: &'static str) -> Self {
        self.headers.push((name, value));
        self
    }
    fn mcp(self, body: String) -> Self {
        let mut c = self
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream");
        c.body = body;
        c
    }

    /// Sends it; returns a description of what is wrong, if anything.
    async fn run(&self, server: &TestServer) -> Option<String> {
        let method = self.method.parse().unwrap();
        let mut req = client()
            .request(method, server.url(self.path))
            .body(self.body.clone());
        if let Some(t) = self.token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        for (k, v) in &self.headers {
            req = req.header(*k, *v);
        }
        let res = req.send().await.unwrap();
        let cache = res.headers().get("cache-control").cloned();
        let status = res.status().as_u16();
        (status != self.status || cache.as_ref().is_none_or(|v| v != "no-store")).then(|| {
            format!(
                "{}: {status} (expected {}), cache-control {cache:?}",
                self.label, self.status
            )
        })
    }
}

fn auth_cases() -> Vec<Case> {
    vec![
        case("auth: no credentials", "POST", "/mcp", 401),
        case("auth: malformed", "POST", "/mcp", 400).header("authorization", "Bearer a b"),
        case("auth: wrong token", "POST", "/mcp", 401).token(WRONG),
        case("auth: cannot check now", "POST", "/mcp", 503).token(DOWN),
        case("auth: over HTTP/1.1 with a gRPC type", "POST", "/mcp", 401)
            .header("content-type", "application/grpc"),
    ]
}

fn stack_cases() -> Vec<Case> {
    vec![
        case("require_scopes: scope missing", "POST", "/admin", 403).token(READER),
        case("mcp scopes: scope missing", "POST", "/mcp", 403)
            .token(NOBODY)
            .mcp(mcp_call("write_note")),
        case("mcp scopes: unreadable", "POST", "/mcp", 400)
            .token(READER)
            .mcp("not json".to_owned()),
        case("mcp scopes: too large", "POST", "/mcp", 413)
            .token(READER)
            .mcp(format!("{:1024}", mcp_call("echo"))),
        case("origin: not allowed", "POST", "/mcp", 403)
            .token(READER)
            .header("origin", "https://evil.example"),
        case(
            "metadata: unknown document",
            "GET",
            "/.well-known/oauth-protected-resource/other",
            404,
        ),
        case("metadata: method not allowed", "POST", METADATA, 405),
    ]
}

fn unguarded_cases() -> Vec<Case> {
    vec![
        case("require_scopes: no auth layer", "POST", "/admin", 401).token(READER),
        case("mcp scopes: no auth layer", "POST", "/mcp", 401)
            .token(READER)
            .mcp(mcp_call("echo")),
        case("axum extractor: no auth layer", "POST", "/who", 500),
        case("MetadataService: another path", "GET", "/elsewhere", 404),
        case("MetadataService: method not allowed", "POST", METADATA, 405),
    ]
}

#[tokio::test]
async fn every_refusal_of_every_layer_is_no_store() {
    tokio::time::timeout(LIMIT, async {
        let mut wrong = Vec::new();
        let mut walked = 0;
        for descriptions in [false, true] {
            let server = full_stack(descriptions).await;
            for c in auth_cases().into_iter().chain(stack_cases()) {
                walked += 1;
                wrong.extend(c.run(&server).await);
            }
        }
        let server = without_auth().await;
        for c in unguarded_cases() {
            walked += 1;
            wrong.extend(c.run(&server).await);
        }
        assert_eq!(walked, 2 * 12 + 5);
        assert!(wrong.is_empty(), "{wrong:#?}");
    })
    .await
    .expect("the test took too long");
}
