//! `clarion_proto::mask`: `apply_mask` (AVX2 picked at run time from 128
//! bytes, else the word loop) against the portable word loop
//! `apply_mask_words` and the byte-at-a-time `apply_mask_scalar`, from a
//! 16-byte payload to 1 MiB, with the payload starting 0, 1 or 3 bytes past
//! a 64-byte boundary.

mod common;

use std::hint::black_box;

use clarion_proto::mask::{apply_mask, apply_mask_scalar, apply_mask_words};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

const SIZES: [usize; 5] = [16, 125, 1024, 64 * 1024, 1024 * 1024];
const START_OFFSETS: [usize; 3] = [0, 1, 3];
const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
const LINE: usize = 64;

type MaskFn = fn(&mut [u8], [u8; 4], usize);

fn mask(c: &mut Criterion) {
    let impls: [(&str, MaskFn); 3] = [
        ("apply_mask", apply_mask),
        ("words", apply_mask_words),
        ("scalar", apply_mask_scalar),
    ];
    for size in SIZES {
        let mut group = c.benchmark_group(format!("mask/{size}B"));
        group.throughput(Throughput::Bytes(size as u64));
        let mut buf = vec![0x5a_u8; size + 2 * LINE];
        let aligned = buf.as_ptr().align_offset(LINE);
        for offset in START_OFFSETS {
            let payload = aligned + offset..aligned + offset + size;
            for (name, apply) in impls {
                let id = BenchmarkId::new(name, format!("start+{offset}"));
                group.bench_function(id, |b| {
                    b.iter(|| apply(black_box(&mut buf[payload.clone()]), KEY, 0));
                });
            }
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = mask
}
criterion_main!(benches);
