//! The client protocol of `clarion serve`, version 1 (see `docs/protocol.md`).
//!
//! JSON over WebSocket text frames. A client sends [`Command`]s, each with
//! an id, and gets one [`Reply`] per command; the server also sends
//! [`Push`]es (publications, join/leave, unsubscribe, disconnect). Errors
//! and disconnects carry numbered codes with stable meanings
//! ([`ErrorCode`], [`DisconnectCode`], [`UnsubscribeCode`]).
//!
//! The WebSocket subprotocol is [`SUBPROTOCOL_JSON`]; the name
//! [`SUBPROTOCOL_BINARY`] is reserved for a later binary encoding of the
//! same messages, which is why the types here do not assume JSON text
//! beyond [`Data`].
//!
//! ```
//! use clarion_wire::{decode_command, Request};
//!
//! let cmd = decode_command(br#"{"id":1,"method":"subscribe","params":{"channel":"chat:lobby"}}"#)?;
//! assert_eq!(cmd.id, 1);
//! assert!(matches!(cmd.request, Request::Subscribe(ref s) if s.channel == "chat:lobby"));
//! # Ok::<(), clarion_wire::DecodeError>(())
//! ```

mod codec;
mod codes;
mod command;
mod data;
mod push;
mod reply;

pub use codec::{
    decode_command, decode_command_with, decode_frame, decode_server_message, encode_command,
    encode_push, encode_reply, DecodeError, Limits, RawReply, ServerMessage,
};
pub use codes::{DisconnectCode, ErrorCode, UnsubscribeCode};
pub use command::{
    ChannelRequest, Command, ConnectRequest, HistoryRequest, Method, PublishRequest,
    RefreshRequest, Request, SubRefreshRequest, SubscribeRequest, MAX_IDEMPOTENCY_KEY_BYTES,
};
pub use data::{ClientInfo, Data, StreamPosition};
pub use push::{DisconnectPush, PresencePush, PublicationPush, Push, UnsubscribePush};
pub use reply::{
    ConnectResult, Empty, HistoryResult, PresenceResult, PresenceStatsResult, Publication,
    PublishResult, RefreshResult, Reply, ReplyError, ReplyResult, SubscribeResult,
};

/// The protocol version, as sent in the `connect` result.
pub const PROTOCOL_VERSION: &str = "1";

/// The WebSocket subprotocol for JSON text frames.
pub const SUBPROTOCOL_JSON: &str = "clarion.json.v1";

/// Reserved for a binary encoding of the same messages (not yet defined).
pub const SUBPROTOCOL_BINARY: &str = "clarion.binary.v1";
