//! The real-time engine of `clarion serve`: sessions, channels with
//! namespaces, fan-out through bounded per-session queues, presence,
//! history and recovery, and the [`Broker`] trait with its in-memory
//! reference implementation. It knows sessions, not sockets: a transport
//! feeds a [`Session`] the frames it receives and writes out what the
//! session's queue gives it. Design notes: `docs/hub.md`; the wire
//! protocol: `docs/protocol.md`.
//!
//! ```
//! use clarion_hub::{Credentials, Hub, HubConfig, Outgoing};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let hub = Hub::builder(HubConfig::default()).build().await.unwrap();
//! // The transport reads the first frame and verifies the token in it.
//! let (id, connect) = hub.decode_connect(br#"{"id":1,"method":"connect"}"#).unwrap();
//! let creds = Credentials { user: "alice".into(), ..Credentials::default() };
//! let session = hub.connect(creds, id, &connect).await.unwrap();
//! session.handle(br#"{"id":2,"method":"ping"}"#).await.unwrap();
//! let Some(Outgoing::Frame(connected)) = session.try_recv() else { panic!() };
//! assert!(connected.bytes().starts_with(br#"{"id":1,"result":{"client":"#));
//! let Some(Outgoing::Frame(pong)) = session.try_recv() else { panic!() };
//! assert_eq!(&pong.bytes()[..], br#"{"id":2,"result":{}}"#);
//! session.close().await;
//! # }
//! ```

mod api;
mod auth;
mod broker;
mod channel_ops;
mod channels;
mod commands;
mod config;
mod control;
mod delivery;
mod hub;
mod maintenance;
mod queue;
mod rate;
mod repair;
mod session;
mod stream;
mod subscribe;

#[cfg(feature = "contract-tests")]
pub mod contract;

pub use api::{ChannelInfo, NodeInfo};
pub use auth::{Credentials, RefreshCheck, SubscriptionCheck, SubscriptionGrant, TokenVerifier};
pub use broker::{
    BoxFuture, Broker, BrokerError, BrokerErrorKind, BrokerHandler, ClusterMessage, ClusterNode,
    Control, ControlKind, Heartbeat, HistoryOptions, HistoryPage, HistoryQuery, MemoryBackend,
    MemoryBroker, NewPublication, NodeIdentity, NodeStats, PresenceChange, PresenceEntry,
    PresenceStats, DEFAULT_IDEMPOTENCY_WINDOW,
};
pub use config::{
    deserialize_duration, format_duration, parse_duration, serialize_duration, ConfigError,
    DurationError, HubConfig, NamespaceOptions, QueueLimits, RateLimits, MAX_DURATION,
};
pub use hub::{Hub, HubBuilder, StartError};
pub use queue::{Frame, Outgoing};
pub use session::Session;
