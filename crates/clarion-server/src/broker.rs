//! The broker `clarion serve` runs on, from `[broker]`: in memory (one
//! node), Redis (shards by channel) or NATS with JetStream.

use std::sync::Arc;

use clarion_broker_nats::{NatsBroker, NatsConfig};
use clarion_broker_redis::{RedisBroker, RedisConfig};
use clarion_hub::{Broker, MemoryBackend};

use crate::config::{BrokerConfig, BrokerKind};

/// Makes the configured broker (not yet running: the hub runs it, which
/// connects and fails if the backend cannot be reached). A NATS broker
/// logs, once, each point of the broker contract it cannot hold.
pub async fn connect(config: &BrokerConfig) -> Result<Arc<dyn Broker>, String> {
    let name = config.node_name.as_deref();
    match config.kind()? {
        BrokerKind::Memory => Ok(Arc::new(MemoryBackend::new().node(name))),
        BrokerKind::Redis => {
            let mut redis = RedisConfig::new(config.urls.iter().cloned());
            redis.prefix = config.prefix.clone();
            redis.node_name = config.node_name.clone();
            let broker = RedisBroker::new(redis).map_err(|e| e.to_string())?;
            Ok(Arc::new(broker))
        }
        BrokerKind::Nats => {
            let mut nats = NatsConfig::new(config.urls.iter().cloned());
            nats.prefix = config.prefix.clone();
            nats.node_name = config.node_name.clone();
            let broker = NatsBroker::connect(nats).await.map_err(|e| e.to_string())?;
            for limitation in broker.limitations() {
                tracing::warn!(target: "clarion::broker::nats", "{limitation}");
            }
            Ok(Arc::new(broker))
        }
    }
}
