//! Messages over real loopback sockets: round trips, big and fragmented
//! messages, the close codes of protocol violations, and `Stream + Sink`.

mod common;

use clarion_ws::{connect, CloseCode, Config, Error, Message, MessageKind, TrySendError};
use common::*;
use futures_util::{SinkExt, StreamExt};

/// Connects a client to a fresh echo server.
async fn echo_client() -> clarion_ws::WebSocket<clarion_ws::ClientStream> {
    let addr = spawn_echo(Config::default()).await;
    let (ws, _response) = connect(&ws_url(addr), &Config::default())
        .await
        .expect("connecting");
    ws
}

async fn next_message<S>(ws: &mut clarion_ws::WebSocket<S>) -> Message
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    ws.recv().await.expect("a message").expect("no error")
}

#[tokio::test]
async fn text_and_binary_messages_round_trip() {
    bounded(async {
        let mut ws = echo_client().await;
        let messages = [
            Message::text("héllo, wörld"),
            Message::binary(vec![0, 1, 2, 0xFE, 0xFF]),
            Message::text(""),
            Message::binary(vec![7; 70_000]), // a 64-bit length
        ];
        for message in messages {
            ws.send(message.clone()).await.expect("sending");
            assert_eq!(next_message(&mut ws).await, message);
        }
    })
    .await;
}

#[tokio::test]
async fn a_16_mib_message_round_trips() {
    bounded(async {
        let mut ws = echo_client().await;
        let payload: Vec<u8> = (0..16 << 20).map(|i: u32| (i % 251) as u8).collect();
        ws.send(Message::binary(payload.clone()))
            .await
            .expect("sending");
        let echoed = next_message(&mut ws).await;
        assert_eq!(echoed.kind(), MessageKind::Binary);
        assert!(echoed.as_bytes() == payload, "16 MiB echo differs");
    })
    .await;
}

/// The read path adapts its buffer to the sizes it sees (stack reads for
/// small messages, growing reads for streams, one read per frame for large
/// ones): sizes that change abruptly, many in flight, must all arrive whole.
#[tokio::test]
async fn many_messages_of_changing_sizes_in_flight_arrive_intact() {
    bounded(async {
        let mut ws = echo_client().await;
        let sizes = [
            70_000, 100, 65_536, 65_536, 200_000, 16_384, 5, 300_000, 4_096, 4_097, 65_536, 0,
            16_383, 1_000_000, 3, 65_536, 65_550, 20_000, 125, 126,
        ];
        let message = |i: usize, size: usize| {
            let payload: Vec<u8> = (0..size).map(|j| ((i * 31 + j) % 251) as u8).collect();
            Message::binary(payload)
        };
        for round in 0..3 {
            for (i, &size) in sizes.iter().enumerate() {
                ws.feed(message(round * 100 + i, size))
                    .await
                    .expect("queueing");
            }
            ws.flush().await.expect("flushing");
            for (i, &size) in sizes.iter().enumerate() {
                let echoed = next_message(&mut ws).await;
                assert_eq!(echoed.len(), size, "round {round}, message {i}");
                assert!(
                    echoed == message(round * 100 + i, size),
                    "round {round}, message {i}"
                );
            }
        }
    })
    .await;
}

#[tokio::test]
async fn fragments_sent_with_send_fragment_arrive_as_one_message() {
    bounded(async {
        let (mut server, mut client) = ws_pair(&Config::default(), &Config::default()).await;
        client
            .send_fragment(MessageKind::Text, "Hel", false)
            .await
            .expect("first");
        client
            .send_fragment(MessageKind::Text, "lo, ", false)
            .await
            .expect("middle");
        client
            .ping("between fragments")
            .await
            .expect("a ping in between");
        client
            .send_fragment(MessageKind::Text, "world", true)
            .await
            .expect("last");
        assert_eq!(
            next_message(&mut server).await,
            Message::text("Hello, world")
        );
    })
    .await;
}

#[tokio::test]
async fn send_fragment_puts_one_frame_on_the_wire_per_fragment() {
    bounded(async {
        let (mut server, mut raw) = server_and_raw(&Config::default()).await;
        for (part, fin) in [(&b"ab"[..], false), (b"cd", false), (b"ef", true)] {
            server
                .send_fragment(MessageKind::Binary, part, fin)
                .await
                .expect("sending");
        }
        let frames: Vec<_> = [
            raw.read_frame().await,
            raw.read_frame().await,
            raw.read_frame().await,
        ]
        .into_iter()
        .map(|f| (f.fin, f.opcode, f.masked, f.payload))
        .collect();
        assert_eq!(
            frames,
            [
                (false, op::BINARY, false, b"ab".to_vec()),
                (false, op::CONTINUATION, false, b"cd".to_vec()),
                (true, op::CONTINUATION, false, b"ef".to_vec()),
            ]
        );
    })
    .await;
}

#[tokio::test]
async fn try_send_inside_a_fragmented_message_hands_the_message_back() {
    bounded(async {
        let (mut server, mut client) = ws_pair(&Config::default(), &Config::default()).await;
        client
            .send_fragment(MessageKind::Text, "part", false)
            .await
            .expect("first");
        // A whole message may not come between fragments: `send` says so.
        let error = client.send("whole").await.expect_err("interleaved");
        assert!(error.is_local() && !error.is_closed(), "{error:?}");

        let refused = client.try_send("whole").expect_err("interleaved");
        let TrySendError::FragmentInProgress(handed_back) = &refused else {
            panic!("expected FragmentInProgress, got {refused:?}");
        };
        assert_eq!(handed_back, &Message::text("whole"));

        client
            .send_fragment(MessageKind::Text, " end", true)
            .await
            .expect("last");
        assert_eq!(next_message(&mut server).await, Message::text("part end"));
    })
    .await;
}

/// Writes `bytes` to a server as a raw client; returns the close frame the
/// server answered with and the error its `recv` reported. Checks that the
/// error is reported once, and that the server then closes the TCP connection.
async fn server_fails_on(config: &Config, bytes: &[u8]) -> (Frame, Error) {
    let (mut server, mut raw) = server_and_raw(config).await;
    let receiving = tokio::spawn(async move {
        let first = server.recv().await;
        let after = server.recv().await;
        (first, after)
    });
    raw.write_raw(bytes).await;
    let close = raw.read_close().await;
    raw.read_to_eof().await;
    let (first, after) = receiving.await.expect("server task");
    assert!(after.is_none(), "a second report: {after:?}");
    let error = first.expect("a report").expect_err("a message");
    assert!(error.is_protocol(), "{error:?}");
    (close, error)
}

fn masked(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    encode_frame(fin, opcode, payload, Some([9, 8, 7, 6]))
}

#[tokio::test]
async fn a_message_over_max_message_size_is_closed_with_1009() {
    bounded(async {
        let mut config = Config::default();
        config.protocol.max_message_size = 1024;
        let (close, error) = server_fails_on(&config, &masked(true, op::BINARY, &[0; 2000])).await;
        assert_eq!(close.close_code(), Some(1009), "{close:?}");
        assert_eq!(error.close_code(), Some(CloseCode::TOO_BIG));
    })
    .await;
}

#[tokio::test]
async fn fragments_adding_up_over_max_message_size_are_closed_with_1009() {
    bounded(async {
        let mut config = Config::default();
        config.protocol.max_message_size = 1024;
        let mut bytes = masked(false, op::BINARY, &[1; 600]);
        bytes.extend(masked(true, op::CONTINUATION, &[2; 600]));
        let (close, error) = server_fails_on(&config, &bytes).await;
        assert_eq!(close.close_code(), Some(1009), "{close:?}");
        assert_eq!(error.close_code(), Some(CloseCode::TOO_BIG));
    })
    .await;
}

#[tokio::test]
async fn invalid_utf8_in_a_text_message_is_closed_with_1007() {
    bounded(async {
        let bytes = masked(true, op::TEXT, b"ok so far \xFF\xFE");
        let (close, error) = server_fails_on(&Config::default(), &bytes).await;
        assert_eq!(close.close_code(), Some(1007), "{close:?}");
        assert_eq!(error.close_code(), Some(CloseCode::INVALID_PAYLOAD));
    })
    .await;
}

#[tokio::test]
async fn an_unmasked_client_frame_is_closed_with_1002() {
    bounded(async {
        let bytes = encode_frame(true, op::TEXT, b"no mask", None);
        let (close, error) = server_fails_on(&Config::default(), &bytes).await;
        assert_eq!(close.close_code(), Some(1002), "{close:?}");
        assert_eq!(error.close_code(), Some(CloseCode::PROTOCOL_ERROR));
    })
    .await;
}

#[tokio::test]
async fn stream_and_sink_carry_messages_and_close() {
    bounded(async {
        let mut ws = echo_client().await;
        SinkExt::send(&mut ws, Message::text("one"))
            .await
            .expect("send");
        assert_eq!(
            ws.next().await.expect("item").expect("ok"),
            Message::text("one")
        );

        let mut batch = futures_util::stream::iter(["two", "three"].map(|t| Ok(Message::text(t))));
        ws.send_all(&mut batch).await.expect("send_all");
        let echoed: Vec<_> = (&mut ws).take(2).map(|m| m.expect("ok")).collect().await;
        assert_eq!(echoed, [Message::text("two"), Message::text("three")]);

        SinkExt::close(&mut ws).await.expect("close");
        assert!(ws.next().await.is_none(), "stream ends after the close");
        let code = ws.close_frame().and_then(|f| f.as_ref()).map(|f| f.code);
        assert_eq!(code, Some(CloseCode::NORMAL));
    })
    .await;
}
