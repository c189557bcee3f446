//! Frames in, events out: header checks, in-place unmasking as bytes
//! arrive, incremental UTF-8 validation, and message assembly.

use bytes::{Buf, BytesMut};

use super::{Config, Event, Role};
use crate::close::CloseFrame;
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
    /// Payload of the earlier fragments; empty while the message is one frame.
    data: BytesMut,
    fragments: usize,
    utf8: Utf8Validator,
}

impl Reader {
    pub(super) fn new(role: Role, config: &Config) -> Self {
        Reader {
            role,
            max_frame_size: config.max_frame_size,
            max_message_size: config.max_message_size,
            max_fragments: config.max_fragments,
            frame: None,
            message: None,
        }
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
        if header.rsv1 || header.rsv2 || header.rsv3 {
            return Err(ProtocolError::ReservedBits);
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
        let so_far = message.data.len() as u64;
        self.check_message_size(header.payload_len, so_far)?;
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

    /// Unmasks (and for text, validates) the payload bytes that arrived since
    /// the last call. Returns whether the whole payload is here.
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
                    if message.kind == MessageKind::Text {
                        message
                            .utf8
                            .feed(fresh)
                            .map_err(|_| ProtocolError::InvalidUtf8)?;
                    }
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
        let payload = buf.split_to(frame.header.payload_len as usize);
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
        if !fin {
            message.data.extend_from_slice(&payload);
            return Ok(None);
        }
        let Some(mut message) = self.message.take() else {
            return Ok(None);
        };
        let data = if message.data.is_empty() {
            // One frame: the payload is the message, no copy.
            payload.freeze()
        } else {
            message.data.extend_from_slice(&payload);
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
