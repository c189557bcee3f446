//! Samples CPU time at the edges of the measured window, the server's and
//! our own (a client near 100 % of its threads is the bottleneck, and the
//! run should say so), and the server's memory at the end, from a task of
//! its own.

use std::time::Duration;

use tokio::task::JoinHandle;

use super::procstat::{cpu_between, CpuSample, Server};
use super::stats::Window;

/// What the server used during the measured window.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Usage {
    /// CPU time, scaled to exactly the window's length (the samples are
    /// taken by a task that may wake a little late).
    pub(crate) cpu: Option<Duration>,
    /// Resident memory at the end of the window, KiB.
    pub(crate) rss_kib: Option<u64>,
    /// Our own CPU time in the window, scaled the same way.
    pub(crate) client_cpu: Option<Duration>,
}

/// A running sampler.
#[derive(Debug)]
pub(crate) struct Watch {
    task: JoinHandle<anyhow::Result<Usage>>,
}

impl Watch {
    /// Starts sampling ourselves and `server` (if any) over `window`.
    pub(crate) fn spawn(server: Option<Server>, window: Window) -> Self {
        Watch {
            task: tokio::spawn(sample(server, window)),
        }
    }

    /// Waits for the end samples.
    pub(crate) async fn finish(self) -> anyhow::Result<Usage> {
        self.task.await?
    }
}

async fn sample(server: Option<Server>, window: Window) -> anyhow::Result<Usage> {
    let client = Server::new(std::process::id())?;
    tokio::time::sleep_until(window.measure_from.into()).await;
    let first = (client.cpu()?, server.map(|s| s.cpu()).transpose()?);
    tokio::time::sleep_until(window.end.into()).await;
    let last = (client.cpu()?, server.map(|s| s.cpu()).transpose()?);
    let rss_kib = server.map(|s| s.rss_kib()).transpose()?;
    let scaled = |start: &CpuSample, end: &CpuSample| {
        let sampled = end.at.saturating_duration_since(start.at);
        let used = cpu_between(start, end);
        if sampled.is_zero() {
            used
        } else {
            used.mul_f64(window.duration().as_secs_f64() / sampled.as_secs_f64())
        }
    };
    let cpu = match (&first.1, &last.1) {
        (Some(start), Some(end)) => Some(scaled(start, end)),
        _ => None,
    };
    Ok(Usage {
        cpu,
        rss_kib,
        client_cpu: Some(scaled(&first.0, &last.0)),
    })
}

impl Usage {
    /// Our CPU use over the window, in cores (1.0: one core busy).
    pub(crate) fn client_cores(&self, window: Duration) -> Option<f64> {
        let cpu = self.client_cpu?;
        (!window.is_zero()).then(|| cpu.as_secs_f64() / window.as_secs_f64())
    }

    /// Server CPU microseconds per completed message, if measured.
    pub(crate) fn cpu_us_per(&self, count: u64) -> Option<f64> {
        let cpu = self.cpu?;
        (count > 0).then(|| cpu.as_secs_f64() * 1e6 / count as f64)
    }
}
