//! Reading control bytes off the front of a fuzz input, and cutting the
//! rest into the reads a transport would deliver.

/// The fuzz input, consumed from the front. Missing bytes read as zero, so
/// every input is valid.
pub(crate) struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Input(data)
    }

    /// The next byte, 0 once the input is exhausted.
    pub(crate) fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&first, rest)) => {
                self.0 = rest;
                first
            }
            None => 0,
        }
    }

    /// The next `n` bytes, fewer if the input ends.
    pub(crate) fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }

    /// A split pattern: a count byte (mod 8), then that many size bytes.
    pub(crate) fn pattern(&mut self) -> Pattern<'a> {
        let count = usize::from(self.byte() % 8);
        Pattern(self.bytes(count))
    }

    /// Everything not read yet.
    pub(crate) fn rest(self) -> &'a [u8] {
        self.0
    }
}

/// How to cut a byte stream into reads: the sizes cycle through the
/// pattern's bytes (`b` gives `(b & 0x7f) + 1` bytes, so 0 is a byte at a
/// time); an empty pattern gives the whole stream as one read.
#[derive(Clone, Copy)]
pub(crate) struct Pattern<'a>(&'a [u8]);

/// One read, and whether the pattern marked it as the end of a unit (the
/// top bit of its size byte), which the inflate target uses as a message end.
pub(crate) struct Piece<'b> {
    pub(crate) bytes: &'b [u8],
    pub(crate) marked: bool,
}

impl Pattern<'_> {
    /// The whole stream in one read.
    pub(crate) const WHOLE: Pattern<'static> = Pattern(&[]);

    /// A pattern of size bytes.
    pub(crate) fn new(sizes: &[u8]) -> Pattern<'_> {
        Pattern(sizes)
    }

    /// The pieces of `data`, in order; together they are exactly `data`.
    pub(crate) fn cut<'b>(&self, mut data: &'b [u8]) -> Vec<Piece<'b>> {
        if self.0.is_empty() {
            return vec![Piece {
                bytes: data,
                marked: false,
            }];
        }
        let mut pieces = Vec::new();
        for &size in self.0.iter().cycle() {
            if data.is_empty() {
                break;
            }
            let len = (usize::from(size & 0x7f) + 1).min(data.len());
            let (bytes, rest) = data.split_at(len);
            pieces.push(Piece {
                bytes,
                marked: size & 0x80 != 0,
            });
            data = rest;
        }
        pieces
    }
}
