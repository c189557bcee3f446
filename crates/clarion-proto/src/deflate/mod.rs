//! permessage-deflate (RFC 7692): negotiation and the per-message codec,
//! as standalone building blocks for the connection layer.
//!
//! - [`parse_extensions`] reads `Sec-WebSocket-Extensions` header lines
//!   (RFC 6455 section 9.1) into [`ExtensionOffer`]s.
//! - [`DeflateConfig`] is what one endpoint wants. A client sends
//!   [`client_offer`] and checks the server's answer with [`client_accept`]
//!   (RFC 7692 section 7.1; any error fails the connection, section 5). A
//!   server picks an offer with [`server_accept`]. Both end with a
//!   [`DeflateParams`], the agreement, which tells each [`Role`] the window
//!   and context takeover of each direction.
//! - [`Compressor`] turns one message into the payload of a compressed
//!   message (section 7.2.1): DEFLATE with a sync flush, minus the trailing
//!   `00 00 ff ff`. [`Decompressor`] reverses it frame by frame, appending
//!   the trailer at the end of the message (section 7.2.2) and refusing
//!   output past a limit ([`InflateError`]).
//!
//! ```
//! use bytes::BytesMut;
//! use clarion_proto::connection::Role;
//! use clarion_proto::deflate::*;
//!
//! let config = DeflateConfig::default();
//! let offer = client_offer(&config).unwrap();
//! let offers = parse_extensions([offer.as_str()]).unwrap();
//! let (server_params, answer) = server_accept(&config, &offers).unwrap();
//! let client_params = client_accept(&config, &answer).unwrap();
//! assert_eq!(server_params, client_params);
//!
//! let mut compressor = client_params.compressor(Role::Client, config.level);
//! let mut payload = BytesMut::new();
//! compressor.compress(b"Hello", &mut payload);
//! assert_eq!(&payload[..], [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]);
//!
//! let mut decompressor = server_params.decompressor(Role::Server);
//! let mut message = BytesMut::new();
//! decompressor.decompress(&payload, &mut message, 1 << 20).unwrap();
//! decompressor.finish_message(&mut message, 1 << 20).unwrap();
//! assert_eq!(&message[..], b"Hello");
//! ```
//!
//! # A window of 8 bits
//!
//! RFC 7692 lets a peer ask for windows of 8 to 15 bits, but zlib refuses
//! to compress raw DEFLATE with 8 (`deflateInit2` returns an error; zlib-rs
//! does the same, and flate2 panics on any window outside 9..=15, for
//! decompression too). zlib itself turns 8 into 9 for zlib-wrapped streams,
//! and node `ws` passes 8 to node's zlib, which does the same for raw
//! streams. That is safe, not just tolerated: zlib never emits a match
//! further back than the window minus 262 bytes (`MAX_DIST`), so a 9-bit
//! window reaches back at most 250 bytes, within the 256 the peer keeps.
//! So we accept offers and answers of 8, and [`Compressor`] compresses a
//! window of 8 with 9 (a test checks every level's distances; node's
//! `inflateRaw` with `windowBits: 8` decodes that output, while it rejects
//! 15-bit output as "invalid distance too far back").
//!
//! [`Decompressor`] inflates a window of 8 with 9, a superset: a window
//! only bounds how far back a match may point, so a larger inflate window
//! accepts everything a smaller one does (inflating with 15 would too, at
//! the cost of memory; each direction uses the agreed size).
//!
//! # Memory
//!
//! A compressor costs about 370 KiB at a 15-bit window and 240 KiB at 9
//! (zlib-rs 0.6: twice the window, two bytes per window position, a fixed
//! 128 KiB hash table, and 7 × 2^(memLevel + 6) bytes of block buffers,
//! 112 KiB at zlib's default memLevel 8). A decompressor needs the window
//! plus a few KiB of state. flate2 exposes no memLevel, on any backend, so
//! those 112 KiB cannot be lowered through it; zlib-rs's own safe API can
//! (`zlib_rs::Deflate::new_with_config`), so a direct zlib-rs dependency
//! would be the way, without `unsafe`. Note that zlib-rs's hash table does
//! not shrink with memLevel as zlib's does.
//!
//! [`Role`]: crate::connection::Role

mod codec;
mod header;
mod negotiate;

pub use codec::{Compressor, Decompressor, InflateError, TRAILER};
pub use header::{parse_extensions, ExtensionOffer, MalformedExtensions};
pub use negotiate::{
    client_accept, client_offer, server_accept, DeflateConfig, DeflateParams, NegotiationError,
    DEFAULT_WINDOW_BITS, MIN_WINDOW_BITS, PERMESSAGE_DEFLATE,
};

#[cfg(test)]
mod tests;
