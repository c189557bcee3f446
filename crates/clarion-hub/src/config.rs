//! Hub configuration: namespaces and their options, queue limits. Plain
//! data with serde defaults, so the server crate can load it from TOML.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

/// The hub's configuration.
#[derive(Debug, Clone, Deserialize, Serialize)]
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
    #[serde(
        deserialize_with = "deserialize_duration",
        serialize_with = "serialize_duration"
    )]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
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
    #[serde(
        deserialize_with = "deserialize_duration",
        serialize_with = "serialize_duration"
    )]
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
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct NamespaceOptions {
    /// Clients may publish (otherwise only the server API may). Default false.
    pub allow_publish: bool,
    /// Track who is subscribed; subscribers may call `presence` and
    /// `presence_stats`. Default false.
    pub presence: bool,
    /// Send `join`/`leave` pushes. Default false.
    pub join_leave: bool,
    /// Send them once per user rather than per connection: `join` for a
    /// user's first connection into the channel, `leave` for its last one
    /// out, counted across nodes by the broker (two tabs are one person).
    /// Needs `presence` and `join_leave`. Default false.
    pub join_leave_per_user: bool,
    /// Publications kept per channel (0: no history, no recovery, no
    /// offsets). Default 0.
    pub history_size: usize,
    /// How long each publication stays in history. Required when
    /// `history_size` > 0. Default 0.
    #[serde(
        deserialize_with = "deserialize_duration",
        serialize_with = "serialize_duration"
    )]
    pub history_ttl: Duration,
    /// How long a stream's position (offset, epoch) outlives its last
    /// publication. After that the next publication starts a new epoch, so
    /// clients still holding old positions get `recovered: false`.
    /// Default 1 day.
    #[serde(
        deserialize_with = "deserialize_duration",
        serialize_with = "serialize_duration"
    )]
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
            join_leave_per_user: false,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
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
    if ns.join_leave_per_user && !(ns.presence && ns.join_leave) {
        return Err(ConfigError {
            message: format!("namespace {name}: join_leave_per_user needs presence and join_leave"),
        });
    }
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

/// Accepts a duration in Clarion's one grammar (see [`parse_duration`]):
/// a number of seconds (`300`, `1.5`) or a string (`"500ms"`, `"30s"`,
/// `"1.5s"`, `"5m"`, `"2h"`, `"1d"`, `"10"`): for
/// `#[serde(deserialize_with)]` in this config and the server's.
pub fn deserialize_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    struct Visitor;
    impl serde::de::Visitor<'_> for Visitor {
        type Value = Duration;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a duration: seconds (10, 1.5) or a string (\"250ms\", \"10s\", \"2m\")")
        }

        fn visit_u64<E: serde::de::Error>(self, secs: u64) -> Result<Duration, E> {
            self.visit_str(&secs.to_string())
        }

        fn visit_i64<E: serde::de::Error>(self, secs: i64) -> Result<Duration, E> {
            self.visit_str(&secs.to_string())
        }

        fn visit_f64<E: serde::de::Error>(self, secs: f64) -> Result<Duration, E> {
            // Display never uses an exponent, so the grammar reads it.
            self.visit_str(&secs.to_string())
        }

        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Duration, E> {
            parse_duration(text).map_err(E::custom)
        }
    }
    d.deserialize_any(Visitor)
}

/// Serializes a duration as [`format_duration`] writes it (`"10s"`), which
/// [`deserialize_duration`] reads back.
pub fn serialize_duration<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_duration(*d))
}

/// The largest duration [`parse_duration`] accepts: 100 years (36,500
/// days). Longer ones are refused rather than overflowing a deadline.
pub const MAX_DURATION: Duration = Duration::from_secs(36_500 * 86_400);

/// A duration [`parse_duration`] refuses, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationError {
    text: String,
    reason: &'static str,
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid duration {:?}: {} (e.g. 250ms, 10s, 1.5s, 2m, 1h, 1d, or 10 for seconds)",
            self.text, self.reason
        )
    }
}

impl std::error::Error for DurationError {}

/// Clarion's one duration grammar, for every flag, environment variable and
/// config key: a non-negative decimal number (`10`, `1.5`; digits on both
/// sides of the point) followed by a unit, `ms`, `s`, `m`, `h` or `d`, or
/// by nothing, which means seconds. Surrounding spaces are ignored; signs,
/// exponents, spaces inside and other units are refused. Durations are
/// whole milliseconds: a value with a finer part (`0.0001ms`, `1.0005s`) is
/// refused, not rounded, and so is one above [`MAX_DURATION`].
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let fail = |reason| DurationError {
        text: text.to_owned(),
        reason,
    };
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    if number.is_empty() {
        return Err(fail("it must start with a number"));
    }
    let unit_ms: u128 = match unit {
        "ms" => 1,
        "" | "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(fail("the unit must be ms, s, m, h, d or none (seconds)")),
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let dangling_point = number.ends_with('.');
    if whole.is_empty() || dangling_point || fraction.contains('.') {
        return Err(fail("the number must be digits, with an optional .digits"));
    }
    // Trailing zeros of the fraction change nothing; leading zeros of the
    // whole part neither.
    let fraction = fraction.trim_end_matches('0');
    let whole = whole.trim_start_matches('0');
    if whole.len() > 20 || fraction.len() > 20 {
        return Err(fail("too many digits"));
    }
    let digits = format!("{whole}{fraction}");
    let mantissa: u128 = match digits.is_empty() {
        true => 0,
        false => digits.parse().map_err(|_| fail("not a number"))?,
    };
    let scale = 10u128.pow(fraction.len() as u32);
    let scaled = mantissa.checked_mul(unit_ms).ok_or(fail("too large"))?;
    if scaled % scale != 0 {
        return Err(fail("durations are whole milliseconds"));
    }
    let ms = scaled / scale;
    if ms > MAX_DURATION.as_millis() {
        return Err(fail("longer than 100 years"));
    }
    Ok(Duration::from_millis(ms as u64))
}

/// Writes a duration in the grammar of [`parse_duration`], with the largest
/// unit that states it exactly: `10s`, `2m`, `1d`, `1500ms`, `0s`. Below a
/// millisecond, digits are dropped (such durations never come from a config).
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".to_owned();
    }
    let units = [
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1000, "s"),
    ];
    for (size, unit) in units {
        if ms % size == 0 {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
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
    fn durations_in_the_one_grammar() {
        let ms = Duration::from_millis;
        let ok = [
            ("250ms", ms(250)),
            ("10s", ms(10_000)),
            ("1.5s", ms(1500)),
            ("2m", ms(120_000)),
            ("1h", ms(3_600_000)),
            ("1d", ms(86_400_000)),
            ("10", ms(10_000)),
            ("1.5", ms(1500)),
            ("0", Duration::ZERO),
            ("0s", Duration::ZERO),
            (" 30s ", ms(30_000)),
            ("0.001", ms(1)),
            ("1.50000000000000000000000s", ms(1500)),
            ("007s", ms(7000)),
            ("0.25m", ms(15_000)),
            ("36500d", MAX_DURATION),
        ];
        for (text, want) in ok {
            assert_eq!(parse_duration(text), Ok(want), "{text:?}");
        }
        let bad = [
            ("", "start with a number"),
            ("s", "start with a number"),
            ("-1s", "start with a number"),
            ("+1s", "start with a number"),
            ("1.5.s", "digits"),
            ("1..2s", "digits"),
            (".5s", "digits"),
            ("1.s", "digits"),
            ("10 s", "unit"),
            ("5 min", "unit"),
            ("1e3s", "unit"),
            ("10sec", "unit"),
            ("1w", "unit"),
            ("0.0001ms", "whole milliseconds"),
            ("0.5ms", "whole milliseconds"),
            ("1.0005s", "whole milliseconds"),
            ("36501d", "100 years"),
            ("18446744073709551616s", "100 years"),
            ("1234567890123456789012345s", "too many digits"),
            ("99999999999999999999d", "100 years"),
            ("NaN", "start with a number"),
            ("inf", "start with a number"),
        ];
        for (text, reason) in bad {
            let err = parse_duration(text).expect_err(text).to_string();
            assert!(err.contains(reason), "{text:?}: {err}");
        }
    }

    #[test]
    fn durations_format_back_to_themselves() {
        for text in ["0s", "1500ms", "10s", "2m", "90s", "1h", "1d", "36h"] {
            let d = parse_duration(text).unwrap();
            assert_eq!(format_duration(d), text);
        }
        assert_eq!(format_duration(Duration::from_secs(120)), "2m");
    }

    #[test]
    fn config_durations_take_numbers_and_strings() {
        #[derive(Deserialize)]
        struct T {
            #[serde(
                deserialize_with = "deserialize_duration",
                serialize_with = "serialize_duration"
            )]
            d: Duration,
        }
        let read = |json: &str| serde_json::from_str::<T>(json).map(|t| t.d);
        assert_eq!(read(r#"{"d": 10}"#).unwrap(), Duration::from_secs(10));
        assert_eq!(read(r#"{"d": 1.5}"#).unwrap(), Duration::from_millis(1500));
        assert_eq!(read(r#"{"d": "10"}"#).unwrap(), Duration::from_secs(10));
        assert_eq!(read(r#"{"d": "1h"}"#).unwrap(), Duration::from_secs(3600));
        let err = read(r#"{"d": -1}"#).unwrap_err().to_string();
        assert!(err.contains("invalid duration \"-1\""), "{err}");
        assert!(read(r#"{"d": true}"#).is_err());
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
