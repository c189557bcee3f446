//! RFC 7692 permessage-deflate on the connection.

use super::*;
use crate::deflate::{DeflateConfig, DeflateParams};

fn with_deflate(mut conn: Connection) -> Connection {
    conn.enable_deflate(&DeflateParams::default(), &DeflateConfig::default());
    conn
}

fn limited_server(max_message_size: usize) -> Connection {
    let config = Config {
        max_message_size,
        max_frame_size: max_message_size,
        ..Config::default()
    };
    with_deflate(Connection::server(config).unwrap())
}

fn compressed(data: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    crate::deflate::Compressor::new(6, 15, true).compress(data, &mut out);
    out.to_vec()
}

#[test]
fn section_7_2_3_1_a_message_compressed_in_one_frame() {
    let frame = client_frame(0xC1, &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]);
    let (events, err) = feed(&mut with_deflate(server()), &frame);
    assert_eq!((events, err), (vec![text("Hello")], None));
}

#[test]
fn section_7_2_3_1_a_compressed_message_in_two_fragments() {
    let mut bytes = client_frame(0x41, &[0xf2, 0x48, 0xcd]);
    bytes.extend(client_frame(0x80, &[0xc9, 0xc9, 0x07, 0x00]));
    let (events, err) = feed(&mut with_deflate(server()), &bytes);
    assert_eq!((events, err), (vec![text("Hello")], None));
}

#[test]
fn section_7_2_3_2_context_takeover_across_messages() {
    // The second "Hello" refers back to the first one.
    let mut bytes = client_frame(0xC1, &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]);
    bytes.extend(client_frame(0xC1, &[0xf2, 0x00, 0x11, 0x00, 0x00]));
    let (events, err) = feed(&mut with_deflate(server()), &bytes);
    assert_eq!((events, err), (vec![text("Hello"), text("Hello")], None));
}

#[test]
fn section_6_1_rsv1_on_a_continuation_frame_is_1002() {
    let mut bytes = client_frame(0x41, &[0xf2, 0x48, 0xcd]);
    bytes.extend(client_frame(0xC0, &[0xc9, 0xc9, 0x07, 0x00]));
    let (_, err) = feed(&mut with_deflate(server()), &bytes);
    assert_eq!(err, Some(ProtocolError::InvalidCompressionBit));
}

#[test]
fn section_6_1_compressed_control_frames_are_1002() {
    let (_, err) = feed(&mut with_deflate(server()), &client_frame(0xC9, b""));
    assert_eq!(err, Some(ProtocolError::InvalidCompressionBit));
}

#[test]
fn uncompressed_messages_still_pass_when_deflate_is_on() {
    let (events, err) = feed(&mut with_deflate(server()), &client_frame(0x81, b"plain"));
    assert_eq!((events, err), (vec![text("plain")], None));
}

#[test]
fn corrupt_deflate_data_is_1007() {
    let (_, err) = feed(&mut with_deflate(server()), &client_frame(0xC1, &[0xff; 8]));
    assert_eq!(err, Some(ProtocolError::InvalidCompressedData));
    assert_eq!(err.unwrap().close_code(), CloseCode::INVALID_PAYLOAD);
}

#[test]
fn a_decompression_bomb_is_stopped_at_the_message_limit_with_1009() {
    // 4 MiB of zeros compress to about 4 KiB.
    let bomb = compressed(&vec![0u8; 4 << 20]);
    assert!(bomb.len() < 8 * 1024, "{} bytes", bomb.len());
    let mut conn = limited_server(1 << 20);
    let (events, err) = feed(&mut conn, &client_frame(0xC2, &bomb));
    assert!(events.is_empty());
    assert_eq!(
        err,
        Some(ProtocolError::DecompressedTooLarge { limit: 1 << 20 })
    );
    assert_eq!(&drain(&mut conn)[2..4], &[0x03, 0xF1]);
}

#[test]
fn an_extreme_ratio_is_refused_past_the_grace_size() {
    let bomb = compressed(&vec![0u8; 4 << 20]);
    let mut conn = limited_server(64 << 20);
    let (_, err) = feed(&mut conn, &client_frame(0xC2, &bomb));
    assert_eq!(
        err,
        Some(ProtocolError::CompressionRatioTooHigh { limit: 256 })
    );
    assert_eq!(err.unwrap().close_code(), CloseCode::TOO_BIG);
}

#[test]
fn invalid_utf8_inside_compressed_text_is_1007() {
    let frame = client_frame(0xC1, &compressed(b"valid then \xff invalid"));
    let (_, err) = feed(&mut with_deflate(server()), &frame);
    assert_eq!(err, Some(ProtocolError::InvalidUtf8));
}

#[test]
fn messages_under_min_size_go_out_uncompressed() {
    let mut s = with_deflate(server());
    s.send(Message::text("tiny")).unwrap();
    assert_eq!(drain(&mut s), b"\x81\x04tiny");
    s.send(Message::text("x".repeat(100))).unwrap();
    let wire = drain(&mut s);
    assert_eq!(wire[0], 0xC1, "RSV1 set on a compressed message");
    assert!(wire.len() < 100);
}

#[test]
fn a_prepared_message_then_ordinary_ones_decode_in_order() {
    // Context takeover on both sides: after the shared (independently
    // compressed) frame, our compressor must not refer to history the
    // peer's window no longer lines up with.
    let mut s = with_deflate(server());
    let mut c = with_deflate(client());
    let body = "the same JSON payload for every subscriber ".repeat(4);
    s.send(Message::text(body.clone())).unwrap();
    let prepared = PreparedMessage::new(Message::text(body.clone()), 3);
    s.send_prepared(&prepared).unwrap();
    s.send(Message::text(body.clone())).unwrap();
    s.send_prepared(&PreparedMessage::new(Message::text("small"), 3))
        .unwrap();
    let wire = drain(&mut s);
    let (events, err) = feed(&mut c, &wire);
    assert_eq!(err, None);
    let expected = [body.as_str(), &body, &body, "small"].map(text).to_vec();
    assert_eq!(events, expected);
}

#[test]
fn prepared_frames_are_shared_not_copied() {
    let prepared = PreparedMessage::new(Message::binary(vec![7u8; 4000]), 3);
    let mut a = server();
    let mut b = server();
    a.send_prepared(&prepared).unwrap();
    b.send_prepared(&prepared).unwrap();
    let first = a.output().chunk().as_ptr();
    assert_eq!(first, b.output().chunk().as_ptr());
}

proptest! {
    #[test]
    fn compressed_stream_split_anywhere_yields_the_same_messages(
        messages in proptest::collection::vec("\\PC{0,200}".prop_map(Message::text), 1..6),
        cuts in proptest::collection::vec(0usize..3000, 0..12),
    ) {
        let mut c = with_deflate(client());
        for message in &messages {
            c.send(message.clone()).unwrap();
        }
        let wire = drain(&mut c);
        let mut cuts = cuts;
        cuts.sort_unstable();
        let mut s = with_deflate(server());
        let mut buf = BytesMut::new();
        let mut events = Vec::new();
        let mut start = 0;
        for end in cuts.into_iter().chain(std::iter::once(wire.len())) {
            let end = end.clamp(start, wire.len());
            buf.extend_from_slice(&wire[start..end]);
            start = end;
            while let Some(event) = s.receive(&mut buf).unwrap() {
                events.push(event);
            }
        }
        let expected: Vec<Event> = messages.into_iter().map(Event::Message).collect();
        prop_assert_eq!(events, expected);
    }

    #[test]
    fn compressed_round_trips_both_ways(
        messages in proptest::collection::vec(
            prop_oneof![
                "\\PC{0,300}".prop_map(Message::text),
                proptest::collection::vec(any::<u8>(), 0..3000).prop_map(Message::from),
                Just(Message::text("repeat ".repeat(50))),
            ],
            0..8,
        ),
        server_reset in any::<bool>(),
        client_reset in any::<bool>(),
    ) {
        let config = DeflateConfig {
            server_no_context_takeover: server_reset,
            client_no_context_takeover: client_reset,
            ..DeflateConfig::default()
        };
        let offers = crate::deflate::parse_extensions([crate::deflate::client_offer(&config).unwrap().as_str()]).unwrap();
        let (params, answer) = crate::deflate::server_accept(&config, &offers).unwrap();
        let client_params = crate::deflate::client_accept(&config, &answer).unwrap();
        let mut s = server();
        s.enable_deflate(&params, &config);
        let mut c = client();
        c.enable_deflate(&client_params, &config);
        for message in &messages {
            c.send(message.clone()).unwrap();
            s.send(message.clone()).unwrap();
        }
        let expected: Vec<Event> = messages.into_iter().map(Event::Message).collect();
        let (events, err) = feed(&mut s, &drain(&mut c));
        prop_assert_eq!(err, None);
        prop_assert_eq!(&events, &expected);
        let (events, err) = feed(&mut c, &drain(&mut s));
        prop_assert_eq!(err, None);
        prop_assert_eq!(&events, &expected);
    }
}
