//! permessage-deflate in the scenario (spec: `tests/interop/README.md`,
//! "Compression"): the peers' `--deflate MODE`, what the `compression`
//! check sends, and how it judges the server's `Sec-WebSocket-Extensions`
//! answer.

use std::fmt;
use std::str::FromStr;

use bytes::Bytes;
use clarion_ws::DeflateConfig;

/// A peer's `--deflate MODE`: whether and how it offers (client) or accepts
/// (server) permessage-deflate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeflateMode {
    /// Neither offered nor accepted (the default).
    #[default]
    Off,
    /// The library's permessage-deflate with its default parameters.
    On,
    /// `server_no_context_takeover` and `client_no_context_takeover`.
    NoContext,
    /// `server_max_window_bits=10` and `client_max_window_bits=10`.
    Window10,
}

impl DeflateMode {
    /// Every mode, `off` first.
    pub const ALL: [DeflateMode; 4] = [
        DeflateMode::Off,
        DeflateMode::On,
        DeflateMode::NoContext,
        DeflateMode::Window10,
    ];

    /// The mode's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            DeflateMode::Off => "off",
            DeflateMode::On => "on",
            DeflateMode::NoContext => "no-context",
            DeflateMode::Window10 => "window10",
        }
    }

    /// clarion-ws's settings for the mode, for either role. Messages of every
    /// size are compressed (`min_size` 0, where clarion-ws's default skips
    /// those under 64 bytes), as the Python and Node peers do.
    pub fn config(self) -> DeflateConfig {
        let mut config = DeflateConfig::default();
        config.min_size = 0;
        match self {
            DeflateMode::Off => config.enabled = false,
            DeflateMode::On => {}
            DeflateMode::NoContext => {
                config.server_no_context_takeover = true;
                config.client_no_context_takeover = true;
            }
            DeflateMode::Window10 => {
                config.server_max_window_bits = 10;
                config.client_max_window_bits = 10;
            }
        }
        config
    }

    /// Whether a server's `Sec-WebSocket-Extensions` answer (`None`: no such
    /// header) suits a client in this mode: no permessage-deflate for `off`;
    /// otherwise permessage-deflate, with `server_no_context_takeover` for
    /// `no-context` and `server_max_window_bits` at most 10 for `window10`
    /// (what RFC 7692 section 7.1 obliges a server to grant or decline).
    /// `Err` says why not.
    pub fn check_answer(self, answer: Option<&str>) -> Result<(), String> {
        let shown = format!("{:?}", answer.unwrap_or(""));
        let deflate = answer.and_then(find_permessage_deflate);
        let Some(params) = deflate else {
            return match self {
                DeflateMode::Off => Ok(()),
                _ => Err(format!(
                    "permessage-deflate not negotiated (Sec-WebSocket-Extensions: {shown})"
                )),
            };
        };
        let has = |name: &str| params.iter().any(|(n, _)| n == name);
        let value = |name: &str| params.iter().find(|(n, _)| n == name).map(|(_, v)| v);
        match self {
            DeflateMode::Off => Err(format!(
                "permessage-deflate negotiated without an offer (Sec-WebSocket-Extensions: {shown})"
            )),
            DeflateMode::On => Ok(()),
            DeflateMode::NoContext if has("server_no_context_takeover") => Ok(()),
            DeflateMode::NoContext => Err(format!(
                "server_no_context_takeover asked for but not granted (Sec-WebSocket-Extensions: {shown})"
            )),
            DeflateMode::Window10 => match value("server_max_window_bits") {
                Some(Some(bits)) if bits.parse::<u8>().is_ok_and(|b| (8..=10).contains(&b)) => {
                    Ok(())
                }
                _ => Err(format!(
                    "server_max_window_bits=10 asked for but not granted (Sec-WebSocket-Extensions: {shown})"
                )),
            },
        }
    }
}

impl fmt::Display for DeflateMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DeflateMode {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        DeflateMode::ALL
            .into_iter()
            .find(|mode| mode.name() == name)
            .ok_or_else(|| format!("bad --deflate {name:?}: want off, on, no-context or window10"))
    }
}

/// A parameter of an extension: its name and its value, if any (quotes removed).
type Param = (String, Option<String>);

/// The parameters of the permessage-deflate entry of a
/// `Sec-WebSocket-Extensions` value, if it has one. Lenient: a check's
/// helper, not a validator (the libraries validate the answer).
fn find_permessage_deflate(header: &str) -> Option<Vec<Param>> {
    header.split(',').find_map(|extension| {
        let mut parts = extension.split(';').map(str::trim);
        (parts.next()? == "permessage-deflate").then(|| {
            parts
                .filter(|part| !part.is_empty())
                .map(|part| match part.split_once('=') {
                    Some((name, value)) => (
                        name.trim().to_owned(),
                        Some(value.trim().trim_matches('"').to_owned()),
                    ),
                    None => (part.to_owned(), None),
                })
                .collect()
        })
    })
}

/// The `compression` check's text: the line
/// `{"seq":N,"msg":"permessage-deflate round trip"}` and a newline for
/// N = 0, 1, 2, ..., cut at 65,536 bytes.
pub fn compressible_text() -> String {
    let mut text = String::with_capacity(COMPRESSION_MESSAGE + 64);
    for seq in 0.. {
        if text.len() >= COMPRESSION_MESSAGE {
            break;
        }
        text.push_str(&format!(
            "{{\"seq\":{seq},\"msg\":\"permessage-deflate round trip\"}}\n"
        ));
    }
    text.truncate(COMPRESSION_MESSAGE);
    text
}

/// The `compression` check's binary message: a 2,048-byte block repeated to
/// 65,536 bytes, byte j of the block being the top byte of x(j+1) where
/// x(0) = 1 and x(k+1) = (1664525·x(k) + 1013904223) mod 2^32. The block
/// itself has no repeats to speak of, so a compressor finds matches only
/// 2,048 bytes back: beyond a 1 KiB window (`window10`).
pub fn far_repeats_binary() -> Bytes {
    let mut block = Vec::with_capacity(FAR_REPEAT_BLOCK);
    let mut x: u32 = 1;
    for _ in 0..FAR_REPEAT_BLOCK {
        x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        block.push((x >> 24) as u8);
    }
    block.repeat(COMPRESSION_MESSAGE / FAR_REPEAT_BLOCK).into()
}

/// The size of the `compression` check's big messages.
const COMPRESSION_MESSAGE: usize = 64 << 10;

/// The block [`far_repeats_binary`] repeats.
const FAR_REPEAT_BLOCK: usize = 2048;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_by_name() {
        for mode in DeflateMode::ALL {
            assert_eq!(mode.name().parse::<DeflateMode>(), Ok(mode));
        }
        assert!("yes".parse::<DeflateMode>().is_err());
        assert_eq!(DeflateMode::default(), DeflateMode::Off);
    }

    #[test]
    fn mode_configs_are_valid() {
        for mode in DeflateMode::ALL {
            mode.config().validate().unwrap();
        }
        assert!(!DeflateMode::Off.config().enabled);
        assert!(DeflateMode::On.config().enabled);
    }

    #[test]
    fn answers_are_judged_by_mode() {
        use DeflateMode::*;
        let ok = |mode: DeflateMode, answer: Option<&str>| mode.check_answer(answer).is_ok();
        assert!(ok(Off, None));
        assert!(!ok(Off, Some("permessage-deflate")));
        assert!(ok(On, Some("permessage-deflate")));
        assert!(ok(
            On,
            Some("x-other, permessage-deflate; client_max_window_bits=15")
        ));
        assert!(!ok(On, None));
        assert!(!ok(On, Some("x-permessage-deflate")));
        let no_context =
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover";
        assert!(ok(NoContext, Some(no_context)));
        assert!(!ok(
            NoContext,
            Some("permessage-deflate; client_no_context_takeover")
        ));
        assert!(ok(
            Window10,
            Some("permessage-deflate;server_max_window_bits=10")
        ));
        assert!(ok(
            Window10,
            Some("permessage-deflate; server_max_window_bits=\"9\"")
        ));
        assert!(!ok(
            Window10,
            Some("permessage-deflate; server_max_window_bits=15")
        ));
        assert!(!ok(
            Window10,
            Some("permessage-deflate; client_max_window_bits=10")
        ));
    }

    #[test]
    fn payloads_follow_the_spec() {
        let text = compressible_text();
        assert_eq!(text.len(), 65_536);
        assert!(
            text.starts_with("{\"seq\":0,\"msg\":\"permessage-deflate round trip\"}\n{\"seq\":1,")
        );
        let binary = far_repeats_binary();
        assert_eq!(binary.len(), 65_536);
        // x(1) = 1664525 + 1013904223 = 1015568748 = 0x3C88_596C.
        assert_eq!(binary[0], 0x3C);
        assert_eq!(binary[..2048], binary[2048..4096]);
        assert_ne!(binary[..1024], binary[1024..2048]);
    }
}
