//! The broker contract suite against the in-memory broker, on a paused
//! tokio clock (TTL cases advance it instead of sleeping). Two nodes share
//! one `MemoryBackend`.

use std::sync::Arc;
use std::time::Duration;

use clarion_hub::contract::Harness;
use clarion_hub::{BoxFuture, Broker, MemoryBackend, MemoryBroker};

struct MemoryHarness;

impl Harness for MemoryHarness {
    fn broker(&self) -> BoxFuture<'_, Arc<dyn Broker>> {
        Box::pin(async { Arc::new(MemoryBroker::new()) as Arc<dyn Broker> })
    }

    fn pair(&self) -> BoxFuture<'_, (Arc<dyn Broker>, Arc<dyn Broker>)> {
        Box::pin(async {
            let backend = MemoryBackend::new();
            let a: Arc<dyn Broker> = Arc::new(backend.node(Some("a")));
            let b: Arc<dyn Broker> = Arc::new(backend.node(Some("b")));
            (a, b)
        })
    }

    fn heartbeat(&self) -> Duration {
        // No heartbeats in memory: a node is gone as soon as it stops.
        Duration::from_secs(1)
    }

    fn advance(&self, duration: Duration) -> BoxFuture<'_, ()> {
        Box::pin(tokio::time::advance(duration))
    }
}

clarion_hub::broker_contract_tests!(#[tokio::test(start_paused = true)], MemoryHarness);
