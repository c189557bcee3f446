//! `clarion echo`: the conformance and benchmark target.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clarion_ws::tls::TlsAcceptor;
use clarion_ws::{Accept, Config, WebSocket};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};

/// Arguments of `clarion echo`.
#[derive(Debug, clap::Args)]
pub(crate) struct EchoArgs {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:9001")]
    listen: SocketAddr,
    /// PEM certificate chain: serve wss:// (needs --tls-key).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Refuse permessage-deflate (accepted by default).
    #[arg(long)]
    no_deflate: bool,
}

pub(crate) async fn run(args: EchoArgs) -> anyhow::Result<ExitCode> {
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            Some(TlsAcceptor::from_pem_files(cert, key).context("loading the TLS certificate")?)
        }
        _ => None,
    };
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let scheme = if tls.is_some() { "wss" } else { "ws" };
    // The first line on stdout says where we listen (scripts read it).
    println!("listening on {scheme}://{}", listener.local_addr()?);
    let mut config = Config::default();
    config.deflate.enabled = !args.no_deflate;
    let config = Arc::new(config);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => spawn_connection(tcp, peer, tls.clone(), Arc::clone(&config)),
                // Out of file descriptors and the like: keep serving the others.
                Err(err) => tracing::warn!(error = %err, "accept failed"),
            },
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
        }
    }
}

/// One task per connection. Plain and TLS connections get tasks of their
/// own types: one task type for both would size every plain connection for
/// the TLS state (several KiB) for its whole life.
fn spawn_connection(
    tcp: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    config: Arc<Config>,
) {
    let _ = tcp.set_nodelay(true);
    match tls {
        Some(tls) => tokio::spawn(async move {
            let result = match tls.accept(tcp).await {
                Ok(stream) => serve(stream, &config).await,
                Err(err) => Err(anyhow::Error::from(err)),
            };
            log_end(peer, result);
        }),
        None => tokio::spawn(async move { log_end(peer, serve(tcp, &config).await) }),
    };
}

fn log_end(peer: SocketAddr, result: anyhow::Result<()>) {
    if let Err(err) = result {
        tracing::debug!(%peer, error = %err, "connection ended with an error");
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    config: &Config,
) -> anyhow::Result<()> {
    let mut ws = clarion_ws::accept_with(stream, config, |request| {
        let mut accept: Accept = clarion_ws::default_accept(request, config);
        accept.headers.insert(
            http::header::SERVER,
            http::HeaderValue::from_static(SERVER_NAME),
        );
        Ok(accept)
    })
    .await?;
    echo(&mut ws).await
}

const SERVER_NAME: &str = concat!("Clarion/", env!("CARGO_PKG_VERSION"));

/// Echoes with `feed`, not `send`: replies to messages that arrived in the
/// same read are queued together, and `recv` writes them in one vectored
/// write before it waits for more input (one syscall for a batch).
async fn echo<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocket<S>) -> anyhow::Result<()> {
    while let Some(message) = ws.recv().await {
        ws.feed(message?).await?;
    }
    Ok(())
}
