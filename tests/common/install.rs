//! A cross-process install lock for the test tooling (npm and pip installs), shared by
//! `oidc.rs` and `clients.rs`: a test that includes either includes this too, once, as
//! `#[path = "common/install.rs"] mod install;`.
#![allow(dead_code)]

use std::{
    ffi::OsStr,
    fs,
    io::{self, Write},
    path::{Path, PathBuf},
    process::{Command, Stdio},
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

/// Runs an installer with a time limit, its output going to a log file in the target directory
/// that is shown if it fails.
pub fn run_install<P, I, S>(
    program: P,
    args: I,
    dir: &Path,
    log_name: &str,
    timeout: Duration,
    needs: &str,
) where
    P: AsRef<OsStr>,
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let program = program.as_ref();
    let args: Vec<_> = args
        .into_iter()
        .map(|a| a.as_ref().to_os_string())
        .collect();
    let what = format!(
        "`{} {}`",
        program.to_string_lossy(),
        args.iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let log_path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(log_name);
    let log = fs::File::create(&log_path)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", log_path.display()));
    let started = Instant::now();
    let mut child = Command::new(program)
        .args(&args)
        .current_dir(dir)
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                panic!(
                    "{} was not found on PATH: {needs}",
                    program.to_string_lossy()
                )
            }
            panic!("cannot run {what} in {}: {e}", dir.display())
        });
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{what} took more than {timeout:?}; its output:\n{}",
                fs::read_to_string(&log_path).unwrap_or_default()
            );
        }
        thread::sleep(Duration::from_millis(100));
    };
    if !status.success() {
        panic!(
            "{what} in {} failed ({status}); its output:\n{}",
            dir.display(),
            fs::read_to_string(&log_path).unwrap_or_default()
        );
    }
    eprintln!("{what} took {:.1} s", started.elapsed().as_secs_f64());
}
