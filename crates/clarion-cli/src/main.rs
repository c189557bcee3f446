//! The `clarion` command: a thin `main` over the library crates.

mod cmd;

use clap::{Parser, Subcommand};

/// Clarion: WebSocket tools and (soon) a real-time server.
#[derive(Debug, Parser)]
#[command(name = "clarion", version, about)]
struct Cli {
    /// Log filter, e.g. `info`, `debug`, `clarion_ws=trace` (or RUST_LOG).
    #[arg(long, global = true, default_value = "info", env = "RUST_LOG")]
    log: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run an echo server: every text and binary message is sent back unchanged.
    Echo(cmd::echo::EchoArgs),
    /// Connect to a WebSocket server: stdin lines go out, messages come to stdout.
    Connect(cmd::connect::ConnectArgs),
    /// Load-test any WebSocket echo server: throughput, latency, memory per
    /// connection, handshake rate.
    Bench(cmd::bench::BenchArgs),
    /// Run the real-time server: channels, presence, history, the server
    /// API, metrics, and the demo at http://ADDR/.
    Serve(cmd::serve::ServeArgs),
    /// Mint an HS256 token for `clarion serve` (tests and demos).
    Token(cmd::token::TokenArgs),
    /// Publish into a channel through the server API.
    Publish(cmd::publish::PublishArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // `serve` sets up its own logs (text or JSON, from its config).
    if !matches!(cli.command, Command::Serve(_)) {
        init_logging(&cli.log);
    }
    let command = match cli.command {
        // The benchmark picks its own runtime (`--threads`).
        Command::Bench(args) => return exit_with(cmd::bench::run(args)),
        Command::Token(args) => return exit_with(cmd::token::run(args)),
        command => command,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("clarion: cannot start the runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match command {
            Command::Echo(args) => cmd::echo::run(args).await,
            Command::Connect(args) => cmd::connect::run(args).await,
            Command::Serve(args) => cmd::serve::run(args).await,
            Command::Publish(args) => cmd::publish::run(args).await,
            Command::Token(_) => unreachable!("handled before the runtime starts"),
            Command::Bench(_) => unreachable!("handled before the runtime starts"),
        }
    });
    // A read of stdin may still be blocked on a runtime thread (tokio cannot
    // cancel it); do not wait for it, or `connect` would hang after the
    // server closed until the user typed a line.
    runtime.shutdown_background();
    exit_with(result)
}

/// The exit status of a command; an error is printed first.
fn exit_with(result: anyhow::Result<std::process::ExitCode>) -> std::process::ExitCode {
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("clarion: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    #[test]
    fn the_command_line_is_well_formed() {
        super::Cli::command().debug_assert();
    }

    /// Every flag's value type matches its field (clap checks that only
    /// when the value is read).
    #[test]
    fn echo_flags_parse() {
        use clap::Parser as _;
        let cli = super::Cli::try_parse_from([
            "clarion",
            "echo",
            "--idle-timeout",
            "off",
            "--ping-interval",
            "1s",
            "--allowed-origin",
            "https://*.example.com",
            "--shutdown-timeout",
            "250ms",
        ])
        .expect("valid flags");
        assert!(
            format!("{cli:?}").contains("idle_timeout: OrOff(None)"),
            "{cli:?}"
        );
    }
}
