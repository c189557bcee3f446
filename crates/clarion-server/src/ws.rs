//! `GET /connection/websocket`: the upgrade is taken from hyper and handed
//! to clarion-ws, then the connection drives one hub session as
//! `docs/hub.md` ("How a transport drives a session") describes.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use clarion_hub::{Frame, Outgoing, Session};
use clarion_wire::{encode_push, DisconnectCode, DisconnectPush, Push};
use clarion_ws::proto::handshake::Reject;
use clarion_ws::{
    CloseCode, Message, PreparedMessage, TrySendError, Utf8Bytes, WebSocketReader, WebSocketWriter,
};
use http::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::metrics;
use crate::server::{App, Peer};

/// The upgrade request: admission, Origin and handshake checks, then 101
/// and a task for the connection.
pub(crate) async fn handler(State(app): State<Arc<App>>, mut request: Request<Body>) -> Response {
    let started = Instant::now();
    if app.is_shutting_down() {
        return refuse(Reject::new(StatusCode::SERVICE_UNAVAILABLE));
    }
    let peer = match request.extensions().get::<Peer>() {
        Some(Peer(peer)) => peer.ip(),
        None => std::net::Ipv6Addr::UNSPECIFIED.into(),
    };
    let ip = app.proxies.client_ip(peer, request.headers());
    let permit = match app.admission.try_admit(ip) {
        Ok(permit) => permit,
        Err(refusal) => return refuse(refusal.to_reject()),
    };
    let on_upgrade = hyper::upgrade::on(&mut request);
    let (parts, _body) = request.into_parts();
    let ws_config = &app.ws_config;
    let upgrade = clarion_ws::prepare_upgrade(parts, ws_config, |request| {
        app.origins.check_request(request)?;
        Ok(clarion_ws::default_accept(request, ws_config))
    });
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(reject) => return refuse(reject),
    };
    let headers = upgrade.response_headers();
    let guard = OpenGuard::new(&app);
    let tracked = app.trimmer.track();
    tokio::spawn(async move {
        let _guard = guard;
        let _permit = permit;
        let _tracked = tracked;
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(err) => return tracing::debug!(error = %err, "upgrade failed"),
        };
        match upgrade.into_websocket(TokioIo::new(upgraded), &app.ws_config) {
            Ok(ws) => {
                let (reader, writer) = ws.into_split();
                serve(&app, reader, writer, started).await;
            }
            Err(err) => tracing::debug!(error = %err, "cannot start the WebSocket"),
        }
    });
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    *response.headers_mut() = headers;
    response
}

fn refuse(reject: Reject) -> Response {
    metrics::refused(reject.status.as_u16());
    let text = [(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")];
    let mut response = (reject.status, text, reject.body).into_response();
    for (name, value) in reject.headers.iter() {
        response.headers_mut().append(name, value.clone());
    }
    response
}

/// Counts an open connection for as long as it lives.
struct OpenGuard(Arc<App>);

impl OpenGuard {
    fn new(app: &Arc<App>) -> OpenGuard {
        app.open.fetch_add(1, Ordering::Relaxed);
        OpenGuard(app.clone())
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
        self.0.closed.notify_waiters();
    }
}

/// Connects the session, runs it, and leaves every channel at the end.
async fn serve<S>(
    app: &App,
    mut reader: WebSocketReader<S>,
    mut writer: WebSocketWriter<S>,
    started: Instant,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let session = match connect(app, &mut reader, started).await {
        Ok(session) => session,
        Err(Some(push)) => {
            metrics::disconnect(push.code.as_u16().to_string());
            let bytes = encode_push(&Push::Disconnect(push.clone()));
            let _ = writer.feed(text(&bytes)).await;
            let _ = writer
                .close(CloseCode(push.code.close_code()), &push.reason)
                .await;
            let _ = tokio::time::timeout(app.ws_config.close_timeout, drain(&mut reader)).await;
            return;
        }
        Err(None) => return,
    };
    metrics::connected(started.elapsed().as_secs_f64());
    if app.is_shutting_down() {
        // Connected while the others were being disconnected.
        session.disconnect(DisconnectPush::new(DisconnectCode::Shutdown));
    }
    let ended = run(app, &session, &mut reader, &mut writer).await;
    session.close().await;
    metrics::disconnect(ended);
}

/// Reads the first frame (within `connect_timeout`) and opens the session
/// from it (`session::open`). `Err(Some)`: refuse with that push;
/// `Err(None)`: the client went away.
async fn connect<S>(
    app: &App,
    reader: &mut WebSocketReader<S>,
    started: Instant,
) -> Result<Session, Option<DisconnectPush>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let timeout = app.config.websocket.connect_timeout;
    let first = tokio::select! {
        first = tokio::time::timeout(timeout, reader.recv()) => first,
        () = app.stopped() => return Err(Some(DisconnectPush::new(DisconnectCode::Shutdown))),
    };
    let first = match first {
        Err(_elapsed) => return Err(Some(reason(DisconnectCode::Stale, "no connect in time"))),
        Ok(None | Some(Err(_))) => return Err(None),
        Ok(Some(Ok(Message::Binary(_)))) => {
            return Err(Some(reason(DisconnectCode::BadRequest, "binary frame")))
        }
        Ok(Some(Ok(Message::Text(text)))) => text,
    };
    metrics::frame_in(first.len());
    crate::session::open(app, first.as_bytes(), started)
        .await
        .map_err(Some)
}

/// A disconnect push with its own reason text.
pub(crate) fn reason(code: DisconnectCode, reason: &str) -> DisconnectPush {
    DisconnectPush {
        reason: reason.to_owned(),
        ..DisconnectPush::new(code)
    }
}

/// Runs the reading and the writing side until either ends; returns the
/// disconnect code (or `transport`) for the metrics.
async fn run<S>(
    app: &App,
    session: &Session,
    reader: &mut WebSocketReader<S>,
    writer: &mut WebSocketWriter<S>,
) -> String
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let reading = read_loop(session, reader);
    tokio::pin!(reading);
    tokio::select! {
        () = &mut reading => "transport".to_owned(),
        code = write_loop(session, writer) => {
            // Our close frame is out: wait (bounded) for the client's.
            let _ = tokio::time::timeout(app.ws_config.close_timeout, &mut reading).await;
            code
        }
    }
}

/// Every text frame goes to the session; a binary frame is a protocol
/// error. Ends when the client closes or the connection fails.
async fn read_loop<S>(session: &Session, reader: &mut WebSocketReader<S>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut closing = false;
    while let Some(message) = reader.recv().await {
        let Ok(message) = message else { return };
        if closing {
            continue; // waiting for the close handshake
        }
        metrics::frame_in(message.len());
        match message {
            Message::Text(text) => closing = session.handle(text.as_bytes()).await.is_err(),
            Message::Binary(_) => {
                session.disconnect(reason(DisconnectCode::BadRequest, "binary frame"));
                closing = true;
            }
        }
    }
}

/// Writes what the session queues, batching what is ready into one flush;
/// closes with the session's code. Returns that code.
async fn write_loop<S>(session: &Session, writer: &mut WebSocketWriter<S>) -> String
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    while let Some(outgoing) = session.recv().await {
        let mut next = Some(outgoing);
        while let Some(outgoing) = next.take() {
            match outgoing {
                Outgoing::Frame(frame) => {
                    if send_frame(writer, &frame).await.is_err() {
                        return "transport".to_owned();
                    }
                }
                Outgoing::Close(push) => {
                    let code = CloseCode(push.code.close_code());
                    let _ = writer.close(code, &push.reason).await;
                    return push.code.as_u16().to_string();
                }
            }
            next = session.try_recv();
        }
        if writer.flush().await.is_err() {
            return "transport".to_owned();
        }
    }
    "transport".to_owned()
}

/// Queues one frame, framed once for every session it goes to.
async fn send_frame<S>(writer: &mut WebSocketWriter<S>, frame: &Frame) -> Result<(), ()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    metrics::frame_out(frame.bytes());
    let Some(prepared) = frame.prepared(|bytes| PreparedMessage::new(text(bytes), 6)) else {
        return writer.feed(text(frame.bytes())).await.map_err(drop);
    };
    match writer.try_send_prepared(prepared) {
        Ok(()) => Ok(()),
        Err(TrySendError::Full(_)) => writer.send_prepared(prepared).await.map_err(drop),
        Err(_) => Err(()),
    }
}

/// The hub's frames are JSON text: valid UTF-8 by construction.
fn text(bytes: &bytes::Bytes) -> Message {
    match Utf8Bytes::try_from_bytes(bytes.clone()) {
        Ok(text) => Message::Text(text),
        Err(_) => Message::Binary(bytes.clone()),
    }
}

async fn drain<S>(reader: &mut WebSocketReader<S>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    while let Some(Ok(_)) = reader.recv().await {}
}
