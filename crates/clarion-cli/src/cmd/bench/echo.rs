//! `clarion bench echo`: the closed loop. Each connection keeps K messages
//! in flight: it sends K, then one more for every echo that arrives.
//!
//! One task per connection, unsplit: it queues sends with `try_send` and
//! lets `recv` write them out before it reads, so echoes that arrive in one
//! read are answered with one write (as a real client would batch), with no
//! lock between halves and one clock read per message.

use std::collections::VecDeque;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clarion_ws::{Message, TrySendError};
use serde_json::json;
use tokio::task::JoinSet;

use super::payload::Payload;
use super::procstat::check_open_files;
use super::report::{self, per_sec, round};
use super::stats::{join_tallies, Recorder, Shards, Tally, Window};
use super::target::{all_compressed, close_counted, open_many, Socket};
use super::watch::{Usage, Watch};
use super::{exit_code, parse_positive_secs, parse_secs, Common, FD_MARGIN, OPEN_CONCURRENCY};

/// Arguments of `clarion bench echo`.
#[derive(Debug, clap::Args)]
pub(crate) struct EchoArgs {
    #[command(flatten)]
    pub(crate) common: Common,
    /// Connections.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    connections: u32,
    /// Messages in flight on each connection.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    in_flight: u32,
    /// Payload bytes per message.
    #[arg(long, default_value_t = 32)]
    size: usize,
    /// Seconds measured (after the warm-up).
    #[arg(long, default_value = "5", value_parser = parse_positive_secs)]
    duration: Duration,
    /// Seconds of load before measuring.
    #[arg(long, default_value = "1", value_parser = parse_secs)]
    warmup: Duration,
    /// Send binary messages (default: ASCII text).
    #[arg(long)]
    binary: bool,
}

/// What every connection task shares.
#[derive(Debug)]
struct Plan {
    payload: Payload,
    in_flight: usize,
    window: Window,
    latency: Shards,
}

/// Runs the closed loop and reports.
pub(crate) async fn run(args: EchoArgs, threads: usize) -> anyhow::Result<ExitCode> {
    let connections = args.connections as usize;
    check_open_files(connections as u64 + FD_MARGIN)?;
    let server = args.common.server()?;
    let target = args.common.target(Vec::new()).await?;
    let sockets = open_many(&target, connections, OPEN_CONCURRENCY).await?;
    let compressed = all_compressed(&sockets);
    let plan = Arc::new(Plan {
        payload: Payload::new(args.size, args.binary),
        in_flight: args.in_flight as usize,
        window: Window::starting_now(args.warmup, args.duration),
        latency: Shards::new(threads),
    });
    let watch = Watch::spawn(server, plan.window);
    let mut tasks = JoinSet::new();
    for (index, socket) in sockets.into_iter().enumerate() {
        tasks.spawn(closed_loop(socket, Arc::clone(&plan), index));
    }
    let mut tally = join_tallies(tasks).await;
    tally.require_some("no echo arrived in the measured window");
    let usage = watch.finish().await?;
    report(&args, threads, &plan, &tally, compressed, &usage)?;
    Ok(exit_code(tally.errors))
}

/// Prints the summary and the JSON object.
fn report(
    args: &EchoArgs,
    threads: usize,
    plan: &Plan,
    tally: &Tally,
    compressed: bool,
    usage: &Usage,
) -> anyhow::Result<()> {
    let latency = plan.latency.merged();
    let duration = plan.window.duration();
    let rate = per_sec(tally.messages, duration);
    let mb_per_sec = per_sec(tally.bytes, duration) / 1e6;
    let mut object = report::header(&args.common, "echo", threads);
    object.insert("connections".into(), json!(args.connections));
    object.insert("in_flight".into(), json!(args.in_flight));
    object.insert("size".into(), json!(args.size));
    object.insert("binary".into(), json!(args.binary));
    object.insert("deflate_negotiated".into(), json!(compressed));
    object.insert("duration_secs".into(), json!(duration.as_secs_f64()));
    object.insert("warmup_secs".into(), json!(args.warmup.as_secs_f64()));
    object.insert("messages".into(), json!(tally.messages));
    object.insert("msgs_per_sec".into(), json!(round(rate, 1)));
    object.insert("mb_per_sec".into(), json!(round(mb_per_sec, 3)));
    object.insert("latency_us".into(), report::latency_json(&latency));
    let cpu = usage.cpu_us_per(tally.messages).map(|us| round(us, 3));
    object.insert("server_cpu_us_per_msg".into(), json!(cpu));
    report::add_outcome(&mut object, tally, usage, duration);

    let summary = format!(
        "echo {url}: {connections} connections × {in_flight} in flight, {size} B {kind}, \
         {secs} s measured after {warm} s\n  {rate:.0} msgs/s, {mb_per_sec:.2} MB/s\n  \
         latency {latency}\n  {server}\n  {client}\n  {errors}",
        url = args.common.url,
        connections = args.connections,
        in_flight = args.in_flight,
        size = args.size,
        kind = plan.payload.label(compressed),
        secs = duration.as_secs_f64(),
        warm = args.warmup.as_secs_f64(),
        latency = report::latency_line(&latency),
        server = report::server_line(usage, tally.messages, "msg"),
        client = report::client_line(usage, duration, threads),
        errors = report::errors_line(tally),
    );
    report::emit(&args.common, &summary, object.into())
}

/// One connection's loop until the window ends, then a clean close.
///
/// One clock read per echo: the time it arrived is also the send time of
/// the message it frees (queued a few hundred nanoseconds later, so the
/// latency is, if anything, overstated by that much).
async fn closed_loop(mut ws: Socket, plan: Arc<Plan>, index: usize) -> Tally {
    let mut conn = Connection {
        plan: Arc::clone(&plan),
        index,
        sent_at: VecDeque::with_capacity(plan.in_flight),
        owed: plan.in_flight,
        latency: plan.latency.recorder(index),
        tally: Tally::default(),
    };
    // Only polled while no echo is ready, to wake a connection that the
    // server stopped answering.
    let end = tokio::time::sleep_until(plan.window.end.into());
    tokio::pin!(end);
    let mut now = Instant::now();
    while now < plan.window.end {
        if let Err(err) = conn.send_owed(&mut ws, now) {
            conn.tally.error(|| format!("connection {index}: {err}"));
            return conn.finish();
        }
        let echo = tokio::select! {
            biased;
            echo = ws.recv() => echo,
            () = &mut end => break,
        };
        now = Instant::now();
        match echo {
            Some(Ok(echo)) => conn.on_echo(&echo, now),
            Some(Err(err)) => {
                conn.tally.error(|| format!("connection {index}: {err}"));
                return conn.finish();
            }
            None => {
                let closed = || format!("connection {index}: the server closed the connection");
                conn.tally.error(closed);
                return conn.finish();
            }
        }
    }
    let mut tally = conn.finish();
    close_counted(ws, index, &mut tally).await;
    tally
}

/// The state of one connection's closed loop.
struct Connection {
    plan: Arc<Plan>,
    index: usize,
    /// Send times of the messages in flight: echoes come back in order.
    sent_at: VecDeque<Instant>,
    /// Messages to send as soon as the write buffer has room.
    owed: usize,
    latency: Recorder,
    tally: Tally,
}

impl Connection {
    /// Matches an echo with the oldest message in flight and owes one more.
    fn on_echo(&mut self, echo: &Message, now: Instant) {
        let index = self.index;
        let Some(sent) = self.sent_at.pop_front() else {
            self.tally
                .error(|| format!("connection {index}: a message nobody sent"));
            return;
        };
        self.owed += 1;
        if !self.plan.payload.matches(echo) {
            let len = echo.len();
            self.tally.error(|| {
                format!("connection {index}: the echo differs from the message sent ({len} bytes)")
            });
        } else if self.plan.window.contains(now) {
            self.tally.messages += 1;
            self.tally.bytes += echo.len() as u64;
            self.latency.record(now - sent);
        }
    }

    /// Queues the messages owed, as far as the write buffer allows (`recv`
    /// writes them out, and makes room).
    fn send_owed(&mut self, ws: &mut Socket, now: Instant) -> Result<(), TrySendError> {
        while self.owed > 0 {
            match ws.try_send(self.plan.payload.message()) {
                Ok(()) => {
                    self.sent_at.push_back(now);
                    self.owed -= 1;
                }
                Err(TrySendError::Full(_)) => break,
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }

    /// The counts, with the latency samples flushed.
    fn finish(mut self) -> Tally {
        self.latency.flush();
        self.tally
    }
}
