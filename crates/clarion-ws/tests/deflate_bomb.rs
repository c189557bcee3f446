//! A decompression bomb against a server with permessage-deflate: a few KiB
//! on the wire that would inflate to 256 MiB. The server stops inflating at
//! its limit and closes with 1009, and its memory stays bounded.
//!
//! One test in its own binary, so the process's peak RSS is this test's.

use std::time::Duration;

use bytes::BytesMut;
use clarion_proto::deflate::{Compressor, TRAILER};
use clarion_ws::{accept, Config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const BOMB_SIZE: usize = 256 << 20;
const MAX_MESSAGE: usize = 16 << 20;

#[tokio::test]
async fn a_bomb_is_refused_with_1009_and_memory_stays_bounded() {
    let bomb = compressed_zeros(BOMB_SIZE);
    assert!(bomb.len() < 512 * 1024, "the bomb is {} bytes", bomb.len());
    let frame = masked_compressed_frame(&bomb);
    let baseline = peak_rss_kib();

    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        let mut config = Config::default();
        config.deflate.enabled = true;
        config.protocol.max_message_size = MAX_MESSAGE;
        config.protocol.max_frame_size = MAX_MESSAGE;
        let (tcp, _) = listener.accept().await.expect("accept");
        let mut ws = accept(tcp, &config).await.expect("handshake");
        match ws.recv().await.expect("an outcome") {
            Ok(message) => panic!("the bomb was accepted: {} bytes", message.len()),
            Err(err) => err,
        }
    });

    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(HANDSHAKE.as_bytes()).await.expect("request");
    let head = read_head(&mut tcp).await;
    assert!(
        head.contains("permessage-deflate"),
        "deflate not negotiated: {head}"
    );
    tcp.write_all(&frame).await.expect("bomb");
    let close = read_close_code(&mut tcp).await;

    let error = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("server done")
        .expect("server task");
    assert_eq!(close, 1009, "close code on the wire");
    assert_eq!(error.close_code().map(u16::from), Some(1009), "{error}");

    let growth_mib = (peak_rss_kib() - baseline) / 1024;
    // The ratio limit stops it near 1 MiB; without it, the 16 MiB message
    // limit would. Either way far from the bomb's 256 MiB.
    assert!(growth_mib < 24, "peak RSS grew by {growth_mib} MiB");
}

const HANDSHAKE: &str = "GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Sec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n";

/// `len` zeros as one compressed message, built 1 MiB at a time so that
/// making the bomb does not itself raise the peak RSS: each piece is a
/// sync-flushed run of the same DEFLATE stream, joined by the flush marker
/// the compressor strips from a message's end.
fn compressed_zeros(len: usize) -> Vec<u8> {
    let piece = vec![0u8; 1 << 20];
    let mut compressor = Compressor::new(9, 15, false);
    let mut out = BytesMut::new();
    for i in 0..len / piece.len() {
        if i > 0 {
            out.extend_from_slice(&TRAILER);
        }
        compressor.compress(&piece, &mut out);
    }
    out.to_vec()
}

/// A final binary frame with RSV1 set, masked with a zero key (a client's).
fn masked_compressed_frame(payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![0xC2, 0x80 | 127];
    frame.extend_from_slice(&(payload.len() as u64).to_be_bytes());
    frame.extend_from_slice(&[0, 0, 0, 0]);
    frame.extend_from_slice(payload);
    frame
}

async fn read_head(tcp: &mut TcpStream) -> String {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        tcp.read_exact(&mut byte).await.expect("response head");
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

async fn read_close_code(tcp: &mut TcpStream) -> u16 {
    let mut header = [0u8; 2];
    tcp.read_exact(&mut header).await.expect("close frame");
    assert_eq!(header[0], 0x88, "a close frame");
    let mut payload = vec![0u8; usize::from(header[1] & 0x7F)];
    tcp.read_exact(&mut payload).await.expect("close payload");
    u16::from_be_bytes([payload[0], payload[1]])
}

/// The process's peak resident set size (VmHWM), in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM");
    line.split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("VmHWM value")
}
