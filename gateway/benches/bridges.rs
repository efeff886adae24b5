//! `tools/call` round trips through three stdio-to-Streamable-HTTP bridges of the same child,
//! in one run: `mcp-auth-gateway wrap` with static-bearer auth, and without auth `supergateway`
//! (npm, `benches/bridges/package-lock.json`) and `mcp-proxy` (PyPI, the hashed
//! `benches/bridges/requirements.txt`, in a virtual environment of its own). Prints round trips
//! per second and p50/p99 latency per bridge, and the issue's target: `wrap`'s throughput higher
//! and its p50 lower than both others'. Nothing panics on a missed target.
//!
//! - The child: `@modelcontextprotocol/server-everything` in its stdio mode (from
//!   `tests/servers/package-lock.json`), on the system's Node.js; the call: its `echo` tool.
//! - Bridges: `wrap --listen 127.0.0.1:0` (one child per session, the default) with
//!   `MCP_AUTH_BEARER_TOKEN`; `supergateway --stdio … --outputTransport streamableHttp
//!   --stateful --logLevel none` (one child per session); `mcp-proxy --host 127.0.0.1
//!   --log-level WARNING` (one child for the process). supergateway takes a port but no
//!   address, so it listens on every interface while it runs; only 127.0.0.1 is loaded.
//! - Each measurement opens one MCP session (2025-06-18), ended with DELETE after it, and runs
//!   C closed loops in it, each on its own keep-alive HTTP/1.1 connection: POST a `tools/call
//!   echo` with a fresh id, read the whole answer (JSON or an event stream), check it (200, the
//!   id and the echoed text; anything else counts as an error, reported, zero expected), record
//!   the latency, again. C = 1 shows the latency of one round trip; C = 8 loads the bridge.
//! - Rounds interleave the bridges (`for round { for C { wrap, supergateway, mcp-proxy } }`),
//!   each measurement with a new session and new connections, an unmeasured warm-up, then a
//!   fixed measuring time. The table shows the median over rounds of the throughput, and p50
//!   and p99 over every latency of the rounds.
//!
//! Full: 6 rounds × (0.3 s warm-up + 2 s). `BENCH_SHORT=1` (`.ci/run`): 2 rounds × (0.2 s +
//! 0.6 s), ~20 s with the bridges' start. Overrides: `BENCH_BRIDGES_ROUNDS`,
//! `BENCH_BRIDGES_MS`. Without `--bench` (`cargo test --benches`) each bridge answers one
//! call and no table is printed.

#[path = "../tests/common/mod.rs"]
mod common;

use std::{
    env, fs,
    path::{Path, PathBuf},
    process::Stdio,
    sync::{Arc, OnceLock},
    time::{Duration, Instant},
};

use common::{
    ALICE, Gateway, WAIT,
    install::{InstallLock, run_install},
};
use serde_json::json;

/// The protocol version every session opens with (all three bridges speak it).
const VERSION: &str = "2025-06-18";
/// Latencies kept per measurement, at most.
const MAX_SAMPLES: usize = 200_000;
/// Loads: concurrent loops in one session.
const LOADS: [usize; 2] = [1, 8];

/// `gateway/benches/bridges`.
fn bridges_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/bridges")
}

/// The virtual environment of mcp-proxy.
fn venv() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-mcp-proxy-venv")
}

const VENV_STAMP: &str = ".mcp-auth-gateway-requirements-stamp";

/// Installs mcp-proxy from its hashed requirements, unless done already.
fn ensure_mcp_proxy() {
    let requirements = fs::read(bridges_dir().join("requirements.txt")).unwrap();
    let current = || {
        venv().join("bin/mcp-proxy").is_file()
            && fs::read(venv().join(VENV_STAMP)).is_ok_and(|s| s == requirements)
    };
    if current() {
        return;
    }
    let _lock = InstallLock::acquire("bench-mcp-proxy-install.lock", Duration::from_secs(300));
    if current() {
        return;
    }
    let needs = "the bridges benchmark needs Python 3.10+ with venv";
    let venv_arg = venv().display().to_string();
    let timeout = Duration::from_secs(300);
    let dir = bridges_dir();
    run_install(
        "python3",
        ["-m", "venv", "--clear", venv_arg.as_str()],
        &dir,
        "bench-mcp-proxy-venv.log",
        timeout,
        needs,
    );
    run_install(
        venv().join("bin/python").as_os_str(),
        [
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-input",
            "--require-hashes",
            "--only-binary",
            ":all:",
            "-r",
            "requirements.txt",
        ],
        &dir,
        "bench-mcp-proxy-pip-install.log",
        timeout,
        needs,
    );
    fs::write(venv().join(VENV_STAMP), requirements).unwrap();
}

/// Installs supergateway and server-everything (once per process).
fn ensure_installed() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        common::ensure_servers();
        common::npm_ci(
            &bridges_dir(),
            "supergateway",
            "bench-supergateway-install.lock",
            "bench-supergateway-npm-ci.log",
        );
        ensure_mcp_proxy();
    });
}

/// A free port on 127.0.0.1 (for the bridges that take a port, not an address).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A bridge under load: its name, URL and token; its process ends when dropped.
struct Bridge {
    name: &'static str,
    url: String,
    token: Option<&'static str>,
    gateway: Option<Gateway>,
    child: Option<tokio::process::Child>,
}

impl Bridge {
    async fn wrap() -> Bridge {
        let gw = Gateway::start(
            &[("MCP_AUTH_BEARER_TOKEN", ALICE)],
            &[],
            &common::everything(),
        )
        .await;
        Bridge {
            name: "mcp-auth-gateway wrap (static bearer)",
            url: gw.url.clone(),
            token: Some(ALICE),
            gateway: Some(gw),
            child: None,
        }
    }

    async fn external(name: &'static str, program: PathBuf, args: Vec<String>, port: u16) -> Self {
        let child = tokio::process::Command::new(program)
            .args(args)
            .current_dir(bridges_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("{name} did not start: {e}"));
        let bridge = Bridge {
            name,
            url: format!("http://127.0.0.1:{port}/mcp"),
            token: None,
            gateway: None,
            child: Some(child),
        };
        // Ready when a session opens (at most WAIT).
        let client = client(1);
        for _ in 0..150 {
            if let Ok(session) = bridge.open(&client).await {
                bridge.close(&client, &session).await;
                return bridge;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("{name} did not serve at {}", bridge.url);
    }

    async fn supergateway() -> Bridge {
        let port = free_port();
        let child = common::everything().join(" ");
        let args = [
            "node_modules/supergateway/dist/index.js",
            "--stdio",
            &child,
            "--outputTransport",
            "streamableHttp",
            "--stateful",
            "--logLevel",
            "none",
            "--port",
            &port.to_string(),
        ];
        let args = args.iter().map(|a| (*a).to_owned()).collect();
        Self::external("supergateway (no auth)", "node".into(), args, port).await
    }

    async fn mcp_proxy() -> Bridge {
        let port = free_port();
        let mut args: Vec<String> = [
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--log-level",
            "WARNING",
            "--",
        ]
        .iter()
        .map(|a| (*a).to_owned())
        .collect();
        args.extend(common::everything());
        Self::external(
            "mcp-proxy (no auth)",
            venv().join("bin/mcp-proxy"),
            args,
            port,
        )
        .await
    }

    fn post(&self, client: &reqwest::Client, session: Option<&str>) -> reqwest::RequestBuilder {
        let mut req = client
            .post(&self.url)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json");
        if let Some(token) = self.token {
            req = req.bearer_auth(token);
        }
        if let Some(session) = session {
            req = req
                .header("mcp-session-id", session)
                .header("mcp-protocol-version", VERSION);
        }
        req
    }

    /// Opens a session: initialize, then initialized.
    async fn open(&self, client: &reqwest::Client) -> Result<String, String> {
        let init = json!({
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": VERSION, "capabilities": {},
                       "clientInfo": {"name": "bridges-bench", "version": "0"}}
        });
        let res = self
            .post(client, None)
            .body(init.to_string())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = res.status();
        let session = res
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = res.text().await.map_err(|e| e.to_string())?;
        let Some(session) = session.filter(|_| status == 200 && text.contains("protocolVersion"))
        else {
            return Err(format!("initialize: {status} {text}"));
        };
        let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let res = self
            .post(client, Some(&session))
            .body(note.to_string())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !res.status().is_success() {
            return Err(format!("initialized: {}", res.status()));
        }
        Ok(session)
    }

    /// Ends a session (DELETE), so that its child, if it has one of its own, ends too.
    async fn close(&self, client: &reqwest::Client, session: &str) {
        let mut req = client
            .delete(&self.url)
            .header("mcp-session-id", session)
            .header("mcp-protocol-version", VERSION);
        if let Some(token) = self.token {
            req = req.bearer_auth(token);
        }
        let _ = req.send().await;
    }
}

/// A client with `conns` keep-alive HTTP/1.1 connections at most.
fn client(conns: usize) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(WAIT)
        .no_proxy()
        .http1_only()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(conns)
        .build()
        .unwrap()
}

/// One `tools/call echo` round trip; whether its answer is the echo.
async fn call(bridge: &Bridge, client: &reqwest::Client, session: &str, id: u64) -> bool {
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"echo","arguments":{{"message":"bench"}}}}}}"#
    );
    let Ok(res) = bridge.post(client, Some(session)).body(body).send().await else {
        return false;
    };
    let ok = res.status() == 200;
    let text = res.text().await.unwrap_or_default();
    ok && text.contains("Echo: bench") && text.contains(&format!("\"id\":{id}"))
}

/// One measurement's figures.
struct Sample {
    calls: u64,
    errors: u64,
    secs: f64,
    latencies: Vec<Duration>,
}

/// C closed loops in one new session: `warm` unmeasured, then `time` measured.
async fn measure(bridge: &Arc<Bridge>, conns: usize, warm: Duration, time: Duration) -> Sample {
    let client = client(conns);
    let session = bridge.open(&client).await.expect("open a session");
    let mut loops = Vec::new();
    for n in 0..conns {
        let (client, session, bridge) = (client.clone(), session.clone(), bridge.clone());
        loops.push(tokio::spawn(async move {
            let mut id = (n as u64 + 1) * 1_000_000_000;
            let start = Instant::now();
            while start.elapsed() < warm {
                id += 1;
                call(&bridge, &client, &session, id).await;
            }
            let (mut calls, mut errors, mut latencies) = (0, 0, Vec::new());
            let begin = Instant::now();
            while begin.elapsed() < time {
                id += 1;
                let sent = Instant::now();
                let ok = call(&bridge, &client, &session, id).await;
                if latencies.len() < MAX_SAMPLES / conns {
                    latencies.push(sent.elapsed());
                }
                calls += 1;
                errors += u64::from(!ok);
            }
            (calls, errors, latencies, begin.elapsed())
        }));
    }
    let mut sample = Sample {
        calls: 0,
        errors: 0,
        secs: 0.0,
        latencies: Vec::new(),
    };
    for l in loops {
        let (calls, errors, latencies, elapsed) = l.await.unwrap();
        sample.calls += calls;
        sample.errors += errors;
        sample.latencies.extend(latencies);
        sample.secs = sample.secs.max(elapsed.as_secs_f64());
    }
    bridge.close(&client, &session).await;
    sample
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn env_or(name: &str, default: u64) -> u64 {
    env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    let bench = env::args().any(|a| a == "--bench");
    let short = env::var_os("BENCH_SHORT").is_some();
    tokio::task::spawn_blocking(ensure_installed).await.unwrap();
    let bridges = vec![
        Arc::new(Bridge::wrap().await),
        Arc::new(Bridge::supergateway().await),
        Arc::new(Bridge::mcp_proxy().await),
    ];
    for bridge in &bridges {
        let client = client(1);
        let session = bridge.open(&client).await.unwrap();
        assert!(call(bridge, &client, &session, 1).await, "{}", bridge.name);
        bridge.close(&client, &session).await;
    }
    if !bench {
        println!("bridges: each bridge answered a tools/call (run `cargo bench` for figures)");
        stop(bridges).await;
        return;
    }
    let rounds = env_or("BENCH_BRIDGES_ROUNDS", if short { 2 } else { 6 });
    let ms = env_or("BENCH_BRIDGES_MS", if short { 600 } else { 2000 });
    let (warm, time) = (
        Duration::from_millis(if short { 200 } else { 300 }),
        Duration::from_millis(ms),
    );
    println!(
        "bridges: {rounds} rounds × ({warm:?} warm-up + {time:?}) per bridge and load; \
         child: server-everything (stdio), tool: echo"
    );
    // [load][bridge] → per-round throughput, all latencies, errors.
    let mut results = vec![vec![(Vec::new(), Vec::new(), 0u64); bridges.len()]; LOADS.len()];
    for _ in 0..rounds {
        for (l, &conns) in LOADS.iter().enumerate() {
            for (b, bridge) in bridges.iter().enumerate() {
                let s = measure(bridge, conns, warm, time).await;
                let r = &mut results[l][b];
                r.0.push(s.calls as f64 / s.secs);
                r.1.extend(s.latencies);
                r.2 += s.errors;
            }
        }
    }
    let mut met = true;
    for (l, &conns) in LOADS.iter().enumerate() {
        println!("\nC = {conns} (concurrent calls in one session)");
        println!(
            "| {:<38} | {:>10} | {:>9} | {:>9} | {:>6} |",
            "bridge", "calls/s", "p50", "p99", "errors"
        );
        println!(
            "| {:-<38} | {:->10} | {:->9} | {:->9} | {:->6} |",
            "", "", "", "", ""
        );
        let mut rows = Vec::new();
        for (b, bridge) in bridges.iter().enumerate() {
            let (rates, lat, errors) = &mut results[l][b];
            rates.sort_by(f64::total_cmp);
            lat.sort();
            let rate = rates[rates.len() / 2];
            let (p50, p99) = (percentile(lat, 0.5), percentile(lat, 0.99));
            println!(
                "| {:<38} | {:>10.0} | {:>7.0}µs | {:>7.0}µs | {:>6} |",
                bridge.name,
                rate,
                p50.as_secs_f64() * 1e6,
                p99.as_secs_f64() * 1e6,
                errors
            );
            rows.push((rate, p50));
        }
        let (ours, others) = rows.split_first().unwrap();
        let ok = others.iter().all(|(r, p)| ours.0 > *r && ours.1 < *p);
        met &= ok;
        println!(
            "target (wrap: more calls/s and a lower p50 than both): {}",
            if ok { "MET" } else { "NOT MET" }
        );
    }
    println!(
        "\nbridges: target {}",
        if met { "MET at every load" } else { "NOT MET" }
    );
    stop(bridges).await;
}

/// Ends every bridge with SIGTERM, so that each ends its children (then SIGKILL, after
/// [`WAIT`]).
async fn stop(bridges: Vec<Arc<Bridge>>) {
    for bridge in bridges {
        let mut bridge = Arc::into_inner(bridge).expect("no loop holds a bridge any more");
        if let Some(gw) = bridge.gateway.as_mut() {
            gw.sigterm();
            gw.wait().await;
        }
        if let Some(child) = bridge.child.as_mut() {
            if let Some(pid) = child.id() {
                common::signal(pid, rustix::process::Signal::TERM);
            }
            if tokio::time::timeout(WAIT, child.wait()).await.is_err() {
                let _ = child.kill().await;
            }
        }
    }
}
