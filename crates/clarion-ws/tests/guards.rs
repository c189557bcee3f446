//! The guards against peers that keep to the protocol but spend our
//! resources: the idle timeout (with its ping half-way), the control-frame
//! rate limit (ping floods), and the write timeout (a peer that never
//! reads), over real loopback sockets.

mod common;

use std::time::Instant;

use clarion_ws::{CloseCode, Config, Message, WebSocket};
use common::*;
use tokio::net::TcpStream;

fn idle_config() -> Config {
    let mut config = Config::default();
    config.idle_timeout = Some(ms(300));
    config
}

#[tokio::test]
async fn a_silent_peer_is_pinged_then_closed_with_1001_after_the_idle_timeout() {
    bounded(async {
        let (mut server, mut raw) = server_and_raw(&idle_config()).await;
        let peer = tokio::spawn(async move { raw.read_frames_to_eof().await });

        let start = Instant::now();
        let error = server
            .recv()
            .await
            .expect("a report")
            .expect_err("no message");
        let elapsed = start.elapsed();
        assert!(error.is_idle_timeout() && error.is_timeout(), "{error:?}");
        assert_eq!(error.close_code(), Some(CloseCode::GOING_AWAY));
        assert!(elapsed >= ms(290) && elapsed < ms(1500), "{elapsed:?}");

        let frames = peer.await.expect("peer task");
        assert_eq!(
            frames.len(),
            2,
            "a ping half-way, then the close: {frames:?}"
        );
        assert_eq!(frames[0].opcode, op::PING);
        assert_eq!(frames[1].close_code(), Some(1001));
        assert_eq!(frames[1].close_reason(), "idle timeout");
    })
    .await;
}

#[tokio::test]
async fn a_quiet_peer_that_answers_the_idle_ping_stays() {
    bounded(async {
        let (mut server, mut raw) = server_and_raw(&idle_config()).await;
        let server_side = tokio::spawn(async move {
            let message = server.recv().await;
            (server, message)
        });
        // Three idle timeouts pass; the peer only answers pings.
        let start = Instant::now();
        while start.elapsed() < ms(900) {
            let ping = raw.read_frame().await;
            assert_eq!(ping.opcode, op::PING, "{ping:?}");
            raw.send_frame(true, op::PONG, &ping.payload).await;
        }
        raw.send_frame(true, op::TEXT, b"still here").await;
        let (_server, message) = server_side.await.expect("server task");
        assert_eq!(
            message.expect("a message").expect("not an error"),
            Message::text("still here")
        );
    })
    .await;
}

#[tokio::test]
async fn a_ping_flood_is_closed_with_1008() {
    bounded(async {
        let mut config = Config::default();
        config.max_control_frames_per_second = 20;
        // The raw peer never answers the close: don't wait long for it.
        config.close_timeout = ms(300);
        let (mut server, mut raw) = server_and_raw(&config).await;
        for _ in 0..50 {
            raw.send_frame(true, op::PING, b"flood").await;
        }
        let error = server
            .recv()
            .await
            .expect("a report")
            .expect_err("no message");
        assert!(error.is_limit(), "{error:?}");
        assert_eq!(error.close_code(), Some(CloseCode::POLICY));

        let frames = raw.read_frames_to_eof().await;
        let (close, pongs) = frames.split_last().expect("frames");
        // The engine answers a ping as it parses it, so the one that
        // crosses the limit is answered too, just before the close.
        assert_eq!(pongs.len(), 21, "the pings within the limit are answered");
        assert!(pongs.iter().all(|f| f.opcode == op::PONG));
        assert_eq!(close.close_code(), Some(1008));
    })
    .await;
}

/// A server with a 32 KiB write buffer and a 300 ms write timeout, and a
/// raw client with small socket buffers that never reads.
async fn server_and_non_reader(max_control: u32) -> (WebSocket<TcpStream>, RawPeer) {
    let mut config = Config::default();
    config.max_write_buffer = 32 * 1024;
    config.write_timeout = ms(300);
    config.max_control_frames_per_second = max_control;
    server_and_small_buffered_raw(&config).await
}

#[tokio::test]
async fn sending_to_a_peer_that_never_reads_fails_after_the_write_timeout() {
    bounded(async {
        let (mut server, _raw) = server_and_non_reader(100).await;
        let payload = vec![7u8; 16 * 1024];
        let start = Instant::now();
        let error = loop {
            if let Err(err) = server.send(Message::binary(payload.clone())).await {
                break err;
            }
        };
        assert!(error.is_write_timeout() && error.is_timeout(), "{error:?}");
        assert!(start.elapsed() < ms(3000), "{:?}", start.elapsed());
        assert!(server.buffered_amount() <= 64 * 1024);
    })
    .await;
}

#[tokio::test]
async fn a_pinging_peer_that_never_reads_is_not_read_either_and_is_dropped() {
    bounded(async {
        // No rate limit in the way: the write buffer alone must bound us.
        let (mut server, mut raw) = server_and_non_reader(u32::MAX).await;
        let flood = tokio::spawn(async move {
            let payload = [0u8; 125];
            // Bounded: 20k pings of 125 bytes ask for 2.5 MiB of pongs.
            for _ in 0..20_000 {
                if raw.try_send_frame(true, op::PING, &payload).await.is_err() {
                    break;
                }
            }
            raw
        });
        let error = server
            .recv()
            .await
            .expect("a report")
            .expect_err("no message");
        assert!(error.is_write_timeout(), "{error:?}");
        assert!(server.buffered_amount() <= 64 * 1024);
        drop(server);
        drop(flood.await.expect("flood task"));
    })
    .await;
}
