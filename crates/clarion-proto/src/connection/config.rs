//! Limits and switches for one connection.

use crate::error::ConfigError;

/// Limits and behaviour of a [`Connection`](super::Connection).
///
/// The defaults accept every message a browser or the Autobahn suite sends
/// while bounding what one peer can make us buffer.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Largest frame payload accepted. Default 16 MiB: a whole large
    /// message may come as one frame (Autobahn 9.1.6 sends 16 MiB in one),
    /// but the header's length is never trusted beyond this. Over it: 1009.
    pub max_frame_size: usize,
    /// Largest message accepted, all fragments together. Default 64 MiB:
    /// the ceiling one connection can make us buffer. Over it: 1009.
    pub max_message_size: usize,
    /// Most fragments in one message. Default 131,072: Autobahn 9.3/9.4 send
    /// 4 MiB in 64-byte fragments (65,536), and fragments cost no memory
    /// here beyond their payload; the limit only bounds the work. Over it: 1008.
    pub max_fragments: usize,
    /// Answer pings with a pong of the same payload. Default on (section 5.5.2).
    pub auto_pong: bool,
    /// Most a compressed message may inflate, as a multiple of its
    /// compressed size, once it is past 1 MiB. Default 256: real data (JSON,
    /// text, logs) stays well under 50; DEFLATE's ceiling, ~1032, is what a
    /// bomb of zeros reaches. Over it: 1009. `max_message_size` applies to
    /// the decompressed size as well, whatever the ratio.
    pub max_inflate_ratio: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_frame_size: 16 << 20,
            max_message_size: 64 << 20,
            max_fragments: 131_072,
            auto_pong: true,
            max_inflate_ratio: 256,
        }
    }
}

impl Config {
    /// Rejects limits that would make every message fail or overflow.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_frame_size == 0 {
            return Err(ConfigError {
                field: "max_frame_size",
                reason: "must be at least 1",
            });
        }
        if self.max_message_size == 0 {
            return Err(ConfigError {
                field: "max_message_size",
                reason: "must be at least 1",
            });
        }
        if self.max_fragments == 0 {
            return Err(ConfigError {
                field: "max_fragments",
                reason: "must be at least 1",
            });
        }
        if self.max_inflate_ratio == 0 {
            return Err(ConfigError {
                field: "max_inflate_ratio",
                reason: "must be at least 1",
            });
        }
        if self.max_frame_size > isize::MAX as usize || self.max_message_size > isize::MAX as usize
        {
            return Err(ConfigError {
                field: "max_message_size",
                reason: "must fit in memory (at most isize::MAX)",
            });
        }
        Ok(())
    }
}
