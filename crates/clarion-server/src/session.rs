//! Opening a session, whatever the transport: the client's first frame
//! must be one `connect` command; its token is verified (or the session is
//! anonymous where the config allows it) and the hub creates the session.
//! The WebSocket endpoint (`ws.rs`) reads that frame from the socket; an
//! HTTP transport would take it from a request body and drive the same
//! session afterwards (`Session::handle` in, `Session::recv` out).

use std::time::Instant;

use clarion_hub::{Credentials, Session};
use clarion_wire::{DisconnectCode, DisconnectPush};

use crate::auth::TokenError;
use crate::server::App;
use crate::ws::reason;

/// Opens a session from the client's first frame, or says why not (the
/// push to send before closing, with its code).
///
/// # Cancel safety
///
/// Cancel-safe: dropping the future (an HTTP request that went away)
/// leaves no session behind (`Hub::connect` is).
pub(crate) async fn open(
    app: &App,
    first: &[u8],
    started: Instant,
) -> Result<Session, DisconnectPush> {
    let (id, request) = app.hub.decode_connect(first)?;
    let credentials = match request.token.as_deref() {
        Some(token) => app.keys.connection(token).map_err(|e| refusal(&e))?,
        None if app.config.auth.allow_anonymous => Credentials::default(),
        None => return Err(reason(DisconnectCode::Unauthorized, "token required")),
    };
    let handshake_ms = started.elapsed().as_millis() as u64;
    tracing::debug!(user = %credentials.user, handshake_ms, "connect");
    app.hub.connect(credentials, id, &request).await
}

fn refusal(error: &TokenError) -> DisconnectPush {
    match error {
        TokenError::Expired => reason(DisconnectCode::Expired, "token expired"),
        TokenError::Invalid(_) => reason(DisconnectCode::Unauthorized, "invalid token"),
    }
}
