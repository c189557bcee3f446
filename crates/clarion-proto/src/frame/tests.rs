//! RFC 6455 section 5.2 (base framing) and 5.7 (examples), byte by byte.

use proptest::prelude::*;

use super::*;

fn parse(bytes: &[u8]) -> Result<Option<(FrameHeader, usize)>, ProtocolError> {
    FrameHeader::parse(bytes)
}

fn encode(header: &FrameHeader) -> Vec<u8> {
    let mut out = Vec::new();
    header.encode(&mut out);
    out
}

mod section_5_7_examples {
    use super::*;

    #[test]
    fn single_frame_unmasked_text() {
        // "Hello", unmasked.
        let (header, len) = parse(&[0x81, 0x05, 0x48, 0x65]).unwrap().unwrap();
        assert_eq!(len, 2);
        assert_eq!(header, FrameHeader::new(OpCode::Text, 5));
    }

    #[test]
    fn single_frame_masked_text() {
        let bytes = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let (header, len) = parse(&bytes).unwrap().unwrap();
        assert_eq!(len, 6);
        assert_eq!(header.mask, Some([0x37, 0xfa, 0x21, 0x3d]));
        assert_eq!(header.payload_len, 5);
    }

    #[test]
    fn fragmented_unmasked_text() {
        let (first, _) = parse(&[0x01, 0x03, b'H', b'e', b'l']).unwrap().unwrap();
        assert!(!first.fin);
        assert_eq!(first.opcode, OpCode::Text);
        let (last, _) = parse(&[0x80, 0x02, b'l', b'o']).unwrap().unwrap();
        assert!(last.fin);
        assert_eq!(last.opcode, OpCode::Continuation);
    }

    #[test]
    fn unmasked_ping() {
        let (header, _) = parse(&[0x89, 0x05]).unwrap().unwrap();
        assert_eq!(header.opcode, OpCode::Ping);
    }

    #[test]
    fn binary_256_bytes_uses_16_bit_length() {
        let (header, len) = parse(&[0x82, 0x7E, 0x01, 0x00]).unwrap().unwrap();
        assert_eq!((header.payload_len, len), (256, 4));
        assert_eq!(encode(&header), vec![0x82, 0x7E, 0x01, 0x00]);
    }

    #[test]
    fn binary_64_kib_uses_64_bit_length() {
        let bytes = [0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00];
        let (header, len) = parse(&bytes).unwrap().unwrap();
        assert_eq!((header.payload_len, len), (65536, 10));
        assert_eq!(encode(&header), bytes.to_vec());
    }
}

mod section_5_2_base_framing {
    use super::*;

    #[test]
    fn needs_two_bytes() {
        assert_eq!(parse(&[]), Ok(None));
        assert_eq!(parse(&[0x81]), Ok(None));
    }

    #[test]
    fn needs_the_extended_length() {
        assert_eq!(parse(&[0x82, 0x7E, 0x01]), Ok(None));
        assert_eq!(parse(&[0x82, 0x7F, 0, 0, 0, 0, 0, 0]), Ok(None));
    }

    #[test]
    fn needs_the_mask_key() {
        assert_eq!(parse(&[0x81, 0x85, 1, 2, 3]), Ok(None));
    }

    #[test]
    fn reserved_opcodes_are_protocol_errors() {
        for op in [3u8, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF] {
            assert_eq!(
                parse(&[0x80 | op, 0]),
                Err(ProtocolError::ReservedOpcode(op))
            );
        }
    }

    #[test]
    fn most_significant_bit_of_64_bit_length_must_be_zero() {
        let bytes = [0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(parse(&bytes), Err(ProtocolError::InvalidPayloadLength));
    }

    #[test]
    fn reserved_bits_are_reported_not_judged() {
        let (header, _) = parse(&[0xF1, 0x00]).unwrap().unwrap();
        assert!(header.rsv1 && header.rsv2 && header.rsv3);
    }

    #[test]
    fn a_non_minimal_length_is_accepted_on_receive() {
        // Senders MUST use the minimal encoding; receivers are lenient here.
        let (header, len) = parse(&[0x82, 0x7E, 0x00, 0x05]).unwrap().unwrap();
        assert_eq!((header.payload_len, len), (5, 4));
    }
}

mod section_5_5_control_frames {
    use super::*;

    #[test]
    fn control_frames_must_not_be_fragmented() {
        assert_eq!(
            parse(&[0x09, 0x00]),
            Err(ProtocolError::FragmentedControlFrame)
        );
    }

    #[test]
    fn control_payload_of_125_is_allowed() {
        assert!(parse(&[0x89, 125]).unwrap().is_some());
    }

    #[test]
    fn control_payload_over_125_is_a_protocol_error() {
        assert_eq!(
            parse(&[0x89, 0x7E, 0x00, 0x7E]),
            Err(ProtocolError::ControlFrameTooLong(126))
        );
    }
}

fn any_header() -> impl Strategy<Value = FrameHeader> {
    let opcode = prop_oneof![
        Just(OpCode::Continuation),
        Just(OpCode::Text),
        Just(OpCode::Binary),
        Just(OpCode::Close),
        Just(OpCode::Ping),
        Just(OpCode::Pong),
    ];
    let len = prop_oneof![0u64..=125, 126u64..=0xFFFF, 0x1_0000u64..=(u64::MAX >> 1)];
    (
        any::<[bool; 4]>(),
        opcode,
        proptest::option::of(any::<[u8; 4]>()),
        len,
    )
        .prop_map(|([fin, rsv1, rsv2, rsv3], opcode, mask, payload_len)| {
            let control = opcode.is_control();
            FrameHeader {
                fin: fin || control,
                rsv1,
                rsv2,
                rsv3,
                opcode,
                mask,
                payload_len: if control {
                    payload_len % 126
                } else {
                    payload_len
                },
            }
        })
}

proptest! {
    #[test]
    fn encode_then_parse_round_trips(header in any_header()) {
        let bytes = encode(&header);
        prop_assert_eq!(bytes.len(), header.encoded_len());
        prop_assert_eq!(parse(&bytes), Ok(Some((header, bytes.len()))));
        for cut in 0..bytes.len() {
            prop_assert_eq!(parse(&bytes[..cut]), Ok(None));
        }
    }

    #[test]
    fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..20)) {
        let _ = parse(&bytes);
    }
}
