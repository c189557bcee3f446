//! `clarion serve --print-config`: the effective configuration as TOML,
//! secrets masked, and the list of every config key.

use std::collections::HashMap;

use super::ServerConfig;

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

pub(super) fn toml_value(value: &serde_json::Value) -> toml::Value {
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
