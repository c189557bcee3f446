//! Encode once, send to many: a message framed (and compressed) once whose
//! bytes are shared by every connection it goes to.
//!
//! A server frame is the same for every client (servers do not mask), so
//! [`Connection::send_prepared`](crate::connection::Connection::send_prepared)
//! only clones a `Bytes` handle. With permessage-deflate, the compressed
//! form is made without context takeover, which any peer can inflate
//! whatever it negotiated; the connection then resets its own compressor
//! so that its later messages do not refer to data the peer's window holds
//! but the compressor never saw. Client frames are masked per frame, so a
//! client connection frames a prepared message the ordinary way.

use std::sync::OnceLock;

use bytes::{Bytes, BytesMut};

use crate::deflate::Compressor;
use crate::frame::{FrameHeader, OpCode};
use crate::message::{Message, MessageKind};

/// A message framed once for many connections. Cheap to share (`Arc` it).
#[derive(Debug)]
pub struct PreparedMessage {
    message: Message,
    level: u32,
    /// The unmasked frame without compression.
    plain: Bytes,
    /// The compressed frame per window size (8..=15), made on first use.
    compressed: [OnceLock<Bytes>; 8],
}

impl PreparedMessage {
    /// Frames `message`; compressed forms, when a connection needs one, are
    /// made at zlib `level`.
    pub fn new(message: Message, level: u32) -> Self {
        let plain = frame(message.kind(), false, message.as_bytes());
        PreparedMessage {
            message,
            level,
            plain,
            compressed: Default::default(),
        }
    }

    /// The message.
    pub fn message(&self) -> &Message {
        &self.message
    }

    /// The uncompressed server frame.
    pub(crate) fn plain_frame(&self) -> Bytes {
        self.plain.clone()
    }

    /// The compressed server frame for a window of `window_bits`.
    pub(crate) fn compressed_frame(&self, window_bits: u8) -> Bytes {
        let slot = usize::from(window_bits.clamp(8, 15) - 8);
        self.compressed[slot]
            .get_or_init(|| {
                let mut payload = BytesMut::new();
                Compressor::new(self.level, window_bits, true)
                    .compress(self.message.as_bytes(), &mut payload);
                frame(self.message.kind(), true, &payload)
            })
            .clone()
    }
}

fn frame(kind: MessageKind, compressed: bool, payload: &[u8]) -> Bytes {
    let opcode = match kind {
        MessageKind::Text => OpCode::Text,
        MessageKind::Binary => OpCode::Binary,
    };
    let mut header = FrameHeader::new(opcode, payload.len() as u64);
    header.rsv1 = compressed;
    let mut out = BytesMut::with_capacity(header.encoded_len() + payload.len());
    header.encode(&mut out);
    out.extend_from_slice(payload);
    out.freeze()
}
