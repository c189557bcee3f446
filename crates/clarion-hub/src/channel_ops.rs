//! Channel operations shared by client commands and the server API:
//! publish, presence, presence stats and history.

use clarion_wire::{
    ClientInfo, Data, ErrorCode, HistoryResult, PresenceResult, PresenceStatsResult, PublishResult,
    ReplyError, StreamPosition,
};

use crate::broker::{HistoryQuery, NewPublication};
use crate::config::NamespaceOptions;
use crate::hub::HubInner;
use crate::subscribe::unavailable;

/// Publishes into `channel` (no permission checks: callers do those).
pub(crate) async fn publish(
    hub: &HubInner,
    channel: &str,
    data: Data,
    info: Option<ClientInfo>,
    idempotency_key: Option<String>,
) -> Result<PublishResult, ReplyError> {
    let ns = hub.namespace(channel)?;
    let max_depth = hub.config.max_data_depth;
    if data.depth() > max_depth {
        let message = format!("data nested deeper than {max_depth} levels");
        return Err(ReplyError::with_message(ErrorCode::BadRequest, message));
    }
    let history = HubInner::history_options(ns);
    let publication = NewPublication {
        data,
        info,
        idempotency_key,
    };
    let position = hub.broker.publish(channel, publication, history).await;
    let position = position.map_err(unavailable)?;
    Ok(PublishResult {
        offset: position.as_ref().map(|p| p.offset),
        epoch: position.map(|p| p.epoch),
    })
}

fn presence_on(ns: &NamespaceOptions) -> Result<(), ReplyError> {
    if !ns.presence {
        return Err(ReplyError::with_message(
            ErrorCode::NotAvailable,
            "presence is off in this namespace",
        ));
    }
    Ok(())
}

/// Who is in `channel`, sorted by client id.
pub(crate) async fn presence(hub: &HubInner, channel: &str) -> Result<PresenceResult, ReplyError> {
    presence_on(hub.namespace(channel)?)?;
    let mut clients = hub.broker.presence(channel).await.map_err(unavailable)?;
    clients.sort_by(|a, b| a.client.cmp(&b.client));
    Ok(PresenceResult { clients })
}

/// Client and user counts of `channel`.
pub(crate) async fn presence_stats(
    hub: &HubInner,
    channel: &str,
) -> Result<PresenceStatsResult, ReplyError> {
    presence_on(hub.namespace(channel)?)?;
    let stats = hub.broker.presence_stats(channel).await;
    let stats = stats.map_err(unavailable)?;
    Ok(PresenceStatsResult {
        num_clients: stats.num_clients,
        num_users: stats.num_users,
    })
}

/// A page of `channel`'s history; `limit` is capped at the history size.
pub(crate) async fn history(
    hub: &HubInner,
    channel: &str,
    limit: u32,
    since: Option<StreamPosition>,
    reverse: bool,
) -> Result<HistoryResult, ReplyError> {
    let ns = hub.namespace(channel)?;
    let Some(options) = HubInner::history_options(ns) else {
        return Err(ReplyError::with_message(
            ErrorCode::NotAvailable,
            "history is off in this namespace",
        ));
    };
    let query = HistoryQuery {
        since,
        limit: (limit as usize).min(options.size),
        reverse,
    };
    let page = hub.broker.history(channel, query, options).await;
    let page = page.map_err(unavailable)?;
    Ok(HistoryResult {
        publications: page.publications,
        offset: page.position.offset,
        epoch: page.position.epoch,
    })
}
