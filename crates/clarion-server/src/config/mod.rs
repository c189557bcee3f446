//! Configuration: a TOML file (raw), then `CLARION_*` environment
//! variables, then command-line flags, each overriding the one before, and
//! only then validated into a [`ServerConfig`]. Every key, its default and
//! why: `docs/server.md`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clarion_hub::HubConfig;
use serde::{Deserialize, Serialize};

/// The server's whole configuration, validated.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on. Default `127.0.0.1:8000`: loopback until an
    /// operator decides to expose it.
    pub listen: SocketAddr,
    /// `text` or `json` log lines (stderr). Default `text`.
    pub log_format: LogFormat,
    /// Log filter (`info`, `debug`, `clarion_server=debug`). Default `info`.
    pub log_level: String,
    /// Time given to clients to close on SIGTERM/Ctrl-C. Default 10 s.
    #[serde(
        deserialize_with = "clarion_hub::deserialize_duration",
        serialize_with = "clarion_hub::serialize_duration"
    )]
    pub shutdown_timeout: Duration,
    /// On SIGTERM/Ctrl-C, time between `/readyz` turning 503 and clients
    /// being told to go away, for a load balancer to stop sending new
    /// connections here. Default 0 s (set it to your balancer's probe
    /// interval times its failure threshold).
    #[serde(
        deserialize_with = "clarion_hub::deserialize_duration",
        serialize_with = "clarion_hub::serialize_duration"
    )]
    pub shutdown_delay: Duration,
    /// TLS (wss:// and https://).
    pub tls: TlsConfig,
    /// Connection and subscription tokens.
    pub auth: AuthConfig,
    /// The server API under `/api`.
    pub api: ApiConfig,
    /// The WebSocket endpoint `/connection/websocket`.
    pub websocket: WebSocketConfig,
    /// Load balancers and proxies (addresses or networks, `10.0.0.0/8`)
    /// whose `Forwarded` / `X-Forwarded-For` headers name the client, for
    /// the per-IP limits. Default none: the TCP peer is the client, and
    /// the headers are ignored (anyone could send them).
    pub trusted_proxies: Vec<String>,
    /// The broker that carries publications between nodes and keeps
    /// history and presence. Default: in memory (one node).
    pub broker: BrokerConfig,
    /// Namespaces, queues, presence: the engine. Default: the demo
    /// namespaces `chat` and `leaderboard` (see [`demo_hub`]).
    #[serde(default = "demo_hub")]
    pub hub: HubConfig,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// TLS settings: both files or neither.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain. Default none (plain HTTP).
    pub cert: Option<PathBuf>,
    /// PEM private key.
    pub key: Option<PathBuf>,
}

/// Who may connect and how tokens are checked.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Connections without a token are accepted as anonymous (user `""`).
    /// Default true, so the demo works without tokens; turn it off in
    /// production. Namespaces still decide whether anonymous sessions may
    /// subscribe (`allow_anonymous`).
    pub allow_anonymous: bool,
    /// HS256 secret for connection and subscription tokens. Default none.
    pub hmac_secret: Option<String>,
    /// RS256 public key (PEM file). Default none.
    pub rsa_public_key: Option<PathBuf>,
    /// ES256 public key (PEM file). Default none.
    pub ecdsa_public_key: Option<PathBuf>,
    /// Seconds of clock skew allowed on `exp`. Default 0: we are the issuer's
    /// clock-synced peer, and an expired token is expired.
    pub leeway_secs: u64,
}

impl Default for AuthConfig {
    fn default() -> AuthConfig {
        AuthConfig {
            allow_anonymous: true,
            hmac_secret: None,
            rsa_public_key: None,
            ecdsa_public_key: None,
            leeway_secs: 0,
        }
    }
}

/// The server API.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// The key backends send as `Authorization: apikey <key>`. Default
    /// none: every API call gets 401 until one is set.
    pub key: Option<String>,
    /// Largest request body. Default 64 KiB: a publication is a message,
    /// not a file.
    pub max_body_bytes: usize,
}

impl Default for ApiConfig {
    fn default() -> ApiConfig {
        ApiConfig {
            key: None,
            max_body_bytes: 64 * 1024,
        }
    }
}

/// The broker: in memory (one node), Redis or NATS (a cluster).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct BrokerConfig {
    /// `redis://` / `rediss://` URLs (several: shards, a channel goes to
    /// one by a consistent hash of its name) or `nats://` URLs (servers of
    /// one NATS cluster). Empty (the default): the in-memory broker, one
    /// node.
    pub urls: Vec<String>,
    /// This node's name in `info`, `/metrics` and logs. Default: a random
    /// id per process run.
    pub node_name: Option<String>,
    /// Prefix of every key (Redis) or subject and stream (NATS), so that
    /// several Clarion clusters can share one backend. Default `clarion`.
    pub prefix: String,
}

impl Default for BrokerConfig {
    fn default() -> BrokerConfig {
        BrokerConfig {
            urls: Vec::new(),
            node_name: None,
            prefix: "clarion".to_owned(),
        }
    }
}

/// Which backend the broker URLs name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerKind {
    /// No URL: in memory.
    Memory,
    /// `redis://`, `rediss://`.
    Redis,
    /// `nats://`.
    Nats,
}

impl BrokerConfig {
    /// The backend, or what is wrong with the URLs (mixed or unknown schemes).
    pub fn kind(&self) -> Result<BrokerKind, String> {
        let kind_of = |url: &str| match url.split_once("://").map(|(scheme, _)| scheme) {
            Some("redis" | "rediss") => Ok(BrokerKind::Redis),
            Some("nats") => Ok(BrokerKind::Nats),
            _ => Err(format!(
                "broker URL {url:?}: use redis://, rediss:// or nats://"
            )),
        };
        let mut kinds = self.urls.iter().map(|u| kind_of(u));
        let Some(first) = kinds.next() else {
            return Ok(BrokerKind::Memory);
        };
        let first = first?;
        for kind in kinds {
            if kind? != first {
                return Err("broker URLs mix Redis and NATS".into());
            }
        }
        Ok(first)
    }
}

/// The WebSocket endpoint.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebSocketConfig {
    /// Origins browser pages may connect from (`https://app.example.com`,
    /// `https://*.example.com`); `["*"]` allows any. Default (empty):
    /// `http://127.0.0.1:PORT` and `http://localhost:PORT` of `listen`, so
    /// the demo works and nothing else does. Requests without `Origin`
    /// (non-browser clients) are allowed.
    pub allowed_origins: Vec<String>,
    /// Open WebSocket connections; more get 503. Default 100,000.
    pub max_connections: usize,
    /// Open WebSocket connections per client IP; more get 429. Default
    /// 256: a NAT full of tabs fits, one address cannot take the server.
    pub max_connections_per_ip: usize,
    /// New WebSocket connections per second per client IP, sustained (429
    /// with `Retry-After` beyond). Default 50: reconnecting clients with
    /// backoff need well under one per second.
    pub new_connections_per_second_per_ip: u32,
    /// New connections per client IP allowed at once above that rate.
    /// Default 100: a NAT's clients reconnecting together after a restart.
    pub new_connection_burst_per_ip: u32,
    /// Time for the client to send `connect` after the upgrade. Default
    /// 10 s.
    #[serde(
        deserialize_with = "clarion_hub::deserialize_duration",
        serialize_with = "clarion_hub::serialize_duration"
    )]
    pub connect_timeout: Duration,
    /// Close a connection silent for this long (a ping goes out at half).
    /// Default 120 s.
    #[serde(
        deserialize_with = "clarion_hub::deserialize_duration",
        serialize_with = "clarion_hub::serialize_duration"
    )]
    pub idle_timeout: Duration,
    /// Accept permessage-deflate. Default false: about 300 KiB per
    /// connection with context takeover; publications are compressed once
    /// without it when on.
    pub compression: bool,
}

impl Default for WebSocketConfig {
    fn default() -> WebSocketConfig {
        WebSocketConfig {
            allowed_origins: Vec::new(),
            max_connections: 100_000,
            max_connections_per_ip: 256,
            new_connections_per_second_per_ip: 50,
            new_connection_burst_per_ip: 100,
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
            compression: false,
        }
    }
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8000)),
            log_format: LogFormat::Text,
            log_level: "info".into(),
            shutdown_timeout: Duration::from_secs(10),
            shutdown_delay: Duration::ZERO,
            tls: TlsConfig::default(),
            auth: AuthConfig::default(),
            api: ApiConfig::default(),
            websocket: WebSocketConfig::default(),
            trusted_proxies: Vec::new(),
            broker: BrokerConfig::default(),
            hub: demo_hub(),
        }
    }
}

/// The demo namespaces of the default configuration: `chat` (client
/// publish, presence, join/leave, 100 messages of history for 10 minutes)
/// and `leaderboard` (client publish, 1000 scores for an hour), both open
/// to anonymous clients, which is what the demo page needs.
const DEMO_NAMESPACES: &str = r#"
[namespaces.chat]
allow_publish = true
presence = true
join_leave = true
history_size = 100
history_ttl = "10m"
allow_history = true
allow_anonymous = true

[namespaces.leaderboard]
allow_publish = true
history_size = 1000
history_ttl = "1h"
allow_history = true
allow_anonymous = true
"#;

fn demo_hub_table() -> toml::Table {
    DEMO_NAMESPACES
        .parse()
        .expect("the demo namespaces are valid TOML")
}

/// The hub of the default configuration: [`HubConfig::default`] with the
/// demo namespaces (used when the config file has no `[hub]` section).
pub fn demo_hub() -> HubConfig {
    HubConfig::deserialize(demo_hub_table()).expect("the demo namespaces are a valid hub config")
}

impl ServerConfig {
    /// Problems serde cannot see: combinations, files, limits.
    pub fn problems(&self) -> Vec<String> {
        let mut errors = Vec::new();
        if let Err(e) = self.hub.validate() {
            errors.push(format!("hub: {e}"));
        }
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            errors.push("tls: set both cert and key, or neither".into());
        }
        for path in [&self.tls.cert, &self.tls.key].into_iter().flatten() {
            if !path.is_file() {
                errors.push(format!("tls: {} does not exist", path.display()));
            }
        }
        let keys = [&self.auth.rsa_public_key, &self.auth.ecdsa_public_key];
        for path in keys.into_iter().flatten() {
            if !path.is_file() {
                errors.push(format!("auth: {} does not exist", path.display()));
            }
        }
        if self.auth.hmac_secret.as_deref().is_some_and(str::is_empty) {
            errors.push("auth.hmac_secret is empty".into());
        }
        if self.api.key.as_deref().is_some_and(str::is_empty) {
            errors.push("api.key is empty (leave it out to disable the API)".into());
        }
        if self.api.max_body_bytes == 0 || self.websocket.max_connections == 0 {
            errors.push("api.max_body_bytes and websocket.max_connections must be > 0".into());
        }
        if self.websocket.connect_timeout.is_zero() || self.shutdown_timeout.is_zero() {
            errors.push("websocket.connect_timeout and shutdown_timeout must be > 0".into());
        }
        if let Err(e) = self.origin_policy(self.listen.port()) {
            errors.push(format!("websocket.allowed_origins: {e}"));
        }
        if let Err(e) = self.admission_limits().validate() {
            errors.push(format!("websocket: {e}"));
        }
        if let Err(e) = crate::auth::Keys::load(&self.auth) {
            errors.push(format!("auth: {e}"));
        }
        if let Err(e) = crate::proxy::TrustedProxies::parse(&self.trusted_proxies) {
            errors.push(format!("trusted_proxies: {e}"));
        }
        if let Err(e) = self.broker.kind() {
            errors.push(format!("broker.urls: {e}"));
        }
        if self.broker.prefix.is_empty() {
            errors.push("broker.prefix is empty".into());
        }
        errors
    }

    /// The WebSocket admission limits (total, per IP, rate per IP).
    pub fn admission_limits(&self) -> clarion_ws::admission::AdmissionLimits {
        let ws = &self.websocket;
        let mut limits = clarion_ws::admission::AdmissionLimits::default();
        limits.max_connections = ws.max_connections;
        limits.max_connections_per_ip = ws.max_connections_per_ip;
        limits.new_connections_per_second_per_ip = ws.new_connections_per_second_per_ip;
        limits.new_connection_burst_per_ip = ws.new_connection_burst_per_ip;
        limits.max_tracked_ips = limits.max_tracked_ips.max(ws.max_connections + 1);
        limits
    }

    /// The Origin allow-list for a server listening on `port`.
    pub fn origin_policy(
        &self,
        port: u16,
    ) -> Result<clarion_ws::proto::handshake::OriginPolicy, String> {
        use clarion_ws::proto::handshake::OriginPolicy;
        let origins = &self.websocket.allowed_origins;
        if origins.iter().any(|o| o == "*") {
            return Ok(OriginPolicy::any());
        }
        let defaults = [
            format!("http://127.0.0.1:{port}"),
            format!("http://localhost:{port}"),
            format!("https://127.0.0.1:{port}"),
            format!("https://localhost:{port}"),
        ];
        let patterns = match origins.is_empty() {
            true => defaults.as_slice(),
            false => origins.as_slice(),
        };
        OriginPolicy::from_patterns(patterns)
            .map(|p| p.allow_missing(true))
            .map_err(|e| e.to_string())
    }
}

/// Clarion's one duration grammar (`250ms`, `10s`, `1.5s`, `2m`, `1h`,
/// `1d`, or a bare number of seconds), the hub's: every flag, environment
/// variable and config key of `clarion` reads durations with it.
pub use clarion_hub::{format_duration, parse_duration, DurationError};

mod load;
mod print;
#[cfg(test)]
mod tests;

pub use load::{load, ConfigSources, Override, ENV_OVERRIDES};
pub use print::{config_keys, MASKED};
