//! `clarion_proto::handshake`: a server's `RequestParser::parse` of the
//! opening handshake a desktop Chrome sends (about 500 bytes, 12 headers).

mod common;

use bytes::BytesMut;
use clarion_proto::handshake::{HandshakeLimits, RequestParser};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

const BROWSER_REQUEST: &str = "GET /chat?room=lobby HTTP/1.1\r\n\
Host: example.com:8080\r\n\
Connection: Upgrade\r\n\
Pragma: no-cache\r\n\
Cache-Control: no-cache\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36\r\n\
Upgrade: websocket\r\n\
Origin: https://example.com\r\n\
Sec-WebSocket-Version: 13\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Accept-Language: en-US,en;q=0.9\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\
\r\n";

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("handshake");
    group.throughput(Throughput::Bytes(BROWSER_REQUEST.len() as u64));
    group.bench_function("RequestParser::parse/chrome", |b| {
        b.iter_batched(
            || BytesMut::from(BROWSER_REQUEST.as_bytes()),
            |mut buf| {
                let mut parser = RequestParser::new(HandshakeLimits::default());
                parser
                    .parse(&mut buf)
                    .expect("a valid request")
                    .expect("complete")
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = parse
}
criterion_main!(benches);
