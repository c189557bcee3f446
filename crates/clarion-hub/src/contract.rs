//! The broker contract as a test suite every [`Broker`] runs unchanged
//! (feature `contract-tests`).
//!
//! Implement [`Harness`] for your broker and expand
//! [`broker_contract_tests!`](crate::broker_contract_tests) in a test file:
//!
//! ```ignore
//! clarion_hub::broker_contract_tests!(#[tokio::test(start_paused = true)], MemoryHarness);
//! ```
//!
//! Each case takes a fresh broker and uses channel names no other case
//! uses, so a shared backend (one Redis) needs no cleanup between cases.
//! Durations are a few seconds: a harness over a real backend sleeps.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clarion_wire::{ClientInfo, Data, Publication, StreamPosition};

use crate::broker::{
    BoxFuture, Broker, BrokerHandler, HistoryOptions, HistoryQuery, NewPublication,
};

/// What the suite needs from a broker implementation.
pub trait Harness: Sync {
    /// A fresh broker, not yet [`run`](Broker::run).
    fn broker(&self) -> BoxFuture<'_, Arc<dyn Broker>>;
    /// Lets `duration` pass for the broker: advance a paused tokio clock,
    /// or sleep for a real backend.
    fn advance(&self, duration: Duration) -> BoxFuture<'_, ()>;
}

/// Expands to one test function per contract case. `$attr` is the test
/// attribute (for example `#[tokio::test(start_paused = true)]` for the
/// memory broker, `#[tokio::test]` for a real backend); `$harness` an
/// expression for the [`Harness`].
#[macro_export]
macro_rules! broker_contract_tests {
    (#[$attr:meta], $harness:expr) => {
        $crate::broker_contract_tests!(@cases #[$attr], $harness;
            live_delivery_in_offset_order,
            publish_without_history_is_live_only,
            history_since_returns_what_was_missed,
            history_reverse_and_limit,
            history_size_trims_oldest,
            history_ttl_expires_publications,
            epoch_changes_when_stream_expires,
            epoch_changes_when_history_removed,
            reading_creates_a_stream_that_keeps_its_epoch,
            since_another_epoch_starts_at_oldest,
            channels_are_independent,
            unsubscribed_channels_are_not_required,
            join_and_leave_are_delivered,
            presence_add_remove_and_stats,
            presence_expires_unless_refreshed
        );
    };
    (@cases #[$attr:meta], $harness:expr; $($case:ident),*) => {
        $(
            #[$attr]
            async fn $case() {
                $crate::contract::$case(&$harness).await;
            }
        )*
    };
}

/// One live event a broker delivered.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A publication with its epoch.
    Publication(String, Publication, Option<String>),
    /// A join.
    Join(String, ClientInfo),
    /// A leave.
    Leave(String, ClientInfo),
}

/// A handler that records what it is given.
#[derive(Debug, Default)]
pub struct Recorder {
    events: Mutex<Vec<Event>>,
}

impl Recorder {
    /// The events so far.
    pub fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }

    /// Publications of `channel` so far: (offset, data JSON, epoch).
    pub fn publications(&self, channel: &str) -> Vec<(Option<u64>, String, Option<String>)> {
        let events = self.events();
        let pubs = events.into_iter().filter_map(|e| match e {
            Event::Publication(c, p, epoch) if c == channel => {
                Some((p.offset, p.data.get().to_owned(), epoch))
            }
            _ => None,
        });
        pubs.collect()
    }
}

impl BrokerHandler for Recorder {
    fn on_publication(&self, channel: &str, publication: &Publication, epoch: Option<&str>) {
        let event = Event::Publication(
            channel.to_owned(),
            publication.clone(),
            epoch.map(str::to_owned),
        );
        self.events.lock().unwrap().push(event);
    }

    fn on_join(&self, channel: &str, info: &ClientInfo) {
        let event = Event::Join(channel.to_owned(), info.clone());
        self.events.lock().unwrap().push(event);
    }

    fn on_leave(&self, channel: &str, info: &ClientInfo) {
        let event = Event::Leave(channel.to_owned(), info.clone());
        self.events.lock().unwrap().push(event);
    }
}

static NEXT: AtomicU64 = AtomicU64::new(0);

/// A channel name unique to this process run and case.
fn channel(case: &str) -> String {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("contract-{t:x}-{n}:{case}")
}

async fn started<H: Harness>(h: &H) -> (Arc<dyn Broker>, Arc<Recorder>) {
    let broker = h.broker().await;
    let recorder = Arc::new(Recorder::default());
    broker.run(recorder.clone()).await.expect("run");
    (broker, recorder)
}

fn opts(size: usize, ttl: u64, meta_ttl: u64) -> Option<HistoryOptions> {
    Some(HistoryOptions {
        size,
        ttl: Duration::from_secs(ttl),
        meta_ttl: Duration::from_secs(meta_ttl),
    })
}

fn pub_n(n: u64) -> NewPublication {
    NewPublication {
        data: Data::from_value(&n).unwrap(),
        info: None,
    }
}

async fn publish(b: &dyn Broker, ch: &str, n: u64, o: Option<HistoryOptions>) -> StreamPosition {
    let pos = b.publish(ch, pub_n(n), o).await.expect("publish");
    pos.expect("a position in a channel with history")
}

async fn read(
    b: &dyn Broker,
    ch: &str,
    since: Option<StreamPosition>,
    limit: usize,
    reverse: bool,
) -> (Vec<u64>, StreamPosition) {
    let query = HistoryQuery {
        since,
        limit,
        reverse,
    };
    let page = b.history(ch, query, opts(100, 60, 600).unwrap()).await;
    let page = page.expect("history");
    let offsets = page
        .publications
        .iter()
        .map(|p| p.offset.unwrap())
        .collect();
    (offsets, page.position)
}

fn at(offset: u64, epoch: &str) -> Option<StreamPosition> {
    Some(StreamPosition {
        offset,
        epoch: epoch.to_owned(),
    })
}

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
    let got = rec.publications(&ch);
    let want: Vec<_> = (1..=20)
        .map(|n| (Some(n), n.to_string(), epoch.clone()))
        .collect();
    assert_eq!(got, want);
}

/// Without history options a publication is delivered with no position.
pub async fn publish_without_history_is_live_only<H: Harness>(h: &H) {
    let (b, rec) = started(h).await;
    let ch = channel("live");
    b.subscribe(&ch).await.unwrap();
    assert_eq!(b.publish(&ch, pub_n(7), None).await.unwrap(), None);
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

fn client(id: &str, user: &str) -> ClientInfo {
    ClientInfo {
        client: id.to_owned(),
        user: user.to_owned(),
        info: None,
        chan_info: None,
    }
}

/// Join and leave reach subscribed nodes.
pub async fn join_and_leave_are_delivered<H: Harness>(h: &H) {
    let (b, rec) = started(h).await;
    let ch = channel("joins");
    b.subscribe(&ch).await.unwrap();
    b.publish_join(&ch, client("c1", "u1")).await.unwrap();
    b.publish_leave(&ch, client("c1", "u1")).await.unwrap();
    let events: Vec<_> = rec
        .events()
        .into_iter()
        .filter(|e| !matches!(e, Event::Publication(..)))
        .collect();
    assert_eq!(
        events,
        vec![
            Event::Join(ch.clone(), client("c1", "u1")),
            Event::Leave(ch.clone(), client("c1", "u1")),
        ]
    );
}

async fn stats(b: &dyn Broker, ch: &str) -> (u64, u64) {
    let s = b.presence_stats(ch).await.unwrap();
    (s.num_clients, s.num_users)
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
    let mut ids: Vec<_> = b
        .presence(&ch)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.client)
        .collect();
    ids.sort();
    assert_eq!(ids, vec!["c1", "c2", "c3"]);
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
    let ids: Vec<_> = b
        .presence(&ch)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.client)
        .collect();
    assert_eq!(ids, vec!["c1"]);
    assert_eq!(stats(&*b, &ch).await, (1, 1));
    h.advance(Duration::from_millis(1000)).await;
    assert_eq!(stats(&*b, &ch).await, (0, 0));
}
