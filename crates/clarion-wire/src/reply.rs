//! Replies: the answer to one command, `{"id": N, "result": {...}}` or
//! `{"id": N, "error": {"code": C, "message": "...", "temporary": B}}`.

use std::collections::BTreeMap;

use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize, Serializer};

use crate::codes::ErrorCode;
use crate::data::{ClientInfo, Data, StreamPosition};

/// The answer to the command with the same `id`.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The command's id.
    pub id: u32,
    /// The result, or why the command failed.
    pub outcome: Result<ReplyResult, ReplyError>,
}

impl Reply {
    /// A successful reply.
    pub fn ok(id: u32, result: impl Into<ReplyResult>) -> Reply {
        Reply {
            id,
            outcome: Ok(result.into()),
        }
    }

    /// An error reply.
    pub fn error(id: u32, error: ReplyError) -> Reply {
        Reply {
            id,
            outcome: Err(error),
        }
    }
}

impl Serialize for Reply {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Reply", 2)?;
        st.serialize_field("id", &self.id)?;
        match &self.outcome {
            Ok(result) => st.serialize_field("result", result)?,
            Err(error) => st.serialize_field("error", error)?,
        }
        st.end()
    }
}

/// A failed command: a numbered code, a text and whether retrying later may
/// succeed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyError {
    /// The code (see `docs/protocol.md` for the table).
    pub code: ErrorCode,
    /// A human-readable text; do not match on it.
    pub message: String,
    /// Whether the same command may succeed later.
    pub temporary: bool,
}

impl ReplyError {
    /// The error with the code's default text and temporary flag.
    pub fn new(code: ErrorCode) -> ReplyError {
        ReplyError {
            code,
            message: code.text().to_owned(),
            temporary: code.is_temporary(),
        }
    }

    /// The error with a more specific text.
    pub fn with_message(code: ErrorCode, message: impl Into<String>) -> ReplyError {
        ReplyError {
            message: message.into(),
            ..ReplyError::new(code)
        }
    }
}

impl From<ErrorCode> for ReplyError {
    fn from(code: ErrorCode) -> ReplyError {
        ReplyError::new(code)
    }
}

impl std::fmt::Display for ReplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_u16(), self.message)
    }
}

impl std::error::Error for ReplyError {}

/// The result of a successful command, by method.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum ReplyResult {
    /// `connect`
    Connect(ConnectResult),
    /// `subscribe`
    Subscribe(SubscribeResult),
    /// `publish`
    Publish(PublishResult),
    /// `presence`
    Presence(PresenceResult),
    /// `presence_stats`
    PresenceStats(PresenceStatsResult),
    /// `history`
    History(HistoryResult),
    /// `refresh`
    Refresh(RefreshResult),
    /// `unsubscribe` and `ping`: `{}`.
    Empty(Empty),
}

macro_rules! into_result {
    ($($ty:ident => $variant:ident),*) => {
        $(impl From<$ty> for ReplyResult {
            fn from(r: $ty) -> ReplyResult {
                ReplyResult::$variant(r)
            }
        })*
    };
}

into_result!(
    ConnectResult => Connect,
    SubscribeResult => Subscribe,
    PublishResult => Publish,
    PresenceResult => Presence,
    PresenceStatsResult => PresenceStats,
    HistoryResult => History,
    RefreshResult => Refresh,
    Empty => Empty
);

/// An empty result, `{}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

/// The `connect` result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConnectResult {
    /// The client id the server gave this session.
    pub client: String,
    /// The protocol version the server speaks (`"1"`).
    pub version: String,
    /// Server-side subscriptions (channels from the token), by channel.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub subs: BTreeMap<String, SubscribeResult>,
    /// Seconds until the connection token expires (then `refresh`), if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u64>,
    /// Seconds between pings the client should send on transports without
    /// WebSocket pings, if the server wants them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ping: Option<u64>,
}

/// The `subscribe` result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SubscribeResult {
    /// Whether the channel keeps history, so that this subscription can be
    /// recovered later from `offset`/`epoch`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub recoverable: bool,
    /// The stream's current offset (after the recovered publications).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// The stream's epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<String>,
    /// Present when `recover` was asked: `true` means `publications` holds
    /// every publication missed, in order; `false` means they could not all
    /// be recovered (reload your state) and `publications` is empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovered: Option<bool>,
    /// The missed publications, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub publications: Vec<Publication>,
    /// Seconds until the subscription token expires (send `sub_refresh`
    /// before), if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u64>,
}

impl SubscribeResult {
    /// The position after this reply, when the channel has one.
    pub fn position(&self) -> Option<StreamPosition> {
        Some(StreamPosition {
            offset: self.offset?,
            epoch: self.epoch.clone()?,
        })
    }
}

/// A publication in a reply (recovered or read from history).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Publication {
    /// Its offset in the stream (absent in channels without history).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// The data.
    pub data: Data,
    /// The publisher, when a client published it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<ClientInfo>,
}

/// The `publish` result: the publication's position, in channels with history.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PublishResult {
    /// The publication's offset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// The stream's epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<String>,
}

/// The `presence` result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PresenceResult {
    /// Every client subscribed to the channel, by client id.
    pub clients: Vec<ClientInfo>,
}

/// The `presence_stats` result.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceStatsResult {
    /// Clients (connections) in the channel.
    pub num_clients: u64,
    /// Distinct users in the channel.
    pub num_users: u64,
}

/// The `history` result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HistoryResult {
    /// The page, in the order asked for.
    #[serde(default)]
    pub publications: Vec<Publication>,
    /// The stream's current (newest) offset.
    pub offset: u64,
    /// The stream's epoch.
    pub epoch: String,
}

/// The `refresh` result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshResult {
    /// Seconds until the new token expires, if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u64>,
}

fn is_false(b: &bool) -> bool {
    !*b
}
