//! Loading: the TOML file, then `CLARION_*` environment variables, then
//! flags, merged into one tree and deserialized, every problem listed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::{demo_hub_table, ServerConfig};

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
pub(super) fn deserialize_all(mut tree: toml::Table) -> (ServerConfig, Vec<String>) {
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
pub(super) fn set(tree: &mut toml::Table, key: &str, value: toml::Value) {
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
