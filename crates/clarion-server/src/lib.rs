//! `clarion serve`: the real-time server. The composition root of the
//! workspace: configuration (file → env → flags → validated), the HTTP
//! server (axum on hyper) with the WebSocket endpoint (clarion-ws driving
//! clarion-hub sessions), the server API, metrics, health, the embedded
//! demo pages, TLS and graceful shutdown. Reference: `docs/server.md`.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = clarion_server::config::load(&Default::default()).map_err(|e| e.join("; "))?;
//! let server = clarion_server::Server::bind(config).await?;
//! println!("listening on {}", server.url());
//! server.run_until(clarion_server::shutdown_signal()).await?;
//! # Ok(()) }
//! ```

mod api;
pub mod auth;
pub mod broker;
pub mod config;
mod logging;
pub mod metrics;
pub mod proxy;
mod server;
mod session;
pub mod web;
mod ws;

pub use config::{ConfigSources, LogFormat, Override, ServerConfig};
pub use logging::init_logging;
pub use server::{shutdown_signal, ServeError, Server};
