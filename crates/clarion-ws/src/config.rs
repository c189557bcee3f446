//! Settings of the tokio layer, on top of the engine's limits.

use std::time::Duration;

use clarion_proto::deflate::DeflateConfig;
use clarion_proto::handshake::HandshakeLimits;
use clarion_proto::ConfigError;

/// Everything a [`WebSocket`](crate::WebSocket) needs to know, for either role.
///
/// Each default says why it is what it is; `docs/limits.md` lists them all.
#[non_exhaustive]
#[derive(Clone, Debug)]
pub struct Config {
    /// Frame, message and fragment limits of the engine.
    pub protocol: clarion_proto::connection::Config,
    /// Header bytes, header count and URI length of the opening handshake.
    pub handshake_limits: HandshakeLimits,
    /// Time allowed for the whole opening handshake (TCP connect, TLS and
    /// HTTP for a client; reading the request for a server). Default 10 s:
    /// generous for a slow mobile link, short enough to shed slowloris
    /// clients.
    pub handshake_timeout: Duration,
    /// Time allowed for the close handshake: the peer's close frame after
    /// ours, and the TCP close after that. Default 5 s: a live peer answers
    /// in one round trip; a dead one must not hold the connection.
    pub close_timeout: Duration,
    /// Send a ping this often, driven by `recv` (a split socket: by its
    /// receiving half).
    /// Default off: no timer per connection unless asked for.
    pub ping_interval: Option<Duration>,
    /// With `ping_interval`: how long to wait for the pong before giving up
    /// on the peer (half-open TCP). Default 20 s.
    pub pong_timeout: Duration,
    /// Bytes of queued output above which `send` and `feed` wait for the
    /// socket to drain and `try_send` reports `Full`. Default 1 MiB: enough
    /// for bursts, small enough that a peer that stops reading cannot make
    /// us hold much. One message larger than this is still accepted whole.
    pub max_write_buffer: usize,
    /// Time a write may stay blocked (the peer accepts none of our bytes
    /// while output waits) before the connection is dropped without a
    /// close handshake: a client that never reads cannot hold the
    /// connection and its write buffer forever. Progress restarts the
    /// clock, so a slow reader is fine. Default 30 s.
    pub write_timeout: Duration,
    /// Close a connection from which nothing has arrived for this long
    /// (close **1001** `idle timeout`); after half of it in silence a ping
    /// goes out, so a live but quiet peer (a browser that only listens)
    /// answers with a pong and stays. Default 120 s, as uWebSockets:
    /// frees the resources of peers that vanished without a FIN (half-open
    /// TCP). `None` turns it off (and with it the one timer per
    /// connection).
    pub idle_timeout: Option<Duration>,
    /// Pings and pongs a peer may send per second; more is a flood (each
    /// ping makes us queue a pong) and closes the connection with **1008**.
    /// Default 100: clients ping every few seconds, Autobahn's busiest
    /// case sends 10 at once.
    pub max_control_frames_per_second: u32,
    /// Subprotocols: for a server, those it supports in order of preference;
    /// for a client, those it offers. Default none.
    pub subprotocols: Vec<String>,
    /// permessage-deflate (RFC 7692): for a server, whether and how to
    /// accept a client's offer; for a client, what to offer. Default **off**
    /// here (unlike `DeflateConfig::default()`): a compressor with context
    /// takeover holds about 300 KiB per connection, a cost a server should
    /// choose knowingly. `clarion echo` and `clarion connect` turn it on.
    pub deflate: DeflateConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            protocol: clarion_proto::connection::Config::default(),
            handshake_limits: HandshakeLimits::default(),
            handshake_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(5),
            ping_interval: None,
            pong_timeout: Duration::from_secs(20),
            max_write_buffer: 1 << 20,
            write_timeout: Duration::from_secs(30),
            idle_timeout: Some(Duration::from_secs(120)),
            max_control_frames_per_second: 100,
            subprotocols: Vec::new(),
            deflate: DeflateConfig::disabled(),
        }
    }
}

impl Config {
    /// Checks every field; invalid combinations are errors, never panics.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.protocol.validate()?;
        self.handshake_limits.validate()?;
        self.deflate.validate()?;
        let positive = [
            ("handshake_timeout", self.handshake_timeout),
            ("close_timeout", self.close_timeout),
            ("pong_timeout", self.pong_timeout),
            ("write_timeout", self.write_timeout),
        ];
        for (field, value) in positive {
            if value.is_zero() {
                return Err(ConfigError {
                    field,
                    reason: "must be greater than zero",
                });
            }
        }
        if self.ping_interval.is_some_and(|d| d.is_zero()) {
            return Err(ConfigError {
                field: "ping_interval",
                reason: "must be greater than zero when set",
            });
        }
        if self
            .idle_timeout
            .is_some_and(|d| d < Duration::from_millis(2))
        {
            return Err(ConfigError {
                field: "idle_timeout",
                reason: "must be at least 2 ms when set",
            });
        }
        if self.max_control_frames_per_second == 0 {
            return Err(ConfigError {
                field: "max_control_frames_per_second",
                reason: "must be at least 1",
            });
        }
        if self.max_write_buffer == 0 {
            return Err(ConfigError {
                field: "max_write_buffer",
                reason: "must be at least 1",
            });
        }
        Ok(())
    }
}
