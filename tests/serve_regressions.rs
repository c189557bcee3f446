//! Regressions found by a client written from the docs alone (issue 10),
//! each against the real `clarion serve`: subscription-token expiry and
//! `sub_refresh`, the data depth limit on every path, `/readyz` during
//! shutdown, `--check-config` listing every problem, publishing into
//! token-guarded namespaces, command ids out of range, command rate
//! limits and the per-user connection limit.

use std::time::Duration;

use clarion_tests::hub_server::{http_request, token, Client, Ended, HubServer, API_KEY};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A namespace guarded by subscription tokens, where clients may publish.
const PRIVATE: &str = r#"
[hub.namespaces.private]
require_subscription_token = true
allow_publish = true
history_size = 10
history_ttl = "10m"
allow_history = true
"#;

/// JSON nested `depth` levels deep: `[[[...1...]]]`.
fn nested(depth: usize) -> Value {
    let mut value = json!(1);
    for _ in 0..depth {
        value = json!([value]);
    }
    value
}

/// A publish body with data nested `depth` levels, as text (a `Value`
/// that deep could not be parsed back by serde_json).
fn raw_publish_body(channel: &str, depth: usize) -> String {
    let data = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
    format!(r#"{{"channel":"{channel}","data":{data}}}"#)
}

#[tokio::test]
async fn an_expired_subscription_token_ends_the_subscription_with_2501() {
    let server = HubServer::start(Some(PRIVATE), &[]);
    let alice = token(&["--user", "alice"]);
    let mut client = Client::connect(&server.ws_url(), Some(&alice)).await;
    let short = token(&["--user", "alice", "--channel", "private:a", "--ttl", "2s"]);
    let result = client
        .ok("subscribe", json!({"channel": "private:a", "token": short}))
        .await;
    let ttl = result["ttl"]
        .as_u64()
        .expect("the reply says when it expires");
    assert!(ttl <= 2, "{result}");

    let ended = client.push_of("unsubscribe", "private:a").await;
    assert_eq!(ended["code"], 2501, "{ended}");
    assert_eq!(ended["resubscribe"], true, "{ended}");
    server.publish("private:a", json!("after expiry")).await;
    assert!(
        client.quiet_for(Duration::from_millis(500)).await,
        "a publication reached an expired subscription"
    );
    // The client can come back with a fresh token and recover.
    let fresh = token(&["--user", "alice", "--channel", "private:a", "--ttl", "1h"]);
    let again = client
        .ok("subscribe", json!({"channel": "private:a", "token": fresh}))
        .await;
    assert_eq!(again["offset"], 1, "{again}");
}

#[tokio::test]
async fn sub_refresh_keeps_the_subscription_past_the_first_token() {
    let server = HubServer::start(Some(PRIVATE), &[]);
    let alice = token(&["--user", "alice"]);
    let mut client = Client::connect(&server.ws_url(), Some(&alice)).await;
    let short = token(&["--user", "alice", "--channel", "private:r", "--ttl", "2s"]);
    client
        .ok("subscribe", json!({"channel": "private:r", "token": short}))
        .await;

    let other_channel = token(&["--user", "alice", "--channel", "private:x", "--ttl", "1h"]);
    let params = json!({"channel": "private:r", "token": other_channel});
    let reply = client.command("sub_refresh", params).await;
    assert_eq!(reply["error"]["code"], 401, "{reply}");
    let not_subscribed = json!({"channel": "private:x", "token": "x"});
    let reply = client.command("sub_refresh", not_subscribed).await;
    assert_eq!(reply["error"]["code"], 410, "{reply}");

    let long = token(&["--user", "alice", "--channel", "private:r", "--ttl", "1h"]);
    let refreshed = client
        .ok(
            "sub_refresh",
            json!({"channel": "private:r", "token": long}),
        )
        .await;
    assert!(refreshed["ttl"].as_u64().unwrap() > 3000, "{refreshed}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    server.publish("private:r", json!("still here")).await;
    let push = client.push().await;
    assert_eq!(push["push"], "publication", "{push}");
    assert_eq!(push["data"], "still here");
}

#[tokio::test]
async fn data_nested_deeper_than_the_limit_is_refused_on_every_path() {
    let server = HubServer::start(None, &[]);
    let mut client = Client::connect(&server.ws_url(), None).await;
    client
        .ok("subscribe", json!({"channel": "chat:deep"}))
        .await;

    let too_deep = json!({"channel": "chat:deep", "data": nested(65)});
    let reply = client.command("publish", too_deep).await;
    assert_eq!(reply["error"]["code"], 400, "{reply}");
    assert!(reply["error"]["message"].as_str().unwrap().contains("64"));
    let body = raw_publish_body("chat:deep", 1000);
    let (status, reply) = server.api("publish", Some(API_KEY), &body).await;
    assert_eq!(status, 400, "{reply}");
    assert_eq!(reply["error"]["temporary"], false, "{reply}");

    let deepest = json!({"channel": "chat:deep", "data": nested(64)});
    client.ok("publish", deepest).await;
    let push = client.push_of("publication", "chat:deep").await;
    assert_eq!(push["data"], nested(64));
    // Nothing else was published: the refused ones left no trace.
    let history = json!({"channel": "chat:deep", "limit": 10}).to_string();
    let (status, page) = server.api("history", Some(API_KEY), &history).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["result"]["publications"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn api_history_passes_accepted_data_through_untouched() {
    // With a raised limit, data deeper than serde_json's 128 levels is
    // accepted, and the API returns it rather than a 500 that says retry.
    let config = "[hub]\nmax_data_depth = 300\n[hub.namespaces.chat]\nhistory_size = 5\nhistory_ttl = \"10m\"\n";
    let server = HubServer::start(Some(config), &[]);
    let body = raw_publish_body("chat:raw", 200);
    let (status, reply) = server.api("publish", Some(API_KEY), &body).await;
    assert_eq!(status, 200, "{reply}");
    let (status, page) = http_request(
        &server.addr,
        "POST",
        "/api/history",
        &format!("Authorization: apikey {API_KEY}\r\n"),
        r#"{"channel":"chat:raw","limit":5}"#,
    )
    .await;
    assert_eq!(status, 200, "{page}");
    let data = format!("{}1{}", "[".repeat(200), "]".repeat(200));
    assert!(page.contains(&data), "{page}");
}

/// Sends `GET /readyz` on an open keep-alive connection; the status and
/// whether the server asked to close the connection.
async fn readyz_on(stream: &mut tokio::net::TcpStream) -> (u16, bool) {
    let request = "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n";
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .expect("a response in time")
        .unwrap();
    let head = String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase();
    let status = head[9..12].parse().unwrap();
    (status, head.contains("connection: close"))
}

#[tokio::test]
async fn readyz_answers_503_for_the_whole_shutdown_window() {
    let mut server = HubServer::start(None, &["--shutdown-delay", "2s"]);
    let mut client = Client::connect(&server.ws_url(), None).await;
    let mut probe = tokio::net::TcpStream::connect(&server.addr).await.unwrap();
    assert_eq!(readyz_on(&mut probe).await, (200, false));

    server.terminate();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The probe's open keep-alive connection gets an answer, not a reset.
    assert_eq!(readyz_on(&mut probe).await, (503, true));
    // So does a new connection, while clients are still connected.
    let (status, body) = http_request(&server.addr, "GET", "/readyz", "", "").await;
    assert_eq!((status, body.as_str()), (503, "shutting down\n"));
    client.ok("ping", json!({})).await;
    // After the delay, clients are told to go away.
    let (seen, ended) = client.until_closed().await;
    assert_eq!(seen.last().unwrap()["code"], 4000);
    assert!(matches!(ended, Ended::Closed(1001, _)), "{ended:?}");
    assert!(server
        .wait(Duration::from_secs(15))
        .is_some_and(|s| s.success()));
}

#[test]
fn check_config_lists_every_problem_including_parse_errors() {
    use clarion_tests::harness::{clarion_bin, run};
    let path = std::env::temp_dir().join(format!("clarion-check-all-{}.toml", std::process::id()));
    let text = "listne = \"127.0.0.1:1\"\nshutdown_timeout = \"soon\"\n[api]\nkey = \"\"\n[websocket]\nmax_conections = 5\n[hub.namespaces.x]\nhistory_size = 5\n";
    std::fs::write(&path, text).unwrap();
    let mut cmd = std::process::Command::new(clarion_bin());
    cmd.args(["serve", "--check-config", "--config"]).arg(&path);
    let finished = run(&mut cmd, Duration::from_secs(30));
    let _ = std::fs::remove_file(&path);
    assert_eq!(finished.status.code(), Some(1), "{}", finished.report());
    for problem in [
        "listne",
        "shutdown_timeout",
        "websocket.max_conections",
        "api.key",
        "history_ttl",
    ] {
        assert!(
            finished.stderr.contains(problem),
            "{problem}: {}",
            finished.report()
        );
    }
}

#[tokio::test]
async fn publishing_into_a_token_namespace_needs_the_subscription() {
    let server = HubServer::start(Some(PRIVATE), &[]);
    let alice = token(&["--user", "alice"]);
    let mut client = Client::connect(&server.ws_url(), Some(&alice)).await;
    let params = json!({"channel": "private:w", "data": "sneaky"});
    let reply = client.command("publish", params.clone()).await;
    assert_eq!(reply["error"]["code"], 403, "{reply}");

    let sub = token(&["--user", "alice", "--channel", "private:w"]);
    client
        .ok("subscribe", json!({"channel": "private:w", "token": sub}))
        .await;
    let published = client.ok("publish", params).await;
    assert_eq!(published["offset"], 1, "the refused publish left no trace");
}

#[tokio::test]
async fn command_ids_out_of_range_get_a_4500_disconnect() {
    let server = HubServer::start(None, &[]);
    for id in ["4294967296", "-1", "1.5"] {
        let mut client = Client::connect(&server.ws_url(), None).await;
        client
            .send_raw(&format!(r#"{{"id":{id},"method":"ping"}}"#))
            .await;
        let (seen, ended) = client.until_closed().await;
        assert_eq!(seen.last().unwrap()["code"], 4500, "id {id}: {seen:?}");
        assert!(matches!(ended, Ended::Closed(4500, _)), "{ended:?}");
    }
}

#[tokio::test]
async fn publishing_over_the_rate_gets_429_then_a_4008_disconnect() {
    let config = "[hub.rate_limits]\npublishes_per_second = 1\npublish_burst = 2\nmax_refused = 3\n[hub.namespaces.chat]\nallow_publish = true\nallow_anonymous = true\n";
    let server = HubServer::start(Some(config), &[]);
    let mut client = Client::connect(&server.ws_url(), None).await;
    let params = json!({"channel": "chat:fast", "data": 1});
    client.ok("publish", params.clone()).await;
    client.ok("publish", params.clone()).await;
    let reply = client.command("publish", params.clone()).await;
    assert_eq!(reply["error"]["code"], 429, "{reply}");
    assert_eq!(reply["error"]["temporary"], true, "{reply}");
    // Other commands have their own budget.
    client.ok("ping", json!({})).await;

    for _ in 0..3 {
        let command = json!({"id": 99, "method": "publish", "params": params});
        client.send_raw(&command.to_string()).await;
    }
    let (seen, ended) = client.until_closed().await;
    let refused = seen.iter().filter(|m| m["error"]["code"] == 429).count();
    assert_eq!(refused, 2, "{seen:?}");
    assert_eq!(seen.last().unwrap()["code"], 4008, "{seen:?}");
    assert_eq!(seen.last().unwrap()["reconnect"], true, "{seen:?}");
    assert!(matches!(ended, Ended::Closed(4008, _)), "{ended:?}");
}

#[tokio::test]
async fn a_user_over_the_connection_limit_is_refused_with_4505() {
    let config = "[hub]\nmax_connections_per_user = 2\n";
    let server = HubServer::start(Some(config), &[]);
    let bob = token(&["--user", "bob"]);
    let _first = Client::connect(&server.ws_url(), Some(&bob)).await;
    let second = Client::connect(&server.ws_url(), Some(&bob)).await;
    let mut third = Client::open(&server.ws_url(), None).await.unwrap();
    let connect = json!({"id": 1, "method": "connect", "params": {"token": bob}});
    third.send_raw(&connect.to_string()).await;
    let (seen, ended) = third.until_closed().await;
    assert_eq!(seen.last().unwrap()["code"], 4505, "{seen:?}");
    assert!(matches!(ended, Ended::Closed(4505, _)), "{ended:?}");
    // Another user is not affected, and a closed session frees its place.
    let carol = token(&["--user", "carol"]);
    Client::connect(&server.ws_url(), Some(&carol)).await;
    second.close().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    Client::connect(&server.ws_url(), Some(&bob)).await;
}

#[tokio::test]
async fn a_retried_publish_with_its_idempotency_key_is_stored_and_delivered_once() {
    let server = HubServer::start(None, &[]);
    let mut subscriber = Client::connect(&server.ws_url(), None).await;
    subscriber
        .ok("subscribe", json!({"channel": "chat:once"}))
        .await;
    let mut publisher = Client::connect(&server.ws_url(), None).await;
    let params = json!({"channel": "chat:once", "data": "hi", "idempotency_key": "k-1"});
    let first = publisher.ok("publish", params.clone()).await;
    let retry = publisher.ok("publish", params).await;
    assert_eq!(first, retry, "a retry answers with the first result");
    // Through the API with the same key: the same publication again.
    let body = json!({"channel": "chat:once", "data": "hi", "idempotency_key": "k-1"});
    let (status, reply) = server
        .api("publish", Some(API_KEY), &body.to_string())
        .await;
    assert_eq!((status, &reply["result"]), (200, &first), "{reply}");
    let other = json!({"channel": "chat:once", "data": "again", "idempotency_key": "k-2"});
    let second = publisher.ok("publish", other).await;
    assert_eq!(second["offset"], first["offset"].as_u64().unwrap() + 1);

    let got = subscriber.push_of("publication", "chat:once").await;
    assert_eq!(got["data"], "hi");
    let got = subscriber.push_of("publication", "chat:once").await;
    assert_eq!(got["data"], "again", "the retries were not delivered");

    let too_long = json!({"channel": "chat:once", "data": 1, "idempotency_key": "x".repeat(65)});
    let reply = publisher.command("publish", too_long).await;
    assert_eq!(reply["error"]["code"], 400, "{reply}");
}

/// Opens a WebSocket to `url` with `X-Forwarded-For: forwarded`, kept in
/// `open`; the HTTP status of a refusal, or None when it opened.
async fn open_forwarded_for(
    open: &mut Vec<clarion_ws::WebSocket<clarion_ws::ClientStream>>,
    url: &str,
    forwarded: &str,
) -> Option<u16> {
    let mut options = clarion_ws::ConnectOptions::default();
    let value = http::HeaderValue::from_str(forwarded).unwrap();
    options.headers.insert("x-forwarded-for", value);
    let config = clarion_ws::Config::default();
    let connect = clarion_ws::connect_with(url, &config, &options);
    match tokio::time::timeout(Duration::from_secs(10), connect).await {
        Ok(Ok((ws, _))) => {
            open.push(ws);
            None
        }
        Ok(Err(e)) => e.http_status().map(|s| s.as_u16()),
        Err(_) => panic!("handshake timeout"),
    }
}

#[tokio::test]
async fn per_ip_limits_see_the_client_behind_a_trusted_proxy_only() {
    let config = "[websocket]\nmax_connections_per_ip = 1\n";
    let mut open = Vec::new();
    let trusting = HubServer::start(Some(config), &["--trusted-proxy", "127.0.0.0/8"]);
    let url = trusting.ws_url();
    assert_eq!(
        open_forwarded_for(&mut open, &url, "203.0.113.1").await,
        None
    );
    assert_eq!(
        open_forwarded_for(&mut open, &url, "203.0.113.2").await,
        None
    );
    let again = open_forwarded_for(&mut open, &url, "203.0.113.1").await;
    assert_eq!(again, Some(429));
    // A client cannot dodge the limit by prepending addresses of its own.
    let spoofed = "198.51.100.9, 203.0.113.2";
    assert_eq!(
        open_forwarded_for(&mut open, &url, spoofed).await,
        Some(429)
    );

    let untrusting = HubServer::start(Some(config), &[]);
    let url = untrusting.ws_url();
    assert_eq!(
        open_forwarded_for(&mut open, &url, "203.0.113.1").await,
        None
    );
    let other = open_forwarded_for(&mut open, &url, "203.0.113.2").await;
    assert_eq!(
        other,
        Some(429),
        "headers from an untrusted peer are ignored"
    );
}
