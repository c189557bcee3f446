//! Configuration: a TOML file (raw), then `CLARION_*` environment
//! variables, then command-line flags, each overriding the one before, and
//! only then validated into a [`ServerConfig`]. Every key, its default and
//! why: `docs/server.md`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
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

/// Environment variables and the keys they set (value parsed as a TOML
/// value when it is one, e.g. `true`, `8`, `["a","b"]`, else a string).
pub const ENV_OVERRIDES: &[(&str, &str)] = &[
    ("CLARION_LISTEN", "listen"),
    ("CLARION_LOG_FORMAT", "log_format"),
    ("CLARION_LOG_LEVEL", "log_level"),
    ("CLARION_SHUTDOWN_TIMEOUT", "shutdown_timeout"),
    ("CLARION_SHUTDOWN_DELAY", "shutdown_delay"),
    ("CLARION_TLS_CERT", "tls.cert"),
    ("CLARION_TLS_KEY", "tls.key"),
    ("CLARION_ALLOW_ANONYMOUS", "auth.allow_anonymous"),
    ("CLARION_HMAC_SECRET", "auth.hmac_secret"),
    ("CLARION_RSA_PUBLIC_KEY", "auth.rsa_public_key"),
    ("CLARION_ECDSA_PUBLIC_KEY", "auth.ecdsa_public_key"),
    ("CLARION_API_KEY", "api.key"),
    ("CLARION_API_MAX_BODY_BYTES", "api.max_body_bytes"),
    ("CLARION_ALLOWED_ORIGINS", "websocket.allowed_origins"),
    ("CLARION_MAX_CONNECTIONS", "websocket.max_connections"),
    (
        "CLARION_MAX_CONNECTIONS_PER_IP",
        "websocket.max_connections_per_ip",
    ),
    (
        "CLARION_NEW_CONNECTIONS_PER_SECOND_PER_IP",
        "websocket.new_connections_per_second_per_ip",
    ),
    (
        "CLARION_NEW_CONNECTION_BURST_PER_IP",
        "websocket.new_connection_burst_per_ip",
    ),
    ("CLARION_CONNECT_TIMEOUT", "websocket.connect_timeout"),
    ("CLARION_IDLE_TIMEOUT", "websocket.idle_timeout"),
    ("CLARION_COMPRESSION", "websocket.compression"),
    (
        "CLARION_MAX_CONNECTIONS_PER_USER",
        "hub.max_connections_per_user",
    ),
    ("CLARION_MAX_DATA_DEPTH", "hub.max_data_depth"),
    ("CLARION_BROKER", "broker.urls"),
    ("CLARION_TRUSTED_PROXIES", "trusted_proxies"),
    ("CLARION_NODE_NAME", "broker.node_name"),
    (
        "CLARION_COMMANDS_PER_SECOND",
        "hub.rate_limits.commands_per_second",
    ),
    (
        "CLARION_PUBLISHES_PER_SECOND",
        "hub.rate_limits.publishes_per_second",
    ),
];

/// Where each layer of configuration comes from.
#[derive(Debug, Clone, Default)]
pub struct ConfigSources {
    /// The TOML file, if any.
    pub file: Option<PathBuf>,
    /// Environment variables (normally `std::env::vars()`).
    pub env: Vec<(String, String)>,
    /// Flag overrides: dotted key (`api.key`) and value, applied last.
    pub flags: Vec<(String, Override)>,
}

/// A value set by a command-line flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Override {
    /// A string (addresses, paths, keys, durations like `"10s"`).
    Str(String),
    /// A switch.
    Bool(bool),
    /// A number (limits).
    Int(u64),
    /// A list (`allowed_origins`).
    List(Vec<String>),
}

impl Override {
    fn into_toml(self) -> toml::Value {
        match self {
            Override::Str(s) => toml::Value::String(s),
            Override::Bool(b) => toml::Value::Boolean(b),
            // Past i64::MAX: a string, which the key's type then refuses.
            Override::Int(n) => match i64::try_from(n) {
                Ok(n) => toml::Value::Integer(n),
                Err(_) => toml::Value::String(n.to_string()),
            },
            Override::List(l) => {
                toml::Value::Array(l.into_iter().map(toml::Value::String).collect())
            }
        }
    }
}

/// Loads and validates; every problem found is in the error list.
pub fn load(sources: &ConfigSources) -> Result<ServerConfig, Vec<String>> {
    let mut tree = match &sources.file {
        Some(path) => read_file(path).map_err(|e| vec![e])?,
        None => toml::Table::new(),
    };
    // Without a [hub] section the demo namespaces apply, also when the
    // environment or flags set other hub keys.
    tree.entry("hub")
        .or_insert_with(|| toml::Value::Table(demo_hub_table()));
    let env: HashMap<&str, &str> = sources
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    for (var, key) in ENV_OVERRIDES {
        if let Some(value) = env.get(var) {
            set(&mut tree, key, env_value(key, value));
        }
    }
    for (key, value) in &sources.flags {
        set(&mut tree, key, value.clone().into_toml());
    }
    let (config, mut errors) = deserialize_all(tree);
    errors.extend(config.problems());
    match errors.is_empty() {
        true => Ok(config),
        false => Err(errors),
    }
}

/// Deserializes, collecting every bad key rather than stopping at the
/// first: each error names its key, which is then dropped (its default
/// stands in) and the rest tried again.
fn deserialize_all(mut tree: toml::Table) -> (ServerConfig, Vec<String>) {
    let mut errors = Vec::new();
    // Each round drops one key, so a tree with N bad keys takes N + 1.
    for _ in 0..256 {
        let value = toml::Value::Table(tree.clone());
        let error = match serde_path_to_error::deserialize::<_, ServerConfig>(value) {
            Ok(config) => return (config, errors),
            Err(e) => e,
        };
        let text = error.inner().to_string();
        // toml adds "in `table`" lines; the key path says it better.
        let message = text.lines().next().unwrap_or_default().to_owned();
        let mut key = error.path().to_string();
        if let Some(field) = unknown_field(&message) {
            let named = key == field || key.ends_with(&format!(".{field}"));
            key = match key.as_str() {
                _ if named => key,
                "." | "" => field.to_owned(),
                parent => format!("{parent}.{field}"),
            };
        }
        errors.push(format!("{key}: {message}"));
        if !remove(&mut tree, &key) {
            break;
        }
    }
    (ServerConfig::default(), errors)
}

/// The field an "unknown field `x`, expected ..." error names.
fn unknown_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split('`').next()
}

/// Removes a dotted key from the tree; false if it was not there.
fn remove(tree: &mut toml::Table, key: &str) -> bool {
    let mut parts: Vec<&str> = key.split('.').collect();
    let Some(last) = parts.pop() else {
        return false;
    };
    let mut table = tree;
    for part in parts {
        match table.get_mut(part) {
            Some(toml::Value::Table(next)) => table = next,
            _ => return false,
        }
    }
    table.remove(last).is_some()
}

fn read_file(path: &Path) -> Result<toml::Table, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    text.parse::<toml::Table>()
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// An environment value: TOML if it parses as one (a list for
/// `allowed_origins` may also be comma-separated), else a plain string.
fn env_value(key: &str, raw: &str) -> toml::Value {
    let parsed = format!("v = {raw}").parse::<toml::Table>();
    if let Ok(mut table) = parsed {
        if let Some(value) = table.remove("v") {
            return value;
        }
    }
    if key.ends_with("allowed_origins") || key == "broker.urls" || key == "trusted_proxies" {
        let list = raw.split(',').map(|s| toml::Value::String(s.trim().into()));
        return toml::Value::Array(list.collect());
    }
    toml::Value::String(raw.to_owned())
}

/// Sets a dotted key in the tree, creating tables on the way.
fn set(tree: &mut toml::Table, key: &str, value: toml::Value) {
    let mut parts: Vec<&str> = key.split('.').collect();
    let last = parts.pop().unwrap_or(key);
    let mut table = tree;
    for part in parts {
        let entry = table
            .entry(part.to_owned())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !entry.is_table() {
            *entry = toml::Value::Table(toml::Table::new());
        }
        let toml::Value::Table(next) = entry else {
            unreachable!("just made a table")
        };
        table = next;
    }
    table.insert(last.to_owned(), value);
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

/// What `--print-config` shows instead of a secret.
pub const MASKED: &str = "<masked>";

/// The first lines of [`ServerConfig::to_toml`].
const TOML_HEADER: &str = "\
# The configuration of `clarion serve`, as `clarion serve --print-config` prints it:
# the file, then CLARION_* environment variables, then flags. Every key and what
# it does: docs/server.md. Unset keys are commented out; secrets are masked.
# Durations: 250ms, 10s, 1.5s, 2m, 1h, 1d, or a number of seconds.
";

impl ServerConfig {
    /// The configuration as TOML that [`load`] reads back: every key, in
    /// alphabetical order within its table, tables after plain keys; keys
    /// without a value (`tls.cert`, ...) as comments; secrets (`api.key`,
    /// `auth.hmac_secret`, passwords in broker URLs) replaced by [`MASKED`].
    pub fn to_toml(&self) -> String {
        let mut tree = serde_json::to_value(self).expect("the config serializes");
        mask_secrets(&mut tree);
        let mut out = String::from(TOML_HEADER);
        if let serde_json::Value::Object(map) = &tree {
            write_table(&mut out, "", map);
        }
        out
    }
}

/// Every config key the deserializer knows, dotted (`websocket.max_connections`),
/// and every table (`hub.rate_limits`); a namespace's options under
/// `hub.namespaces.NAME`. Taken from the config's own serialization, which
/// a test checks against the deserializer.
pub fn config_keys() -> Vec<String> {
    let mut config = ServerConfig::default();
    config.hub.namespaces = HashMap::from([("NAME".to_owned(), Default::default())]);
    let tree = serde_json::to_value(&config).expect("the config serializes");
    let mut keys = Vec::new();
    collect_keys(&tree, "", &mut keys);
    keys
}

fn collect_keys(value: &serde_json::Value, path: &str, keys: &mut Vec<String>) {
    if let serde_json::Value::Object(map) = value {
        for (key, value) in map {
            let dotted = match path {
                "" => key.clone(),
                _ => format!("{path}.{key}"),
            };
            keys.push(dotted.clone());
            collect_keys(value, &dotted, keys);
        }
    }
}

fn mask_secrets(tree: &mut serde_json::Value) {
    for pointer in ["/api/key", "/auth/hmac_secret"] {
        if let Some(value) = tree.pointer_mut(pointer) {
            if !value.is_null() {
                *value = serde_json::Value::String(MASKED.into());
            }
        }
    }
    if let Some(serde_json::Value::Array(urls)) = tree.pointer_mut("/broker/urls") {
        for url in urls {
            if let serde_json::Value::String(text) = url {
                *text = mask_url(text);
            }
        }
    }
}

/// `redis://user:secret@host` -> `redis://user:<masked>@host`;
/// `nats://token@host` -> `nats://<masked>@host`.
fn mask_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_owned();
    };
    let userinfo = &rest[..at];
    let masked = match userinfo.split_once(':') {
        Some((user, _)) => format!("{user}:{MASKED}"),
        None => MASKED.to_owned(),
    };
    format!("{scheme}://{masked}{}", &rest[at..])
}

/// Writes one table's plain keys, then its sub-tables with their headers.
fn write_table(out: &mut String, path: &str, map: &serde_json::Map<String, serde_json::Value>) {
    use std::fmt::Write as _;
    for (key, value) in map {
        let key = toml_key(key);
        match value {
            serde_json::Value::Object(_) => {}
            serde_json::Value::Null => {
                let _ = writeln!(out, "# {key} = (not set)");
            }
            value => {
                let _ = writeln!(out, "{key} = {}", toml_value(value));
            }
        }
    }
    for (key, value) in map {
        if let serde_json::Value::Object(table) = value {
            let path = match path {
                "" => toml_key(key),
                _ => format!("{path}.{}", toml_key(key)),
            };
            let _ = writeln!(out, "\n[{path}]");
            write_table(out, &path, table);
        }
    }
}

fn toml_key(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    match bare {
        true => key.to_owned(),
        false => toml::Value::String(key.to_owned()).to_string(),
    }
}

fn toml_value(value: &serde_json::Value) -> toml::Value {
    match value {
        serde_json::Value::Bool(b) => toml::Value::Boolean(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => toml::Value::Integer(i),
            None => toml::Value::Float(n.as_f64().unwrap_or_default()),
        },
        serde_json::Value::String(s) => toml::Value::String(s.clone()),
        serde_json::Value::Array(items) => {
            toml::Value::Array(items.iter().map(toml_value).collect())
        }
        // Tables and unset values are written by `write_table`.
        serde_json::Value::Object(_) | serde_json::Value::Null => {
            toml::Value::String(String::new())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(file_text: Option<&str>, env: &[(&str, &str)]) -> ConfigSources {
        let file = file_text.map(|text| {
            let dir = std::env::temp_dir().join(format!("clarion-cfg-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join(format!("{}.toml", text.len()));
            std::fs::write(&path, text).unwrap();
            path
        });
        ConfigSources {
            file,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            flags: Vec::new(),
        }
    }

    #[test]
    fn defaults_have_the_demo_namespaces() {
        let config = load(&ConfigSources::default()).unwrap();
        assert!(config.hub.namespaces["chat"].presence);
        assert!(config.hub.namespaces["leaderboard"].allow_publish);
        assert!(config.auth.allow_anonymous);
        assert!(config.api.key.is_none());
    }

    #[test]
    fn file_then_env_then_flags() {
        let mut src = sources(
            Some("listen = \"127.0.0.1:1\"\n[api]\nkey = \"file\"\nmax_body_bytes = 10\n"),
            &[
                ("CLARION_API_KEY", "env"),
                ("CLARION_LISTEN", "127.0.0.1:2"),
            ],
        );
        let config = load(&src).unwrap();
        assert_eq!(config.api.key.as_deref(), Some("env"));
        assert_eq!(config.listen.port(), 2);
        assert_eq!(config.api.max_body_bytes, 10);
        src.flags
            .push(("listen".into(), Override::Str("127.0.0.1:3".into())));
        assert_eq!(load(&src).unwrap().listen.port(), 3);
    }

    #[test]
    fn errors_are_listed() {
        let src = sources(
            Some("[tls]\ncert = \"/nope.pem\"\n[api]\nkey = \"\"\n[hub.namespaces.x]\nhistory_size = 3\n"),
            &[],
        );
        let errors = load(&src).unwrap_err();
        assert!(errors.len() >= 3, "{errors:?}");
        assert!(load(&sources(Some("nope = 1"), &[])).is_err());
    }

    #[test]
    fn every_bad_key_is_listed_not_just_the_first() {
        let src = sources(
            Some("nope = 1\nshutdown_timeout = \"ten\"\n[api]\nmax_body_bytes = \"x\"\nbogus = true\n[hub.namespaces.chat]\nhistory_ttl = \"5 min\"\n"),
            &[("CLARION_API_KEY", "")],
        );
        let errors = load(&src).unwrap_err();
        for key in [
            "nope",
            "shutdown_timeout",
            "api.max_body_bytes",
            "api.bogus",
            "history_ttl",
            "api.key",
        ] {
            assert!(
                errors.iter().any(|e| e.contains(key)),
                "{key} missing in {errors:?}"
            );
        }
    }

    #[test]
    fn env_hub_keys_keep_the_demo_namespaces() {
        let config = load(&sources(None, &[("CLARION_MAX_CONNECTIONS_PER_USER", "3")])).unwrap();
        assert_eq!(config.hub.max_connections_per_user, 3);
        assert!(config.hub.namespaces.contains_key("chat"));
    }

    #[test]
    fn durations_read_the_same_from_file_env_and_flags() {
        let mut src = sources(
            Some("shutdown_delay = 1.5\n[websocket]\nidle_timeout = \"1h\"\n"),
            &[("CLARION_SHUTDOWN_TIMEOUT", "10")],
        );
        let config = load(&src).unwrap();
        assert_eq!(config.shutdown_delay, Duration::from_millis(1500));
        assert_eq!(config.websocket.idle_timeout, Duration::from_secs(3600));
        assert_eq!(config.shutdown_timeout, Duration::from_secs(10));
        for (flag, want) in [
            ("10", 10_000),
            ("1.5", 1500),
            ("250ms", 250),
            ("1h", 3_600_000),
        ] {
            src.flags = vec![("shutdown_timeout".into(), Override::Str(flag.into()))];
            let config = load(&src).unwrap();
            assert_eq!(
                config.shutdown_timeout,
                Duration::from_millis(want),
                "{flag}"
            );
        }
        for bad in ["-1s", "1.5.s", "0.0001ms"] {
            src.flags = vec![("shutdown_timeout".into(), Override::Str(bad.into()))];
            let errors = load(&src).unwrap_err();
            assert!(
                errors[0].starts_with("shutdown_timeout: invalid duration"),
                "{errors:?}"
            );
        }
        let env = sources(None, &[("CLARION_SHUTDOWN_TIMEOUT", "-1")]);
        assert!(load(&env).is_err());
    }

    #[test]
    fn printed_config_reads_back_the_same() {
        let mut config = load(&sources(
            Some("[broker]\nurls = [\"redis://u:pw@h:1\", \"redis://h:2\"]\n"),
            &[("CLARION_API_KEY", "k1"), ("CLARION_HMAC_SECRET", "s1")],
        ))
        .unwrap();
        let printed = config.to_toml();
        for secret in ["k1", "s1", "pw"] {
            assert!(
                !printed.contains(&format!("\"{secret}")),
                "{secret} in {printed}"
            );
            assert!(
                !printed.contains(&format!(":{secret}@")),
                "{secret} in {printed}"
            );
        }
        assert!(printed.contains("key = \"<masked>\""), "{printed}");
        assert!(printed.contains("\"redis://u:<masked>@h:1\""), "{printed}");
        assert!(printed.contains("# cert = (not set)"), "{printed}");
        // Without secrets, what is printed loads to a config printed the same.
        config.api.key = None;
        config.auth.hmac_secret = None;
        config.broker.urls.clear();
        config.shutdown_timeout = Duration::from_millis(1500);
        let printed = config.to_toml();
        let reread = load(&sources(Some(&printed), &[])).unwrap();
        assert_eq!(reread.to_toml(), printed);
    }

    #[test]
    fn every_listed_key_is_known_to_the_deserializer() {
        let keys = config_keys();
        for key in [
            "listen",
            "websocket.max_connections",
            "hub.rate_limits.refused_window",
            "hub.namespaces.NAME.history_ttl",
            "tls.cert",
            "broker.prefix",
            "trusted_proxies",
        ] {
            assert!(keys.iter().any(|k| k == key), "{key} missing in {keys:?}");
        }
        // Each key alone in a file: no "unknown field" (the deserializer
        // knows it); a made-up key next to it is refused.
        let defaults = serde_json::to_value(ServerConfig::default()).unwrap();
        for key in &keys {
            let pointer = format!("/{}", key.replace('.', "/").replace("NAME", "chat"));
            let value = match defaults.pointer(&pointer) {
                None => panic!("{key} is not in the default config"),
                // Unset options: a string fits every one of them.
                Some(serde_json::Value::Null) => toml::Value::String("x".into()),
                Some(value) => toml_value(value),
            };
            if value.as_str() == Some("") {
                continue; // a table
            }
            let mut tree = toml::Table::new();
            set(&mut tree, &key.replace("NAME", "x"), value);
            let (_, errors) = deserialize_all(tree.clone());
            assert!(
                errors.iter().all(|e| !e.contains("unknown")),
                "{key}: {errors:?}"
            );
            set(
                &mut tree,
                &format!("{key}_nope").replace("NAME", "x"),
                toml::Value::Boolean(true),
            );
            let (_, errors) = deserialize_all(tree);
            assert!(
                errors.iter().any(|e| e.contains("unknown")),
                "{key}_nope accepted"
            );
        }
    }

    #[test]
    fn origins_default_to_loopback_of_the_port() {
        let config = ServerConfig::default();
        let policy = config.origin_policy(8080).unwrap();
        assert!(policy.check(Some("http://localhost:8080"), "x").is_ok());
        assert!(policy.check(Some("http://evil.example"), "x").is_err());
        assert!(policy.check(None, "x").is_ok());
        let env = sources(None, &[("CLARION_ALLOWED_ORIGINS", "https://a.example,*")]);
        let any = load(&env).unwrap().origin_policy(1).unwrap();
        assert!(any.is_any());
    }
}
