//! Slow and stuck peers: never reads, silent, never closes, never pongs, ping floods.

use crate::support::*;

// ---- slow and stuck peers --------------------------------------------------------

/// A client that sends much and never reads: the server's output stays
/// bounded by its write buffer (it stops reading), and after
/// `--write-timeout` without progress the connection is dropped.
#[tokio::test]
pub(crate) async fn a_client_that_never_reads_is_dropped_after_the_write_timeout() {
    let target = Target::start(&["--write-timeout", "1s", "--no-deflate"]).await;
    let mut stream = connect_with_socket(2, target.addr, |socket| {
        socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    })
    .await;
    let (status, head, _) = request(&mut stream, "").await;
    assert_eq!(status, 101, "{head}");
    let message = frame(FIN_BINARY, &vec![7; 64 * 1024]);
    let (started, mut sent, mut peak_kib) = (Instant::now(), 0usize, 0);
    let outcome = loop {
        if sent >= 256 << 20 {
            break "sent 256 MiB without being dropped";
        }
        match timeout(Duration::from_secs(5), stream.write_all(&message)).await {
            Ok(Ok(())) => sent += message.len(),
            Ok(Err(_)) => break "dropped",
            Err(_) => break "a write blocked for 5 s without being dropped",
        }
        peak_kib = peak_kib.max(rss_kib(target.server.pid()));
    };
    assert_eq!(outcome, "dropped", "after {sent} bytes");
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
    assert!(
        peak_kib <= target.baseline_kib + RSS_SLACK_KIB,
        "RSS peaked at {peak_kib} KiB (baseline {} KiB) after {sent} bytes",
        target.baseline_kib
    );
    target.assert_echo().await;
    target.assert_recovered().await;
}

/// A silent peer (half-open TCP looks the same): pinged half-way through
/// the idle timeout, closed with 1001 at it, and dropped at once (a
/// connection closed for silence does not wait for a close reply).
#[tokio::test]
pub(crate) async fn a_silent_peer_is_closed_with_1001_after_the_idle_timeout() {
    let target = Target::start(&["--idle-timeout", "600ms"]).await;
    let opened = Instant::now();
    let (mut stream, mut buf) = open_raw(2, target.addr, "").await;
    let ending = read_to_eof(&mut stream, &mut buf, READ_BOUND).await;
    assert_eq!(ending.close_code, Some(1001));
    let close_at = ending.close_at.expect("a close frame");
    let idle = close_at - opened;
    assert!(
        idle >= Duration::from_millis(550) && idle < Duration::from_secs(2),
        "{idle:?}"
    );
    let waited = ending.eof_at - close_at;
    assert!(
        waited < Duration::from_secs(1),
        "EOF {waited:?} after the close"
    );
    target.assert_recovered().await;
}

/// A client that never answers the server's close frame (here the 1001 of
/// a shutdown) is dropped after `--close-timeout`, not held.
#[tokio::test]
pub(crate) async fn a_client_that_never_answers_the_close_is_dropped_after_the_close_timeout() {
    let target = Target::start(&["--close-timeout", "500ms", "--shutdown-timeout", "5s"]).await;
    let (mut stream, mut buf) = open_raw(2, target.addr, "").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    target.server.terminate();
    let ending = read_to_eof(&mut stream, &mut buf, READ_BOUND).await;
    assert_eq!(ending.close_code, Some(1001));
    let waited = ending.eof_at - ending.close_at.expect("a close frame");
    assert!(
        waited >= Duration::from_millis(400) && waited < Duration::from_millis(1500),
        "EOF {waited:?} after the close frame"
    );
}

/// With `--ping-interval`, a peer that does not answer pings (half-open
/// TCP, a frozen client) is closed with 1011 after the pong timeout.
#[tokio::test]
pub(crate) async fn a_peer_that_never_pongs_is_closed_with_1011() {
    let target = Target::start(&[
        "--ping-interval",
        "200ms",
        "--pong-timeout",
        "400ms",
        "--idle-timeout",
        "off",
        "--close-timeout",
        "300ms",
    ])
    .await;
    let opened = Instant::now();
    let (mut stream, mut buf) = open_raw(2, target.addr, "").await;
    let ending = read_to_eof(&mut stream, &mut buf, READ_BOUND).await;
    assert_eq!(ending.close_code, Some(1011));
    let elapsed = ending.eof_at - opened;
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    target.assert_recovered().await;
}

/// A ping flood past `--max-control-frames-per-second` is closed with 1008.
#[tokio::test]
pub(crate) async fn a_ping_flood_is_closed_with_1008() {
    let target = Target::start(&["--max-control-frames-per-second", "20"]).await;
    let (mut stream, mut buf) = open_raw(2, target.addr, "").await;
    let pings: Vec<u8> = (0..500).flat_map(|_| frame(PING, b"flood")).collect();
    let _ = stream.write_all(&pings).await;
    let ending = read_to_eof(&mut stream, &mut buf, READ_BOUND).await;
    assert_eq!(ending.close_code, Some(1008));
    target.assert_recovered().await;
}
