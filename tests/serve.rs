//! `clarion serve` end to end: the real binary on loopback, clients on
//! clarion-ws speaking `docs/protocol.md`, the server API over HTTP.
//! Every server is started per test (port 0) and killed by its guard.

use std::time::Duration;

use clarion_tests::hub_server::{
    http_request, token, token_signed_with, Client, Ended, HubServer, API_KEY,
};
use serde_json::{json, Value};

/// A config with a namespace whose history holds only 3 publications.
const SMALL_HISTORY: &str = r#"
[hub.namespaces.small]
allow_publish = true
allow_anonymous = true
history_size = 3
history_ttl = "10m"

[hub.namespaces.chat]
allow_publish = true
allow_anonymous = true
presence = true
join_leave = true
history_size = 100
history_ttl = "10m"
allow_history = true
"#;

fn position(value: &Value) -> (u64, String) {
    let offset = value["offset"].as_u64().expect("offset");
    let epoch = value["epoch"].as_str().expect("epoch").to_owned();
    (offset, epoch)
}

#[tokio::test]
async fn two_clients_in_one_channel_see_each_others_messages() {
    let server = HubServer::start(None, &[]);
    let mut alice = Client::connect(&server.ws_url(), None).await;
    let mut bob = Client::connect(&server.ws_url(), None).await;
    alice.ok("subscribe", json!({"channel": "chat:room"})).await;
    bob.ok("subscribe", json!({"channel": "chat:room"})).await;

    let sent = alice
        .ok(
            "publish",
            json!({"channel": "chat:room", "data": {"text": "hi bob"}}),
        )
        .await;
    let got = bob.push_of("publication", "chat:room").await;
    assert_eq!(got["data"], json!({"text": "hi bob"}));
    assert_eq!(got["offset"], sent["offset"]);
    assert_eq!(got["info"]["client"], alice.connected["result"]["client"]);

    bob.ok(
        "publish",
        json!({"channel": "chat:room", "data": {"text": "hi alice"}}),
    )
    .await;
    let got = alice.push_of("publication", "chat:room").await;
    assert_eq!(got["data"], json!({"text": "hi bob"}), "own message first");
    let got = alice.push_of("publication", "chat:room").await;
    assert_eq!(got["data"], json!({"text": "hi alice"}));
}

#[tokio::test]
async fn resubscribing_with_a_position_gets_exactly_the_missed_publications() {
    let server = HubServer::start(None, &[]);
    let mut client = Client::connect(&server.ws_url(), None).await;
    client.ok("subscribe", json!({"channel": "chat:r"})).await;
    for n in 1..=2 {
        server.publish("chat:r", json!({"n": n})).await;
    }
    client.push_of("publication", "chat:r").await;
    let last = client.push_of("publication", "chat:r").await;
    let (offset, epoch) = position(&last);
    client.close().await;

    for n in 3..=5 {
        server.publish("chat:r", json!({"n": n})).await;
    }
    let mut again = Client::connect(&server.ws_url(), None).await;
    let result = again
        .ok(
            "subscribe",
            json!({"channel": "chat:r", "recover": true, "offset": offset, "epoch": epoch}),
        )
        .await;
    assert_eq!(result["recovered"], true, "{result}");
    let missed: Vec<&Value> = result["publications"].as_array().unwrap().iter().collect();
    let data: Vec<&Value> = missed.iter().map(|p| &p["data"]["n"]).collect();
    assert_eq!(data, [&json!(3), &json!(4), &json!(5)], "{result}");
    let offsets: Vec<u64> = missed
        .iter()
        .map(|p| p["offset"].as_u64().unwrap())
        .collect();
    assert_eq!(offsets, [offset + 1, offset + 2, offset + 3]);
    // Live delivery continues right after the recovered ones: a duplicate
    // of one of them would come first and fail this.
    server.publish("chat:r", json!({"n": 6})).await;
    let live = again.push_of("publication", "chat:r").await;
    assert_eq!(live["offset"], offset + 4);
}

#[tokio::test]
async fn recovery_after_history_is_trimmed_says_not_recovered() {
    let server = HubServer::start(Some(SMALL_HISTORY), &[]);
    let first = server.publish("small:s", json!(1)).await;
    let (offset, epoch) = position(&first);
    for n in 2..=6 {
        server.publish("small:s", json!(n)).await;
    }
    let mut client = Client::connect(&server.ws_url(), None).await;
    let result = client
        .ok(
            "subscribe",
            json!({"channel": "small:s", "recover": true, "offset": offset, "epoch": epoch}),
        )
        .await;
    assert_eq!(result["recovered"], false, "{result}");
    assert!(
        result["publications"].as_array().is_none_or(Vec::is_empty),
        "{result}"
    );
    assert_eq!(result["offset"], 6);
}

#[tokio::test]
async fn recovery_after_a_server_restart_says_not_recovered() {
    let server = HubServer::start(None, &[]);
    let published = server.publish("chat:x", json!("before")).await;
    let (offset, epoch) = position(&published);
    let addr = server.addr.clone();
    server.terminate();
    let mut server = server;
    assert!(server
        .wait(Duration::from_secs(15))
        .is_some_and(|s| s.success()));
    drop(server);

    let server = HubServer::start_on(&addr, None, &[]);
    server.publish("chat:x", json!("after")).await;
    let mut client = Client::connect(&server.ws_url(), None).await;
    let result = client
        .ok(
            "subscribe",
            json!({"channel": "chat:x", "recover": true, "offset": offset, "epoch": epoch}),
        )
        .await;
    assert_eq!(result["recovered"], false, "{result}");
    assert_ne!(result["epoch"], json!(epoch));
}

#[tokio::test]
async fn presence_and_join_leave() {
    let server = HubServer::start(None, &[]);
    let alice_token = token(&["--user", "alice", "--info", r#"{"name":"Alice"}"#]);
    let bob_token = token(&["--user", "bob", "--ttl", "1h"]);
    let mut alice = Client::connect(&server.ws_url(), Some(&alice_token)).await;
    alice.ok("subscribe", json!({"channel": "chat:p"})).await;
    let own = alice.push_of("join", "chat:p").await;
    assert_eq!(own["info"]["user"], "alice");
    assert_eq!(own["info"]["info"], json!({"name": "Alice"}));

    let mut bob = Client::connect(&server.ws_url(), Some(&bob_token)).await;
    assert!(bob.connected["result"]["ttl"].as_u64().unwrap() > 3500);
    bob.ok("subscribe", json!({"channel": "chat:p"})).await;
    let join = alice.push_of("join", "chat:p").await;
    assert_eq!(join["info"]["user"], "bob");

    let presence = alice.ok("presence", json!({"channel": "chat:p"})).await;
    let mut users: Vec<&str> = presence["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["user"].as_str().unwrap())
        .collect();
    users.sort();
    assert_eq!(users, ["alice", "bob"]);
    let stats = alice
        .ok("presence_stats", json!({"channel": "chat:p"}))
        .await;
    assert_eq!(stats, json!({"num_clients": 2, "num_users": 2}));
    let (status, api) = server
        .api("presence_stats", Some(API_KEY), r#"{"channel":"chat:p"}"#)
        .await;
    assert_eq!((status, &api["result"]["num_users"]), (200, &json!(2)));

    bob.close().await;
    let leave = alice.push_of("leave", "chat:p").await;
    assert_eq!(leave["info"]["user"], "bob");
}

/// Connects with `token` and expects a `disconnect` push and close `code`.
async fn expect_refused(url: &str, token: Option<&str>, code: u16) {
    let mut client = Client::open(url, None).await.expect("handshake");
    let params = token.map_or(json!({}), |t| json!({"token": t}));
    client
        .send_raw(&json!({"id": 1, "method": "connect", "params": params}).to_string())
        .await;
    let (seen, ended) = client.until_closed().await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0]["push"], "disconnect");
    assert_eq!(seen[0]["code"], code, "{seen:?}");
    assert!(
        matches!(ended, Ended::Closed(c, _) if c == code),
        "{ended:?}"
    );
}

#[tokio::test]
async fn jwt_rejections_have_the_documented_codes() {
    let server = HubServer::start(None, &["--no-anonymous"]);
    let url = server.ws_url();
    let forged = token_signed_with("not-the-secret", &["--user", "mallory"]);
    expect_refused(&url, Some(&forged), 4501).await;
    expect_refused(&url, Some("not.a.token"), 4501).await;
    expect_refused(&url, None, 4501).await;
    let short = token(&["--user", "alice", "--ttl", "1s"]);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    expect_refused(&url, Some(&short), 4003).await;
    // A valid token still works.
    let good = token(&["--user", "alice"]);
    let client = Client::connect(&url, Some(&good)).await;
    assert!(client.connected["result"]["client"].is_string());
}

#[tokio::test]
async fn origins_off_the_allow_list_get_403() {
    let server = HubServer::start(None, &[]);
    let url = server.ws_url();
    let err = Client::open(&url, Some("http://evil.example")).await.err();
    let status = err.as_ref().and_then(|e| e.http_status());
    assert_eq!(status.map(|s| s.as_u16()), Some(403), "{err:?}");
    let port = server.addr.rsplit(':').next().unwrap();
    let own = format!("http://localhost:{port}");
    assert!(Client::open(&url, Some(&own)).await.is_ok());

    let open = HubServer::start(None, &["--allowed-origin", "*"]);
    assert!(Client::open(&open.ws_url(), Some("http://evil.example"))
        .await
        .is_ok());
}

#[tokio::test]
async fn http_api_with_and_without_the_key() {
    let server = HubServer::start(Some("[api]\nmax_body_bytes = 1024\n"), &[]);
    let body = r#"{"channel":"chat:api","data":{"x":1}}"#;
    let (status, reply) = server.api("publish", None, body).await;
    assert_eq!(status, 401, "{reply}");
    assert_eq!(reply["error"]["code"], 401);
    let (status, _) = server.api("publish", Some("wrong"), body).await;
    assert_eq!(status, 401);
    let (status, reply) = server.api("publish", Some(API_KEY), body).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["result"]["offset"], 1);

    let (status, reply) = server.api("teleport", Some(API_KEY), "{}").await;
    assert_eq!((status, &reply["error"]["code"]), (404, &json!(405)));
    let (status, reply) = server.api("publish", Some(API_KEY), "{not json").await;
    assert_eq!((status, &reply["error"]["code"]), (400, &json!(400)));
    let big = json!({"channel": "chat:api", "data": "x".repeat(2000)}).to_string();
    let (status, reply) = server.api("publish", Some(API_KEY), &big).await;
    assert_eq!((status, &reply["error"]["code"]), (413, &json!(413)));
    let (status, reply) = server
        .api("publish", Some(API_KEY), r#"{"channel":"nope:x","data":1}"#)
        .await;
    assert_eq!((status, &reply["error"]["code"]), (400, &json!(404)));

    let mut client = Client::connect(&server.ws_url(), None).await;
    client.ok("subscribe", json!({"channel": "chat:api"})).await;
    let history = r#"{"channel":"chat:api","limit":10}"#;
    let (status, reply) = server.api("history", Some(API_KEY), history).await;
    assert_eq!(status, 200);
    assert_eq!(reply["result"]["publications"][0]["data"], json!({"x": 1}));
    let (_, channels) = server.api("channels", Some(API_KEY), "").await;
    assert_eq!(
        channels["result"]["channels"],
        json!([{"channel": "chat:api", "num_clients": 1}])
    );
    let (_, info) = server.api("info", Some(API_KEY), "{}").await;
    assert_eq!(info["result"]["clients"], 1);
    let broadcast = r#"{"channels":["chat:api","nope:y"],"data":"b"}"#;
    let (status, reply) = server.api("broadcast", Some(API_KEY), broadcast).await;
    assert_eq!(status, 200);
    assert_eq!(reply["result"]["responses"][1]["error"]["code"], 404);
    client.push_of("publication", "chat:api").await;

    let reply = client
        .command("subscribe", json!({"channel": "nope:z"}))
        .await;
    assert_eq!(reply["error"]["code"], 404);
    let (status, body) = http_request(&server.addr, "GET", "/metrics", "", "").await;
    assert_eq!(status, 200);
    assert!(body.contains("clarion_api_requests_total"), "{body}");
    assert!(
        body.contains(r#"clarion_command_errors_total{code="404"} 1"#),
        "{body}"
    );
    assert!(body.contains("clarion_connections 1"), "{body}");
    let (status, _) = http_request(&server.addr, "GET", "/healthz", "", "").await;
    assert_eq!(status, 200);
    let (status, _) = http_request(&server.addr, "GET", "/readyz", "", "").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn api_disconnect_ends_the_users_sessions() {
    let server = HubServer::start(None, &[]);
    let mut carol = Client::connect(&server.ws_url(), Some(&token(&["--user", "carol"]))).await;
    let (status, reply) = server
        .api("disconnect", Some(API_KEY), r#"{"user":"carol"}"#)
        .await;
    assert_eq!((status, &reply["result"]["disconnected"]), (200, &json!(1)));
    let (seen, ended) = carol.until_closed().await;
    assert_eq!(seen.last().unwrap()["code"], 4502);
    assert!(matches!(ended, Ended::Closed(4502, _)), "{ended:?}");
}

#[tokio::test]
async fn malformed_and_oversized_commands_get_protocol_errors_not_a_crash() {
    let server = HubServer::start(None, &[]);
    let url = server.ws_url();

    let mut client = Client::connect(&url, None).await;
    let reply = client.command("teleport", json!({})).await;
    assert_eq!(reply["error"]["code"], 405, "{reply}");
    let reply = client.command("subscribe", json!({"chanel": "x"})).await;
    assert_eq!(reply["error"]["code"], 400, "{reply}");
    let reply = client
        .command("subscribe", json!({"channel": "nope:x"}))
        .await;
    assert_eq!(reply["error"]["code"], 404, "{reply}");
    client.ok("ping", json!({})).await;

    client.send_raw("this is not json").await;
    let (seen, ended) = client.until_closed().await;
    assert_eq!(seen.last().unwrap()["code"], 4500, "{seen:?}");
    assert!(matches!(ended, Ended::Closed(4500, _)), "{ended:?}");

    let mut early = Client::open(&url, None).await.unwrap();
    early.send_raw(r#"{"id":1,"method":"ping"}"#).await;
    let (_, ended) = early.until_closed().await;
    assert!(matches!(ended, Ended::Closed(4500, _)), "{ended:?}");

    let mut big = Client::connect(&url, None).await;
    let huge = json!({"id": 9, "method": "publish",
        "params": {"channel": "chat:a", "data": "x".repeat(70 * 1024)}});
    big.send_raw(&huge.to_string()).await;
    let (_, ended) = big.until_closed().await;
    assert!(matches!(ended, Ended::Closed(4503, _)), "{ended:?}");

    // Still serving.
    let mut after = Client::connect(&url, None).await;
    after.ok("ping", json!({})).await;
}

#[tokio::test]
async fn sigterm_closes_clients_with_1001_and_exits_0() {
    let mut server = HubServer::start(None, &[]);
    let mut client = Client::connect(&server.ws_url(), None).await;
    client.ok("subscribe", json!({"channel": "chat:bye"})).await;
    // Upgraded but not yet connected: closed the same way, not left waiting.
    let mut silent = Client::open(&server.ws_url(), None).await.unwrap();
    let started = std::time::Instant::now();
    server.terminate();
    let (_, ended) = silent.until_closed().await;
    assert!(matches!(ended, Ended::Closed(1001, _)), "{ended:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let (seen, ended) = client.until_closed().await;
    let last = seen.last().expect("a disconnect push");
    assert_eq!(
        (&last["push"], &last["code"]),
        (&json!("disconnect"), &json!(4000))
    );
    assert_eq!(last["reconnect"], true);
    assert!(matches!(ended, Ended::Closed(1001, _)), "{ended:?}");
    let status = server.wait(Duration::from_secs(15));
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}\n{}",
        server.stderr()
    );
}

#[test]
fn check_config_exits_0_or_1_with_the_errors() {
    use clarion_tests::harness::{clarion_bin, run};
    let dir = std::env::temp_dir();
    let good = dir.join(format!("clarion-check-good-{}.toml", std::process::id()));
    let bad = dir.join(format!("clarion-check-bad-{}.toml", std::process::id()));
    std::fs::write(&good, SMALL_HISTORY).unwrap();
    std::fs::write(
        &bad,
        "[hub.namespaces.x]\nhistory_size = 5\n[api]\nkey = \"\"\n",
    )
    .unwrap();
    let check = |path: &std::path::Path| {
        let mut cmd = std::process::Command::new(clarion_bin());
        cmd.args(["serve", "--check-config", "--config"]).arg(path);
        run(&mut cmd, Duration::from_secs(30))
    };
    let ok = check(&good);
    assert!(ok.status.success(), "{}", ok.report());
    let refused = check(&bad);
    assert_eq!(refused.status.code(), Some(1), "{}", refused.report());
    assert!(
        refused.stderr.contains("history_ttl"),
        "{}",
        refused.report()
    );
    assert!(refused.stderr.contains("api.key"), "{}", refused.report());
    let _ = (std::fs::remove_file(good), std::fs::remove_file(bad));
}

#[tokio::test]
async fn subscription_tokens_guard_protected_namespaces() {
    let config = "[hub.namespaces.private]\nrequire_subscription_token = true\n";
    let server = HubServer::start(Some(config), &[]);
    let alice = token(&["--user", "alice"]);
    let mut client = Client::connect(&server.ws_url(), Some(&alice)).await;
    let reply = client
        .command("subscribe", json!({"channel": "private:x"}))
        .await;
    assert_eq!(reply["error"]["code"], 403, "{reply}");
    let for_bob = token(&["--user", "bob", "--channel", "private:x"]);
    let params = json!({"channel": "private:x", "token": for_bob});
    let reply = client.command("subscribe", params).await;
    assert_eq!(reply["error"]["code"], 401, "{reply}");
    let forged = token_signed_with("wrong", &["--user", "alice", "--channel", "private:x"]);
    let params = json!({"channel": "private:x", "token": forged});
    let reply = client.command("subscribe", params).await;
    assert_eq!(reply["error"]["code"], 401, "{reply}");
    let good = token(&["--user", "alice", "--channel", "private:x"]);
    client
        .ok("subscribe", json!({"channel": "private:x", "token": good}))
        .await;
    server.publish("private:x", json!("secret")).await;
    let push = client.push_of("publication", "private:x").await;
    assert_eq!(push["data"], "secret");
}

#[tokio::test]
async fn tls_serves_wss() {
    let cert = clarion_test_support::self_signed_cert();
    let (cert_pem, key_pem) = (
        cert.cert_pem.to_str().unwrap(),
        cert.key_pem.to_str().unwrap(),
    );
    let server = HubServer::start(None, &["--tls-cert", cert_pem, "--tls-key", key_pem]);
    assert!(server.ws_url().starts_with("wss://"), "{}", server.ws_url());
    let mut client = Client::open_with(&server.ws_url(), None, Some(&cert.cert_pem))
        .await
        .expect("wss handshake");
    client.ok("connect", json!({})).await;
    client.ok("subscribe", json!({"channel": "chat:tls"})).await;
    client
        .ok(
            "publish",
            json!({"channel": "chat:tls", "data": "over TLS"}),
        )
        .await;
    assert_eq!(
        client.push_of("publication", "chat:tls").await["data"],
        "over TLS"
    );
}

#[tokio::test]
async fn recovery_after_history_expired_says_not_recovered() {
    let config = "[hub.namespaces.brief]\nallow_anonymous = true\nhistory_size = 100\nhistory_ttl = \"1s\"\n";
    let server = HubServer::start(Some(config), &[]);
    let first = server.publish("brief:b", json!(1)).await;
    let (offset, epoch) = position(&first);
    server.publish("brief:b", json!(2)).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut client = Client::connect(&server.ws_url(), None).await;
    let result = client
        .ok(
            "subscribe",
            json!({"channel": "brief:b", "recover": true, "offset": offset, "epoch": epoch}),
        )
        .await;
    assert_eq!(result["recovered"], false, "{result}");
    assert!(
        result["publications"].as_array().is_none_or(Vec::is_empty),
        "{result}"
    );
}

#[tokio::test]
async fn connections_per_ip_over_the_limit_get_429() {
    let config = "[websocket]\nmax_connections_per_ip = 2\n";
    let server = HubServer::start(Some(config), &[]);
    let url = server.ws_url();
    let first = Client::connect(&url, None).await;
    let _second = Client::connect(&url, None).await;
    let err = Client::open(&url, None).await.err();
    let status = err.as_ref().and_then(|e| e.http_status());
    assert_eq!(status.map(|s| s.as_u16()), Some(429), "{err:?}");
    // A place frees up when a connection ends.
    first.close().await;
    let mut again = None;
    for _ in 0..50 {
        if let Ok(client) = Client::open(&url, None).await {
            again = Some(client);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(again.is_some(), "no place after a close");
}
