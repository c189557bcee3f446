//! Owned halves in separate tasks over real loopback sockets: concurrent
//! echo, pongs written by the reader, `reunite`, and closing from the writer.

mod common;

use clarion_ws::{connect, CloseCode, CloseFrame, Config, Message, ReuniteError};
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn halves_in_two_tasks_echo_many_messages_in_order() {
    bounded(async {
        const COUNT: usize = 2000;
        let addr = spawn_echo(Config::default()).await;
        let (ws, _) = connect(&ws_url(addr), &Config::default())
            .await
            .expect("connect");
        let (mut reader, mut writer) = ws.into_split();

        let writing = tokio::spawn(async move {
            for i in 0..COUNT {
                writer.send(format!("message {i}")).await.expect("send");
            }
            writer
        });
        let reading = tokio::spawn(async move {
            for i in 0..COUNT {
                let message = reader.recv().await.expect("a message").expect("no error");
                assert_eq!(message, Message::text(format!("message {i}")));
            }
            reader
        });
        let (mut writer, mut reader) = (
            writing.await.expect("writer"),
            reading.await.expect("reader"),
        );

        writer.close(CloseCode::NORMAL, "").await.expect("close");
        assert!(reader.recv().await.is_none());
    })
    .await;
}

#[tokio::test]
async fn the_reader_answers_pings_while_the_writer_is_idle() {
    bounded(async {
        let (server, mut raw) = server_and_raw(&Config::default()).await;
        let (mut reader, mut writer) = server.into_split();
        let reading = tokio::spawn(async move { reader.recv().await });

        for payload in [&b"first"[..], b"second"] {
            raw.send_frame(true, op::PING, payload).await;
            let pong = raw.read_frame().await;
            assert_eq!((pong.opcode, &pong.payload[..]), (op::PONG, payload));
        }

        // The writer still works after idling.
        writer.send("after the pings").await.expect("send");
        assert_eq!(raw.read_frame().await.payload, b"after the pings");
        raw.send_close(1000, "").await;
        assert!(reading.await.expect("reader task").is_none());
    })
    .await;
}

#[tokio::test]
async fn reunite_rebuilds_the_socket_and_refuses_halves_of_another() {
    bounded(async {
        let addr = spawn_echo(Config::default()).await;
        let url = ws_url(addr);
        let (a, _) = connect(&url, &Config::default()).await.expect("connect a");
        let (b, _) = connect(&url, &Config::default()).await.expect("connect b");
        let (reader_a, writer_a) = a.into_split();
        let (reader_b, writer_b) = b.into_split();

        let ReuniteError(reader_a, writer_b) =
            reader_a.reunite(writer_b).expect_err("mixed halves");
        let mut a = reader_a.reunite(writer_a).expect("a's own halves");
        let mut b = reader_b.reunite(writer_b).expect("b's own halves");

        for (ws, text) in [(&mut a, "to a"), (&mut b, "to b")] {
            ws.send(text).await.expect("send");
            let echoed = ws.recv().await.expect("a message").expect("no error");
            assert_eq!(echoed, Message::text(text));
        }
    })
    .await;
}

#[tokio::test]
async fn a_close_from_the_writer_completes_in_the_reader() {
    bounded(async {
        let (mut server, client) = ws_pair(&Config::default(), &Config::default()).await;
        let server_side = tokio::spawn(async move {
            assert!(server.recv().await.is_none());
            server.close_frame().cloned()
        });
        let (mut reader, mut writer) = client.into_split();
        let reading = tokio::spawn(async move {
            let next = reader.recv().await;
            (next.is_none(), reader.close_frame())
        });

        writer.close(CloseCode(4001), "bye").await.expect("close");
        let (ended_cleanly, reply) = reading.await.expect("reader task");
        assert!(ended_cleanly, "the reader did not see a clean close");
        assert_eq!(reply, Some(Some(CloseFrame::new(CloseCode(4001), ""))));
        let received = server_side.await.expect("server task");
        assert_eq!(
            received,
            Some(Some(CloseFrame::new(CloseCode(4001), "bye")))
        );

        let error = writer.send("late").await.expect_err("sent after close");
        assert!(error.is_closed(), "{error:?}");
    })
    .await;
}
