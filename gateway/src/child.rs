//! The child: a stdio MCP server process, started and ended so that nothing leaks.
//!
//! A gateway trusted with tokens must not hand them on, and must not leave processes behind:
//! - **No shell.** The command and its arguments are passed to `execve` as given: no word
//!   splitting, globbing or `$VAR` expansion a caller's input could reach.
//! - **No credentials.** The child's environment is the gateway's minus every `MCP_AUTH_*` and
//!   `FLY_MCP_*` variable ([`child_env`]): the server behind the gateway must not learn the
//!   tokens that guard it (a tool such as "print the environment" would show them to every
//!   caller).
//! - **Its own process group.** The child leads a new group, so that ending it also ends what
//!   it started (`npx` starts `node`, `uv run` starts `python`): [`supervise`] sends `SIGTERM`
//!   to the group, waits a grace period for the child to exit, then sends `SIGKILL` to the
//!   group. A child that exits on its own gets the same treatment for whatever it left in its
//!   group.
//! - **Its stderr is the gateway's log**, line by line, prefixed with the session's number
//!   ([`log_stderr`]); lines are bounded like stdout's.
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! use mcp_auth_gateway::child::{Command, supervise};
//! let command = Command::new("npx", ["-y", "@modelcontextprotocol/server-everything"]);
//! let mut spawned = command.spawn()?;
//! let stop = tokio_util::sync::CancellationToken::new();
//! let (status_tx, _status) = tokio::sync::watch::channel(None);
//! let pid = spawned.pid;
//! let child = spawned.process;
//! tokio::spawn(supervise(child, pid, stop.clone(), std::time::Duration::from_secs(5), status_tx));
//! stop.cancel(); // SIGTERM to the group, SIGKILL after 5 s
//! # Ok(()) }
//! ```

use std::{
    ffi::{OsStr, OsString},
    fmt, io,
    path::Path,
    process::{ExitStatus, Stdio},
    time::Duration,
};

use tokio::{
    process::{Child, ChildStderr, ChildStdin, ChildStdout},
    sync::watch,
};
use tokio_util::sync::CancellationToken;

use crate::framing::{Frame, LineReader};

/// The prefixes of the variables the child never sees.
pub const HIDDEN_PREFIXES: [&str; 2] = ["MCP_AUTH_", "FLY_MCP_"];

/// The longest stderr line logged whole; a longer one is replaced by a note.
const MAX_STDERR_LINE: usize = 64 * 1024;

/// The command a child runs: a program and its arguments, never through a shell.
#[derive(Clone)]
pub struct Command {
    program: OsString,
    args: Vec<OsString>,
}

impl fmt::Debug for Command {
    // Arguments may hold secrets of the child's own (an API key on its command line): only
    // the program is shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Command")
            .field("program", &self.program)
            .field("args", &self.args.len())
            .finish()
    }
}

/// A started child.
#[derive(Debug)]
pub struct Spawned {
    /// Its process id, which is also its process group id.
    pub pid: u32,
    /// The process, to wait for.
    pub process: Child,
    /// Its standard input.
    pub stdin: ChildStdin,
    /// Its standard output.
    pub stdout: ChildStdout,
    /// Its standard error.
    pub stderr: ChildStderr,
}

impl Command {
    /// A command: `program` (looked up on `PATH` unless it contains a `/`) with `args`.
    pub fn new<P, I, A>(program: P, args: I) -> Self
    where
        P: Into<OsString>,
        I: IntoIterator<Item = A>,
        A: Into<OsString>,
    {
        Self {
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
        }
    }

    /// The program, for messages.
    pub fn program(&self) -> &OsStr {
        &self.program
    }

    /// Whether the program can be found (a path that exists, or a name on `PATH`): checked
    /// at start-up, so that a typo fails the gateway rather than every session.
    pub fn exists(&self) -> bool {
        let program = Path::new(&self.program);
        if self.program.as_encoded_bytes().contains(&b'/') {
            return program.is_file();
        }
        std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
    }

    /// Starts the child: no shell, its own process group, the environment of [`child_env`],
    /// piped stdin, stdout and stderr. The child is killed if its handle is dropped.
    pub fn spawn(&self) -> io::Result<Spawned> {
        let mut process = tokio::process::Command::new(&self.program)
            .args(&self.args)
            .env_clear()
            .envs(child_env(std::env::vars_os()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()?;
        let pid = process
            .id()
            .ok_or_else(|| io::Error::other("the child has no pid"))?;
        let (Some(stdin), Some(stdout), Some(stderr)) = (
            process.stdin.take(),
            process.stdout.take(),
            process.stderr.take(),
        ) else {
            return Err(io::Error::other("the child's pipes are missing"));
        };
        Ok(Spawned {
            pid,
            process,
            stdin,
            stdout,
            stderr,
        })
    }
}

/// `vars` without the ones the child must not see (names starting with
/// [`HIDDEN_PREFIXES`], in any case).
pub fn child_env(
    vars: impl IntoIterator<Item = (OsString, OsString)>,
) -> impl Iterator<Item = (OsString, OsString)> {
    vars.into_iter().filter(|(name, _)| !is_hidden(name))
}

fn is_hidden(name: &OsStr) -> bool {
    let name = name.as_encoded_bytes();
    HIDDEN_PREFIXES.iter().any(|prefix| {
        name.len() >= prefix.len() && name[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
    })
}

/// Sends `signal` to the process group `pid` (errors such as "no such group" are ignored: the
/// group may be gone already).
fn signal_group(pid: u32, signal: rustix::process::Signal) {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return;
    };
    let _ = rustix::process::kill_process_group(pid, signal);
}

/// Waits for the child to exit, or for `stop`; then ends its process group: `SIGTERM`, up to
/// `grace` for the child to exit, `SIGKILL`. The exit status goes to `status`.
pub async fn supervise(
    mut process: Child,
    pid: u32,
    stop: CancellationToken,
    grace: Duration,
    status: watch::Sender<Option<ExitStatus>>,
) {
    use rustix::process::Signal;
    let exited = tokio::select! {
        exited = process.wait() => exited,
        () = stop.cancelled() => {
            signal_group(pid, Signal::TERM);
            match tokio::time::timeout(grace, process.wait()).await {
                Ok(exited) => exited,
                Err(_) => {
                    tracing::warn!(pid, "the MCP server did not exit within {grace:?} of SIGTERM; killing its process group");
                    signal_group(pid, Signal::KILL);
                    process.wait().await
                }
            }
        }
    };
    // Whatever is left in the group (the child's own children) goes too.
    signal_group(pid, Signal::TERM);
    signal_group(pid, Signal::KILL);
    match exited {
        Ok(exited) => {
            let _ = status.send(Some(exited));
        }
        Err(e) => tracing::error!(pid, "cannot wait for the MCP server: {e}"),
    }
}

/// Copies the child's stderr to the log, one event per line, prefixed with `label`.
pub async fn log_stderr(stderr: ChildStderr, label: String) {
    let mut lines = LineReader::new(stderr, MAX_STDERR_LINE);
    loop {
        match lines.next().await {
            Ok(Frame::Line(line)) => {
                tracing::info!(target: "child", "[{label}] {}", String::from_utf8_lossy(&line));
            }
            Ok(Frame::TooLong) => {
                tracing::info!(target: "child", "[{label}] (a stderr line over {MAX_STDERR_LINE} bytes, not shown)");
            }
            Ok(Frame::Eof) | Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_child_environment_has_no_auth_variable() {
        let vars = [
            ("PATH", "/bin"),
            ("MCP_AUTH_BEARER_TOKEN", "secret"),
            ("mcp_auth_password", "secret"),
            ("FLY_MCP_BEARER_TOKEN", "secret"),
            ("Fly_Mcp_User", "u"),
            ("MCP_AUTHOR", "kept: not the prefix"),
            ("HOME", "/root"),
        ]
        .map(|(k, v)| (OsString::from(k), OsString::from(v)));
        let kept: Vec<String> = child_env(vars)
            .map(|(k, _)| k.into_string().unwrap())
            .collect();
        assert_eq!(kept, ["PATH", "MCP_AUTHOR", "HOME"]);
    }

    #[test]
    fn debug_shows_no_argument() {
        let c = Command::new("server", ["--api-key", "hunter2"]);
        let d = format!("{c:?}");
        assert!(!d.contains("hunter2") && d.contains("server"), "{d}");
    }
}
