//! What the attacks share: the target server, raw clients, frame codecs.

pub(crate) use std::net::{Ipv4Addr, SocketAddr};
pub(crate) use std::time::{Duration, Instant};

pub(crate) use bytes::{Buf, BytesMut};
pub(crate) use clarion_tests::harness::{Server, Transport};
pub(crate) use clarion_ws::tls::TlsClientOptions;
pub(crate) use clarion_ws::{Config, ConnectOptions, Message};
pub(crate) use tokio::io::{AsyncReadExt, AsyncWriteExt};
pub(crate) use tokio::net::{TcpSocket, TcpStream};
pub(crate) use tokio::time::timeout;

/// How far above its pre-attack RSS the server may stay afterwards. glibc
/// keeps some freed heap in its arenas (one per worker thread) rather than
/// returning it, so "back to baseline" means within a few MiB of it; an
/// unbounded leak or buffer shows up as tens of MiB.
pub(crate) const RSS_SLACK_KIB: u64 = 8 * 1024;

/// Time any single read in these tests may take before the test fails.
pub(crate) const READ_BOUND: Duration = Duration::from_secs(5);

pub(crate) const KEY_HEADERS: &str = "Upgrade: websocket\r\nConnection: Upgrade\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";

// ---- the target ------------------------------------------------------------

pub(crate) struct Target {
    pub(crate) server: Server,
    pub(crate) addr: SocketAddr,
    pub(crate) baseline_kib: u64,
}

impl Target {
    /// Starts `clarion echo ARGS` and records its RSS after one echo.
    pub(crate) async fn start(args: &[&str]) -> Target {
        Target::start_with(Transport::Ws, args).await
    }

    pub(crate) async fn start_with(transport: Transport, args: &[&str]) -> Target {
        let server = Server::clarion_echo_with(transport, args);
        let authority = server.base_url.split("://").nth(1).expect("a URL");
        let addr: SocketAddr = authority.parse().expect("an address");
        let mut target = Target {
            server,
            addr,
            baseline_kib: 0,
        };
        if transport == Transport::Ws {
            target.assert_echo().await;
        }
        target.baseline_kib = rss_kib(target.server.pid());
        target
    }

    /// A normal client (from 127.0.0.1) gets its message back.
    pub(crate) async fn assert_echo(&self) {
        let url = format!("ws://{}/echo", self.addr);
        let round_trip = async {
            let (mut ws, _) = clarion_ws::connect(&url, &Config::default()).await?;
            ws.send("still serving").await?;
            let reply = ws.recv().await.expect("a reply")?;
            ws.close(clarion_ws::CloseCode::NORMAL, "").await?;
            Ok::<_, clarion_ws::Error>(reply)
        };
        let reply = timeout(READ_BOUND, round_trip).await;
        match reply {
            Ok(Ok(reply)) => assert_eq!(reply, Message::text("still serving")),
            other => panic!(
                "echo failed: {other:?}\n--- server stderr ---\n{}",
                self.server.stderr()
            ),
        }
    }

    /// An echo works within a few seconds (after an attack's connections
    /// were released).
    pub(crate) async fn assert_echo_soon(&self) {
        let deadline = Instant::now() + Duration::from_secs(3);
        let url = format!("ws://{}/echo", self.addr);
        while Instant::now() < deadline {
            if clarion_ws::connect(&url, &Config::default()).await.is_ok() {
                return self.assert_echo().await;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.assert_echo().await;
    }

    /// RSS comes back within the slack of the baseline (polled for 3 s).
    pub(crate) async fn assert_memory_back(&self) {
        let pid = self.server.pid();
        let limit = self.baseline_kib + RSS_SLACK_KIB;
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut rss = rss_kib(pid);
        while rss > limit && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
            rss = rss_kib(pid);
        }
        assert!(
            rss <= limit,
            "RSS {rss} KiB, baseline {} KiB (+{RSS_SLACK_KIB} KiB allowed)",
            self.baseline_kib
        );
        eprintln!(
            "RSS {rss} KiB after the attack, baseline {} KiB",
            self.baseline_kib
        );
    }

    /// What every test ends with: still serving, memory back.
    pub(crate) async fn assert_recovered(&self) {
        self.assert_echo_soon().await;
        self.assert_memory_back().await;
    }
}

pub(crate) fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let line = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .expect("a VmRSS line");
    let kib = line.split_whitespace().nth(1).expect("a number");
    kib.parse().expect("KiB")
}

// ---- raw clients -------------------------------------------------------------

/// A TCP connection from 127.0.0.`source`.
pub(crate) async fn connect_from(source: u8, addr: SocketAddr) -> TcpStream {
    connect_with_socket(source, addr, |_| ()).await
}

pub(crate) async fn connect_with_socket(
    source: u8,
    addr: SocketAddr,
    setup: impl FnOnce(&TcpSocket),
) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("a socket");
    socket
        .bind(SocketAddr::from((Ipv4Addr::new(127, 0, 0, source), 0)))
        .expect("bind to a loopback source");
    setup(&socket);
    timeout(READ_BOUND, socket.connect(addr))
        .await
        .expect("connect in time")
        .expect("connect")
}

/// Reads the response head (up to the blank line, or EOF); panics after
/// [`READ_BOUND`].
pub(crate) async fn read_head(stream: &mut TcpStream, buf: &mut BytesMut) -> String {
    let read = async {
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end + 4]).into_owned();
                buf.advance(end + 4);
                return head;
            }
            match stream.read_buf(buf).await {
                Ok(0) | Err(_) => return String::from_utf8_lossy(buf).into_owned(),
                Ok(_) => {}
            }
        }
    };
    timeout(READ_BOUND, read).await.expect("a response in time")
}

pub(crate) fn status(head: &str) -> u16 {
    head.split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"))
}

/// Sends an upgrade request with `extra` headers and returns the status
/// and head.
pub(crate) async fn request(stream: &mut TcpStream, extra: &str) -> (u16, String, BytesMut) {
    let request = format!("GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\n{KEY_HEADERS}{extra}\r\n");
    let _ = stream.write_all(request.as_bytes()).await;
    let mut buf = BytesMut::new();
    let head = read_head(stream, &mut buf).await;
    (status(&head), head, buf)
}

/// A WebSocket opened by hand from 127.0.0.`source`, with what was read
/// past the 101.
pub(crate) async fn open_raw(source: u8, addr: SocketAddr, extra: &str) -> (TcpStream, BytesMut) {
    let mut stream = connect_from(source, addr).await;
    let (status, head, buf) = request(&mut stream, extra).await;
    assert_eq!(status, 101, "{head}");
    (stream, buf)
}

/// A masked client frame.
pub(crate) fn frame(first_byte: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![first_byte];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= 0xffff => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

pub(crate) const FIN_BINARY: u8 = 0x82;
pub(crate) const PING: u8 = 0x89;

/// A server frame: (opcode, payload); `None` at EOF or a reset.
pub(crate) async fn read_frame(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
) -> Option<(u8, Vec<u8>)> {
    loop {
        if buf.len() >= 2 {
            let (opcode, len7) = (buf[0] & 0x0f, usize::from(buf[1] & 0x7f));
            let (header, len) = match len7 {
                126 if buf.len() >= 4 => (4, usize::from(u16::from_be_bytes([buf[2], buf[3]]))),
                127 if buf.len() >= 10 => {
                    let bytes: [u8; 8] = buf[2..10].try_into().expect("8 bytes");
                    (10, u64::from_be_bytes(bytes) as usize)
                }
                126 | 127 => (usize::MAX, 0),
                n => (2, n),
            };
            if header != usize::MAX && buf.len() >= header + len {
                buf.advance(header);
                return Some((opcode, buf.split_to(len).to_vec()));
            }
        }
        match stream.read_buf(buf).await {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// Reads frames to EOF; the first close frame's code and when it came, and
/// when EOF came. Panics if EOF does not come within `bound`.
pub(crate) struct Ending {
    pub(crate) close_code: Option<u16>,
    pub(crate) close_at: Option<Instant>,
    pub(crate) eof_at: Instant,
}

pub(crate) async fn read_to_eof(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    bound: Duration,
) -> Ending {
    let read = async {
        let (mut close_code, mut close_at) = (None, None);
        while let Some((opcode, payload)) = read_frame(stream, buf).await {
            if opcode == 0x8 && close_at.is_none() {
                close_at = Some(Instant::now());
                close_code =
                    (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
            }
        }
        Ending {
            close_code,
            close_at,
            eof_at: Instant::now(),
        }
    };
    timeout(bound, read)
        .await
        .expect("the server closes in time")
}
