//! [`NatsConfig`]: where the NATS servers are and how the broker lays out
//! its subjects, stream and buckets. Every field documents its default.

use std::time::Duration;

use clarion_hub::{BrokerError, HistoryOptions, DEFAULT_IDEMPOTENCY_WINDOW};

/// How to reach NATS and how to keep history and presence there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsConfig {
    /// `nats://host:port` URLs of one cluster (at least one). Default:
    /// `nats://127.0.0.1:4222`.
    pub servers: Vec<String>,
    /// The first subject token(s) of everything this broker sends, so
    /// several Clarion clusters can share one NATS (must match on every
    /// node). Default `clarion`.
    pub prefix: String,
    /// This node's name for logs and the admin view (`--node-name`);
    /// default: its id.
    pub node_name: Option<String>,
    /// How often this node announces itself. Default 2 s: a crashed node
    /// drops out of `nodes()` within 6 s, at one small message per node.
    pub heartbeat: Duration,
    /// Bound on every call to NATS (connect, publish ack, reads). Default
    /// 5 s: a down server answers 503 within that, never a hang.
    pub command_timeout: Duration,
    /// The most publications the history stream keeps per channel
    /// (`max_msgs_per_subject`); a namespace's larger `history_size` is
    /// capped to it. Default 1000.
    pub max_history_size: usize,
    /// The history stream's `max_age`: nothing (not even a channel's
    /// position) outlives it. A `history_meta_ttl` longer than this cannot
    /// hold (see [`NatsBroker::limitations`](crate::NatsBroker::limitations)).
    /// Default 48 h, twice the hub's default `history_meta_ttl` of 24 h.
    pub history_max_age: Duration,
    /// The presence bucket's `max_age`: the longest presence ttl that
    /// holds. Default 5 min (the hub's `presence_ttl` defaults to 60 s).
    pub presence_max_ttl: Duration,
    /// How long an idempotency key is remembered (the stream's duplicate
    /// window). Default [`DEFAULT_IDEMPOTENCY_WINDOW`] (5 min).
    pub idempotency_window: Duration,
    /// JetStream replicas of the stream and buckets (1, or 3/5 in a NATS
    /// cluster). Default 1. With 1, a machine crash may lose the last
    /// acknowledged publications (JetStream does not fsync every write).
    pub replicas: usize,
}

impl Default for NatsConfig {
    fn default() -> NatsConfig {
        NatsConfig {
            servers: vec!["nats://127.0.0.1:4222".to_owned()],
            prefix: "clarion".to_owned(),
            node_name: None,
            heartbeat: Duration::from_secs(2),
            command_timeout: Duration::from_secs(5),
            max_history_size: 1000,
            history_max_age: Duration::from_secs(48 * 3600),
            presence_max_ttl: Duration::from_secs(5 * 60),
            idempotency_window: DEFAULT_IDEMPOTENCY_WINDOW,
            replicas: 1,
        }
    }
}

impl NatsConfig {
    /// The defaults with these server URLs (`nats://`, several for a
    /// cluster).
    pub fn new<I, S>(servers: I) -> NatsConfig
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        NatsConfig {
            servers: servers.into_iter().map(Into::into).collect(),
            ..NatsConfig::default()
        }
    }

    /// Rejects combinations NATS cannot hold.
    pub fn validate(&self) -> Result<(), BrokerError> {
        let bad = |m: &str| Err(BrokerError::invalid(format!("nats config: {m}")));
        if self.servers.is_empty() {
            return bad("at least one server URL");
        }
        if let Some(url) = self.servers.iter().find(|u| !valid_url(u)) {
            return bad(&format!("{url:?} is not a nats:// URL"));
        }
        if !valid_prefix(&self.prefix) {
            return bad("prefix must be subject tokens of [A-Za-z0-9_-] joined by dots");
        }
        if self.heartbeat.is_zero() || self.command_timeout.is_zero() {
            return bad("heartbeat and command_timeout must be positive");
        }
        if self.max_history_size == 0 {
            return bad("max_history_size must be at least 1");
        }
        // JetStream refuses a duplicate window longer than max_age.
        if self.idempotency_window > self.history_max_age {
            return bad("idempotency_window must not exceed history_max_age");
        }
        if self.idempotency_window.is_zero() || self.presence_max_ttl.is_zero() {
            return bad("idempotency_window and presence_max_ttl must be positive");
        }
        if !matches!(self.replicas, 1..=5) {
            return bad("replicas must be 1 to 5");
        }
        Ok(())
    }

    /// Why `options` cannot be kept exactly on NATS with this config, if
    /// they cannot (the broker logs it once per distinct options).
    pub fn history_shortfall(&self, options: &HistoryOptions) -> Option<String> {
        if options.size > self.max_history_size {
            return Some(format!(
                "history_size {} is capped at max_history_size {}",
                options.size, self.max_history_size
            ));
        }
        let longest = options.meta_ttl.max(options.ttl);
        (longest > self.history_max_age).then(|| {
            format!(
                "history ttl/meta_ttl {longest:?} exceed the stream's max_age {:?}: \
                 a channel idle that long gets a new epoch (clients: recovered false)",
                self.history_max_age
            )
        })
    }

    /// The name stem of the stream and buckets: the prefix with dots as
    /// underscores (JetStream names allow no dots).
    pub(crate) fn stem(&self) -> String {
        self.prefix.replace('.', "_")
    }
}

fn valid_url(url: &str) -> bool {
    let rest = url.strip_prefix("nats://").or(url.strip_prefix("tls://"));
    rest.is_some_and(|r| !r.is_empty() && !r.contains(char::is_whitespace))
}

fn valid_prefix(prefix: &str) -> bool {
    let token_ok = |t: &str| {
        !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    prefix.split('.').all(token_ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_are_rejected() {
        assert_eq!(NatsConfig::default().validate(), Ok(()));
        let with = |f: fn(&mut NatsConfig)| {
            let mut c = NatsConfig::default();
            f(&mut c);
            c.validate().is_err()
        };
        assert!(with(|c| c.servers.clear()));
        assert!(with(|c| c.servers = vec!["redis://x".into()]));
        assert!(with(|c| c.prefix = "a.*".into()));
        assert!(with(|c| c.prefix = "a..b".into()));
        assert!(with(|c| c.max_history_size = 0));
        assert!(with(|c| c.idempotency_window = Duration::from_secs(1 << 40)));
        assert!(!with(|c| c.prefix = "acme.clarion-1".into()));
    }

    #[test]
    fn shortfalls_name_the_limit() {
        let c = NatsConfig::default();
        let ok = HistoryOptions {
            size: 100,
            ttl: Duration::from_secs(600),
            meta_ttl: Duration::from_secs(24 * 3600),
        };
        assert_eq!(c.history_shortfall(&ok), None);
        let long = HistoryOptions {
            meta_ttl: Duration::from_secs(72 * 3600),
            ..ok
        };
        assert!(c.history_shortfall(&long).unwrap().contains("new epoch"));
        let big = HistoryOptions { size: 5000, ..ok };
        assert!(c.history_shortfall(&big).unwrap().contains("capped"));
    }
}
