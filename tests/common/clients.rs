//! Real MCP clients for the interop tests: the TypeScript SDK (`@modelcontextprotocol/sdk`,
//! `tests/interop/clients/client.mjs`) and the Python SDK (`mcp`, `tests/interop/clients/client.py`),
//! both driven from the command line and both printing one JSON line (see the scripts' headers);
//! and `bound_client.mjs`, the TypeScript SDK with DPoP proofs or a client certificate (`jose`).
//!
//! Include it with `#[path = "common/clients.rs"] mod clients;` and `#[path =
//! "common/install.rs"] mod install;` (it needs nothing else from `common`).
//! Needs `node` (20 or later), `npm` and `python3` (3.11 or later, with `venv`) on `PATH`. The
//! packages are installed on first use by [`ensure_installed`], from committed lock files only:
//! `npm ci` from `package-lock.json`, and `pip install --require-hashes -r requirements.txt`
//! into a virtual environment in the cargo target directory.
#![allow(dead_code)]

use std::{
    ffi::OsStr,
    fs,
    path::{Path, PathBuf},
    process::Stdio,
    sync::OnceLock,
    time::{Duration, Instant},
};

use super::install::{InstallLock, run_install};
use serde_json::Value;

/// The longest one client run may take before it is killed.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);
const LOCK_WAIT: Duration = Duration::from_secs(300);
const INSTALL_TIMEOUT: Duration = Duration::from_secs(300);
const NEEDS: &str = "the interop client tests need Node.js 20+ with npm and Python 3.11+ with venv \
                     (tests/interop/clients)";

/// `tests/interop/clients`, where the client scripts and their lock files live.
pub fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/clients")
}

/// The virtual environment holding the Python SDK.
pub fn venv_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("interop-venv")
}

fn venv_python() -> PathBuf {
    venv_dir().join("bin/python")
}

/// Installs both clients' packages unless they are already there. Runs at most once per
/// process; a lock file in the cargo target directory serialises concurrent test binaries.
/// Blocking: from async code use [`ensure_installed_async`].
pub fn ensure_installed() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let dir = clients_dir();
        if npm_up_to_date(&dir) && venv_up_to_date(&dir) {
            return;
        }
        let _lock = InstallLock::acquire("interop-clients-install.lock", LOCK_WAIT);
        // Another test binary may have installed them while this one waited for the lock.
        if !npm_up_to_date(&dir) {
            install_npm(&dir);
        }
        if !venv_up_to_date(&dir) {
            install_venv(&dir);
        }
    });
}

/// Installs the npm packages only (the TypeScript SDK and `jose`), for tests that run no Python
/// client. Blocking: from async code use [`ensure_npm_installed_async`].
pub fn ensure_npm_installed() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let dir = clients_dir();
        if npm_up_to_date(&dir) {
            return;
        }
        let _lock = InstallLock::acquire("interop-clients-install.lock", LOCK_WAIT);
        if !npm_up_to_date(&dir) {
            install_npm(&dir);
        }
    });
}

/// [`ensure_npm_installed`] on a blocking thread.
pub async fn ensure_npm_installed_async() {
    if let Err(e) = tokio::task::spawn_blocking(ensure_npm_installed).await {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// [`ensure_installed`] on a blocking thread.
pub async fn ensure_installed_async() {
    if let Err(e) = tokio::task::spawn_blocking(ensure_installed).await {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// Inside `node_modules`, so that `npm ci` (which starts by deleting `node_modules`) removes it.
const NPM_STAMP: &str = ".mcp-server-auth-lock-stamp";
/// Inside the venv, which is recreated from scratch when the requirements change.
const VENV_STAMP: &str = ".mcp-server-auth-requirements-stamp";

/// `node_modules` holds what `package-lock.json` pins: the SDK is there and the stamp written
/// after the last successful `npm ci` is a copy of the current lock file.
fn npm_up_to_date(dir: &Path) -> bool {
    let modules = dir.join("node_modules");
    let lock = read(&dir.join("package-lock.json"));
    modules
        .join("@modelcontextprotocol/sdk/package.json")
        .is_file()
        && fs::read(modules.join(NPM_STAMP)).is_ok_and(|stamp| stamp == lock)
}

/// The venv's stamp is a copy of the current `requirements.txt` and its Python runs.
fn venv_up_to_date(dir: &Path) -> bool {
    let requirements = read(&dir.join("requirements.txt"));
    venv_python().is_file()
        && fs::read(venv_dir().join(VENV_STAMP)).is_ok_and(|stamp| stamp == requirements)
}

fn read(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn install_npm(dir: &Path) {
    run_install(
        "npm",
        ["ci", "--no-audit", "--no-fund"],
        dir,
        "interop-clients-npm-ci.log",
        INSTALL_TIMEOUT,
        NEEDS,
    );
    fs::write(
        dir.join("node_modules").join(NPM_STAMP),
        read(&dir.join("package-lock.json")),
    )
    .unwrap();
}

fn install_venv(dir: &Path) {
    let venv = venv_dir();
    // `--clear`: a venv left by other requirements (or a broken install) starts afresh.
    run_install(
        "python3",
        [
            OsStr::new("-m"),
            "venv".as_ref(),
            "--clear".as_ref(),
            venv.as_os_str(),
        ],
        dir,
        "interop-clients-venv.log",
        INSTALL_TIMEOUT,
        NEEDS,
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
        dir,
        "interop-clients-pip-install.log",
        INSTALL_TIMEOUT,
        NEEDS,
    );
    fs::write(venv.join(VENV_STAMP), read(&dir.join("requirements.txt"))).unwrap();
}

/// Runs the TypeScript client (`node client.mjs ARGS`) and returns its JSON line.
pub async fn run_ts(args: &[&str]) -> Value {
    ensure_installed_async().await;
    run_client("node", "client.mjs", args).await
}

/// Runs the client with sender-constrained tokens (`node bound_client.mjs ARGS`: DPoP or
/// mutual TLS, see the script's header) and returns its JSON line. Needs only the npm packages.
pub async fn run_bound(args: &[&str]) -> Value {
    ensure_npm_installed_async().await;
    run_client("node", "bound_client.mjs", args).await
}

/// Runs the Python client (`python client.py ARGS` in the venv) and returns its JSON line.
pub async fn run_py(args: &[&str]) -> Value {
    ensure_installed_async().await;
    run_client(venv_python().as_os_str(), "client.py", args).await
}

/// Spawns a client with [`CLIENT_TIMEOUT`]; the process is killed on timeout, and also when the
/// calling future is dropped (a test that panics or times out). Panics, with the client's stderr,
/// unless stdout is exactly one JSON line.
async fn run_client(program: impl AsRef<OsStr>, script: &str, args: &[&str]) -> Value {
    let program = program.as_ref();
    let started = Instant::now();
    let child = tokio::process::Command::new(program)
        .arg(script)
        .args(args)
        .current_dir(clients_dir())
        // No proxy, whatever the environment says: everything is on 127.0.0.1.
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .env_remove("http_proxy")
        .env_remove("https_proxy")
        .env("NO_PROXY", "*")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {} {script}: {e}", program.to_string_lossy()));
    let args = redacted(args);
    let output = match tokio::time::timeout(CLIENT_TIMEOUT, child.wait_with_output()).await {
        Ok(output) => output.unwrap(),
        // Dropping the `wait_with_output` future dropped the child, which kills it.
        Err(_) => panic!("{script} {args:?} took more than {CLIENT_TIMEOUT:?} and was killed"),
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stdout.lines().filter(|l| !l.trim().is_empty()).collect();
    let value = match lines.as_slice() {
        [line] => serde_json::from_str::<Value>(line).ok(),
        _ => None,
    };
    match value {
        Some(value) if output.status.success() && value.is_object() => {
            if std::env::var_os("INTEROP_VERBOSE").is_some() {
                eprintln!(
                    "{script} {args:?} ({:.2} s):\n{value:#}\nstderr:\n{stderr}",
                    started.elapsed().as_secs_f64()
                );
            }
            value
        }
        _ => panic!(
            "{script} {args:?} did not print one JSON line ({}); stdout:\n{stdout}\nstderr:\n{stderr}",
            output.status
        ),
    }
}

/// `args` for messages: the values of `--header` and `--client-secret` hidden.
fn redacted(args: &[&str]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut hide = false;
    for arg in args {
        if hide {
            out.push(match arg.split_once(':') {
                Some((name, _)) => format!("{name}: ***"),
                None => "***".to_owned(),
            });
        } else {
            out.push((*arg).to_owned());
        }
        hide = matches!(*arg, "--header" | "--client-secret");
    }
    out
}

/// The client's HTTP exchanges (`http` of its output), without the step markers.
pub fn exchanges(output: &Value) -> Vec<&Value> {
    output["http"]
        .as_array()
        .unwrap_or_else(|| panic!("no `http` list in {output}"))
        .iter()
        .filter(|e| e["kind"] != "step")
        .collect()
}

/// The exchanges made while running step `index` (after its marker, before the next one).
pub fn step_exchanges(output: &Value, index: u64) -> Vec<&Value> {
    let all = output["http"]
        .as_array()
        .unwrap_or_else(|| panic!("no `http` list in {output}"));
    let start = all
        .iter()
        .position(|e| e["kind"] == "step" && e["index"] == index)
        .unwrap_or_else(|| panic!("step {index} never ran: {output}"));
    all[start + 1..]
        .iter()
        .take_while(|e| e["kind"] != "step")
        .collect()
}
