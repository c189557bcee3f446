//! Loopback ports for servers under test.

use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A TCP port on 127.0.0.1 that was free a moment ago, and never handed
/// out before by this process (tests running in parallel each get their
/// own, even when the first of them has not bound it yet).
///
/// The port is released before returning, so another process could take it
/// first; prefer letting the server bind port 0 and report its address when
/// you can.
pub fn free_port() -> u16 {
    static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0");
        let port = listener
            .local_addr()
            .expect("reading the bound address")
            .port();
        let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
        if handed_out.insert(port) {
            return port;
        }
    }
}

/// Waits until a TCP connection to `addr` succeeds.
///
/// # Panics
///
/// If nothing accepts a connection within `timeout`, with the last connect error.
pub fn wait_for_port(addr: SocketAddr, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let attempt = left
            .min(Duration::from_millis(250))
            .max(Duration::from_millis(1));
        let error = match TcpStream::connect_timeout(&addr, attempt) {
            Ok(_) => return,
            Err(error) => error,
        };
        if Instant::now() >= deadline {
            panic!("nothing accepted TCP connections on {addr} within {timeout:?}: {error}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_port_can_be_bound() {
        let port = free_port();
        assert_ne!(port, 0);
        TcpListener::bind(("127.0.0.1", port)).unwrap();
    }

    #[test]
    fn wait_for_port_returns_once_a_listener_appears() {
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let server = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            let listener = TcpListener::bind(addr).unwrap();
            let _ = listener.accept();
        });
        wait_for_port(addr, Duration::from_secs(10));
        server.join().unwrap();
    }

    #[test]
    #[should_panic(expected = "nothing accepted TCP connections")]
    fn wait_for_port_panics_when_nobody_listens() {
        wait_for_port(
            SocketAddr::from(([127, 0, 0, 1], free_port())),
            Duration::from_millis(200),
        );
    }
}
