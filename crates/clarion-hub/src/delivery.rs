//! Live delivery: the broker's handler, and fan-out of one encoded frame
//! to a channel's local members. In channels with history every live
//! publication passes the channel's [`StreamCursor`] first, so a
//! publication the broker lost is read from history (`repair.rs`) rather
//! than becoming a gap.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use clarion_wire::{
    encode_push, ClientInfo, DisconnectCode, DisconnectPush, PresencePush, Publication,
    PublicationPush, Push, StreamPosition,
};

use crate::broker::{BrokerHandler, Control, NodeStats};
use crate::channels::Members;
use crate::hub::HubInner;
use crate::queue::Frame;
use crate::session::{DeliverError, Delivery, Member};
use crate::stream::{Admit, StreamCursor};

/// Subscriptions that live delivery found broken, to clean up once the
/// channel's lock is released.
pub(crate) type Broken = Vec<(Arc<str>, Member)>;

/// The broker's view of the hub: it holds the hub weakly, so a dropped hub
/// stops receiving.
pub(crate) struct Handler {
    hub: Weak<HubInner>,
}

impl Handler {
    pub(crate) fn new(hub: Weak<HubInner>) -> Handler {
        Handler { hub }
    }

    fn presence_push(&self, channel: &str, info: &ClientInfo, join: bool) {
        let Some(hub) = self.hub.upgrade() else {
            return;
        };
        let push = PresencePush {
            channel: channel.to_owned(),
            info: info.clone(),
        };
        let push = match join {
            true => Push::Join(push),
            false => Push::Leave(push),
        };
        hub.fan_out(channel, || Frame::new(encode_push(&push)));
    }
}

impl BrokerHandler for Handler {
    fn on_publication(&self, channel: &str, publication: &Publication, epoch: Option<&str>) {
        if let Some(hub) = self.hub.upgrade() {
            hub.live_publication(channel, publication, epoch);
        }
    }

    fn on_join(&self, channel: &str, info: &ClientInfo) {
        self.presence_push(channel, info, true);
    }

    fn on_leave(&self, channel: &str, info: &ClientInfo) {
        self.presence_push(channel, info, false);
    }

    /// Disconnect or unsubscribe a user here on another node's behalf
    /// (`control.rs`).
    fn on_control(&self, control: &Control) {
        if let Some(hub) = self.hub.upgrade() {
            hub.on_control(control);
        }
    }

    /// Live delivery of `channels` may have lost publications: each
    /// channel with history checks its stream and repairs what is missing.
    fn on_resync(&self, channels: &[String]) {
        if let Some(hub) = self.hub.upgrade() {
            for channel in channels {
                hub.resync(channel);
            }
        }
    }

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
            channels: hub.channels.count() as u64,
            subscriptions: subscriptions as u64,
        }
    }
}

fn publication_frame(channel: &str, publication: &Publication, epoch: Option<&str>) -> Frame {
    Frame::new(encode_push(&Push::Publication(PublicationPush {
        channel: channel.to_owned(),
        offset: publication.offset,
        epoch: epoch.map(str::to_owned),
        data: publication.data.clone(),
        info: publication.info.clone(),
    })))
}

impl HubInner {
    /// A live publication from the broker: delivered, dropped as a
    /// duplicate, held behind a repair, or the start of one.
    pub(crate) fn live_publication(
        &self,
        channel: &str,
        publication: &Publication,
        epoch: Option<&str>,
    ) {
        let mut broken = Broken::new();
        let repair = {
            let mut shard = self.channels.shard(channel);
            let Some(entry) = shard.get_mut(channel) else {
                return;
            };
            let admit = match (publication.offset, epoch) {
                (Some(offset), Some(epoch)) => entry
                    .cursor
                    .get_or_insert_with(|| {
                        // The first one seen here: the node starts with it.
                        let before = offset.saturating_sub(1);
                        StreamCursor::new(&StreamPosition {
                            offset: before,
                            epoch: epoch.to_owned(),
                        })
                    })
                    .admit(publication, offset, epoch),
                _ => Admit::Deliver,
            };
            match admit {
                Admit::Deliver => {
                    let frame = publication_frame(channel, publication, epoch);
                    let delivery = Delivery {
                        offset: publication.offset.zip(epoch),
                    };
                    self.deliver(channel, &entry.members, &frame, delivery, &mut broken);
                    None
                }
                Admit::Skip | Admit::Held => None,
                Admit::Repair { since, until } => Some((since, until)),
            }
        };
        self.clean_up(channel, broken);
        if let Some((since, until)) = repair {
            crate::repair::spawn(self, channel, since, Some(until));
        }
    }

    /// Delivers a publication to `members` (the caller holds the
    /// channel's lock, so deliveries of one channel stay in order).
    pub(crate) fn deliver_publication(
        &self,
        channel: &str,
        members: &Members,
        publication: &Publication,
        epoch: &str,
        broken: &mut Broken,
    ) {
        let frame = publication_frame(channel, publication, Some(epoch));
        let delivery = Delivery {
            offset: publication.offset.map(|o| (o, epoch)),
        };
        self.deliver(channel, members, &frame, delivery, broken);
    }

    /// Sends one encoded frame to every local member of `channel`.
    pub(crate) fn fan_out(&self, channel: &str, frame: impl FnOnce() -> Frame) {
        let mut broken = Broken::new();
        {
            let shard = self.channels.shard(channel);
            let Some(entry) = shard.get(channel) else {
                return;
            };
            let delivery = Delivery { offset: None };
            self.deliver(channel, &entry.members, &frame(), delivery, &mut broken);
        }
        self.clean_up(channel, broken);
    }

    fn deliver(
        &self,
        channel: &str,
        members: &Members,
        frame: &Frame,
        delivery: Delivery<'_>,
        broken: &mut Broken,
    ) {
        let mut delivered = 0;
        for session in members.values() {
            match session.deliver(channel, frame, delivery) {
                Ok(()) => delivered += 1,
                Err(DeliverError::Gap(member)) => broken.push((session.id.clone(), member)),
                Err(DeliverError::Overflow) => {
                    let push = DisconnectPush::new(DisconnectCode::SlowConsumer);
                    if session.disconnect(push, false) {
                        self.stats.slow_consumers.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
        self.stats.delivered.fetch_add(delivered, Ordering::Relaxed);
    }

    /// Ends every local subscription to `channel` with `unsubscribe` 2500
    /// (resubscribe with recovery): the stream has a gap history cannot
    /// fill. Subscriptions still being set up end once their reply is out.
    pub(crate) fn break_subscriptions(
        &self,
        members: &Members,
        channel: &str,
        broken: &mut Broken,
    ) {
        for session in members.values() {
            if let Some(member) = session.break_subscription(channel) {
                broken.push((session.id.clone(), member));
            }
        }
    }

    /// Leaves the channel for each broken subscription (presence, leave,
    /// membership), in spawned tasks.
    pub(crate) fn clean_up(&self, channel: &str, broken: Broken) {
        for (client, member) in broken {
            crate::subscribe::spawn_cleanup(self, client, channel, member);
        }
    }

    /// After a broker reconnect: hold `channel`'s live delivery and check
    /// its stream from history (channels with history only).
    pub(crate) fn resync(&self, channel: &str) {
        let since = {
            let mut shard = self.channels.shard(channel);
            let cursor = shard.get_mut(channel).and_then(|e| e.cursor.as_mut());
            cursor.and_then(StreamCursor::start_resync)
        };
        if let Some(since) = since {
            crate::repair::spawn(self, channel, since, None);
        }
    }

    /// The first subscriber's position: where this node stands in the
    /// stream if no live publication said so yet.
    pub(crate) fn observe(&self, channel: &str, position: &StreamPosition) {
        let mut shard = self.channels.shard(channel);
        if let Some(entry) = shard.get_mut(channel) {
            entry
                .cursor
                .get_or_insert_with(|| StreamCursor::new(position));
        }
    }
}
