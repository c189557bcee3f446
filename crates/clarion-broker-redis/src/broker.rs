//! [`RedisBroker`]: the [`Broker`] trait over the shards, the scripts and
//! the subscription connections.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use clarion_hub::{
    BoxFuture, Broker, BrokerError, BrokerHandler, ClusterMessage, ClusterNode, Control,
    ControlKind, Heartbeat, HistoryOptions, HistoryPage, HistoryQuery, NewPublication,
    NodeIdentity, PresenceChange, PresenceEntry, PresenceStats,
};
use clarion_wire::{ClientInfo, Publication, StreamPosition};
use redis::{Client, ConnectionInfo, IntoConnectionInfo, ProtocolVersion, Value};
use tokio::time::Instant;

use crate::cluster::{self, Peers, MISSED_HEARTBEATS};
use crate::codec::{self, ChannelMessage};
use crate::config::RedisConfig;
use crate::keys::Keys;
use crate::pubsub::{self, Subscriber};
use crate::scripts::{Lua, Scripts};
use crate::shard::{Live, Shard};
use crate::sharding::shard_of;

/// The Redis broker: one node. Cheap to share (`Arc` it for the hub).
/// Background tasks (heartbeats, reconnects) hold it weakly and end when it
/// is dropped.
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
    handler: OnceLock<Arc<dyn BrokerHandler>>,
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

/// A fresh candidate epoch: 8 hex digits (a new stream only adopts it if it
/// has none; the generation is appended to whatever is stored).
fn candidate_epoch() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let seed = RandomState::new().hash_one((std::time::SystemTime::now(), n));
    format!("{:08x}", seed & 0xffff_ffff)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl Inner {
    pub(crate) fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    fn shard(&self, channel: &str) -> &Shard {
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

    /// Runs a script on `channel`'s shard.
    async fn script<T: redis::FromRedisValue>(
        &self,
        channel: &str,
        build: impl FnOnce(&Live) -> redis::Cmd,
    ) -> Result<T, BrokerError> {
        let shard = self.shard(channel);
        let mut live = shard.live(&self.scripts).await?;
        let cmd = build(&live);
        let result = self.scripts.run(&mut live.conn, &cmd).await;
        result.map_err(|e| shard.fail(&live, e))
    }

    async fn publish(
        &self,
        channel: &str,
        new: NewPublication,
        history: Option<HistoryOptions>,
    ) -> Result<Option<StreamPosition>, BrokerError> {
        let publication = Publication {
            offset: None,
            data: new.data,
            info: new.info,
        };
        let body = codec::encode_body(&publication)?;
        let key = new.idempotency_key.unwrap_or_default();
        let keys = [
            self.keys.stream(channel),
            self.keys.meta(channel),
            self.keys.result(channel, &key),
        ];
        let (size, ttl, meta_ttl) = history.map_or((0, 1, 1), |h| {
            (h.size.max(1), millis(h.ttl), millis(h.meta_ttl))
        });
        let window = if key.is_empty() {
            0
        } else {
            millis(self.config.idempotency_window)
        };
        let sharded = if self.config.sharded_pubsub { "1" } else { "0" };
        let (offset, epoch, _suppressed): (String, String, i64) = self
            .script(channel, |live| {
                let mut cmd = self
                    .scripts
                    .call(Lua::Publish, &[&keys[0], &keys[1], &keys[2]]);
                cmd.arg(&*live.generation).arg(candidate_epoch()).arg(&body);
                cmd.arg(size).arg(ttl).arg(meta_ttl).arg(window);
                cmd.arg(self.keys.publications(channel)).arg(sharded);
                cmd
            })
            .await?;
        if offset.is_empty() {
            return Ok(None);
        }
        let offset = offset
            .parse()
            .map_err(|_| BrokerError::refused(format!("publish script returned {offset:?}")))?;
        Ok(Some(StreamPosition { offset, epoch }))
    }

    async fn history(
        &self,
        channel: &str,
        query: HistoryQuery,
        options: HistoryOptions,
    ) -> Result<HistoryPage, BrokerError> {
        let (stream, meta) = (self.keys.stream(channel), self.keys.meta(channel));
        let (since_offset, since_epoch) = match &query.since {
            Some(p) => (p.offset.to_string(), p.epoch.clone()),
            None => (String::new(), String::new()),
        };
        let reply: Vec<Value> = self
            .script(channel, |live| {
                let mut cmd = self.scripts.call(Lua::History, &[&stream, &meta]);
                cmd.arg(&*live.generation).arg(candidate_epoch());
                cmd.arg(millis(options.meta_ttl.max(options.ttl)));
                cmd.arg(since_offset).arg(since_epoch).arg(query.limit);
                cmd.arg(if query.reverse { "1" } else { "0" });
                cmd
            })
            .await?;
        parse_page(&reply)
    }

    async fn presence_op<T: redis::FromRedisValue>(
        &self,
        channel: &str,
        args: &[&[u8]],
    ) -> Result<T, BrokerError> {
        let [data, expiry, users] = self.keys.presence(channel);
        self.script(channel, |_| {
            let mut cmd = self.scripts.call(Lua::Presence, &[&data, &expiry, &users]);
            for arg in args {
                cmd.arg(*arg);
            }
            cmd
        })
        .await
    }

    fn presence_add_cmd(&self, entry: &PresenceEntry, ttl: Duration) -> redis::Cmd {
        let [data, expiry, users] = self.keys.presence(&entry.channel);
        let mut cmd = self.scripts.call(Lua::Presence, &[&data, &expiry, &users]);
        // A ClientInfo is strings and raw JSON: serialising it cannot fail.
        let info = serde_json::to_vec(&entry.info).unwrap_or_default();
        cmd.arg("add").arg(&entry.info.client).arg(&entry.info.user);
        cmd.arg(info).arg(millis(ttl));
        cmd
    }

    async fn add_presence_batch(
        &self,
        entries: &[PresenceEntry],
        ttl: Duration,
    ) -> Result<(), BrokerError> {
        let mut pipes: Vec<redis::Pipeline> = vec![redis::pipe(); self.shards.len()];
        for entry in entries {
            let i = shard_of(&entry.channel, self.shards.len());
            pipes[i]
                .add_command(self.presence_add_cmd(entry, ttl))
                .ignore();
        }
        // One round trip per shard that has entries.
        for (shard, pipe) in self.shards.iter().zip(&pipes) {
            if pipe.cmd_iter().next().is_none() {
                continue;
            }
            let mut live = shard.live(&self.scripts).await?;
            let done = self.scripts.run_pipeline::<()>(&mut live.conn, pipe).await;
            done.map_err(|e| shard.fail(&live, e))?;
        }
        Ok(())
    }

    async fn publish_presence(
        &self,
        channel: &str,
        info: &ClientInfo,
        join: bool,
    ) -> Result<(), BrokerError> {
        let shard = self.shard(channel);
        let mut live = shard.live(&self.scripts).await?;
        let command = if self.config.sharded_pubsub {
            "SPUBLISH"
        } else {
            "PUBLISH"
        };
        let mut cmd = redis::cmd(command);
        cmd.arg(self.keys.publications(channel));
        cmd.arg(codec::encode_presence(join, info));
        let sent = cmd.exec_async(&mut live.conn).await;
        sent.map_err(|e| shard.fail(&live, e))
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

/// `{top, epoch, id, body, id, body, ...}` → a page.
fn parse_page(reply: &[Value]) -> Result<HistoryPage, BrokerError> {
    let bad = || BrokerError::refused("history script returned an unexpected reply");
    let [top, epoch, entries @ ..] = reply else {
        return Err(bad());
    };
    let offset: u64 = redis::from_redis_value(top).map_err(|_| bad())?;
    let epoch: String = redis::from_redis_value(epoch).map_err(|_| bad())?;
    let mut publications = Vec::with_capacity(entries.len() / 2);
    for pair in entries.chunks(2) {
        let [id, body] = pair else { return Err(bad()) };
        let id: String = redis::from_redis_value(id).map_err(|_| bad())?;
        let body: Vec<u8> = redis::from_redis_value(body).map_err(|_| bad())?;
        let offset = codec::offset_of_id(&id);
        publications.push(codec::decode_body(&body, offset).ok_or_else(bad)?);
    }
    Ok(HistoryPage {
        publications,
        position: StreamPosition { offset, epoch },
    })
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
        Box::pin(async move {
            let inner = &self.inner;
            let shard = inner.shard(channel);
            let mut live = shard.live(&inner.scripts).await?;
            let mut cmd = redis::cmd("DEL");
            cmd.arg(inner.keys.stream(channel))
                .arg(inner.keys.meta(channel));
            let done = cmd.exec_async(&mut live.conn).await;
            done.map_err(|e| shard.fail(&live, e))
        })
    }

    fn add_presence<'a>(
        &'a self,
        channel: &'a str,
        info: ClientInfo,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<PresenceChange, BrokerError>> {
        Box::pin(async move {
            // A ClientInfo is strings and raw JSON: serialising it cannot fail.
            let json = serde_json::to_vec(&info).unwrap_or_default();
            let ttl = millis(ttl).to_string();
            let args: [&[u8]; 5] = [
                b"add",
                info.client.as_bytes(),
                info.user.as_bytes(),
                &json,
                ttl.as_bytes(),
            ];
            let (added, first): (i64, i64) = self.inner.presence_op(channel, &args).await?;
            Ok(PresenceChange {
                client_added: added == 1,
                client_removed: false,
                user_changed: first == 1,
            })
        })
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
        Box::pin(async move {
            let args: [&[u8]; 2] = [b"remove", client.as_bytes()];
            let (removed, last): (i64, i64) = self.inner.presence_op(channel, &args).await?;
            Ok(PresenceChange {
                client_added: false,
                client_removed: removed == 1,
                user_changed: last == 1,
            })
        })
    }

    fn presence<'a>(
        &'a self,
        channel: &'a str,
    ) -> BoxFuture<'a, Result<Vec<ClientInfo>, BrokerError>> {
        Box::pin(async move {
            let args: [&[u8]; 1] = [b"list"];
            let values: Vec<Vec<u8>> = self.inner.presence_op(channel, &args).await?;
            let decoded = values.iter().map(|v| codec::decode_presence_value(v));
            let clients: Option<Vec<_>> = decoded.collect();
            clients.ok_or_else(|| BrokerError::refused("undecodable presence entry"))
        })
    }

    fn presence_stats<'a>(
        &'a self,
        channel: &'a str,
    ) -> BoxFuture<'a, Result<PresenceStats, BrokerError>> {
        Box::pin(async move {
            let args: [&[u8]; 1] = [b"stats"];
            let (num_clients, num_users) = self.inner.presence_op(channel, &args).await?;
            Ok(PresenceStats {
                num_clients,
                num_users,
            })
        })
    }
}
