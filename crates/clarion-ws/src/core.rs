//! The poll-level engine shared by [`WebSocket`](crate::WebSocket) and its
//! split halves: moves bytes between the transport and the sans-IO
//! [`Connection`], runs the timers, and walks the close sequence.
//!
//! Everything lives in `self` between polls, so every `poll_*` here is
//! cancel-safe: dropping a future built on them loses no data.

use std::future::Future;
use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use clarion_proto::connection::{Connection, Event, Role, State};
use clarion_proto::{CloseCode, CloseFrame, Message, MessageKind, PreparedMessage};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;
use tokio_util::io::poll_read_buf;

use crate::error::{Error, Kind, Timeout};
use crate::guards::{ControlRate, Idle, IdleGuard, StallGuard};
use crate::heartbeat::{Beat, Heartbeat};
use crate::wakers::{Side, WriteWakers};
use crate::{Config, Incoming};

/// Free space below which the read buffer is grown before a read.
const MIN_READ_SPACE: usize = 4096;
/// Most the read buffer grows by at once for a large frame: a header that
/// announces 16 MiB does not get 16 MiB before the bytes arrive.
const MAX_READ_RESERVE: usize = 256 * 1024;
/// An empty read buffer larger than this is released after a big message.
const MAX_IDLE_READ_CAPACITY: usize = 64 * 1024;
/// The stack buffer a read lands in when nothing is buffered.
const IDLE_READ_SIZE: usize = 4096;
/// Room for the first heap read once a peer streams (a read filled the
/// stack buffer); it doubles while reads fill it, up to `MAX_READ_RESERVE`.
const FIRST_STREAM_READ_SIZE: usize = 32 * 1024;
/// Messages from this size up are read one frame per read, sized by the
/// last one: a read that ended inside the next frame would make the buffer
/// grow (and move that frame's start) before the rest can arrive.
const LARGE_MESSAGE: usize = 16 * 1024;
/// Slices given to one vectored write: 32 frames of a header and a payload.
const MAX_WRITE_SLICES: usize = 64;
/// The most a frame header adds to its payload (64-bit length and a mask).
const MAX_HEADER_LEN: usize = 14;

pub(crate) struct Core<S> {
    stream: S,
    conn: Connection,
    read_buf: BytesMut,
    /// Room given to a read with nothing buffered; 0 while reads are small
    /// (they land on the stack). Adapts to what the peer sends.
    stream_read_size: usize,
    /// Payload size of the last message, to size the next read for it.
    last_message_len: usize,
    wakers: Arc<WriteWakers>,
    /// Boxed: most connections run without one.
    heartbeat: Option<Box<Heartbeat>>,
    /// Boxed: a timer is a few hundred bytes, and it can be turned off.
    idle: Option<Box<IdleGuard>>,
    stall: StallGuard,
    control_rate: ControlRate,
    close_timer: Option<Pin<Box<Sleep>>>,
    close_timeout: Duration,
    max_write_buffer: usize,
    phase: Phase,
    /// While finishing: read and drop input until the peer's EOF.
    drain: bool,
    /// Our write half is shut down.
    shut_down: bool,
    /// Bytes were handed to the transport since its last completed flush
    /// (a TLS stream holds records until flushed).
    needs_flush: bool,
    /// The error to report once the close sequence is done.
    pending_error: Option<Error>,
    protocol: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Messages flow.
    Open,
    /// Flushing the last frames and closing the transport.
    Finishing,
    /// The transport is closed; `recv` returns `None`.
    Done,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Core<S> {
    pub(crate) fn new(stream: S, conn: Connection, read_buf: BytesMut, config: &Config) -> Self {
        Core {
            stream,
            conn,
            read_buf,
            stream_read_size: 0,
            last_message_len: 0,
            wakers: Arc::default(),
            heartbeat: config
                .ping_interval
                .map(|interval| Box::new(Heartbeat::new(interval, config.pong_timeout))),
            idle: config
                .idle_timeout
                .map(|timeout| Box::new(IdleGuard::new(timeout))),
            stall: StallGuard::new(config.write_timeout),
            control_rate: ControlRate::new(config.max_control_frames_per_second),
            close_timer: None,
            close_timeout: config.close_timeout,
            max_write_buffer: config.max_write_buffer,
            phase: Phase::Open,
            drain: false,
            shut_down: false,
            needs_flush: false,
            pending_error: None,
            protocol: None,
        }
    }

    pub(crate) fn set_protocol(&mut self, protocol: Option<String>) {
        self.protocol = protocol;
    }

    pub(crate) fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    pub(crate) fn stream(&self) -> &S {
        &self.stream
    }

    pub(crate) fn role(&self) -> Role {
        self.conn.role()
    }

    /// The peer's close frame once received; `Some(None)` if it had no code.
    pub(crate) fn peer_close(&self) -> Option<&Option<CloseFrame>> {
        self.conn.received_close()
    }

    pub(crate) fn is_send_closed(&self) -> bool {
        self.phase != Phase::Open || self.conn.sent_close().is_some()
    }

    pub(crate) fn is_sending_fragmented(&self) -> bool {
        self.conn.is_sending_fragmented()
    }

    pub(crate) fn buffered_output(&self) -> usize {
        self.conn.output_len()
    }

    // ---- receiving -------------------------------------------------------

    /// The next message; `None` once the connection is closed.
    pub(crate) fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Message, Error>>> {
        loop {
            return match ready!(self.poll_incoming(cx, false)) {
                Some(Ok(Incoming::Message(message))) => Poll::Ready(Some(Ok(message))),
                Some(Ok(Incoming::Ping(_) | Incoming::Pong(_))) => continue,
                Some(Err(err)) => Poll::Ready(Some(Err(err))),
                None => Poll::Ready(None),
            };
        }
    }

    /// The next message or, with `surface_control`, ping or pong; `None`
    /// once the connection is closed.
    pub(crate) fn poll_incoming(
        &mut self,
        cx: &mut Context<'_>,
        surface_control: bool,
    ) -> Poll<Option<Result<Incoming, Error>>> {
        loop {
            match self.phase {
                Phase::Done => return Poll::Ready(self.pending_error.take().map(Err)),
                Phase::Finishing => {
                    ready!(self.poll_finish(cx));
                    self.phase = Phase::Done;
                    continue;
                }
                Phase::Open => {}
            }
            if let Some(incoming) = self.process_buffered(surface_control) {
                return Poll::Ready(Some(Ok(incoming)));
            }
            if self.phase != Phase::Open {
                continue;
            }
            if self.has_pending_output() {
                match self.poll_write_output(cx, Side::Reader) {
                    Poll::Ready(Err(err)) => {
                        self.fail_transport(err);
                        continue;
                    }
                    // A peer that does not read our answers (pongs, echoes)
                    // is not read from either: TCP pushes back on it.
                    Poll::Pending if !self.has_room() => return Poll::Pending,
                    _ => {}
                }
            }
            if self.poll_close_timeout(cx) {
                continue;
            }
            match self.poll_read(cx) {
                Poll::Ready(Ok(0)) => self.on_eof(),
                Poll::Ready(Ok(_)) => {
                    if let Some(idle) = &mut self.idle {
                        idle.on_input();
                    }
                }
                Poll::Ready(Err(err)) => self.fail_transport(err.into()),
                // The liveness timers only matter when we are about to
                // wait: polling them for every message would cost more
                // than the message.
                Poll::Pending if self.poll_liveness(cx) => {}
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Reads more bytes. With nothing buffered and small reads the read
    /// goes through a stack buffer, and a connection left waiting gives its
    /// heap buffer back: an idle connection holds no read buffer at all.
    /// Mid-message, or while the peer streams, reads go straight into the
    /// heap buffer (one read, no copy, for a large message).
    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if !self.read_buf.is_empty() {
            self.reserve_read_space();
            return poll_read_buf(Pin::new(&mut self.stream), cx, &mut self.read_buf);
        }
        if self.stream_read_size == 0 {
            return self.poll_read_small(cx);
        }
        let size = if self.last_message_len >= LARGE_MESSAGE {
            (self.last_message_len + MAX_HEADER_LEN).min(MAX_READ_RESERVE)
        } else {
            self.stream_read_size
        };
        self.read_buf.reserve(size);
        let offered = self.read_buf.capacity();
        match poll_read_buf(Pin::new(&mut self.stream), cx, &mut self.read_buf) {
            Poll::Pending => {
                self.release_while_waiting();
                Poll::Pending
            }
            Poll::Ready(Ok(n)) => {
                self.adapt_stream_read_size(n, offered);
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
        }
    }

    /// A read through the stack buffer; one that fills it switches to
    /// streaming reads.
    fn poll_read_small(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let mut stack = [MaybeUninit::<u8>::uninit(); IDLE_READ_SIZE];
        let mut landing = ReadBuf::uninit(&mut stack);
        match Pin::new(&mut self.stream).poll_read(cx, &mut landing) {
            Poll::Pending => {
                self.release_while_waiting();
                Poll::Pending
            }
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            Poll::Ready(Ok(())) => {
                let data = landing.filled();
                // Exactly the bytes that came: when they are one whole
                // frame, the buffer becomes the message without another
                // allocation (a buffer with spare room would need one).
                self.read_buf.reserve(data.len());
                self.read_buf.extend_from_slice(data);
                if data.len() == IDLE_READ_SIZE {
                    self.stream_read_size = FIRST_STREAM_READ_SIZE;
                }
                Poll::Ready(Ok(data.len()))
            }
        }
    }

    /// Nothing to read and nothing buffered: hold no buffers while waiting.
    fn release_while_waiting(&mut self) {
        self.read_buf = BytesMut::new();
        self.conn.output().release_if_empty();
    }

    /// Doubles the room for the next read when this one filled it; halves
    /// it when it used less than a quarter, back to stack reads at the
    /// bottom (as Netty's adaptive receive buffers).
    fn adapt_stream_read_size(&mut self, read: usize, offered: usize) {
        if read >= offered {
            self.stream_read_size = (self.stream_read_size * 2).min(MAX_READ_RESERVE);
        } else if read < self.stream_read_size / 4 {
            self.stream_read_size /= 2;
            if self.stream_read_size < FIRST_STREAM_READ_SIZE {
                self.stream_read_size = 0;
            }
        }
    }

    /// Turns buffered bytes into events until something for the caller
    /// comes out or more bytes are needed. Control frames are handled here
    /// (and passed on too with `surface_control`).
    fn process_buffered(&mut self, surface_control: bool) -> Option<Incoming> {
        loop {
            match self.conn.receive(&mut self.read_buf) {
                Ok(Some(Event::Message(message))) => {
                    self.last_message_len = message.len();
                    self.release_idle_read_buf();
                    return Some(Incoming::Message(message));
                }
                Ok(Some(Event::Ping(_) | Event::Pong(_))) if !self.control_rate.allow() => {
                    self.fail_limit(CloseCode::POLICY, "too many control frames");
                    return None;
                }
                // The pong is already queued.
                Ok(Some(Event::Ping(payload))) if surface_control => {
                    return Some(Incoming::Ping(payload));
                }
                Ok(Some(Event::Ping(_))) => {}
                Ok(Some(Event::Pong(payload))) => {
                    if let Some(heartbeat) = &mut self.heartbeat {
                        heartbeat.on_pong(&payload);
                    }
                    if surface_control {
                        return Some(Incoming::Pong(payload));
                    }
                }
                Ok(Some(Event::Close(_))) => {
                    // After a clean exchange the peer sends nothing more: a
                    // server closes at once, a client waits for the server.
                    let client = self.role() == Role::Client;
                    self.start_finishing(None, client);
                    return None;
                }
                Ok(None) => return None,
                Err(err) => {
                    tracing::debug!(error = %err, "closing: peer violated the protocol");
                    self.start_finishing(Some(err.into()), true);
                    return None;
                }
            }
        }
    }

    /// The peer went over one of our limits without breaking the protocol:
    /// close with `code` and drain, as for a protocol error.
    fn fail_limit(&mut self, code: CloseCode, reason: &'static str) {
        tracing::debug!(reason, "closing: peer over a limit");
        let _ = self.conn.send_close(Some(CloseFrame::new(code, reason)));
        self.start_finishing(Some(Error::new(Kind::Limit(reason))), true);
    }

    /// The close-handshake timer, once our close frame is out. Returns
    /// whether it fired (and the close sequence started).
    fn poll_close_timeout(&mut self, cx: &mut Context<'_>) -> bool {
        if self.conn.state() == State::CloseSent && self.poll_close_timer(cx) {
            // We sent a close frame and the peer never answered: the
            // finishing step sees the fired timer and shuts down at once.
            self.start_finishing(Some(Error::new(Kind::Timeout(Timeout::Close))), false);
            return true;
        }
        false
    }

    /// Idle and heartbeat timers. Returns whether state changed.
    fn poll_liveness(&mut self, cx: &mut Context<'_>) -> bool {
        self.poll_idle(cx) || self.poll_heartbeat(cx)
    }

    fn poll_idle(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(idle) = &mut self.idle else {
            return false;
        };
        match idle.poll_idle(cx) {
            Poll::Pending => false,
            Poll::Ready(Idle::Ping) => {
                let _ = self.conn.send_ping(Bytes::from_static(b"idle"));
                true
            }
            Poll::Ready(Idle::Expired) => {
                tracing::debug!("closing: nothing received within the idle timeout");
                self.idle = None;
                let frame = CloseFrame::new(CloseCode::GOING_AWAY, "idle timeout");
                let _ = self.conn.send_close(Some(frame));
                self.start_finishing(Some(Error::new(Kind::Timeout(Timeout::Idle))), false);
                true
            }
        }
    }

    fn poll_heartbeat(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(heartbeat) = &mut self.heartbeat else {
            return false;
        };
        match heartbeat.poll_beat(cx) {
            Poll::Pending => false,
            Poll::Ready(Beat::Ping(payload)) => {
                let _ = self.conn.send_ping(Bytes::copy_from_slice(&payload));
                true
            }
            Poll::Ready(Beat::TimedOut) => {
                tracing::debug!("closing: no pong within the heartbeat timeout");
                self.heartbeat = None;
                let frame = CloseFrame::new(CloseCode::INTERNAL_ERROR, "heartbeat timeout");
                let _ = self.conn.send_close(Some(frame));
                // The peer is not answering: waiting for its EOF is pointless.
                self.start_finishing(Some(Error::new(Kind::Timeout(Timeout::Pong))), false);
                true
            }
        }
    }

    fn on_eof(&mut self) {
        if self.conn.state() == State::Open {
            self.start_finishing(Some(Error::new(Kind::Abnormal)), false);
        } else {
            // We had sent our close frame; the peer just hung up.
            self.phase = Phase::Done;
        }
    }

    fn fail_transport(&mut self, err: Error) {
        self.pending_error = Some(err);
        self.phase = Phase::Done;
    }

    /// Starts the close sequence; with `drain`, input is read and dropped
    /// until the peer closes (see `poll_finish`).
    fn start_finishing(&mut self, error: Option<Error>, drain: bool) {
        self.pending_error = error;
        self.drain = drain;
        self.phase = Phase::Finishing;
    }

    /// Makes room for the rest of the frame in progress (within
    /// `MAX_READ_RESERVE`) in one step: growing moves what is buffered, so
    /// growing once per frame copies its start at most once.
    fn reserve_read_space(&mut self) {
        let spare = self.read_buf.capacity() - self.read_buf.len();
        let missing = self.conn.read_hint(self.read_buf.len());
        let wanted = missing.clamp(MIN_READ_SPACE, MAX_READ_RESERVE);
        if spare < MIN_READ_SPACE || spare < missing.min(MAX_READ_RESERVE) {
            self.read_buf.reserve(wanted);
        }
    }

    fn release_idle_read_buf(&mut self) {
        if self.read_buf.is_empty() && self.read_buf.capacity() > MAX_IDLE_READ_CAPACITY {
            self.read_buf = BytesMut::new();
        }
    }

    // ---- closing ---------------------------------------------------------

    /// Flushes what is queued (our close frame), waits for the peer's EOF if
    /// we are a client after a clean close, and shuts the transport down,
    /// all within the close timeout.
    fn poll_finish(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.poll_close_timer(cx) {
            tracing::debug!("close timeout: closing the transport without waiting");
            self.abort_transport(cx);
            return Poll::Ready(());
        }
        if self.has_pending_output() {
            if let Err(err) = ready!(self.poll_write_output(cx, Side::Reader)) {
                tracing::debug!(error = %err, "could not send the close frame");
                self.abort_transport(cx);
                return Poll::Ready(());
            }
        }
        // The server closes TCP first (RFC 6455 section 7.1.1); a client
        // shuts down first only when it is not waiting for the server.
        if self.role() == Role::Server || !self.drain {
            ready!(self.poll_shutdown_once(cx));
        }
        // Closing a socket with unread input makes the kernel send a reset,
        // which can destroy the close frame still on its way to the peer:
        // read and drop until the peer closes (bounded by the close timer).
        while self.drain {
            self.read_buf.clear();
            self.reserve_read_space();
            match ready!(poll_read_buf(
                Pin::new(&mut self.stream),
                cx,
                &mut self.read_buf
            )) {
                Ok(n) if n > 0 => {}
                _ => self.drain = false,
            }
        }
        ready!(self.poll_shutdown_once(cx));
        self.read_buf = BytesMut::new();
        Poll::Ready(())
    }

    /// Shuts our write half down, once; errors only mean it is gone already.
    fn poll_shutdown_once(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if !self.shut_down {
            let waker = self.wakers.register(Side::Reader, cx.waker());
            let _ =
                ready!(Pin::new(&mut self.stream).poll_shutdown(&mut Context::from_waker(&waker)));
            self.shut_down = true;
        }
        Poll::Ready(())
    }

    /// Gives up on a graceful close: one attempt to shut the transport
    /// down (a TCP FIN goes out at once; a TLS close_notify may not), and
    /// the buffers are released. The socket itself closes when dropped.
    fn abort_transport(&mut self, cx: &mut Context<'_>) {
        let waker = self.wakers.register(Side::Reader, cx.waker());
        let _ = Pin::new(&mut self.stream).poll_shutdown(&mut Context::from_waker(&waker));
        self.read_buf = BytesMut::new();
        self.drain = false;
        self.shut_down = true;
    }

    /// Arms the close timer on first use; true once it has fired.
    fn poll_close_timer(&mut self, cx: &mut Context<'_>) -> bool {
        let timeout = self.close_timeout;
        let timer = self
            .close_timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        timer.as_mut().poll(cx).is_ready()
    }

    /// Starts the close handshake: queues our close frame (unless one is
    /// already out) and flushes it. The reader completes the handshake.
    pub(crate) fn poll_send_close(
        &mut self,
        cx: &mut Context<'_>,
        side: Side,
        frame: &mut Option<Option<CloseFrame>>,
    ) -> Poll<Result<(), Error>> {
        if let Some(frame) = frame.take() {
            if self.phase == Phase::Open && self.conn.sent_close().is_none() {
                self.conn.send_close(frame)?;
            }
        }
        if self.phase == Phase::Done {
            return Poll::Ready(Ok(()));
        }
        ready!(self.poll_write_output(cx, side))?;
        Poll::Ready(Ok(()))
    }

    /// The full close: our close frame, then the peer's, then the transport.
    /// Messages that arrive meanwhile are dropped.
    pub(crate) fn poll_close(
        &mut self,
        cx: &mut Context<'_>,
        frame: &mut Option<Option<CloseFrame>>,
    ) -> Poll<Result<(), Error>> {
        ready!(self.poll_send_close(cx, Side::Reader, frame))?;
        loop {
            match ready!(self.poll_recv(cx)) {
                Some(Ok(_)) => continue,
                Some(Err(err)) if err.is_closed() => return Poll::Ready(Ok(())),
                Some(Err(err)) => return Poll::Ready(Err(err)),
                None => return Poll::Ready(Ok(())),
            }
        }
    }

    // ---- sending ---------------------------------------------------------

    /// Ready when there is room in the write buffer (writing some out if
    /// needed); an error once the connection is closed for sending.
    pub(crate) fn poll_ready_send(
        &mut self,
        cx: &mut Context<'_>,
        side: Side,
    ) -> Poll<Result<(), Error>> {
        if self.is_send_closed() {
            return Poll::Ready(Err(Error::new(Kind::Closed)));
        }
        if !self.has_room() {
            let waker = self.wakers.register(side, cx.waker());
            let mut write_cx = Context::from_waker(&waker);
            while !self.has_room() {
                ready!(self.poll_write_some(&mut write_cx))?;
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Queues a message (no room check: see [`poll_ready_send`](Self::poll_ready_send)).
    pub(crate) fn queue(&mut self, message: Message) -> Result<(), Error> {
        if self.phase != Phase::Open {
            return Err(Error::new(Kind::Closed));
        }
        self.conn.send(message)?;
        Ok(())
    }

    /// Queues a message framed once for many connections.
    pub(crate) fn queue_prepared(&mut self, prepared: &PreparedMessage) -> Result<(), Error> {
        if self.phase != Phase::Open {
            return Err(Error::new(Kind::Closed));
        }
        self.conn.send_prepared(prepared)?;
        Ok(())
    }

    pub(crate) fn is_deflate_enabled(&self) -> bool {
        self.conn.is_deflate_enabled()
    }

    /// Queues one fragment of a message (see `Connection::send_fragment`).
    pub(crate) fn queue_fragment(
        &mut self,
        kind: MessageKind,
        payload: Bytes,
        fin: bool,
    ) -> Result<(), Error> {
        if self.phase != Phase::Open {
            return Err(Error::new(Kind::Closed));
        }
        self.conn.send_fragment(kind, payload, fin)?;
        Ok(())
    }

    /// Queues a ping.
    pub(crate) fn queue_ping(&mut self, payload: Bytes) -> Result<(), Error> {
        if self.phase != Phase::Open {
            return Err(Error::new(Kind::Closed));
        }
        self.conn.send_ping(payload)?;
        Ok(())
    }

    /// Whether a message of `len` bytes fits under the write buffer limit.
    pub(crate) fn has_room(&self) -> bool {
        self.conn.output_len() < self.max_write_buffer
    }

    /// Writes out everything queued and flushes the transport.
    pub(crate) fn poll_flush(
        &mut self,
        cx: &mut Context<'_>,
        side: Side,
    ) -> Poll<Result<(), Error>> {
        if self.phase == Phase::Done {
            return Poll::Ready(if self.conn.wants_write() {
                Err(Error::new(Kind::Closed))
            } else {
                Ok(())
            });
        }
        ready!(self.poll_write_output(cx, side))?;
        Poll::Ready(Ok(()))
    }

    fn poll_write_output(&mut self, cx: &mut Context<'_>, side: Side) -> Poll<Result<(), Error>> {
        let waker = self.wakers.register(side, cx.waker());
        let mut write_cx = Context::from_waker(&waker);
        while self.conn.wants_write() {
            ready!(self.poll_write_some(&mut write_cx))?;
        }
        if self.needs_flush {
            match Pin::new(&mut self.stream).poll_flush(&mut write_cx) {
                Poll::Ready(result) => result?,
                Poll::Pending => return self.poll_stalled(&mut write_cx),
            }
            self.needs_flush = false;
            self.stall.on_progress();
        }
        Poll::Ready(Ok(()))
    }

    /// One write of queued output: a plain write when it is one piece (the
    /// usual case for small messages), vectored when it is several and the
    /// transport supports it.
    fn poll_write_some(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let output = self.conn.output();
        let stream = Pin::new(&mut self.stream);
        let chunk = output.chunk();
        let written = if chunk.len() == output.remaining() || !stream.is_write_vectored() {
            stream.poll_write(cx, chunk)
        } else {
            let mut slices = [IoSlice::new(&[]); MAX_WRITE_SLICES];
            let count = output.chunks_vectored(&mut slices);
            stream.poll_write_vectored(cx, &slices[..count])
        };
        match written {
            Poll::Ready(Ok(0)) => {
                Poll::Ready(Err(io::Error::from(io::ErrorKind::WriteZero).into()))
            }
            Poll::Ready(Ok(n)) => {
                output.advance(n);
                self.needs_flush = true;
                self.stall.on_progress();
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(err)) => Poll::Ready(Err(err.into())),
            Poll::Pending => self.poll_stalled(cx),
        }
    }

    /// The transport accepts nothing: pending, or the write timeout error
    /// once it has accepted nothing for that long.
    fn poll_stalled(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        ready!(self.stall.poll_blocked(cx));
        tracing::debug!("dropping the connection: the peer reads nothing");
        Poll::Ready(Err(Error::new(Kind::Timeout(Timeout::Write))))
    }

    /// Whether bytes wait to be written or flushed.
    fn has_pending_output(&self) -> bool {
        self.conn.wants_write() || self.needs_flush
    }
}
