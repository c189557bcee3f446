//! The codec, against RFC 7692 section 7.2 and the attacks a decompressor
//! must survive.

use bytes::BytesMut;
use proptest::prelude::*;

use super::distances::inflate_with_distances;
use crate::deflate::*;

const HELLO: [u8; 7] = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
const MIB: usize = 1 << 20;

fn compress(compressor: &mut Compressor, payload: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    compressor.compress(payload, &mut out);
    out.to_vec()
}

/// Decompresses one message given as frame payloads.
fn decompress(
    decompressor: &mut Decompressor,
    frames: &[&[u8]],
    max_out: usize,
) -> Result<Vec<u8>, InflateError> {
    let mut out = BytesMut::new();
    for frame in frames {
        decompressor.decompress(frame, &mut out, max_out)?;
    }
    decompressor.finish_message(&mut out, max_out)?;
    Ok(out.to_vec())
}

/// Bytes that do not compress.
fn noise(len: usize) -> Vec<u8> {
    let mut seed = 0x9e37_79b9u32;
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            (seed >> 11) as u8
        })
        .collect()
}

/// Bytes that compress somewhat, with repeats at distances of 200 to 600
/// bytes: a compressor with a larger window than 256 bytes would use them.
fn repeats_at_distances(len: usize, mut seed: u32) -> Vec<u8> {
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    };
    let mut data = Vec::with_capacity(len + 600);
    while data.len() < len {
        let distance = 200 + (next() % 400) as usize;
        if data.len() > distance && next() % 2 == 0 {
            for _ in 0..(next() % 200) + 3 {
                data.push(data[data.len() - distance]);
            }
        } else {
            data.extend((0..next() % 64).map(|_| b'a' + (next() % 6) as u8));
        }
    }
    data
}

/// Section 7.2.3: the RFC's examples, byte for byte.
mod section_7_2_3_examples {
    use super::*;

    #[test]
    fn one_block_hello_encodes_and_decodes() {
        // 7.2.3.1, at our default level and at zlib's.
        for level in [DeflateConfig::default().level, 6] {
            let mut compressor = Compressor::new(level, 15, false);
            assert_eq!(compress(&mut compressor, b"Hello"), HELLO);
        }
        let mut decompressor = Decompressor::new(15, false);
        assert_eq!(
            decompress(&mut decompressor, &[&HELLO], MIB),
            Ok(b"Hello".to_vec())
        );
    }

    #[test]
    fn one_message_in_two_frames() {
        // 7.2.3.1: the same payload split over a text frame and a continuation.
        let mut decompressor = Decompressor::new(15, false);
        let frames: [&[u8]; 2] = [&HELLO[..3], &HELLO[3..]];
        assert_eq!(
            decompress(&mut decompressor, &frames, MIB),
            Ok(b"Hello".to_vec())
        );
    }

    #[test]
    fn sharing_the_window_shrinks_the_second_hello() {
        // 7.2.3.2: with context takeover the second "Hello" is a back-reference.
        let mut compressor = Compressor::new(6, 15, false);
        assert_eq!(compress(&mut compressor, b"Hello"), HELLO);
        assert_eq!(
            compress(&mut compressor, b"Hello"),
            [0xf2, 0x00, 0x11, 0x00, 0x00]
        );
        let mut decompressor = Decompressor::new(15, false);
        for payload in [&HELLO[..], &[0xf2, 0x00, 0x11, 0x00, 0x00]] {
            assert_eq!(
                decompress(&mut decompressor, &[payload], MIB),
                Ok(b"Hello".to_vec())
            );
        }
    }

    #[test]
    fn without_context_takeover_every_hello_is_the_same() {
        // 7.2.3.2's first case: "Hello" twice, each compressed alone.
        let mut compressor = Compressor::new(6, 15, true);
        assert_eq!(compress(&mut compressor, b"Hello"), HELLO);
        assert_eq!(compress(&mut compressor, b"Hello"), HELLO);
        let mut decompressor = Decompressor::new(15, true);
        for _ in 0..2 {
            assert_eq!(
                decompress(&mut decompressor, &[&HELLO], MIB),
                Ok(b"Hello".to_vec())
            );
        }
    }

    #[test]
    fn stored_block_decodes() {
        // 7.2.3.3: "Hello" in a DEFLATE block with no compression.
        let payload = [
            0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
        ];
        let mut decompressor = Decompressor::new(15, false);
        assert_eq!(
            decompress(&mut decompressor, &[&payload], MIB),
            Ok(b"Hello".to_vec())
        );
    }

    #[test]
    fn final_block_decodes_and_the_next_message_starts_afresh() {
        // 7.2.3.4: BFINAL set; the trailing 0x00 (and our trailer) follow
        // the end of the stream and are ignored.
        let payload = [0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00];
        let mut decompressor = Decompressor::new(15, false);
        assert_eq!(
            decompress(&mut decompressor, &[&payload], MIB),
            Ok(b"Hello".to_vec())
        );
        assert_eq!(
            decompress(&mut decompressor, &[&payload], MIB),
            Ok(b"Hello".to_vec())
        );
        assert_eq!(
            decompress(&mut decompressor, &[&HELLO], MIB),
            Ok(b"Hello".to_vec())
        );
    }

    #[test]
    fn two_blocks_in_one_message() {
        // 7.2.3.5: "He" and "llo" in two blocks, with a sync flush between.
        let payload = [
            0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00,
        ];
        let mut decompressor = Decompressor::new(15, false);
        assert_eq!(
            decompress(&mut decompressor, &[&payload], MIB),
            Ok(b"Hello".to_vec())
        );
    }

    #[test]
    fn empty_message_is_one_zero_byte() {
        // 7.2.3.6: an empty DEFLATE block, 0x00 once the trailer is gone.
        for reset in [false, true] {
            let mut compressor = Compressor::new(6, 15, reset);
            assert_eq!(compress(&mut compressor, b""), [0x00]);
            compress(&mut compressor, b"not empty");
            assert_eq!(compress(&mut compressor, b""), [0x00]);
        }
        let mut decompressor = Decompressor::new(15, false);
        assert_eq!(
            decompress(&mut decompressor, &[&[0x00]], MIB),
            Ok(Vec::new())
        );
        // A frame with no payload at all (an empty final fragment) is fine too.
        assert_eq!(
            decompress(&mut decompressor, &[&HELLO, &[]], MIB),
            Ok(b"Hello".to_vec())
        );
    }
}

mod compressing {
    use super::*;

    #[test]
    fn context_takeover_shrinks_a_repeated_message() {
        let message = noise(2000);
        let mut compressor = Compressor::new(3, 15, false);
        let first = compress(&mut compressor, &message);
        let second = compress(&mut compressor, &message);
        assert!(
            second.len() * 20 < first.len(),
            "{} vs {}",
            second.len(),
            first.len()
        );
        let mut decompressor = Decompressor::new(15, false);
        for payload in [&first, &second] {
            assert_eq!(
                decompress(&mut decompressor, &[payload], MIB),
                Ok(message.clone())
            );
        }
    }

    #[test]
    fn no_context_takeover_output_can_be_prepared_once() {
        let message = repeats_at_distances(5000, 11);
        let mut compressor = Compressor::new(3, 15, true);
        let first = compress(&mut compressor, &message);
        compress(&mut compressor, b"something else in between");
        assert_eq!(compress(&mut compressor, &message), first);
        // And a fresh compressor agrees: the bytes depend on the message only.
        assert_eq!(compress(&mut Compressor::new(3, 15, true), &message), first);
    }

    #[test]
    fn reset_drops_the_context() {
        let mut compressor = Compressor::new(6, 15, false);
        compress(&mut compressor, b"Hello");
        compressor.reset();
        assert_eq!(compress(&mut compressor, b"Hello"), HELLO);
    }

    #[test]
    fn incompressible_data_grows_a_little_and_round_trips() {
        let noise = noise(200_000);
        let mut compressor = Compressor::new(9, 15, false);
        let payload = compress(&mut compressor, &noise);
        assert!(payload.len() > noise.len() && payload.len() < noise.len() + 100);
        let mut decompressor = Decompressor::new(15, false);
        assert!(decompress(&mut decompressor, &[&payload], MIB) == Ok(noise));
    }

    #[test]
    fn appends_after_what_the_buffer_holds() {
        let mut out = BytesMut::from(&b"header"[..]);
        Compressor::new(6, 15, false).compress(b"Hello", &mut out);
        assert_eq!(&out[..6], b"header");
        assert_eq!(&out[6..], HELLO);
    }

    #[test]
    fn level_zero_stores() {
        let mut compressor = Compressor::new(0, 15, false);
        let payload = compress(&mut compressor, b"Hello");
        assert_eq!(
            payload,
            [0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00]
        );
    }
}

/// A peer may demand a window of 8 bits; zlib cannot produce one, so we
/// compress with 9 and rely on zlib's maximum match distance (window − 262).
mod window_of_eight_bits {
    use super::*;

    #[test]
    fn no_level_reaches_back_more_than_256_bytes() {
        let data = repeats_at_distances(60_000, 3);
        for level in 0..=9 {
            for reset in [false, true] {
                let mut compressor = Compressor::new(level, 8, reset);
                let mut stream = Vec::new();
                for message in data.chunks(7_000) {
                    stream.extend(compress(&mut compressor, message));
                    stream.extend(TRAILER);
                    if reset {
                        let (decoded, distance) = inflate_with_distances(&stream);
                        assert_eq!(decoded, message, "level {level}");
                        assert!(distance <= 250, "level {level}: distance {distance}");
                        stream.clear();
                    }
                }
                if !reset {
                    let (decoded, distance) = inflate_with_distances(&stream);
                    assert_eq!(decoded, data, "level {level}");
                    assert!(distance <= 250, "level {level}: distance {distance}");
                }
            }
        }
    }

    #[test]
    fn larger_windows_do_reach_further() {
        // The check above is not vacuous: the same data at 15 bits uses
        // distances an 8-bit peer could not follow.
        let data = repeats_at_distances(60_000, 3);
        let mut stream = compress(&mut Compressor::new(6, 15, false), &data);
        stream.extend(TRAILER);
        let (decoded, distance) = inflate_with_distances(&stream);
        assert_eq!(decoded, data);
        assert!(distance > 256, "{distance}");
    }

    #[test]
    fn a_window_of_nine_survives_reset() {
        let data = repeats_at_distances(20_000, 5);
        let mut compressor = Compressor::new(6, 9, false);
        compress(&mut compressor, &data);
        compressor.reset();
        let mut stream = compress(&mut compressor, &data);
        stream.extend(TRAILER);
        let (_, distance) = inflate_with_distances(&stream);
        assert!(distance <= 250, "{distance}");
    }

    #[test]
    fn decompressing_eight_accepts_what_zlib_compresses_as_eight() {
        let data = repeats_at_distances(20_000, 9);
        let mut compressor = Compressor::new(6, 8, false);
        let mut decompressor = Decompressor::new(8, false);
        for message in data.chunks(3_000) {
            let payload = compress(&mut compressor, message);
            assert_eq!(
                decompress(&mut decompressor, &[&payload], MIB),
                Ok(message.to_vec())
            );
        }
    }
}

mod decompression_limits {
    use super::*;

    /// DEFLATE that inflates to `zeros` zero bytes, about 1,000 times smaller.
    fn zero_bomb(zeros: usize) -> Vec<u8> {
        compress(&mut Compressor::new(9, 15, true), &vec![0; zeros])
    }

    #[test]
    fn a_bomb_stops_at_the_limit_with_bounded_memory() {
        let bomb = zero_bomb(MIB + MIB / 16);
        assert!(bomb.len() < 1200, "{}", bomb.len());
        let mut decompressor = Decompressor::new(15, true);
        let mut out = BytesMut::new();
        let result = decompressor.decompress(&bomb, &mut out, MIB);
        assert_eq!(result, Err(InflateError::TooBig { limit: MIB }));
        assert!(out.capacity() <= MIB + 64 * 1024, "{}", out.capacity());
        assert_eq!(InflateError::TooBig { limit: 1 }.close_code().0, 1009);
    }

    #[test]
    fn the_bomb_fed_in_tiny_frames_stops_too() {
        let bomb = zero_bomb(2 * MIB);
        let mut decompressor = Decompressor::new(15, true);
        let mut out = BytesMut::new();
        let result = bomb
            .chunks(7)
            .try_for_each(|frame| decompressor.decompress(frame, &mut out, MIB))
            .and_then(|()| decompressor.finish_message(&mut out, MIB));
        assert_eq!(result, Err(InflateError::TooBig { limit: MIB }));
        assert!(out.capacity() <= MIB + 64 * 1024, "{}", out.capacity());
    }

    #[test]
    fn the_limit_is_exact() {
        let message = vec![7u8; 100_000];
        let payload = compress(&mut Compressor::new(6, 15, true), &message);
        let mut decompressor = Decompressor::new(15, true);
        assert_eq!(
            decompress(&mut decompressor, &[&payload], 100_000),
            Ok(message)
        );
        let too_big = decompress(&mut decompressor, &[&payload], 99_999);
        assert_eq!(too_big, Err(InflateError::TooBig { limit: 99_999 }));
    }

    #[test]
    fn the_limit_counts_what_the_buffer_already_holds() {
        let mut decompressor = Decompressor::new(15, false);
        let mut out = BytesMut::from(&[0u8; 10][..]);
        assert_eq!(
            decompressor.decompress(&HELLO, &mut out, 12),
            Err(InflateError::TooBig { limit: 12 })
        );
    }

    #[test]
    fn corrupt_data_is_refused() {
        // BTYPE 11 is reserved; a stored block's NLEN must be !LEN.
        let cases: [&[u8]; 3] = [
            &[0xff, 0xff],
            &[0x00, 0x05, 0x00, 0x00, 0x00, 1, 2, 3, 4, 5],
            &[0x07],
        ];
        for payload in cases {
            let mut decompressor = Decompressor::new(15, false);
            assert_eq!(
                decompress(&mut decompressor, &[payload], MIB),
                Err(InflateError::Corrupt),
                "{payload:02x?}"
            );
        }
        assert_eq!(InflateError::Corrupt.close_code().0, 1007);
    }

    #[test]
    fn reset_recovers_after_an_error() {
        let mut decompressor = Decompressor::new(15, false);
        assert!(decompress(&mut decompressor, &[&[0xff, 0xff]], MIB).is_err());
        decompressor.reset();
        assert_eq!(
            decompress(&mut decompressor, &[&HELLO], MIB),
            Ok(b"Hello".to_vec())
        );
    }
}

mod properties {
    use super::*;

    /// Messages that compress a little or a lot, with some empty ones.
    fn messages() -> impl Strategy<Value = Vec<Vec<u8>>> {
        let message = prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..600),
            proptest::collection::vec(0u8..4, 0..3000),
            (any::<u32>(), 0usize..5000)
                .prop_map(|(seed, len)| repeats_at_distances(len, seed | 1)),
        ];
        proptest::collection::vec(message, 1..6)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn round_trip_in_any_frames(
            messages in messages(),
            window_bits in 8u8..=15,
            level in 0u32..=9,
            reset in any::<bool>(),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..5),
        ) {
            let mut compressor = Compressor::new(level, window_bits, reset);
            let mut decompressor = Decompressor::new(window_bits, reset);
            for message in &messages {
                let payload = compress(&mut compressor, message);
                let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(payload.len() + 1)).collect();
                cuts.sort_unstable();
                cuts.push(payload.len());
                let mut frames = Vec::new();
                let mut from = 0;
                for to in cuts {
                    frames.push(&payload[from..to]);
                    from = to;
                }
                prop_assert_eq!(decompress(&mut decompressor, &frames, MIB), Ok(message.clone()));
            }
        }

        #[test]
        fn garbage_never_panics(payload in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut decompressor = Decompressor::new(15, false);
            let _ = decompress(&mut decompressor, &[&payload], 4096);
        }
    }
}
