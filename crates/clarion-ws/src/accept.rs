//! The server side of the opening handshake over any byte stream.

use std::time::Duration;

use bytes::BytesMut;
use clarion_proto::connection::Connection;
use clarion_proto::deflate::{parse_extensions, server_accept, DeflateParams};
use clarion_proto::handshake::{
    accept_response, reject_response, select_protocol, Accept, HandshakeError, Reject, Request,
    RequestParser,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::core::Core;
use crate::error::{Error, Kind, Timeout};
use crate::{Config, WebSocket};

/// How long we try to deliver an error response before giving up on a peer
/// that does not read.
const REJECT_WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// Accepts a WebSocket on `stream` (plain TCP, TLS, ...): reads and checks
/// the client's handshake within `config.handshake_timeout`, picks a
/// subprotocol from `config.subprotocols`, and answers 101.
///
/// A bad request gets its HTTP error status (400, 405, 426, 431, ...) and
/// the stream is closed.
///
/// **No `Origin` check is made here**: the caller decides. A server that
/// browsers reach and that authenticates with cookies must check it against
/// Cross-Site WebSocket Hijacking, e.g. with an
/// [`OriginPolicy`](clarion_proto::handshake::OriginPolicy) in [`accept_with`]:
///
/// ```no_run
/// # async fn run(tcp: tokio::net::TcpStream) -> Result<(), clarion_ws::Error> {
/// use clarion_ws::proto::handshake::OriginPolicy;
/// let config = clarion_ws::Config::default();
/// let origins = OriginPolicy::from_patterns(["https://app.example.com", "https://*.example.com"])
///     .expect("valid patterns");
/// let ws = clarion_ws::accept_with(tcp, &config, |request| {
///     origins.check_request(request)?; // 403 for another origin
///     Ok(clarion_ws::default_accept(request, &config))
/// })
/// .await?;
/// # Ok(()) }
/// ```
///
/// # Cancel safety
/// Not cancel-safe: dropping the future drops the stream mid-handshake.
pub async fn accept<S>(stream: S, config: &Config) -> Result<WebSocket<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    accept_with(stream, config, |request| {
        Ok(default_accept(request, config))
    })
    .await
}

/// Accepts a WebSocket after asking `policy`, which sees the whole request
/// (path, `Origin`, headers, offered subprotocols) and answers with an
/// [`Accept`] or a [`Reject`] (e.g. 403 for an Origin it does not trust).
///
/// # Cancel safety
/// Not cancel-safe: dropping the future drops the stream mid-handshake.
pub async fn accept_with<S, F>(stream: S, config: &Config, policy: F) -> Result<WebSocket<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(&Request) -> Result<Accept, Reject>,
{
    // The handshake's state (buffers, parser, request) is larger than the
    // connection it produces; boxing it keeps it out of the caller's task,
    // which would otherwise carry that size for the connection's lifetime.
    Box::pin(handshake(stream, config, policy)).await
}

async fn handshake<S, F>(mut stream: S, config: &Config, policy: F) -> Result<WebSocket<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(&Request) -> Result<Accept, Reject>,
{
    config.validate()?;
    let mut buf = BytesMut::with_capacity(1024);
    let read = tokio::time::timeout(
        config.handshake_timeout,
        read_request(&mut stream, &mut buf, config),
    )
    .await;
    let request = match read {
        Ok(Ok(request)) => request,
        Ok(Err(ReadError::Io(err))) => return Err(err.into()),
        Ok(Err(ReadError::Handshake(err))) => {
            tracing::debug!(error = %err, "rejecting handshake");
            respond_and_close(&mut stream, &err.to_reject()).await;
            return Err(err.into());
        }
        Err(_elapsed) => {
            respond_and_close(&mut stream, &Reject::new(http::StatusCode::REQUEST_TIMEOUT)).await;
            return Err(Error::new(Kind::Timeout(Timeout::Handshake)));
        }
    };
    let accept = match policy(&request) {
        Ok(accept) => accept,
        Err(reject) => {
            tracing::debug!(status = %reject.status, "handshake refused by policy");
            respond_and_close(&mut stream, &reject).await;
            return Err(Error::new(Kind::Rejected(reject.status)));
        }
    };
    let mut accept = accept;
    let deflate = negotiate_deflate(&request, &mut accept, config);
    let response = accept_response(&request, &accept);
    let write = async {
        stream.write_all(&response).await?;
        stream.flush().await
    };
    match tokio::time::timeout(config.handshake_timeout, write).await {
        Ok(result) => result?,
        Err(_elapsed) => return Err(Error::new(Kind::Timeout(Timeout::Handshake))),
    }
    let mut conn = Connection::server(config.protocol.clone())?;
    if let Some(params) = &deflate {
        conn.enable_deflate(params, &config.deflate);
    }
    let mut core = Core::new(stream, conn, buf, config);
    core.set_protocol(accept.protocol);
    Ok(WebSocket::from_core(core))
}

/// The answer [`accept`] gives: the first of our subprotocols the client offered.
pub fn default_accept(request: &Request, config: &Config) -> Accept {
    let supported: Vec<&str> = config.subprotocols.iter().map(String::as_str).collect();
    Accept {
        protocol: select_protocol(request.offered_protocols(), &supported),
        ..Accept::default()
    }
}

/// Answers the client's permessage-deflate offer, unless the policy set
/// `Sec-WebSocket-Extensions` itself (then it owns that decision and no
/// extension is enabled here). Malformed offers are declined, not fatal.
fn negotiate_deflate(
    request: &Request,
    accept: &mut Accept,
    config: &Config,
) -> Option<DeflateParams> {
    if accept.extensions.is_some() || !config.deflate.enabled {
        return None;
    }
    let headers = request
        .headers()
        .get_all(http::header::SEC_WEBSOCKET_EXTENSIONS);
    let lines = headers.iter().filter_map(|value| value.to_str().ok());
    let offers = parse_extensions(lines).ok()?;
    let (params, answer) = server_accept(&config.deflate, &offers)?;
    accept.extensions = Some(answer);
    Some(params)
}

enum ReadError {
    Io(std::io::Error),
    Handshake(HandshakeError),
}

async fn read_request<S>(
    stream: &mut S,
    buf: &mut BytesMut,
    config: &Config,
) -> Result<Request, ReadError>
where
    S: AsyncRead + Unpin,
{
    let mut parser = RequestParser::new(config.handshake_limits);
    loop {
        if let Some(request) = parser.parse(buf).map_err(ReadError::Handshake)? {
            return Ok(request);
        }
        buf.reserve(1024);
        let read = stream.read_buf(buf).await.map_err(ReadError::Io)?;
        if read == 0 {
            let eof = std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed during the handshake",
            );
            return Err(ReadError::Io(eof));
        }
    }
}

/// Writes an HTTP error response and closes, best effort and time-bounded.
async fn respond_and_close<S: AsyncWrite + Unpin>(stream: &mut S, reject: &Reject) {
    let bytes = reject_response(reject);
    let write = async {
        stream.write_all(&bytes).await?;
        stream.shutdown().await
    };
    let _ = tokio::time::timeout(REJECT_WRITE_TIMEOUT, write).await;
}
