//! The connection layer: one WebSocket's state machine (RFC 6455 sections
//! 5–7). Bytes in through [`Connection::receive`], events out; messages in
//! through the `send_*` methods, bytes out through [`Connection::output`].
//!
//! No I/O, no clock, no randomness: the caller moves bytes, keeps time and,
//! for a client, supplies mask keys.

mod compress;
mod config;
mod output;
mod reader;

use bytes::Bytes;

use self::compress::Deflate;
pub use self::config::Config;
pub use self::output::Output;
use self::reader::Reader;
use crate::close::{CloseCode, CloseFrame, MAX_CLOSE_REASON_LEN};
use crate::deflate::{DeflateConfig, DeflateParams};
use crate::error::{ConfigError, LocalError, ProtocolError};
use crate::frame::{FrameHeader, OpCode, MAX_CONTROL_PAYLOAD};
use crate::message::{Message, MessageKind};
use crate::prepared::PreparedMessage;

/// Which end of the connection we are. Clients mask what they send and
/// expect unmasked frames; servers the reverse (section 5.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// We accepted the connection.
    Server,
    /// We opened the connection.
    Client,
}

/// Where the close handshake is (section 7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Messages flow both ways.
    Open,
    /// We sent a close frame and wait for the peer's.
    CloseSent,
    /// Both close frames have been exchanged, or the connection failed.
    Closed,
}

/// Who started the close handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Initiator {
    /// We sent the first close frame (or failed the connection).
    Local,
    /// The peer sent the first close frame.
    Remote,
}

/// What the I/O layer should do with the transport (section 7.1.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportAction {
    /// Keep reading and writing.
    KeepOpen,
    /// Flush the output, then close the TCP connection: the server closes first.
    Close,
    /// Flush the output, then wait (with a timeout) for the server to close
    /// the TCP connection before closing it ourselves.
    AwaitPeerClose,
}

/// Something that arrived from the peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A complete message.
    Message(Message),
    /// A ping; with `auto_pong` the pong is already queued.
    Ping(Bytes),
    /// A pong.
    Pong(Bytes),
    /// The peer's close frame (`None`: it carried no status code). The
    /// close reply, if one is due, is already queued.
    Close(Option<CloseFrame>),
}

/// Supplies a fresh masking key for each frame a client sends.
pub type MaskSource = Box<dyn FnMut() -> [u8; 4] + Send + Sync>;

/// One WebSocket connection after the opening handshake.
pub struct Connection {
    role: Role,
    config: Config,
    state: State,
    initiator: Option<Initiator>,
    reader: Reader,
    output: Output,
    mask_source: Option<MaskSource>,
    /// A fragmented message we are sending, if any.
    sending: Option<MessageKind>,
    /// permessage-deflate for what we send, when negotiated.
    deflate: Option<Box<Deflate>>,
    received_close: Option<Option<CloseFrame>>,
    sent_close: Option<Option<CloseFrame>>,
    failure: Option<ProtocolError>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("role", &self.role)
            .field("state", &self.state)
            .field("initiator", &self.initiator)
            .field("pending_output", &self.output.len())
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// The server end of a connection.
    pub fn server(config: Config) -> Result<Self, ConfigError> {
        Self::new(Role::Server, config, None)
    }

    /// The client end of a connection; `mask_source` must return
    /// unpredictable keys (section 10.3), e.g. from a CSPRNG.
    pub fn client(config: Config, mask_source: MaskSource) -> Result<Self, ConfigError> {
        Self::new(Role::Client, config, Some(mask_source))
    }

    fn new(
        role: Role,
        config: Config,
        mask_source: Option<MaskSource>,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Connection {
            role,
            reader: Reader::new(role, &config),
            config,
            state: State::Open,
            initiator: None,
            output: Output::default(),
            mask_source,
            sending: None,
            deflate: None,
            received_close: None,
            sent_close: None,
            failure: None,
        })
    }

    /// Turns on permessage-deflate as negotiated in the handshake (RFC
    /// 7692): received messages with RSV1 are inflated, sent messages of at
    /// least `config.min_size` bytes are compressed. Call before any frame.
    pub fn enable_deflate(&mut self, params: &DeflateParams, config: &DeflateConfig) {
        self.reader.enable_deflate(params);
        self.deflate = Some(Box::new(Deflate::new(self.role, params, config)));
    }

    /// Whether permessage-deflate was negotiated.
    pub fn is_deflate_enabled(&self) -> bool {
        self.deflate.is_some()
    }

    /// Our role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The limits in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Where the close handshake is.
    pub fn state(&self) -> State {
        self.state
    }

    /// Who started closing, once someone has.
    pub fn initiator(&self) -> Option<Initiator> {
        self.initiator
    }

    /// The peer's close frame, once received (`Some(None)`: no status code).
    pub fn received_close(&self) -> Option<&Option<CloseFrame>> {
        self.received_close.as_ref()
    }

    /// Our close frame, once sent.
    pub fn sent_close(&self) -> Option<&Option<CloseFrame>> {
        self.sent_close.as_ref()
    }

    /// The peer's violation that failed the connection, if any.
    pub fn failure(&self) -> Option<&ProtocolError> {
        self.failure.as_ref()
    }

    /// Whether the peer's side is finished: no more events will come.
    pub fn is_read_closed(&self) -> bool {
        self.received_close.is_some() || self.failure.is_some()
    }

    /// Consumes bytes from the front of `buf` and returns the next event.
    ///
    /// `Ok(None)` means more bytes are needed (or the peer's side is closed:
    /// see [`is_read_closed`](Self::is_read_closed)). Between calls the
    /// caller may only append to `buf`: a frame's payload is unmasked and
    /// validated in place as it arrives, and complete payloads are split off
    /// without copying.
    ///
    /// A protocol violation queues a close frame with its code, moves to
    /// [`State::Closed`] and is returned once; later calls return `Ok(None)`.
    pub fn receive(&mut self, buf: &mut bytes::BytesMut) -> Result<Option<Event>, ProtocolError> {
        if self.is_read_closed() {
            buf.clear();
            return Ok(None);
        }
        let event = match self.reader.receive(buf) {
            Ok(Some(event)) => event,
            Ok(None) => return Ok(None),
            Err(err) => {
                self.fail(err.clone());
                buf.clear();
                return Err(err);
            }
        };
        match &event {
            Event::Ping(payload) => self.on_ping(payload.clone()),
            Event::Close(frame) => self.on_close(frame.clone()),
            Event::Message(_) | Event::Pong(_) => {}
        }
        Ok(Some(event))
    }

    /// How many more bytes would let [`receive`](Self::receive) make
    /// progress: the rest of the current frame, or a header's worth. The I/O
    /// layer can size its next read with it.
    pub fn read_hint(&self, buffered: usize) -> usize {
        self.reader.read_hint(buffered)
    }

    /// Queues a whole message as one frame.
    pub fn send(&mut self, message: Message) -> Result<(), LocalError> {
        if self.sending.is_some() {
            return Err(LocalError::FragmentOutOfOrder);
        }
        if self.sent_close.is_some() {
            return Err(LocalError::SendAfterClose);
        }
        let opcode = match message.kind() {
            MessageKind::Text => OpCode::Text,
            MessageKind::Binary => OpCode::Binary,
        };
        let payload = message.into_bytes();
        match self.deflate.as_mut().and_then(|d| d.compress(&payload)) {
            Some(compressed) => self.send_frame_with(opcode, true, true, compressed),
            None => self.send_frame(opcode, true, payload),
        }
    }

    /// Queues a message framed once for many connections (see
    /// [`PreparedMessage`]). A server sends the shared bytes as they are; a
    /// client, which must mask each frame, frames it the ordinary way.
    pub fn send_prepared(&mut self, prepared: &PreparedMessage) -> Result<(), LocalError> {
        if self.role == Role::Client {
            return self.send(prepared.message().clone());
        }
        if self.sending.is_some() {
            return Err(LocalError::FragmentOutOfOrder);
        }
        if self.sent_close.is_some() {
            return Err(LocalError::SendAfterClose);
        }
        let frame = match &mut self.deflate {
            Some(deflate) if deflate.would_compress(prepared.message().len()) => {
                deflate.forget_context();
                prepared.compressed_frame(deflate.window_bits())
            }
            _ => prepared.plain_frame(),
        };
        self.output.push_encoded(frame);
        Ok(())
    }

    /// Queues one fragment of a message: the first call gives the kind, the
    /// others continue it, and `fin` ends it. The caller keeps the fragments
    /// of a text message valid UTF-8 as a whole.
    pub fn send_fragment(
        &mut self,
        kind: MessageKind,
        payload: Bytes,
        fin: bool,
    ) -> Result<(), LocalError> {
        let opcode = match self.sending {
            None => match kind {
                MessageKind::Text => OpCode::Text,
                MessageKind::Binary => OpCode::Binary,
            },
            Some(current) if current == kind => OpCode::Continuation,
            Some(_) => return Err(LocalError::FragmentOutOfOrder),
        };
        self.send_frame(opcode, fin, payload)?;
        self.sending = if fin { None } else { Some(kind) };
        Ok(())
    }

    /// Queues a ping.
    pub fn send_ping(&mut self, payload: Bytes) -> Result<(), LocalError> {
        check_control_payload(&payload)?;
        self.send_frame(OpCode::Ping, true, payload)
    }

    /// Queues a pong (an unsolicited pong is a heartbeat, section 5.5.3).
    pub fn send_pong(&mut self, payload: Bytes) -> Result<(), LocalError> {
        check_control_payload(&payload)?;
        self.send_frame(OpCode::Pong, true, payload)
    }

    /// Starts the close handshake (or answers the peer's). `None` sends a
    /// close frame without a status code.
    pub fn send_close(&mut self, frame: Option<CloseFrame>) -> Result<(), LocalError> {
        if let Some(frame) = &frame {
            frame.validate()?;
        }
        let payload = frame
            .as_ref()
            .map(CloseFrame::to_payload)
            .unwrap_or_default();
        self.send_frame(OpCode::Close, true, payload)?;
        self.sent_close = Some(frame);
        self.initiator.get_or_insert(Initiator::Local);
        self.state = if self.received_close.is_some() {
            State::Closed
        } else {
            State::CloseSent
        };
        Ok(())
    }

    /// Encoded frames waiting to be written; the I/O layer writes from it
    /// and calls `advance` with what was written.
    pub fn output(&mut self) -> &mut Output {
        &mut self.output
    }

    /// Whether a fragmented message is being sent: whole messages must wait
    /// until its last fragment.
    pub fn is_sending_fragmented(&self) -> bool {
        self.sending.is_some()
    }

    /// How many bytes are waiting to be written.
    pub fn output_len(&self) -> usize {
        self.output.len()
    }

    /// Whether bytes are waiting to be written.
    pub fn wants_write(&self) -> bool {
        !self.output.is_empty()
    }

    /// What to do with the transport now.
    pub fn transport_action(&self) -> TransportAction {
        match (self.state, self.role) {
            (State::Closed, Role::Server) => TransportAction::Close,
            (State::Closed, Role::Client) => TransportAction::AwaitPeerClose,
            _ => TransportAction::KeepOpen,
        }
    }

    fn send_frame(&mut self, opcode: OpCode, fin: bool, payload: Bytes) -> Result<(), LocalError> {
        self.send_frame_with(opcode, fin, false, payload)
    }

    fn send_frame_with(
        &mut self,
        opcode: OpCode,
        fin: bool,
        compressed: bool,
        payload: Bytes,
    ) -> Result<(), LocalError> {
        if self.sent_close.is_some() {
            return Err(LocalError::SendAfterClose);
        }
        let mut header = FrameHeader::new(opcode, payload.len() as u64);
        header.fin = fin;
        header.rsv1 = compressed;
        header.mask = self.mask_source.as_mut().map(|next| next());
        self.output.push_frame(&header, payload);
        Ok(())
    }

    fn on_ping(&mut self, payload: Bytes) {
        if self.config.auto_pong && self.sent_close.is_none() {
            // The payload came from a valid control frame: at most 125 bytes.
            let _ = self.send_frame(OpCode::Pong, true, payload);
        }
    }

    fn on_close(&mut self, frame: Option<CloseFrame>) {
        self.received_close = Some(frame.clone());
        if self.sent_close.is_some() {
            self.state = State::Closed;
            return;
        }
        self.initiator = Some(Initiator::Remote);
        // Echo the status code (section 5.5.1); no code in, no code out.
        let reply = frame.map(|f| CloseFrame::new(f.code, ""));
        if self.send_close(reply).is_err() {
            let _ = self.send_close(None);
        }
        self.state = State::Closed;
    }

    /// Fails the connection (section 7.1.7): send a close frame with the
    /// violation's code, unless one was sent already, and stop reading.
    fn fail(&mut self, err: ProtocolError) {
        if self.sent_close.is_none() {
            let reason = truncate_reason(err.to_string());
            let _ = self.send_close(Some(CloseFrame::new(err.close_code(), reason)));
        }
        self.initiator.get_or_insert(Initiator::Local);
        self.failure = Some(err);
        self.state = State::Closed;
    }
}

fn check_control_payload(payload: &Bytes) -> Result<(), LocalError> {
    if payload.len() > MAX_CONTROL_PAYLOAD {
        return Err(LocalError::ControlPayloadTooLong(payload.len()));
    }
    Ok(())
}

fn truncate_reason(mut reason: String) -> String {
    if reason.len() > MAX_CLOSE_REASON_LEN {
        let mut end = MAX_CLOSE_REASON_LEN;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
    }
    reason
}

/// Shorthand used by the tests and the I/O layer: the close code a received
/// close frame maps to, 1005 when it carried none.
pub fn close_code_of(frame: &Option<CloseFrame>) -> CloseCode {
    frame.as_ref().map_or(CloseCode::NO_STATUS, |f| f.code)
}

#[cfg(test)]
mod tests;
