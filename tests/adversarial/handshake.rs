//! The opening handshake: slowloris, oversized heads, long URLs, foreign origins.

use crate::support::*;

// ---- the opening handshake -------------------------------------------------

/// Slowloris: clients that trickle their head get 408 once the handshake
/// timeout passes, however they trickle, and the server serves others.
#[tokio::test]
pub(crate) async fn slowloris_handshakes_get_408_after_the_handshake_timeout() {
    let target = Target::start(&["--handshake-timeout", "500ms"]).await;
    let started = Instant::now();
    let mut slow = Vec::new();
    for _ in 0..40 {
        let mut stream = connect_from(2, target.addr).await;
        let _ = stream.write_all(b"GET /echo HTTP/1.1\r\nHost: x\r\n").await;
        slow.push(stream);
    }
    for _ in 0..3 {
        for stream in &mut slow {
            let _ = stream.write_all(b"X-Slow: 1\r\n").await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    target.assert_echo().await;
    for stream in &mut slow {
        let head = read_head(stream, &mut BytesMut::new()).await;
        assert_eq!(status(&head), 408, "{head}");
    }
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    target.assert_recovered().await;
}

/// Heads too big (431), with too many headers (431), a target too long
/// (414), sent by 20 clients each.
#[tokio::test]
pub(crate) async fn oversized_heads_get_431_and_long_urls_414() {
    let target = Target::start(&[]).await;
    let big_header = format!("X-Big: {}\r\n", "a".repeat(20 * 1024));
    let many_headers = "X-Many: 1\r\n".repeat(100);
    let long_url = format!(
        "GET /{} HTTP/1.1\r\nHost: x\r\n{KEY_HEADERS}\r\n",
        "u".repeat(9000)
    );
    let cases: [(&str, &[u8], u16); 3] = [
        ("oversized head", big_header.as_bytes(), 431),
        ("too many headers", many_headers.as_bytes(), 431),
        ("long URL", long_url.as_bytes(), 414),
    ];
    for (what, bytes, want) in cases {
        let mut clients = Vec::new();
        for _ in 0..20 {
            let mut stream = connect_from(2, target.addr).await;
            if want == 414 {
                let _ = stream.write_all(bytes).await;
            } else {
                let head = format!("GET /echo HTTP/1.1\r\nHost: x\r\n{KEY_HEADERS}");
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(bytes).await;
                let _ = stream.write_all(b"\r\n").await;
            }
            clients.push(stream);
        }
        for stream in &mut clients {
            let head = read_head(stream, &mut BytesMut::new()).await;
            assert_eq!(status(&head), want, "{what}: {head}");
        }
        target.assert_echo().await;
    }
    target.assert_recovered().await;
}

/// Cross-Site WebSocket Hijacking: an Origin off the list gets 403 (look-
/// alikes and tricks too); listed ones and clients without Origin get in.
#[tokio::test]
pub(crate) async fn a_foreign_origin_gets_403() {
    let target = Target::start(&[
        "--allowed-origin",
        "https://app.example.com",
        "--allowed-origin",
        "https://*.example.com",
    ])
    .await;
    for origin in [
        "https://evil.example.net",
        "https://evilexample.com",
        "https://example.com",
        "https://app.example.com.evil.net",
        "https://app.example.com@evil.net",
        "null",
    ] {
        let mut stream = connect_from(2, target.addr).await;
        let (status, head, body) = request(&mut stream, &format!("Origin: {origin}\r\n")).await;
        assert_eq!(status, 403, "{origin}: {head}");
        assert!(
            !String::from_utf8_lossy(&body).contains("evil"),
            "body echoes the origin"
        );
    }
    for origin in ["https://app.example.com", "HTTPS://Chat.Example.com"] {
        open_raw(2, target.addr, &format!("Origin: {origin}\r\n")).await;
    }
    // `assert_echo` sends no Origin, like any non-browser client.
    target.assert_recovered().await;
}
