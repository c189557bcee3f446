//! A real `nats-server -js` per test, on a free loopback port with its own
//! store directory, killed (by its PID, through its `Child`) when dropped.

#![allow(dead_code, unreachable_pub)] // Each test binary uses part of it.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clarion_broker_nats::{NatsBroker, NatsConfig};

const NATS_SERVER: &str = "/usr/sbin/nats-server";

pub struct NatsServer {
    child: Option<Child>,
    pub port: u16,
    pub store: PathBuf,
}

fn fresh_dir() -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("clarion-nats-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("store dir");
    dir
}

impl NatsServer {
    /// A new server on a free port with an empty store.
    pub fn start() -> NatsServer {
        let mut server = NatsServer {
            child: None,
            // Never a port another case of this process was given: two
            // servers racing for one port would leave a case talking to
            // the other's server, which dies when that case ends.
            port: clarion_test_support::free_port(),
            store: fresh_dir(),
        };
        server.spawn();
        server
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let child = Command::new(NATS_SERVER)
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(&self.store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        let exited = self
            .child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten());
        assert!(
            exited.is_none(),
            "nats-server exited: {exited:?} (port {} taken?)",
            self.port
        );
    }

    /// Kills the server (SIGKILL to its PID) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port; `keep_store: false` wipes the
    /// store first (every stream is lost).
    pub fn restart(&mut self, keep_store: bool) {
        self.kill();
        if !keep_store {
            let _ = std::fs::remove_dir_all(&self.store);
            std::fs::create_dir_all(&self.store).expect("store dir");
        }
        self.spawn();
    }

    /// The broker config for this server (short heartbeats and timeouts,
    /// so liveness and failure cases stay quick).
    pub fn config(&self) -> NatsConfig {
        NatsConfig {
            heartbeat: Duration::from_millis(250),
            command_timeout: Duration::from_secs(2),
            ..NatsConfig::new([self.url()])
        }
    }

    pub async fn broker(&self, name: &str) -> NatsBroker {
        let config = NatsConfig {
            node_name: Some(name.to_owned()),
            ..self.config()
        };
        NatsBroker::connect(config)
            .await
            .expect("connect to nats-server")
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.store);
    }
}
