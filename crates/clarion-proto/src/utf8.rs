//! Incremental UTF-8 validation that fails at the first invalid byte, even
//! when a code point is split across frames or reads (RFC 6455 section 8.1).

use simdutf8::compat::from_utf8;

/// Validates a text message piece by piece.
///
/// A code point cut by a piece boundary is carried over (at most 3 bytes).
/// A prefix that can never become valid (say `F4 90`, past U+10FFFF) fails
/// at once instead of waiting for the next piece.
#[derive(Clone, Debug, Default)]
pub struct Utf8Validator {
    pending: [u8; 4],
    pending_len: u8,
}

/// The text was not valid UTF-8.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidUtf8;

impl Utf8Validator {
    /// A validator at the start of a message.
    pub fn new() -> Self {
        Self::default()
    }

    /// Validates the next piece of the message.
    pub fn feed(&mut self, mut piece: &[u8]) -> Result<(), InvalidUtf8> {
        if self.pending_len > 0 {
            piece = self.complete_pending(piece)?;
        }
        match from_utf8(piece) {
            Ok(_) => Ok(()),
            Err(err) if err.error_len().is_none() => {
                // An incomplete but so-far-valid code point ends the piece.
                let tail = &piece[err.valid_up_to()..];
                self.pending[..tail.len()].copy_from_slice(tail);
                self.pending_len = tail.len() as u8;
                Ok(())
            }
            Err(_) => Err(InvalidUtf8),
        }
    }

    /// Ends the message: a code point left incomplete is invalid.
    pub fn finish(&mut self) -> Result<(), InvalidUtf8> {
        let complete = self.pending_len == 0;
        self.pending_len = 0;
        if complete {
            Ok(())
        } else {
            Err(InvalidUtf8)
        }
    }

    /// Whether a code point is waiting for its remaining bytes.
    pub fn is_mid_code_point(&self) -> bool {
        self.pending_len > 0
    }

    /// Completes the carried-over code point from the front of `piece` and
    /// returns the rest of `piece`.
    fn complete_pending<'a>(&mut self, piece: &'a [u8]) -> Result<&'a [u8], InvalidUtf8> {
        let have = usize::from(self.pending_len);
        let need = sequence_len(self.pending[0]).ok_or(InvalidUtf8)?;
        let take = (need - have).min(piece.len());
        let mut buf = self.pending;
        buf[have..have + take].copy_from_slice(&piece[..take]);
        let candidate = &buf[..have + take];
        match from_utf8(candidate) {
            Ok(_) => {
                self.pending_len = 0;
                Ok(&piece[take..])
            }
            Err(err) if err.error_len().is_none() => {
                // Still incomplete: the piece was shorter than the code point.
                self.pending = buf;
                self.pending_len = candidate.len() as u8;
                Ok(&[])
            }
            Err(_) => Err(InvalidUtf8),
        }
    }
}

/// The length of the sequence a leading byte starts, if it can start one.
fn sequence_len(lead: u8) -> Option<usize> {
    match lead {
        0xC2..=0xDF => Some(2),
        0xE0..=0xEF => Some(3),
        0xF0..=0xF4 => Some(4),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn validate_in_pieces(bytes: &[u8], cuts: &[usize]) -> Result<(), InvalidUtf8> {
        let mut validator = Utf8Validator::new();
        let mut start = 0;
        for &cut in cuts {
            let cut = cut.clamp(start, bytes.len());
            validator.feed(&bytes[start..cut])?;
            start = cut;
        }
        validator.feed(&bytes[start..])?;
        validator.finish()
    }

    #[test]
    fn whole_valid_text_passes() {
        assert_eq!(validate_in_pieces("κόσμε ✓ 😀".as_bytes(), &[]), Ok(()));
    }

    #[test]
    fn code_point_split_across_pieces_passes() {
        let text = "😀".as_bytes();
        assert_eq!(validate_in_pieces(text, &[1, 2, 3]), Ok(()));
    }

    #[test]
    fn incomplete_code_point_at_the_end_fails_on_finish() {
        let mut validator = Utf8Validator::new();
        assert_eq!(validator.feed(&[0xF0, 0x9F]), Ok(()));
        assert_eq!(validator.finish(), Err(InvalidUtf8));
    }

    #[test]
    fn fails_fast_on_a_prefix_that_can_never_be_valid() {
        // Autobahn 6.4.2: F4 90 is above U+10FFFF whatever follows.
        let mut validator = Utf8Validator::new();
        assert_eq!(validator.feed(&[0xCE, 0xBA, 0xF4, 0x90]), Err(InvalidUtf8));
    }

    #[test]
    fn fails_fast_when_a_carried_code_point_goes_bad() {
        let mut validator = Utf8Validator::new();
        assert_eq!(validator.feed(&[0xE2, 0x82]), Ok(()));
        assert_eq!(validator.feed(&[0x41]), Err(InvalidUtf8));
    }

    #[test]
    fn surrogates_are_invalid() {
        assert_eq!(
            validate_in_pieces(&[0xED, 0xA0, 0x80], &[1]),
            Err(InvalidUtf8)
        );
    }

    #[test]
    fn overlong_encodings_are_invalid() {
        assert_eq!(validate_in_pieces(&[0xC0, 0xAF], &[]), Err(InvalidUtf8));
        assert_eq!(
            validate_in_pieces(&[0xE0, 0x80, 0xAF], &[1]),
            Err(InvalidUtf8)
        );
    }

    proptest! {
        #[test]
        fn any_split_agrees_with_std(
            bytes in proptest::collection::vec(any::<u8>(), 0..64),
            cuts in proptest::collection::vec(0usize..64, 0..6),
        ) {
            let mut cuts = cuts;
            cuts.sort_unstable();
            let expected = std::str::from_utf8(&bytes).is_ok();
            prop_assert_eq!(validate_in_pieces(&bytes, &cuts).is_ok(), expected);
        }

        #[test]
        fn valid_text_split_anywhere_passes(text in "\\PC{0,40}", cuts in proptest::collection::vec(0usize..200, 0..8)) {
            let mut cuts = cuts;
            cuts.sort_unstable();
            prop_assert_eq!(validate_in_pieces(text.as_bytes(), &cuts), Ok(()));
        }
    }
}
