//! The [`Broker`](clarion_hub::Broker) contract of `clarion-hub` on NATS
//! 2.9+ with JetStream.
//!
//! - **Live delivery** over core NATS: one subscription per channel per
//!   node, each channel one subject token (see `subjects`).
//! - **History and recovery** on JetStream: one stream per prefix over
//!   every channel's history subject, contiguous per-channel offsets by
//!   optimistic concurrency (`Nats-Expected-Last-Subject-Sequence`),
//!   epochs that change whenever a channel's position was lost, and
//!   idempotent publish through `Nats-Msg-Id` deduplication.
//! - **Presence** in a JetStream KV bucket with expiry.
//! - **Nodes** announce themselves with heartbeats; control messages go to
//!   every node or to one.
//!
//! ```no_run
//! # async fn demo() -> Result<(), clarion_hub::BrokerError> {
//! use clarion_broker_nats::{NatsBroker, NatsConfig};
//! let broker = NatsBroker::connect(NatsConfig::new(["nats://127.0.0.1:4222"])).await?;
//! for limit in broker.limitations() {
//!     eprintln!("nats broker: {limit}");
//! }
//! # Ok(()) }
//! ```
//!
//! What the contract cannot get on NATS, and why: `docs/cluster.md`
//! and [`NatsBroker::limitations`].

mod broker;
mod config;
mod conn;
mod error;
mod history;
mod live;
mod nodes;
mod presence;
mod shared;
mod subjects;

pub use broker::NatsBroker;
pub use config::NatsConfig;
