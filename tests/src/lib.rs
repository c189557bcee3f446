//! End-to-end tests of Clarion against real peers, and the Rust scenario
//! peers they use.
//!
//! - [`scenario`]: what the Rust peers share, from the spec in
//!   `tests/interop/README.md` (check names, payloads, close codes, limits);
//! - [`compression`]: the peers' `--deflate MODE` and what the
//!   `compression` check sends and expects;
//! - [`harness`]: starting peers and binaries as processes, with bounded
//!   waits and kill-on-drop, for the integration tests beside `Cargo.toml`;
//! - [`hub_server`], [`services`] and [`nginx`]: `clarion serve` nodes,
//!   their brokers (`redis-server`, `nats-server -js`) and nginx in front.
//!
//! The binaries `peer_server` and `peer_client` (in `src/bin/`) implement the
//! scenario server and client on `clarion-ws`.

pub mod compression;
pub mod harness;
pub mod hub_server;
pub mod nginx;
pub mod scenario;
pub mod services;
