//! `clarion echo`: the conformance and benchmark target.
//!
//! Every connection passes, in order: admission (counts and rate per client
//! IP, answered 503/429 before anything is read), TLS within its own
//! timeout, the WebSocket handshake with the Origin policy (403), then the
//! echo loop. SIGTERM or Ctrl-C stops accepting, closes every connection
//! with 1001 and waits up to `--shutdown-timeout`; SIGHUP (and a change of
//! the files, checked every few seconds) reloads the TLS certificate.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use clarion_ws::admission::{refuse, Admission, AdmissionLimits, Permit};
use clarion_ws::proto::handshake::OriginPolicy;
use clarion_ws::tls::TlsAcceptor;
use clarion_ws::{Accept, CloseCode, Config, HeapTrimmer, WebSocket};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

use super::duration;

/// Arguments of `clarion echo`. Durations in Clarion's one grammar (`250ms`,
/// `10s`, `1.5s`, `2m`, `1h`, `1d`, or seconds); the limits it shares with
/// `clarion serve` have the same flags and `CLARION_*` variables.
#[derive(Debug, clap::Args)]
pub(crate) struct EchoArgs {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:9001")]
    listen: SocketAddr,
    /// PEM certificate chain: serve wss:// (needs --tls-key). Reloaded on
    /// SIGHUP and when the file changes.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Time allowed for the TLS handshake, before the WebSocket handshake.
    #[arg(long, default_value = "10s", value_parser = duration::parse)]
    tls_handshake_timeout: Duration,
    /// Refuse permessage-deflate (accepted by default).
    #[arg(long)]
    no_deflate: bool,
    /// Allow browser pages from this origin only (repeatable): `*`,
    /// `https://app.example.com[:port]` or `https://*.example.com`; others
    /// get 403. Without it any origin may connect (echo is a test target).
    #[arg(long = "allowed-origin", value_name = "PATTERN")]
    allowed_origins: Vec<String>,
    /// With --allowed-origin: refuse requests that carry no Origin
    /// (non-browser clients are allowed by default).
    #[arg(long, requires = "allowed_origins")]
    require_origin: bool,
    /// Open connections in total; more get 503.
    #[arg(long, env = "CLARION_MAX_CONNECTIONS", default_value_t = AdmissionLimits::default().max_connections)]
    max_connections: usize,
    /// Open connections per client IP; more get 429.
    #[arg(long, env = "CLARION_MAX_CONNECTIONS_PER_IP", default_value_t = AdmissionLimits::default().max_connections_per_ip)]
    max_connections_per_ip: usize,
    /// New connections per second per client IP (sustained); more get 429.
    #[arg(long, env = "CLARION_NEW_CONNECTIONS_PER_SECOND_PER_IP", default_value_t = AdmissionLimits::default().new_connections_per_second_per_ip)]
    max_new_connections_per_second: u32,
    /// New connections per client IP allowed at once above that rate.
    #[arg(long, env = "CLARION_NEW_CONNECTION_BURST_PER_IP", default_value_t = AdmissionLimits::default().new_connection_burst_per_ip)]
    new_connection_burst: u32,
    /// Time allowed to read the WebSocket handshake request (then 408).
    #[arg(long, default_value = "10s", value_parser = duration::parse)]
    handshake_timeout: Duration,
    /// Time allowed for the close handshake.
    #[arg(long, default_value = "5s", value_parser = duration::parse)]
    close_timeout: Duration,
    /// Ping every connection this often (off by default).
    #[arg(long, value_parser = duration::parse)]
    ping_interval: Option<Duration>,
    /// With --ping-interval: close with 1011 when no pong comes within this.
    #[arg(long, default_value = "20s", value_parser = duration::parse)]
    pong_timeout: Duration,
    /// Close a connection from which nothing arrived for this long (1001),
    /// or `off`.
    #[arg(long, env = "CLARION_IDLE_TIMEOUT", default_value = "2m", value_parser = duration::parse_or_off)]
    idle_timeout: duration::OrOff,
    /// Drop a connection whose peer accepts none of our bytes for this long.
    #[arg(long, default_value = "30s", value_parser = duration::parse)]
    write_timeout: Duration,
    /// Pings and pongs a peer may send per second (more: close 1008).
    #[arg(long, default_value_t = Config::default().max_control_frames_per_second)]
    max_control_frames_per_second: u32,
    /// On SIGTERM or Ctrl-C, time given to open connections to close.
    #[arg(long, env = "CLARION_SHUTDOWN_TIMEOUT", default_value = "10s", value_parser = duration::parse)]
    shutdown_timeout: Duration,
}

/// How often the certificate files are checked for a change.
const TLS_FILE_CHECK_INTERVAL: Duration = Duration::from_secs(5);

/// What every connection task shares.
struct Shared {
    config: Config,
    origins: OriginPolicy,
    /// Becomes `true` when the server shuts down.
    shutdown: watch::Receiver<bool>,
    /// Gives memory back once many connections have closed.
    trimmer: HeapTrimmer,
    /// Never used to send: it is dropped with the last `Arc<Shared>` (each
    /// connection task holds one), which is how shutdown knows every task
    /// has ended.
    _running: mpsc::Sender<()>,
}

pub(crate) async fn run(args: EchoArgs) -> anyhow::Result<ExitCode> {
    let tls = tls_acceptor(&args)?;
    let admission = Admission::new(admission_limits(&args)).context("invalid connection limits")?;
    let config = echo_config(&args)?;
    let origins = origin_policy(&args)?;
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let scheme = if tls.is_some() { "wss" } else { "ws" };
    // The first line on stdout says where we listen (scripts read it).
    println!("listening on {scheme}://{}", listener.local_addr()?);
    let (stop, shutdown) = watch::channel(false);
    let (running, mut all_ended) = mpsc::channel(1);
    let shared = Arc::new(Shared {
        config,
        origins,
        shutdown,
        trimmer: HeapTrimmer::new(),
        _running: running,
    });
    let (mut stop_signal, mut reload_signal) = (StopSignal::new()?, ReloadSignal::new()?);
    let mut cert_files = tls.as_ref().map(CertFiles::new);
    let mut check_files = tokio::time::interval(TLS_FILE_CHECK_INTERVAL);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => admit(tcp, peer, &admission, tls.as_ref(), &shared),
                // Out of file descriptors and the like: keep serving the others.
                Err(err) => tracing::warn!(error = %err, "accept failed"),
            },
            () = stop_signal.recv() => break,
            () = reload_signal.recv() => reload(tls.as_ref(), "SIGHUP"),
            _ = check_files.tick(), if cert_files.is_some() => {
                if cert_files.as_mut().is_some_and(CertFiles::changed) {
                    reload(tls.as_ref(), "the certificate files changed");
                }
            }
        }
    }
    drop(listener);
    let open = admission.open_connections();
    tracing::info!(open, "shutting down: closing connections with 1001");
    let _ = stop.send(true);
    drop(shared);
    let timeout = args.shutdown_timeout;
    if tokio::time::timeout(timeout, all_ended.recv())
        .await
        .is_err()
    {
        let left = admission.open_connections();
        tracing::warn!(left, "shutdown timeout: dropping the connections left");
    }
    Ok(ExitCode::SUCCESS)
}

fn tls_acceptor(args: &EchoArgs) -> anyhow::Result<Option<TlsAcceptor>> {
    let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) else {
        return Ok(None);
    };
    let acceptor = TlsAcceptor::from_pem_files(cert, key).context("loading the TLS certificate")?;
    Ok(Some(
        acceptor.with_handshake_timeout(args.tls_handshake_timeout),
    ))
}

fn admission_limits(args: &EchoArgs) -> AdmissionLimits {
    let mut limits = AdmissionLimits::default();
    limits.max_connections = args.max_connections;
    limits.max_connections_per_ip = args.max_connections_per_ip;
    limits.new_connections_per_second_per_ip = args.max_new_connections_per_second;
    limits.new_connection_burst_per_ip = args.new_connection_burst;
    limits.max_tracked_ips = limits.max_tracked_ips.max(args.max_connections + 1);
    limits
}

fn echo_config(args: &EchoArgs) -> anyhow::Result<Config> {
    let mut config = Config::default();
    config.deflate.enabled = !args.no_deflate;
    config.handshake_timeout = args.handshake_timeout;
    config.close_timeout = args.close_timeout;
    config.ping_interval = args.ping_interval;
    config.pong_timeout = args.pong_timeout;
    config.idle_timeout = args.idle_timeout.0;
    config.write_timeout = args.write_timeout;
    config.max_control_frames_per_second = args.max_control_frames_per_second;
    config.validate().context("invalid settings")?;
    Ok(config)
}

fn origin_policy(args: &EchoArgs) -> anyhow::Result<OriginPolicy> {
    if args.allowed_origins.is_empty() {
        return Ok(OriginPolicy::any());
    }
    let policy = OriginPolicy::from_patterns(&args.allowed_origins).context("--allowed-origin")?;
    Ok(policy.allow_missing(!args.require_origin))
}

/// Admits the connection (then serves it on a task of its own) or answers
/// its refusal. A TLS client cannot read a plain-text answer, so a refused
/// TLS connection is just closed.
fn admit(
    tcp: TcpStream,
    peer: SocketAddr,
    admission: &Admission,
    tls: Option<&TlsAcceptor>,
    shared: &Arc<Shared>,
) {
    match admission.try_admit(peer.ip()) {
        Ok(permit) => spawn_connection(tcp, peer, permit, tls.cloned(), Arc::clone(shared)),
        Err(refusal) if tls.is_none() => drop(tokio::spawn(refuse(tcp, refusal))),
        Err(_) => drop(tcp),
    }
}

/// One task per connection. Plain and TLS connections get tasks of their
/// own types: one task type for both would size every plain connection for
/// the TLS state (several KiB) for its whole life.
fn spawn_connection(
    tcp: TcpStream,
    peer: SocketAddr,
    permit: Permit,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
) {
    let _ = tcp.set_nodelay(true);
    match tls {
        Some(tls) => tokio::spawn(async move {
            let _permit = permit;
            let _tracked = shared.trimmer.track();
            let mut shutdown = shared.shutdown.clone();
            let stream = tokio::select! {
                stream = tls.accept(tcp) => stream,
                () = stopped(&mut shutdown) => return,
            };
            let result = match stream {
                Ok(stream) => serve(stream, &shared).await,
                Err(err) => Err(anyhow::Error::from(err)),
            };
            log_end(peer, result);
        }),
        None => tokio::spawn(async move {
            let _permit = permit;
            let _tracked = shared.trimmer.track();
            log_end(peer, serve(tcp, &shared).await);
        }),
    };
}

fn log_end(peer: SocketAddr, result: anyhow::Result<()>) {
    if let Err(err) = result {
        tracing::debug!(%peer, error = %err, "connection ended with an error");
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    shared: &Shared,
) -> anyhow::Result<()> {
    let config = &shared.config;
    let mut shutdown = shared.shutdown.clone();
    let handshake = clarion_ws::accept_with(stream, config, |request| {
        shared.origins.check_request(request)?;
        let mut accept: Accept = clarion_ws::default_accept(request, config);
        accept.headers.insert(
            http::header::SERVER,
            http::HeaderValue::from_static(SERVER_NAME),
        );
        Ok(accept)
    });
    let mut ws = tokio::select! {
        ws = handshake => ws?,
        () = stopped(&mut shutdown) => return Ok(()),
    };
    tokio::select! {
        result = echo(&mut ws) => result,
        () = stopped(&mut shutdown) => {
            // `recv` and `feed` are cancel-safe: the close frame goes out
            // after whatever was queued, even mid-message. Boxed: this
            // future would otherwise take room in every idle connection.
            Box::pin(ws.close(CloseCode::GOING_AWAY, "server shutting down")).await?;
            Ok(())
        }
    }
}

/// Resolves once the server shuts down (at once if it already has).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    // An error means the sender is gone, which only happens on exit.
    let _ = shutdown.wait_for(|stop| *stop).await;
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

fn reload(tls: Option<&TlsAcceptor>, why: &str) {
    let Some(tls) = tls else {
        tracing::info!("{why}: no TLS certificate to reload");
        return;
    };
    // `reload` logs its success; on failure the old certificate stays.
    if let Err(err) = tls.reload() {
        tracing::error!(error = %err, "{why}: keeping the previous TLS certificate");
    }
}

/// The modification times of the certificate and key, to notice a renewal.
struct CertFiles {
    paths: [PathBuf; 2],
    seen: [Option<SystemTime>; 2],
}

impl CertFiles {
    fn new(tls: &TlsAcceptor) -> Self {
        let (cert, key) = tls.paths();
        let paths = [cert.to_owned(), key.to_owned()];
        let seen = paths.each_ref().map(|path| modified(path));
        CertFiles { paths, seen }
    }

    /// Whether either file changed since the last call.
    fn changed(&mut self) -> bool {
        let now = self.paths.each_ref().map(|path| modified(path));
        std::mem::replace(&mut self.seen, now) != now
    }
}

fn modified(path: &std::path::Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// SIGTERM or Ctrl-C: stop.
struct StopSignal {
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl StopSignal {
    fn new() -> anyhow::Result<Self> {
        Ok(StopSignal {
            #[cfg(unix)]
            terminate: unix_signal(tokio::signal::unix::SignalKind::terminate(), "SIGTERM")?,
        })
    }

    async fn recv(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.terminate.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// SIGHUP: reload the certificate.
struct ReloadSignal {
    #[cfg(unix)]
    hangup: tokio::signal::unix::Signal,
}

impl ReloadSignal {
    fn new() -> anyhow::Result<Self> {
        Ok(ReloadSignal {
            #[cfg(unix)]
            hangup: unix_signal(tokio::signal::unix::SignalKind::hangup(), "SIGHUP")?,
        })
    }

    async fn recv(&mut self) {
        #[cfg(unix)]
        let _ = self.hangup.recv().await;
        #[cfg(not(unix))]
        std::future::pending::<()>().await;
    }
}

#[cfg(unix)]
fn unix_signal(
    kind: tokio::signal::unix::SignalKind,
    name: &str,
) -> anyhow::Result<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(kind).with_context(|| format!("listening for {name}"))
}
