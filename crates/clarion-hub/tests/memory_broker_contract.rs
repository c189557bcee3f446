//! The broker contract suite against the in-memory broker, on a paused
//! tokio clock (TTL cases advance it instead of sleeping).

use std::sync::Arc;
use std::time::Duration;

use clarion_hub::contract::Harness;
use clarion_hub::{BoxFuture, Broker, MemoryBroker};

struct MemoryHarness;

impl Harness for MemoryHarness {
    fn broker(&self) -> BoxFuture<'_, Arc<dyn Broker>> {
        Box::pin(async { Arc::new(MemoryBroker::new()) as Arc<dyn Broker> })
    }

    fn advance(&self, duration: Duration) -> BoxFuture<'_, ()> {
        Box::pin(tokio::time::advance(duration))
    }
}

clarion_hub::broker_contract_tests!(#[tokio::test(start_paused = true)], MemoryHarness);
