//! Presence: the presence script (add, remove, list, stats), the batched
//! refresh, and join and leave messages.

use std::time::Duration;

use clarion_hub::{BrokerError, PresenceChange, PresenceEntry, PresenceStats};
use clarion_wire::ClientInfo;

use crate::broker::Inner;
use crate::codec;
use crate::scripts::Lua;
use crate::sharding::shard_of;
use crate::stream::millis;

impl Inner {
    async fn presence_op<T: redis::FromRedisValue>(
        &self,
        channel: &str,
        args: &[&[u8]],
    ) -> Result<T, BrokerError> {
        let [data, expiry, users] = self.keys.presence(channel);
        self.script(channel, |_| {
            let mut cmd = self.scripts.call(Lua::Presence, &[&data, &expiry, &users]);
            for arg in args {
                cmd.arg(*arg);
            }
            cmd
        })
        .await
    }

    fn presence_add_cmd(&self, entry: &PresenceEntry, ttl: Duration) -> redis::Cmd {
        let [data, expiry, users] = self.keys.presence(&entry.channel);
        let mut cmd = self.scripts.call(Lua::Presence, &[&data, &expiry, &users]);
        // A ClientInfo is strings and raw JSON: serialising it cannot fail.
        let info = serde_json::to_vec(&entry.info).unwrap_or_default();
        cmd.arg("add").arg(&entry.info.client).arg(&entry.info.user);
        cmd.arg(info).arg(millis(ttl));
        cmd
    }

    pub(crate) async fn add_presence_batch(
        &self,
        entries: &[PresenceEntry],
        ttl: Duration,
    ) -> Result<(), BrokerError> {
        let mut pipes: Vec<redis::Pipeline> = vec![redis::pipe(); self.shards.len()];
        for entry in entries {
            let i = shard_of(&entry.channel, self.shards.len());
            pipes[i]
                .add_command(self.presence_add_cmd(entry, ttl))
                .ignore();
        }
        // One round trip per shard that has entries.
        for (shard, pipe) in self.shards.iter().zip(&pipes) {
            if pipe.cmd_iter().next().is_none() {
                continue;
            }
            let mut live = shard.live(&self.scripts).await?;
            let done = self.scripts.run_pipeline::<()>(&mut live.conn, pipe).await;
            done.map_err(|e| shard.fail(&live, e))?;
        }
        Ok(())
    }

    pub(crate) async fn publish_presence(
        &self,
        channel: &str,
        info: &ClientInfo,
        join: bool,
    ) -> Result<(), BrokerError> {
        let shard = self.shard(channel);
        let mut live = shard.live(&self.scripts).await?;
        let command = if self.config.sharded_pubsub {
            "SPUBLISH"
        } else {
            "PUBLISH"
        };
        let mut cmd = redis::cmd(command);
        cmd.arg(self.keys.publications(channel));
        cmd.arg(codec::encode_presence(join, info));
        let sent = cmd.exec_async(&mut live.conn).await;
        sent.map_err(|e| shard.fail(&live, e))
    }

    pub(crate) async fn add_presence(
        &self,
        channel: &str,
        info: &ClientInfo,
        ttl: Duration,
    ) -> Result<PresenceChange, BrokerError> {
        // A ClientInfo is strings and raw JSON: serialising it cannot fail.
        let json = serde_json::to_vec(info).unwrap_or_default();
        let ttl = millis(ttl).to_string();
        let args: [&[u8]; 5] = [
            b"add",
            info.client.as_bytes(),
            info.user.as_bytes(),
            &json,
            ttl.as_bytes(),
        ];
        let (added, first): (i64, i64) = self.presence_op(channel, &args).await?;
        Ok(PresenceChange {
            client_added: added == 1,
            client_removed: false,
            user_changed: first == 1,
        })
    }

    pub(crate) async fn remove_presence(
        &self,
        channel: &str,
        client: &str,
    ) -> Result<PresenceChange, BrokerError> {
        let args: [&[u8]; 2] = [b"remove", client.as_bytes()];
        let (removed, last): (i64, i64) = self.presence_op(channel, &args).await?;
        Ok(PresenceChange {
            client_added: false,
            client_removed: removed == 1,
            user_changed: last == 1,
        })
    }

    pub(crate) async fn presence(&self, channel: &str) -> Result<Vec<ClientInfo>, BrokerError> {
        let args: [&[u8]; 1] = [b"list"];
        let values: Vec<Vec<u8>> = self.presence_op(channel, &args).await?;
        let decoded = values.iter().map(|v| codec::decode_presence_value(v));
        let clients: Option<Vec<_>> = decoded.collect();
        clients.ok_or_else(|| BrokerError::refused("undecodable presence entry"))
    }

    pub(crate) async fn presence_stats(&self, channel: &str) -> Result<PresenceStats, BrokerError> {
        let args: [&[u8]; 1] = [b"stats"];
        let (num_clients, num_users) = self.presence_op(channel, &args).await?;
        Ok(PresenceStats {
            num_clients,
            num_users,
        })
    }
}
