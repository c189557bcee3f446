//! Turning results into the one-line JSON object and the short summary.

use std::io::Write as _;
use std::time::Duration;

use serde_json::{json, Map, Value};

use super::histogram::Histogram;
use super::stats::Tally;
use super::watch::Usage;
use super::Common;

/// Prints the summary on stderr and, with `--json`, `object` as one line on
/// stdout.
pub(crate) fn emit(common: &Common, summary: &str, object: Value) -> anyhow::Result<()> {
    eprintln!("{summary}");
    if common.json {
        let mut out = std::io::stdout().lock();
        serde_json::to_writer(&mut out, &object)?;
        writeln!(out)?;
        out.flush()?;
    }
    Ok(())
}

/// The keys every mode starts with: the tool, the mode, the URL and the
/// shared parameters.
pub(crate) fn header(common: &Common, mode: &str, threads: usize) -> Map<String, Value> {
    let mut object = Map::new();
    object.insert("tool".into(), json!("clarion-bench"));
    object.insert("version".into(), json!(env!("CARGO_PKG_VERSION")));
    object.insert("mode".into(), json!(mode));
    object.insert("url".into(), json!(common.url));
    object.insert("threads".into(), json!(threads));
    object.insert("deflate".into(), json!(common.deflate));
    object.insert("server_pid".into(), json!(common.server_pid));
    object
}

/// Adds the error count, the first error, the server's memory and our
/// own CPU use over `window`.
pub(crate) fn add_outcome(
    object: &mut Map<String, Value>,
    tally: &Tally,
    usage: &Usage,
    window: Duration,
) {
    let cores = usage.client_cores(window).map(|cores| round(cores, 3));
    object.insert("client_cpu_cores".into(), json!(cores));
    object.insert("errors".into(), json!(tally.errors));
    object.insert("error".into(), json!(tally.first_error));
    object.insert("server_rss_kib".into(), json!(usage.rss_kib));
}

/// `latency_us`: percentiles in microseconds, with 0.1 µs resolution.
pub(crate) fn latency_json(histogram: &Histogram) -> Value {
    let us = |nanos: u64| micros(nanos);
    json!({
        "samples": histogram.count(),
        "p50": us(histogram.percentile(50.0)),
        "p90": us(histogram.percentile(90.0)),
        "p99": us(histogram.percentile(99.0)),
        "p999": us(histogram.percentile(99.9)),
        "max": us(histogram.max()),
        "mean": round(histogram.mean() / 1e3, 1),
    })
}

/// `p50 41.2  p90 …  max 1200.5 µs` for the summary.
pub(crate) fn latency_line(histogram: &Histogram) -> String {
    format!(
        "p50 {}  p90 {}  p99 {}  p99.9 {}  max {} µs",
        micros(histogram.percentile(50.0)),
        micros(histogram.percentile(90.0)),
        micros(histogram.percentile(99.0)),
        micros(histogram.percentile(99.9)),
        micros(histogram.max()),
    )
}

/// The client's CPU use, and a warning when it may be the bottleneck: busy
/// close to all the cores it may run on (`--threads`, and the CPUs it is
/// pinned to).
pub(crate) fn client_line(usage: &Usage, window: Duration, threads: usize) -> String {
    let usable = std::thread::available_parallelism().map_or(threads, |n| n.get().min(threads));
    match usage.client_cores(window) {
        Some(cores) if cores > 0.85 * usable as f64 => format!(
            "client: {cores:.2} cores busy of {threads} thread(s): \
             the load generator may be the bottleneck"
        ),
        Some(cores) => format!("client: {cores:.2} cores busy"),
        None => "client: CPU not measured".to_owned(),
    }
}

/// The server part of the summary: CPU per item and memory, if measured.
pub(crate) fn server_line(usage: &Usage, count: u64, per: &str) -> String {
    let cpu = match usage.cpu_us_per(count) {
        Some(us) => format!("{us:.2} µs CPU/{per}"),
        None => "CPU not measured (no --server-pid)".to_owned(),
    };
    match usage.rss_kib {
        Some(kib) => format!("server: {cpu}, RSS {:.1} MiB", kib as f64 / 1024.0),
        None => format!("server: {cpu}"),
    }
}

/// The errors part of the summary.
pub(crate) fn errors_line(tally: &Tally) -> String {
    match &tally.first_error {
        Some(first) => format!("errors: {} (first: {first})", tally.errors),
        None => "errors: 0".to_owned(),
    }
}

/// `count` over `duration`, per second.
pub(crate) fn per_sec(count: u64, duration: Duration) -> f64 {
    let secs = duration.as_secs_f64();
    if secs > 0.0 {
        count as f64 / secs
    } else {
        0.0
    }
}

/// Nanoseconds as microseconds with one decimal.
fn micros(nanos: u64) -> f64 {
    round(nanos as f64 / 1e3, 1)
}

/// `value` rounded to `digits` decimals (JSON stays short and readable).
pub(crate) fn round(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_json_is_in_microseconds() {
        let mut histogram = Histogram::default();
        for _ in 0..3 {
            histogram.record(41_000);
        }
        histogram.record(1_500_000);
        let value = latency_json(&histogram);
        // The upper edge of 41 000 ns's bucket (40 960..=41 215 ns).
        assert_eq!(value["p50"], json!(41.2));
        assert_eq!(value["max"], json!(1500.0));
        assert_eq!(value["samples"], json!(4));
    }

    #[test]
    fn rates_and_rounding() {
        assert_eq!(per_sec(500, Duration::from_millis(250)), 2000.0);
        assert_eq!(per_sec(5, Duration::ZERO), 0.0);
        assert_eq!(round(12.3456, 2), 12.35);
    }
}
