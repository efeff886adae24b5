//! A real `redis-server` (the Debian package) for the tests of state shared by replicas:
//! installed with apt-get when missing, started on a free loopback port, stopped when dropped.

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

/// Installs `redis-server` with apt-get if it is not on PATH (once across test processes).
pub fn ensure_redis_server() {
    let found = || {
        Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if found() {
        return;
    }
    let _lock = super::install::InstallLock::acquire("apt-redis.lock", Duration::from_secs(600));
    if found() {
        return;
    }
    let needs = "the Redis tests install the Debian package redis-server (run as root, or \
                 install it first: apt-get install redis-server)";
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let apt = |args: &[&str], log: &str| {
        super::install::run_install("apt-get", args, dir, log, Duration::from_secs(600), needs)
    };
    apt(&["update", "-qq"], "apt-update.log");
    apt(
        &[
            "install",
            "-y",
            "-qq",
            "--no-install-recommends",
            "redis-server",
        ],
        "apt-redis.log",
    );
    assert!(
        found(),
        "redis-server is still not on PATH after apt-get install"
    );
}

/// A `redis-server` on a free loopback port, without persistence; stopped when dropped.
pub struct Redis {
    child: Option<Child>,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl Redis {
    pub fn start() -> Redis {
        ensure_redis_server();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start redis-server");
        let redis = Redis {
            child: Some(child),
            port,
        };
        // Bounded: redis-server answers within milliseconds of starting.
        for _ in 0..200 {
            if redis.ping() {
                return redis;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("redis-server did not answer PING on port {port}");
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn ping(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
        let mut buf = [0u8; 7];
        s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}
