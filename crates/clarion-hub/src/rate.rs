//! Per-session command rate limits: one token bucket for `publish` (a
//! publish fans out to every subscriber), one for every other command, and
//! a count of refusals that ends a session which does not slow down.

use std::time::Duration;

use tokio::time::Instant;

use crate::config::RateLimits;

/// What to do with a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Run it.
    Allow,
    /// Answer `429` and skip it.
    Refuse,
    /// Refused too often: disconnect with `4008`.
    Disconnect,
}

/// A token bucket: `rate` tokens a second, at most `burst` saved up.
#[derive(Debug)]
struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn new(rate: u32, burst: u32, now: Instant) -> Option<Bucket> {
        (rate > 0).then(|| Bucket {
            rate: f64::from(rate),
            burst: f64::from(burst),
            tokens: f64::from(burst),
            last: now,
        })
    }

    fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return true;
        }
        false
    }
}

/// One session's limits.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    commands: Option<Bucket>,
    publishes: Option<Bucket>,
    max_refused: u32,
    window: Duration,
    refused: u32,
    window_start: Instant,
}

impl RateLimiter {
    pub(crate) fn new(limits: &RateLimits) -> RateLimiter {
        let now = Instant::now();
        RateLimiter {
            commands: Bucket::new(limits.commands_per_second, limits.command_burst, now),
            publishes: Bucket::new(limits.publishes_per_second, limits.publish_burst, now),
            max_refused: limits.max_refused,
            window: limits.refused_window,
            refused: 0,
            window_start: now,
        }
    }

    /// Takes a token for a command (`publish` or any other).
    pub(crate) fn check(&mut self, publish: bool) -> Verdict {
        let now = Instant::now();
        let bucket = match publish {
            true => &mut self.publishes,
            false => &mut self.commands,
        };
        if bucket.as_mut().is_none_or(|b| b.take(now)) {
            return Verdict::Allow;
        }
        if now.saturating_duration_since(self.window_start) >= self.window {
            self.window_start = now;
            self.refused = 0;
        }
        self.refused += 1;
        match self.refused > self.max_refused {
            true => Verdict::Disconnect,
            false => Verdict::Refuse,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(rate: u32, burst: u32, max_refused: u32) -> RateLimits {
        RateLimits {
            commands_per_second: rate,
            command_burst: burst,
            publishes_per_second: rate,
            publish_burst: burst,
            max_refused,
            refused_window: Duration::from_secs(10),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_then_the_rate() {
        let mut limiter = RateLimiter::new(&limits(10, 5, 100));
        for _ in 0..5 {
            assert_eq!(limiter.check(false), Verdict::Allow);
        }
        assert_eq!(limiter.check(false), Verdict::Refuse);
        tokio::time::advance(Duration::from_millis(100)).await;
        assert_eq!(limiter.check(false), Verdict::Allow);
        assert_eq!(limiter.check(false), Verdict::Refuse);
    }

    #[tokio::test(start_paused = true)]
    async fn publishes_have_their_own_bucket() {
        let mut limiter = RateLimiter::new(&limits(1, 1, 100));
        assert_eq!(limiter.check(true), Verdict::Allow);
        assert_eq!(limiter.check(true), Verdict::Refuse);
        assert_eq!(limiter.check(false), Verdict::Allow);
    }

    #[tokio::test(start_paused = true)]
    async fn refusing_too_often_disconnects_and_the_window_forgets() {
        let mut limiter = RateLimiter::new(&limits(1, 1, 2));
        assert_eq!(limiter.check(false), Verdict::Allow);
        assert_eq!(limiter.check(false), Verdict::Refuse);
        assert_eq!(limiter.check(false), Verdict::Refuse);
        assert_eq!(limiter.check(false), Verdict::Disconnect);
        tokio::time::advance(Duration::from_secs(11)).await;
        assert_eq!(limiter.check(false), Verdict::Allow);
        assert_eq!(limiter.check(false), Verdict::Refuse);
    }

    #[tokio::test(start_paused = true)]
    async fn a_zero_rate_is_unlimited() {
        let mut limiter = RateLimiter::new(&limits(0, 0, 0));
        for _ in 0..10_000 {
            assert_eq!(limiter.check(true), Verdict::Allow);
        }
    }
}
