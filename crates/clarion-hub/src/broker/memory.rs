//! The in-memory broker: one node, history and presence in this process.
//! The reference implementation of the [`Broker`] contract.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use clarion_wire::{ClientInfo, Publication, StreamPosition};
use tokio::time::Instant;

use super::{
    BoxFuture, Broker, BrokerError, BrokerHandler, HistoryOptions, HistoryPage, HistoryQuery,
    NewPublication, PresenceStats,
};

const SHARDS: usize = 16;
/// How often a shard drops expired streams and presence of idle channels.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// The in-memory broker. Time is tokio's clock, so tests can pause and
/// advance it.
pub struct MemoryBroker {
    handler: OnceLock<Arc<dyn BrokerHandler>>,
    shards: Vec<Mutex<Shard>>,
    hasher: RandomState,
    epochs: EpochSource,
}

impl Default for MemoryBroker {
    fn default() -> MemoryBroker {
        MemoryBroker::new()
    }
}

impl std::fmt::Debug for MemoryBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBroker").finish_non_exhaustive()
    }
}

struct Shard {
    streams: HashMap<String, Stream>,
    presence: HashMap<String, PresenceSet>,
    next_sweep: Instant,
}

struct Stream {
    epoch: String,
    top: u64,
    entries: VecDeque<(Publication, Instant)>,
    expires: Instant,
}

#[derive(Default)]
struct PresenceSet {
    clients: HashMap<String, (ClientInfo, Instant)>,
    users: HashMap<String, u64>,
    expiry: BTreeSet<(Instant, String)>,
}

/// Epochs unique within the process (a counter) and across restarts (a
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

impl MemoryBroker {
    /// An empty broker.
    pub fn new() -> MemoryBroker {
        MemoryBroker {
            handler: OnceLock::new(),
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        streams: HashMap::new(),
                        presence: HashMap::new(),
                        next_sweep: Instant::now() + SWEEP_EVERY,
                    })
                })
                .collect(),
            hasher: RandomState::new(),
            epochs: EpochSource::new(),
        }
    }

    fn shard(&self, channel: &str) -> MutexGuard<'_, Shard> {
        let i = (self.hasher.hash_one(channel) as usize) % SHARDS;
        // A poisoned shard only means a handler panicked mid-delivery; the
        // maps themselves are always consistent between statements.
        self.shards[i].lock().unwrap_or_else(|e| e.into_inner())
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

    fn publish_now(
        &self,
        channel: &str,
        publication: NewPublication,
        history: Option<HistoryOptions>,
    ) -> Option<StreamPosition> {
        let now = Instant::now();
        let mut shard = self.shard(channel);
        shard.sweep_if_due(now);
        let mut publication = Publication {
            offset: None,
            data: publication.data,
            info: publication.info,
        };
        let Some(options) = history else {
            self.deliver(channel, &publication, None);
            return None;
        };
        let stream = self.stream(&mut shard, channel, now, &options);
        stream.top += 1;
        publication.offset = Some(stream.top);
        stream
            .entries
            .push_back((publication.clone(), now + options.ttl));
        while stream.entries.len() > options.size.max(1) {
            stream.entries.pop_front();
        }
        stream.expires = now + options.meta_ttl.max(options.ttl);
        let position = StreamPosition {
            offset: stream.top,
            epoch: stream.epoch.clone(),
        };
        // Delivered under the shard lock: per-channel order is offset order.
        self.deliver(channel, &publication, Some(&position.epoch));
        Some(position)
    }

    fn deliver(&self, channel: &str, publication: &Publication, epoch: Option<&str>) {
        if let Some(handler) = self.handler.get() {
            handler.on_publication(channel, publication, epoch);
        }
    }

    fn read(&self, channel: &str, query: &HistoryQuery, options: &HistoryOptions) -> HistoryPage {
        let now = Instant::now();
        let mut shard = self.shard(channel);
        let stream = self.stream(&mut shard, channel, now, options);
        let since = query
            .since
            .as_ref()
            .filter(|s| s.epoch == stream.epoch)
            .map(|s| s.offset);
        let offset_of = |e: &(Publication, Instant)| e.0.offset.unwrap_or(0);
        let publications = if query.reverse {
            let before = since.unwrap_or(u64::MAX);
            stream
                .entries
                .iter()
                .rev()
                .filter(|e| offset_of(e) < before)
                .take(query.limit)
                .map(|e| e.0.clone())
                .collect()
        } else {
            let after = since.unwrap_or(0);
            stream
                .entries
                .iter()
                .filter(|e| offset_of(e) > after)
                .take(query.limit)
                .map(|e| e.0.clone())
                .collect()
        };
        HistoryPage {
            publications,
            position: StreamPosition {
                offset: stream.top,
                epoch: stream.epoch.clone(),
            },
        }
    }

    fn with_presence<T>(&self, channel: &str, f: impl FnOnce(&mut PresenceSet, Instant) -> T) -> T {
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
        self.presence.retain(|_, p| {
            p.sweep(now);
            !p.clients.is_empty()
        });
    }
}

impl PresenceSet {
    fn add(&mut self, info: ClientInfo, expires: Instant) {
        let client = info.client.clone();
        match self.clients.insert(client.clone(), (info, expires)) {
            Some((old, old_exp)) => {
                self.expiry.remove(&(old_exp, client.clone()));
                let user = self.clients[&client].0.user.clone();
                if old.user != user {
                    self.release_user(&old.user);
                    *self.users.entry(user).or_default() += 1;
                }
            }
            None => {
                let user = self.clients[&client].0.user.clone();
                *self.users.entry(user).or_default() += 1;
            }
        }
        self.expiry.insert((expires, client));
    }

    fn remove(&mut self, client: &str) {
        if let Some((info, exp)) = self.clients.remove(client) {
            self.expiry.remove(&(exp, client.to_owned()));
            self.release_user(&info.user);
        }
    }

    fn release_user(&mut self, user: &str) {
        if let Some(n) = self.users.get_mut(user) {
            *n -= 1;
            if *n == 0 {
                self.users.remove(user);
            }
        }
    }

    /// Drops expired entries: amortised O(1) per entry ever added.
    fn sweep(&mut self, now: Instant) {
        while let Some((exp, client)) = self.expiry.first().cloned() {
            if exp > now {
                break;
            }
            self.remove(&client);
        }
    }
}

fn ready<'a, T: Send + 'a>(value: T) -> BoxFuture<'a, T> {
    Box::pin(std::future::ready(value))
}

impl Broker for MemoryBroker {
    fn run(&self, handler: Arc<dyn BrokerHandler>) -> BoxFuture<'_, Result<(), BrokerError>> {
        let result = self
            .handler
            .set(handler)
            .map_err(|_| BrokerError::new("run called twice"));
        ready(result)
    }

    fn subscribe<'a>(&'a self, _channel: &'a str) -> BoxFuture<'a, Result<(), BrokerError>> {
        // One node: every publication is delivered; the hub filters.
        ready(Ok(()))
    }

    fn unsubscribe<'a>(&'a self, _channel: &'a str) -> BoxFuture<'a, Result<(), BrokerError>> {
        ready(Ok(()))
    }

    fn publish<'a>(
        &'a self,
        channel: &'a str,
        publication: NewPublication,
        history: Option<HistoryOptions>,
    ) -> BoxFuture<'a, Result<Option<StreamPosition>, BrokerError>> {
        ready(Ok(self.publish_now(channel, publication, history)))
    }

    fn publish_join<'a>(
        &'a self,
        channel: &'a str,
        info: ClientInfo,
    ) -> BoxFuture<'a, Result<(), BrokerError>> {
        if let Some(handler) = self.handler.get() {
            handler.on_join(channel, &info);
        }
        ready(Ok(()))
    }

    fn publish_leave<'a>(
        &'a self,
        channel: &'a str,
        info: ClientInfo,
    ) -> BoxFuture<'a, Result<(), BrokerError>> {
        if let Some(handler) = self.handler.get() {
            handler.on_leave(channel, &info);
        }
        ready(Ok(()))
    }

    fn history<'a>(
        &'a self,
        channel: &'a str,
        query: HistoryQuery,
        options: HistoryOptions,
    ) -> BoxFuture<'a, Result<HistoryPage, BrokerError>> {
        ready(Ok(self.read(channel, &query, &options)))
    }

    fn remove_history<'a>(&'a self, channel: &'a str) -> BoxFuture<'a, Result<(), BrokerError>> {
        self.shard(channel).streams.remove(channel);
        ready(Ok(()))
    }

    fn add_presence<'a>(
        &'a self,
        channel: &'a str,
        info: ClientInfo,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), BrokerError>> {
        self.with_presence(channel, |set, now| set.add(info, now + ttl));
        ready(Ok(()))
    }

    fn remove_presence<'a>(
        &'a self,
        channel: &'a str,
        client: &'a str,
    ) -> BoxFuture<'a, Result<(), BrokerError>> {
        self.with_presence(channel, |set, _| set.remove(client));
        ready(Ok(()))
    }

    fn presence<'a>(
        &'a self,
        channel: &'a str,
    ) -> BoxFuture<'a, Result<Vec<ClientInfo>, BrokerError>> {
        let clients = self.with_presence(channel, |set, _| {
            set.clients.values().map(|(info, _)| info.clone()).collect()
        });
        ready(Ok(clients))
    }

    fn presence_stats<'a>(
        &'a self,
        channel: &'a str,
    ) -> BoxFuture<'a, Result<PresenceStats, BrokerError>> {
        let stats = self.with_presence(channel, |set, _| PresenceStats {
            num_clients: set.clients.len() as u64,
            num_users: set.users.len() as u64,
        });
        ready(Ok(stats))
    }
}
