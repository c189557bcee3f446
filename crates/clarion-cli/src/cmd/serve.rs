//! `clarion serve`: the real-time server (`clarion_server`), with flags
//! that override the config file and `CLARION_*` variables.

use std::path::PathBuf;
use std::process::ExitCode;

use clarion_server::{ConfigSources, Override, Server};

/// Arguments of `clarion serve`. Durations in Clarion's one grammar
/// (`250ms`, `10s`, `1.5s`, `2m`, `1h`, `1d`, or seconds), as in the file
/// and the environment.
#[derive(Debug, clap::Args)]
#[command(after_long_help = env_help())]
pub(crate) struct ServeArgs {
    /// TOML config file (every key: docs/server.md). Without it: the
    /// defaults, with the demo namespaces `chat` and `leaderboard`.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Check the configuration (file, environment, flags), print what is
    /// wrong, and exit: 0 if it is valid, 1 if not.
    #[arg(long)]
    check_config: bool,
    /// Print the effective configuration (file, environment, flags) as
    /// TOML, secrets masked, and exit 0; or print what is wrong and exit 1.
    #[arg(long, conflicts_with = "check_config")]
    print_config: bool,
    /// Address to listen on (port 0 picks a free one). Default 127.0.0.1:8000.
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// PEM certificate chain: serve https:// and wss:// (needs --tls-key).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Log lines as `text` or `json`.
    #[arg(long, value_name = "FORMAT")]
    log_format: Option<String>,
    /// The server API key (`Authorization: apikey KEY`).
    #[arg(long, value_name = "KEY")]
    api_key: Option<String>,
    /// HS256 secret for connection and subscription tokens.
    #[arg(long, value_name = "SECRET")]
    hmac_secret: Option<String>,
    /// Allow browser pages from this origin (repeatable; `*` for any).
    #[arg(long = "allowed-origin", value_name = "PATTERN")]
    allowed_origins: Vec<String>,
    /// Refuse connections without a token.
    #[arg(long)]
    no_anonymous: bool,
    /// Time given to clients to close on SIGTERM/Ctrl-C (default 10s).
    #[arg(long, value_name = "DURATION")]
    shutdown_timeout: Option<String>,
    /// Open WebSocket connections; more get 503 (default 100000).
    #[arg(long, value_name = "N")]
    max_connections: Option<u64>,
    /// Open WebSocket connections per client IP; more get 429 (default 256).
    #[arg(long, value_name = "N")]
    max_connections_per_ip: Option<u64>,
    /// New WebSocket connections per second per client IP, sustained; more
    /// get 429 (default 50).
    #[arg(long, value_name = "N")]
    max_new_connections_per_second: Option<u64>,
    /// New connections per client IP allowed at once above that rate
    /// (default 100).
    #[arg(long, value_name = "N")]
    new_connection_burst: Option<u64>,
    /// Time for a client to send `connect` after the upgrade (default 10s).
    #[arg(long, value_name = "DURATION")]
    connect_timeout: Option<String>,
    /// Close a connection silent for this long; a ping goes out at half
    /// (default 2m).
    #[arg(long, value_name = "DURATION")]
    idle_timeout: Option<String>,
    /// Accept permessage-deflate (off by default).
    #[arg(long)]
    compression: bool,
    /// Broker URL (repeatable): `redis://HOST:PORT` (several: shards),
    /// `rediss://...`, or `nats://HOST:PORT` (servers of one NATS cluster).
    /// Without one: the in-memory broker (a single node).
    #[arg(long = "broker", value_name = "URL")]
    brokers: Vec<String>,
    /// A load balancer or proxy (address or network, repeatable) whose
    /// `Forwarded` / `X-Forwarded-For` headers name the client for the
    /// per-IP limits; from others the headers are ignored.
    #[arg(long = "trusted-proxy", value_name = "ADDR")]
    trusted_proxies: Vec<String>,
    /// This node's name in `info`, `/metrics` and logs.
    #[arg(long, value_name = "NAME")]
    node_name: Option<String>,
    /// On SIGTERM/Ctrl-C, time /readyz answers 503 before clients are told
    /// to go away (`5s`; default 0s).
    #[arg(long, value_name = "DURATION")]
    shutdown_delay: Option<String>,
}

impl ServeArgs {
    fn sources(&self) -> ConfigSources {
        let mut flags = Vec::new();
        let mut string = |key: &str, value: &Option<String>| {
            if let Some(value) = value {
                flags.push((key.to_owned(), Override::Str(value.clone())));
            }
        };
        string("listen", &self.listen);
        string("log_format", &self.log_format);
        string("api.key", &self.api_key);
        string("auth.hmac_secret", &self.hmac_secret);
        string("shutdown_timeout", &self.shutdown_timeout);
        string("shutdown_delay", &self.shutdown_delay);
        string("broker.node_name", &self.node_name);
        string("websocket.connect_timeout", &self.connect_timeout);
        string("websocket.idle_timeout", &self.idle_timeout);
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
        string("tls.cert", &path(&self.tls_cert));
        string("tls.key", &path(&self.tls_key));
        let numbers = [
            ("websocket.max_connections", self.max_connections),
            (
                "websocket.max_connections_per_ip",
                self.max_connections_per_ip,
            ),
            (
                "websocket.new_connections_per_second_per_ip",
                self.max_new_connections_per_second,
            ),
            (
                "websocket.new_connection_burst_per_ip",
                self.new_connection_burst,
            ),
        ];
        for (key, value) in numbers {
            if let Some(n) = value {
                flags.push((key.to_owned(), Override::Int(n)));
            }
        }
        if self.compression {
            flags.push(("websocket.compression".into(), Override::Bool(true)));
        }
        if !self.allowed_origins.is_empty() {
            let list = Override::List(self.allowed_origins.clone());
            flags.push(("websocket.allowed_origins".into(), list));
        }
        if !self.trusted_proxies.is_empty() {
            let list = Override::List(self.trusted_proxies.clone());
            flags.push(("trusted_proxies".into(), list));
        }
        if !self.brokers.is_empty() {
            let list = Override::List(self.brokers.clone());
            flags.push(("broker.urls".into(), list));
        }
        if self.no_anonymous {
            flags.push(("auth.allow_anonymous".into(), Override::Bool(false)));
        }
        ConfigSources {
            file: self.config.clone(),
            env: std::env::vars().collect(),
            flags,
        }
    }
}

pub(crate) async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let config = match clarion_server::config::load(&args.sources()) {
        Ok(config) => config,
        Err(errors) => {
            for error in &errors {
                eprintln!("clarion serve: config: {error}");
            }
            return Ok(ExitCode::FAILURE);
        }
    };
    if args.check_config {
        println!("config OK");
        return Ok(ExitCode::SUCCESS);
    }
    if args.print_config {
        print!("{}", config.to_toml());
        return Ok(ExitCode::SUCCESS);
    }
    clarion_server::init_logging(config.log_format, &config.log_level);
    let server = Server::bind(config).await?;
    // The first line on stdout says where we listen (scripts read it).
    println!("listening on {}", server.url());
    tracing::info!(url = %server.url(), "serving (demo at /)");
    server.run_until(clarion_server::shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// The `CLARION_*` variables, listed under `clarion serve --help` from the
/// table the config loader reads.
fn env_help() -> String {
    let mut help =
        String::from("Environment variables (override the config file; flags override them):\n");
    for (var, key) in clarion_server::config::ENV_OVERRIDES {
        help.push_str(&format!("  {var:<44} {key}\n"));
    }
    help.push_str("\nEvery config key with its default: clarion serve --print-config");
    help
}
