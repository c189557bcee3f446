//! `clarion_proto::frame` and the connection layer above it: frame header
//! parsing and encoding for each length form (7-bit, 16-bit, 64-bit), then
//! whole messages through `Connection::receive` (a masked text frame, as a
//! server reads it) and `Connection::send` plus draining the `Output` (as
//! the I/O layer writes it).

mod common;

use std::hint::black_box;
use std::io::IoSlice;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use clarion_proto::connection::{Config, Connection};
use clarion_proto::frame::{FrameHeader, OpCode};
use clarion_proto::mask::apply_mask;
use clarion_proto::Message;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

/// One payload length per length form of section 5.2.
const HEADER_LENGTHS: [(&str, u64); 3] = [("7bit", 100), ("16bit", 1000), ("64bit", 100_000)];
const MESSAGE_SIZES: [usize; 2] = [16, 1024];
const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
/// Frames buffered at once for `receive`, as if read together.
const FRAMES_PER_READ: u64 = 1024;

fn header(c: &mut Criterion) {
    let mut group = c.benchmark_group("frame_header");
    for (name, len) in HEADER_LENGTHS {
        let mut masked = FrameHeader::new(OpCode::Binary, len);
        masked.mask = Some(KEY);
        let mut bytes = Vec::new();
        masked.encode(&mut bytes);
        group.bench_function(BenchmarkId::new("parse", name), |b| {
            b.iter(|| FrameHeader::parse(black_box(&bytes)));
        });
        let unmasked = FrameHeader::new(OpCode::Binary, len);
        let mut out = Vec::with_capacity(16);
        group.bench_function(BenchmarkId::new("encode", name), |b| {
            b.iter(|| {
                out.clear();
                black_box(&unmasked).encode(&mut out);
                black_box(out.len())
            });
        });
    }
    group.finish();
}

fn receive(c: &mut Criterion) {
    let mut group = c.benchmark_group("connection/receive_text");
    for size in MESSAGE_SIZES {
        group.throughput(Throughput::Bytes(size as u64));
        let frame = masked_text_frame(&text(size));
        let mut server = Connection::server(Config::default()).expect("default config is valid");
        group.bench_function(BenchmarkId::from_parameter(format!("{size}B")), |b| {
            b.iter_custom(|iters| receive_frames(&mut server, &frame, iters));
        });
    }
    group.finish();
}

/// Times `iters` calls of `receive`, each on a buffer holding up to
/// `FRAMES_PER_READ` copies of `frame` (filling it is not timed).
fn receive_frames(server: &mut Connection, frame: &[u8], iters: u64) -> Duration {
    let mut elapsed = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let batch = left.min(FRAMES_PER_READ);
        let mut buf = BytesMut::with_capacity(frame.len() * batch as usize);
        for _ in 0..batch {
            buf.extend_from_slice(frame);
        }
        let start = Instant::now();
        for _ in 0..batch {
            let event = server.receive(&mut buf).expect("a valid frame");
            black_box(event);
        }
        elapsed += start.elapsed();
        left -= batch;
    }
    elapsed
}

fn send(c: &mut Criterion) {
    let mut group = c.benchmark_group("connection/send_text");
    for size in MESSAGE_SIZES {
        group.throughput(Throughput::Bytes(size as u64));
        let message = Message::text(text(size));
        let mut server = Connection::server(Config::default()).expect("default config is valid");
        group.bench_function(BenchmarkId::new("server", format!("{size}B")), |b| {
            b.iter(|| send_and_drain(&mut server, &message));
        });
        let mask = Box::new(|| KEY);
        let mut client = Connection::client(Config::default(), mask).expect("valid config");
        group.bench_function(BenchmarkId::new("client_masked", format!("{size}B")), |b| {
            b.iter(|| send_and_drain(&mut client, &message));
        });
    }
    group.finish();
}

/// Queues `message` and takes everything out of the output as a vectored
/// write would; returns the bytes written.
fn send_and_drain(conn: &mut Connection, message: &Message) -> usize {
    conn.send(message.clone()).expect("open connection");
    let output = conn.output();
    let mut slices = [IoSlice::new(&[]); 4];
    let filled = output.chunks_vectored(&mut slices);
    let written: usize = slices[..filled].iter().map(|s| s.len()).sum();
    black_box(&slices);
    output.advance(written);
    written
}

/// `size` bytes of ASCII text.
fn text(size: usize) -> String {
    "The quick brown fox jumps over the lazy dog. "
        .chars()
        .cycle()
        .take(size)
        .collect()
}

/// A final text frame as a client sends it: masked.
fn masked_text_frame(text: &str) -> Vec<u8> {
    let mut header = FrameHeader::new(OpCode::Text, text.len() as u64);
    header.mask = Some(KEY);
    let mut frame = Vec::new();
    header.encode(&mut frame);
    let start = frame.len();
    frame.extend_from_slice(text.as_bytes());
    apply_mask(&mut frame[start..], KEY, 0);
    frame
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = header, receive, send
}
criterion_main!(benches);
