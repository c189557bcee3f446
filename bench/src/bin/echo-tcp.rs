//! The ceiling: a raw tokio TCP echo that does the same reads and writes as
//! a WebSocket echo server and nothing else a server could skip.
//!
//! After a minimal opening handshake (find `Sec-WebSocket-Key`, answer 101)
//! it reads into one buffer and writes the same bytes back, with the least
//! change that keeps the peer a valid WebSocket client: payload bytes are
//! unmasked in place as they arrive, and each frame header is rewritten
//! without its mask key right before the payload, so what one read brought
//! goes back in one `writev` (one slice per frame, no copy), even the first
//! part of a frame whose end has not arrived yet. A ping comes back as a
//! pong, a close as a close, after which the server shuts the connection.
//! There is no UTF-8 validation, no message assembly, no buffering of whole
//! messages and no limit beyond 64 MiB per frame: what the three libraries
//! do on top of this is what the matrix measures.

use std::io::{self, IoSlice};
use std::ops::Range;

use anyhow::{bail, Context as _};
use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The read buffer's starting capacity (fastwebsockets starts at 8 KiB too).
const READ_CAPACITY: usize = 8 * 1024;

/// The most room one read gets, inside a large frame.
const MAX_READ: usize = 256 * 1024;

/// The most bytes an opening handshake request may take.
const MAX_REQUEST: usize = 16 * 1024;

/// I/O slices per `writev`: more than a load generator keeps in flight.
const SLICES_PER_WRITE: usize = 64;

const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

fn main() -> anyhow::Result<()> {
    clarion_bench::serve(handle)
}

async fn handle(mut tcp: TcpStream) -> anyhow::Result<()> {
    let mut buf = BytesMut::with_capacity(READ_CAPACITY);
    handshake(&mut tcp, &mut buf).await?;
    let mut reframer = Reframer::default();
    let mut frames = Vec::new();
    loop {
        frames.clear();
        let (consumed, closed) = reframer.run(&mut buf, &mut frames)?;
        write_frames(&mut tcp, &buf, &frames).await?;
        buf.advance(consumed);
        if closed {
            tcp.shutdown().await?;
            return Ok(());
        }
        buf.reserve(reframer.read_size());
        if tcp.read_buf(&mut buf).await? == 0 {
            return Ok(());
        }
    }
}

/// Reads the request head and answers 101; bytes after the head stay in `buf`.
async fn handshake(tcp: &mut TcpStream, buf: &mut BytesMut) -> anyhow::Result<()> {
    loop {
        if tcp.read_buf(buf).await? == 0 {
            bail!("closed during the handshake");
        }
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut request = httparse::Request::new(&mut headers);
        let head_len = match request.parse(buf)? {
            httparse::Status::Complete(len) => len,
            httparse::Status::Partial if buf.len() < MAX_REQUEST => continue,
            httparse::Status::Partial => bail!("request head too large"),
        };
        let key = request
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("sec-websocket-key"))
            .context("no Sec-WebSocket-Key")?;
        let accept = clarion_proto::handshake::accept_key(key.value);
        let response = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
        );
        tcp.write_all(response.as_bytes()).await?;
        buf.advance(head_len);
        return Ok(());
    }
}

/// A client frame header: what `Reframer` needs of it.
struct Head {
    first: u8,
    second: u8,
    /// Header bytes, mask key included.
    len: usize,
    payload_len: usize,
    key: [u8; 4],
}

/// Parses a masked client frame header; `None` until it is complete.
fn parse_head(src: &[u8]) -> anyhow::Result<Option<Head>> {
    let [first, second, ..] = *src else {
        return Ok(None);
    };
    if second & 0x80 == 0 {
        bail!("unmasked client frame");
    }
    let (length_bytes, payload_len) = match second & 0x7F {
        126 => (
            2,
            src.get(2..4)
                .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]]))),
        ),
        127 => (8, src.get(2..10).map(|b| be_u64(b) as usize)),
        short => (0, Some(usize::from(short))),
    };
    let len = 2 + length_bytes + 4;
    let (Some(payload_len), Some(key)) = (payload_len, src.get(len - 4..len)) else {
        return Ok(None);
    };
    if payload_len > clarion_bench::MAX_MESSAGE_SIZE {
        bail!("frame too large");
    }
    let key = [key[0], key[1], key[2], key[3]];
    Ok(Some(Head {
        first,
        second,
        len,
        payload_len,
        key,
    }))
}

fn be_u64(bytes: &[u8]) -> u64 {
    let mut raw = [0u8; 8];
    raw.copy_from_slice(bytes);
    u64::from_be_bytes(raw)
}

/// Where the byte stream is between two reads: inside a frame's payload,
/// or at a frame header.
#[derive(Default)]
struct Reframer {
    /// Payload bytes of the current frame still to come.
    remaining: usize,
    /// The current frame's mask key, rotated to the next payload byte.
    key: [u8; 4],
    /// The current frame is a close: the connection ends after it.
    closing: bool,
}

impl Reframer {
    /// Unmasks and reframes in place what `buf` holds, pushing the byte
    /// ranges to write back onto `out`. Returns the bytes consumed (a
    /// partial header stays) and whether a close frame was echoed whole.
    fn run(
        &mut self,
        buf: &mut [u8],
        out: &mut Vec<Range<usize>>,
    ) -> anyhow::Result<(usize, bool)> {
        let mut pos = 0;
        loop {
            let take = self.remaining.min(buf.len() - pos);
            unmask(&mut buf[pos..pos + take], self.key);
            self.key.rotate_left(take & 3);
            push_range(out, pos..pos + take);
            pos += take;
            self.remaining -= take;
            if self.remaining > 0 {
                return Ok((pos, false));
            }
            if self.closing {
                return Ok((pos, true));
            }
            let Some(head) = parse_head(&buf[pos..])? else {
                return Ok((pos, false));
            };
            push_range(out, rewrite_head(buf, pos, &head));
            pos += head.len;
            self.remaining = head.payload_len;
            self.key = head.key;
            self.closing = head.first & 0x0F == OP_CLOSE;
        }
    }

    /// How much room the next read should have: the rest of the current
    /// frame, within bounds, so a large message takes few reads.
    fn read_size(&self) -> usize {
        self.remaining.clamp(READ_CAPACITY, MAX_READ)
    }
}

/// Turns the client header at `pos` into a server header ending where the
/// client's did (right before the payload); returns its range. The server
/// header is the client's without the 4-byte key: the extended length
/// moves right by 4, then the first two bytes are written.
fn rewrite_head(buf: &mut [u8], pos: usize, head: &Head) -> Range<usize> {
    let start = pos + 4;
    buf.copy_within(pos + 2..pos + head.len - 4, start + 2);
    buf[start] = match head.first & 0x0F {
        OP_PING => head.first & 0xF0 | OP_PONG,
        _ => head.first,
    };
    buf[start + 1] = head.second & 0x7F;
    start..pos + head.len
}

/// Appends `range`, merged with the last one when they touch.
fn push_range(out: &mut Vec<Range<usize>>, range: Range<usize>) {
    if range.is_empty() {
        return;
    }
    match out.last_mut() {
        Some(last) if last.end == range.start => last.end = range.end,
        _ => out.push(range),
    }
}

/// XORs `payload` with `key`, a machine word at a time.
fn unmask(payload: &mut [u8], key: [u8; 4]) {
    let word = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut chunks = payload.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(bytes) ^ word).to_ne_bytes());
    }
    for (i, byte) in chunks.into_remainder().iter_mut().enumerate() {
        *byte ^= key[i & 3];
    }
}

/// Writes the ranges with as few `writev` calls as the socket allows.
async fn write_frames(tcp: &mut TcpStream, buf: &[u8], frames: &[Range<usize>]) -> io::Result<()> {
    for group in frames.chunks(SLICES_PER_WRITE) {
        let mut slices = [IoSlice::new(&[]); SLICES_PER_WRITE];
        for (slot, frame) in slices.iter_mut().zip(group) {
            *slot = IoSlice::new(&buf[frame.clone()]);
        }
        let mut rest = &mut slices[..group.len()];
        while !rest.is_empty() {
            let written = tcp.write_vectored(rest).await?;
            if written == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            IoSlice::advance_slices(&mut rest, written);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! The reframing must give back exactly the server form of each client
    //! frame (RFC 6455 section 5.2: same FIN, opcode and length, no mask),
    //! however the bytes are cut into reads.
    use clarion_proto::frame::{FrameHeader, OpCode};
    use clarion_proto::mask::apply_mask;

    use super::*;

    const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    fn frame(opcode: OpCode, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
        let mut header = FrameHeader::new(opcode, payload.len() as u64);
        header.mask = mask;
        let mut bytes = Vec::new();
        header.encode(&mut bytes);
        let start = bytes.len();
        bytes.extend_from_slice(payload);
        if let Some(key) = mask {
            apply_mask(&mut bytes[start..], key, 0);
        }
        bytes
    }

    /// Feeds `input` as two reads cut at `cut`; returns what would be
    /// written and whether the connection ended.
    fn echo(input: &[u8], cut: usize) -> (Vec<u8>, bool) {
        let mut reframer = Reframer::default();
        let mut buf = BytesMut::new();
        let mut written = Vec::new();
        let mut closed = false;
        for piece in [&input[..cut], &input[cut..]] {
            buf.extend_from_slice(piece);
            let mut ranges = Vec::new();
            let (consumed, done) = reframer.run(&mut buf, &mut ranges).unwrap();
            for range in ranges {
                written.extend_from_slice(&buf[range]);
            }
            buf.advance(consumed);
            closed |= done;
        }
        (written, closed)
    }

    #[test]
    fn frames_of_every_length_form_come_back_unmasked_whatever_the_cut() {
        let big: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
        let frames = [
            (OpCode::Text, &b"Hello"[..]),
            (OpCode::Binary, &big[..300]),
            (OpCode::Binary, &[][..]),
            (OpCode::Binary, &big[..]),
        ];
        let input: Vec<u8> = frames
            .iter()
            .flat_map(|(op, p)| frame(*op, p, Some(KEY)))
            .collect();
        let expected: Vec<u8> = frames
            .iter()
            .flat_map(|(op, p)| frame(*op, p, None))
            .collect();
        let cuts = (0..400).chain((input.len() - 70_020..input.len()).step_by(7));
        for cut in cuts {
            assert_eq!(echo(&input, cut), (expected.clone(), false), "cut at {cut}");
        }
    }

    #[test]
    fn a_ping_comes_back_as_a_pong() {
        let input = frame(OpCode::Ping, b"are you there", Some(KEY));
        let expected = frame(OpCode::Pong, b"are you there", None);
        for cut in 0..=input.len() {
            assert_eq!(echo(&input, cut), (expected.clone(), false), "cut at {cut}");
        }
    }

    #[test]
    fn a_close_is_echoed_and_ends_the_connection() {
        let mut input = frame(OpCode::Close, &[0x03, 0xe8], Some(KEY));
        let expected = frame(OpCode::Close, &[0x03, 0xe8], None);
        // Nothing after the close is read.
        input.extend(frame(OpCode::Text, b"late", Some(KEY)));
        assert_eq!(echo(&input, input.len()), (expected, true));
    }

    #[test]
    fn an_unmasked_client_frame_is_refused() {
        let mut buf = frame(OpCode::Text, b"no mask", None);
        assert!(Reframer::default().run(&mut buf, &mut Vec::new()).is_err());
    }
}
