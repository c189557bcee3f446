//! What the Rust scenario peers share, from the spec in
//! `tests/interop/README.md`.

use std::time::Duration;

use bytes::Bytes;
use clarion_ws::{Config, Message};

use crate::compression::DeflateMode;

/// The client checks, in the order they run.
pub const CHECKS: [&str; 12] = [
    "text",
    "binary",
    "empty",
    "big",
    "fragmented-send",
    "ping",
    "close-client",
    "close-server",
    "server-ping",
    "fragmented-recv",
    "subprotocol",
    "compression",
];

/// The checks a plain echo server (`clarion echo`) can pass: those on `/echo`.
pub const ECHO_CHECKS: [&str; 8] = [
    "text",
    "binary",
    "empty",
    "big",
    "fragmented-send",
    "ping",
    "close-client",
    "compression",
];

/// The subprotocols the scenario server supports, in its order of preference.
pub const SUBPROTOCOLS: [&str; 2] = ["chat.v2", "chat.v1"];

/// The payload of the ping the server sends on `/ping`.
pub const SERVER_PING: &str = "are-you-there";

/// The text the server sends on `/ping` once the pong is back.
pub const SERVER_PING_REPLY: &str = "pong:are-you-there";

/// The text of the `text` check that is not ASCII.
pub const UNICODE: &str = "héllo wörld ✓ 😀";

/// Time allowed for one check.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// Time allowed for the `big` check.
pub const BIG_CHECK_TIMEOUT: Duration = Duration::from_secs(60);

/// Largest message accepted on receive (the spec's floor is 32 MiB).
pub const MAX_MESSAGE: usize = 64 << 20;

/// Most frames in one message.
pub const MAX_FRAGMENTS: usize = 1 << 20;

/// How many times its compressed size a message may inflate to: above
/// DEFLATE's ceiling (about 1032), so no limit but `MAX_MESSAGE`, as in the
/// Python and Node peers. clarion-ws's default, 256, refuses (1009) the `big`
/// check's 16 MiB binary message as zlib compresses it at its default level
/// and memory level (256.6 times).
pub const MAX_INFLATE_RATIO: u32 = 2048;

/// Whether an endpoint may send `code` in a close frame: 1000–1003,
/// 1007–1014, 3000–4999 (RFC 6455 section 7.4 and the IANA registry).
pub fn is_sendable_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// The common settings of both roles: permessage-deflate as `deflate` says,
/// no keepalive pings, messages up to 64 MiB in up to 1,048,576 frames, a
/// frame as large as a message, and no inflate ratio limit.
pub fn config(deflate: DeflateMode) -> Config {
    let mut config = Config::default();
    config.deflate = deflate.config();
    config.protocol.max_message_size = MAX_MESSAGE;
    config.protocol.max_frame_size = MAX_MESSAGE;
    config.protocol.max_fragments = MAX_FRAGMENTS;
    config.protocol.max_inflate_ratio = MAX_INFLATE_RATIO;
    config.ping_interval = None;
    config
}

/// The `big` check's binary message: 16 MiB, byte i = i mod 251.
pub fn big_binary() -> Bytes {
    (0..16usize << 20).map(|i| (i % 251) as u8).collect()
}

/// The `big` check's text message: 1 MiB, char i = `a`..`z`\[i mod 26\].
pub fn big_text() -> String {
    (0..1usize << 20)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect()
}

/// A short description of a message for failure reasons.
pub fn describe(message: &Message) -> String {
    match message {
        Message::Text(text) => {
            let shown: String = text.as_str().chars().take(40).collect();
            let more = if text.as_str().chars().count() > 40 {
                "..."
            } else {
                ""
            };
            format!("text {shown:?}{more} ({} bytes)", text.as_bytes().len())
        }
        Message::Binary(data) => {
            let shown: String = data.iter().take(20).map(|b| format!("{b:02x}")).collect();
            let more = if data.len() > 20 { "..." } else { "" };
            format!("binary {shown}{more} ({} bytes)", data.len())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sendable_close_codes_follow_the_spec() {
        for code in [1000, 1003, 1007, 1014, 3000, 4001, 4999] {
            assert!(is_sendable_close_code(code), "{code}");
        }
        for code in [0, 999, 1004, 1005, 1006, 1015, 2999, 5000] {
            assert!(!is_sendable_close_code(code), "{code}");
        }
    }

    #[test]
    fn big_payloads_follow_the_spec() {
        let binary = big_binary();
        assert_eq!(binary.len(), 16 * 1024 * 1024);
        assert_eq!(&binary[249..253], &[249, 250, 0, 1]);
        let text = big_text();
        assert_eq!(text.len(), 1024 * 1024);
        assert!(text.starts_with("abcdefghijklmnopqrstuvwxyzab"));
    }

    #[test]
    fn the_echo_checks_are_a_subset_of_the_checks() {
        assert!(ECHO_CHECKS.iter().all(|check| CHECKS.contains(check)));
    }

    #[test]
    fn the_configs_are_valid() {
        for mode in DeflateMode::ALL {
            config(mode).validate().unwrap();
        }
    }
}
