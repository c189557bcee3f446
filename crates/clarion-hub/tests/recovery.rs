//! Subscribe with recovery: every missed publication in order, or
//! `recovered: false` — never partial, never a silent gap.

mod common;

use std::sync::Arc;
use std::time::Duration;

use clarion_hub::Hub;
use clarion_wire::{Data, Push, StreamPosition, SubscribeResult, UnsubscribeCode};
use common::lossy::LossyBroker;
use common::*;

async fn subscribe_from(
    s: &clarion_hub::Session,
    channel: &str,
    pos: &StreamPosition,
) -> SubscribeResult {
    let json = format!(
        r#"{{"id":7,"method":"subscribe","params":{{"channel":"{channel}","recover":true,"offset":{},"epoch":"{}"}}}}"#,
        pos.offset, pos.epoch
    );
    call(s, &json).await.result().unwrap()
}

async fn publish_n(hub: &Hub, channel: &str, range: std::ops::RangeInclusive<u64>) {
    for n in range {
        hub.publish(channel, Data::from_value(&n).unwrap())
            .await
            .unwrap();
    }
}

fn data_of(result: &SubscribeResult) -> Vec<(u64, String)> {
    result
        .publications
        .iter()
        .map(|p| (p.offset.unwrap(), p.data.get().to_owned()))
        .collect()
}

/// Subscribes, reads two publications live, and leaves: returns the position.
async fn seen_two(hub: &Hub, channel: &str) -> StreamPosition {
    let s = connect(hub, "bob").await;
    let first: SubscribeResult = call(
        &s,
        &format!(r#"{{"id":2,"method":"subscribe","params":{{"channel":"{channel}"}}}}"#),
    )
    .await
    .result()
    .unwrap();
    assert_eq!(first.recovered, None, "no recovery asked");
    publish_n(hub, channel, 1..=2).await;
    let mut last = None;
    for _ in 0..2 {
        let Push::Publication(p) = push(&s) else {
            panic!()
        };
        last = Some(StreamPosition {
            offset: p.offset.unwrap(),
            epoch: p.epoch.unwrap(),
        });
    }
    s.close().await;
    last.unwrap()
}

#[tokio::test]
async fn resubscribing_with_a_position_gets_exactly_the_missed_ones() {
    let hub = hub().await;
    let pos = seen_two(&hub, "news:r").await;
    assert_eq!(pos.offset, 2);
    publish_n(&hub, "news:r", 3..=5).await;

    let s = connect(&hub, "bob").await;
    let result = subscribe_from(&s, "news:r", &pos).await;
    assert_eq!(result.recovered, Some(true));
    assert_eq!(
        data_of(&result),
        [(3, "3".into()), (4, "4".into()), (5, "5".into())]
    );
    assert_eq!(
        result.position(),
        Some(StreamPosition {
            offset: 5,
            epoch: pos.epoch.clone()
        })
    );
    quiet(&s);
    // Live delivery continues right after the recovered ones.
    publish_n(&hub, "news:r", 6..=6).await;
    let Push::Publication(p) = push(&s) else {
        panic!()
    };
    assert_eq!(p.offset, Some(6));
}

#[tokio::test]
async fn nothing_missed_is_a_recovery_too() {
    let hub = hub().await;
    let pos = seen_two(&hub, "news:n").await;
    let s = connect(&hub, "bob").await;
    let result = subscribe_from(&s, "news:n", &pos).await;
    assert_eq!(result.recovered, Some(true));
    assert!(result.publications.is_empty());
}

#[tokio::test]
async fn trimmed_history_is_not_recovered() {
    let hub = hub().await;
    // feed keeps 3 publications.
    let pos = seen_two(&hub, "feed:t").await;
    publish_n(&hub, "feed:t", 3..=6).await;
    let s = connect(&hub, "bob").await;
    let result = subscribe_from(&s, "feed:t", &pos).await;
    assert_eq!(result.recovered, Some(false));
    assert!(result.publications.is_empty(), "never a partial recovery");
    assert_eq!(result.offset, Some(6));
}

#[tokio::test(start_paused = true)]
async fn expired_history_is_not_recovered() {
    let hub = hub().await;
    // feed keeps each publication 5 s.
    let pos = seen_two(&hub, "feed:e").await;
    publish_n(&hub, "feed:e", 3..=3).await;
    tokio::time::advance(Duration::from_secs(6)).await;
    let s = connect(&hub, "bob").await;
    let result = subscribe_from(&s, "feed:e", &pos).await;
    assert_eq!(result.recovered, Some(false));
    assert!(result.publications.is_empty());
    assert_eq!(
        result.epoch.as_deref(),
        Some(pos.epoch.as_str()),
        "same stream, data gone"
    );
}

#[tokio::test(start_paused = true)]
async fn expired_stream_has_a_new_epoch_and_is_not_recovered() {
    let hub = hub().await;
    let pos = seen_two(&hub, "feed:m").await;
    tokio::time::advance(Duration::from_secs(31)).await;
    publish_n(&hub, "feed:m", 1..=1).await;
    let s = connect(&hub, "bob").await;
    let result = subscribe_from(&s, "feed:m", &pos).await;
    assert_eq!(result.recovered, Some(false));
    assert_ne!(result.epoch, Some(pos.epoch));
}

#[tokio::test]
async fn removed_history_or_a_foreign_epoch_is_not_recovered() {
    let hub = hub().await;
    let pos = seen_two(&hub, "news:x").await;
    let s = connect(&hub, "bob").await;
    let foreign = StreamPosition {
        offset: 1,
        epoch: "someone-else".into(),
    };
    assert_eq!(
        subscribe_from(&s, "news:x", &foreign).await.recovered,
        Some(false)
    );
    call(
        &s,
        r#"{"id":8,"method":"unsubscribe","params":{"channel":"news:x"}}"#,
    )
    .await;

    hub.remove_history("news:x").await.unwrap();
    publish_n(&hub, "news:x", 1..=3).await;
    let result = subscribe_from(&s, "news:x", &pos).await;
    assert_eq!(result.recovered, Some(false));
    assert_eq!(result.offset, Some(3));
    assert!(result.publications.is_empty());
}

#[tokio::test]
async fn a_position_from_the_future_is_not_recovered() {
    let hub = hub().await;
    let mut pos = seen_two(&hub, "news:f").await;
    pos.offset = 99;
    let s = connect(&hub, "bob").await;
    assert_eq!(
        subscribe_from(&s, "news:f", &pos).await.recovered,
        Some(false)
    );
}

#[tokio::test]
async fn connect_recovers_server_side_subscriptions() {
    let hub = hub().await;
    let pos = seen_two(&hub, "news:c").await;
    publish_n(&hub, "news:c", 3..=4).await;
    let creds = clarion_hub::Credentials {
        user: "bob".into(),
        channels: vec!["news:c".into()],
        ..Default::default()
    };
    let frame = format!(
        r#"{{"id":1,"method":"connect","params":{{"subs":{{"news:c":{{"offset":{},"epoch":"{}"}}}}}}}}"#,
        pos.offset, pos.epoch
    );
    let (_s, reply) = connect_with(&hub, creds, &frame).await;
    let result: clarion_wire::ConnectResult = reply.result().unwrap();
    let sub = &result.subs["news:c"];
    assert_eq!(sub.recovered, Some(true));
    assert_eq!(data_of(sub), [(3, "3".into()), (4, "4".into())]);
}

/// A broker that forwards to the memory broker but lets the test inject
/// live events (a lost publication, a new epoch).
#[tokio::test]
async fn a_new_epoch_in_live_delivery_ends_the_subscription() {
    let broker = Arc::new(LossyBroker::default());
    let hub = Hub::builder(config())
        .broker(broker.clone())
        .build()
        .await
        .unwrap();
    let s = connect(&hub, "bob").await;
    call(
        &s,
        r#"{"id":2,"method":"subscribe","params":{"channel":"news:e"}}"#,
    )
    .await;
    broker.inject("news:e", 1, "a-new-stream");
    let Push::Unsubscribe(u) = push(&s) else {
        panic!("expected unsubscribe")
    };
    assert_eq!(u.code, UnsubscribeCode::InsufficientState);
    // Duplicates of what was delivered are dropped, not errors.
    let s2 = connect(&hub, "carol").await;
    call(
        &s2,
        r#"{"id":2,"method":"subscribe","params":{"channel":"news:d"}}"#,
    )
    .await;
    publish_n(&hub, "news:d", 1..=1).await;
    let Push::Publication(_) = push(&s2) else {
        panic!()
    };
    let epoch = hub.history("news:d", 0, None, false).await.unwrap().epoch;
    broker.inject("news:d", 1, &epoch);
    quiet(&s2);
    assert_eq!(s2.channels(), ["news:d"]);
}

#[tokio::test]
async fn publications_racing_a_subscribe_come_once_and_in_order() {
    let broker = Arc::new(LossyBroker::default());
    let hub = Hub::builder(config())
        .broker(broker.clone())
        .build()
        .await
        .unwrap();
    let pos = seen_two(&hub, "news:race").await;
    publish_n(&hub, "news:race", 3..=3).await;
    *broker.race.lock().unwrap() = Some("news:race".into());
    let s = connect(&hub, "bob").await;
    let result = subscribe_from(&s, "news:race", &pos).await;
    assert_eq!(result.recovered, Some(true));
    assert_eq!(
        data_of(&result),
        [(3, "3".into()), (4, r#""during""#.into())]
    );
    // "during" was also delivered live while subscribing: not again.
    let Push::Publication(p) = push(&s) else {
        panic!()
    };
    assert_eq!((p.offset, p.data.get()), (Some(5), r#""after""#));
    quiet(&s);
}

#[tokio::test]
async fn publications_racing_a_plain_subscribe_follow_the_reply() {
    let broker = Arc::new(LossyBroker::default());
    let hub = Hub::builder(config())
        .broker(broker.clone())
        .build()
        .await
        .unwrap();
    *broker.race.lock().unwrap() = Some("news:plain".into());
    let s = connect(&hub, "bob").await;
    let result: SubscribeResult = call(
        &s,
        r#"{"id":2,"method":"subscribe","params":{"channel":"news:plain"}}"#,
    )
    .await
    .result()
    .unwrap();
    // The reply's position already counts "during"; only "after" follows.
    assert_eq!(result.offset, Some(1));
    let Push::Publication(p) = push(&s) else {
        panic!()
    };
    assert_eq!((p.offset, p.data.get()), (Some(2), r#""after""#));
    quiet(&s);
}

#[tokio::test]
async fn a_recovery_larger_than_half_the_queue_says_not_recovered() {
    let mut cfg = config();
    cfg.queue.max_bytes = 64 * 1024;
    let hub = Hub::builder(cfg).build().await.unwrap();
    let s = connect(&hub, "bob").await;
    let first: SubscribeResult = call(
        &s,
        r#"{"id":2,"method":"subscribe","params":{"channel":"news:big"}}"#,
    )
    .await
    .result()
    .unwrap();
    let big = Data::from_value(&"x".repeat(16 * 1024)).unwrap();
    for _ in 0..3 {
        hub.publish("news:big", big.clone()).await.unwrap();
    }
    let since = first.position().unwrap();
    drain(&s);
    s.close().await;
    let again = connect(&hub, "bob").await;
    let result = subscribe_from(&again, "news:big", &since).await;
    assert_eq!(
        result.recovered,
        Some(false),
        "48 KiB is over half of 64 KiB"
    );
    assert!(result.publications.is_empty());
    assert!(!again.is_closing(), "the client was not cut off");
}
