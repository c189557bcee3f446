//! `clarion_proto::deflate`: compressing and inflating one message, with
//! and without context takeover, for a 256-byte JSON message (a chat
//! publication) and 16 KiB of English-like text, at the default level.
//!
//! Each benchmark cycles through a corpus of distinct messages: with
//! context takeover, compressing one message over and over would find it
//! whole in the window and report a ratio no real stream gets. The corpora
//! are larger than the 32 KiB window for the same reason.

mod common;

use std::hint::black_box;

use bytes::BytesMut;
use clarion_proto::deflate::{Compressor, Decompressor, DeflateConfig, DEFAULT_WINDOW_BITS};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

/// Messages per corpus: 256 JSON messages make 64 KiB, 16 texts 256 KiB.
const JSON_MESSAGES: usize = 256;
const TEXT_MESSAGES: usize = 16;
const TEXT_SIZE: usize = 16 * 1024;
const MAX_MESSAGE: usize = 64 << 20;

const WORDS: [&str; 32] = [
    "the", "of", "and", "to", "in", "is", "was", "that", "for", "it", "with", "as", "his", "on",
    "be", "at", "by", "had", "are", "but", "from", "or", "have", "an", "they", "which", "one",
    "you", "were", "her", "all", "message",
];

fn deflate(c: &mut Criterion) {
    let corpora = [("json256B", json_corpus()), ("text16KiB", text_corpus())];
    let level = DeflateConfig::default().level;
    for (name, corpus) in &corpora {
        let mut group = c.benchmark_group(format!("deflate/{name}"));
        let average = corpus.iter().map(String::len).sum::<usize>() / corpus.len();
        group.throughput(Throughput::Bytes(average as u64));
        for (takeover, reset) in [("takeover", false), ("no_takeover", true)] {
            let mut compressor = Compressor::new(level, DEFAULT_WINDOW_BITS, reset);
            let mut next = corpus.iter().cycle();
            let mut out = BytesMut::with_capacity(2 * TEXT_SIZE);
            group.bench_function(BenchmarkId::new("compress", takeover), |b| {
                b.iter(|| {
                    out.clear();
                    let message = next.next().expect("a cycle never ends");
                    compressor.compress(black_box(message.as_bytes()), &mut out);
                    out.len()
                });
            });
            let compressed = compress_all(corpus, level, reset);
            report_ratio(name, takeover, corpus, &compressed);
            let mut decompressor = Decompressor::new(DEFAULT_WINDOW_BITS, reset);
            let mut index = 0;
            group.bench_function(BenchmarkId::new("inflate", takeover), |b| {
                b.iter(|| {
                    if index == compressed.len() {
                        // Message 0 was compressed with an empty history.
                        decompressor.reset();
                        index = 0;
                    }
                    out.clear();
                    decompressor
                        .decompress(black_box(&compressed[index]), &mut out, MAX_MESSAGE)
                        .and_then(|()| decompressor.finish_message(&mut out, MAX_MESSAGE))
                        .expect("our own compressed data");
                    index += 1;
                    out.len()
                });
            });
        }
        group.finish();
    }
}

/// The corpus compressed in order by one compressor, several times over
/// (a longer stream, so that with takeover most messages see a full window).
fn compress_all(corpus: &[String], level: u32, reset: bool) -> Vec<Vec<u8>> {
    let mut compressor = Compressor::new(level, DEFAULT_WINDOW_BITS, reset);
    let mut out = BytesMut::new();
    let stream = corpus.iter().cycle().take(corpus.len() * 4);
    stream
        .map(|message| {
            out.clear();
            compressor.compress(message.as_bytes(), &mut out);
            out.to_vec()
        })
        .collect()
}

/// Prints the compressed size, which the time alone does not tell.
fn report_ratio(name: &str, takeover: &str, corpus: &[String], compressed: &[Vec<u8>]) {
    let raw: usize =
        corpus.iter().map(String::len).sum::<usize>() * compressed.len() / corpus.len();
    let packed: usize = compressed.iter().map(Vec::len).sum();
    let percent = 100.0 * packed as f64 / raw as f64;
    println!("deflate/{name}/{takeover}: compressed to {percent:.1}% of {raw} bytes");
}

/// Chat publications of about 256 bytes, each with its own ids and text.
fn json_corpus() -> Vec<String> {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    (0..JSON_MESSAGES)
        .map(|i| {
            let mut message = format!(
                r#"{{"push":{{"channel":"chat:room-{}","pub":{{"offset":{},"data":{{"user":"user-{}","ts":{},"text":""#,
                rng.below(50),
                1000 + i,
                rng.below(10_000),
                1_712_345_678_000 + rng.below(1_000_000),
            );
            while message.len() < 240 {
                message.push_str(WORDS[rng.below(WORDS.len() as u64) as usize]);
                message.push(' ');
            }
            message.truncate(250);
            message.push_str(r#""}}}}"#);
            message
        })
        .collect()
}

/// Texts of 16 KiB: words from a small vocabulary in random order.
fn text_corpus() -> Vec<String> {
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    (0..TEXT_MESSAGES)
        .map(|_| {
            let mut text = String::with_capacity(TEXT_SIZE + 16);
            while text.len() < TEXT_SIZE {
                text.push_str(WORDS[rng.below(WORDS.len() as u64) as usize]);
                text.push(if rng.below(12) == 0 { '.' } else { ' ' });
            }
            text.truncate(TEXT_SIZE);
            text
        })
        .collect()
}

/// A tiny deterministic generator: the corpora are the same on every run.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = deflate
}
criterion_main!(benches);
