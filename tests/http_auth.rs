//! The auth layer over real HTTP: an axum 0.8 server on 127.0.0.1 and a real client (reqwest,
//! or raw TCP where reqwest cannot express the request). No mocks.
//!
//! Covers the bad-input table (RFC 6750 §3.1, RFC 7617), every method on the MCP path, scopes
//! and `insufficient_scope`, `error_description`, the no-passthrough rule, the axum extractor,
//! two verifiers (Bearer + Basic) and token rotation.

mod common;

use axum::{
    Router,
    routing::{get, post},
};
use base64::{Engine as _, engine::general_purpose::STANDARD};
use common::TestServer;
use http::{HeaderMap, HeaderValue, Method, header::AUTHORIZATION};
use mcp_server_auth::{
    AuthInfo, AuthLayer, ProtectedResourceMetadata, ResourceUrl, ScopeRequirement, ScopeSet,
    Verifier, VerifierExt, basic::BasicAuth, bearer::StaticBearer,
};

const GOOD: &str = "good-token-0123456789abcdef";
const WRONG: &str = "wrong-token-0123456789abcdef";

const B_PLAIN: &str = r#"Bearer realm="mcp""#;
const B_INVALID_TOKEN: &str = r#"Bearer realm="mcp", error="invalid_token""#;
const B_INVALID_REQUEST: &str = r#"Bearer realm="mcp", error="invalid_request""#;
const BASIC: &str = r#"Basic realm="mcp", charset="UTF-8""#;

const BODY_UNAUTHORIZED: &str = r#"{"error":"unauthorized"}"#;
const BODY_INVALID_TOKEN: &str = r#"{"error":"invalid_token"}"#;
const BODY_INVALID_REQUEST: &str = r#"{"error":"invalid_request"}"#;
const BODY_INSUFFICIENT: &str = r#"{"error":"insufficient_scope"}"#;

const METADATA_URL: &str = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn bearer() -> StaticBearer {
    StaticBearer::new([("ci", GOOD)]).unwrap()
}

fn basic() -> BasicAuth {
    BasicAuth::builder()
        .user("alice", "open:sesame")
        .build()
        .unwrap()
}

fn basic_value(raw: &[u8]) -> Vec<u8> {
    format!("Basic {}", STANDARD.encode(raw)).into_bytes()
}

fn bearer_value(token: &str) -> String {
    format!("Bearer {token}")
}

/// Answers with who was accepted, so every 200 says which identity got through.
async fn whoami(who: AuthInfo) -> String {
    format!("{} {}", who.subject(), who.method())
}

/// `/mcp` with POST, GET and DELETE handlers (the streamable HTTP methods), behind `layer`.
fn app<V: Verifier>(layer: AuthLayer<V>) -> Router {
    Router::new()
        .route("/mcp", post(whoami).get(whoami).delete(whoami))
        .layer(layer)
}

fn metadata() -> ProtectedResourceMetadata {
    ProtectedResourceMetadata::builder(ResourceUrl::parse("https://mcp.example.com/mcp").unwrap())
        .authorization_server("https://auth.example.com")
        .scopes_supported(["mcp:read"])
        .build()
        .unwrap()
}

/// What came back, whichever client sent the request.
#[derive(Debug)]
struct Reply {
    status: u16,
    /// Every `WWW-Authenticate` field line, in order.
    challenges: Vec<String>,
    /// Every header, names lowercased, in order.
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    async fn from_reqwest(res: reqwest::Response) -> Self {
        let status = res.status().as_u16();
        let challenges = common::challenges(&res);
        let headers = res
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = res.text().await.unwrap();
        Self {
            status,
            challenges,
            headers,
            body,
        }
    }

    /// Parses the raw response returned by [`common::raw_request`] (the body must be
    /// `Content-Length`-delimited, which every response in these tests is).
    fn from_raw(status: u16, text: &str) -> Self {
        let (head, body) = text
            .split_once("\r\n\r\n")
            .expect("a complete response head");
        let headers: Vec<(String, String)> = head
            .split("\r\n")
            .skip(1)
            .map(|line| {
                let (k, v) = line.split_once(':').expect("a header line");
                (k.trim().to_ascii_lowercase(), v.trim().to_owned())
            })
            .collect();
        let challenges = headers
            .iter()
            .filter(|(k, _)| k == "www-authenticate")
            .map(|(_, v)| v.clone())
            .collect();
        Self {
            status,
            challenges,
            headers,
            body: body.to_owned(),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// How a table row sends its request.
#[derive(Debug, Clone)]
enum How {
    /// reqwest, POST to `path`, with these `Authorization` field values (raw bytes), in order.
    Reqwest { path: String, fields: Vec<Vec<u8>> },
    /// Raw HTTP/1.1 over TCP, POST /mcp, one `Authorization:` line per entry with exactly these
    /// bytes after `Authorization: `.
    Raw { fields: Vec<Vec<u8>> },
}

fn fields(values: &[&[u8]]) -> How {
    How::Reqwest {
        path: "/mcp".to_owned(),
        fields: values.iter().map(|v| v.to_vec()).collect(),
    }
}

fn field(value: impl AsRef<[u8]>) -> How {
    fields(&[value.as_ref()])
}

async fn send(server: &TestServer, how: &How) -> Reply {
    match how {
        How::Reqwest { path, fields } => {
            let mut req = common::client().post(server.url(path));
            for f in fields {
                req = req.header(AUTHORIZATION, HeaderValue::from_bytes(f).unwrap());
            }
            Reply::from_reqwest(req.send().await.unwrap()).await
        }
        How::Raw { fields } => {
            let mut bytes = b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n"
                .to_vec();
            for f in fields {
                bytes.extend_from_slice(b"Authorization: ");
                bytes.extend_from_slice(f);
                bytes.extend_from_slice(b"\r\n");
            }
            bytes.extend_from_slice(b"\r\n");
            let (status, text) = common::raw_request(server.addr, &bytes).await;
            Reply::from_raw(status, &text)
        }
    }
}

async fn get_with(server: &TestServer, path: &str, auth: Option<&str>) -> Reply {
    let mut req = common::client().get(server.url(path));
    if let Some(a) = auth {
        req = req.header(AUTHORIZATION, a);
    }
    Reply::from_reqwest(req.send().await.unwrap()).await
}

async fn post_with(server: &TestServer, path: &str, auth: Option<&str>) -> Reply {
    let mut req = common::client().post(server.url(path));
    if let Some(a) = auth {
        req = req.header(AUTHORIZATION, a);
    }
    Reply::from_reqwest(req.send().await.unwrap()).await
}

/// Every refusal is uncacheable JSON.
fn assert_refusal_headers(reply: &Reply, context: &str) {
    assert_eq!(
        reply.header("cache-control"),
        Some("no-store"),
        "{context}: Cache-Control"
    );
    assert_eq!(
        reply.header("content-type"),
        Some("application/json"),
        "{context}: Content-Type"
    );
}

// ---------------------------------------------------------------------------------------------
// 1. The bad-input table
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Expect {
    status: u16,
    challenges: Vec<&'static str>,
    /// The exact body: `"<subject> <method>"` for a 200, the JSON error otherwise.
    body: &'static str,
}

fn accepted(who: &'static str) -> Expect {
    Expect {
        status: 200,
        challenges: vec![],
        body: who,
    }
}

fn refused(status: u16, challenges: &[&'static str], body: &'static str) -> Expect {
    Expect {
        status,
        challenges: challenges.to_vec(),
        body,
    }
}

struct Case {
    name: &'static str,
    how: How,
    /// Against `StaticBearer.or(BasicAuth)`.
    combined: Expect,
    /// Against `StaticBearer` alone (Basic is then an unsupported scheme).
    bearer_only: Expect,
}

fn bad_input_table() -> Vec<Case> {
    let ten_kib = {
        let mut v = b"Bearer ".to_vec();
        v.resize(10 * 1024, b'a');
        v
    };
    let both_malformed = |bearer_only: Expect| {
        (
            refused(400, &[B_INVALID_REQUEST, BASIC], BODY_INVALID_REQUEST),
            bearer_only,
        )
    };
    let malformed_bearer_only = refused(400, &[B_INVALID_REQUEST], BODY_INVALID_REQUEST);
    // Malformed Basic credentials: 400, but the Bearer line carries no error (Bearer was not used).
    let basic_malformed = |bearer_only: Expect| {
        (
            refused(400, &[B_PLAIN, BASIC], BODY_INVALID_REQUEST),
            bearer_only,
        )
    };
    let unsupported_bearer_only = refused(401, &[B_PLAIN], BODY_UNAUTHORIZED);
    let no_error = (
        refused(401, &[B_PLAIN, BASIC], BODY_UNAUTHORIZED),
        refused(401, &[B_PLAIN], BODY_UNAUTHORIZED),
    );
    let ok_ci = (accepted("ci static_bearer"), accepted("ci static_bearer"));

    let mut cases = Vec::new();
    let mut row = |name, how, (combined, bearer_only): (Expect, Expect)| {
        cases.push(Case {
            name,
            how,
            combined,
            bearer_only,
        })
    };

    row(
        "good token (baseline)",
        field(bearer_value(GOOD)),
        ok_ci.clone(),
    );
    row("no Authorization header", fields(&[]), no_error.clone());
    row(
        "empty Authorization value",
        field(""),
        both_malformed(malformed_bearer_only.clone()),
    );
    row(
        "`Bearer` with no token",
        field("Bearer"),
        both_malformed(malformed_bearer_only.clone()),
    );
    row(
        "`Bearer` followed only by spaces",
        field("Bearer    "),
        both_malformed(malformed_bearer_only.clone()),
    );
    row(
        "lowercase `bearer` scheme",
        field(format!("bearer {GOOD}")),
        ok_ci.clone(),
    );
    row(
        "uppercase `BEARER` scheme",
        field(format!("BEARER {GOOD}")),
        ok_ci.clone(),
    );
    row(
        "several spaces after the scheme",
        field(format!("Bearer   {GOOD}")),
        ok_ci.clone(),
    );
    row(
        "`Bearer a b` (space inside the token)",
        field("Bearer a b"),
        both_malformed(malformed_bearer_only.clone()),
    );
    row(
        "token outside b64token (`Bearer a,b`)",
        field("Bearer a,b"),
        both_malformed(malformed_bearer_only.clone()),
    );
    row(
        "non-ASCII token bytes",
        field(b"Bearer t\xc3\xa9st"),
        both_malformed(malformed_bearer_only.clone()),
    );
    row(
        "non-ASCII bytes after an unknown scheme",
        field(b"Digest t\xc3\xa9st"),
        both_malformed(malformed_bearer_only.clone()),
    );
    row(
        "two Authorization fields, both good",
        fields(&[bearer_value(GOOD).as_bytes(), bearer_value(GOOD).as_bytes()]),
        both_malformed(malformed_bearer_only.clone()),
    );
    row(
        "two Authorization fields, Bearer and Basic, both good",
        fields(&[
            bearer_value(GOOD).as_bytes(),
            &basic_value(b"alice:open:sesame"),
        ]),
        both_malformed(malformed_bearer_only.clone()),
    );
    row(
        "10 KiB Authorization header",
        field(&ten_kib),
        both_malformed(malformed_bearer_only.clone()),
    );
    row(
        "wrong token",
        field(bearer_value(WRONG)),
        (
            refused(401, &[B_INVALID_TOKEN, BASIC], BODY_INVALID_TOKEN),
            refused(401, &[B_INVALID_TOKEN], BODY_INVALID_TOKEN),
        ),
    );
    row(
        "good token with `=` padding appended (a different token)",
        field(format!("Bearer {GOOD}==")),
        (
            refused(401, &[B_INVALID_TOKEN, BASIC], BODY_INVALID_TOKEN),
            refused(401, &[B_INVALID_TOKEN], BODY_INVALID_TOKEN),
        ),
    );
    row(
        "good token, trailing space (reqwest)",
        field(format!("Bearer {GOOD} ")),
        ok_ci.clone(),
    );
    row(
        "good token, trailing space and tab (raw TCP)",
        How::Raw {
            fields: vec![format!("Bearer {GOOD} \t").into_bytes()],
        },
        ok_ci.clone(),
    );
    row(
        "good token, leading and trailing spaces (raw TCP)",
        How::Raw {
            fields: vec![format!("   Bearer {GOOD}   ").into_bytes()],
        },
        ok_ci.clone(),
    );
    row(
        "Basic with invalid base64",
        field("Basic !!!not-base64!!!"),
        basic_malformed(unsupported_bearer_only.clone()),
    );
    row(
        "Basic with unpadded base64",
        field("Basic YWxpY2U6b3BlbjpzZXNhbWU"),
        basic_malformed(unsupported_bearer_only.clone()),
    );
    row(
        "Basic without a colon",
        field(basic_value(b"alice")),
        basic_malformed(unsupported_bearer_only.clone()),
    );
    row(
        "Basic with non-UTF-8 bytes",
        field(basic_value(&[0xff, 0xfe, b':', b'x'])),
        basic_malformed(unsupported_bearer_only.clone()),
    );
    row(
        "Basic with a control character",
        field(basic_value(b"alice:open\x07sesame")),
        basic_malformed(unsupported_bearer_only.clone()),
    );
    row(
        "`Basic` with no credentials",
        field("Basic"),
        basic_malformed(unsupported_bearer_only.clone()),
    );
    row(
        "Basic with a colon inside the password",
        field(basic_value(b"alice:open:sesame")),
        (accepted("alice basic"), unsupported_bearer_only.clone()),
    );
    row(
        "lowercase `basic` scheme",
        field(format!("basic {}", STANDARD.encode("alice:open:sesame"))),
        (accepted("alice basic"), unsupported_bearer_only.clone()),
    );
    row(
        "Basic with a wrong password",
        field(basic_value(b"alice:open-sesame")),
        (
            refused(401, &[B_PLAIN, BASIC], BODY_UNAUTHORIZED),
            unsupported_bearer_only.clone(),
        ),
    );
    row(
        "Basic with an unknown user",
        field(basic_value(b"mallory:open:sesame")),
        (
            refused(401, &[B_PLAIN, BASIC], BODY_UNAUTHORIZED),
            unsupported_bearer_only.clone(),
        ),
    );
    row(
        "Basic carrying the bearer token as password",
        field(basic_value(format!("ci:{GOOD}").as_bytes())),
        (
            refused(401, &[B_PLAIN, BASIC], BODY_UNAUTHORIZED),
            unsupported_bearer_only.clone(),
        ),
    );
    row(
        "token only in the query string",
        How::Reqwest {
            path: format!("/mcp?access_token={GOOD}"),
            fields: vec![],
        },
        no_error.clone(),
    );
    row(
        "unknown scheme `Digest`",
        field(r#"Digest username="alice", realm="mcp", nonce="abc", uri="/mcp", response="0123""#),
        no_error.clone(),
    );
    row(
        "unknown scheme `Token <good>`",
        field(format!("Token {GOOD}")),
        no_error.clone(),
    );
    row("token without a scheme", field(GOOD), no_error.clone());
    cases
}

async fn run_table(server: &TestServer, combined: bool) -> usize {
    let mode = if combined {
        "bearer+basic"
    } else {
        "bearer only"
    };
    let mut failures = Vec::new();
    let cases = bad_input_table();
    for case in &cases {
        let expect = if combined {
            &case.combined
        } else {
            &case.bearer_only
        };
        let reply = send(server, &case.how).await;
        let mut problems = Vec::new();
        if reply.status != expect.status {
            problems.push(format!("status {} != {}", reply.status, expect.status));
        }
        if reply.challenges != expect.challenges {
            problems.push(format!(
                "WWW-Authenticate {:?} != {:?}",
                reply.challenges, expect.challenges
            ));
        }
        if reply.body != expect.body {
            problems.push(format!("body {:?} != {:?}", reply.body, expect.body));
        }
        if expect.status != 200 {
            if reply.header("cache-control") != Some("no-store") {
                problems.push(format!("Cache-Control {:?}", reply.header("cache-control")));
            }
            if reply.header("content-type") != Some("application/json") {
                problems.push(format!("Content-Type {:?}", reply.header("content-type")));
            }
        }
        if !problems.is_empty() {
            failures.push(format!("[{mode}] {}: {}", case.name, problems.join("; ")));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    cases.len()
}

#[tokio::test]
async fn bad_input_table_bearer_or_basic() {
    let server = common::serve_axum(app(AuthLayer::new(bearer().or(basic())))).await;
    let rows = run_table(&server, true).await;
    assert!(rows >= 30);
}

#[tokio::test]
async fn bad_input_table_bearer_only() {
    let server = common::serve_axum(app(AuthLayer::new(bearer()))).await;
    let rows = run_table(&server, false).await;
    assert!(rows >= 30);
}

/// `max_header_bytes` is a hard limit on the raw field value: at the limit the header is read
/// (and the token refused as unknown), one byte over it is `400`.
#[tokio::test]
async fn header_size_limit_is_exact() {
    let layer = AuthLayer::builder(bearer())
        .max_header_bytes(64)
        .build()
        .unwrap();
    let server = common::serve_axum(app(layer)).await;
    let at_limit = format!("Bearer {}", "a".repeat(64 - "Bearer ".len()));
    assert_eq!(at_limit.len(), 64);
    let r = post_with(&server, "/mcp", Some(&at_limit)).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.challenges, [B_INVALID_TOKEN]);
    let over = format!("{at_limit}a");
    let r = post_with(&server, "/mcp", Some(&over)).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.challenges, [B_INVALID_REQUEST]);
    assert_eq!(r.body, BODY_INVALID_REQUEST);
    assert!(
        AuthLayer::builder(bearer())
            .max_header_bytes(63)
            .build()
            .is_err()
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Every method on the MCP path is challenged
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn every_method_and_unknown_routes_are_challenged() {
    let server = common::serve_axum(app(AuthLayer::new(bearer()))).await;
    let client = common::client();
    let methods = [
        Method::POST,
        Method::GET,
        Method::DELETE,
        Method::PUT,
        Method::PATCH,
    ];
    for method in methods.clone() {
        let mut req = client.request(method.clone(), server.url("/mcp"));
        if method == Method::GET {
            req = req.header(http::header::ACCEPT, "text/event-stream");
        }
        if method == Method::POST {
            req = req
                .header(http::header::CONTENT_TYPE, "application/json")
                .header(http::header::ACCEPT, "application/json, text/event-stream")
                .body(r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#);
        }
        let r = Reply::from_reqwest(req.send().await.unwrap()).await;
        assert_eq!(r.status, 401, "{method} /mcp");
        assert_eq!(r.challenges, [B_PLAIN], "{method} /mcp");
        assert_eq!(r.body, BODY_UNAUTHORIZED, "{method} /mcp");
        assert_refusal_headers(&r, &format!("{method} /mcp"));
    }
    for method in [Method::GET, Method::POST, Method::DELETE] {
        for path in ["/nope", "/", "/mcp/extra"] {
            let r = Reply::from_reqwest(
                client
                    .request(method.clone(), server.url(path))
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert_eq!(r.status, 401, "{method} {path}: not 404/405 before auth");
            assert_eq!(r.challenges, [B_PLAIN], "{method} {path}");
        }
    }
    // With a good token the same requests reach the router, so the 401s above came from the
    // layer and not from a missing route.
    let good = bearer_value(GOOD);
    let r = Reply::from_reqwest(
        client
            .put(server.url("/mcp"))
            .header(AUTHORIZATION, &good)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 405);
    let r = get_with(&server, "/nope", Some(&good)).await;
    assert_eq!(r.status, 404);
    for method in [Method::POST, Method::GET, Method::DELETE] {
        let r = Reply::from_reqwest(
            client
                .request(method.clone(), server.url("/mcp"))
                .header(AUTHORIZATION, &good)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(
            (r.status, r.body.as_str()),
            (200, "ci static_bearer"),
            "{method}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Scopes
// ---------------------------------------------------------------------------------------------

const READER: &str = "reader-token-0123456789abcdef";
const WRITER: &str = "writer-token-0123456789abcdef";

fn scoped_tokens() -> StaticBearer {
    StaticBearer::builder()
        .token_with_scopes("reader", READER, ScopeSet::parse("mcp:read").unwrap())
        .token_with_scopes(
            "writer",
            WRITER,
            ScopeSet::parse("mcp:read mcp:write").unwrap(),
        )
        .build()
        .unwrap()
}

fn read_write() -> ScopeRequirement {
    ScopeRequirement::all_of(["mcp:read", "mcp:write"]).unwrap()
}

#[tokio::test]
async fn missing_scope_is_403_naming_the_full_required_set() {
    let layer = AuthLayer::builder(scoped_tokens())
        .required_scopes(read_write())
        .build()
        .unwrap();
    let server = common::serve_axum(app(layer)).await;

    let r = post_with(&server, "/mcp", Some(&bearer_value(READER))).await;
    assert_eq!(r.status, 403);
    assert_eq!(
        r.challenges,
        [r#"Bearer realm="mcp", scope="mcp:read mcp:write", error="insufficient_scope""#]
    );
    assert_eq!(r.body, BODY_INSUFFICIENT);
    assert_refusal_headers(&r, "403");

    let r = post_with(&server, "/mcp", Some(&bearer_value(WRITER))).await;
    assert_eq!((r.status, r.body.as_str()), (200, "writer static_bearer"));

    // The 401s name the required scopes too (the scope to ask for at first contact).
    let r = post_with(&server, "/mcp", None).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.challenges,
        [r#"Bearer realm="mcp", scope="mcp:read mcp:write""#]
    );
    let r = post_with(&server, "/mcp", Some(&bearer_value(WRONG))).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.challenges,
        [r#"Bearer realm="mcp", scope="mcp:read mcp:write", error="invalid_token""#]
    );
}

#[tokio::test]
async fn missing_scope_with_metadata_points_at_the_metadata() {
    let layer = AuthLayer::builder(scoped_tokens())
        .metadata(metadata())
        .required_scopes(read_write())
        .build()
        .unwrap();
    let server = common::serve_axum(app(layer)).await;

    let r = post_with(&server, "/mcp", Some(&bearer_value(READER))).await;
    assert_eq!(r.status, 403);
    assert_eq!(
        r.challenges,
        [format!(
            r#"Bearer resource_metadata="{METADATA_URL}", scope="mcp:read mcp:write", error="insufficient_scope""#
        )]
    );
    assert_eq!(r.body, BODY_INSUFFICIENT);

    let r = post_with(&server, "/mcp", Some(&bearer_value(WRITER))).await;
    assert_eq!((r.status, r.body.as_str()), (200, "writer static_bearer"));

    let r = post_with(&server, "/mcp", None).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.challenges,
        [format!(
            r#"Bearer resource_metadata="{METADATA_URL}", scope="mcp:read mcp:write""#
        )]
    );
}

/// A narrower first-contact `challenge_scope` changes the 401s, never the 403: that one always
/// names the full required set, so a client steps up in one round trip.
#[tokio::test]
async fn challenge_scope_does_not_shrink_the_403_scope() {
    let layer = AuthLayer::builder(scoped_tokens())
        .required_scopes(read_write())
        .challenge_scope(ScopeSet::parse("mcp:read").unwrap())
        .build()
        .unwrap();
    let server = common::serve_axum(app(layer)).await;
    let r = post_with(&server, "/mcp", None).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.challenges, [r#"Bearer realm="mcp", scope="mcp:read""#]);
    let r = post_with(&server, "/mcp", Some(&bearer_value(READER))).await;
    assert_eq!(r.status, 403);
    assert_eq!(
        r.challenges,
        [r#"Bearer realm="mcp", scope="mcp:read mcp:write", error="insufficient_scope""#]
    );
}

/// A Basic user lacking a scope is refused with 403, but with no Bearer `insufficient_scope`
/// challenge: the client did not use Bearer, and a token would not help it.
#[tokio::test]
async fn basic_user_lacking_scopes_gets_403_without_bearer_challenge() {
    let users = BasicAuth::builder()
        .user("alice", "open:sesame")
        .user_with_scopes(
            "bob",
            "builder-pw",
            ScopeSet::parse("mcp:read mcp:write").unwrap(),
        )
        .build()
        .unwrap();
    let layer = AuthLayer::builder(scoped_tokens().or(users))
        .required_scopes(read_write())
        .build()
        .unwrap();
    let server = common::serve_axum(app(layer)).await;

    let alice = String::from_utf8(basic_value(b"alice:open:sesame")).unwrap();
    let r = post_with(&server, "/mcp", Some(&alice)).await;
    assert_eq!(r.status, 403);
    assert!(
        r.challenges.is_empty(),
        "no challenge for a Basic user: {:?}",
        r.challenges
    );
    assert_eq!(r.body, BODY_INSUFFICIENT);
    assert_refusal_headers(&r, "Basic 403");

    let bob = String::from_utf8(basic_value(b"bob:builder-pw")).unwrap();
    let r = post_with(&server, "/mcp", Some(&bob)).await;
    assert_eq!((r.status, r.body.as_str()), (200, "bob basic"));

    // The Bearer 403 on the same layer still has its challenge.
    let r = post_with(&server, "/mcp", Some(&bearer_value(READER))).await;
    assert_eq!(r.status, 403);
    assert_eq!(
        r.challenges,
        [r#"Bearer realm="mcp", scope="mcp:read mcp:write", error="insufficient_scope""#]
    );
}

// ---------------------------------------------------------------------------------------------
// 5. error_description
// ---------------------------------------------------------------------------------------------

/// Checks that `error_description` is the last parameter, quoted, and free of `=`; returns it.
fn description_of(challenge: &str) -> &str {
    let (_, rest) = challenge
        .split_once(", error_description=\"")
        .unwrap_or_else(|| panic!("no error_description in {challenge:?}"));
    let value = rest
        .strip_suffix('"')
        .unwrap_or_else(|| panic!("error_description is not last and quoted: {challenge:?}"));
    assert!(!value.is_empty());
    assert!(
        !value.contains(['=', '"', '\\']),
        "error_description has '=', '\"' or '\\': {value:?}"
    );
    value
}

#[tokio::test]
async fn error_descriptions_when_enabled() {
    let layer = AuthLayer::builder(scoped_tokens())
        .required_scopes(read_write())
        .error_descriptions(true)
        .build()
        .unwrap();
    let server = common::serve_axum(app(layer)).await;

    // (authorization, status, challenge before the description, error code)
    let cases = [
        (
            bearer_value(WRONG),
            401,
            r#"Bearer realm="mcp", scope="mcp:read mcp:write", error="invalid_token""#,
            "invalid_token",
        ),
        (
            "Bearer a b".to_owned(),
            400,
            r#"Bearer realm="mcp", scope="mcp:read mcp:write", error="invalid_request""#,
            "invalid_request",
        ),
        (
            bearer_value(READER),
            403,
            r#"Bearer realm="mcp", scope="mcp:read mcp:write", error="insufficient_scope""#,
            "insufficient_scope",
        ),
    ];
    for (auth, status, prefix, code) in cases {
        let r = post_with(&server, "/mcp", Some(&auth)).await;
        assert_eq!(r.status, status, "{auth}");
        assert_eq!(r.challenges.len(), 1, "{auth}");
        let challenge = &r.challenges[0];
        let description = description_of(challenge);
        assert_eq!(
            challenge,
            &format!(r#"{prefix}, error_description="{description}""#),
            "{auth}"
        );
        let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"error": code, "error_description": description}),
            "{auth}"
        );
    }
    // The fixed texts.
    let r = post_with(&server, "/mcp", Some(&bearer_value(WRONG))).await;
    assert_eq!(
        description_of(&r.challenges[0]),
        "The access token is invalid"
    );

    // No credentials: no error, so no description either (RFC 6750 §3.1).
    let r = post_with(&server, "/mcp", None).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.challenges,
        [r#"Bearer realm="mcp", scope="mcp:read mcp:write""#]
    );
    assert_eq!(r.body, BODY_UNAUTHORIZED);
}

#[tokio::test]
async fn a_value_that_is_not_ascii_is_described_as_such_whatever_its_scheme() {
    // The layer checks ASCII lazily (a parsed b64token or Base64 implies it): the description
    // must still be the one `credentials::authorization` gives, for every scheme.
    let layer = AuthLayer::builder(scoped_tokens().or(basic()))
        .error_descriptions(true)
        .build()
        .unwrap();
    let server = common::serve_axum(app(layer)).await;
    let not_ascii = "Authorization header is not ASCII";
    let cases: [(&[u8], &str); 9] = [
        (b"Bearer t\xc3\xa9st", not_ascii),
        (b"bearer \xc3\xa9", not_ascii),
        (b"Basic \xc3\xa9", not_ascii),
        (b"Digest t\xc3\xa9st", not_ascii),
        (b"B\xc3\xa9arer x", not_ascii),
        (b"DPoP t\xc3\xa9", not_ascii),
        (b"Bearer \xff", not_ascii),
        (b"Bearer a,b", "Bearer token has invalid characters"),
        (b"Basic !!!", "Basic credentials are not base64"),
    ];
    for (value, expected) in cases {
        let r = send(&server, &field(value)).await;
        assert_eq!(r.status, 400, "{value:?}");
        let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(body["error"], "invalid_request", "{value:?}");
        assert_eq!(body["error_description"], expected, "{value:?}");
    }
}

#[tokio::test]
async fn no_error_descriptions_by_default() {
    let layer = AuthLayer::builder(scoped_tokens().or(basic()))
        .required_scopes(read_write())
        .build()
        .unwrap();
    let server = common::serve_axum(app(layer)).await;
    let auths = [
        None,
        Some(bearer_value(WRONG)),
        Some("Bearer a b".to_owned()),
        Some(bearer_value(READER)),
        Some(String::from_utf8(basic_value(b"alice:wrong")).unwrap()),
        Some("Basic !!!".to_owned()),
    ];
    for auth in auths {
        let r = post_with(&server, "/mcp", auth.as_deref()).await;
        assert!(
            matches!(r.status, 400 | 401 | 403),
            "{auth:?}: {}",
            r.status
        );
        for (name, value) in &r.headers {
            assert!(
                !value.contains("error_description"),
                "{auth:?}: {name}: {value}"
            );
        }
        assert!(
            !r.body.contains("error_description"),
            "{auth:?}: {}",
            r.body
        );
        let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(body.as_object().unwrap().len(), 1, "{auth:?}: {}", r.body);
    }
}

// ---------------------------------------------------------------------------------------------
// 6. No token passthrough
// ---------------------------------------------------------------------------------------------

async fn echo_authorization(headers: HeaderMap) -> String {
    match headers.get_all(AUTHORIZATION).iter().next() {
        Some(v) => format!("present: {}", v.to_str().unwrap()),
        None => "absent".to_owned(),
    }
}

fn echo_app<V: Verifier>(layer: AuthLayer<V>) -> Router {
    Router::new()
        .route("/mcp", post(echo_authorization))
        .layer(layer)
}

#[tokio::test]
async fn authorization_header_is_removed_before_the_inner_service() {
    let server = common::serve_axum(echo_app(AuthLayer::new(bearer().or(basic())))).await;
    let r = post_with(&server, "/mcp", Some(&bearer_value(GOOD))).await;
    assert_eq!((r.status, r.body.as_str()), (200, "absent"));
    let alice = String::from_utf8(basic_value(b"alice:open:sesame")).unwrap();
    let r = post_with(&server, "/mcp", Some(&alice)).await;
    assert_eq!((r.status, r.body.as_str()), (200, "absent"));
}

#[tokio::test]
async fn authorization_header_is_forwarded_when_opted_in() {
    let layer = AuthLayer::builder(bearer())
        .forward_authorization_header(true)
        .build()
        .unwrap();
    let server = common::serve_axum(echo_app(layer)).await;
    let r = post_with(&server, "/mcp", Some(&bearer_value(GOOD))).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, format!("present: Bearer {GOOD}"));
}

// ---------------------------------------------------------------------------------------------
// 7. The axum extractor
// ---------------------------------------------------------------------------------------------

async fn maybe(who: Option<AuthInfo>) -> String {
    match who {
        Some(w) => format!("some {} {} [{}]", w.subject(), w.method(), w.scopes()),
        None => "none".to_owned(),
    }
}

#[tokio::test]
async fn axum_extractor() {
    let verifier = scoped_tokens().or(basic());
    let app = Router::new()
        .route("/mcp", post(whoami))
        .route("/maybe", get(maybe))
        .route_layer(AuthLayer::new(verifier))
        // Added after `route_layer`: not protected.
        .route("/open/optional", get(maybe))
        .route("/open/required", get(whoami));
    let server = common::serve_axum(app).await;

    let r = post_with(&server, "/mcp", Some(&bearer_value(READER))).await;
    assert_eq!((r.status, r.body.as_str()), (200, "reader static_bearer"));
    let alice = String::from_utf8(basic_value(b"alice:open:sesame")).unwrap();
    let r = post_with(&server, "/mcp", Some(&alice)).await;
    assert_eq!((r.status, r.body.as_str()), (200, "alice basic"));
    let r = get_with(&server, "/maybe", Some(&bearer_value(WRITER))).await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, "some writer static_bearer [mcp:read mcp:write]")
    );
    // The protected routes are still protected.
    let r = get_with(&server, "/maybe", None).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.challenges, [B_PLAIN, BASIC]);

    // Unprotected: Option<AuthInfo> is None, even when credentials are sent (nothing checked
    // them).
    let r = get_with(&server, "/open/optional", None).await;
    assert_eq!((r.status, r.body.as_str()), (200, "none"));
    let r = get_with(&server, "/open/optional", Some(&bearer_value(WRITER))).await;
    assert_eq!((r.status, r.body.as_str()), (200, "none"));

    // Unprotected: a required AuthInfo is a server configuration error.
    for auth in [None, Some(bearer_value(WRITER))] {
        let r = get_with(&server, "/open/required", auth.as_deref()).await;
        assert_eq!(r.status, 500, "{auth:?}");
        assert!(r.body.contains("AuthLayer"), "{}", r.body);
        assert!(r.challenges.is_empty());
    }
}

// ---------------------------------------------------------------------------------------------
// 9. Two verifiers
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn two_verifiers_two_challenge_lines_bearer_first() {
    let server = common::serve_axum(app(AuthLayer::new(bearer().or(basic())))).await;
    let r = post_with(&server, "/mcp", None).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.challenges, [B_PLAIN, BASIC]);

    // On the wire: two separate field lines, Bearer first.
    let (status, text) = common::raw_request(
        server.addr,
        b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 401);
    let raw = Reply::from_raw(status, &text);
    assert_eq!(raw.challenges, [B_PLAIN, BASIC]);

    // The order of the verifiers does not change the order of the challenges.
    let server = common::serve_axum(app(AuthLayer::new(basic().or(bearer())))).await;
    let r = post_with(&server, "/mcp", None).await;
    assert_eq!(r.challenges, [B_PLAIN, BASIC]);
    let r = post_with(&server, "/mcp", Some(&bearer_value(GOOD))).await;
    assert_eq!((r.status, r.body.as_str()), (200, "ci static_bearer"));

    // Basic alone: only the Basic line.
    let server = common::serve_axum(app(AuthLayer::new(basic()))).await;
    let r = post_with(&server, "/mcp", None).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.challenges, [BASIC]);
    let r = post_with(&server, "/mcp", Some(&bearer_value(GOOD))).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.challenges, [BASIC]);
}

#[tokio::test]
async fn custom_realm_appears_in_both_challenges() {
    let layer = AuthLayer::builder(bearer().or(basic()))
        .realm("tools")
        .build()
        .unwrap();
    let server = common::serve_axum(app(layer)).await;
    let r = post_with(&server, "/mcp", None).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.challenges,
        [
            r#"Bearer realm="tools""#,
            r#"Basic realm="tools", charset="UTF-8""#
        ]
    );
    let r = post_with(&server, "/mcp", Some(&bearer_value(WRONG))).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.challenges,
        [
            r#"Bearer realm="tools", error="invalid_token""#,
            r#"Basic realm="tools", charset="UTF-8""#
        ]
    );
    assert!(
        AuthLayer::builder(bearer())
            .realm("bad \"realm\"")
            .build()
            .is_err()
    );
}

/// With metadata and Basic, the Bearer line carries `resource_metadata` (no realm) and the Basic
/// line the realm (RFC 9110 §11.6.1, RFC 9728 §5.1, RFC 7617 §2).
#[tokio::test]
async fn two_verifiers_with_metadata() {
    let layer = AuthLayer::builder(bearer().or(basic()))
        .metadata(metadata())
        .build()
        .unwrap();
    let server = common::serve_axum(app(layer)).await;
    let r = post_with(&server, "/mcp", None).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.challenges,
        [
            format!(r#"Bearer resource_metadata="{METADATA_URL}", scope="mcp:read""#),
            BASIC.to_owned()
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// 10. Token rotation
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn token_rotation_two_tokens_one_name() {
    const OLD: &str = "old-token-0123456789abcdef";
    const NEW: &str = "new-token-0123456789abcdef";
    const OTHER: &str = "laptop-token-0123456789abcdef";
    let tokens = StaticBearer::builder()
        .token("ci", OLD)
        .token("ci", NEW)
        .token("laptop", OTHER)
        .build()
        .unwrap();
    assert_eq!(tokens.len(), 3);
    let server = common::serve_axum(app(AuthLayer::new(tokens))).await;
    for token in [OLD, NEW] {
        let r = post_with(&server, "/mcp", Some(&bearer_value(token))).await;
        assert_eq!(
            (r.status, r.body.as_str()),
            (200, "ci static_bearer"),
            "{token}"
        );
    }
    let r = post_with(&server, "/mcp", Some(&bearer_value(OTHER))).await;
    assert_eq!((r.status, r.body.as_str()), (200, "laptop static_bearer"));
    let r = post_with(
        &server,
        "/mcp",
        Some(&bearer_value("unknown-token-0123456789abcdef")),
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.challenges, [B_INVALID_TOKEN]);
    assert_eq!(r.body, BODY_INVALID_TOKEN);
    // A prefix of a good token is not good.
    let r = post_with(&server, "/mcp", Some(&bearer_value(&NEW[..NEW.len() - 1]))).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.challenges, [B_INVALID_TOKEN]);
}
