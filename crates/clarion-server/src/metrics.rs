//! Prometheus metrics (`GET /metrics`). Counters are recorded where things
//! happen; gauges of the hub's state are read from `Hub::info()` at scrape
//! time. The list, with meanings: `docs/server.md`.

use std::sync::OnceLock;

use clarion_hub::Hub;
use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// WebSocket connections accepted (upgraded) since start.
pub const CONNECTIONS_TOTAL: &str = "clarion_connections_total";
/// Sessions connected now.
pub const CONNECTIONS: &str = "clarion_connections";
/// Subscriptions of local sessions now.
pub const SUBSCRIPTIONS: &str = "clarion_subscriptions";
/// Channels with local subscribers now.
pub const CHANNELS: &str = "clarion_channels";
/// Client frames received.
pub const MESSAGES_IN: &str = "clarion_messages_in_total";
/// Frames sent to clients.
pub const MESSAGES_OUT: &str = "clarion_messages_out_total";
/// Bytes of client frames received.
pub const BYTES_IN: &str = "clarion_bytes_in_total";
/// Bytes of frames sent to clients (payloads).
pub const BYTES_OUT: &str = "clarion_bytes_out_total";
/// Publications and join/leave frames queued to sessions by the hub.
pub const DELIVERED: &str = "clarion_hub_delivered_total";
/// Sessions ended, by disconnect code (`code` label; `transport` when the
/// socket failed or the client closed first).
pub const DISCONNECTS: &str = "clarion_disconnects_total";
/// Error replies to client commands, by protocol error code (`code`).
pub const COMMAND_ERRORS: &str = "clarion_command_errors_total";
/// Sessions disconnected as slow consumers (their queued frames dropped).
pub const SLOW_CONSUMERS: &str = "clarion_slow_consumers_total";
/// Gaps in channels' live streams repaired from history.
pub const GAPS_REPAIRED: &str = "clarion_gaps_repaired_total";
/// Gaps history could not fill (subscribers got `unsubscribe` 2500).
pub const GAPS_UNRECOVERED: &str = "clarion_gaps_unrecovered_total";
/// Live nodes of the cluster as this node last heard of them (itself included).
pub const CLUSTER_NODES: &str = "clarion_cluster_nodes";
/// Upgrade requests refused, by HTTP status (`status` label).
pub const HANDSHAKE_REFUSED: &str = "clarion_handshake_refused_total";
/// Seconds from the upgrade request to the `connect` reply queued.
pub const HANDSHAKE_SECONDS: &str = "clarion_handshake_seconds";
/// Server API requests, by method and HTTP status.
pub const API_REQUESTS: &str = "clarion_api_requests_total";

const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Installs the process-wide recorder once; later calls share it.
pub fn install() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets(BUCKETS)
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder is installed: then ours just
            // renders nothing, which is still a valid exposition.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// The exposition text, with the hub's gauges refreshed first.
pub fn render(handle: &PrometheusHandle, hub: &Hub) -> String {
    let info = hub.info();
    gauge!(CONNECTIONS).set(info.clients as f64);
    gauge!(SUBSCRIPTIONS).set(info.subscriptions as f64);
    gauge!(CHANNELS).set(info.channels as f64);
    counter!(DELIVERED).absolute(info.delivered);
    counter!(SLOW_CONSUMERS).absolute(info.slow_consumers);
    counter!(GAPS_REPAIRED).absolute(info.gaps_repaired);
    counter!(GAPS_UNRECOVERED).absolute(info.gaps_unrecovered);
    gauge!(CLUSTER_NODES).set(hub.nodes().len() as f64);
    handle.render()
}

/// A frame received from a client.
pub(crate) fn frame_in(bytes: usize) {
    counter!(MESSAGES_IN).increment(1);
    counter!(BYTES_IN).increment(bytes as u64);
}

/// A frame sent to a client; an error reply is counted by its code.
pub(crate) fn frame_out(frame: &[u8]) {
    counter!(MESSAGES_OUT).increment(1);
    counter!(BYTES_OUT).increment(frame.len() as u64);
    if let Some(code) = error_code(frame) {
        counter!(COMMAND_ERRORS, "code" => code.to_owned()).increment(1);
    }
}

/// The code of an error reply (`{"id":N,"error":{"code":C,...`), found
/// without parsing: pushes (most frames) are ruled out by their first bytes.
fn error_code(frame: &[u8]) -> Option<&str> {
    const MARK: &[u8] = br#","error":{"code":"#;
    if !frame.starts_with(br#"{"id":"#) {
        return None;
    }
    let head = &frame[..frame.len().min(40)];
    let at = head.windows(MARK.len()).position(|w| w == MARK)? + MARK.len();
    let digits = frame[at..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    std::str::from_utf8(&frame[at..at + digits])
        .ok()
        .filter(|d| !d.is_empty())
}

/// A session ended with `code` (a disconnect code or `transport`).
pub(crate) fn disconnect(code: String) {
    counter!(DISCONNECTS, "code" => code).increment(1);
}

/// An upgrade request refused with `status`.
pub(crate) fn refused(status: u16) {
    counter!(HANDSHAKE_REFUSED, "status" => status.to_string()).increment(1);
}

/// A connection upgraded and connected after `seconds`.
pub(crate) fn connected(seconds: f64) {
    counter!(CONNECTIONS_TOTAL).increment(1);
    histogram!(HANDSHAKE_SECONDS).record(seconds);
}

/// A server API request answered.
pub(crate) fn api(method: &str, status: u16) {
    counter!(API_REQUESTS, "method" => method.to_owned(), "status" => status.to_string())
        .increment(1);
}

#[cfg(test)]
mod tests {
    #[test]
    fn error_codes_of_replies() {
        fn code(frame: &str) -> Option<&str> {
            super::error_code(frame.as_bytes())
        }
        assert_eq!(
            code(r#"{"id":7,"error":{"code":405,"message":"x"}}"#),
            Some("405")
        );
        assert_eq!(code(r#"{"id":7,"result":{}}"#), None);
        assert_eq!(
            code(r#"{"push":"publication","data":{"error":{"code":1}}}"#),
            None
        );
    }
}
