//! Presence in a JetStream KV bucket.
//!
//! ```text
//! <channel>.c.<client>  {"info": ClientInfo, "ttl": ms}   one entry per client
//! <channel>.u.<user>    ["client", ...]                   the user's clients
//! ```
//!
//! (each name as a [`token`]). An entry lives `ttl` after it was last
//! written (the server's timestamp of the write), and at most the bucket's
//! max age. First-in / last-out per user is decided by compare-and-set on
//! the user's key (a KV update at the revision read), so two nodes adding
//! two clients of one user report exactly one arrival. Listing a channel
//! (`presence`, `presence_stats`) reads every entry of the channel through
//! a short-lived ordered consumer: it costs time proportional to the
//! channel's clients, not O(1) (JetStream keeps no counters we could use).

use std::collections::HashSet;
use std::time::Duration;

use async_nats::jetstream::consumer::push::OrderedConfig;
use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::kv::{Operation, Store};
use bytes::Bytes;
use clarion_hub::{BrokerError, PresenceChange, PresenceEntry, PresenceStats};
use clarion_wire::ClientInfo;
use futures_util::future::join_all;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use crate::error::{bounded, classify, connected};
use crate::history::record::now_nanos;
use crate::shared::Shared;
use crate::subjects::token;

/// Compare-and-set attempts on one key before giving up.
const MAX_ATTEMPTS: usize = 32;

#[derive(Serialize, Deserialize)]
struct Stored {
    info: ClientInfo,
    /// Milliseconds the entry lives after its write.
    ttl: u64,
}

/// A user's clients in a channel.
#[derive(Default)]
struct UserSet {
    /// As stored.
    listed: Vec<String>,
    /// Those still present (what is written back).
    live: Vec<String>,
}

/// A key as read: its revision (0: never written) and live value.
struct Slot<T> {
    revision: u64,
    value: Option<T>,
}

fn client_key(channel: &str, client: &str) -> String {
    format!("{}.c.{}", token(channel), token(client))
}

fn user_key(channel: &str, user: &str) -> String {
    format!("{}.u.{}", token(channel), token(user))
}

fn alive(created: time::OffsetDateTime, ttl_ms: u64) -> bool {
    let expires = created.unix_timestamp_nanos() + i128::from(ttl_ms) * 1_000_000;
    expires > now_nanos()
}

impl Shared {
    pub(crate) async fn add_presence(
        &self,
        channel: &str,
        info: ClientInfo,
        ttl: Duration,
    ) -> Result<PresenceChange, BrokerError> {
        self.check_presence_ttl(ttl);
        let call = async {
            connected(&self.client)?;
            let kv = self.stores().presence;
            let was = self.client_slot(&kv, channel, &info.client).await?;
            put(
                &kv,
                &client_key(channel, &info.client),
                &Stored::new(&info, ttl),
            )
            .await?;
            if was.value.is_some() {
                return Ok(PresenceChange::default());
            }
            let first = self.join_user(&kv, channel, &info).await?;
            Ok(PresenceChange {
                client_added: true,
                client_removed: false,
                user_changed: first,
            })
        };
        self.healing(bounded(self.config.command_timeout * 2, "add presence", call).await)
            .await
    }

    pub(crate) async fn add_presence_batch(
        &self,
        entries: &[PresenceEntry],
        ttl: Duration,
    ) -> Result<(), BrokerError> {
        self.check_presence_ttl(ttl);
        let call = async {
            connected(&self.client)?;
            let kv = self.stores().presence;
            // Every write in flight at once: one round trip's latency.
            let puts = entries.iter().map(|e| {
                let stored = Stored::new(&e.info, ttl);
                let kv = &kv;
                async move { put(kv, &client_key(&e.channel, &e.info.client), &stored).await }
            });
            join_all(puts)
                .await
                .into_iter()
                .collect::<Result<Vec<_>, _>>()?;
            // A client the batch added (not refreshed) joins its user's set.
            let joins = entries
                .iter()
                .map(|e| self.ensure_in_user(&kv, &e.channel, &e.info));
            join_all(joins)
                .await
                .into_iter()
                .collect::<Result<Vec<_>, _>>()?;
            Ok(())
        };
        self.healing(bounded(self.config.command_timeout * 2, "refresh presence", call).await)
            .await
    }

    pub(crate) async fn remove_presence(
        &self,
        channel: &str,
        client: &str,
    ) -> Result<PresenceChange, BrokerError> {
        let call = async {
            connected(&self.client)?;
            let kv = self.stores().presence;
            for _ in 0..MAX_ATTEMPTS {
                let slot = self.client_slot(&kv, channel, client).await?;
                let Some(stored) = slot.value else {
                    return Ok(PresenceChange::default());
                };
                let key = client_key(channel, client);
                if kv
                    .delete_expect_revision(&key, Some(slot.revision))
                    .await
                    .is_err()
                {
                    continue; // Written meanwhile (or a failure the re-read reports).
                }
                let last = self.leave_user(&kv, channel, &stored.info).await?;
                return Ok(PresenceChange {
                    client_added: false,
                    client_removed: true,
                    user_changed: last,
                });
            }
            Err(BrokerError::unavailable(
                "nats: remove presence: too much contention",
            ))
        };
        self.healing(bounded(self.config.command_timeout * 2, "remove presence", call).await)
            .await
    }

    pub(crate) async fn presence(&self, channel: &str) -> Result<Vec<ClientInfo>, BrokerError> {
        let call = async {
            connected(&self.client)?;
            self.list(channel).await
        };
        self.healing(bounded(self.config.command_timeout * 2, "presence", call).await)
            .await
    }

    pub(crate) async fn presence_stats(&self, channel: &str) -> Result<PresenceStats, BrokerError> {
        let clients = self.presence(channel).await?;
        let users: HashSet<&str> = clients.iter().map(|c| c.user.as_str()).collect();
        Ok(PresenceStats {
            num_clients: clients.len() as u64,
            num_users: users.len() as u64,
        })
    }

    /// Passes `result` on; when the bucket is gone (a server restarted
    /// without its store and the reconnect came before JetStream was
    /// ready), recreates the stream and buckets and reports a temporary
    /// failure, so the caller's retry finds them.
    pub(crate) async fn healing<T>(
        &self,
        result: Result<T, BrokerError>,
    ) -> Result<T, BrokerError> {
        match result {
            Err(err) if err.message().contains("stream not found") => {
                self.reensure().await?;
                Err(BrokerError::unavailable(format!(
                    "{} (recreated)",
                    err.message()
                )))
            }
            other => other,
        }
    }

    fn check_presence_ttl(&self, ttl: Duration) {
        if ttl > self.config.presence_max_ttl {
            self.warn_once(format!(
                "nats broker: presence ttl {ttl:?} exceeds the bucket's max age {:?}: \
                 entries vanish after that unless refreshed sooner",
                self.config.presence_max_ttl
            ));
        }
    }

    /// A client's entry; an expired one reads as absent.
    async fn client_slot(
        &self,
        kv: &Store,
        channel: &str,
        client: &str,
    ) -> Result<Slot<Stored>, BrokerError> {
        let entry = kv.entry(client_key(channel, client)).await;
        let Some(entry) = entry.map_err(|e| classify("presence entry", e))? else {
            return Ok(Slot {
                revision: 0,
                value: None,
            });
        };
        let value = (entry.operation == Operation::Put)
            .then(|| serde_json::from_slice::<Stored>(&entry.value).ok())
            .flatten()
            .filter(|s| alive(entry.created, s.ttl));
        Ok(Slot {
            revision: entry.revision,
            value,
        })
    }

    /// The user's clients in the channel as listed, and those of them
    /// still present.
    async fn user_slot(
        &self,
        kv: &Store,
        channel: &str,
        user: &str,
    ) -> Result<Slot<UserSet>, BrokerError> {
        let entry = kv.entry(user_key(channel, user)).await;
        let Some(entry) = entry.map_err(|e| classify("presence user", e))? else {
            return Ok(Slot {
                revision: 0,
                value: None,
            });
        };
        let listed: Vec<String> = (entry.operation == Operation::Put)
            .then(|| serde_json::from_slice(&entry.value).ok())
            .flatten()
            .unwrap_or_default();
        let checks = listed.iter().map(|c| self.client_slot(kv, channel, c));
        let slots = join_all(checks).await;
        let mut live = Vec::new();
        for (client, slot) in listed.iter().zip(slots) {
            if slot?.value.is_some_and(|s| s.info.user == user) {
                live.push(client.clone());
            }
        }
        Ok(Slot {
            revision: entry.revision,
            value: Some(UserSet { listed, live }),
        })
    }

    /// Adds the client to its user's set; true if the user had no other
    /// client there.
    async fn join_user(
        &self,
        kv: &Store,
        channel: &str,
        info: &ClientInfo,
    ) -> Result<bool, BrokerError> {
        self.update_user(kv, channel, &info.user, |set| {
            let first = set.live.iter().all(|c| *c == info.client);
            if !set.live.contains(&info.client) {
                set.live.push(info.client.clone());
            }
            first
        })
        .await
    }

    /// Removes the (already deleted) client from its user's set; true if
    /// it was listed and no other client is left. Only the remover that
    /// still finds it listed reports the departure, so two nodes removing
    /// a user's last two clients report one.
    async fn leave_user(
        &self,
        kv: &Store,
        channel: &str,
        info: &ClientInfo,
    ) -> Result<bool, BrokerError> {
        self.update_user(kv, channel, &info.user, |set| {
            let listed = set.listed.contains(&info.client);
            set.live.retain(|c| *c != info.client);
            listed && set.live.is_empty()
        })
        .await
    }

    async fn ensure_in_user(
        &self,
        kv: &Store,
        channel: &str,
        info: &ClientInfo,
    ) -> Result<(), BrokerError> {
        let slot = self.user_slot(kv, channel, &info.user).await?;
        if slot.value.is_some_and(|s| s.listed.contains(&info.client)) {
            return Ok(());
        }
        self.join_user(kv, channel, info).await.map(drop)
    }

    /// Compare-and-set on the user's set: `change` edits the live clients
    /// (written back) and says what to report.
    async fn update_user(
        &self,
        kv: &Store,
        channel: &str,
        user: &str,
        change: impl Fn(&mut UserSet) -> bool,
    ) -> Result<bool, BrokerError> {
        let key = user_key(channel, user);
        for _ in 0..MAX_ATTEMPTS {
            let slot = self.user_slot(kv, channel, user).await?;
            let mut set = slot.value.unwrap_or_default();
            let report = change(&mut set);
            let value = Bytes::from(serde_json::to_vec(&set.live).unwrap_or_default());
            if kv.update(&key, value, slot.revision).await.is_ok() {
                return Ok(report);
            }
        }
        Err(BrokerError::unavailable(
            "nats: presence: too much contention on one user",
        ))
    }

    /// Every live entry of the channel, through an ordered consumer that
    /// delivers the last value of each of its keys.
    async fn list(&self, channel: &str) -> Result<Vec<ClientInfo>, BrokerError> {
        let kv = self.stores().presence;
        let filter = format!("{}{}.c.>", kv.prefix, token(channel));
        let consumer = kv
            .stream
            .create_consumer(OrderedConfig {
                deliver_subject: self.client.new_inbox(),
                filter_subject: filter,
                deliver_policy: DeliverPolicy::LastPerSubject,
                ..Default::default()
            })
            .await
            .map_err(|e| classify("presence list", e))?;
        let mut pending = consumer.cached_info().num_pending;
        let mut messages = consumer
            .messages()
            .await
            .map_err(|e| classify("presence list", e))?;
        let mut out = Vec::new();
        while pending > 0 {
            let Some(message) = messages.next().await else {
                break;
            };
            let message = message.map_err(|e| classify("presence list", e))?;
            let info = message.info().map_err(|e| classify("presence list", e))?;
            pending = info.pending;
            let deleted = message
                .headers
                .as_ref()
                .is_some_and(|h| h.get("KV-Operation").is_some());
            let stored = serde_json::from_slice::<Stored>(&message.payload).ok();
            if let Some(s) = stored.filter(|s| !deleted && alive(info.published, s.ttl)) {
                out.push(s.info);
            }
        }
        Ok(out)
    }
}

impl Stored {
    fn new(info: &ClientInfo, ttl: Duration) -> Stored {
        Stored {
            info: info.clone(),
            ttl: u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX),
        }
    }
}

async fn put(kv: &Store, key: &str, stored: &Stored) -> Result<(), BrokerError> {
    let value = serde_json::to_vec(stored).map_err(|e| BrokerError::invalid(e.to_string()))?;
    kv.put(key, Bytes::from(value))
        .await
        .map(drop)
        .map_err(|e| classify("presence put", e))
}
