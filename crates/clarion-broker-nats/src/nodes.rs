//! Node liveness and the control path: heartbeats and broadcasts on
//! `<prefix>.n.all`, messages for one node on `<prefix>.n.<id>`, encoded
//! as [`ClusterMessage`]s (the encoding every networked broker shares).

use std::sync::Arc;

use async_nats::{Subject, Subscriber};
use bytes::Bytes;
use clarion_hub::{
    BrokerError, ClusterMessage, ClusterNode, Control, ControlKind, Heartbeat, NodeStats,
};
use futures_util::StreamExt;
use tokio::time::Instant;

use crate::error::{connected, unavailable};
use crate::shared::{lock, Shared};

/// A node not heard of for this many heartbeat intervals has crashed.
const MISSED_BEATS: u32 = 3;

impl Shared {
    /// The live nodes: those heard of lately, and this one.
    pub(crate) fn live_nodes(&self) -> Vec<ClusterNode> {
        let now = Instant::now();
        let window = self.config.heartbeat * MISSED_BEATS;
        let mut nodes = lock(&self.nodes);
        nodes.retain(|_, n| now.duration_since(n.last_seen) < window);
        let mut list: Vec<_> = nodes
            .values()
            .filter(|n| n.identity.id != self.identity.id)
            .cloned()
            .collect();
        list.push(ClusterNode {
            identity: self.identity.clone(),
            stats: self.stats(),
            last_seen: now,
        });
        list
    }

    fn stats(&self) -> NodeStats {
        self.handler
            .get()
            .map(|h| h.node_stats())
            .unwrap_or_default()
    }

    /// Whether `id` is a live node (this one included).
    pub(crate) fn is_live(&self, id: &str) -> bool {
        id == self.identity.id || self.live_nodes().iter().any(|n| n.identity.id == id)
    }

    /// Announces this node (`leaving`: for the last time).
    pub(crate) async fn beat(&self, leaving: bool) -> Result<(), BrokerError> {
        let beat = ClusterMessage::Heartbeat(Heartbeat {
            node: self.identity.clone(),
            stats: self.stats(),
            leaving,
        });
        self.send_cluster(self.subjects.nodes_all(), beat).await
    }

    /// Heartbeats every interval until the task is aborted.
    pub(crate) async fn heartbeats(self: Arc<Self>) {
        let mut every = tokio::time::interval(self.config.heartbeat);
        loop {
            every.tick().await;
            if let Err(err) = self.beat(false).await {
                tracing::debug!(target: "clarion::broker::nats", "heartbeat: {err}");
            }
        }
    }

    /// Sends a control message to every node or to one.
    pub(crate) async fn control(
        &self,
        to: Option<&str>,
        kind: ControlKind,
        payload: Bytes,
    ) -> Result<(), BrokerError> {
        let subject = match to {
            Some(id) if !self.is_live(id) => return Err(BrokerError::no_such_node(id)),
            Some(id) => self.subjects.node(id),
            None => self.subjects.nodes_all(),
        };
        let control = ClusterMessage::Control(Control {
            from: self.identity.id.clone(),
            kind,
            payload,
        });
        self.send_cluster(subject, control).await
    }

    async fn send_cluster(
        &self,
        subject: String,
        message: ClusterMessage,
    ) -> Result<(), BrokerError> {
        connected(&self.client)?;
        let payload = Bytes::from(message.encode());
        let subject = Subject::from(subject);
        self.client
            .publish(subject, payload)
            .await
            .map_err(|e| unavailable("control", e))
    }

    /// Subscribes to everything on the node subjects (the caller makes
    /// sure the server has it, then reads it with
    /// [`cluster_messages`](Shared::cluster_messages)).
    ///
    /// One subscription to `<prefix>.n.>` carries both broadcasts and
    /// messages for single nodes, those for other nodes dropped here: with
    /// two subscriptions, async-nats hands their messages to two queues and
    /// a broadcast and a message to this node from one sender could swap
    /// places (the contract orders control messages per sender). The price:
    /// every node sees every node-to-node message.
    pub(crate) async fn subscribe_cluster(&self) -> Result<Subscriber, BrokerError> {
        let all = self.client.subscribe(self.subjects.nodes_wildcard()).await;
        all.map_err(|e| unavailable("subscribe", e))
    }

    /// Reads heartbeats and control messages from the subscription
    /// [`subscribe_cluster`](Shared::subscribe_cluster) made, until the
    /// task is aborted.
    pub(crate) async fn cluster_messages(self: Arc<Self>, mut all: Subscriber) {
        let (broadcast, mine) = (
            self.subjects.nodes_all(),
            self.subjects.node(&self.identity.id),
        );
        while let Some(message) = all.next().await {
            let subject = message.subject.as_str();
            if subject != broadcast && subject != mine {
                continue;
            }
            match ClusterMessage::decode(&message.payload) {
                Some(ClusterMessage::Heartbeat(beat)) => self.heard(beat),
                Some(ClusterMessage::Control(control)) => {
                    if let Some(handler) = self.handler.get() {
                        handler.on_control(&control);
                    }
                }
                None => {}
            }
        }
    }

    fn heard(&self, beat: Heartbeat) {
        let mut nodes = lock(&self.nodes);
        if beat.leaving {
            nodes.remove(&beat.node.id);
            return;
        }
        let node = ClusterNode {
            identity: beat.node,
            stats: beat.stats,
            last_seen: Instant::now(),
        };
        nodes.insert(node.identity.id.clone(), node);
    }
}
