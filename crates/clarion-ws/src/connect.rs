//! The client side: resolve, connect, TLS for `wss://`, and the opening
//! handshake.

use bytes::BytesMut;
use clarion_proto::connection::Connection;
use clarion_proto::deflate::{client_accept, client_offer};
use clarion_proto::handshake::{ClientRequest, HandshakeError, Response, ResponseParser};
use http::{HeaderMap, Uri};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::core::Core;
use crate::error::{Error, Kind, Timeout};
use crate::tls::{self, MaybeTlsStream, TlsClientOptions};
use crate::{Config, WebSocket};

/// Extra settings for [`connect_with`].
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct ConnectOptions {
    /// Headers added to the handshake request (`Origin`, `Authorization`, ...).
    pub headers: HeaderMap,
    /// Which certificates to trust for `wss://`.
    pub tls: TlsClientOptions,
}

/// A client connection over TCP, with TLS for `wss://`.
pub type ClientStream = MaybeTlsStream<TcpStream>;

/// Connects to a `ws://` or `wss://` URL (system CA roots) and completes the
/// opening handshake within `config.handshake_timeout`.
///
/// # Cancel safety
/// Not cancel-safe: dropping the future abandons the connection attempt.
pub async fn connect(
    url: &str,
    config: &Config,
) -> Result<(WebSocket<ClientStream>, Response), Error> {
    connect_with(url, config, &ConnectOptions::default()).await
}

/// [`connect`] with extra headers and TLS trust settings.
///
/// # Cancel safety
/// Not cancel-safe: dropping the future abandons the connection attempt.
pub async fn connect_with(
    url: &str,
    config: &Config,
    options: &ConnectOptions,
) -> Result<(WebSocket<ClientStream>, Response), Error> {
    config.validate()?;
    let target = Target::parse(url)?;
    let attempt = async {
        let tcp = TcpStream::connect((target.ip_or_name(), target.port)).await?;
        tcp.set_nodelay(true)?;
        let stream = if target.secure {
            let tls_config = tls::client_config(&options.tls)?;
            MaybeTlsStream::Tls(Box::new(
                tls::connect_tls(tcp, &target.host, tls_config).await?,
            ))
        } else {
            MaybeTlsStream::Plain(tcp)
        };
        client_handshake(stream, &target.uri, config, &options.headers).await
    };
    within_handshake_timeout(config, attempt).await
}

/// The client handshake over a stream you connected yourself (a Unix
/// socket, a proxy tunnel, ...): sends the request for `uri`, checks the
/// 101 response, the accept key and the subprotocol.
///
/// # Cancel safety
/// Not cancel-safe: dropping the future drops the stream mid-handshake.
pub async fn client_handshake<S>(
    stream: S,
    uri: &Uri,
    config: &Config,
    headers: &HeaderMap,
) -> Result<(WebSocket<S>, Response), Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    within_handshake_timeout(config, handshake(stream, uri, config, headers)).await
}

/// Runs `attempt`, failing with a handshake timeout when it takes too long.
async fn within_handshake_timeout<T>(
    config: &Config,
    attempt: impl std::future::Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    // Boxed: the handshake's state is larger than the connection it makes,
    // and would otherwise stay in the caller's task for its whole life.
    match tokio::time::timeout(config.handshake_timeout, Box::pin(attempt)).await {
        Ok(result) => result,
        Err(_elapsed) => Err(Error::new(Kind::Timeout(Timeout::Handshake))),
    }
}

async fn handshake<S>(
    mut stream: S,
    uri: &Uri,
    config: &Config,
    headers: &HeaderMap,
) -> Result<(WebSocket<S>, Response), Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let key: [u8; 16] = rand::random();
    let mut request = ClientRequest::new(uri, key)
        .map_err(|err| Error::new(Kind::Url(err.to_string())))?
        .protocols(config.subprotocols.iter().cloned());
    if let Some(offer) = client_offer(&config.deflate) {
        request = request.extensions(offer);
    }
    for (name, value) in headers {
        request = request.header(name.clone(), value.clone());
    }
    stream.write_all(&request.encode()).await?;
    stream.flush().await?;

    let mut parser = ResponseParser::new(&request, config.handshake_limits);
    let mut buf = BytesMut::with_capacity(1024);
    let response = loop {
        if let Some(response) = parser.parse(&mut buf)? {
            break response;
        }
        buf.reserve(1024);
        if stream.read_buf(&mut buf).await? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "server closed the connection during the handshake",
            )
            .into());
        }
    };
    let mut conn = Connection::client(config.protocol.clone(), crate::mask::mask_source())?;
    if let Some(answer) = response.extensions() {
        // RFC 7692 section 5: an answer we cannot accept fails the connection.
        let params = client_accept(&config.deflate, answer).map_err(HandshakeError::from)?;
        conn.enable_deflate(&params, &config.deflate);
    }
    let mut core = Core::new(stream, conn, buf, config);
    core.set_protocol(response.protocol().map(str::to_owned));
    Ok((WebSocket::from_core(core), response))
}

/// Where to connect, from a `ws://` / `wss://` URL.
struct Target {
    uri: Uri,
    host: String,
    port: u16,
    secure: bool,
}

impl Target {
    fn parse(url: &str) -> Result<Target, Error> {
        let bad = |why: &str| Error::new(Kind::Url(format!("{url}: {why}")));
        let uri: Uri = url.parse().map_err(|_| bad("not a URL"))?;
        let secure = match uri.scheme_str() {
            Some("ws" | "http") => false,
            Some("wss" | "https") => true,
            _ => return Err(bad("the scheme must be ws:// or wss://")),
        };
        let host = uri.host().ok_or_else(|| bad("no host"))?.to_owned();
        let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
        Ok(Target {
            uri,
            host,
            port,
            secure,
        })
    }

    /// The host without IPv6 brackets, for the resolver.
    fn ip_or_name(&self) -> &str {
        self.host.trim_start_matches('[').trim_end_matches(']')
    }
}
