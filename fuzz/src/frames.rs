//! The connection state machine, server and client side: frames in,
//! events out, and what we send back read by a peer state machine.

use bytes::{Buf as _, BytesMut};
use clarion_proto::close::{CloseCode, CloseFrame};
use clarion_proto::connection::{
    Config, Connection, Event, Initiator, Role, State, TransportAction,
};
use clarion_proto::deflate::{DeflateConfig, DeflateParams};
use clarion_proto::{LocalError, Message, ProtocolError};

use crate::input::{Input, Pattern};

/// Close codes a peer may be failed with.
const FAILURE_CODES: [u16; 5] = [1002, 1007, 1008, 1009, 1011];

/// Server side: `[flags] [limits] [close code] [pattern] frames...`, the
/// frames as a client sends them (masked). See [`client_frames`] for what
/// the control bytes mean and what is checked.
pub fn server_frames(data: &[u8]) {
    run_target(Role::Server, data);
}

/// Client side: `[flags] [limits] [close code] [pattern] frames...`, the
/// frames as a server sends them (unmasked).
///
/// `flags`: bit 0 negotiates permessage-deflate, bits 1 and 2 turn on
/// server and client no context takeover, bit 3 turns `auto_pong` off (we
/// answer pings by hand), bit 4 echoes messages in two fragments, bit 5
/// pings after each echo, bit 6 closes with the `close code` byte's code
/// (valid or not) after an echo, bit 7 compresses everything at level 2
/// rather than messages of 64 bytes or more at level 1. `limits`: two bits
/// each for the frame size, message size and fragment count limits, and
/// for the window sizes. Every message we receive is echoed.
///
/// Checks, for the stream in one read and cut by `pattern` (and the two
/// must agree on every event, error and output byte): every error carries
/// a failure close code and leaves the connection closed with that code
/// sent; nothing comes after a close; text is UTF-8; messages and control
/// payloads are within their limits; sending after our close is refused;
/// and a peer state machine fed our output sees exactly the messages,
/// pings, pongs and close frame we meant to send, without a protocol error.
pub fn client_frames(data: &[u8]) {
    run_target(Role::Client, data);
}

/// Takes every byte queued for writing out of `conn`.
pub(crate) fn drain(conn: &mut Connection) -> BytesMut {
    let pending = conn.output_len();
    let output = conn.output();
    assert_eq!(
        output.remaining(),
        pending,
        "output_len and the Buf disagree"
    );
    let bytes = output.copy_to_bytes(pending);
    assert!(!conn.wants_write());
    BytesMut::from(&bytes[..])
}

fn run_target(role: Role, data: &[u8]) {
    let mut input = Input::new(data);
    let knobs = Knobs::read(&mut input);
    let pattern = input.pattern();
    let stream = input.rest();
    let whole = Run::new(role, &knobs).feed(stream, Pattern::WHOLE);
    let split = Run::new(role, &knobs).feed(stream, pattern);
    assert_eq!(whole, split, "a split changed the events or the output");
}

/// The switches read from the control bytes.
#[derive(Debug)]
struct Knobs {
    config: Config,
    deflate: Option<(DeflateParams, DeflateConfig)>,
    fragment_echo: bool,
    ping_echo: bool,
    close_with: Option<CloseCode>,
}

impl Knobs {
    fn read(input: &mut Input<'_>) -> Self {
        let (flags, limits, code) = (input.byte(), input.byte(), input.byte());
        let bit = |n: u8| flags & (1 << n) != 0;
        let pick = |shift: u8| usize::from((limits >> shift) & 3);
        let mut config = Config::default();
        config.max_frame_size = [2, 20, 130, 1 << 16][pick(0)];
        config.max_message_size = [10, 200, 5000, 1 << 16][pick(2)];
        config.max_fragments = [1, 2, 16, 1000][pick(4)];
        config.auto_pong = !bit(3);
        let deflate = bit(0).then(|| {
            let windows = [15, 12, 9, 8];
            let mut params = DeflateParams::default();
            params.server_no_context_takeover = bit(1);
            params.client_no_context_takeover = bit(2);
            params.server_max_window_bits = windows[pick(6)];
            params.client_max_window_bits = windows[(pick(6) + 1) % 4];
            let mut deflate = DeflateConfig::default();
            if bit(7) {
                deflate.min_size = 0;
                deflate.level = 2;
            }
            (params, deflate)
        });
        Knobs {
            config,
            deflate,
            fragment_echo: bit(4),
            ping_echo: bit(5),
            close_with: bit(6).then(|| close_code(code)),
        }
    }
}

/// A close code from one byte, valid and invalid ones alike: 995–1058
/// byte by byte (every code of RFC 6455 section 7.4.1), then coarser steps
/// up to 5000 and beyond.
fn close_code(byte: u8) -> CloseCode {
    let byte = u16::from(byte);
    CloseCode(match byte {
        0..=63 => 995 + byte,
        64..=191 => 2990 + (byte - 64) * 16,
        _ => byte * 257,
    })
}

/// What one run saw: compared between the whole input and a split one.
#[derive(Debug, PartialEq)]
struct Transcript {
    steps: Vec<Result<Event, ProtocolError>>,
    output: Vec<u8>,
    peer_events: Vec<Event>,
}

/// One connection under test, and a peer reading what it sends.
struct Run<'k> {
    knobs: &'k Knobs,
    role: Role,
    conn: Connection,
    peer: Connection,
    peer_buf: BytesMut,
    /// What the peer must see, in order.
    expected: Vec<Event>,
    transcript: Transcript,
}

impl<'k> Run<'k> {
    fn new(role: Role, knobs: &'k Knobs) -> Self {
        let mut conn = connection(role, knobs.config.clone());
        let mut peer_config = Config::default();
        peer_config.auto_pong = false;
        let peer_role = match role {
            Role::Server => Role::Client,
            Role::Client => Role::Server,
        };
        let mut peer = connection(peer_role, peer_config);
        if let Some((params, deflate)) = &knobs.deflate {
            conn.enable_deflate(params, deflate);
            peer.enable_deflate(params, &DeflateConfig::default());
        }
        Run {
            knobs,
            role,
            conn,
            peer,
            peer_buf: BytesMut::new(),
            expected: Vec::new(),
            transcript: Transcript {
                steps: Vec::new(),
                output: Vec::new(),
                peer_events: Vec::new(),
            },
        }
    }

    fn feed(mut self, stream: &[u8], pattern: Pattern<'_>) -> Transcript {
        let mut buf = BytesMut::new();
        for piece in pattern.cut(stream) {
            buf.extend_from_slice(piece.bytes);
            self.receive_all(&mut buf);
            self.pump();
        }
        self.finish()
    }

    fn receive_all(&mut self, buf: &mut BytesMut) {
        loop {
            let read_closed = self.conn.is_read_closed();
            let close_sent = self.conn.sent_close().is_some();
            match self.conn.receive(buf) {
                Ok(None) => {
                    if self.conn.is_read_closed() {
                        assert!(buf.is_empty(), "bytes kept after the close");
                    }
                    return;
                }
                Ok(Some(event)) => {
                    assert!(!read_closed, "an event after the close: {event:?}");
                    self.check_event(&event, close_sent);
                    self.react(&event);
                    self.transcript.steps.push(Ok(event));
                }
                Err(err) => {
                    assert!(!read_closed, "an error after the close: {err:?}");
                    self.check_error(&err, close_sent);
                    self.transcript.steps.push(Err(err));
                }
            }
        }
    }

    fn check_event(&mut self, event: &Event, close_sent: bool) {
        match event {
            Event::Message(message) => {
                let limit = self.knobs.config.max_message_size;
                assert!(message.len() <= limit, "a message over {limit} bytes");
                if let Message::Text(text) = message {
                    assert!(std::str::from_utf8(text.as_bytes()).is_ok());
                }
            }
            Event::Ping(payload) | Event::Pong(payload) => assert!(payload.len() <= 125),
            Event::Close(frame) => {
                if let Some(frame) = frame {
                    assert!(frame.code.is_valid_on_wire(), "{frame:?}");
                    assert!(frame.reason.len() <= 123);
                }
                assert_eq!(self.conn.received_close(), Some(frame));
                if !close_sent {
                    assert_eq!(self.conn.initiator(), Some(Initiator::Remote));
                    // The reply echoes the code without the reason.
                    let reply = frame.as_ref().map(|f| CloseFrame::new(f.code, ""));
                    assert_eq!(self.conn.sent_close(), Some(&reply));
                    self.expected.push(Event::Close(reply));
                }
                self.check_closed();
            }
        }
    }

    fn check_error(&mut self, err: &ProtocolError, close_sent: bool) {
        let code = err.close_code();
        assert!(
            FAILURE_CODES.contains(&code.0),
            "{err:?} closes with {code}"
        );
        assert_eq!(self.conn.failure(), Some(err));
        assert!(self.conn.is_read_closed());
        if !close_sent {
            let sent = self.conn.sent_close().cloned().flatten();
            let frame = sent.expect("a failure sends a close frame with a code");
            assert_eq!(frame.code, code, "{err:?}");
            assert!(frame.reason.len() <= 123);
            self.expected.push(Event::Close(Some(frame)));
        }
        self.check_closed();
    }

    fn check_closed(&self) {
        assert_eq!(self.conn.state(), State::Closed);
        let action = match self.role {
            Role::Server => TransportAction::Close,
            Role::Client => TransportAction::AwaitPeerClose,
        };
        assert_eq!(self.conn.transport_action(), action);
    }

    /// Echoes messages and answers pings, as an application would.
    fn react(&mut self, event: &Event) {
        let open = self.conn.sent_close().is_none();
        match event {
            Event::Message(message) if open => self.echo(message),
            Event::Message(message) => {
                let refused = self.conn.send(message.clone());
                assert_eq!(refused, Err(LocalError::SendAfterClose));
            }
            Event::Ping(payload) if open => {
                if !self.knobs.config.auto_pong {
                    self.conn.send_pong(payload.clone()).expect("a short pong");
                }
                self.expected.push(Event::Pong(payload.clone()));
            }
            Event::Ping(_) | Event::Pong(_) | Event::Close(_) => {}
        }
    }

    fn echo(&mut self, message: &Message) {
        let bytes = message.clone().into_bytes();
        if self.knobs.fragment_echo && bytes.len() >= 2 {
            let (kind, mid) = (message.kind(), bytes.len() / 2);
            let first = self.conn.send_fragment(kind, bytes.slice(..mid), false);
            first.expect("a first fragment");
            let last = self.conn.send_fragment(kind, bytes.slice(mid..), true);
            last.expect("a last fragment");
        } else {
            self.conn.send(message.clone()).expect("an echo");
        }
        self.expected.push(Event::Message(message.clone()));
        if self.knobs.ping_echo {
            let payload = bytes.slice(..bytes.len().min(125));
            self.conn.send_ping(payload.clone()).expect("a short ping");
            self.expected.push(Event::Ping(payload));
        }
        if let Some(code) = self.knobs.close_with {
            self.close(code);
        }
    }

    fn close(&mut self, code: CloseCode) {
        let frame = CloseFrame::new(code, "bye");
        let result = self.conn.send_close(Some(frame.clone()));
        assert_eq!(result.is_ok(), code.is_sendable(), "{result:?}");
        if result.is_err() {
            assert_eq!(self.conn.sent_close(), None, "a refused close was sent");
            return;
        }
        assert_eq!(self.conn.state(), State::CloseSent);
        assert_eq!(self.conn.initiator(), Some(Initiator::Local));
        self.expected.push(Event::Close(Some(frame)));
    }

    /// Hands what we queued to the peer, which must accept all of it.
    fn pump(&mut self) {
        let bytes = drain(&mut self.conn);
        if bytes.is_empty() {
            return;
        }
        assert!(!self.peer.is_read_closed(), "bytes sent after our close");
        self.transcript.output.extend_from_slice(&bytes);
        self.peer_buf.extend_from_slice(&bytes);
        loop {
            match self.peer.receive(&mut self.peer_buf) {
                Ok(Some(event)) => self.transcript.peer_events.push(event),
                Ok(None) => return,
                Err(err) => panic!("the peer refused our output: {err}"),
            }
        }
    }

    fn finish(self) -> Transcript {
        assert_eq!(
            self.transcript.peer_events, self.expected,
            "the peer did not see what we sent"
        );
        assert!(self.peer_buf.is_empty(), "a partial frame in our output");
        assert_eq!(
            self.peer.received_close(),
            self.conn.sent_close(),
            "the peer saw another close than the one we sent"
        );
        self.transcript
    }
}

/// A connection with `config`; a client gets a fixed sequence of mask keys
/// so two runs produce the same bytes.
fn connection(role: Role, config: Config) -> Connection {
    let result = match role {
        Role::Server => Connection::server(config),
        Role::Client => {
            let mut next: u32 = 0x2545_f491;
            Connection::client(
                config,
                Box::new(move || {
                    next = next.wrapping_mul(0x9e37_79b9).wrapping_add(1);
                    next.to_le_bytes()
                }),
            )
        }
    };
    result.expect("the fuzz limits are valid")
}
