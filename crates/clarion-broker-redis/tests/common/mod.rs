//! A private `redis-server` per test, on a free loopback port, killed (by
//! its PID, through the guard) when the test ends; and brokers on it.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use clarion_broker_redis::{RedisBroker, RedisConfig};
use clarion_hub::contract::Harness;
use clarion_hub::{BoxFuture, Broker};
use clarion_test_support::{free_port, self_signed_cert, wait_for_port, ChildGuard, TestCert};

/// The heartbeat of test brokers: short, so liveness cases take a second.
pub const HEARTBEAT: Duration = Duration::from_millis(200);

/// A redis-server of our own (never the system one on 6379).
pub struct RedisServer {
    pub port: u16,
    dir: PathBuf,
    /// `Some(cert)`: TLS only, with this self-signed certificate.
    tls: Option<TestCert>,
    guard: Option<ChildGuard>,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        RedisServer::start_with(None)
    }

    /// A server that speaks TLS only (`rediss://`).
    pub fn start_tls() -> RedisServer {
        RedisServer::start_with(Some(self_signed_cert()))
    }

    fn start_with(tls: Option<TestCert>) -> RedisServer {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("clarion-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut server = RedisServer {
            port,
            dir,
            tls,
            guard: None,
        };
        // Another test may have taken the same "free" port first: then our
        // server exits and theirs answers. Try another port.
        for _ in 0..5 {
            if server.spawn() {
                return server;
            }
            server.port = free_port();
        }
        panic!("could not start redis-server on a free port");
    }

    /// Starts the server on `self.port`; false if what answers there is
    /// not our process.
    fn spawn(&mut self) -> bool {
        let port = self.port.to_string();
        let mut cmd = Command::new("redis-server");
        match &self.tls {
            None => cmd.args(["--port", &port]),
            Some(cert) => cmd
                .args([
                    "--port",
                    "0",
                    "--tls-port",
                    &port,
                    "--tls-auth-clients",
                    "no",
                ])
                .arg("--tls-cert-file")
                .arg(&cert.cert_pem)
                .arg("--tls-key-file")
                .arg(&cert.key_pem)
                .arg("--tls-ca-cert-file")
                .arg(&cert.cert_pem),
        };
        let child = cmd
            .args(["--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("redis-server (apt-get install redis-server)");
        let pid = child.id();
        self.guard = Some(ChildGuard::new(child));
        let addr: SocketAddr = ([127, 0, 0, 1], self.port).into();
        wait_for_port(addr, Duration::from_secs(10));
        if self.tls.is_some() {
            return true; // The TLS port only answers TLS; a collision shows as a failed test.
        }
        let ours = self.server_pid() == Some(pid);
        if !ours {
            self.guard = None;
        }
        ours
    }

    /// The process id of the server answering on our port.
    fn server_pid(&self) -> Option<u32> {
        let client = redis::Client::open(self.url()).ok()?;
        let mut conn = client.get_connection().ok()?;
        let info: String = redis::cmd("INFO").arg("server").query(&mut conn).ok()?;
        let line = info.lines().find_map(|l| l.strip_prefix("process_id:"))?;
        line.trim().parse().ok()
    }

    /// `redis://…`, or `rediss://…` for a TLS server.
    pub fn url(&self) -> String {
        match self.tls {
            None => format!("redis://127.0.0.1:{}", self.port),
            Some(_) => format!("rediss://127.0.0.1:{}", self.port),
        }
    }

    /// The TLS server's certificate (PEM), its own CA.
    pub fn tls_ca(&self) -> Option<PathBuf> {
        self.tls.as_ref().map(|cert| cert.cert_pem.clone())
    }

    /// Kills the server (its data is gone: no persistence).
    pub fn stop(&mut self) {
        self.guard = None;
    }

    /// Kills the server and starts a new one on the same port.
    pub fn restart(&mut self) {
        self.stop();
        assert!(self.spawn(), "port {} was taken meanwhile", self.port);
    }

    /// A plain connection for test commands (FLUSHALL, CLIENT KILL).
    pub async fn admin(&self) -> redis::aio::MultiplexedConnection {
        let client = redis::Client::open(self.url()).unwrap();
        client.get_multiplexed_async_connection().await.unwrap()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.guard = None;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A test config: short heartbeat and generation check.
pub fn config(urls: &[String]) -> RedisConfig {
    let mut config = RedisConfig::new(urls.iter().cloned());
    config.heartbeat = HEARTBEAT;
    config.generation_check = Duration::from_millis(500);
    config.connect_timeout = Duration::from_millis(500);
    config.command_timeout = Duration::from_secs(1);
    config
}

pub fn broker(urls: &[String]) -> Arc<RedisBroker> {
    Arc::new(RedisBroker::new(config(urls)).expect("broker"))
}

/// The contract suite's harness: one server per test.
pub struct RedisHarness {
    pub server: RedisServer,
}

impl RedisHarness {
    pub fn new() -> RedisHarness {
        RedisHarness {
            server: RedisServer::start(),
        }
    }
}

impl Harness for RedisHarness {
    fn broker(&self) -> BoxFuture<'_, Arc<dyn Broker>> {
        Box::pin(async { broker(&[self.server.url()]) as Arc<dyn Broker> })
    }

    fn pair(&self) -> BoxFuture<'_, (Arc<dyn Broker>, Arc<dyn Broker>)> {
        Box::pin(async {
            let urls = [self.server.url()];
            (
                broker(&urls) as Arc<dyn Broker>,
                broker(&urls) as Arc<dyn Broker>,
            )
        })
    }

    fn heartbeat(&self) -> Duration {
        HEARTBEAT
    }

    fn advance(&self, duration: Duration) -> BoxFuture<'_, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
}
