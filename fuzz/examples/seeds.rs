//! Writes the hand-made seeds into `fuzz/corpus/<target>/seed-*`:
//! `cargo run -p clarion-fuzz --example seeds`. Each seed starts with the
//! control bytes its target reads (see the target's docs in `src/`), then
//! a meaningful input: RFC examples, browser-like handshakes, every kind of
//! frame, compressed messages, and one example of each violation.

use std::path::{Path, PathBuf};

use bytes::{Buf as _, Bytes, BytesMut};
use clarion_proto::close::{CloseCode, CloseFrame};
use clarion_proto::connection::{Config, Connection};
use clarion_proto::deflate::{Compressor, DeflateConfig, DeflateParams};
use clarion_proto::frame::{FrameHeader, OpCode};
use clarion_proto::mask::apply_mask;
use clarion_proto::{Message, MessageKind};

/// The client's handshake from RFC 6455 section 1.3.
const RFC_REQUEST: &str = "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Version: 13\r\n\r\n";

/// What Chromium sends, with a permessage-deflate offer.
const BROWSER_REQUEST: &str = "GET /ws?room=1 HTTP/1.1\r\nHost: localhost:8080\r\nConnection: Upgrade\r\nPragma: no-cache\r\nCache-Control: no-cache\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36\r\nUpgrade: websocket\r\nOrigin: http://localhost:8080\r\nSec-WebSocket-Version: 13\r\nAccept-Encoding: gzip, deflate, br\r\nAccept-Language: en-US,en;q=0.9\r\nSec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n";

/// The server's handshake from RFC 6455 section 1.3.
const RFC_RESPONSE: &str = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat\r\n\r\n";

/// Roomy limits, whole input: the handshake targets' control bytes.
const ROOMY: [u8; 2] = [0x3f, 0];
/// Every handshake split of 1, 7 and 30 bytes.
const SPLIT: [u8; 4] = [3, 0, 6, 29];
/// Frame targets: flags, roomy limits (15/12-bit windows), close code 1000, whole input.
const PLAIN: [u8; 4] = [0x00, 0x3f, 5, 0];
/// The same with permessage-deflate and everything compressed.
const DEFLATE: [u8; 4] = [0x81, 0x3f, 5, 0];

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    handshake_request(&root.join("handshake_request"));
    handshake_response(&root.join("handshake_response"));
    frames(&root.join("server_frames"), true);
    frames(&root.join("client_frames"), false);
    inflate(&root.join("inflate"));
    wire_commands(&root.join("wire_commands"));
}

fn write(dir: &Path, name: &str, parts: &[&[u8]]) {
    std::fs::create_dir_all(dir).expect("create the corpus folder");
    let path: PathBuf = dir.join(format!("seed-{name}"));
    std::fs::write(&path, parts.concat()).expect("write a seed");
}

fn handshake_request(dir: &Path) {
    let rfc = RFC_REQUEST.as_bytes();
    write(dir, "rfc", &[&ROOMY, rfc]);
    write(dir, "rfc-split", &[&[0x3f], &SPLIT, rfc]);
    write(
        dir,
        "browser-deflate",
        &[&ROOMY, BROWSER_REQUEST.as_bytes()],
    );
    write(
        dir,
        "early-frame",
        &[&ROOMY, rfc, &[0x81, 0x80, 1, 2, 3, 4]],
    );
    write(dir, "tiny-limits", &[&[0x00, 0], rfc]);
    let edits = [
        ("post", "GET /chat", "POST /chat"),
        ("http10", "HTTP/1.1", "HTTP/1.0"),
        ("http20", "HTTP/1.1", "HTTP/2.0"),
        ("no-key", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", ""),
        ("short-key", "dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZQ=="),
        ("version-8", "Version: 13", "Version: 8"),
        ("dup-host", "Host: server.example.com\r\n", "Host: a\r\nHost: b\r\n"),
        ("no-upgrade", "Upgrade: websocket\r\n", ""),
        ("keep-alive", "Connection: Upgrade", "Connection: keep-alive, Upgrade"),
        ("bare-lf", "\r\n", "\n"),
        ("deflate-params", "Sec-WebSocket-Version", "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=10; client_max_window_bits, permessage-deflate; server_no_context_takeover, x-other\r\nSec-WebSocket-Version"),
        ("absolute-uri", "GET /chat", "GET ws://server.example.com/chat?x=1"),
    ];
    for (name, from, to) in edits {
        let edited = RFC_REQUEST.replacen(from, to, 1);
        write(dir, name, &[&ROOMY, edited.as_bytes()]);
    }
}

fn handshake_response(dir: &Path) {
    let rfc = RFC_RESPONSE.as_bytes();
    let all = [0xff, 0];
    write(dir, "rfc", &[&all, rfc]);
    write(dir, "rfc-split", &[&[0xff], &SPLIT, rfc]);
    write(dir, "rfc-not-offered", &[&[0xfc, 0], rfc]);
    write(dir, "frame-after", &[&all, rfc, &[0x81, 0x02, b'h', b'i']]);
    let answers = [
        ("deflate", "permessage-deflate"),
        (
            "deflate-windows",
            "permessage-deflate; server_max_window_bits=10; client_max_window_bits=8",
        ),
        (
            "deflate-no-context",
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
        ),
        (
            "deflate-bad",
            "permessage-deflate; client_max_window_bits=16",
        ),
        ("deflate-twice", "permessage-deflate, permessage-deflate"),
    ];
    for (name, answer) in answers {
        let response = RFC_RESPONSE.replacen(
            "Sec-WebSocket-Protocol: chat\r\n",
            &format!("Sec-WebSocket-Extensions: {answer}\r\n"),
            1,
        );
        write(dir, name, &[&all, response.as_bytes()]);
    }
    let not_found = "HTTP/1.1 404 Not Found\r\nContent-Length: 5\r\n\r\nnope\n";
    write(dir, "404", &[&all, not_found.as_bytes()]);
    let wrong = RFC_RESPONSE.replacen("s3pP", "AAAA", 1);
    write(dir, "wrong-accept", &[&all, wrong.as_bytes()]);
    let old = RFC_RESPONSE.replacen("HTTP/1.1", "HTTP/1.0", 1);
    write(dir, "http10", &[&all, old.as_bytes()]);
}

/// Frames as the peer of the target sends them: `to_server` frames come
/// from a client (masked).
fn frames(dir: &Path, to_server: bool) {
    let text = "Hello, ünïcödé world! ".repeat(8);
    let valid = |deflate: bool| {
        let mut peer = peer(to_server, deflate);
        peer.send(Message::text("Hello")).expect("open");
        peer.send(Message::binary(vec![0u8, 1, 2, 255]))
            .expect("open");
        peer.send(Message::text(text.as_str())).expect("open");
        peer.send_fragment(
            MessageKind::Text,
            Bytes::from_static("frag".as_bytes()),
            false,
        )
        .expect("open");
        peer.send_ping(Bytes::from_static(b"ping")).expect("open");
        peer.send_fragment(
            MessageKind::Text,
            Bytes::from_static("mént".as_bytes()),
            true,
        )
        .expect("open");
        peer.send_pong(Bytes::from_static(b"unsolicited"))
            .expect("open");
        peer.send(Message::binary(vec![7u8; 3000])).expect("open");
        peer.send_close(Some(CloseFrame::new(CloseCode::NORMAL, "bye")))
            .expect("open");
        take(&mut peer)
    };
    let plain = valid(false);
    write(dir, "valid", &[&PLAIN, &plain]);
    write(dir, "valid-deflate", &[&DEFLATE, &valid(true)]);
    // Echo in fragments, ping after each echo, close with 1000 after the first.
    write(dir, "valid-react", &[&[0x70, 0x3f, 5, 0], &plain]);
    write(dir, "valid-split", &[&[0x00, 0x3f, 5, 3, 0, 4, 60], &plain]);
    write(dir, "valid-tiny-limits", &[&[0x08, 0x00, 200, 0], &plain]);
    let deflate_reset = {
        let mut peer = peer(to_server, true);
        for _ in 0..3 {
            peer.send(Message::text(text.as_str())).expect("open");
        }
        take(&mut peer)
    };
    write(dir, "deflate-takeover", &[&DEFLATE, &deflate_reset]);
    let zeros = {
        let mut peer = peer(to_server, true);
        peer.send(Message::binary(vec![0u8; 200_000]))
            .expect("open");
        take(&mut peer)
    };
    write(dir, "deflate-bomb", &[&[0x81, 0x2f, 5, 0], &zeros]);
    let mask = to_server;
    let bad: [(&str, Vec<u8>); 12] = [
        ("reserved-opcode", frame(0x83, b"x", mask)),
        ("rsv2", frame(0xa1, b"x", mask)),
        ("rsv1-no-deflate", frame(0xc1, b"x", mask)),
        (
            "bad-utf8",
            frame(
                0x81,
                &[0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xed, 0xa0, 0x80],
                mask,
            ),
        ),
        ("close-999", frame(0x88, &[0x03, 0xe7], mask)),
        ("close-1-byte", frame(0x88, &[0x03], mask)),
        ("close-bad-reason", frame(0x88, &[0x03, 0xe8, 0xff], mask)),
        ("fragmented-ping", frame(0x09, b"p", mask)),
        ("long-ping", frame(0x89, &[b'p'; 126], mask)),
        ("continuation-first", frame(0x80, b"x", mask)),
        (
            "text-in-fragment",
            [frame(0x01, b"a", mask), frame(0x81, b"b", mask)].concat(),
        ),
        ("wrong-masking", frame(0x81, b"x", !mask)),
    ];
    for (name, bytes) in bad {
        write(dir, name, &[&PLAIN, &bytes]);
    }
    let huge = frame_header(0x82, u64::MAX >> 1, mask);
    write(dir, "huge-length", &[&PLAIN, &huge]);
    write(
        dir,
        "too-big",
        &[&[0x00, 0x00, 5, 0], &frame(0x82, &[1; 300], mask)],
    );
    let many = [
        frame(0x01, b"a", mask),
        frame(0x00, b"b", mask),
        frame(0x80, b"c", mask),
    ]
    .concat();
    write(dir, "too-many-fragments", &[&[0x00, 0x1f, 5, 0], &many]);
    write(
        dir,
        "rsv1-continuation",
        &[
            &DEFLATE,
            &[frame(0x41, b"a", mask), frame(0xc0, b"b", mask)].concat(),
        ],
    );
    write(
        dir,
        "deflate-corrupt",
        &[&DEFLATE, &frame(0xc1, &[0xff, 0xff, 0xff], mask)],
    );
}

/// The sender of the frames the target reads, with the seeds' deflate
/// agreement (what the targets' knobs make of limits byte 0x3f).
fn peer(is_client: bool, deflate: bool) -> Connection {
    let mut peer = if is_client {
        Connection::client(Config::default(), Box::new(|| [0x37, 0xfa, 0x21, 0x3d])).expect("valid")
    } else {
        Connection::server(Config::default()).expect("valid")
    };
    if deflate {
        let mut params = DeflateParams::default();
        params.server_max_window_bits = 15;
        params.client_max_window_bits = 12;
        let mut config = DeflateConfig::default();
        config.min_size = 0;
        peer.enable_deflate(&params, &config);
    }
    peer
}

fn take(conn: &mut Connection) -> Vec<u8> {
    let output = conn.output();
    output.copy_to_bytes(output.remaining()).to_vec()
}

fn frame_header(first: u8, len: u64, mask: bool) -> Vec<u8> {
    let mut header = FrameHeader::new(OpCode::Binary, len);
    header.mask = mask.then_some([1, 2, 3, 4]);
    let mut out = BytesMut::new();
    header.encode(&mut out);
    out[0] = first;
    out.to_vec()
}

fn frame(first: u8, payload: &[u8], mask: bool) -> Vec<u8> {
    let mut out = frame_header(first, payload.len() as u64, mask);
    let start = out.len();
    out.extend_from_slice(payload);
    if mask {
        apply_mask(&mut out[start..], [1, 2, 3, 4], 0);
    }
    out
}

fn inflate(dir: &Path) {
    let text = "The quick brown fox jumps over the lazy dog. ".repeat(20);
    let mut compressor = Compressor::new(1, 15, false);
    let mut first = BytesMut::new();
    compressor.compress(text.as_bytes(), &mut first);
    let mut second = BytesMut::new();
    compressor.compress(text.as_bytes(), &mut second);
    // Window 15, context takeover, limit 65535; first message ends at the
    // first piece (its size with the top bit set), the second follows whole.
    let size = (first.len() - 1).min(0x7f) as u8 | 0x80;
    let both = [&first[..], &second[..]].concat();
    write(
        dir,
        "two-messages",
        &[&[0x07, 0xff, 0xff, 2, size, 0x7f], &both],
    );
    write(dir, "one-whole", &[&[0x07, 0xff, 0xff, 0], &first]);
    write(dir, "byte-at-a-time", &[&[0x07, 0xff, 0xff, 1, 0], &first]);
    write(dir, "limit-100", &[&[0x07, 100, 0, 0], &first]);
    let mut bomb = BytesMut::new();
    Compressor::new(9, 15, true).compress(&vec![0u8; 1 << 20], &mut bomb);
    write(dir, "bomb", &[&[0x0f, 0xff, 0xff, 0], &bomb]);
    write(
        dir,
        "window-8",
        &[&[0x08, 0xff, 0xff, 0], &{
            let mut out = BytesMut::new();
            Compressor::new(6, 8, true).compress(text.as_bytes(), &mut out);
            out.to_vec()
        }],
    );
    // A final block (BFINAL) then trailing garbage, ignored (RFC 7692 7.2.3.4).
    write(
        dir,
        "final-block",
        &[&[0x07, 0xff, 0xff, 0], &[0x03, 0x00, 0xde, 0xad]],
    );
    write(
        dir,
        "corrupt",
        &[&[0x07, 0xff, 0xff, 0], &[0xff, 0xfe, 0xfd]],
    );
    write(
        dir,
        "round-trip",
        &[
            &[0x10 | 0x07 | 0x20, 0, 0, 3, 10, 0x90, 50],
            text.as_bytes(),
        ],
    );
    write(
        dir,
        "round-trip-reset",
        &[&[0x18 | 0x05 | 0xc0, 0, 0, 2, 3, 0xa0], text.as_bytes()],
    );
}

fn wire_commands(dir: &Path) {
    // Limits byte 0x0f: 64 KiB frames, 64 commands.
    let roomy = [0x0f];
    let commands = [
        (
            "connect",
            r#"{"id":1,"method":"connect","params":{"token":"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.sig","name":"clarion-js","version":"0.1.0","subs":{"news":{"offset":41,"epoch":"7f3a9c"}}}}"#,
        ),
        (
            "subscribe",
            r#"{"id":3,"method":"subscribe","params":{"channel":"chat:lobby","recover":true,"offset":17,"epoch":"a1b2c3"}}"#,
        ),
        (
            "unsubscribe",
            r#"{"id":4,"method":"unsubscribe","params":{"channel":"chat:lobby"}}"#,
        ),
        (
            "publish",
            r#"{"id":5,"method":"publish","params":{"channel":"chat:lobby","data":{"text":"hi all","n":[1,2.5,-3e7,null,true]}}}"#,
        ),
        (
            "presence",
            r#"{"id":6,"method":"presence","params":{"channel":"chat:lobby"}}"#,
        ),
        (
            "presence-stats",
            r#"{"id":7,"method":"presence_stats","params":{"channel":"chat:lobby"}}"#,
        ),
        (
            "history",
            r#"{"id":8,"method":"history","params":{"channel":"chat:lobby","limit":2,"since":{"offset":17,"epoch":"a1b2c3"}}}"#,
        ),
        (
            "history-reverse",
            r#"{"id":9,"method":"history","params":{"channel":"chat:lobby","limit":1,"reverse":true}}"#,
        ),
        ("ping", r#"{"id":10,"method":"ping"}"#),
        (
            "refresh",
            r#"{"id":11,"method":"refresh","params":{"token":"eyJ...new"}}"#,
        ),
        (
            "unknown-method",
            r#"{"id":14,"method":"teleport","params":{}}"#,
        ),
        (
            "bad-params",
            r#"{"id":15,"method":"subscribe","params":[1]}"#,
        ),
        ("no-id", r#"{"method":"ping"}"#),
        ("not-json", "ping"),
        (
            "escapes",
            r#"{"id":16,"method":"publish","params":{"channel":"a\u0062c","data":"\ud83d\ude00 \"q\""}}"#,
        ),
    ];
    for (name, command) in commands {
        write(dir, name, &[&roomy, command.as_bytes()]);
    }
    let batch = commands
        .iter()
        .map(|(_, c)| *c)
        .collect::<Vec<_>>()
        .join("\n\n");
    write(dir, "batch", &[&roomy, batch.as_bytes()]);
    write(dir, "batch-too-many", &[&[0x03], batch.as_bytes()]);
    write(dir, "too-large", &[&[0x00], commands[0].1.as_bytes()]);
}
