//! Attacks on the real `clarion echo` binary over loopback.
//!
//! Each test starts its own server with short timeouts (flags), attacks it
//! from raw sockets, and checks three things: the HTTP status or close code
//! the attack gets; that a normal client still gets an echo meanwhile or
//! right after; and that the server's resident memory (`VmRSS` from
//! `/proc/PID/status`) comes back to within [`RSS_SLACK_KIB`] of what it was
//! before the attack. Every load is bounded in count, bytes and time, and
//! loopback-only: per-IP attacks come from other 127.0.0.x source addresses
//! than the normal client (127.0.0.1).

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use clarion_tests::harness::{Server, Transport};
use clarion_ws::tls::TlsClientOptions;
use clarion_ws::{Config, ConnectOptions, Message};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::timeout;

/// How far above its pre-attack RSS the server may stay afterwards. glibc
/// keeps some freed heap in its arenas (one per worker thread) rather than
/// returning it, so "back to baseline" means within a few MiB of it; an
/// unbounded leak or buffer shows up as tens of MiB.
const RSS_SLACK_KIB: u64 = 8 * 1024;

/// Time any single read in these tests may take before the test fails.
const READ_BOUND: Duration = Duration::from_secs(5);

const KEY_HEADERS: &str = "Upgrade: websocket\r\nConnection: Upgrade\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";

// ---- the target ------------------------------------------------------------

struct Target {
    server: Server,
    addr: SocketAddr,
    baseline_kib: u64,
}

impl Target {
    /// Starts `clarion echo ARGS` and records its RSS after one echo.
    async fn start(args: &[&str]) -> Target {
        Target::start_with(Transport::Ws, args).await
    }

    async fn start_with(transport: Transport, args: &[&str]) -> Target {
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
    async fn assert_echo(&self) {
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
    async fn assert_echo_soon(&self) {
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
    async fn assert_memory_back(&self) {
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
    async fn assert_recovered(&self) {
        self.assert_echo_soon().await;
        self.assert_memory_back().await;
    }
}

fn rss_kib(pid: u32) -> u64 {
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
async fn connect_from(source: u8, addr: SocketAddr) -> TcpStream {
    connect_with_socket(source, addr, |_| ()).await
}

async fn connect_with_socket(
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
async fn read_head(stream: &mut TcpStream, buf: &mut BytesMut) -> String {
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

fn status(head: &str) -> u16 {
    head.split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"))
}

/// Sends an upgrade request with `extra` headers and returns the status
/// and head.
async fn request(stream: &mut TcpStream, extra: &str) -> (u16, String, BytesMut) {
    let request = format!("GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\n{KEY_HEADERS}{extra}\r\n");
    let _ = stream.write_all(request.as_bytes()).await;
    let mut buf = BytesMut::new();
    let head = read_head(stream, &mut buf).await;
    (status(&head), head, buf)
}

/// A WebSocket opened by hand from 127.0.0.`source`, with what was read
/// past the 101.
async fn open_raw(source: u8, addr: SocketAddr, extra: &str) -> (TcpStream, BytesMut) {
    let mut stream = connect_from(source, addr).await;
    let (status, head, buf) = request(&mut stream, extra).await;
    assert_eq!(status, 101, "{head}");
    (stream, buf)
}

/// A masked client frame.
fn frame(first_byte: u8, payload: &[u8]) -> Vec<u8> {
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

const FIN_BINARY: u8 = 0x82;
const PING: u8 = 0x89;

/// A server frame: (opcode, payload); `None` at EOF or a reset.
async fn read_frame(stream: &mut TcpStream, buf: &mut BytesMut) -> Option<(u8, Vec<u8>)> {
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
struct Ending {
    close_code: Option<u16>,
    close_at: Option<Instant>,
    eof_at: Instant,
}

async fn read_to_eof(stream: &mut TcpStream, buf: &mut BytesMut, bound: Duration) -> Ending {
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

// ---- the opening handshake -------------------------------------------------

/// Slowloris: clients that trickle their head get 408 once the handshake
/// timeout passes, however they trickle, and the server serves others.
#[tokio::test]
async fn slowloris_handshakes_get_408_after_the_handshake_timeout() {
    let target = Target::start(&["--handshake-timeout", "500ms"]).await;
    let started = Instant::now();
    let mut slow = Vec::new();
    for _ in 0..40 {
        let mut stream = connect_from(2, target.addr).await;
        let _ = stream.write_all(b"GET /echo HTTP/1.1\r\nHost: x\r\n").await;
        slow.push(stream);
    }
    for _ in 0..3 {
        for stream in &mut slow {
            let _ = stream.write_all(b"X-Slow: 1\r\n").await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    target.assert_echo().await;
    for stream in &mut slow {
        let head = read_head(stream, &mut BytesMut::new()).await;
        assert_eq!(status(&head), 408, "{head}");
    }
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    target.assert_recovered().await;
}

/// Heads too big (431), with too many headers (431), a target too long
/// (414), sent by 20 clients each.
#[tokio::test]
async fn oversized_heads_get_431_and_long_urls_414() {
    let target = Target::start(&[]).await;
    let big_header = format!("X-Big: {}\r\n", "a".repeat(20 * 1024));
    let many_headers = "X-Many: 1\r\n".repeat(100);
    let long_url = format!(
        "GET /{} HTTP/1.1\r\nHost: x\r\n{KEY_HEADERS}\r\n",
        "u".repeat(9000)
    );
    let cases: [(&str, &[u8], u16); 3] = [
        ("oversized head", big_header.as_bytes(), 431),
        ("too many headers", many_headers.as_bytes(), 431),
        ("long URL", long_url.as_bytes(), 414),
    ];
    for (what, bytes, want) in cases {
        let mut clients = Vec::new();
        for _ in 0..20 {
            let mut stream = connect_from(2, target.addr).await;
            if want == 414 {
                let _ = stream.write_all(bytes).await;
            } else {
                let head = format!("GET /echo HTTP/1.1\r\nHost: x\r\n{KEY_HEADERS}");
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(bytes).await;
                let _ = stream.write_all(b"\r\n").await;
            }
            clients.push(stream);
        }
        for stream in &mut clients {
            let head = read_head(stream, &mut BytesMut::new()).await;
            assert_eq!(status(&head), want, "{what}: {head}");
        }
        target.assert_echo().await;
    }
    target.assert_recovered().await;
}

/// Cross-Site WebSocket Hijacking: an Origin off the list gets 403 (look-
/// alikes and tricks too); listed ones and clients without Origin get in.
#[tokio::test]
async fn a_foreign_origin_gets_403() {
    let target = Target::start(&[
        "--allowed-origin",
        "https://app.example.com",
        "--allowed-origin",
        "https://*.example.com",
    ])
    .await;
    for origin in [
        "https://evil.example.net",
        "https://evilexample.com",
        "https://example.com",
        "https://app.example.com.evil.net",
        "https://app.example.com@evil.net",
        "null",
    ] {
        let mut stream = connect_from(2, target.addr).await;
        let (status, head, body) = request(&mut stream, &format!("Origin: {origin}\r\n")).await;
        assert_eq!(status, 403, "{origin}: {head}");
        assert!(
            !String::from_utf8_lossy(&body).contains("evil"),
            "body echoes the origin"
        );
    }
    for origin in ["https://app.example.com", "HTTPS://Chat.Example.com"] {
        open_raw(2, target.addr, &format!("Origin: {origin}\r\n")).await;
    }
    // `assert_echo` sends no Origin, like any non-browser client.
    target.assert_recovered().await;
}

// ---- admission -----------------------------------------------------------------

/// Past `--max-connections`, 503 with Retry-After, for everyone; places come
/// back when connections end.
#[tokio::test]
async fn too_many_connections_in_total_get_503() {
    let target = Target::start(&["--max-connections", "10"]).await;
    let mut held = Vec::new();
    for source in 10..20 {
        // The warm-up echo's connection may still be closing: wait for it.
        let mut tries = 0;
        loop {
            let mut stream = connect_from(source, target.addr).await;
            match request(&mut stream, "").await {
                (101, ..) => break held.push(stream),
                (503, ..) if tries < 40 => tries += 1,
                (_, head, _) => panic!("{head}"),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    for source in [30, 1] {
        let mut stream = connect_from(source, target.addr).await;
        let (status, head, _) = request(&mut stream, "").await;
        assert_eq!(status, 503, "{head}");
        assert!(
            head.to_ascii_lowercase().contains("\r\nretry-after: 1\r\n"),
            "{head}"
        );
    }
    drop(held);
    target.assert_recovered().await;
}

/// Past `--max-connections-per-ip`, 429 for that address only.
#[tokio::test]
async fn too_many_connections_from_one_ip_get_429() {
    let target = Target::start(&["--max-connections-per-ip", "5"]).await;
    let mut held = Vec::new();
    for _ in 0..5 {
        held.push(open_raw(3, target.addr, "").await);
    }
    for _ in 0..20 {
        let mut stream = connect_from(3, target.addr).await;
        let (status, head, _) = request(&mut stream, "").await;
        assert_eq!(status, 429, "{head}");
        assert!(
            head.to_ascii_lowercase().contains("\r\nretry-after: "),
            "{head}"
        );
    }
    target.assert_echo().await;
    drop(held);
    target.assert_recovered().await;
}

/// Past the rate of new connections per IP (after the burst), 429 with
/// Retry-After; other addresses are not affected.
#[tokio::test]
async fn connecting_too_fast_from_one_ip_gets_429() {
    let target = Target::start(&[
        "--max-new-connections-per-second",
        "2",
        "--new-connection-burst",
        "5",
    ])
    .await;
    let mut statuses = Vec::new();
    for _ in 0..30 {
        let mut stream = connect_from(4, target.addr).await;
        statuses.push(request(&mut stream, "").await.0);
    }
    assert_eq!(statuses[..5], [101; 5], "{statuses:?}");
    let refused = statuses.iter().filter(|&&s| s == 429).count();
    assert!(refused >= 20, "{statuses:?}");
    assert!(
        statuses.iter().all(|&s| s == 101 || s == 429),
        "{statuses:?}"
    );
    target.assert_echo().await;
    target.assert_recovered().await;
}

// ---- frames --------------------------------------------------------------------

/// A header announcing 2^63 - 1 bytes is refused on the header (1009),
/// nothing allocated; 2^63 itself is not a valid length at all (1002).
#[tokio::test]
async fn a_frame_header_announcing_2_pow_63_bytes_is_closed_before_buffering() {
    let target = Target::start(&[]).await;
    for (length, want) in [(u64::MAX >> 1, 1009), (1u64 << 63, 1002)] {
        let (mut stream, mut buf) = open_raw(2, target.addr, "").await;
        let mut header = vec![FIN_BINARY, 0x80 | 127];
        header.extend_from_slice(&length.to_be_bytes());
        header.extend_from_slice(&[1, 2, 3, 4]);
        header.extend_from_slice(&[0; 1024]);
        stream.write_all(&header).await.unwrap();
        let ending = read_to_eof(&mut stream, &mut buf, READ_BOUND).await;
        assert_eq!(ending.close_code, Some(want), "length {length}");
    }
    target.assert_recovered().await;
}

/// A message in more fragments than `max_fragments` (131,072) is closed
/// with 1008.
#[tokio::test]
async fn too_many_fragments_are_closed_with_1008() {
    let target = Target::start(&[]).await;
    let (stream, mut buf) = open_raw(2, target.addr, "").await;
    let (mut reader, mut writer) = stream.into_split();
    let mut bytes = frame(0x02, b"x");
    let continuation = frame(0x00, b"x");
    for _ in 0..140_000 {
        bytes.extend_from_slice(&continuation);
    }
    let writing = tokio::spawn(async move {
        let _ = writer.write_all(&bytes).await;
        writer
    });
    let read = async {
        let mut stream_buf = std::mem::take(&mut buf);
        loop {
            match next_frame(&mut reader, &mut stream_buf).await {
                Some((0x8, payload)) => return Some(u16::from_be_bytes([payload[0], payload[1]])),
                Some(_) => continue,
                None => return None,
            }
        }
    };
    let code = timeout(Duration::from_secs(20), read)
        .await
        .expect("closed in time");
    assert_eq!(code, Some(1008));
    drop(writing.await);
    target.assert_recovered().await;
}

/// [`read_frame`] over a read half.
async fn next_frame(
    reader: &mut tokio::net::tcp::OwnedReadHalf,
    buf: &mut BytesMut,
) -> Option<(u8, Vec<u8>)> {
    loop {
        if buf.len() >= 2 && buf[1] & 0x7f < 126 {
            let len = usize::from(buf[1] & 0x7f);
            if buf.len() >= 2 + len {
                let opcode = buf[0] & 0x0f;
                buf.advance(2);
                return Some((opcode, buf.split_to(len).to_vec()));
            }
        }
        match reader.read_buf(buf).await {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// 32 MiB of zeros deflated to a few KiB: closed with 1009 (the inflate
/// ratio limit stops it near 1 MiB), never inflated whole.
#[tokio::test]
async fn a_decompression_bomb_is_closed_with_1009() {
    let target = Target::start(&[]).await;
    let (mut stream, mut buf) = open_raw(
        2,
        target.addr,
        "Sec-WebSocket-Extensions: permessage-deflate\r\n",
    )
    .await;
    let bomb = deflate_zeros(32 << 20);
    assert!(bomb.len() < 64 * 1024, "{} bytes", bomb.len());
    // FIN + RSV1 (compressed) + binary.
    stream.write_all(&frame(0xc2, &bomb)).await.unwrap();
    let ending = read_to_eof(&mut stream, &mut buf, READ_BOUND).await;
    assert_eq!(ending.close_code, Some(1009));
    target.assert_recovered().await;
}

/// `len` zero bytes as a permessage-deflate payload (raw DEFLATE, sync
/// flush, without the final `00 00 ff ff`).
fn deflate_zeros(len: usize) -> Vec<u8> {
    use flate2::{Compress, Compression, FlushCompress};
    let mut compress = Compress::new(Compression::best(), false);
    let zeros = vec![0; 1 << 20];
    let mut out = Vec::with_capacity(64 * 1024);
    for _ in 0..len / zeros.len() {
        let mut input = &zeros[..];
        while !input.is_empty() {
            out.reserve(4096);
            let before = compress.total_in();
            compress
                .compress_vec(input, &mut out, FlushCompress::None)
                .expect("deflate");
            input = &input[(compress.total_in() - before) as usize..];
        }
    }
    loop {
        out.reserve(4096);
        let before = compress.total_out();
        compress
            .compress_vec(&[], &mut out, FlushCompress::Sync)
            .expect("deflate");
        if compress.total_out() == before || out.ends_with(&[0, 0, 0xff, 0xff]) {
            break;
        }
    }
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out.truncate(out.len() - 4);
    out
}

// ---- slow and stuck peers --------------------------------------------------------

/// A client that sends much and never reads: the server's output stays
/// bounded by its write buffer (it stops reading), and after
/// `--write-timeout` without progress the connection is dropped.
#[tokio::test]
async fn a_client_that_never_reads_is_dropped_after_the_write_timeout() {
    let target = Target::start(&["--write-timeout", "1s", "--no-deflate"]).await;
    let mut stream = connect_with_socket(2, target.addr, |socket| {
        socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    })
    .await;
    let (status, head, _) = request(&mut stream, "").await;
    assert_eq!(status, 101, "{head}");
    let message = frame(FIN_BINARY, &vec![7; 64 * 1024]);
    let (started, mut sent, mut peak_kib) = (Instant::now(), 0usize, 0);
    let outcome = loop {
        if sent >= 256 << 20 {
            break "sent 256 MiB without being dropped";
        }
        match timeout(Duration::from_secs(5), stream.write_all(&message)).await {
            Ok(Ok(())) => sent += message.len(),
            Ok(Err(_)) => break "dropped",
            Err(_) => break "a write blocked for 5 s without being dropped",
        }
        peak_kib = peak_kib.max(rss_kib(target.server.pid()));
    };
    assert_eq!(outcome, "dropped", "after {sent} bytes");
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
    assert!(
        peak_kib <= target.baseline_kib + RSS_SLACK_KIB,
        "RSS peaked at {peak_kib} KiB (baseline {} KiB) after {sent} bytes",
        target.baseline_kib
    );
    target.assert_echo().await;
    target.assert_recovered().await;
}

/// A silent peer (half-open TCP looks the same): pinged half-way through
/// the idle timeout, closed with 1001 at it, and dropped at once (a
/// connection closed for silence does not wait for a close reply).
#[tokio::test]
async fn a_silent_peer_is_closed_with_1001_after_the_idle_timeout() {
    let target = Target::start(&["--idle-timeout", "600ms"]).await;
    let opened = Instant::now();
    let (mut stream, mut buf) = open_raw(2, target.addr, "").await;
    let ending = read_to_eof(&mut stream, &mut buf, READ_BOUND).await;
    assert_eq!(ending.close_code, Some(1001));
    let close_at = ending.close_at.expect("a close frame");
    let idle = close_at - opened;
    assert!(
        idle >= Duration::from_millis(550) && idle < Duration::from_secs(2),
        "{idle:?}"
    );
    let waited = ending.eof_at - close_at;
    assert!(
        waited < Duration::from_secs(1),
        "EOF {waited:?} after the close"
    );
    target.assert_recovered().await;
}

/// A client that never answers the server's close frame (here the 1001 of
/// a shutdown) is dropped after `--close-timeout`, not held.
#[tokio::test]
async fn a_client_that_never_answers_the_close_is_dropped_after_the_close_timeout() {
    let target = Target::start(&["--close-timeout", "500ms", "--shutdown-timeout", "5s"]).await;
    let (mut stream, mut buf) = open_raw(2, target.addr, "").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    target.server.terminate();
    let ending = read_to_eof(&mut stream, &mut buf, READ_BOUND).await;
    assert_eq!(ending.close_code, Some(1001));
    let waited = ending.eof_at - ending.close_at.expect("a close frame");
    assert!(
        waited >= Duration::from_millis(400) && waited < Duration::from_millis(1500),
        "EOF {waited:?} after the close frame"
    );
}

/// With `--ping-interval`, a peer that does not answer pings (half-open
/// TCP, a frozen client) is closed with 1011 after the pong timeout.
#[tokio::test]
async fn a_peer_that_never_pongs_is_closed_with_1011() {
    let target = Target::start(&[
        "--ping-interval",
        "200ms",
        "--pong-timeout",
        "400ms",
        "--idle-timeout",
        "off",
        "--close-timeout",
        "300ms",
    ])
    .await;
    let opened = Instant::now();
    let (mut stream, mut buf) = open_raw(2, target.addr, "").await;
    let ending = read_to_eof(&mut stream, &mut buf, READ_BOUND).await;
    assert_eq!(ending.close_code, Some(1011));
    let elapsed = ending.eof_at - opened;
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    target.assert_recovered().await;
}

/// A ping flood past `--max-control-frames-per-second` is closed with 1008.
#[tokio::test]
async fn a_ping_flood_is_closed_with_1008() {
    let target = Target::start(&["--max-control-frames-per-second", "20"]).await;
    let (mut stream, mut buf) = open_raw(2, target.addr, "").await;
    let pings: Vec<u8> = (0..500).flat_map(|_| frame(PING, b"flood")).collect();
    let _ = stream.write_all(&pings).await;
    let ending = read_to_eof(&mut stream, &mut buf, READ_BOUND).await;
    assert_eq!(ending.close_code, Some(1008));
    target.assert_recovered().await;
}

// ---- TLS -------------------------------------------------------------------

/// A client that opens TCP and never starts TLS is dropped after
/// `--tls-handshake-timeout`, separately from the (long) WebSocket
/// handshake timeout.
#[tokio::test]
async fn a_silent_tls_client_is_dropped_after_the_tls_handshake_timeout() {
    let target = Target::start_with(
        Transport::Wss,
        &[
            "--tls-handshake-timeout",
            "300ms",
            "--handshake-timeout",
            "30s",
        ],
    )
    .await;
    let started = Instant::now();
    let mut stream = connect_from(2, target.addr).await;
    let mut byte = [0; 1];
    let read = timeout(READ_BOUND, stream.read(&mut byte)).await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "{read:?}");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(250) && elapsed < Duration::from_secs(2),
        "{elapsed:?}"
    );
}

/// SIGHUP makes the server use the certificate files' new contents: a
/// client that trusts only the new certificate gets in after the signal,
/// not before.
#[tokio::test]
async fn sighup_reloads_the_tls_certificate() {
    let target = Target::start_with(Transport::Wss, &[]).await;
    let served = target
        .server
        .cert
        .as_ref()
        .expect("a wss server has a cert");
    let fresh = clarion_test_support::self_signed_cert();
    let connect = || {
        let mut options = ConnectOptions::default();
        options.tls = TlsClientOptions {
            ca_file: Some(fresh.cert_pem.clone()),
            insecure: false,
        };
        let url = format!("wss://localhost:{}/echo", target.addr.port());
        async move { clarion_ws::connect_with(&url, &Config::default(), &options).await }
    };
    assert!(
        connect().await.is_err(),
        "the new certificate is not served yet"
    );
    std::fs::copy(&fresh.cert_pem, &served.cert_pem).unwrap();
    std::fs::copy(&fresh.key_pem, &served.key_pem).unwrap();
    target.server.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match connect().await {
            Ok(_) => break,
            Err(err) if Instant::now() > deadline => {
                panic!("{err}\n--- server stderr ---\n{}", target.server.stderr())
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

// ---- shutdown ------------------------------------------------------------------

/// SIGTERM: every connection, including one in the middle of a fragmented
/// message, gets a close frame with 1001; then the server exits 0.
#[tokio::test]
async fn sigterm_closes_every_connection_with_1001_then_exits_0() {
    let target = Target::start(&["--close-timeout", "2s"]).await;
    let url = format!("ws://{}/echo", target.addr);
    let (mut client, _) = clarion_ws::connect(&url, &Config::default()).await.unwrap();
    let (mut mid_message, mut buf) = open_raw(2, target.addr, "").await;
    mid_message
        .write_all(&frame(0x02, b"first half"))
        .await
        .unwrap();
    let (_silent, _) = open_raw(3, target.addr, "").await;
    tokio::time::sleep(Duration::from_millis(100)).await;

    target.server.terminate();
    let closed = timeout(READ_BOUND, client.recv()).await;
    assert!(matches!(closed, Ok(None)), "{closed:?}");
    let frame_seen = client
        .close_frame()
        .cloned()
        .flatten()
        .expect("a close frame");
    assert_eq!(frame_seen.code, clarion_ws::CloseCode::GOING_AWAY);
    let (opcode, payload) = timeout(READ_BOUND, read_frame(&mut mid_message, &mut buf))
        .await
        .expect("in time")
        .expect("a frame");
    assert_eq!((opcode, &payload[..2]), (0x8, &1001u16.to_be_bytes()[..]));
    // The silent peer never answers: the server waits at most the close
    // timeout for it, well within the shutdown timeout.
    let started = Instant::now();
    let status = tokio::task::spawn_blocking(move || {
        let mut target = target;
        let status = target.server.wait(Duration::from_secs(10));
        (status, target)
    });
    let (status, _target) = status.await.unwrap();
    let status = status.expect("the server exits");
    assert!(status.success(), "{status}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}

/// The shutdown wait is bounded by `--shutdown-timeout` even when clients
/// never answer and the close timeout is longer.
#[tokio::test]
async fn shutdown_is_bounded_by_the_shutdown_timeout() {
    let target = Target::start(&["--close-timeout", "30s", "--shutdown-timeout", "500ms"]).await;
    let (_silent, _) = open_raw(2, target.addr, "").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    target.server.terminate();
    let status = tokio::task::spawn_blocking(move || {
        let mut target = target;
        target.server.wait(Duration::from_secs(10))
    });
    let status = status.await.unwrap().expect("the server exits");
    assert!(status.success(), "{status}");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(400) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
}
