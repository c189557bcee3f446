//! Fuzz target bodies, shared by the libFuzzer binaries and the corpus replay tests.
//!
//! One function per parser entry point of `clarion-proto`, and the hub's
//! command decoder in `clarion-wire`. Each takes the
//! fuzzer's bytes, reads a few control bytes from the front (limits,
//! switches, how to split the rest into reads), feeds the rest to the
//! parser and checks invariants, panicking on any violation:
//!
//! - the same input split differently gives the same result;
//! - every error maps to a close code a peer may see (1002, 1007, 1008,
//!   1009, 1011) or to an HTTP error status, and what we send for it is
//!   parsable by the other side;
//! - nothing comes after a close; text is valid UTF-8; limits hold;
//! - what we send (echoes, pongs, close replies) is accepted by a real peer
//!   state machine, which sees exactly the messages we sent.
//!
//! The input layout of each target is documented on its function; the
//! seeds in `fuzz/corpus/<target>/` follow it (`examples/seeds.rs` writes
//! the hand-made ones).

mod frames;
mod handshake;
mod inflate;
mod input;
mod wire;

pub use frames::{client_frames, server_frames};
pub use handshake::{handshake_request, handshake_response};
pub use inflate::inflate;
pub use wire::wire_commands;

/// A target body: panics if the input breaks an invariant.
pub type Target = fn(&[u8]);

/// The targets, by name: the names of the libFuzzer binaries and of the
/// folders under `fuzz/corpus/` and `fuzz/regressions/`.
pub const TARGETS: [(&str, Target); 6] = [
    ("handshake_request", handshake_request),
    ("handshake_response", handshake_response),
    ("server_frames", server_frames),
    ("client_frames", client_frames),
    ("inflate", inflate),
    ("wire_commands", wire_commands),
];
