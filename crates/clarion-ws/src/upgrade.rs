//! Accepting a WebSocket from a request that an HTTP server (hyper, axum)
//! has already parsed: check it with [`prepare_upgrade`], answer with
//! [`Upgrade::response_headers`] and status 101, then wrap the upgraded
//! connection with [`Upgrade::into_websocket`].
//!
//! ```no_run
//! # fn run(parts: http::request::Parts, upgraded: tokio::net::TcpStream) -> Result<(), Box<dyn std::error::Error>> {
//! let config = clarion_ws::Config::default();
//! let upgrade = clarion_ws::prepare_upgrade(parts, &config, |request| {
//!     Ok(clarion_ws::default_accept(request, &config))
//! });
//! let upgrade = match upgrade {
//!     Ok(upgrade) => upgrade,
//!     Err(reject) => return Ok(()), // answer with reject.status, headers, body
//! };
//! let headers = upgrade.response_headers(); // send "101 Switching Protocols" with these
//! // ... once the HTTP server hands over the connection:
//! let ws = upgrade.into_websocket(upgraded, &config)?;
//! # Ok(()) }
//! ```

use bytes::BytesMut;
use clarion_proto::connection::Connection;
use clarion_proto::deflate::{parse_extensions, server_accept, DeflateParams};
use clarion_proto::handshake::{accept_key, Accept, Reject, Request};
use http::header::{self, HeaderMap, HeaderValue};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::core::Core;
use crate::{Config, Error, WebSocket};

/// A checked upgrade request and what the server agreed to; see the
/// [module docs](self).
#[derive(Debug)]
pub struct Upgrade {
    accept_key: String,
    accept: Accept,
    deflate: Option<DeflateParams>,
}

/// Checks an already-parsed request as [`accept_with`](crate::accept_with)
/// checks one it reads itself (method, version, `Upgrade`, `Connection`,
/// key, version 13), asks `policy` (Origin, subprotocol, extra headers),
/// and negotiates permessage-deflate from `config`. A refusal is the HTTP
/// response to send instead of 101 (400, 403, 426, ...; 500 for an
/// invalid `config`).
pub fn prepare_upgrade<F>(
    parts: http::request::Parts,
    config: &Config,
    policy: F,
) -> Result<Upgrade, Reject>
where
    F: FnOnce(&Request) -> Result<Accept, Reject>,
{
    if config.validate().is_err() {
        return Err(Reject::new(http::StatusCode::INTERNAL_SERVER_ERROR));
    }
    let request = Request::from_parts(parts).map_err(|e| e.to_reject())?;
    let mut accept = policy(&request)?;
    let deflate = negotiate_deflate(&request, &mut accept, config);
    Ok(Upgrade {
        accept_key: accept_key(request.key().as_bytes()),
        accept,
        deflate,
    })
}

impl Upgrade {
    /// The headers of the `101 Switching Protocols` response: `Upgrade`,
    /// `Connection`, `Sec-WebSocket-Accept`, the chosen subprotocol and
    /// extensions, and the policy's extra headers.
    pub fn response_headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in &self.accept.headers {
            headers.append(name, value.clone());
        }
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        if let Ok(value) = HeaderValue::from_str(&self.accept_key) {
            headers.insert(header::SEC_WEBSOCKET_ACCEPT, value);
        }
        let protocol = self.accept.protocol.as_deref();
        if let Some(value) = protocol.and_then(|p| HeaderValue::from_str(p).ok()) {
            headers.insert(header::SEC_WEBSOCKET_PROTOCOL, value);
        }
        let extensions = self.accept.extensions.as_deref();
        if let Some(value) = extensions.and_then(|e| HeaderValue::from_str(e).ok()) {
            headers.insert(header::SEC_WEBSOCKET_EXTENSIONS, value);
        }
        headers
    }

    /// The subprotocol agreed to, if any.
    pub fn protocol(&self) -> Option<&str> {
        self.accept.protocol.as_deref()
    }

    /// Wraps the connection the HTTP server handed over after the 101 (any
    /// bytes it had read past the request must come first from `stream`,
    /// as hyper's `Upgraded` does).
    pub fn into_websocket<S>(self, stream: S, config: &Config) -> Result<WebSocket<S>, Error>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        config.validate()?;
        let mut conn = Connection::server(config.protocol.clone())?;
        if let Some(params) = &self.deflate {
            conn.enable_deflate(params, &config.deflate);
        }
        let mut core = Core::new(stream, conn, BytesMut::new(), config);
        core.set_protocol(self.accept.protocol);
        Ok(WebSocket::from_core(core))
    }
}

/// As [`accept_with`](crate::accept_with) negotiates: unless the policy set
/// the extensions itself; a malformed offer is declined, not fatal.
fn negotiate_deflate(
    request: &Request,
    accept: &mut Accept,
    config: &Config,
) -> Option<DeflateParams> {
    if accept.extensions.is_some() || !config.deflate.enabled {
        return None;
    }
    let headers = request.headers().get_all(header::SEC_WEBSOCKET_EXTENSIONS);
    let lines = headers.iter().filter_map(|value| value.to_str().ok());
    let offers = parse_extensions(lines).ok()?;
    let (params, answer) = server_accept(&config.deflate, &offers)?;
    accept.extensions = Some(answer);
    Some(params)
}
