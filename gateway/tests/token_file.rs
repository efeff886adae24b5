//! The gateway honours `MCP_AUTH_BEARER_TOKENS_FILE` as the library's example server does: the
//! real binary (`proxy`, in front of a small upstream that answers every request) follows the
//! file as it changes, and reloads it on `SIGHUP`. Every wait is bounded (50 polls, 100 ms
//! apart).
#![cfg(unix)]

mod common;

use std::{fs, os::unix::fs::PermissionsExt, path::Path, time::Duration};

use axum::{Router, routing::any};
use common::*;
use serde_json::json;

const CAROL: &str = "Y2Fyb2wtdG9rZW4tZm9yLWdhdGV3YXktdGVzdHM";

/// An upstream that answers `200` to everything; returns its URL.
async fn start_upstream() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let app = Router::new().route("/mcp", any(|| async { "{}" }));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

async fn status(gw: &Gateway, token: &str) -> u16 {
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
    gw.client(token).post(None, &ping).await.status().as_u16()
}

async fn eventually(gw: &Gateway, token: &str, expected: u16) -> bool {
    for _ in 0..50 {
        if status(gw, token).await == expected {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

fn write(path: &Path, text: &str) {
    let next = path.with_extension("next");
    fs::write(&next, text).unwrap();
    fs::set_permissions(&next, fs::Permissions::from_mode(0o600)).unwrap();
    fs::rename(&next, path).unwrap();
}

#[tokio::test]
async fn the_gateway_takes_its_tokens_from_the_file_and_follows_it_and_sighup() {
    let dir = std::env::temp_dir().join(format!("mcp-gateway-token-file-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let path = dir.join("tokens");
    write(
        &path,
        &format!("# the team\nalice:{ALICE}\nbob:{BOB} mcp:read\n"),
    );
    let url = start_upstream().await;
    let file = path.display().to_string();
    let gw = Gateway::proxy(&[("MCP_AUTH_BEARER_TOKENS_FILE", &file)], &[], &url).await;
    assert_eq!(status(&gw, ALICE).await, 200, "{}", gw.stderr());
    assert_eq!(status(&gw, BOB).await, 200);
    assert_eq!(status(&gw, CAROL).await, 401);
    assert!(
        gw.stdout().contains(&format!("the 2 tokens of {file}")),
        "{}",
        gw.stdout()
    );

    // Bob removed, Carol added: followed without a signal.
    write(&path, &format!("alice:{ALICE}\ncarol:{CAROL}\n"));
    assert!(eventually(&gw, BOB, 401).await, "{}", gw.stderr());
    assert_eq!(status(&gw, CAROL).await, 200);

    // A broken file keeps the tokens; SIGHUP reads it again at once, and says why it failed.
    write(
        &path,
        &format!("alice:{ALICE}\ncarol:{CAROL}\nnot a token line\n"),
    );
    signal(gw.pid, rustix::process::Signal::HUP);
    let needle = format!("{file}, line 3:");
    for _ in 0..50 {
        if gw.stderr().contains(&needle) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = gw.stderr();
    assert!(log.contains(&needle), "{log}");
    assert!(
        !log.contains(CAROL) && !log.contains("not a token line"),
        "{log}"
    );
    assert_eq!(status(&gw, CAROL).await, 200);
    assert!(alive(gw.pid), "SIGHUP must not stop the gateway");
    let _ = fs::remove_dir_all(&dir);
}
