//! Scenario server for Clarion's interop tests, on `clarion-ws`.
//!
//! Implements the server half of the scenario spec in
//! `tests/interop/README.md`:
//!
//! ```sh
//! peer_server --port P [--host H] [--tls-cert FILE --tls-key FILE] [--deflate MODE]
//! ```
//!
//! Prints exactly one line `LISTENING <port>` to stdout once it accepts
//! connections, then serves until SIGTERM or SIGINT, closes open connections
//! with 1001 and exits with status 0 (2 on bad arguments).

use std::error::Error as StdError;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clarion_tests::compression::DeflateMode;
use clarion_tests::scenario::{self, SERVER_PING, SERVER_PING_REPLY, SUBPROTOCOLS};
use clarion_ws::tls::TlsAcceptor;
use clarion_ws::{CloseCode, Config, Incoming, Message, MessageKind, WebSocket};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;
use tokio::task::JoinSet;

const USAGE: &str =
    "usage: peer_server --port P [--host H] [--tls-cert FILE --tls-key FILE] [--deflate MODE]";

/// Time for a client's TLS handshake.
const TLS_TIMEOUT: Duration = Duration::from_secs(10);

/// Time open connections get to finish their close handshake on shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

type BoxError = Box<dyn StdError + Send + Sync>;

#[derive(Debug)]
struct Args {
    host: String,
    port: u16,
    tls: Option<(PathBuf, PathBuf)>,
    deflate: DeflateMode,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(why) => {
            eprintln!("peer_server: {why}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match serve(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("peer_server: {err}");
            ExitCode::FAILURE
        }
    }
}

fn parse_args(mut argv: impl Iterator<Item = String>) -> Result<Args, String> {
    let (mut host, mut port, mut cert, mut key) = ("127.0.0.1".to_owned(), None, None, None);
    let mut deflate = DeflateMode::Off;
    while let Some(flag) = argv.next() {
        let value = argv.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--host" => host = value,
            "--port" => port = Some(value.parse().map_err(|_| format!("bad port {value:?}"))?),
            "--tls-cert" => cert = Some(PathBuf::from(value)),
            "--tls-key" => key = Some(PathBuf::from(value)),
            "--deflate" => deflate = value.parse()?,
            _ => return Err(format!("bad argument {flag}")),
        }
    }
    let port = port.ok_or("--port P is required")?;
    let tls = match (cert, key) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        _ => return Err("--tls-cert and --tls-key go together".into()),
    };
    Ok(Args {
        host,
        port,
        tls,
        deflate,
    })
}

/// Listens, announces the port, serves until a signal, then shuts down.
async fn serve(args: Args) -> Result<(), BoxError> {
    let tls = match &args.tls {
        Some((cert, key)) => Some(TlsAcceptor::from_pem_files(cert, key)?),
        None => None,
    };
    let listener = TcpListener::bind((args.host.as_str(), args.port)).await?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "LISTENING {}", listener.local_addr()?.port())?;
    stdout.flush()?;
    drop(stdout);

    let mut config: Config = scenario::config(args.deflate);
    config.subprotocols = SUBPROTOCOLS.map(String::from).to_vec();
    let config = Arc::new(config);
    let (stop, stopped) = watch::channel(false);
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => {
                    let (tls, config, stop) = (tls.clone(), config.clone(), stopped.clone());
                    connections.spawn(connection(tcp, tls, config, stop));
                }
                Err(err) => eprintln!("peer_server: accept: {err}"),
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
        }
    }
    drop(listener);
    let _ = stop.send(true);
    let drain = async { while connections.join_next().await.is_some() {} };
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, drain).await;
    Ok(())
}

/// One client: TLS if configured, then the WebSocket handshake and its path.
async fn connection(
    tcp: TcpStream,
    tls: Option<TlsAcceptor>,
    config: Arc<Config>,
    stop: watch::Receiver<bool>,
) {
    let _ = tcp.set_nodelay(true);
    let result = match tls {
        None => handle(tcp, &config, stop).await,
        Some(tls) => match tokio::time::timeout(TLS_TIMEOUT, tls.accept(tcp)).await {
            Ok(Ok(stream)) => handle(stream, &config, stop).await,
            Ok(Err(err)) => Err(err.into()),
            Err(_) => Err("TLS handshake timed out".into()),
        },
    };
    if let Err(err) = result {
        eprintln!("peer_server: connection: {err}");
    }
}

/// What a path asks for.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Echo,
    Close(CloseCode, &'static str),
    Ping,
    Fragmented,
}

impl Route {
    /// The route of a request path (the query string already removed).
    fn of(path: &str) -> Route {
        if let Some(code) = path.strip_prefix("/close/") {
            return match code.parse::<u16>() {
                Ok(code) if scenario::is_sendable_close_code(code) => {
                    Route::Close(CloseCode(code), "bye")
                }
                _ => Route::Close(CloseCode::POLICY, "bad close code"),
            };
        }
        match path {
            "/ping" => Route::Ping,
            "/fragmented" => Route::Fragmented,
            _ => Route::Echo, // /echo, /subprotocol and any other path
        }
    }
}

async fn handle<S>(stream: S, config: &Config, stop: watch::Receiver<bool>) -> Result<(), BoxError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut path = String::new();
    let ws = clarion_ws::accept_with(stream, config, |request| {
        request.uri().path().clone_into(&mut path);
        Ok(clarion_ws::default_accept(request, config))
    })
    .await?;
    let mut session = Session { ws, stop };
    match Route::of(&path) {
        Route::Echo => session.echo(None).await,
        Route::Close(code, reason) => Ok(session.ws.close(code, reason).await?),
        Route::Ping => {
            session.ws.ping(SERVER_PING).await?;
            session.echo(Some(SERVER_PING)).await
        }
        Route::Fragmented => {
            session
                .send_fragments(MessageKind::Text, &[b"frag-", b"ment-", b"ed"])
                .await?;
            session
                .send_fragments(MessageKind::Binary, &[&[0, 1, 2], &[3, 4]])
                .await?;
            session.echo(None).await
        }
    }
}

/// An accepted connection and the shutdown signal.
struct Session<S> {
    ws: WebSocket<S>,
    stop: watch::Receiver<bool>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    /// Sends one message as exactly these frames.
    async fn send_fragments(
        &mut self,
        kind: MessageKind,
        fragments: &[&'static [u8]],
    ) -> Result<(), BoxError> {
        let last = fragments.len() - 1;
        for (i, fragment) in fragments.iter().enumerate() {
            self.ws.send_fragment(kind, *fragment, i == last).await?;
        }
        Ok(())
    }

    /// Echoes every message until the peer closes. With `awaited_pong`, also
    /// sends `pong:<payload>` when the pong with that payload arrives (other
    /// pongs, and pings, which the library answers, are ignored). On
    /// shutdown, closes with 1001.
    async fn echo(&mut self, mut awaited_pong: Option<&str>) -> Result<(), BoxError> {
        loop {
            tokio::select! {
                incoming = self.ws.recv_incoming() => match incoming {
                    Some(Ok(Incoming::Message(message))) => self.ws.send(message).await?,
                    Some(Ok(Incoming::Pong(payload))) => {
                        if awaited_pong.is_some_and(|want| payload == want.as_bytes()) {
                            awaited_pong = None;
                            self.ws.send(Message::text(SERVER_PING_REPLY)).await?;
                        }
                    }
                    Some(Ok(_)) => {} // a ping, answered by the library
                    Some(Err(err)) => return Err(err.into()),
                    None => return Ok(()),
                },
                _ = self.stop.changed() => {
                    return Ok(self.ws.close(CloseCode::GOING_AWAY, "going away").await?);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_follow_the_spec() {
        assert_eq!(Route::of("/echo"), Route::Echo);
        assert_eq!(Route::of("/subprotocol"), Route::Echo);
        assert_eq!(Route::of("/anything/else"), Route::Echo);
        assert_eq!(Route::of("/ping"), Route::Ping);
        assert_eq!(Route::of("/fragmented"), Route::Fragmented);
        assert_eq!(
            Route::of("/close/4001"),
            Route::Close(CloseCode(4001), "bye")
        );
        assert_eq!(
            Route::of("/close/1000"),
            Route::Close(CloseCode(1000), "bye")
        );
        for bad in ["/close/1005", "/close/5000", "/close/x", "/close/"] {
            let want = Route::Close(CloseCode::POLICY, "bad close code");
            assert_eq!(Route::of(bad), want, "{bad}");
        }
    }

    #[test]
    fn arguments() {
        let args = |list: &[&str]| parse_args(list.iter().map(|s| s.to_string()));
        let ok = args(&["--port", "0", "--tls-cert", "c", "--tls-key", "k"]).unwrap();
        assert_eq!(ok.port, 0);
        assert_eq!(ok.host, "127.0.0.1");
        assert!(ok.tls.is_some());
        assert_eq!(ok.deflate, DeflateMode::Off);
        let deflate = args(&["--port", "0", "--deflate", "no-context"]).unwrap();
        assert_eq!(deflate.deflate, DeflateMode::NoContext);
        assert!(args(&["--port", "0", "--deflate", "maybe"]).is_err());
        assert!(args(&[]).is_err());
        assert!(args(&["--port"]).is_err());
        assert!(args(&["--port", "0", "--tls-cert", "c"]).is_err());
        assert!(args(&["--port", "0", "--bogus", "1"]).is_err());
    }
}
