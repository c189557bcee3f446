//! TLS (silent handshakes, certificate reload) and graceful shutdown.

use crate::support::*;

// ---- TLS -------------------------------------------------------------------

/// A client that opens TCP and never starts TLS is dropped after
/// `--tls-handshake-timeout`, separately from the (long) WebSocket
/// handshake timeout.
#[tokio::test]
pub(crate) async fn a_silent_tls_client_is_dropped_after_the_tls_handshake_timeout() {
    let target = Target::start_with(
        Transport::Wss,
        &[
            "--tls-handshake-timeout",
            "300ms",
            "--handshake-timeout",
            "30s",
        ],
    )
    .await;
    let started = Instant::now();
    let mut stream = connect_from(2, target.addr).await;
    let mut byte = [0; 1];
    let read = timeout(READ_BOUND, stream.read(&mut byte)).await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "{read:?}");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(250) && elapsed < Duration::from_secs(2),
        "{elapsed:?}"
    );
}

/// SIGHUP makes the server use the certificate files' new contents: a
/// client that trusts only the new certificate gets in after the signal,
/// not before.
#[tokio::test]
pub(crate) async fn sighup_reloads_the_tls_certificate() {
    let target = Target::start_with(Transport::Wss, &[]).await;
    let served = target
        .server
        .cert
        .as_ref()
        .expect("a wss server has a cert");
    let fresh = clarion_test_support::self_signed_cert();
    let connect = || {
        let mut options = ConnectOptions::default();
        options.tls = TlsClientOptions {
            ca_file: Some(fresh.cert_pem.clone()),
            insecure: false,
        };
        let url = format!("wss://localhost:{}/echo", target.addr.port());
        async move { clarion_ws::connect_with(&url, &Config::default(), &options).await }
    };
    assert!(
        connect().await.is_err(),
        "the new certificate is not served yet"
    );
    std::fs::copy(&fresh.cert_pem, &served.cert_pem).unwrap();
    std::fs::copy(&fresh.key_pem, &served.key_pem).unwrap();
    target.server.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match connect().await {
            Ok(_) => break,
            Err(err) if Instant::now() > deadline => {
                panic!("{err}\n--- server stderr ---\n{}", target.server.stderr())
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

// ---- shutdown ------------------------------------------------------------------

/// SIGTERM: every connection, including one in the middle of a fragmented
/// message, gets a close frame with 1001; then the server exits 0.
#[tokio::test]
pub(crate) async fn sigterm_closes_every_connection_with_1001_then_exits_0() {
    let target = Target::start(&["--close-timeout", "2s"]).await;
    let url = format!("ws://{}/echo", target.addr);
    let (mut client, _) = clarion_ws::connect(&url, &Config::default()).await.unwrap();
    let (mut mid_message, mut buf) = open_raw(2, target.addr, "").await;
    mid_message
        .write_all(&frame(0x02, b"first half"))
        .await
        .unwrap();
    let (_silent, _) = open_raw(3, target.addr, "").await;
    tokio::time::sleep(Duration::from_millis(100)).await;

    target.server.terminate();
    let closed = timeout(READ_BOUND, client.recv()).await;
    assert!(matches!(closed, Ok(None)), "{closed:?}");
    let frame_seen = client
        .close_frame()
        .cloned()
        .flatten()
        .expect("a close frame");
    assert_eq!(frame_seen.code, clarion_ws::CloseCode::GOING_AWAY);
    let (opcode, payload) = timeout(READ_BOUND, read_frame(&mut mid_message, &mut buf))
        .await
        .expect("in time")
        .expect("a frame");
    assert_eq!((opcode, &payload[..2]), (0x8, &1001u16.to_be_bytes()[..]));
    // The silent peer never answers: the server waits at most the close
    // timeout for it, well within the shutdown timeout.
    let started = Instant::now();
    let status = tokio::task::spawn_blocking(move || {
        let mut target = target;
        let status = target.server.wait(Duration::from_secs(10));
        (status, target)
    });
    let (status, _target) = status.await.unwrap();
    let status = status.expect("the server exits");
    assert!(status.success(), "{status}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}

/// The shutdown wait is bounded by `--shutdown-timeout` even when clients
/// never answer and the close timeout is longer.
#[tokio::test]
pub(crate) async fn shutdown_is_bounded_by_the_shutdown_timeout() {
    let target = Target::start(&["--close-timeout", "30s", "--shutdown-timeout", "500ms"]).await;
    let (_silent, _) = open_raw(2, target.addr, "").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    target.server.terminate();
    let status = tokio::task::spawn_blocking(move || {
        let mut target = target;
        target.server.wait(Duration::from_secs(10))
    });
    let status = status.await.unwrap().expect("the server exits");
    assert!(status.success(), "{status}");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(400) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
}
