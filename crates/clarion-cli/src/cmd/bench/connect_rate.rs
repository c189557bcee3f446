//! `clarion bench connect-rate`: C tasks each connect, complete the opening
//! handshake and close cleanly, in a loop. Reports handshakes per second
//! and handshake latency: from the TCP connect to the 101 response (the
//! close is not in the latency, but is in the loop, as for a real client).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::task::JoinSet;

use super::procstat::check_open_files;
use super::report::{self, per_sec, round};
use super::stats::{join_tallies, Shards, Tally, Window};
use super::target::{close_counted, parse_sources, Sources, Target};
use super::watch::Watch;
use super::{exit_code, parse_positive_secs, parse_secs, Common, FD_MARGIN};

/// Arguments of `clarion bench connect-rate`.
#[derive(Debug, clap::Args)]
pub(crate) struct ConnectRateArgs {
    #[command(flatten)]
    pub(crate) common: Common,
    /// Seconds measured (after the warm-up).
    #[arg(long, default_value = "5", value_parser = parse_positive_secs)]
    duration: Duration,
    /// Seconds of load before measuring.
    #[arg(long, default_value = "1", value_parser = parse_secs)]
    warmup: Duration,
    /// Connections being opened at once.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    concurrency: u32,
    /// Local addresses to connect from, round robin (as for `idle`): many
    /// short connections can run out of ephemeral ports.
    #[arg(long, value_name = "RANGE", value_parser = parse_sources)]
    source_ips: Option<Sources>,
}

/// Runs the connect loop and reports.
pub(crate) async fn run(args: ConnectRateArgs, threads: usize) -> anyhow::Result<ExitCode> {
    check_open_files(u64::from(args.concurrency) * 2 + FD_MARGIN)?;
    let server = args.common.server()?;
    let target = args
        .common
        .target(args.source_ips.clone().unwrap_or_default().0)
        .await?;
    // One connection first: an unreachable server fails here, clearly.
    let mut probe = Tally::default();
    close_counted(target.connect().await?, 0, &mut probe).await;
    if let Some(err) = probe.first_error {
        anyhow::bail!("{err}");
    }

    let window = Window::starting_now(args.warmup, args.duration);
    let latency = Shards::new(threads);
    let watch = Watch::spawn(server, window);
    let mut tasks = JoinSet::new();
    for index in 0..args.concurrency as usize {
        let (target, latency) = (Arc::clone(&target), latency.clone());
        tasks.spawn(connect_loop(target, window, latency, index));
    }
    let mut tally = join_tallies(tasks).await;
    tally.require_some("no handshake completed in the measured window");
    let usage = watch.finish().await?;
    let latency = latency.merged();

    let duration = window.duration();
    let rate = per_sec(tally.messages, duration);
    let mut object = report::header(&args.common, "connect-rate", threads);
    object.insert("concurrency".into(), json!(args.concurrency));
    object.insert("duration_secs".into(), json!(duration.as_secs_f64()));
    object.insert("warmup_secs".into(), json!(args.warmup.as_secs_f64()));
    let source_count = args.source_ips.as_ref().map_or(0, |s| s.0.len());
    object.insert("source_ips".into(), json!(source_count));
    object.insert("handshakes".into(), json!(tally.messages));
    object.insert("handshakes_per_sec".into(), json!(round(rate, 1)));
    object.insert("latency_us".into(), report::latency_json(&latency));
    let cpu = usage.cpu_us_per(tally.messages).map(|us| round(us, 3));
    object.insert("server_cpu_us_per_handshake".into(), json!(cpu));
    report::add_outcome(&mut object, &tally, &usage, duration);

    let summary = format!(
        "connect-rate {url}: {concurrency} at once, {secs} s measured after {warm} s\n  \
         {rate:.0} handshakes/s\n  handshake latency {latency}\n  {server}\n  {client}\n  {errors}",
        url = args.common.url,
        concurrency = args.concurrency,
        secs = duration.as_secs_f64(),
        warm = args.warmup.as_secs_f64(),
        latency = report::latency_line(&latency),
        server = report::server_line(&usage, tally.messages, "handshake"),
        client = report::client_line(&usage, duration, threads),
        errors = report::errors_line(&tally),
    );
    report::emit(&args.common, &summary, object.into())?;
    Ok(exit_code(tally.errors))
}

/// Connect, handshake, close, until the window ends. A handshake counts
/// if it completed inside the window.
async fn connect_loop(target: Arc<Target>, window: Window, latency: Shards, index: usize) -> Tally {
    let mut tally = Tally::default();
    let mut latency = latency.recorder(index);
    loop {
        let started = Instant::now();
        if started >= window.end {
            return tally;
        }
        match target.connect().await {
            Ok(ws) => {
                let done = Instant::now();
                if window.contains(done) {
                    tally.messages += 1;
                    latency.record(done - started);
                }
                close_counted(ws, index, &mut tally).await;
            }
            Err(err) => {
                tally.error(|| format!("{err:#}"));
                // Do not spin on a server that refuses everything.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}
