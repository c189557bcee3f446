//! Background work of a hub: refreshing presence entries of live sessions
//! before they expire.

use std::sync::Weak;

use crate::hub::HubInner;

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

/// Re-adds every presence entry of every local session (one pass).
pub(crate) async fn refresh_presence(hub: &HubInner) {
    let entries: Vec<_> = {
        let reg = hub.registry();
        reg.sessions
            .values()
            .flat_map(|s| {
                s.subs()
                    .iter()
                    .filter(|(_, sub)| sub.member.presence)
                    .map(|(channel, sub)| (channel.clone(), sub.member.info.clone()))
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let ttl = hub.config.presence_ttl;
    for (channel, info) in entries {
        // A failure is retried on the next pass, before the entry expires.
        let _ = hub.broker.add_presence(&channel, info, ttl).await;
    }
}
