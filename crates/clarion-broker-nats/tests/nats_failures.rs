//! What only a real NATS can show: restarts with and without the store,
//! a dropped connection, NATS down, and contention between nodes.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use clarion_broker_nats::NatsBroker;
use clarion_hub::contract::{Event, Recorder};
use clarion_hub::{Broker, BrokerError, HistoryOptions, HistoryQuery, NewPublication};
use clarion_wire::{Data, StreamPosition};

use support::NatsServer;

fn options() -> HistoryOptions {
    HistoryOptions {
        size: 1000,
        ttl: Duration::from_secs(600),
        meta_ttl: Duration::from_secs(3600),
    }
}

fn publication(n: u64) -> NewPublication {
    NewPublication::new(Data::from_value(&n).unwrap())
}

async fn publish(b: &NatsBroker, ch: &str, n: u64) -> Result<StreamPosition, BrokerError> {
    let position = b.publish(ch, publication(n), Some(options())).await?;
    Ok(position.expect("a position"))
}

/// Publishes until NATS is back (the broker reconnects by itself); every
/// failure meanwhile must be temporary.
async fn publish_when_back(b: &NatsBroker, ch: &str, n: u64) -> StreamPosition {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match publish(b, ch, n).await {
            Ok(position) => return position,
            Err(err) => {
                assert!(
                    err.is_temporary(),
                    "only temporary errors while down: {err}"
                );
                assert!(Instant::now() < deadline, "NATS did not come back: {err}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn running(server: &NatsServer, name: &str) -> (NatsBroker, Arc<Recorder>) {
    let broker = server.broker(name).await;
    let recorder = Arc::new(Recorder::default());
    broker.run(recorder.clone()).await.unwrap();
    (broker, recorder)
}

async fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_restart_without_the_store_yields_a_new_epoch() {
    let mut server = NatsServer::start();
    let (b, _) = running(&server, "n1").await;
    let mut before = None;
    for n in 1..=3 {
        before = Some(publish(&b, "chat:lost", n).await.unwrap());
    }
    let before = before.unwrap();
    server.restart(false);
    let after = publish_when_back(&b, "chat:lost", 4).await;
    assert_eq!(after.offset, 1, "a new stream starts at 1");
    assert_ne!(
        after.epoch, before.epoch,
        "never reused offsets under the old epoch"
    );
    let page = b
        .history("chat:lost", HistoryQuery::default(), options())
        .await
        .unwrap();
    assert_eq!(page.position, after);
}

#[tokio::test]
async fn a_restart_with_the_store_keeps_epoch_and_offsets() {
    let mut server = NatsServer::start();
    let (b, _) = running(&server, "n1").await;
    let mut before = None;
    for n in 1..=3 {
        before = Some(publish(&b, "chat:kept", n).await.unwrap());
    }
    let before = before.unwrap();
    server.restart(true);
    let after = publish_when_back(&b, "chat:kept", 4).await;
    assert_eq!(after.epoch, before.epoch);
    assert_eq!(after.offset, 4);
    let query = HistoryQuery {
        since: Some(StreamPosition {
            offset: 1,
            epoch: before.epoch.clone(),
        }),
        limit: 10,
        reverse: false,
    };
    let page = b.history("chat:kept", query, options()).await.unwrap();
    let offsets: Vec<_> = page
        .publications
        .iter()
        .map(|p| p.offset.unwrap())
        .collect();
    assert_eq!(offsets, vec![2, 3, 4]);
}

#[tokio::test]
async fn a_dropped_connection_resyncs_subscribed_channels() {
    let mut server = NatsServer::start();
    let (b, rec) = running(&server, "n1").await;
    b.subscribe("chat:a").await.unwrap();
    b.subscribe("chat:b").await.unwrap();
    b.subscribe("chat:gone").await.unwrap();
    b.unsubscribe("chat:gone").await.unwrap();
    server.restart(true);
    let resynced = || {
        rec.events().into_iter().find_map(|e| match e {
            Event::Resync(mut channels) => {
                channels.sort();
                Some(channels)
            }
            _ => None,
        })
    };
    wait_for("on_resync", || resynced().is_some()).await;
    assert_eq!(resynced().unwrap(), vec!["chat:a", "chat:b"]);
    // Live delivery is back by the time on_resync is called.
    publish(&b, "chat:a", 1).await.unwrap();
    wait_for("a live publication", || {
        !rec.publications("chat:a").is_empty()
    })
    .await;
}

#[tokio::test]
async fn calls_while_nats_is_down_fail_fast_and_temporarily() {
    let mut server = NatsServer::start();
    let (b, _) = running(&server, "n1").await;
    publish(&b, "chat:down", 1).await.unwrap();
    server.kill();
    wait_for("the disconnect", || !b.is_connected()).await;
    let bound = server.config().command_timeout * 2 + Duration::from_millis(500);
    let started = Instant::now();
    let err = publish(&b, "chat:down", 2).await.expect_err("NATS is down");
    assert!(err.is_temporary(), "{err}");
    let live = b
        .publish("chat:down", publication(3), None)
        .await
        .expect_err("down");
    assert!(live.is_temporary(), "{live}");
    let read = b
        .history("chat:down", HistoryQuery::default(), options())
        .await;
    assert!(read.expect_err("down").is_temporary());
    let presence = b.presence_stats("chat:down").await.expect_err("down");
    assert!(presence.is_temporary());
    assert!(started.elapsed() < bound, "took {:?}", started.elapsed());
}

#[tokio::test]
async fn a_publish_racing_the_disconnect_never_hangs() {
    let mut server = NatsServer::start();
    let (b, _) = running(&server, "n1").await;
    let b = Arc::new(b);
    let publisher = {
        let b = b.clone();
        tokio::spawn(async move {
            let mut worst = Duration::ZERO;
            for n in 0..400 {
                let started = Instant::now();
                let _ = publish(&b, "chat:race", n).await;
                worst = worst.max(started.elapsed());
            }
            worst
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    server.kill();
    let worst = publisher.await.unwrap();
    let bound = server.config().command_timeout * 2 + Duration::from_millis(500);
    assert!(worst < bound, "a publish took {worst:?}");
}

#[tokio::test]
async fn concurrent_publishers_on_two_nodes_get_contiguous_offsets() {
    let server = NatsServer::start();
    let (a, _) = running(&server, "a").await;
    let (b, _) = running(&server, "b").await;
    let (watcher, rec) = running(&server, "watcher").await;
    watcher.subscribe("chat:busy").await.unwrap();
    let (a, b) = (Arc::new(a), Arc::new(b));
    let per_node = 100;
    let mut tasks = Vec::new();
    for (node, broker) in [(0u64, a.clone()), (1, b.clone())] {
        for lane in 0..4u64 {
            let broker = broker.clone();
            tasks.push(tokio::spawn(async move {
                let mut offsets = Vec::new();
                for i in 0..per_node / 4 {
                    let n = node * 1000 + lane * 100 + i;
                    offsets.push(publish(&broker, "chat:busy", n).await.unwrap().offset);
                }
                offsets
            }));
        }
    }
    let mut offsets = Vec::new();
    for task in tasks {
        offsets.extend(task.await.unwrap());
    }
    offsets.sort_unstable();
    let n = 2 * per_node;
    assert_eq!(
        offsets,
        (1..=n).collect::<Vec<_>>(),
        "1..N, no gap, no duplicate"
    );
    wait_for("every live delivery", || {
        rec.publications("chat:busy").len() as u64 >= n
    })
    .await;
    let delivered: Vec<_> = rec
        .publications("chat:busy")
        .iter()
        .map(|p| p.0.unwrap())
        .collect();
    assert_eq!(
        delivered,
        (1..=n).collect::<Vec<_>>(),
        "live delivery in offset order, once"
    );
}

#[tokio::test]
async fn an_idempotent_retry_racing_on_two_nodes_is_stored_once() {
    let server = NatsServer::start();
    let (a, rec) = running(&server, "a").await;
    let (b, _) = running(&server, "b").await;
    a.subscribe("chat:once").await.unwrap();
    publish(&a, "chat:once", 0).await.unwrap();
    let keyed = || NewPublication {
        idempotency_key: Some("order-17".into()),
        ..publication(17)
    };
    let (x, y) = tokio::join!(
        a.publish("chat:once", keyed(), Some(options())),
        b.publish("chat:once", keyed(), Some(options())),
    );
    assert_eq!(x.unwrap(), y.unwrap(), "both calls return the one position");
    let again = b
        .publish("chat:once", keyed(), Some(options()))
        .await
        .unwrap();
    assert_eq!(again.unwrap().offset, 2);
    wait_for("two deliveries", || {
        rec.publications("chat:once").len() >= 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rec.publications("chat:once").len(), 2, "delivered once");
}

#[tokio::test]
async fn limitations_are_spelled_out() {
    let server = NatsServer::start();
    let b = server.broker("n1").await;
    let text = b.limitations().join("\n");
    assert!(
        text.contains("max_age") && text.contains("not O(1)"),
        "{text}"
    );
}

#[tokio::test]
async fn presence_and_keys_work_again_after_the_store_is_lost() {
    let mut server = NatsServer::start();
    let (b, _) = running(&server, "n1").await;
    let ttl = Duration::from_secs(60);
    let info = |id: &str| clarion_wire::ClientInfo {
        client: id.to_owned(),
        user: "u1".to_owned(),
        info: None,
        chan_info: None,
    };
    b.add_presence("chat:p", info("c1"), ttl).await.unwrap();
    server.restart(false);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match b.add_presence("chat:p", info("c2"), ttl).await {
            Ok(change) => {
                assert!(change.client_added && change.user_changed, "{change:?}");
                break;
            }
            Err(err) => assert!(err.is_temporary() && Instant::now() < deadline, "{err}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stats = b.presence_stats("chat:p").await.unwrap();
    assert_eq!(
        (stats.num_clients, stats.num_users),
        (1, 1),
        "c1 was lost with the store"
    );
    let keyed = NewPublication {
        idempotency_key: Some("k".into()),
        ..publication(1)
    };
    assert_eq!(b.publish("chat:p", keyed, None).await.unwrap(), None);
}
