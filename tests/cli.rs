//! `clarion connect` end to end: stdin lines out, messages to stdout, and
//! the exit status that says how the connection ended.

use std::process::Command;
use std::time::Duration;

use clarion_tests::harness::{clarion_bin, run, run_with_input, Peer, Server, Transport};

const TIMEOUT: Duration = Duration::from_secs(60);

fn rust_server() -> Server {
    Server::scenario(
        &Peer::rust(env!("CARGO_BIN_EXE_peer_server")),
        Transport::Ws,
    )
}

fn clarion_connect(url: &str) -> Command {
    let mut cmd = Command::new(clarion_bin());
    cmd.args(["connect", url]);
    cmd
}

/// Two lines in, the same two lines back from `clarion echo`; stdin's end
/// closes with 1000, which is a success.
#[test]
fn echoes_stdin_lines_and_exits_0() {
    let server = Server::clarion_echo(Transport::Ws);
    let mut cmd = clarion_connect(&format!("{}/echo", server.base_url));
    let finished = run_with_input(&mut cmd, Some(b"first line\nsecond line\n"), TIMEOUT);
    assert!(finished.status.success(), "{}", finished.report());
    assert_eq!(
        finished.stdout,
        "first line\nsecond line\n",
        "{}",
        finished.report()
    );
}

/// The same over `wss://`, trusting the server's self-signed certificate.
#[test]
fn echoes_over_tls_with_a_ca_file() {
    let server = Server::clarion_echo(Transport::Wss);
    let mut cmd = clarion_connect(&format!("{}/echo", server.base_url));
    cmd.arg("--ca")
        .arg(server.ca_file().expect("a wss server has a cert"));
    let finished = run_with_input(&mut cmd, Some(b"over tls\n"), TIMEOUT);
    assert!(finished.status.success(), "{}", finished.report());
    assert_eq!(finished.stdout, "over tls\n", "{}", finished.report());
}

/// Without the CA, the self-signed certificate is refused.
#[test]
fn refuses_an_untrusted_certificate() {
    let server = Server::clarion_echo(Transport::Wss);
    let mut cmd = clarion_connect(&format!("{}/echo", server.base_url));
    let finished = run_with_input(&mut cmd, Some(b"hello\n"), TIMEOUT);
    assert!(!finished.status.success(), "{}", finished.report());
    assert!(finished.stdout.is_empty(), "{}", finished.report());
    assert!(
        finished.stderr.contains("cannot connect"),
        "{}",
        finished.report()
    );
}

/// A server's close with a code other than 1000/1001: exit status 2 and the
/// code and reason on stderr.
///
/// Stdin is empty, so the client sends its own close (1000) as soon as it is
/// connected; the server's close frame goes out first anyway (right after its
/// 101), so the close received is always 4001.
#[test]
fn reports_the_servers_close_code_and_exits_2() {
    let server = rust_server();
    let mut cmd = clarion_connect(&format!("{}/close/4001", server.base_url));
    let finished = run_with_input(&mut cmd, Some(b""), TIMEOUT);
    assert_eq!(finished.status.code(), Some(2), "{}", finished.report());
    let stderr = &finished.stderr;
    assert!(
        stderr.contains("4001") && stderr.contains("bye"),
        "{}",
        finished.report()
    );
}

/// Regression: when the server closed while stdin was still open (the
/// interactive case), `clarion connect` printed the close and then hung
/// until stdin saw a line: `tokio::io::stdin` reads on a blocking thread
/// that cannot be cancelled, and dropping the runtime waited for it.
#[test]
fn exits_when_the_server_closes_while_stdin_is_open() {
    let server = rust_server();
    let mut cmd = clarion_connect(&format!("{}/close/4001", server.base_url));
    let finished = run_with_input(&mut cmd, None, Duration::from_secs(15));
    assert_eq!(finished.status.code(), Some(2), "{}", finished.report());
}

/// `--subprotocol chat.v2` is offered and selected, and messages flow.
#[test]
fn negotiates_a_subprotocol() {
    let server = rust_server();
    let mut cmd = clarion_connect(&format!("{}/subprotocol", server.base_url));
    cmd.args(["--subprotocol", "chat.v2"]);
    let finished = run_with_input(&mut cmd, Some(b"hello chat\n"), TIMEOUT);
    assert!(finished.status.success(), "{}", finished.report());
    assert_eq!(finished.stdout, "hello chat\n", "{}", finished.report());
    assert!(
        finished.stderr.contains("subprotocol chat.v2"),
        "{}",
        finished.report()
    );
}

/// Nothing listening: a clear error naming the URL, and a non-zero status.
#[test]
fn fails_clearly_when_nothing_listens() {
    let port = clarion_test_support::free_port();
    let url = format!("ws://127.0.0.1:{port}/echo");
    let finished = run(&mut clarion_connect(&url), TIMEOUT);
    assert!(!finished.status.success(), "{}", finished.report());
    assert_ne!(finished.status.code(), Some(2), "{}", finished.report());
    let stderr = &finished.stderr;
    assert!(
        stderr.contains(&format!("cannot connect to {url}")),
        "{}",
        finished.report()
    );
    assert!(
        stderr.to_lowercase().contains("refused"),
        "{}",
        finished.report()
    );
}
