//! Optional keep-alive: ping when the interval passes, give up when the pong
//! does not come back in time (half-open TCP, a frozen peer).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// What the heartbeat wants done.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Beat {
    /// Send a ping with this payload.
    Ping([u8; 8]),
    /// The last ping went unanswered for the whole pong timeout.
    TimedOut,
}

#[derive(Debug)]
pub(crate) struct Heartbeat {
    interval: Duration,
    pong_timeout: Duration,
    timer: Pin<Box<Sleep>>,
    /// Payload of the ping in flight, if one is.
    awaiting: Option<[u8; 8]>,
    sent: u64,
}

impl Heartbeat {
    pub(crate) fn new(interval: Duration, pong_timeout: Duration) -> Self {
        Heartbeat {
            interval,
            pong_timeout,
            timer: Box::pin(tokio::time::sleep(interval)),
            awaiting: None,
            sent: 0,
        }
    }

    pub(crate) fn poll_beat(&mut self, cx: &mut Context<'_>) -> Poll<Beat> {
        if self.timer.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        if self.awaiting.is_some() {
            return Poll::Ready(Beat::TimedOut);
        }
        self.sent += 1;
        let payload = self.sent.to_be_bytes();
        self.awaiting = Some(payload);
        self.timer
            .as_mut()
            .reset(Instant::now() + self.pong_timeout);
        Poll::Ready(Beat::Ping(payload))
    }

    /// A pong arrived: if it answers our ping, the peer is alive.
    pub(crate) fn on_pong(&mut self, payload: &[u8]) {
        if self.awaiting.is_some_and(|p| p[..] == *payload) {
            self.awaiting = None;
            self.timer.as_mut().reset(Instant::now() + self.interval);
        }
    }
}
