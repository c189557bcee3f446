//! The sending side of permessage-deflate for one connection.

use bytes::{Bytes, BytesMut};

use crate::connection::Role;
use crate::deflate::{Compressor, DeflateConfig, DeflateParams};

/// Compresses outgoing messages of at least `min_size` bytes. The
/// compressor is created on the first such message: a connection that
/// only sends small messages pays nothing for it.
#[derive(Debug)]
pub(super) struct Deflate {
    compressor: Option<Compressor>,
    level: u32,
    window_bits: u8,
    reset_each_message: bool,
    min_size: usize,
}

impl Deflate {
    pub(super) fn new(role: Role, params: &DeflateParams, config: &DeflateConfig) -> Self {
        Deflate {
            compressor: None,
            level: config.level,
            window_bits: params.compress_window(role),
            reset_each_message: params.compress_resets(role),
            min_size: config.min_size,
        }
    }

    /// The compressed payload, or `None` when the message is too small to
    /// be worth it (it then goes out uncompressed, RSV1 clear).
    pub(super) fn compress(&mut self, payload: &[u8]) -> Option<Bytes> {
        if payload.len() < self.min_size {
            return None;
        }
        let (level, bits, reset) = (self.level, self.window_bits, self.reset_each_message);
        let compressor = self
            .compressor
            .get_or_insert_with(|| Compressor::new(level, bits, reset));
        let mut out = BytesMut::with_capacity(payload.len() / 2 + 16);
        compressor.compress(payload, &mut out);
        Some(out.freeze())
    }

    /// Whether a message of `len` bytes would be compressed.
    pub(super) fn would_compress(&self, len: usize) -> bool {
        len >= self.min_size
    }

    /// The window our messages must fit: a prepared message is compressed
    /// for it.
    pub(super) fn window_bits(&self) -> u8 {
        self.window_bits
    }

    /// Forgets the context after a message compressed elsewhere was sent:
    /// the peer's window now holds bytes our compressor never saw.
    pub(super) fn forget_context(&mut self) {
        if !self.reset_each_message {
            if let Some(compressor) = &mut self.compressor {
                compressor.reset();
            }
        }
    }
}
