//! Client commands: connecting a session and handling its frames.

use std::collections::BTreeMap;
use std::sync::Arc;

use clarion_wire::{
    decode_frame, encode_reply, ChannelRequest, Command, ConnectRequest, ConnectResult,
    DecodeError, DisconnectCode, DisconnectPush, Empty, ErrorCode, HistoryRequest, Limits,
    PublishRequest, RefreshResult, Reply, ReplyError, ReplyResult, Request, SubRefreshRequest,
    SubscribeRequest, PROTOCOL_VERSION,
};
use tokio::time::Instant;

use crate::auth::{Credentials, RefreshCheck};
use crate::channel_ops;
use crate::hub::{Hub, HubInner};
use crate::queue::{Frame, Queue};
use crate::rate::{RateLimiter, Verdict};
use crate::session::{Session, SessionState};
use crate::subscribe::{self, spawn_cleanup, Origin};

/// The longest close reason that fits a close frame (125 - 2 bytes).
const MAX_REASON: usize = 123;

impl Hub {
    /// The frame limits clients are held to.
    pub fn limits(&self) -> Limits {
        Limits {
            max_frame_bytes: self.inner.config.max_frame_bytes,
            max_commands: self.inner.config.max_commands_per_frame,
        }
    }

    /// Reads a connection's first frame, which must be exactly one
    /// `connect` command. The error is what to close the connection with.
    pub fn decode_connect(&self, frame: &[u8]) -> Result<(u32, ConnectRequest), DisconnectPush> {
        let mut commands =
            decode_frame(frame, &self.limits()).map_err(|e| decode_disconnect(&e))?;
        let first = match (commands.pop(), commands.is_empty()) {
            (Some(first), true) => first,
            _ => return Err(bad_request("the first frame must hold only connect")),
        };
        match first.map_err(|e| decode_disconnect(&e))? {
            Command {
                id,
                request: Request::Connect(request),
            } => Ok((id, request)),
            _ => Err(bad_request("the first command must be connect")),
        }
    }

    /// Creates a session for already-verified `credentials`, subscribes it
    /// to the credentials' channels (recovering from `request.subs`), and
    /// queues the `connect` reply to command `command_id` as its first
    /// frame. Channels in unknown namespaces are left out of `subs`.
    /// A user already holding `max_connections_per_user` sessions on this
    /// node is refused with the `4505` push to close with.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: a future dropped mid-connect (an HTTP request that went
    /// away) leaves no session behind; the half-made one leaves its
    /// channels in a spawned task.
    pub async fn connect(
        &self,
        credentials: Credentials,
        command_id: u32,
        request: &ConnectRequest,
    ) -> Result<Session, DisconnectPush> {
        let hub = &self.inner;
        let state = Arc::new(SessionState::new(
            hub.new_client_id(),
            credentials.user,
            credentials.info,
            Queue::new(hub.config.queue),
            RateLimiter::new(&hub.config.rate_limits),
        ));
        if !hub.register(&state) {
            return Err(DisconnectPush {
                reason: "too many connections for this user".to_owned(),
                ..DisconnectPush::new(DisconnectCode::ConnectionLimit)
            });
        }
        // From here, dropping `session` (also by cancellation) cleans up.
        let session = Session {
            state: state.clone(),
            hub: hub.clone(),
        };
        if credentials.ttl.is_some() {
            state.set_ttl(credentials.ttl);
            tokio::spawn(crate::session::watch_expiry(Arc::downgrade(&state)));
        }
        let mut subs = BTreeMap::new();
        let mut positions = Vec::new();
        for channel in &credentials.channels {
            let origin = Origin::Server {
                channel,
                recover: request.subs.get(channel),
            };
            if let Ok((result, position)) = subscribe::join(hub, &state, origin).await {
                subs.insert(channel.clone(), result);
                positions.push((channel.clone(), position));
            }
        }
        let result = ConnectResult {
            client: state.id.to_string(),
            version: PROTOCOL_VERSION.to_owned(),
            subs,
            ttl: credentials.ttl.map(|t| t.as_secs()),
            ping: hub.config.client_ping_interval,
        };
        let frame = Frame::new(encode_reply(&Reply::ok(command_id, result)));
        for (channel, member) in state.activate(frame, &positions) {
            spawn_cleanup(hub, state.id.clone(), &channel, member);
        }
        Ok(session)
    }
}

fn bad_request(reason: &str) -> DisconnectPush {
    DisconnectPush {
        reason: reason.to_owned(),
        ..DisconnectPush::new(DisconnectCode::BadRequest)
    }
}

fn decode_disconnect(e: &DecodeError) -> DisconnectPush {
    let mut reason = e.to_string();
    if reason.len() > MAX_REASON {
        let mut cut = MAX_REASON;
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        reason.truncate(cut);
    }
    DisconnectPush {
        reason,
        ..DisconnectPush::new(e.disconnect_code())
    }
}

impl Session {
    /// Handles one frame from the client: each command's reply (and any
    /// pushes) go to the outgoing queue. A frame that is not valid protocol
    /// ends the session: the `disconnect` push is queued and returned.
    ///
    /// # Cancel safety
    ///
    /// Not cancel-safe: dropping the future mid-frame may leave a command
    /// half done (a subscription without its reply). Run it to completion.
    pub async fn handle(&self, frame: &[u8]) -> Result<(), DisconnectPush> {
        if let Some(closing) = self.state.queue.closing() {
            return Err(closing);
        }
        let limits = Hub {
            inner: self.hub.clone(),
        }
        .limits();
        let commands = decode_frame(frame, &limits).map_err(|e| self.fail(&e))?;
        let fatal = commands.iter().filter_map(|c| c.as_ref().err());
        if let Some(e) = fatal.clone().find(|e| e.id().is_none()) {
            return Err(self.fail(e));
        }
        for command in commands {
            match command {
                Ok(command) => match self.admit(&command) {
                    Verdict::Allow => dispatch(&self.hub, &self.state, command).await,
                    Verdict::Refuse => self.state.reply(&Reply::error(command.id, too_fast())),
                    Verdict::Disconnect => {
                        let push = DisconnectPush {
                            reason: "commands over the rate limit after 429 replies".to_owned(),
                            ..DisconnectPush::new(DisconnectCode::TooManyRequests)
                        };
                        self.state.disconnect(push, true);
                    }
                },
                Err(e) => {
                    if let Some(reply) = e.reply() {
                        self.state.reply(&reply);
                    }
                }
            }
            if let Some(closing) = self.state.queue.closing() {
                return Err(closing);
            }
        }
        Ok(())
    }

    /// Takes a token from the command's rate-limit bucket.
    fn admit(&self, command: &Command) -> Verdict {
        let publish = matches!(command.request, Request::Publish(_));
        let mut limiter = self.state.limiter.lock().unwrap_or_else(|e| e.into_inner());
        limiter.check(publish)
    }

    fn fail(&self, e: &DecodeError) -> DisconnectPush {
        let push = decode_disconnect(e);
        self.state.disconnect(push.clone(), true);
        push
    }
}

async fn dispatch(hub: &Arc<HubInner>, state: &Arc<SessionState>, command: Command) {
    let id = command.id;
    let outcome: Result<ReplyResult, ReplyError> = match command.request {
        Request::Subscribe(req) => return subscribe_command(hub, state, id, &req).await,
        Request::Connect(_) => Err(ReplyError::with_message(
            ErrorCode::BadRequest,
            "already connected",
        )),
        Request::Unsubscribe(req) => subscribe::unsubscribe(hub, state, &req.channel)
            .await
            .map(|()| Empty {}.into()),
        Request::Publish(req) => publish(hub, state, req).await.map(Into::into),
        Request::Presence(req) => presence(hub, state, &req).await.map(Into::into),
        Request::PresenceStats(req) => presence_stats(hub, state, &req).await.map(Into::into),
        Request::History(req) => history(hub, state, req).await.map(Into::into),
        Request::Ping => Ok(Empty {}.into()),
        Request::Refresh(req) => refresh(hub, state, &req.token).map(Into::into),
        Request::SubRefresh(req) => sub_refresh(hub, state, &req).map(Into::into),
        _ => Err(ErrorCode::MethodNotFound.into()),
    };
    state.reply(&Reply { id, outcome });
}

async fn subscribe_command(
    hub: &HubInner,
    state: &Arc<SessionState>,
    id: u32,
    req: &SubscribeRequest,
) {
    match subscribe::join(hub, state, Origin::Client(req)).await {
        Ok((result, position)) => {
            if result.ttl.is_some() {
                subscribe::watch_expiry(hub, state, &req.channel);
            }
            let frame = Frame::new(encode_reply(&Reply::ok(id, result)));
            let channels = [(req.channel.clone(), position)];
            for (channel, member) in state.activate(frame, &channels) {
                spawn_cleanup(hub, state.id.clone(), &channel, member);
            }
        }
        Err(e) => state.reply(&Reply::error(id, e)),
    }
}

fn too_fast() -> ReplyError {
    ReplyError::with_message(
        ErrorCode::TooManyRequests,
        "too many requests: slow down and retry",
    )
}

fn denied(message: &str) -> ReplyError {
    ReplyError::with_message(ErrorCode::PermissionDenied, message)
}

async fn publish(
    hub: &HubInner,
    state: &SessionState,
    req: PublishRequest,
) -> Result<clarion_wire::PublishResult, ReplyError> {
    let ns = hub.namespace(&req.channel)?;
    if !ns.allow_publish {
        return Err(denied("clients may not publish here"));
    }
    if state.user.is_empty() && !ns.allow_anonymous {
        return Err(denied("anonymous users may not publish here"));
    }
    // Writing needs the right to read: where subscribing takes a token,
    // so does publishing (through the subscription it made).
    if ns.require_subscription_token && !state.subs().contains_key(&req.channel) {
        return Err(denied(
            "publishing here needs a subscription made with a subscription token",
        ));
    }
    let info = state.client_info(None);
    let key = req.idempotency_key;
    channel_ops::publish(hub, &req.channel, req.data, Some(info), key).await
}

/// Presence and history are for subscribers of the channel.
fn subscribed(hub: &HubInner, state: &SessionState, channel: &str) -> Result<(), ReplyError> {
    hub.namespace(channel)?;
    if !state.subs().contains_key(channel) {
        return Err(ErrorCode::NotSubscribed.into());
    }
    Ok(())
}

async fn presence(
    hub: &HubInner,
    state: &SessionState,
    req: &ChannelRequest,
) -> Result<clarion_wire::PresenceResult, ReplyError> {
    subscribed(hub, state, &req.channel)?;
    channel_ops::presence(hub, &req.channel).await
}

async fn presence_stats(
    hub: &HubInner,
    state: &SessionState,
    req: &ChannelRequest,
) -> Result<clarion_wire::PresenceStatsResult, ReplyError> {
    subscribed(hub, state, &req.channel)?;
    channel_ops::presence_stats(hub, &req.channel).await
}

async fn history(
    hub: &HubInner,
    state: &SessionState,
    req: HistoryRequest,
) -> Result<clarion_wire::HistoryResult, ReplyError> {
    let ns = hub.namespace(&req.channel)?;
    if ns.has_history() && !ns.allow_history {
        return Err(denied("clients may not read history here"));
    }
    subscribed(hub, state, &req.channel)?;
    let limit = req.limit.unwrap_or(0);
    channel_ops::history(hub, &req.channel, limit, req.since, req.reverse).await
}

fn refresh(hub: &HubInner, state: &SessionState, token: &str) -> Result<RefreshResult, ReplyError> {
    let Some(verifier) = &hub.verifier else {
        return Err(ErrorCode::NotAvailable.into());
    };
    let check = RefreshCheck {
        client: &state.id,
        user: &state.user,
        token,
    };
    let ttl = verifier.verify_refresh(&check)?;
    // The watcher (if any) sees the new expiry when it wakes; a session
    // that had none and gets one now starts watching.
    let watching = state.has_expiry();
    state.set_ttl(ttl);
    if ttl.is_some() && !watching {
        if let Some(state) = hub.session(&state.id) {
            tokio::spawn(crate::session::watch_expiry(Arc::downgrade(&state)));
        }
    }
    Ok(RefreshResult {
        ttl: ttl.map(|t| t.as_secs()),
    })
}

/// Replaces a subscription's token: the new one must be valid for this
/// channel and user; its expiry replaces the old one (none: no expiry).
fn sub_refresh(
    hub: &HubInner,
    state: &Arc<SessionState>,
    req: &SubRefreshRequest,
) -> Result<RefreshResult, ReplyError> {
    hub.namespace(&req.channel)?;
    if !state.subs().contains_key(&req.channel) {
        return Err(ErrorCode::NotSubscribed.into());
    }
    let grant = subscribe::verify_subscription_token(hub, state, &req.channel, &req.token)?;
    let expires = grant.ttl.map(|ttl| Instant::now() + ttl);
    let watching = {
        let mut subs = state.subs();
        let Some(sub) = subs.get_mut(&req.channel) else {
            return Err(ErrorCode::NotSubscribed.into());
        };
        sub.expires = expires;
        sub.watcher.is_some()
    };
    if expires.is_some() && !watching {
        subscribe::watch_expiry(hub, state, &req.channel);
    }
    Ok(RefreshResult {
        ttl: grant.ttl.map(|t| t.as_secs()),
    })
}
