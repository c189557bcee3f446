//! [`RedisBroker`]: the [`Broker`] trait over the shards, the scripts and
//! the subscription connections.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use clarion_hub::{
    BoxFuture, Broker, BrokerError, BrokerHandler, ClusterMessage, ClusterNode, Control,
    ControlKind, Heartbeat, HistoryOptions, HistoryPage, HistoryQuery, NewPublication,
    NodeIdentity, PresenceChange, PresenceEntry, PresenceStats,
};
use clarion_wire::{ClientInfo, StreamPosition};
use redis::{Client, ConnectionInfo, IntoConnectionInfo, ProtocolVersion};
use tokio::time::Instant;

use crate::cluster::{self, Peers, MISSED_HEARTBEATS};
use crate::codec::{self, ChannelMessage};
use crate::config::RedisConfig;
use crate::keys::Keys;
use crate::pubsub::{self, Subscriber};
use crate::scripts::Scripts;
use crate::shard::Shard;
use crate::sharding::shard_of;

/// The Redis broker: one node. Cheap to share (`Arc` it for the hub).
/// Background tasks (heartbeats, reconnects) hold it weakly and end when it
/// is dropped. [`run`](Broker::run) connects to every shard (data and
/// subscription connections) and fails with `Unavailable` if one cannot be
/// reached; a broker whose `run` failed cannot be run again: make a new one.
pub struct RedisBroker {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RedisBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBroker")
            .field("node", &self.inner.identity)
            .field("shards", &self.inner.config.urls.len())
            .finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    pub(crate) config: RedisConfig,
    pub(crate) identity: NodeIdentity,
    pub(crate) keys: Keys,
    pub(crate) scripts: Scripts,
    pub(crate) shards: Vec<Shard>,
    pub(crate) subscribers: Vec<Subscriber>,
    pub(crate) handler: OnceLock<Arc<dyn BrokerHandler>>,
    peers: Peers,
    stopped: AtomicBool,
}

impl RedisBroker {
    /// A broker for `config` (no I/O yet: [`run`](Broker::run) connects).
    /// Fails with `Invalid` on a bad config or URL.
    pub fn new(config: RedisConfig) -> Result<RedisBroker, BrokerError> {
        config.validate()?;
        if config.urls.iter().any(|u| u.starts_with("rediss:")) {
            // redis-rs uses rustls' process-wide provider; install ring if
            // the process chose none (an error means one is installed).
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let root_ca = match &config.tls_root_ca {
            Some(path) => Some(std::fs::read(path).map_err(|e| {
                BrokerError::invalid(format!("tls_root_ca {}: {e}", path.display()))
            })?),
            None => None,
        };
        let mut shards = Vec::new();
        let mut subscribers = Vec::new();
        for (index, url) in config.urls.iter().enumerate() {
            let (data, resp3) = clients(url, root_ca.as_deref())?;
            let (connect, command) = (config.connect_timeout, config.command_timeout);
            shards.push(Shard::new(data, connect, command));
            subscribers.push(Subscriber::new(index, resp3));
        }
        let inner = Inner {
            identity: NodeIdentity::generate(config.node_name.as_deref()),
            keys: Keys::new(&config.prefix),
            scripts: Scripts::new(),
            shards,
            subscribers,
            handler: OnceLock::new(),
            peers: Peers::default(),
            stopped: AtomicBool::new(false),
            config,
        };
        Ok(RedisBroker {
            inner: Arc::new(inner),
        })
    }

    /// The shard (index into the configured URLs) that holds `channel`.
    pub fn shard_of(&self, channel: &str) -> usize {
        shard_of(channel, self.inner.shards.len())
    }

    /// The generation of each shard's server as this node last read it
    /// (`None` while disconnected): part of every epoch on that shard.
    pub async fn generations(&self) -> Vec<Option<String>> {
        let mut out = Vec::new();
        for shard in &self.inner.shards {
            let live = shard.live(&self.inner.scripts).await.ok();
            out.push(live.map(|l| l.generation.to_string()));
        }
        out
    }
}

/// A data client (RESP2) and a subscription client (RESP3) for `url`,
/// trusting `root_ca` (PEM) for TLS when given.
fn clients(url: &str, root_ca: Option<&[u8]>) -> Result<(Client, Client), BrokerError> {
    let invalid = |e: redis::RedisError| BrokerError::invalid(format!("redis URL {url:?}: {e}"));
    let info: ConnectionInfo = url.into_connection_info().map_err(invalid)?;
    let mut resp3 = info.clone();
    resp3.redis.protocol = ProtocolVersion::RESP3;
    let open = |info: ConnectionInfo| match root_ca {
        Some(pem) if url.starts_with("rediss:") => {
            let certs = redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(pem.to_vec()),
            };
            Client::build_with_tls(info, certs)
        }
        _ => Client::open(info),
    };
    Ok((open(info).map_err(invalid)?, open(resp3).map_err(invalid)?))
}

impl Inner {
    /// Every shard answers a PING and every subscription connection is up.
    async fn health(&self) -> Result<(), BrokerError> {
        for (index, shard) in self.shards.iter().enumerate() {
            let live = shard.live(&self.scripts).await?;
            let mut conn = live.conn.clone();
            let ping: redis::RedisResult<String> = redis::cmd("PING").query_async(&mut conn).await;
            ping.map_err(|e| shard.fail(&live, e))?;
            if !self.subscribers[index].is_connected() {
                let message = format!("redis shard {index}: the pub/sub connection is down");
                return Err(BrokerError::unavailable(message));
            }
        }
        Ok(())
    }

    pub(crate) fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    pub(crate) fn shard(&self, channel: &str) -> &Shard {
        &self.shards[shard_of(channel, self.shards.len())]
    }

    fn liveness(&self) -> Duration {
        self.config.heartbeat * MISSED_HEARTBEATS
    }

    /// A message from a subscription connection, to the handler.
    pub(crate) fn dispatch(self: &Arc<Self>, redis_channel: &[u8], message: &[u8]) {
        let Some(handler) = self.handler.get() else {
            return;
        };
        let Ok(name) = std::str::from_utf8(redis_channel) else {
            return;
        };
        if let Some(channel) = self.keys.channel_of(name) {
            match codec::decode_message(message) {
                Some(ChannelMessage::Publication(p, epoch)) => {
                    handler.on_publication(channel, &p, epoch.as_deref());
                }
                Some(ChannelMessage::Join(info)) => handler.on_join(channel, &info),
                Some(ChannelMessage::Leave(info)) => handler.on_leave(channel, &info),
                None => {}
            }
            return;
        }
        match ClusterMessage::decode(message) {
            Some(ClusterMessage::Heartbeat(beat)) => self.heard(beat),
            Some(ClusterMessage::Control(control)) => handler.on_control(&control),
            None => {}
        }
    }

    /// A heartbeat (ours comes back too: ignored).
    fn heard(self: &Arc<Self>, beat: Heartbeat) {
        if beat.node.id == self.identity.id || !self.peers.heard(beat) {
            return;
        }
        // A new node: answer at once rather than at our next tick.
        let inner = self.clone();
        tokio::spawn(async move { inner.beat(false).await });
    }

    /// Tells the handler these channels may have lost live messages.
    pub(crate) fn resync(&self, channels: &[String]) {
        if let (Some(handler), false) = (self.handler.get(), channels.is_empty()) {
            handler.on_resync(channels);
        }
    }

    /// Publishes this node's heartbeat on the control channel.
    pub(crate) async fn beat(&self, leaving: bool) -> Result<(), BrokerError> {
        let stats = self
            .handler
            .get()
            .map(|h| h.node_stats())
            .unwrap_or_default();
        let beat = Heartbeat {
            node: self.identity.clone(),
            stats,
            leaving,
        };
        let message = ClusterMessage::Heartbeat(beat).encode();
        self.publish_control(&self.keys.control(), message).await?;
        Ok(())
    }

    /// PUBLISH on shard 0; the number of receivers.
    async fn publish_control(&self, channel: &str, message: Vec<u8>) -> Result<i64, BrokerError> {
        let shard = &self.shards[0];
        let mut live = shard.live(&self.scripts).await?;
        let mut cmd = redis::cmd("PUBLISH");
        cmd.arg(channel).arg(message);
        let receivers = cmd.query_async(&mut live.conn).await;
        receivers.map_err(|e| shard.fail(&live, e))
    }

    /// Re-reads every shard's generation; a changed one means a failover
    /// kept our connections: resync that shard's channels.
    pub(crate) async fn check_generations(&self) {
        for (shard, subscriber) in self.shards.iter().zip(&self.subscribers) {
            if shard.recheck_generation().await {
                self.resync(&subscriber.channels());
            }
        }
    }

    async fn run(self: &Arc<Self>, handler: Arc<dyn BrokerHandler>) -> Result<(), BrokerError> {
        if self.handler.set(handler).is_err() {
            return Err(BrokerError::invalid("run called twice"));
        }
        for shard in &self.shards {
            shard.live(&self.scripts).await?;
        }
        for subscriber in &self.subscribers {
            subscriber
                .connect(self)
                .await
                .map_err(crate::error::from_redis)?;
        }
        for index in 0..self.subscribers.len() {
            tokio::spawn(pubsub::supervise(Arc::downgrade(self), index));
        }
        tokio::spawn(cluster::maintain(Arc::downgrade(self)));
        self.beat(false).await
    }

    async fn shutdown(&self) {
        if self.stopped.swap(true, Ordering::AcqRel) {
            return;
        }
        // Best effort: peers forget a silent node anyway.
        let _ = self.beat(true).await;
        for subscriber in &self.subscribers {
            subscriber.close();
        }
        for shard in &self.shards {
            shard.disconnect();
        }
    }

    fn nodes(&self) -> Vec<ClusterNode> {
        let me = ClusterNode {
            identity: self.identity.clone(),
            stats: self
                .handler
                .get()
                .map(|h| h.node_stats())
                .unwrap_or_default(),
            last_seen: Instant::now(),
        };
        let peers = self.peers.live(self.liveness()).into_iter();
        let others = peers.filter(|n| n.identity.id != self.identity.id);
        std::iter::once(me).chain(others).collect()
    }

    async fn send_control(
        &self,
        node: &str,
        kind: ControlKind,
        payload: Bytes,
    ) -> Result<(), BrokerError> {
        let known = node == self.identity.id || self.peers.is_live(node, self.liveness());
        if !known {
            return Err(BrokerError::no_such_node(node));
        }
        let message = control_message(&self.identity, kind, payload);
        match self.publish_control(&self.keys.node(node), message).await? {
            0 => Err(BrokerError::no_such_node(node)),
            _ => Ok(()),
        }
    }
}

fn control_message(me: &NodeIdentity, kind: ControlKind, payload: Bytes) -> Vec<u8> {
    let control = Control {
        from: me.id.clone(),
        kind,
        payload,
    };
    ClusterMessage::Control(control).encode()
}

impl Broker for RedisBroker {
    fn identity(&self) -> &NodeIdentity {
        &self.inner.identity
    }

    fn run(&self, handler: Arc<dyn BrokerHandler>) -> BoxFuture<'_, Result<(), BrokerError>> {
        Box::pin(self.inner.run(handler))
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.inner.shutdown())
    }

    fn nodes(&self) -> Vec<ClusterNode> {
        self.inner.nodes()
    }

    fn health(&self) -> BoxFuture<'_, Result<(), BrokerError>> {
        Box::pin(self.inner.health())
    }

    fn broadcast_control(
        &self,
        kind: ControlKind,
        payload: Bytes,
    ) -> BoxFuture<'_, Result<(), BrokerError>> {
        let message = control_message(&self.inner.identity, kind, payload);
        let control = self.inner.keys.control();
        Box::pin(async move {
            self.inner.publish_control(&control, message).await?;
            Ok(())
        })
    }

    fn send_control<'a>(
        &'a self,
        node: &'a str,
        kind: ControlKind,
        payload: Bytes,
    ) -> BoxFuture<'a, Result<(), BrokerError>> {
        Box::pin(self.inner.send_control(node, kind, payload))
    }

    fn subscribe<'a>(&'a self, channel: &'a str) -> BoxFuture<'a, Result<(), BrokerError>> {
        let i = self.shard_of(channel);
        Box::pin(self.inner.subscribers[i].subscribe(&self.inner, channel))
    }

    fn unsubscribe<'a>(&'a self, channel: &'a str) -> BoxFuture<'a, Result<(), BrokerError>> {
        let i = self.shard_of(channel);
        Box::pin(self.inner.subscribers[i].unsubscribe(&self.inner, channel))
    }

    fn publish<'a>(
        &'a self,
        channel: &'a str,
        publication: NewPublication,
        history: Option<HistoryOptions>,
    ) -> BoxFuture<'a, Result<Option<StreamPosition>, BrokerError>> {
        Box::pin(self.inner.publish(channel, publication, history))
    }

    fn publish_join<'a>(
        &'a self,
        channel: &'a str,
        info: ClientInfo,
    ) -> BoxFuture<'a, Result<(), BrokerError>> {
        Box::pin(async move { self.inner.publish_presence(channel, &info, true).await })
    }

    fn publish_leave<'a>(
        &'a self,
        channel: &'a str,
        info: ClientInfo,
    ) -> BoxFuture<'a, Result<(), BrokerError>> {
        Box::pin(async move { self.inner.publish_presence(channel, &info, false).await })
    }

    fn history<'a>(
        &'a self,
        channel: &'a str,
        query: HistoryQuery,
        options: HistoryOptions,
    ) -> BoxFuture<'a, Result<HistoryPage, BrokerError>> {
        Box::pin(self.inner.history(channel, query, options))
    }

    fn remove_history<'a>(&'a self, channel: &'a str) -> BoxFuture<'a, Result<(), BrokerError>> {
        Box::pin(self.inner.remove_history(channel))
    }

    fn add_presence<'a>(
        &'a self,
        channel: &'a str,
        info: ClientInfo,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<PresenceChange, BrokerError>> {
        Box::pin(async move { self.inner.add_presence(channel, &info, ttl).await })
    }

    fn add_presence_batch<'a>(
        &'a self,
        entries: &'a [PresenceEntry],
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), BrokerError>> {
        Box::pin(self.inner.add_presence_batch(entries, ttl))
    }

    fn remove_presence<'a>(
        &'a self,
        channel: &'a str,
        client: &'a str,
    ) -> BoxFuture<'a, Result<PresenceChange, BrokerError>> {
        Box::pin(self.inner.remove_presence(channel, client))
    }

    fn presence<'a>(
        &'a self,
        channel: &'a str,
    ) -> BoxFuture<'a, Result<Vec<ClientInfo>, BrokerError>> {
        Box::pin(self.inner.presence(channel))
    }

    fn presence_stats<'a>(
        &'a self,
        channel: &'a str,
    ) -> BoxFuture<'a, Result<PresenceStats, BrokerError>> {
        Box::pin(self.inner.presence_stats(channel))
    }
}
