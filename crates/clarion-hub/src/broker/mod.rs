//! The `Broker`: what the hub needs from the layer that carries
//! publications between nodes and keeps history and presence.
//!
//! [`MemoryBroker`] is the reference implementation (one node, in memory);
//! Redis and NATS brokers implement the same contract and run the same
//! test suite (`clarion_hub::contract`, feature `contract-tests`).

mod memory;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use clarion_wire::{ClientInfo, Data, Publication, StreamPosition};

pub use memory::MemoryBroker;

/// A boxed `Send` future, so that `Broker` can be used as `dyn Broker`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Carries publications, join and leave events between nodes, and keeps
/// channel history and presence.
///
/// # Contract
///
/// Every implementation must provide the following; the shared suite in
/// `clarion_hub::contract` checks each point.
///
/// **Live delivery.** After [`run`](Broker::run), the broker calls the
/// handler's methods for every publication, join and leave in channels this
/// node [`subscribe`](Broker::subscribe)d to (it may also deliver for other
/// channels; the hub ignores them). Delivery is *at most once*: a
/// publication may be lost (a broker connection drops), never duplicated.
/// Within one channel, publications are delivered in the order of their
/// offsets; there is no order across channels. A lost publication is never
/// hidden: in channels with history, the receiver sees the gap in offsets
/// (or a new epoch) and the hub turns it into a resubscription with
/// recovery. Handler methods are synchronous and do not block; a broker
/// must not call them concurrently for the same channel.
///
/// **History.** [`publish`](Broker::publish) with [`HistoryOptions`]
/// appends the publication to the channel's stream and gives it the next
/// offset: offsets start at 1 in a new stream and increase by exactly one.
/// The stream keeps at most `size` publications (the oldest are trimmed)
/// and each for at most `ttl`. The stream's position (top offset and epoch)
/// lives `meta_ttl` after the last publication, and also comes into being
/// when read ([`history`](Broker::history) on a channel without a stream
/// creates an empty one, so a subscriber's position is remembered). The
/// **epoch** is an opaque string that changes whenever the stream is
/// recreated: after its position expired, after the history was removed, or
/// when the backend lost it (restart, failover). Two streams of the same
/// channel never share an epoch. Publishing without history options
/// delivers live only and returns no position.
///
/// **Reading history.** [`history`](Broker::history) returns the
/// retained publications after `since` (exclusive) in offset order, or,
/// with `reverse`, those before `since` newest first, at most `limit`, and
/// the stream's current position. When `since` names another epoch the
/// page starts at the oldest (or newest) retained publication. Expired
/// publications are never returned.
///
/// **Presence.** [`add_presence`](Broker::add_presence) records a client
/// in a channel for `ttl` (adding again refreshes the entry);
/// [`remove_presence`](Broker::remove_presence) removes it; an entry that
/// is not refreshed within its ttl disappears (a crashed node's clients
/// vanish). [`presence_stats`](Broker::presence_stats) counts clients and
/// distinct users and must not cost time proportional to the channel's
/// size.
///
/// **Errors** are [`BrokerError`]s; the hub answers them with 503
/// (`unavailable`, temporary).
pub trait Broker: Send + Sync + 'static {
    /// Starts delivering live events to `handler`. Called once, before any
    /// other method.
    fn run(&self, handler: Arc<dyn BrokerHandler>) -> BoxFuture<'_, Result<(), BrokerError>>;

    /// Starts live delivery of `channel` to this node (the hub calls it
    /// when the channel gets its first local subscriber).
    fn subscribe<'a>(&'a self, channel: &'a str) -> BoxFuture<'a, Result<(), BrokerError>>;

    /// Stops live delivery of `channel` to this node.
    fn unsubscribe<'a>(&'a self, channel: &'a str) -> BoxFuture<'a, Result<(), BrokerError>>;

    /// Publishes to every node subscribed to `channel`; with history
    /// options, appends to the stream first and returns the publication's
    /// position.
    fn publish<'a>(
        &'a self,
        channel: &'a str,
        publication: NewPublication,
        history: Option<HistoryOptions>,
    ) -> BoxFuture<'a, Result<Option<StreamPosition>, BrokerError>>;

    /// Tells every node subscribed to `channel` that a client joined.
    fn publish_join<'a>(
        &'a self,
        channel: &'a str,
        info: ClientInfo,
    ) -> BoxFuture<'a, Result<(), BrokerError>>;

    /// Tells every node subscribed to `channel` that a client left.
    fn publish_leave<'a>(
        &'a self,
        channel: &'a str,
        info: ClientInfo,
    ) -> BoxFuture<'a, Result<(), BrokerError>>;

    /// Reads a page of the channel's stream and its current position
    /// (creating an empty stream if there is none).
    fn history<'a>(
        &'a self,
        channel: &'a str,
        query: HistoryQuery,
        options: HistoryOptions,
    ) -> BoxFuture<'a, Result<HistoryPage, BrokerError>>;

    /// Drops the channel's stream; the next one has a new epoch.
    fn remove_history<'a>(&'a self, channel: &'a str) -> BoxFuture<'a, Result<(), BrokerError>>;

    /// Records (or refreshes) a client in the channel's presence for `ttl`.
    fn add_presence<'a>(
        &'a self,
        channel: &'a str,
        info: ClientInfo,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), BrokerError>>;

    /// Removes a client from the channel's presence.
    fn remove_presence<'a>(
        &'a self,
        channel: &'a str,
        client: &'a str,
    ) -> BoxFuture<'a, Result<(), BrokerError>>;

    /// Every client in the channel's presence, in no particular order.
    fn presence<'a>(
        &'a self,
        channel: &'a str,
    ) -> BoxFuture<'a, Result<Vec<ClientInfo>, BrokerError>>;

    /// Counts of clients and distinct users in the channel, in O(1).
    fn presence_stats<'a>(
        &'a self,
        channel: &'a str,
    ) -> BoxFuture<'a, Result<PresenceStats, BrokerError>>;
}

/// Receives live events from a broker (implemented by the hub).
pub trait BrokerHandler: Send + Sync {
    /// A publication in `channel`; `epoch` is set in channels with history
    /// (and then `publication.offset` is too).
    fn on_publication(&self, channel: &str, publication: &Publication, epoch: Option<&str>);
    /// A client joined `channel`.
    fn on_join(&self, channel: &str, info: &ClientInfo);
    /// A client left `channel`.
    fn on_leave(&self, channel: &str, info: &ClientInfo);
}

/// What to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct NewPublication {
    /// The data.
    pub data: Data,
    /// The publisher, when a client publishes.
    pub info: Option<ClientInfo>,
}

/// How a channel keeps history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryOptions {
    /// Publications kept (at least 1).
    pub size: usize,
    /// How long each publication is kept.
    pub ttl: Duration,
    /// How long the stream's position outlives its last publication.
    pub meta_ttl: Duration,
}

/// A history read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryQuery {
    /// Exclusive start; `None` starts at the oldest (or, reversed, newest).
    pub since: Option<StreamPosition>,
    /// At most this many publications (0: only the position).
    pub limit: usize,
    /// Newest first.
    pub reverse: bool,
}

/// A page of history.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryPage {
    /// The publications (each with its offset).
    pub publications: Vec<Publication>,
    /// The stream's current top offset and epoch.
    pub position: StreamPosition,
}

/// Presence counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PresenceStats {
    /// Clients in the channel.
    pub num_clients: u64,
    /// Distinct users among them.
    pub num_users: u64,
}

/// A broker failure (connection lost, timeout, backend error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerError {
    message: String,
}

impl BrokerError {
    /// An error with a description.
    pub fn new(message: impl Into<String>) -> BrokerError {
        BrokerError {
            message: message.into(),
        }
    }
}

impl fmt::Display for BrokerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "broker: {}", self.message)
    }
}

impl std::error::Error for BrokerError {}
