//! The close handshake over real loopback sockets (RFC 6455 section 7):
//! who sends what, who closes the TCP connection, and how long we wait for
//! a peer that does not play along.

mod common;

use std::time::Instant;

use clarion_ws::{CloseCode, CloseFrame, Config, TrySendError};
use common::*;

fn close_frame(code: u16, reason: &str) -> Option<CloseFrame> {
    Some(CloseFrame::new(CloseCode(code), reason))
}

#[tokio::test]
async fn a_client_close_reaches_the_server_with_its_code_and_reason() {
    bounded(async {
        let (mut server, mut client) = ws_pair(&Config::default(), &Config::default()).await;
        let server_side = tokio::spawn(async move {
            let next = server.recv().await;
            (next.is_none(), server.close_frame().cloned())
        });
        client.close(CloseCode(4000), "done").await.expect("close");

        let (ended_cleanly, received) = server_side.await.expect("server task");
        assert!(ended_cleanly, "server recv returned a message or an error");
        assert_eq!(received, Some(close_frame(4000, "done")));
        // The server echoed the code (section 5.5.1).
        assert_eq!(client.close_frame(), Some(&close_frame(4000, "")));
        assert!(client.recv().await.is_none());
    })
    .await;
}

#[tokio::test]
async fn a_server_close_reaches_the_client_with_its_code_and_reason() {
    bounded(async {
        let (mut server, mut client) = ws_pair(&Config::default(), &Config::default()).await;
        let client_side = tokio::spawn(async move {
            let next = client.recv().await;
            (next.is_none(), client.close_frame().cloned())
        });
        server
            .close(CloseCode::GOING_AWAY, "restarting")
            .await
            .expect("close");

        let (ended_cleanly, received) = client_side.await.expect("client task");
        assert!(ended_cleanly, "client recv returned a message or an error");
        assert_eq!(received, Some(close_frame(1001, "restarting")));
        assert_eq!(server.close_frame(), Some(&close_frame(1001, "")));
    })
    .await;
}

#[tokio::test]
async fn the_server_closes_the_tcp_connection_first() {
    bounded(async {
        let (mut server, mut raw) = server_and_raw(&Config::default()).await;
        let server_side = tokio::spawn(async move { server.recv().await.is_none() });
        raw.send_close(1000, "bye").await;
        let reply = raw.read_close().await;
        assert_eq!(reply.close_code(), Some(1000));
        // We have not closed anything: the EOF is the server's doing.
        assert_eq!(raw.read_to_eof().await, b"", "bytes after the close frame");
        assert!(server_side.await.expect("server task"));
    })
    .await;
}

#[tokio::test]
async fn a_client_waits_for_the_server_to_close_the_tcp_connection() {
    bounded(async {
        let (mut client, mut raw) = client_and_raw(&Config::default()).await;
        let client_side = tokio::spawn(async move { client.recv().await.is_none() });
        raw.send_close(1000, "").await;
        let reply = raw.read_close().await;
        assert!(reply.masked);
        assert_eq!(reply.close_code(), Some(1000));
        assert!(
            raw.is_silent_for(ms(200)).await,
            "the client closed TCP first"
        );
        assert!(!client_side.is_finished());

        raw.shutdown().await;
        assert!(client_side.await.expect("client task"));
        assert_eq!(raw.read_to_eof().await, b"");
    })
    .await;
}

#[tokio::test]
async fn a_client_waits_for_the_server_eof_only_for_the_close_timeout() {
    bounded(async {
        let mut config = Config::default();
        config.close_timeout = ms(300);
        let (mut client, mut raw) = client_and_raw(&config).await;
        raw.send_close(1000, "").await;
        let start = Instant::now();
        assert!(client.recv().await.is_none());
        let elapsed = start.elapsed();
        assert!(elapsed >= ms(290) && elapsed < ms(2000), "{elapsed:?}");
        assert_eq!(raw.read_close().await.close_code(), Some(1000));
    })
    .await;
}

#[tokio::test]
async fn after_the_close_timeout_the_transport_is_closed() {
    bounded(async {
        let mut config = Config::default();
        config.close_timeout = ms(300);
        let (mut client, mut raw) = client_and_raw(&config).await;
        raw.send_close(1000, "").await;
        assert!(client.recv().await.is_none());
        raw.read_close().await;
        // `client` is still alive: only the library can have closed the socket.
        let eof = tokio::time::timeout(ms(1000), raw.read_to_eof()).await;
        assert!(
            eof.is_ok(),
            "the socket is still open after recv returned None"
        );
        drop(client);
    })
    .await;
}

#[tokio::test]
async fn close_returns_within_the_close_timeout_when_the_peer_never_answers() {
    bounded(async {
        let mut config = Config::default();
        config.close_timeout = ms(300);
        let (mut server, mut raw) = server_and_raw(&config).await;
        let start = Instant::now();
        let result = server.close(CloseCode::NORMAL, "").await;
        let elapsed = start.elapsed();
        // What the code does: `close` reports the timeout; `recv` then ends.
        let error = result.expect_err("close succeeded without the peer's reply");
        assert!(
            error.is_timeout() && !error.is_heartbeat_timeout(),
            "{error:?}"
        );
        assert!(elapsed >= ms(290) && elapsed < ms(2000), "{elapsed:?}");
        assert!(server.recv().await.is_none());
        assert_eq!(raw.read_close().await.close_code(), Some(1000));
    })
    .await;
}

#[tokio::test]
async fn a_peer_that_drops_tcp_without_a_close_frame_is_1006() {
    bounded(async {
        let (mut server, raw) = server_and_raw(&Config::default()).await;
        drop(raw);
        let error = server
            .recv()
            .await
            .expect("a report")
            .expect_err("a message");
        assert!(error.is_closed(), "{error:?}");
        assert_eq!(error.close_code(), Some(CloseCode::ABNORMAL));
        assert!(server.recv().await.is_none(), "the error is reported once");
    })
    .await;
}

#[tokio::test]
async fn sending_after_the_close_is_a_closed_error() {
    bounded(async {
        let (mut server, mut client) = ws_pair(&Config::default(), &Config::default()).await;
        let server_side = tokio::spawn(async move {
            assert!(server.recv().await.is_none());
            server
        });
        client.close(CloseCode::NORMAL, "").await.expect("close");
        let mut server = server_side.await.expect("server task");

        // The side that closed, and the side that was closed.
        let error = client.send("late").await.expect_err("sent after close");
        assert!(error.is_closed(), "{error:?}");
        let error = server.send("late").await.expect_err("sent after close");
        assert!(error.is_closed(), "{error:?}");
        assert!(matches!(
            client.try_send("late"),
            Err(TrySendError::Closed(_))
        ));
        assert!(client
            .ping("late")
            .await
            .expect_err("pinged after close")
            .is_closed());
    })
    .await;
}
