//! Compressing and decompressing message payloads (RFC 7692 section 7.2):
//! raw DEFLATE, one sync flush per message, the `00 00 ff ff` tail removed
//! by the sender and put back by the receiver.

use bytes::BytesMut;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use crate::close::CloseCode;

/// The tail of every sync flush: an empty stored block's `LEN`/`NLEN`. The
/// sender removes it from each message (section 7.2.1), the receiver
/// appends it before inflating the end of one (section 7.2.2).
pub const TRAILER: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The most output produced per zlib call. It bounds how far past its
/// limit a decompressed message can grow before the limit is seen.
const CHUNK: usize = 32 * 1024;

/// The window zlib can compress raw DEFLATE with: 8 is refused (flate2
/// panics, zlib returns an error), and 9 is safe for a peer that asked for
/// 8, see the [module docs](super).
fn zlib_window(bits: u8) -> u8 {
    bits.clamp(9, 15)
}

/// Compresses the messages one endpoint sends, with or without context
/// takeover (section 7.2.1).
pub struct Compressor {
    inner: Compress,
    reset_each_message: bool,
}

impl std::fmt::Debug for Compressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compressor")
            .field("reset_each_message", &self.reset_each_message)
            .finish_non_exhaustive()
    }
}

impl Compressor {
    /// A compressor at zlib `level` (0..=9) with an LZ77 window of
    /// 2^`window_bits` bytes (8..=15; 8 is compressed with 9, which never
    /// reaches back more than 250 bytes). Out-of-range values are clamped,
    /// which only a caller bypassing [`DeflateConfig::validate`] and the
    /// negotiation can produce. With `reset_each_message` (no context
    /// takeover) each message is compressed on its own.
    ///
    /// [`DeflateConfig::validate`]: super::DeflateConfig::validate
    pub fn new(level: u32, window_bits: u8, reset_each_message: bool) -> Self {
        let level = Compression::new(level.min(9));
        Compressor {
            inner: Compress::new_with_window_bits(level, false, zlib_window(window_bits)),
            reset_each_message,
        }
    }

    /// Appends the compressed form of one whole message to `out`: DEFLATE
    /// blocks ending in a sync flush, without its `00 00 ff ff` tail. An
    /// empty message gives the single byte `00` (section 7.2.3.6); data
    /// that does not compress comes out a few bytes bigger than it went in.
    pub fn compress(&mut self, payload: &[u8], out: &mut BytesMut) {
        let start = out.len();
        let mut input = payload;
        loop {
            let room = (input.len() + input.len() / 8 + 64).min(CHUNK);
            let (consumed, written) = self.step(input, out, room);
            input = &input[consumed..];
            // A sync flush is complete once it leaves output space unused.
            let flushed = input.is_empty() && written < room;
            if flushed || consumed + written == 0 {
                break;
            }
        }
        if out[start..].ends_with(&TRAILER) {
            out.truncate(out.len() - TRAILER.len());
        }
        if out.len() == start {
            // zlib emits nothing for a sync flush right after another
            // (an empty message with context takeover), but an empty payload
            // plus the receiver's trailer is not a block: send the empty
            // stored block's header, as section 7.2.3.6 shows.
            out.extend_from_slice(&[0x00]);
        }
        if self.reset_each_message {
            self.inner.reset();
        }
    }

    /// Drops the compression context, so the next message refers to nothing
    /// sent before it: for a caller that sent a message compressed
    /// elsewhere while this context was taken over.
    pub fn reset(&mut self) {
        self.inner.reset();
    }

    /// One zlib call with `room` bytes of output space at the end of `out`;
    /// returns the bytes consumed and written.
    fn step(&mut self, input: &[u8], out: &mut BytesMut, room: usize) -> (usize, usize) {
        let (in_before, out_before) = (self.inner.total_in(), self.inner.total_out());
        let len = out.len();
        out.resize(len + room, 0);
        // Compressing raw DEFLATE into a buffer cannot fail: errors are for
        // invalid parameters (ruled out by `new`) or a finished stream
        // (we never finish one). A sync flush with nothing to do reports
        // `BufError`, which only means no progress.
        let _ = self
            .inner
            .compress(input, &mut out[len..], FlushCompress::Sync);
        let consumed = (self.inner.total_in() - in_before) as usize;
        let written = (self.inner.total_out() - out_before) as usize;
        out.truncate(len + written);
        (consumed, written)
    }
}

/// Why a compressed message could not be decompressed. Either one fails
/// the connection (RFC 7692 section 7.2.2, RFC 6455 section 7.1.7).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InflateError {
    /// The message decompresses to more than the limit: close with 1009
    /// (message too big), as for any message over the size limit.
    TooBig {
        /// The limit that was passed.
        limit: usize,
    },
    /// The payload is not valid DEFLATE data: close with 1007 (invalid
    /// payload data). The
    /// frames were well formed, and RSV1 promised DEFLATE content the
    /// payload does not hold, like invalid UTF-8 in a text message; node
    /// `ws` uses 1007 too (python `websockets` uses 1002).
    Corrupt,
}

impl InflateError {
    /// The close code to fail the connection with.
    pub fn close_code(&self) -> CloseCode {
        match self {
            InflateError::TooBig { .. } => CloseCode::TOO_BIG,
            InflateError::Corrupt => CloseCode::INVALID_PAYLOAD,
        }
    }
}

impl From<InflateError> for crate::error::ProtocolError {
    fn from(err: InflateError) -> Self {
        match err {
            InflateError::TooBig { limit } => {
                crate::error::ProtocolError::DecompressedTooLarge { limit }
            }
            InflateError::Corrupt => crate::error::ProtocolError::InvalidCompressedData,
        }
    }
}

impl std::fmt::Display for InflateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InflateError::TooBig { limit } => {
                write!(f, "message decompresses to more than {limit} bytes")
            }
            InflateError::Corrupt => f.write_str("invalid DEFLATE data in a compressed message"),
        }
    }
}

impl std::error::Error for InflateError {}

/// Decompresses the messages one endpoint receives, frame by frame, with a
/// bound on each message's size (section 7.2.2).
pub struct Decompressor {
    inner: Decompress,
    reset_each_message: bool,
    /// The peer ended its DEFLATE stream (a block with BFINAL set, section
    /// 7.2.3.4): the rest of this message is ignored, and the next one
    /// starts a new stream.
    ended: bool,
}

impl std::fmt::Debug for Decompressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decompressor")
            .field("reset_each_message", &self.reset_each_message)
            .finish_non_exhaustive()
    }
}

impl Decompressor {
    /// A decompressor for a peer that compresses with a window of up to
    /// 2^`window_bits` bytes (8..=15; 8 is inflated with 9, which also
    /// accepts peers that, like zlib, compress a window of 8 as 9). With
    /// `reset_each_message` (the peer has no context takeover) the history
    /// is dropped after each message.
    pub fn new(window_bits: u8, reset_each_message: bool) -> Self {
        Decompressor {
            inner: Decompress::new_with_window_bits(false, zlib_window(window_bits)),
            reset_each_message,
            ended: false,
        }
    }

    /// Inflates one frame's payload of a compressed message, appending to
    /// `out`, which holds the message so far. Fails with
    /// [`InflateError::TooBig`] as soon as `out` would exceed `max_out`
    /// bytes: output comes in bounded chunks, so however well the input
    /// compresses, `out` never holds more than `max_out + 1` bytes, and its
    /// capacity grows to at most `max_out` plus 32 KiB.
    /// After an error the connection must fail; the decompressor is not
    /// usable until [`Decompressor::reset`].
    pub fn decompress(
        &mut self,
        input: &[u8],
        out: &mut BytesMut,
        max_out: usize,
    ) -> Result<(), InflateError> {
        self.inflate(input, out, max_out, FlushDecompress::None)
    }

    /// Ends the message: inflates the `00 00 ff ff` tail the sender removed,
    /// which flushes the rest of the message into `out`, then resets if the
    /// peer has no context takeover, or ended its DEFLATE stream with a
    /// final block (section 7.2.3.4), after which no history carries over.
    pub fn finish_message(
        &mut self,
        out: &mut BytesMut,
        max_out: usize,
    ) -> Result<(), InflateError> {
        let result = self.inflate(&TRAILER, out, max_out, FlushDecompress::Sync);
        if self.reset_each_message || self.ended {
            self.reset();
        }
        result
    }

    /// Drops the history and any partial message.
    pub fn reset(&mut self) {
        self.inner.reset(false);
        self.ended = false;
    }

    fn inflate(
        &mut self,
        mut input: &[u8],
        out: &mut BytesMut,
        max_out: usize,
        flush: FlushDecompress,
    ) -> Result<(), InflateError> {
        let too_big = InflateError::TooBig { limit: max_out };
        while !self.ended {
            if out.len() > max_out {
                return Err(too_big);
            }
            // Never more than one byte past the limit: enough to see it.
            let room = (input.len().saturating_mul(4).clamp(1024, CHUNK))
                .min((max_out - out.len()).saturating_add(1));
            reserve_bounded(out, room, max_out.saturating_add(CHUNK));
            let (in_before, out_before) = (self.inner.total_in(), self.inner.total_out());
            let len = out.len();
            out.resize(len + room, 0);
            let status = self.inner.decompress(input, &mut out[len..], flush);
            let consumed = (self.inner.total_in() - in_before) as usize;
            let written = (self.inner.total_out() - out_before) as usize;
            out.truncate(len + written);
            input = &input[consumed..];
            match status {
                Err(_) => return Err(InflateError::Corrupt),
                Ok(Status::StreamEnd) => self.ended = true,
                Ok(Status::Ok | Status::BufError) => {}
            }
            if out.len() > max_out {
                return Err(too_big);
            }
            // Inflate writes all it can; unused space means it is done.
            if (input.is_empty() && written < room) || consumed + written == 0 {
                break;
            }
        }
        Ok(())
    }
}

/// Makes room for `additional` more bytes in `out` while keeping its
/// capacity under `ceiling` where possible: `BytesMut` doubles when it
/// grows, which could reach twice the message limit.
fn reserve_bounded(out: &mut BytesMut, additional: usize, ceiling: usize) {
    let needed = out.len().saturating_add(additional);
    if out.capacity() >= needed {
        return;
    }
    let doubled = out.capacity().saturating_mul(2);
    if doubled <= ceiling {
        out.reserve(additional);
        return;
    }
    let mut bigger = BytesMut::with_capacity(needed.max(ceiling.min(doubled)));
    bigger.extend_from_slice(out);
    *out = bigger;
}
