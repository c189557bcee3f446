//! nginx in front of `clarion serve` nodes: a private `nginx` process (the
//! Debian binary) with a generated config in a temp dir, on a free loopback
//! port, in the foreground, killed by PID when dropped. It runs as any
//! user: every path it writes (pid, logs, temp files) is in its own dir.
//!
//! [`config`] is the configuration `docs/cluster.md` documents, byte for
//! byte apart from the ports (`tests/cluster_lb.rs` checks that).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use clarion_test_support::{free_port, wait_for_port, ChildGuard};

use crate::harness::run;

/// A running nginx that balances over some nodes (killed on drop).
pub struct Nginx {
    guard: ChildGuard,
    dir: PathBuf,
    /// `127.0.0.1:PORT`, where it listens.
    pub addr: String,
}

impl Nginx {
    /// Starts nginx on a free port in front of `upstreams` (`127.0.0.1:PORT`
    /// each), once its config passes `nginx -t`; returns when it accepts
    /// connections.
    pub fn start(upstreams: &[&str]) -> Nginx {
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let dir = std::env::temp_dir().join(format!("clarion-nginx-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a temp dir for nginx");
        std::fs::write(dir.join("nginx.conf"), config(&addr, upstreams)).expect("nginx.conf");

        let checked = run(&mut nginx_command(&dir, "-t"), Duration::from_secs(10));
        assert!(checked.status.success(), "nginx -t: {}", checked.report());
        let mut cmd = nginx_command(&dir, "-q");
        let child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {cmd:?}: {e}"));
        let mut nginx = Nginx {
            guard: ChildGuard::new(child),
            dir,
            addr,
        };
        let socket: SocketAddr = ([127, 0, 0, 1], port).into();
        wait_for_port(socket, Duration::from_secs(10));
        let exited = nginx.guard.child().try_wait().ok().flatten();
        assert!(
            exited.is_none(),
            "nginx exited ({exited:?}): {}",
            nginx.error_log()
        );
        nginx
    }

    /// `ws://ADDR/connection/websocket`, through nginx.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/connection/websocket", self.addr)
    }

    /// nginx's `error.log` so far, for failure messages.
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGKILL to its PID before its dir goes (the guard's own drop then
        // finds it reaped).
        let _ = self.guard.child().kill();
        let _ = self.guard.child().wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `nginx -p DIR -c nginx.conf -e error.log EXTRA`: every relative path of
/// the config is inside `DIR`, and nothing is read from or written to
/// `/etc/nginx` or `/var`.
fn nginx_command(dir: &std::path::Path, extra: &str) -> Command {
    let mut cmd = Command::new(nginx_bin());
    cmd.arg("-p")
        .arg(dir)
        .args(["-c", "nginx.conf", "-e", "error.log", extra]);
    cmd
}

/// Debian's `/usr/sbin/nginx`, or `nginx` on PATH.
fn nginx_bin() -> &'static str {
    if std::path::Path::new("/usr/sbin/nginx").exists() {
        "/usr/sbin/nginx"
    } else {
        "nginx"
    }
}

/// The nginx config for Clarion nodes at `upstreams`, listening on `listen`:
/// plain round-robin (no `ip_hash`, no stickiness: recovery does not need
/// a client to come back to the same node), the WebSocket upgrade passed
/// on, reads allowed to stay silent longer than Clarion's idle timeout
/// (120 s), and a node that refuses or times out skipped for the next one.
pub fn config(listen: &str, upstreams: &[&str]) -> String {
    let servers: String = upstreams
        .iter()
        .map(|addr| format!("        server {addr};\n"))
        .collect();
    format!(
        r#"# Run with: nginx -p DIR -c nginx.conf -e error.log
# (DIR holds this file; every relative path below is inside it.)
worker_processes 1;
daemon off;          # stay in the foreground (delete both lines to run
master_process off;  # as a daemon with a master process)
pid nginx.pid;
error_log error.log;

events {{
    worker_connections 1024;
}}

http {{
    access_log off;
    client_body_temp_path client_body_temp;
    proxy_temp_path proxy_temp;
    fastcgi_temp_path fastcgi_temp;
    uwsgi_temp_path uwsgi_temp;
    scgi_temp_path scgi_temp;

    # "Connection: upgrade" for WebSocket handshakes, "close" otherwise.
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      close;
    }}

    # Plain round-robin: no ip_hash, no sticky sessions.
    upstream clarion {{
{servers}    }}

    server {{
        listen {listen};

        location / {{
            proxy_pass http://clarion;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_connect_timeout 2s;
            proxy_read_timeout 300s;   # > Clarion's idle_timeout (120 s)
            proxy_send_timeout 300s;
            proxy_next_upstream error timeout;
        }}
    }}
}}
"#
    )
}
