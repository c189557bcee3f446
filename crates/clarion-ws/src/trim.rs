//! Giving memory back to the operating system after connections close.
//!
//! glibc's allocator keeps freed memory for reuse: after 10,000 connections
//! close, a server's resident memory stays where the peak left it, because
//! the heap only shrinks from its top and a few live allocations there pin
//! the rest. `malloc_trim` returns every free page, wherever it is. A
//! [`HeapTrimmer`] calls it when the number of open connections has halved
//! since the last trim (and at least `MIN_CLOSED` closed), so a server
//! draining from its peak trims a handful of times, never per connection;
//! and once closes stop for `QUIET` (when a tokio runtime is running), so
//! that what the last closes freed goes back within seconds too, without
//! waiting for more connections to come and go. On other platforms and
//! allocators trimming does nothing.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

/// Fewest connections that must have closed since the last trim: below
/// this the memory at stake is not worth a walk over the heap.
const MIN_CLOSED: usize = 256;

/// After the last close, how long closes must stop before the quiet trim.
const QUIET: Duration = Duration::from_secs(1);

/// Counts open connections and trims the heap when many have closed.
/// Clones share the count.
#[derive(Clone, Debug, Default)]
pub struct HeapTrimmer {
    counts: Arc<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    open: AtomicUsize,
    /// Most connections open at once since the last trim.
    peak: AtomicUsize,
    /// A quiet-period trim is scheduled.
    quiet_pending: AtomicBool,
    /// Milliseconds since `epoch` of the last close.
    last_close_ms: AtomicU64,
    epoch: std::sync::OnceLock<Instant>,
    /// Trims done (for tests and logs).
    trims: AtomicUsize,
}

impl Counts {
    fn now_ms(&self) -> u64 {
        let epoch = *self.epoch.get_or_init(Instant::now);
        epoch.elapsed().as_millis() as u64
    }

    /// Gives free memory back (the caller resets `peak`).
    fn trim(&self, open: usize, peak: usize, why: &str) {
        let released = release_free_memory();
        self.trims.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(open, peak, released, why, "trimmed the heap");
    }

    /// Schedules a trim for when closes have stopped for [`QUIET`].
    fn schedule_quiet_trim(self: &Arc<Self>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.quiet_pending.swap(true, Ordering::AcqRel) {
            return; // one is scheduled: it sees this close's time
        }
        let counts = Arc::clone(self);
        runtime.spawn(async move {
            loop {
                let since = counts.now_ms() - counts.last_close_ms.load(Ordering::Relaxed);
                let quiet_ms = QUIET.as_millis() as u64;
                if since >= quiet_ms {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(quiet_ms - since)).await;
            }
            counts.quiet_pending.store(false, Ordering::Release);
            let open = counts.open.load(Ordering::Relaxed);
            let peak = counts.peak.swap(open, Ordering::Relaxed);
            if peak > open {
                counts.trim(open, peak, "quiet");
            }
        });
    }
}

/// One open connection, counted until dropped.
#[derive(Debug)]
pub struct TrackedConnection {
    counts: Arc<Counts>,
}

impl HeapTrimmer {
    /// A trimmer with no connections.
    pub fn new() -> Self {
        HeapTrimmer::default()
    }

    /// Counts a connection until the returned guard is dropped.
    pub fn track(&self) -> TrackedConnection {
        let open = self.counts.open.fetch_add(1, Ordering::Relaxed) + 1;
        self.counts.peak.fetch_max(open, Ordering::Relaxed);
        TrackedConnection {
            counts: Arc::clone(&self.counts),
        }
    }

    /// Connections open now.
    pub fn open_connections(&self) -> usize {
        self.counts.open.load(Ordering::Relaxed)
    }
}

impl Drop for TrackedConnection {
    fn drop(&mut self) {
        let counts = &self.counts;
        let open = counts.open.fetch_sub(1, Ordering::Relaxed) - 1;
        let now = counts.now_ms();
        counts.last_close_ms.store(now, Ordering::Relaxed);
        let peak = counts.peak.load(Ordering::Relaxed);
        let closed = peak.saturating_sub(open);
        if closed >= MIN_CLOSED && open <= peak / 2 {
            // One of the racing closers wins the right to trim.
            let won = counts
                .peak
                .compare_exchange(peak, open, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok();
            if won {
                counts.trim(open, peak, "halved");
            }
        }
        counts.schedule_quiet_trim();
    }
}

/// Returns free heap pages to the operating system; whether any were.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn release_free_memory() -> bool {
    // SAFETY: malloc_trim takes the allocator's locks itself, may be called
    // from any thread at any time, and only releases memory that is free.
    unsafe { libc::malloc_trim(0) == 1 }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_free_memory() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_once_half_of_the_peak_has_closed() {
        let trimmer = HeapTrimmer::new();
        let mut open: Vec<_> = (0..1000).map(|_| trimmer.track()).collect();
        open.truncate(501);
        assert_eq!(trimmer.counts.peak.load(Ordering::Relaxed), 1000);
        open.pop(); // 500 open: half the peak
        assert_eq!(trimmer.counts.peak.load(Ordering::Relaxed), 500);
        assert_eq!(trimmer.open_connections(), 500);
    }

    #[test]
    fn a_few_closes_never_trim_on_the_spot() {
        let trimmer = HeapTrimmer::new();
        let open: Vec<_> = (0..100).map(|_| trimmer.track()).collect();
        drop(open);
        assert_eq!(trimmer.counts.peak.load(Ordering::Relaxed), 100);
        assert_eq!(trimmer.counts.trims.load(Ordering::Relaxed), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn closes_that_stop_are_trimmed_after_a_quiet_second() {
        let trimmer = HeapTrimmer::new();
        let mut open: Vec<_> = (0..100).map(|_| trimmer.track()).collect();
        open.truncate(60);
        let trims = || trimmer.counts.trims.load(Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(500)).await;
        open.truncate(10); // closes go on: the quiet period starts again
        tokio::time::sleep(Duration::from_millis(900)).await;
        assert_eq!(trims(), 0, "not while closes keep coming");
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(trims(), 1, "one trim once they stopped");
        assert_eq!(trimmer.counts.peak.load(Ordering::Relaxed), 10);
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(trims(), 1, "nothing closed since: no more trims");
    }
}
