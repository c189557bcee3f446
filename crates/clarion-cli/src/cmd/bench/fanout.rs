//! `clarion bench fanout`: one publisher, N subscribers of one channel on
//! `clarion serve` (the hub protocol, not an echo server).
//!
//! N clients connect and subscribe (at most `OPEN_CONCURRENCY` handshakes
//! at once); with `--server-pid` the server's resident memory is read
//! before and after, which gives the memory per idle subscribed
//! connection. Then one more client publishes `--messages` publications at
//! `--rate` per second, each carrying its send time; every subscriber
//! records the delay to each delivery. Reported: deliveries per second
//! (N × messages over the time from the first publish to the last
//! delivery), delivery latency percentiles, memory per connection.
//!
//! The namespace must let anonymous clients subscribe and publish and
//! should have no join/leave (N joins would each go to N subscribers): the
//! default config's `leaderboard` namespace does.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clarion_ws::{ClientStream, Message, WebSocket};
use serde_json::{json, Value};
use tokio::sync::{Notify, Semaphore};

use super::{Common, OPEN_CONCURRENCY};

/// Arguments of `clarion bench fanout`.
#[derive(Debug, clap::Args)]
pub(crate) struct FanoutArgs {
    #[command(flatten)]
    pub(super) common: Common,
    /// Subscribers.
    #[arg(long, default_value_t = 1000)]
    subscribers: usize,
    /// The channel (its namespace must allow anonymous publish, no join/leave).
    #[arg(long, default_value = "leaderboard:fanout-bench")]
    channel: String,
    /// Publications to send.
    #[arg(long, default_value_t = 100)]
    messages: u64,
    /// Publications per second.
    #[arg(long, default_value_t = 10.0)]
    rate: f64,
    /// Padding bytes in each publication's data.
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// More nodes of the same cluster (repeatable): subscribers are spread
    /// over URL and these, round-robin; the publisher uses URL, so
    /// deliveries on these nodes cross the broker.
    #[arg(long = "subscriber-url", value_name = "URL")]
    subscriber_urls: Vec<String>,
    /// Time allowed for the last deliveries after the last publish.
    #[arg(long, default_value = "30", value_parser = super::parse_positive_secs)]
    drain_timeout: Duration,
}

/// What every subscriber shares.
struct Shared {
    start: Instant,
    /// Deliveries so far (all subscribers).
    delivered: AtomicU64,
    /// Microseconds since `start` of the latest delivery.
    last_delivery_us: AtomicU64,
    /// Notified when every subscriber has all publications.
    done: Notify,
    expected: u64,
    finished: AtomicU64,
}

pub(crate) async fn run(args: FanoutArgs, _threads: usize) -> anyhow::Result<ExitCode> {
    if args.subscribers == 0 || args.messages == 0 || args.rate <= 0.0 {
        bail!("--subscribers, --messages and --rate must be positive");
    }
    let url = args.common.url.clone();
    let rss_before = args.common.server_pid.map(rss_kib).transpose()?;
    let shared = Arc::new(Shared {
        start: Instant::now(),
        delivered: AtomicU64::new(0),
        last_delivery_us: AtomicU64::new(0),
        done: Notify::new(),
        expected: args.messages,
        finished: AtomicU64::new(0),
    });
    eprintln!(
        "fanout: connecting {} subscribers to {url}",
        args.subscribers
    );
    let opened = Instant::now();
    let subscribers = open_subscribers(&args, &url).await?;
    let open_secs = opened.elapsed().as_secs_f64();
    // Let the server settle (allocator, queues) before reading its memory.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_after = args.common.server_pid.map(rss_kib).transpose()?;
    let mut tasks = Vec::with_capacity(subscribers.len());
    for ws in subscribers {
        let shared = shared.clone();
        tasks.push(tokio::spawn(receive(ws, shared)));
    }
    eprintln!(
        "fanout: {} subscribed in {open_secs:.1} s; publishing {} at {}/s",
        tasks.len(),
        args.messages,
        args.rate
    );
    let first_publish_us = publish_all(&args, &url, &shared).await?;
    let subscribed = tasks.len() as u64;
    let all_done = async {
        loop {
            // Created before the check: a finish in between still wakes it.
            let notified = shared.done.notified();
            if shared.finished.load(Ordering::Acquire) >= subscribed {
                return;
            }
            notified.await;
        }
    };
    let finished = tokio::time::timeout(args.drain_timeout, all_done)
        .await
        .is_ok();
    let mut latencies = Vec::new();
    for task in tasks {
        task.abort();
        if let Ok(Ok(mut samples)) = tokio::time::timeout(Duration::from_secs(1), task).await {
            latencies.append(&mut samples);
        }
    }
    report(
        &args,
        &shared,
        first_publish_us,
        latencies,
        finished,
        rss_before,
        rss_after,
    )
}

/// Opens and subscribes every subscriber, `OPEN_CONCURRENCY` at a time.
async fn open_subscribers(
    args: &FanoutArgs,
    url: &str,
) -> anyhow::Result<Vec<WebSocket<ClientStream>>> {
    let gate = Arc::new(Semaphore::new(OPEN_CONCURRENCY));
    let mut opening = Vec::with_capacity(args.subscribers);
    let urls: Vec<&str> = std::iter::once(url)
        .chain(args.subscriber_urls.iter().map(String::as_str))
        .collect();
    for n in 0..args.subscribers {
        let gate = gate.clone();
        let url = urls[n % urls.len()].to_owned();
        let (channel, config) = (args.channel.clone(), args.common.config());
        opening.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await?;
            subscriber(&url, &channel, &config).await
        }));
    }
    let mut out = Vec::with_capacity(opening.len());
    for task in opening {
        out.push(task.await.context("subscriber task")??);
    }
    Ok(out)
}

/// Connects, sends `connect`, subscribes.
async fn subscriber(
    url: &str,
    channel: &str,
    config: &clarion_ws::Config,
) -> anyhow::Result<WebSocket<ClientStream>> {
    let (mut ws, _) = clarion_ws::connect(url, config).await.context("connect")?;
    command(&mut ws, json!({"id": 1, "method": "connect"})).await?;
    let subscribe = json!({"id": 2, "method": "subscribe", "params": {"channel": channel}});
    command(&mut ws, subscribe).await?;
    Ok(ws)
}

/// Sends a command and waits for its reply; an error reply fails.
async fn command(ws: &mut WebSocket<ClientStream>, command: Value) -> anyhow::Result<Value> {
    let id = command["id"].clone();
    ws.send(command.to_string()).await?;
    let wait = async {
        while let Some(message) = ws.recv().await {
            let Message::Text(text) = message? else {
                continue;
            };
            let reply: Value = serde_json::from_str(text.as_str())?;
            if reply["id"] == id {
                if let Some(error) = reply.get("error") {
                    bail!("{} refused: {error}", command["method"]);
                }
                return Ok(reply);
            }
        }
        bail!("the server closed the connection ({:?})", ws.close_frame())
    };
    tokio::time::timeout(Duration::from_secs(30), wait)
        .await
        .context("no reply in 30 s")?
}

/// Counts deliveries and records their latency (µs) until every
/// publication has arrived; returns the samples.
async fn receive(mut ws: WebSocket<ClientStream>, shared: Arc<Shared>) -> Vec<u32> {
    let mut samples = Vec::with_capacity(shared.expected as usize);
    while let Some(Ok(message)) = ws.recv().await {
        let Message::Text(text) = message else {
            continue;
        };
        for line in text.as_str().lines() {
            let Some(sent_us) = sent_at(line) else {
                continue;
            };
            let now_us = shared.start.elapsed().as_micros() as u64;
            samples.push(now_us.saturating_sub(sent_us).min(u64::from(u32::MAX)) as u32);
            shared.delivered.fetch_add(1, Ordering::Relaxed);
            shared.last_delivery_us.fetch_max(now_us, Ordering::Relaxed);
        }
        if samples.len() as u64 >= shared.expected {
            break;
        }
    }
    shared.finished.fetch_add(1, Ordering::AcqRel);
    shared.done.notify_waiters();
    samples
}

/// The send time in a publication push (`"data":{"t":N,...}`).
fn sent_at(line: &str) -> Option<u64> {
    if !line.starts_with(r#"{"push":"publication""#) {
        return None;
    }
    let value: Value = serde_json::from_str(line).ok()?;
    value["data"]["t"].as_u64()
}

/// Publishes every publication at the rate; returns the first one's send
/// time (µs since start).
async fn publish_all(args: &FanoutArgs, url: &str, shared: &Shared) -> anyhow::Result<u64> {
    let mut publisher = subscriber_less(url, &args.common.config()).await?;
    let interval = Duration::from_secs_f64(1.0 / args.rate);
    let mut tick = tokio::time::interval(interval);
    let pad = "x".repeat(args.size);
    let mut first = None;
    for seq in 0..args.messages {
        tick.tick().await;
        let t = shared.start.elapsed().as_micros() as u64;
        first.get_or_insert(t);
        let params = json!({"channel": args.channel, "data": {"t": t, "seq": seq, "pad": pad}});
        let publish = json!({"id": 10 + seq, "method": "publish", "params": params});
        command(&mut publisher, publish).await?;
    }
    Ok(first.unwrap_or_default())
}

/// A connected client that subscribes to nothing (the publisher).
async fn subscriber_less(
    url: &str,
    config: &clarion_ws::Config,
) -> anyhow::Result<WebSocket<ClientStream>> {
    let (mut ws, _) = clarion_ws::connect(url, config).await.context("connect")?;
    command(&mut ws, json!({"id": 1, "method": "connect"})).await?;
    Ok(ws)
}

/// VmRSS of a process, KiB.
fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS")
}

fn report(
    args: &FanoutArgs,
    shared: &Shared,
    first_publish_us: u64,
    mut latencies: Vec<u32>,
    finished: bool,
    rss_before: Option<u64>,
    rss_after: Option<u64>,
) -> anyhow::Result<ExitCode> {
    let expected = args.subscribers as u64 * args.messages;
    let delivered = shared.delivered.load(Ordering::Relaxed);
    let span_us = shared
        .last_delivery_us
        .load(Ordering::Relaxed)
        .saturating_sub(first_publish_us)
        .max(1);
    let per_sec = delivered as f64 / (span_us as f64 / 1e6);
    latencies.sort_unstable();
    let pct = |p: f64| -> f64 {
        if latencies.is_empty() {
            return 0.0;
        }
        let i = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
        f64::from(latencies[i]) / 1000.0
    };
    let per_conn = match (rss_before, rss_after) {
        (Some(b), Some(a)) => Some(a.saturating_sub(b) as f64 * 1024.0 / args.subscribers as f64),
        _ => None,
    };
    eprintln!(
        "fanout: {delivered}/{expected} deliveries, {per_sec:.0}/s; latency ms p50 {:.2} p90 {:.2} p99 {:.2} max {:.2}{}",
        pct(0.5),
        pct(0.9),
        pct(0.99),
        pct(1.0),
        per_conn.map_or(String::new(), |b| format!("; server memory {b:.0} B per subscribed idle connection")),
    );
    if args.common.json {
        let out = json!({
            "mode": "fanout",
            "subscribers": args.subscribers,
            "messages": args.messages,
            "rate": args.rate,
            "size": args.size,
            "expected": expected,
            "delivered": delivered,
            "deliveries_per_sec": per_sec,
            "latency_ms": {"p50": pct(0.5), "p90": pct(0.9), "p99": pct(0.99), "max": pct(1.0)},
            "server_rss_kib_before": rss_before,
            "server_rss_kib_after": rss_after,
            "server_bytes_per_connection": per_conn,
        });
        println!("{out}");
    }
    Ok(super::exit_code(u64::from(
        !finished || delivered < expected,
    )))
}
