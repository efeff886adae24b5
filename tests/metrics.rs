//! The example server as an operator runs it, in a process of its own: `/metrics` on
//! `MCP_AUTH_METRICS_LISTEN` scraped after known traffic (exact counter values), and
//! `MCP_AUTH_AUDIT_LOG=<file>` appended to, then moved away and `SIGHUP` sent: the next lines go
//! to a new file at the same path.
//!
//! The server process is this test binary run again with only the ignored test
//! `example_server_process` selected and `AUDIT_TEST_EXAMPLE=1`: that test runs the example's
//! own `main` (its configuration from the environment, its telemetry, its signal handling).
#![cfg(unix)] // SIGHUP.

mod common;
#[path = "../examples/quickstart.rs"]
#[allow(dead_code, unreachable_pub)]
mod quickstart;

use std::{
    collections::BTreeMap,
    net::{SocketAddr, TcpListener},
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

use serde_json::{Value, json};

const GOOD: &str = "bWV0cmljcy10ZXN0LXRva2VuLVI3dEsycFE5";
const WRONG: &str = "d3JvbmctbWV0cmljcy10b2tlbi1ZNHdONnhM";

#[test]
#[ignore = "the example server process of the other tests (run by them)"]
fn example_server_process() {
    if std::env::var_os("AUDIT_TEST_EXAMPLE").is_some() {
        quickstart::main();
    }
}

/// A free port on 127.0.0.1 (free when asked; the server binds it a moment later).
fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// The example server in its own process; killed when dropped.
struct Example {
    child: Child,
    listen: SocketAddr,
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Example {
    /// Starts it with `vars`, and waits (bounded) until it answers on its MCP address.
    async fn start(vars: &[(&str, &str)]) -> Example {
        let listen = free_addr();
        let mut command = Command::new(std::env::current_exe().unwrap());
        command
            .args([
                "--exact",
                "example_server_process",
                "--ignored",
                "--nocapture",
            ])
            .env("AUDIT_TEST_EXAMPLE", "1")
            .env("MCP_AUTH_LISTEN", listen.to_string())
            .env("MCP_AUTH_BEARER_TOKEN", GOOD)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (name, _) in std::env::vars() {
            if name.starts_with("MCP_AUTH_") && name != "MCP_AUTH_LISTEN" {
                command.env_remove(name);
            }
        }
        command.envs(vars.iter().copied());
        let example = Example {
            child: command.spawn().unwrap(),
            listen,
        };
        for _ in 0..400 {
            if example.post(None).await.is_some() {
                return example;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the example server did not answer on {listen}");
    }

    /// POSTs an `initialize` with `token`; the status, if the server answered.
    async fn post(&self, token: Option<&str>) -> Option<u16> {
        let mut req = common::client()
            .post(format!("http://{}/mcp", self.listen))
            .header("accept", "application/json, text/event-stream")
            .json(
                &json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{
                "protocolVersion":"2025-11-25","capabilities":{},
                "clientInfo":{"name":"metrics-test","version":"0"}}}),
            );
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        Some(req.send().await.ok()?.status().as_u16())
    }
}

/// A Prometheus text scrape: sample name with its labels sorted → value.
fn parse(text: &str) -> BTreeMap<String, f64> {
    let mut samples = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line.rsplit_once(' ').unwrap();
        let key = match series.split_once('{') {
            None => series.to_owned(),
            Some((name, labels)) => {
                let mut labels: Vec<&str> = labels.trim_end_matches('}').split(',').collect();
                labels.sort_unstable();
                format!("{name}{{{}}}", labels.join(","))
            }
        };
        samples.insert(key, value.parse().unwrap());
    }
    samples
}

/// The decisions counter's key for these labels.
fn decisions(outcome: &str, reason: &str, scheme: &str, layer: &str) -> String {
    format!(
        "mcp_auth_decisions_total{{layer=\"{layer}\",outcome=\"{outcome}\",reason=\"{reason}\",\
         scheme=\"{scheme}\"}}"
    )
}

#[tokio::test]
async fn metrics_count_exactly_the_traffic_sent() {
    let metrics = free_addr().to_string();
    let example = Example::start(&[
        ("MCP_AUTH_METRICS_LISTEN", &metrics),
        ("MCP_AUTH_FAILURE_LIMIT", "3"),
    ])
    .await;
    // Start-up sent one request without credentials (one more below).
    assert_eq!(example.post(None).await, Some(401));
    for _ in 0..2 {
        assert_eq!(example.post(Some(GOOD)).await, Some(200));
    }
    for _ in 0..3 {
        assert_eq!(example.post(Some(WRONG)).await, Some(401));
    }
    assert_eq!(example.post(Some(GOOD)).await, Some(429));

    let text = common::client()
        .get(format!("http://{metrics}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let samples = parse(&text);
    let expected = [
        (decisions("allowed", "none", "bearer", "auth"), 2.0),
        (decisions("refused", "no_credentials", "none", "auth"), 2.0),
        (decisions("refused", "invalid_token", "bearer", "auth"), 3.0),
        (
            decisions("throttled", "throttled", "bearer", "throttle"),
            1.0,
        ),
        ("mcp_auth_throttled_total".to_owned(), 1.0),
        ("mcp_auth_verification_seconds_count".to_owned(), 7.0),
    ];
    for (key, value) in expected {
        assert_eq!(samples.get(&key), Some(&value), "{key} in:\n{text}");
    }
    let decided: f64 = samples
        .iter()
        .filter(|(k, _)| k.starts_with("mcp_auth_decisions_total"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(decided, 8.0, "{text}");
    assert!(text.contains("# HELP mcp_auth_decisions_total"), "{text}");
    assert!(!text.contains(GOOD) && !text.contains(WRONG), "{text}");
}

/// The audit lines of `path`, parsed.
fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn the_audit_file_is_appended_to_and_reopened_on_sighup() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "audit-log-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("audit.jsonl");
    std::fs::write(&path, "").unwrap();
    let example = Example::start(&[("MCP_AUTH_AUDIT_LOG", path.to_str().unwrap())]).await;
    // Appended to: what was there stays.
    assert_eq!(lines(&path).len(), 1, "the start-up probe is one line");
    assert_eq!(example.post(Some(GOOD)).await, Some(200));
    assert_eq!(example.post(Some(WRONG)).await, Some(401));
    let before = lines(&path);
    assert_eq!(before.len(), 3);
    assert_eq!(before[1]["outcome"], "allowed");
    assert_eq!(before[1]["subject"], "default");
    assert_eq!(before[2]["reason"], "invalid_token");

    // What logrotate does: move the file away, then SIGHUP.
    let rotated = dir.join("audit.jsonl.1");
    std::fs::rename(&path, &rotated).unwrap();
    let pid = example.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    // The server reopens in a task of its own: send until a line lands in the new file.
    let mut sent = 0;
    while lines(&path).is_empty() {
        assert!(sent < 200, "no line in a new file after SIGHUP");
        assert_eq!(example.post(None).await, Some(401));
        sent += 1;
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let (old, new) = (lines(&rotated), lines(&path));
    assert_eq!(
        old.len() + new.len(),
        3 + sent,
        "every line in one of the files"
    );
    assert!(!new.is_empty());
    for line in &new {
        assert_eq!(line["reason"], "no_credentials");
    }
    // Still alive after the signal (SIGHUP's default action would have ended it).
    assert_eq!(example.post(Some(GOOD)).await, Some(200));
    assert_eq!(lines(&path).last().unwrap()["outcome"], "allowed");
    drop(example);
    let _ = std::fs::remove_dir_all(&dir);
}
