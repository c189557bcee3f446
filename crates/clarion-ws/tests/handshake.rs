//! The opening handshake over real loopback sockets: what a server answers
//! to valid and malformed requests, and how a client treats bad answers.

mod common;

use std::time::Instant;

use clarion_ws::{
    accept, accept_with, connect, connect_with, Accept, Config, ConnectOptions, Error, Reject,
};
use common::*;
use http::header::{HeaderValue, ORIGIN};
use http::StatusCode;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Sends `request` to a fresh server, reads its answer to EOF, and returns
/// the answer with the error `accept` returned.
async fn rejected(request: &[u8], config: Config) -> (Head, Error) {
    let (listener, addr) = listen().await;
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.expect("accepting");
        accept(tcp, &config).await.map(drop)
    });
    let mut tcp = TcpStream::connect(addr).await.expect("connecting");
    tcp.write_all(request).await.expect("writing the request");
    let response = parse_response(&read_to_eof(&mut tcp).await);
    let error = server.await.expect("server task").expect_err("accepted");
    (response, error)
}

/// Asserts the server answered `status` and `accept` reported the same.
fn assert_refused(response: &Head, error: &Error, status: u16) {
    assert_eq!(response.status(), status, "{response:?}");
    assert!(error.is_handshake(), "{error:?}");
    assert_eq!(error.http_status().map(|s| s.as_u16()), Some(status));
}

#[tokio::test]
async fn rfc_sample_request_gets_101_with_the_rfc_accept_key() {
    bounded(async {
        let (listener, addr) = listen().await;
        let server = tokio::spawn(async move { accept_one(&listener, &Config::default()).await });
        // RawPeer::connect sends the RFC 6455 section 1.3 request and checks
        // for 101 with `Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=`.
        let _raw = RawPeer::connect(addr).await;
        let ws = server.await.expect("server task");
        assert_eq!(ws.protocol(), None, "no subprotocol configured");
    })
    .await;
}

#[tokio::test]
async fn a_method_other_than_get_is_405() {
    bounded(async {
        let request = rfc_request().replace("GET /chat", "POST /chat");
        let (response, error) = rejected(request.as_bytes(), Config::default()).await;
        assert_refused(&response, &error, 405);
        assert_eq!(response.header("allow"), Some("GET"));
    })
    .await;
}

#[tokio::test]
async fn a_missing_upgrade_header_is_426() {
    bounded(async {
        let request = rfc_request().replace("Upgrade: websocket\r\n", "");
        let (response, error) = rejected(request.as_bytes(), Config::default()).await;
        assert_refused(&response, &error, 426);
    })
    .await;
}

#[tokio::test]
async fn a_bad_version_is_426_naming_version_13() {
    bounded(async {
        let request = rfc_request().replace("Version: 13", "Version: 8");
        let (response, error) = rejected(request.as_bytes(), Config::default()).await;
        assert_refused(&response, &error, 426);
        assert_eq!(response.header("sec-websocket-version"), Some("13"));
    })
    .await;
}

#[tokio::test]
async fn a_key_that_is_not_16_bytes_is_400() {
    bounded(async {
        // "c2hvcnQ=" is base64 of the 5 bytes "short".
        let request = rfc_request().replace(RFC_KEY, "c2hvcnQ=");
        let (response, error) = rejected(request.as_bytes(), Config::default()).await;
        assert_refused(&response, &error, 400);
    })
    .await;
}

#[tokio::test]
async fn a_head_over_the_limit_is_431() {
    bounded(async {
        // 20 KiB of headers and no blank line: the default limit is 16 KiB.
        let mut request = "GET /chat HTTP/1.1\r\nHost: a\r\n".to_owned();
        while request.len() < 20 * 1024 {
            request.push_str("X-Filler: 0123456789abcdef0123456789abcdef\r\n");
        }
        let (response, error) = rejected(request.as_bytes(), Config::default()).await;
        assert_refused(&response, &error, 431);
    })
    .await;
}

#[tokio::test]
async fn too_many_headers_is_431() {
    bounded(async {
        // 70 header lines against the default limit of 64, in well under 16 KiB.
        let extra: String = (0..70).map(|i| format!("X-{i}: v\r\n")).collect();
        let request = rfc_request().replace("Host:", &format!("{extra}Host:"));
        let (response, error) = rejected(request.as_bytes(), Config::default()).await;
        assert_refused(&response, &error, 431);
    })
    .await;
}

#[tokio::test]
async fn a_slowloris_gets_408_after_the_handshake_timeout() {
    bounded(async {
        let mut config = Config::default();
        config.handshake_timeout = ms(300);
        let start = Instant::now();
        let (response, error) = rejected(b"GET /chat HTTP/1.1\r\nHost: a\r\n", config).await;
        let elapsed = start.elapsed();
        assert_eq!(response.status(), 408, "{response:?}");
        assert!(error.is_timeout(), "{error:?}");
        assert!(elapsed >= ms(290) && elapsed < ms(2000), "{elapsed:?}");
    })
    .await;
}

#[tokio::test]
async fn an_origin_refused_by_policy_gives_the_client_403() {
    bounded(async {
        let (listener, addr) = listen().await;
        let server = tokio::spawn(async move {
            let mut results = Vec::new();
            for _ in 0..2 {
                let (tcp, _) = listener.accept().await.expect("accepting");
                let accepted =
                    accept_with(tcp, &Config::default(), |request| match request.origin() {
                        Some("https://app.example") => Ok(Accept::default()),
                        _ => Err(Reject::new(StatusCode::FORBIDDEN)),
                    })
                    .await;
                results.push(accepted.map(drop));
            }
            results
        });
        let client = |origin: &'static str| {
            let mut options = ConnectOptions::default();
            options
                .headers
                .insert(ORIGIN, HeaderValue::from_static(origin));
            async move { connect_with(&ws_url(addr), &Config::default(), &options).await }
        };

        let error = client("https://evil.example").await.expect_err("connected");
        assert!(error.is_handshake(), "{error:?}");
        assert_eq!(error.http_status(), Some(StatusCode::FORBIDDEN));
        client("https://app.example").await.expect("trusted origin");

        let results = server.await.expect("server task");
        let refused = results[0].as_ref().expect_err("evil origin accepted");
        assert_eq!(refused.http_status(), Some(StatusCode::FORBIDDEN));
        assert!(results[1].is_ok(), "{:?}", results[1]);
    })
    .await;
}

#[tokio::test]
async fn the_server_picks_the_subprotocol_by_its_own_preference() {
    bounded(async {
        let mut server_config = Config::default();
        server_config.subprotocols = vec!["chat.v2".into(), "chat.v1".into()];
        let mut client_config = Config::default();
        client_config.subprotocols = vec!["chat.v1".into(), "chat.v2".into()];
        let (server, client) = ws_pair(&server_config, &client_config).await;
        assert_eq!(server.protocol(), Some("chat.v2"));
        assert_eq!(client.protocol(), Some("chat.v2"));
    })
    .await;
}

#[tokio::test]
async fn a_frame_sent_in_the_same_write_as_the_request_is_not_lost() {
    bounded(async {
        let (listener, addr) = listen().await;
        let server = tokio::spawn(async move {
            let mut ws = accept_one(&listener, &Config::default()).await;
            ws.recv().await
        });
        let early = encode_frame(true, op::TEXT, b"early bird", Some([1, 2, 3, 4]));
        let tcp = TcpStream::connect(addr).await.expect("connecting");
        let _raw = RawPeer::client_handshake(tcp, &early).await;
        let first = server.await.expect("server task");
        assert_eq!(
            first.expect("a message").expect("no error"),
            "early bird".into()
        );
    })
    .await;
}

// ---- the client side --------------------------------------------------------

#[tokio::test]
async fn a_client_answered_200_reports_the_status() {
    bounded(async {
        let (listener, addr) = listen().await;
        tokio::spawn(async move {
            let (mut io, _request) = accept_request(&listener).await;
            let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
            io.write_all(answer).await.expect("writing");
            let _ = read_to_eof(&mut io).await;
        });
        let error = connect(&ws_url(addr), &Config::default())
            .await
            .expect_err("connected");
        assert!(error.is_handshake(), "{error:?}");
        assert_eq!(error.http_status(), Some(StatusCode::OK));
    })
    .await;
}

#[tokio::test]
async fn a_client_rejects_a_wrong_accept_key() {
    bounded(async {
        let (listener, addr) = listen().await;
        tokio::spawn(async move {
            let (mut io, _request) = accept_request(&listener).await;
            // The RFC sample's accept value, which is not the hash of our random key.
            let answer = format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
                 Connection: Upgrade\r\nSec-WebSocket-Accept: {RFC_ACCEPT}\r\n\r\n"
            );
            io.write_all(answer.as_bytes()).await.expect("writing");
            let _ = read_to_eof(&mut io).await;
        });
        let error = connect(&ws_url(addr), &Config::default())
            .await
            .expect_err("connected");
        assert!(error.is_handshake(), "{error:?}");
        assert!(
            error.to_string().contains("Sec-WebSocket-Accept"),
            "{error}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_client_handshake_times_out_when_the_server_never_answers() {
    bounded(async {
        let (listener, addr) = listen().await;
        let silent = tokio::spawn(async move {
            let (mut io, _request) = accept_request(&listener).await;
            read_to_eof(&mut io).await // hold the socket, say nothing
        });
        let mut config = Config::default();
        config.handshake_timeout = ms(300);
        let start = Instant::now();
        let error = connect(&ws_url(addr), &config)
            .await
            .expect_err("connected");
        let elapsed = start.elapsed();
        assert!(error.is_timeout(), "{error:?}");
        assert!(elapsed >= ms(290) && elapsed < ms(2000), "{elapsed:?}");
        // The client dropped the connection after giving up.
        silent.await.expect("silent server");
    })
    .await;
}
