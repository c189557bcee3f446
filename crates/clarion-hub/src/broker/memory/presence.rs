//! One channel's presence in the memory broker: entries with expiry and
//! per-user counts, so stats and first-in/last-out are O(1).

use std::collections::{BTreeSet, HashMap};

use clarion_wire::ClientInfo;
use tokio::time::Instant;

use crate::broker::PresenceChange;

#[derive(Default)]
pub(super) struct PresenceSet {
    pub(super) clients: HashMap<String, (ClientInfo, Instant)>,
    pub(super) users: HashMap<String, u64>,
    expiry: BTreeSet<(Instant, String)>,
}

impl PresenceSet {
    pub(super) fn add(&mut self, info: ClientInfo, expires: Instant) -> PresenceChange {
        let client = info.client.clone();
        let user = info.user.clone();
        let old = self.clients.insert(client.clone(), (info, expires));
        self.expiry.insert((expires, client.clone()));
        let Some((old, old_exp)) = old else {
            return PresenceChange {
                client_added: true,
                client_removed: false,
                user_changed: self.hold_user(user),
            };
        };
        self.expiry.remove(&(old_exp, client));
        if old.user != user {
            // The same client id under another user: move the count.
            self.release_user(&old.user);
            self.hold_user(user);
        }
        PresenceChange::default()
    }

    pub(super) fn remove(&mut self, client: &str) -> PresenceChange {
        let Some((info, exp)) = self.clients.remove(client) else {
            return PresenceChange::default();
        };
        self.expiry.remove(&(exp, client.to_owned()));
        PresenceChange {
            client_added: false,
            client_removed: true,
            user_changed: self.release_user(&info.user),
        }
    }

    /// Counts one more client of `user`; true if it is the first.
    fn hold_user(&mut self, user: String) -> bool {
        let n = self.users.entry(user).or_default();
        *n += 1;
        *n == 1
    }

    /// Counts one client of `user` less; true if it was the last.
    fn release_user(&mut self, user: &str) -> bool {
        let Some(n) = self.users.get_mut(user) else {
            return false;
        };
        *n -= 1;
        if *n > 0 {
            return false;
        }
        self.users.remove(user);
        true
    }

    /// Drops expired entries: amortised O(1) per entry ever added.
    pub(super) fn sweep(&mut self, now: Instant) {
        while let Some((exp, client)) = self.expiry.first().cloned() {
            if exp > now {
                break;
            }
            self.remove(&client);
        }
    }
}
