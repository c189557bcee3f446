//! A wire tap that reports the pongs a peer sends.
//!
//! `clarion-ws` answers pings and consumes pongs inside `recv`: its public
//! API has no pong event (the heartbeat is the only consumer). The scenario
//! needs to see a pong's payload (server path `/ping`, client check `ping`),
//! so the Rust peers read their connection through a [`PongTap`]: it passes
//! every byte through unchanged and, on the side, scans what it reads for
//! pong frames with its own small parser, independent of the library under
//! test.
//!
//! The tap skips the HTTP head of the opening handshake (up to the first
//! blank line), then reads frame headers, keeping only pong payloads
//! (unmasked when the frame is masked). It does not check the frames:
//! `clarion-ws` does, on the same bytes.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;

const OPCODE_PONG: u8 = 0xA;

/// Where the payloads of the pongs a [`PongTap`] sees arrive, in order.
pub type Pongs = mpsc::UnboundedReceiver<Bytes>;

/// A stream that reports the pong frames read through it (see the module docs).
#[derive(Debug)]
pub struct PongTap<S> {
    inner: S,
    scanner: FrameScanner,
    pongs: mpsc::UnboundedSender<Bytes>,
}

/// Wraps `stream`, whose next bytes are the peer's HTTP handshake head.
pub fn tap<S>(stream: S) -> (PongTap<S>, Pongs) {
    let (pongs, receiver) = mpsc::unbounded_channel();
    let tap = PongTap {
        inner: stream,
        scanner: FrameScanner::default(),
        pongs,
    };
    (tap, receiver)
}

impl<S: AsyncRead + Unpin> AsyncRead for PongTap<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = result {
            for pong in this.scanner.feed(&buf.filled()[before..]) {
                // Nobody listening any more is fine: the tap stays transparent.
                let _ = this.pongs.send(pong);
            }
        }
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for PongTap<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Finds pong frames in a byte stream fed in pieces of any size.
#[derive(Debug, Default)]
pub struct FrameScanner {
    state: State,
}

#[derive(Debug)]
enum State {
    /// In the HTTP head; how many bytes of `\r\n\r\n` just matched.
    HttpHead(usize),
    /// Collecting a frame header (2 to 14 bytes).
    Header(Vec<u8>),
    /// Inside a payload: `remaining` bytes to go, kept only for a pong.
    Payload {
        remaining: u64,
        pong: Option<PongBody>,
    },
}

impl Default for State {
    fn default() -> Self {
        State::HttpHead(0)
    }
}

#[derive(Debug)]
struct PongBody {
    mask: Option<[u8; 4]>,
    data: Vec<u8>,
}

impl FrameScanner {
    /// Consumes `bytes`; returns the payloads of the pongs they complete.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Vec<Bytes> {
        let mut pongs = Vec::new();
        while !bytes.is_empty() {
            bytes = match &mut self.state {
                State::HttpHead(matched) => {
                    let (rest, done) = skip_head(matched, bytes);
                    if done {
                        self.state = State::Header(Vec::with_capacity(14));
                    }
                    rest
                }
                State::Header(header) => {
                    header.push(bytes[0]);
                    if let Some(next) = parse_header(header) {
                        self.state = next;
                    }
                    &bytes[1..]
                }
                State::Payload { remaining, pong } => {
                    let take = bytes
                        .len()
                        .min(usize::try_from(*remaining).unwrap_or(usize::MAX));
                    if let Some(body) = pong {
                        body.extend(&bytes[..take]);
                    }
                    *remaining -= take as u64;
                    &bytes[take..]
                }
            };
            self.finish_payload(&mut pongs);
        }
        self.finish_payload(&mut pongs);
        pongs
    }

    /// At the end of a payload, reports it if it was a pong and expects a header.
    fn finish_payload(&mut self, pongs: &mut Vec<Bytes>) {
        if let State::Payload { remaining: 0, pong } = &mut self.state {
            if let Some(body) = pong.take() {
                pongs.push(Bytes::from(body.data));
            }
            self.state = State::Header(Vec::with_capacity(14));
        }
    }
}

/// Skips bytes up to and including the blank line ending the HTTP head;
/// returns what follows and whether the head ended.
fn skip_head<'a>(matched: &mut usize, bytes: &'a [u8]) -> (&'a [u8], bool) {
    for (i, &byte) in bytes.iter().enumerate() {
        *matched = match (*matched, byte) {
            (0 | 2, b'\r') | (1 | 3, b'\n') => *matched + 1,
            (_, b'\r') => 1,
            _ => 0,
        };
        if *matched == 4 {
            return (&bytes[i + 1..], true);
        }
    }
    (&[], false)
}

/// The payload state once `header` is a whole frame header; `None` if it needs more.
fn parse_header(header: &[u8]) -> Option<State> {
    let [first, second, rest @ ..] = header else {
        return None;
    };
    let masked = second & 0x80 != 0;
    let length_bytes = match second & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let mask_bytes = if masked { 4 } else { 0 };
    if rest.len() < length_bytes + mask_bytes {
        return None;
    }
    let remaining = match length_bytes {
        0 => u64::from(second & 0x7f),
        _ => rest[..length_bytes]
            .iter()
            .fold(0, |n, &b| (n << 8) | u64::from(b)),
    };
    let mask = masked.then(|| {
        let key = &rest[length_bytes..length_bytes + 4];
        [key[0], key[1], key[2], key[3]]
    });
    let pong = (first & 0x0f == OPCODE_PONG).then(|| PongBody {
        mask,
        data: Vec::new(),
    });
    Some(State::Payload { remaining, pong })
}

impl PongBody {
    fn extend(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            let key = self.mask.map_or(0, |mask| mask[self.data.len() % 4]);
            self.data.push(byte ^ key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n";

    fn frame(opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
        let mut out = vec![0x80 | opcode];
        let mask_bit = if mask.is_some() { 0x80 } else { 0 };
        match payload.len() {
            n if n < 126 => out.push(mask_bit | n as u8),
            n if n <= 0xffff => {
                out.push(mask_bit | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(mask_bit | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        match mask {
            Some(key) => {
                out.extend_from_slice(&key);
                out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
            }
            None => out.extend_from_slice(payload),
        }
        out
    }

    fn stream() -> Vec<u8> {
        let mut bytes = HEAD.to_vec();
        bytes.extend(frame(0x1, b"text before", None));
        bytes.extend(frame(0xA, b"p1", None));
        bytes.extend(frame(0x2, &vec![7; 70_000], None));
        bytes.extend(frame(0xA, b"are-you-there", Some([1, 2, 3, 4])));
        bytes.extend(frame(0x9, b"a ping", None));
        bytes.extend(frame(0xA, b"", None));
        bytes
    }

    fn expected() -> Vec<Bytes> {
        vec![
            Bytes::from_static(b"p1"),
            Bytes::from_static(b"are-you-there"),
            Bytes::new(),
        ]
    }

    #[test]
    fn finds_pongs_after_the_http_head_in_one_piece() {
        assert_eq!(FrameScanner::default().feed(&stream()), expected());
    }

    #[test]
    fn finds_the_same_pongs_however_the_stream_is_split() {
        let bytes = stream();
        for chunk in [1, 2, 3, 7, 100, 4096] {
            let mut scanner = FrameScanner::default();
            let pongs: Vec<Bytes> = bytes.chunks(chunk).flat_map(|c| scanner.feed(c)).collect();
            assert_eq!(pongs, expected(), "chunks of {chunk}");
        }
    }

    #[test]
    fn a_pong_in_the_http_head_is_not_a_frame() {
        let mut bytes = b"GET / HTTP/1.1\r\nX: \x8a\x02p1\r\n\r\n".to_vec();
        bytes.extend(frame(0xA, b"real", Some([9, 9, 9, 9])));
        assert_eq!(
            FrameScanner::default().feed(&bytes),
            vec![Bytes::from_static(b"real")]
        );
    }
}
