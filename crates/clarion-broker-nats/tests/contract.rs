//! The shared broker contract suite against a real `nats-server -js`,
//! one server per case (started on a free port, killed when the case ends).

mod support;

use std::sync::Arc;
use std::time::Duration;

use clarion_hub::contract::Harness;
use clarion_hub::{BoxFuture, Broker};

use support::NatsServer;

struct NatsHarness {
    server: NatsServer,
}

impl NatsHarness {
    fn new() -> NatsHarness {
        NatsHarness {
            server: NatsServer::start(),
        }
    }
}

impl Harness for NatsHarness {
    fn broker(&self) -> BoxFuture<'_, Arc<dyn Broker>> {
        Box::pin(async { Arc::new(self.server.broker("solo").await) as Arc<dyn Broker> })
    }

    fn pair(&self) -> BoxFuture<'_, (Arc<dyn Broker>, Arc<dyn Broker>)> {
        Box::pin(async {
            let a: Arc<dyn Broker> = Arc::new(self.server.broker("a").await);
            let b: Arc<dyn Broker> = Arc::new(self.server.broker("b").await);
            (a, b)
        })
    }

    fn heartbeat(&self) -> Duration {
        self.server.config().heartbeat
    }

    fn advance(&self, duration: Duration) -> BoxFuture<'_, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
}

clarion_hub::broker_contract_tests!(#[tokio::test], NatsHarness::new());
