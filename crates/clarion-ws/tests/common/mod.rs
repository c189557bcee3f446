//! Helpers shared by the integration tests: a raw peer that reads and writes
//! exact bytes (frames encoded and decoded by hand, the opening handshake
//! typed out), and loopback servers built on `clarion-ws`.
//!
//! Everything panics with a message on failure: these are fixtures.

// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use clarion_ws::{accept, connect, ClientStream, Config, WebSocket};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// The longest any test may run before it is failed as hung.
pub(crate) const TEST_LIMIT: Duration = Duration::from_secs(15);

/// The key of RFC 6455 section 1.3's sample handshake, and its accept value.
pub(crate) const RFC_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
pub(crate) const RFC_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// The mask key the raw client uses for every frame.
const RAW_MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// Frame opcodes (RFC 6455 section 5.2).
pub(crate) mod op {
    pub(crate) const CONTINUATION: u8 = 0x0;
    pub(crate) const TEXT: u8 = 0x1;
    pub(crate) const BINARY: u8 = 0x2;
    pub(crate) const CLOSE: u8 = 0x8;
    pub(crate) const PING: u8 = 0x9;
    pub(crate) const PONG: u8 = 0xA;
}

/// Runs a whole test body, failing it if it hangs.
pub(crate) async fn bounded<F: Future>(test: F) -> F::Output {
    match tokio::time::timeout(TEST_LIMIT, test).await {
        Ok(output) => output,
        Err(_) => panic!("test did not finish within {TEST_LIMIT:?}"),
    }
}

pub(crate) fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

/// The RFC 6455 section 1.3 client handshake, for `/chat`.
pub(crate) fn rfc_request() -> String {
    format!(
        "GET /chat HTTP/1.1\r\n\
         Host: server.example.com\r\n\
         Upgrade: websocket\r\n\
         Connection: Upgrade\r\n\
         Sec-WebSocket-Key: {RFC_KEY}\r\n\
         Origin: http://example.com\r\n\
         Sec-WebSocket-Protocol: chat, superchat\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    )
}

// ---- frames by hand ---------------------------------------------------------

/// One frame as it was on the wire (payload unmasked).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Frame {
    pub(crate) fin: bool,
    pub(crate) opcode: u8,
    pub(crate) masked: bool,
    pub(crate) payload: Vec<u8>,
}

impl Frame {
    /// The status code of a close frame.
    pub(crate) fn close_code(&self) -> Option<u16> {
        assert_eq!(self.opcode, op::CLOSE, "not a close frame: {self:?}");
        let code = self.payload.get(..2)?;
        Some(u16::from_be_bytes([code[0], code[1]]))
    }

    /// The reason of a close frame.
    pub(crate) fn close_reason(&self) -> String {
        String::from_utf8_lossy(self.payload.get(2..).unwrap_or_default()).into_owned()
    }
}

/// Encodes one frame (RFC 6455 section 5.2), masking the payload if `mask` is given.
pub(crate) fn encode_frame(
    fin: bool,
    opcode: u8,
    payload: &[u8],
    mask: Option<[u8; 4]>,
) -> Vec<u8> {
    let mut out = vec![(u8::from(fin) << 7) | opcode];
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        len @ 0..=125 => out.push(mask_bit | len as u8),
        len @ 126..=0xFFFF => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    match mask {
        Some(key) => {
            out.extend_from_slice(&key);
            out.extend(payload.iter().zip(key.iter().cycle()).map(|(b, k)| b ^ k));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

/// A close frame's payload: the code in network byte order, then the reason.
pub(crate) fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason.as_bytes());
    payload
}

/// Reads and decodes one frame, unmasking its payload.
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(reader: &mut R) -> io::Result<Frame> {
    let mut head = [0; 2];
    reader.read_exact(&mut head).await?;
    let masked = head[1] & 0x80 != 0;
    let len = match head[1] & 0x7F {
        126 => u64::from(reader.read_u16().await?),
        127 => reader.read_u64().await?,
        len => u64::from(len),
    };
    let mut key = [0; 4];
    if masked {
        reader.read_exact(&mut key).await?;
    }
    let len = usize::try_from(len).expect("frame length fits in memory");
    assert!(
        len <= 64 << 20,
        "peer announced an absurd frame of {len} bytes"
    );
    let mut payload = vec![0; len];
    reader.read_exact(&mut payload).await?;
    if masked {
        payload
            .iter_mut()
            .zip(key.iter().cycle())
            .for_each(|(b, k)| *b ^= k);
    }
    Ok(Frame {
        fin: head[0] & 0x80 != 0,
        opcode: head[0] & 0x0F,
        masked,
        payload,
    })
}

// ---- HTTP heads by hand -----------------------------------------------------

/// A request or response head: the first line and the headers.
#[derive(Debug)]
pub(crate) struct Head {
    pub(crate) first_line: String,
    pub(crate) headers: Vec<(String, String)>,
}

impl Head {
    fn parse(text: &str) -> Head {
        let mut lines = text.split("\r\n").filter(|line| !line.is_empty());
        let first_line = lines.next().unwrap_or_default().to_owned();
        let headers = lines
            .map(|line| {
                let (name, value) = line.split_once(':').expect("a header line");
                (name.trim().to_ascii_lowercase(), value.trim().to_owned())
            })
            .collect();
        Head {
            first_line,
            headers,
        }
    }

    /// The status code of a response.
    pub(crate) fn status(&self) -> u16 {
        let code = self.first_line.split(' ').nth(1).expect("a status line");
        code.parse().expect("a numeric status")
    }

    /// The value of header `name` (case-insensitive).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        let mut values = self.headers.iter().filter(|(n, _)| *n == name);
        values.next().map(|(_, v)| v.as_str())
    }
}

/// Reads a head line by line, up to and including the blank line.
async fn read_head(io: &mut BufReader<TcpStream>) -> Head {
    let mut text = String::new();
    loop {
        let before = text.len();
        let read = io.read_line(&mut text).await.expect("reading an HTTP head");
        assert!(read > 0, "EOF inside an HTTP head: {text:?}");
        if &text[before..] == "\r\n" {
            return Head::parse(&text);
        }
    }
}

/// Accepts one TCP connection and reads the request head on it.
pub(crate) async fn accept_request(listener: &TcpListener) -> (BufReader<TcpStream>, Head) {
    let (tcp, _) = listener.accept().await.expect("accepting");
    let mut io = BufReader::new(tcp);
    let request = read_head(&mut io).await;
    (io, request)
}

/// Reads until the peer closes the TCP connection; returns what came. A
/// reset counts as closed: a peer that closes with our bytes unread resets.
pub(crate) async fn read_to_eof<R: AsyncRead + Unpin>(reader: &mut R) -> Vec<u8> {
    let mut bytes = Vec::new();
    match reader.read_to_end(&mut bytes).await {
        Ok(_) => bytes,
        Err(err) if is_closed(&err) => bytes,
        Err(err) => panic!("reading to EOF: {err}"),
    }
}

fn is_closed(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset
    )
}

/// Parses an HTTP response read whole (status line, headers, body).
pub(crate) fn parse_response(bytes: &[u8]) -> Head {
    let text = String::from_utf8_lossy(bytes);
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    Head::parse(head)
}

// ---- the raw peer -----------------------------------------------------------

/// A WebSocket peer written by hand over a real TCP socket: every byte it
/// sends is chosen by the test, every byte it receives is checked by it.
pub(crate) struct RawPeer {
    io: BufReader<TcpStream>,
    /// Client frames are masked with this key; server frames are not.
    mask: Option<[u8; 4]>,
}

impl RawPeer {
    /// Connects to `addr` and performs the RFC's sample client handshake.
    pub(crate) async fn connect(addr: SocketAddr) -> RawPeer {
        let tcp = TcpStream::connect(addr).await.expect("connecting");
        RawPeer::client_handshake(tcp, &[]).await
    }

    /// Performs the RFC's sample client handshake over a connected socket,
    /// writing `early` (frames) in the same write as the request.
    pub(crate) async fn client_handshake(tcp: TcpStream, early: &[u8]) -> RawPeer {
        let mut io = BufReader::new(tcp);
        let mut request = rfc_request().into_bytes();
        request.extend_from_slice(early);
        io.write_all(&request).await.expect("writing the request");
        let head = read_head(&mut io).await;
        assert_eq!(head.status(), 101, "{head:?}");
        assert_eq!(head.header("sec-websocket-accept"), Some(RFC_ACCEPT));
        RawPeer {
            io,
            mask: Some(RAW_MASK),
        }
    }

    /// Accepts one connection and answers its handshake with a correct 101.
    pub(crate) async fn accept(listener: &TcpListener) -> RawPeer {
        let (mut io, request) = accept_request(listener).await;
        let key = request.header("sec-websocket-key").expect("a key");
        let accept = clarion_ws::proto::handshake::accept_key(key.as_bytes());
        let response = format!(
            "HTTP/1.1 101 Switching Protocols\r\n\
             Upgrade: websocket\r\n\
             Connection: Upgrade\r\n\
             Sec-WebSocket-Accept: {accept}\r\n\r\n"
        );
        io.write_all(response.as_bytes())
            .await
            .expect("writing the 101");
        RawPeer { io, mask: None }
    }

    /// Writes exactly these bytes.
    pub(crate) async fn write_raw(&mut self, bytes: &[u8]) {
        self.io.write_all(bytes).await.expect("writing raw bytes");
    }

    /// Writes one frame, masked if we are the client.
    pub(crate) async fn send_frame(&mut self, fin: bool, opcode: u8, payload: &[u8]) {
        let frame = encode_frame(fin, opcode, payload, self.mask);
        self.write_raw(&frame).await;
    }

    /// Writes one frame; an error once the other side has gone.
    pub(crate) async fn try_send_frame(
        &mut self,
        fin: bool,
        opcode: u8,
        payload: &[u8],
    ) -> io::Result<()> {
        let frame = encode_frame(fin, opcode, payload, self.mask);
        self.io.write_all(&frame).await
    }

    /// Writes a close frame with `code` and `reason`.
    pub(crate) async fn send_close(&mut self, code: u16, reason: &str) {
        self.send_frame(true, op::CLOSE, &close_payload(code, reason))
            .await;
    }

    /// Reads the next frame.
    pub(crate) async fn read_frame(&mut self) -> Frame {
        read_frame(&mut self.io).await.expect("reading a frame")
    }

    /// Reads frames until a close frame and returns it.
    pub(crate) async fn read_close(&mut self) -> Frame {
        loop {
            let frame = self.read_frame().await;
            if frame.opcode == op::CLOSE {
                return frame;
            }
        }
    }

    /// Reads frames until the peer closes the TCP connection.
    pub(crate) async fn read_frames_to_eof(&mut self) -> Vec<Frame> {
        let mut frames = Vec::new();
        loop {
            match read_frame(&mut self.io).await {
                Ok(frame) => frames.push(frame),
                Err(err) if is_closed(&err) => return frames,
                Err(err) => panic!("reading frames: {err}"),
            }
        }
    }

    /// Reads until the peer closes the TCP connection; returns what came.
    pub(crate) async fn read_to_eof(&mut self) -> Vec<u8> {
        read_to_eof(&mut self.io).await
    }

    /// Whether nothing arrives (and no EOF) within `wait`.
    pub(crate) async fn is_silent_for(&mut self, wait: Duration) -> bool {
        let mut byte = [0; 1];
        tokio::time::timeout(wait, self.io.read(&mut byte))
            .await
            .is_err()
    }

    /// Shuts down our sending side (TCP FIN).
    pub(crate) async fn shutdown(&mut self) {
        self.io.shutdown().await.expect("shutting down");
    }
}

// ---- loopback servers and pairs --------------------------------------------

/// A listener on an ephemeral loopback port.
pub(crate) async fn listen() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binding");
    let addr = listener.local_addr().expect("local address");
    (listener, addr)
}

pub(crate) fn ws_url(addr: SocketAddr) -> String {
    format!("ws://{addr}/")
}

/// Accepts one TCP connection and the WebSocket handshake on it.
pub(crate) async fn accept_one(listener: &TcpListener, config: &Config) -> WebSocket<TcpStream> {
    let (tcp, _) = listener.accept().await.expect("accepting");
    accept(tcp, config).await.expect("server handshake")
}

/// Serves an echo on every connection until the test's runtime ends.
pub(crate) async fn spawn_echo(config: Config) -> SocketAddr {
    let (listener, addr) = listen().await;
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let config = config.clone();
            tokio::spawn(async move {
                let Ok(mut ws) = accept(tcp, &config).await else {
                    return;
                };
                while let Some(Ok(message)) = ws.recv().await {
                    if ws.send(message).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

/// A connected server and client, both `clarion-ws`.
pub(crate) async fn ws_pair(
    server: &Config,
    client: &Config,
) -> (WebSocket<TcpStream>, WebSocket<ClientStream>) {
    let (listener, addr) = listen().await;
    let url = ws_url(addr);
    let (server, client) = tokio::join!(accept_one(&listener, server), connect(&url, client));
    (server, client.expect("client handshake").0)
}

/// A `clarion-ws` server and a raw client connected to it.
pub(crate) async fn server_and_raw(config: &Config) -> (WebSocket<TcpStream>, RawPeer) {
    let (listener, addr) = listen().await;
    tokio::join!(accept_one(&listener, config), RawPeer::connect(addr))
}

/// A `clarion-ws` client and a raw server it connected to.
pub(crate) async fn client_and_raw(config: &Config) -> (WebSocket<ClientStream>, RawPeer) {
    let (listener, addr) = listen().await;
    let url = ws_url(addr);
    let (client, raw) = tokio::join!(connect(&url, config), RawPeer::accept(&listener));
    (client.expect("client handshake").0, raw)
}

/// A `clarion-ws` server and a raw client with small socket buffers (8 KiB
/// each way), so that what the kernel absorbs for a client that does not
/// read stays small and the server's own buffering shows.
pub(crate) async fn server_and_small_buffered_raw(
    config: &Config,
) -> (WebSocket<TcpStream>, RawPeer) {
    let listening = tokio::net::TcpSocket::new_v4().expect("socket");
    listening.set_send_buffer_size(8 * 1024).expect("SO_SNDBUF");
    listening
        .bind("127.0.0.1:0".parse().expect("an address"))
        .expect("bind");
    let listener = listening.listen(8).expect("listen");
    let addr = listener.local_addr().expect("local address");
    let connecting = tokio::net::TcpSocket::new_v4().expect("socket");
    connecting
        .set_recv_buffer_size(8 * 1024)
        .expect("SO_RCVBUF");
    let server = async {
        let (tcp, _) = listener.accept().await.expect("accepting");
        accept(tcp, config).await.expect("server handshake")
    };
    let client = async {
        let tcp = connecting.connect(addr).await.expect("connecting");
        RawPeer::client_handshake(tcp, &[]).await
    };
    tokio::join!(server, client)
}
