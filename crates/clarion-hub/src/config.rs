//! Hub configuration: namespaces and their options, queue limits. Plain
//! data with serde defaults, so the server crate can load it from TOML.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// The hub's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HubConfig {
    /// Options of channels without a `namespace:` prefix.
    pub default_namespace: NamespaceOptions,
    /// Named namespaces (`chat` for `chat:lobby`). A channel in a namespace
    /// not listed here does not exist. Default: none.
    pub namespaces: HashMap<String, NamespaceOptions>,
    /// Per-session outgoing queue limits.
    pub queue: QueueLimits,
    /// Largest client frame in bytes. Default 64 KiB (see `clarion_wire::Limits`).
    pub max_frame_bytes: usize,
    /// Most commands per client frame. Default 64.
    pub max_commands_per_frame: usize,
    /// Most channels one session may be subscribed to. Default 128: a UI
    /// rarely shows more, and each costs memory on every node it touches.
    pub max_subscriptions: usize,
    /// How long a presence entry lives unless refreshed (the hub refreshes
    /// entries of live sessions every third of this). Default 60 s: a
    /// crashed node's clients vanish from presence within a minute.
    #[serde(deserialize_with = "deserialize_duration")]
    pub presence_ttl: Duration,
    /// Seconds between client pings to advertise in the connect result
    /// (transports without WebSocket pings). Default 25.
    pub client_ping_interval: Option<u64>,
    /// Deepest nesting of arrays and objects in publication data; deeper
    /// data is refused with 400 on every path (client and server API).
    /// Default 64: far beyond real documents, well within what every JSON
    /// parser a subscriber may use can decode (serde_json stops at 128).
    pub max_data_depth: usize,
    /// Sessions one user (non-empty user id) may hold on this node; more
    /// are refused with disconnect 4505. Anonymous sessions are bounded by
    /// the per-IP limits instead. Default 100: many tabs and devices, not
    /// a botnet on one account.
    pub max_connections_per_user: usize,
    /// How fast one session may send commands.
    pub rate_limits: RateLimits,
}

/// Per-session command rate limits (token buckets). A command over its
/// rate gets error `429` (temporary) and is not executed; a session that
/// gets more than `max_refused` such errors within `refused_window` is
/// disconnected with `4008`. A rate of 0 turns that bucket off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimits {
    /// Commands other than `publish` per second, sustained. Default 100.
    pub commands_per_second: u32,
    /// Commands allowed at once above that rate. Default 200: a
    /// reconnecting client resubscribing to its channels in one frame.
    pub command_burst: u32,
    /// `publish` commands per second, sustained. Default 20: one publish
    /// can fan out to every subscriber of a channel, so it is limited
    /// apart from cheap commands.
    pub publishes_per_second: u32,
    /// Publishes allowed at once above that rate. Default 40.
    pub publish_burst: u32,
    /// Refused commands tolerated within `refused_window` before the
    /// session is disconnected with 4008. Default 50.
    pub max_refused: u32,
    /// The window `max_refused` counts in. Default 10 s.
    #[serde(deserialize_with = "deserialize_duration")]
    pub refused_window: Duration,
}

impl Default for RateLimits {
    fn default() -> RateLimits {
        RateLimits {
            commands_per_second: 100,
            command_burst: 200,
            publishes_per_second: 20,
            publish_burst: 40,
            max_refused: 50,
            refused_window: Duration::from_secs(10),
        }
    }
}

impl Default for HubConfig {
    fn default() -> HubConfig {
        HubConfig {
            default_namespace: NamespaceOptions::default(),
            namespaces: HashMap::new(),
            queue: QueueLimits::default(),
            max_frame_bytes: 64 * 1024,
            max_commands_per_frame: 64,
            max_subscriptions: 128,
            presence_ttl: Duration::from_secs(60),
            client_ping_interval: Some(25),
            max_data_depth: 64,
            max_connections_per_user: 100,
            rate_limits: RateLimits::default(),
        }
    }
}

/// What a namespace allows. Every default is the closed, cheap choice.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NamespaceOptions {
    /// Clients may publish (otherwise only the server API may). Default false.
    pub allow_publish: bool,
    /// Track who is subscribed; subscribers may call `presence` and
    /// `presence_stats`. Default false.
    pub presence: bool,
    /// Send `join`/`leave` pushes. Default false.
    pub join_leave: bool,
    /// Publications kept per channel (0: no history, no recovery, no
    /// offsets). Default 0.
    pub history_size: usize,
    /// How long each publication stays in history. Required when
    /// `history_size` > 0. Default 0.
    #[serde(deserialize_with = "deserialize_duration")]
    pub history_ttl: Duration,
    /// How long a stream's position (offset, epoch) outlives its last
    /// publication. After that the next publication starts a new epoch, so
    /// clients still holding old positions get `recovered: false`.
    /// Default 1 day.
    #[serde(deserialize_with = "deserialize_duration")]
    pub history_meta_ttl: Duration,
    /// Subscribers may call `history`. Default false.
    pub allow_history: bool,
    /// Subscribing needs a subscription token. Default false.
    pub require_subscription_token: bool,
    /// Anonymous sessions (empty user id) may subscribe. Default false.
    pub allow_anonymous: bool,
}

impl Default for NamespaceOptions {
    fn default() -> NamespaceOptions {
        NamespaceOptions {
            allow_publish: false,
            presence: false,
            join_leave: false,
            history_size: 0,
            history_ttl: Duration::ZERO,
            history_meta_ttl: Duration::from_secs(24 * 3600),
            allow_history: false,
            require_subscription_token: false,
            allow_anonymous: false,
        }
    }
}

impl NamespaceOptions {
    /// Whether the namespace keeps history (and so offsets and recovery).
    pub fn has_history(&self) -> bool {
        self.history_size > 0
    }
}

/// Bounds of one session's outgoing queue (see `docs/hub.md`, slow consumers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueLimits {
    /// Bytes of frames waiting to be written. Default 1 MiB: several seconds
    /// of a busy feed; a client further behind is better off reconnecting
    /// and recovering.
    pub max_bytes: usize,
    /// Frames waiting to be written. Default 16384: bounds the per-frame
    /// overhead when frames are tiny.
    pub max_frames: usize,
}

impl Default for QueueLimits {
    fn default() -> QueueLimits {
        QueueLimits {
            max_bytes: 1024 * 1024,
            max_frames: 16384,
        }
    }
}

/// A configuration the hub refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

impl HubConfig {
    /// Checks combinations serde cannot: history needs a TTL, names are
    /// valid, limits are non-zero.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |message: String| Err(ConfigError { message });
        check_namespace("default_namespace", &self.default_namespace)?;
        for (name, ns) in &self.namespaces {
            let valid = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
            if !valid {
                return err(format!("namespace name {name:?}: use [A-Za-z0-9_.-]+"));
            }
            check_namespace(name, ns)?;
        }
        if self.queue.max_bytes == 0 || self.queue.max_frames == 0 {
            return err("queue limits must be greater than 0".into());
        }
        if self.max_frame_bytes == 0 || self.max_commands_per_frame == 0 {
            return err("frame limits must be greater than 0".into());
        }
        if self.presence_ttl < Duration::from_secs(1) {
            return err("presence_ttl must be at least 1s".into());
        }
        if self.max_data_depth == 0 || self.max_connections_per_user == 0 {
            return err(
                "max_data_depth and max_connections_per_user must be greater than 0".into(),
            );
        }
        let rates = &self.rate_limits;
        let bursts_ok = (rates.commands_per_second == 0 || rates.command_burst > 0)
            && (rates.publishes_per_second == 0 || rates.publish_burst > 0);
        if !bursts_ok || rates.refused_window.is_zero() {
            return err(
                "rate_limits: a burst must be > 0 when its rate is, refused_window > 0".into(),
            );
        }
        Ok(())
    }

    /// The options of a namespace (`None`: the default namespace).
    pub fn namespace(&self, name: Option<&str>) -> Option<&NamespaceOptions> {
        match name {
            None => Some(&self.default_namespace),
            Some(name) => self.namespaces.get(name),
        }
    }
}

fn check_namespace(name: &str, ns: &NamespaceOptions) -> Result<(), ConfigError> {
    if ns.history_size > 0 && ns.history_ttl.is_zero() {
        return Err(ConfigError {
            message: format!("namespace {name}: history_size needs a history_ttl"),
        });
    }
    if ns.history_size > 0 && ns.history_meta_ttl < ns.history_ttl {
        return Err(ConfigError {
            message: format!("namespace {name}: history_meta_ttl must be at least history_ttl"),
        });
    }
    Ok(())
}

/// Accepts whole seconds (`300`) or a string with a unit (`"500ms"`,
/// `"30s"`, `"5m"`, `"2h"`, `"1d"`): for `#[serde(deserialize_with)]` in
/// this config and the server's.
pub fn deserialize_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Secs(u64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Secs(s) => Ok(Duration::from_secs(s)),
        Raw::Text(t) => parse_duration(&t).ok_or_else(|| {
            serde::de::Error::custom(format_args!("invalid duration {t:?} (e.g. \"30s\")"))
        }),
    }
}

/// `"500ms"`, `"30s"`, `"5m"`, `"2h"`, `"1d"`; `None` for anything else.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (num, unit) = text.split_at(split);
    let n: u64 = num.parse().ok()?;
    let ms = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    Some(Duration::from_millis(n.checked_mul(ms)?))
}

/// A parsed channel name: `namespace:name` or a bare name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChannelName<'a> {
    pub(crate) namespace: Option<&'a str>,
}

/// Parses a channel name: 1–255 bytes of printable ASCII without spaces;
/// the namespace is the part before the first `:`.
pub(crate) fn parse_channel(channel: &str) -> Option<ChannelName<'_>> {
    let ok = !channel.is_empty()
        && channel.len() <= 255
        && channel.bytes().all(|b| b.is_ascii_graphic());
    if !ok {
        return None;
    }
    match channel.split_once(':') {
        Some(("", _)) | Some((_, "")) => None,
        Some((ns, _)) => Some(ChannelName {
            namespace: Some(ns),
        }),
        None => Some(ChannelName { namespace: None }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_durations_from_json() {
        let cfg: HubConfig = serde_json::from_str(
            r#"{"namespaces":{"chat":{"presence":true,"history_size":100,"history_ttl":"5m"}},
                "presence_ttl":30}"#,
        )
        .unwrap();
        let chat = cfg.namespace(Some("chat")).unwrap();
        assert!(chat.presence && !chat.allow_publish);
        assert_eq!(chat.history_ttl, Duration::from_secs(300));
        assert_eq!(cfg.presence_ttl, Duration::from_secs(30));
        assert_eq!(cfg.queue, QueueLimits::default());
        assert!(cfg.namespace(Some("nope")).is_none());
        cfg.validate().unwrap();
    }

    #[test]
    fn invalid_configs_are_refused() {
        let cfg: HubConfig =
            serde_json::from_str(r#"{"namespaces":{"chat":{"history_size":10}}}"#).unwrap();
        assert!(cfg
            .validate()
            .unwrap_err()
            .to_string()
            .contains("history_ttl"));
        let cfg: HubConfig = serde_json::from_str(r#"{"namespaces":{"a b":{}}}"#).unwrap();
        assert!(cfg.validate().is_err());
        assert!(serde_json::from_str::<HubConfig>(r#"{"namespacez":{}}"#).is_err());
        assert!(serde_json::from_str::<HubConfig>(r#"{"presence_ttl":"5 min"}"#).is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_duration("2"), None);
        assert_eq!(parse_duration("s"), None);
    }

    #[test]
    fn channel_names() {
        assert_eq!(parse_channel("chat:lobby").unwrap().namespace, Some("chat"));
        assert_eq!(parse_channel("a:b:c").unwrap().namespace, Some("a"));
        assert_eq!(parse_channel("lobby").unwrap().namespace, None);
        for bad in ["", ":x", "x:", "has space", "tab\t", "é", &"x".repeat(256)] {
            assert!(parse_channel(bad).is_none(), "{bad:?}");
        }
    }
}
