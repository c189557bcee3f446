//! Headless Chromium (Debian's `chromium`, driven by playwright-core) on
//! the demo page of `clarion serve`: `tests/interop/node/demo_check.js`
//! opens `/demo` in two pages, as alice and bob, and checks that each sees
//! the other online, that alice's chat message reaches bob's page, that
//! bob's "score!" puts him on top of alice's leaderboard, and that closing
//! bob's page takes him off alice's online list.
//!
//! The page's client, the SDK in `clients/js` (served as
//! `/clarion-client.js`), has its own Node and browser suites against
//! `clarion serve` (`npm test` in `clients/js`, run by `scripts/test.sh`).
//!
//! Needs `/usr/bin/chromium` and `CLARION_INTEROP_NODE_DIR` with
//! playwright-core installed (`scripts/install-test-deps.sh`); without them
//! the test fails and says so.

use std::path::Path;
use std::process::Command;

use clarion_tests::harness::{interop_node_dir, run, BROWSER_TIMEOUT, CHROMIUM};
use clarion_tests::hub_server::HubServer;

/// The checks of demo_check.js, in order.
const CHECKS: [&str; 5] = ["connected", "presence", "chat", "score", "leave"];

#[test]
fn two_pages_see_each_others_chat_presence_and_scores() {
    assert!(
        Path::new(CHROMIUM).is_file(),
        "{CHROMIUM} is missing: scripts/install-test-deps.sh installs it"
    );
    // The default config: the demo namespaces, anonymous clients, and the
    // Origin allow-list of the server's own loopback origin.
    let server = HubServer::start(None, &[]);
    let script = interop_node_dir().join("demo_check.js");
    let mut cmd = Command::new("node");
    cmd.arg(script).arg(server.http_url());
    let finished = run(&mut cmd, BROWSER_TIMEOUT);
    let report = format!(
        "{}\n--- server stderr ---\n{}",
        finished.report(),
        server.stderr()
    );
    for check in CHECKS {
        let pass = format!("PASS {check}\n");
        assert!(
            finished.stdout.contains(&pass),
            "{check} did not pass\n{report}"
        );
    }
    assert!(finished.status.success(), "{report}");
}
