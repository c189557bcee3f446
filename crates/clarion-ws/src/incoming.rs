//! What [`WebSocket::recv_incoming`](crate::WebSocket::recv_incoming) returns.

use bytes::Bytes;
use clarion_proto::Message;

/// A message or a control frame from the peer.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Incoming {
    /// A text or binary message.
    Message(Message),
    /// A ping (already answered with a pong when `auto_pong` is on).
    Ping(Bytes),
    /// A pong.
    Pong(Bytes),
}
