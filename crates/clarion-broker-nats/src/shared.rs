//! The state every task of one broker shares.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock};

use async_nats::jetstream;
use async_nats::{Client, RequestErrorKind};
use bytes::Bytes;
use clarion_hub::{BrokerError, BrokerHandler, ClusterNode, NodeIdentity};
use tokio::task::AbortHandle;

use crate::conn::{self, Stores};
use crate::error::{bounded, unavailable};
use crate::history::record::Tip;
use crate::subjects::Subjects;
use crate::NatsConfig;

/// Tips remembered for fast publishing; past this many the cache starts
/// over (a miss costs one read, nothing else).
const MAX_TIPS: usize = 100_000;

pub(crate) struct Shared {
    pub(crate) config: NatsConfig,
    pub(crate) identity: NodeIdentity,
    pub(crate) client: Client,
    pub(crate) js: jetstream::Context,
    pub(crate) subjects: Subjects,
    stores: RwLock<Stores>,
    pub(crate) handler: OnceLock<Arc<dyn BrokerHandler>>,
    /// Each channel's newest message as this node last wrote or read it.
    tips: Mutex<HashMap<String, Tip>>,
    /// Other live nodes as last heard of (this node is added by `nodes()`).
    pub(crate) nodes: Mutex<HashMap<String, ClusterNode>>,
    /// This node's live channel subscriptions: their reading tasks.
    pub(crate) live: Mutex<HashMap<String, AbortHandle>>,
    /// How many times each channel was subscribed and not yet
    /// unsubscribed (the contract counts subscriptions).
    pub(crate) counts: Mutex<HashMap<String, u32>>,
    warned: Mutex<HashSet<String>>,
}

/// Locks `m`; a poisoned lock only means a handler panicked, and every map
/// here is consistent between statements.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    pub(crate) fn new(
        config: NatsConfig,
        identity: NodeIdentity,
        client: Client,
        js: jetstream::Context,
        stores: Stores,
    ) -> Shared {
        Shared {
            subjects: Subjects::new(&config.prefix),
            config,
            identity,
            client,
            js,
            stores: RwLock::new(stores),
            handler: OnceLock::new(),
            tips: Mutex::default(),
            nodes: Mutex::default(),
            live: Mutex::default(),
            counts: Mutex::default(),
            warned: Mutex::default(),
        }
    }

    /// The stream and buckets as last ensured.
    pub(crate) fn stores(&self) -> Stores {
        self.stores
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Ensures the stream and buckets again (a server may have lost them)
    /// and forgets every cached tip.
    pub(crate) async fn reensure(&self) -> Result<Stores, BrokerError> {
        let stores = conn::ensure(&self.js, &self.config, &self.subjects).await?;
        *self.stores.write().unwrap_or_else(|e| e.into_inner()) = stores.clone();
        lock(&self.tips).clear();
        Ok(stores)
    }

    pub(crate) fn tip(&self, channel: &str) -> Option<Tip> {
        lock(&self.tips).get(channel).cloned()
    }

    pub(crate) fn remember_tip(&self, channel: &str, tip: Tip) {
        let mut tips = lock(&self.tips);
        if tips.len() >= MAX_TIPS {
            tips.clear();
        }
        tips.insert(channel.to_owned(), tip);
    }

    pub(crate) fn forget_tip(&self, channel: &str) {
        lock(&self.tips).remove(channel);
    }

    /// Logs `message` as a warning the first time it is seen.
    pub(crate) fn warn_once(&self, message: String) {
        if lock(&self.warned).insert(message.clone()) {
            tracing::warn!(target: "clarion::broker::nats", "{message}");
        }
    }

    /// Returns once the server has processed everything this connection
    /// sent before the call, subscriptions included: from then on, what
    /// any connection publishes is routed to them.
    ///
    /// `Client::flush` is not enough: it returns once the bytes are written
    /// to the socket. The server reads every connection on its own, so a
    /// message another node publishes right after our flush can be routed
    /// before the server has read our SUB, and is lost to us (the suite's
    /// two-node cases saw this under load). So this sends a request to a
    /// subject no one subscribes to: the server answers "no responders" in
    /// order, after it has read everything sent before it.
    pub(crate) async fn sync(&self) -> Result<(), BrokerError> {
        let subject = self.subjects.sync(&self.identity.id);
        let request = async {
            match self.client.request(subject, Bytes::new()).await {
                Ok(_) => Ok(()),
                Err(e) if e.kind() == RequestErrorKind::NoResponders => Ok(()),
                Err(e) => Err(unavailable("sync", e)),
            }
        };
        bounded(self.config.command_timeout, "sync", request).await
    }

    /// The channels this node is subscribed to.
    pub(crate) fn subscribed(&self) -> Vec<String> {
        lock(&self.live).keys().cloned().collect()
    }
}
