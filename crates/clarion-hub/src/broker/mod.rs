//! The `Broker`: what the hub needs from the layer that carries
//! publications between nodes and keeps history and presence.
//!
//! [`MemoryBroker`] is the reference implementation (in memory: one node,
//! or several nodes of one process sharing a [`MemoryBackend`]); Redis and
//! NATS brokers implement the same contract and run the same test suite
//! (`clarion_hub::contract`, feature `contract-tests`).

mod error;
mod memory;
mod node;
mod types;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use clarion_wire::{ClientInfo, Publication, StreamPosition};

pub use error::{BrokerError, BrokerErrorKind};
pub use memory::{MemoryBackend, MemoryBroker};
pub use node::{
    ClusterMessage, ClusterNode, Control, ControlKind, Heartbeat, NodeIdentity, NodeStats,
};
pub use types::{
    HistoryOptions, HistoryPage, HistoryQuery, NewPublication, PresenceChange, PresenceEntry,
    PresenceStats, DEFAULT_IDEMPOTENCY_WINDOW,
};

/// A boxed `Send` future, so that `Broker` can be used as `dyn Broker`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Carries publications, join and leave events and control messages
/// between nodes, keeps channel history and presence, and knows the live
/// nodes of the cluster.
///
/// # Contract
///
/// Every implementation must provide the following; the shared suite in
/// `clarion_hub::contract` checks each point, on one node and on two nodes
/// sharing a backend.
///
/// **Nodes.** Each broker instance is one node with an
/// [`identity`](Broker::identity) given at construction (its id is unique
/// per process run). [`nodes`](Broker::nodes) lists the live nodes, this
/// one included, with their counts (from [`BrokerHandler::node_stats`]) and
/// when they were last heard of. A node announces itself at least every
/// heartbeat interval of its broker (a few seconds); a node not heard of for
/// three intervals is no longer listed (it crashed); a node that
/// [`shutdown`](Broker::shutdown)s, or whose broker is dropped, stops being
/// listed within that time too (at once, if it could say goodbye).
///
/// **Control path.** [`broadcast_control`](Broker::broadcast_control)
/// delivers a [`Control`] to every live node, this one included;
/// [`send_control`](Broker::send_control) to one node by id, or fails
/// with [`BrokerErrorKind::NoSuchNode`] when no live node has that id (the
/// message is then dropped). Control delivery is at most once and ordered
/// per sender; the handler gets it through [`BrokerHandler::on_control`].
///
/// **Live delivery.** After [`run`](Broker::run), the broker calls the
/// handler's methods for every publication, join and leave in channels this
/// node [`subscribe`](Broker::subscribe)d to, whichever node published them
/// (it may also deliver for other channels; the hub ignores them). When
/// `subscribe` returns, the subscription is in effect: every publication
/// made after that is delivered (or its loss is signalled, below).
/// Subscriptions are counted per channel: the node stays subscribed while
/// its `subscribe` calls outnumber its `unsubscribe` calls, whatever order
/// concurrent calls complete in (a new first member's `subscribe` racing
/// the last member's `unsubscribe` leaves the node subscribed). Delivery
/// is *at most once*: a publication may be lost (a broker connection
/// drops), never duplicated. Within one channel, publications are delivered
/// in the order of their offsets; there is no order across channels.
/// Handler methods are synchronous and do not block; a broker must not call
/// them concurrently for the same channel.
///
/// **No silent loss.** A lost publication is never hidden. In channels with
/// history the receiver sees the gap in offsets (or a new epoch) at the
/// next publication; and when the broker *knows* it may have lost live
/// messages (its subscription connection dropped and was re-established, the
/// backend's generation changed), it calls [`BrokerHandler::on_resync`] with
/// the affected subscribed channels, once live delivery is back, so the hub
/// compares each channel's position with its subscribers' and repairs the
/// gap from history without waiting for the next publication. A broker that
/// cannot lose live messages (the memory broker) never calls it.
///
/// **History.** [`publish`](Broker::publish) with [`HistoryOptions`]
/// appends the publication to the channel's stream and gives it the next
/// offset, in one atomic step with the delivery (no node can see a
/// publication delivered but not stored, or two publications with one
/// offset): offsets start at 1 in a new stream and increase by exactly one.
/// The stream keeps at most `size` publications (the oldest are trimmed)
/// and each for at most `ttl`. The stream's position (top offset and epoch)
/// lives `meta_ttl` after the last publication, and also comes into being
/// when read ([`history`](Broker::history) on a channel without a stream
/// creates an empty one, so a subscriber's position is remembered).
///
/// **Epochs.** The epoch is an opaque string naming one stream: a position
/// `(offset, epoch)` names at most one publication, forever. It changes
/// whenever the stream is recreated: after its position expired, after the
/// history was removed, and whenever the backend may have lost data: a
/// restart without persistence, a flush, a failover to a replica that may
/// lag. A backend that lost its data yields a new epoch, never reused
/// offsets under an old epoch; when a broker cannot tell whether data was
/// lost (a restart *with* persistence may have lost the last second), it
/// must assume it was. Two streams of the same channel never share an
/// epoch. Publishing without history options delivers live only and
/// returns no position.
///
/// **Idempotent publish.** A publication with an
/// [`idempotency_key`](NewPublication::idempotency_key) that repeats the
/// key of an earlier publish into the same channel, through any node,
/// within the broker's idempotency window (default
/// [`DEFAULT_IDEMPOTENCY_WINDOW`], 5 minutes, counted from the first
/// publish), is neither stored nor delivered: the call returns the first
/// publish's position (`None` without history). After the window the key is
/// forgotten. Keys are per channel.
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
/// [`add_presence_batch`](Broker::add_presence_batch) does that for many
/// entries in one round trip to the backend (a node's periodic refresh);
/// [`remove_presence`](Broker::remove_presence) removes it; an entry that
/// is not refreshed within its ttl disappears (a crashed node's clients
/// vanish). Presence is shared by all nodes. Adding and removing report a
/// [`PresenceChange`]: whether the user's first client arrived or last
/// client left, decided atomically in the backend, so two nodes adding two
/// clients of one user report exactly one first arrival. (An entry that
/// expires changes the counts but reports nothing.)
/// [`presence_stats`](Broker::presence_stats) counts clients and distinct
/// users and must not cost time proportional to the channel's size.
///
/// **Errors** are [`BrokerError`]s: [`is_temporary`](BrokerError::is_temporary)
/// ones (backend unreachable: the hub answers 503) must come within a
/// bounded time (a connect or command timeout), never a hang; the others
/// mean the backend refused or the call was invalid.
pub trait Broker: Send + Sync + 'static {
    /// This node.
    fn identity(&self) -> &NodeIdentity;

    /// Starts delivering live events and control messages to `handler`
    /// and announcing this node. Called once, before any other method
    /// except [`identity`](Broker::identity); a second call fails with
    /// [`BrokerErrorKind::Invalid`].
    fn run(&self, handler: Arc<dyn BrokerHandler>) -> BoxFuture<'_, Result<(), BrokerError>>;

    /// Stops live delivery and heartbeats and tells the other nodes this
    /// one is leaving. Shared state (history, presence) stays.
    fn shutdown(&self) -> BoxFuture<'_, ()>;

    /// The live nodes of the cluster, this one included, in no particular
    /// order.
    fn nodes(&self) -> Vec<ClusterNode>;

    /// Whether the backend is reachable right now, for readiness probes:
    /// `Err` (unavailable) while a connection this node needs is down.
    /// Bounded by the broker's own timeouts. The in-memory broker is
    /// always healthy.
    fn health(&self) -> BoxFuture<'_, Result<(), BrokerError>> {
        Box::pin(std::future::ready(Ok(())))
    }

    /// Sends a control message to every live node, this one included.
    fn broadcast_control(
        &self,
        kind: ControlKind,
        payload: Bytes,
    ) -> BoxFuture<'_, Result<(), BrokerError>>;

    /// Sends a control message to the node with id `node` (this one
    /// included); [`BrokerErrorKind::NoSuchNode`] if none is live.
    fn send_control<'a>(
        &'a self,
        node: &'a str,
        kind: ControlKind,
        payload: Bytes,
    ) -> BoxFuture<'a, Result<(), BrokerError>>;

    /// Starts live delivery of `channel` to this node (the hub calls it
    /// when the channel gets its first local subscriber). In effect when
    /// the future completes.
    fn subscribe<'a>(&'a self, channel: &'a str) -> BoxFuture<'a, Result<(), BrokerError>>;

    /// Stops live delivery of `channel` to this node.
    fn unsubscribe<'a>(&'a self, channel: &'a str) -> BoxFuture<'a, Result<(), BrokerError>>;

    /// Publishes to every node subscribed to `channel`; with history
    /// options, appends to the stream in the same step and returns the
    /// publication's position. A repeated idempotency key returns the
    /// first position and publishes nothing.
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
    ) -> BoxFuture<'a, Result<PresenceChange, BrokerError>>;

    /// Records (or refreshes) every entry for `ttl`, in one round trip to
    /// the backend where it has round trips.
    fn add_presence_batch<'a>(
        &'a self,
        entries: &'a [PresenceEntry],
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), BrokerError>>;

    /// Removes a client from the channel's presence.
    fn remove_presence<'a>(
        &'a self,
        channel: &'a str,
        client: &'a str,
    ) -> BoxFuture<'a, Result<PresenceChange, BrokerError>>;

    /// Every client in the channel's presence, in no particular order.
    fn presence<'a>(
        &'a self,
        channel: &'a str,
    ) -> BoxFuture<'a, Result<Vec<ClientInfo>, BrokerError>>;

    /// Counts of clients and distinct users in the channel, in O(1) (or
    /// O(log n)) of the channel's size.
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

    /// A control message from a node (possibly this one).
    fn on_control(&self, control: &Control);

    /// Live delivery of these subscribed channels may have lost
    /// publications (see "No silent loss" in the [`Broker`] contract):
    /// compare each channel's stream position with what was delivered and
    /// fill the gap from history. Called after live delivery resumed, so a
    /// history read now sees everything delivery missed.
    fn on_resync(&self, channels: &[String]);

    /// This node's counts, for its heartbeats. Called from the broker's
    /// heartbeat task every few seconds: must be cheap.
    fn node_stats(&self) -> NodeStats {
        NodeStats::default()
    }
}
