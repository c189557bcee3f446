//! One stored history message: the Clarion position and retention rules
//! it carries in headers, and its publication as the payload.
//!
//! Expiry is judged from the server's timestamp of the message plus the
//! durations it carries, against this node's clock: nodes' clocks must
//! agree within the precision wanted of TTLs (NTP is plenty).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::message::StreamMessage;
use async_nats::HeaderMap;
use clarion_hub::HistoryOptions;
use clarion_wire::{Publication, StreamPosition};

/// The publication's offset in its channel (0 for an empty-stream marker).
const OFFSET: &str = "Clarion-Offset";
/// The channel stream's epoch.
const EPOCH: &str = "Clarion-Epoch";
/// Stream sequence of the channel's previous message (0: none): history
/// is read by walking these links back from the channel's last message.
const PREV: &str = "Clarion-Prev";
/// How long this publication is kept, in milliseconds.
const TTL: &str = "Clarion-Ttl";
/// How long the channel's position outlives this message, in milliseconds.
const META_TTL: &str = "Clarion-Meta-Ttl";
/// How many publications the channel keeps, as of this message.
const SIZE: &str = "Clarion-Size";
/// Present on a marker: a message that only holds an empty stream's
/// position (a history read created it), not a publication.
const MARKER: &str = "Clarion-Marker";

/// The position of the channel's newest message, as this node last knew it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tip {
    /// Its stream sequence.
    pub(crate) seq: u64,
    /// Its offset.
    pub(crate) offset: u64,
    /// Its epoch.
    pub(crate) epoch: String,
    /// When the position stops being valid (unix nanoseconds).
    pub(crate) position_expires: i128,
}

impl Tip {
    pub(crate) fn position(&self) -> StreamPosition {
        StreamPosition {
            offset: self.offset,
            epoch: self.epoch.clone(),
        }
    }
}

/// A decoded history message.
#[derive(Debug, Clone)]
pub(crate) struct Record {
    pub(crate) seq: u64,
    pub(crate) offset: u64,
    pub(crate) epoch: String,
    pub(crate) prev: u64,
    pub(crate) size: u64,
    pub(crate) marker: bool,
    /// Server time of the message, unix nanoseconds.
    time: i128,
    ttl: Duration,
    meta_ttl: Duration,
    payload: bytes::Bytes,
}

/// Now, in unix nanoseconds.
pub(crate) fn now_nanos() -> i128 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH);
    since.map_or(0, |d| d.as_nanos() as i128)
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.as_str().parse().ok()
}

impl Record {
    /// Decodes a stored message; `None` if it is not Clarion's.
    pub(crate) fn decode(message: &StreamMessage) -> Option<Record> {
        let h = &message.headers;
        Some(Record {
            seq: message.sequence,
            offset: header_u64(h, OFFSET)?,
            epoch: h.get(EPOCH)?.as_str().to_owned(),
            prev: header_u64(h, PREV).unwrap_or(0),
            size: header_u64(h, SIZE).unwrap_or(1),
            marker: h.get(MARKER).is_some(),
            time: message.time.unix_timestamp_nanos(),
            ttl: Duration::from_millis(header_u64(h, TTL).unwrap_or(0)),
            meta_ttl: Duration::from_millis(header_u64(h, META_TTL).unwrap_or(0)),
            payload: message.payload.clone(),
        })
    }

    /// Whether the publication's own ttl has passed.
    pub(crate) fn expired(&self, now: i128) -> bool {
        self.time + self.ttl.as_nanos() as i128 <= now
    }

    pub(crate) fn tip(&self) -> Tip {
        let keep = self.meta_ttl.max(self.ttl).as_nanos() as i128;
        Tip {
            seq: self.seq,
            offset: self.offset,
            epoch: self.epoch.clone(),
            position_expires: self.time + keep,
        }
    }

    /// The stored publication (offset included).
    pub(crate) fn publication(&self) -> Option<Publication> {
        serde_json::from_slice(&self.payload).ok()
    }
}

/// The headers of a new message at `offset` (0 and `marker`: an empty
/// stream's position) following stream sequence `prev`.
pub(crate) fn headers(
    offset: u64,
    epoch: &str,
    prev: u64,
    options: &HistoryOptions,
    marker: bool,
) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(OFFSET, offset.to_string().as_str());
    h.insert(EPOCH, epoch);
    h.insert(PREV, prev.to_string().as_str());
    let ttl = if marker { Duration::ZERO } else { options.ttl };
    h.insert(TTL, ttl.as_millis().to_string().as_str());
    h.insert(META_TTL, options.meta_ttl.as_millis().to_string().as_str());
    h.insert(SIZE, options.size.max(1).to_string().as_str());
    if marker {
        h.insert(MARKER, "1");
    }
    h
}

/// Whether a live message on a history subject is a marker (not delivered).
pub(crate) fn is_marker(headers: Option<&HeaderMap>) -> bool {
    headers.is_some_and(|h| h.get(MARKER).is_some())
}

/// The epoch a live message on a history subject carries.
pub(crate) fn epoch_of(headers: Option<&HeaderMap>) -> Option<&str> {
    Some(headers?.get(EPOCH)?.as_str())
}

/// A fresh epoch: the stream's creation time (so a recreated stream never
/// repeats an epoch) and 64 random bits (so two runs of one channel in one
/// stream never share one).
pub(crate) fn new_epoch(stream_created: u64) -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::BuildHasher;
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let random = RandomState::new().hash_one((now_nanos(), n));
    format!("{:x}-{random:016x}", stream_created / 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_differ_and_carry_the_stream() {
        let (a, b) = (new_epoch(5_000_000), new_epoch(5_000_000));
        assert_ne!(a, b);
        assert!(a.starts_with("5-"));
    }

    #[test]
    fn headers_round_trip_through_a_record() {
        let options = HistoryOptions {
            size: 3,
            ttl: Duration::from_secs(2),
            meta_ttl: Duration::from_secs(30),
        };
        let message = StreamMessage {
            subject: "clarion.c._eA.h".into(),
            sequence: 9,
            headers: headers(4, "e1", 7, &options, false),
            payload: bytes::Bytes::from_static(br#"{"offset":4,"data":1}"#),
            time: time::OffsetDateTime::from_unix_timestamp(100).unwrap(),
        };
        let r = Record::decode(&message).unwrap();
        assert_eq!((r.seq, r.offset, r.prev, r.size), (9, 4, 7, 3));
        assert!(!r.marker && r.publication().unwrap().offset == Some(4));
        let t0 = 100 * 1_000_000_000;
        assert!(!r.expired(t0 + 1_999_000_000) && r.expired(t0 + 2_000_000_000));
        assert_eq!(r.tip().position_expires, t0 + 30_000_000_000);
    }
}
