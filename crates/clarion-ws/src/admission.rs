//! Connection admission: whether a freshly accepted TCP connection may
//! proceed to the handshake at all, decided from its address before a
//! single byte is read.
//!
//! [`Admission`] counts open connections in total and per client IP and
//! rate-limits new connections per IP with a token bucket. Each admitted
//! connection holds a [`Permit`] that gives its place back on drop. A
//! refusal is a [`Refusal`], which [`refuse`] turns into an HTTP answer
//! (503 or 429, with `Retry-After`) written under a short timeout.
//!
//! The per-IP table is bounded ([`AdmissionLimits::max_tracked_ips`]): an
//! attacker with many addresses cannot grow it. When it is full, entries of
//! addresses with no open connection are evicted (first those whose bucket
//! is full again, which forget nothing).
//!
//! Refusals are logged at `info`, at most one line per kind every
//! [`LOG_INTERVAL`], with the count of refusals since the previous line, so
//! an attack cannot flood the log.
//!
//! ```no_run
//! use clarion_ws::admission::{refuse, Admission, AdmissionLimits};
//! # async fn run(listener: tokio::net::TcpListener) -> std::io::Result<()> {
//! let admission = Admission::new(AdmissionLimits::default()).expect("valid limits");
//! loop {
//!     let (tcp, peer) = listener.accept().await?;
//!     match admission.try_admit(peer.ip()) {
//!         Ok(permit) => { tokio::spawn(async move { let _permit = permit; /* accept(tcp, ..) */ }); }
//!         Err(refusal) => { tokio::spawn(refuse(tcp, refusal)); }
//!     }
//! }
//! # }
//! ```

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use clarion_proto::handshake::{reject_response, Reject};
use clarion_proto::ConfigError;
use http::{HeaderValue, StatusCode};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// At most one log line per refusal kind this often.
pub const LOG_INTERVAL: Duration = Duration::from_secs(5);

/// Time [`refuse`] gives the peer to take the response.
const REFUSE_WRITE_TIMEOUT: Duration = Duration::from_millis(500);

/// Time [`refuse`] then spends reading (and dropping) what the peer sent, so
/// that closing with unread input does not reset the connection and destroy
/// the response before the peer reads it.
const REFUSE_LINGER: Duration = Duration::from_millis(500);

/// The most [`refuse`] reads while lingering.
const REFUSE_LINGER_BYTES: usize = 32 * 1024;

/// The limits [`Admission`] enforces. Every default is explained here and in
/// `docs/limits.md`.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq)]
pub struct AdmissionLimits {
    /// Open connections (from handshake to close) in total; the next gets
    /// **503**. Default 10,000: about 10,000 × (task, socket buffers,
    /// ~40–100 KiB with kernel buffers) ≈ 0.5–1 GiB, what a small server can
    /// hold; raise it together with `ulimit -n`.
    pub max_connections: usize,
    /// Open connections per client IP; the next gets **429**. Default 256:
    /// a household or office behind one NAT opens a few per tab; 256 leaves
    /// room while one address cannot take more than 2.5 % of the total.
    pub max_connections_per_ip: usize,
    /// New connections per second per client IP, sustained; beyond it
    /// **429** with `Retry-After`. Default 50: a reconnecting client with
    /// backoff needs well under 1/s; 50 allows a page with many sockets
    /// reloading repeatedly while a single address cannot make us spend
    /// handshakes (and TLS) at thousands per second.
    pub new_connections_per_second_per_ip: u32,
    /// New connections per client IP allowed at once above the sustained
    /// rate (the bucket's size). Default 100: a NAT full of clients
    /// reconnecting together after a server restart.
    pub new_connection_burst_per_ip: u32,
    /// Client IPs whose counts and buckets are remembered. Default 65,536
    /// (about 4 MiB): more than any legitimate set of addresses active at
    /// once; beyond it idle entries are evicted. Must exceed
    /// `max_connections` so that addresses with open connections always fit.
    pub max_tracked_ips: usize,
    /// `Retry-After` for refusals by count (total or per IP). Default 1 s.
    pub retry_after: Duration,
}

impl Default for AdmissionLimits {
    fn default() -> Self {
        AdmissionLimits {
            max_connections: 10_000,
            max_connections_per_ip: 256,
            new_connections_per_second_per_ip: 50,
            new_connection_burst_per_ip: 100,
            max_tracked_ips: 65_536,
            retry_after: Duration::from_secs(1),
        }
    }
}

impl AdmissionLimits {
    /// Rejects zero limits and a table too small for the connections.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |field, reason| Err(ConfigError { field, reason });
        if self.max_connections == 0 {
            return err("max_connections", "must be at least 1");
        }
        if self.max_connections_per_ip == 0 {
            return err("max_connections_per_ip", "must be at least 1");
        }
        if self.new_connections_per_second_per_ip == 0 {
            return err("new_connections_per_second_per_ip", "must be at least 1");
        }
        if self.new_connection_burst_per_ip == 0 {
            return err("new_connection_burst_per_ip", "must be at least 1");
        }
        if self.max_tracked_ips <= self.max_connections {
            return err("max_tracked_ips", "must be greater than max_connections");
        }
        Ok(())
    }
}

/// Why a connection was not admitted.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// `max_connections` are open: **503**.
    Full {
        /// When to try again.
        retry_after: Duration,
    },
    /// This IP has `max_connections_per_ip` open: **429**.
    TooManyFromIp {
        /// When to try again.
        retry_after: Duration,
    },
    /// This IP opens connections faster than allowed: **429**.
    TooFast {
        /// When the bucket will hold a token again.
        retry_after: Duration,
    },
}

impl Refusal {
    /// The HTTP status: 503 when the server is full, 429 for one IP's excess.
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::Full { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Refusal::TooManyFromIp { .. } | Refusal::TooFast { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
        }
    }

    /// When to try again.
    pub fn retry_after(&self) -> Duration {
        match *self {
            Refusal::Full { retry_after }
            | Refusal::TooManyFromIp { retry_after }
            | Refusal::TooFast { retry_after } => retry_after,
        }
    }

    /// The response: the status, `Retry-After` in whole seconds (at least
    /// 1), and a one-line body.
    pub fn to_reject(&self) -> Reject {
        let seconds = self.retry_after().as_secs_f64().ceil().max(1.0) as u64;
        Reject::new(self.status())
            .with_header(http::header::RETRY_AFTER, HeaderValue::from(seconds))
            .with_body(format!("{self}\n"))
    }

    fn index(&self) -> usize {
        match self {
            Refusal::Full { .. } => 0,
            Refusal::TooManyFromIp { .. } => 1,
            Refusal::TooFast { .. } => 2,
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refusal::Full { .. } => "too many connections",
            Refusal::TooManyFromIp { .. } => "too many connections from this address",
            Refusal::TooFast { .. } => "too many new connections from this address",
        })
    }
}

/// Counts connections and decides admissions. Cheap to clone; clones share
/// the counts.
#[derive(Clone, Debug)]
pub struct Admission {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    limits: AdmissionLimits,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    total: usize,
    per_ip: HashMap<IpAddr, IpEntry>,
    logs: [LogLimiter; 3],
}

#[derive(Debug)]
struct IpEntry {
    active: usize,
    tokens: f64,
    refilled: Instant,
}

/// A place among the open connections; given back on drop.
#[derive(Debug)]
#[must_use = "the connection's place is given back when the permit is dropped"]
pub struct Permit {
    shared: Arc<Shared>,
    ip: IpAddr,
}

impl Admission {
    /// An admission with `limits`, checked with [`AdmissionLimits::validate`].
    pub fn new(limits: AdmissionLimits) -> Result<Self, ConfigError> {
        limits.validate()?;
        let state = Mutex::new(State::default());
        Ok(Admission {
            shared: Arc::new(Shared { limits, state }),
        })
    }

    /// Admits a connection from `ip` now, or says why not.
    pub fn try_admit(&self, ip: IpAddr) -> Result<Permit, Refusal> {
        self.try_admit_at(ip, Instant::now())
    }

    /// [`try_admit`](Self::try_admit) at a given time (for tests; times must
    /// not go backwards by much, earlier ones count as no time passed).
    pub fn try_admit_at(&self, ip: IpAddr, now: Instant) -> Result<Permit, Refusal> {
        let limits = &self.shared.limits;
        let mut state = self.lock();
        let result = state.admit(ip, now, limits);
        if let Err(refusal) = &result {
            state.logs[refusal.index()].refused(refusal, now);
        }
        drop(state);
        result.map(|()| Permit {
            shared: Arc::clone(&self.shared),
            ip,
        })
    }

    /// Connections admitted and not yet released.
    pub fn open_connections(&self) -> usize {
        self.lock().total
    }

    /// Client IPs currently remembered (at most `max_tracked_ips`).
    pub fn tracked_ips(&self) -> usize {
        self.lock().per_ip.len()
    }

    /// The limits in force.
    pub fn limits(&self) -> &AdmissionLimits {
        &self.shared.limits
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.lock()
    }
}

impl Shared {
    // Only counters are updated under the lock, never across a panic point
    // that leaves them half-done: poisoning is harmless.
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Permit {
    /// The client IP this permit counts against.
    pub fn ip(&self) -> IpAddr {
        self.ip
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.total = state.total.saturating_sub(1);
        if let Some(entry) = state.per_ip.get_mut(&self.ip) {
            entry.active = entry.active.saturating_sub(1);
        }
    }
}

impl State {
    fn admit(&mut self, ip: IpAddr, now: Instant, limits: &AdmissionLimits) -> Result<(), Refusal> {
        let retry_after = limits.retry_after;
        if self.total >= limits.max_connections {
            return Err(Refusal::Full { retry_after });
        }
        if !self.per_ip.contains_key(&ip) && self.per_ip.len() >= limits.max_tracked_ips {
            self.evict(now, limits);
        }
        let burst = f64::from(limits.new_connection_burst_per_ip);
        let rate = f64::from(limits.new_connections_per_second_per_ip);
        let entry = self.per_ip.entry(ip).or_insert(IpEntry {
            active: 0,
            tokens: burst,
            refilled: now,
        });
        if entry.active >= limits.max_connections_per_ip {
            return Err(Refusal::TooManyFromIp { retry_after });
        }
        entry.refill(now, rate, burst);
        if entry.tokens < 1.0 {
            let retry_after = Duration::from_secs_f64((1.0 - entry.tokens) / rate);
            return Err(Refusal::TooFast { retry_after });
        }
        entry.tokens -= 1.0;
        entry.active += 1;
        self.total += 1;
        Ok(())
    }

    /// Makes room in the per-IP table: first forgets idle addresses whose
    /// bucket is full again (nothing is lost); if that freed under a quarter
    /// of the table, every idle address (their rate history is lost, the
    /// price of a bounded table). Addresses with open connections stay:
    /// there are fewer of them than `max_connections < max_tracked_ips`.
    /// Each sweep is O(table) but frees a quarter of it, so O(1) amortised.
    fn evict(&mut self, now: Instant, limits: &AdmissionLimits) {
        let burst = f64::from(limits.new_connection_burst_per_ip);
        let rate = f64::from(limits.new_connections_per_second_per_ip);
        let before = self.per_ip.len();
        self.per_ip.retain(|_, entry| {
            entry.refill(now, rate, burst);
            entry.active > 0 || entry.tokens < burst
        });
        if self.per_ip.len() > before - before / 4 {
            self.per_ip.retain(|_, entry| entry.active > 0);
        }
        tracing::debug!(
            before,
            after = self.per_ip.len(),
            "admission: evicted idle client addresses"
        );
    }
}

impl IpEntry {
    fn refill(&mut self, now: Instant, rate: f64, burst: f64) {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(burst);
        self.refilled = now.max(self.refilled);
    }
}

/// At most one line per [`LOG_INTERVAL`], counting what it did not log.
#[derive(Debug, Default)]
struct LogLimiter {
    last: Option<Instant>,
    suppressed: u64,
}

impl LogLimiter {
    fn refused(&mut self, refusal: &Refusal, now: Instant) {
        let due = self
            .last
            .is_none_or(|last| now.saturating_duration_since(last) >= LOG_INTERVAL);
        if !due {
            self.suppressed += 1;
            return;
        }
        tracing::info!(
            status = refusal.status().as_u16(),
            since_last_line = self.suppressed,
            "refusing connections: {refusal}"
        );
        self.last = Some(now);
        self.suppressed = 0;
    }
}

/// Answers a refused connection with its status and `Retry-After`, without
/// reading the request first, then closes it. Bounded in time (about 1 s in
/// all) whatever the peer does: the write gets 500 ms, then up to 500 ms
/// (and 32 KiB) of the peer's input is read and dropped, so that closing
/// does not reset the connection under the response.
pub async fn refuse<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, refusal: Refusal) {
    let bytes = reject_response(&refusal.to_reject());
    let write = async {
        stream.write_all(&bytes).await?;
        stream.shutdown().await
    };
    if !matches!(
        tokio::time::timeout(REFUSE_WRITE_TIMEOUT, write).await,
        Ok(Ok(()))
    ) {
        return;
    }
    let drain = async {
        let mut buf = [0; 4096];
        let mut read = 0;
        while read < REFUSE_LINGER_BYTES {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => read += n,
            }
        }
    };
    let _ = tokio::time::timeout(REFUSE_LINGER, drain).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
    }

    fn limits() -> AdmissionLimits {
        AdmissionLimits {
            max_connections: 4,
            max_connections_per_ip: 2,
            new_connections_per_second_per_ip: 10,
            new_connection_burst_per_ip: 3,
            max_tracked_ips: 8,
            retry_after: Duration::from_secs(2),
        }
    }

    #[test]
    fn defaults_are_valid_and_bad_limits_are_rejected() {
        assert_eq!(AdmissionLimits::default().validate(), Ok(()));
        let field = |edit: fn(&mut AdmissionLimits)| {
            let mut limits = AdmissionLimits::default();
            edit(&mut limits);
            Admission::new(limits).map(|_| ()).map_err(|e| e.field)
        };
        assert_eq!(field(|l| l.max_connections = 0), Err("max_connections"));
        assert_eq!(
            field(|l| l.max_connections_per_ip = 0),
            Err("max_connections_per_ip")
        );
        assert_eq!(
            field(|l| l.new_connections_per_second_per_ip = 0),
            Err("new_connections_per_second_per_ip")
        );
        assert_eq!(
            field(|l| l.new_connection_burst_per_ip = 0),
            Err("new_connection_burst_per_ip")
        );
        assert_eq!(
            field(|l| l.max_tracked_ips = l.max_connections),
            Err("max_tracked_ips")
        );
    }

    #[test]
    fn the_total_is_bounded_with_503_and_permits_give_places_back() {
        let admission = Admission::new(limits()).unwrap();
        let now = Instant::now();
        let permits: Vec<Permit> = (1..=4)
            .map(|n| admission.try_admit_at(ip(n), now).unwrap())
            .collect();
        assert_eq!(admission.open_connections(), 4);
        let refusal = admission.try_admit_at(ip(9), now).unwrap_err();
        assert_eq!(refusal.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(refusal.retry_after(), Duration::from_secs(2));
        drop(permits);
        assert_eq!(admission.open_connections(), 0);
        assert!(admission.try_admit_at(ip(9), now).is_ok());
    }

    #[test]
    fn one_ip_gets_429_past_its_count_others_still_get_in() {
        let admission = Admission::new(limits()).unwrap();
        let now = Instant::now();
        let a = admission.try_admit_at(ip(1), now).unwrap();
        let _b = admission.try_admit_at(ip(1), now).unwrap();
        let refusal = admission.try_admit_at(ip(1), now).unwrap_err();
        assert!(
            matches!(refusal, Refusal::TooManyFromIp { .. }),
            "{refusal:?}"
        );
        assert_eq!(refusal.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(admission.try_admit_at(ip(2), now).is_ok());
        drop(a);
        assert_eq!(a_ip(&admission.try_admit_at(ip(1), now)), Some(ip(1)));
    }

    fn a_ip(result: &Result<Permit, Refusal>) -> Option<IpAddr> {
        result.as_ref().ok().map(Permit::ip)
    }

    #[test]
    fn the_rate_is_a_token_bucket_with_a_burst() {
        let admission = Admission::new(limits()).unwrap();
        let start = Instant::now();
        for _ in 0..3 {
            drop(admission.try_admit_at(ip(1), start).unwrap());
        }
        let refusal = admission.try_admit_at(ip(1), start).unwrap_err();
        assert_eq!(
            refusal,
            Refusal::TooFast {
                retry_after: Duration::from_millis(100)
            }
        );
        let header = refusal.to_reject().headers.get("retry-after").cloned();
        assert_eq!(header, Some(HeaderValue::from(1)));
        // Another address has its own bucket.
        assert!(admission.try_admit_at(ip(2), start).is_ok());
        // 10/s: one more token after 100 ms, not before.
        let later = start + Duration::from_millis(99);
        assert!(admission.try_admit_at(ip(1), later).is_err());
        let later = start + Duration::from_millis(100);
        drop(admission.try_admit_at(ip(1), later).unwrap());
        assert!(admission.try_admit_at(ip(1), later).is_err());
        // The bucket refills to the burst, not beyond.
        let much_later = start + Duration::from_secs(60);
        for _ in 0..3 {
            drop(admission.try_admit_at(ip(1), much_later).unwrap());
        }
        assert!(admission.try_admit_at(ip(1), much_later).is_err());
    }

    #[test]
    fn the_table_stays_bounded_under_many_addresses() {
        let admission = Admission::new(limits()).unwrap();
        let now = Instant::now();
        let held = admission.try_admit_at(ip(1), now).unwrap();
        for n in 2..=250 {
            // Each address drains part of its bucket and leaves.
            drop(admission.try_admit_at(ip(n), now).unwrap());
            assert!(admission.tracked_ips() <= 8, "at {n}");
        }
        // The address with an open connection was never forgotten.
        let _second = admission.try_admit_at(ip(1), now).unwrap();
        assert!(admission.try_admit_at(ip(1), now).is_err());
        drop(held);
    }

    #[test]
    fn eviction_forgets_full_buckets_first_and_keeps_rate_history() {
        let admission = Admission::new(limits()).unwrap();
        let start = Instant::now();
        for _ in 0..3 {
            drop(admission.try_admit_at(ip(1), start).unwrap());
        }
        for n in 2..=8 {
            drop(admission.try_admit_at(ip(n), start).unwrap());
        }
        assert_eq!(admission.tracked_ips(), 8);
        // 100 ms later addresses 2..=8 have full buckets again; address 1
        // has one token of three.
        let later = start + Duration::from_millis(100);
        drop(admission.try_admit_at(ip(20), later).unwrap());
        assert_eq!(admission.tracked_ips(), 2);
        drop(admission.try_admit_at(ip(1), later).unwrap());
        let refusal = admission.try_admit_at(ip(1), later).unwrap_err();
        assert!(matches!(refusal, Refusal::TooFast { .. }), "{refusal:?}");
    }

    #[tokio::test]
    async fn refuse_writes_the_status_and_retry_after_then_closes() {
        let (mut client, server) = tokio::io::duplex(4096);
        let refusal = Refusal::Full {
            retry_after: Duration::from_secs(3),
        };
        client.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        let task = tokio::spawn(refuse(server, refusal));
        let mut response = String::new();
        client.read_to_string(&mut response).await.unwrap();
        assert!(
            response.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
            "{response}"
        );
        assert!(response.contains("\r\nretry-after: 3\r\n"), "{response}");
        assert!(
            response.ends_with("\r\n\r\ntoo many connections\n"),
            "{response}"
        );
        drop(client);
        task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn refuse_gives_up_on_a_peer_that_reads_nothing() {
        let (_client, server) = tokio::io::duplex(16);
        let refusal = Refusal::TooFast {
            retry_after: Duration::from_secs(1),
        };
        let started = tokio::time::Instant::now();
        refuse(server, refusal).await;
        assert!(started.elapsed() <= Duration::from_secs(1));
    }
}
