//! Giving memory back to the operating system after connections close.
//!
//! glibc's allocator keeps freed memory for reuse: after 10,000 connections
//! close, a server's resident memory stays where the peak left it, because
//! the heap only shrinks from its top and a few live allocations there pin
//! the rest. `malloc_trim` returns every free page, wherever it is. A
//! [`HeapTrimmer`] calls it when the number of open connections has halved
//! since the last trim (and at least `MIN_CLOSED` closed), so a server
//! draining from its peak trims a handful of times, never per connection.
//! On other platforms and allocators it does nothing.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Fewest connections that must have closed since the last trim: below
/// this the memory at stake is not worth a walk over the heap.
const MIN_CLOSED: usize = 256;

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
        let open = self.counts.open.fetch_sub(1, Ordering::Relaxed) - 1;
        let peak = self.counts.peak.load(Ordering::Relaxed);
        let closed = peak.saturating_sub(open);
        if closed >= MIN_CLOSED && open <= peak / 2 {
            // One of the racing closers wins the right to trim.
            let won = self
                .counts
                .peak
                .compare_exchange(peak, open, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok();
            if won {
                let released = release_free_memory();
                tracing::debug!(open, peak, released, "trimmed the heap");
            }
        }
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
    fn a_few_closes_never_trim() {
        let trimmer = HeapTrimmer::new();
        let open: Vec<_> = (0..100).map(|_| trimmer.track()).collect();
        drop(open);
        assert_eq!(trimmer.counts.peak.load(Ordering::Relaxed), 100);
    }
}
