//! Pings and pongs over real loopback sockets: the heartbeat gives up on a
//! silent peer, keeps a live one, and pings are answered automatically.

mod common;

use std::time::Instant;

use clarion_ws::{CloseCode, Config};
use common::*;

/// Ping every 100 ms; give up 200 ms after an unanswered ping.
fn heartbeat_config() -> Config {
    let mut config = Config::default();
    config.ping_interval = Some(ms(100));
    config.pong_timeout = ms(200);
    config
}

#[tokio::test]
async fn a_peer_that_never_answers_pings_fails_the_heartbeat() {
    bounded(async {
        let (mut server, mut raw) = server_and_raw(&heartbeat_config()).await;
        // The peer reads everything and answers nothing.
        let peer = tokio::spawn(async move { raw.read_frames_to_eof().await });

        let start = Instant::now();
        let error = server
            .recv()
            .await
            .expect("a report")
            .expect_err("a message");
        let elapsed = start.elapsed();
        assert!(
            error.is_heartbeat_timeout() && error.is_timeout(),
            "{error:?}"
        );
        assert_eq!(error.close_code(), Some(CloseCode::ABNORMAL));
        // One interval to the ping, one pong timeout after it.
        assert!(elapsed >= ms(290) && elapsed < ms(1000), "{elapsed:?}");
        assert!(server.recv().await.is_none());

        let frames = peer.await.expect("peer task");
        assert_eq!(frames.len(), 2, "one ping, then the close: {frames:?}");
        assert_eq!(frames[0].opcode, op::PING);
        assert_eq!(frames[0].payload.len(), 8);
        assert_eq!(frames[1].close_code(), Some(1011), "{:?}", frames[1]);
    })
    .await;
}

#[tokio::test]
async fn a_raw_peer_that_answers_each_ping_keeps_the_connection() {
    bounded(async {
        let (mut server, mut raw) = server_and_raw(&heartbeat_config()).await;
        let server_side = tokio::spawn(async move { server.recv().await });
        let mut payloads = Vec::new();
        while payloads.len() < 5 {
            let ping = raw.read_frame().await;
            assert_eq!(ping.opcode, op::PING, "{ping:?}");
            raw.send_frame(true, op::PONG, &ping.payload).await;
            payloads.push(ping.payload);
        }
        payloads.dedup();
        assert_eq!(payloads.len(), 5, "each ping has its own payload");

        raw.send_close(1000, "").await;
        assert_eq!(raw.read_close().await.close_code(), Some(1000));
        let ended = server_side.await.expect("server task");
        assert!(ended.is_none(), "{ended:?}");
    })
    .await;
}

#[tokio::test]
async fn two_clarion_peers_keep_up_heartbeats_while_messages_flow() {
    bounded(async {
        let config = heartbeat_config();
        let (mut server, mut client) = ws_pair(&config, &config).await;
        let echo = tokio::spawn(async move {
            loop {
                match server.recv().await {
                    Some(Ok(message)) => server.send(message).await.expect("echo"),
                    other => return other,
                }
            }
        });

        // Ten heartbeat intervals, a message in each, `recv` always polled so
        // the client's automatic pongs go out.
        let deadline = Instant::now() + ms(1000);
        let mut count = 0;
        while Instant::now() < deadline {
            client.send(format!("tick {count}")).await.expect("send");
            let echoed = client.recv().await.expect("an echo").expect("no error");
            assert_eq!(echoed, format!("tick {count}").into());
            let idle = tokio::time::timeout(ms(100), client.recv()).await;
            assert!(idle.is_err(), "unexpected: {idle:?}");
            count += 1;
        }
        assert!(count >= 5, "only {count} messages in 1 s");

        client.close(CloseCode::NORMAL, "").await.expect("close");
        let ended = echo.await.expect("server task");
        assert!(ended.is_none(), "the server saw {ended:?}");
    })
    .await;
}

#[tokio::test]
async fn a_server_answers_a_ping_with_a_pong_of_the_same_payload() {
    bounded(async {
        let (mut server, mut raw) = server_and_raw(&Config::default()).await;
        let _receiving = tokio::spawn(async move { server.recv().await });
        raw.send_frame(true, op::PING, b"are you there?").await;
        let pong = raw.read_frame().await;
        assert_eq!((pong.opcode, pong.masked), (op::PONG, false));
        assert_eq!(pong.payload, b"are you there?");
    })
    .await;
}

#[tokio::test]
async fn a_client_answers_a_ping_with_a_masked_pong_of_the_same_payload() {
    bounded(async {
        let (mut client, mut raw) = client_and_raw(&Config::default()).await;
        let _receiving = tokio::spawn(async move { client.recv().await });
        raw.send_frame(true, op::PING, &[0, 1, 2, 0xFF]).await;
        let pong = raw.read_frame().await;
        assert_eq!((pong.opcode, pong.masked), (op::PONG, true));
        assert_eq!(pong.payload, [0, 1, 2, 0xFF]);
    })
    .await;
}
