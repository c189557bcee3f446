//! The state every node of one [`MemoryBackend`](super::MemoryBackend)
//! shares: streams, presence, remembered idempotent results, and the
//! registry of nodes.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};
use std::time::Duration;

use clarion_wire::{Publication, StreamPosition};
use tokio::time::Instant;

use super::presence::PresenceSet;
use super::Node;
use crate::broker::{HistoryOptions, HistoryPage, HistoryQuery, NewPublication};

const SHARDS: usize = 16;
/// How often a shard drops expired streams, presence of idle channels and
/// forgotten idempotency keys.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

pub(super) struct Core {
    shards: Vec<Mutex<Shard>>,
    hasher: RandomState,
    epochs: EpochSource,
    pub(super) idempotency_window: Duration,
    nodes: RwLock<Vec<Weak<Node>>>,
}

pub(super) struct Shard {
    streams: HashMap<String, Stream>,
    pub(super) presence: HashMap<String, PresenceSet>,
    /// (channel, idempotency key) → the first publish's result and when it
    /// is forgotten.
    results: HashMap<(String, String), (Option<StreamPosition>, Instant)>,
    next_sweep: Instant,
}

struct Stream {
    epoch: String,
    top: u64,
    entries: VecDeque<(Publication, Instant)>,
    expires: Instant,
}

/// Epochs unique within the backend (a counter) and across restarts (a
/// random prefix).
struct EpochSource {
    prefix: u64,
    counter: AtomicU64,
}

impl EpochSource {
    fn new() -> EpochSource {
        let seed = RandomState::new().hash_one(std::time::SystemTime::now());
        EpochSource {
            prefix: seed & 0xffff_ffff,
            counter: AtomicU64::new(0),
        }
    }

    fn next(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        format!("{:08x}{n:x}", self.prefix)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock only means a handler panicked mid-delivery; the maps
    // themselves are always consistent between statements.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Core {
    pub(super) fn new(idempotency_window: Duration) -> Core {
        Core {
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        streams: HashMap::new(),
                        presence: HashMap::new(),
                        results: HashMap::new(),
                        next_sweep: Instant::now() + SWEEP_EVERY,
                    })
                })
                .collect(),
            hasher: RandomState::new(),
            epochs: EpochSource::new(),
            idempotency_window,
            nodes: RwLock::default(),
        }
    }

    pub(super) fn shard(&self, channel: &str) -> MutexGuard<'_, Shard> {
        let i = (self.hasher.hash_one(channel) as usize) % SHARDS;
        lock(&self.shards[i])
    }

    pub(super) fn register(&self, node: &Arc<Node>) {
        let mut nodes = self.nodes.write().unwrap_or_else(|e| e.into_inner());
        nodes.retain(|n| n.strong_count() > 0);
        nodes.push(Arc::downgrade(node));
    }

    /// The nodes that are running (run, not shut down, not dropped).
    pub(super) fn running(&self) -> Vec<Arc<Node>> {
        let nodes = self.nodes.read().unwrap_or_else(|e| e.into_inner());
        nodes
            .iter()
            .filter_map(Weak::upgrade)
            .filter(|n| n.is_running())
            .collect()
    }

    /// Calls `f` for every running node, under the registry's read lock.
    fn each_running(&self, mut f: impl FnMut(&Node)) {
        let nodes = self.nodes.read().unwrap_or_else(|e| e.into_inner());
        for node in nodes.iter().filter_map(Weak::upgrade) {
            if node.is_running() {
                f(&node);
            }
        }
    }

    fn new_stream(&self, now: Instant, options: &HistoryOptions) -> Stream {
        Stream {
            epoch: self.epochs.next(),
            top: 0,
            entries: VecDeque::new(),
            expires: now + options.meta_ttl,
        }
    }

    /// The live stream of `channel`, created (new epoch) if missing or expired.
    fn stream<'s>(
        &self,
        shard: &'s mut Shard,
        channel: &str,
        now: Instant,
        options: &HistoryOptions,
    ) -> &'s mut Stream {
        let stream = shard
            .streams
            .entry(channel.to_owned())
            .or_insert_with(|| self.new_stream(now, options));
        if stream.expires <= now {
            *stream = self.new_stream(now, options);
        }
        stream.prune(now);
        stream
    }

    pub(super) fn publish(
        &self,
        channel: &str,
        new: NewPublication,
        history: Option<HistoryOptions>,
    ) -> Option<StreamPosition> {
        let now = Instant::now();
        let mut shard = self.shard(channel);
        shard.sweep_if_due(now);
        let key = new.idempotency_key.map(|k| (channel.to_owned(), k));
        let remembered = key.as_ref().and_then(|k| shard.results.get(k));
        if let Some((first, _)) = remembered.filter(|(_, forget)| *forget > now) {
            return first.clone();
        }
        let mut publication = Publication {
            offset: None,
            data: new.data,
            info: new.info,
        };
        let position = history.map(|options| {
            let stream = self.stream(&mut shard, channel, now, &options);
            stream.append(&mut publication, now, &options)
        });
        // Delivered under the shard lock: per-channel order is offset order
        // on every node.
        let epoch = position.as_ref().map(|p| p.epoch.as_str());
        self.each_running(|node| node.deliver(channel, &publication, epoch));
        if let Some(key) = key {
            let forget = now + self.idempotency_window;
            shard.results.insert(key, (position.clone(), forget));
        }
        position
    }

    pub(super) fn read(
        &self,
        channel: &str,
        query: &HistoryQuery,
        options: &HistoryOptions,
    ) -> HistoryPage {
        let now = Instant::now();
        let mut shard = self.shard(channel);
        let stream = self.stream(&mut shard, channel, now, options);
        let since = query
            .since
            .as_ref()
            .filter(|s| s.epoch == stream.epoch)
            .map(|s| s.offset);
        let offset_of = |e: &&(Publication, Instant)| e.0.offset.unwrap_or(0);
        let entries = stream.entries.iter();
        let publications = if query.reverse {
            let before = since.unwrap_or(u64::MAX);
            let older = entries.rev().filter(|e| offset_of(e) < before);
            older.take(query.limit).map(|e| e.0.clone()).collect()
        } else {
            let after = since.unwrap_or(0);
            let newer = entries.filter(|e| offset_of(e) > after);
            newer.take(query.limit).map(|e| e.0.clone()).collect()
        };
        HistoryPage {
            publications,
            position: stream.position(),
        }
    }

    pub(super) fn remove_history(&self, channel: &str) {
        self.shard(channel).streams.remove(channel);
    }

    /// Runs `f` on `channel`'s presence (expired entries swept first).
    pub(super) fn with_presence<T>(
        &self,
        channel: &str,
        f: impl FnOnce(&mut PresenceSet, Instant) -> T,
    ) -> T {
        let now = Instant::now();
        let mut shard = self.shard(channel);
        let set = shard.presence.entry(channel.to_owned()).or_default();
        set.sweep(now);
        let out = f(set, now);
        if set.clients.is_empty() {
            shard.presence.remove(channel);
        }
        out
    }
}

impl Stream {
    fn append(
        &mut self,
        publication: &mut Publication,
        now: Instant,
        options: &HistoryOptions,
    ) -> StreamPosition {
        self.top += 1;
        publication.offset = Some(self.top);
        self.entries
            .push_back((publication.clone(), now + options.ttl));
        while self.entries.len() > options.size.max(1) {
            self.entries.pop_front();
        }
        self.expires = now + options.meta_ttl.max(options.ttl);
        self.position()
    }

    fn position(&self) -> StreamPosition {
        StreamPosition {
            offset: self.top,
            epoch: self.epoch.clone(),
        }
    }

    fn prune(&mut self, now: Instant) {
        while self.entries.front().is_some_and(|(_, exp)| *exp <= now) {
            self.entries.pop_front();
        }
    }
}

impl Shard {
    fn sweep_if_due(&mut self, now: Instant) {
        if now < self.next_sweep {
            return;
        }
        self.next_sweep = now + SWEEP_EVERY;
        self.streams.retain(|_, s| s.expires > now);
        self.results.retain(|_, (_, forget)| *forget > now);
        self.presence.retain(|_, p| {
            p.sweep(now);
            !p.clients.is_empty()
        });
    }
}
