//! Nodes of a cluster and the messages they send each other: identity,
//! liveness (heartbeats with counts) and control messages (disconnect a
//! user everywhere, route a message to the node owning a session).

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

/// Who a node is: a unique `id` (new for every process run, so a
/// restarted node is a new node) and a human `name` (`--node-name`, for
/// logs and the admin view; not necessarily unique).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NodeIdentity {
    /// Unique in the cluster: 16 hex digits, random per process run.
    pub id: String,
    /// The configured name, or the id.
    pub name: String,
}

impl NodeIdentity {
    /// A fresh identity named `name` (or its own id when `None`).
    pub fn generate(name: Option<&str>) -> NodeIdentity {
        let id = random_hex();
        let name = name.map_or_else(|| id.clone(), str::to_owned);
        NodeIdentity { id, name }
    }
}

/// 16 hex digits, unique within the process (a counter is hashed in) and,
/// with overwhelming probability, across processes (`RandomState` is seeded
/// from the OS per process, plus the clock).
pub(crate) fn random_hex() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let seed = RandomState::new().hash_one((std::time::SystemTime::now(), n));
    format!("{seed:016x}")
}

/// A node's counts, carried by its heartbeats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStats {
    /// Connected sessions.
    pub clients: u64,
    /// Distinct users among them.
    pub users: u64,
    /// Channels with at least one local subscriber.
    pub channels: u64,
    /// Subscriptions of local sessions.
    pub subscriptions: u64,
}

/// A live node as this node last heard of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterNode {
    /// Who it is.
    pub identity: NodeIdentity,
    /// Its counts at its last heartbeat (this node's: now).
    pub stats: NodeStats,
    /// When this node last heard of it (this node: now).
    pub last_seen: Instant,
}

/// What a control message asks for. The payload's format belongs to the
/// sender and receiver of each kind (the hub), not to the broker.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ControlKind {
    /// Disconnect every session of a user on the receiving node.
    DisconnectUser,
    /// Unsubscribe a user's sessions from a channel on the receiving node.
    UnsubscribeUser,
    /// A message for a session the receiving node owns (the HTTP fallback
    /// transports route a client's command to its session this way).
    Route,
    /// Anything else, named.
    Other(String),
}

impl ControlKind {
    /// The kind's name on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            ControlKind::DisconnectUser => "disconnect_user",
            ControlKind::UnsubscribeUser => "unsubscribe_user",
            ControlKind::Route => "route",
            ControlKind::Other(name) => name,
        }
    }

    /// The kind named `name` on the wire.
    pub fn from_name(name: &str) -> ControlKind {
        match name {
            "disconnect_user" => ControlKind::DisconnectUser,
            "unsubscribe_user" => ControlKind::UnsubscribeUser,
            "route" => ControlKind::Route,
            other => ControlKind::Other(other.to_owned()),
        }
    }
}

/// A node-to-node message, as delivered to
/// [`BrokerHandler::on_control`](super::BrokerHandler::on_control).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Control {
    /// The sending node's id.
    pub from: String,
    /// What it asks for.
    pub kind: ControlKind,
    /// Opaque to the broker.
    pub payload: Bytes,
}

/// What a networked broker sends on its cluster channel: the shared
/// encoding, so every broker crate (and a mixed-version cluster) agrees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterMessage {
    /// A control message.
    Control(Control),
    /// A node is alive (`leaving: false`) or is shutting down.
    Heartbeat(Heartbeat),
}

/// A node's liveness announcement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// Who.
    pub node: NodeIdentity,
    /// Its counts.
    pub stats: NodeStats,
    /// True in the last message of a node that shuts down.
    pub leaving: bool,
}

const TAG_CONTROL: u8 = b'C';
const TAG_HEARTBEAT: u8 = b'H';

impl ClusterMessage {
    /// Encodes: a tag byte, then for a control message the sender and kind
    /// as length-prefixed (u16, big-endian) strings and the payload as the
    /// rest; for a heartbeat, JSON.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            ClusterMessage::Control(c) => {
                let (from, kind) = (c.from.as_bytes(), c.kind.as_str().as_bytes());
                let mut out = Vec::with_capacity(5 + from.len() + kind.len() + c.payload.len());
                out.push(TAG_CONTROL);
                for part in [from, kind] {
                    // Node ids and kind names are short; longer ones are cut.
                    let len = part.len().min(u16::MAX as usize);
                    out.extend_from_slice(&(len as u16).to_be_bytes());
                    out.extend_from_slice(&part[..len]);
                }
                out.extend_from_slice(&c.payload);
                out
            }
            ClusterMessage::Heartbeat(h) => {
                let mut out = vec![TAG_HEARTBEAT];
                // Serialising plain strings and integers cannot fail.
                out.extend(serde_json::to_vec(h).unwrap_or_default());
                out
            }
        }
    }

    /// Decodes what [`encode`](ClusterMessage::encode) made; `None` for
    /// anything else.
    pub fn decode(bytes: &[u8]) -> Option<ClusterMessage> {
        let (&tag, rest) = bytes.split_first()?;
        match tag {
            TAG_HEARTBEAT => serde_json::from_slice(rest)
                .ok()
                .map(ClusterMessage::Heartbeat),
            TAG_CONTROL => {
                let (from, rest) = take_str(rest)?;
                let (kind, payload) = take_str(rest)?;
                Some(ClusterMessage::Control(Control {
                    from: from.to_owned(),
                    kind: ControlKind::from_name(kind),
                    payload: Bytes::copy_from_slice(payload),
                }))
            }
            _ => None,
        }
    }
}

fn take_str(bytes: &[u8]) -> Option<(&str, &[u8])> {
    let len = u16::from_be_bytes([*bytes.first()?, *bytes.get(1)?]) as usize;
    let text = bytes.get(2..2 + len)?;
    Some((std::str::from_utf8(text).ok()?, &bytes[2 + len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_messages_round_trip() {
        let control = ClusterMessage::Control(Control {
            from: "n1".into(),
            kind: ControlKind::Route,
            payload: Bytes::from_static(b"\x00binary\xff"),
        });
        let beat = ClusterMessage::Heartbeat(Heartbeat {
            node: NodeIdentity::generate(Some("eu-1")),
            stats: NodeStats {
                clients: 3,
                ..NodeStats::default()
            },
            leaving: false,
        });
        for msg in [control, beat] {
            assert_eq!(ClusterMessage::decode(&msg.encode()), Some(msg));
        }
        assert_eq!(ClusterMessage::decode(b"C\x00\x09short"), None);
        assert_eq!(ClusterMessage::decode(b""), None);
    }

    #[test]
    fn identities_are_unique() {
        let (a, b) = (NodeIdentity::generate(None), NodeIdentity::generate(None));
        assert_ne!(a.id, b.id);
        assert_eq!(a.name, a.id);
        assert_eq!(ControlKind::from_name("x"), ControlKind::Other("x".into()));
    }
}
