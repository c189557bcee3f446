//! Pushes: what the server sends without being asked, `{"push": "<type>", ...}`.

use serde::{Deserialize, Serialize};

use crate::codes::{DisconnectCode, UnsubscribeCode};
use crate::data::{ClientInfo, Data};

/// A message the server sends on its own.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "push", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Push {
    /// A publication in a subscribed channel.
    Publication(PublicationPush),
    /// A client subscribed to a channel with join/leave on.
    Join(PresencePush),
    /// A client left a channel with join/leave on.
    Leave(PresencePush),
    /// The server ended one subscription.
    Unsubscribe(UnsubscribePush),
    /// The server is ending the connection; the WebSocket closes next.
    Disconnect(DisconnectPush),
}

/// A publication delivered live.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublicationPush {
    /// The channel.
    pub channel: String,
    /// Its offset (in channels with history); remember it to recover.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// The stream's epoch (in channels with history).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<String>,
    /// The data.
    pub data: Data,
    /// The publisher, when a client published it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<ClientInfo>,
}

/// A `join` or `leave`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PresencePush {
    /// The channel.
    pub channel: String,
    /// Who joined or left.
    pub info: ClientInfo,
}

/// A subscription ended by the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnsubscribePush {
    /// The channel.
    pub channel: String,
    /// Why (see the unsubscribe code table).
    pub code: UnsubscribeCode,
    /// A human-readable text.
    pub reason: String,
    /// Whether to subscribe again (with recovery).
    pub resubscribe: bool,
}

impl UnsubscribePush {
    /// The push for `code` with its default text.
    pub fn new(channel: impl Into<String>, code: UnsubscribeCode) -> UnsubscribePush {
        UnsubscribePush {
            channel: channel.into(),
            code,
            reason: code.text().to_owned(),
            resubscribe: code.is_temporary(),
        }
    }
}

/// The end of the connection: the same code is the WebSocket close code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisconnectPush {
    /// Why (see the disconnect code table).
    pub code: DisconnectCode,
    /// A human-readable text (also the close frame's reason).
    pub reason: String,
    /// Whether to reconnect (with backoff).
    pub reconnect: bool,
}

impl DisconnectPush {
    /// The push for `code` with its default text.
    pub fn new(code: DisconnectCode) -> DisconnectPush {
        DisconnectPush {
            code,
            reason: code.text().to_owned(),
            reconnect: code.is_temporary(),
        }
    }
}
