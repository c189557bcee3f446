//! Three `clarion serve` nodes on one `redis-server`, behind nginx with
//! plain round-robin (`tests/src/nginx.rs`, the config `docs/cluster.md`
//! documents): clients land on different nodes and still see one stream,
//! one presence, and exact recovery when their node is killed. Every test
//! checks the exact offsets the application saw.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use clarion_tests::hub_server::{http_request, token, Client, HubServer, API_KEY};
use clarion_tests::nginx::{self, Nginx};
use clarion_tests::services::{Backend, BrokerServer};
use serde_json::{json, Value};
use tokio::sync::watch;

/// `chat`: history, presence and join/leave; `feed`: history only, room
/// for the load test's 3,000 publications. The publish rate is unlimited:
/// the load test publishes 1,000 a second from one session.
const CONFIG: &str = r#"
[hub.rate_limits]
publishes_per_second = 0

[hub.namespaces.feed]
allow_publish = true
history_size = 5000
history_ttl = "10m"
allow_history = true
allow_anonymous = true

[hub.namespaces.chat]
allow_publish = true
presence = true
join_leave = true
history_size = 100
history_ttl = "10m"
allow_history = true
allow_anonymous = true
"#;

/// Three nodes, their broker and nginx in front of them.
struct Cluster {
    nginx: Nginx,
    nodes: Vec<HubServer>,
    router: Router,
    _redis: BrokerServer,
}

impl Cluster {
    async fn start() -> Cluster {
        let redis = BrokerServer::start(Backend::Redis);
        let url = redis.url();
        let nodes: Vec<HubServer> = ["n1", "n2", "n3"]
            .iter()
            .map(|name| {
                let args = ["--broker", &url, "--node-name", name];
                // As docs/cluster.md runs them: the client's address from
                // nginx's X-Forwarded-For.
                let proxy = ["--trusted-proxy", "127.0.0.1"];
                HubServer::start(Some(CONFIG), &[&args[..], &proxy].concat())
            })
            .collect();
        let mut prefixes = Vec::new();
        for node in &nodes {
            let probe = Client::connect(&node.ws_url(), None).await;
            prefixes.push(prefix(&probe.connected["result"]["client"]));
            probe.close().await;
        }
        let upstreams: Vec<&str> = nodes.iter().map(|n| n.addr.as_str()).collect();
        let nginx = Nginx::start(&upstreams);
        let router = Router {
            ws_url: nginx.ws_url(),
            prefixes,
        };
        Cluster {
            nginx,
            nodes,
            router,
            _redis: redis,
        }
    }
}

/// How clients reach the cluster (through nginx) and tell which node
/// they landed on.
#[derive(Clone)]
struct Router {
    ws_url: String,
    /// Each node's client id prefix (a client id is `PREFIX-N`).
    prefixes: Vec<String>,
}

impl Router {
    /// The index of the node that gave out `client_id`.
    fn node_of(&self, client_id: &Value) -> usize {
        let prefix = prefix(client_id);
        self.prefixes
            .iter()
            .position(|p| *p == prefix)
            .unwrap_or_else(|| panic!("{client_id} is from no node of {:?}", self.prefixes))
    }

    /// A client connected through nginx, and the node it landed on.
    async fn client(&self, token: Option<&str>) -> (Client, usize) {
        let client = Client::connect(&self.ws_url, token).await;
        let node = self.node_of(&client.connected["result"]["client"]);
        (client, node)
    }
}

fn prefix(client_id: &Value) -> String {
    let id = client_id.as_str().expect("a client id");
    let (prefix, _) = id.rsplit_once('-').expect("a client id is PREFIX-N");
    prefix.to_owned()
}

fn offset(push: &Value) -> u64 {
    push["offset"].as_u64().expect("an offset")
}

#[test]
fn the_documented_nginx_config_is_the_one_tested() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/cluster.md"))
        .expect("docs/cluster.md");
    let (_, rest) = doc
        .split_once("```nginx\n")
        .expect("docs/cluster.md has an nginx block");
    let (documented, _) = rest.split_once("```").expect("the block ends");
    let tested = nginx::config(
        "127.0.0.1:8080",
        &["127.0.0.1:8101", "127.0.0.1:8102", "127.0.0.1:8103"],
    );
    assert_eq!(documented, tested);
}

#[tokio::test]
async fn round_robin_puts_subscriber_and_publisher_on_different_nodes() {
    let cluster = Cluster::start().await;
    let (mut subscriber, sub_node) = cluster.router.client(None).await;
    let (mut publisher, pub_node) = cluster.router.client(None).await;
    assert_ne!(sub_node, pub_node, "round-robin: two nodes for two clients");
    subscriber
        .ok("subscribe", json!({"channel": "chat:rr"}))
        .await;
    for n in 1..=100 {
        let params = json!({"channel": "chat:rr", "data": n});
        let reply = publisher.ok("publish", params).await;
        assert_eq!(reply["offset"], n, "{reply}");
    }
    // The server API through nginx too.
    let auth = format!("Authorization: apikey {API_KEY}\r\n");
    let body = json!({"channel": "chat:rr", "data": 101}).to_string();
    let (status, reply) =
        http_request(&cluster.nginx.addr, "POST", "/api/publish", &auth, &body).await;
    assert_eq!(status, 200, "{reply}");

    let mut seen = Vec::new();
    while seen.len() < 101 {
        let push = subscriber.push_of("publication", "chat:rr").await;
        assert_eq!(push["data"], offset(&push), "{push}");
        seen.push(offset(&push));
    }
    assert_eq!(seen, (1..=101).collect::<Vec<u64>>());

    // Whichever node answers `info` through nginx knows all three.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, info) = http_request(&cluster.nginx.addr, "POST", "/api/info", &auth, "{}").await;
        let info: Value = serde_json::from_str(&info).expect("info is JSON");
        let names: BTreeSet<&str> = info["result"]["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|n| n["name"].as_str())
            .collect();
        if names == BTreeSet::from(["n1", "n2", "n3"]) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "info never listed 3 nodes: {info}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn presence_and_join_leave_across_nodes_through_nginx() {
    let cluster = Cluster::start().await;
    let mut clients = Vec::new();
    for user in ["alice", "bob", "carol"] {
        let token = token(&["--user", user]);
        let (mut client, node) = cluster.router.client(Some(&token)).await;
        client.ok("subscribe", json!({"channel": "chat:p"})).await;
        clients.push((client, node, user));
    }
    let nodes: BTreeSet<usize> = clients.iter().map(|(_, node, _)| *node).collect();
    assert_eq!(nodes.len(), 3, "round-robin: one client per node");
    let ids: Vec<Value> = clients
        .iter()
        .map(|(c, _, _)| c.connected["result"]["client"].clone())
        .collect();

    // Alice, first in, hears bob and carol join from the other nodes.
    let alice = &mut clients[0].0;
    let mut joined = Vec::new();
    while joined.len() < 2 {
        let join = alice.push_of("join", "chat:p").await;
        if join["info"]["client"] != ids[0] {
            joined.push(join["info"]["user"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(joined, ["bob", "carol"]);

    for (client, _, _) in &mut clients {
        let presence = client.ok("presence", json!({"channel": "chat:p"})).await;
        let mut users: Vec<&str> = presence["clients"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["user"].as_str().unwrap())
            .collect();
        users.sort_unstable();
        assert_eq!(users, ["alice", "bob", "carol"], "{presence}");
        let stats = client
            .ok("presence_stats", json!({"channel": "chat:p"}))
            .await;
        assert_eq!(
            (stats["num_clients"].as_u64(), stats["num_users"].as_u64()),
            (Some(3), Some(3))
        );
    }

    let (carol, _, _) = clients.pop().unwrap();
    carol.close().await;
    for (client, _, _) in &mut clients {
        let leave = client.push_of("leave", "chat:p").await;
        assert_eq!(leave["info"]["client"], ids[2], "{leave}");
        let stats = client
            .ok("presence_stats", json!({"channel": "chat:p"}))
            .await;
        assert_eq!(stats["num_clients"], 2, "{stats}");
    }
}

/// What one reconnecting subscriber saw.
#[derive(Debug)]
struct Seen {
    /// Every publication's offset, live or recovered, in arrival order.
    offsets: Vec<u64>,
    /// The node of each connection, the first one included.
    nodes: Vec<usize>,
    /// Each resubscription: `recovered`, how many publications it
    /// recovered, and the time from reconnecting (after [`BACKOFF`]) to
    /// the subscribe reply.
    recoveries: Vec<(Value, usize, Duration)>,
}

/// How long a subscriber waits before reconnecting.
const BACKOFF: Duration = Duration::from_millis(200);

/// Where a subscriber is: its first node, and the last offset it saw.
type Progress = Option<(usize, u64)>;

/// A subscriber through nginx that, when its connection ends, reconnects
/// after [`BACKOFF`] (nginx picks a live node), resubscribes with recovery
/// from its last offset and epoch, and goes on until offset `last`.
async fn subscriber(
    router: Router,
    channel: &'static str,
    last: u64,
    progress: watch::Sender<Progress>,
) -> Seen {
    let (mut client, node) = router.client(None).await;
    let first = client.ok("subscribe", json!({ "channel": channel })).await;
    let epoch = first["epoch"].clone();
    let mut at = offset(&first);
    progress.send_replace(Some((node, at)));
    let mut seen = Seen {
        offsets: Vec::new(),
        nodes: vec![node],
        recoveries: Vec::new(),
    };
    while at < last {
        let push = match client.try_next().await {
            Ok(push) => push,
            Err(_ended) => {
                // A real client's backoff: publications go on meanwhile,
                // so the recovery has something to recover.
                tokio::time::sleep(BACKOFF).await;
                let reconnecting = Instant::now();
                let (again, node) = router.client(None).await;
                client = again;
                seen.nodes.push(node);
                let params =
                    json!({"channel": channel, "recover": true, "offset": at, "epoch": epoch});
                let result = client.ok("subscribe", params).await;
                let recovered = result["publications"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let entry = (
                    result["recovered"].clone(),
                    recovered.len(),
                    reconnecting.elapsed(),
                );
                seen.recoveries.push(entry);
                assert_eq!(result["recovered"], true, "{result}");
                seen.offsets.extend(recovered.iter().map(offset));
                at = seen.offsets.last().copied().unwrap_or(at);
                continue;
            }
        };
        assert_eq!(push["push"], "publication", "only publications: {push}");
        assert_eq!(push["epoch"], epoch, "{push}");
        at = offset(&push);
        seen.offsets.push(at);
        progress.send_replace(Some((node, at)));
    }
    seen
}

/// Publishes `total` publications into `channel` from one session at
/// about 1,000 a second (frames of 10 commands every 10 ms); returns the
/// offsets the replies gave, in order.
async fn publish_load(mut client: Client, channel: &str, total: u64) -> Vec<u64> {
    const BATCH: u64 = 10;
    let mut ticks = tokio::time::interval(Duration::from_millis(10));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut offsets = Vec::new();
    for batch in 0..total / BATCH {
        ticks.tick().await;
        let frame: Vec<String> = (1..=BATCH)
            .map(|i| {
                let id = 100 + batch * BATCH + i;
                let params = json!({"channel": channel, "data": id});
                json!({"id": id, "method": "publish", "params": params}).to_string()
            })
            .collect();
        client.send_raw(&frame.join("\n")).await;
        for _ in 0..BATCH {
            let reply = client.try_next().await.expect("the publisher's node is up");
            offsets.push(offset(&reply["result"]));
        }
    }
    client.close().await;
    offsets
}

/// Waits (at most 20 s) until `progress` satisfies `ready`; its value.
async fn until(
    progress: &mut watch::Receiver<Progress>,
    ready: impl FnMut(&Progress) -> bool,
) -> (usize, u64) {
    let wait = progress.wait_for(ready);
    let value = tokio::time::timeout(Duration::from_secs(20), wait)
        .await
        .expect("a subscriber stalled for 20 s")
        .expect("a subscriber task ended early");
    value.expect("subscribed")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_s_clients_recover_exactly_on_the_others() {
    const TOTAL: u64 = 3000;
    const CHANNEL: &str = "feed:load";
    let mut cluster = Cluster::start().await;

    // Six subscribers through nginx, two per node, each subscribed before
    // the first publication: each must see exactly 1..=TOTAL.
    let mut progress = Vec::new();
    let mut subscribers = Vec::new();
    for _ in 0..6 {
        let (tx, rx) = watch::channel(None);
        progress.push(rx);
        let router = cluster.router.clone();
        subscribers.push(tokio::spawn(subscriber(router, CHANNEL, TOTAL, tx)));
    }
    let mut first_nodes = Vec::new();
    for rx in &mut progress {
        first_nodes.push(until(rx, Option::is_some).await.0);
    }
    let mut per_node = [0; 3];
    first_nodes.iter().for_each(|&n| per_node[n] += 1);
    assert_eq!(per_node, [2, 2, 2], "round-robin: {first_nodes:?}");
    let victim = first_nodes[0];

    // The publisher is on a node that survives, straight, not via nginx.
    let publisher = Client::connect(&cluster.nodes[(victim + 1) % 3].ws_url(), None).await;
    let started = Instant::now();
    let publishing = tokio::spawn(publish_load(publisher, CHANNEL, TOTAL));

    // A third of the way in, kill -9 the node of the first subscriber.
    for rx in &mut progress {
        until(rx, |p| p.is_some_and(|(_, at)| at >= TOTAL / 3)).await;
    }
    cluster.nodes[victim].kill();
    let killed_at = started.elapsed();

    let published = publishing.await.expect("the publisher");
    let publish_time = started.elapsed();
    assert_eq!(published, (1..=TOTAL).collect::<Vec<u64>>());
    let everything: Vec<u64> = (1..=TOTAL).collect();
    for (i, task) in subscribers.into_iter().enumerate() {
        let seen = tokio::time::timeout(Duration::from_secs(20), task)
            .await
            .expect("a subscriber got everything within 20 s")
            .expect("the subscriber task");
        assert!(
            seen.offsets == everything,
            "subscriber {i}: not exactly 1..={TOTAL}: {:?}",
            gaps(&seen.offsets)
        );
        if seen.nodes[0] == victim {
            assert!(
                seen.nodes.len() >= 2,
                "subscriber {i} never reconnected: {seen:?}"
            );
            assert!(
                !seen.nodes[1..].contains(&victim),
                "reconnected to the dead node: {:?}",
                seen.nodes
            );
            // Recovered, with the publications missed during the backoff.
            let recovered_some = |(r, n, _): &(Value, usize, Duration)| *r == true && *n > 0;
            assert!(
                seen.recoveries.iter().all(recovered_some),
                "{:?}",
                seen.recoveries
            );
        } else {
            assert_eq!(
                seen.nodes.len(),
                1,
                "subscriber {i} lost its live node: {seen:?}"
            );
        }
        eprintln!(
            "subscriber {i}: nodes {:?}, recoveries {:?}",
            seen.nodes, seen.recoveries
        );
    }
    eprintln!(
        "{TOTAL} publications in {publish_time:?} ({:.0}/s), node {} killed at {killed_at:?}",
        TOTAL as f64 / publish_time.as_secs_f64(),
        victim + 1
    );
}

/// Where a sequence of offsets departs from 1, 2, 3...: the first
/// position and what was there, and the length.
fn gaps(offsets: &[u64]) -> String {
    let wrong = offsets.iter().zip(1u64..).find(|(got, want)| *got != want);
    format!("{} offsets, first wrong: {wrong:?}", offsets.len())
}
