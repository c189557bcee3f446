//! Interop: every scenario client against every scenario server, as real
//! processes, over `ws://` and `wss://` (spec: `tests/interop/README.md`).
//!
//! Clients: Python `websockets`, Node `ws`, and `peer_client` on clarion-ws.
//! Servers: the same three, plus `clarion echo` (only the `/echo` checks).
//! Needs `CLARION_INTEROP_PYTHON` and `CLARION_INTEROP_NODE_DIR`, which
//! `scripts/test.sh` exports; without them every test here fails and says so.

use clarion_tests::harness::{check_scenario, Peer, Server, Transport};
use clarion_tests::scenario::ECHO_CHECKS;

fn rust_server() -> Peer {
    Peer::rust(env!("CARGO_BIN_EXE_peer_server"))
}

fn rust_client() -> Peer {
    Peer::rust(env!("CARGO_BIN_EXE_peer_client"))
}

fn python_server() -> Peer {
    Peer::python("peer_server.py")
}

fn python_client() -> Peer {
    Peer::python("peer_client.py")
}

fn node_server() -> Peer {
    Peer::node("peer_server.js")
}

fn node_client() -> Peer {
    Peer::node("peer_client.js")
}

/// `client` against `clarion echo`: the checks an echo server can pass.
fn against_clarion_echo(client: Peer, transport: Transport) {
    let server = Server::clarion_echo(transport);
    check_scenario(&client, &server, &ECHO_CHECKS);
}

/// `client` against a scenario server: all checks.
fn against_scenario_server(client: Peer, server: Peer, transport: Transport) {
    let server = Server::scenario(&server, transport);
    check_scenario(&client, &server, &[]);
}

mod clarion_echo {
    use super::*;

    #[test]
    fn python_client_ws() {
        against_clarion_echo(python_client(), Transport::Ws);
    }

    #[test]
    fn python_client_wss() {
        against_clarion_echo(python_client(), Transport::Wss);
    }

    #[test]
    fn node_client_ws() {
        against_clarion_echo(node_client(), Transport::Ws);
    }

    #[test]
    fn node_client_wss() {
        against_clarion_echo(node_client(), Transport::Wss);
    }
}

mod rust_server {
    use super::*;

    #[test]
    fn python_client_ws() {
        against_scenario_server(python_client(), rust_server(), Transport::Ws);
    }

    #[test]
    fn python_client_wss() {
        against_scenario_server(python_client(), rust_server(), Transport::Wss);
    }

    #[test]
    fn node_client_ws() {
        against_scenario_server(node_client(), rust_server(), Transport::Ws);
    }

    #[test]
    fn node_client_wss() {
        against_scenario_server(node_client(), rust_server(), Transport::Wss);
    }

    /// Sanity: our client against our server.
    #[test]
    fn rust_client_ws() {
        against_scenario_server(rust_client(), rust_server(), Transport::Ws);
    }

    #[test]
    fn rust_client_wss() {
        against_scenario_server(rust_client(), rust_server(), Transport::Wss);
    }
}

mod rust_client {
    use super::*;

    #[test]
    fn python_server_ws() {
        against_scenario_server(rust_client(), python_server(), Transport::Ws);
    }

    #[test]
    fn python_server_wss() {
        against_scenario_server(rust_client(), python_server(), Transport::Wss);
    }

    #[test]
    fn node_server_ws() {
        against_scenario_server(rust_client(), node_server(), Transport::Ws);
    }

    #[test]
    fn node_server_wss() {
        against_scenario_server(rust_client(), node_server(), Transport::Wss);
    }
}

/// The Rust peers' own contract: exit statuses, `--only`, shutdown.
mod peer_binaries {
    use std::process::Command;
    use std::time::Duration;

    use clarion_tests::harness::run;
    use clarion_ws::CloseCode;

    use super::*;

    #[test]
    fn client_bad_arguments_exit_2() {
        for args in [
            &[][..],
            &["http://127.0.0.1:1"],
            &["ws://127.0.0.1:1", "--only", "nope"],
        ] {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_peer_client"));
            let finished = run(cmd.args(args), Duration::from_secs(30));
            assert_eq!(
                finished.status.code(),
                Some(2),
                "{args:?}\n{}",
                finished.report()
            );
            assert!(finished.stderr.contains("usage:"), "{}", finished.report());
        }
    }

    #[test]
    fn client_failing_checks_exit_1_with_fail_lines() {
        // Nothing listens there any more.
        let port = clarion_test_support::free_port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_peer_client"));
        cmd.args([&format!("ws://127.0.0.1:{port}"), "--only", "text,binary"]);
        let finished = run(&mut cmd, Duration::from_secs(60));
        assert_eq!(finished.status.code(), Some(1), "{}", finished.report());
        let lines: Vec<&str> = finished.stdout.lines().collect();
        assert_eq!(lines.len(), 3, "{}", finished.report());
        assert!(lines[0].starts_with("FAIL text: "), "{}", finished.report());
        assert!(
            lines[1].starts_with("FAIL binary: "),
            "{}",
            finished.report()
        );
        assert_eq!(lines[2], "0 passed, 2 failed");
    }

    #[test]
    fn server_bad_arguments_exit_2() {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_peer_server"));
        let finished = run(
            cmd.args(["--port", "0", "--tls-cert", "x"]),
            Duration::from_secs(30),
        );
        assert_eq!(finished.status.code(), Some(2), "{}", finished.report());
    }

    /// On SIGTERM the server closes open connections with 1001 and exits 0.
    #[tokio::test]
    async fn server_goes_away_on_sigterm() {
        let mut server = Server::scenario(&rust_server(), Transport::Ws);
        let url = format!("{}/echo", server.base_url);
        let (mut ws, _) = clarion_ws::connect(&url, &Default::default())
            .await
            .unwrap();
        ws.send("before").await.unwrap();
        assert!(ws.recv().await.is_some_and(|m| m.is_ok()));

        server.terminate();
        let closed = tokio::time::timeout(Duration::from_secs(10), ws.recv()).await;
        assert!(matches!(closed, Ok(None)), "{closed:?}");
        let frame = ws.close_frame().cloned().flatten().expect("a close frame");
        assert_eq!(frame.code, CloseCode::GOING_AWAY);
        let status = tokio::task::spawn_blocking(move || server.wait(Duration::from_secs(10)));
        let status = status.await.unwrap().expect("the server exits");
        assert!(status.success(), "{status}");
    }
}
