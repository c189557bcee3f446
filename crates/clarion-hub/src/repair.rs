//! Repairing a channel's live stream from history, on the server, without
//! disconnecting anyone.
//!
//! A gap (a live publication past the next offset) or a broker reconnect
//! holds the channel's live delivery ([`StreamCursor`](crate::stream)),
//! reads what is missing from the broker's history and delivers it in
//! order, then releases what was held. Only when history cannot fill the
//! gap (trimmed, expired, a new epoch, the broker unreachable) do the
//! local subscribers get `unsubscribe` 2500 and recover on their own
//! (`recovered: false` if the stream is gone): never a silent gap.

use std::sync::atomic::Ordering;
use std::time::Duration;

use clarion_wire::{Publication, StreamPosition};
use tokio::time::Instant;

use crate::broker::{BrokerError, HistoryPage, HistoryQuery};
use crate::delivery::Broken;
use crate::hub::HubInner;

/// Attempts at reading history when the broker is briefly unavailable.
const ATTEMPTS: u32 = 4;
/// The first retry's delay; each next one doubles (100 + 200 + 400 ms).
const FIRST_RETRY: Duration = Duration::from_millis(100);

/// What history says about the missing range.
enum Outcome {
    /// Every missing publication, in order.
    Filled {
        publications: Vec<Publication>,
        epoch: String,
    },
    /// Some are gone; the stream is now at this position (if known).
    Lost(Option<StreamPosition>),
}

/// Repairs `channel` after `since` (up to the held publication at
/// `until`, or the stream's top for a resync) in a spawned task.
pub(crate) fn spawn(hub: &HubInner, channel: &str, since: StreamPosition, until: Option<u64>) {
    let Some(hub) = hub.myself() else {
        return;
    };
    let channel = channel.to_owned();
    tokio::spawn(async move { run(&hub, &channel, since, until).await });
}

async fn run(hub: &HubInner, channel: &str, mut since: StreamPosition, mut until: Option<u64>) {
    loop {
        let started = Instant::now();
        let outcome = read_missing(hub, channel, &since, until).await;
        apply(hub, channel, outcome);
        let micros = started.elapsed().as_micros() as u64;
        hub.stats.repair_micros.fetch_add(micros, Ordering::Relaxed);
        match release(hub, channel) {
            Some((next_since, next_until)) => (since, until) = (next_since, Some(next_until)),
            None => return,
        }
    }
}

async fn read_missing(
    hub: &HubInner,
    channel: &str,
    since: &StreamPosition,
    until: Option<u64>,
) -> Outcome {
    let options = hub
        .namespace(channel)
        .ok()
        .and_then(HubInner::history_options);
    let Some(options) = options else {
        return Outcome::Lost(None);
    };
    // The last missing offset (the held one comes after it).
    let end = until.map(|u| u.saturating_sub(1));
    let missing = end.map_or(options.size, |e| e.saturating_sub(since.offset) as usize);
    let query = HistoryQuery {
        since: Some(since.clone()),
        limit: missing.clamp(1, options.size),
        reverse: false,
    };
    let Ok(page) = read_with_retries(hub, channel, &query, options).await else {
        return Outcome::Lost(None);
    };
    if page.position.epoch != since.epoch {
        return Outcome::Lost(Some(page.position));
    }
    let end = end.unwrap_or(page.position.offset);
    let publications: Vec<Publication> = page
        .publications
        .into_iter()
        .take_while(|p| p.offset.is_some_and(|o| o <= end))
        .collect();
    let contiguous = publications.len() as u64 == end.saturating_sub(since.offset)
        && publications
            .iter()
            .zip(since.offset + 1..)
            .all(|(p, o)| p.offset == Some(o));
    match contiguous {
        true => Outcome::Filled {
            publications,
            epoch: since.epoch.clone(),
        },
        false => Outcome::Lost(Some(page.position)),
    }
}

async fn read_with_retries(
    hub: &HubInner,
    channel: &str,
    query: &HistoryQuery,
    options: crate::broker::HistoryOptions,
) -> Result<HistoryPage, BrokerError> {
    let mut delay = FIRST_RETRY;
    let mut attempt = 1;
    loop {
        match hub.broker.history(channel, query.clone(), options).await {
            Err(e) if e.is_temporary() && attempt < ATTEMPTS => {
                tokio::time::sleep(delay).await;
                delay *= 2;
                attempt += 1;
            }
            result => return result,
        }
    }
}

/// Delivers what history filled, or ends the local subscriptions.
fn apply(hub: &HubInner, channel: &str, outcome: Outcome) {
    let mut broken = Broken::new();
    {
        let mut shard = hub.channels.shard(channel);
        let Some(entry) = shard.get_mut(channel) else {
            return;
        };
        match outcome {
            Outcome::Filled {
                publications,
                epoch,
            } => {
                if !publications.is_empty() {
                    hub.stats.gaps_repaired.fetch_add(1, Ordering::Relaxed);
                }
                for publication in &publications {
                    if let (Some(cursor), Some(offset)) = (&mut entry.cursor, publication.offset) {
                        cursor.repaired(offset);
                    }
                    hub.deliver_publication(
                        channel,
                        &entry.members,
                        publication,
                        &epoch,
                        &mut broken,
                    );
                }
            }
            Outcome::Lost(position) => {
                hub.stats.gaps_unrecovered.fetch_add(1, Ordering::Relaxed);
                if let Some(cursor) = &mut entry.cursor {
                    if let Some(position) = &position {
                        cursor.reset(position);
                    }
                    cursor.skip_gap();
                }
                hub.break_subscriptions(&entry.members, channel, &mut broken);
            }
        }
    }
    hub.clean_up(channel, broken);
}

/// Delivers what was held while repairing; `Some` if it holds another gap.
fn release(hub: &HubInner, channel: &str) -> Option<(StreamPosition, u64)> {
    let mut broken = Broken::new();
    let next = {
        let mut shard = hub.channels.shard(channel);
        let entry = shard.get_mut(channel)?;
        let cursor = entry.cursor.as_mut()?;
        let (deliver, next) = match cursor.release() {
            Ok(deliver) => (deliver, None),
            Err((deliver, since, until)) => (deliver, Some((since, until))),
        };
        for held in &deliver {
            let publication = &held.publication;
            hub.deliver_publication(
                channel,
                &entry.members,
                publication,
                &held.epoch,
                &mut broken,
            );
        }
        next
    };
    hub.clean_up(channel, broken);
    next
}
