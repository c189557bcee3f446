//! The channels with local members: which sessions are in each, and, for
//! channels with history, where this node stands in the stream
//! ([`StreamCursor`]). Sharded maps; a channel's entry goes with its last
//! member.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::session::SessionState;
use crate::stream::StreamCursor;

const SHARDS: usize = 32;

/// The local sessions subscribed to one channel.
pub(crate) type Members = HashMap<Arc<str>, Arc<SessionState>>;

/// One channel with local members.
#[derive(Default)]
pub(crate) struct Channel {
    pub(crate) members: Members,
    /// Set from the first subscriber's position or the first live
    /// publication with an offset.
    pub(crate) cursor: Option<StreamCursor>,
}

/// Every channel with local members.
pub(crate) struct Channels {
    shards: Vec<Mutex<HashMap<String, Channel>>>,
    hasher: RandomState,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // No code path panics while holding these locks with maps half-updated.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Channels {
    pub(crate) fn new() -> Channels {
        Channels {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: RandomState::new(),
        }
    }

    /// The shard holding `channel`, locked.
    pub(crate) fn shard(&self, channel: &str) -> MutexGuard<'_, HashMap<String, Channel>> {
        let i = (self.hasher.hash_one(channel) as usize) % SHARDS;
        lock(&self.shards[i])
    }

    /// Adds a local member; true if the channel had none.
    pub(crate) fn add_member(&self, channel: &str, session: &Arc<SessionState>) -> bool {
        let mut shard = self.shard(channel);
        let entry = shard.entry(channel.to_owned()).or_default();
        let first = entry.members.is_empty();
        entry.members.insert(session.id.clone(), session.clone());
        first
    }

    /// Removes a local member; true if the channel has none left.
    pub(crate) fn remove_member(&self, channel: &str, client: &str) -> bool {
        let mut shard = self.shard(channel);
        let Some(entry) = shard.get_mut(channel) else {
            return false;
        };
        if entry.members.remove(client).is_none() {
            return false;
        }
        if entry.members.is_empty() {
            shard.remove(channel);
            return true;
        }
        false
    }

    /// Whether `channel` has local members.
    pub(crate) fn has_members(&self, channel: &str) -> bool {
        self.shard(channel)
            .get(channel)
            .is_some_and(|c| !c.members.is_empty())
    }

    /// How many channels have local members (cheap: no names copied).
    pub(crate) fn count(&self) -> usize {
        self.shards.iter().map(|shard| lock(shard).len()).sum()
    }

    /// Local channels with their member counts, sorted.
    pub(crate) fn counts(&self) -> Vec<(String, usize)> {
        let mut out = Vec::new();
        for shard in &self.shards {
            let shard = lock(shard);
            out.extend(shard.iter().map(|(c, e)| (c.clone(), e.members.len())));
        }
        out.sort();
        out
    }
}
