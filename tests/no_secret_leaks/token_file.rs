//! The token file (`MCP_AUTH_BEARER_TOKENS_FILE`): the errors of a file that fails to load, at
//! start-up and at a reload, and the log of a reload that keeps the tokens in use, name the
//! file and the line, never a token of it (good or bad), nor any other part of a line.

use std::{fs, os::unix::fs::PermissionsExt};

use mcp_server_auth::reload::ReloadHandle;

use super::*;

/// A token on a line that is wrong for another reason (a malformed scope).
const FILE_LINE_TOKEN: &str = "ZmlsZS1saW5lLXRva2VuLWJhZC1zY29wZS1WOGs";
/// A token given twice.
const FILE_DUPLICATE: &str = "ZmlsZS1kdXBsaWNhdGUtdG9rZW4tUjJtWHE3";
/// Too short.
const FILE_SHORT: &str = "ZmlsZS1zaG9y";
/// Characters outside b64token (reported by line, so the rest cannot leak either).
const FILE_BAD_CHARS: &str = "ZmlsZS1iYWQ!Y2hhcnMtTjR3";

fn file_secrets() -> Secrets {
    let mut s = all_secrets();
    s.add("token on a line with a bad scope", FILE_LINE_TOKEN)
        .add("duplicated file token", FILE_DUPLICATE)
        .add("short file token", FILE_SHORT)
        .add("file token with bad characters", FILE_BAD_CHARS);
    s
}

#[test]
fn token_file_errors_and_reload_logs_name_the_line_and_no_token() {
    let secrets = file_secrets();
    let dir = std::env::temp_dir().join(format!("mcp-token-file-log-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let path = dir.join("tokens");
    let good = format!("ci:{TOKEN_CI} mcp:read\nlaptop:{TOKEN_LAPTOP}\n");
    fs::write(&path, &good).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    let broken = [
        (
            format!("{good}x:{FILE_LINE_TOKEN} mcp:read bad\"scope\n"),
            3,
        ),
        (
            format!("{good}a:{FILE_DUPLICATE}\n\nb:{FILE_DUPLICATE}\n"),
            5,
        ),
        (format!("{good}# short\nshort:{FILE_SHORT}\n"), 4),
        (format!("{FILE_BAD_CHARS}\n{good}"), 1),
        (format!("{good}{TOKEN_CI}\n"), 3),
    ];
    let log = with_logs(|_| async {
        let handle = ReloadHandle::from_file(&path).unwrap();
        for (text, line) in &broken {
            fs::write(&path, text).unwrap();
            let e = handle.reload().unwrap_err();
            let message = e.to_string();
            assert!(message.contains(&format!(", line {line}:")), "{message}");
            secrets.assert_absent("Display of a token file error", &message);
            secrets.assert_absent("Debug of a token file error", &format!("{e:?}"));
            // The same file at start-up.
            let e =
                EnvConfig::from_vars([("MCP_AUTH_BEARER_TOKENS_FILE", path.display().to_string())])
                    .unwrap_err();
            secrets.assert_absent("Display of the start-up error", &e.to_string());
            secrets.assert_absent("Debug of the start-up error", &format!("{e:?}"));
        }
        assert_eq!(handle.len(), 2, "the tokens in use are kept");
        secrets.assert_absent("Debug of the handle", &format!("{handle:?}"));
        fs::write(&path, &good).unwrap();
        assert_eq!(handle.reload(), Ok(2));
    });
    assert_eq!(
        log.matches("the tokens in use are kept").count(),
        broken.len(),
        "{log}"
    );
    assert!(log.contains("bearer tokens reloaded"), "{log}");
    secrets.assert_absent("the log of token file reloads", &log);
    let _ = fs::remove_dir_all(&dir);
}
