//! A JWKS server of our own on 127.0.0.1 for the remote-key tests (`tests/jwks.rs`,
//! `tests/faults.rs`, `tests/load.rs`): the test controls what it serves (keys, `Cache-Control`,
//! delay, status, garbage, oversize bodies, redirects), what happens to each connection
//! (served, held open unanswered, reset, answered in part), and whether it listens at all; it
//! counts the connections and requests it gets. Also the test keys and tokens, the MCP endpoint
//! behind an `AuthLayer`, and assertions on its answers.
//!
//! Include it with `mod common;` and `#[path = "common/jwks_server.rs"] mod jwks_server;`.
#![allow(dead_code)]

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use axum::{
    Router,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use jsonwebtoken::{Algorithm, EncodingKey, Header, jwk::Jwk};
use mcp_server_auth::{
    AuthInfo, AuthLayer, ResourceUrl,
    jwt::{Issuer, JwtVerifier, RemoteJwksOptions},
};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};

use crate::common::{self, TestServer};

pub const ISSUER: &str = "https://auth.example.com";
pub const RESOURCE: &str = "https://mcp.example.com/mcp";

/// Every test is bounded.
pub async fn bounded<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .expect("the test took more than 30 s")
}

/// Waits until `cond` holds, polling, for at most `limit`.
pub async fn wait_until(limit: Duration, cond: impl Fn() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cond()
}

// ---------------------------------------------------------------------------------------------
// Keys and tokens
// ---------------------------------------------------------------------------------------------

pub struct TestKey {
    pub kid: &'static str,
    pub alg: Algorithm,
    pub encoding: EncodingKey,
    /// The public JWK, with its kid.
    pub jwk: Value,
}

fn test_key(kid: &'static str, alg: Algorithm, pem: &[u8]) -> TestKey {
    mcp_server_auth::jwt::install_crypto_provider().unwrap();
    let encoding = match alg {
        Algorithm::EdDSA => EncodingKey::from_ed_pem(pem).unwrap(),
        Algorithm::ES256 => EncodingKey::from_ec_pem(pem).unwrap(),
        _ => unreachable!(),
    };
    let mut jwk = Jwk::from_encoding_key(&encoding, alg).unwrap();
    jwk.common.key_id = Some(kid.to_owned());
    let jwk = serde_json::to_value(&jwk).unwrap();
    TestKey {
        kid,
        alg,
        encoding,
        jwk,
    }
}

pub fn k1() -> TestKey {
    test_key(
        "k1",
        Algorithm::EdDSA,
        include_bytes!("../keys/jwks-k1-ed25519.pem"),
    )
}
pub fn k2() -> TestKey {
    test_key(
        "k2",
        Algorithm::EdDSA,
        include_bytes!("../keys/jwks-k2-ed25519.pem"),
    )
}
pub fn k3() -> TestKey {
    test_key(
        "k3",
        Algorithm::EdDSA,
        include_bytes!("../keys/jwks-k3-ed25519.pem"),
    )
}
pub fn k4() -> TestKey {
    test_key(
        "k4",
        Algorithm::ES256,
        include_bytes!("../keys/jwks-k4-es256.pem"),
    )
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Valid claims for `iss` and [`RESOURCE`], for ten minutes, with a random `jti`.
pub fn claims(iss: &str) -> Value {
    json!({
        "iss": iss,
        "aud": RESOURCE,
        "sub": "user-1",
        "client_id": "client-1",
        "scope": "mcp",
        "iat": now(),
        "exp": now() + 600,
        "jti": format!("{}", rand::random::<u64>()),
    })
}

/// `claims` signed by `key`, naming `kid` in the header.
pub fn sign(key: &TestKey, kid: &str, claims: &Value) -> String {
    let mut header = Header::new(key.alg);
    header.kid = Some(kid.to_owned());
    header.typ = Some("at+jwt".to_owned());
    jsonwebtoken::encode(&header, claims, &key.encoding).unwrap()
}

/// A token signed by `key`, naming `kid` in its header, for `iss`.
pub fn token_with(key: &TestKey, kid: &str, iss: &str) -> String {
    sign(key, kid, &claims(iss))
}

/// A token signed by `key` under its own kid.
pub fn token(key: &TestKey) -> String {
    token_with(key, key.kid, ISSUER)
}

/// Names `named`'s kid but is signed by `signer` (same algorithm): a bad signature.
pub fn bad_signature_token(named: &TestKey, signer: &TestKey) -> String {
    token_with(signer, named.kid, ISSUER)
}

/// Signed by `key`, expired an hour ago (well past any leeway).
pub fn expired_token(key: &TestKey) -> String {
    expired_token_with_kid(key, key.kid)
}

/// Signed by `key`, naming `kid`, expired an hour ago.
pub fn expired_token_with_kid(key: &TestKey, kid: &str) -> String {
    let mut c = claims(ISSUER);
    c["iat"] = json!(now() - 7200);
    c["exp"] = json!(now() - 3600);
    sign(key, kid, &c)
}

/// Signed by `key`, for another resource.
pub fn wrong_audience_token(key: &TestKey) -> String {
    let mut c = claims(ISSUER);
    c["aud"] = json!("https://other.example.com/mcp");
    sign(key, key.kid, &c)
}

/// Tokens signed by `key` naming made-up key ids, each another.
pub fn random_kid_tokens(key: &TestKey, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| token_with(key, &format!("made-up-{}", rand::random::<u64>()), ISSUER))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The JWKS server
// ---------------------------------------------------------------------------------------------

/// What a request gets.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fault {
    None,
    Status(u16),
    Garbage,
    /// A body over the cap, with `Content-Length`.
    Oversize,
    /// A body over the cap, streamed without `Content-Length`.
    OversizeChunked,
}

/// What a connection gets, before any HTTP.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Conn {
    /// Served over HTTP (then [`Fault`] applies).
    Serve,
    /// Accepted, read, never answered (held open until the client goes, for at most 30 s).
    Hang,
    /// Accepted and closed at once with a TCP reset (`SO_LINGER` 0).
    Reset,
    /// The head of a 200 response and part of its body, then closed.
    Partial,
}

struct Behaviour {
    keys: Vec<Value>,
    cache_control: Option<String>,
    delay: Duration,
    fault: Fault,
    conn: Conn,
}

pub struct JwksInner {
    behaviour: Mutex<Behaviour>,
    /// HTTP requests handled.
    hits: AtomicUsize,
    /// Connections accepted (every fetch opens one: responses say `Connection: close`).
    connections: AtomicUsize,
}

pub type Shared = Arc<JwksInner>;

/// A JWKS server on 127.0.0.1 whose behaviour the test controls, counting the requests.
pub struct JwksServer {
    pub shared: Shared,
    pub addr: SocketAddr,
    task: Option<JoinHandle<()>>,
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

async fn jwks_handler(State(shared): State<Shared>) -> Response {
    shared.hits.fetch_add(1, Ordering::SeqCst);
    let (body, cache_control, delay, fault) = {
        let b = shared.behaviour.lock().unwrap();
        (
            json!({ "keys": b.keys }).to_string(),
            b.cache_control.clone(),
            b.delay,
            b.fault,
        )
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    // One request per connection, so that a server taken down is down for every client.
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    if let Some(cc) = cache_control {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_str(&cc).unwrap());
    }
    match fault {
        Fault::None => (headers, body).into_response(),
        Fault::Status(code) => (StatusCode::from_u16(code).unwrap(), headers, "{}").into_response(),
        Fault::Garbage => (headers, "{\"keys\": [ this is not JSON").into_response(),
        Fault::Oversize => {
            let padding = " ".repeat(2 << 20);
            (headers, format!("{{\"keys\": []{padding}}}")).into_response()
        }
        Fault::OversizeChunked => {
            let chunks = (0..64)
                .map(|_| Ok::<_, std::io::Error>(axum::body::Bytes::from(vec![b' '; 64 << 10])));
            let body = axum::body::Body::from_stream(futures_util::stream::iter(chunks));
            (headers, body).into_response()
        }
    }
}

/// `/redirect/{n}` redirects n times, then to `/jwks`.
async fn redirect_handler(State(shared): State<Shared>, Path(n): Path<u32>) -> Response {
    shared.hits.fetch_add(1, Ordering::SeqCst);
    let to = if n == 0 {
        "/jwks".to_owned()
    } else {
        format!("/redirect/{}", n - 1)
    };
    (StatusCode::FOUND, [(header::LOCATION, to)]).into_response()
}

/// Redirects to a plain-http URL on a host that is not loopback.
async fn redirect_away(State(shared): State<Shared>) -> Response {
    shared.hits.fetch_add(1, Ordering::SeqCst);
    (
        StatusCode::FOUND,
        [(header::LOCATION, "http://jwks.example.com/jwks")],
    )
        .into_response()
}

pub fn jwks_router(shared: Shared) -> Router {
    Router::new()
        .route("/jwks", get(jwks_handler))
        .route("/redirect/{n}", get(redirect_handler))
        .route("/away", get(redirect_away))
        .with_state(shared)
}

/// A listener that applies [`Conn`] to each connection it accepts, and hands axum only those
/// to serve.
struct FaultyListener {
    listener: TcpListener,
    shared: Shared,
}

impl axum::serve::Listener for FaultyListener {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            let (mut stream, addr) = match self.listener.accept().await {
                Ok(accepted) => accepted,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            self.shared.connections.fetch_add(1, Ordering::SeqCst);
            let conn = self.shared.behaviour.lock().unwrap().conn;
            match conn {
                Conn::Serve => return (stream, addr),
                Conn::Reset => {
                    let _ = stream.set_zero_linger();
                    drop(stream);
                }
                Conn::Hang => {
                    tokio::spawn(async move {
                        let mut sink = Vec::new();
                        let _ = tokio::time::timeout(
                            Duration::from_secs(30),
                            stream.read_to_end(&mut sink),
                        )
                        .await;
                    });
                }
                Conn::Partial => {
                    tokio::spawn(async move {
                        // Wait for the request head, so that the client is reading when we close.
                        let mut buf = [0u8; 1024];
                        let _ = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
                            .await;
                        let _ = stream
                            .write_all(
                                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                                  content-length: 4096\r\n\r\n{\"keys\": [{\"kty\"",
                            )
                            .await;
                        let _ = stream.shutdown().await;
                    });
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

impl JwksServer {
    pub async fn start(keys: &[&TestKey]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(listener, keys)
    }

    /// Starts on `addr` (a port reserved earlier and released), retrying the bind for a while.
    pub async fn start_on(addr: SocketAddr, keys: &[&TestKey]) -> Self {
        Self::serve(bind_retrying(addr).await, keys)
    }

    fn serve(listener: TcpListener, keys: &[&TestKey]) -> Self {
        let shared = Arc::new(JwksInner {
            behaviour: Mutex::new(Behaviour {
                keys: keys.iter().map(|k| k.jwk.clone()).collect(),
                cache_control: None,
                delay: Duration::ZERO,
                fault: Fault::None,
                conn: Conn::Serve,
            }),
            hits: AtomicUsize::new(0),
            connections: AtomicUsize::new(0),
        });
        let addr = listener.local_addr().unwrap();
        let task = Some(spawn_server(listener, shared.clone()));
        Self { shared, addr, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}/jwks", self.addr)
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// HTTP requests handled.
    pub fn hits(&self) -> usize {
        self.shared.hits.load(Ordering::SeqCst)
    }

    /// Connections accepted, whatever became of them: one per fetch attempt that reached us.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    pub fn set_keys(&self, keys: &[&TestKey]) {
        self.shared.behaviour.lock().unwrap().keys = keys.iter().map(|k| k.jwk.clone()).collect();
    }

    pub fn set_raw_keys(&self, keys: Vec<Value>) {
        self.shared.behaviour.lock().unwrap().keys = keys;
    }

    pub fn set_fault(&self, fault: Fault) {
        self.shared.behaviour.lock().unwrap().fault = fault;
    }

    pub fn set_conn(&self, conn: Conn) {
        self.shared.behaviour.lock().unwrap().conn = conn;
    }

    pub fn set_delay(&self, delay: Duration) {
        self.shared.behaviour.lock().unwrap().delay = delay;
    }

    pub fn set_cache_control(&self, cc: &str) {
        self.shared.behaviour.lock().unwrap().cache_control = Some(cc.to_owned());
    }

    /// Takes the server down: the listener is dropped, and the port refuses connections.
    pub fn stop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }

    /// Brings it back on the same port.
    pub async fn restart(&mut self) {
        self.stop();
        self.task = Some(spawn_server(
            bind_retrying(self.addr).await,
            self.shared.clone(),
        ));
    }
}

/// A loopback address nothing listens on (bound, then released).
pub fn dead_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// Binds `addr`, retrying for a while (the listener of an aborted task may take a moment to go).
pub async fn bind_retrying(addr: SocketAddr) -> TcpListener {
    for _ in 0..250 {
        if let Ok(l) = TcpListener::bind(addr).await {
            return l;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("cannot bind {addr} again within 5 s");
}

fn spawn_server(listener: TcpListener, shared: Shared) -> JoinHandle<()> {
    tokio::spawn(async move {
        let listener = FaultyListener {
            listener,
            shared: shared.clone(),
        };
        let _ = axum::serve(listener, jwks_router(shared)).await;
    })
}

// ---------------------------------------------------------------------------------------------
// The MCP server and the verifier
// ---------------------------------------------------------------------------------------------

/// Short timeouts and cooldowns, so that the suite runs in seconds.
pub fn options() -> RemoteJwksOptions {
    RemoteJwksOptions {
        timeout: Duration::from_millis(300),
        cooldown: Duration::from_secs(1),
        retry_after: Duration::from_secs(7),
        ..Default::default()
    }
}

pub fn verifier(issuer: Issuer) -> JwtVerifier {
    JwtVerifier::builder(ResourceUrl::parse(RESOURCE).unwrap())
        .issuer(issuer)
        .build()
        .unwrap()
}

async fn whoami(who: AuthInfo) -> String {
    who.subject().to_owned()
}

/// The MCP endpoint behind the auth layer, on a real server, and a client for it.
pub struct Mcp {
    pub server: TestServer,
    pub client: reqwest::Client,
}

pub async fn mcp(verifier: JwtVerifier) -> Mcp {
    let app = Router::new()
        .route("/mcp", post(whoami))
        .layer(AuthLayer::new(verifier));
    Mcp {
        server: common::serve_axum(app).await,
        client: common::client(),
    }
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub retry_after: Option<String>,
    pub challenge: String,
}

pub async fn call(mcp: &Mcp, token: &str) -> Reply {
    let res = mcp
        .client
        .post(mcp.server.url("/mcp"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let header = |name| {
        res.headers()
            .get(name)
            .map(|v: &HeaderValue| v.to_str().unwrap().to_owned())
    };
    Reply {
        status: res.status().as_u16(),
        retry_after: header(header::RETRY_AFTER),
        challenge: header(header::WWW_AUTHENTICATE).unwrap_or_default(),
    }
}

/// Waits out the cooldown of `options()` (1 s): every fetch, the first included, starts one.
pub async fn past_cooldown() {
    tokio::time::sleep(Duration::from_millis(1100)).await;
}

pub fn assert_ok(r: &Reply) {
    assert_eq!(r.status, 200, "{r:?}");
}

pub fn assert_invalid_token(r: &Reply) {
    assert_eq!(r.status, 401, "{r:?}");
    assert!(r.challenge.contains(r#"error="invalid_token""#), "{r:?}");
    assert_eq!(r.retry_after, None);
}

pub fn assert_unavailable(r: &Reply) {
    assert_eq!(r.status, 503, "{r:?}");
    let secs: u64 = r
        .retry_after
        .as_deref()
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=7).contains(&secs), "{r:?}");
}

/// Whether `r` is what [`assert_ok`] wants.
pub fn is_ok(r: &Reply) -> bool {
    r.status == 200
}

/// Whether `r` is what [`assert_invalid_token`] wants.
pub fn is_invalid_token(r: &Reply) -> bool {
    r.status == 401 && r.challenge.contains(r#"error="invalid_token""#) && r.retry_after.is_none()
}

/// Whether `r` is what [`assert_unavailable`] wants.
pub fn is_unavailable(r: &Reply) -> bool {
    r.status == 503
        && r.retry_after
            .as_deref()
            .and_then(|s| s.parse::<u64>().ok())
            .is_some_and(|s| (1..=7).contains(&s))
}
