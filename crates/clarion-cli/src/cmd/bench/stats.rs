//! What connection tasks count, and the measurement window they count in.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use super::histogram::Histogram;

/// The timeline of a run: warm-up from `start`, then the measured window
/// `[measure_from, end)`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Window {
    /// When load starts (warm-up begins).
    pub(crate) start: Instant,
    /// Start of the measured window.
    pub(crate) measure_from: Instant,
    /// End of the measured window: no new load after it.
    pub(crate) end: Instant,
}

impl Window {
    /// A window that starts now: `warmup`, then `duration` measured.
    pub(crate) fn starting_now(warmup: Duration, duration: Duration) -> Self {
        let start = Instant::now();
        Window {
            start,
            measure_from: start + warmup,
            end: start + warmup + duration,
        }
    }

    /// Whether `at` is inside the measured window.
    pub(crate) fn contains(&self, at: Instant) -> bool {
        at >= self.measure_from && at < self.end
    }

    /// Length of the measured window.
    pub(crate) fn duration(&self) -> Duration {
        self.end - self.measure_from
    }
}

/// Counts of one connection (or, merged, of all).
#[derive(Debug, Default)]
pub(crate) struct Tally {
    /// Messages (or handshakes) completed inside the window.
    pub(crate) messages: u64,
    /// Payload bytes those messages carried, one direction.
    pub(crate) bytes: u64,
    /// Failures: mismatched echoes, protocol errors, dropped connections.
    pub(crate) errors: u64,
    /// Messages sent (or due) inside the window that got no echo in time.
    pub(crate) unanswered: u64,
    /// The first failure, to show the user.
    pub(crate) first_error: Option<String>,
}

impl Tally {
    /// Counts a failure, keeping the first description.
    pub(crate) fn error(&mut self, what: impl FnOnce() -> String) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(what());
        }
    }

    /// A run that measured nothing failed, even without another error
    /// (a server that swallows messages, say): counts `what` as one.
    pub(crate) fn require_some(&mut self, what: &str) {
        if self.messages == 0 && self.errors == 0 {
            self.error(|| what.to_owned());
        }
    }

    /// Adds another tally.
    pub(crate) fn merge(&mut self, other: Tally) {
        self.messages += other.messages;
        self.bytes += other.bytes;
        self.errors += other.errors;
        self.unanswered += other.unanswered;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// Waits for every task and adds up their tallies (a panicked task counts
/// as an error).
pub(crate) async fn join_tallies(mut tasks: JoinSet<Tally>) -> Tally {
    let mut total = Tally::default();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(tally) => total.merge(tally),
            Err(err) => total.error(|| format!("a connection task failed: {err}")),
        }
    }
    total
}

/// Latency histograms shared by connection tasks: a few shards behind
/// mutexes, so memory does not grow with the connection count. Tasks
/// record through a [`Recorder`], which takes a shard's lock once per
/// batch of samples, never across an `.await`.
#[derive(Clone, Debug)]
pub(crate) struct Shards {
    shards: Arc<[Mutex<Histogram>]>,
}

impl Shards {
    /// Enough shards that worker threads rarely meet on one.
    pub(crate) fn new(threads: usize) -> Self {
        let count = (threads * 4).clamp(1, 64);
        Shards {
            shards: (0..count).map(|_| Mutex::default()).collect(),
        }
    }

    /// A recorder for connection `connection`.
    pub(crate) fn recorder(&self, connection: usize) -> Recorder {
        Recorder {
            shards: self.clone(),
            connection,
            pending: Vec::new(),
        }
    }

    /// All shards merged.
    pub(crate) fn merged(&self) -> Histogram {
        let mut total = Histogram::default();
        for shard in self.shards.iter() {
            total.merge(&lock(shard));
        }
        total
    }

    fn record_all(&self, connection: usize, samples: &[u64]) {
        let mut histogram = lock(&self.shards[connection % self.shards.len()]);
        for &nanos in samples {
            histogram.record(nanos);
        }
    }
}

/// A poisoned shard only means another recorder panicked mid-way; its
/// counts are still usable.
fn lock(shard: &Mutex<Histogram>) -> std::sync::MutexGuard<'_, Histogram> {
    shard
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Samples per lock of a shard.
const BATCH: usize = 64;

/// One connection's way into [`Shards`]: buffers samples and adds them in
/// batches; whatever is left is added on drop.
#[derive(Debug)]
pub(crate) struct Recorder {
    shards: Shards,
    connection: usize,
    pending: Vec<u64>,
}

impl Recorder {
    /// Records a duration (saturating at `u64::MAX` nanoseconds).
    pub(crate) fn record(&mut self, elapsed: Duration) {
        if self.pending.capacity() == 0 {
            self.pending.reserve_exact(BATCH);
        }
        self.pending
            .push(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX));
        if self.pending.len() >= BATCH {
            self.flush();
        }
    }

    /// Adds the buffered samples to the shared histogram.
    pub(crate) fn flush(&mut self) {
        if !self.pending.is_empty() {
            self.shards.record_all(self.connection, &self.pending);
            self.pending.clear();
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_bounds() {
        let window = Window::starting_now(Duration::from_secs(1), Duration::from_secs(2));
        assert!(!window.contains(window.start));
        assert!(window.contains(window.measure_from));
        assert!(!window.contains(window.end));
        assert_eq!(window.duration(), Duration::from_secs(2));
    }

    #[test]
    fn tallies_keep_the_first_error() {
        let mut a = Tally {
            messages: 3,
            ..Tally::default()
        };
        let mut b = Tally::default();
        b.error(|| "first".into());
        b.error(|| "second".into());
        a.merge(b);
        assert_eq!((a.messages, a.errors), (3, 2));
        assert_eq!(a.first_error.as_deref(), Some("first"));
    }

    #[test]
    fn recorders_flush_in_batches_and_on_drop() {
        let shards = Shards::new(2);
        let mut recorders: Vec<Recorder> = (0..3).map(|c| shards.recorder(c)).collect();
        for _ in 0..BATCH {
            recorders[0].record(Duration::from_micros(10));
        }
        recorders[1].record(Duration::from_micros(20));
        assert_eq!(shards.merged().count(), BATCH as u64);
        drop(recorders);
        let merged = shards.merged();
        assert_eq!(merged.count(), BATCH as u64 + 1);
        assert_eq!(merged.max(), 20_000);
    }
}
