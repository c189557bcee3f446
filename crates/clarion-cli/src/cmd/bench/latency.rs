//! `clarion bench latency`: the open loop. Messages are due at a fixed
//! total rate, message `j` at `start + j / rate` on connection `j mod N`,
//! whatever the server does; latency is measured from that *intended* time,
//! so a stalled server shows as latency instead of silently slowing the
//! load (coordinated omission).
//!
//! One pacer task wakes each connection when its next message is due. The
//! tokio timer has a 1 ms grain, so the pacer sleeps until shortly before a
//! deadline and then yields until it (`--no-spin` turns that off); this
//! keeps the client's core busy, by design. How late the client actually
//! sent is reported as `send_lag_us`: if it grows, the client is the
//! bottleneck and the run says so.

use std::collections::VecDeque;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clarion_ws::TrySendError;
use serde_json::json;
use tokio::sync::Notify;
use tokio::task::JoinSet;

use super::payload::Payload;
use super::procstat::check_open_files;
use super::report::{self, per_sec, round};
use super::stats::{join_tallies, Recorder, Shards, Tally, Window};
use super::target::{all_compressed, close_counted, open_many, Socket};
use super::watch::{Usage, Watch};
use super::{exit_code, parse_positive_secs, parse_secs, Common, FD_MARGIN, OPEN_CONCURRENCY};

/// Arguments of `clarion bench latency`.
#[derive(Debug, clap::Args)]
pub(crate) struct LatencyArgs {
    #[command(flatten)]
    pub(crate) common: Common,
    /// Messages per second, all connections together.
    #[arg(long, value_parser = parse_rate)]
    rate: f64,
    /// Connections the rate is spread over.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    connections: u32,
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
    /// Sleep on the tokio timer only (1 ms grain) instead of yielding
    /// through the last 2 ms before each send: less client CPU, later sends.
    #[arg(long)]
    no_spin: bool,
}

/// How long after the window to wait for the last echoes; those still
/// missing count as unanswered.
const DRAIN: Duration = Duration::from_secs(2);
/// How long before a deadline the pacer stops sleeping and starts yielding:
/// the timer's grain plus a margin.
const SPIN_WINDOW: Duration = Duration::from_millis(2);

/// What every connection task shares.
#[derive(Debug)]
struct Plan {
    payload: Payload,
    rate: f64,
    connections: usize,
    window: Window,
    latency: Shards,
    send_lag: Shards,
}

impl Plan {
    /// When message `seq` of `connection` is due.
    fn intended(&self, connection: usize, seq: u64) -> Instant {
        self.due(connection as u64 + seq * self.connections as u64)
    }

    /// When message `global` (over all connections) is due.
    fn due(&self, global: u64) -> Instant {
        self.window.start + Duration::from_secs_f64(global as f64 / self.rate)
    }
}

/// Runs the open loop and reports.
pub(crate) async fn run(args: LatencyArgs, threads: usize) -> anyhow::Result<ExitCode> {
    let connections = args.connections as usize;
    check_open_files(connections as u64 + FD_MARGIN)?;
    let server = args.common.server()?;
    let target = args.common.target(Vec::new()).await?;
    let sockets = open_many(&target, connections, OPEN_CONCURRENCY).await?;
    let compressed = all_compressed(&sockets);
    let plan = Arc::new(Plan {
        payload: Payload::new(args.size, args.binary),
        rate: args.rate,
        connections,
        window: Window::starting_now(args.warmup, args.duration),
        latency: Shards::new(threads),
        send_lag: Shards::new(threads),
    });
    let watch = Watch::spawn(server, plan.window);
    let wakers: Vec<Arc<Notify>> = (0..connections).map(|_| Arc::default()).collect();
    let mut tasks = JoinSet::new();
    for (index, socket) in sockets.into_iter().enumerate() {
        let wake = Arc::clone(&wakers[index]);
        tasks.spawn(open_loop(socket, Arc::clone(&plan), index, wake));
    }
    let pacer = tokio::spawn(pace(Arc::clone(&plan), wakers, !args.no_spin));
    let mut tally = join_tallies(tasks).await;
    tally.require_some("no echo arrived for the messages of the measured window");
    pacer.await?;
    let usage = watch.finish().await?;
    report(&args, threads, &plan, &tally, compressed, &usage)?;
    Ok(exit_code(tally.errors))
}

/// Prints the summary and the JSON object.
fn report(
    args: &LatencyArgs,
    threads: usize,
    plan: &Plan,
    tally: &Tally,
    compressed: bool,
    usage: &Usage,
) -> anyhow::Result<()> {
    let latency = plan.latency.merged();
    let lag = plan.send_lag.merged();
    let duration = plan.window.duration();
    let rate = per_sec(tally.messages, duration);
    let mb_per_sec = per_sec(tally.bytes, duration) / 1e6;
    let mut object = report::header(&args.common, "latency", threads);
    object.insert("rate".into(), json!(args.rate));
    object.insert("connections".into(), json!(args.connections));
    object.insert("size".into(), json!(args.size));
    object.insert("binary".into(), json!(args.binary));
    object.insert("deflate_negotiated".into(), json!(compressed));
    object.insert("spin".into(), json!(!args.no_spin));
    object.insert("duration_secs".into(), json!(duration.as_secs_f64()));
    object.insert("warmup_secs".into(), json!(args.warmup.as_secs_f64()));
    object.insert("messages".into(), json!(tally.messages));
    object.insert("msgs_per_sec".into(), json!(round(rate, 1)));
    object.insert("mb_per_sec".into(), json!(round(mb_per_sec, 3)));
    object.insert("unanswered".into(), json!(tally.unanswered));
    object.insert("latency_us".into(), report::latency_json(&latency));
    object.insert("send_lag_us".into(), report::latency_json(&lag));
    let cpu = usage.cpu_us_per(tally.messages).map(|us| round(us, 3));
    object.insert("server_cpu_us_per_msg".into(), json!(cpu));
    report::add_outcome(&mut object, tally, usage, duration);

    let unanswered = match tally.unanswered {
        0 => String::new(),
        n => format!(
            ", {n} unanswered within {} s (counted in latency)",
            DRAIN.as_secs()
        ),
    };
    let summary = format!(
        "latency {url}: {target} msgs/s over {connections} connections, {size} B {kind}, \
         {secs} s measured after {warm} s\n  achieved {rate:.1} msgs/s{unanswered}\n  \
         latency from intended send: {latency}\n  send lag: {lag}\n  {server}\n  {client}\n  {errors}",
        url = args.common.url,
        target = args.rate,
        connections = args.connections,
        size = args.size,
        kind = plan.payload.label(compressed),
        secs = duration.as_secs_f64(),
        warm = args.warmup.as_secs_f64(),
        latency = report::latency_line(&latency),
        lag = report::latency_line(&lag),
        server = report::server_line(usage, tally.messages, "msg"),
        client = client_line(args, usage, duration, threads),
        errors = report::errors_line(tally),
    );
    report::emit(&args.common, &summary, object.into())
}

/// The client line: with the spinning pacer the client is busy by design,
/// and the send lag, not the CPU, tells whether it keeps up.
fn client_line(args: &LatencyArgs, usage: &Usage, duration: Duration, threads: usize) -> String {
    match usage.client_cores(duration) {
        Some(cores) if !args.no_spin => {
            format!("client: {cores:.2} cores busy (the pacer yields until each send, by design)")
        }
        _ => report::client_line(usage, duration, threads),
    }
}

/// Wakes each connection when its next message is due, until the window
/// ends; then wakes them all once more so they see that sending is over.
async fn pace(plan: Arc<Plan>, wakers: Vec<Arc<Notify>>, spin: bool) {
    for global in 0u64.. {
        let due = plan.due(global);
        if due >= plan.window.end {
            break;
        }
        wait_until(due, spin).await;
        wakers[(global % wakers.len() as u64) as usize].notify_one();
    }
    for waker in &wakers {
        waker.notify_one();
    }
}

/// Sleeps on the timer, then (with `spin`) yields until `deadline`.
async fn wait_until(deadline: Instant, spin: bool) {
    if !spin {
        tokio::time::sleep_until(deadline.into()).await;
        return;
    }
    if let Some(coarse) = deadline.checked_sub(SPIN_WINDOW) {
        if coarse > Instant::now() {
            tokio::time::sleep_until(coarse.into()).await;
        }
    }
    while Instant::now() < deadline {
        tokio::task::yield_now().await;
    }
}

/// Per-connection state of the open loop.
struct Sender {
    plan: Arc<Plan>,
    index: usize,
    /// The next message to send.
    next: u64,
    /// Intended send times of the messages awaiting their echo, in order.
    in_flight: VecDeque<Instant>,
    latency: Recorder,
    send_lag: Recorder,
    tally: Tally,
}

/// One connection: send what is due when woken, match echoes in order,
/// then wait up to `DRAIN` for the last echoes and close. One clock read
/// per wake-up, used for what it woke for and for the sends that follow.
async fn open_loop(mut ws: Socket, plan: Arc<Plan>, index: usize, wake: Arc<Notify>) -> Tally {
    let drain = tokio::time::sleep_until((plan.window.end + DRAIN).into());
    tokio::pin!(drain);
    let mut sender = Sender {
        latency: plan.latency.recorder(index),
        send_lag: plan.send_lag.recorder(index),
        plan,
        index,
        next: 0,
        in_flight: VecDeque::new(),
        tally: Tally::default(),
    };
    let mut now = Instant::now();
    loop {
        if let Err(err) = sender.send_due(&mut ws, now) {
            sender.tally.error(|| format!("connection {index}: {err}"));
            return sender.finish();
        }
        let end = sender.plan.window.end;
        let sending_over = now >= end || sender.next_due() >= end;
        if sending_over && sender.in_flight.is_empty() {
            break;
        }
        tokio::select! {
            biased;
            echo = ws.recv() => {
                now = Instant::now();
                match echo {
                    Some(Ok(echo)) => sender.on_echo(&echo, now),
                    Some(Err(err)) => {
                        sender.tally.error(|| format!("connection {index}: {err}"));
                        return sender.finish();
                    }
                    None => {
                        let closed = || format!("connection {index}: the server closed the connection");
                        sender.tally.error(closed);
                        return sender.finish();
                    }
                }
            }
            () = wake.notified(), if !sending_over => now = Instant::now(),
            () = &mut drain => break,
        }
    }
    sender.give_up(Instant::now());
    let mut tally = sender.finish();
    close_counted(ws, index, &mut tally).await;
    tally
}

impl Sender {
    /// The counts, with the latency samples flushed.
    fn finish(mut self) -> Tally {
        self.latency.flush();
        self.send_lag.flush();
        self.tally
    }

    /// When the next message is due.
    fn next_due(&self) -> Instant {
        self.plan.intended(self.index, self.next)
    }

    /// Queues every message due by `now` (before the window's end) that
    /// fits in the write buffer; `recv` writes them out.
    fn send_due(&mut self, ws: &mut Socket, now: Instant) -> Result<(), TrySendError> {
        loop {
            let due = self.next_due();
            if due > now || due >= self.plan.window.end {
                return Ok(());
            }
            match ws.try_send(self.plan.payload.message()) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => return Ok(()),
                Err(err) => return Err(err),
            }
            if self.plan.window.contains(due) {
                self.send_lag.record(now - due);
            }
            self.in_flight.push_back(due);
            self.next += 1;
        }
    }

    /// Matches an echo with the oldest message in flight.
    fn on_echo(&mut self, echo: &clarion_ws::Message, now: Instant) {
        let index = self.index;
        let Some(due) = self.in_flight.pop_front() else {
            self.tally
                .error(|| format!("connection {index}: a message nobody sent"));
            return;
        };
        if !self.plan.payload.matches(echo) {
            let len = echo.len();
            self.tally.error(|| {
                format!("connection {index}: the echo differs from the message sent ({len} bytes)")
            });
        } else if self.plan.window.contains(due) {
            self.tally.messages += 1;
            self.tally.bytes += echo.len() as u64;
            self.latency.record(now - due);
        }
    }

    /// Counts the window's messages still unanswered (sent or not) and
    /// records their latency so far, a lower bound.
    fn give_up(&mut self, now: Instant) {
        let window = self.plan.window;
        let mut missing: Vec<Instant> = self.in_flight.drain(..).collect();
        let mut seq = self.next;
        loop {
            let due = self.plan.intended(self.index, seq);
            if due >= window.end {
                break;
            }
            missing.push(due);
            seq += 1;
        }
        for due in missing.into_iter().filter(|&due| window.contains(due)) {
            self.tally.unanswered += 1;
            self.latency.record(now.saturating_duration_since(due));
        }
    }
}

/// Parses a positive rate in messages per second.
fn parse_rate(raw: &str) -> Result<f64, String> {
    match raw.parse::<f64>() {
        Ok(rate) if rate > 0.0 && rate.is_finite() => Ok(rate),
        _ => Err(format!(
            "`{raw}` is not a positive number of messages per second"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(rate: f64, connections: usize) -> Plan {
        Plan {
            payload: Payload::new(1, false),
            rate,
            connections,
            window: Window::starting_now(Duration::ZERO, Duration::from_secs(1)),
            latency: Shards::new(1),
            send_lag: Shards::new(1),
        }
    }

    #[test]
    fn messages_are_spread_evenly_over_connections() {
        let plan = plan(1000.0, 4);
        let start = plan.window.start;
        assert_eq!(plan.intended(0, 0), start);
        assert_eq!(plan.intended(1, 0) - start, Duration::from_millis(1));
        assert_eq!(plan.intended(3, 0) - start, Duration::from_millis(3));
        assert_eq!(plan.intended(0, 1) - start, Duration::from_millis(4));
        assert_eq!(plan.intended(2, 10) - start, Duration::from_millis(42));
    }

    #[test]
    fn rates_must_be_positive() {
        assert_eq!(parse_rate("2500"), Ok(2500.0));
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("inf").is_err());
    }
}
