//! Presence, join/leave pushes and presence stats.

mod common;

use clarion_wire::{PresenceResult, PresenceStatsResult, Push};
use common::*;

async fn stats(s: &clarion_hub::Session) -> (u64, u64) {
    let r: PresenceStatsResult = call(
        s,
        r#"{"id":5,"method":"presence_stats","params":{"channel":"chat:room"}}"#,
    )
    .await
    .result()
    .unwrap();
    (r.num_clients, r.num_users)
}

#[tokio::test]
async fn presence_with_join_and_leave() {
    let hub = hub().await;
    let alice = connect(&hub, "alice").await;
    call(
        &alice,
        r#"{"id":2,"method":"subscribe","params":{"channel":"chat:room"}}"#,
    )
    .await;
    let Push::Join(own) = push(&alice) else {
        panic!("own join")
    };
    assert_eq!(own.info.client, alice.id());

    let bob = connect(&hub, "bob").await;
    call(
        &bob,
        r#"{"id":2,"method":"subscribe","params":{"channel":"chat:room"}}"#,
    )
    .await;
    let Push::Join(j) = push(&alice) else {
        panic!("bob's join")
    };
    assert_eq!(
        (
            j.channel.as_str(),
            j.info.user.as_str(),
            j.info.client.as_str()
        ),
        ("chat:room", "bob", bob.id())
    );
    let Push::Join(_) = push(&bob) else { panic!() };

    let p: PresenceResult = call(
        &alice,
        r#"{"id":4,"method":"presence","params":{"channel":"chat:room"}}"#,
    )
    .await
    .result()
    .unwrap();
    let mut users: Vec<_> = p.clients.iter().map(|c| c.user.as_str()).collect();
    users.sort();
    assert_eq!(users, ["alice", "bob"]);
    assert_eq!(stats(&alice).await, (2, 2));

    // A second session of alice: 3 clients, 2 users.
    let alice2 = connect(&hub, "alice").await;
    call(
        &alice2,
        r#"{"id":2,"method":"subscribe","params":{"channel":"chat:room"}}"#,
    )
    .await;
    drain(&alice);
    drain(&bob);
    drain(&alice2);
    assert_eq!(stats(&alice).await, (3, 2));

    bob.close().await;
    let Push::Leave(l) = push(&alice) else {
        panic!("bob's leave")
    };
    assert_eq!(l.info.user, "bob");
    let Push::Leave(_) = push(&alice2) else {
        panic!("bob's leave at alice2")
    };
    assert_eq!(stats(&alice).await, (2, 1));
    assert_eq!(
        hub.presence_stats("chat:room").await.unwrap().num_clients,
        2
    );

    call(
        &alice2,
        r#"{"id":6,"method":"unsubscribe","params":{"channel":"chat:room"}}"#,
    )
    .await;
    let Push::Leave(l) = push(&alice) else {
        panic!("alice2's leave")
    };
    assert_eq!(l.info.client, alice2.id());
    assert_eq!(stats(&alice).await, (1, 1));
    drop(alice2);
}

#[tokio::test]
async fn dropping_a_session_without_close_still_cleans_up() {
    let hub = hub().await;
    let alice = connect(&hub, "alice").await;
    call(
        &alice,
        r#"{"id":2,"method":"subscribe","params":{"channel":"chat:room"}}"#,
    )
    .await;
    drop(alice);
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert_eq!(
        hub.presence_stats("chat:room").await.unwrap().num_clients,
        0
    );
    assert_eq!(hub.info().clients, 0);
}

#[tokio::test(start_paused = true)]
async fn presence_of_live_sessions_is_refreshed_before_it_expires() {
    let hub = hub().await;
    let alice = connect(&hub, "alice").await;
    call(
        &alice,
        r#"{"id":2,"method":"subscribe","params":{"channel":"chat:room"}}"#,
    )
    .await;
    // presence_ttl is 60 s; the hub refreshes every 20 s.
    for _ in 0..10 {
        tokio::time::sleep(std::time::Duration::from_secs(30)).await;
    }
    assert_eq!(
        hub.presence_stats("chat:room").await.unwrap().num_clients,
        1
    );
}

#[tokio::test]
async fn per_user_join_and_leave_count_a_users_connections_as_one() {
    let mut cfg = config();
    let chat = cfg.namespaces.get_mut("chat").unwrap();
    chat.join_leave_per_user = true;
    let hub = clarion_hub::Hub::builder(cfg).build().await.unwrap();
    let sub = r#"{"id":2,"method":"subscribe","params":{"channel":"chat:room"}}"#;
    let unsub = r#"{"id":3,"method":"unsubscribe","params":{"channel":"chat:room"}}"#;
    let alice = connect(&hub, "alice").await;
    call(&alice, sub).await;
    let Push::Join(_) = push(&alice) else {
        panic!("alice's own join")
    };
    let (tab1, tab2) = (connect(&hub, "bob").await, connect(&hub, "bob").await);
    call(&tab1, sub).await;
    let Push::Join(join) = push(&alice) else {
        panic!("bob's first tab joins")
    };
    assert_eq!(join.info.user, "bob");
    call(&tab2, sub).await;
    tokio::task::yield_now().await;
    quiet(&alice); // the second tab is the same person
    drain(&tab1); // its own join
    call(&tab1, unsub).await;
    tokio::task::yield_now().await;
    quiet(&alice); // bob is still there
    call(&tab2, unsub).await;
    let Push::Leave(leave) = push(&alice) else {
        panic!("bob's last tab leaves")
    };
    assert_eq!(leave.info.user, "bob");
}
