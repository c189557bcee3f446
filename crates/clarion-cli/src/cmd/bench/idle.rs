//! `clarion bench idle`: what an idle connection costs the server. Opens N
//! connections (handshake only), lets the server settle, reads its RSS,
//! closes them all cleanly, and reads it again: bytes per connection, and
//! whether the memory comes back.
//!
//! Each connection keeps a task polling `recv`, as a real idle client
//! would: it answers the server's pings, and notices a server that drops
//! it.
//!
//! Open files: each connection is one descriptor here (and one in the
//! server); the run fails early if N would not fit under our soft
//! `RLIMIT_NOFILE` (`ulimit -n` raises it, up to the hard limit). Ports:
//! one source address gives about 28 000 ephemeral ports toward one server
//! address; `--source-ips 127.0.0.1-127.0.0.40` spreads connections over
//! several loopback addresses, round robin.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::procstat::{check_open_files, Server};
use super::report::{self, per_sec, round};
use super::stats::{join_tallies, Tally};
use super::target::{close_counted, open_many, parse_sources, Socket, Sources};
use super::watch::Usage;
use super::{exit_code, parse_secs, Common, FD_MARGIN};

/// Arguments of `clarion bench idle`.
#[derive(Debug, clap::Args)]
pub(crate) struct IdleArgs {
    #[command(flatten)]
    pub(crate) common: Common,
    /// Connections to open.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    connections: u32,
    /// Seconds to hold the connections open before measuring (and to wait
    /// after closing them): time for the server's memory to settle.
    #[arg(long, default_value = "2", value_parser = parse_secs)]
    hold: Duration,
    /// Local addresses to connect from, round robin: a range
    /// `127.0.0.1-127.0.0.40` or a list `127.0.0.2,127.0.0.3`.
    #[arg(long, value_name = "RANGE", value_parser = parse_sources)]
    source_ips: Option<Sources>,
    /// Handshakes in flight at once while opening.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
    concurrency: u32,
}

/// The server's memory at the three moments measured, KiB.
#[derive(Debug, Default)]
struct Memory {
    before: Option<u64>,
    open: Option<u64>,
    after_close: Option<u64>,
}

/// Runs the idle test and reports.
pub(crate) async fn run(args: IdleArgs, threads: usize) -> anyhow::Result<ExitCode> {
    let connections = args.connections as usize;
    check_open_files(connections as u64 + FD_MARGIN)?;
    let server = args.common.server()?;
    warn_about_server_limit(server, connections);
    let sources = args.source_ips.clone().unwrap_or_default().0;
    let target = args.common.target(sources).await?;
    let mut memory = Memory {
        before: rss(server)?,
        ..Memory::default()
    };

    let opening = Instant::now();
    let sockets = open_many(&target, connections, args.concurrency as usize).await?;
    let open_time = opening.elapsed();
    let (stop, stopped) = watch::channel(false);
    let mut holders = JoinSet::new();
    for (index, socket) in sockets.into_iter().enumerate() {
        holders.spawn(hold(socket, index, stopped.clone()));
    }
    tokio::time::sleep(args.hold).await;
    memory.open = rss(server)?;

    let closing = Instant::now();
    // Every holder owns a receiver, so the send cannot fail.
    let _ = stop.send(true);
    let tally = join_tallies(holders).await;
    let close_time = closing.elapsed();
    tokio::time::sleep(args.hold).await;
    memory.after_close = rss(server)?;

    let per_connection = match (memory.before, memory.open) {
        (Some(before), Some(open)) => {
            Some((open as f64 - before as f64) * 1024.0 / connections as f64)
        }
        _ => None,
    };
    let mut object = report::header(&args.common, "idle", threads);
    object.insert("connections".into(), json!(args.connections));
    object.insert("hold_secs".into(), json!(args.hold.as_secs_f64()));
    let source_count = args.source_ips.as_ref().map_or(0, |s| s.0.len());
    object.insert("source_ips".into(), json!(source_count));
    object.insert("open_secs".into(), json!(round(open_time.as_secs_f64(), 3)));
    let opens_per_sec = per_sec(connections as u64, open_time);
    object.insert("opens_per_sec".into(), json!(round(opens_per_sec, 1)));
    object.insert(
        "close_secs".into(),
        json!(round(close_time.as_secs_f64(), 3)),
    );
    object.insert("server_rss_before_kib".into(), json!(memory.before));
    object.insert(
        "server_rss_after_close_kib".into(),
        json!(memory.after_close),
    );
    let per_connection = per_connection.map(|bytes| round(bytes, 0));
    object.insert("bytes_per_connection".into(), json!(per_connection));
    let usage = Usage {
        rss_kib: memory.open,
        ..Usage::default()
    };
    report::add_outcome(&mut object, &tally, &usage, Duration::ZERO);

    let summary = format!(
        "idle {url}: {connections} connections opened in {open:.2} s ({opens_per_sec:.0}/s), \
         held {hold} s, closed in {close:.2} s\n  {memory}\n  {errors}",
        url = args.common.url,
        open = open_time.as_secs_f64(),
        hold = args.hold.as_secs_f64(),
        close = close_time.as_secs_f64(),
        memory = memory_line(&memory, per_connection),
        errors = report::errors_line(&tally),
    );
    report::emit(&args.common, &summary, object.into())?;
    Ok(exit_code(tally.errors))
}

/// Keeps one connection open, reading, until told to close it.
async fn hold(mut ws: Socket, index: usize, mut stop: watch::Receiver<bool>) -> Tally {
    let mut tally = Tally::default();
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            message = ws.recv() => match message {
                // An echo server has no reason to talk first; ignore it.
                Some(Ok(_)) => {}
                Some(Err(err)) => {
                    tally.error(|| format!("connection {index}: {err}"));
                    return tally;
                }
                None => {
                    tally.error(|| format!("connection {index}: the server closed an idle connection"));
                    return tally;
                }
            },
        }
    }
    close_counted(ws, index, &mut tally).await;
    tally
}

/// The server's RSS, if it is observed.
fn rss(server: Option<Server>) -> anyhow::Result<Option<u64>> {
    Ok(server.map(|server| server.rss_kib()).transpose()?)
}

/// Warns when the server's own descriptor limit is below what the run needs.
fn warn_about_server_limit(server: Option<Server>, connections: usize) {
    let Some(server) = server else { return };
    if let Some(limit) = server.open_files_limit() {
        if (connections as u64) + 16 > limit {
            eprintln!(
                "warning: server {} may run out of open files (soft limit {limit}) \
                 before {connections} connections",
                server.pid()
            );
        }
    }
}

/// `server RSS 5.1 MiB → 12.3 MiB open (7372 B/connection) → 5.4 MiB after close`.
fn memory_line(memory: &Memory, per_connection: Option<f64>) -> String {
    let mib = |kib: Option<u64>| match kib {
        Some(kib) => format!("{:.1} MiB", kib as f64 / 1024.0),
        None => "?".to_owned(),
    };
    match per_connection {
        Some(bytes) => format!(
            "server RSS {} before, {} open ({bytes:.0} B/connection), {} after close",
            mib(memory.before),
            mib(memory.open),
            mib(memory.after_close)
        ),
        None => "server memory not measured (no --server-pid)".to_owned(),
    }
}
