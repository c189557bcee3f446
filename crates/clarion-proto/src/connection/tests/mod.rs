//! The connection state machine, section by section of RFC 6455.

use bytes::{Buf, Bytes, BytesMut};
use proptest::prelude::*;

use super::*;
use crate::prepared::PreparedMessage;

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A frame as a client would send it (masked with `KEY`).
fn client_frame(first_byte: u8, payload: &[u8]) -> Vec<u8> {
    let opcode = OpCode::from_u8(first_byte & 0x0F).unwrap_or(OpCode::Binary);
    let mut header = FrameHeader::new(opcode, payload.len() as u64);
    header.mask = Some(KEY);
    let mut out = Vec::new();
    header.encode(&mut out);
    out[0] = first_byte;
    let start = out.len();
    out.extend_from_slice(payload);
    crate::mask::apply_mask(&mut out[start..], KEY, 0);
    out
}

/// A frame as a server sends it (unmasked).
fn server_frame(first_byte: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![first_byte];
    let mut header = FrameHeader::new(OpCode::Binary, payload.len() as u64);
    let mut encoded = Vec::new();
    header.fin = true;
    header.encode(&mut encoded);
    out.extend_from_slice(&encoded[1..]);
    out.extend_from_slice(payload);
    out
}

fn server() -> Connection {
    Connection::server(Config::default()).unwrap()
}

fn client() -> Connection {
    let mut n = 0u8;
    Connection::client(
        Config::default(),
        Box::new(move || {
            n = n.wrapping_add(1);
            [n, n ^ 0x55, n ^ 0xAA, n ^ 0xFF]
        }),
    )
    .unwrap()
}

/// Feeds all of `bytes` and collects events until an error or need-more.
fn feed(conn: &mut Connection, bytes: &[u8]) -> (Vec<Event>, Option<ProtocolError>) {
    let mut buf = BytesMut::from(bytes);
    let mut events = Vec::new();
    loop {
        match conn.receive(&mut buf) {
            Ok(Some(event)) => events.push(event),
            Ok(None) => return (events, None),
            Err(err) => return (events, Some(err)),
        }
    }
}

fn drain(conn: &mut Connection) -> Vec<u8> {
    let output = conn.output();
    let mut all = Vec::new();
    while output.has_remaining() {
        let chunk = output.chunk().to_vec();
        output.advance(chunk.len());
        all.extend(chunk);
    }
    all
}

fn text(s: &str) -> Event {
    Event::Message(Message::text(s))
}

mod section_5_1_masking_by_role {
    use super::*;

    #[test]
    fn server_requires_masked_frames() {
        let (_, err) = feed(&mut server(), &server_frame(0x81, b"hi"));
        assert_eq!(err, Some(ProtocolError::UnmaskedFrame));
    }

    #[test]
    fn client_rejects_masked_frames() {
        let (_, err) = feed(&mut client(), &client_frame(0x81, b"hi"));
        assert_eq!(err, Some(ProtocolError::MaskedFrame));
    }

    #[test]
    fn failing_the_connection_sends_1002() {
        let mut conn = server();
        feed(&mut conn, &server_frame(0x81, b"hi"));
        let out = drain(&mut conn);
        assert_eq!(&out[..4], &[0x88, out[1], 0x03, 0xEA]);
        assert_eq!(conn.state(), State::Closed);
        assert_eq!(conn.transport_action(), TransportAction::Close);
    }

    #[test]
    fn client_frames_are_masked_and_server_frames_are_not() {
        let mut c = client();
        c.send(Message::text("Hello")).unwrap();
        let wire = drain(&mut c);
        assert_eq!(wire[1] & 0x80, 0x80);
        let (events, err) = feed(&mut server(), &wire);
        assert_eq!((events, err), (vec![text("Hello")], None));

        let mut s = server();
        s.send(Message::text("Hello")).unwrap();
        assert_eq!(drain(&mut s), b"\x81\x05Hello");
    }
}

mod section_5_2_reserved_bits_and_opcodes {
    use super::*;

    #[test]
    fn rsv_bits_without_extension_are_1002() {
        for first in [0xC1u8, 0xA1, 0x91] {
            let (_, err) = feed(&mut server(), &client_frame(first, b"x"));
            assert_eq!(err, Some(ProtocolError::ReservedBits));
            assert_eq!(err.unwrap().close_code(), CloseCode::PROTOCOL_ERROR);
        }
    }

    #[test]
    fn reserved_opcode_is_1002() {
        let (_, err) = feed(&mut server(), &client_frame(0x83, b""));
        assert_eq!(err, Some(ProtocolError::ReservedOpcode(3)));
    }
}

mod section_5_4_fragmentation {
    use super::*;

    #[test]
    fn fragments_are_reassembled() {
        let mut bytes = client_frame(0x01, b"Hel");
        bytes.extend(client_frame(0x00, b"l"));
        bytes.extend(client_frame(0x80, b"o"));
        let (events, err) = feed(&mut server(), &bytes);
        assert_eq!((events, err), (vec![text("Hello")], None));
    }

    #[test]
    fn control_frames_may_interleave() {
        let mut bytes = client_frame(0x02, b"ab");
        bytes.extend(client_frame(0x89, b"ping"));
        bytes.extend(client_frame(0x80, b"cd"));
        let mut conn = server();
        let (events, err) = feed(&mut conn, &bytes);
        assert_eq!(err, None);
        assert_eq!(
            events,
            vec![
                Event::Ping(Bytes::from_static(b"ping")),
                Event::Message(Message::binary(&b"abcd"[..])),
            ]
        );
        assert_eq!(drain(&mut conn), b"\x8A\x04ping");
    }

    #[test]
    fn continuation_without_a_message_is_1002() {
        let (_, err) = feed(&mut server(), &client_frame(0x80, b"x"));
        assert_eq!(err, Some(ProtocolError::UnexpectedContinuation));
    }

    #[test]
    fn new_message_during_fragmented_one_is_1002() {
        let mut bytes = client_frame(0x01, b"a");
        bytes.extend(client_frame(0x81, b"b"));
        let (_, err) = feed(&mut server(), &bytes);
        assert_eq!(err, Some(ProtocolError::ExpectedContinuation));
    }

    #[test]
    fn sending_fragments() {
        let mut s = server();
        s.send_fragment(MessageKind::Text, Bytes::from_static(b"Hel"), false)
            .unwrap();
        s.send_fragment(MessageKind::Text, Bytes::from_static(b"lo"), true)
            .unwrap();
        assert_eq!(drain(&mut s), b"\x01\x03Hel\x80\x02lo");
    }

    #[test]
    fn a_whole_message_cannot_interrupt_a_fragmented_one() {
        let mut s = server();
        s.send_fragment(MessageKind::Binary, Bytes::from_static(b"a"), false)
            .unwrap();
        assert_eq!(
            s.send(Message::text("x")),
            Err(LocalError::FragmentOutOfOrder)
        );
        assert_eq!(
            s.send_fragment(MessageKind::Text, Bytes::new(), true),
            Err(LocalError::FragmentOutOfOrder)
        );
        s.send_ping(Bytes::new()).unwrap();
    }
}

mod section_5_5_control_frames {
    use super::*;

    #[test]
    fn ping_is_answered_with_the_same_payload() {
        let mut conn = server();
        let (events, _) = feed(&mut conn, &client_frame(0x89, b"Hello"));
        assert_eq!(events, vec![Event::Ping(Bytes::from_static(b"Hello"))]);
        assert_eq!(drain(&mut conn), b"\x8A\x05Hello");
    }

    #[test]
    fn auto_pong_can_be_turned_off() {
        let config = Config {
            auto_pong: false,
            ..Config::default()
        };
        let mut conn = Connection::server(config).unwrap();
        feed(&mut conn, &client_frame(0x89, b"x"));
        assert!(!conn.wants_write());
    }

    #[test]
    fn pong_is_reported() {
        let (events, _) = feed(&mut server(), &client_frame(0x8A, b"p"));
        assert_eq!(events, vec![Event::Pong(Bytes::from_static(b"p"))]);
    }

    #[test]
    fn sending_a_long_ping_is_refused() {
        let payload = Bytes::from(vec![0u8; 126]);
        assert_eq!(
            server().send_ping(payload),
            Err(LocalError::ControlPayloadTooLong(126))
        );
    }
}

mod section_7_closing {
    use super::*;

    #[test]
    fn peer_initiated_close_is_echoed_and_closes() {
        let mut conn = server();
        let (events, err) = feed(&mut conn, &client_frame(0x88, b"\x03\xe8bye"));
        assert_eq!(err, None);
        assert_eq!(
            events,
            vec![Event::Close(Some(CloseFrame::new(
                CloseCode::NORMAL,
                "bye"
            )))]
        );
        assert_eq!(drain(&mut conn), b"\x88\x02\x03\xe8");
        assert_eq!(conn.state(), State::Closed);
        assert_eq!(conn.initiator(), Some(Initiator::Remote));
        assert_eq!(conn.transport_action(), TransportAction::Close);
    }

    #[test]
    fn empty_close_is_answered_with_empty_close() {
        let mut conn = server();
        let (events, _) = feed(&mut conn, &client_frame(0x88, b""));
        assert_eq!(events, vec![Event::Close(None)]);
        assert_eq!(drain(&mut conn), b"\x88\x00");
    }

    #[test]
    fn local_close_waits_for_the_peer() {
        let mut conn = server();
        conn.send_close(Some(CloseFrame::new(CloseCode::GOING_AWAY, "")))
            .unwrap();
        assert_eq!(conn.state(), State::CloseSent);
        assert_eq!(conn.transport_action(), TransportAction::KeepOpen);
        assert_eq!(
            conn.send(Message::text("late")),
            Err(LocalError::SendAfterClose)
        );
        // Data frames still arrive while closing.
        let (events, _) = feed(&mut conn, &client_frame(0x81, b"in flight"));
        assert_eq!(events, vec![text("in flight")]);
        let (events, _) = feed(&mut conn, &client_frame(0x88, b"\x03\xe9"));
        assert_eq!(
            events,
            vec![Event::Close(Some(CloseFrame::new(
                CloseCode::GOING_AWAY,
                ""
            )))]
        );
        assert_eq!(conn.state(), State::Closed);
        assert_eq!(conn.initiator(), Some(Initiator::Local));
        assert_eq!(drain(&mut conn), b"\x88\x02\x03\xe9");
    }

    #[test]
    fn no_pong_after_our_close() {
        let mut conn = server();
        conn.send_close(None).unwrap();
        drain(&mut conn);
        feed(&mut conn, &client_frame(0x89, b"x"));
        assert!(!conn.wants_write());
    }

    #[test]
    fn client_waits_for_the_server_to_close_tcp() {
        let mut conn = client();
        feed(&mut conn, &server_frame(0x88, b"\x03\xe8"));
        assert_eq!(conn.transport_action(), TransportAction::AwaitPeerClose);
    }

    #[test]
    fn frames_after_close_are_ignored() {
        let mut bytes = client_frame(0x88, b"");
        bytes.extend(client_frame(0x81, b"ignored"));
        let (events, err) = feed(&mut server(), &bytes);
        assert_eq!((events, err), (vec![Event::Close(None)], None));
    }

    #[test]
    fn invalid_close_code_fails_with_1002() {
        let mut conn = server();
        let (_, err) = feed(&mut conn, &client_frame(0x88, b"\x03\xed"));
        assert_eq!(err, Some(ProtocolError::InvalidCloseCode(1005)));
        assert_eq!(&drain(&mut conn)[2..4], &[0x03, 0xEA]);
    }

    #[test]
    fn one_byte_close_payload_fails_with_1002() {
        let (_, err) = feed(&mut server(), &client_frame(0x88, b"\x03"));
        assert_eq!(err, Some(ProtocolError::InvalidClosePayload));
    }

    #[test]
    fn close_reason_must_be_utf8_1007() {
        let (_, err) = feed(&mut server(), &client_frame(0x88, b"\x03\xe8\xff"));
        assert_eq!(err.unwrap().close_code(), CloseCode::INVALID_PAYLOAD);
    }
}

mod section_8_1_utf8 {
    use super::*;

    #[test]
    fn invalid_text_fails_with_1007() {
        let mut conn = server();
        let (_, err) = feed(&mut conn, &client_frame(0x81, b"\xce\xba\xff"));
        assert_eq!(err, Some(ProtocolError::InvalidUtf8));
        assert_eq!(&drain(&mut conn)[2..4], &[0x03, 0xEF]);
    }

    #[test]
    fn fails_at_the_first_bad_fragment_before_the_message_ends() {
        let mut bytes = client_frame(0x01, "κό".as_bytes());
        bytes.extend(client_frame(0x00, b"\xf4\x90\x80\x80"));
        // The final fragment never comes: the failure must not wait for it.
        let (_, err) = feed(&mut server(), &bytes);
        assert_eq!(err, Some(ProtocolError::InvalidUtf8));
    }

    #[test]
    fn fails_inside_a_frame_that_has_not_fully_arrived() {
        let frame = client_frame(0x81, b"valid\xffand more bytes to come");
        let (_, err) = feed(&mut server(), &frame[..frame.len() - 10]);
        assert_eq!(err, Some(ProtocolError::InvalidUtf8));
    }

    #[test]
    fn code_point_split_across_fragments_is_valid() {
        let smile = "😀".as_bytes();
        let mut bytes = client_frame(0x01, &smile[..1]);
        bytes.extend(client_frame(0x00, &smile[1..3]));
        bytes.extend(client_frame(0x80, &smile[3..]));
        let (events, err) = feed(&mut server(), &bytes);
        assert_eq!((events, err), (vec![text("😀")], None));
    }

    #[test]
    fn incomplete_code_point_at_message_end_is_1007() {
        let (_, err) = feed(&mut server(), &client_frame(0x81, b"\xf0\x9f"));
        assert_eq!(err, Some(ProtocolError::InvalidUtf8));
    }
}

mod limits {
    use super::*;

    fn limited(max_frame: usize, max_message: usize, max_fragments: usize) -> Connection {
        let config = Config {
            max_frame_size: max_frame,
            max_message_size: max_message,
            max_fragments,
            ..Config::default()
        };
        Connection::server(config).unwrap()
    }

    #[test]
    fn frame_over_the_limit_is_1009_from_the_header_alone() {
        let frame = client_frame(0x82, &[0u8; 11]);
        let (_, err) = feed(&mut limited(10, 100, 10), &frame[..6]);
        assert_eq!(
            err,
            Some(ProtocolError::FrameTooLarge {
                size: 11,
                limit: 10
            })
        );
        assert_eq!(err.unwrap().close_code(), CloseCode::TOO_BIG);
    }

    #[test]
    fn message_over_the_limit_is_1009() {
        let mut bytes = client_frame(0x02, &[0u8; 8]);
        bytes.extend(client_frame(0x80, &[0u8; 8]));
        let (_, err) = feed(&mut limited(10, 15, 10), &bytes);
        assert_eq!(
            err,
            Some(ProtocolError::MessageTooLarge {
                size: 16,
                limit: 15
            })
        );
    }

    #[test]
    fn too_many_fragments_is_1008() {
        let mut bytes = client_frame(0x02, b"a");
        bytes.extend(client_frame(0x00, b"b"));
        bytes.extend(client_frame(0x80, b"c"));
        let (_, err) = feed(&mut limited(10, 100, 2), &bytes);
        assert_eq!(err, Some(ProtocolError::TooManyFragments { limit: 2 }));
        assert_eq!(err.unwrap().close_code(), CloseCode::POLICY);
    }

    #[test]
    fn zero_limits_are_rejected() {
        let config = Config {
            max_message_size: 0,
            ..Config::default()
        };
        assert!(Connection::server(config).is_err());
    }
}

mod zero_copy {
    use super::*;

    #[test]
    fn single_frame_payload_is_split_from_the_read_buffer() {
        let mut buf = BytesMut::from(&client_frame(0x82, &[9u8; 64])[..]);
        let base = buf.as_ptr() as usize;
        let Ok(Some(Event::Message(Message::Binary(data)))) = server().receive(&mut buf) else {
            panic!("expected a binary message");
        };
        assert_eq!(data.as_ptr() as usize, base + 6);
    }
}

/// The last frame of an unmasked stream, with its payload.
fn last_frame(mut bytes: &[u8]) -> (FrameHeader, &[u8]) {
    loop {
        let (header, len) = FrameHeader::parse(bytes).unwrap().unwrap();
        let end = len + header.payload_len as usize;
        if end == bytes.len() {
            return (header, &bytes[len..]);
        }
        bytes = &bytes[end..];
    }
}

/// Frames a client might send, as (first byte, payload).
fn any_client_frames() -> impl Strategy<Value = Vec<u8>> {
    let frame = prop_oneof![
        (Just(0x81u8), "\\PC{0,20}".prop_map(String::into_bytes)),
        (Just(0x82u8), proptest::collection::vec(any::<u8>(), 0..300)),
        (Just(0x89u8), proptest::collection::vec(any::<u8>(), 0..125)),
        (Just(0x8Au8), proptest::collection::vec(any::<u8>(), 0..10)),
        (Just(0x01u8), "\\PC{0,5}".prop_map(String::into_bytes)),
        (Just(0x00u8), "\\PC{0,5}".prop_map(String::into_bytes)),
        (Just(0x80u8), "\\PC{0,5}".prop_map(String::into_bytes)),
        (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..10)),
    ];
    proptest::collection::vec(frame, 0..12).prop_map(|frames| {
        frames
            .into_iter()
            .flat_map(|(first, payload)| client_frame(first, &payload))
            .collect()
    })
}

/// Feeds `bytes` in the given chunks; returns events, the error, and output.
fn feed_chunked(bytes: &[u8], cuts: &[usize]) -> (Vec<Event>, Option<ProtocolError>, Vec<u8>) {
    let mut conn = server();
    let mut buf = BytesMut::new();
    let mut events = Vec::new();
    let mut start = 0;
    let ends = cuts.iter().copied().chain(std::iter::once(bytes.len()));
    for end in ends {
        let end = end.clamp(start, bytes.len());
        buf.extend_from_slice(&bytes[start..end]);
        start = end;
        loop {
            match conn.receive(&mut buf) {
                Ok(Some(event)) => events.push(event),
                Ok(None) => break,
                Err(err) => return (events, Some(err), drain(&mut conn)),
            }
        }
    }
    (events, None, drain(&mut conn))
}

proptest! {
    #[test]
    fn any_split_of_the_input_yields_the_same_events(
        bytes in any_client_frames(),
        cuts in proptest::collection::vec(0usize..2000, 0..10),
    ) {
        let mut cuts = cuts;
        cuts.sort_unstable();
        prop_assert_eq!(feed_chunked(&bytes, &[]), feed_chunked(&bytes, &cuts));
    }

    #[test]
    fn byte_at_a_time_yields_the_same_events(bytes in any_client_frames()) {
        let cuts: Vec<usize> = (0..bytes.len()).collect();
        prop_assert_eq!(feed_chunked(&bytes, &[]), feed_chunked(&bytes, &cuts));
    }

    #[test]
    fn client_send_then_server_receive_round_trips(
        messages in proptest::collection::vec(
            prop_oneof![
                "\\PC{0,50}".prop_map(Message::text),
                proptest::collection::vec(any::<u8>(), 0..3000).prop_map(Message::from),
            ],
            0..8,
        )
    ) {
        let mut c = client();
        for message in &messages {
            c.send(message.clone()).unwrap();
        }
        let wire = drain(&mut c);
        let (events, err) = feed(&mut server(), &wire);
        prop_assert_eq!(err, None);
        let expected: Vec<Event> = messages.into_iter().map(Event::Message).collect();
        prop_assert_eq!(events, expected);
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_errors_carry_a_close_code(
        bytes in proptest::collection::vec(any::<u8>(), 0..200)
    ) {
        let (_, err, out) = feed_chunked(&bytes, &[3, 7, 20]);
        if let Some(err) = err {
            let code = err.close_code();
            prop_assert!(code.is_sendable());
            // The last frame we queued (after any pongs) is a close with that code.
            let (header, payload) = last_frame(&out);
            prop_assert_eq!(header.opcode, OpCode::Close);
            prop_assert_eq!(&payload[..2], &code.0.to_be_bytes()[..]);
        }
    }
}

mod rfc_7692_permessage_deflate;
