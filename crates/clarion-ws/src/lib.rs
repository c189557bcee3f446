//! WebSocket server and client on tokio, driving the sans-IO
//! [`clarion_proto`] engine.
//!
//! - [`accept`] / [`accept_with`]: the server handshake over any
//!   `AsyncRead + AsyncWrite` (TCP, TLS, an upgraded HTTP connection);
//! - [`connect`] / [`connect_with`]: `ws://` and `wss://` clients (rustls);
//! - [`WebSocket`]: `recv`, `send`, `close`, `Stream + Sink`, owned halves
//!   with [`WebSocket::into_split`], automatic pongs, an optional heartbeat,
//!   and a bounded write buffer that pushes back on senders.
//!
//! An echo server:
//!
//! ```no_run
//! use clarion_ws::{accept, Config};
//! use tokio::net::TcpListener;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let listener = TcpListener::bind("127.0.0.1:9001").await?;
//! let config = Config::default();
//! loop {
//!     let (tcp, _) = listener.accept().await?;
//!     let config = config.clone();
//!     tokio::spawn(async move {
//!         let Ok(mut ws) = accept(tcp, &config).await else { return };
//!         while let Some(Ok(message)) = ws.recv().await {
//!             if ws.send(message).await.is_err() {
//!                 break;
//!             }
//!         }
//!     });
//! }
//! # }
//! ```
//!
//! A client:
//!
//! ```no_run
//! # async fn run() -> Result<(), clarion_ws::Error> {
//! let (mut ws, _response) = clarion_ws::connect("ws://127.0.0.1:9001", &Default::default()).await?;
//! ws.send("Hello, Server!").await?;
//! if let Some(Ok(reply)) = ws.recv().await {
//!     println!("{reply:?}");
//! }
//! ws.close(clarion_ws::CloseCode::NORMAL, "bye").await?;
//! # Ok(()) }
//! ```

mod accept;
pub mod admission;
mod config;
mod connect;
mod core;
mod error;
mod guards;
mod heartbeat;
mod incoming;
mod mask;
mod socket;
mod split;
pub mod tls;
mod trim;
mod upgrade;
mod wakers;

pub use clarion_proto as proto;
pub use clarion_proto::connection::Role;
pub use clarion_proto::deflate::DeflateConfig;
pub use clarion_proto::handshake::{Accept, Reject, Request, Response};
pub use clarion_proto::{CloseCode, CloseFrame, Message, MessageKind, PreparedMessage, Utf8Bytes};

pub use crate::accept::{accept, accept_with, default_accept};
pub use crate::config::Config;
pub use crate::connect::{client_handshake, connect, connect_with, ClientStream, ConnectOptions};
pub use crate::error::{Error, TrySendError};
pub use crate::incoming::Incoming;
pub use crate::socket::WebSocket;
pub use crate::split::{ReuniteError, WebSocketReader, WebSocketWriter};
pub use crate::trim::{HeapTrimmer, TrackedConnection};
pub use crate::upgrade::{prepare_upgrade, Upgrade};
