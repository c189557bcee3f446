//! `clarion bench`: a load generator for any WebSocket echo server.
//!
//! Every mode opens its connections first, then measures; prints a short
//! summary on stderr and, with `--json`, one JSON object on stdout; and
//! exits non-zero when anything failed (unreachable server, a wrong echo, a
//! protocol error, a dropped connection).
//!
//! - `echo`: closed loop, N connections × K messages in flight: throughput,
//!   round-trip latency, server CPU per message.
//! - `latency`: open loop at a fixed rate, latency from the *intended* send
//!   time (no coordinated omission).
//! - `idle`: N idle connections: the server's memory per connection.
//! - `connect-rate`: handshakes per second and their latency.

mod connect_rate;
mod echo;
mod fanout;
mod histogram;
mod idle;
mod latency;
mod payload;
mod procstat;
mod report;
mod stats;
mod target;
mod watch;

use std::net::IpAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clarion_ws::{Config, DeflateConfig};

use self::procstat::Server;
use self::target::Target;

/// Arguments of `clarion bench`.
#[derive(Debug, clap::Args)]
pub(crate) struct BenchArgs {
    #[command(subcommand)]
    mode: Mode,
}

/// The benchmark modes.
#[derive(Debug, clap::Subcommand)]
enum Mode {
    /// Closed loop: N connections each keep K messages in flight; reports
    /// messages/s, MB/s, round-trip latency and server CPU per message.
    Echo(echo::EchoArgs),
    /// Open loop at a fixed rate; latency from the intended send time.
    Latency(latency::LatencyArgs),
    /// Open N idle connections; reports the server's memory per connection.
    Idle(idle::IdleArgs),
    /// Connect, handshake, close, in a loop; reports handshakes/s.
    ConnectRate(connect_rate::ConnectRateArgs),
    /// `clarion serve`: one publisher, N subscribers of one channel;
    /// deliveries/s, delivery latency, server memory per connection.
    Fanout(fanout::FanoutArgs),
}

/// Options every mode takes.
#[derive(Debug, clap::Args)]
pub(crate) struct Common {
    /// ws:// or wss:// URL of an echo server.
    url: String,
    /// For wss://: trust any server certificate (a self-signed test
    /// certificate); the traffic is still encrypted.
    #[arg(long)]
    insecure: bool,
    /// For wss://: a PEM file of CA certificates to trust as well.
    #[arg(long, value_name = "PEM")]
    ca_file: Option<std::path::PathBuf>,
    /// Also print the results as one JSON object on stdout.
    #[arg(long)]
    json: bool,
    /// Runtime threads. 1 runs everything on the calling thread (a tokio
    /// current_thread runtime: no cross-thread wake-ups, what a load
    /// generator pinned to one core wants); more starts a multi-thread
    /// runtime with that many workers. Default: one per CPU.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
    /// Offer permessage-deflate (off by default: measure framing, not
    /// zlib). The payload is a repeating alphabet, which compresses far
    /// better than real data.
    #[arg(long)]
    deflate: bool,
    /// The server's process id: report its CPU time and memory from /proc.
    #[arg(long, value_name = "PID")]
    server_pid: Option<u32>,
}

/// Runs a benchmark on a runtime of its own (see `--threads`).
pub(crate) fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let threads = args.mode.common().threads();
    let runtime = build_runtime(threads)?;
    let result = runtime.block_on(async move {
        match args.mode {
            Mode::Echo(args) => echo::run(args, threads).await,
            Mode::Latency(args) => latency::run(args, threads).await,
            Mode::Idle(args) => idle::run(args, threads).await,
            Mode::ConnectRate(args) => connect_rate::run(args, threads).await,
            Mode::Fanout(args) => fanout::run(args, threads).await,
        }
    });
    // Tasks still closing connections must not hold up the exit.
    runtime.shutdown_timeout(Duration::from_millis(100));
    result
}

impl Mode {
    fn common(&self) -> &Common {
        match self {
            Mode::Echo(args) => &args.common,
            Mode::Latency(args) => &args.common,
            Mode::Idle(args) => &args.common,
            Mode::ConnectRate(args) => &args.common,
            Mode::Fanout(args) => &args.common,
        }
    }
}

impl Common {
    /// Worker threads to use.
    fn threads(&self) -> usize {
        match self.threads {
            Some(threads) => usize::from(threads),
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }

    /// The server to observe, if `--server-pid` was given.
    fn server(&self) -> anyhow::Result<Option<Server>> {
        self.server_pid.map(Server::new).transpose()
    }

    /// The client settings: compression only with `--deflate`, a short
    /// close timeout.
    fn config(&self) -> Config {
        let mut config = Config::default();
        if self.deflate {
            config.deflate = DeflateConfig::default();
        }
        config.close_timeout = target::CLOSE_TIMEOUT;
        config
    }

    /// Resolves the URL, with these source addresses (none: the kernel's
    /// choice).
    async fn target(&self, sources: Vec<IpAddr>) -> anyhow::Result<Arc<Target>> {
        let tls = clarion_ws::tls::TlsClientOptions {
            insecure: self.insecure,
            ca_file: self.ca_file.clone(),
        };
        Target::resolve(&self.url, self.config(), sources, &tls).await
    }
}

/// 1 thread: a current_thread runtime; more: a multi-thread runtime.
fn build_runtime(threads: usize) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut builder = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(threads);
        builder
    };
    builder
        .enable_all()
        .build()
        .context("cannot start the runtime")
}

/// Descriptors beyond one per connection: stdio, the runtime's epoll and
/// wake-up pipes, /proc reads.
const FD_MARGIN: u64 = 64;

/// Handshakes in flight at once while opening connections.
const OPEN_CONCURRENCY: usize = 200;

/// Parses a duration of at most a day in Clarion's one grammar: seconds
/// (`5`, `0.5`) or with a unit (`250ms`, `2m`).
fn parse_secs(raw: &str) -> Result<Duration, String> {
    let duration = super::duration::parse(raw)?;
    if duration > Duration::from_secs(86_400) {
        return Err(format!("`{raw}`: expected at most a day (86400 seconds)"));
    }
    Ok(duration)
}

/// Parses a positive duration in seconds.
fn parse_positive_secs(raw: &str) -> Result<Duration, String> {
    let secs = parse_secs(raw)?;
    if secs.is_zero() {
        return Err("must be more than 0 seconds".into());
    }
    Ok(secs)
}

/// The exit status for a run with `errors` failures.
fn exit_code(errors: u64) -> ExitCode {
    if errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_parse_with_fractions() {
        assert_eq!(parse_secs("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_secs("0"), Ok(Duration::ZERO));
        assert!(parse_secs("-1").is_err());
        assert!(parse_secs("soon").is_err());
        assert_eq!(parse_secs("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_secs("2d").is_err());
        assert!(parse_positive_secs("0").is_err());
    }
}
