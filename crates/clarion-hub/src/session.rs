//! Sessions: one logical client. The hub keeps a [`SessionState`] per
//! session for fan-out; the transport holds the [`Session`] handle.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use clarion_wire::{
    encode_push, encode_reply, ClientInfo, Data, DisconnectPush, Push, Reply, StreamPosition,
    UnsubscribeCode, UnsubscribePush,
};

use std::sync::Weak;
use std::time::Duration;

use clarion_wire::DisconnectCode;
use tokio::time::Instant;

use crate::broker::PresenceChange;
use crate::hub::HubInner;
use crate::queue::{Frame, Outgoing, Overflow, Queue};
use crate::rate::RateLimiter;

/// A connected client, as the transport sees it.
///
/// The transport feeds every frame it receives to [`handle`](Session::handle)
/// and writes out what [`recv`](Session::recv) returns until it returns
/// [`Outgoing::Close`] or `None`; when the connection ends, for whatever
/// reason, it calls [`close`](Session::close). Dropping a session without
/// `close` cleans up in a spawned task.
pub struct Session {
    pub(crate) state: Arc<SessionState>,
    pub(crate) hub: Arc<HubInner>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("client", &self.state.id)
            .field("user", &self.state.user)
            .finish_non_exhaustive()
    }
}

/// The hub's side of a session.
pub(crate) struct SessionState {
    pub(crate) id: Arc<str>,
    pub(crate) user: String,
    pub(crate) info: Option<Data>,
    pub(crate) queue: Queue,
    pub(crate) subs: Mutex<HashMap<String, Sub>>,
    /// When the connection token expires (unless refreshed).
    expires: Mutex<Option<Instant>>,
    /// Command rate limits.
    pub(crate) limiter: Mutex<RateLimiter>,
    closed: AtomicBool,
}

/// What leaving a channel needs to know about a subscription.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    /// This client as others see it in this channel.
    pub(crate) info: ClientInfo,
    /// The namespace tracks presence.
    pub(crate) presence: bool,
    /// The namespace sends join/leave.
    pub(crate) join_leave: bool,
    /// ... once per user: for its first connection in, its last out.
    pub(crate) join_leave_per_user: bool,
}

impl Member {
    /// Whether to push join/leave for a presence change of this client:
    /// always per client; per user only when it was the user's first in
    /// or last out (anonymous clients are all user `""`: each counts).
    pub(crate) fn announces(&self, change: Option<&PresenceChange>) -> bool {
        if !self.join_leave {
            return false;
        }
        let per_client = !self.join_leave_per_user || self.info.user.is_empty();
        per_client || change.is_none_or(|c| c.user_changed)
    }
}

/// One subscription of a session.
pub(crate) struct Sub {
    pub(crate) member: Member,
    phase: Phase,
    /// The last offset delivered and its epoch (channels with history).
    last: Option<(u64, String)>,
    /// When the subscription token expires (unless refreshed).
    pub(crate) expires: Option<Instant>,
    /// The task that ends the subscription at `expires`; stopped when the
    /// subscription goes.
    pub(crate) watcher: Option<Watcher>,
    /// The stream broke while the subscription was being set up: it ends
    /// (`unsubscribe` 2500) right after its reply.
    broken: bool,
}

/// Aborts a subscription's expiry watcher when dropped (unless disarmed).
pub(crate) struct Watcher(Option<tokio::task::AbortHandle>);

impl Watcher {
    pub(crate) fn new(handle: tokio::task::AbortHandle) -> Watcher {
        Watcher(Some(handle))
    }

    /// Lets the task run on when this is dropped.
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        if let Some(handle) = &self.0 {
            handle.abort();
        }
    }
}

enum Phase {
    /// Subscribing: live frames wait here until the reply is queued.
    Joining(Vec<(Option<(u64, String)>, Frame)>),
    Active,
}

/// Where a live frame sits in its channel's stream.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Delivery<'a> {
    /// Offset and epoch (publications in channels with history).
    pub(crate) offset: Option<(u64, &'a str)>,
}

pub(crate) enum DeliverError {
    /// The session's queue is full: a slow consumer.
    Overflow,
    /// The stream has a gap or a new epoch; the subscription was ended
    /// (an `unsubscribe` push queued) and needs cleaning up.
    Gap(Member),
}

/// A gap or a new epoch in a subscription's stream.
struct Gap;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Sub {
    pub(crate) fn new(member: Member) -> Sub {
        Sub {
            member,
            phase: Phase::Joining(Vec::new()),
            last: None,
            expires: None,
            watcher: None,
            broken: false,
        }
    }

    /// Accepts the next position: `Ok(false)` for one already delivered,
    /// `Err(Gap)` for a gap or another epoch.
    fn advance(&mut self, position: Option<(u64, &str)>) -> Result<bool, Gap> {
        let Some((offset, epoch)) = position else {
            return Ok(true);
        };
        match &mut self.last {
            Some((last, e)) if e == epoch => {
                if offset <= *last {
                    return Ok(false);
                }
                if offset != *last + 1 {
                    return Err(Gap);
                }
                *last = offset;
                Ok(true)
            }
            Some(_) => Err(Gap),
            None => {
                self.last = Some((offset, epoch.to_owned()));
                Ok(true)
            }
        }
    }
}

impl SessionState {
    pub(crate) fn new(
        id: Arc<str>,
        user: String,
        info: Option<Data>,
        queue: Queue,
        limiter: RateLimiter,
    ) -> SessionState {
        SessionState {
            id,
            user,
            info,
            queue,
            subs: Mutex::default(),
            expires: Mutex::new(None),
            limiter: Mutex::new(limiter),
            closed: AtomicBool::new(false),
        }
    }

    pub(crate) fn subs(&self) -> MutexGuard<'_, HashMap<String, Sub>> {
        lock(&self.subs)
    }

    pub(crate) fn client_info(&self, chan_info: Option<Data>) -> ClientInfo {
        ClientInfo {
            client: self.id.to_string(),
            user: self.user.clone(),
            info: self.info.clone(),
            chan_info,
        }
    }

    /// Ends the session (see [`Queue::close`]); false if it was already ending.
    pub(crate) fn disconnect(&self, push: DisconnectPush, flush: bool) -> bool {
        self.queue.close(push, flush)
    }

    /// Queues a reply; a full queue makes the session a slow consumer.
    pub(crate) fn reply(&self, reply: &Reply) {
        self.push(Frame::new(encode_reply(reply)));
    }

    fn push(&self, frame: Frame) {
        if self.queue.push(frame).is_err() {
            self.overflowed();
        }
    }

    pub(crate) fn overflowed(&self) {
        let push = DisconnectPush::new(clarion_wire::DisconnectCode::SlowConsumer);
        self.disconnect(push, false);
    }

    /// Delivers a live frame of `channel` (see [`Phase`]).
    pub(crate) fn deliver(
        &self,
        channel: &str,
        frame: &Frame,
        delivery: Delivery<'_>,
    ) -> Result<(), DeliverError> {
        let mut subs = self.subs();
        let Some(sub) = subs.get_mut(channel) else {
            return Ok(());
        };
        if let Phase::Joining(buffer) = &mut sub.phase {
            // Bounded like the queue it will be flushed into.
            if buffer.len() >= self.queue.max_frames() {
                return Err(DeliverError::Overflow);
            }
            let owned = delivery.offset.map(|(o, e)| (o, e.to_owned()));
            buffer.push((owned, frame.clone()));
            return Ok(());
        }
        match sub.advance(delivery.offset) {
            Ok(true) => self
                .queue
                .push(frame.clone())
                .map_err(|Overflow| DeliverError::Overflow),
            Ok(false) => Ok(()),
            Err(Gap) => Err(DeliverError::Gap(self.end_subscription(&mut subs, channel))),
        }
    }

    /// Removes a broken subscription (so later deliveries skip it) and
    /// tells the client to resubscribe with recovery.
    fn end_subscription(&self, subs: &mut HashMap<String, Sub>, channel: &str) -> Member {
        let member = subs.remove(channel).map(|s| s.member);
        let push = UnsubscribePush::new(channel, UnsubscribeCode::InsufficientState);
        self.push(Frame::new(encode_push(&Push::Unsubscribe(push))));
        member.expect("called for a subscription in the map")
    }

    /// Ends `channel`'s subscription because its stream has a gap history
    /// cannot fill: now (the `Member` to clean up), or, while it is still
    /// being set up, right after its reply.
    pub(crate) fn break_subscription(&self, channel: &str) -> Option<Member> {
        let mut subs = self.subs();
        let sub = subs.get_mut(channel)?;
        if let Phase::Joining(_) = sub.phase {
            sub.broken = true;
            return None;
        }
        Some(self.end_subscription(&mut subs, channel))
    }

    /// Ends `channel`'s subscription if its token has expired: removes it
    /// and queues `unsubscribe` 2501. `Err(next)`: not expired yet, check
    /// again at `next`; `Ok(None)`: gone or no expiry any more.
    pub(crate) fn expire_subscription(&self, channel: &str) -> Result<Option<Member>, Instant> {
        let mut subs = self.subs();
        let Some(expires) = subs.get(channel).and_then(|s| s.expires) else {
            return Ok(None);
        };
        if expires > Instant::now() {
            return Err(expires);
        }
        // The caller is the watcher: keep it running (no abort on drop).
        let member = subs.remove(channel).map(|mut s| {
            s.watcher.as_mut().map(Watcher::disarm);
            s.member
        });
        drop(subs);
        let push = UnsubscribePush::new(channel, UnsubscribeCode::Expired);
        self.push(Frame::new(encode_push(&Push::Unsubscribe(push))));
        Ok(member)
    }

    /// Queues `reply` and then, atomically with respect to live delivery,
    /// the frames that arrived while `channels` were subscribing (those
    /// after each channel's position). Returns channels that turned out
    /// broken (new epoch meanwhile) and need cleanup.
    pub(crate) fn activate(
        &self,
        reply: Frame,
        channels: &[(String, Option<StreamPosition>)],
    ) -> Vec<(String, Member)> {
        let mut subs = self.subs();
        if self.queue.push(reply).is_err() {
            drop(subs);
            self.overflowed();
            return Vec::new();
        }
        let mut broken = Vec::new();
        for (channel, position) in channels {
            let Some(sub) = subs.get_mut(channel) else {
                continue;
            };
            sub.last = position.as_ref().map(|p| (p.offset, p.epoch.clone()));
            let Phase::Joining(buffer) = std::mem::replace(&mut sub.phase, Phase::Active) else {
                continue;
            };
            let mut gap = sub.broken;
            for (pos, frame) in buffer.into_iter().take_while(|_| !gap) {
                match sub.advance(pos.as_ref().map(|(o, e)| (*o, e.as_str()))) {
                    Ok(true) => {
                        if self.queue.push(frame).is_err() {
                            drop(subs);
                            self.overflowed();
                            return broken;
                        }
                    }
                    Ok(false) => {}
                    Err(Gap) => {
                        gap = true;
                        break;
                    }
                }
            }
            if gap {
                broken.push((channel.clone(), self.end_subscription(&mut subs, channel)));
            }
        }
        broken
    }

    /// Sets (or clears) the connection token's expiry.
    pub(crate) fn set_ttl(&self, ttl: Option<Duration>) {
        *lock(&self.expires) = ttl.map(|t| Instant::now() + t);
    }

    pub(crate) fn has_expiry(&self) -> bool {
        self.expires_at().is_some()
    }

    fn expires_at(&self) -> Option<Instant> {
        *lock(&self.expires)
    }

    /// Marks the session closed; true the first time.
    pub(crate) fn mark_closed(&self) -> bool {
        !self.closed.swap(true, Ordering::AcqRel)
    }
}

impl Session {
    /// The client id.
    pub fn id(&self) -> &str {
        &self.state.id
    }

    /// The user id (empty for anonymous).
    pub fn user(&self) -> &str {
        &self.state.user
    }

    /// The channels this session is subscribed to.
    pub fn channels(&self) -> Vec<String> {
        let mut v: Vec<String> = self.state.subs().keys().cloned().collect();
        v.sort();
        v
    }

    /// The next frame to write, waiting for one; [`Outgoing::Close`] once
    /// the session ends, then `None`.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: a frame is taken from the queue only when this returns.
    pub async fn recv(&self) -> Option<Outgoing> {
        self.state.queue.recv().await
    }

    /// The next frame if one is ready (to batch several into one write).
    pub fn try_recv(&self) -> Option<Outgoing> {
        self.state.queue.try_recv()
    }

    /// Frames and bytes waiting in the outgoing queue.
    pub fn queued(&self) -> (usize, usize) {
        self.state.queue.len()
    }

    /// Ends the session from the server side: what is queued is sent, then
    /// the `disconnect` push, then [`Outgoing::Close`].
    pub fn disconnect(&self, push: DisconnectPush) {
        self.state.disconnect(push, true);
    }

    /// Whether the session is ending (a disconnect is queued).
    pub fn is_closing(&self) -> bool {
        self.state.queue.closing().is_some()
    }

    /// Leaves every channel (presence, leave pushes, broker
    /// unsubscriptions) and forgets the session. Idempotent.
    pub async fn close(&self) {
        crate::subscribe::close_session(&self.hub, &self.state).await;
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if self.state.closed.load(Ordering::Acquire) {
            return;
        }
        let (hub, state) = (self.hub.clone(), self.state.clone());
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move { crate::subscribe::close_session(&hub, &state).await });
        }
    }
}

/// Disconnects the session with 4003 (expired) when its connection token
/// expires without a `refresh`. Ends with the session.
pub(crate) async fn watch_expiry(state: Weak<SessionState>) {
    loop {
        let at = {
            let Some(s) = state.upgrade() else { return };
            if s.closed.load(Ordering::Acquire) || s.queue.closing().is_some() {
                return;
            }
            let Some(at) = s.expires_at() else { return };
            at
        };
        tokio::time::sleep_until(at).await;
        let Some(s) = state.upgrade() else { return };
        if s.expires_at().is_some_and(|e| e <= Instant::now()) {
            s.disconnect(DisconnectPush::new(DisconnectCode::Expired), true);
            return;
        }
    }
}
