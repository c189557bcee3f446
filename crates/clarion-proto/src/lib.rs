//! A sans-IO WebSocket engine (RFC 6455).
//!
//! Bytes in, events out, bytes to send out: no sockets, no `async`, no clock
//! and no randomness inside, so the same code runs under tokio, in a test
//! with byte vectors, or in a fuzzer. The layers, each usable alone:
//!
//! - [`handshake`]: the HTTP/1.1 opening handshake, server and client side;
//! - [`frame`] and [`mask`]: frame headers and masking;
//! - [`utf8`]: incremental UTF-8 validation;
//! - [`connection`]: fragmentation, control frames, the close handshake.
//!
//! ```
//! use bytes::BytesMut;
//! use clarion_proto::connection::{Connection, Config, Event};
//! use clarion_proto::Message;
//!
//! let mut server = Connection::server(Config::default()).unwrap();
//! // A masked text frame "Hello" from RFC 6455 section 5.7.
//! let mut input = BytesMut::from(&[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58][..]);
//! let event = server.receive(&mut input).unwrap();
//! assert_eq!(event, Some(Event::Message(Message::text("Hello"))));
//! ```

pub mod close;
pub mod connection;
pub mod deflate;
pub mod error;
pub mod frame;
pub mod handshake;
pub mod mask;
pub mod message;
pub mod prepared;
pub mod utf8;

pub use close::{CloseCode, CloseFrame};
pub use error::{ConfigError, LocalError, ProtocolError};
pub use message::{Message, MessageKind, Utf8Bytes};
pub use prepared::PreparedMessage;
