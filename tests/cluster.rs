//! `clarion serve` as a cluster: several real nodes on one real broker
//! (`redis-server`, `nats-server -js`, started per test on free ports).
//! Publications, presence and recovery cross nodes; broker failures are
//! told to clients, never silent: each test checks the exact offsets the
//! application saw.

use std::time::Duration;

use clarion_tests::hub_server::{http_request, token, Client, Ended, HubServer, API_KEY};
use clarion_tests::services::{Backend, BrokerServer};
use serde_json::{json, Value};

/// The demo's `chat` namespace, with the publish rate lifted for the
/// tests' fast publishers.
const CONFIG: &str = r#"
[hub.rate_limits]
publishes_per_second = 0

[hub.namespaces.chat]
allow_publish = true
presence = true
join_leave = true
history_size = 1000
history_ttl = "10m"
allow_history = true
allow_anonymous = true
"#;

/// A node of the cluster on `broker`, named `name`.
fn node(broker: &BrokerServer, name: &str) -> HubServer {
    let url = broker.url();
    HubServer::start(Some(CONFIG), &["--broker", &url, "--node-name", name])
}

fn offset(push: &Value) -> u64 {
    push["offset"].as_u64().expect("an offset")
}

async fn publications_cross_nodes(backend: Backend) {
    let broker = BrokerServer::start(backend);
    let (a, b) = (node(&broker, "a"), node(&broker, "b"));
    let mut on_a = Client::connect(&a.ws_url(), None).await;
    on_a.ok("subscribe", json!({"channel": "chat:x"})).await;
    let mut on_b = Client::connect(&b.ws_url(), None).await;
    let sent = on_b
        .ok("publish", json!({"channel": "chat:x", "data": "from b"}))
        .await;
    let got = on_a.push_of("publication", "chat:x").await;
    assert_eq!((&got["data"], offset(&got)), (&json!("from b"), 1));
    assert_eq!(got["epoch"], sent["epoch"]);
    b.publish("chat:x", json!("from b's API")).await;
    let got = on_a.push_of("publication", "chat:x").await;
    assert_eq!((&got["data"], offset(&got)), (&json!("from b's API"), 2));

    // `info` on either node sees both.
    let (status, info) = a.api("info", Some(API_KEY), "{}").await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["result"]["node"]["name"], "a");
    assert_eq!(info["result"]["broker"]["healthy"], true, "{info}");
    let names = |info: &Value| -> Vec<String> {
        let nodes = info["result"]["nodes"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut names: Vec<String> = nodes
            .iter()
            .map(|n| n["name"].as_str().unwrap_or_default().to_owned())
            .collect();
        names.sort();
        names
    };
    for _ in 0..50 {
        if names(&a.api("info", Some(API_KEY), "{}").await.1) == ["a", "b"] {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("node a never saw b: {info}");
}

#[tokio::test]
async fn publications_cross_nodes_on_redis() {
    publications_cross_nodes(Backend::Redis).await;
}

#[tokio::test]
async fn publications_cross_nodes_on_nats() {
    publications_cross_nodes(Backend::Nats).await;
}

async fn recovery_on_another_node_is_exact(backend: Backend) {
    let broker = BrokerServer::start(backend);
    let (a, b) = (node(&broker, "a"), node(&broker, "b"));
    let mut client = Client::connect(&a.ws_url(), None).await;
    client.ok("subscribe", json!({"channel": "chat:r"})).await;
    a.publish("chat:r", json!(1)).await;
    let last = client.push_of("publication", "chat:r").await;
    let (seen, epoch) = (offset(&last), last["epoch"].clone());
    client.close().await;
    for n in 2..=6 {
        a.publish("chat:r", json!(n)).await;
    }
    let mut again = Client::connect(&b.ws_url(), None).await;
    let params = json!({"channel": "chat:r", "recover": true, "offset": seen, "epoch": epoch});
    let result = again.ok("subscribe", params).await;
    assert_eq!(result["recovered"], true, "{result}");
    let offsets: Vec<u64> = result["publications"]
        .as_array()
        .unwrap()
        .iter()
        .map(offset)
        .collect();
    assert_eq!(offsets, [2, 3, 4, 5, 6], "{result}");
    b.publish("chat:r", json!(7)).await;
    assert_eq!(offset(&again.push_of("publication", "chat:r").await), 7);
}

#[tokio::test]
async fn recovery_on_another_node_is_exact_on_redis() {
    recovery_on_another_node_is_exact(Backend::Redis).await;
}

#[tokio::test]
async fn recovery_on_another_node_is_exact_on_nats() {
    recovery_on_another_node_is_exact(Backend::Nats).await;
}

async fn presence_crosses_nodes(backend: Backend) {
    let broker = BrokerServer::start(backend);
    let (a, b) = (node(&broker, "a"), node(&broker, "b"));
    let mut alice = Client::connect(&a.ws_url(), None).await;
    alice.ok("subscribe", json!({"channel": "chat:p"})).await;
    let mut bob = Client::connect(&b.ws_url(), None).await;
    bob.ok("subscribe", json!({"channel": "chat:p"})).await;
    let bob_id = bob.connected["result"]["client"].clone();
    let join = loop {
        let push = alice.push_of("join", "chat:p").await;
        if push["info"]["client"] == bob_id {
            break push;
        }
    };
    assert_eq!(join["info"]["client"], bob_id);
    let presence = alice.ok("presence", json!({"channel": "chat:p"})).await;
    assert_eq!(
        presence["clients"].as_array().unwrap().len(),
        2,
        "{presence}"
    );
    let stats = bob.ok("presence_stats", json!({"channel": "chat:p"})).await;
    assert_eq!(stats["num_clients"], 2, "{stats}");
    bob.close().await;
    let leave = alice.push_of("leave", "chat:p").await;
    assert_eq!(leave["info"]["client"], bob_id);
}

#[tokio::test]
async fn presence_and_join_leave_cross_nodes_on_redis() {
    presence_crosses_nodes(Backend::Redis).await;
}

#[tokio::test]
async fn presence_and_join_leave_cross_nodes_on_nats() {
    presence_crosses_nodes(Backend::Nats).await;
}

/// Reads pushes of `channel` until `until` returns true for one.
async fn until_push(client: &mut Client, until: impl Fn(&Value) -> bool) -> Vec<Value> {
    let mut seen = Vec::new();
    loop {
        let push = client.push().await;
        let done = until(&push);
        seen.push(push);
        if done {
            return seen;
        }
    }
}

async fn a_broker_restart_is_told_to_subscribers(backend: Backend) {
    let mut broker = BrokerServer::start(backend);
    let a = node(&broker, "a");
    let mut client = Client::connect(&a.ws_url(), None).await;
    let sub = client
        .ok("subscribe", json!({"channel": "chat:lost"}))
        .await;
    a.publish("chat:lost", json!(1)).await;
    let first = client.push_of("publication", "chat:lost").await;
    assert_eq!(first["epoch"], sub["epoch"]);

    broker.kill();
    let body = json!({"channel": "chat:lost", "data": 2}).to_string();
    let (status, reply) = a.api("publish", Some(API_KEY), &body).await;
    assert_eq!(status, 503, "{reply}");
    assert_eq!(reply["error"]["temporary"], true, "{reply}");
    let (status, _) = http_request(&a.addr, "GET", "/readyz", "", "").await;
    assert_eq!(status, 503, "/readyz while the broker is down");

    broker.restart_empty();
    // The stream is gone: the subscriber is told, not switched silently.
    let seen = until_push(&mut client, |p| p["push"] == "unsubscribe").await;
    let told = seen.last().unwrap();
    assert_eq!(
        (told["code"].as_u64(), told["resubscribe"].as_bool()),
        (Some(2500), Some(true))
    );
    assert!(
        seen.iter().all(|p| p["push"] != "publication"),
        "no publication of a new stream before the unsubscribe: {seen:?}"
    );
    let params =
        json!({"channel": "chat:lost", "recover": true, "offset": 1, "epoch": first["epoch"]});
    let again = client.ok("subscribe", params).await;
    assert_eq!(again["recovered"], false, "{again}");
    assert_ne!(again["epoch"], first["epoch"]);
    let mut ready = false;
    for _ in 0..50 {
        if http_request(&a.addr, "GET", "/readyz", "", "").await.0 == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "/readyz back to 200 once the broker is back");
}

#[tokio::test]
async fn a_redis_restart_is_told_to_subscribers_and_publishes_fail_meanwhile() {
    a_broker_restart_is_told_to_subscribers(Backend::Redis).await;
}

#[tokio::test]
async fn a_nats_restart_that_lost_its_store_is_told_to_subscribers() {
    a_broker_restart_is_told_to_subscribers(Backend::Nats).await;
}

#[tokio::test]
async fn a_cut_pubsub_connection_loses_nothing_and_disconnects_nobody() {
    let broker = BrokerServer::start(Backend::Redis);
    let (a, b) = (node(&broker, "a"), node(&broker, "b"));
    let mut client = Client::connect(&a.ws_url(), None).await;
    client.ok("subscribe", json!({"channel": "chat:cut"})).await;
    let total = 300u64;
    let publisher = {
        let url = b.ws_url();
        tokio::spawn(async move {
            let mut publisher = Client::connect(&url, None).await;
            for n in 1..=total {
                let params = json!({"channel": "chat:cut", "data": n});
                publisher.ok("publish", params).await;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    let killed = broker.redis_cli(&["CLIENT", "KILL", "TYPE", "pubsub"]);
    assert_ne!(killed.trim(), "0", "no pub/sub connection to kill");
    let mut offsets = Vec::new();
    while offsets.len() < total as usize {
        let push = client.push().await;
        match push["push"].as_str() {
            Some("publication") => offsets.push(offset(&push)),
            Some("join" | "leave") => {}
            _ => panic!("nobody is told anything but publications: {push}"),
        }
    }
    publisher.await.unwrap();
    assert_eq!(offsets, (1..=total).collect::<Vec<_>>());
    let (_, info) = a.api("info", Some(API_KEY), "{}").await;
    assert_eq!(info["result"]["gaps_unrecovered"], 0, "{info}");
}

#[tokio::test]
async fn the_api_disconnects_a_user_on_every_node() {
    let broker = BrokerServer::start(Backend::Redis);
    let (a, b) = (node(&broker, "a"), node(&broker, "b"));
    let bob = token(&["--user", "bob"]);
    let mut on_a = Client::connect(&a.ws_url(), Some(&bob)).await;
    let mut on_b = Client::connect(&b.ws_url(), Some(&bob)).await;
    let mut carol = Client::connect(&b.ws_url(), Some(&token(&["--user", "carol"]))).await;
    let body = json!({"user": "bob"}).to_string();
    let (status, reply) = a.api("disconnect", Some(API_KEY), &body).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        reply["result"]["disconnected"], 1,
        "the count is this node's"
    );
    for client in [&mut on_a, &mut on_b] {
        let (seen, ended) = client.until_closed().await;
        assert_eq!(seen.last().unwrap()["code"], 4502, "{seen:?}");
        assert!(matches!(ended, Ended::Closed(4502, _)), "{ended:?}");
    }
    carol.ok("ping", json!({})).await;
}
