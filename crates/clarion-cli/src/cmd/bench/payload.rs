//! The message every connection sends, built once, and the cheap check of
//! its echo.

use bytes::Bytes;
use clarion_ws::{Message, MessageKind, Utf8Bytes};

/// One payload shared by every send: cloning it copies no bytes and, being
/// `'static`, touches no reference count shared between threads.
#[derive(Clone, Debug)]
pub(crate) struct Payload {
    message: Message,
}

impl Payload {
    /// `size` bytes of printable ASCII (`abc…xyzabc…`), as text or binary.
    pub(crate) fn new(size: usize, binary: bool) -> Self {
        let bytes: Vec<u8> = (0..size).map(|i| b'a' + (i % 26) as u8).collect();
        // Leaked on purpose, once per run: a `'static` buffer makes every
        // clone on the hot path free.
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        let message = if binary {
            Message::Binary(Bytes::from_static(bytes))
        } else {
            // ASCII is valid UTF-8; the fallback is unreachable.
            let text = std::str::from_utf8(bytes).unwrap_or_default();
            Message::Text(Utf8Bytes::from_static(text))
        };
        Payload { message }
    }

    /// A message to send (a cheap clone).
    pub(crate) fn message(&self) -> Message {
        self.message.clone()
    }

    /// Whether `echo` is plausibly our payload sent back: same kind, same
    /// length, and the same first, middle and last bytes.
    pub(crate) fn matches(&self, echo: &Message) -> bool {
        let (sent, got) = (self.message.as_bytes(), echo.as_bytes());
        if echo.kind() != self.message.kind() || got.len() != sent.len() {
            return false;
        }
        let Some(last) = sent.len().checked_sub(1) else {
            return true;
        };
        [0, last / 2, last].iter().all(|&i| sent[i] == got[i])
    }

    /// `text` or `binary`.
    pub(crate) fn kind_name(&self) -> &'static str {
        match self.message.kind() {
            MessageKind::Text => "text",
            MessageKind::Binary => "binary",
        }
    }

    /// The kind, with `, deflate` when compression was agreed.
    pub(crate) fn label(&self, compressed: bool) -> String {
        if compressed {
            format!("{}, deflate", self.kind_name())
        } else {
            self.kind_name().to_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_echo_matches_and_a_different_message_does_not() {
        let payload = Payload::new(100, false);
        assert_eq!(payload.message().len(), 100);
        assert!(payload.matches(&payload.message()));
        assert!(!payload.matches(&Message::text("short")));
        assert!(!payload.matches(&Message::binary(payload.message().into_bytes())));
        let mut altered = payload.message().into_bytes().to_vec();
        altered[99] = b'!';
        assert!(!payload.matches(&Message::text(String::from_utf8(altered).unwrap())));
    }

    #[test]
    fn empty_and_binary_payloads() {
        let empty = Payload::new(0, true);
        assert!(empty.matches(&Message::binary(Vec::new())));
        assert!(!empty.matches(&Message::text("")));
        assert_eq!(empty.kind_name(), "binary");
    }
}
