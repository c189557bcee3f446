//! Per-connection guards against peers that spend our resources without
//! breaking the protocol: one that sends nothing for too long, one that
//! stops reading while we have output for it, one that floods us with
//! control frames. Each costs nothing until it is needed: the timers are
//! allocated on first use, and the hot path only stores an `Instant` or a
//! flag.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// What the idle guard wants done.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Idle {
    /// Half the timeout passed in silence: ping, so a live but quiet peer
    /// answers (browsers cannot send pings of their own).
    Ping,
    /// The whole timeout passed in silence.
    Expired,
}

/// Closes a connection that has sent nothing for `timeout`, after one ping
/// half-way through.
///
/// Every read stores the time; the timer is only re-armed when it fires
/// early (input came meanwhile), so input costs a clock read, not a timer
/// update.
#[derive(Debug)]
pub(crate) struct IdleGuard {
    timeout: Duration,
    last_input: Instant,
    /// A ping went out since the last input.
    pinged: bool,
    timer: Pin<Box<Sleep>>,
}

impl IdleGuard {
    pub(crate) fn new(timeout: Duration) -> Self {
        IdleGuard {
            timeout,
            last_input: Instant::now(),
            pinged: false,
            timer: Box::pin(tokio::time::sleep(timeout / 2)),
        }
    }

    /// Some bytes arrived.
    pub(crate) fn on_input(&mut self) {
        self.last_input = Instant::now();
        self.pinged = false;
    }

    /// Ready with what to do once the peer has been silent for half the
    /// timeout (ping) or all of it (expired).
    pub(crate) fn poll_idle(&mut self, cx: &mut Context<'_>) -> Poll<Idle> {
        loop {
            if self.timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            let silent = Instant::now().saturating_duration_since(self.last_input);
            if silent >= self.timeout {
                return Poll::Ready(Idle::Expired);
            }
            if silent >= self.timeout / 2 && !self.pinged {
                self.pinged = true;
                self.timer.as_mut().reset(self.last_input + self.timeout);
                return Poll::Ready(Idle::Ping);
            }
            let next = if self.pinged {
                self.timeout
            } else {
                self.timeout / 2
            };
            self.timer.as_mut().reset(self.last_input + next);
        }
    }
}

/// Gives up on a peer that accepts none of our bytes for `timeout` while
/// output waits: without it a client that never reads would hold the
/// connection (and its write buffer) forever.
#[derive(Debug)]
pub(crate) struct StallGuard {
    timeout: Duration,
    /// Allocated on the first stall; most connections never stall.
    timer: Option<Pin<Box<Sleep>>>,
    /// The timer runs (a write is blocked and nothing moved since it was armed).
    armed: bool,
}

impl StallGuard {
    pub(crate) fn new(timeout: Duration) -> Self {
        StallGuard {
            timeout,
            timer: None,
            armed: false,
        }
    }

    /// Bytes were written: the peer reads.
    pub(crate) fn on_progress(&mut self) {
        self.armed = false;
    }

    /// A write is blocked: arms the timer if it is not running; ready once
    /// it has run out.
    pub(crate) fn poll_blocked(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let deadline = Instant::now() + self.timeout;
        let timer = match &mut self.timer {
            Some(timer) if self.armed => timer,
            Some(timer) => {
                timer.as_mut().reset(deadline);
                timer
            }
            None => self
                .timer
                .insert(Box::pin(tokio::time::sleep_until(deadline))),
        };
        self.armed = true;
        timer.as_mut().poll(cx)
    }
}

/// Counts control frames (pings and pongs) per one-second window. Every
/// ping makes us queue a pong, so a flood costs work and write buffer even
/// when each frame is valid.
#[derive(Debug)]
pub(crate) struct ControlRate {
    limit: u32,
    window_start: Option<Instant>,
    count: u32,
}

impl ControlRate {
    pub(crate) fn new(limit_per_second: u32) -> Self {
        ControlRate {
            limit: limit_per_second,
            window_start: None,
            count: 0,
        }
    }

    /// One more control frame arrived; false once the rate is over the limit.
    pub(crate) fn allow(&mut self) -> bool {
        let now = Instant::now();
        match self.window_start {
            Some(start) if now.duration_since(start) < Duration::from_secs(1) => {
                self.count = self.count.saturating_add(1);
            }
            _ => {
                self.window_start = Some(now);
                self.count = 1;
            }
        }
        self.count <= self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poll_now<T>(poll: impl FnOnce(&mut Context<'_>) -> Poll<T>) -> Poll<T> {
        poll(&mut Context::from_waker(std::task::Waker::noop()))
    }

    #[tokio::test(start_paused = true)]
    async fn idle_guard_pings_half_way_then_expires() {
        let mut guard = IdleGuard::new(Duration::from_secs(10));
        let started = Instant::now();
        assert_eq!(
            std::future::poll_fn(|cx| guard.poll_idle(cx)).await,
            Idle::Ping
        );
        assert_eq!(started.elapsed(), Duration::from_secs(5));
        assert_eq!(
            std::future::poll_fn(|cx| guard.poll_idle(cx)).await,
            Idle::Expired
        );
        assert_eq!(started.elapsed(), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn idle_guard_input_postpones_the_ping() {
        let mut guard = IdleGuard::new(Duration::from_secs(10));
        tokio::time::sleep(Duration::from_secs(4)).await;
        guard.on_input();
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert!(poll_now(|cx| guard.poll_idle(cx)).is_pending());
        let started = Instant::now();
        assert_eq!(
            std::future::poll_fn(|cx| guard.poll_idle(cx)).await,
            Idle::Ping
        );
        assert_eq!(started.elapsed(), Duration::from_secs(1));
        guard.on_input(); // the pong
        assert_eq!(
            std::future::poll_fn(|cx| guard.poll_idle(cx)).await,
            Idle::Ping
        );
        assert_eq!(started.elapsed(), Duration::from_secs(6));
    }

    #[tokio::test(start_paused = true)]
    async fn stall_guard_counts_from_the_last_progress() {
        let mut guard = StallGuard::new(Duration::from_secs(5));
        let blocked = |guard: &mut StallGuard| poll_now(|cx| guard.poll_blocked(cx)).is_ready();
        assert!(!blocked(&mut guard));
        tokio::time::sleep(Duration::from_secs(4)).await;
        guard.on_progress();
        assert!(!blocked(&mut guard));
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert!(!blocked(&mut guard), "progress restarted the clock");
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(blocked(&mut guard));
    }

    #[tokio::test(start_paused = true)]
    async fn control_rate_allows_the_limit_per_second() {
        let mut rate = ControlRate::new(3);
        assert!((0..3).all(|_| rate.allow()));
        assert!(!rate.allow());
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(rate.allow(), "a new window starts after a second");
    }
}
