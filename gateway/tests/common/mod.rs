//! Shared helpers for the gateway's tests: the real binary on 127.0.0.1, real stdio servers
//! (`@modelcontextprotocol/server-everything` from `tests/servers/package-lock.json`, and
//! `tests/servers/stub.mjs`), a real HTTP client, and process checks through `/proc`.
#![allow(dead_code)]

#[path = "../../../tests/common/install.rs"]
pub mod install;

use std::{
    fs,
    path::{Path, PathBuf},
    process::{ExitStatus, Stdio},
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

use install::{InstallLock, run_install};

/// Static tokens of two principals, `alice` and `bob`.
pub const ALICE: &str = "YWxpY2UtdG9rZW4tZm9yLWdhdGV3YXktdGVzdHM";
pub const BOB: &str = "Ym9iLXRva2VuLWZvci1nYXRld2F5LXRlc3RzLTE";
/// `MCP_AUTH_BEARER_TOKENS` for both.
pub fn two_tokens() -> String {
    format!("alice:{ALICE},bob:{BOB}")
}

/// The longest any single wait in these tests may take.
pub const WAIT: Duration = Duration::from_secs(30);

const NEEDS: &str = "the gateway tests need Node.js 20+ with npm";

/// `gateway/tests/servers`.
pub fn servers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/servers")
}

/// `tests/interop/clients` of the library, where the TypeScript SDK client lives.
pub fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/interop/clients")
}

/// Inside `node_modules`, so that `npm ci` (which starts by deleting it) removes it. The same
/// name as the library's interop tests use, so that both see one install as current.
const NPM_STAMP: &str = ".mcp-server-auth-lock-stamp";

fn npm_up_to_date(dir: &Path, package: &str) -> bool {
    let modules = dir.join("node_modules");
    let lock = fs::read(dir.join("package-lock.json")).unwrap();
    modules.join(package).join("package.json").is_file()
        && fs::read(modules.join(NPM_STAMP)).is_ok_and(|stamp| stamp == lock)
}

/// `npm ci` in `dir` from its committed lock file, unless done already; `lock` serialises
/// test binaries (the library's interop tests use the same lock name for the clients).
pub fn npm_ci(dir: &Path, package: &str, lock: &str, log: &str) {
    if npm_up_to_date(dir, package) {
        return;
    }
    let _lock = InstallLock::acquire(lock, Duration::from_secs(300));
    if npm_up_to_date(dir, package) {
        return;
    }
    run_install(
        "npm",
        ["ci", "--no-audit", "--no-fund"],
        dir,
        log,
        Duration::from_secs(300),
        NEEDS,
    );
    fs::write(
        dir.join("node_modules").join(NPM_STAMP),
        fs::read(dir.join("package-lock.json")).unwrap(),
    )
    .unwrap();
}

/// Installs server-everything (once per process).
pub fn ensure_servers() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        npm_ci(
            &servers_dir(),
            "@modelcontextprotocol/server-everything",
            "gateway-servers-install.lock",
            "gateway-servers-npm-ci.log",
        )
    });
}

/// Runs `node SCRIPT ARGS` in the interop clients' directory (at most [`WAIT`] × 2) and returns
/// the one JSON line it prints.
pub async fn run_node_client(script_and_args: &[&str]) -> Value {
    tokio::task::spawn_blocking(ensure_clients).await.unwrap();
    let child = tokio::process::Command::new("node")
        .args(script_and_args)
        .current_dir(clients_dir())
        .env("NO_PROXY", "*")
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node is needed for the SDK client tests");
    let out = tokio::time::timeout(WAIT * 2, child.wait_with_output())
        .await
        .expect("the TypeScript client took too long")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|_| {
        panic!(
            "the client printed no JSON line ({}):\n{stdout}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Runs `python SCRIPT ARGS` with the Python SDK client's interpreter, in `dir`, with `env`
/// added (at most [`WAIT`] × 2), and returns the one JSON line it prints.
pub async fn run_python_client(
    dir: &Path,
    script_and_args: &[&str],
    env: &[(&str, &str)],
) -> Value {
    tokio::task::spawn_blocking(ensure_python_client)
        .await
        .unwrap();
    let child = tokio::process::Command::new(venv_python())
        .args(script_and_args)
        .current_dir(dir)
        .envs(env.iter().copied())
        .env("NO_PROXY", "*")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let out = tokio::time::timeout(WAIT * 2, child.wait_with_output())
        .await
        .expect("the Python client took too long")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|_| {
        panic!(
            "no JSON line:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// `tests/clients` of the gateway: its own Python SDK client scripts.
pub fn gateway_clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

/// Installs the TypeScript SDK client (once per process).
pub fn ensure_clients() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        npm_ci(
            &clients_dir(),
            "@modelcontextprotocol/sdk",
            "interop-clients-install.lock",
            "interop-clients-npm-ci.log",
        )
    });
}

/// The virtual environment of the Python SDK client: the one the library's interop tests use
/// (`CARGO_TARGET_TMPDIR` is the workspace's), with the same stamp.
pub fn venv_python() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("interop-venv/bin/python")
}

const VENV_STAMP: &str = ".mcp-server-auth-requirements-stamp";

fn venv_up_to_date() -> bool {
    let requirements = fs::read(clients_dir().join("requirements.txt")).unwrap();
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("interop-venv");
    venv_python().is_file()
        && fs::read(venv.join(VENV_STAMP)).is_ok_and(|stamp| stamp == requirements)
}

/// Installs the Python SDK client from its hashed requirements (once per process).
pub fn ensure_python_client() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        if venv_up_to_date() {
            return;
        }
        let _lock = InstallLock::acquire("interop-clients-install.lock", Duration::from_secs(300));
        if venv_up_to_date() {
            return;
        }
        let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("interop-venv");
        let dir = clients_dir();
        let needs = "the Python SDK client test needs Python 3.11+ with venv";
        let venv_arg = venv.display().to_string();
        let timeout = Duration::from_secs(300);
        run_install(
            "python3",
            ["-m", "venv", "--clear", venv_arg.as_str()],
            &dir,
            "interop-clients-venv.log",
            timeout,
            needs,
        );
        run_install(
            venv_python().as_os_str(),
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
            "interop-clients-pip-install.log",
            timeout,
            needs,
        );
        fs::write(
            venv.join(VENV_STAMP),
            fs::read(dir.join("requirements.txt")).unwrap(),
        )
        .unwrap();
    });
}

/// The command of server-everything over stdio.
pub fn everything() -> Vec<String> {
    ensure_servers();
    let index =
        servers_dir().join("node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    vec!["node".into(), index.display().to_string(), "stdio".into()]
}

/// The command of the stub server, with `args`.
pub fn stub(args: &[&str]) -> Vec<String> {
    let mut cmd = vec![
        "node".into(),
        servers_dir().join("stub.mjs").display().to_string(),
    ];
    cmd.extend(args.iter().map(|a| (*a).to_owned()));
    cmd
}

/// A running gateway; sent SIGTERM (then killed) when dropped.
pub struct Gateway {
    child: tokio::process::Child,
    /// The MCP endpoint's URL.
    pub url: String,
    /// The gateway's pid.
    pub pid: u32,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

fn collect<R: tokio::io::AsyncRead + Unpin + Send + 'static>(reader: R, into: Arc<Mutex<String>>) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(reader).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let mut text = into.lock().unwrap();
            text.push_str(&line);
            text.push('\n');
        }
    });
}

/// The command line of the gateway: `wrap --listen 127.0.0.1:0 OPTIONS -- COMMAND`, with only
/// the variables of `env` among the auth variables.
pub fn gateway_command(
    env: &[(&str, &str)],
    options: &[&str],
    command: &[String],
) -> tokio::process::Command {
    let mut args = vec!["wrap".to_owned()];
    args.extend(options.iter().map(|o| (*o).to_owned()));
    args.push("--".to_owned());
    args.extend(command.iter().cloned());
    binary_command(env, &args)
}

/// The gateway binary with `args`, with only the variables of `env` among the auth variables.
pub fn binary_command(env: &[(&str, &str)], args: &[String]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_mcp-auth-gateway"));
    cmd.args(args);
    for (name, _) in std::env::vars_os() {
        let n = name.to_string_lossy().to_ascii_uppercase();
        if n.starts_with("MCP_AUTH_") || n.starts_with("FLY_MCP_") {
            cmd.env_remove(&name);
        }
    }
    cmd.envs(env.iter().copied());
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

impl Gateway {
    /// Starts the gateway on a free loopback port and waits until it serves.
    pub async fn start(env: &[(&str, &str)], options: &[&str], command: &[String]) -> Gateway {
        let mut opts = vec!["--listen", "127.0.0.1:0"];
        opts.extend_from_slice(options);
        Self::spawn(gateway_command(env, &opts, command)).await
    }

    /// Starts `mcp-auth-gateway proxy --listen 127.0.0.1:0 OPTIONS UPSTREAM` and waits until it
    /// serves.
    pub async fn proxy(env: &[(&str, &str)], options: &[&str], upstream: &str) -> Gateway {
        let mut args = vec!["proxy".to_owned(), "--listen".into(), "127.0.0.1:0".into()];
        args.extend(options.iter().map(|o| (*o).to_owned()));
        args.push(upstream.to_owned());
        Self::spawn(binary_command(env, &args)).await
    }

    async fn spawn(mut command: tokio::process::Command) -> Gateway {
        let mut child = command.spawn().unwrap();
        let pid = child.id().unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        collect(child.stderr.take().unwrap(), stderr.clone());
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let stdout = Arc::new(Mutex::new(String::new()));
        let first = tokio::time::timeout(WAIT, lines.next_line()).await;
        let url = match first {
            Ok(Ok(Some(line))) => line
                .strip_prefix("mcp-auth-gateway: MCP endpoint at ")
                .unwrap_or_else(|| panic!("unexpected first line: {line}"))
                .to_owned(),
            other => panic!(
                "the gateway did not start ({other:?}); stderr:\n{}",
                stderr.lock().unwrap()
            ),
        };
        collect(lines.into_inner(), stdout.clone());
        Gateway {
            child,
            url,
            pid,
            stdout,
            stderr,
        }
    }

    /// What the gateway printed on stdout after the URL line, so far.
    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    /// The gateway's log so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Sends SIGTERM.
    pub fn sigterm(&self) {
        signal(self.pid, rustix::process::Signal::TERM);
    }

    /// Waits (at most [`WAIT`]) for the gateway to exit.
    pub async fn wait(&mut self) -> ExitStatus {
        match tokio::time::timeout(WAIT, self.child.wait()).await {
            Ok(status) => status.unwrap(),
            Err(_) => panic!("the gateway did not exit; log:\n{}", self.stderr()),
        }
    }

    /// An MCP client of this gateway with `token`.
    pub fn client(&self, token: &str) -> Mcp {
        Mcp {
            http: http_client(),
            url: self.url.clone(),
            token: token.to_owned(),
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        // SIGTERM first, so that the gateway ends its children even when a test fails.
        if matches!(self.child.try_wait(), Ok(None)) {
            self.sigterm();
        }
    }
}

/// Sends `signal` to the process `pid`.
pub fn signal(pid: u32, signal: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(pid as i32).unwrap();
    let _ = rustix::process::kill_process(pid, signal);
}

/// An HTTP client with a timeout, so that no request can hang a test.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(WAIT)
        .no_proxy()
        .build()
        .unwrap()
}

/// A raw MCP client: JSON-RPC over POST, with one static token.
pub struct Mcp {
    pub http: reqwest::Client,
    pub url: String,
    pub token: String,
}

impl Mcp {
    /// A POST of `body`, in `session` if given.
    pub async fn post(&self, session: Option<&str>, body: &Value) -> reqwest::Response {
        let mut req = self
            .http
            .post(&self.url)
            .bearer_auth(&self.token)
            .header("accept", "application/json, text/event-stream")
            .json(body);
        if let Some(s) = session {
            req = req.header("mcp-session-id", s);
        }
        req.send().await.unwrap()
    }

    /// Opens a session (initialize, then initialized) and returns its id.
    pub async fn initialize(&self) -> String {
        let res = self
            .post(
                None,
                &json!({
                    "jsonrpc": "2.0", "id": 0, "method": "initialize",
                    "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                               "clientInfo": {"name": "gateway-test", "version": "0"}}
                }),
            )
            .await;
        assert_eq!(res.status(), 200);
        let id = res.headers()["mcp-session-id"].to_str().unwrap().to_owned();
        let answer = answer_of(res).await;
        assert!(answer["result"]["protocolVersion"].is_string(), "{answer}");
        let res = self
            .post(
                Some(&id),
                &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
            )
            .await;
        assert_eq!(res.status(), 202);
        id
    }

    /// Calls a tool in `session`; returns the JSON-RPC answer.
    pub async fn call(&self, session: &str, id: u64, tool: &str, args: Value) -> Value {
        let res = self
            .post(
                Some(session),
                &json!({
                    "jsonrpc": "2.0", "id": id, "method": "tools/call",
                    "params": {"name": tool, "arguments": args}
                }),
            )
            .await;
        assert_eq!(res.status(), 200, "tools/call {tool}");
        answer_of(res).await
    }
}

/// The JSON-RPC answer of a response: its JSON body, or the last event of its event stream
/// that has an `id`.
pub async fn answer_of(res: reqwest::Response) -> Value {
    let sse = res
        .headers()
        .get("content-type")
        .is_some_and(|v| v.to_str().unwrap().starts_with("text/event-stream"));
    let text = res.text().await.unwrap();
    if !sse {
        return serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    }
    events(&text)
        .into_iter()
        .rfind(|e| e.get("id").is_some())
        .unwrap_or_else(|| panic!("no answer in the stream: {text}"))
}

/// The JSON data of every event of an event stream.
pub fn events(text: &str) -> Vec<Value> {
    // Lines may end with CRLF (the Python SDK's server writes them).
    let text = text.replace("\r\n", "\n");
    text.split("\n\n")
        .filter_map(|event| {
            let data: Vec<&str> = event
                .lines()
                .filter_map(|l| l.strip_prefix("data: "))
                .collect();
            (!data.is_empty()).then(|| serde_json::from_str(&data.join("\n")).unwrap())
        })
        .collect()
}

/// The text of a `tools/call` answer.
pub fn tool_text(answer: &Value) -> String {
    answer["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text in {answer}"))
        .to_owned()
}

/// Whether process `pid` exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, Some(Some('Z' | 'X')))
}

/// The processes whose parent is `pid`.
pub fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(pid) && alive(child) {
            out.push(child);
        }
    }
    out
}

/// Waits (at most [`WAIT`], polling) until `pid` is gone; whether it went.
pub async fn gone(pid: u32) -> bool {
    for _ in 0..300 {
        if !alive(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// A POST of an MCP 2026-07-28 client: no session; the version, method and name headers on
/// every request, as the revision's standard headers say.
pub async fn post_2026(gw: &Gateway, token: &str, body: Value) -> reqwest::Response {
    let mut req = http_client()
        .post(&gw.url)
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", body["method"].as_str().unwrap());
    if let Some(name) = body["params"]["name"].as_str() {
        req = req.header("mcp-name", name);
    }
    req.json(&body).send().await.unwrap()
}

pub fn request_2026(id: u64, method: &str, params: Value) -> Value {
    with_capabilities(id, method, params, json!({}))
}

pub fn with_capabilities(id: u64, method: &str, params: Value, capabilities: Value) -> Value {
    let mut params = params;
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": capabilities,
    });
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}
