//! Negotiating permessage-deflate (RFC 7692 section 7.1): what a client
//! offers, how a server answers, and how a client checks the answer.

use std::fmt;

use super::codec::{Compressor, Decompressor};
use super::header::{parse_extensions, ExtensionOffer, MalformedExtensions};
use crate::connection::Role;
use crate::error::ConfigError;
use crate::handshake::HandshakeError;

/// The extension's registered name (RFC 7692 section 7).
pub const PERMESSAGE_DEFLATE: &str = "permessage-deflate";

/// The window size when no `*_max_window_bits` limits it: 2^15 = 32 KiB,
/// the largest DEFLATE allows (RFC 7692 section 7.1.2).
pub const DEFAULT_WINDOW_BITS: u8 = 15;

/// The smallest window the RFC lets a peer ask for (2^8 = 256 bytes). See the
/// [module docs](super) for how a window of 8 is compressed.
pub const MIN_WINDOW_BITS: u8 = 8;

const SERVER_NO_CONTEXT_TAKEOVER: &str = "server_no_context_takeover";
const CLIENT_NO_CONTEXT_TAKEOVER: &str = "client_no_context_takeover";
const SERVER_MAX_WINDOW_BITS: &str = "server_max_window_bits";
const CLIENT_MAX_WINDOW_BITS: &str = "client_max_window_bits";

/// What we want from permessage-deflate, for either role.
///
/// The fields use the RFC's parameter names, so their meaning is fixed on
/// the wire: `server_*` is about what the server compresses, `client_*`
/// about what the client compresses. A client *asks* for the `server_*`
/// settings and *announces* the `client_*` ones; a server *imposes* the
/// `server_*` settings on itself and *asks* the client for the `client_*`
/// ones.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeflateConfig {
    /// Offer (client) or accept (server) permessage-deflate at all.
    /// Default true: on text-heavy traffic it typically saves 60–90 % of
    /// the bytes, and a peer that does not support it simply declines.
    pub enabled: bool,
    /// The server resets its compressor after every message. Default false:
    /// context takeover compresses a stream of similar messages far better
    /// (a repeated message shrinks to a few bytes). Turn it on for a server
    /// that compresses a message once and sends the same bytes to many
    /// peers: only context-free output can be shared.
    pub server_no_context_takeover: bool,
    /// The client resets its compressor after every message. Default false,
    /// for the same reason. A server can turn it on so it may drop a
    /// client's inflate history between messages.
    pub client_no_context_takeover: bool,
    /// The largest LZ77 window, in bits, the server compresses with (8..=15).
    /// Default 15 (32 KiB), the best ratio; each step down halves the
    /// window and the memory the client's decompressor needs for it. 15
    /// puts no limit, so a client does not send the parameter.
    pub server_max_window_bits: u8,
    /// The largest LZ77 window, in bits, the client compresses with (8..=15).
    /// Default 15. A client always advertises that it supports the
    /// parameter, with this value if it is below 15; a server below 15
    /// declines clients that do not advertise support, since it could not
    /// bound their window.
    pub client_max_window_bits: u8,
    /// The zlib compression level for what we send, 0 (stored, no
    /// compression) to 9. Default 1. On a stream of ~255-byte JSON chat
    /// messages with context takeover (`examples/deflate_report.rs`,
    /// `docs/compression.md`), level 1 sends 31 % of the raw bytes at
    /// 0.8 µs a message, level 3 28 % at 4.4 µs, level 6 25 % at 6.6 µs.
    /// On larger prose messages (the Autobahn data, 0.25–16 KiB) level 1's
    /// output is about a third bigger than level 3's. A real-time server
    /// compresses small messages for every connection, so CPU per message
    /// weighs more than the last percent; raise it for bulk payloads.
    pub level: u32,
    /// Messages shorter than this are sent uncompressed. Default 64 bytes:
    /// below that DEFLATE saves nothing without context takeover (measured
    /// on prose: 64 bytes come out at 99 %, 16 bytes at 112 %) and a few
    /// dozen bytes at most with it, while every message costs a fixed 2–4
    /// µs. Typical real-time messages (JSON of 100–500 bytes) are still
    /// compressed, which node `ws`'s 1024 would skip; python `websockets`
    /// compresses everything (0).
    pub min_size: usize,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        DeflateConfig {
            enabled: true,
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: DEFAULT_WINDOW_BITS,
            client_max_window_bits: DEFAULT_WINDOW_BITS,
            level: 1,
            min_size: 64,
        }
    }
}

impl DeflateConfig {
    /// The defaults with compression turned off.
    pub fn disabled() -> Self {
        DeflateConfig {
            enabled: false,
            ..DeflateConfig::default()
        }
    }

    /// Rejects window sizes outside 8..=15 and levels above 9.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let window = MIN_WINDOW_BITS..=DEFAULT_WINDOW_BITS;
        if !window.contains(&self.server_max_window_bits) {
            return Err(ConfigError {
                field: "server_max_window_bits",
                reason: "must be between 8 and 15",
            });
        }
        if !window.contains(&self.client_max_window_bits) {
            return Err(ConfigError {
                field: "client_max_window_bits",
                reason: "must be between 8 and 15",
            });
        }
        if self.level > 9 {
            return Err(ConfigError {
                field: "level",
                reason: "must be between 0 and 9",
            });
        }
        Ok(())
    }
}

/// The agreed parameters of one connection (RFC 7692 section 7.1), every
/// one resolved: a window the answer left out is 15.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeflateParams {
    /// The server resets its compressor after each message.
    pub server_no_context_takeover: bool,
    /// The client resets its compressor after each message.
    pub client_no_context_takeover: bool,
    /// The largest window, in bits, the server compresses with (8..=15).
    pub server_max_window_bits: u8,
    /// The largest window, in bits, the client compresses with (8..=15).
    pub client_max_window_bits: u8,
}

impl Default for DeflateParams {
    /// A bare `permessage-deflate`: context takeover, 32 KiB windows.
    fn default() -> Self {
        DeflateParams {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: DEFAULT_WINDOW_BITS,
            client_max_window_bits: DEFAULT_WINDOW_BITS,
        }
    }
}

impl DeflateParams {
    /// The window, in bits, for what `role` sends. 8 is a valid answer;
    /// [`Compressor::new`] compresses it with 9, which stays within 256
    /// bytes (see the [module docs](super)).
    pub fn compress_window(&self, role: Role) -> u8 {
        match role {
            Role::Server => self.server_max_window_bits,
            Role::Client => self.client_max_window_bits,
        }
    }

    /// The window, in bits, the peer of `role` compresses with: what `role`
    /// must be able to decompress.
    pub fn decompress_window(&self, role: Role) -> u8 {
        self.compress_window(peer(role))
    }

    /// Whether `role` resets its compressor after each message it sends.
    pub fn compress_resets(&self, role: Role) -> bool {
        match role {
            Role::Server => self.server_no_context_takeover,
            Role::Client => self.client_no_context_takeover,
        }
    }

    /// Whether `role` resets its decompressor after each message it receives.
    pub fn decompress_resets(&self, role: Role) -> bool {
        self.compress_resets(peer(role))
    }

    /// A compressor for what `role` sends, at zlib `level` (0..=9).
    pub fn compressor(&self, role: Role, level: u32) -> Compressor {
        Compressor::new(
            level,
            self.compress_window(role),
            self.compress_resets(role),
        )
    }

    /// A decompressor for what `role` receives.
    pub fn decompressor(&self, role: Role) -> Decompressor {
        Decompressor::new(self.decompress_window(role), self.decompress_resets(role))
    }
}

fn peer(role: Role) -> Role {
    match role {
        Role::Server => Role::Client,
        Role::Client => Role::Server,
    }
}

/// Why a client must fail the connection over the server's
/// `Sec-WebSocket-Extensions` answer (RFC 7692 section 5: "the client MUST
/// _Fail the WebSocket Connection_"). Converts into
/// [`HandshakeError::UnexpectedExtensions`].
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NegotiationError {
    /// The header does not follow RFC 6455 section 9.1.
    Malformed(MalformedExtensions),
    /// The answer names an extension we did not offer (with compression
    /// disabled, that includes permessage-deflate itself).
    NotOffered(String),
    /// permessage-deflate appears more than once.
    DuplicateExtension,
    /// A parameter RFC 7692 does not define.
    UnknownParam(String),
    /// A parameter given twice.
    DuplicateParam(&'static str),
    /// A value where none belongs, none where one is required, or a window
    /// outside 8..=15 (written without leading zeros).
    InvalidValue {
        /// The parameter.
        param: &'static str,
        /// Its value, if it had one.
        value: Option<String>,
    },
    /// `client_max_window_bits` in an answer to an offer without it
    /// (section 7.1.2.2).
    UnrequestedParam(&'static str),
    /// A parameter we asked for is missing from the answer:
    /// `server_no_context_takeover` (section 7.1.1.1) or
    /// `server_max_window_bits` (section 7.1.2.1).
    MissingParam(&'static str),
    /// A window larger than the one we asked for or announced.
    WindowTooLarge {
        /// The parameter.
        param: &'static str,
        /// The largest value we allow.
        limit: u8,
        /// What the server answered.
        answered: u8,
    },
}

impl fmt::Display for NegotiationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NegotiationError::Malformed(e) => e.fmt(f),
            NegotiationError::NotOffered(name) => write!(f, "extension {name:?} was not offered"),
            NegotiationError::DuplicateExtension => {
                f.write_str("permessage-deflate accepted twice")
            }
            NegotiationError::UnknownParam(p) => write!(f, "unknown parameter {p:?}"),
            NegotiationError::DuplicateParam(p) => write!(f, "parameter {p} repeated"),
            NegotiationError::InvalidValue { param, value: None } => {
                write!(f, "parameter {param} needs a value")
            }
            NegotiationError::InvalidValue {
                param,
                value: Some(v),
            } => write!(f, "invalid value {v:?} for {param}"),
            NegotiationError::UnrequestedParam(p) => write!(f, "{p} was not offered"),
            NegotiationError::MissingParam(p) => write!(f, "{p} was asked for but not granted"),
            NegotiationError::WindowTooLarge {
                param,
                limit,
                answered,
            } => write!(f, "{param}={answered} exceeds our limit of {limit}"),
        }
    }
}

impl std::error::Error for NegotiationError {}

impl From<MalformedExtensions> for NegotiationError {
    fn from(e: MalformedExtensions) -> Self {
        NegotiationError::Malformed(e)
    }
}

impl From<NegotiationError> for HandshakeError {
    /// A bad answer is a handshake failure on the client's side (502, like
    /// the other server faults).
    fn from(e: NegotiationError) -> Self {
        HandshakeError::UnexpectedExtensions(format!("permessage-deflate: {e}"))
    }
}

/// The client's `Sec-WebSocket-Extensions` offer, `None` when compression
/// is disabled. It always advertises `client_max_window_bits` (as browsers
/// do), so the server may bound our window; `server_*` parameters ask for
/// what the config sets. The default config offers
/// `permessage-deflate; client_max_window_bits`.
pub fn client_offer(config: &DeflateConfig) -> Option<String> {
    config
        .enabled
        .then(|| our_offer(config).to_extension().to_string())
}

/// Checks the server's answer (the whole `Sec-WebSocket-Extensions` value)
/// against what [`client_offer`] sent for the same `config`, as RFC 7692
/// section 7.1 requires, and resolves the agreement. Every error means the
/// client must fail the connection. Assumes permessage-deflate is the only
/// extension we offered.
pub fn client_accept(
    config: &DeflateConfig,
    response: &str,
) -> Result<DeflateParams, NegotiationError> {
    let extensions = parse_extensions([response])?;
    if let Some(other) = extensions
        .iter()
        .find(|e| e.name != PERMESSAGE_DEFLATE || !config.enabled)
    {
        return Err(NegotiationError::NotOffered(other.name.clone()));
    }
    // Never empty: the grammar requires an extension per header line.
    let [extension] = extensions.as_slice() else {
        return Err(NegotiationError::DuplicateExtension);
    };
    let answer = Params::parse(&extension.params, Side::Response)?;
    resolve_answer(&our_offer(config), &answer)
}

/// The server's side: takes the first permessage-deflate offer it can
/// accept (an offer with an unknown, repeated or invalid parameter, or one
/// the config cannot honour, is declined and the next one tried) and
/// returns the agreement with the `Sec-WebSocket-Extensions` value to answer
/// with. `None`: no offer acceptable, or compression disabled; answer
/// without the extension. Other extensions in `offers` are ignored.
pub fn server_accept(
    config: &DeflateConfig,
    offers: &[ExtensionOffer],
) -> Option<(DeflateParams, String)> {
    if !config.enabled {
        return None;
    }
    offers
        .iter()
        .filter(|offer| offer.name == PERMESSAGE_DEFLATE)
        .filter_map(|offer| Params::parse(&offer.params, Side::Offer).ok())
        .find_map(|offer| answer_offer(config, &offer))
        .map(|answer| (answer.resolve(), answer.to_extension().to_string()))
}

/// The parameters of one permessage-deflate offer or answer, as sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Params {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    /// `Some(None)`: the parameter without a value (offers only).
    client_max_window_bits: Option<Option<u8>>,
}

/// Which message a parameter list comes from: only an offer may carry
/// `client_max_window_bits` without a value.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Offer,
    Response,
}

impl Params {
    /// Reads a parameter list, rejecting unknown, repeated and invalid ones
    /// (RFC 7692 section 7.1: such an offer is declined, such an answer
    /// fails the connection).
    fn parse(list: &[(String, Option<String>)], side: Side) -> Result<Self, NegotiationError> {
        let mut params = Params::default();
        let mut seen = [false; 4];
        for (name, value) in list {
            let (index, param) = match name.as_str() {
                SERVER_NO_CONTEXT_TAKEOVER => (0, SERVER_NO_CONTEXT_TAKEOVER),
                CLIENT_NO_CONTEXT_TAKEOVER => (1, CLIENT_NO_CONTEXT_TAKEOVER),
                SERVER_MAX_WINDOW_BITS => (2, SERVER_MAX_WINDOW_BITS),
                CLIENT_MAX_WINDOW_BITS => (3, CLIENT_MAX_WINDOW_BITS),
                _ => return Err(NegotiationError::UnknownParam(name.clone())),
            };
            if std::mem::replace(&mut seen[index], true) {
                return Err(NegotiationError::DuplicateParam(param));
            }
            let value = value.as_deref();
            let invalid = || NegotiationError::InvalidValue {
                param,
                value: value.map(str::to_owned),
            };
            match (index, value) {
                (0, None) => params.server_no_context_takeover = true,
                (1, None) => params.client_no_context_takeover = true,
                (2, Some(v)) => {
                    params.server_max_window_bits = Some(window_bits(v).ok_or_else(invalid)?)
                }
                (3, None) if side == Side::Offer => params.client_max_window_bits = Some(None),
                (3, Some(v)) => {
                    params.client_max_window_bits = Some(Some(window_bits(v).ok_or_else(invalid)?))
                }
                _ => return Err(invalid()),
            }
        }
        Ok(params)
    }

    /// The extension as it goes on the wire, parameters in a fixed order.
    fn to_extension(self) -> ExtensionOffer {
        let mut params = Vec::new();
        let mut push = |name: &str, value: Option<u8>| {
            params.push((name.to_owned(), value.map(|v| v.to_string())));
        };
        if let Some(bits) = self.client_max_window_bits {
            push(CLIENT_MAX_WINDOW_BITS, bits);
        }
        if let Some(bits) = self.server_max_window_bits {
            push(SERVER_MAX_WINDOW_BITS, Some(bits));
        }
        if self.server_no_context_takeover {
            push(SERVER_NO_CONTEXT_TAKEOVER, None);
        }
        if self.client_no_context_takeover {
            push(CLIENT_NO_CONTEXT_TAKEOVER, None);
        }
        ExtensionOffer {
            name: PERMESSAGE_DEFLATE.to_owned(),
            params,
        }
    }

    /// An answer's parameters as the agreement (absent windows are 15).
    fn resolve(self) -> DeflateParams {
        DeflateParams {
            server_no_context_takeover: self.server_no_context_takeover,
            client_no_context_takeover: self.client_no_context_takeover,
            server_max_window_bits: self.server_max_window_bits.unwrap_or(DEFAULT_WINDOW_BITS),
            client_max_window_bits: self
                .client_max_window_bits
                .flatten()
                .unwrap_or(DEFAULT_WINDOW_BITS),
        }
    }
}

/// A window size: a decimal integer 8..=15 without leading zeros
/// (RFC 7692 sections 7.1.2.1 and 7.1.2.2).
fn window_bits(value: &str) -> Option<u8> {
    if value.starts_with('0') || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let bits = value.parse().ok()?;
    (MIN_WINDOW_BITS..=DEFAULT_WINDOW_BITS)
        .contains(&bits)
        .then_some(bits)
}

/// The limit a config sets on a window, `None` at 15 (no limit).
fn limit(bits: u8) -> Option<u8> {
    (bits < DEFAULT_WINDOW_BITS).then_some(bits)
}

/// What a client configured with `config` offers.
fn our_offer(config: &DeflateConfig) -> Params {
    Params {
        server_no_context_takeover: config.server_no_context_takeover,
        client_no_context_takeover: config.client_no_context_takeover,
        server_max_window_bits: limit(config.server_max_window_bits),
        client_max_window_bits: Some(limit(config.client_max_window_bits)),
    }
}

/// RFC 7692 section 7.1, the client's checks of an answer to `offer`, and
/// the resulting agreement.
fn resolve_answer(offer: &Params, answer: &Params) -> Result<DeflateParams, NegotiationError> {
    // 7.1.1.1: a server that will not stop taking over must decline.
    if offer.server_no_context_takeover && !answer.server_no_context_takeover {
        return Err(NegotiationError::MissingParam(SERVER_NO_CONTEXT_TAKEOVER));
    }
    // 7.1.2.1: the same or a smaller window than asked; any if we did not ask.
    if let Some(limit) = offer.server_max_window_bits {
        let answered = answer
            .server_max_window_bits
            .ok_or(NegotiationError::MissingParam(SERVER_MAX_WINDOW_BITS))?;
        if answered > limit {
            let param = SERVER_MAX_WINDOW_BITS;
            return Err(NegotiationError::WindowTooLarge {
                param,
                limit,
                answered,
            });
        }
    }
    // 7.1.2.2: only if offered; never above the size we announced.
    let client_window = match (offer.client_max_window_bits, answer.client_max_window_bits) {
        (None, Some(_)) => return Err(NegotiationError::UnrequestedParam(CLIENT_MAX_WINDOW_BITS)),
        (Some(Some(limit)), Some(Some(answered))) if answered > limit => {
            let param = CLIENT_MAX_WINDOW_BITS;
            return Err(NegotiationError::WindowTooLarge {
                param,
                limit,
                answered,
            });
        }
        (_, Some(answered)) => answered,
        // We said we would stay within our announced size.
        (offered, None) => offered.flatten(),
    };
    Ok(DeflateParams {
        server_no_context_takeover: answer.server_no_context_takeover,
        // 7.1.1.2: having offered it, we stop taking over whatever the answer.
        client_no_context_takeover: answer.client_no_context_takeover
            || offer.client_no_context_takeover,
        server_max_window_bits: answer.server_max_window_bits.unwrap_or(DEFAULT_WINDOW_BITS),
        client_max_window_bits: client_window.unwrap_or(DEFAULT_WINDOW_BITS),
    })
}

/// The server's answer to one parsed offer, or `None` to decline it.
fn answer_offer(config: &DeflateConfig, offer: &Params) -> Option<Params> {
    let client_max_window_bits = match (
        offer.client_max_window_bits,
        limit(config.client_max_window_bits),
    ) {
        // A client that cannot bound its window fails our limit: decline.
        (None, Some(_)) => return None,
        (None, None) | (Some(None), None) => None,
        (Some(None), Some(ours)) => Some(Some(ours)),
        // Its announced size, or ours if smaller.
        (Some(Some(theirs)), ours) => Some(Some(theirs.min(ours.unwrap_or(DEFAULT_WINDOW_BITS)))),
    };
    let server_max_window_bits = match (
        offer.server_max_window_bits,
        limit(config.server_max_window_bits),
    ) {
        (Some(theirs), ours) => Some(theirs.min(ours.unwrap_or(DEFAULT_WINDOW_BITS))),
        (None, ours) => ours,
    };
    Some(Params {
        server_no_context_takeover: offer.server_no_context_takeover
            || config.server_no_context_takeover,
        // The client's own promise (7.1.1.2) costs nothing to confirm, and
        // lets us drop its history between messages.
        client_no_context_takeover: offer.client_no_context_takeover
            || config.client_no_context_takeover,
        server_max_window_bits,
        client_max_window_bits,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_max_window_bits_in_an_answer_only_if_offered() {
        // Our offers always carry it; an offer without it must not see it
        // answered (section 7.1.2.2).
        let offer = Params::default();
        let params = [(CLIENT_MAX_WINDOW_BITS.to_owned(), Some("10".to_owned()))];
        let answer = Params::parse(&params, Side::Response).expect("valid");
        let result = resolve_answer(&offer, &answer);
        assert_eq!(
            result,
            Err(NegotiationError::UnrequestedParam(CLIENT_MAX_WINDOW_BITS))
        );
    }

    #[test]
    fn window_bits_are_decimal_without_leading_zeros() {
        for (text, bits) in [("8", Some(8)), ("15", Some(15)), ("08", None), ("", None)] {
            assert_eq!(window_bits(text), bits, "{text:?}");
        }
        for text in [
            "7",
            "16",
            "0",
            "-9",
            "+9",
            " 9",
            "9 ",
            "255",
            "99999999999999999999",
        ] {
            assert_eq!(window_bits(text), None, "{text:?}");
        }
    }
}
