//! Scenario client for Clarion's interop tests, on `clarion-ws`.
//!
//! Runs the client checks of the scenario spec in `tests/interop/README.md`
//! against a scenario server:
//!
//! ```sh
//! peer_client BASE_URL [--ca FILE] [--only NAME,...] [--skip NAME,...] [--deflate MODE]
//! ```
//!
//! Prints `PASS name` or `FAIL name: reason` per check, then
//! `N passed, M failed`; exits 0 only when every selected check passed and
//! at least one ran, 1 otherwise, 2 on bad arguments.

use std::fmt::Display;
use std::path::PathBuf;
use std::process::ExitCode;

use bytes::Bytes;
use clarion_tests::compression::{self, DeflateMode};
use clarion_tests::scenario::{self, CHECKS, SERVER_PING_REPLY, UNICODE};
use clarion_ws::tls::TlsClientOptions;
use clarion_ws::{
    ClientStream, CloseCode, Config, ConnectOptions, Incoming, Message, MessageKind, WebSocket,
};
use http::header::SEC_WEBSOCKET_EXTENSIONS;
use tokio::io::{AsyncRead, AsyncWrite};

const USAGE: &str = "usage: peer_client BASE_URL [--ca FILE] [--only NAME,...] [--skip NAME,...] \
                     [--deflate MODE]";

#[derive(Debug)]
struct Args {
    base: String,
    ca: Option<PathBuf>,
    only: Vec<String>,
    skip: Vec<String>,
    deflate: DeflateMode,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(why) => {
            eprintln!("peer_client: {why}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let client = Client::new(&args);
    let (mut passed, mut failed) = (0, 0);
    for name in CHECKS {
        let selected = args.only.is_empty() || args.only.iter().any(|n| n == name);
        if !selected || args.skip.iter().any(|n| n == name) {
            continue;
        }
        match client.run(name).await {
            Ok(()) => {
                passed += 1;
                println!("PASS {name}");
            }
            Err(Failure(reason)) => {
                failed += 1;
                println!("FAIL {name}: {reason}");
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed == 0 && passed > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn parse_args(mut argv: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut args = Args {
        base: String::new(),
        ca: None,
        only: Vec::new(),
        skip: Vec::new(),
        deflate: DeflateMode::Off,
    };
    while let Some(arg) = argv.next() {
        let mut value = || argv.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--ca" => args.ca = Some(PathBuf::from(value()?)),
            "--only" => args.only.extend(names(&value()?)),
            "--skip" => args.skip.extend(names(&value()?)),
            "--deflate" => args.deflate = value()?.parse()?,
            _ if arg.starts_with('-') || !args.base.is_empty() => {
                return Err(format!("bad argument {arg}"))
            }
            _ => args.base = arg,
        }
    }
    if !(args.base.starts_with("ws://") || args.base.starts_with("wss://")) {
        return Err("BASE_URL must start with ws:// or wss://".into());
    }
    let unknown: Vec<&str> = (args.only.iter().chain(&args.skip))
        .map(String::as_str)
        .filter(|name| !CHECKS.contains(name))
        .collect();
    if !unknown.is_empty() {
        let mut known = CHECKS.to_vec();
        known.sort_unstable();
        return Err(format!(
            "unknown check(s) {}; known: {}",
            unknown.join(", "),
            known.join(", ")
        ));
    }
    Ok(args)
}

fn names(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Why a check failed, as printed after `FAIL name: `.
#[derive(Debug)]
struct Failure(String);

/// Any error (from clarion-ws, TLS, I/O) fails the check with its message.
impl<E: Display> From<E> for Failure {
    fn from(err: E) -> Self {
        Failure(err.to_string())
    }
}

type Check = Result<(), Failure>;

fn expect(ok: bool, why: impl FnOnce() -> String) -> Check {
    if ok {
        Ok(())
    } else {
        Err(Failure(why()))
    }
}

/// The next message; a close or an error fails the check.
async fn next_message<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocket<S>,
) -> Result<Message, Failure> {
    match ws.recv().await {
        Some(Ok(message)) => Ok(message),
        Some(Err(err)) => Err(Failure(format!("while waiting for a message: {err}"))),
        None => Err(Failure(format!(
            "connection closed ({}) while waiting for a message",
            describe_close(ws.close_frame())
        ))),
    }
}

async fn expect_message<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocket<S>,
    want: &Message,
) -> Check {
    let got = next_message(ws).await?;
    expect(&got == want, || {
        format!(
            "expected {}, got {}",
            scenario::describe(want),
            scenario::describe(&got)
        )
    })
}

async fn round_trip<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocket<S>,
    message: Message,
) -> Check {
    ws.send(message.clone()).await?;
    expect_message(ws, &message).await
}

/// Ends a check's connection normally: close with 1000 and wait for the answer.
async fn finish<S: AsyncRead + AsyncWrite + Unpin>(mut ws: WebSocket<S>) -> Check {
    ws.close(CloseCode::NORMAL, "").await?;
    Ok(())
}

fn describe_close(frame: Option<&Option<clarion_ws::CloseFrame>>) -> String {
    match frame {
        Some(Some(frame)) => format!("{} {:?}", frame.code, frame.reason),
        Some(None) => "close frame without a code".into(),
        None => "no close frame".into(),
    }
}

/// Connects to the scenario server and runs checks.
struct Client {
    base: String,
    tls: TlsClientOptions,
    deflate: DeflateMode,
}

impl Client {
    fn new(args: &Args) -> Client {
        Client {
            base: args.base.trim_end_matches('/').to_owned(),
            tls: TlsClientOptions {
                ca_file: args.ca.clone(),
                insecure: false,
            },
            deflate: args.deflate,
        }
    }

    /// Runs one check within its timeout.
    async fn run(&self, name: &str) -> Check {
        let timeout = match name {
            "big" => scenario::BIG_CHECK_TIMEOUT,
            _ => scenario::CHECK_TIMEOUT,
        };
        match tokio::time::timeout(timeout, self.check(name)).await {
            Ok(result) => result,
            Err(_) => Err(Failure(format!("timed out after {} s", timeout.as_secs()))),
        }
    }

    async fn check(&self, name: &str) -> Check {
        match name {
            "text" => self.check_text().await,
            "binary" => self.check_binary().await,
            "empty" => self.check_empty().await,
            "big" => self.check_big().await,
            "fragmented-send" => self.check_fragmented_send().await,
            "ping" => self.check_ping().await,
            "close-client" => self.check_close_client().await,
            "close-server" => self.check_close_server().await,
            "server-ping" => self.check_server_ping().await,
            "fragmented-recv" => self.check_fragmented_recv().await,
            "subprotocol" => self.check_subprotocol().await,
            "compression" => self.check_compression().await,
            _ => Err(Failure(format!("no check named {name}"))),
        }
    }

    /// The common settings, with the `--deflate` mode.
    fn config(&self) -> Config {
        scenario::config(self.deflate)
    }

    /// Connects to `path` with `connect_with`, the library's client entry point.
    async fn connect(
        &self,
        path: &str,
        config: &Config,
    ) -> Result<WebSocket<ClientStream>, Failure> {
        Ok(self.connect_answered(path, config).await?.0)
    }

    /// Connects to `path`; also returns the server's
    /// `Sec-WebSocket-Extensions` answer, if any.
    async fn connect_answered(
        &self,
        path: &str,
        config: &Config,
    ) -> Result<(WebSocket<ClientStream>, Option<String>), Failure> {
        let mut options = ConnectOptions::default();
        options.tls = self.tls.clone();
        let url = format!("{}{path}", self.base);
        let (ws, response) = clarion_ws::connect_with(&url, config, &options).await?;
        let extensions = response
            .headers()
            .get_all(SEC_WEBSOCKET_EXTENSIONS)
            .iter()
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
            .collect::<Vec<_>>();
        let extensions = (!extensions.is_empty()).then(|| extensions.join(", "));
        Ok((ws, extensions))
    }

    async fn check_text(&self) -> Check {
        let mut ws = self.connect("/echo", &self.config()).await?;
        round_trip(&mut ws, Message::text("hello")).await?;
        round_trip(&mut ws, Message::text(UNICODE)).await?;
        finish(ws).await
    }

    async fn check_binary(&self) -> Check {
        let mut ws = self.connect("/echo", &self.config()).await?;
        let all_bytes: Vec<u8> = (0..=255).collect();
        round_trip(&mut ws, Message::binary(all_bytes)).await?;
        finish(ws).await
    }

    async fn check_empty(&self) -> Check {
        let mut ws = self.connect("/echo", &self.config()).await?;
        round_trip(&mut ws, Message::text("")).await?;
        round_trip(&mut ws, Message::binary(Bytes::new())).await?;
        finish(ws).await
    }

    async fn check_big(&self) -> Check {
        let mut ws = self.connect("/echo", &self.config()).await?;
        round_trip(&mut ws, Message::binary(scenario::big_binary())).await?;
        round_trip(&mut ws, Message::text(scenario::big_text())).await?;
        finish(ws).await
    }

    async fn check_fragmented_send(&self) -> Check {
        let mut ws = self.connect("/echo", &self.config()).await?;
        ws.send_fragment(MessageKind::Text, "frag-", false).await?;
        ws.send_fragment(MessageKind::Text, "ment-", false).await?;
        ws.send_fragment(MessageKind::Text, "ed", true).await?;
        expect_message(&mut ws, &Message::text("frag-ment-ed")).await?;
        finish(ws).await
    }

    /// `recv` consumes pongs; `recv_incoming` shows them.
    async fn check_ping(&self) -> Check {
        let mut ws = self.connect("/echo", &self.config()).await?;
        ws.ping("p1").await?;
        let pong = loop {
            match ws.recv_incoming().await {
                Some(Ok(Incoming::Pong(payload))) => break payload,
                Some(Ok(Incoming::Message(message))) => {
                    let got = scenario::describe(&message);
                    return Err(Failure(format!("expected a pong, got {got}")));
                }
                Some(Ok(_)) => {} // a ping, answered by the library
                Some(Err(err)) => return Err(Failure(format!("while waiting for a pong: {err}"))),
                None => {
                    let got = describe_close(ws.close_frame());
                    return Err(Failure(format!(
                        "connection closed ({got}) while waiting for a pong"
                    )));
                }
            }
        };
        expect(pong == "p1", || {
            format!(
                "pong payload {:?}, want \"p1\"",
                String::from_utf8_lossy(&pong)
            )
        })?;
        finish(ws).await
    }

    async fn check_close_client(&self) -> Check {
        let mut ws = self.connect("/echo", &self.config()).await?;
        ws.close(CloseCode(4000), "done").await?;
        let code = match ws.close_frame() {
            Some(Some(frame)) => frame.code,
            other => {
                return Err(Failure(format!(
                    "server answered with {}",
                    describe_close(other)
                )))
            }
        };
        expect(code == CloseCode(4000), || {
            format!("server's close code {code}, want 4000")
        })
    }

    async fn check_close_server(&self) -> Check {
        let mut ws = self.connect("/close/4001", &self.config()).await?;
        match ws.recv().await {
            None => {}
            Some(Ok(message)) => {
                let got = scenario::describe(&message);
                return Err(Failure(format!("expected a close, got {got}")));
            }
            Some(Err(err)) => return Err(Failure(format!("expected a close, got: {err}"))),
        }
        let Some(Some(frame)) = ws.close_frame() else {
            let got = describe_close(ws.close_frame());
            return Err(Failure(format!("connection closed with {got}")));
        };
        expect(frame.code == CloseCode(4001), || {
            format!("close code {}, want 4001", frame.code)
        })?;
        expect(frame.reason == "bye", || {
            format!("close reason {:?}, want \"bye\"", frame.reason)
        })
    }

    /// The library answers the server's ping by itself, inside `recv`.
    async fn check_server_ping(&self) -> Check {
        let mut ws = self.connect("/ping", &self.config()).await?;
        expect_message(&mut ws, &Message::text(SERVER_PING_REPLY)).await?;
        round_trip(&mut ws, Message::text("after-ping")).await?;
        finish(ws).await
    }

    async fn check_fragmented_recv(&self) -> Check {
        let mut ws = self.connect("/fragmented", &self.config()).await?;
        expect_message(&mut ws, &Message::text("frag-ment-ed")).await?;
        expect_message(&mut ws, &Message::binary(vec![0, 1, 2, 3, 4])).await?;
        finish(ws).await
    }

    async fn check_subprotocol(&self) -> Check {
        let mut config = self.config();
        config.subprotocols = vec!["chat.v2".to_owned()];
        let mut ws = self.connect("/subprotocol", &config).await?;
        let protocol = ws.protocol().map(str::to_owned);
        expect(protocol.as_deref() == Some("chat.v2"), || {
            format!("subprotocol {protocol:?}, want \"chat.v2\"")
        })?;
        round_trip(&mut ws, Message::text("hello")).await?;
        finish(ws).await
    }

    /// permessage-deflate is negotiated as the mode asks (not at all for
    /// `off`), and messages of every kind round-trip over it.
    async fn check_compression(&self) -> Check {
        let (mut ws, answer) = self.connect_answered("/echo", &self.config()).await?;
        self.deflate
            .check_answer(answer.as_deref())
            .map_err(Failure)?;
        let want = self.deflate != DeflateMode::Off;
        expect(ws.is_compressed() == want, || {
            format!("is_compressed() is {}, want {want}", ws.is_compressed())
        })?;
        let text = compression::compressible_text();
        round_trip(&mut ws, Message::text("hello")).await?;
        round_trip(&mut ws, Message::text(text.clone())).await?;
        round_trip(&mut ws, Message::text(text)).await?;
        round_trip(&mut ws, Message::binary(compression::far_repeats_binary())).await?;
        finish(ws).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Args, String> {
        parse_args(list.iter().map(|s| s.to_string()))
    }

    #[test]
    fn arguments() {
        let ok = args(&["wss://127.0.0.1:1", "--ca", "c.pem", "--only", "text, big"]).unwrap();
        assert_eq!(ok.base, "wss://127.0.0.1:1");
        assert_eq!(ok.only, ["text", "big"]);
        assert_eq!(ok.deflate, DeflateMode::Off);
        let deflate = args(&["ws://x", "--deflate", "window10"]).unwrap();
        assert_eq!(deflate.deflate, DeflateMode::Window10);
        assert!(args(&["ws://x", "--deflate", "max"]).is_err());
        assert!(args(&[]).is_err());
        assert!(args(&["http://x"]).is_err());
        assert!(args(&["ws://x", "ws://y"]).is_err());
        assert!(args(&["ws://x", "--only"]).is_err());
        let unknown = args(&["ws://x", "--skip", "text,nope"]).unwrap_err();
        assert!(unknown.contains("nope"), "{unknown}");
    }
}
