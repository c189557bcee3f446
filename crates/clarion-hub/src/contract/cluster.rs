//! Contract cases about nodes: identity, the control path, liveness, and
//! two nodes of one backend sharing history, presence and live delivery.

use std::time::Duration;

use bytes::Bytes;

use super::*;
use crate::broker::{BrokerErrorKind, ControlKind};

fn ids(nodes: &[crate::broker::ClusterNode]) -> Vec<String> {
    let mut ids: Vec<_> = nodes.iter().map(|n| n.identity.id.clone()).collect();
    ids.sort();
    ids
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

/// A running node lists itself and receives its own control messages.
pub async fn a_node_lists_itself_and_gets_its_own_control<H: Harness>(h: &H) {
    let (b, rec) = started(h).await;
    let me = b.identity().clone();
    assert!(!me.id.is_empty());
    eventually(h, "this node in nodes()", || {
        ids(&b.nodes()).contains(&me.id)
    })
    .await;
    let payload = Bytes::from_static(b"\x00opaque\xff");
    b.broadcast_control(ControlKind::DisconnectUser, payload.clone())
        .await
        .unwrap();
    b.send_control(&me.id, ControlKind::Route, Bytes::from_static(b"r"))
        .await
        .unwrap();
    eventually(h, "two control messages", || rec.controls().len() >= 2).await;
    let got = rec.controls();
    assert_eq!(got[0].from, me.id);
    assert_eq!(got[0].kind, ControlKind::DisconnectUser);
    assert_eq!(got[0].payload, payload);
    assert_eq!(got[1].kind, ControlKind::Route);
}

/// Sending to a node id nobody has fails with `NoSuchNode`.
pub async fn send_control_to_an_unknown_node_fails<H: Harness>(h: &H) {
    let (b, _) = started(h).await;
    let err = b
        .send_control("no-such-node", ControlKind::Route, Bytes::new())
        .await
        .expect_err("no such node");
    assert_eq!(err.kind(), BrokerErrorKind::NoSuchNode);
}

/// A publication made on node A reaches node B, in offset order, with the
/// epoch A was given.
pub async fn publication_on_one_node_reaches_the_other<H: Harness>(h: &H) {
    let p = started_pair(h).await;
    let ch = channel("cross");
    p.b.subscribe(&ch).await.unwrap();
    let mut last = None;
    for n in 1..=10 {
        last = Some(publish(&*p.a, &ch, n, opts(100, 60, 600)).await);
    }
    let last = last.unwrap();
    eventually(h, "10 publications on B", || {
        p.rec_b.publications(&ch).len() >= 10
    })
    .await;
    let want: Vec<_> = (1..=10)
        .map(|n| (Some(n), n.to_string(), Some(last.epoch.clone())))
        .collect();
    assert_eq!(p.rec_b.publications(&ch), want);
}

/// History written through A is read through B, same positions.
pub async fn history_written_on_one_node_is_read_on_the_other<H: Harness>(h: &H) {
    let p = started_pair(h).await;
    let ch = channel("shared-history");
    let (_, empty) = read(&*p.b, &ch, None, 10, false).await;
    let mut top = None;
    for n in 1..=3 {
        top = Some(publish(&*p.a, &ch, n, opts(100, 60, 600)).await);
    }
    let top = top.unwrap();
    assert_eq!(top.epoch, empty.epoch, "A continues the stream B created");
    let (offsets, pos) = read(&*p.b, &ch, at(1, &top.epoch), 10, false).await;
    assert_eq!((offsets, pos), (vec![2, 3], top.clone()));
    assert_eq!(publish(&*p.b, &ch, 4, opts(100, 60, 600)).await.offset, 4);
}

/// Presence is one set across nodes, with per-user counting across them.
pub async fn presence_is_shared_across_nodes<H: Harness>(h: &H) {
    let p = started_pair(h).await;
    let ch = channel("shared-presence");
    let ttl = Duration::from_secs(60);
    let on_a =
        p.a.add_presence(&ch, client("c1", "ann"), ttl)
            .await
            .unwrap();
    let on_b =
        p.b.add_presence(&ch, client("c2", "ann"), ttl)
            .await
            .unwrap();
    assert!(on_a.user_changed && !on_b.user_changed, "one first arrival");
    p.b.add_presence(&ch, client("c3", "bob"), ttl)
        .await
        .unwrap();
    assert_eq!(stats(&*p.a, &ch).await, (3, 2));
    assert_eq!(present(&*p.a, &ch).await, vec!["c1", "c2", "c3"]);
    let off_a = p.b.remove_presence(&ch, "c1").await.unwrap();
    assert!(off_a.client_removed && !off_a.user_changed);
    let off_b = p.a.remove_presence(&ch, "c2").await.unwrap();
    assert!(off_b.user_changed, "ann's last client left");
    assert_eq!(stats(&*p.b, &ch).await, (1, 1));
}

/// Join and leave published on A reach B.
pub async fn join_and_leave_cross_nodes<H: Harness>(h: &H) {
    let p = started_pair(h).await;
    let ch = channel("cross-joins");
    p.b.subscribe(&ch).await.unwrap();
    p.a.publish_join(&ch, client("c1", "u1")).await.unwrap();
    p.a.publish_leave(&ch, client("c1", "u1")).await.unwrap();
    eventually(h, "join and leave on B", || {
        p.rec_b.presence_events(&ch).len() >= 2
    })
    .await;
    let want = vec![
        Event::Join(ch.clone(), client("c1", "u1")),
        Event::Leave(ch.clone(), client("c1", "u1")),
    ];
    assert_eq!(p.rec_b.presence_events(&ch), want);
}

/// A broadcast reaches both nodes once, in the sender's order.
pub async fn control_broadcast_reaches_every_node<H: Harness>(h: &H) {
    let p = started_pair(h).await;
    let kind = ControlKind::Other(channel("kind"));
    for n in 0..3u8 {
        let payload = Bytes::from(vec![n]);
        p.a.broadcast_control(kind.clone(), payload).await.unwrap();
    }
    let ours = |rec: &Recorder| -> Vec<Vec<u8>> {
        let controls = rec.controls().into_iter().filter(|c| c.kind == kind);
        controls.map(|c| c.payload.to_vec()).collect()
    };
    for rec in [&p.rec_a, &p.rec_b] {
        eventually(h, "three broadcasts", || ours(rec).len() >= 3).await;
    }
    settle(h).await;
    for rec in [&p.rec_a, &p.rec_b] {
        assert_eq!(ours(rec), vec![vec![0], vec![1], vec![2]]);
        let from_a = rec.controls().iter().all(|c| c.from == p.a.identity().id);
        assert!(from_a);
    }
}

/// A message sent to B's id reaches B only.
pub async fn send_control_reaches_only_that_node<H: Harness>(h: &H) {
    let p = started_pair(h).await;
    let b_id = p.b.identity().id.clone();
    eventually(h, "A to know B", || ids(&p.a.nodes()).contains(&b_id)).await;
    let payload = Bytes::from_static(b"for b");
    let sent = p.a.send_control(&b_id, ControlKind::Route, payload.clone());
    sent.await.unwrap();
    eventually(h, "B's message", || !p.rec_b.controls().is_empty()).await;
    settle(h).await;
    let got = p.rec_b.controls();
    assert_eq!(got.len(), 1);
    assert_eq!(
        (&got[0].from, &got[0].payload),
        (&p.a.identity().id, &payload)
    );
    assert!(p.rec_a.controls().is_empty(), "A sent it, A did not get it");
}

/// Each node lists both; after B shuts down, A stops listing it and
/// sending to it fails.
pub async fn nodes_see_each_other_until_shutdown<H: Harness>(h: &H) {
    let p = started_pair(h).await;
    let both = sorted(vec![p.a.identity().id.clone(), p.b.identity().id.clone()]);
    let sees_both = |b: &Arc<dyn Broker>| {
        let known = ids(&b.nodes());
        both.iter().all(|id| known.contains(id))
    };
    eventually(h, "A to list both", || sees_both(&p.a)).await;
    eventually(h, "B to list both", || sees_both(&p.b)).await;
    let b_node = p.b.nodes().into_iter().find(|n| n.identity.id == both[0]);
    assert!(b_node.is_some_and(|n| !n.identity.name.is_empty()));
    let b_id = p.b.identity().id.clone();
    p.b.shutdown().await;
    let gone_within = h.heartbeat() * 4;
    let mut waited = Duration::ZERO;
    while ids(&p.a.nodes()).contains(&b_id) {
        assert!(waited < gone_within, "B still listed after {waited:?}");
        h.advance(Duration::from_millis(50)).await;
        waited += Duration::from_millis(50);
    }
    let err =
        p.a.send_control(&b_id, ControlKind::Route, Bytes::new())
            .await;
    assert_eq!(err.map_err(|e| e.kind()), Err(BrokerErrorKind::NoSuchNode));
}

/// A node whose broker is dropped without a goodbye (a crash, as far as
/// its peers can tell) vanishes within four heartbeat intervals.
pub async fn a_dropped_node_disappears<H: Harness>(h: &H) {
    let Pair { a, b, .. } = started_pair(h).await;
    let b_id = b.identity().id.clone();
    eventually(h, "A to know B", || ids(&a.nodes()).contains(&b_id)).await;
    drop(b);
    let gone_within = h.heartbeat() * 4;
    let mut waited = Duration::ZERO;
    while ids(&a.nodes()).contains(&b_id) {
        assert!(waited < gone_within, "B still listed after {waited:?}");
        h.advance(Duration::from_millis(50)).await;
        waited += Duration::from_millis(50);
    }
    assert!(ids(&a.nodes()).contains(&a.identity().id));
}

/// A publish retried through another node is stored and delivered once.
pub async fn idempotent_retry_through_another_node<H: Harness>(h: &H) {
    let p = started_pair(h).await;
    let ch = channel("idem-cross");
    p.a.subscribe(&ch).await.unwrap();
    p.b.subscribe(&ch).await.unwrap();
    let o = opts(100, 60, 600);
    let first = p.a.publish(&ch, keyed(1, "once"), o).await.unwrap();
    let retry = p.b.publish(&ch, keyed(1, "once"), o).await.unwrap();
    assert_eq!(retry, first);
    assert_eq!(read(&*p.b, &ch, None, 10, false).await.0, vec![1]);
    for rec in [&p.rec_a, &p.rec_b] {
        eventually(h, "the publication", || !rec.publications(&ch).is_empty()).await;
    }
    settle(h).await;
    assert_eq!(p.rec_a.publications(&ch).len(), 1);
    assert_eq!(p.rec_b.publications(&ch).len(), 1);
}
