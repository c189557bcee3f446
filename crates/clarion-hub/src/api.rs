//! The server API: what the HTTP layer calls on behalf of backends. No
//! permission checks here (the API key is the server's business).

use clarion_wire::{
    encode_push, Data, DisconnectPush, HistoryResult, PresenceResult, PresenceStatsResult,
    PublishResult, Push, ReplyError, StreamPosition, UnsubscribeCode, UnsubscribePush,
};
use serde::Serialize;
use std::sync::atomic::Ordering;

use crate::channel_ops;
use crate::hub::Hub;
use crate::queue::Frame;
use crate::session::SessionState;
use crate::subscribe::unavailable;

/// A channel with local subscribers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChannelInfo {
    /// The channel.
    pub channel: String,
    /// Sessions on this node subscribed to it.
    pub num_clients: usize,
}

/// This node's counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeInfo {
    /// Connected sessions.
    pub clients: usize,
    /// Distinct users among them.
    pub users: usize,
    /// Channels with at least one local subscriber.
    pub channels: usize,
    /// Subscriptions of local sessions.
    pub subscriptions: usize,
    /// Frames of publications and join/leave queued to sessions since start.
    pub delivered: u64,
    /// Sessions disconnected as slow consumers since start.
    pub slow_consumers: u64,
    /// Gaps in channels' live streams filled from history since start.
    pub gaps_repaired: u64,
    /// Gaps history could not fill since start (subscribers were told:
    /// `unsubscribe` 2500).
    pub gaps_unrecovered: u64,
    /// Milliseconds spent repairing gaps since start.
    pub repair_ms: u64,
    /// Seconds since the hub started.
    pub uptime_secs: u64,
}

impl Hub {
    /// Publishes `data` into `channel` (no publisher info).
    pub async fn publish(&self, channel: &str, data: Data) -> Result<PublishResult, ReplyError> {
        channel_ops::publish(&self.inner, channel, data, None, None).await
    }

    /// [`publish`](Hub::publish) with an idempotency key: a retry with the
    /// same key into the same channel, through any node, within the
    /// broker's window, returns the first result and is stored and
    /// delivered once.
    pub async fn publish_idempotent(
        &self,
        channel: &str,
        data: Data,
        idempotency_key: String,
    ) -> Result<PublishResult, ReplyError> {
        let key = Some(idempotency_key);
        channel_ops::publish(&self.inner, channel, data, None, key).await
    }

    /// Publishes `data` into each channel; one result per channel, in order.
    pub async fn broadcast(
        &self,
        channels: &[String],
        data: Data,
    ) -> Vec<Result<PublishResult, ReplyError>> {
        let mut out = Vec::with_capacity(channels.len());
        for channel in channels {
            out.push(self.publish(channel, data.clone()).await);
        }
        out
    }

    /// Who is in `channel` (501 if presence is off in its namespace).
    pub async fn presence(&self, channel: &str) -> Result<PresenceResult, ReplyError> {
        channel_ops::presence(&self.inner, channel).await
    }

    /// Counts of clients and users in `channel`, in O(1).
    pub async fn presence_stats(&self, channel: &str) -> Result<PresenceStatsResult, ReplyError> {
        channel_ops::presence_stats(&self.inner, channel).await
    }

    /// A page of `channel`'s history: at most `limit` publications after
    /// `since` (or before it, newest first, with `reverse`). To page, pass
    /// the last offset received as the next `since`.
    pub async fn history(
        &self,
        channel: &str,
        limit: u32,
        since: Option<StreamPosition>,
        reverse: bool,
    ) -> Result<HistoryResult, ReplyError> {
        channel_ops::history(&self.inner, channel, limit, since, reverse).await
    }

    /// Drops `channel`'s history; its next stream has a new epoch.
    pub async fn remove_history(&self, channel: &str) -> Result<(), ReplyError> {
        self.inner.namespace(channel)?;
        let removed = self.inner.broker.remove_history(channel).await;
        removed.map_err(unavailable)
    }

    /// Channels with local subscribers, sorted by name.
    pub fn channels(&self) -> Vec<ChannelInfo> {
        let counts = self.inner.channel_counts();
        counts
            .into_iter()
            .map(|(channel, num_clients)| ChannelInfo {
                channel,
                num_clients,
            })
            .collect()
    }

    fn user_sessions(&self, user: &str) -> Vec<std::sync::Arc<SessionState>> {
        let reg = self.inner.registry();
        let Some(ids) = reg.users.get(user) else {
            return Vec::new();
        };
        ids.iter()
            .filter_map(|id| reg.sessions.get(id).cloned())
            .collect()
    }

    /// Disconnects every session of `user` on this node (queued frames are
    /// sent first). Returns how many.
    pub fn disconnect_user(&self, user: &str, push: DisconnectPush) -> usize {
        let sessions = self.user_sessions(user);
        sessions
            .iter()
            .filter(|s| s.disconnect(push.clone(), true))
            .count()
    }

    /// Disconnects every session on this node (graceful shutdown: use
    /// `DisconnectCode::Shutdown`, which closes with 1001).
    pub fn disconnect_all(&self, push: DisconnectPush) -> usize {
        let sessions: Vec<_> = self.inner.registry().sessions.values().cloned().collect();
        sessions
            .iter()
            .filter(|s| s.disconnect(push.clone(), true))
            .count()
    }

    /// Unsubscribes every session of `user` on this node from `channel`
    /// (an `unsubscribe` push with code 2000). Returns how many.
    pub async fn unsubscribe_user(&self, user: &str, channel: &str) -> usize {
        let push = UnsubscribePush::new(channel, UnsubscribeCode::Server);
        let frame = Frame::new(encode_push(&Push::Unsubscribe(push)));
        let mut count = 0;
        for session in self.user_sessions(user) {
            let sub = session.subs().remove(channel);
            let Some(sub) = sub else { continue };
            if session.queue.push(frame.clone()).is_err() {
                session.overflowed();
            }
            crate::subscribe::leave(&self.inner, &session.id, channel, &sub.member).await;
            count += 1;
        }
        count
    }

    /// This node's counters.
    pub fn info(&self) -> NodeInfo {
        let (clients, users, subscriptions) = {
            let reg = self.inner.registry();
            let subs = reg.sessions.values().map(|s| s.subs().len()).sum();
            (reg.sessions.len(), reg.users.len(), subs)
        };
        let stats = &self.inner.stats;
        NodeInfo {
            clients,
            users,
            channels: self.inner.channels.count(),
            subscriptions,
            delivered: stats.delivered.load(Ordering::Relaxed),
            slow_consumers: stats.slow_consumers.load(Ordering::Relaxed),
            gaps_repaired: stats.gaps_repaired.load(Ordering::Relaxed),
            gaps_unrecovered: stats.gaps_unrecovered.load(Ordering::Relaxed),
            repair_ms: stats.repair_micros.load(Ordering::Relaxed) / 1000,
            uptime_secs: self.inner.started.elapsed().as_secs(),
        }
    }
}
