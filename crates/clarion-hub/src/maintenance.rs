//! Background work of a hub: refreshing presence entries of live sessions
//! before they expire.

use std::sync::Weak;

use crate::broker::PresenceEntry;
use crate::hub::HubInner;

/// Presence entries refreshed per broker call: one round trip each, and
/// small enough that one call never holds a backend for long.
const REFRESH_BATCH: usize = 1000;

/// Runs until the hub is dropped.
pub(crate) async fn run(hub: Weak<HubInner>) {
    let period = match hub.upgrade() {
        Some(hub) => hub.config.presence_ttl / 3,
        None => return,
    };
    loop {
        tokio::time::sleep(period).await;
        let Some(hub) = hub.upgrade() else { return };
        refresh_presence(&hub).await;
    }
}

/// Re-adds every presence entry of every local session (one pass), in
/// batches.
pub(crate) async fn refresh_presence(hub: &HubInner) {
    let entries: Vec<_> = {
        let reg = hub.registry();
        reg.sessions
            .values()
            .flat_map(|s| {
                s.subs()
                    .iter()
                    .filter(|(_, sub)| sub.member.presence)
                    .map(|(channel, sub)| PresenceEntry {
                        channel: channel.clone(),
                        info: sub.member.info.clone(),
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let ttl = hub.config.presence_ttl;
    for batch in entries.chunks(REFRESH_BATCH) {
        // A failure is retried on the next pass, before the entries expire.
        let _ = hub.broker.add_presence_batch(batch, ttl).await;
    }
}
