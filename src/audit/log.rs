//! Where the audit lines go: [`AuditLog`], the standard streams or a file that log rotation
//! can move away (feature `audit-log`).
//!
//! A file is opened for appending, so that several writers and restarts add to it and never
//! overwrite it. Log rotation (logrotate, newsyslog) renames the file and then sends `SIGHUP`:
//! [`AuditLog::reopen_on_sighup`] then opens a new file at the same path, and the lines after
//! the signal go there. Each line is written whole with one `write` of an append-mode file,
//! under a lock, so lines from several threads never interleave.
//!
//! This module formats nothing: it is the writer of whatever `tracing` subscriber the program
//! uses (this crate depends on no subscriber). With `tracing-subscriber`, for example:
//! `fmt::layer().json().with_writer(move || log.writer())`, filtered to [`super::TARGET`].
//!
//! ```
//! use std::io::Write;
//! use mcp_server_auth::audit::{AuditDestination, log::AuditLog};
//!
//! let dir = std::env::temp_dir().join(format!("audit-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let path = dir.join("audit.jsonl");
//! let log = AuditLog::open(&AuditDestination::File(path.clone())).unwrap();
//! log.writer().write_all(b"{\"outcome\":\"allowed\"}\n").unwrap();
//! std::fs::rename(&path, dir.join("audit.jsonl.1")).unwrap(); // what logrotate does
//! log.reopen().unwrap(); // what SIGHUP does
//! log.writer().write_all(b"{\"outcome\":\"refused\"}\n").unwrap();
//! assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"outcome\":\"refused\"}\n");
//! # std::fs::remove_dir_all(&dir).unwrap();
//! ```

use std::{
    fmt,
    fs::{File, OpenOptions},
    io::{self, Write},
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use super::AuditDestination;

/// The destination of the audit lines, shared by every writer it hands out. See the [module
/// documentation](self).
#[derive(Clone)]
pub struct AuditLog {
    inner: Arc<Inner>,
}

enum Inner {
    Stderr,
    Stdout,
    File { path: PathBuf, file: Mutex<File> },
}

impl fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.inner {
            Inner::Stderr => f.write_str("AuditLog(stderr)"),
            Inner::Stdout => f.write_str("AuditLog(stdout)"),
            Inner::File { path, .. } => write!(f, "AuditLog({})", path.display()),
        }
    }
}

fn append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

impl AuditLog {
    /// Opens `destination` (a file is created if missing, and appended to).
    ///
    /// # Errors
    /// If the file cannot be opened: the error names the path.
    pub fn open(destination: &AuditDestination) -> io::Result<Self> {
        let inner = match destination {
            AuditDestination::Stderr => Inner::Stderr,
            AuditDestination::Stdout => Inner::Stdout,
            AuditDestination::File(path) => Inner::File {
                file: Mutex::new(append(path).map_err(|e| with_path(e, path))?),
                path: path.clone(),
            },
        };
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// Opens the file again at its path (after log rotation moved it away). The lines written
    /// meanwhile go to the old file; on failure the old file is kept. Nothing to do for the
    /// standard streams.
    ///
    /// # Errors
    /// If the file cannot be opened: the error names the path.
    pub fn reopen(&self) -> io::Result<()> {
        if let Inner::File { path, file } = &*self.inner {
            let new = append(path).map_err(|e| with_path(e, path))?;
            *file.lock().unwrap_or_else(|e| e.into_inner()) = new;
        }
        Ok(())
    }

    /// Reopens the file on every `SIGHUP` (on Unix; elsewhere, nothing), in a task on the
    /// current tokio runtime, for as long as the runtime runs. A failed reopen is reported on
    /// standard error and the old file kept.
    ///
    /// # Errors
    /// If the signal handler cannot be installed.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn reopen_on_sighup(&self) -> io::Result<()> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let mut hangups = signal(SignalKind::hangup())?;
            let log = self.clone();
            tokio::spawn(async move {
                while hangups.recv().await.is_some() {
                    if let Err(e) = log.reopen() {
                        eprintln!("audit log: {e}; still writing to the old file");
                    }
                }
            });
        }
        Ok(())
    }

    /// A writer of lines to the destination. Each `write` goes out whole (the file is locked
    /// for it); hand one to each event (`move || log.writer()` is a `tracing-subscriber`
    /// `MakeWriter`).
    pub fn writer(&self) -> AuditWriter {
        AuditWriter {
            inner: self.inner.clone(),
        }
    }
}

fn with_path(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(
        e.kind(),
        format!("cannot open the audit log {}: {e}", path.display()),
    )
}

/// Writes to an [`AuditLog`]; see [`AuditLog::writer`].
pub struct AuditWriter {
    inner: Arc<Inner>,
}

impl fmt::Debug for AuditWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuditWriter")
    }
}

impl Write for AuditWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match &*self.inner {
            Inner::Stderr => io::stderr().lock().write_all(buf),
            Inner::Stdout => io::stdout().lock().write_all(buf),
            Inner::File { file, .. } => file
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &*self.inner {
            Inner::Stderr => io::stderr().flush(),
            Inner::Stdout => io::stdout().flush(),
            Inner::File { .. } => Ok(()),
        }
    }
}
