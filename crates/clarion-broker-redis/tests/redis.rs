//! What only a real Redis can show: epochs after a flush, a restart and a
//! promotion; the subscription connection killed and resynced; publishing
//! while Redis is down; two shards; the idempotency window.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use clarion_hub::contract::{Event, Recorder};
use clarion_hub::{Broker, HistoryOptions, HistoryQuery, NewPublication};
use clarion_wire::{Data, StreamPosition};
use common::{broker, RedisServer};

fn history() -> Option<HistoryOptions> {
    Some(HistoryOptions {
        size: 100,
        ttl: Duration::from_secs(60),
        meta_ttl: Duration::from_secs(600),
    })
}

fn data(n: u64) -> NewPublication {
    NewPublication::new(Data::from_value(&n).unwrap())
}

async fn publish(b: &dyn Broker, ch: &str, n: u64) -> StreamPosition {
    let pos = b.publish(ch, data(n), history()).await.expect("publish");
    pos.expect("a position")
}

/// Publishes until Redis answers again (after a restart), at most 10 s.
async fn publish_when_back(b: &dyn Broker, ch: &str, n: u64) -> StreamPosition {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match b.publish(ch, data(n), history()).await {
            Ok(pos) => return pos.expect("a position"),
            Err(e) if e.is_temporary() && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("publish after restart: {e}"),
        }
    }
}

async fn started(urls: &[String]) -> (Arc<clarion_broker_redis::RedisBroker>, Arc<Recorder>) {
    let b = broker(urls);
    let rec = Arc::new(Recorder::default());
    b.run(rec.clone()).await.expect("run");
    (b, rec)
}

async fn wait_for(what: &str, mut check: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out: {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    start.elapsed()
}

#[tokio::test]
async fn flushall_yields_a_new_epoch() {
    let server = RedisServer::start();
    let (b, _) = started(&[server.url()]).await;
    publish(&*b, "chat:flush", 1).await;
    let before = publish(&*b, "chat:flush", 2).await;
    redis::cmd("FLUSHALL")
        .exec_async(&mut server.admin().await)
        .await
        .unwrap();
    let after = publish(&*b, "chat:flush", 3).await;
    assert_eq!(after.offset, 1);
    assert_ne!(after.epoch, before.epoch);
    let query = HistoryQuery {
        since: Some(before),
        limit: 10,
        reverse: false,
    };
    let page = b.history("chat:flush", query, history().unwrap()).await;
    assert_eq!(page.unwrap().position, after);
}

#[tokio::test]
async fn a_restart_yields_a_new_epoch_even_if_the_position_survived() {
    let mut server = RedisServer::start();
    let (b, _) = started(&[server.url()]).await;
    for n in 1..=5 {
        publish(&*b, "chat:restart", n).await;
    }
    let before = publish(&*b, "chat:restart", 6).await;
    let stored = before.epoch.split_once('-').unwrap().0.to_owned();
    let generation = b.generations().await;
    server.restart();
    // As if a snapshot had brought the meta hash back, missing the last
    // publications: same stored epoch, an older top offset.
    let mut admin = server.admin().await;
    redis::cmd("HSET")
        .arg("clarion.meta.{chat:restart}")
        .arg("e")
        .arg(&stored)
        .arg("s")
        .arg(4)
        .exec_async(&mut admin)
        .await
        .unwrap();
    let after = publish_when_back(&*b, "chat:restart", 7).await;
    assert_eq!(after.offset, 5, "the reloaded stream continues from 4");
    assert!(after.epoch.starts_with(&stored), "{after:?}");
    assert_ne!(
        after.epoch, before.epoch,
        "offset 5 names another publication now"
    );
    assert_ne!(b.generations().await, generation);
}

#[tokio::test]
async fn a_killed_subscription_connection_is_resubscribed_and_resynced() {
    let server = RedisServer::start();
    let (b, rec) = started(&[server.url()]).await;
    let (publisher, _) = started(&[server.url()]).await;
    b.subscribe("chat:kill").await.unwrap();
    publish(&*publisher, "chat:kill", 1).await;
    wait_for("the first publication", || {
        rec.publications("chat:kill").len() == 1
    })
    .await;
    let mut admin = server.admin().await;
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query_async(&mut admin)
        .await
        .unwrap();
    assert!(
        killed >= 2,
        "both nodes' subscription connections: {killed}"
    );
    let resynced = |rec: &Recorder| {
        rec.events()
            .iter()
            .any(|e| matches!(e, Event::Resync(chs) if chs.contains(&"chat:kill".to_owned())))
    };
    let took = wait_for("the resync", || resynced(&rec)).await;
    eprintln!("resubscribed and resynced {took:?} after CLIENT KILL");
    assert!(took < Duration::from_secs(2));
    // Live delivery works again, and the node did not lose its place.
    publish(&*publisher, "chat:kill", 2).await;
    wait_for("the second publication", || {
        rec.publications("chat:kill").len() == 2
    })
    .await;
    let offsets: Vec<_> = rec.publications("chat:kill").iter().map(|p| p.0).collect();
    assert_eq!(offsets, [Some(1), Some(2)]);
}

#[tokio::test]
async fn publishing_while_redis_is_down_fails_fast_and_recovers() {
    let mut server = RedisServer::start();
    let (b, _) = started(&[server.url()]).await;
    publish(&*b, "chat:down", 1).await;
    server.stop();
    for _ in 0..3 {
        let start = Instant::now();
        let err = b.publish("chat:down", data(2), history()).await;
        let err = err.expect_err("Redis is down");
        assert!(err.is_temporary(), "{err}");
        let took = start.elapsed();
        eprintln!("publish while down: {err} after {took:?}");
        assert!(took < Duration::from_secs(2), "{took:?}");
    }
    let err = b.presence_stats("chat:down").await.expect_err("down");
    assert!(err.is_temporary());
    server.restart();
    let pos = publish_when_back(&*b, "chat:down", 3).await;
    assert_eq!(pos.offset, 1, "a new server: a new stream");
}

#[tokio::test]
async fn two_shards_spread_channels_and_each_works() {
    let (one, two) = (RedisServer::start(), RedisServer::start());
    let urls = [one.url(), two.url()];
    let (b, rec) = started(&urls).await;
    let (other, _) = started(&urls).await;
    let channels: Vec<String> = (0..40).map(|i| format!("room:{i}")).collect();
    let mut per_shard = [0; 2];
    for ch in &channels {
        per_shard[b.shard_of(ch)] += 1;
        b.subscribe(ch).await.unwrap();
        assert_eq!(publish(&*other, ch, 1).await.offset, 1);
    }
    assert!(per_shard.iter().all(|&n| n >= 10), "{per_shard:?}");
    for ch in &channels {
        wait_for("each channel's publication", || {
            rec.publications(ch).len() == 1
        })
        .await;
        let page = b
            .history(ch, HistoryQuery::default(), history().unwrap())
            .await;
        assert_eq!(page.unwrap().position.offset, 1);
        // The stream is on the shard the hash names, and only there.
        let key = format!("clarion.stream.{{{ch}}}");
        for (i, server) in [&one, &two].into_iter().enumerate() {
            let exists: bool = redis::cmd("EXISTS")
                .arg(&key)
                .query_async(&mut server.admin().await)
                .await
                .unwrap();
            assert_eq!(exists, i == b.shard_of(ch), "{key} on shard {i}");
        }
    }
}

#[tokio::test]
async fn an_idempotent_retry_is_delivered_once_and_remembered_for_the_window() {
    let server = RedisServer::start();
    let (b, rec) = started(&[server.url()]).await;
    b.subscribe("chat:idem").await.unwrap();
    let keyed = NewPublication {
        idempotency_key: Some("order-17".into()),
        ..data(1)
    };
    let first = b
        .publish("chat:idem", keyed.clone(), history())
        .await
        .unwrap();
    let retry = b.publish("chat:idem", keyed, history()).await.unwrap();
    assert_eq!(first, retry);
    wait_for("the publication", || {
        !rec.publications("chat:idem").is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(rec.publications("chat:idem").len(), 1);
    let ttl: i64 = redis::cmd("PTTL")
        .arg("clarion.result.{chat:idem}.order-17")
        .query_async(&mut server.admin().await)
        .await
        .unwrap();
    let window = clarion_hub::DEFAULT_IDEMPOTENCY_WINDOW.as_millis() as i64;
    assert!((window - 5_000..=window).contains(&ttl), "{ttl}");
}

#[tokio::test]
async fn a_promotion_changes_the_epoch_and_resyncs() {
    let (server, upstream) = (RedisServer::start(), RedisServer::start());
    let (b, rec) = started(&[server.url()]).await;
    b.subscribe("chat:failover").await.unwrap();
    let before = publish(&*b, "chat:failover", 1).await;
    let generation = b.generations().await;
    let mut admin = server.admin().await;
    // Replicate from another server, then be promoted: a new replication id.
    redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(upstream.port)
        .exec_async(&mut admin)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    redis::cmd("REPLICAOF")
        .arg("NO")
        .arg("ONE")
        .exec_async(&mut admin)
        .await
        .unwrap();
    let resynced = |rec: &Recorder| {
        let events = rec.events();
        events.iter().any(|e| matches!(e, Event::Resync(_)))
    };
    wait_for("a resync after the promotion", || resynced(&rec)).await;
    assert_ne!(b.generations().await, generation);
    // As if the promoted replica had the stream's meta hash but not its
    // publication: offset 1 again, which must not be the old offset 1.
    let stored = before.epoch.split_once('-').unwrap().0;
    redis::cmd("HSET")
        .arg("clarion.meta.{chat:failover}")
        .arg("e")
        .arg(stored)
        .arg("s")
        .arg(0)
        .exec_async(&mut admin)
        .await
        .unwrap();
    let after = publish_when_back(&*b, "chat:failover", 2).await;
    assert_eq!(after.offset, 1);
    assert_ne!(after.epoch, before.epoch);
}

/// Publications per second with history, from 64 concurrent publishers
/// over two nodes: `cargo test --release -p clarion-broker-redis --test
/// redis -- --ignored --nocapture throughput`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check"]
async fn throughput() {
    for shards in [1, 2] {
        let servers: Vec<_> = (0..shards).map(|_| RedisServer::start()).collect();
        let urls: Vec<_> = servers.iter().map(RedisServer::url).collect();
        let nodes = [started(&urls).await.0, started(&urls).await.0];
        let total = 40_000u64;
        let start = Instant::now();
        let mut tasks = Vec::new();
        for t in 0..64u64 {
            let node = nodes[(t % 2) as usize].clone();
            tasks.push(tokio::spawn(async move {
                for n in 0..total / 64 {
                    let ch = format!("bench:{}", (t * 1000 + n) % 256);
                    node.publish(&ch, data(n), history()).await.unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let rate = total as f64 / start.elapsed().as_secs_f64();
        eprintln!("{shards} shard(s): {rate:.0} publications/s with history (256 channels)");
    }
}

/// The hub's last member leaves and a new first member arrives: its
/// `unsubscribe` and `subscribe` may reach the broker in either order, and
/// the node must end up subscribed (docs/hub.md, "Known gaps").
#[tokio::test]
async fn a_subscribe_racing_the_last_unsubscribe_stays_subscribed() {
    let server = RedisServer::start();
    let (b, rec) = started(&[server.url()]).await;
    b.subscribe("chat:race").await.unwrap();
    // The new member's subscribe overtakes the old member's unsubscribe.
    let (sub, unsub) = tokio::join!(b.subscribe("chat:race"), b.unsubscribe("chat:race"));
    sub.unwrap();
    unsub.unwrap();
    publish(&*b, "chat:race", 1).await;
    wait_for("delivery after the race", || {
        rec.publications("chat:race").len() == 1
    })
    .await;
    b.unsubscribe("chat:race").await.unwrap();
    publish(&*b, "chat:race", 2).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(rec.publications("chat:race").len(), 1, "unsubscribed now");
}

/// `rediss://`: the same broker over TLS, verifying the server's
/// certificate against `tls_root_ca`.
#[tokio::test]
async fn rediss_urls_work_over_tls() {
    let server = RedisServer::start_tls();
    let tls = || {
        let mut config = common::config(&[server.url()]);
        config.tls_root_ca = server.tls_ca();
        Arc::new(clarion_broker_redis::RedisBroker::new(config).unwrap())
    };
    let (b, other) = (tls(), tls());
    let rec = Arc::new(Recorder::default());
    b.run(rec.clone()).await.unwrap();
    other.run(Arc::new(Recorder::default())).await.unwrap();
    b.subscribe("chat:tls").await.unwrap();
    let pos = publish(&*other, "chat:tls", 1).await;
    assert_eq!(pos.offset, 1);
    wait_for("a publication over TLS", || {
        rec.publications("chat:tls").len() == 1
    })
    .await;
    // Without the CA the self-signed server is not trusted.
    let untrusted = common::broker(&[server.url()]);
    let err = untrusted.run(Arc::new(Recorder::default())).await;
    assert!(err.is_err(), "a self-signed server without tls_root_ca");
}

/// Records when each publication (data: its number) arrived.
struct Arrivals {
    start: Instant,
    got: std::sync::Mutex<Vec<(u64, Duration)>>,
}

impl clarion_hub::BrokerHandler for Arrivals {
    fn on_publication(&self, _: &str, p: &clarion_wire::Publication, _: Option<&str>) {
        let n: u64 = p.data.parse().unwrap();
        self.got.lock().unwrap().push((n, self.start.elapsed()));
    }
    fn on_join(&self, _: &str, _: &clarion_wire::ClientInfo) {}
    fn on_leave(&self, _: &str, _: &clarion_wire::ClientInfo) {}
    fn on_control(&self, _: &clarion_hub::Control) {}
    fn on_resync(&self, _: &[String]) {}
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

/// Publish round trip and cross-node delivery latency, one publisher, one
/// at a time: `cargo test --release -p clarion-broker-redis --test redis
/// -- --ignored --nocapture latency`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check"]
async fn latency() {
    let server = RedisServer::start();
    let start = Instant::now();
    let arrivals = Arc::new(Arrivals {
        start,
        got: Default::default(),
    });
    let receiver = broker(&[server.url()]);
    receiver.run(arrivals.clone()).await.unwrap();
    receiver.subscribe("bench:latency").await.unwrap();
    let (sender, _) = started(&[server.url()]).await;
    let total = 5_000u64;
    let (mut sent, mut round_trips) = (Vec::new(), Vec::new());
    for n in 0..total {
        let t = start.elapsed();
        sent.push(t);
        sender
            .publish("bench:latency", data(n), history())
            .await
            .unwrap();
        round_trips.push(start.elapsed() - t);
    }
    wait_for("every publication", || {
        arrivals.got.lock().unwrap().len() == total as usize
    })
    .await;
    let got = arrivals.got.lock().unwrap().clone();
    let mut delivery: Vec<_> = got.iter().map(|(n, at)| *at - sent[*n as usize]).collect();
    delivery.sort();
    round_trips.sort();
    let (p50, p99) = (percentile(&delivery, 0.5), percentile(&delivery, 0.99));
    let (r50, r99) = (
        percentile(&round_trips, 0.5),
        percentile(&round_trips, 0.99),
    );
    eprintln!("publish round trip: p50 {r50:?}, p99 {r99:?}");
    eprintln!("publish to delivery on another node: p50 {p50:?}, p99 {p99:?}");
}
