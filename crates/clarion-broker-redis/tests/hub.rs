//! Two hubs (two nodes) on one Redis: what a cluster of `clarion serve`
//! nodes does, without the HTTP layer. A subscriber on one node gets what
//! is published on the other; presence is shared; a client that reconnects
//! to the other node recovers exactly.

mod common;

use std::time::{Duration, Instant};

use clarion_hub::{Credentials, Hub, HubConfig, NamespaceOptions, Outgoing, Session};
use clarion_wire::{
    decode_server_message, Data, Push, RawReply, ServerMessage, StreamPosition, SubscribeResult,
};
use common::{broker, RedisServer};

fn config() -> HubConfig {
    let mut config = HubConfig::default();
    let chat = NamespaceOptions {
        presence: true,
        history_size: 100,
        history_ttl: Duration::from_secs(60),
        ..NamespaceOptions::default()
    };
    config.namespaces.insert("chat".to_owned(), chat);
    config
}

async fn node(server: &RedisServer) -> Hub {
    let builder = Hub::builder(config()).broker(broker(&[server.url()]));
    builder.build().await.expect("a hub on Redis")
}

async fn connect(hub: &Hub, user: &str) -> Session {
    let frame = br#"{"id":1,"method":"connect"}"#;
    let (id, req) = hub.decode_connect(frame).unwrap();
    let creds = Credentials {
        user: user.into(),
        ..Credentials::default()
    };
    let session = hub.connect(creds, id, &req).await.expect("connect");
    next(&session).await; // the connect reply
    session
}

/// The next message, waiting up to 5 s (delivery crosses Redis).
async fn next(session: &Session) -> ServerMessage {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(Outgoing::Frame(f)) = session.try_recv() {
            return decode_server_message(f.bytes()).unwrap();
        }
        assert!(Instant::now() < deadline, "nothing arrived");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn call(session: &Session, json: &str) -> RawReply {
    session.handle(json.as_bytes()).await.unwrap();
    match next(session).await {
        ServerMessage::Reply(r) => r,
        other => panic!("expected a reply, got {other:?}"),
    }
}

async fn subscribe(
    session: &Session,
    channel: &str,
    from: Option<&StreamPosition>,
) -> SubscribeResult {
    let recover = from.map_or(String::new(), |p| {
        format!(
            r#","recover":true,"offset":{},"epoch":"{}""#,
            p.offset, p.epoch
        )
    });
    let json =
        format!(r#"{{"id":2,"method":"subscribe","params":{{"channel":"{channel}"{recover}}}}}"#);
    call(session, &json).await.result().unwrap()
}

#[tokio::test]
async fn a_publication_on_one_node_reaches_a_subscriber_on_the_other() {
    let server = RedisServer::start();
    let (a, b) = (node(&server).await, node(&server).await);
    let alice = connect(&a, "alice").await;
    subscribe(&alice, "chat:room", None).await;
    let published = b.publish("chat:room", Data::from_json(r#""hi""#).unwrap());
    let result = published.await.unwrap();
    let ServerMessage::Push(Push::Publication(p)) = next(&alice).await else {
        panic!("expected the publication")
    };
    assert_eq!(p.data.get(), r#""hi""#);
    assert_eq!((p.offset, p.epoch), (result.offset, result.epoch));
    assert_ne!(a.node().id, b.node().id);
}

#[tokio::test]
async fn presence_is_shared_by_the_nodes() {
    let server = RedisServer::start();
    let (a, b) = (node(&server).await, node(&server).await);
    let (ann_a, ann_b, bob) = (
        connect(&a, "ann").await,
        connect(&b, "ann").await,
        connect(&b, "bob").await,
    );
    for s in [&ann_a, &ann_b, &bob] {
        subscribe(s, "chat:presence", None).await;
    }
    let stats = a.presence_stats("chat:presence").await.unwrap();
    assert_eq!((stats.num_clients, stats.num_users), (3, 2));
    let listed = b.presence("chat:presence").await.unwrap().clients;
    assert_eq!(listed.len(), 3);
}

#[tokio::test]
async fn a_client_that_moves_to_the_other_node_recovers_exactly() {
    let server = RedisServer::start();
    let (a, b) = (node(&server).await, node(&server).await);
    let on_a = connect(&a, "carol").await;
    let first = subscribe(&on_a, "chat:move", None).await;
    let seen = StreamPosition {
        offset: first.offset.unwrap(),
        epoch: first.epoch.unwrap(),
    };
    on_a.close().await;
    for n in 1..=3 {
        a.publish("chat:move", Data::from_value(&n).unwrap())
            .await
            .unwrap();
    }
    let on_b = connect(&b, "carol").await;
    let recovered = subscribe(&on_b, "chat:move", Some(&seen)).await;
    assert_eq!(recovered.recovered, Some(true));
    let got: Vec<_> = recovered
        .publications
        .iter()
        .map(|p| (p.offset.unwrap(), p.data.get().to_owned()))
        .collect();
    assert_eq!(got, [(1, "1".into()), (2, "2".into()), (3, "3".into())]);
    // A new node is answered at once, not at the next heartbeat.
    let deadline = Instant::now() + Duration::from_secs(1);
    while b.nodes().len() < 2 {
        assert!(Instant::now() < deadline, "b does not know a");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
