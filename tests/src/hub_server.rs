//! `clarion serve` for the end-to-end tests: start the binary (with a config
//! file), a protocol client on clarion-ws, and a small HTTP client for the
//! server API. Every wait is bounded.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::{Command, ExitStatus};
use std::time::Duration;

use clarion_test_support::{spawn_and_wait_for_line, ChildGuard};
use clarion_ws::{ClientStream, CloseCode, ConnectOptions, Message, WebSocket};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::{clarion_bin, run, wait_bounded, SERVER_START_TIMEOUT};

/// Time one protocol step (a reply, a push) gets.
pub const STEP: Duration = Duration::from_secs(10);

/// The API key every test server uses.
pub const API_KEY: &str = "test-api-key";

/// The HS256 secret every test server uses.
pub const SECRET: &str = "test-secret";

/// A running `clarion serve` (killed on drop).
pub struct HubServer {
    guard: ChildGuard,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// Whether it serves TLS (`https://`, `wss://`).
    pub tls: bool,
    config: Option<PathBuf>,
}

impl HubServer {
    /// Starts `clarion serve --listen 127.0.0.1:0` with the test key and
    /// secret, `config_toml` as its config file (if any), and `args`.
    pub fn start(config_toml: Option<&str>, args: &[&str]) -> HubServer {
        HubServer::start_on("127.0.0.1:0", config_toml, args)
    }

    /// [`HubServer::start`] on a given address (to restart on the same port).
    pub fn start_on(listen: &str, config_toml: Option<&str>, args: &[&str]) -> HubServer {
        let mut cmd = Command::new(clarion_bin());
        cmd.args(["serve", "--listen", listen, "--api-key", API_KEY])
            .args(["--hmac-secret", SECRET]);
        let config = config_toml.map(|text| {
            static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let dir = std::env::temp_dir();
            let path = dir.join(format!("clarion-serve-{}-{n}.toml", std::process::id()));
            std::fs::write(&path, text).expect("writing the config");
            cmd.arg("--config").arg(&path);
            path
        });
        cmd.args(args).env_remove("RUST_LOG");
        let (guard, url) = spawn_and_wait_for_line(&mut cmd, "listening on ", SERVER_START_TIMEOUT);
        let (tls, addr) = match (url.strip_prefix("http://"), url.strip_prefix("https://")) {
            (Some(addr), _) => (false, addr.to_owned()),
            (_, Some(addr)) => (true, addr.to_owned()),
            _ => panic!("{cmd:?} listens on {url}"),
        };
        HubServer {
            guard,
            addr,
            tls,
            config,
        }
    }

    /// `ws://ADDR/connection/websocket`.
    pub fn ws_url(&self) -> String {
        let scheme = if self.tls { "wss" } else { "ws" };
        format!("{scheme}://{}/connection/websocket", self.addr)
    }

    /// `http://ADDR`.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Sends SIGTERM (by process id, with `kill`).
    pub fn terminate(&self) {
        let pid = self.guard.id().to_string();
        let finished = run(Command::new("kill").args(["-TERM", &pid]), STEP);
        assert!(finished.status.success(), "kill -TERM {pid}");
    }

    /// Kills it with SIGKILL (to its process id) and reaps it: a crash.
    pub fn kill(&mut self) {
        let _ = self.guard.child().kill();
        let _ = self.guard.child().wait();
    }

    /// Waits for the process to exit (bounded).
    pub fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_bounded(&mut self.guard, timeout)
    }

    /// Its stderr so far.
    pub fn stderr(&self) -> String {
        self.guard.stderr()
    }

    /// Calls the server API: `POST /api/{method}` with `key` (if any).
    pub async fn api(&self, method: &str, key: Option<&str>, body: &str) -> (u16, Value) {
        let auth = key.map(|k| format!("Authorization: apikey {k}\r\n"));
        let (status, body) = http_request(
            &self.addr,
            "POST",
            &format!("/api/{method}"),
            &auth.unwrap_or_default(),
            body,
        )
        .await;
        let value = serde_json::from_str(&body).unwrap_or(Value::String(body));
        (status, value)
    }

    /// Publishes through the API with the right key; panics unless 200.
    pub async fn publish(&self, channel: &str, data: Value) -> Value {
        let body = json!({ "channel": channel, "data": data }).to_string();
        let (status, reply) = self.api("publish", Some(API_KEY), &body).await;
        assert_eq!(status, 200, "publish: {reply}");
        reply["result"].clone()
    }
}

impl Drop for HubServer {
    fn drop(&mut self) {
        if let Some(path) = &self.config {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A bare HTTP/1.1 request (`Connection: close`); the status and body.
pub async fn http_request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &str,
    body: &str,
) -> (u16, String) {
    let exchange = async {
        let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Content-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        tcp.write_all(request.as_bytes()).await.expect("write");
        let mut raw = Vec::new();
        let _ = tcp.read_to_end(&mut raw).await;
        raw
    };
    let raw = tokio::time::timeout(STEP, exchange)
        .await
        .expect("HTTP timeout");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("malformed response: {text:?}"));
    (status, body.to_owned())
}

/// How a connection ended: the close code and reason, or a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// A close frame with this code and reason.
    Closed(u16, String),
    /// No close frame (the connection failed or was dropped).
    NoCloseFrame(String),
}

/// A protocol client: commands with ids, replies matched, pushes kept.
pub struct Client {
    ws: WebSocket<ClientStream>,
    next_id: u32,
    pushes: VecDeque<Value>,
    /// The `connect` result (or error).
    pub connected: Value,
}

impl Client {
    /// Opens the WebSocket (no Origin) and sends `connect` with `token`.
    pub async fn connect(url: &str, token: Option<&str>) -> Client {
        let mut client = Client::open(url, None).await.expect("WebSocket handshake");
        let params = match token {
            Some(token) => json!({ "token": token }),
            None => json!({}),
        };
        client.connected = client.command("connect", params).await;
        assert!(
            client.connected.get("result").is_some(),
            "connect failed: {}",
            client.connected
        );
        client
    }

    /// Opens the WebSocket only (with an `Origin`, if given).
    pub async fn open(url: &str, origin: Option<&str>) -> Result<Client, clarion_ws::Error> {
        Client::open_with(url, origin, None).await
    }

    /// [`Client::open`] trusting the CA in `ca_file` for `wss://`.
    pub async fn open_with(
        url: &str,
        origin: Option<&str>,
        ca_file: Option<&std::path::Path>,
    ) -> Result<Client, clarion_ws::Error> {
        let mut options = ConnectOptions::default();
        options.tls.ca_file = ca_file.map(std::path::Path::to_path_buf);
        if let Some(origin) = origin {
            let value = http::HeaderValue::from_str(origin).expect("origin");
            options.headers.insert(http::header::ORIGIN, value);
        }
        let mut config = clarion_ws::Config::default();
        config.subprotocols = vec!["clarion.json.v1".into()];
        let connect = clarion_ws::connect_with(url, &config, &options);
        let (ws, _response) = tokio::time::timeout(STEP, connect)
            .await
            .expect("handshake timeout")?;
        Ok(Client {
            ws,
            next_id: 1,
            pushes: VecDeque::new(),
            connected: Value::Null,
        })
    }

    /// Sends a raw text frame.
    pub async fn send_raw(&mut self, text: &str) {
        self.ws.send(text.to_owned()).await.expect("send");
    }

    /// Sends a command; returns its reply (pushes that come first are kept).
    pub async fn command(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let command = json!({ "id": id, "method": method, "params": params });
        self.send_raw(&command.to_string()).await;
        loop {
            let message = self.next_message().await;
            match message.get("id").and_then(Value::as_u64) {
                Some(got) if got == u64::from(id) => return message,
                _ => self.pushes.push_back(message),
            }
        }
    }

    /// Sends a command and returns its `result`; panics on an error reply.
    pub async fn ok(&mut self, method: &str, params: Value) -> Value {
        let reply = self.command(method, params).await;
        match reply.get("result") {
            Some(result) => result.clone(),
            None => panic!("{method} failed: {reply}"),
        }
    }

    /// The next push (kept or new), within [`STEP`].
    pub async fn push(&mut self) -> Value {
        if let Some(push) = self.pushes.pop_front() {
            return push;
        }
        self.next_message().await
    }

    /// The next message (a kept push first), or how the connection ended,
    /// for clients that reconnect; panics if nothing comes within [`STEP`].
    pub async fn try_next(&mut self) -> Result<Value, Ended> {
        if let Some(push) = self.pushes.pop_front() {
            return Ok(push);
        }
        match tokio::time::timeout(STEP, self.recv_json()).await {
            Ok(result) => result,
            Err(_) => panic!("no message within {STEP:?}"),
        }
    }

    /// The next push of type `kind` in `channel`, skipping others.
    pub async fn push_of(&mut self, kind: &str, channel: &str) -> Value {
        loop {
            let push = self.push().await;
            if push["push"] == kind && push["channel"] == channel {
                return push;
            }
        }
    }

    /// Whether a push arrives within `wait` (it is kept if so).
    pub async fn quiet_for(&mut self, wait: Duration) -> bool {
        if !self.pushes.is_empty() {
            return false;
        }
        match tokio::time::timeout(wait, self.recv_json()).await {
            Err(_) => true,
            Ok(Ok(message)) => {
                self.pushes.push_back(message);
                false
            }
            Ok(Err(ended)) => panic!("connection ended: {ended:?}"),
        }
    }

    async fn next_message(&mut self) -> Value {
        match tokio::time::timeout(STEP, self.recv_json()).await {
            Ok(Ok(message)) => message,
            Ok(Err(ended)) => panic!("connection ended while waiting: {ended:?}"),
            Err(_) => panic!("no message within {STEP:?}"),
        }
    }

    async fn recv_json(&mut self) -> Result<Value, Ended> {
        match self.ws.recv().await {
            Some(Ok(Message::Text(text))) => {
                Ok(serde_json::from_str(text.as_str()).expect("server sent JSON"))
            }
            Some(Ok(Message::Binary(_))) => panic!("server sent a binary frame"),
            Some(Err(err)) => Err(Ended::NoCloseFrame(err.to_string())),
            None => Err(self.ended()),
        }
    }

    fn ended(&self) -> Ended {
        match self.ws.close_frame() {
            Some(Some(frame)) => Ended::Closed(frame.code.0, frame.reason.to_string()),
            _ => Ended::NoCloseFrame("closed without a close frame".into()),
        }
    }

    /// Reads until the connection ends (within [`STEP`]); returns the
    /// messages received and how it ended.
    pub async fn until_closed(&mut self) -> (Vec<Value>, Ended) {
        let mut seen: Vec<Value> = self.pushes.drain(..).collect();
        let read = async {
            loop {
                match self.recv_json().await {
                    Ok(message) => seen.push(message),
                    Err(ended) => return ended,
                }
            }
        };
        let ended = tokio::time::timeout(STEP, read)
            .await
            .expect("the server did not close in time");
        (seen, ended)
    }

    /// Closes normally.
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(STEP, self.ws.close(CloseCode::NORMAL, "bye")).await;
    }
}

/// Mints an HS256 token with `clarion token` and the test secret.
pub fn token(args: &[&str]) -> String {
    token_signed_with(SECRET, args)
}

/// Mints an HS256 token with `clarion token` and `secret`.
pub fn token_signed_with(secret: &str, args: &[&str]) -> String {
    let mut cmd = Command::new(clarion_bin());
    cmd.args(["token", "--secret", secret]).args(args);
    let finished = run(&mut cmd, STEP);
    assert!(finished.status.success(), "{}", finished.report());
    finished.stdout.trim().to_owned()
}
