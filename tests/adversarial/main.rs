//! Attacks on the real `clarion echo` binary over loopback.
//!
//! Each test starts its own server with short timeouts (flags), attacks it
//! from raw sockets, and checks three things: the HTTP status or close code
//! the attack gets; that a normal client still gets an echo meanwhile or
//! right after; and that the server's resident memory (`VmRSS` from
//! `/proc/PID/status`) comes back to within [`RSS_SLACK_KIB`] of what it was
//! before the attack. Every load is bounded in count, bytes and time, and
//! loopback-only: per-IP attacks come from other 127.0.0.x source addresses
//! than the normal client (127.0.0.1).

mod support;

mod admission;
mod frames;
mod handshake;
mod memory;
mod peers;
mod tls_shutdown;
