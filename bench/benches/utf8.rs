//! `clarion_proto::utf8`: the incremental `Utf8Validator` (one `feed` of a
//! whole message, then `finish`) against `std::str::from_utf8`, on ASCII,
//! mixed-script and CJK text of 1 KiB and 64 KiB.

mod common;

use std::hint::black_box;

use clarion_proto::utf8::Utf8Validator;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

const SIZES: [(&str, usize); 2] = [("1KiB", 1024), ("64KiB", 64 * 1024)];

/// Text samples: all ASCII; Latin, Greek, symbols and emoji mixed (1 to 4
/// bytes per character); CJK (3 bytes per character).
const SAMPLES: [(&str, &str); 3] = [
    ("ascii", "The quick brown fox jumps over the lazy dog. "),
    ("mixed", "Hello, κόσμε! Grüße ✓ naïve café 😀 — ok. "),
    ("cjk", "天地玄黄宇宙洪荒日月盈昃辰宿列张寒来暑往秋收冬藏"),
];

fn utf8(c: &mut Criterion) {
    for (kind, sample) in SAMPLES {
        let mut group = c.benchmark_group(format!("utf8/{kind}"));
        for (size_name, size) in SIZES {
            let text = repeat_to(sample, size);
            group.throughput(Throughput::Bytes(text.len() as u64));
            group.bench_function(BenchmarkId::new("Utf8Validator", size_name), |b| {
                b.iter(|| {
                    let mut validator = Utf8Validator::new();
                    validator.feed(black_box(text.as_bytes()))?;
                    validator.finish()
                });
            });
            group.bench_function(BenchmarkId::new("std_from_utf8", size_name), |b| {
                b.iter(|| std::str::from_utf8(black_box(text.as_bytes())).is_ok());
            });
        }
        group.finish();
    }
}

/// `sample` repeated up to `size` bytes, cut at a character boundary.
fn repeat_to(sample: &str, size: usize) -> String {
    let mut text = String::with_capacity(size + sample.len());
    while text.len() < size {
        text.push_str(sample);
    }
    let mut end = size;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = utf8
}
criterion_main!(benches);
