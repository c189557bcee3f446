//! Masking (RFC 6455 section 5.3): XOR with a 4-byte key, cycling.
//!
//! The portable path works a machine word at a time; LLVM vectorises it to
//! SSE2 on x86_64 and NEON on aarch64 (measured ~78 GB/s on 64 KiB). On
//! x86_64 CPUs with AVX2 the same loop is compiled a second time for AVX2
//! and picked at run time for buffers of 128 bytes and more (~143 GB/s;
//! `docs/performance.md`). `offset` lets a payload be unmasked in pieces as
//! it arrives: byte `i` of the piece is byte `offset + i` of the frame.

/// Below this size the AVX2 path is not worth the feature check.
#[cfg(target_arch = "x86_64")]
const AVX2_MIN_LEN: usize = 128;

/// XORs `buf` with `key`, as if `buf` started at byte `offset` of the payload.
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    #[cfg(target_arch = "x86_64")]
    if buf.len() >= AVX2_MIN_LEN && std::arch::is_x86_feature_detected!("avx2") {
        #[allow(unsafe_code)]
        // SAFETY: `apply_mask_avx2` only needs AVX2, which the CPU has:
        // checked on the line above.
        unsafe {
            apply_mask_avx2(buf, key, offset)
        };
        return;
    }
    apply_mask_words(buf, key, offset);
}

/// The word loop compiled with AVX2 enabled.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn apply_mask_avx2(buf: &mut [u8], key: [u8; 4], offset: usize) {
    apply_mask_words(buf, key, offset);
}

/// The portable path: XOR a machine word at a time.
#[inline(always)]
pub fn apply_mask_words(buf: &mut [u8], key: [u8; 4], offset: usize) {
    let key = rotate_key(key, offset);
    let word = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(bytes) ^ word).to_ne_bytes());
    }
    // A chunk of 8 is two whole key periods, so the tail starts at key[0].
    apply_mask_scalar(chunks.into_remainder(), key, 0);
}

/// The byte-at-a-time reference implementation, kept for tests and tails.
pub fn apply_mask_scalar(buf: &mut [u8], key: [u8; 4], offset: usize) {
    for (i, byte) in buf.iter_mut().enumerate() {
        *byte ^= key[(offset + i) & 3];
    }
}

fn rotate_key(key: [u8; 4], offset: usize) -> [u8; 4] {
    let mut rotated = key;
    rotated.rotate_left(offset & 3);
    rotated
}

#[cfg(test)]
mod tests {
    //! Section 5.3: `transformed[i] = original[i] XOR key[i mod 4]`.
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn rfc_example_hello() {
        // Section 5.7: masked "Hello".
        let mut payload = [0x7f, 0x9f, 0x4d, 0x51, 0x58];
        apply_mask(&mut payload, [0x37, 0xfa, 0x21, 0x3d], 0);
        assert_eq!(&payload, b"Hello");
    }

    #[test]
    fn masking_twice_restores_the_input() {
        let original: Vec<u8> = (0..=255).collect();
        let mut data = original.clone();
        apply_mask(&mut data, [1, 2, 3, 4], 0);
        assert_ne!(data, original);
        apply_mask(&mut data, [1, 2, 3, 4], 0);
        assert_eq!(data, original);
    }

    proptest! {
        #[test]
        fn fast_paths_match_the_scalar_path(
            data in proptest::collection::vec(any::<u8>(), 0..1200),
            key in any::<[u8; 4]>(),
            offset in 0usize..16,
            start in 0usize..8,
        ) {
            let start = start.min(data.len());
            let mut fast = data.clone();
            let mut words = data.clone();
            let mut slow = data;
            apply_mask(&mut fast[start..], key, offset);
            apply_mask_words(&mut words[start..], key, offset);
            apply_mask_scalar(&mut slow[start..], key, offset);
            prop_assert_eq!(&fast, &slow);
            prop_assert_eq!(&words, &slow);
        }

        #[test]
        fn masking_in_pieces_equals_masking_whole(
            data in proptest::collection::vec(any::<u8>(), 0..200),
            key in any::<[u8; 4]>(),
            cut in 0usize..200,
        ) {
            let cut = cut.min(data.len());
            let mut whole = data.clone();
            apply_mask(&mut whole, key, 0);
            let mut pieces = data;
            let (head, tail) = pieces.split_at_mut(cut);
            apply_mask(head, key, 0);
            apply_mask(tail, key, cut);
            prop_assert_eq!(whole, pieces);
        }
    }
}
