//! [`RedisConfig`]: where the Redis instances are and how the broker
//! behaves, each default with its reason.

use std::path::PathBuf;
use std::time::Duration;

use clarion_hub::{BrokerError, DEFAULT_IDEMPOTENCY_WINDOW};

/// How a [`RedisBroker`](crate::RedisBroker) connects and behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// One URL per shard (`redis://[user:pass@]host:port[/db]` or
    /// `rediss://` for TLS). Order matters: it fixes which channels live
    /// on which instance (and control messages use the first), so every
    /// node must list the same URLs in the same order.
    pub urls: Vec<String>,
    /// Prefix of every key and pub/sub channel. Default `clarion`; several
    /// clusters can share one Redis with different prefixes. No `{`, `}`
    /// or spaces (the hash tags are ours).
    pub prefix: String,
    /// This node's name (`--node-name`); `None`: its id.
    pub node_name: Option<String>,
    /// How often this node announces itself. Default 3 s: peers notice a
    /// crashed node within three of these (9 s), and heartbeats cost a
    /// few hundred bytes a second for a dozen nodes.
    pub heartbeat: Duration,
    /// Longest wait for a TCP (and TLS) connection. Default 1 s: a
    /// loopback or LAN Redis connects in under a millisecond, so a second
    /// means it is down, and a publish fails fast with 503 instead of
    /// hanging.
    pub connect_timeout: Duration,
    /// Longest wait for a reply. Default 2 s: far above a healthy Redis
    /// (well under a millisecond per command, a few ms for a history
    /// page), short enough that a stuck server surfaces as 503 quickly.
    pub command_timeout: Duration,
    /// How long an idempotency key is remembered, counted from the first
    /// publish. Default [`DEFAULT_IDEMPOTENCY_WINDOW`] (5 minutes).
    pub idempotency_window: Duration,
    /// How often a connected node re-reads each instance's generation
    /// (`run_id`, `master_replid`) to notice a failover that kept its
    /// connections. Default 5 s; reconnects always re-read it first.
    pub generation_check: Duration,
    /// Use sharded pub/sub (`SPUBLISH`/`SSUBSCRIBE`, Redis 7) for
    /// channels. Default true: on Redis Cluster a message then stays in
    /// its slot's shard instead of being copied to every node; on a
    /// single instance it costs the same as classic pub/sub.
    pub sharded_pubsub: bool,
    /// For `rediss://`: a PEM file of the certificate authorities to trust
    /// instead of the system's (a private CA, or a self-signed server).
    /// Default `None`: the system's roots.
    pub tls_root_ca: Option<PathBuf>,
}

impl RedisConfig {
    /// The defaults with these shard URLs.
    pub fn new<S: Into<String>>(urls: impl IntoIterator<Item = S>) -> RedisConfig {
        RedisConfig {
            urls: urls.into_iter().map(Into::into).collect(),
            prefix: "clarion".to_owned(),
            node_name: None,
            heartbeat: Duration::from_secs(3),
            connect_timeout: Duration::from_secs(1),
            command_timeout: Duration::from_secs(2),
            idempotency_window: DEFAULT_IDEMPOTENCY_WINDOW,
            generation_check: Duration::from_secs(5),
            sharded_pubsub: true,
            tls_root_ca: None,
        }
    }

    /// Rejects a config the broker cannot run with
    /// ([`BrokerErrorKind::Invalid`](clarion_hub::BrokerErrorKind::Invalid)).
    pub fn validate(&self) -> Result<(), BrokerError> {
        if self.urls.is_empty() {
            return Err(BrokerError::invalid("no Redis URL"));
        }
        let bad = |c: char| c == '{' || c == '}' || c.is_whitespace();
        if self.prefix.is_empty() || self.prefix.contains(bad) {
            return Err(BrokerError::invalid(format!(
                "key prefix {:?}: must be non-empty, without braces or spaces",
                self.prefix
            )));
        }
        let zero = Duration::ZERO;
        let durations = [
            ("heartbeat", self.heartbeat),
            ("connect_timeout", self.connect_timeout),
            ("command_timeout", self.command_timeout),
            ("idempotency_window", self.idempotency_window),
            ("generation_check", self.generation_check),
        ];
        if let Some((name, _)) = durations.iter().find(|(_, d)| *d == zero) {
            return Err(BrokerError::invalid(format!("{name} must be positive")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_configs_are_refused() {
        assert!(RedisConfig::new(["redis://127.0.0.1"]).validate().is_ok());
        assert!(RedisConfig::new(Vec::<String>::new()).validate().is_err());
        let mut braces = RedisConfig::new(["redis://127.0.0.1"]);
        braces.prefix = "a{b".into();
        assert!(braces.validate().is_err());
        let mut zero = RedisConfig::new(["redis://127.0.0.1"]);
        zero.heartbeat = Duration::ZERO;
        assert!(zero.validate().is_err());
    }
}
