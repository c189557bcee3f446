//! The `clarion-ws` examples work as their docs say: the `client` example
//! against the `server` example prints the greeting and the answer.

use std::process::Command;
use std::time::Duration;

use clarion_test_support::spawn_and_wait_for_line;
use clarion_tests::harness::{example, run, SERVER_START_TIMEOUT};

#[test]
fn client_example_talks_to_server_example() {
    let mut server = Command::new(example("server"));
    server.arg("127.0.0.1:0");
    let (_server, addr) =
        spawn_and_wait_for_line(&mut server, "listening on ", SERVER_START_TIMEOUT);
    assert!(
        addr.starts_with("ws://127.0.0.1:"),
        "server listens on {addr}"
    );

    let mut client = Command::new(example("client"));
    let finished = run(client.arg(&addr), Duration::from_secs(60));
    assert!(finished.status.success(), "{}", finished.report());
    assert_eq!(
        finished.stdout,
        "Hello from the server!\nYou said: Hello, Server!\n",
        "{}",
        finished.report()
    );
}
