//! Gaps in a channel's live stream are repaired on the server from
//! history, without ending anyone's subscription; only a gap history
//! cannot fill ends subscriptions (`unsubscribe` 2500), never silently.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use clarion_hub::{Hub, Session};
use clarion_wire::{Data, Push, SubscribeResult, UnsubscribeCode};
use common::lossy::LossyBroker;
use common::*;

async fn hub_on(broker: &Arc<LossyBroker>) -> Hub {
    Hub::builder(config())
        .broker(broker.clone())
        .build()
        .await
        .unwrap()
}

async fn subscribed(hub: &Hub, channel: &str) -> (Session, SubscribeResult) {
    let s = connect(hub, "bob").await;
    let json = format!(r#"{{"id":2,"method":"subscribe","params":{{"channel":"{channel}"}}}}"#);
    let result = call(&s, &json).await.result().unwrap();
    (s, result)
}

async fn publish(hub: &Hub, channel: &str, n: u64) {
    hub.publish(channel, Data::from_value(&n).unwrap())
        .await
        .unwrap();
}

/// The offsets of the next `count` publication pushes.
async fn offsets(s: &Session, count: usize) -> Vec<u64> {
    let mut out = Vec::new();
    for _ in 0..count {
        match next_push(s).await {
            Push::Publication(p) => out.push(p.offset.unwrap()),
            other => panic!("expected a publication, got {other:?}"),
        }
    }
    out
}

#[tokio::test]
async fn lost_live_publications_are_repaired_from_history_in_order() {
    let broker = Arc::new(LossyBroker::default());
    let hub = hub_on(&broker).await;
    let (s, _) = subscribed(&hub, "news:r").await;
    publish(&hub, "news:r", 1).await;
    assert_eq!(offsets(&s, 1).await, [1]);

    broker.drop_next.store(2, Ordering::SeqCst);
    for n in 2..=5 {
        publish(&hub, "news:r", n).await;
    }
    assert_eq!(offsets(&s, 4).await, [2, 3, 4, 5]);
    assert_eq!(s.channels(), ["news:r"], "the subscription goes on");
    publish(&hub, "news:r", 6).await;
    assert_eq!(offsets(&s, 1).await, [6]);
    let info = hub.info();
    assert_eq!((info.gaps_repaired, info.gaps_unrecovered), (1, 0));
}

#[tokio::test]
async fn a_resync_delivers_what_was_lost_with_no_later_publication() {
    let broker = Arc::new(LossyBroker::default());
    let hub = hub_on(&broker).await;
    let (s, _) = subscribed(&hub, "news:q").await;
    publish(&hub, "news:q", 1).await;
    assert_eq!(offsets(&s, 1).await, [1]);
    broker.drop_next.store(2, Ordering::SeqCst);
    publish(&hub, "news:q", 2).await;
    publish(&hub, "news:q", 3).await;
    quiet(&s);
    // A broker reconnect: nothing else would reveal the loss.
    broker.resync(&["news:q"]);
    assert_eq!(offsets(&s, 2).await, [2, 3]);
    publish(&hub, "news:q", 4).await;
    assert_eq!(offsets(&s, 1).await, [4]);
}

#[tokio::test]
async fn a_gap_history_cannot_fill_ends_the_subscription_with_insufficient_state() {
    let broker = Arc::new(LossyBroker::default());
    let hub = hub_on(&broker).await;
    let (s, sub) = subscribed(&hub, "news:g").await;
    let epoch = sub.epoch.unwrap();
    publish(&hub, "news:g", 1).await;
    assert_eq!(offsets(&s, 1).await, [1]);
    // Offset 3 arrives; 2 is in no history (published nowhere).
    broker.inject("news:g", 3, &epoch);
    let Push::Unsubscribe(u) = next_push(&s).await else {
        panic!("expected unsubscribe")
    };
    assert_eq!(
        (u.channel.as_str(), u.code, u.resubscribe),
        ("news:g", UnsubscribeCode::InsufficientState, true)
    );
    tokio::task::yield_now().await;
    quiet(&s);
    assert!(s.channels().is_empty());
    assert_eq!(hub.info().gaps_unrecovered, 1);
}

#[tokio::test]
async fn a_resync_after_the_stream_was_lost_ends_the_subscription() {
    let broker = Arc::new(LossyBroker::default());
    let hub = hub_on(&broker).await;
    let (s, _) = subscribed(&hub, "news:l").await;
    publish(&hub, "news:l", 1).await;
    assert_eq!(offsets(&s, 1).await, [1]);
    hub.remove_history("news:l").await.unwrap();
    broker.resync(&["news:l"]);
    let Push::Unsubscribe(u) = next_push(&s).await else {
        panic!("expected unsubscribe")
    };
    assert_eq!(u.code, UnsubscribeCode::InsufficientState);
    // Resubscribing from the old position says what happened.
    let json = r#"{"id":3,"method":"subscribe","params":{"channel":"news:l","recover":true,"offset":1,"epoch":"old"}}"#;
    let again: SubscribeResult = call(&s, json).await.result().unwrap();
    assert_eq!(again.recovered, Some(false));
}

#[tokio::test]
async fn many_subscribers_see_one_repair_and_the_same_order() {
    let broker = Arc::new(LossyBroker::default());
    let hub = hub_on(&broker).await;
    let mut sessions = Vec::new();
    for _ in 0..5 {
        sessions.push(subscribed(&hub, "news:m").await.0);
    }
    publish(&hub, "news:m", 1).await;
    broker.drop_next.store(3, Ordering::SeqCst);
    for n in 2..=10 {
        publish(&hub, "news:m", n).await;
    }
    for s in &sessions {
        assert_eq!(offsets(s, 10).await, (1..=10).collect::<Vec<_>>());
    }
    assert_eq!(hub.info().gaps_repaired, 1);
}

#[tokio::test]
async fn joins_racing_the_last_leave_leave_the_node_subscribed() {
    let broker = Arc::new(LossyBroker::default());
    let hub = hub_on(&broker).await;
    for round in 0..20 {
        let channel = format!("chat:race{round}");
        let (first, _) = subscribed(&hub, &channel).await;
        // The last member leaves while another joins.
        let leave = tokio::spawn(async move { first.close().await });
        let hub2 = hub.clone();
        let ch = channel.clone();
        let join = tokio::spawn(async move { subscribed(&hub2, &ch).await });
        leave.await.unwrap();
        let (second, _) = join.await.unwrap();
        let on = broker.subscribed.lock().unwrap().get(&channel).copied();
        assert_eq!(
            on,
            Some(true),
            "round {round}: a member and no subscription"
        );
        second.close().await;
        let on = broker.subscribed.lock().unwrap().get(&channel).copied();
        assert_eq!(
            on,
            Some(false),
            "round {round}: no member, still subscribed"
        );
    }
}
