//! What the benchmark reads from `/proc`: a server's CPU time and memory,
//! and our own open-file limit. Linux only; no libc.
//!
//! CPU time is the sum over the server's threads of the first field of
//! `/proc/PID/task/TID/schedstat`: nanoseconds on the CPU, exact. (The
//! process-level `/proc/PID/schedstat` counts the main thread alone, which
//! in a tokio server does almost nothing.) A thread that exits loses its
//! share from that sum, so the process's `utime + stime` from
//! `/proc/PID/stat` (all threads, dead ones included, in 10 ms ticks) is read
//! too, and wins when it is clearly larger.

use std::collections::HashMap;
use std::io;
use std::time::{Duration, Instant};

use anyhow::Context as _;

/// Clock ticks per second of `utime`/`stime`. `sysconf(_SC_CLK_TCK)` is
/// `USER_HZ`, which the Linux ABI fixes at 100 on every architecture we run
/// on; reading it would need libc for no gain.
const TICKS_PER_SEC: u64 = 100;
/// Nanoseconds per tick.
const NANOS_PER_TICK: u64 = 1_000_000_000 / TICKS_PER_SEC;

/// A server process observed through `/proc`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Server {
    pid: u32,
}

/// The server's CPU time at one instant.
#[derive(Clone, Debug)]
pub(crate) struct CpuSample {
    /// When it was read.
    pub(crate) at: Instant,
    /// Nanoseconds on the CPU, per live thread.
    per_thread: HashMap<u32, u64>,
    /// `utime + stime` of the whole process, in nanoseconds (10 ms steps).
    process_ticks_ns: u64,
}

impl Server {
    /// Checks that `pid` names a live process we can read.
    pub(crate) fn new(pid: u32) -> anyhow::Result<Self> {
        let server = Server { pid };
        server
            .rss_kib()
            .with_context(|| format!("cannot read /proc/{pid}/status (is --server-pid right?)"))?;
        Ok(server)
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// Resident set size (`VmRSS` of `/proc/PID/status`), KiB.
    pub(crate) fn rss_kib(&self) -> io::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))?;
        parse_vm_rss(&status).ok_or_else(|| io::Error::other("no VmRSS line"))
    }

    /// Reads the CPU time of every thread and of the process.
    pub(crate) fn cpu(&self) -> io::Result<CpuSample> {
        let mut per_thread = HashMap::new();
        for entry in std::fs::read_dir(format!("/proc/{}/task", self.pid))? {
            let entry = entry?;
            let Some(tid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
                continue;
            };
            // A thread may exit between the listing and the read.
            if let Ok(text) = std::fs::read_to_string(entry.path().join("schedstat")) {
                if let Some(nanos) = parse_schedstat(&text) {
                    per_thread.insert(tid, nanos);
                }
            }
        }
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid))?;
        let ticks = parse_stat_ticks(&stat).ok_or_else(|| io::Error::other("bad stat"))?;
        Ok(CpuSample {
            at: Instant::now(),
            per_thread,
            process_ticks_ns: ticks * NANOS_PER_TICK,
        })
    }

    /// The server's own open-file soft limit, if readable.
    pub(crate) fn open_files_limit(&self) -> Option<u64> {
        let limits = std::fs::read_to_string(format!("/proc/{}/limits", self.pid)).ok()?;
        parse_open_files_soft_limit(&limits)
    }
}

/// CPU time the server spent between two samples.
pub(crate) fn cpu_between(start: &CpuSample, end: &CpuSample) -> Duration {
    let threads: u64 = end
        .per_thread
        .iter()
        .map(|(tid, &now)| now.saturating_sub(start.per_thread.get(tid).copied().unwrap_or(0)))
        .sum();
    let process = end.process_ticks_ns.saturating_sub(start.process_ticks_ns);
    // Ticks are coarse: only trust them over the exact sum when the gap
    // is more than their rounding (a tick each for utime and stime, at
    // both ends), which means a thread died during the window.
    let nanos = if process > threads + 4 * NANOS_PER_TICK {
        process
    } else {
        threads
    };
    Duration::from_nanos(nanos)
}

/// Fails early when `needed` descriptors would not fit under our soft
/// `RLIMIT_NOFILE` (read from `/proc/self/limits`; raise it with
/// `ulimit -n`). An unreadable limit is not an error.
pub(crate) fn check_open_files(needed: u64) -> anyhow::Result<()> {
    let Ok(limits) = std::fs::read_to_string("/proc/self/limits") else {
        return Ok(());
    };
    match parse_open_files_soft_limit(&limits) {
        Some(soft) if needed > soft => anyhow::bail!(
            "this run needs about {needed} open files but the soft limit is {soft}: \
             raise it (`ulimit -n {needed}`, up to the hard limit) or use fewer connections"
        ),
        _ => Ok(()),
    }
}

/// `VmRSS:   1234 kB` → 1234.
fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The first field of a `schedstat` line: nanoseconds on the CPU.
fn parse_schedstat(text: &str) -> Option<u64> {
    text.split_whitespace().next()?.parse().ok()
}

/// `utime + stime` (fields 14 and 15) of `/proc/PID/stat`, in ticks. The
/// command name (field 2) may hold spaces and parentheses, so fields are
/// counted from the last `)`.
fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The soft limit on the `Max open files` line (`None` if unlimited).
fn parse_open_files_soft_limit(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_vm_rss() {
        let status = "Name:\tclarion\nVmPeak:\t  9000 kB\nVmRSS:\t    5120 kB\nThreads:\t3\n";
        assert_eq!(parse_vm_rss(status), Some(5120));
        assert_eq!(parse_vm_rss("Name: x\n"), None);
    }

    #[test]
    fn parses_stat_with_a_strange_command_name() {
        // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt
        // majflt cmajflt utime stime ...
        let stat = "42 (a) b) (c) S 1 42 42 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 3 0";
        assert_eq!(parse_stat_ticks(stat), Some(325));
    }

    #[test]
    fn parses_schedstat_and_limits() {
        assert_eq!(parse_schedstat("285717 717289 2\n"), Some(285_717));
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max processes             63704                63704                processes \n\
                      Max open files            1024                 20000                files     \n";
        assert_eq!(parse_open_files_soft_limit(limits), Some(1024));
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(parse_open_files_soft_limit(unlimited), None);
    }

    #[test]
    fn reads_our_own_process() {
        let me = Server::new(std::process::id()).expect("own /proc entry");
        assert!(me.rss_kib().expect("rss") > 0);
        // Spin until our own CPU time shows 20 ms more, whatever share of
        // a core a busy machine gives us; it must, and not before 20 ms of
        // wall time have passed.
        let start = me.cpu().expect("cpu");
        let began = Instant::now();
        let mut x = 0u64;
        let used = loop {
            for _ in 0..100_000 {
                x = std::hint::black_box(x.wrapping_add(1));
            }
            let used = cpu_between(&start, &me.cpu().expect("cpu"));
            if used >= Duration::from_millis(20) {
                break used;
            }
            assert!(
                began.elapsed() < Duration::from_secs(10),
                "CPU time stuck at {used:?}"
            );
        };
        assert!(
            began.elapsed() >= Duration::from_millis(19),
            "{used:?} in {:?}",
            began.elapsed()
        );
        assert!(me.open_files_limit().is_some());
    }

    #[test]
    fn a_dead_thread_falls_back_to_ticks() {
        let sample = |threads: &[(u32, u64)], ticks: u64| CpuSample {
            at: Instant::now(),
            per_thread: threads.iter().copied().collect(),
            process_ticks_ns: ticks * NANOS_PER_TICK,
        };
        let start = sample(&[(1, 1_000), (2, 5_000_000_000)], 500);
        // Thread 2 ran 1 s more and exited; thread 1 ran 1 ms more.
        let end = sample(&[(1, 1_001_000)], 601);
        assert_eq!(cpu_between(&start, &end), Duration::from_millis(1010));
        // With every thread alive, the exact sum wins over the ticks.
        let end = sample(&[(1, 1_001_000), (2, 5_000_500_000)], 500);
        assert_eq!(cpu_between(&start, &end), Duration::from_micros(1_500));
    }
}
