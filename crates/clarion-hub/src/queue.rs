//! A session's bounded outgoing queue and the frames in it.
//!
//! The hub pushes encoded replies and pushes; the transport drains them.
//! When a push would exceed the limits the session is a slow consumer: its
//! pending frames are dropped (memory is freed at once), a `disconnect`
//! push with code 4001 is queued alone, then [`Outgoing::Close`].

use std::any::Any;
use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use bytes::Bytes;
use clarion_wire::{encode_push, DisconnectPush, Push};
use tokio::sync::Notify;

use crate::config::QueueLimits;

/// One encoded server message (JSON text for one WebSocket text frame).
/// Cloning shares the bytes: a publication is encoded once and the same
/// `Frame` goes to every subscriber.
#[derive(Clone)]
pub struct Frame(Arc<FrameInner>);

struct FrameInner {
    bytes: Bytes,
    prepared: OnceLock<Box<dyn Any + Send + Sync>>,
}

impl Frame {
    /// A frame holding `bytes`.
    pub fn new(bytes: Bytes) -> Frame {
        Frame(Arc::new(FrameInner {
            bytes,
            prepared: OnceLock::new(),
        }))
    }

    /// The encoded message.
    pub fn bytes(&self) -> &Bytes {
        &self.0.bytes
    }

    /// A transport's form of this frame, made once and shared by every
    /// session the frame goes to (for example a WebSocket
    /// `PreparedMessage`, framed and compressed once). `None` if another
    /// type was stored first (two transports of different kinds).
    pub fn prepared<T: Any + Send + Sync>(&self, make: impl FnOnce(&Bytes) -> T) -> Option<&T> {
        self.0
            .prepared
            .get_or_init(|| Box::new(make(&self.0.bytes)))
            .downcast_ref()
    }

    /// Whether two frames share one encoding.
    pub fn ptr_eq(&self, other: &Frame) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Frame({:?})", String::from_utf8_lossy(&self.0.bytes))
    }
}

/// What a transport gets from a session's queue.
#[derive(Debug, Clone)]
pub enum Outgoing {
    /// Send this frame.
    Frame(Frame),
    /// Close the connection with `code.close_code()` and `reason` (the
    /// `disconnect` push was the frame before). Nothing follows.
    Close(DisconnectPush),
}

/// The queue was full.
#[derive(Debug)]
pub(crate) struct Overflow;

pub(crate) struct Queue {
    state: Mutex<State>,
    notify: Notify,
    limits: QueueLimits,
}

#[derive(Default)]
struct State {
    frames: VecDeque<Frame>,
    bytes: usize,
    closing: Option<DisconnectPush>,
    close_taken: bool,
}

impl Queue {
    pub(crate) fn new(limits: QueueLimits) -> Queue {
        Queue {
            state: Mutex::default(),
            notify: Notify::new(),
            limits,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a frame; after a close, frames are dropped silently.
    pub(crate) fn push(&self, frame: Frame) -> Result<(), Overflow> {
        let mut st = self.lock();
        if st.closing.is_some() {
            return Ok(());
        }
        let len = frame.bytes().len();
        if st.frames.len() >= self.limits.max_frames || st.bytes + len > self.limits.max_bytes {
            return Err(Overflow);
        }
        st.bytes += len;
        st.frames.push_back(frame);
        drop(st);
        self.notify.notify_one();
        Ok(())
    }

    /// Ends the queue with a `disconnect` push. With `flush`, frames already
    /// queued are sent first; without, they are dropped. The first close wins.
    pub(crate) fn close(&self, disconnect: DisconnectPush, flush: bool) -> bool {
        let mut st = self.lock();
        if st.closing.is_some() {
            return false;
        }
        if !flush {
            st.frames.clear();
            st.bytes = 0;
        }
        let frame = Frame::new(encode_push(&Push::Disconnect(disconnect.clone())));
        st.bytes += frame.bytes().len();
        st.frames.push_back(frame);
        st.closing = Some(disconnect);
        drop(st);
        self.notify.notify_one();
        true
    }

    /// The disconnect that ends the queue, once one was queued.
    pub(crate) fn closing(&self) -> Option<DisconnectPush> {
        self.lock().closing.clone()
    }

    pub(crate) fn try_recv(&self) -> Option<Outgoing> {
        let mut st = self.lock();
        if let Some(frame) = st.frames.pop_front() {
            st.bytes -= frame.bytes().len();
            return Some(Outgoing::Frame(frame));
        }
        if st.close_taken {
            return None;
        }
        let close = st.closing.clone()?;
        st.close_taken = true;
        Some(Outgoing::Close(close))
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.lock().close_taken
    }

    pub(crate) async fn recv(&self) -> Option<Outgoing> {
        loop {
            if let Some(out) = self.try_recv() {
                return Some(out);
            }
            if self.is_finished() {
                return None;
            }
            // notify_one stores a permit when nobody waits, so a push
            // between try_recv and here is not missed.
            self.notify.notified().await;
        }
    }

    pub(crate) fn max_frames(&self) -> usize {
        self.limits.max_frames
    }

    pub(crate) fn len(&self) -> (usize, usize) {
        let st = self.lock();
        (st.frames.len(), st.bytes)
    }
}

#[cfg(test)]
mod tests {
    use clarion_wire::DisconnectCode;

    use super::*;

    fn frame(s: &str) -> Frame {
        Frame::new(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[tokio::test]
    async fn bounded_by_bytes_and_frames() {
        let q = Queue::new(QueueLimits {
            max_bytes: 10,
            max_frames: 3,
        });
        q.push(frame("aaaa")).unwrap();
        q.push(frame("bbbb")).unwrap();
        assert!(q.push(frame("ccc")).is_err(), "14 bytes > 10");
        q.push(frame("cc")).unwrap();
        assert!(q.push(frame("")).is_err(), "4 frames > 3");
        assert_eq!(q.len(), (3, 10));
        let Some(Outgoing::Frame(f)) = q.recv().await else {
            panic!()
        };
        assert_eq!(&f.bytes()[..], b"aaaa");
        assert_eq!(q.len(), (2, 6));
    }

    #[tokio::test]
    async fn close_without_flush_drops_pending_frames() {
        let q = Queue::new(QueueLimits::default());
        q.push(frame("x")).unwrap();
        assert!(q.close(DisconnectPush::new(DisconnectCode::SlowConsumer), false));
        assert!(!q.close(DisconnectPush::new(DisconnectCode::Shutdown), true));
        q.push(frame("after")).unwrap();
        let Some(Outgoing::Frame(f)) = q.recv().await else {
            panic!()
        };
        assert!(f
            .bytes()
            .starts_with(b"{\"push\":\"disconnect\",\"code\":4001"));
        let Some(Outgoing::Close(d)) = q.recv().await else {
            panic!()
        };
        assert_eq!(d.code, DisconnectCode::SlowConsumer);
        assert!(q.recv().await.is_none());
    }

    #[tokio::test]
    async fn recv_waits_for_a_push() {
        let q = Arc::new(Queue::new(QueueLimits::default()));
        let q2 = q.clone();
        let waiter = tokio::spawn(async move { q2.recv().await });
        tokio::task::yield_now().await;
        q.push(frame("late")).unwrap();
        let Some(Outgoing::Frame(f)) = waiter.await.unwrap() else {
            panic!()
        };
        assert_eq!(&f.bytes()[..], b"late");
    }

    #[test]
    fn prepared_form_is_made_once() {
        let f = frame("x");
        let g = f.clone();
        let mut calls = 0;
        assert_eq!(
            f.prepared(|b| {
                calls += 1;
                b.len()
            }),
            Some(&1usize)
        );
        assert_eq!(g.prepared(|_| -> usize { unreachable!() }), Some(&1usize));
        assert_eq!(g.prepared(|_| "other type"), None);
        assert_eq!(calls, 1);
        assert!(f.ptr_eq(&g));
    }
}
