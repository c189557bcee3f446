//! History on JetStream: one stream over every channel's history subject,
//! per-channel contiguous offsets by optimistic concurrency, epochs, and
//! reads that walk a channel's messages back from its newest.
//!
//! Appending reads the channel's newest message (or trusts this node's
//! cached copy of it), then publishes the next offset with
//! `Nats-Expected-Last-Subject-Sequence` set to that message's sequence:
//! if another node appended meanwhile JetStream refuses it (error 10071),
//! and the append is retried on the fresh newest message. So no two
//! publications of a channel get one offset, and offsets have no holes.
//! The stream republishes each stored message to the channel's live
//! subject, in stream order, so live delivery follows offset order and
//! carries only what was stored (see `subjects`).

pub(crate) mod record;

use std::time::Duration;

use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::LastRawMessageErrorKind;
use async_nats::jetstream::ErrorCode;
use bytes::Bytes;
use clarion_hub::{BrokerError, HistoryOptions, HistoryPage, HistoryQuery, NewPublication};
use clarion_wire::{Publication, StreamPosition};

use self::record::{headers, new_epoch, now_nanos, Record, Tip};
use crate::error::{bounded, connected, refused, unavailable};
use crate::shared::Shared;
use crate::subjects::token;

/// Appends tried before giving up on a channel under heavy contention
/// (each retry follows a fresh read, so this many conflicts in a row means
/// dozens of nodes publishing into one channel at once).
const MAX_ATTEMPTS: u32 = 64;

/// What a history message will be.
enum Entry {
    /// A publication.
    Publication(NewPublication),
    /// Only a position for an empty stream (a read found none).
    Marker,
}

/// Where an append stands after looking at the channel.
enum Next {
    /// The position is valid: append at `tip.offset + 1`.
    Continue(Tip),
    /// A new stream: offsets from 1 under a new epoch, replacing the
    /// message at this sequence (0: none).
    Restart(u64),
}

impl Shared {
    /// Appends `publication` to `channel`'s stream and returns its
    /// position (for a repeated idempotency key: the first one's).
    pub(crate) async fn publish_history(
        &self,
        channel: &str,
        publication: NewPublication,
        options: HistoryOptions,
    ) -> Result<StreamPosition, BrokerError> {
        self.check_options(&options);
        let timeout = self.config.command_timeout * 2;
        let entry = Entry::Publication(publication);
        let append = self.append(channel, &entry, &options);
        Ok(bounded(timeout, "publish", append).await?.position())
    }

    /// A page of `channel`'s history and its position; creates an empty
    /// stream (a marker with a new epoch) when there is none.
    pub(crate) async fn read_history(
        &self,
        channel: &str,
        query: HistoryQuery,
        options: HistoryOptions,
    ) -> Result<HistoryPage, BrokerError> {
        self.check_options(&options);
        let timeout = self.config.command_timeout * 2;
        bounded(timeout, "history", self.read(channel, query, options)).await
    }

    /// Drops `channel`'s history: the next read or publish starts a new
    /// epoch.
    pub(crate) async fn remove_history(&self, channel: &str) -> Result<(), BrokerError> {
        connected(&self.client)?;
        let subject = self.subjects.history(channel);
        self.forget_tip(channel);
        let stores = self.stores();
        let purge = stores.history.purge().filter(subject);
        let purged = bounded(self.config.command_timeout, "purge", async {
            purge.await.map_err(|e| refused("purge", e))
        });
        purged.await.map(drop)
    }

    fn check_options(&self, options: &HistoryOptions) {
        if let Some(why) = self.config.history_shortfall(options) {
            self.warn_once(format!("nats broker: {why}"));
        }
    }

    async fn read(
        &self,
        channel: &str,
        query: HistoryQuery,
        options: HistoryOptions,
    ) -> Result<HistoryPage, BrokerError> {
        connected(&self.client)?;
        let subject = self.subjects.history(channel);
        let newest = match self.newest(&subject).await? {
            Some(r) if r.tip().position_expires > now_nanos() => r,
            _ => {
                self.append(channel, &Entry::Marker, &options).await?;
                self.newest(&subject)
                    .await?
                    .ok_or_else(|| unavailable("history", "the stream's marker vanished"))?
            }
        };
        let position = newest.tip().position();
        let publications = self.page(newest, &query).await?;
        Ok(HistoryPage {
            publications,
            position,
        })
    }

    /// The publications `query` asks for, walking back from `newest`.
    async fn page(
        &self,
        newest: Record,
        query: &HistoryQuery,
    ) -> Result<Vec<Publication>, BrokerError> {
        let top = newest.offset;
        let size = newest.size.min(self.config.max_history_size as u64).max(1);
        let oldest = top.saturating_sub(size) + 1;
        let since = query.since.as_ref().filter(|s| s.epoch == newest.epoch);
        let (low, high) = match (query.reverse, since.map(|s| s.offset)) {
            (false, s) => (s.map_or(oldest, |s| (s + 1).max(oldest)), top),
            (true, s) => (oldest, s.map_or(top, |s| s.saturating_sub(1).min(top))),
        };
        if query.limit == 0 || low > high || newest.marker {
            return Ok(Vec::new());
        }
        let now = now_nanos();
        let epoch = newest.epoch.clone();
        let mut found = Vec::new();
        let mut cursor = Some(newest);
        while let Some(record) = cursor {
            if record.epoch != epoch || record.offset < low || record.marker {
                break;
            }
            if record.offset <= high && !record.expired(now) {
                found.extend(record.publication());
                if query.reverse && found.len() == query.limit {
                    break;
                }
            }
            cursor = match record.prev {
                0 => None,
                prev => self.message(prev).await?,
            };
        }
        if !query.reverse {
            found.reverse();
            found.truncate(query.limit);
        }
        Ok(found)
    }

    /// Appends `entry` and returns the channel's new newest message (for a
    /// marker that another node beat us to, theirs; for a duplicate
    /// idempotency key, the first publication's).
    async fn append(
        &self,
        channel: &str,
        entry: &Entry,
        options: &HistoryOptions,
    ) -> Result<Tip, BrokerError> {
        connected(&self.client)?;
        let subject = self.subjects.history(channel);
        let mut known = self.tip(channel);
        for attempt in 0..MAX_ATTEMPTS {
            let tip = match known.take() {
                Some(tip) => Some(tip),
                None => self.fresh_tip(channel, &subject).await?,
            };
            let next = match tip {
                Some(t) if t.position_expires > now_nanos() => Next::Continue(t),
                Some(t) => Next::Restart(t.seq),
                None => Next::Restart(0),
            };
            if let (Entry::Marker, Next::Continue(t)) = (entry, &next) {
                return Ok(t.clone());
            }
            match self
                .try_append(channel, &subject, entry, options, &next)
                .await
            {
                Ok(Some(tip)) => return Ok(tip),
                Ok(None) => backoff(attempt).await,
                Err(err) => {
                    self.forget_tip(channel);
                    return Err(err);
                }
            }
        }
        Err(unavailable(
            "publish",
            "too many concurrent appends to one channel",
        ))
    }

    /// One optimistic append; `None` when another node appended first.
    async fn try_append(
        &self,
        channel: &str,
        subject: &str,
        entry: &Entry,
        options: &HistoryOptions,
        next: &Next,
    ) -> Result<Option<Tip>, BrokerError> {
        let stores = self.stores();
        let (offset, epoch, prev) = match next {
            Next::Continue(t) => (t.offset + 1, t.epoch.clone(), t.seq),
            Next::Restart(seq) => (1, new_epoch(stores.created), *seq),
        };
        let marker = matches!(entry, Entry::Marker);
        let offset = if marker { 0 } else { offset };
        // `headers` replaces the whole map: it goes first.
        let message = PublishMessage::build()
            .headers(headers(offset, &epoch, prev, options, marker))
            .expected_last_subject_sequence(prev);
        let message = match entry {
            Entry::Publication(p) => self.with_publication(message, channel, p, offset)?,
            Entry::Marker => message,
        };
        let sent = self.js.send_publish(subject.to_owned(), message).await;
        let ack = match sent {
            Ok(ack_future) => ack_future.await,
            Err(err) => Err(err),
        };
        let ack = match ack {
            Ok(ack) => ack,
            Err(err) => return self.append_failed(channel, err.kind()).await,
        };
        if ack.duplicate {
            return self.first_of_duplicate(ack.sequence).await.map(Some);
        }
        let keep = options
            .meta_ttl
            .max(if marker { Duration::ZERO } else { options.ttl });
        let tip = Tip {
            seq: ack.sequence,
            offset,
            epoch,
            // Our clock stands in for the server's: the cache only decides
            // when to try a new epoch, and the append's CAS keeps nodes
            // consistent whatever they decide.
            position_expires: now_nanos() + keep.as_nanos() as i128,
        };
        self.remember_tip(channel, tip.clone());
        if let Next::Restart(old) = next {
            self.purge_before(subject, ack.sequence, *old);
        }
        Ok(Some(tip))
    }

    fn with_publication(
        &self,
        message: PublishMessage,
        channel: &str,
        new: &NewPublication,
        offset: u64,
    ) -> Result<PublishMessage, BrokerError> {
        let publication = Publication {
            offset: Some(offset),
            data: new.data.clone(),
            info: new.info.clone(),
        };
        let payload = serde_json::to_vec(&publication)
            .map_err(|e| BrokerError::invalid(format!("nats: encode publication: {e}")))?;
        let mut message = message.payload(Bytes::from(payload));
        if let Some(key) = &new.idempotency_key {
            // Msg-Id deduplication is per stream: the channel is part of it.
            message = message.message_id(format!("{}:{key}", token(channel)));
        }
        Ok(message)
    }

    async fn append_failed(
        &self,
        channel: &str,
        kind: PublishErrorKind,
    ) -> Result<Option<Tip>, BrokerError> {
        self.forget_tip(channel);
        match kind {
            PublishErrorKind::WrongLastSequence => Ok(None),
            // The server lost the stream (restarted without its store):
            // recreate it; the retry finds no message and starts an epoch.
            PublishErrorKind::StreamNotFound => self.reensure().await.map(|_| None),
            PublishErrorKind::TimedOut | PublishErrorKind::BrokenPipe => {
                Err(unavailable("publish", kind))
            }
            PublishErrorKind::MaxAckPending => Err(unavailable("publish", kind)),
            other => Err(refused("publish", other)),
        }
    }

    /// The position of the publication a repeated idempotency key names.
    async fn first_of_duplicate(&self, seq: u64) -> Result<Tip, BrokerError> {
        match self.message(seq).await? {
            Some(first) => Ok(first.tip()),
            None => Err(refused(
                "publish",
                "an idempotency key repeated after its first publication was trimmed",
            )),
        }
    }

    /// The freshest newest message of the channel, checked against what
    /// this node knew: an older offset under the same epoch means the
    /// server lost acknowledged publications (restored from an older
    /// state), and then the position is treated as lost (a new epoch).
    async fn fresh_tip(&self, channel: &str, subject: &str) -> Result<Option<Tip>, BrokerError> {
        let known = self.tip(channel);
        let Some(tip) = self.newest(subject).await?.map(|r| r.tip()) else {
            return Ok(None);
        };
        let regressed = known.is_some_and(|k| k.epoch == tip.epoch && k.offset > tip.offset);
        if regressed {
            tracing::warn!(target: "clarion::broker::nats", channel,
                "history went back in time on the server: starting a new epoch");
            return Ok(Some(Tip {
                position_expires: 0,
                ..tip
            }));
        }
        Ok(Some(tip))
    }

    /// The channel's newest message, if any.
    async fn newest(&self, subject: &str) -> Result<Option<Record>, BrokerError> {
        let stores = self.stores();
        match stores
            .history
            .get_last_raw_message_by_subject(subject)
            .await
        {
            Ok(message) => Ok(Record::decode(&message)),
            Err(err) => self.get_failed(err.kind()).await,
        }
    }

    /// The stored message at `seq`, if it is still there.
    async fn message(&self, seq: u64) -> Result<Option<Record>, BrokerError> {
        let stores = self.stores();
        match stores.history.get_raw_message(seq).await {
            Ok(message) => Ok(Record::decode(&message)),
            Err(err) => self.get_failed(err.kind()).await,
        }
    }

    async fn get_failed(
        &self,
        kind: LastRawMessageErrorKind,
    ) -> Result<Option<Record>, BrokerError> {
        match kind {
            LastRawMessageErrorKind::NoMessageFound => Ok(None),
            LastRawMessageErrorKind::JetStream(e)
                if e.error_code() == ErrorCode::STREAM_NOT_FOUND =>
            {
                // The stream is gone: recreate it, empty.
                self.reensure().await?;
                Ok(None)
            }
            LastRawMessageErrorKind::JetStream(e) => Err(refused("read", e)),
            other => Err(unavailable("read", other)),
        }
    }

    /// Drops a channel's messages of older epochs, below `keep`; best effort
    /// (the per-subject limit and max age drop them anyway).
    fn purge_before(&self, subject: &str, keep: u64, old: u64) {
        if old == 0 {
            return;
        }
        let purge = self.stores().history.purge().filter(subject).sequence(keep);
        tokio::spawn(async move {
            let _ = purge.await;
        });
    }
}

/// A short random pause after a conflict, growing with the attempts, so
/// contending nodes spread out.
async fn backoff(attempt: u32) {
    use std::hash::BuildHasher;
    let jitter = std::collections::hash_map::RandomState::new().hash_one(attempt) % 1000;
    let micros = (u64::from(attempt.min(10)) * 200) + jitter;
    tokio::time::sleep(Duration::from_micros(micros)).await;
}
