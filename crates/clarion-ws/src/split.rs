//! Owned halves of a [`WebSocket`], for reading and writing from different
//! tasks. Both share the connection behind a mutex that is only held for
//! the length of one poll, never across an `.await`.

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::Bytes;
use clarion_proto::{CloseCode, CloseFrame, Message, MessageKind, PreparedMessage};
use futures_core::Stream;
use futures_sink::Sink;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::core::Core;
use crate::error::{Error, Kind, TrySendError};
use crate::wakers::Side;
use crate::{Incoming, WebSocket};

type Shared<S> = Arc<Mutex<Core<S>>>;

/// The receiving half of a split [`WebSocket`]. It also answers pings and
/// runs the heartbeat and the close handshake, so keep it polled.
pub struct WebSocketReader<S> {
    shared: Shared<S>,
}

/// The sending half of a split [`WebSocket`].
pub struct WebSocketWriter<S> {
    shared: Shared<S>,
    sink_close: Option<Option<CloseFrame>>,
    sink_closing: bool,
}

impl<S> std::fmt::Debug for WebSocketReader<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocketReader").finish_non_exhaustive()
    }
}

impl<S> std::fmt::Debug for WebSocketWriter<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocketWriter").finish_non_exhaustive()
    }
}

pub(crate) fn split<S: AsyncRead + AsyncWrite + Unpin>(
    ws: WebSocket<S>,
) -> (WebSocketReader<S>, WebSocketWriter<S>) {
    let shared = Arc::new(Mutex::new(ws.into_core()));
    let reader = WebSocketReader {
        shared: Arc::clone(&shared),
    };
    let writer = WebSocketWriter {
        shared,
        sink_close: None,
        sink_closing: false,
    };
    (reader, writer)
}

/// Locks the shared core. A poisoned lock means a poll panicked mid-way;
/// the connection is unusable, which callers see as "closed".
fn lock<S>(shared: &Shared<S>) -> Result<MutexGuard<'_, Core<S>>, Error> {
    shared.lock().map_err(|_| Error::new(Kind::Closed))
}

/// The two halves given to `reunite` came from different sockets.
pub struct ReuniteError<S>(pub WebSocketReader<S>, pub WebSocketWriter<S>);

impl<S> std::fmt::Debug for ReuniteError<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReuniteError")
    }
}

impl<S> std::fmt::Display for ReuniteError<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("tried to reunite halves of different WebSockets")
    }
}

impl<S> std::error::Error for ReuniteError<S> {}

impl<S: AsyncRead + AsyncWrite + Unpin> WebSocketReader<S> {
    /// The next message, as [`WebSocket::recv`].
    ///
    /// # Cancel safety
    /// Cancel-safe: no message is lost if the future is dropped.
    pub async fn recv(&mut self) -> Option<Result<Message, Error>> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// The next message, ping or pong, as [`WebSocket::recv_incoming`].
    ///
    /// # Cancel safety
    /// Cancel-safe: nothing is lost if the future is dropped.
    pub async fn recv_incoming(&mut self) -> Option<Result<Incoming, Error>> {
        poll_fn(|cx| match lock(&self.shared) {
            Ok(mut core) => core.poll_incoming(cx, true),
            Err(err) => Poll::Ready(Some(Err(err))),
        })
        .await
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, Error>>> {
        match lock(&self.shared) {
            Ok(mut core) => core.poll_recv(cx),
            Err(err) => Poll::Ready(Some(Err(err))),
        }
    }

    /// The peer's close frame, once received.
    pub fn close_frame(&self) -> Option<Option<CloseFrame>> {
        lock(&self.shared)
            .ok()
            .and_then(|core| core.peer_close().cloned())
    }

    /// Puts the halves back together.
    pub fn reunite(self, writer: WebSocketWriter<S>) -> Result<WebSocket<S>, ReuniteError<S>> {
        if !Arc::ptr_eq(&self.shared, &writer.shared) {
            return Err(ReuniteError(self, writer));
        }
        drop(writer);
        match Arc::try_unwrap(self.shared) {
            Ok(mutex) => match mutex.into_inner() {
                Ok(core) => Ok(WebSocket::from_core(core)),
                Err(poisoned) => Ok(WebSocket::from_core(poisoned.into_inner())),
            },
            // Both halves were given; no other owner can exist.
            Err(_) => unreachable!("a WebSocket half outlived reunite"),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WebSocketWriter<S> {
    /// Sends a message, as [`WebSocket::send`].
    ///
    /// # Cancel safety
    /// The message is either not queued, or queued for good and written by a
    /// later call (or by the reader).
    pub async fn send(&mut self, message: impl Into<Message>) -> Result<(), Error> {
        self.feed(message).await?;
        self.flush().await
    }

    /// Queues a message, waiting only for room, as [`WebSocket::feed`].
    ///
    /// # Cancel safety
    /// As [`send`](Self::send).
    pub async fn feed(&mut self, message: impl Into<Message>) -> Result<(), Error> {
        let message = message.into();
        poll_fn(|cx| lock(&self.shared)?.poll_ready_send(cx, Side::Writer)).await?;
        lock(&self.shared)?.queue(message)
    }

    /// Sends one fragment of a message, as [`WebSocket::send_fragment`].
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
        poll_fn(|cx| lock(&self.shared)?.poll_ready_send(cx, Side::Writer)).await?;
        lock(&self.shared)?.queue_fragment(kind, payload, fin)?;
        self.flush().await
    }

    /// Sends a prepared message, as [`WebSocket::send_prepared`].
    ///
    /// # Cancel safety
    /// As [`send`](Self::send).
    pub async fn send_prepared(&mut self, prepared: &PreparedMessage) -> Result<(), Error> {
        poll_fn(|cx| lock(&self.shared)?.poll_ready_send(cx, Side::Writer)).await?;
        lock(&self.shared)?.queue_prepared(prepared)?;
        self.flush().await
    }

    /// Queues a prepared message if there is room, without waiting.
    pub fn try_send_prepared(&mut self, prepared: &PreparedMessage) -> Result<(), TrySendError> {
        match self.shared.lock() {
            Ok(mut core) => crate::socket::try_queue_prepared(&mut core, prepared),
            Err(_) => Err(TrySendError::Closed(prepared.message().clone())),
        }
    }

    /// Queues a message if there is room, without waiting.
    pub fn try_send(&mut self, message: impl Into<Message>) -> Result<(), TrySendError> {
        let message = message.into();
        match self.shared.lock() {
            Ok(mut core) => crate::socket::try_queue(&mut core, message),
            Err(_) => Err(TrySendError::Closed(message)),
        }
    }

    /// Writes out everything queued.
    ///
    /// # Cancel safety
    /// Cancel-safe: unwritten bytes stay queued.
    pub async fn flush(&mut self) -> Result<(), Error> {
        poll_fn(|cx| lock(&self.shared)?.poll_flush(cx, Side::Writer)).await
    }

    /// Sends a ping.
    ///
    /// # Cancel safety
    /// As [`send`](Self::send).
    pub async fn ping(&mut self, payload: impl Into<Bytes>) -> Result<(), Error> {
        lock(&self.shared)?.queue_ping(payload.into())?;
        self.flush().await
    }

    /// Sends a close frame and flushes it. The reader receives the peer's
    /// answer and closes the transport (its `recv` then returns `None`).
    ///
    /// # Cancel safety
    /// The close frame, once queued, stays queued.
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        let mut frame = Some(Some(CloseFrame::new(code, reason)));
        poll_fn(|cx| lock(&self.shared)?.poll_send_close(cx, Side::Writer, &mut frame)).await
    }

    /// Bytes queued and not yet written.
    pub fn buffered_amount(&self) -> usize {
        lock(&self.shared).map_or(0, |core| core.buffered_output())
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for WebSocketReader<S> {
    type Item = Result<Message, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_recv(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Message> for WebSocketWriter<S> {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        lock(&self.shared)?.poll_ready_send(cx, Side::Writer)
    }

    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), Error> {
        lock(&self.shared)?.queue(item)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        lock(&self.shared)?.poll_flush(cx, Side::Writer)
    }

    /// Sends a close frame with 1000 and flushes it; the reader finishes
    /// the handshake.
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let this = self.get_mut();
        if !this.sink_closing {
            this.sink_closing = true;
            this.sink_close = Some(Some(CloseFrame::new(CloseCode::NORMAL, "")));
        }
        lock(&this.shared)?.poll_send_close(cx, Side::Writer, &mut this.sink_close)
    }
}
