//! The bytes waiting to be written: encoded frames, in order.
//!
//! Small frames are copied into one contiguous buffer; large payloads are
//! kept as their own `Bytes` so they are never copied (a vectored write
//! sends header and payload together). [`Output`] is a [`Buf`], so the I/O
//! layer can use `chunks_vectored` and `advance`.

use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::frame::FrameHeader;
use crate::mask::apply_mask;

/// Payloads up to this size are copied next to their header: one memcpy is
/// cheaper than an extra I/O slice.
const COPY_THRESHOLD: usize = 1024;

/// Capacity kept for the next frames once everything is written; more is
/// released so an idle connection holds no large buffer.
const IDLE_CAPACITY: usize = 4096;

/// Encoded frames waiting to be written.
#[derive(Debug, Default)]
pub struct Output {
    /// Finished segments, oldest first.
    segments: VecDeque<Bytes>,
    /// Bytes appended after the last segment.
    tail: BytesMut,
    /// Total bytes in `segments` and `tail`.
    len: usize,
}

impl Output {
    /// Queues one frame. A `mask` key masks the payload (client frames).
    pub(crate) fn push_frame(&mut self, header: &FrameHeader, payload: Bytes) {
        let total = header.encoded_len() + payload.len();
        self.len += total;
        let masked = header.mask;
        if payload.len() <= COPY_THRESHOLD {
            self.tail.reserve(total);
            header.encode(&mut self.tail);
            let start = self.tail.len();
            self.tail.put_slice(&payload);
            if let Some(key) = masked {
                apply_mask(&mut self.tail[start..], key, 0);
            }
            return;
        }
        header.encode(&mut self.tail);
        self.seal_tail();
        let payload = match masked {
            None => payload,
            Some(key) => mask_payload(payload, key),
        };
        self.segments.push_back(payload);
    }

    /// Queues a frame encoded elsewhere (a prepared message), without copying.
    pub(crate) fn push_encoded(&mut self, frame: Bytes) {
        self.len += frame.len();
        if frame.len() <= COPY_THRESHOLD {
            self.tail.extend_from_slice(&frame);
            return;
        }
        self.seal_tail();
        self.segments.push_back(frame);
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes waiting to be written.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Gives back the write buffer's memory when nothing is waiting: for a
    /// connection about to sit idle.
    pub fn release_if_empty(&mut self) {
        if self.len == 0 && self.tail.capacity() > 0 {
            self.tail = BytesMut::new();
        }
    }

    fn seal_tail(&mut self) {
        if !self.tail.is_empty() {
            self.segments.push_back(self.tail.split().freeze());
        }
    }

    fn release_if_idle(&mut self) {
        if self.len == 0 && self.tail.capacity() > IDLE_CAPACITY {
            self.tail = BytesMut::new();
        }
    }
}

/// Masks a payload in place when we own it alone, else in a copy.
fn mask_payload(payload: Bytes, key: [u8; 4]) -> Bytes {
    let mut owned = payload
        .try_into_mut()
        .unwrap_or_else(|shared| BytesMut::from(&shared[..]));
    apply_mask(&mut owned, key, 0);
    owned.freeze()
}

impl Buf for Output {
    fn remaining(&self) -> usize {
        self.len
    }

    fn chunk(&self) -> &[u8] {
        match self.segments.front() {
            Some(segment) => segment,
            None => &self.tail,
        }
    }

    fn chunks_vectored<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let segments = self.segments.iter().map(|s| &s[..]);
        let all = segments.chain(std::iter::once(&self.tail[..]));
        let mut filled = 0;
        for (slot, chunk) in dst.iter_mut().zip(all.filter(|c| !c.is_empty())) {
            *slot = IoSlice::new(chunk);
            filled += 1;
        }
        filled
    }

    fn advance(&mut self, mut cnt: usize) {
        assert!(cnt <= self.len, "advance past the end of the output");
        self.len -= cnt;
        while cnt > 0 {
            let Some(front) = self.segments.front_mut() else {
                self.tail.advance(cnt);
                break;
            };
            if cnt < front.len() {
                front.advance(cnt);
                break;
            }
            cnt -= front.len();
            self.segments.pop_front();
        }
        self.release_if_idle();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::OpCode;

    fn drain(output: &mut Output) -> Vec<u8> {
        let mut all = Vec::new();
        while output.has_remaining() {
            let chunk = output.chunk().to_vec();
            output.advance(chunk.len());
            all.extend(chunk);
        }
        all
    }

    #[test]
    fn small_frames_share_one_buffer() {
        let mut output = Output::default();
        output.push_frame(
            &FrameHeader::new(OpCode::Text, 2),
            Bytes::from_static(b"hi"),
        );
        output.push_frame(&FrameHeader::new(OpCode::Ping, 0), Bytes::new());
        assert_eq!(output.chunk(), b"\x81\x02hi\x89\x00");
        assert_eq!(drain(&mut output), b"\x81\x02hi\x89\x00");
        assert!(output.is_empty());
    }

    #[test]
    fn large_payloads_are_not_copied() {
        let payload = Bytes::from(vec![7u8; 4000]);
        let mut output = Output::default();
        output.push_frame(&FrameHeader::new(OpCode::Binary, 4000), payload.clone());
        let mut slices = [IoSlice::new(&[]); 4];
        assert_eq!(output.chunks_vectored(&mut slices), 2);
        assert_eq!(slices[1].as_ptr(), payload.as_ptr());
        assert_eq!(output.len(), 4 + 4000);
    }

    #[test]
    fn partial_advance_keeps_order() {
        let mut output = Output::default();
        output.push_frame(
            &FrameHeader::new(OpCode::Binary, 2000),
            Bytes::from(vec![1u8; 2000]),
        );
        output.push_frame(&FrameHeader::new(OpCode::Text, 1), Bytes::from_static(b"x"));
        output.advance(3);
        let rest = drain(&mut output);
        assert_eq!(rest.len(), 4 + 2000 + 3 - 3);
        assert_eq!(&rest[rest.len() - 3..], b"\x81\x01x");
    }

    #[test]
    fn masked_large_payload_is_masked_once() {
        let mut header = FrameHeader::new(OpCode::Binary, 2000);
        header.mask = Some([1, 2, 3, 4]);
        let mut output = Output::default();
        output.push_frame(&header, Bytes::from(vec![0u8; 2000]));
        let bytes = drain(&mut output);
        assert_eq!(&bytes[8..12], &[1, 2, 3, 4]);
    }
}
