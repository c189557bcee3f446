//! Helpers shared by Clarion's tests (never published).
//!
//! - [`self_signed_cert`]: a throwaway certificate for `localhost` and `127.0.0.1`.
//! - [`free_port`] and [`wait_for_port`]: loopback ports for servers under test.
//! - [`spawn_and_wait_for_line`] and [`ChildGuard`]: run a server process, wait
//!   until it says it is ready, keep its output, and never leak it.
//!
//! Everything here panics on failure with a message that says what went wrong:
//! these are test fixtures, and a panic is how a test fails.

mod cert;
mod net;
mod process;

pub use cert::{self_signed_cert, TestCert};
pub use net::{free_port, wait_for_port};
pub use process::{spawn_and_wait_for_line, ChildGuard};
