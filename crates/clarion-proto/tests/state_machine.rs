//! Property tests of the connection state machine (RFC 6455 sections 5–7,
//! RFC 7692), through the public API only, for both roles, with and
//! without permessage-deflate:
//!
//! - any sequence of frames — valid and invalid, masked or not, fragments,
//!   control frames, random close codes, compressed bits — never panics,
//!   and either yields valid events or ends with a close carrying a code;
//! - any split of the same input gives the same events, errors and output;
//! - a sequence of valid frames yields exactly the messages, pings, pongs
//!   and close a model of it predicts;
//! - what the connection sends in answer (pongs, the close reply or the
//!   failure's close) is read without error by a peer.

use bytes::{Buf as _, BytesMut};
use clarion_proto::close::CloseFrame;
use clarion_proto::connection::{Config, Connection, Event, Initiator, Role, State};
use clarion_proto::deflate::{Compressor, DeflateConfig, DeflateParams};
use clarion_proto::{Message, ProtocolError};
use proptest::collection::vec;
use proptest::prelude::*;

/// The codes a connection may be failed with.
const FAILURE_CODES: [u16; 5] = [1002, 1007, 1008, 1009, 1011];

/// The connection under test.
#[derive(Clone, Debug)]
struct Setup {
    role: Role,
    config: Config,
    /// permessage-deflate, when negotiated.
    deflate: Option<DeflateParams>,
}

impl Setup {
    fn connection(&self, role: Role, config: Config) -> Connection {
        let mut conn = match role {
            Role::Server => Connection::server(config),
            Role::Client => Connection::client(config, Box::new(|| [0xa5, 0x5a, 0x0f, 0xf0])),
        }
        .expect("a valid config");
        if let Some(params) = &self.deflate {
            conn.enable_deflate(params, &DeflateConfig::default());
        }
        conn
    }

    fn peer_role(&self) -> Role {
        match self.role {
            Role::Server => Role::Client,
            Role::Client => Role::Server,
        }
    }

    /// Whether frames to us must be masked (we are the server).
    fn expects_mask(&self) -> bool {
        self.role == Role::Server
    }

    /// A compressor as our peer has one: its window and context takeover.
    fn peer_compressor(&self) -> Option<Compressor> {
        let params = self.deflate.as_ref()?;
        Some(params.compressor(self.peer_role(), 1))
    }
}

fn any_setup(small_limits: bool) -> impl Strategy<Value = Setup> {
    let limits = if small_limits {
        (1usize..300, 1usize..2000, 1usize..6).boxed()
    } else {
        Just((1 << 20, 1 << 20, 1000)).boxed()
    };
    let deflate = prop::option::of((any::<bool>(), any::<bool>(), 8u8..=15, 8u8..=15));
    (any::<bool>(), limits, deflate, any::<bool>()).prop_map(
        |(server, (frame, message, fragments), deflate, auto_pong)| {
            let mut config = Config::default();
            config.max_frame_size = frame;
            config.max_message_size = message;
            config.max_fragments = fragments;
            config.auto_pong = auto_pong;
            Setup {
                role: if server { Role::Server } else { Role::Client },
                config,
                deflate: deflate.map(|(server_reset, client_reset, server_bits, client_bits)| {
                    let mut params = DeflateParams::default();
                    params.server_no_context_takeover = server_reset;
                    params.client_no_context_takeover = client_reset;
                    params.server_max_window_bits = server_bits;
                    params.client_max_window_bits = client_bits;
                    params
                }),
            }
        },
    )
}

/// One frame on the wire, possibly invalid.
#[derive(Clone, Debug)]
struct RawFrame {
    /// FIN, RSV1–3 and the opcode, as the first byte.
    first: u8,
    /// Masked as the receiver requires; `false` flips it.
    proper_mask: bool,
    key: [u8; 4],
    payload: Vec<u8>,
}

impl RawFrame {
    fn data(first: u8, payload: Vec<u8>) -> Self {
        RawFrame {
            first,
            proper_mask: true,
            key: [0x37, 0xfa, 0x21, 0x3d],
            payload,
        }
    }
}

/// Encodes frames as a peer of `setup` sends them (independently of the
/// crate's encoder).
fn encode(setup: &Setup, frames: &[RawFrame]) -> Vec<u8> {
    let mut out = Vec::new();
    for frame in frames {
        let masked = frame.proper_mask == setup.expects_mask();
        let mask_bit = if masked { 0x80 } else { 0 };
        let len = frame.payload.len();
        out.push(frame.first);
        match len {
            0..=125 => out.push(mask_bit | len as u8),
            126..=0xffff => {
                out.push(mask_bit | 126);
                out.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                out.push(mask_bit | 127);
                out.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        if masked {
            out.extend_from_slice(&frame.key);
            let payload = frame.payload.iter().enumerate();
            out.extend(payload.map(|(i, byte)| byte ^ frame.key[i % 4]));
        } else {
            out.extend_from_slice(&frame.payload);
        }
    }
    out
}

/// Payloads of every shape: text, bytes, close payloads with any code,
/// DEFLATE data, and now and then a long one.
fn any_payload() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => "\\PC{0,40}".prop_map(String::into_bytes),
        3 => vec(any::<u8>(), 0..40),
        2 => (any::<u16>(), "\\PC{0,20}").prop_map(|(code, reason)| {
            [&code.to_be_bytes()[..], reason.as_bytes()].concat()
        }),
        2 => (prop_oneof![Just(1000u16), Just(1001), Just(1005), Just(1015), 3000u16..5000],
              vec(any::<u8>(), 0..5))
            .prop_map(|(code, reason)| [&code.to_be_bytes()[..], &reason[..]].concat()),
        2 => "[a-c ]{0,300}".prop_map(|text| {
            let mut out = BytesMut::new();
            Compressor::new(1, 15, true).compress(text.as_bytes(), &mut out);
            out.to_vec()
        }),
        1 => vec(any::<u8>(), 120..700),
    ]
}

fn any_frame() -> impl Strategy<Value = RawFrame> {
    let opcode = prop_oneof![
        10 => prop::sample::select(vec![0u8, 1, 2, 8, 9, 10]),
        1 => 0u8..16,
    ];
    let fin = prop::bool::weighted(0.8);
    let rsv1 = prop::bool::weighted(0.2);
    let rsv23 = prop_oneof![20 => Just(0u8), 1 => 1u8..4];
    let proper_mask = prop::bool::weighted(0.95);
    (
        fin,
        rsv1,
        rsv23,
        opcode,
        proper_mask,
        any::<[u8; 4]>(),
        any_payload(),
    )
        .prop_map(
            |(fin, rsv1, rsv23, opcode, proper_mask, key, payload)| RawFrame {
                first: u8::from(fin) << 7 | u8::from(rsv1) << 6 | rsv23 << 4 | opcode,
                proper_mask,
                key,
                payload,
            },
        )
}

/// Everything one run saw.
#[derive(Debug, PartialEq)]
struct Transcript {
    steps: Vec<Result<Event, ProtocolError>>,
    output: Vec<u8>,
    state: State,
    sent_close: Option<Option<CloseFrame>>,
}

/// Feeds `bytes` cut at `cuts` (clamped, any order), receiving until the
/// connection needs more. Panics if anything follows a close or an error.
fn run(setup: &Setup, bytes: &[u8], cuts: &[usize]) -> Transcript {
    let mut conn = setup.connection(setup.role, setup.config.clone());
    let mut cuts: Vec<usize> = cuts.iter().map(|&cut| cut.min(bytes.len())).collect();
    cuts.sort_unstable();
    cuts.push(bytes.len());
    let (mut buf, mut start, mut steps) = (BytesMut::new(), 0, Vec::new());
    for end in cuts {
        buf.extend_from_slice(&bytes[start..end]);
        start = end;
        loop {
            let closed = conn.is_read_closed();
            let step = match conn.receive(&mut buf) {
                Ok(None) => break,
                Ok(Some(event)) => Ok(event),
                Err(err) => Err(err),
            };
            assert!(!closed, "{step:?} after the close");
            steps.push(step);
        }
    }
    let output = conn.output();
    Transcript {
        steps,
        output: output.copy_to_bytes(output.remaining()).to_vec(),
        state: conn.state(),
        sent_close: conn.sent_close().cloned(),
    }
}

/// Valid events, and a close with a code at the end of a failure.
fn check(setup: &Setup, transcript: &Transcript) -> Result<(), TestCaseError> {
    let mut pongs = Vec::new();
    for step in &transcript.steps {
        match step {
            Ok(Event::Message(message)) => {
                prop_assert!(message.len() <= setup.config.max_message_size);
                if let Message::Text(text) = message {
                    prop_assert!(std::str::from_utf8(text.as_bytes()).is_ok());
                }
            }
            Ok(Event::Ping(payload)) => {
                prop_assert!(payload.len() <= 125);
                if setup.config.auto_pong {
                    pongs.push(Event::Pong(payload.clone()));
                }
            }
            Ok(Event::Pong(payload)) => prop_assert!(payload.len() <= 125),
            Ok(Event::Close(frame)) => {
                let reply = frame.as_ref().map(|f| CloseFrame::new(f.code, ""));
                prop_assert_eq!(&transcript.sent_close, &Some(reply));
            }
            Err(err) => {
                let code = err.close_code();
                prop_assert!(FAILURE_CODES.contains(&code.0), "{err:?}");
                let sent = transcript.sent_close.clone().flatten();
                prop_assert_eq!(sent.map(|frame| frame.code), Some(code));
            }
        }
    }
    let ended = matches!(transcript.steps.last(), Some(Err(_) | Ok(Event::Close(_))));
    let state = if ended { State::Closed } else { State::Open };
    prop_assert_eq!(transcript.state, state);
    if !ended {
        prop_assert_eq!(&transcript.sent_close, &None);
    }
    // The peer reads our pongs, then our close frame, without a violation.
    let mut expected = pongs;
    if let Some(frame) = &transcript.sent_close {
        expected.push(Event::Close(frame.clone()));
    }
    prop_assert_eq!(peer_reads(setup, &transcript.output)?, expected);
    Ok(())
}

/// The events a default peer gets from `output`; a violation fails.
fn peer_reads(setup: &Setup, output: &[u8]) -> Result<Vec<Event>, TestCaseError> {
    let mut config = Config::default();
    config.auto_pong = false;
    let mut peer = setup.connection(setup.peer_role(), config);
    let mut buf = BytesMut::from(output);
    let mut events = Vec::new();
    loop {
        match peer.receive(&mut buf) {
            Ok(Some(event)) => events.push(event),
            Ok(None) => break,
            Err(err) => return Err(TestCaseError::fail(format!("peer refused: {err}"))),
        }
    }
    prop_assert!(buf.is_empty(), "a partial frame in our output");
    Ok(events)
}

/// A valid thing for a peer to send.
#[derive(Clone, Debug)]
enum Op {
    /// A data message in `pieces` fragments, compressed if deflate is on
    /// and `compress`, with a ping between the first two fragments.
    Message {
        message: Message,
        pieces: usize,
        compress: bool,
        ping: Option<Vec<u8>>,
    },
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    /// A close frame: a valid code and a reason, or no code.
    Close(Option<CloseFrame>),
}

fn valid_op() -> impl Strategy<Value = Op> {
    let message = prop_oneof![
        "\\PC{0,60}".prop_map(Message::text),
        vec(any::<u8>(), 0..300).prop_map(Message::from),
    ];
    let control = || vec(any::<u8>(), 0..=125);
    let code = prop_oneof![1000u16..=1003, 1007u16..=1014, 3000u16..5000];
    prop_oneof![
        8 => (message, 1usize..5, any::<bool>(), prop::option::of(control())).prop_map(
            |(message, pieces, compress, ping)| Op::Message { message, pieces, compress, ping }
        ),
        2 => control().prop_map(Op::Ping),
        1 => control().prop_map(Op::Pong),
        1 => prop::option::of((code, "\\PC{0,20}"))
            .prop_map(|close| Op::Close(close.map(|(code, reason)| CloseFrame::new(code.into(), reason)))),
    ]
}

/// The frames of `ops` and the events they must give: everything up to
/// and including the first close.
fn frames_and_events(setup: &Setup, ops: &[Op]) -> (Vec<RawFrame>, Vec<Event>) {
    let mut compressor = setup.peer_compressor();
    let (mut frames, mut events) = (Vec::new(), Vec::new());
    for op in ops {
        match op {
            Op::Message {
                message,
                pieces,
                compress,
                ping,
            } => {
                let opcode = if matches!(message, Message::Text(_)) {
                    1
                } else {
                    2
                };
                let (payload, rsv1) = match compressor.as_mut().filter(|_| *compress) {
                    Some(compressor) => {
                        let mut out = BytesMut::new();
                        compressor.compress(message.as_bytes(), &mut out);
                        (out.to_vec(), 0x40)
                    }
                    None => (message.as_bytes().to_vec(), 0),
                };
                let parts = split(&payload, *pieces);
                let last = parts.len() - 1;
                for (i, part) in parts.into_iter().enumerate() {
                    let fin = if i == last { 0x80 } else { 0 };
                    let first = if i == 0 { rsv1 | opcode } else { 0 };
                    frames.push(RawFrame::data(fin | first, part));
                    if let (0, true, Some(ping)) = (i, last > 0, ping) {
                        frames.push(RawFrame::data(0x89, ping.clone()));
                        events.push(Event::Ping(ping.clone().into()));
                    }
                }
                events.push(Event::Message(message.clone()));
            }
            Op::Ping(payload) => {
                frames.push(RawFrame::data(0x89, payload.clone()));
                events.push(Event::Ping(payload.clone().into()));
            }
            Op::Pong(payload) => {
                frames.push(RawFrame::data(0x8a, payload.clone()));
                events.push(Event::Pong(payload.clone().into()));
            }
            Op::Close(frame) => {
                let payload = frame.as_ref().map(|f| f.to_payload().to_vec());
                frames.push(RawFrame::data(0x88, payload.unwrap_or_default()));
                events.push(Event::Close(frame.clone()));
                break;
            }
        }
    }
    (frames, events)
}

/// `payload` in `pieces` parts (the last ones may be empty).
fn split(payload: &[u8], pieces: usize) -> Vec<Vec<u8>> {
    (0..pieces)
        .map(|i| payload[payload.len() * i / pieces..payload.len() * (i + 1) / pieces].to_vec())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn any_frames_never_panic_and_end_in_valid_events_or_a_close_with_a_code(
        setup in any_setup(true),
        frames in vec(any_frame(), 0..16),
        cuts in vec(0usize..3000, 0..8),
    ) {
        let bytes = encode(&setup, &frames);
        let whole = run(&setup, &bytes, &[]);
        check(&setup, &whole)?;
        prop_assert_eq!(&whole, &run(&setup, &bytes, &cuts), "a split changed the outcome");
    }

    #[test]
    fn any_frames_byte_at_a_time_give_the_same_outcome(
        setup in any_setup(true),
        frames in vec(any_frame(), 0..8),
    ) {
        let bytes = encode(&setup, &frames);
        let cuts: Vec<usize> = (0..bytes.len()).collect();
        prop_assert_eq!(run(&setup, &bytes, &[]), run(&setup, &bytes, &cuts));
    }

    #[test]
    fn valid_frames_yield_exactly_what_was_sent(
        setup in any_setup(false),
        ops in vec(valid_op(), 0..10),
        cuts in vec(0usize..5000, 0..8),
    ) {
        let (frames, events) = frames_and_events(&setup, &ops);
        let bytes = encode(&setup, &frames);
        let transcript = run(&setup, &bytes, &cuts);
        let expected: Vec<Result<Event, ProtocolError>> = events.into_iter().map(Ok).collect();
        prop_assert_eq!(&transcript.steps, &expected);
        check(&setup, &transcript)?;
    }

    #[test]
    fn a_close_from_the_peer_is_answered_and_ends_reading(
        setup in any_setup(false),
        code in prop_oneof![1000u16..=1003, 1007u16..=1014, 3000u16..5000],
        after in vec(any_frame(), 0..4),
    ) {
        let close = CloseFrame::new(code.into(), "done");
        let mut frames = vec![RawFrame::data(0x88, close.to_payload().to_vec())];
        frames.extend(after);
        let mut conn = setup.connection(setup.role, setup.config.clone());
        let mut buf = BytesMut::from(&encode(&setup, &frames)[..]);
        prop_assert_eq!(conn.receive(&mut buf), Ok(Some(Event::Close(Some(close)))));
        prop_assert_eq!(conn.receive(&mut buf), Ok(None));
        prop_assert!(buf.is_empty());
        prop_assert_eq!(conn.initiator(), Some(Initiator::Remote));
        prop_assert_eq!(conn.state(), State::Closed);
        let reply = Some(CloseFrame::new(code.into(), ""));
        prop_assert_eq!(conn.sent_close(), Some(&reply));
    }
}

/// Bugs the fuzz targets found, one test each, named after the finding.
mod regressions {
    use super::*;

    /// Found by `server_frames` and `client_frames`
    /// (`fuzz/regressions/*/invalid-utf8-before-corrupt-deflate`): a
    /// compressed text message whose inflated bytes hold invalid UTF-8
    /// before corrupt DEFLATE data (or before passing the size limit)
    /// failed with "invalid DEFLATE data" when it arrived in one read and
    /// with "invalid UTF-8" byte by byte: the close reason depended on how
    /// TCP cut the stream. The first violation in stream order now wins.
    #[test]
    fn invalid_utf8_before_corrupt_deflate_fails_the_same_for_any_split() {
        for role in [Role::Server, Role::Client] {
            for max_message_size in [1 << 20, 40] {
                let mut config = Config::default();
                config.max_message_size = max_message_size;
                let setup = Setup {
                    role,
                    config,
                    deflate: Some(DeflateParams::default()),
                };
                let mut payload = BytesMut::new();
                let text = [&b"ok \xff\xfe not text "[..], &[b'x'; 100]].concat();
                let mut compressor = setup.peer_compressor().expect("deflate is on");
                compressor.compress(&text, &mut payload);
                payload.extend_from_slice(&[0xff; 8]);
                let bytes = encode(&setup, &[RawFrame::data(0xc1, payload.to_vec())]);
                let whole = run(&setup, &bytes, &[]);
                assert_eq!(whole.steps, [Err(ProtocolError::InvalidUtf8)], "{role:?}");
                let cuts: Vec<usize> = (0..bytes.len()).collect();
                assert_eq!(run(&setup, &bytes, &cuts), whole, "{role:?}");
            }
        }
    }
}
