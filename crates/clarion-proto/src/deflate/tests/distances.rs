//! A small raw DEFLATE decoder (RFC 1951) for tests: it returns the
//! decoded bytes and the furthest any match reaches back, which zlib does
//! not tell. Panics on invalid input; stops at the end of the input, which
//! for a sync-flushed stream is a block boundary.

/// Decodes `data`; returns the output and the largest match distance.
pub(super) fn inflate_with_distances(data: &[u8]) -> (Vec<u8>, usize) {
    let mut bits = Bits { data, pos: 0 };
    let mut out = Vec::new();
    let mut max_distance = 0;
    while bits.pos < data.len() * 8 {
        let last = bits.take(1) == 1;
        match bits.take(2) {
            0 => stored(&mut bits, &mut out),
            1 => {
                let (lit, dist) = fixed_tables();
                codes(&mut bits, &lit, &dist, &mut out, &mut max_distance);
            }
            2 => {
                let (lit, dist) = dynamic_tables(&mut bits);
                codes(&mut bits, &lit, &dist, &mut out, &mut max_distance);
            }
            _ => panic!("reserved block type"),
        }
        if last {
            break;
        }
    }
    (out, max_distance)
}

struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    /// `n` bits, least significant first.
    fn take(&mut self, n: u32) -> u32 {
        (0..n).fold(0, |acc, i| {
            let byte = self.data[self.pos / 8];
            let bit = u32::from(byte >> (self.pos % 8)) & 1;
            self.pos += 1;
            acc | bit << i
        })
    }
}

/// A canonical Huffman code: how many codes of each length, and the
/// symbols in code order.
struct Huffman {
    counts: [u16; 16],
    symbols: Vec<u16>,
}

impl Huffman {
    fn new(lengths: &[u8]) -> Self {
        let mut counts = [0u16; 16];
        for &len in lengths {
            counts[usize::from(len)] += 1;
        }
        counts[0] = 0;
        let mut symbols = Vec::new();
        for len in 1..16 {
            for (symbol, &l) in lengths.iter().enumerate() {
                if usize::from(l) == len {
                    symbols.push(symbol as u16);
                }
            }
        }
        Huffman { counts, symbols }
    }

    fn decode(&self, bits: &mut Bits<'_>) -> u16 {
        let (mut code, mut first, mut index) = (0i32, 0i32, 0i32);
        for len in 1..16 {
            code |= bits.take(1) as i32;
            let count = i32::from(self.counts[len]);
            if code - count < first {
                return self.symbols[(index + code - first) as usize];
            }
            index += count;
            first = (first + count) << 1;
            code <<= 1;
        }
        panic!("invalid Huffman code")
    }
}

fn stored(bits: &mut Bits<'_>, out: &mut Vec<u8>) {
    bits.pos = bits.pos.div_ceil(8) * 8;
    let len = bits.take(16);
    assert_eq!(bits.take(16), !len & 0xffff, "NLEN");
    for _ in 0..len {
        out.push(bits.take(8) as u8);
    }
}

fn fixed_tables() -> (Huffman, Huffman) {
    let mut lit = [8u8; 288];
    lit[144..256].fill(9);
    lit[256..280].fill(7);
    (Huffman::new(&lit), Huffman::new(&[5; 30]))
}

fn dynamic_tables(bits: &mut Bits<'_>) -> (Huffman, Huffman) {
    const ORDER: [usize; 19] = [
        16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
    ];
    let nlit = bits.take(5) as usize + 257;
    let ndist = bits.take(5) as usize + 1;
    let ncode = bits.take(4) as usize + 4;
    let mut code_lengths = [0u8; 19];
    for &i in &ORDER[..ncode] {
        code_lengths[i] = bits.take(3) as u8;
    }
    let code = Huffman::new(&code_lengths);
    let mut lengths = Vec::new();
    while lengths.len() < nlit + ndist {
        match code.decode(bits) {
            len @ 0..=15 => lengths.push(len as u8),
            16 => {
                let previous = *lengths.last().expect("a length to repeat");
                let repeat = 3 + bits.take(2);
                lengths.extend((0..repeat).map(|_| previous));
            }
            17 => lengths.extend((0..3 + bits.take(3)).map(|_| 0)),
            _ => lengths.extend((0..11 + bits.take(7)).map(|_| 0)),
        }
    }
    (
        Huffman::new(&lengths[..nlit]),
        Huffman::new(&lengths[nlit..]),
    )
}

fn codes(
    bits: &mut Bits<'_>,
    lit: &Huffman,
    dist: &Huffman,
    out: &mut Vec<u8>,
    max_distance: &mut usize,
) {
    const LEN_BASE: [u16; 29] = [
        3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115,
        131, 163, 195, 227, 258,
    ];
    const LEN_EXTRA: [u32; 29] = [
        0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
    ];
    const DIST_BASE: [u32; 30] = [
        1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
        2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
    ];
    const DIST_EXTRA: [u32; 30] = [
        0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12,
        13, 13,
    ];
    loop {
        let symbol = usize::from(lit.decode(bits));
        match symbol {
            0..=255 => out.push(symbol as u8),
            256 => return,
            _ => {
                let i = symbol - 257;
                let len = usize::from(LEN_BASE[i]) + bits.take(LEN_EXTRA[i]) as usize;
                let d = usize::from(dist.decode(bits));
                let distance = (DIST_BASE[d] + bits.take(DIST_EXTRA[d])) as usize;
                assert!(distance <= out.len(), "distance before the start");
                *max_distance = (*max_distance).max(distance);
                for _ in 0..len {
                    out.push(out[out.len() - distance]);
                }
            }
        }
    }
}
