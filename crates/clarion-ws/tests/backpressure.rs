//! The bounded write buffer against a peer that stops reading: `try_send`
//! reports `Full`, `feed` waits, memory stays bounded, and everything
//! queued arrives in order once the peer reads again.

mod common;

use std::pin::pin;

use clarion_ws::{Config, Message, TrySendError, WebSocket};
use common::*;
use tokio::net::TcpStream;

const MAX_WRITE_BUFFER: usize = 64 * 1024;
const MESSAGE_SIZE: usize = 16 * 1024;
/// Most output we may hold: the limit, plus one message (header included)
/// accepted while just under it.
const BOUND: usize = MAX_WRITE_BUFFER + MESSAGE_SIZE + 14;

/// Message `i`: its index, then filler derived from it.
fn message(i: u32) -> Message {
    let mut payload = vec![(i % 251) as u8; MESSAGE_SIZE];
    payload[..4].copy_from_slice(&i.to_be_bytes());
    Message::binary(payload)
}

/// A server with a 64 KiB write buffer and a raw client that reads nothing
/// until told. Small socket buffers keep what the kernel absorbs small.
async fn server_and_idle_reader() -> (WebSocket<TcpStream>, RawPeer) {
    let mut config = Config::default();
    config.max_write_buffer = MAX_WRITE_BUFFER;
    server_and_small_buffered_raw(&config).await
}

/// Reads binary messages until a text frame; returns their indices, in order.
async fn read_indices(mut raw: RawPeer) -> Vec<u32> {
    let mut indices = Vec::new();
    loop {
        let frame = raw.read_frame().await;
        if frame.opcode == op::TEXT {
            return indices;
        }
        assert_eq!((frame.fin, frame.opcode), (true, op::BINARY));
        let index = u32::from_be_bytes(frame.payload[..4].try_into().expect("4 bytes"));
        assert_eq!(
            Message::binary(frame.payload),
            message(index),
            "payload of {index}"
        );
        indices.push(index);
    }
}

#[tokio::test]
async fn try_send_reports_full_at_the_limit_and_recovers_once_drained() {
    bounded(async {
        let (mut server, raw) = server_and_idle_reader().await;
        let mut queued = 0;
        let refused = loop {
            match server.try_send(message(queued)) {
                Ok(()) => queued += 1,
                Err(TrySendError::Full(refused)) => break refused,
                Err(other) => panic!("{other:?}"),
            }
            assert!(
                server.buffered_amount() < BOUND,
                "{}",
                server.buffered_amount()
            );
            assert!(queued < 100, "try_send never reported Full");
        };
        assert_eq!(queued as usize, MAX_WRITE_BUFFER.div_ceil(MESSAGE_SIZE + 4));
        assert_eq!(
            refused,
            message(queued),
            "the refused message is handed back"
        );

        let reader = tokio::spawn(read_indices(raw));
        server.flush().await.expect("flush");
        assert_eq!(server.buffered_amount(), 0);
        server.try_send(refused).expect("room again after draining");
        server.send("end").await.expect("send");
        let received = reader.await.expect("reader task");
        assert_eq!(received, (0..=queued).collect::<Vec<_>>());
    })
    .await;
}

#[tokio::test]
async fn feed_waits_for_a_stalled_peer_and_completes_once_it_reads() {
    bounded(async {
        let (mut server, raw) = server_and_idle_reader().await;
        // Queue until the write buffer and the kernel's buffers are full: a
        // feed that is still pending after 100 ms was cancelled unqueued.
        let mut sent = 0;
        while let Ok(fed) = tokio::time::timeout(ms(100), server.feed(message(sent))).await {
            fed.expect("feed");
            sent += 1;
            assert!(
                server.buffered_amount() < BOUND,
                "{}",
                server.buffered_amount()
            );
            assert!(sent < 1000, "the socket never pushed back");
        }
        assert!(server.buffered_amount() >= MAX_WRITE_BUFFER);

        let reader = {
            let mut blocked = pin!(server.feed(message(sent)));
            let waited = tokio::time::timeout(ms(300), &mut blocked).await;
            assert!(waited.is_err(), "feed did not wait for the stalled peer");

            let reader = tokio::spawn(read_indices(raw));
            blocked.await.expect("the blocked feed completes");
            sent += 1;
            reader
        };
        server.send("end").await.expect("send");
        let received = reader.await.expect("reader task");
        assert_eq!(received, (0..sent).collect::<Vec<_>>());
    })
    .await;
}
