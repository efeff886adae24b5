//! An RFC 7662 introspection endpoint of our own on 127.0.0.1, for the introspection tests:
//! the test says what each token's answer is, which client credentials the endpoint accepts
//! (it decodes the Basic header as RFC 6749 §2.3.1 says, or reads the form), and what goes
//! wrong (a status, garbage, an oversized body, a delay, a redirect); it counts the calls and
//! the most calls it had in the air at once. Servers that hang or reset every connection are
//! separate ([`hanging_server`], [`resetting_server`]).
//!
//! Include it with `mod common;` and
//! `#[path = "common/introspection_server.rs"] mod introspection_server;`.
#![allow(dead_code)]

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{
    Router,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use base64::{Engine as _, engine::general_purpose::STANDARD};
use serde_json::{Value, json};
use tokio::{io::AsyncReadExt, net::TcpListener};

use crate::common::{self, TestServer};

/// How the endpoint wants this server to authenticate.
#[derive(Clone, Debug)]
pub enum Expect {
    Basic { id: String, secret: String },
    Post { id: String, secret: String },
}

/// What a call gets, besides its answer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fault {
    None,
    Status(u16),
    Garbage,
    /// A JSON answer over the 1 MiB cap.
    Oversize,
    /// A `307` to `/elsewhere`, which would answer `active` for every token.
    Redirect,
}

pub struct State_ {
    answers: Mutex<HashMap<String, Value>>,
    expect: Mutex<Expect>,
    fault: Mutex<Fault>,
    delay: Mutex<Duration>,
    calls: AtomicUsize,
    elsewhere: AtomicUsize,
    in_air: AtomicUsize,
    max_in_air: AtomicUsize,
    /// The form of the last call, decoded (the token included: the test's own).
    last_form: Mutex<HashMap<String, String>>,
    /// The `User-Agent` of every request, metadata fetches and calls, in order.
    user_agents: Mutex<Vec<String>>,
}

fn record_user_agent(state: &State_, headers: &HeaderMap) {
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    state.user_agents.lock().unwrap().push(agent);
}

/// The endpoint, running; stopped when dropped.
pub struct Endpoint {
    pub state: Arc<State_>,
    pub server: TestServer,
}

/// Decodes `application/x-www-form-urlencoded` text (`+` is a space).
pub fn form_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

fn parse_form(body: &str) -> HashMap<String, String> {
    body.split('&')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            Some((form_decode(k)?, form_decode(v)?))
        })
        .collect()
}

/// Whether the call authenticates as `expect` says.
fn authenticated(expect: &Expect, headers: &HeaderMap, form: &HashMap<String, String>) -> bool {
    match expect {
        Expect::Basic { id, secret } => {
            let Some(value) = headers.get(header::AUTHORIZATION) else {
                return false;
            };
            let Some(b64) = value.to_str().ok().and_then(|v| v.strip_prefix("Basic ")) else {
                return false;
            };
            let Some(pair) = STANDARD
                .decode(b64)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
            else {
                return false;
            };
            let Some((i, s)) = pair.split_once(':') else {
                return false;
            };
            form_decode(i).as_deref() == Some(id.as_str())
                && form_decode(s).as_deref() == Some(secret.as_str())
                && !form.contains_key("client_secret")
        }
        Expect::Post { id, secret } => {
            headers.get(header::AUTHORIZATION).is_none()
                && form.get("client_id") == Some(id)
                && form.get("client_secret") == Some(secret)
        }
    }
}

/// Counts a call in the air while it lives.
struct InAir(Arc<State_>);

impl InAir {
    fn new(state: Arc<State_>) -> Self {
        let now = state.in_air.fetch_add(1, Ordering::SeqCst) + 1;
        state.max_in_air.fetch_max(now, Ordering::SeqCst);
        Self(state)
    }
}

impl Drop for InAir {
    fn drop(&mut self) {
        self.0.in_air.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn introspect(
    State(state): State<Arc<State_>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    state.calls.fetch_add(1, Ordering::SeqCst);
    record_user_agent(&state, &headers);
    let _in_air = InAir::new(state.clone());
    let delay = *state.delay.lock().unwrap();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let form = parse_form(&body);
    *state.last_form.lock().unwrap() = form.clone();
    let json_type = [(header::CONTENT_TYPE, "application/json")];
    match *state.fault.lock().unwrap() {
        Fault::None => {}
        Fault::Status(code) => {
            return (StatusCode::from_u16(code).unwrap(), json_type, "{}").into_response();
        }
        Fault::Garbage => return (json_type, "{\"active\": tr").into_response(),
        Fault::Oversize => {
            let padding = " ".repeat(2 << 20);
            return (json_type, format!("{{\"active\": false{padding}}}")).into_response();
        }
        Fault::Redirect => {
            return (
                StatusCode::TEMPORARY_REDIRECT,
                [(header::LOCATION, "/elsewhere")],
            )
                .into_response();
        }
    }
    if !authenticated(&state.expect.lock().unwrap(), &headers, &form) {
        let challenge = [(header::WWW_AUTHENTICATE, "Basic realm=\"introspection\"")];
        return (
            StatusCode::UNAUTHORIZED,
            challenge,
            "{\"error\":\"invalid_client\"}",
        )
            .into_response();
    }
    if form.get("token_type_hint").map(String::as_str) != Some("access_token") {
        return (StatusCode::BAD_REQUEST, "{\"error\":\"invalid_request\"}").into_response();
    }
    let Some(token) = form.get("token") else {
        return (StatusCode::BAD_REQUEST, "{\"error\":\"invalid_request\"}").into_response();
    };
    let answer = state
        .answers
        .lock()
        .unwrap()
        .get(token)
        .cloned()
        .unwrap_or_else(|| json!({ "active": false }));
    (json_type, answer.to_string()).into_response()
}

async fn elsewhere(State(state): State<Arc<State_>>) -> Response {
    state.elsewhere.fetch_add(1, Ordering::SeqCst);
    let answer = json!({"active": true, "sub": "redirected", "exp": 9_999_999_999u64,
        "aud": "https://mcp.example.com/mcp"});
    (
        [(header::CONTENT_TYPE, "application/json")],
        answer.to_string(),
    )
        .into_response()
}

impl Endpoint {
    /// An endpoint that accepts `expect`'s credentials and answers `active: false` for every
    /// token until told otherwise. `metadata`: also serve RFC 8414 metadata for the issuer
    /// `http://127.0.0.1:PORT` naming the endpoint (and no `jwks_uri`).
    pub async fn start(expect: Expect) -> Self {
        let state = Arc::new(State_ {
            answers: Mutex::new(HashMap::new()),
            expect: Mutex::new(expect),
            fault: Mutex::new(Fault::None),
            delay: Mutex::new(Duration::ZERO),
            calls: AtomicUsize::new(0),
            elsewhere: AtomicUsize::new(0),
            in_air: AtomicUsize::new(0),
            max_in_air: AtomicUsize::new(0),
            last_form: Mutex::new(HashMap::new()),
            user_agents: Mutex::new(Vec::new()),
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let metadata = json!({
            "issuer": base,
            "introspection_endpoint": format!("{base}/introspect"),
            "token_endpoint": format!("{base}/token"),
        })
        .to_string();
        let app = Router::new()
            .route("/introspect", post(introspect))
            .route("/elsewhere", post(elsewhere))
            .route(
                "/.well-known/oauth-authorization-server",
                get(
                    move |State(state): State<Arc<State_>>, headers: HeaderMap| async move {
                        record_user_agent(&state, &headers);
                        ([(header::CONTENT_TYPE, "application/json")], metadata)
                    },
                ),
            )
            .with_state(state.clone());
        Self {
            state,
            server: common::serve_axum_on(listener, app),
        }
    }

    /// The endpoint's URL.
    pub fn url(&self) -> String {
        self.server.url("/introspect")
    }

    /// The issuer whose metadata this server serves.
    pub fn issuer(&self) -> String {
        self.server.url("")
    }

    pub fn answer(&self, token: &str, answer: Value) {
        self.state
            .answers
            .lock()
            .unwrap()
            .insert(token.to_owned(), answer);
    }

    pub fn set_fault(&self, fault: Fault) {
        *self.state.fault.lock().unwrap() = fault;
    }

    pub fn set_delay(&self, delay: Duration) {
        *self.state.delay.lock().unwrap() = delay;
    }

    pub fn calls(&self) -> usize {
        self.state.calls.load(Ordering::SeqCst)
    }

    /// Calls that reached the redirect's target.
    pub fn elsewhere(&self) -> usize {
        self.state.elsewhere.load(Ordering::SeqCst)
    }

    pub fn max_in_air(&self) -> usize {
        self.state.max_in_air.load(Ordering::SeqCst)
    }

    pub fn last_form(&self) -> HashMap<String, String> {
        self.state.last_form.lock().unwrap().clone()
    }

    /// The `User-Agent` of every request so far (metadata fetches and calls), in order.
    pub fn user_agents(&self) -> Vec<String> {
        self.state.user_agents.lock().unwrap().clone()
    }
}

/// A server that accepts every connection and never answers (each held for at most 30 s);
/// counts the connections.
pub async fn hanging_server() -> (TestServer, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    let server = common::serve_with(move |listener: TcpListener| async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut sink = Vec::new();
                let _ =
                    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut sink))
                        .await;
            });
        }
    })
    .await;
    (server, count)
}

/// A server that resets every connection at once (`SO_LINGER` 0); counts the connections.
pub async fn resetting_server() -> (TestServer, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    let server = common::serve_with(move |listener: TcpListener| async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            counter.fetch_add(1, Ordering::SeqCst);
            let _ = stream.set_zero_linger();
            drop(stream);
        }
    })
    .await;
    (server, count)
}
