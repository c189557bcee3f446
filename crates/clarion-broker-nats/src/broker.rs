//! [`NatsBroker`]: the [`Broker`] contract on NATS, gluing the modules
//! together and owning the background tasks.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::Event;
use bytes::Bytes;
use clarion_hub::{
    BoxFuture, Broker, BrokerError, BrokerHandler, ClusterNode, ControlKind, HistoryOptions,
    HistoryPage, HistoryQuery, NewPublication, NodeIdentity, PresenceChange, PresenceEntry,
    PresenceStats,
};
use clarion_wire::{ClientInfo, Publication, StreamPosition};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use crate::conn;
use crate::error::{bounded, classify, connected};
use crate::shared::{lock, Shared};
use crate::subjects::{token, Kind};
use crate::NatsConfig;

/// The `Broker` on NATS: live delivery over core NATS, history on
/// JetStream, presence in a JetStream KV bucket. One instance is one node.
///
/// Dropping it stops its tasks (its peers stop listing it within three
/// heartbeats); [`shutdown`](Broker::shutdown) also says goodbye.
pub struct NatsBroker {
    shared: Arc<Shared>,
    events: Mutex<Option<mpsc::UnboundedReceiver<Event>>>,
    tasks: Mutex<Vec<AbortHandle>>,
    running: AtomicBool,
}

impl std::fmt::Debug for NatsBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsBroker")
            .field("node", &self.shared.identity)
            .field("servers", &self.shared.config.servers)
            .finish_non_exhaustive()
    }
}

impl NatsBroker {
    /// Connects to NATS (within `command_timeout`: `Unavailable` if no
    /// server answers), creates or finds the history stream and the
    /// presence and idempotency buckets, and makes a new node identity
    /// named `config.node_name`. The node is not announced until
    /// [`run`](Broker::run).
    pub async fn connect(config: NatsConfig) -> Result<NatsBroker, BrokerError> {
        config.validate()?;
        let identity = NodeIdentity::generate(config.node_name.as_deref());
        let (events_tx, events) = mpsc::unbounded_channel();
        let client = conn::connect(&config, &identity, events_tx).await?;
        let js = conn::jetstream(client.clone(), &config);
        let subjects = crate::subjects::Subjects::new(&config.prefix);
        let ensure = conn::ensure(&js, &config, &subjects);
        let stores = match tokio::time::timeout(config.command_timeout, ensure).await {
            Ok(stores) => stores?,
            Err(_) => {
                return Err(BrokerError::unavailable(
                    "nats: creating the stream timed out",
                ))
            }
        };
        Ok(NatsBroker {
            shared: Arc::new(Shared::new(config, identity, client, js, stores)),
            events: Mutex::new(Some(events)),
            tasks: Mutex::default(),
            running: AtomicBool::new(false),
        })
    }

    /// What of the `Broker` contract this broker cannot hold, one sentence
    /// each, for the server to print at startup (see
    /// `docs/cluster.md`, "The NATS broker").
    pub fn limitations(&self) -> Vec<String> {
        let c = &self.shared.config;
        vec![
            format!(
                "history: a channel's position lives at most {:?} (the stream's max_age) after its \
                 last publication, whatever history_meta_ttl says; then its epoch changes",
                c.history_max_age
            ),
            format!(
                "history: at most {} publications per channel (max_history_size)",
                c.max_history_size
            ),
            "presence_stats and presence cost time proportional to the channel's clients \
             (JetStream KV has no counters): not O(1)"
                .to_owned(),
            format!(
                "presence: an entry lives at most {:?} (the bucket's max_age) unless refreshed",
                c.presence_max_ttl
            ),
            "TTLs are judged against this node's clock: keep nodes in NTP sync".to_owned(),
        ]
    }

    /// Whether the connection to NATS is up right now (for `/readyz`).
    pub fn is_connected(&self) -> bool {
        connected(&self.shared.client).is_ok()
    }

    fn spawn<F>(&self, task: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        lock(&self.tasks).push(tokio::spawn(task).abort_handle());
    }

    fn stop_tasks(&self) {
        for task in lock(&self.tasks).drain(..) {
            task.abort();
        }
        for (_, task) in lock(&self.shared.live).drain() {
            task.abort();
        }
    }

    async fn start(&self, handler: Arc<dyn BrokerHandler>) -> Result<(), BrokerError> {
        let events = lock(&self.events).take();
        let (Some(events), Ok(())) = (events, self.shared.handler.set(handler).map_err(drop))
        else {
            return Err(BrokerError::invalid("run called twice"));
        };
        self.running.store(true, Ordering::Release);
        // The control subscription is made here, not in the reading task,
        // and is in effect on the server before run returns (and before
        // the first beat): a control message another node sends right
        // after must reach this one.
        let shared = &self.shared;
        let all = bounded(
            shared.config.command_timeout,
            "run",
            shared.subscribe_cluster(),
        );
        let all = all.await?;
        shared.sync().await?;
        self.spawn(Arc::clone(shared).cluster_messages(all));
        self.spawn(Arc::clone(&self.shared).heartbeats());
        self.spawn(connection_events(Arc::clone(&self.shared), events));
        Ok(())
    }

    async fn publish_without_history(
        &self,
        channel: &str,
        publication: NewPublication,
    ) -> Result<Option<StreamPosition>, BrokerError> {
        connected(&self.shared.client)?;
        if let Some(key) = &publication.idempotency_key {
            let kv = self.shared.stores().idempotency;
            let created = kv.create(format!("{}.{}", token(channel), token(key)), Bytes::new());
            match created.await {
                Ok(_) => {}
                Err(e) if e.kind() == async_nats::jetstream::kv::CreateErrorKind::AlreadyExists => {
                    return Ok(None)
                }
                Err(e) => {
                    return self
                        .shared
                        .healing(Err(classify("idempotency key", e)))
                        .await
                }
            }
        }
        let live = Publication {
            offset: None,
            data: publication.data,
            info: publication.info,
        };
        let payload = serde_json::to_vec(&live).map_err(|e| BrokerError::invalid(e.to_string()))?;
        self.shared
            .publish_live(channel, Kind::Live, payload)
            .await
            .map(|()| None)
    }

    async fn publish_presence(
        &self,
        channel: &str,
        info: ClientInfo,
        kind: Kind,
    ) -> Result<(), BrokerError> {
        let payload = serde_json::to_vec(&info).map_err(|e| BrokerError::invalid(e.to_string()))?;
        self.shared.publish_live(channel, kind, payload).await
    }
}

/// Watches the connection: after a reconnect, the stream and buckets are
/// ensured again (a restarted server may have lost them) and every
/// subscribed channel is resynced (live messages may have been lost while
/// the connection was down); a slow-consumer drop resyncs too.
async fn connection_events(shared: Arc<Shared>, mut events: mpsc::UnboundedReceiver<Event>) {
    let mut lost = false;
    while let Some(event) = events.recv().await {
        match event {
            Event::Disconnected => {
                lost = true;
                tracing::warn!(target: "clarion::broker::nats", "disconnected from NATS");
            }
            Event::Connected if lost => {
                lost = false;
                tracing::info!(target: "clarion::broker::nats", "reconnected to NATS");
                resync(&shared, true).await;
            }
            Event::SlowConsumer(_) => resync(&shared, false).await,
            _ => {}
        }
    }
}

async fn resync(shared: &Shared, reconnected: bool) {
    if reconnected {
        // Resubscriptions are sent on reconnect; a round trip makes sure
        // the server has them before the hub reads history.
        if let Err(err) = shared.sync().await {
            tracing::debug!(target: "clarion::broker::nats", "after reconnect: {err}");
        }
        if let Err(err) = shared.reensure().await {
            tracing::warn!(target: "clarion::broker::nats", "after reconnect: {err}");
        }
    }
    let channels = shared.subscribed();
    if let (Some(handler), false) = (shared.handler.get(), channels.is_empty()) {
        handler.on_resync(&channels);
    }
}

impl Drop for NatsBroker {
    fn drop(&mut self) {
        self.stop_tasks();
    }
}

fn boxed<'a, T, F>(f: F) -> BoxFuture<'a, T>
where
    F: std::future::Future<Output = T> + Send + 'a,
{
    Box::pin(f)
}

impl Broker for NatsBroker {
    fn identity(&self) -> &NodeIdentity {
        &self.shared.identity
    }

    fn run(&self, handler: Arc<dyn BrokerHandler>) -> BoxFuture<'_, Result<(), BrokerError>> {
        boxed(self.start(handler))
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        boxed(async move {
            if !self.running.swap(false, Ordering::AcqRel) {
                return;
            }
            self.stop_tasks();
            let goodbye = self.shared.beat(true);
            let _ = tokio::time::timeout(Duration::from_secs(1), goodbye).await;
            let _ = tokio::time::timeout(Duration::from_secs(1), self.shared.client.flush()).await;
        })
    }

    fn nodes(&self) -> Vec<ClusterNode> {
        self.shared.live_nodes()
    }

    fn health(&self) -> BoxFuture<'_, Result<(), BrokerError>> {
        let health = connected(&self.shared.client);
        boxed(std::future::ready(health))
    }

    fn broadcast_control(
        &self,
        kind: ControlKind,
        payload: Bytes,
    ) -> BoxFuture<'_, Result<(), BrokerError>> {
        boxed(self.shared.control(None, kind, payload))
    }

    fn send_control<'a>(
        &'a self,
        node: &'a str,
        kind: ControlKind,
        payload: Bytes,
    ) -> BoxFuture<'a, Result<(), BrokerError>> {
        boxed(self.shared.control(Some(node), kind, payload))
    }

    fn subscribe<'a>(&'a self, channel: &'a str) -> BoxFuture<'a, Result<(), BrokerError>> {
        boxed(async move {
            if self.shared.handler.get().is_none() {
                return Err(BrokerError::invalid("subscribe before run"));
            }
            self.shared.subscribe_channel(channel).await
        })
    }

    fn unsubscribe<'a>(&'a self, channel: &'a str) -> BoxFuture<'a, Result<(), BrokerError>> {
        self.shared.unsubscribe_channel(channel);
        boxed(std::future::ready(Ok(())))
    }

    fn publish<'a>(
        &'a self,
        channel: &'a str,
        publication: NewPublication,
        history: Option<HistoryOptions>,
    ) -> BoxFuture<'a, Result<Option<StreamPosition>, BrokerError>> {
        boxed(async move {
            match history {
                Some(options) => {
                    let position = self.shared.publish_history(channel, publication, options);
                    position.await.map(Some)
                }
                None => self.publish_without_history(channel, publication).await,
            }
        })
    }

    fn publish_join<'a>(
        &'a self,
        channel: &'a str,
        info: ClientInfo,
    ) -> BoxFuture<'a, Result<(), BrokerError>> {
        boxed(self.publish_presence(channel, info, Kind::Join))
    }

    fn publish_leave<'a>(
        &'a self,
        channel: &'a str,
        info: ClientInfo,
    ) -> BoxFuture<'a, Result<(), BrokerError>> {
        boxed(self.publish_presence(channel, info, Kind::Leave))
    }

    fn history<'a>(
        &'a self,
        channel: &'a str,
        query: HistoryQuery,
        options: HistoryOptions,
    ) -> BoxFuture<'a, Result<HistoryPage, BrokerError>> {
        boxed(self.shared.read_history(channel, query, options))
    }

    fn remove_history<'a>(&'a self, channel: &'a str) -> BoxFuture<'a, Result<(), BrokerError>> {
        boxed(self.shared.remove_history(channel))
    }

    fn add_presence<'a>(
        &'a self,
        channel: &'a str,
        info: ClientInfo,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<PresenceChange, BrokerError>> {
        boxed(self.shared.add_presence(channel, info, ttl))
    }

    fn add_presence_batch<'a>(
        &'a self,
        entries: &'a [PresenceEntry],
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), BrokerError>> {
        boxed(self.shared.add_presence_batch(entries, ttl))
    }

    fn remove_presence<'a>(
        &'a self,
        channel: &'a str,
        client: &'a str,
    ) -> BoxFuture<'a, Result<PresenceChange, BrokerError>> {
        boxed(self.shared.remove_presence(channel, client))
    }

    fn presence<'a>(
        &'a self,
        channel: &'a str,
    ) -> BoxFuture<'a, Result<Vec<ClientInfo>, BrokerError>> {
        boxed(self.shared.presence(channel))
    }

    fn presence_stats<'a>(
        &'a self,
        channel: &'a str,
    ) -> BoxFuture<'a, Result<PresenceStats, BrokerError>> {
        boxed(self.shared.presence_stats(channel))
    }
}
