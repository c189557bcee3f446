//! [`WebSocket`]: one connection, with `recv`/`send`/`close` and
//! `Stream + Sink`.

use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use clarion_proto::connection::{Connection, Role};
use clarion_proto::{CloseCode, CloseFrame, Message, MessageKind, PreparedMessage};
use futures_core::Stream;
use futures_sink::Sink;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::core::Core;
use crate::error::{Error, TrySendError};
use crate::split::{WebSocketReader, WebSocketWriter};
use crate::wakers::Side;
use crate::{Config, Incoming};

/// A WebSocket connection over any byte stream (TCP, TLS, an HTTP upgrade).
///
/// Received pings are answered automatically; received pongs feed the
/// heartbeat. `recv` drives reading *and* the writing of those automatic
/// replies, so keep a `recv` pending (or split the socket and keep the
/// reader busy) for the connection to stay healthy.
pub struct WebSocket<S> {
    core: Core<S>,
    /// The close frame a `Sink::poll_close` is sending, until it is queued.
    sink_close: Option<Option<CloseFrame>>,
    sink_closing: bool,
}

impl<S> std::fmt::Debug for WebSocket<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocket").finish_non_exhaustive()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WebSocket<S> {
    /// Wraps a stream on which the opening handshake is already done, e.g.
    /// one taken over from an HTTP server's upgrade. `leftover` holds bytes
    /// read past the handshake (they are the first frame bytes).
    pub fn from_raw(
        stream: S,
        role: Role,
        config: &Config,
        leftover: BytesMut,
    ) -> Result<Self, Error> {
        config.validate()?;
        let conn = match role {
            Role::Server => Connection::server(config.protocol.clone())?,
            Role::Client => {
                Connection::client(config.protocol.clone(), crate::mask::mask_source())?
            }
        };
        Ok(WebSocket::from_core(Core::new(
            stream, conn, leftover, config,
        )))
    }

    pub(crate) fn from_core(core: Core<S>) -> Self {
        WebSocket {
            core,
            sink_close: None,
            sink_closing: false,
        }
    }

    pub(crate) fn into_core(self) -> Core<S> {
        self.core
    }

    /// The next text or binary message; `None` once the connection has
    /// closed cleanly (see [`close_frame`](Self::close_frame) for why).
    /// A failure is returned once, then `None`.
    ///
    /// # Cancel safety
    /// Cancel-safe: if the future is dropped before it completes, no message
    /// is lost; the next call picks up where this one stopped.
    pub async fn recv(&mut self) -> Option<Result<Message, Error>> {
        poll_fn(|cx| self.core.poll_recv(cx)).await
    }

    /// The next message, ping or pong, for callers that want to see control
    /// frames (to measure round trips with pongs, say). Pings are answered
    /// automatically all the same. `None` once the connection has closed.
    ///
    /// # Cancel safety
    /// Cancel-safe, as [`recv`](Self::recv).
    pub async fn recv_incoming(&mut self) -> Option<Result<Incoming, Error>> {
        poll_fn(|cx| self.core.poll_incoming(cx, true)).await
    }

    /// Sends a message: waits for room in the write buffer, queues the
    /// message, and writes out everything queued.
    ///
    /// # Cancel safety
    /// If cancelled before the message was queued (while waiting for room),
    /// it was not sent. Once queued it stays queued and is written by the
    /// next `send`, `flush` or `recv`, even if this future is dropped.
    pub async fn send(&mut self, message: impl Into<Message>) -> Result<(), Error> {
        self.feed(message).await?;
        self.flush().await
    }

    /// Queues a message without waiting for it to be written (only for room
    /// under `max_write_buffer`). Follow with [`flush`](Self::flush) or keep
    /// a `recv` running, which writes queued bytes too.
    ///
    /// # Cancel safety
    /// As [`send`](Self::send): the message is either not queued, or queued
    /// for good.
    pub async fn feed(&mut self, message: impl Into<Message>) -> Result<(), Error> {
        let message = message.into();
        poll_fn(|cx| self.core.poll_ready_send(cx, Side::Writer)).await?;
        self.core.queue(message)
    }

    /// Sends one fragment of a message: the first call gives the kind, the
    /// next ones continue it, and `fin` ends it. Control frames may be sent
    /// in between; other messages may not. For a text message, the
    /// fragments together must be valid UTF-8.
    ///
    /// # Cancel safety
    /// As [`send`](Self::send).
    pub async fn send_fragment(
        &mut self,
        kind: MessageKind,
        payload: impl Into<Bytes>,
        fin: bool,
    ) -> Result<(), Error> {
        let payload = payload.into();
        poll_fn(|cx| self.core.poll_ready_send(cx, Side::Writer)).await?;
        self.core.queue_fragment(kind, payload, fin)?;
        self.flush().await
    }

    /// Sends a message framed (and compressed) once for many connections:
    /// the frame bytes are shared, not copied. See [`PreparedMessage`].
    ///
    /// # Cancel safety
    /// As [`send`](Self::send).
    pub async fn send_prepared(&mut self, prepared: &PreparedMessage) -> Result<(), Error> {
        poll_fn(|cx| self.core.poll_ready_send(cx, Side::Writer)).await?;
        self.core.queue_prepared(prepared)?;
        self.flush().await
    }

    /// Queues a prepared message if the write buffer has room, without
    /// waiting; on refusal nothing was queued.
    pub fn try_send_prepared(&mut self, prepared: &PreparedMessage) -> Result<(), TrySendError> {
        try_queue_prepared(&mut self.core, prepared)
    }

    /// Whether permessage-deflate was negotiated.
    pub fn is_compressed(&self) -> bool {
        self.core.is_deflate_enabled()
    }

    /// Queues a message if the write buffer has room, without waiting.
    pub fn try_send(&mut self, message: impl Into<Message>) -> Result<(), TrySendError> {
        try_queue(&mut self.core, message.into())
    }

    /// Writes out everything queued and flushes the transport.
    ///
    /// # Cancel safety
    /// Cancel-safe: unwritten bytes stay queued.
    pub async fn flush(&mut self) -> Result<(), Error> {
        poll_fn(|cx| self.core.poll_flush(cx, Side::Writer)).await
    }

    /// Sends a ping (at most 125 bytes); its pong arrives as an event the
    /// heartbeat consumes.
    ///
    /// # Cancel safety
    /// As [`send`](Self::send).
    pub async fn ping(&mut self, payload: impl Into<Bytes>) -> Result<(), Error> {
        self.core.queue_ping(payload.into())?;
        self.flush().await
    }

    /// Closes the connection: sends a close frame with `code` and `reason`,
    /// waits for the peer's (dropping messages that arrive meanwhile), then
    /// closes the transport, all bounded by the close timeout.
    ///
    /// # Cancel safety
    /// Not cancel-safe in the sense that the close frame, once queued, is
    /// not taken back; calling `close` again resumes the handshake.
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        let mut frame = Some(Some(CloseFrame::new(code, reason)));
        poll_fn(|cx| self.core.poll_close(cx, &mut frame)).await
    }

    /// The peer's close frame, once received (`None` inside: it had no code).
    pub fn close_frame(&self) -> Option<&Option<CloseFrame>> {
        self.core.peer_close()
    }

    /// The subprotocol agreed in the handshake.
    pub fn protocol(&self) -> Option<&str> {
        self.core.protocol()
    }

    /// Whether we are the server or the client end.
    pub fn role(&self) -> Role {
        self.core.role()
    }

    /// Bytes queued and not yet written.
    pub fn buffered_amount(&self) -> usize {
        self.core.buffered_output()
    }

    /// The underlying transport.
    pub fn get_ref(&self) -> &S {
        self.core.stream()
    }

    /// Splits into a receiving and a sending half that can live in
    /// different tasks; [`WebSocketReader::reunite`] puts them back.
    pub fn into_split(self) -> (WebSocketReader<S>, WebSocketWriter<S>) {
        crate::split::split(self)
    }
}

pub(crate) fn try_queue<S: AsyncRead + AsyncWrite + Unpin>(
    core: &mut Core<S>,
    message: Message,
) -> Result<(), TrySendError> {
    if core.is_send_closed() {
        return Err(TrySendError::Closed(message));
    }
    if core.is_sending_fragmented() {
        return Err(TrySendError::FragmentInProgress(message));
    }
    if !core.has_room() {
        return Err(TrySendError::Full(message));
    }
    // Every reason `queue` could refuse was checked above.
    let _ = core.queue(message);
    Ok(())
}

pub(crate) fn try_queue_prepared<S: AsyncRead + AsyncWrite + Unpin>(
    core: &mut Core<S>,
    prepared: &PreparedMessage,
) -> Result<(), TrySendError> {
    let refuse = || prepared.message().clone();
    if core.is_send_closed() {
        return Err(TrySendError::Closed(refuse()));
    }
    if core.is_sending_fragmented() {
        return Err(TrySendError::FragmentInProgress(refuse()));
    }
    if !core.has_room() {
        return Err(TrySendError::Full(refuse()));
    }
    // Every reason `queue_prepared` could refuse was checked above.
    let _ = core.queue_prepared(prepared);
    Ok(())
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for WebSocket<S> {
    type Item = Result<Message, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().core.poll_recv(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Message> for WebSocket<S> {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().core.poll_ready_send(cx, Side::Writer)
    }

    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), Error> {
        self.get_mut().core.queue(item)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().core.poll_flush(cx, Side::Writer)
    }

    /// Closes with 1000 and completes the close handshake.
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let this = self.get_mut();
        if !this.sink_closing {
            this.sink_closing = true;
            this.sink_close = Some(Some(CloseFrame::new(CloseCode::NORMAL, "")));
        }
        this.core.poll_close(cx, &mut this.sink_close)
    }
}
