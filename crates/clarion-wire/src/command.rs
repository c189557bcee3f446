//! Commands: what a client sends. Each is `{"id": N, "method": "...",
//! "params": {...}}` and is answered by exactly one reply with the same id.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::data::{Data, StreamPosition};

/// A command from a client: an id chosen by the client (echoed in the
/// reply) and what it asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    /// The client's id for this command; the reply carries the same id.
    pub id: u32,
    /// The method and its params.
    pub request: Request,
}

/// A method with its params.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Request {
    /// The first command of a connection: authenticate.
    Connect(ConnectRequest),
    /// Subscribe to a channel, optionally recovering from a position.
    Subscribe(SubscribeRequest),
    /// Leave a channel.
    Unsubscribe(ChannelRequest),
    /// Publish into a channel (if the namespace allows client publishing).
    Publish(PublishRequest),
    /// Who is in a channel.
    Presence(ChannelRequest),
    /// How many clients and users are in a channel.
    PresenceStats(ChannelRequest),
    /// Read a channel's history.
    History(HistoryRequest),
    /// An application-level ping, for transports without WebSocket pings.
    Ping,
    /// Replace the connection token before it expires.
    Refresh(RefreshRequest),
    /// Replace a subscription token before it expires.
    SubRefresh(SubRefreshRequest),
}

/// The method names, as sent in `"method"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Method {
    /// `connect`
    Connect,
    /// `subscribe`
    Subscribe,
    /// `unsubscribe`
    Unsubscribe,
    /// `publish`
    Publish,
    /// `presence`
    Presence,
    /// `presence_stats`
    PresenceStats,
    /// `history`
    History,
    /// `ping`
    Ping,
    /// `refresh`
    Refresh,
    /// `sub_refresh`
    SubRefresh,
}

impl Method {
    /// Every method.
    pub const ALL: &'static [Method] = &[
        Method::Connect,
        Method::Subscribe,
        Method::Unsubscribe,
        Method::Publish,
        Method::Presence,
        Method::PresenceStats,
        Method::History,
        Method::Ping,
        Method::Refresh,
        Method::SubRefresh,
    ];

    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Connect => "connect",
            Method::Subscribe => "subscribe",
            Method::Unsubscribe => "unsubscribe",
            Method::Publish => "publish",
            Method::Presence => "presence",
            Method::PresenceStats => "presence_stats",
            Method::History => "history",
            Method::Ping => "ping",
            Method::Refresh => "refresh",
            Method::SubRefresh => "sub_refresh",
        }
    }

    /// The method with this wire name.
    pub fn from_name(name: &str) -> Option<Method> {
        Method::ALL.iter().copied().find(|m| m.as_str() == name)
    }
}

impl Request {
    /// This request's method.
    pub fn method(&self) -> Method {
        match self {
            Request::Connect(_) => Method::Connect,
            Request::Subscribe(_) => Method::Subscribe,
            Request::Unsubscribe(_) => Method::Unsubscribe,
            Request::Publish(_) => Method::Publish,
            Request::Presence(_) => Method::Presence,
            Request::PresenceStats(_) => Method::PresenceStats,
            Request::History(_) => Method::History,
            Request::Ping => Method::Ping,
            Request::Refresh(_) => Method::Refresh,
            Request::SubRefresh(_) => Method::SubRefresh,
        }
    }
}

/// `connect` params.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConnectRequest {
    /// The connection token (a JWT), unless the server allows anonymous connections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The client library's name, for logs and metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The client library's version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Positions to recover server-side subscriptions (channels from the
    /// token) from, by channel.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub subs: BTreeMap<String, StreamPosition>,
}

/// `subscribe` params.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SubscribeRequest {
    /// The channel, `namespace:name` or a bare name in the default namespace.
    pub channel: String,
    /// A subscription token, for namespaces that require one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Ask for the publications missed since `offset`/`epoch`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub recover: bool,
    /// The offset of the last publication the client saw (with `recover`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// The epoch of that publication's stream (with `recover`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<String>,
}

impl SubscribeRequest {
    /// The position to recover from, when `recover` is set.
    pub fn recover_from(&self) -> Option<StreamPosition> {
        if !self.recover {
            return None;
        }
        Some(StreamPosition {
            offset: self.offset?,
            epoch: self.epoch.clone()?,
        })
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.recover && (self.offset.is_none() || self.epoch.is_none()) {
            return Err("recover needs offset and epoch".into());
        }
        Ok(())
    }
}

/// Params naming just a channel (`unsubscribe`, `presence`, `presence_stats`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChannelRequest {
    /// The channel.
    pub channel: String,
}

/// The longest idempotency key accepted, in bytes: room for a UUID or a
/// `<client>:<counter>` pair, small enough to keep per publication.
pub const MAX_IDEMPOTENCY_KEY_BYTES: usize = 64;

/// `publish` params.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublishRequest {
    /// The channel.
    pub channel: String,
    /// The data, any JSON value.
    pub data: Data,
    /// Makes a retried publish safe: the server stores and delivers the
    /// publication once per key (within the channel and a window) and
    /// answers a retry with the first result. 1 to
    /// [`MAX_IDEMPOTENCY_KEY_BYTES`] bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

impl PublishRequest {
    pub(crate) fn validate(&self) -> Result<(), String> {
        match &self.idempotency_key {
            Some(key) if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_BYTES => Err(format!(
                "idempotency_key must be 1 to {MAX_IDEMPOTENCY_KEY_BYTES} bytes"
            )),
            _ => Ok(()),
        }
    }
}

/// `history` params: a page of a channel's history.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HistoryRequest {
    /// The channel.
    pub channel: String,
    /// At most this many publications; absent or 0 returns only the
    /// stream's current position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// Start after this position (exclusive); absent starts at the oldest
    /// (or, with `reverse`, the newest) retained publication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<StreamPosition>,
    /// Newest first.
    #[serde(default, skip_serializing_if = "is_false")]
    pub reverse: bool,
}

/// `refresh` params.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RefreshRequest {
    /// The new connection token.
    pub token: String,
}

/// `sub_refresh` params.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SubRefreshRequest {
    /// The subscribed channel.
    pub channel: String,
    /// The new subscription token for it.
    pub token: String,
}

fn is_false(b: &bool) -> bool {
    !*b
}
