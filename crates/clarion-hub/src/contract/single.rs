//! Contract cases on one node.

use std::time::Duration;

use super::*;
use crate::broker::{BrokerErrorKind, PresenceChange, PresenceEntry};

/// Offsets start at 1 and increase by one; live delivery follows them in order.
pub async fn live_delivery_in_offset_order<H: Harness>(h: &H) {
    let (b, rec) = started(h).await;
    let ch = channel("order");
    b.subscribe(&ch).await.unwrap();
    let mut epoch = None;
    for n in 1..=20 {
        let pos = publish(&*b, &ch, n, opts(100, 60, 600)).await;
        assert_eq!(pos.offset, n);
        assert_eq!(*epoch.get_or_insert(pos.epoch.clone()), pos.epoch);
    }
    let want: Vec<_> = (1..=20)
        .map(|n| (Some(n), n.to_string(), epoch.clone()))
        .collect();
    eventually(h, "20 publications", || rec.publications(&ch).len() >= 20).await;
    assert_eq!(rec.publications(&ch), want);
}

/// Without history options a publication is delivered with no position.
pub async fn publish_without_history_is_live_only<H: Harness>(h: &H) {
    let (b, rec) = started(h).await;
    let ch = channel("live");
    b.subscribe(&ch).await.unwrap();
    assert_eq!(b.publish(&ch, pub_n(7), None).await.unwrap(), None);
    eventually(h, "the publication", || !rec.publications(&ch).is_empty()).await;
    settle(h).await;
    assert_eq!(rec.publications(&ch), vec![(None, "7".to_owned(), None)]);
    let (offsets, pos) = read(&*b, &ch, None, 10, false).await;
    assert!(offsets.is_empty());
    assert_eq!(pos.offset, 0);
}

/// `since` is exclusive; the page is in offset order with the current top.
pub async fn history_since_returns_what_was_missed<H: Harness>(h: &H) {
    let (b, _) = started(h).await;
    let ch = channel("since");
    let mut top = None;
    for n in 1..=5 {
        top = Some(publish(&*b, &ch, n, opts(100, 60, 600)).await);
    }
    let top = top.unwrap();
    let (offsets, pos) = read(&*b, &ch, at(2, &top.epoch), 10, false).await;
    assert_eq!(offsets, vec![3, 4, 5]);
    assert_eq!(pos, top);
    let (offsets, _) = read(&*b, &ch, at(5, &top.epoch), 10, false).await;
    assert!(offsets.is_empty());
    let (offsets, _) = read(&*b, &ch, at(0, &top.epoch), 2, false).await;
    assert_eq!(offsets, vec![1, 2]);
    let (offsets, pos) = read(&*b, &ch, None, 0, false).await;
    assert!(offsets.is_empty(), "limit 0 reads only the position");
    assert_eq!(pos, top);
}

/// `reverse` reads newest first, before `since`.
pub async fn history_reverse_and_limit<H: Harness>(h: &H) {
    let (b, _) = started(h).await;
    let ch = channel("reverse");
    for n in 1..=5 {
        publish(&*b, &ch, n, opts(100, 60, 600)).await;
    }
    let (offsets, pos) = read(&*b, &ch, None, 2, true).await;
    assert_eq!(offsets, vec![5, 4]);
    let (offsets, _) = read(&*b, &ch, at(4, &pos.epoch), 10, true).await;
    assert_eq!(offsets, vec![3, 2, 1]);
}

/// At most `size` publications are kept: the oldest go first.
pub async fn history_size_trims_oldest<H: Harness>(h: &H) {
    let (b, _) = started(h).await;
    let ch = channel("size");
    for n in 1..=5 {
        publish(&*b, &ch, n, opts(3, 60, 600)).await;
    }
    let (offsets, pos) = read(&*b, &ch, None, 10, false).await;
    assert_eq!(offsets, vec![3, 4, 5]);
    assert_eq!(pos.offset, 5);
}

/// Each publication is kept for `ttl`; the position survives it.
pub async fn history_ttl_expires_publications<H: Harness>(h: &H) {
    let (b, _) = started(h).await;
    let ch = channel("ttl");
    let first = publish(&*b, &ch, 1, opts(100, 2, 30)).await;
    h.advance(Duration::from_millis(1000)).await;
    publish(&*b, &ch, 2, opts(100, 2, 30)).await;
    h.advance(Duration::from_millis(1500)).await;
    let (offsets, _) = read(&*b, &ch, None, 10, false).await;
    assert_eq!(offsets, vec![2], "publication 1 expired");
    h.advance(Duration::from_millis(1000)).await;
    let (offsets, pos) = read(&*b, &ch, None, 10, false).await;
    assert!(offsets.is_empty(), "publication 2 expired");
    assert_eq!(
        pos,
        at(2, &first.epoch).unwrap(),
        "the position outlives the data"
    );
}

/// When the position outlives `meta_ttl` the stream is new: new epoch, offsets from 1.
pub async fn epoch_changes_when_stream_expires<H: Harness>(h: &H) {
    let (b, _) = started(h).await;
    let ch = channel("meta");
    let old = publish(&*b, &ch, 1, opts(100, 1, 2)).await;
    h.advance(Duration::from_millis(3000)).await;
    let new = publish(&*b, &ch, 2, opts(100, 1, 2)).await;
    assert_eq!(new.offset, 1);
    assert_ne!(new.epoch, old.epoch);
}

/// Removing history starts a new stream with a new epoch.
pub async fn epoch_changes_when_history_removed<H: Harness>(h: &H) {
    let (b, _) = started(h).await;
    let ch = channel("removed");
    let old = publish(&*b, &ch, 1, opts(100, 60, 600)).await;
    b.remove_history(&ch).await.unwrap();
    let (offsets, pos) = read(&*b, &ch, None, 10, false).await;
    assert!(offsets.is_empty());
    assert_eq!(pos.offset, 0);
    assert_ne!(pos.epoch, old.epoch);
}

/// Reading a channel without a stream creates one; publishing continues it.
pub async fn reading_creates_a_stream_that_keeps_its_epoch<H: Harness>(h: &H) {
    let (b, _) = started(h).await;
    let ch = channel("empty");
    let (_, first) = read(&*b, &ch, None, 10, false).await;
    assert_eq!(first.offset, 0);
    let (_, again) = read(&*b, &ch, None, 10, false).await;
    assert_eq!(again, first);
    let pos = publish(&*b, &ch, 1, opts(100, 60, 600)).await;
    assert_eq!(pos, at(1, &first.epoch).unwrap());
}

/// A `since` from another epoch reads from the oldest retained publication.
pub async fn since_another_epoch_starts_at_oldest<H: Harness>(h: &H) {
    let (b, _) = started(h).await;
    let ch = channel("otherepoch");
    for n in 1..=3 {
        publish(&*b, &ch, n, opts(100, 60, 600)).await;
    }
    let (offsets, pos) = read(&*b, &ch, at(2, "not-an-epoch"), 10, false).await;
    assert_eq!(offsets, vec![1, 2, 3]);
    assert_ne!(pos.epoch, "not-an-epoch");
}

/// Offsets are per channel.
pub async fn channels_are_independent<H: Harness>(h: &H) {
    let (b, _) = started(h).await;
    let (a, c) = (channel("a"), channel("b"));
    publish(&*b, &a, 1, opts(100, 60, 600)).await;
    publish(&*b, &a, 2, opts(100, 60, 600)).await;
    assert_eq!(publish(&*b, &c, 1, opts(100, 60, 600)).await.offset, 1);
    assert_eq!(read(&*b, &a, None, 10, false).await.0, vec![1, 2]);
}

/// Subscriptions are counted: two subscribes and one unsubscribe leave
/// the channel subscribed.
pub async fn subscriptions_are_counted<H: Harness>(h: &H) {
    let (b, rec) = started(h).await;
    let ch = channel("counted");
    b.subscribe(&ch).await.unwrap();
    b.subscribe(&ch).await.unwrap();
    b.unsubscribe(&ch).await.unwrap();
    publish(&*b, &ch, 1, opts(100, 60, 600)).await;
    eventually(h, "delivery while still subscribed once", || {
        rec.publications(&ch).len() == 1
    })
    .await;
}

/// History works for channels this node never subscribed to (the server API).
pub async fn unsubscribed_channels_are_not_required<H: Harness>(h: &H) {
    let (b, rec) = started(h).await;
    let ch = channel("nosub");
    b.subscribe(&ch).await.unwrap();
    b.unsubscribe(&ch).await.unwrap();
    let pos = publish(&*b, &ch, 1, opts(100, 60, 600)).await;
    assert_eq!(read(&*b, &ch, None, 10, false).await, (vec![1], pos));
    // Delivery after unsubscribe is allowed but not required: nothing to assert on `rec`.
    let _ = rec;
}

/// Join and leave reach subscribed nodes.
pub async fn join_and_leave_are_delivered<H: Harness>(h: &H) {
    let (b, rec) = started(h).await;
    let ch = channel("joins");
    b.subscribe(&ch).await.unwrap();
    b.publish_join(&ch, client("c1", "u1")).await.unwrap();
    b.publish_leave(&ch, client("c1", "u1")).await.unwrap();
    eventually(h, "join and leave", || rec.presence_events(&ch).len() >= 2).await;
    assert_eq!(
        rec.presence_events(&ch),
        vec![
            Event::Join(ch.clone(), client("c1", "u1")),
            Event::Leave(ch.clone(), client("c1", "u1")),
        ]
    );
}

/// Presence lists clients; stats count clients and distinct users.
pub async fn presence_add_remove_and_stats<H: Harness>(h: &H) {
    let (b, _) = started(h).await;
    let ch = channel("presence");
    let ttl = Duration::from_secs(60);
    assert_eq!(stats(&*b, &ch).await, (0, 0));
    b.add_presence(&ch, client("c1", "alice"), ttl)
        .await
        .unwrap();
    b.add_presence(&ch, client("c2", "alice"), ttl)
        .await
        .unwrap();
    b.add_presence(&ch, client("c3", "bob"), ttl).await.unwrap();
    b.add_presence(&ch, client("c3", "bob"), ttl).await.unwrap();
    assert_eq!(stats(&*b, &ch).await, (3, 2));
    assert_eq!(present(&*b, &ch).await, vec!["c1", "c2", "c3"]);
    b.remove_presence(&ch, "c1").await.unwrap();
    assert_eq!(stats(&*b, &ch).await, (2, 2));
    b.remove_presence(&ch, "c2").await.unwrap();
    assert_eq!(stats(&*b, &ch).await, (1, 1));
    b.remove_presence(&ch, "c2").await.unwrap();
    assert_eq!(stats(&*b, &ch).await, (1, 1), "removing twice is harmless");
}

/// Entries not refreshed within their ttl disappear.
pub async fn presence_expires_unless_refreshed<H: Harness>(h: &H) {
    let (b, _) = started(h).await;
    let ch = channel("expiry");
    let ttl = Duration::from_secs(2);
    b.add_presence(&ch, client("c1", "u1"), ttl).await.unwrap();
    b.add_presence(&ch, client("c2", "u2"), ttl).await.unwrap();
    h.advance(Duration::from_millis(1000)).await;
    b.add_presence(&ch, client("c1", "u1"), ttl).await.unwrap();
    h.advance(Duration::from_millis(1500)).await;
    assert_eq!(present(&*b, &ch).await, vec!["c1"]);
    assert_eq!(stats(&*b, &ch).await, (1, 1));
    h.advance(Duration::from_millis(1000)).await;
    assert_eq!(stats(&*b, &ch).await, (0, 0));
}

/// Adding and removing report the user's first arrival and last departure.
pub async fn presence_reports_first_and_last_client_of_a_user<H: Harness>(h: &H) {
    let (b, _) = started(h).await;
    let ch = channel("peruser");
    let ttl = Duration::from_secs(60);
    let first = b.add_presence(&ch, client("c1", "ann"), ttl).await.unwrap();
    let added = |user_changed| PresenceChange {
        client_added: true,
        client_removed: false,
        user_changed,
    };
    let removed = |user_changed| PresenceChange {
        client_added: false,
        client_removed: true,
        user_changed,
    };
    assert_eq!(first, added(true), "ann's first tab");
    let second = b.add_presence(&ch, client("c2", "ann"), ttl).await.unwrap();
    assert_eq!(second, added(false), "ann's second tab");
    let refresh = b.add_presence(&ch, client("c1", "ann"), ttl).await.unwrap();
    assert_eq!(
        refresh,
        PresenceChange::default(),
        "a refresh changes nothing"
    );
    let gone = b.remove_presence(&ch, "c1").await.unwrap();
    assert_eq!(gone, removed(false), "ann still has a tab");
    let last = b.remove_presence(&ch, "c2").await.unwrap();
    assert_eq!(last, removed(true), "ann's last tab");
    let again = b.remove_presence(&ch, "c2").await.unwrap();
    assert_eq!(again, PresenceChange::default());
}

/// A batch adds entries in several channels and refreshes them.
pub async fn presence_batch_adds_and_refreshes<H: Harness>(h: &H) {
    let (b, _) = started(h).await;
    let (x, y) = (channel("batch-x"), channel("batch-y"));
    let entry = |ch: &str, id: &str, user: &str| PresenceEntry {
        channel: ch.to_owned(),
        info: client(id, user),
    };
    let ttl = Duration::from_secs(2);
    let all = [
        entry(&x, "c1", "u1"),
        entry(&x, "c2", "u1"),
        entry(&y, "c3", "u2"),
    ];
    b.add_presence_batch(&all, ttl).await.unwrap();
    assert_eq!(stats(&*b, &x).await, (2, 1));
    assert_eq!(stats(&*b, &y).await, (1, 1));
    h.advance(Duration::from_millis(1000)).await;
    b.add_presence_batch(&all[1..], ttl).await.unwrap();
    h.advance(Duration::from_millis(1500)).await;
    assert_eq!(present(&*b, &x).await, vec!["c2"], "c1 was not refreshed");
    assert_eq!(present(&*b, &y).await, vec!["c3"]);
    b.add_presence_batch(&[], ttl).await.unwrap();
}

/// A retried publish (same key) returns the first position and is stored
/// and delivered once; another key, or another channel, is a new publish.
pub async fn idempotent_publish_is_stored_and_delivered_once<H: Harness>(h: &H) {
    let (b, rec) = started(h).await;
    let (ch, other) = (channel("idem"), channel("idem-other"));
    b.subscribe(&ch).await.unwrap();
    let o = opts(100, 60, 600);
    let first = b.publish(&ch, keyed(1, "k1"), o).await.unwrap();
    let retry = b.publish(&ch, keyed(1, "k1"), o).await.unwrap();
    assert_eq!(retry, first, "the retry returns the first position");
    let next = b.publish(&ch, keyed(2, "k2"), o).await.unwrap().unwrap();
    assert_eq!(next.offset, 2);
    let elsewhere = b.publish(&other, keyed(1, "k1"), o).await.unwrap();
    assert_eq!(elsewhere.unwrap().offset, 1, "keys are per channel");
    assert_eq!(read(&*b, &ch, None, 10, false).await.0, vec![1, 2]);
    eventually(h, "two publications", || rec.publications(&ch).len() >= 2).await;
    settle(h).await;
    let offsets: Vec<_> = rec.publications(&ch).into_iter().map(|p| p.0).collect();
    assert_eq!(offsets, vec![Some(1), Some(2)]);
}

/// Without history the retry returns no position and is not delivered.
pub async fn idempotent_publish_without_history<H: Harness>(h: &H) {
    let (b, rec) = started(h).await;
    let ch = channel("idem-live");
    b.subscribe(&ch).await.unwrap();
    assert_eq!(b.publish(&ch, keyed(1, "k"), None).await.unwrap(), None);
    assert_eq!(b.publish(&ch, keyed(1, "k"), None).await.unwrap(), None);
    eventually(h, "the publication", || !rec.publications(&ch).is_empty()).await;
    settle(h).await;
    assert_eq!(rec.publications(&ch).len(), 1);
}

/// `run` is called once.
pub async fn run_twice_is_invalid<H: Harness>(h: &H) {
    let (b, rec) = started(h).await;
    let again = b.run(rec).await.expect_err("a second run");
    assert_eq!(again.kind(), BrokerErrorKind::Invalid);
    assert!(!again.is_temporary());
}
