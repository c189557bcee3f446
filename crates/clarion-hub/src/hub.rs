//! The hub: configuration, the broker, the registry of sessions and of
//! which local sessions are in which channel, and fan-out.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use clarion_wire::{
    encode_push, ClientInfo, DisconnectCode, DisconnectPush, ErrorCode, PresencePush, Publication,
    PublicationPush, Push, ReplyError,
};
use tokio::time::Instant;

use crate::auth::TokenVerifier;
use crate::broker::{
    Broker, BrokerError, BrokerHandler, ClusterNode, Control, HistoryOptions, MemoryBroker,
    NodeIdentity, NodeStats,
};
use crate::config::{parse_channel, ConfigError, HubConfig, NamespaceOptions};
use crate::queue::Frame;
use crate::session::{DeliverError, Delivery, SessionState};

const SHARDS: usize = 32;

/// The real-time engine. Cheap to clone (one shared state).
#[derive(Clone)]
pub struct Hub {
    pub(crate) inner: Arc<HubInner>,
}

impl fmt::Debug for Hub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hub").finish_non_exhaustive()
    }
}

pub(crate) struct HubInner {
    me: Weak<HubInner>,
    pub(crate) config: HubConfig,
    pub(crate) broker: Arc<dyn Broker>,
    pub(crate) verifier: Option<Arc<dyn TokenVerifier>>,
    channels: Vec<Mutex<HashMap<String, Members>>>,
    hasher: RandomState,
    sessions: Mutex<Registry>,
    client_prefix: String,
    next_client: AtomicU64,
    pub(crate) started: Instant,
    pub(crate) stats: Stats,
}

/// The local sessions subscribed to one channel.
type Members = HashMap<Arc<str>, Arc<SessionState>>;

#[derive(Default)]
pub(crate) struct Registry {
    pub(crate) sessions: HashMap<Arc<str>, Arc<SessionState>>,
    pub(crate) users: HashMap<String, HashSet<Arc<str>>>,
}

#[derive(Default)]
pub(crate) struct Stats {
    pub(crate) delivered: AtomicU64,
    pub(crate) slow_consumers: AtomicU64,
}

/// Builds a [`Hub`].
pub struct HubBuilder {
    config: HubConfig,
    broker: Option<Arc<dyn Broker>>,
    verifier: Option<Arc<dyn TokenVerifier>>,
}

impl fmt::Debug for HubBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubBuilder").finish_non_exhaustive()
    }
}

/// Why a hub could not start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartError {
    /// The configuration is invalid.
    Config(ConfigError),
    /// The broker refused to start.
    Broker(BrokerError),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Config(e) => write!(f, "invalid hub config: {e}"),
            StartError::Broker(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for StartError {}

impl HubBuilder {
    /// Uses `broker` instead of a fresh [`MemoryBroker`].
    pub fn broker(mut self, broker: Arc<dyn Broker>) -> HubBuilder {
        self.broker = Some(broker);
        self
    }

    /// Verifies subscription and refresh tokens with `verifier`. Without
    /// one, subscriptions with a token fail with 401.
    pub fn token_verifier(mut self, verifier: Arc<dyn TokenVerifier>) -> HubBuilder {
        self.verifier = Some(verifier);
        self
    }

    /// Validates the config, starts the broker and the presence refresher
    /// (a task on the current tokio runtime that ends with the hub).
    pub async fn build(self) -> Result<Hub, StartError> {
        self.config.validate().map_err(StartError::Config)?;
        let broker = self.broker.unwrap_or_else(|| Arc::new(MemoryBroker::new()));
        let inner = Arc::new_cyclic(|me| HubInner {
            me: me.clone(),
            config: self.config,
            broker: broker.clone(),
            verifier: self.verifier,
            channels: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: RandomState::new(),
            sessions: Mutex::default(),
            client_prefix: client_prefix(),
            next_client: AtomicU64::new(1),
            started: Instant::now(),
            stats: Stats::default(),
        });
        let handler = Arc::new(Handler {
            hub: Arc::downgrade(&inner),
        });
        broker.run(handler).await.map_err(StartError::Broker)?;
        tokio::spawn(crate::maintenance::run(Arc::downgrade(&inner)));
        Ok(Hub { inner })
    }
}

fn client_prefix() -> String {
    let seed = RandomState::new().hash_one(std::time::SystemTime::now());
    format!("{:08x}", seed & 0xffff_ffff)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // No code path panics while holding these locks with maps half-updated.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Hub {
    /// Starts building a hub with `config`.
    pub fn builder(config: HubConfig) -> HubBuilder {
        HubBuilder {
            config,
            broker: None,
            verifier: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &HubConfig {
        &self.inner.config
    }

    /// This node, as its broker names it.
    pub fn node(&self) -> &NodeIdentity {
        self.inner.broker.identity()
    }

    /// The live nodes of the cluster (this one included), as the broker
    /// last heard of them.
    pub fn nodes(&self) -> Vec<ClusterNode> {
        self.inner.broker.nodes()
    }
}

impl HubInner {
    /// This hub as an `Arc`, for spawned tasks (`None` while dropping).
    pub(crate) fn myself(&self) -> Option<Arc<HubInner>> {
        self.me.upgrade()
    }

    pub(crate) fn new_client_id(&self) -> Arc<str> {
        let n = self.next_client.fetch_add(1, Ordering::Relaxed);
        format!("{}-{n}", self.client_prefix).into()
    }

    /// The options of `channel`'s namespace, or 404.
    pub(crate) fn namespace(&self, channel: &str) -> Result<&NamespaceOptions, ReplyError> {
        let unknown = || ReplyError::with_message(ErrorCode::UnknownChannel, "unknown channel");
        let name = parse_channel(channel).ok_or_else(unknown)?;
        self.config.namespace(name.namespace).ok_or_else(unknown)
    }

    pub(crate) fn history_options(ns: &NamespaceOptions) -> Option<HistoryOptions> {
        ns.has_history().then_some(HistoryOptions {
            size: ns.history_size,
            ttl: ns.history_ttl,
            meta_ttl: ns.history_meta_ttl.max(ns.history_ttl),
        })
    }

    fn shard(&self, channel: &str) -> MutexGuard<'_, HashMap<String, Members>> {
        let i = (self.hasher.hash_one(channel) as usize) % SHARDS;
        lock(&self.channels[i])
    }

    /// Adds a local member; true if the channel had none (subscribe the broker).
    pub(crate) fn add_member(&self, channel: &str, session: &Arc<SessionState>) -> bool {
        let mut shard = self.shard(channel);
        let members = shard.entry(channel.to_owned()).or_default();
        let first = members.is_empty();
        members.insert(session.id.clone(), session.clone());
        first
    }

    /// Removes a local member; true if the channel has none left.
    pub(crate) fn remove_member(&self, channel: &str, client: &str) -> bool {
        let mut shard = self.shard(channel);
        let Some(members) = shard.get_mut(channel) else {
            return false;
        };
        if members.remove(client).is_none() {
            return false;
        }
        if members.is_empty() {
            shard.remove(channel);
            return true;
        }
        false
    }

    /// How many channels have local members (cheap: no names copied).
    fn channel_count(&self) -> usize {
        self.channels.iter().map(|shard| lock(shard).len()).sum()
    }

    /// Local channels with their member counts.
    pub(crate) fn channel_counts(&self) -> Vec<(String, usize)> {
        let mut out = Vec::new();
        for shard in &self.channels {
            let shard = lock(shard);
            out.extend(shard.iter().map(|(c, m)| (c.clone(), m.len())));
        }
        out.sort();
        out
    }

    pub(crate) fn registry(&self) -> MutexGuard<'_, Registry> {
        lock(&self.sessions)
    }

    /// Registers a session; false (and nothing registered) when its user
    /// already holds `max_connections_per_user` sessions here.
    pub(crate) fn register(&self, session: &Arc<SessionState>) -> bool {
        let mut reg = self.registry();
        let sessions_of_user = reg.users.get(&session.user).map_or(0, HashSet::len);
        let anonymous = session.user.is_empty();
        if !anonymous && sessions_of_user >= self.config.max_connections_per_user {
            return false;
        }
        reg.sessions.insert(session.id.clone(), session.clone());
        reg.users
            .entry(session.user.clone())
            .or_default()
            .insert(session.id.clone());
        true
    }

    pub(crate) fn session(&self, client: &str) -> Option<Arc<SessionState>> {
        self.registry().sessions.get(client).cloned()
    }

    pub(crate) fn unregister(&self, session: &SessionState) {
        let mut reg = self.registry();
        reg.sessions.remove(&session.id);
        if let Some(set) = reg.users.get_mut(&session.user) {
            set.remove(&session.id);
            if set.is_empty() {
                reg.users.remove(&session.user);
            }
        }
    }

    /// Sends one encoded frame to every local member of `channel`.
    fn fan_out(&self, channel: &str, frame: impl FnOnce() -> Frame, delivery: Delivery<'_>) {
        let mut gaps = Vec::new();
        {
            let shard = self.shard(channel);
            let Some(members) = shard.get(channel) else {
                return;
            };
            let frame = frame();
            let mut delivered = 0;
            for session in members.values() {
                match session.deliver(channel, &frame, delivery) {
                    Ok(()) => delivered += 1,
                    Err(DeliverError::Gap(member)) => gaps.push((session.id.clone(), member)),
                    Err(DeliverError::Overflow) => {
                        if session
                            .disconnect(DisconnectPush::new(DisconnectCode::SlowConsumer), false)
                        {
                            self.stats.slow_consumers.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
            self.stats.delivered.fetch_add(delivered, Ordering::Relaxed);
        }
        for (client, member) in gaps {
            crate::subscribe::spawn_cleanup(self, client, channel, member);
        }
    }
}

/// The broker's view of the hub: it holds the hub weakly, so a dropped hub
/// stops receiving.
struct Handler {
    hub: Weak<HubInner>,
}

impl BrokerHandler for Handler {
    fn on_publication(&self, channel: &str, publication: &Publication, epoch: Option<&str>) {
        let Some(hub) = self.hub.upgrade() else {
            return;
        };
        let frame = || {
            Frame::new(encode_push(&Push::Publication(PublicationPush {
                channel: channel.to_owned(),
                offset: publication.offset,
                epoch: epoch.map(str::to_owned),
                data: publication.data.clone(),
                info: publication.info.clone(),
            })))
        };
        let delivery = Delivery {
            offset: publication.offset.zip(epoch),
        };
        hub.fan_out(channel, frame, delivery);
    }

    fn on_join(&self, channel: &str, info: &ClientInfo) {
        self.presence_push(channel, info, true);
    }

    fn on_leave(&self, channel: &str, info: &ClientInfo) {
        self.presence_push(channel, info, false);
    }

    /// No control kind is acted on yet: the hub sends none. Disconnecting a
    /// user on every node and routing fallback transports' commands will
    /// send and handle them here.
    fn on_control(&self, _control: &Control) {}

    /// Not repaired here yet: until the hub compares positions on resync,
    /// a lost publication is found at the channel's next publication (the
    /// subscriber gets `unsubscribe` 2500 and recovers from history).
    fn on_resync(&self, _channels: &[String]) {}

    fn node_stats(&self) -> NodeStats {
        let Some(hub) = self.hub.upgrade() else {
            return NodeStats::default();
        };
        let (clients, users, subscriptions) = {
            let reg = hub.registry();
            let subs: usize = reg.sessions.values().map(|s| s.subs().len()).sum();
            (reg.sessions.len(), reg.users.len(), subs)
        };
        NodeStats {
            clients: clients as u64,
            users: users as u64,
            channels: hub.channel_count() as u64,
            subscriptions: subscriptions as u64,
        }
    }
}

impl Handler {
    fn presence_push(&self, channel: &str, info: &ClientInfo, join: bool) {
        let Some(hub) = self.hub.upgrade() else {
            return;
        };
        let frame = || {
            let push = PresencePush {
                channel: channel.to_owned(),
                info: info.clone(),
            };
            Frame::new(encode_push(&if join {
                Push::Join(push)
            } else {
                Push::Leave(push)
            }))
        };
        hub.fan_out(channel, frame, Delivery { offset: None });
    }
}
