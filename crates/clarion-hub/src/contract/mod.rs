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
//! Each case takes fresh brokers and uses channel names no other case
//! uses, so a shared backend (one Redis) needs no cleanup between cases.
//! Durations are a few seconds: a harness over a real backend sleeps.
//! Live delivery over a network is asynchronous, so cases wait for events
//! ([`eventually`]) and, to check that something is *not* delivered, let a
//! short while pass first.
//!
//! `single` holds the cases on one node; `cluster` those on two nodes of
//! one backend (and the node and control-path cases).

mod cluster;
mod single;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clarion_wire::{ClientInfo, Data, Publication, StreamPosition};

use crate::broker::{
    BoxFuture, Broker, BrokerHandler, Control, HistoryOptions, HistoryQuery, NewPublication,
};

pub use cluster::*;
pub use single::*;

/// What the suite needs from a broker implementation.
pub trait Harness: Sync {
    /// A fresh broker (one node), not yet [`run`](Broker::run).
    fn broker(&self) -> BoxFuture<'_, Arc<dyn Broker>>;

    /// Two fresh brokers, two nodes of one backend (they share history and
    /// presence and see each other's publications), not yet run.
    fn pair(&self) -> BoxFuture<'_, (Arc<dyn Broker>, Arc<dyn Broker>)>;

    /// The heartbeat interval of the brokers this harness makes (at most a
    /// second or two, so liveness cases stay short): a node that stopped is
    /// expected to vanish from its peers' [`nodes`](Broker::nodes) within
    /// four of them.
    fn heartbeat(&self) -> Duration;

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
            subscriptions_are_counted,
            join_and_leave_are_delivered,
            presence_add_remove_and_stats,
            presence_expires_unless_refreshed,
            presence_reports_first_and_last_client_of_a_user,
            presence_batch_adds_and_refreshes,
            idempotent_publish_is_stored_and_delivered_once,
            idempotent_publish_without_history,
            run_twice_is_invalid,
            a_node_lists_itself_and_gets_its_own_control,
            send_control_to_an_unknown_node_fails,
            publication_on_one_node_reaches_the_other,
            history_written_on_one_node_is_read_on_the_other,
            presence_is_shared_across_nodes,
            join_and_leave_cross_nodes,
            control_broadcast_reaches_every_node,
            send_control_reaches_only_that_node,
            nodes_see_each_other_until_shutdown,
            a_dropped_node_disappears,
            idempotent_retry_through_another_node
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

/// One event a broker delivered.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A publication with its epoch.
    Publication(String, Publication, Option<String>),
    /// A join.
    Join(String, ClientInfo),
    /// A leave.
    Leave(String, ClientInfo),
    /// A control message.
    Control(Control),
    /// A resync of these channels.
    Resync(Vec<String>),
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

    fn push(&self, event: Event) {
        self.events.lock().unwrap().push(event);
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

    /// Join and leave events of `channel` so far.
    pub fn presence_events(&self, channel: &str) -> Vec<Event> {
        let events = self.events().into_iter();
        let ours = |e: &Event| matches!(e, Event::Join(c, _) | Event::Leave(c, _) if c == channel);
        events.filter(ours).collect()
    }

    /// Control messages so far.
    pub fn controls(&self) -> Vec<Control> {
        let events = self.events().into_iter();
        let controls = events.filter_map(|e| match e {
            Event::Control(c) => Some(c),
            _ => None,
        });
        controls.collect()
    }
}

impl BrokerHandler for Recorder {
    fn on_publication(&self, channel: &str, publication: &Publication, epoch: Option<&str>) {
        let epoch = epoch.map(str::to_owned);
        self.push(Event::Publication(
            channel.to_owned(),
            publication.clone(),
            epoch,
        ));
    }

    fn on_join(&self, channel: &str, info: &ClientInfo) {
        self.push(Event::Join(channel.to_owned(), info.clone()));
    }

    fn on_leave(&self, channel: &str, info: &ClientInfo) {
        self.push(Event::Leave(channel.to_owned(), info.clone()));
    }

    fn on_control(&self, control: &Control) {
        self.push(Event::Control(control.clone()));
    }

    fn on_resync(&self, channels: &[String]) {
        self.push(Event::Resync(channels.to_vec()));
    }
}

/// Waits (up to 5 s of the harness's time) until `check` holds.
pub async fn eventually<H: Harness>(h: &H, what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..500 {
        if check() {
            return;
        }
        h.advance(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Lets a real backend deliver what it is going to before checking that
/// something did *not* arrive.
async fn settle<H: Harness>(h: &H) {
    h.advance(Duration::from_millis(200)).await;
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

async fn run(broker: &Arc<dyn Broker>) -> Arc<Recorder> {
    let recorder = Arc::new(Recorder::default());
    broker.run(recorder.clone()).await.expect("run");
    recorder
}

async fn started<H: Harness>(h: &H) -> (Arc<dyn Broker>, Arc<Recorder>) {
    let broker = h.broker().await;
    let recorder = run(&broker).await;
    (broker, recorder)
}

/// Two running nodes of one backend.
struct Pair {
    a: Arc<dyn Broker>,
    b: Arc<dyn Broker>,
    rec_a: Arc<Recorder>,
    rec_b: Arc<Recorder>,
}

async fn started_pair<H: Harness>(h: &H) -> Pair {
    let (a, b) = h.pair().await;
    let (rec_a, rec_b) = (run(&a).await, run(&b).await);
    Pair { a, b, rec_a, rec_b }
}

fn opts(size: usize, ttl: u64, meta_ttl: u64) -> Option<HistoryOptions> {
    Some(HistoryOptions {
        size,
        ttl: Duration::from_secs(ttl),
        meta_ttl: Duration::from_secs(meta_ttl),
    })
}

fn pub_n(n: u64) -> NewPublication {
    NewPublication::new(Data::from_value(&n).unwrap())
}

fn keyed(n: u64, key: &str) -> NewPublication {
    NewPublication {
        idempotency_key: Some(key.to_owned()),
        ..pub_n(n)
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

fn client(id: &str, user: &str) -> ClientInfo {
    ClientInfo {
        client: id.to_owned(),
        user: user.to_owned(),
        info: None,
        chan_info: None,
    }
}

async fn stats(b: &dyn Broker, ch: &str) -> (u64, u64) {
    let s = b.presence_stats(ch).await.unwrap();
    (s.num_clients, s.num_users)
}

async fn present(b: &dyn Broker, ch: &str) -> Vec<String> {
    let mut ids: Vec<_> = b
        .presence(ch)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.client)
        .collect();
    ids.sort();
    ids
}
