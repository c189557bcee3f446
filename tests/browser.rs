//! Headless Chromium (Debian's `chromium`, driven by playwright-core)
//! against `clarion echo`: `tests/interop/node/browser_check.js` runs one
//! WebSocket session in a page (text and binary round trips, 1 MiB messages,
//! the negotiated extensions, a close with 4000). Chromium offers
//! permessage-deflate, which `clarion echo` accepts by default.
//!
//! Also against the Rust scenario server in `--deflate window10`, which asks
//! Chromium for `client_max_window_bits=10`.
//!
//! Needs `/usr/bin/chromium` and `CLARION_INTEROP_NODE_DIR` with
//! playwright-core installed (`scripts/install-test-deps.sh`); without them
//! the tests fail and say so.

use clarion_tests::compression::DeflateMode;
use clarion_tests::harness::{assert_outcome, run_browser_check, Peer, Server, Transport};

/// The browser check's checks, in order.
const CHECKS: [&str; 7] = [
    "open",
    "extensions",
    "text",
    "binary",
    "big-binary",
    "big-text",
    "close",
];

/// Every check passes, permessage-deflate included.
#[test]
fn chromium_against_clarion_echo() {
    let server = Server::clarion_echo(Transport::Ws);
    let finished = run_browser_check(&format!("{}/echo", server.base_url));
    assert_outcome(&finished, &CHECKS.map(Ok), &server);
    eprintln!(
        "browser check: {}",
        finished.stdout.lines().last().unwrap_or_default()
    );
}

/// With compression refused, the `extensions` check fails (so it can fail)
/// and every other check passes.
#[test]
fn chromium_against_clarion_echo_without_deflate() {
    let server = Server::clarion_echo_with(Transport::Ws, &["--no-deflate"]);
    let finished = run_browser_check(&format!("{}/echo", server.base_url));
    let want = CHECKS.map(|name| match name {
        "extensions" => Err("extensions: extensions \"\" do not include permessage-deflate"),
        name => Ok(name),
    });
    assert_outcome(&finished, &want, &server);
}

/// clarion-ws's server limiting Chromium's window (and its own) to 1 KiB.
#[test]
fn chromium_against_rust_server_window10() {
    let peer = Peer::rust(env!("CARGO_BIN_EXE_peer_server"));
    let server = Server::scenario_with(&peer, Transport::Ws, DeflateMode::Window10);
    let finished = run_browser_check(&format!("{}/echo", server.base_url));
    assert_outcome(&finished, &CHECKS.map(Ok), &server);
}
