//! permessage-deflate decompression: the `Decompressor`, frame by frame,
//! within a size limit.

use bytes::BytesMut;
use clarion_proto::deflate::{Compressor, Decompressor, InflateError};
use clarion_proto::ProtocolError;

use crate::input::{Input, Pattern};

/// The most output one zlib call produces (`codec.rs`'s `CHUNK`): how far
/// past the limit a message's buffer may grow in capacity.
const CHUNK: usize = 32 * 1024;

/// `[flags] [limit lo] [limit hi] [pattern] data...`.
///
/// `flags`: bits 0–2 give the window, 8 + (0..=7) bits; bit 3 resets after
/// each message (no context takeover); bit 4 switches to round trips; bits
/// 5–7 are the compression level of round trips. The limit is a `u16`. The
/// pattern cuts the data into frames, and a size byte with its top bit set
/// ends a message there (the last frame always ends one).
///
/// Raw mode inflates the data as compressed frames. Checks: a message's
/// output never passes the limit on success and by at most one byte on
/// `TooBig`; its buffer's capacity stays within the limit plus 32 KiB;
/// errors map to 1007 or 1009; and a message inflated as one frame gives
/// the same result as the same message in pieces.
///
/// Round-trip mode compresses each message with a `Compressor` of the same
/// window and context takeover, then inflates it in pieces with the limit
/// set to its exact size: the result must be the original. Without context
/// takeover, one byte less must fail with `TooBig`.
pub fn inflate(data: &[u8]) {
    let mut input = Input::new(data);
    let flags = input.byte();
    let limit = usize::from(u16::from_le_bytes([input.byte(), input.byte()]));
    let pattern = input.pattern();
    let stream = input.rest();
    let window_bits = 8 + (flags & 7);
    let reset = flags & 8 != 0;
    let messages = messages(stream, pattern);
    if flags & 16 == 0 {
        let in_pieces = inflate_all(&messages, window_bits, reset, limit);
        let joined: Vec<Vec<u8>> = messages.iter().map(|m| m.concat()).collect();
        let joined: Vec<Vec<&[u8]>> = joined.iter().map(|m| vec![&m[..]]).collect();
        let at_once = inflate_all(&joined, window_bits, reset, limit);
        assert_eq!(
            in_pieces, at_once,
            "a split changed what a message inflates to"
        );
    } else {
        round_trips(&messages, window_bits, reset, u32::from(flags >> 5));
    }
}

/// The frames of each message, as the pattern cuts them.
fn messages<'a>(stream: &'a [u8], pattern: Pattern<'_>) -> Vec<Vec<&'a [u8]>> {
    let mut messages = vec![Vec::new()];
    for piece in pattern.cut(stream) {
        let current = messages.last_mut().expect("never empty");
        current.push(piece.bytes);
        if piece.marked {
            messages.push(Vec::new());
        }
    }
    messages
}

/// Inflates every message, stopping at the first error (the connection
/// fails there).
fn inflate_all(
    messages: &[Vec<&[u8]>],
    window_bits: u8,
    reset: bool,
    limit: usize,
) -> Vec<Result<BytesMut, InflateError>> {
    let mut decompressor = Decompressor::new(window_bits, reset);
    let mut results = Vec::new();
    for frames in messages {
        let result = inflate_message(&mut decompressor, frames, limit);
        let failed = result.is_err();
        results.push(result);
        if failed {
            break;
        }
    }
    results
}

fn inflate_message(
    decompressor: &mut Decompressor,
    frames: &[&[u8]],
    limit: usize,
) -> Result<BytesMut, InflateError> {
    let mut out = BytesMut::new();
    for frame in frames {
        let result = decompressor.decompress(frame, &mut out, limit);
        check_bounds(&out, limit, result)?;
    }
    let result = decompressor.finish_message(&mut out, limit);
    check_bounds(&out, limit, result)?;
    Ok(out)
}

/// The limit holds after every call, in length and in capacity, and an
/// error knows its close code.
fn check_bounds(
    out: &BytesMut,
    limit: usize,
    result: Result<(), InflateError>,
) -> Result<(), InflateError> {
    let ceiling = limit + CHUNK;
    assert!(
        out.capacity() <= ceiling,
        "capacity {} > {ceiling}",
        out.capacity()
    );
    match result {
        Ok(()) => assert!(
            out.len() <= limit,
            "{} bytes over a limit of {limit}",
            out.len()
        ),
        Err(InflateError::TooBig { limit: reported }) => {
            assert_eq!(reported, limit);
            assert_eq!(
                out.len(),
                limit + 1,
                "TooBig is seen one byte past the limit"
            );
        }
        Err(err) => assert_eq!(err, InflateError::Corrupt),
    }
    if let Err(err) = result {
        let code = err.close_code();
        assert!([1007, 1009].contains(&code.0), "{err:?}");
        assert_eq!(ProtocolError::from(err).close_code(), code);
    }
    result
}

/// Each message compressed then inflated in its pieces is itself again.
fn round_trips(messages: &[Vec<&[u8]>], window_bits: u8, reset: bool, level: u32) {
    let mut compressor = Compressor::new(level, window_bits, reset);
    let mut decompressor = Decompressor::new(window_bits, reset);
    for frames in messages {
        let plain = frames.concat();
        let mut compressed = BytesMut::new();
        compressor.compress(&plain, &mut compressed);
        let sizes: Vec<u8> = frames
            .iter()
            .map(|f| (f.len() as u8).wrapping_sub(1) & 0x7f)
            .collect();
        let pieces = Pattern::new(&sizes).cut(&compressed);
        let pieces: Vec<&[u8]> = pieces.iter().map(|p| p.bytes).collect();
        let out = inflate_message(&mut decompressor, &pieces, plain.len());
        assert_eq!(
            out.as_deref(),
            Ok(&plain[..]),
            "a round trip changed the message"
        );
        if reset && !plain.is_empty() {
            let mut fresh = Decompressor::new(window_bits, reset);
            let short = inflate_message(&mut fresh, &pieces, plain.len() - 1);
            assert_eq!(
                short.err(),
                Some(InflateError::TooBig {
                    limit: plain.len() - 1
                })
            );
        }
    }
}
