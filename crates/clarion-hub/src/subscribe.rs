//! Joining and leaving channels: permission checks, presence, join/leave,
//! and recovery from history.

use std::sync::Arc;

use clarion_wire::{ErrorCode, ReplyError, StreamPosition, SubscribeRequest, SubscribeResult};

use crate::auth::{SubscriptionCheck, SubscriptionGrant};
use crate::broker::{BrokerError, HistoryPage, HistoryQuery};
use crate::hub::HubInner;
use crate::session::{Member, SessionState, Sub, Watcher};
use tokio::time::Instant;

/// How a subscription was asked for.
pub(crate) enum Origin<'a> {
    /// By the client: namespace permissions and tokens apply.
    Client(&'a SubscribeRequest),
    /// By the connection token's `channels` claim: already granted.
    Server {
        channel: &'a str,
        recover: Option<&'a StreamPosition>,
    },
}

impl Origin<'_> {
    fn channel(&self) -> &str {
        match self {
            Origin::Client(req) => &req.channel,
            Origin::Server { channel, .. } => channel,
        }
    }

    fn recover(&self) -> Option<StreamPosition> {
        match self {
            Origin::Client(req) => req.recover_from(),
            Origin::Server { recover, .. } => recover.cloned(),
        }
    }
}

/// A broker failure as the client's error (see `From<BrokerError>`).
pub(crate) fn unavailable(e: BrokerError) -> ReplyError {
    ReplyError::from(e)
}

/// Subscribes `session` (the subscription stays in its joining phase:
/// live frames are buffered until [`SessionState::activate`]). Returns the
/// result and the position live delivery continues from.
pub(crate) async fn join(
    hub: &HubInner,
    session: &Arc<SessionState>,
    origin: Origin<'_>,
) -> Result<(SubscribeResult, Option<StreamPosition>), ReplyError> {
    let channel = origin.channel();
    let ns = hub.namespace(channel)?.clone();
    let grant = match &origin {
        Origin::Client(req) => authorize(hub, session, &ns, req)?,
        Origin::Server { .. } => SubscriptionGrant::default(),
    };
    let chan_info = grant.info;
    let member = Member {
        info: session.client_info(chan_info),
        presence: ns.presence,
        join_leave: ns.join_leave,
        join_leave_per_user: ns.join_leave_per_user,
    };
    {
        let mut subs = session.subs();
        if subs.contains_key(channel) {
            return Err(ErrorCode::AlreadySubscribed.into());
        }
        if subs.len() >= hub.config.max_subscriptions {
            return Err(ReplyError::with_message(
                ErrorCode::LimitExceeded,
                "too many subscriptions",
            ));
        }
        let mut sub = Sub::new(member.clone());
        sub.expires = grant.ttl.map(|ttl| Instant::now() + ttl);
        subs.insert(channel.to_owned(), sub);
    }
    match setup(hub, session, channel, &member, origin.recover(), &ns).await {
        Ok((mut result, position)) => {
            result.ttl = grant.ttl.map(|ttl| ttl.as_secs());
            Ok((result, position))
        }
        Err(e) => {
            session.subs().remove(channel);
            leave(hub, &session.id, channel, &member).await;
            Err(e)
        }
    }
}

fn authorize(
    hub: &HubInner,
    session: &SessionState,
    ns: &crate::config::NamespaceOptions,
    req: &SubscribeRequest,
) -> Result<SubscriptionGrant, ReplyError> {
    if session.user.is_empty() && !ns.allow_anonymous {
        return Err(ReplyError::with_message(
            ErrorCode::PermissionDenied,
            "anonymous users may not subscribe here",
        ));
    }
    let Some(token) = &req.token else {
        if ns.require_subscription_token {
            return Err(ReplyError::with_message(
                ErrorCode::PermissionDenied,
                "subscription token required",
            ));
        }
        return Ok(SubscriptionGrant::default());
    };
    verify_subscription_token(hub, session, &req.channel, token)
}

/// Checks a subscription token for `channel` (on subscribe and `sub_refresh`).
pub(crate) fn verify_subscription_token(
    hub: &HubInner,
    session: &SessionState,
    channel: &str,
    token: &str,
) -> Result<SubscriptionGrant, ReplyError> {
    let Some(verifier) = &hub.verifier else {
        return Err(ReplyError::with_message(
            ErrorCode::Unauthorized,
            "subscription tokens are not accepted",
        ));
    };
    let check = SubscriptionCheck {
        client: &session.id,
        user: &session.user,
        channel,
        token,
    };
    verifier.verify_subscription(&check)
}

/// Ends `channel`'s subscription when its token expires (unless refreshed
/// meanwhile); the task is aborted if the subscription goes first.
pub(crate) fn watch_expiry(hub: &HubInner, session: &Arc<SessionState>, channel: &str) {
    let Some(hub) = hub.myself() else {
        return;
    };
    let weak = Arc::downgrade(session);
    let owned = channel.to_owned();
    let task = tokio::spawn(async move {
        loop {
            let outcome = match weak.upgrade() {
                Some(session) => session.expire_subscription(&owned),
                None => return,
            };
            match outcome {
                Err(next) => tokio::time::sleep_until(next).await,
                Ok(None) => return,
                Ok(Some(member)) => {
                    let Some(session) = weak.upgrade() else {
                        return;
                    };
                    return leave(&hub, &session.id, &owned, &member).await;
                }
            }
        }
    });
    // A subscription already gone is noticed by the task itself.
    if let Some(sub) = session.subs().get_mut(channel) {
        sub.watcher = Some(Watcher::new(task.abort_handle()));
    }
}

async fn setup(
    hub: &HubInner,
    session: &Arc<SessionState>,
    channel: &str,
    member: &Member,
    recover: Option<StreamPosition>,
    ns: &crate::config::NamespaceOptions,
) -> Result<(SubscribeResult, Option<StreamPosition>), ReplyError> {
    hub.add_member(channel, session);
    // Also for later members: returns once the node's subscription is on,
    // so the history read below cannot miss a publication.
    hub.sync_broker_subscription(channel)
        .await
        .map_err(unavailable)?;
    let mut change = None;
    if member.presence {
        let ttl = hub.config.presence_ttl;
        let add = hub.broker.add_presence(channel, member.info.clone(), ttl);
        change = Some(add.await.map_err(unavailable)?);
    }
    if member.announces(change.as_ref()) {
        let join = hub.broker.publish_join(channel, member.info.clone());
        join.await.map_err(unavailable)?;
    }
    let Some(options) = HubInner::history_options(ns) else {
        return Ok((SubscribeResult::default(), None));
    };
    let query = HistoryQuery {
        since: recover.clone(),
        limit: if recover.is_some() { options.size } else { 0 },
        reverse: false,
    };
    let page = hub.broker.history(channel, query, options).await;
    let page = page.map_err(unavailable)?;
    let position = page.position.clone();
    hub.observe(channel, &position);
    let mut result = SubscribeResult {
        recoverable: true,
        offset: Some(position.offset),
        epoch: Some(position.epoch.clone()),
        ..SubscribeResult::default()
    };
    if let Some(since) = recover {
        // A reply the session's queue could not hold would cut the client
        // off (4001) on every reconnect: beyond half the queue, recovery
        // is refused instead, and the client reloads its state.
        let fits = recovered_bytes(&page) <= hub.config.queue.max_bytes / 2;
        let complete = fits && is_complete(&since, &page);
        result.recovered = Some(complete);
        if complete {
            result.publications = page.publications;
        }
    }
    Ok((result, Some(position)))
}

/// About how many bytes the publications of `page` take in a reply.
fn recovered_bytes(page: &HistoryPage) -> usize {
    const PER_PUBLICATION: usize = 64; // offset, info, punctuation
    page.publications
        .iter()
        .map(|p| p.data.len() + PER_PUBLICATION)
        .sum()
}

/// Whether `page` holds every publication after `since`: same epoch, and
/// exactly the offsets `since + 1 ..= top`, none trimmed or expired.
pub(crate) fn is_complete(since: &StreamPosition, page: &HistoryPage) -> bool {
    let top = &page.position;
    if top.epoch != since.epoch || since.offset > top.offset {
        return false;
    }
    let missed = top.offset - since.offset;
    page.publications.len() as u64 == missed
        && page
            .publications
            .iter()
            .zip(since.offset + 1..)
            .all(|(p, o)| p.offset == Some(o))
}

/// Undoes a membership: local member, broker subscription, presence,
/// leave push. Broker errors are ignored: presence entries expire anyway.
pub(crate) async fn leave(hub: &HubInner, client: &str, channel: &str, member: &Member) {
    if hub.remove_member(channel, client) {
        // Errors are ignored: the broker drops a lost connection's
        // subscriptions anyway.
        let _ = hub.sync_broker_subscription(channel).await;
    }
    let mut change = None;
    if member.presence {
        change = hub.broker.remove_presence(channel, client).await.ok();
    }
    if member.announces(change.as_ref()) {
        let _ = hub.broker.publish_leave(channel, member.info.clone()).await;
    }
}

/// Unsubscribes on the client's request.
pub(crate) async fn unsubscribe(
    hub: &HubInner,
    session: &SessionState,
    channel: &str,
) -> Result<(), ReplyError> {
    let sub = session.subs().remove(channel);
    let Some(sub) = sub else {
        return Err(ErrorCode::NotSubscribed.into());
    };
    leave(hub, &session.id, channel, &sub.member).await;
    Ok(())
}

/// Cleans up after a subscription that live delivery found broken.
pub(crate) fn spawn_cleanup(hub: &HubInner, client: Arc<str>, channel: &str, member: Member) {
    let Some(hub) = hub.myself() else {
        return;
    };
    let channel = channel.to_owned();
    tokio::spawn(async move { leave(&hub, &client, &channel, &member).await });
}

/// Leaves every channel and forgets the session (idempotent).
pub(crate) async fn close_session(hub: &HubInner, session: &SessionState) {
    if !session.mark_closed() {
        return;
    }
    let subs: Vec<_> = session.subs().drain().collect();
    for (channel, sub) in subs {
        leave(hub, &session.id, &channel, &sub.member).await;
    }
    hub.unregister(session);
}
