//! Connection admission: totals, per-IP counts and rates.

use crate::support::*;

// ---- admission -----------------------------------------------------------------

/// Past `--max-connections`, 503 with Retry-After, for everyone; places come
/// back when connections end.
#[tokio::test]
pub(crate) async fn too_many_connections_in_total_get_503() {
    let target = Target::start(&["--max-connections", "10"]).await;
    let mut held = Vec::new();
    for source in 10..20 {
        // The warm-up echo's connection may still be closing: wait for it.
        let mut tries = 0;
        loop {
            let mut stream = connect_from(source, target.addr).await;
            match request(&mut stream, "").await {
                (101, ..) => break held.push(stream),
                (503, ..) if tries < 40 => tries += 1,
                (_, head, _) => panic!("{head}"),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    for source in [30, 1] {
        let mut stream = connect_from(source, target.addr).await;
        let (status, head, _) = request(&mut stream, "").await;
        assert_eq!(status, 503, "{head}");
        assert!(
            head.to_ascii_lowercase().contains("\r\nretry-after: 1\r\n"),
            "{head}"
        );
    }
    drop(held);
    target.assert_recovered().await;
}

/// Past `--max-connections-per-ip`, 429 for that address only.
#[tokio::test]
pub(crate) async fn too_many_connections_from_one_ip_get_429() {
    let target = Target::start(&["--max-connections-per-ip", "5"]).await;
    let mut held = Vec::new();
    for _ in 0..5 {
        held.push(open_raw(3, target.addr, "").await);
    }
    for _ in 0..20 {
        let mut stream = connect_from(3, target.addr).await;
        let (status, head, _) = request(&mut stream, "").await;
        assert_eq!(status, 429, "{head}");
        assert!(
            head.to_ascii_lowercase().contains("\r\nretry-after: "),
            "{head}"
        );
    }
    target.assert_echo().await;
    drop(held);
    target.assert_recovered().await;
}

/// Past the rate of new connections per IP (after the burst), 429 with
/// Retry-After; other addresses are not affected.
#[tokio::test]
pub(crate) async fn connecting_too_fast_from_one_ip_gets_429() {
    let target = Target::start(&[
        "--max-new-connections-per-second",
        "2",
        "--new-connection-burst",
        "5",
    ])
    .await;
    let mut statuses = Vec::new();
    for _ in 0..30 {
        let mut stream = connect_from(4, target.addr).await;
        statuses.push(request(&mut stream, "").await.0);
    }
    assert_eq!(statuses[..5], [101; 5], "{statuses:?}");
    let refused = statuses.iter().filter(|&&s| s == 429).count();
    assert!(refused >= 20, "{statuses:?}");
    assert!(
        statuses.iter().all(|&s| s == 101 || s == 429),
        "{statuses:?}"
    );
    target.assert_echo().await;
    target.assert_recovered().await;
}
