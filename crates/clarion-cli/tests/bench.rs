//! `clarion bench` end to end: each mode against a real `clarion echo`
//! process on loopback, with short runs, checking the JSON it prints; and
//! the failures it must report (an unreachable server, a wrong echo).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const CLARION: &str = env!("CARGO_BIN_EXE_clarion");

/// A `clarion echo` child process, killed on drop.
struct EchoServer {
    child: Child,
    url: String,
}

impl EchoServer {
    fn start() -> Self {
        let mut child = Command::new(CLARION)
            .args(["echo", "--listen", "127.0.0.1:0", "--no-deflate"])
            // A load generator is one client opening connections as fast as
            // it can: lift the per-IP admission limits meant for the Internet.
            .args(["--max-connections-per-ip", "100000"])
            .args(["--max-new-connections-per-second", "1000000"])
            .args(["--new-connection-burst", "1000000"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start clarion echo");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("first line");
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        EchoServer { child, url }
    }

    fn pid(&self) -> String {
        self.child.id().to_string()
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `clarion bench ARGS`, killing it after 30 s.
fn bench(args: &[&str]) -> Output {
    let mut child = Command::new(CLARION)
        .arg("bench")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start clarion bench");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("clarion bench {args:?} did not finish in 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

/// Runs a bench that must succeed and returns its one JSON line.
fn bench_json(args: &[&str]) -> Value {
    let output = bench(args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{args:?} failed: {stderr}");
    let stdout = String::from_utf8(output.stdout).expect("UTF-8 stdout");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "exactly one JSON line, got {stdout:?}");
    let json: Value = serde_json::from_str(lines[0]).expect("valid JSON");
    assert_eq!(json["tool"], "clarion-bench");
    assert_eq!(json["errors"], 0, "{json}");
    json
}

fn number(json: &Value, key: &str) -> f64 {
    json[key]
        .as_f64()
        .unwrap_or_else(|| panic!("`{key}` is not a number in {json}"))
}

/// p50 <= p99 <= max, all positive.
fn assert_sane_latency(json: &Value) {
    let latency = &json["latency_us"];
    let (p50, p99, max) = (
        number(latency, "p50"),
        number(latency, "p99"),
        number(latency, "max"),
    );
    assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "{latency}");
    assert!(
        number(latency, "p90") <= number(latency, "p999"),
        "{latency}"
    );
}

#[test]
fn echo_measures_throughput_latency_and_server_cpu() {
    let server = EchoServer::start();
    let pid = server.pid();
    let json = bench_json(&[
        "echo",
        &server.url,
        "--connections",
        "4",
        "--in-flight",
        "4",
        "--size",
        "100",
        "--duration",
        "1",
        "--warmup",
        "0.2",
        "--server-pid",
        &pid,
        "--threads",
        "1",
        "--json",
    ]);
    assert_eq!(json["mode"], "echo");
    assert_eq!(json["connections"], 4);
    assert!(number(&json, "messages") > 0.0);
    let rate = number(&json, "msgs_per_sec");
    assert!(
        (number(&json, "mb_per_sec") - rate * 100.0 / 1e6).abs() < 0.01,
        "{json}"
    );
    assert_sane_latency(&json);
    assert!(number(&json, "server_cpu_us_per_msg") > 0.0, "{json}");
    assert!(number(&json, "server_rss_kib") > 0.0, "{json}");
    assert!(number(&json, "client_cpu_cores") > 0.0, "{json}");
}

#[test]
fn echo_without_a_pid_reports_no_server_cpu() {
    let server = EchoServer::start();
    let json = bench_json(&[
        "echo",
        &server.url,
        "--connections",
        "2",
        "--binary",
        "--duration",
        "0.5",
        "--warmup",
        "0",
        "--threads",
        "2",
        "--json",
    ]);
    assert!(json["server_cpu_us_per_msg"].is_null());
    assert!(json["server_rss_kib"].is_null());
    assert_eq!(json["binary"], true);
    assert!(number(&json, "messages") > 0.0);
}

#[test]
fn latency_holds_the_rate_and_measures_from_the_intended_time() {
    let server = EchoServer::start();
    let pid = server.pid();
    let json = bench_json(&[
        "latency",
        &server.url,
        "--rate",
        "1000",
        "--connections",
        "4",
        "--duration",
        "1",
        "--warmup",
        "0.2",
        "--server-pid",
        &pid,
        "--json",
    ]);
    assert_eq!(json["mode"], "latency");
    // 1000 messages were due in the window: each is echoed or unanswered.
    let due = number(&json, "messages") + number(&json, "unanswered");
    assert!((999.0..=1001.0).contains(&due), "{json}");
    assert!(number(&json, "msgs_per_sec") > 900.0, "{json}");
    assert_sane_latency(&json);
    assert!(json["send_lag_us"]["p50"].is_number());
    assert!(number(&json, "server_cpu_us_per_msg") > 0.0, "{json}");
}

#[test]
fn idle_reports_memory_per_connection() {
    let server = EchoServer::start();
    let pid = server.pid();
    let json = bench_json(&[
        "idle",
        &server.url,
        "--connections",
        "200",
        "--hold",
        "0.5",
        "--server-pid",
        &pid,
        "--source-ips",
        "127.0.0.1-127.0.0.4",
        "--json",
    ]);
    assert_eq!(json["mode"], "idle");
    assert_eq!(json["source_ips"], 4);
    assert!(number(&json, "bytes_per_connection") > 0.0, "{json}");
    let before = number(&json, "server_rss_before_kib");
    assert!(number(&json, "server_rss_kib") > before, "{json}");
    assert!(number(&json, "server_rss_after_close_kib") > 0.0, "{json}");
}

#[test]
fn connect_rate_counts_handshakes() {
    let server = EchoServer::start();
    let pid = server.pid();
    let json = bench_json(&[
        "connect-rate",
        &server.url,
        "--duration",
        "1",
        "--warmup",
        "0.2",
        "--concurrency",
        "4",
        "--server-pid",
        &pid,
        "--json",
    ]);
    assert_eq!(json["mode"], "connect-rate");
    assert!(number(&json, "handshakes") > 0.0);
    assert!(number(&json, "handshakes_per_sec") > 0.0);
    assert_sane_latency(&json);
    assert!(number(&json, "server_cpu_us_per_handshake") > 0.0, "{json}");
}

#[test]
fn an_unreachable_server_fails_clearly() {
    // A port that was just free: nothing listens on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port();
    let url = format!("ws://127.0.0.1:{port}/");
    for mode in [
        &["echo", &url, "--duration", "1"][..],
        &["latency", &url, "--rate", "100", "--duration", "1"][..],
        &["idle", &url, "--connections", "10"][..],
        &["connect-rate", &url, "--duration", "1"][..],
    ] {
        let output = bench(&[mode, &["--json"]].concat());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{mode:?} succeeded");
        assert!(stderr.contains("cannot connect to"), "{mode:?}: {stderr}");
        assert!(stderr.contains("refused"), "{mode:?}: {stderr}");
        assert!(
            output.stdout.is_empty(),
            "no JSON for a run that never started"
        );
    }
}

#[test]
fn a_wrong_echo_is_an_error() {
    let url = fake_server(Some("nope"));
    let output = bench(&[
        "echo",
        &url,
        "--connections",
        "2",
        "--duration",
        "0.3",
        "--warmup",
        "0",
        "--json",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("differs"), "{stderr}");
    let json: Value = serde_json::from_slice(&output.stdout).expect("JSON even on failure");
    assert!(number(&json, "errors") > 0.0);
}

#[test]
fn a_server_that_never_answers_fails_the_run() {
    let url = fake_server(None);
    let output = bench(&["echo", &url, "--duration", "0.3", "--warmup", "0"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("no echo arrived"), "{stderr}");
}

/// A WebSocket server on a thread of its own that answers every message
/// with `reply`, or swallows it.
fn fake_server(reply: Option<&'static str>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    listener.set_nonblocking(true).expect("nonblocking");
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let config = clarion_ws::Config::default();
                    let Ok(mut ws) = clarion_ws::accept(tcp, &config).await else {
                        return;
                    };
                    while let Some(Ok(_)) = ws.recv().await {
                        let Some(reply) = reply else { continue };
                        if ws.send(reply).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
    });
    format!("ws://{addr}/")
}
