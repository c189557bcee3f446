//! The hub: configuration, the broker, the registry of sessions and of
//! which local sessions are in which channel, and fan-out.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use clarion_wire::{ErrorCode, ReplyError};
use tokio::time::Instant;

use crate::auth::TokenVerifier;
use crate::broker::{Broker, BrokerError, ClusterNode, HistoryOptions, MemoryBroker, NodeIdentity};
use crate::channels::Channels;
use crate::config::{parse_channel, ConfigError, HubConfig, NamespaceOptions};
use crate::delivery::Handler;
use crate::session::SessionState;

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
    pub(crate) channels: Channels,
    /// Per channel, whether this node's broker subscription is on, behind
    /// an async lock that serialises turning it on and off.
    broker_subs: Mutex<HashMap<String, Arc<tokio::sync::Mutex<bool>>>>,
    sessions: Mutex<Registry>,
    client_prefix: String,
    next_client: AtomicU64,
    pub(crate) started: Instant,
    pub(crate) stats: Stats,
}

#[derive(Default)]
pub(crate) struct Registry {
    pub(crate) sessions: HashMap<Arc<str>, Arc<SessionState>>,
    pub(crate) users: HashMap<String, HashSet<Arc<str>>>,
}

#[derive(Default)]
pub(crate) struct Stats {
    pub(crate) delivered: AtomicU64,
    pub(crate) slow_consumers: AtomicU64,
    /// Gaps in a channel's live stream filled from history.
    pub(crate) gaps_repaired: AtomicU64,
    /// Gaps history could not fill (subscribers got `unsubscribe` 2500).
    pub(crate) gaps_unrecovered: AtomicU64,
    /// Time spent repairing, in microseconds.
    pub(crate) repair_micros: AtomicU64,
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
            channels: Channels::new(),
            broker_subs: Mutex::default(),
            sessions: Mutex::default(),
            client_prefix: client_prefix(),
            next_client: AtomicU64::new(1),
            started: Instant::now(),
            stats: Stats::default(),
        });
        let handler = Arc::new(Handler::new(Arc::downgrade(&inner)));
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

    /// Whether the broker is reachable right now (for readiness probes).
    pub async fn broker_health(&self) -> Result<(), BrokerError> {
        self.inner.broker.health().await
    }

    /// Leaves the cluster: the broker tells the other nodes at once and
    /// stops its background work. Call it last, at shutdown.
    pub async fn shutdown(&self) {
        self.inner.broker.shutdown().await;
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

    /// Adds a local member; true if the channel had none.
    pub(crate) fn add_member(&self, channel: &str, session: &Arc<SessionState>) -> bool {
        self.channels.add_member(channel, session)
    }

    /// Removes a local member; true if the channel has none left.
    pub(crate) fn remove_member(&self, channel: &str, client: &str) -> bool {
        self.channels.remove_member(channel, client)
    }

    /// Local channels with their member counts.
    pub(crate) fn channel_counts(&self) -> Vec<(String, usize)> {
        self.channels.counts()
    }

    /// Turns this node's broker subscription to `channel` on or off to
    /// match whether it has local members. Serialised per channel, so a
    /// subscribe racing the last unsubscribe cannot leave the node
    /// unsubscribed with members (or the reverse); when it returns `Ok`
    /// with members present, the broker subscription is on.
    pub(crate) async fn sync_broker_subscription(&self, channel: &str) -> Result<(), BrokerError> {
        let cell = lock(&self.broker_subs)
            .entry(channel.to_owned())
            .or_default()
            .clone();
        let mut subscribed = cell.lock().await;
        let wanted = self.channels.has_members(channel);
        let result = match (wanted, *subscribed) {
            (true, false) => self.broker.subscribe(channel).await.map(|()| true),
            (false, true) => {
                // Best effort: a broker that lost the connection has no
                // subscription to end anyway.
                let _ = self.broker.unsubscribe(channel).await;
                Ok(false)
            }
            (_, now) => Ok(now),
        };
        if let Ok(now) = result {
            *subscribed = now;
        }
        let idle = !*subscribed;
        drop(subscribed);
        if idle {
            let mut subs = lock(&self.broker_subs);
            // Ours and the map's: nobody else is waiting on this cell.
            if subs.get(channel).is_some_and(|c| Arc::strong_count(c) == 2) {
                subs.remove(channel);
            }
        }
        result.map(drop)
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
}
