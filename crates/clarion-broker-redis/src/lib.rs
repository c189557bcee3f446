//! The [`Broker`](clarion_hub::Broker) contract of `clarion-hub` on Redis 7
//! (`redis://` and `rediss://` URLs), for running several `clarion serve`
//! nodes behind a load balancer.
//!
//! ```no_run
//! use std::sync::Arc;
//! use clarion_broker_redis::{RedisBroker, RedisConfig};
//! use clarion_hub::{Hub, HubConfig};
//!
//! # async fn start() -> Result<(), Box<dyn std::error::Error>> {
//! let mut config = RedisConfig::new(["redis://10.0.0.5:6379", "redis://10.0.0.6:6379"]);
//! config.node_name = Some("eu-1".into());
//! let broker = Arc::new(RedisBroker::new(config)?);
//! let hub = Hub::builder(HubConfig::default()).broker(broker).build().await?;
//! # Ok(()) }
//! ```
//!
//! # What lives where
//!
//! Per channel (the key layout is in the `keys` module; every key of a
//! channel carries the hash tag `{channel}`, so this also fits Redis
//! Cluster slots):
//!
//! - **history** is a Redis stream whose entry ids are the offsets
//!   (`<offset>-0`), trimmed to exactly `history_size` (`XADD MAXLEN`),
//!   each entry stamped with its expiry (reads skip expired entries; the
//!   whole stream expires `history_ttl` after its last publication); a meta
//!   hash holds the stored epoch and the top offset and lives
//!   `history_meta_ttl`;
//! - **publish** is one Lua script (`EVALSHA`, loaded again on `NOSCRIPT`):
//!   idempotency check, epoch creation, offset increment, append, trim,
//!   expiry, pub/sub delivery and remembering the idempotent result, all
//!   atomic, so offsets are unique and gap-free and pub/sub order is
//!   offset order;
//! - **live delivery** goes through the channel's sharded pub/sub channel
//!   (`SPUBLISH`/`SSUBSCRIBE`; classic pub/sub with
//!   [`RedisConfig::sharded_pubsub`] off), one subscription per channel per
//!   node on one dedicated connection per shard; joins and leaves travel
//!   there too;
//! - **presence** is a hash (client → info), a sorted set (client →
//!   expiry) and a hash of per-user client counts, changed by one script
//!   that prunes expired entries first; stats are two `HLEN`s, O(1), and
//!   adding or removing reports the user's first arrival and last
//!   departure; each node refreshes its clients in one pipeline per shard.
//!
//! Heartbeats and broadcast control messages travel on `<prefix>.control`,
//! messages for one node on `<prefix>.node.<id>`, both on shard 0.
//!
//! # Epochs and the broker generation
//!
//! The epoch handed to clients is `<stored>-<generation>`: the epoch stored
//! in the channel's meta hash, and the generation of the Redis server that
//! holds it, a hash of `run_id` and `master_replid` from `INFO`, read on
//! every (re)connect before any command runs and re-checked every
//! [`RedisConfig::generation_check`]. Why both:
//!
//! - a **flush** (or an evicted meta hash) loses the stored epoch: the next
//!   publish or read stores a new one;
//! - a **restart** changes `run_id`, even when a snapshot or AOF brought
//!   the meta hash back: the snapshot may miss the last writes, and the
//!   offsets handed out after them would otherwise be handed out again
//!   under the same epoch;
//! - a **failover** changes `master_replid` on the promoted replica, which
//!   may lag its old master by a few publications: the same offsets again,
//!   under a new epoch.
//!
//! So a client that reconnects across any of these is told
//! `recovered: false`, never given a position that names two different
//! publications. The price: a clean restart with persistence also changes
//! every epoch on that instance (clients resynchronise once).
//!
//! # Failures
//!
//! A refused, dropped or timed-out connection is
//! [`Unavailable`](clarion_hub::BrokerErrorKind::Unavailable) (temporary:
//! the hub answers 503) within [`RedisConfig::connect_timeout`] or
//! [`RedisConfig::command_timeout`]; the next call reconnects. A script or
//! server refusal is `Refused`. When a subscription connection drops, its
//! supervisor reconnects with backoff (50 ms doubling to 2 s, jittered),
//! resubscribes every channel of that shard, then calls
//! [`on_resync`](clarion_hub::BrokerHandler::on_resync) for them (also
//! when a generation check finds a failover that kept the connection).
//!
//! # Sharding
//!
//! With several URLs, a channel lives on shard
//! `jump_consistent_hash(fnv1a64(channel), n)` ([`sharding`]): its history,
//! presence and pub/sub are all there, so throughput grows with instances.
//! Control messages use the first URL. Every node must list the same URLs
//! in the same order. Each URL is one standalone instance (or a primary
//! behind a failover address): the key layout is ready for Redis Cluster,
//! but this client does not follow `MOVED` redirections, so a Cluster
//! answers `Refused`.
//!
//! A node handles a shard's live messages on that shard's connection, in
//! order: if it falls far behind (a huge fan-out), Redis closes the
//! connection at its pub/sub output buffer limit, and the reconnect
//! resyncs those channels. Loss is signalled, never silent.
//!
//! # Why redis-rs
//!
//! `redis` (redis-rs) is the most used Redis client for Rust, maintained
//! under the Redis organisation, with tokio multiplexed connections, RESP3
//! pushes (which carry sharded pub/sub), scripts and rustls. We use its
//! 0.32 line, the newest one whose minimum Rust version fits the
//! workspace's (1.x needs Rust 1.88), and manage reconnects ourselves
//! rather than with its `ConnectionManager`, because every reconnect must
//! re-read the generation before any command, and a resubscription must be
//! followed by a resync. `fred` was the alternative: richer, but larger,
//! and its reconnect policy is its own.

mod broker;
mod cluster;
mod codec;
mod config;
mod error;
mod keys;
mod presence;
mod pubsub;
mod scripts;
mod shard;
pub mod sharding;
mod stream;

pub use broker::RedisBroker;
pub use config::RedisConfig;
