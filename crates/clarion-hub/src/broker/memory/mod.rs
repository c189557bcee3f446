//! The in-memory broker: history and presence in this process. The
//! reference implementation of the [`Broker`] contract.
//!
//! [`MemoryBroker::new`] is a one-node broker. Several nodes of one process
//! share a [`MemoryBackend`] (`backend.node(..)` for each): they see one
//! history, one presence, each other's publications and control messages,
//! like nodes on one Redis, which is how the contract suite's two-node
//! cases run in memory. Nothing is lost in memory, so
//! [`BrokerHandler::on_resync`] is never called; liveness needs no
//! heartbeat either: a node is live from `run` until it is shut down or
//! dropped.

mod backend;
mod presence;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use clarion_wire::{ClientInfo, Publication, StreamPosition};
use tokio::time::Instant;

use self::backend::Core;
use super::{
    BoxFuture, Broker, BrokerError, BrokerHandler, ClusterNode, Control, ControlKind,
    HistoryOptions, HistoryPage, HistoryQuery, NewPublication, NodeIdentity, PresenceChange,
    PresenceEntry, PresenceStats, DEFAULT_IDEMPOTENCY_WINDOW,
};

/// State shared by the [`MemoryBroker`] nodes made from it: an in-process
/// stand-in for a Redis server. Cheap to clone (one shared state). Time is
/// tokio's clock, so tests can pause and advance it.
#[derive(Clone)]
pub struct MemoryBackend {
    core: Arc<Core>,
}

impl Default for MemoryBackend {
    fn default() -> MemoryBackend {
        MemoryBackend::new()
    }
}

impl std::fmt::Debug for MemoryBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBackend").finish_non_exhaustive()
    }
}

impl MemoryBackend {
    /// An empty backend remembering idempotency keys for
    /// [`DEFAULT_IDEMPOTENCY_WINDOW`].
    pub fn new() -> MemoryBackend {
        MemoryBackend::with_idempotency_window(DEFAULT_IDEMPOTENCY_WINDOW)
    }

    /// An empty backend remembering idempotency keys for `window`.
    pub fn with_idempotency_window(window: Duration) -> MemoryBackend {
        MemoryBackend {
            core: Arc::new(Core::new(window)),
        }
    }

    /// A new node on this backend, named `name` (or its id).
    pub fn node(&self, name: Option<&str>) -> MemoryBroker {
        let node = Arc::new(Node {
            identity: NodeIdentity::generate(name),
            handler: OnceLock::new(),
            stopped: AtomicBool::new(false),
        });
        self.core.register(&node);
        MemoryBroker {
            node,
            core: self.core.clone(),
        }
    }
}

/// The in-memory broker: one node of a [`MemoryBackend`].
pub struct MemoryBroker {
    node: Arc<Node>,
    core: Arc<Core>,
}

/// A node as the backend sees it.
struct Node {
    identity: NodeIdentity,
    handler: OnceLock<Arc<dyn BrokerHandler>>,
    stopped: AtomicBool,
}

impl Node {
    fn is_running(&self) -> bool {
        self.handler.get().is_some() && !self.stopped.load(Ordering::Acquire)
    }

    fn deliver(&self, channel: &str, publication: &Publication, epoch: Option<&str>) {
        if let Some(handler) = self.handler.get() {
            handler.on_publication(channel, publication, epoch);
        }
    }

    fn handler(&self) -> Option<&Arc<dyn BrokerHandler>> {
        self.handler.get().filter(|_| self.is_running())
    }
}

impl Default for MemoryBroker {
    fn default() -> MemoryBroker {
        MemoryBroker::new()
    }
}

impl std::fmt::Debug for MemoryBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBroker")
            .field("node", &self.node.identity)
            .finish_non_exhaustive()
    }
}

impl MemoryBroker {
    /// A one-node broker on a backend of its own.
    pub fn new() -> MemoryBroker {
        MemoryBackend::new().node(None)
    }

    fn control(&self, node: &Node, kind: ControlKind, payload: Bytes) {
        if let Some(handler) = node.handler() {
            handler.on_control(&Control {
                from: self.node.identity.id.clone(),
                kind,
                payload,
            });
        }
    }

    fn presence_event(&self, channel: &str, info: &ClientInfo, join: bool) {
        for node in self.core.running() {
            if let Some(handler) = node.handler() {
                if join {
                    handler.on_join(channel, info);
                } else {
                    handler.on_leave(channel, info);
                }
            }
        }
    }
}

fn ready<'a, T: Send + 'a>(value: T) -> BoxFuture<'a, T> {
    Box::pin(std::future::ready(value))
}

impl Broker for MemoryBroker {
    fn identity(&self) -> &NodeIdentity {
        &self.node.identity
    }

    fn run(&self, handler: Arc<dyn BrokerHandler>) -> BoxFuture<'_, Result<(), BrokerError>> {
        let result = self.node.handler.set(handler);
        ready(result.map_err(|_| BrokerError::invalid("run called twice")))
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        self.node.stopped.store(true, Ordering::Release);
        ready(())
    }

    fn nodes(&self) -> Vec<ClusterNode> {
        let now = Instant::now();
        let node = |n: Arc<Node>| ClusterNode {
            identity: n.identity.clone(),
            stats: n.handler().map(|h| h.node_stats()).unwrap_or_default(),
            last_seen: now,
        };
        self.core.running().into_iter().map(node).collect()
    }

    fn broadcast_control(
        &self,
        kind: ControlKind,
        payload: Bytes,
    ) -> BoxFuture<'_, Result<(), BrokerError>> {
        for node in self.core.running() {
            self.control(&node, kind.clone(), payload.clone());
        }
        ready(Ok(()))
    }

    fn send_control<'a>(
        &'a self,
        node: &'a str,
        kind: ControlKind,
        payload: Bytes,
    ) -> BoxFuture<'a, Result<(), BrokerError>> {
        let target = self
            .core
            .running()
            .into_iter()
            .find(|n| n.identity.id == node);
        let Some(target) = target else {
            return ready(Err(BrokerError::no_such_node(node)));
        };
        self.control(&target, kind, payload);
        ready(Ok(()))
    }

    fn subscribe<'a>(&'a self, _channel: &'a str) -> BoxFuture<'a, Result<(), BrokerError>> {
        // Every publication reaches every node; the hub filters.
        ready(Ok(()))
    }

    fn unsubscribe<'a>(&'a self, _channel: &'a str) -> BoxFuture<'a, Result<(), BrokerError>> {
        ready(Ok(()))
    }

    fn publish<'a>(
        &'a self,
        channel: &'a str,
        publication: NewPublication,
        history: Option<HistoryOptions>,
    ) -> BoxFuture<'a, Result<Option<StreamPosition>, BrokerError>> {
        ready(Ok(self.core.publish(channel, publication, history)))
    }

    fn publish_join<'a>(
        &'a self,
        channel: &'a str,
        info: ClientInfo,
    ) -> BoxFuture<'a, Result<(), BrokerError>> {
        self.presence_event(channel, &info, true);
        ready(Ok(()))
    }

    fn publish_leave<'a>(
        &'a self,
        channel: &'a str,
        info: ClientInfo,
    ) -> BoxFuture<'a, Result<(), BrokerError>> {
        self.presence_event(channel, &info, false);
        ready(Ok(()))
    }

    fn history<'a>(
        &'a self,
        channel: &'a str,
        query: HistoryQuery,
        options: HistoryOptions,
    ) -> BoxFuture<'a, Result<HistoryPage, BrokerError>> {
        ready(Ok(self.core.read(channel, &query, &options)))
    }

    fn remove_history<'a>(&'a self, channel: &'a str) -> BoxFuture<'a, Result<(), BrokerError>> {
        self.core.remove_history(channel);
        ready(Ok(()))
    }

    fn add_presence<'a>(
        &'a self,
        channel: &'a str,
        info: ClientInfo,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<PresenceChange, BrokerError>> {
        let change = self
            .core
            .with_presence(channel, |set, now| set.add(info, now + ttl));
        ready(Ok(change))
    }

    fn add_presence_batch<'a>(
        &'a self,
        entries: &'a [PresenceEntry],
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), BrokerError>> {
        for entry in entries {
            let info = entry.info.clone();
            self.core
                .with_presence(&entry.channel, |set, now| set.add(info, now + ttl));
        }
        ready(Ok(()))
    }

    fn remove_presence<'a>(
        &'a self,
        channel: &'a str,
        client: &'a str,
    ) -> BoxFuture<'a, Result<PresenceChange, BrokerError>> {
        let change = self
            .core
            .with_presence(channel, |set, _| set.remove(client));
        ready(Ok(change))
    }

    fn presence<'a>(
        &'a self,
        channel: &'a str,
    ) -> BoxFuture<'a, Result<Vec<ClientInfo>, BrokerError>> {
        let clients = self.core.with_presence(channel, |set, _| {
            set.clients.values().map(|(info, _)| info.clone()).collect()
        });
        ready(Ok(clients))
    }

    fn presence_stats<'a>(
        &'a self,
        channel: &'a str,
    ) -> BoxFuture<'a, Result<PresenceStats, BrokerError>> {
        let stats = self.core.with_presence(channel, |set, _| PresenceStats {
            num_clients: set.clients.len() as u64,
            num_users: set.users.len() as u64,
        });
        ready(Ok(stats))
    }
}
