//! Connecting a session is cancel-safe: a transport whose request goes
//! away half-way through `Hub::connect` leaves nothing behind.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use clarion_hub::{Credentials, Hub};
use common::lossy::LossyBroker;
use common::*;

#[tokio::test]
async fn a_connect_dropped_half_way_leaves_no_session() {
    let broker = Arc::new(LossyBroker::default());
    let hub = Hub::builder(config())
        .broker(broker.clone())
        .build()
        .await
        .unwrap();
    broker.stall_subscribe.store(true, Ordering::SeqCst);
    let (id, req) = hub
        .decode_connect(br#"{"id":1,"method":"connect"}"#)
        .unwrap();
    let creds = Credentials {
        user: "bob".into(),
        channels: vec!["chat:stuck".into()],
        ..Credentials::default()
    };
    let connect = hub.connect(creds, id, &req);
    let outcome = tokio::time::timeout(Duration::from_millis(100), connect).await;
    assert!(outcome.is_err(), "the stalled broker holds the connect");
    assert_eq!(hub.info().clients, 1, "registered while connecting");
    // The future was dropped: the session goes, in a spawned task.
    for _ in 0..100 {
        if hub.info().clients == 0 && hub.info().channels == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("a dropped connect left {:?}", hub.info());
}
