//! Two hubs on one `MemoryBackend`: two nodes of one process, the way the
//! contract suite's two-node cases run, seen through the hub.

mod common;

use std::sync::Arc;

use clarion_hub::{Hub, MemoryBackend};
use clarion_wire::{Data, Push};
use common::*;

async fn nodes() -> (Hub, Hub) {
    let backend = MemoryBackend::new();
    let node = |name| {
        let broker = Arc::new(backend.node(Some(name)));
        Hub::builder(config()).broker(broker).build()
    };
    (node("a").await.unwrap(), node("b").await.unwrap())
}

#[tokio::test]
async fn a_publication_on_one_node_reaches_the_other_once() {
    let (a, b) = nodes().await;
    let on_a = connect(&a, "ann").await;
    let on_b = connect(&b, "bob").await;
    for s in [&on_a, &on_b] {
        call(
            s,
            r#"{"id":2,"method":"subscribe","params":{"channel":"feed:x"}}"#,
        )
        .await;
    }
    b.publish("feed:x", Data::from_json("1").unwrap())
        .await
        .unwrap();
    for s in [&on_a, &on_b] {
        let Push::Publication(p) = push(s) else {
            panic!("expected the publication")
        };
        assert_eq!((p.offset, p.data.get()), (Some(1), "1"));
        quiet(s);
    }
    let names: Vec<_> = a.nodes().into_iter().map(|n| n.identity.name).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert_eq!(a.node().name, "a");
}

#[tokio::test]
async fn join_and_presence_cross_nodes() {
    let (a, b) = nodes().await;
    let on_a = connect(&a, "ann").await;
    call(
        &on_a,
        r#"{"id":2,"method":"subscribe","params":{"channel":"chat:y"}}"#,
    )
    .await;
    let on_b = connect(&b, "bob").await;
    call(
        &on_b,
        r#"{"id":2,"method":"subscribe","params":{"channel":"chat:y"}}"#,
    )
    .await;
    // Ann sees her own join, then bob's, which crossed nodes.
    let joined: Vec<_> = [push(&on_a), push(&on_a)]
        .into_iter()
        .map(|p| match p {
            Push::Join(j) => j.info.user,
            other => panic!("expected a join, got {other:?}"),
        })
        .collect();
    assert_eq!(joined, ["ann", "bob"]);
    let stats = a.presence_stats("chat:y").await.unwrap();
    assert_eq!((stats.num_clients, stats.num_users), (2, 2));
}
