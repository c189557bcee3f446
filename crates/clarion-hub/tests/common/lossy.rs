//! A broker that loses things on purpose: live publications dropped on
//! the way to the hub, publications in no history, history reads racing
//! publications, and resyncs on demand.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use clarion_hub::{
    BoxFuture, Broker, BrokerError, BrokerHandler, ClusterNode, Control, ControlKind,
    HistoryOptions, HistoryPage, HistoryQuery, MemoryBroker, NewPublication, NodeIdentity,
    PresenceChange, PresenceEntry, PresenceStats,
};
use clarion_wire::{ClientInfo, Data, Publication, StreamPosition};

#[derive(Default)]
pub struct LossyBroker {
    pub inner: MemoryBroker,
    handler: Mutex<Option<Arc<dyn BrokerHandler>>>,
    /// A channel whose next history read races with two publications: one
    /// just before the read, one just after.
    pub race: Mutex<Option<String>>,
    /// Live publications to drop before they reach the hub, as a lost
    /// broker message would be.
    pub drop_next: Arc<AtomicU32>,
    /// Whether the node is subscribed, per channel, as the broker saw the
    /// calls (each takes a little time, so calls can race).
    pub subscribed: Mutex<std::collections::HashMap<String, bool>>,
    /// While set, `subscribe` never completes (a broker that hangs).
    pub stall_subscribe: std::sync::atomic::AtomicBool,
}

impl LossyBroker {
    /// Hands the hub a live publication that is in no history.
    pub fn inject(&self, channel: &str, offset: u64, epoch: &str) {
        let publication = Publication {
            offset: Some(offset),
            data: Data::from_json("0").unwrap(),
            info: None,
        };
        let handler = self.handler.lock().unwrap().clone().unwrap();
        handler.on_publication(channel, &publication, Some(epoch));
    }

    /// Tells the hub live delivery of `channels` may have lost messages.
    pub fn resync(&self, channels: &[&str]) {
        let handler = self.handler.lock().unwrap().clone().unwrap();
        let channels: Vec<String> = channels.iter().map(|c| c.to_string()).collect();
        handler.on_resync(&channels);
    }
}

/// Drops the next `drop_next` live publications.
struct Dropping {
    inner: Arc<dyn BrokerHandler>,
    drop_next: Arc<AtomicU32>,
}

impl BrokerHandler for Dropping {
    fn on_publication(&self, channel: &str, publication: &Publication, epoch: Option<&str>) {
        let drop = self
            .drop_next
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok();
        if !drop {
            self.inner.on_publication(channel, publication, epoch);
        }
    }
    fn on_join(&self, channel: &str, info: &ClientInfo) {
        self.inner.on_join(channel, info);
    }
    fn on_leave(&self, channel: &str, info: &ClientInfo) {
        self.inner.on_leave(channel, info);
    }
    fn on_control(&self, control: &Control) {
        self.inner.on_control(control);
    }
    fn on_resync(&self, channels: &[String]) {
        self.inner.on_resync(channels);
    }
}

impl Broker for LossyBroker {
    fn identity(&self) -> &NodeIdentity {
        self.inner.identity()
    }
    fn shutdown(&self) -> BoxFuture<'_, ()> {
        self.inner.shutdown()
    }
    fn nodes(&self) -> Vec<ClusterNode> {
        self.inner.nodes()
    }
    fn broadcast_control(
        &self,
        k: ControlKind,
        p: Bytes,
    ) -> BoxFuture<'_, Result<(), BrokerError>> {
        self.inner.broadcast_control(k, p)
    }
    fn send_control<'a>(
        &'a self,
        n: &'a str,
        k: ControlKind,
        p: Bytes,
    ) -> BoxFuture<'a, Result<(), BrokerError>> {
        self.inner.send_control(n, k, p)
    }
    fn add_presence_batch<'a>(
        &'a self,
        e: &'a [PresenceEntry],
        t: Duration,
    ) -> BoxFuture<'a, Result<(), BrokerError>> {
        self.inner.add_presence_batch(e, t)
    }
    fn run(&self, handler: Arc<dyn BrokerHandler>) -> BoxFuture<'_, Result<(), BrokerError>> {
        *self.handler.lock().unwrap() = Some(handler.clone());
        let dropping = Arc::new(Dropping {
            inner: handler,
            drop_next: self.drop_next.clone(),
        });
        self.inner.run(dropping)
    }
    fn subscribe<'a>(&'a self, c: &'a str) -> BoxFuture<'a, Result<(), BrokerError>> {
        Box::pin(async move {
            if self.stall_subscribe.load(Ordering::SeqCst) {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
            self.subscribed.lock().unwrap().insert(c.to_owned(), true);
            self.inner.subscribe(c).await
        })
    }
    fn unsubscribe<'a>(&'a self, c: &'a str) -> BoxFuture<'a, Result<(), BrokerError>> {
        Box::pin(async move {
            // Slower than subscribe, so a subscribe issued after it could
            // finish first if the hub did not serialise them.
            tokio::time::sleep(Duration::from_millis(3)).await;
            self.subscribed.lock().unwrap().insert(c.to_owned(), false);
            self.inner.unsubscribe(c).await
        })
    }
    fn publish<'a>(
        &'a self,
        c: &'a str,
        p: NewPublication,
        h: Option<HistoryOptions>,
    ) -> BoxFuture<'a, Result<Option<StreamPosition>, BrokerError>> {
        self.inner.publish(c, p, h)
    }
    fn publish_join<'a>(
        &'a self,
        c: &'a str,
        i: ClientInfo,
    ) -> BoxFuture<'a, Result<(), BrokerError>> {
        self.inner.publish_join(c, i)
    }
    fn publish_leave<'a>(
        &'a self,
        c: &'a str,
        i: ClientInfo,
    ) -> BoxFuture<'a, Result<(), BrokerError>> {
        self.inner.publish_leave(c, i)
    }
    fn history<'a>(
        &'a self,
        c: &'a str,
        q: HistoryQuery,
        o: HistoryOptions,
    ) -> BoxFuture<'a, Result<HistoryPage, BrokerError>> {
        Box::pin(async move {
            let race = self.race.lock().unwrap().take_if(|ch| ch == c).is_some();
            let new = |d: &str| NewPublication::new(Data::from_json(d).unwrap());
            if race {
                self.inner.publish(c, new(r#""during""#), Some(o)).await?;
            }
            let page = self.inner.history(c, q, o).await;
            if race {
                self.inner.publish(c, new(r#""after""#), Some(o)).await?;
            }
            page
        })
    }
    fn remove_history<'a>(&'a self, c: &'a str) -> BoxFuture<'a, Result<(), BrokerError>> {
        self.inner.remove_history(c)
    }
    fn add_presence<'a>(
        &'a self,
        c: &'a str,
        i: ClientInfo,
        t: Duration,
    ) -> BoxFuture<'a, Result<PresenceChange, BrokerError>> {
        self.inner.add_presence(c, i, t)
    }
    fn remove_presence<'a>(
        &'a self,
        c: &'a str,
        id: &'a str,
    ) -> BoxFuture<'a, Result<PresenceChange, BrokerError>> {
        self.inner.remove_presence(c, id)
    }
    fn presence<'a>(&'a self, c: &'a str) -> BoxFuture<'a, Result<Vec<ClientInfo>, BrokerError>> {
        self.inner.presence(c)
    }
    fn presence_stats<'a>(
        &'a self,
        c: &'a str,
    ) -> BoxFuture<'a, Result<PresenceStats, BrokerError>> {
        self.inner.presence_stats(c)
    }
}
