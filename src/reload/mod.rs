//! Static bearer tokens changed without a restart: a verifier whose token set a handle swaps.
//!
//! Static tokens get rotated (a laptop is lost, a CI secret leaks, a person leaves), and a
//! restart to do it drops every open MCP session and stream. So the set of a running
//! [`ReloadableBearer`] can be replaced at once through its [`ReloadHandle`]: the next request
//! is judged by the new set, requests already judged keep their identity. The swap is atomic: a
//! request sees the old set or the new one, never a mix, and never no set.
//!
//! The set usually lives in a file (`MCP_AUTH_BEARER_TOKENS_FILE` in [`crate::config`]): one
//! `name:token [scope …]` per line, a bare `token` being named `token-<line>`, with blank lines
//! and `#` comments (a whole line; `#` may be part of a scope). [`ReloadHandle::from_file`]
//! reads it; [`ReloadHandle::reload`] reads it again (call it on `SIGHUP` from the program's
//! own signal loop, which may do other things on the same signal), and
//! [`ReloadHandle::watch`] polls its modification time, length and inode in a background
//! thread, so that an edit or a replaced file takes effect within about a second, and a token
//! removed from it is refused from then on. Polling needs no file-notification API, works on
//! every file system (network mounts, the symlink swaps of orchestrators' secret volumes), and
//! costs one `stat` a second. The thread stops when the last handle is dropped.
//!
//! A file that cannot be read or parsed never replaces the set in use: the old set stays, and
//! the error is logged with the line's number, never its text (any part of it may be a token).
//! A file with no token at all is such an error too, since a file caught mid-write is often
//! empty: to revoke every token, put a new one in. On Unix a file that its group or others may
//! read is accepted with a warning, at start-up and at each reload.
//!
//! Judging a request takes a read lock around the lookup of [`StaticBearer`] (one keyed hash
//! and a table probe, no allocation, no I/O); a swap holds the write lock only to move a
//! pointer, and drops the old set after releasing it.
//!
//! ```
//! use mcp_server_auth::{bearer::StaticBearer, reload::ReloadHandle};
//! use mcp_server_auth::verifier::{AuthRequest, Credentials, Verdict, Verifier};
//!
//! let old = "b2xkLXRva2VuLTAxMjM0NTY3ODk";
//! let new = "bmV3LXRva2VuLTAxMjM0NTY3ODk";
//! let handle = ReloadHandle::new(StaticBearer::new([("ci", old)]).unwrap());
//! let verifier = handle.verifier(); // give it to AuthLayer::builder
//! let accepted = |token| {
//!     let request = AuthRequest::credentials_only(Credentials::Bearer(token));
//!     matches!(verifier.verify(&request), Verdict::Ready(Ok(_)))
//! };
//! assert!(accepted(old));
//! handle.replace(StaticBearer::new([("ci", new)]).unwrap());
//! assert!(accepted(new) && !accepted(old));
//! ```

mod file;

pub use file::{LineProblem, MAX_TOKEN_FILE_BYTES, TokenFileError};

use std::{
    fmt,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, PoisonError, RwLock, Weak, mpsc},
    time::{Duration, SystemTime},
};

use crate::{
    bearer::StaticBearer,
    verifier::{AuthRequest, Presented, Recall, Schemes, Verdict, Verifier},
};

/// How often [`ReloadHandle::watch`] is asked to look at the file by `crate::config`: a token
/// removed from the file is refused within this and the time to read it.
pub const DEFAULT_WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// A file modified this shortly before it was read may have changed again within the same
/// modification-time tick: it is read again at the next polls until this has passed.
const RACY: Duration = Duration::from_secs(2);

/// The token set shared by the verifiers and the handles.
struct Slot(RwLock<StaticBearer>);

impl Slot {
    /// The set. A swap cannot panic while holding the lock, so a poisoned lock still holds a
    /// whole set.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, StaticBearer> {
        self.0.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn len(&self) -> usize {
        self.read().len()
    }

    /// Puts `set` in; the old set is dropped after the lock is released.
    fn swap(&self, set: StaticBearer) {
        let old = {
            let mut current = self.0.write().unwrap_or_else(PoisonError::into_inner);
            std::mem::replace(&mut *current, set)
        };
        drop(old);
    }
}

/// A [`StaticBearer`] whose set a [`ReloadHandle`] replaces. Clones share the set.
#[derive(Clone)]
pub struct ReloadableBearer {
    slot: Arc<Slot>,
}

impl fmt::Debug for ReloadableBearer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ReloadableBearer")
            .field(&*self.slot.read())
            .finish()
    }
}

impl Verifier for ReloadableBearer {
    fn schemes(&self) -> Schemes {
        Schemes::BEARER
    }

    fn verify(&self, request: &AuthRequest<'_>) -> Verdict {
        self.slot.read().verify(request)
    }
    fn recall(&self, presented: &Presented<'_>) -> Recall {
        self.slot.read().recall(presented)
    }
}

/// Replaces the token set of the [`ReloadableBearer`]s it made; with a file, reads it again on
/// demand ([`reload`](Self::reload)) or when it changes ([`watch`](Self::watch)). Clones share
/// everything; the watcher stops when the last clone is dropped. `Debug` shows the file and the
/// tokens' names, never a token.
#[derive(Clone)]
pub struct ReloadHandle {
    inner: Arc<Inner>,
}

struct Inner {
    slot: Arc<Slot>,
    path: Option<PathBuf>,
    seen: Mutex<Seen>,
    /// Dropped with the last handle, which ends the watcher.
    watcher: Mutex<Option<mpsc::Sender<()>>>,
}

/// What the handle last saw of the file.
#[derive(Default)]
struct Seen {
    stamp: Option<file::Stamp>,
    read_at: Option<SystemTime>,
    digest: Option<u64>,
    /// The last error reported by the watcher (not repeated each second).
    unreadable: Option<TokenFileError>,
}

impl fmt::Debug for ReloadHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadHandle")
            .field("path", &self.inner.path)
            .field("tokens", &*self.inner.slot.read())
            .finish()
    }
}

impl ReloadHandle {
    /// A handle for `initial`, without a file: change it with [`replace`](Self::replace).
    pub fn new(initial: StaticBearer) -> Self {
        Self::with(initial, None, Seen::default())
    }

    /// Reads the token file at `path` (see the [module documentation](self) for its syntax).
    /// On Unix, a file its group or others may read is accepted with a warning.
    pub fn from_file(path: impl Into<PathBuf>) -> Result<Self, TokenFileError> {
        let path = path.into();
        let read = file::read(&path)?;
        warn_if_readable(&path, &read);
        let set = file::parse(&read.bytes, &path)?;
        let seen = Seen {
            stamp: Some(read.stamp),
            read_at: Some(SystemTime::now()),
            digest: Some(read.digest),
            unreadable: None,
        };
        Ok(Self::with(set, Some(path), seen))
    }

    fn with(set: StaticBearer, path: Option<PathBuf>, seen: Seen) -> Self {
        Self {
            inner: Arc::new(Inner {
                slot: Arc::new(Slot(RwLock::new(set))),
                path,
                seen: Mutex::new(seen),
                watcher: Mutex::new(None),
            }),
        }
    }

    /// A verifier judging by the current set, and by every set that replaces it.
    pub fn verifier(&self) -> ReloadableBearer {
        ReloadableBearer {
            slot: self.inner.slot.clone(),
        }
    }

    /// The token file, if the set comes from one.
    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    /// The number of tokens in the current set.
    pub fn len(&self) -> usize {
        self.inner.slot.len()
    }

    /// A copy of the current set.
    pub fn current(&self) -> StaticBearer {
        self.inner.slot.read().clone()
    }

    /// Whether the current set is empty (never: a set has at least one token).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Replaces the set: the next request is judged by `set`.
    pub fn replace(&self, set: StaticBearer) {
        self.inner.slot.swap(set);
    }

    /// Reads the file again and, if it parses, swaps its tokens in; otherwise keeps the set in
    /// use. Logs the outcome (an error with the line's number, never its text) and returns the
    /// number of tokens in use. Without a file, does nothing. Blocking (a small file read):
    /// from async code, call it where a short block is acceptable, such as a signal loop.
    pub fn reload(&self) -> Result<usize, TokenFileError> {
        match &self.inner.path {
            Some(path) => self.inner.load(path, false),
            None => Ok(self.len()),
        }
    }

    /// Starts a background thread that looks at the file every `interval` (its modification
    /// time, length and inode) and reloads it when it changed. Once per handle: later calls do
    /// nothing. Without a file, does nothing. The thread ends when the last clone of this
    /// handle is dropped.
    pub fn watch(&self, interval: Duration) {
        let Some(path) = self.inner.path.clone() else {
            return;
        };
        let mut watcher = self
            .inner
            .watcher
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if watcher.is_some() {
            return;
        }
        let (stop, stopped) = mpsc::channel::<()>();
        let me = Arc::downgrade(&self.inner);
        let started = std::thread::Builder::new()
            .name("mcp-auth-token-file".into())
            .spawn(move || watch(&me, &path, interval, &stopped));
        match started {
            Ok(_) => *watcher = Some(stop),
            Err(e) => tracing::error!(
                error = %e,
                "cannot start the bearer token file watcher; reload it with SIGHUP"
            ),
        }
    }
}

/// Polls until the handle is gone.
fn watch(me: &Weak<Inner>, path: &Path, interval: Duration, stopped: &mpsc::Receiver<()>) {
    while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
        let Some(inner) = me.upgrade() else {
            return;
        };
        inner.poll(path);
    }
}

impl Inner {
    /// Reloads when the file looks changed, or was modified too shortly before it was read
    /// for its stamp to tell.
    fn poll(&self, path: &Path) {
        let stamp = match std::fs::metadata(path) {
            Ok(metadata) => file::Stamp::of(&metadata),
            Err(e) => {
                let error = TokenFileError::Read {
                    path: path.to_owned(),
                    reason: e.to_string(),
                };
                let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
                if seen.unreadable.as_ref() != Some(&error) {
                    tracing::error!(error = %error, "bearer token file not reloaded; the tokens in use are kept");
                    seen.unreadable = Some(error);
                    seen.stamp = None;
                }
                return;
            }
        };
        let seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let racy = match (stamp.modified, seen.read_at) {
            (Some(modified), Some(read_at)) => read_at
                .duration_since(modified)
                .map_or(true, |age| age < RACY),
            _ => true,
        };
        if seen.stamp == Some(stamp) && !racy {
            return;
        }
        drop(seen);
        let _ = self.load(path, true);
    }

    /// Reads and parses the file and swaps it in. With `only_if_new`, content already seen
    /// (good or bad) is neither swapped in again nor reported again.
    fn load(&self, path: &Path, only_if_new: bool) -> Result<usize, TokenFileError> {
        let read_at = SystemTime::now();
        let read = match file::read(path) {
            Ok(read) => read,
            Err(error) => {
                let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
                if !only_if_new || seen.unreadable.as_ref() != Some(&error) {
                    tracing::error!(error = %error, "bearer token file not reloaded; the tokens in use are kept");
                }
                seen.unreadable = Some(error.clone());
                seen.stamp = None;
                return Err(error);
            }
        };
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.stamp = Some(read.stamp);
        seen.read_at = Some(read_at);
        if only_if_new && seen.digest == Some(read.digest) {
            if matches!(seen.unreadable, Some(TokenFileError::Read { .. })) {
                // Readable again, as it was.
                seen.unreadable = None;
            }
            drop(seen);
            return Ok(self.slot.len());
        }
        seen.digest = Some(read.digest);
        warn_if_readable(path, &read);
        match file::parse(&read.bytes, path) {
            Ok(set) => {
                seen.unreadable = None;
                drop(seen);
                let tokens = set.len();
                self.slot.swap(set);
                tracing::info!(path = %path.display(), tokens, "bearer tokens reloaded");
                Ok(tokens)
            }
            Err(error) => {
                seen.unreadable = Some(error.clone());
                drop(seen);
                tracing::error!(error = %error, "bearer token file not reloaded; the tokens in use are kept");
                Err(error)
            }
        }
    }
}

/// Warns when the group or others may read the file (Unix).
fn warn_if_readable(path: &Path, read: &file::Contents) {
    if let Some(mode) = read.readable_by_others {
        tracing::warn!(
            path = %path.display(),
            mode = format_args!("{mode:03o}"),
            "the bearer token file can be read by its group or by others: `chmod 600` it"
        );
    }
}
