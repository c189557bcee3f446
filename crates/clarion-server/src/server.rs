//! The listener, the routes and graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use clarion_hub::Hub;
use clarion_wire::{DisconnectCode, DisconnectPush, SUBPROTOCOL_JSON};
use clarion_ws::admission::Admission;
use clarion_ws::proto::handshake::OriginPolicy;
use clarion_ws::tls::TlsAcceptor;
use http::StatusCode;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};

use crate::auth::Keys;
use crate::config::ServerConfig;
use crate::{api, metrics, web, ws};

/// Why the server could not start or run.
#[derive(Debug)]
pub struct ServeError(String);

impl std::fmt::Display for ServeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ServeError {}

/// What every request and connection shares.
pub(crate) struct App {
    pub(crate) hub: Hub,
    pub(crate) keys: Keys,
    pub(crate) config: ServerConfig,
    pub(crate) ws_config: clarion_ws::Config,
    pub(crate) origins: OriginPolicy,
    /// WebSocket admission: total, per IP, new per second per IP.
    pub(crate) admission: Admission,
    /// Whose forwarding headers name the client.
    pub(crate) proxies: crate::proxy::TrustedProxies,
    /// Gives memory back once many connections have closed.
    pub(crate) trimmer: clarion_ws::HeapTrimmer,
    metrics: PrometheusHandle,
    shutdown: watch::Receiver<bool>,
    /// Open WebSocket connections.
    pub(crate) open: AtomicUsize,
    /// Notified whenever a WebSocket connection ends.
    pub(crate) closed: Notify,
}

impl App {
    pub(crate) fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Resolves once shutdown has begun.
    pub(crate) async fn stopped(&self) {
        stopped(&mut self.shutdown.clone()).await;
    }
}

/// A bound server: [`Server::bind`], print [`Server::url`], then
/// [`Server::run_until`].
pub struct Server {
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: Arc<App>,
    stop: watch::Sender<bool>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("listen", &self.listener.local_addr().ok())
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Starts the hub, loads keys and the certificate, and binds `listen`.
    pub async fn bind(config: ServerConfig) -> Result<Server, ServeError> {
        let fail = |what: &str, e: &dyn std::fmt::Display| ServeError(format!("{what}: {e}"));
        let problems = config.problems();
        if !problems.is_empty() {
            return Err(ServeError(problems.join("; ")));
        }
        let tls = match (&config.tls.cert, &config.tls.key) {
            (Some(cert), Some(key)) => {
                Some(TlsAcceptor::from_pem_files(cert, key).map_err(|e| fail("tls", &e))?)
            }
            _ => None,
        };
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| fail(&format!("cannot listen on {}", config.listen), &e))?;
        let port = listener
            .local_addr()
            .map_err(|e| fail("listen", &e))?
            .port();
        let origins = config
            .origin_policy(port)
            .map_err(|e| fail("origins", &e))?;
        let keys = Keys::load(&config.auth).map_err(|e| fail("auth", &e))?;
        let admission =
            Admission::new(config.admission_limits()).map_err(|e| fail("websocket", &e))?;
        let verifier = Arc::new(Keys::load(&config.auth).map_err(|e| fail("auth", &e))?);
        let broker = crate::broker::connect(&config.broker)
            .await
            .map_err(|e| fail("broker", &e))?;
        let hub = Hub::builder(config.hub.clone())
            .broker(broker)
            .token_verifier(verifier)
            .build()
            .await
            .map_err(|e| fail("hub", &e))?;
        let node = hub.node();
        tracing::info!(node = %node.name, id = %node.id, "node started");
        let (stop, shutdown) = watch::channel(false);
        let app = Arc::new(App {
            hub,
            keys,
            ws_config: ws_config(&config),
            origins,
            admission,
            proxies: crate::proxy::TrustedProxies::parse(&config.trusted_proxies)
                .map_err(|e| fail("trusted_proxies", &e))?,
            trimmer: clarion_ws::HeapTrimmer::new(),
            metrics: metrics::install(),
            shutdown,
            open: AtomicUsize::new(0),
            closed: Notify::new(),
            config,
        });
        Ok(Server {
            listener,
            tls,
            app,
            stop,
        })
    }

    /// The address bound (with the port picked for `:0`).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.app.config.listen)
    }

    /// `http://ADDR` or `https://ADDR`.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.local_addr())
    }

    /// Serves until `stop` resolves, then shuts down gracefully:
    ///
    /// 1. draining begins: `/readyz` answers 503, new WebSocket upgrades
    ///    get 503, HTTP responses carry `Connection: close`; the listener
    ///    keeps accepting, so a load balancer's probes see the 503;
    /// 2. after `shutdown_delay` (time for the balancer to take the node
    ///    out), every session is disconnected with code 4000 (WebSocket
    ///    close 1001, going away), and given at most `shutdown_timeout` to
    ///    end;
    /// 3. the listener closes and open HTTP connections finish their
    ///    requests (at most 5 s more).
    pub async fn run_until(self, stop: impl Future<Output = ()>) -> Result<(), ServeError> {
        let router = router(self.app.clone());
        let (close, closing) = watch::channel(false);
        let accept = |tcp: tokio::net::TcpStream, peer| {
            let _ = tcp.set_nodelay(true);
            let shutdown = (self.app.shutdown.clone(), closing.clone());
            spawn_http(tcp, peer, self.tls.clone(), router.clone(), shutdown);
        };
        tokio::select! {
            () = accept_loop(&self.listener, &accept) => {}
            () = stop => {}
        }
        let _ = self.stop.send(true);
        tokio::select! {
            () = accept_loop(&self.listener, &accept) => {}
            () = drain(&self.app) => {}
        }
        drop(self.listener);
        let _ = close.send(true);
        // Last: the other nodes forget this one at once.
        self.app.hub.shutdown().await;
        Ok(())
    }
}

/// Accepts connections until the listener fails for good (never, in practice).
async fn accept_loop(listener: &TcpListener, accept: &impl Fn(tokio::net::TcpStream, SocketAddr)) {
    loop {
        match listener.accept().await {
            Ok((tcp, peer)) => accept(tcp, peer),
            Err(err) => {
                tracing::warn!(error = %err, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Steps 2 of [`Server::run_until`]: wait, disconnect everyone, wait for
/// them to go (bounded).
async fn drain(app: &App) {
    let delay = app.config.shutdown_delay;
    tracing::info!(?delay, "shutting down: not ready any more");
    tokio::time::sleep(delay).await;
    let open = app.open.load(Ordering::Relaxed);
    tracing::info!(open, "disconnecting clients (1001 going away)");
    app.hub
        .disconnect_all(DisconnectPush::new(DisconnectCode::Shutdown));
    let all_closed = async {
        while app.open.load(Ordering::Relaxed) > 0 {
            let closed = app.closed.notified();
            tokio::select! {
                () = closed => {}
                () = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
    };
    if tokio::time::timeout(app.config.shutdown_timeout, all_closed)
        .await
        .is_err()
    {
        let left = app.open.load(Ordering::Relaxed);
        tracing::warn!(left, "shutdown timeout: dropping the connections left");
    }
}

fn ws_config(config: &ServerConfig) -> clarion_ws::Config {
    let mut ws = clarion_ws::Config::default();
    ws.subprotocols = vec![SUBPROTOCOL_JSON.to_owned()];
    ws.idle_timeout = Some(config.websocket.idle_timeout);
    ws.deflate.enabled = config.websocket.compression;
    // The hub answers frames over its limit with 4503; above twice the
    // limit the WebSocket layer refuses to buffer them (1009).
    let limit = config.hub.max_frame_bytes.saturating_mul(2).max(64 * 1024);
    ws.protocol.max_message_size = limit;
    ws.protocol.max_frame_size = ws.protocol.max_frame_size.min(limit);
    ws
}

fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/connection/websocket", get(ws::handler))
        .route("/api/{method}", post(api::handler))
        .route("/metrics", get(metrics_page))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .merge(web::routes())
        .with_state(app)
}

async fn metrics_page(State(app): State<Arc<App>>) -> Response {
    let body = metrics::render(&app.metrics, &app.hub);
    let content_type = "text/plain; version=0.0.4; charset=utf-8";
    ([(http::header::CONTENT_TYPE, content_type)], body).into_response()
}

/// How long `/readyz` waits for the broker's answer.
const READY_BROKER_TIMEOUT: Duration = Duration::from_secs(2);

async fn readyz(State(app): State<Arc<App>>) -> Response {
    let unavailable = |why: String| (StatusCode::SERVICE_UNAVAILABLE, why).into_response();
    if app.is_shutting_down() {
        return unavailable("shutting down\n".into());
    }
    match tokio::time::timeout(READY_BROKER_TIMEOUT, app.hub.broker_health()).await {
        Ok(Ok(())) => (StatusCode::OK, "ready\n").into_response(),
        Ok(Err(e)) => unavailable(format!("broker unavailable: {e}\n")),
        Err(_) => unavailable("broker unavailable: no answer in time\n".into()),
    }
}

/// The shutdown signals an HTTP connection follows: draining (answer with
/// `Connection: close`) and closing (finish and close).
type ShutdownSignals = (watch::Receiver<bool>, watch::Receiver<bool>);

/// One HTTP/1.1 connection (with upgrades), closed gracefully at shutdown.
fn spawn_http(
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    router: Router,
    shutdown: ShutdownSignals,
) {
    tokio::spawn(async move {
        match tls {
            None => serve_http(tcp, peer, router, shutdown).await,
            Some(tls) => match tls.accept(tcp).await {
                Ok(stream) => serve_http(stream, peer, router, shutdown).await,
                Err(err) => tracing::debug!(error = %err, "TLS handshake failed"),
            },
        }
    });
}

/// The client's address, as a request extension (for admission per IP).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer(pub(crate) SocketAddr);

async fn serve_http<S>(stream: S, peer: SocketAddr, router: Router, shutdown: ShutdownSignals)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (draining, mut closing) = shutdown;
    let service = hyper::service::service_fn(move |request: http::Request<Incoming>| {
        let mut request = request.map(axum::body::Body::new);
        request.extensions_mut().insert(Peer(peer));
        // A Router is always ready: `call` without `poll_ready` is fine.
        let response = tower_service::Service::call(&mut router.clone(), request);
        let draining = draining.clone();
        async move {
            let mut response = response.await?;
            // While draining, clients should not reuse this connection.
            if *draining.borrow() && response.status() != StatusCode::SWITCHING_PROTOCOLS {
                let close = http::HeaderValue::from_static("close");
                response
                    .headers_mut()
                    .insert(http::header::CONNECTION, close);
            }
            Ok::<_, std::convert::Infallible>(response)
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10))
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => log_http(result),
        () = stopped(&mut closing) => {
            conn.as_mut().graceful_shutdown();
            let bounded = tokio::time::timeout(Duration::from_secs(5), conn.as_mut()).await;
            if let Ok(result) = bounded {
                log_http(result);
            }
        }
    }
}

/// Resolves once the server shuts down (holding no borrow of the value).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

fn log_http(result: Result<(), hyper::Error>) {
    if let Err(err) = result {
        tracing::debug!(error = %err, "HTTP connection ended with an error");
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
