//! End-to-end load run over loopback: the example server (`examples/quickstart.rs`) with no
//! auth, with a static bearer token and with JWTs (RS256, remote JWKS, cache warm), driven by a
//! load generator in this process. Prints requests/s and p50/p99 latency, as ratios to no auth,
//! and the target: JWT (warm cache) throughput ≥ 0.9 × no auth. Nothing panics on FAIL.
//!
//! Without auth, `whoami` has no caller and answers a JSON-RPC error at once, which is less work
//! than the tool's real answer; so a reference row, "no auth + identity" (the unprotected
//! service behind a layer that only inserts a fixed identity, the JWT's subject and scopes),
//! separates the auth stack's own cost from the tool's.
//!
//! - Servers: `quickstart::mcp_router` as is (no auth, and with the identity layer), and
//!   `quickstart::app` (Origin check, authentication, per-tool scopes in JWT mode) configured by
//!   `EnvConfig::from_vars` with `MCP_AUTH_BEARER_TOKEN` (static) or `MCP_AUTH_ISSUER_URL` +
//!   `MCP_AUTH_JWKS_URL` (JWT, against a JWKS server of our own on 127.0.0.1 serving the public
//!   half of the test-only RSA key `tests/fixtures/jwt/rsa_private.pem`). All four, and the JWKS
//!   server, run on one tokio runtime (`BENCH_E2E_SERVER_THREADS` workers, default 2), each on
//!   127.0.0.1:0 with `axum::serve` (TCP_NODELAY on accepted sockets, for every mode alike).
//!   Only one is loaded at a time; the others are idle.
//! - Load generator: another tokio runtime (`BENCH_E2E_CLIENT_THREADS` workers, default 1) with
//!   C keep-alive HTTP/1.1 connections (hyper's client connection API, TCP_NODELAY), each a
//!   closed loop: send, read the whole body, record the latency, send again. Every request is a
//!   stateless MCP 2026-07-28 `tools/call whoami` (headers `MCP-Protocol-Version`, `Mcp-Method`,
//!   `Mcp-Name`; protocol metadata in `_meta`) with the mode's `Authorization` header (one JWT
//!   minted at start: `aud` = the resource URL, `exp` in an hour, scope `mcp:read mcp:write`).
//! - Before measuring, one request per mode is checked (200, an SSE `data:` line, the expected
//!   answer: the caller's identity, or without auth the JSON-RPC error), and a few requests warm
//!   the JWKS and token caches. During the run, a non-2xx status or an answer without the
//!   expected marker counts as an error (reported; zero expected), as does a transport error.
//! - Rounds interleave the modes (`for round { none, identity, static, jwt }`), each with fresh
//!   connections, a short unmeasured warm-up, then a fixed measuring time; the table shows the
//!   median over rounds of each figure, and each ratio is the median over rounds of the ratio to
//!   no auth in the same round, so that drift on a shared machine hits every mode alike. A
//!   warning says how many measurements had less than 80% of the CPUs (other load).
//!   Latencies are kept per request (at most `MAX_SAMPLES` per round). On Linux the CPU time of
//!   the server's and the generator's threads is shown per request, and how busy the CPUs were.
//!
//! Full: C = 16, 10 rounds × (0.1 s warm-up + 1 s) per mode (~45 s). `BENCH_SHORT=1`: C = 8,
//! 6 rounds × (0.05 + 0.25 s) (~8 s). Short rounds, many of them: drift is then shared. Overrides: `BENCH_E2E_CONNS`, `BENCH_E2E_ROUNDS`,
//! `BENCH_E2E_MS`, `BENCH_E2E_SERVER_THREADS`, `BENCH_E2E_CLIENT_THREADS`. Without `--bench`
//! (`cargo test --benches`) only the per-mode checks run and no table is printed.

#[path = "../examples/quickstart.rs"]
#[allow(dead_code)]
mod quickstart;

use std::{
    env,
    net::SocketAddr,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use axum::{Router, body::Body, routing::get, serve::ListenerExt};
use bytes::Bytes;
use http::{
    HeaderMap, HeaderValue, Method, Request, StatusCode,
    header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST},
};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use jsonwebtoken::{Algorithm, EncodingKey, Header, jwk::Jwk};
use mcp_server_auth::{AuthInfo, AuthMethod, ScopeSet, config::EnvConfig};
use serde_json::json;
use tokio::{net::TcpStream, runtime::Runtime};
use tokio_util::sync::CancellationToken;
use tower::util::MapRequestLayer;

/// The target: JWT (warm cache) throughput at least this fraction of no auth's.
const TARGET: f64 = 0.9;
/// Latencies kept per round and mode (beyond, requests are counted but not timed).
const MAX_SAMPLES: usize = 1 << 20;
/// Any single request (or connection set-up) taking longer is a transport error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
const STATIC_TOKEN: &str = "e2e-bench-static-token-not-a-secret";
const KID: &str = "e2e-rsa";
const BODY: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"load","version":"0"},"io.modelcontextprotocol/clientCapabilities":{}}}}"#;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    None,
    Identity,
    Static,
    Jwt,
}

impl Mode {
    const ALL: [Mode; 4] = [Mode::None, Mode::Identity, Mode::Static, Mode::Jwt];

    fn name(self) -> &'static str {
        match self {
            Mode::None => "no auth",
            Mode::Identity => "no auth + identity",
            Mode::Static => "static bearer",
            Mode::Jwt => "JWT (warm cache)",
        }
    }

    /// A byte string every good answer of this mode contains.
    fn marker(self) -> &'static [u8] {
        match self {
            // `whoami` needs a caller: without the layer it answers this JSON-RPC error.
            Mode::None => b"no authenticated caller",
            // The tool's text is JSON inside JSON, hence the escaped quotes.
            Mode::Static => br#"\"subject\":\"default\""#,
            Mode::Identity | Mode::Jwt => br#"\"subject\":\"e2e-user\""#,
        }
    }
}

/// One server under test: where it listens, and the headers of its requests.
#[derive(Clone)]
struct Target {
    mode: Mode,
    addr: SocketAddr,
    headers: HeaderMap,
}

struct Settings {
    conns: usize,
    rounds: usize,
    measure: Duration,
    warmup: Duration,
    server_threads: usize,
    client_threads: usize,
}

fn env_num(name: &str, default: usize, max: usize) -> usize {
    match env::var(name) {
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => n,
            _ => panic!("{name} must be a whole number in 1..={max}, not {v:?}"),
        },
        Err(_) => default,
    }
}

impl Settings {
    fn from_env(short: bool) -> Self {
        let ms = env_num("BENCH_E2E_MS", if short { 250 } else { 1000 }, 10_000);
        Self {
            conns: env_num("BENCH_E2E_CONNS", if short { 8 } else { 16 }, 256),
            rounds: env_num("BENCH_E2E_ROUNDS", if short { 6 } else { 10 }, 30),
            measure: Duration::from_millis(ms as u64),
            warmup: Duration::from_millis(if short { 50 } else { 100 }),
            server_threads: env_num("BENCH_E2E_SERVER_THREADS", 2, 64),
            client_threads: env_num("BENCH_E2E_CLIENT_THREADS", 1, 64),
        }
    }
}

fn runtime(threads: usize, name: &str) -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name(name)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

// ---------------------------------------------------------------------------------------------
// Servers
// ---------------------------------------------------------------------------------------------

/// Binds 127.0.0.1:0 and serves `app` on it, as the example does (plus TCP_NODELAY).
async fn serve(listener: tokio::net::TcpListener, app: Router) {
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await.expect("axum::serve");
}

async fn bind() -> (tokio::net::TcpListener, SocketAddr) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local address");
    (listener, addr)
}

fn base_headers(addr: SocketAddr) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(HOST, HeaderValue::from_str(&addr.to_string()).unwrap());
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(
        ACCEPT,
        HeaderValue::from_static("application/json, text/event-stream"),
    );
    h.insert(
        "mcp-protocol-version",
        HeaderValue::from_static("2026-07-28"),
    );
    h.insert("mcp-method", HeaderValue::from_static("tools/call"));
    h.insert("mcp-name", HeaderValue::from_static("whoami"));
    h
}

/// The RSA key pair (test-only fixture) and its public JWK.
fn rsa_key() -> (EncodingKey, serde_json::Value) {
    mcp_server_auth::jwt::install_crypto_provider().expect("a crypto provider");
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/jwt/rsa_private.pem");
    let pem = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let encoding = EncodingKey::from_rsa_pem(&pem).expect("an RSA private key");
    let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::RS256).expect("the public JWK");
    jwk.common.key_id = Some(KID.to_owned());
    (encoding, serde_json::to_value(&jwk).unwrap())
}

/// Starts the JWKS server and the three example servers; returns the targets and the tokens
/// that end rmcp's sessions and streams.
async fn start_servers() -> (Vec<Target>, Vec<CancellationToken>) {
    let mut targets = Vec::new();
    let mut shutdowns = Vec::new();

    // No auth: the unprotected MCP service.
    let (listener, addr) = bind().await;
    let config = EnvConfig::from_vars([("MCP_AUTH_LISTEN", addr.to_string())]).unwrap();
    let (app, shutdown) = quickstart::mcp_router(&config);
    tokio::spawn(serve(listener, app));
    shutdowns.push(shutdown);
    targets.push(Target {
        mode: Mode::None,
        addr,
        headers: base_headers(addr),
    });

    // No auth + identity (reference): the unprotected service behind a layer that only inserts
    // a fixed identity, like the JWT one, so that `whoami` does the same work as with auth.
    let (listener, addr) = bind().await;
    let config = EnvConfig::from_vars([("MCP_AUTH_LISTEN", addr.to_string())]).unwrap();
    let (app, shutdown) = quickstart::mcp_router(&config);
    let info = AuthInfo::builder("e2e-user", AuthMethod::Custom("fixed"))
        .scopes(ScopeSet::parse("mcp:read mcp:write").unwrap())
        .client_id("e2e-load")
        .build();
    let app = app.layer(MapRequestLayer::new(move |mut req: Request<Body>| {
        req.extensions_mut().insert(info.clone());
        req
    }));
    tokio::spawn(serve(listener, app));
    shutdowns.push(shutdown);
    targets.push(Target {
        mode: Mode::Identity,
        addr,
        headers: base_headers(addr),
    });

    // Static bearer.
    let (listener, addr) = bind().await;
    let config = EnvConfig::from_vars([
        ("MCP_AUTH_LISTEN", addr.to_string()),
        ("MCP_AUTH_BEARER_TOKEN", STATIC_TOKEN.to_owned()),
    ])
    .unwrap();
    let (app, shutdown) = quickstart::app(&config).await.expect("static-bearer app");
    tokio::spawn(serve(listener, app));
    shutdowns.push(shutdown);
    let mut headers = base_headers(addr);
    headers.insert(
        AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {STATIC_TOKEN}")).unwrap(),
    );
    targets.push(Target {
        mode: Mode::Static,
        addr,
        headers,
    });

    // JWT: the JWKS server first, then the example server that fetches from it.
    let (encoding, jwk) = rsa_key();
    let jwks = Arc::new(json!({ "keys": [jwk] }).to_string());
    let (jwks_listener, jwks_addr) = bind().await;
    let jwks_app = Router::new().route(
        "/jwks",
        get(move || {
            let body = jwks.clone();
            async move {
                (
                    [
                        ("content-type", "application/json"),
                        ("cache-control", "max-age=3600"),
                    ],
                    (*body).clone(),
                )
            }
        }),
    );
    tokio::spawn(serve(jwks_listener, jwks_app));
    let issuer = format!("http://{jwks_addr}");
    let (listener, addr) = bind().await;
    let config = EnvConfig::from_vars([
        ("MCP_AUTH_LISTEN", addr.to_string()),
        ("MCP_AUTH_ISSUER_URL", issuer.clone()),
        ("MCP_AUTH_JWKS_URL", format!("{issuer}/jwks")),
    ])
    .unwrap();
    let (app, shutdown) = quickstart::app(&config).await.expect("JWT app");
    tokio::spawn(serve(listener, app));
    shutdowns.push(shutdown);
    let mut header = Header::new(Algorithm::RS256);
    header.typ = Some("at+jwt".to_owned());
    header.kid = Some(KID.to_owned());
    let now = now_secs();
    let claims = json!({
        "iss": issuer,
        "aud": config.resource_url().as_str(),
        "sub": "e2e-user",
        "client_id": "e2e-load",
        "scope": "mcp:read mcp:write",
        "iat": now,
        "exp": now + 3600,
        "jti": "e2e-1",
    });
    let token = jsonwebtoken::encode(&header, &claims, &encoding).expect("mint the JWT");
    let mut headers = base_headers(addr);
    headers.insert(
        AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    targets.push(Target {
        mode: Mode::Jwt,
        addr,
        headers,
    });

    (targets, shutdowns)
}

// ---------------------------------------------------------------------------------------------
// Load generator
// ---------------------------------------------------------------------------------------------

async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>, String> {
    let setup = async {
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
        tcp.set_nodelay(true).map_err(|e| e.to_string())?;
        let (sender, conn) = http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(|e| format!("handshake {addr}: {e}"))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    };
    tokio::time::timeout(REQUEST_TIMEOUT, setup)
        .await
        .map_err(|_| format!("connecting to {addr} timed out"))?
}

fn request(target: &Target, body: &Bytes) -> Request<Full<Bytes>> {
    let mut req = Request::new(Full::new(body.clone()));
    *req.method_mut() = Method::POST;
    *req.uri_mut() = http::Uri::from_static("/mcp");
    *req.headers_mut() = target.headers.clone();
    req
}

/// One request on `sender`: status and the whole body.
async fn send(
    sender: &mut SendRequest<Full<Bytes>>,
    req: Request<Full<Bytes>>,
) -> Result<(StatusCode, Bytes), String> {
    let exchange = async {
        sender.ready().await.map_err(|e| e.to_string())?;
        let res = sender.send_request(req).await.map_err(|e| e.to_string())?;
        let status = res.status();
        let body = res
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((status, body))
    };
    tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .map_err(|_| "request timed out".to_owned())?
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// One request per mode, checked in full; panics with the answer if it is not the expected one.
async fn check(target: &Target, body: &Bytes) {
    let mut sender = connect(target.addr).await.unwrap_or_else(|e| panic!("{e}"));
    let (status, answer) = send(&mut sender, request(target, body))
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", target.mode.name()));
    let text = String::from_utf8_lossy(&answer);
    let data = text
        .lines()
        .find_map(|l| l.strip_prefix("data:"))
        .map(str::trim)
        .filter(|d| !d.is_empty());
    let message: Option<serde_json::Value> = data.and_then(|d| serde_json::from_str(d).ok());
    let ok = status == StatusCode::OK
        && contains(&answer, target.mode.marker())
        && message.as_ref().is_some_and(|m| {
            m["id"] == 1
                && match target.mode {
                    Mode::None => m.get("error").is_some() || m["result"]["isError"] == true,
                    Mode::Identity | Mode::Static | Mode::Jwt => {
                        m.get("result").is_some() && m["result"]["isError"] != true
                    }
                }
        });
    assert!(
        ok,
        "{}: unexpected answer to tools/call whoami: {status}\n{text}",
        target.mode.name()
    );
}

/// What one connection did in one measuring window.
#[derive(Default)]
struct ConnResult {
    done: u64,
    /// Requests answered during the warm-up.
    warm: u64,
    errors: u64,
    transport_errors: u64,
    /// Latencies, ns (saturating at u32::MAX).
    samples: Vec<u32>,
    /// When its last request ended.
    last: Option<Instant>,
}

/// A closed loop on one connection: warm-up until `start` (unmeasured), then measured until
/// `deadline`. Bounded by the deadline (each request by `REQUEST_TIMEOUT`).
async fn conn_loop(
    target: Target,
    body: Bytes,
    start: Instant,
    deadline: Instant,
    cap: usize,
) -> ConnResult {
    let marker = target.mode.marker();
    let mut out = ConnResult {
        samples: Vec::with_capacity(cap.min(1 << 16)),
        ..ConnResult::default()
    };
    let mut sender = match connect(target.addr).await {
        Ok(s) => Some(s),
        Err(_) => {
            out.transport_errors += 1;
            None
        }
    };
    loop {
        let t0 = Instant::now();
        if t0 >= deadline {
            break;
        }
        let Some(s) = sender.as_mut() else {
            // Reconnect after a transport error (bounded by the deadline check above).
            match connect(target.addr).await {
                Ok(s) => sender = Some(s),
                Err(_) => {
                    out.transport_errors += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            continue;
        };
        let result = send(s, request(&target, &body)).await;
        let t1 = Instant::now();
        if t0 < start {
            match result {
                Ok(_) => out.warm += 1,
                Err(_) => sender = None,
            }
            continue;
        }
        match result {
            Ok((status, answer)) => {
                out.done += 1;
                if !status.is_success() || !contains(&answer, marker) {
                    out.errors += 1;
                }
                if out.samples.len() < cap {
                    let ns = (t1 - t0).as_nanos().min(u128::from(u32::MAX)) as u32;
                    out.samples.push(ns);
                }
                out.last = Some(t1);
            }
            Err(_) => {
                out.transport_errors += 1;
                sender = None;
            }
        }
    }
    out
}

/// One round's figures for one mode.
#[derive(Clone, Copy, Default)]
struct Figures {
    rps: f64,
    p50_us: f64,
    p99_us: f64,
    errors: u64,
    transport_errors: u64,
    requests: u64,
    /// CPU time of the server runtime's threads per request, µs (NaN without /proc).
    server_cpu_us: f64,
    /// CPU time of the load generator's threads per request, µs (NaN without /proc).
    load_cpu_us: f64,
    /// CPU time of both runtimes over wall time × CPUs (NaN without /proc).
    busy: f64,
}

/// CPU time so far (ns) of this process's threads named `e2e-server` and `e2e-load`, from
/// `/proc/self/task/*/schedstat` (Linux); `None` elsewhere.
fn cpu_ns() -> Option<(u64, u64)> {
    let (mut server, mut load) = (0, 0);
    for entry in std::fs::read_dir("/proc/self/task").ok()? {
        let dir = entry.ok()?.path();
        let Ok(comm) = std::fs::read_to_string(dir.join("comm")) else {
            continue; // the thread ended
        };
        let slot = match comm.trim() {
            "e2e-server" => &mut server,
            "e2e-load" => &mut load,
            _ => continue,
        };
        let Ok(stat) = std::fs::read_to_string(dir.join("schedstat")) else {
            continue;
        };
        *slot += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some((server, load))
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    f64::from(sorted[rank - 1]) / 1000.0
}

async fn measure(target: &Target, body: &Bytes, s: &Settings) -> Figures {
    let start = Instant::now() + s.warmup;
    let deadline = start + s.measure;
    let cap = MAX_SAMPLES / s.conns;
    let spawned = Instant::now();
    let cpu_before = cpu_ns();
    let tasks: Vec<_> = (0..s.conns)
        .map(|_| {
            tokio::spawn(conn_loop(
                target.clone(),
                body.clone(),
                start,
                deadline,
                cap,
            ))
        })
        .collect();
    let mut samples = Vec::new();
    let mut f = Figures::default();
    let mut last = start;
    let mut warm = 0;
    for task in tasks {
        let r = tokio::time::timeout(s.warmup + s.measure + 2 * REQUEST_TIMEOUT, task)
            .await
            .expect("a connection loop outlived its deadline")
            .expect("a connection loop panicked");
        f.requests += r.done;
        warm += r.warm;
        f.errors += r.errors;
        f.transport_errors += r.transport_errors;
        samples.extend_from_slice(&r.samples);
        last = last.max(r.last.unwrap_or(start));
    }
    // CPU time covers the whole window, warm-up included: per request over all of them.
    let wall = spawned.elapsed().as_secs_f64();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let all_requests = (f.requests + warm).max(1) as f64;
    (f.server_cpu_us, f.load_cpu_us, f.busy) = match (cpu_before, cpu_ns()) {
        (Some((s0, l0)), Some((s1, l1))) => (
            (s1.saturating_sub(s0)) as f64 / 1000.0 / all_requests,
            (l1.saturating_sub(l0)) as f64 / 1000.0 / all_requests,
            (s1 + l1).saturating_sub(s0 + l0) as f64 / 1e9 / wall / cpus,
        ),
        _ => (f64::NAN, f64::NAN, f64::NAN),
    };
    samples.sort_unstable();
    let elapsed = (last - start).max(s.measure).as_secs_f64();
    f.rps = f.requests as f64 / elapsed;
    f.p50_us = percentile(&samples, 0.50);
    f.p99_us = percentile(&samples, 0.99);
    f
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Below this share of the CPUs (server + load generator), a round counts as disturbed.
const DISTURBED: f64 = 0.8;

fn print_table(s: &Settings, results: &[Vec<Figures>]) {
    let med = |i: usize, f: fn(&Figures) -> f64| median(results[i].iter().map(f).collect());
    // Ratios: the median over rounds of each round's ratio to no auth in the same round (the
    // modes of one round run within seconds of each other).
    let ratio = |i: usize, j: usize, f: fn(&Figures) -> f64| {
        median(
            results[i]
                .iter()
                .zip(&results[j])
                .map(|(a, b)| f(a) / f(b))
                .collect(),
        )
    };
    let (none, identity, jwt) = (0, 1, 3);
    debug_assert_eq!(
        [Mode::ALL[none], Mode::ALL[identity], Mode::ALL[jwt]],
        [Mode::None, Mode::Identity, Mode::Jwt]
    );
    println!();
    println!(
        "End-to-end over loopback: examples/quickstart.rs, stateless MCP 2026-07-28 \
         tools/call whoami, {} keep-alive HTTP/1.1 connections (closed loop), {} rounds × {} ms \
         per mode (interleaved, after {} ms unmeasured warm-up each); server runtime {} \
         worker(s), load generator runtime {} worker(s), {} CPU(s). Figures: median over \
         rounds; ratios (×): median over rounds of the ratio to no auth in the same round.",
        s.conns,
        s.rounds,
        s.measure.as_millis(),
        s.warmup.as_millis(),
        s.server_threads,
        s.client_threads,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    println!();
    println!(
        "{:<18} {:>8} {:>8} {:>8} {:>6} {:>8} {:>8} {:>8}  {:>8} {:>9} {:>5}   req/s per round",
        "mode",
        "req/s",
        "p50 µs",
        "p99 µs",
        "errors",
        "req/s ×",
        "p50 ×",
        "p99 ×",
        "srv µs/r",
        "load µs/r",
        "busy",
    );
    println!("{}", "-".repeat(150));
    for (i, mode) in Mode::ALL.iter().enumerate() {
        let errors: u64 = results[i].iter().map(|f| f.errors).sum();
        let transport: u64 = results[i].iter().map(|f| f.transport_errors).sum();
        let errors = if transport == 0 {
            errors.to_string()
        } else {
            format!("{errors}+{transport}t")
        };
        let rounds: Vec<String> = results[i].iter().map(|f| format!("{:.0}", f.rps)).collect();
        println!(
            "{:<18} {:>8.0} {:>8.1} {:>8.1} {:>6} {:>7.3}x {:>7.3}x {:>7.3}x  {:>8.1} {:>9.1} {:>4.0}%   {}",
            mode.name(),
            med(i, |f| f.rps),
            med(i, |f| f.p50_us),
            med(i, |f| f.p99_us),
            errors,
            ratio(i, none, |f| f.rps),
            ratio(i, none, |f| f.p50_us),
            ratio(i, none, |f| f.p99_us),
            med(i, |f| f.server_cpu_us),
            med(i, |f| f.load_cpu_us),
            med(i, |f| f.busy) * 100.0,
            rounds.join(" "),
        );
    }
    println!("{}", "-".repeat(150));
    let jwt_ratio = ratio(jwt, none, |f| f.rps);
    println!(
        "TARGET JWT (warm cache) throughput ≥ {TARGET} × no auth: {} ({jwt_ratio:.3})",
        if jwt_ratio >= TARGET { "PASS" } else { "FAIL" }
    );
    // CPU time per request (server + load generator): what throughput would be with the CPUs
    // to ourselves, so less sensitive to other load than req/s.
    let cpu = |f: &Figures| f.server_cpu_us + f.load_cpu_us;
    if results[none].iter().all(|f| cpu(f).is_finite()) {
        let by_cpu: Vec<String> = (1..Mode::ALL.len())
            .map(|i| {
                format!(
                    "{} {:.3}x ({:+.1} µs)",
                    Mode::ALL[i].name(),
                    ratio(none, i, cpu),
                    median(results[i].iter().map(cpu).collect())
                        - median(results[none].iter().map(cpu).collect()),
                )
            })
            .collect();
        println!(
            "Throughput implied by CPU time per request (server + load generator), over no auth: \
             {}",
            by_cpu.join(", ")
        );
    }
    let stack: Vec<String> = (identity + 1..Mode::ALL.len())
        .map(|i| {
            format!(
                "{} {:.3}x",
                Mode::ALL[i].name(),
                ratio(i, identity, |f| f.rps)
            )
        })
        .collect();
    println!(
        "The auth stack alone, req/s over no auth + identity (the same tool work): {}",
        stack.join(", ")
    );
    let all: Vec<&Figures> = results.iter().flatten().collect();
    let disturbed = all.iter().filter(|f| f.busy < DISTURBED).count();
    if disturbed > 0 {
        println!(
            "WARNING: {disturbed} of {} measurements had < {:.0}% of the CPUs (other load on the \
             machine): req/s and latencies are noisy; the CPU-time line is less so.",
            all.len(),
            DISTURBED * 100.0
        );
    }
    println!(
        "(errors = non-2xx or unexpected answers over all rounds, +Nt = transport errors; \
         no auth answers whoami with a JSON-RPC error: there is no caller; no auth + identity = \
         the same service behind a layer that only inserts a fixed identity, a reference for the \
         tool's work. srv / load µs/r = CPU time of the server / load-generator threads per \
         request; busy = their CPU time over wall time × CPUs.)"
    );
    println!();
}

fn main() {
    let args: Vec<String> = env::args().collect();
    let benching = args.iter().any(|a| a == "--bench");
    let short = env::var("BENCH_SHORT").is_ok_and(|v| v == "1");
    let s = Settings::from_env(short);

    let server_rt = runtime(s.server_threads, "e2e-server");
    let client_rt = runtime(s.client_threads, "e2e-load");
    let (targets, shutdowns) = server_rt.block_on(start_servers());
    let body = Bytes::from_static(BODY.as_bytes());

    client_rt.block_on(async {
        for target in &targets {
            check(target, &body).await;
        }
    });
    if !benching {
        println!("e2e: every mode answers as expected (no load run without --bench)");
    } else {
        // Warm the JWKS and token caches (and every server) before any measuring.
        client_rt.block_on(async {
            for target in &targets {
                let mut sender = connect(target.addr).await.unwrap_or_else(|e| panic!("{e}"));
                for _ in 0..20 {
                    let (status, _) = send(&mut sender, request(target, &body))
                        .await
                        .unwrap_or_else(|e| panic!("{}: {e}", target.mode.name()));
                    assert!(status.is_success(), "{}: {status}", target.mode.name());
                }
            }
        });
        let mut results: Vec<Vec<Figures>> = vec![Vec::new(); Mode::ALL.len()];
        for _ in 0..s.rounds {
            for (i, target) in targets.iter().enumerate() {
                results[i].push(client_rt.block_on(measure(target, &body, &s)));
            }
        }
        print_table(&s, &results);
    }

    for shutdown in shutdowns {
        shutdown.cancel();
    }
    client_rt.shutdown_timeout(Duration::from_secs(1));
    server_rt.shutdown_timeout(Duration::from_secs(1));
}
