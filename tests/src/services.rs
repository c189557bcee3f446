//! Broker servers for the cluster tests: a private `redis-server` and a
//! private `nats-server -js` on free loopback ports, killed (by PID) when
//! dropped, restartable on the same port.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use clarion_test_support::{free_port, wait_for_port, ChildGuard};

use crate::harness::run;

/// Which broker a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `redis-server`, without persistence.
    Redis,
    /// `nats-server -js` with a store directory.
    Nats,
}

/// A broker server of our own.
pub struct BrokerServer {
    backend: Backend,
    port: u16,
    dir: PathBuf,
    guard: Option<ChildGuard>,
}

impl BrokerServer {
    /// Starts one on a free port.
    pub fn start(backend: Backend) -> BrokerServer {
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("clarion-broker-{}-{port}", std::process::id()));
        let mut server = BrokerServer {
            backend,
            port,
            dir,
            guard: None,
        };
        server.spawn();
        server
    }

    /// `redis://127.0.0.1:PORT` or `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        match self.backend {
            Backend::Redis => format!("redis://127.0.0.1:{}", self.port),
            Backend::Nats => format!("nats://127.0.0.1:{}", self.port),
        }
    }

    fn spawn(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        std::fs::create_dir_all(&self.dir).expect("a temp dir for the broker");
        let port = self.port.to_string();
        let mut cmd = match self.backend {
            Backend::Redis => {
                let mut cmd = Command::new("redis-server");
                cmd.args(["--port", &port, "--bind", "127.0.0.1"])
                    .args(["--save", "", "--appendonly", "no"])
                    .arg("--dir")
                    .arg(&self.dir);
                cmd
            }
            Backend::Nats => {
                let mut cmd = Command::new(nats_server());
                cmd.args(["-js", "-a", "127.0.0.1", "-p", &port, "-sd"])
                    .arg(&self.dir);
                cmd
            }
        };
        let child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {:?}: {e}", self.backend));
        let mut guard = ChildGuard::new(child);
        let addr: SocketAddr = ([127, 0, 0, 1], self.port).into();
        wait_for_port(addr, Duration::from_secs(10));
        let exited = guard.child().try_wait().ok().flatten();
        assert!(exited.is_none(), "{:?} exited: {exited:?}", self.backend);
        self.guard = Some(guard);
    }

    /// Kills it (SIGKILL to its PID) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut guard) = self.guard.take() {
            let _ = guard.child().kill();
            let _ = guard.child().wait();
        }
    }

    /// Kills it and starts a fresh one on the same port: everything it
    /// held is gone (Redis keeps nothing; NATS's store is wiped).
    pub fn restart_empty(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Runs `redis-cli` against it (Redis only); its stdout.
    pub fn redis_cli(&self, args: &[&str]) -> String {
        assert_eq!(self.backend, Backend::Redis);
        let port = self.port.to_string();
        let finished = run(
            Command::new("redis-cli").args(["-p", &port]).args(args),
            Duration::from_secs(10),
        );
        assert!(finished.status.success(), "{}", finished.report());
        finished.stdout
    }
}

impl Drop for BrokerServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `nats-server` on PATH, or Debian's `/usr/sbin/nats-server`.
fn nats_server() -> &'static str {
    if std::path::Path::new("/usr/sbin/nats-server").exists() {
        "/usr/sbin/nats-server"
    } else {
        "nats-server"
    }
}
