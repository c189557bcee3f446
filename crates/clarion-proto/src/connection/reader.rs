//! Frames in, events out: header checks, in-place unmasking as bytes
//! arrive, incremental UTF-8 validation, and message assembly.

use bytes::{Buf, BytesMut};

use super::{Config, Event, Role};
use crate::close::CloseFrame;
use crate::deflate::{Decompressor, DeflateParams};
use crate::error::ProtocolError;
use crate::frame::{FrameHeader, OpCode};
use crate::mask::apply_mask;
use crate::message::{Message, MessageKind, Utf8Bytes};
use crate::utf8::Utf8Validator;

/// The read half of the state machine.
#[derive(Debug)]
pub(super) struct Reader {
    role: Role,
    max_frame_size: usize,
    max_message_size: usize,
    max_fragments: usize,
    max_inflate_ratio: u32,
    /// permessage-deflate, when negotiated (boxed: most connections have none).
    inflate: Option<Box<Inflate>>,
    /// The frame whose payload is arriving, after its header was consumed.
    frame: Option<FrameInProgress>,
    /// The data message being received, from its first frame to its last.
    message: Option<MessageInProgress>,
}

#[derive(Debug)]
struct FrameInProgress {
    header: FrameHeader,
    /// Payload bytes at the front of the buffer already unmasked (and, for
    /// text, validated).
    processed: usize,
}

#[derive(Debug)]
struct MessageInProgress {
    kind: MessageKind,
    /// Payload of the earlier fragments (empty while an uncompressed message
    /// is one frame), or everything inflated so far.
    data: BytesMut,
    fragments: usize,
    utf8: Utf8Validator,
    /// RSV1 was set on the first frame: the payload is DEFLATE data.
    compressed: bool,
    /// Compressed bytes inflated so far, for the ratio limit.
    compressed_len: u64,
}

/// The receiving side of permessage-deflate. The decompressor is created
/// on the first compressed message: a connection that never gets one pays
/// nothing.
#[derive(Debug)]
struct Inflate {
    window_bits: u8,
    reset_each_message: bool,
    decompressor: Option<Decompressor>,
}

impl Inflate {
    fn decompressor(&mut self) -> &mut Decompressor {
        let (bits, reset) = (self.window_bits, self.reset_each_message);
        self.decompressor
            .get_or_insert_with(|| Decompressor::new(bits, reset))
    }
}

/// Decompressed size below which the ratio limit does not apply: small
/// messages of repeated bytes legitimately compress very well.
const RATIO_GRACE: usize = 1 << 20;

impl Reader {
    pub(super) fn new(role: Role, config: &Config) -> Self {
        Reader {
            role,
            max_frame_size: config.max_frame_size,
            max_message_size: config.max_message_size,
            max_fragments: config.max_fragments,
            max_inflate_ratio: config.max_inflate_ratio,
            inflate: None,
            frame: None,
            message: None,
        }
    }

    /// Accepts RSV1 on data messages and inflates them (RFC 7692).
    pub(super) fn enable_deflate(&mut self, params: &DeflateParams) {
        self.inflate = Some(Box::new(Inflate {
            window_bits: params.decompress_window(self.role),
            reset_each_message: params.decompress_resets(self.role),
            decompressor: None,
        }));
    }

    pub(super) fn read_hint(&self, buffered: usize) -> usize {
        match &self.frame {
            Some(frame) => (frame.header.payload_len as usize)
                .saturating_sub(buffered)
                .max(1),
            None => 2usize.saturating_sub(buffered).max(1),
        }
    }

    pub(super) fn receive(&mut self, buf: &mut BytesMut) -> Result<Option<Event>, ProtocolError> {
        loop {
            if self.frame.is_none() {
                let Some((header, header_len)) = FrameHeader::parse(buf)? else {
                    return Ok(None);
                };
                self.start_frame(&header)?;
                buf.advance(header_len);
                self.frame = Some(FrameInProgress {
                    header,
                    processed: 0,
                });
            }
            if !self.process_payload(buf)? {
                return Ok(None);
            }
            if let Some(event) = self.finish_frame(buf)? {
                return Ok(Some(event));
            }
        }
    }

    /// Checks a header against the role, the extensions and the message in
    /// progress, before any of its payload is buffered.
    fn start_frame(&mut self, header: &FrameHeader) -> Result<(), ProtocolError> {
        match (self.role, header.mask.is_some()) {
            (Role::Server, false) => return Err(ProtocolError::UnmaskedFrame),
            (Role::Client, true) => return Err(ProtocolError::MaskedFrame),
            _ => {}
        }
        if header.rsv2 || header.rsv3 || (header.rsv1 && self.inflate.is_none()) {
            return Err(ProtocolError::ReservedBits);
        }
        // RFC 7692 section 6.1: RSV1 only on the first frame of a data message.
        if header.rsv1 && !matches!(header.opcode, OpCode::Text | OpCode::Binary) {
            return Err(ProtocolError::InvalidCompressionBit);
        }
        if header.payload_len > self.max_frame_size as u64 {
            return Err(ProtocolError::FrameTooLarge {
                size: header.payload_len,
                limit: self.max_frame_size,
            });
        }
        let kind = match header.opcode {
            OpCode::Text => MessageKind::Text,
            OpCode::Binary => MessageKind::Binary,
            OpCode::Continuation => return self.continue_message(header),
            OpCode::Close | OpCode::Ping | OpCode::Pong => return Ok(()),
        };
        if self.message.is_some() {
            return Err(ProtocolError::ExpectedContinuation);
        }
        self.check_message_size(header.payload_len, 0)?;
        self.message = Some(MessageInProgress {
            kind,
            data: BytesMut::new(),
            fragments: 1,
            utf8: Utf8Validator::new(),
            compressed: header.rsv1,
            compressed_len: 0,
        });
        Ok(())
    }

    fn continue_message(&mut self, header: &FrameHeader) -> Result<(), ProtocolError> {
        let Some(message) = &self.message else {
            return Err(ProtocolError::UnexpectedContinuation);
        };
        if message.fragments >= self.max_fragments {
            return Err(ProtocolError::TooManyFragments {
                limit: self.max_fragments,
            });
        }
        if !message.compressed {
            // A compressed message is checked as it inflates.
            let so_far = message.data.len() as u64;
            self.check_message_size(header.payload_len, so_far)?;
        }
        if let Some(message) = &mut self.message {
            message.fragments += 1;
        }
        Ok(())
    }

    fn check_message_size(&self, frame_len: u64, so_far: u64) -> Result<(), ProtocolError> {
        let size = so_far + frame_len;
        if size > self.max_message_size as u64 {
            return Err(ProtocolError::MessageTooLarge {
                size,
                limit: self.max_message_size,
            });
        }
        Ok(())
    }

    /// Unmasks the payload bytes that arrived since the last call; for a
    /// compressed message inflates them, and for text validates them.
    /// Returns whether the whole payload is here.
    fn process_payload(&mut self, buf: &mut BytesMut) -> Result<bool, ProtocolError> {
        let Some(frame) = &mut self.frame else {
            return Ok(false);
        };
        let len = frame.header.payload_len as usize;
        let available = buf.len().min(len);
        if available > frame.processed {
            let fresh = &mut buf[frame.processed..available];
            if let Some(key) = frame.header.mask {
                apply_mask(fresh, key, frame.processed);
            }
            if !frame.header.opcode.is_control() {
                if let Some(message) = &mut self.message {
                    let limits = InflateLimits {
                        max_size: self.max_message_size,
                        max_ratio: self.max_inflate_ratio,
                    };
                    consume_data(message, self.inflate.as_deref_mut(), fresh, limits)?;
                }
            }
            frame.processed = available;
        }
        Ok(available == len)
    }

    /// Takes a complete payload off the buffer and turns it into an event,
    /// or into part of a message (`Ok(None)`).
    fn finish_frame(&mut self, buf: &mut BytesMut) -> Result<Option<Event>, ProtocolError> {
        let Some(frame) = self.frame.take() else {
            return Ok(None);
        };
        let payload = take_front(buf, frame.header.payload_len as usize);
        let event = match frame.header.opcode {
            OpCode::Ping => Event::Ping(payload.freeze()),
            OpCode::Pong => Event::Pong(payload.freeze()),
            OpCode::Close => Event::Close(CloseFrame::parse(&payload)?),
            OpCode::Text | OpCode::Binary | OpCode::Continuation => {
                return self.finish_data_frame(frame.header.fin, payload);
            }
        };
        Ok(Some(event))
    }

    fn finish_data_frame(
        &mut self,
        fin: bool,
        payload: BytesMut,
    ) -> Result<Option<Event>, ProtocolError> {
        let Some(message) = &mut self.message else {
            return Err(ProtocolError::UnexpectedContinuation);
        };
        if message.compressed {
            // The payload was inflated as it arrived; only the end is left.
            if !fin {
                return Ok(None);
            }
            let limit = self.max_message_size;
            if let Some(inflate) = &mut self.inflate {
                let start = message.data.len();
                let finished = inflate
                    .decompressor()
                    .finish_message(&mut message.data, limit);
                validate_text(message, start)?;
                finished?;
            }
        } else if !fin {
            message.data.extend_from_slice(&payload);
            return Ok(None);
        }
        let Some(mut message) = self.message.take() else {
            return Ok(None);
        };
        let data = if message.data.is_empty() && !message.compressed {
            // One frame: the payload is the message, no copy.
            payload.freeze()
        } else {
            if !message.compressed {
                message.data.extend_from_slice(&payload);
            }
            message.data.freeze()
        };
        let message = match message.kind {
            MessageKind::Binary => Message::Binary(data),
            MessageKind::Text => {
                message
                    .utf8
                    .finish()
                    .map_err(|_| ProtocolError::InvalidUtf8)?;
                Message::Text(Utf8Bytes::from_validated(data))
            }
        };
        Ok(Some(Event::Message(message)))
    }
}

/// The first `len` bytes of `buf`. When that is all of it, the buffer
/// itself is handed over: splitting would first turn it into a shared
/// buffer (one more allocation per message), and an emptied buffer is
/// released by the caller anyway.
fn take_front(buf: &mut BytesMut, len: usize) -> BytesMut {
    if len == buf.len() {
        std::mem::take(buf)
    } else {
        buf.split_to(len)
    }
}

#[derive(Clone, Copy)]
struct InflateLimits {
    max_size: usize,
    max_ratio: u32,
}

/// Takes in payload bytes of a data message as they arrive: inflates them
/// if the message is compressed, and validates text.
fn consume_data(
    message: &mut MessageInProgress,
    inflate: Option<&mut Inflate>,
    fresh: &[u8],
    limits: InflateLimits,
) -> Result<(), ProtocolError> {
    match inflate {
        Some(inflate) if message.compressed => {
            let start = message.data.len();
            let result =
                inflate
                    .decompressor()
                    .decompress(fresh, &mut message.data, limits.max_size);
            // Text inflated before corrupt data or the size limit is
            // checked first: the first violation in stream order wins,
            // however the input was split into reads.
            validate_text(message, start)?;
            result?;
            message.compressed_len += fresh.len() as u64;
            let inflated = message.data.len();
            if inflated > RATIO_GRACE
                && inflated as u64 > message.compressed_len * u64::from(limits.max_ratio)
            {
                return Err(ProtocolError::CompressionRatioTooHigh {
                    limit: limits.max_ratio,
                });
            }
            Ok(())
        }
        _ if message.kind == MessageKind::Text => message
            .utf8
            .feed(fresh)
            .map_err(|_| ProtocolError::InvalidUtf8),
        _ => Ok(()),
    }
}

/// Validates the text inflated since `start`.
fn validate_text(message: &mut MessageInProgress, start: usize) -> Result<(), ProtocolError> {
    if message.kind != MessageKind::Text {
        return Ok(());
    }
    message
        .utf8
        .feed(&message.data[start..])
        .map_err(|_| ProtocolError::InvalidUtf8)
}
