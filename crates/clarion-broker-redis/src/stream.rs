//! History and publishing: the publish and history scripts, and removing
//! a channel's stream.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use clarion_hub::{BrokerError, HistoryOptions, HistoryPage, HistoryQuery, NewPublication};
use clarion_wire::{Publication, StreamPosition};
use redis::Value;

use crate::broker::Inner;
use crate::codec;
use crate::scripts::Lua;
use crate::shard::Live;

/// A fresh candidate epoch: 8 hex digits (a new stream only adopts it if it
/// has none; the generation is appended to whatever is stored).
pub(crate) fn candidate_epoch() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let seed = RandomState::new().hash_one((std::time::SystemTime::now(), n));
    format!("{:08x}", seed & 0xffff_ffff)
}

pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl Inner {
    /// Runs a script on `channel`'s shard.
    pub(crate) async fn script<T: redis::FromRedisValue>(
        &self,
        channel: &str,
        build: impl FnOnce(&Live) -> redis::Cmd,
    ) -> Result<T, BrokerError> {
        let shard = self.shard(channel);
        let mut live = shard.live(&self.scripts).await?;
        let cmd = build(&live);
        let result = self.scripts.run(&mut live.conn, &cmd).await;
        result.map_err(|e| shard.fail(&live, e))
    }

    pub(crate) async fn publish(
        &self,
        channel: &str,
        new: NewPublication,
        history: Option<HistoryOptions>,
    ) -> Result<Option<StreamPosition>, BrokerError> {
        let publication = Publication {
            offset: None,
            data: new.data,
            info: new.info,
        };
        let body = codec::encode_body(&publication)?;
        let key = new.idempotency_key.unwrap_or_default();
        let keys = [
            self.keys.stream(channel),
            self.keys.meta(channel),
            self.keys.result(channel, &key),
        ];
        let (size, ttl, meta_ttl) = history.map_or((0, 1, 1), |h| {
            (h.size.max(1), millis(h.ttl), millis(h.meta_ttl))
        });
        let window = if key.is_empty() {
            0
        } else {
            millis(self.config.idempotency_window)
        };
        let sharded = if self.config.sharded_pubsub { "1" } else { "0" };
        let (offset, epoch, _suppressed): (String, String, i64) = self
            .script(channel, |live| {
                let mut cmd = self
                    .scripts
                    .call(Lua::Publish, &[&keys[0], &keys[1], &keys[2]]);
                cmd.arg(&*live.generation).arg(candidate_epoch()).arg(&body);
                cmd.arg(size).arg(ttl).arg(meta_ttl).arg(window);
                cmd.arg(self.keys.publications(channel)).arg(sharded);
                cmd
            })
            .await?;
        if offset.is_empty() {
            return Ok(None);
        }
        let offset = offset
            .parse()
            .map_err(|_| BrokerError::refused(format!("publish script returned {offset:?}")))?;
        Ok(Some(StreamPosition { offset, epoch }))
    }

    pub(crate) async fn history(
        &self,
        channel: &str,
        query: HistoryQuery,
        options: HistoryOptions,
    ) -> Result<HistoryPage, BrokerError> {
        let (stream, meta) = (self.keys.stream(channel), self.keys.meta(channel));
        let (since_offset, since_epoch) = match &query.since {
            Some(p) => (p.offset.to_string(), p.epoch.clone()),
            None => (String::new(), String::new()),
        };
        let reply: Vec<Value> = self
            .script(channel, |live| {
                let mut cmd = self.scripts.call(Lua::History, &[&stream, &meta]);
                cmd.arg(&*live.generation).arg(candidate_epoch());
                cmd.arg(millis(options.meta_ttl.max(options.ttl)));
                cmd.arg(since_offset).arg(since_epoch).arg(query.limit);
                cmd.arg(if query.reverse { "1" } else { "0" });
                cmd
            })
            .await?;
        parse_page(&reply)
    }

    pub(crate) async fn remove_history(&self, channel: &str) -> Result<(), BrokerError> {
        let shard = self.shard(channel);
        let mut live = shard.live(&self.scripts).await?;
        let mut cmd = redis::cmd("DEL");
        cmd.arg(self.keys.stream(channel))
            .arg(self.keys.meta(channel));
        let done = cmd.exec_async(&mut live.conn).await;
        done.map_err(|e| shard.fail(&live, e))
    }
}

/// `{top, epoch, id, body, id, body, ...}` → a page.
fn parse_page(reply: &[Value]) -> Result<HistoryPage, BrokerError> {
    let bad = || BrokerError::refused("history script returned an unexpected reply");
    let [top, epoch, entries @ ..] = reply else {
        return Err(bad());
    };
    let offset: u64 = redis::from_redis_value(top).map_err(|_| bad())?;
    let epoch: String = redis::from_redis_value(epoch).map_err(|_| bad())?;
    let mut publications = Vec::with_capacity(entries.len() / 2);
    for pair in entries.chunks(2) {
        let [id, body] = pair else { return Err(bad()) };
        let id: String = redis::from_redis_value(id).map_err(|_| bad())?;
        let body: Vec<u8> = redis::from_redis_value(body).map_err(|_| bad())?;
        let offset = codec::offset_of_id(&id);
        publications.push(codec::decode_body(&body, offset).ok_or_else(bad)?);
    }
    Ok(HistoryPage {
        publications,
        position: StreamPosition { offset, epoch },
    })
}
