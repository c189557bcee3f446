//! Memory given back: after a mixed load closes, the server's RSS returns
//! near its baseline within seconds, without waiting for more connections
//! to come and go (issue 14: a few hundred compressed connections used to
//! leave tens of MiB behind until later churn).

use crate::support::*;

/// Opens a connection, compressed or not, and echoes one message of `len`
/// bytes on it; the connection stays open.
async fn open_and_echo(
    addr: SocketAddr,
    compressed: bool,
    len: usize,
) -> clarion_ws::WebSocket<clarion_ws::ClientStream> {
    let mut config = Config::default();
    if compressed {
        config.deflate = clarion_ws::proto::deflate::DeflateConfig::default();
    }
    config.protocol.max_message_size = 16 << 20;
    let url = format!("ws://{addr}/echo");
    let (mut ws, _) = clarion_ws::connect(&url, &config).await.expect("connect");
    let text = "chat message with some repetition ".repeat(len / 34 + 1);
    ws.send(text[..len].to_owned()).await.expect("send");
    let reply = timeout(Duration::from_secs(20), ws.recv()).await;
    assert!(matches!(reply, Ok(Some(Ok(_)))), "no echo: {reply:?}");
    ws
}

#[tokio::test]
pub(crate) async fn memory_comes_back_within_seconds_after_a_mixed_load_closes() {
    let target = Target::start(&[]).await;
    let mut open = Vec::new();
    for n in 0..240 {
        // Mostly compressed (what browsers negotiate), some plain, a few
        // with multi-MiB messages.
        let (compressed, len) = match n % 40 {
            0 => (false, 3 << 20),
            1 => (true, 2 << 20),
            k if k % 4 == 0 => (false, 300),
            _ => (true, 300),
        };
        open.push(open_and_echo(target.addr, compressed, len).await);
    }
    let peak = rss_kib(target.server.pid());
    assert!(
        peak > target.baseline_kib + 2 * RSS_SLACK_KIB,
        "the load should have cost memory: {peak} KiB, baseline {} KiB",
        target.baseline_kib
    );
    for mut ws in open {
        let _ = ws.close(clarion_ws::CloseCode::NORMAL, "").await;
    }
    let pid = target.server.pid();
    let limit = target.baseline_kib + RSS_SLACK_KIB;
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut rss = rss_kib(pid);
    while rss > limit && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        rss = rss_kib(pid);
    }
    eprintln!(
        "RSS: baseline {} KiB, peak {peak} KiB, after close {rss} KiB",
        target.baseline_kib
    );
    assert!(
        rss <= limit,
        "RSS {rss} KiB 5 s after close, limit {limit} KiB"
    );
}
