//! A cross-process install lock for the test tooling (npm and pip installs), shared by
//! `oidc.rs` and `clients.rs`: a test that includes either includes this too, once, as
//! `#[path = "common/install.rs"] mod install;`.
#![allow(dead_code)]

use std::{
    fs,
    io::{self, Write},
    path::{Path, PathBuf},
    thread,
    time::{Duration, Instant},
};

/// A lock file in the cargo target directory, created with `create_new` and removed on drop.
/// A lock whose owner is gone, or that has been held for longer than the wait, is taken over.
pub struct InstallLock(PathBuf);

impl InstallLock {
    /// Waits for the lock called `name` (at most `wait`, then takes it over).
    pub fn acquire(name: &str, wait: Duration) -> InstallLock {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
        fs::create_dir_all(dir).unwrap();
        let path = dir.join(name);
        let started = Instant::now();
        loop {
            match fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut file) => {
                    let _ = write!(file, "{}", std::process::id());
                    return InstallLock(path);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    if Self::owner_gone(&path) || started.elapsed() > wait {
                        eprintln!("taking over stale lock {}", path.display());
                        let _ = fs::remove_file(&path);
                        continue;
                    }
                    thread::sleep(Duration::from_millis(200));
                }
                Err(e) => panic!("cannot create {}: {e}", path.display()),
            }
        }
    }

    /// The lock names a process that no longer exists (checked where `/proc` exists).
    fn owner_gone(path: &Path) -> bool {
        let Ok(pid) = fs::read_to_string(path) else {
            return false;
        };
        let Ok(pid) = pid.trim().parse::<u32>() else {
            return false;
        };
        Path::new("/proc/self").exists() && !Path::new(&format!("/proc/{pid}")).exists()
    }
}

impl Drop for InstallLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}
