//! Static tokens reloaded without a restart (`MCP_AUTH_BEARER_TOKENS_FILE`), over real sockets:
//! the example server (`examples/quickstart.rs`, in process) configured with a token file, which
//! the tests then edit, replace, break and signal about.
//!
//! The library's log is captured by one global subscriber (the watcher runs in a thread of its
//! own, so a per-thread subscriber would miss it); each test's file has its own path, which the
//! tests look for. Every wait polls at most 50 times, 100 ms apart; the watcher looks every
//! second.
#![cfg(unix)]

mod common;
#[path = "../examples/quickstart.rs"]
#[allow(dead_code, unreachable_pub)]
mod quickstart;

use std::{
    fs,
    io::{self, Write as _},
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, OnceLock},
    time::{Duration, SystemTime},
};

use common::{TestServer, client, serve_axum_with_peers};
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use mcp_server_auth::config::{ConfigError, EnvConfig};
use serde_json::json;
use tracing_subscriber::fmt::MakeWriter;

const ALICE: &str = "YWxpY2UtdG9rZW4tZm9yLXJlbG9hZC10ZXN0cw";
const BOB: &str = "Ym9iLXRva2VuLWZvci1yZWxvYWQtdGVzdHMtMTI";
const CAROL: &str = "Y2Fyb2wtdG9rZW4tZm9yLXJlbG9hZC10ZXN0czE";
/// On a broken line: must never be logged.
const LEAK: &str = "bGVhay10b2tlbi1vbi1hLWJyb2tlbi1saW5lLVE3";

// ---------------------------------------------------------------------------------------------
// Logs
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

/// Everything logged so far by every test of this binary.
fn logs() -> String {
    static LOGS: OnceLock<Capture> = OnceLock::new();
    let capture = LOGS.get_or_init(|| {
        let capture = Capture::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(capture.clone())
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        capture
    });
    String::from_utf8_lossy(&capture.0.lock().unwrap()).into_owned()
}

/// The lines of the log that name `path`.
fn logs_about(path: &Path) -> Vec<String> {
    let path = path.display().to_string();
    logs()
        .lines()
        .filter(|l| l.contains(&path))
        .map(str::to_owned)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Files and the server
// ---------------------------------------------------------------------------------------------

/// A fresh token file for test `name`, mode 0600, with `text`.
fn token_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mcp-token-reload-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    write_in_place(&path, text);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// Rewrites the file where it is (same inode), as `>` in a shell does.
fn write_in_place(path: &Path, text: &str) {
    let mut file = fs::File::create(path).unwrap();
    file.write_all(text.as_bytes()).unwrap();
    file.sync_all().unwrap();
}

/// Replaces the file by a rename (a new inode), as editors and secret volumes do.
fn replace(path: &Path, text: &str) {
    let next = path.with_extension("next");
    write_in_place(&next, text);
    fs::set_permissions(&next, fs::Permissions::from_mode(0o600)).unwrap();
    fs::rename(&next, path).unwrap();
}

/// The example server with `MCP_AUTH_BEARER_TOKENS_FILE` = `path`, and its configuration.
async fn example(path: &Path) -> (TestServer, EnvConfig) {
    logs(); // The subscriber is in place before anything is logged.
    let config =
        EnvConfig::from_vars([("MCP_AUTH_BEARER_TOKENS_FILE", path.display().to_string())])
            .unwrap();
    let (app, _shutdown) = quickstart::app(&config).await.unwrap();
    (serve_axum_with_peers(app).await, config)
}

/// The status of an MCP `initialize` with `token`.
async fn status(server: &TestServer, token: &str) -> u16 {
    client()
        .post(server.url("/mcp"))
        .header(CONTENT_TYPE, "application/json")
        .header("accept", "application/json, text/event-stream")
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .json(
            &json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{
            "protocolVersion":"2025-11-25","capabilities":{},
            "clientInfo":{"name":"reload-test","version":"0"}}}),
        )
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Polls `check` at most 50 times, 100 ms apart, until it holds.
async fn eventually<F, Fut>(mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    for _ in 0..50 {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_token_added_to_the_file_is_accepted_and_a_removed_one_refused_without_a_restart() {
    let path = token_file("add-remove", &format!("alice:{ALICE}\nbob:{BOB}\n"));
    let (server, _config) = example(&path).await;
    assert_eq!(status(&server, ALICE).await, 200);
    assert_eq!(status(&server, BOB).await, 200);
    assert_eq!(status(&server, CAROL).await, 401);

    // Carol added, by a rename (a new inode).
    replace(
        &path,
        &format!("alice:{ALICE}\nbob:{BOB}\ncarol:{CAROL} mcp:read\n"),
    );
    assert!(eventually(|| async { status(&server, CAROL).await == 200 }).await);

    // Bob removed, by a rewrite in place (the same inode; the length and time change).
    write_in_place(&path, &format!("alice:{ALICE}\ncarol:{CAROL} mcp:read\n"));
    assert!(eventually(|| async { status(&server, BOB).await == 401 }).await);
    assert_eq!(status(&server, ALICE).await, 200);
    assert_eq!(status(&server, CAROL).await, 200);
    assert!(
        logs_about(&path)
            .iter()
            .any(|l| l.contains("bearer tokens reloaded") && l.contains("tokens=2")),
        "{}",
        logs()
    );
}

#[tokio::test]
async fn sighup_reloads_a_file_whose_change_the_watcher_cannot_see() {
    // The same length, inode and modification time before and after: only SIGHUP tells.
    let long_ago = SystemTime::now() - Duration::from_secs(3600);
    let path = token_file("sighup", &format!("ci:{BOB}\n"));
    fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(long_ago)
        .unwrap();
    let (server, config) = example(&path).await;
    quickstart::reload_tokens_on_hangup(&config).unwrap();
    assert_eq!(status(&server, BOB).await, 200);

    assert_eq!(BOB.len(), CAROL.len());
    // Overwritten in place without truncation, and the time set back through the same handle.
    let mut file = fs::File::options().write(true).open(&path).unwrap();
    file.write_all(format!("ci:{CAROL}\n").as_bytes()).unwrap();
    file.set_modified(long_ago).unwrap();
    drop(file);
    // More than one watch interval: the watcher does not see it.
    for _ in 0..15 {
        assert_eq!(status(&server, CAROL).await, 401, "{}", logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let sent = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    assert!(eventually(|| async { status(&server, CAROL).await == 200 }).await);
    assert_eq!(status(&server, BOB).await, 401);
}

#[tokio::test]
async fn a_broken_file_keeps_the_tokens_in_use_and_the_log_names_the_line_not_the_token() {
    let path = token_file("broken", &format!("alice:{ALICE}\nbob:{BOB}\n"));
    let (server, _config) = example(&path).await;
    assert_eq!(status(&server, BOB).await, 200);

    // Bob removed, and line 3 broken (a malformed scope): the whole file is refused.
    replace(
        &path,
        &format!("alice:{ALICE}\n# leaky's token:\nleaky:{LEAK} mcp:read bad\"scope\n"),
    );
    let needle = format!("{}, line 3:", path.display());
    assert!(
        eventually(|| async { logs_about(&path).iter().any(|l| l.contains(&needle)) }).await,
        "{}",
        logs()
    );
    assert_eq!(status(&server, BOB).await, 200, "the old set is kept whole");
    assert_eq!(status(&server, ALICE).await, 200);
    assert_eq!(status(&server, LEAK).await, 401);
    let log = logs();
    for secret in [LEAK, ALICE, BOB, "bad\"scope", "leaky"] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
    assert!(log.contains("the tokens in use are kept"), "{log}");

    // Fixed: the file is taken again.
    replace(&path, &format!("alice:{ALICE}\ncarol:{CAROL}\n"));
    assert!(eventually(|| async { status(&server, BOB).await == 401 }).await);
    assert_eq!(status(&server, CAROL).await, 200);
}

#[tokio::test]
async fn a_file_others_can_read_is_accepted_with_a_warning() {
    let open = token_file("world-readable", &format!("alice:{ALICE}\n"));
    fs::set_permissions(&open, fs::Permissions::from_mode(0o644)).unwrap();
    let closed = token_file("owner-only", &format!("alice:{ALICE}\n"));
    let (server, _config) = example(&open).await;
    let _ = example(&closed).await;
    assert_eq!(status(&server, ALICE).await, 200);
    let warned = |path: &Path| {
        logs_about(path)
            .iter()
            .any(|l| l.contains("WARN") && l.contains("read by its group or by others"))
    };
    assert!(warned(&open), "{}", logs());
    assert!(logs_about(&open).iter().any(|l| l.contains("mode=644")));
    assert!(!warned(&closed), "{}", logs());
}

#[test]
fn the_file_and_the_token_variables_together_are_a_start_up_error_that_says_so() {
    let path = token_file("with-variables", &format!("alice:{ALICE}\n"));
    let path = path.display().to_string();
    for (var, value) in [
        ("MCP_AUTH_BEARER_TOKENS", format!("bob:{BOB}")),
        ("MCP_AUTH_BEARER_TOKEN", BOB.to_owned()),
        ("MCP_AUTH_BEARER_TOKEN_SCOPES", "alice=mcp:read".to_owned()),
    ] {
        let e = EnvConfig::from_vars([("MCP_AUTH_BEARER_TOKENS_FILE", path.clone()), (var, value)])
            .unwrap_err();
        assert_eq!(e, ConfigError::TokenFileWithVariables);
        let message = e.to_string();
        assert!(message.contains("MCP_AUTH_BEARER_TOKENS_FILE"), "{message}");
        assert!(message.contains(var), "{message}");
    }
}

#[test]
fn a_file_that_cannot_be_read_or_parsed_at_start_up_is_a_start_up_error() {
    let missing = std::env::temp_dir().join("mcp-token-reload-no-such-file");
    let e = EnvConfig::from_vars([("MCP_AUTH_BEARER_TOKENS_FILE", missing.display().to_string())])
        .unwrap_err();
    let message = e.to_string();
    assert!(matches!(e, ConfigError::TokenFile(_)), "{e:?}");
    assert!(
        message.contains(&missing.display().to_string()),
        "{message}"
    );

    let broken = token_file("broken-at-start", &format!("alice:{ALICE}\n\nnot a line\n"));
    let e = EnvConfig::from_vars([("MCP_AUTH_BEARER_TOKENS_FILE", broken.display().to_string())])
        .unwrap_err();
    let message = e.to_string();
    assert!(message.contains(", line 3:"), "{message}");
    assert!(!message.contains(ALICE) && !message.contains("not a line"));
}
