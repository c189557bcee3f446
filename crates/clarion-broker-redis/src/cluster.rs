//! Nodes: heartbeats on the control channel, the peers heard from, and
//! the periodic generation check.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, Weak};
use std::time::Duration;

use clarion_hub::{ClusterNode, Heartbeat};
use tokio::time::Instant;

use crate::broker::Inner;

/// A peer is forgotten after this many heartbeat intervals of silence.
pub(crate) const MISSED_HEARTBEATS: u32 = 3;

/// The other nodes, as last heard of.
#[derive(Default)]
pub(crate) struct Peers {
    nodes: Mutex<HashMap<String, ClusterNode>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Map inserts and removals only: never half-updated.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Peers {
    /// Records a heartbeat; true if it came from a node not known before
    /// (which then deserves an answer, so it learns of us at once).
    pub(crate) fn heard(&self, beat: Heartbeat) -> bool {
        let mut nodes = lock(&self.nodes);
        if beat.leaving {
            nodes.remove(&beat.node.id);
            return false;
        }
        let node = ClusterNode {
            identity: beat.node,
            stats: beat.stats,
            last_seen: Instant::now(),
        };
        nodes.insert(node.identity.id.clone(), node).is_none()
    }

    /// The peers heard from within `ttl` (the others are dropped).
    pub(crate) fn live(&self, ttl: Duration) -> Vec<ClusterNode> {
        let now = Instant::now();
        let mut nodes = lock(&self.nodes);
        nodes.retain(|_, n| now.duration_since(n.last_seen) < ttl);
        nodes.values().cloned().collect()
    }

    pub(crate) fn is_live(&self, id: &str, ttl: Duration) -> bool {
        let nodes = lock(&self.nodes);
        nodes.get(id).is_some_and(|n| n.last_seen.elapsed() < ttl)
    }
}

/// Announces this node every heartbeat interval and re-reads each shard's
/// generation every `generation_check`, until the broker is dropped or
/// shut down.
pub(crate) async fn maintain(weak: Weak<Inner>) {
    let Some((every, check_every)) = weak
        .upgrade()
        .map(|i| (i.config.heartbeat, i.config.generation_check))
    else {
        return;
    };
    let mut next_check = Instant::now() + check_every;
    loop {
        tokio::time::sleep(every).await;
        let Some(inner) = weak.upgrade() else { return };
        if inner.is_stopped() {
            return;
        }
        // A failed heartbeat is retried at the next tick; peers tolerate
        // missing two.
        let _ = inner.beat(false).await;
        if Instant::now() >= next_check {
            next_check = Instant::now() + check_every;
            inner.check_generations().await;
        }
    }
}
