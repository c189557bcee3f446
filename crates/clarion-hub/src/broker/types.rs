//! The values that cross the [`Broker`](super::Broker) trait: what to
//! publish, how history is kept and read, presence counts.

use std::time::Duration;

use clarion_wire::{ClientInfo, Data, Publication, StreamPosition};

/// How long a broker remembers an idempotency key unless configured
/// otherwise: 5 minutes, longer than any sensible client retry loop
/// (backoff up to ~1 minute, a few attempts) and short enough that the
/// remembered results of a busy channel stay small.
pub const DEFAULT_IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(5 * 60);

/// What to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct NewPublication {
    /// The data.
    pub data: Data,
    /// The publisher, when a client publishes.
    pub info: Option<ClientInfo>,
    /// Makes a retried publish idempotent: a second publish into the same
    /// channel with the same key, through any node, within the broker's
    /// idempotency window, is neither stored nor delivered again and
    /// returns the first one's position.
    pub idempotency_key: Option<String>,
}

impl NewPublication {
    /// A publication of `data` with no publisher and no idempotency key.
    pub fn new(data: Data) -> NewPublication {
        NewPublication {
            data,
            info: None,
            idempotency_key: None,
        }
    }
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

/// What an [`add_presence`](super::Broker::add_presence) or
/// [`remove_presence`](super::Broker::remove_presence) changed for the
/// client's user: the hub sends per-user join and leave from it (first
/// connection in, last connection out).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PresenceChange {
    /// Added: the client is new in the channel (not a refresh).
    pub client_added: bool,
    /// Removed: the client was present.
    pub client_removed: bool,
    /// Added: the user had no other client in the channel. Removed: the
    /// user has no client left in it.
    pub user_changed: bool,
}

/// One entry of a batched presence refresh.
#[derive(Debug, Clone, PartialEq)]
pub struct PresenceEntry {
    /// The channel.
    pub channel: String,
    /// The client present in it.
    pub info: ClientInfo,
}
