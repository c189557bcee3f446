//! Measures permessage-deflate on a realistic stream: JSON chat messages of
//! 150–400 bytes, as a chat or notification server sends them. For each
//! setting it prints the compression ratio and the CPU time per message to
//! compress (server side) and to inflate (client side), through the real
//! `Connection` code paths.
//!
//! ```sh
//! cargo run --release -p clarion-proto --example deflate_report
//! ```

use std::time::Instant;

use bytes::{Buf, BytesMut};
use clarion_proto::connection::{Config, Connection, Event};
use clarion_proto::deflate::{DeflateConfig, DeflateParams};
use clarion_proto::Message;

const MESSAGES: usize = 20_000;
const ROUNDS: usize = 5;

fn main() {
    let stream = chat_stream(MESSAGES);
    let raw: usize = stream.iter().map(String::len).sum();
    println!(
        "{MESSAGES} JSON chat messages, {} bytes on average, best of {ROUNDS} rounds\n",
        raw / MESSAGES
    );
    println!("| context takeover | level | wire bytes / raw | compress µs/msg | inflate µs/msg |");
    println!("|---|---|---|---|---|");
    for takeover in [true, false] {
        for level in [1, 3, 6, 9] {
            let (wire, compress_ns, inflate_ns) = measure(&stream, takeover, level);
            println!(
                "| {} | {level} | {:.1} % | {:.2} | {:.2} |",
                if takeover { "on" } else { "off" },
                100.0 * wire as f64 / raw as f64,
                compress_ns / 1000.0,
                inflate_ns / 1000.0,
            );
        }
    }
    let (wire, send_ns, _) = measure_plain(&stream);
    println!(
        "| (no compression) | – | {:.1} % | {:.2} (framing only) | – |",
        100.0 * wire as f64 / raw as f64,
        send_ns / 1000.0
    );
}

/// Best-of-ROUNDS wire size and nanoseconds per message.
fn measure(stream: &[String], takeover: bool, level: u32) -> (usize, f64, f64) {
    let mut config = DeflateConfig::default();
    config.server_no_context_takeover = !takeover;
    config.client_no_context_takeover = !takeover;
    config.level = level;
    let offers =
        clarion_proto::deflate::parse_extensions([clarion_proto::deflate::client_offer(&config)
            .expect("enabled")
            .as_str()])
        .expect("offer parses");
    let (server_params, answer) =
        clarion_proto::deflate::server_accept(&config, &offers).expect("accepted");
    let client_params = clarion_proto::deflate::client_accept(&config, &answer).expect("answer");
    let mut best = (0, f64::MAX, f64::MAX);
    for _ in 0..ROUNDS {
        let mut server = Connection::server(Config::default()).expect("config");
        server.enable_deflate(&server_params, &config);
        let started = Instant::now();
        let mut wire = BytesMut::new();
        for text in stream {
            server.send(Message::text(text.as_str())).expect("send");
            drain_into(&mut server, &mut wire);
        }
        let compress = started.elapsed().as_nanos() as f64 / stream.len() as f64;
        let size = wire.len();
        let inflate = inflate_all(&client_params, &config, wire, stream.len());
        best = (size, best.1.min(compress), best.2.min(inflate));
    }
    best
}

fn measure_plain(stream: &[String]) -> (usize, f64, f64) {
    let mut server = Connection::server(Config::default()).expect("config");
    let started = Instant::now();
    let mut wire = BytesMut::new();
    for text in stream {
        server.send(Message::text(text.as_str())).expect("send");
        drain_into(&mut server, &mut wire);
    }
    let ns = started.elapsed().as_nanos() as f64 / stream.len() as f64;
    (wire.len(), ns, 0.0)
}

fn inflate_all(
    params: &DeflateParams,
    config: &DeflateConfig,
    mut wire: BytesMut,
    count: usize,
) -> f64 {
    let mut client =
        Connection::client(Config::default(), Box::new(|| [1, 2, 3, 4])).expect("config");
    client.enable_deflate(params, config);
    let started = Instant::now();
    let mut received = 0;
    while let Some(event) = client.receive(&mut wire).expect("valid stream") {
        if let Event::Message(_) = event {
            received += 1;
        }
    }
    assert_eq!(received, count);
    started.elapsed().as_nanos() as f64 / count as f64
}

fn drain_into(conn: &mut Connection, wire: &mut BytesMut) {
    let output = conn.output();
    while output.has_remaining() {
        let chunk = output.chunk();
        wire.extend_from_slice(chunk);
        let n = chunk.len();
        output.advance(n);
    }
}

/// A deterministic stream of chat messages: room, ids, user, text from a
/// vocabulary, a timestamp, sometimes a reply reference.
fn chat_stream(count: usize) -> Vec<String> {
    const WORDS: &[&str] = &[
        "the",
        "deploy",
        "is",
        "done",
        "can",
        "you",
        "check",
        "the",
        "dashboard",
        "lunch",
        "at",
        "noon",
        "meeting",
        "moved",
        "to",
        "tomorrow",
        "thanks",
        "great",
        "work",
        "on",
        "release",
        "notes",
        "bug",
        "fixed",
        "in",
        "staging",
        "please",
        "review",
        "my",
        "pull",
        "request",
        "coffee",
        "anyone",
        "latency",
        "looks",
        "better",
        "since",
        "yesterday",
        "ok",
        "sure",
    ];
    const USERS: &[&str] = &[
        "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi",
    ];
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    (0..count)
        .map(|i| {
            let words = 4 + (next() % 24) as usize;
            let text: Vec<&str> = (0..words).map(|_| WORDS[(next() % WORDS.len() as u64) as usize]).collect();
            let user = USERS[(next() % USERS.len() as u64) as usize];
            let reply = if next() % 4 == 0 {
                format!(r#","reply_to":"msg_{:08x}""#, next() % 0xFFFF_FFFF)
            } else {
                String::new()
            };
            format!(
                r#"{{"type":"publication","channel":"chat:room-{}","offset":{},"data":{{"id":"msg_{:08x}","user":{{"id":"u_{:06}","name":"{}"}},"text":"{}","ts":{}{}}}}}"#,
                next() % 8,
                100_000 + i,
                next() % 0xFFFF_FFFF,
                next() % 1_000_000,
                user,
                text.join(" "),
                1_764_000_000_000u64 + i as u64 * 137,
                reply
            )
        })
        .collect()
}
