//! Fan-out between sessions, encode-once sharing, and the server API.

mod common;

use clarion_hub::{Outgoing, Session};
use clarion_wire::{
    Data, DisconnectCode, DisconnectPush, HistoryResult, PublishResult, Push, ServerMessage,
    SubscribeResult, UnsubscribeCode,
};
use common::*;

async fn subscribe(s: &Session, channel: &str) -> SubscribeResult {
    let json = format!(r#"{{"id":2,"method":"subscribe","params":{{"channel":"{channel}"}}}}"#);
    call(s, &json).await.result().unwrap()
}

fn publication(s: &Session) -> clarion_wire::PublicationPush {
    match push(s) {
        Push::Publication(p) => p,
        other => panic!("expected a publication, got {other:?}"),
    }
}

#[tokio::test]
async fn two_sessions_see_each_others_publications() {
    let hub = hub().await;
    let (alice, bob) = (connect(&hub, "alice").await, connect(&hub, "bob").await);
    // chat has join/leave: take those pushes out of the way.
    subscribe(&alice, "chat:lobby").await;
    drain(&alice);
    subscribe(&bob, "chat:lobby").await;
    drain(&bob);
    drain(&alice);

    alice
        .handle(br#"{"id":3,"method":"publish","params":{"channel":"chat:lobby","data":{"text":"hi bob"}}}"#)
        .await
        .unwrap();
    // The publisher is a subscriber too: its copy may come before the reply.
    let own = publication(&alice);
    let published: PublishResult = reply(&alice).result().unwrap();
    assert_eq!(published.offset, Some(1));
    let theirs = publication(&bob);
    for p in [own, theirs] {
        assert_eq!(p.channel, "chat:lobby");
        assert_eq!(p.data.get(), r#"{"text":"hi bob"}"#);
        assert_eq!(p.offset, Some(1));
        assert_eq!(p.epoch, published.epoch);
        assert_eq!(p.info.unwrap().user, "alice");
    }
    quiet(&alice);
    quiet(&bob);

    bob.handle(
        br#"{"id":4,"method":"publish","params":{"channel":"chat:lobby","data":"hi alice"}}"#,
    )
    .await
    .unwrap();
    assert_eq!(publication(&alice).data.get(), r#""hi alice""#);
    assert_eq!(publication(&bob).offset, Some(2));
    assert_eq!(reply(&bob).id, 4);
}

#[tokio::test]
async fn a_publication_is_encoded_once_for_all_subscribers() {
    let hub = hub().await;
    let mut sessions = Vec::new();
    for i in 0..50 {
        let s = connect(&hub, &format!("u{i}")).await;
        subscribe(&s, "news:all").await;
        sessions.push(s);
    }
    hub.publish("news:all", Data::from_json(r#"{"big":"news"}"#).unwrap())
        .await
        .unwrap();
    let frames: Vec<_> = sessions
        .iter()
        .map(|s| match s.try_recv() {
            Some(Outgoing::Frame(f)) => f,
            other => panic!("{other:?}"),
        })
        .collect();
    assert!(
        frames.iter().all(|f| f.ptr_eq(&frames[0])),
        "one shared encoding"
    );
    assert_eq!(hub.info().delivered, 50);
}

#[tokio::test]
async fn unsubscribed_sessions_get_nothing() {
    let hub = hub().await;
    let s = connect(&hub, "alice").await;
    subscribe(&s, "news:a").await;
    let r = call(
        &s,
        r#"{"id":5,"method":"unsubscribe","params":{"channel":"news:a"}}"#,
    )
    .await;
    assert!(r.outcome.is_ok());
    hub.publish("news:a", Data::from_json("1").unwrap())
        .await
        .unwrap();
    quiet(&s);
    assert!(hub.channels().is_empty());
}

#[tokio::test]
async fn server_api_publish_broadcast_history_and_channels() {
    let hub = hub().await;
    let s = connect(&hub, "alice").await;
    subscribe(&s, "news:a").await;
    subscribe(&s, "news:b").await;
    let results = hub
        .broadcast(
            &["news:a".into(), "news:b".into(), "nope:x".into()],
            Data::from_json("7").unwrap(),
        )
        .await;
    assert_eq!(results[0].as_ref().unwrap().offset, Some(1));
    assert_eq!(results[1].as_ref().unwrap().offset, Some(1));
    assert_eq!(results[2].as_ref().unwrap_err().code.as_u16(), 404);
    assert_eq!(publication(&s).channel, "news:a");
    assert_eq!(publication(&s).channel, "news:b");

    for n in 2..=6 {
        hub.publish("news:a", Data::from_value(&n).unwrap())
            .await
            .unwrap();
    }
    // Paging forward two at a time.
    let mut since = None;
    let mut seen = Vec::new();
    loop {
        let page: HistoryResult = hub
            .history("news:a", 2, since.clone(), false)
            .await
            .unwrap();
        if page.publications.is_empty() {
            break;
        }
        let last = page.publications.last().unwrap().offset.unwrap();
        seen.extend(page.publications.iter().map(|p| p.data.get().to_owned()));
        since = Some(clarion_wire::StreamPosition {
            offset: last,
            epoch: page.epoch,
        });
    }
    assert_eq!(seen, ["7", "2", "3", "4", "5", "6"]);
    let newest: HistoryResult = hub.history("news:a", 2, None, true).await.unwrap();
    let offsets: Vec<_> = newest
        .publications
        .iter()
        .map(|p| p.offset.unwrap())
        .collect();
    assert_eq!(offsets, [6, 5]);
    assert_eq!(
        hub.history("chat:x", 1, None, false)
            .await
            .unwrap()
            .publications
            .len(),
        0
    );
    assert_eq!(
        hub.history("open:x", 1, None, false)
            .await
            .unwrap_err()
            .code
            .as_u16(),
        501
    );

    let channels = hub.channels();
    assert_eq!(channels.len(), 2);
    assert_eq!(
        (channels[0].channel.as_str(), channels[0].num_clients),
        ("news:a", 1)
    );
    let info = hub.info();
    assert_eq!(
        (info.clients, info.users, info.channels, info.subscriptions),
        (1, 1, 2, 2)
    );
}

#[tokio::test]
async fn disconnect_user_flushes_then_closes_every_session_of_the_user() {
    let hub = hub().await;
    let (a1, a2, b) = (
        connect(&hub, "alice").await,
        connect(&hub, "alice").await,
        connect(&hub, "bob").await,
    );
    subscribe(&a1, "news:a").await;
    hub.publish("news:a", Data::from_json("1").unwrap())
        .await
        .unwrap();
    let n = hub.disconnect_user(
        "alice",
        DisconnectPush::new(DisconnectCode::ForceNoReconnect),
    );
    assert_eq!(n, 2);
    assert_eq!(publication(&a1).data.get(), "1", "queued frames go first");
    assert_eq!(closed_with(&a1).code, DisconnectCode::ForceNoReconnect);
    assert_eq!(closed_with(&a2).code.close_code(), 4502);
    quiet(&b);
    // Commands after a disconnect are refused with it.
    let err = a1.handle(br#"{"id":9,"method":"ping"}"#).await.unwrap_err();
    assert_eq!(err.code, DisconnectCode::ForceNoReconnect);
    a1.close().await;
    a2.close().await;
    assert_eq!(hub.info().clients, 1);
    assert!(hub.channels().is_empty());
}

#[tokio::test]
async fn unsubscribe_user_sends_a_server_unsubscribe() {
    let hub = hub().await;
    let s = connect(&hub, "alice").await;
    subscribe(&s, "news:a").await;
    assert_eq!(hub.unsubscribe_user("alice", "news:a").await, 1);
    let Push::Unsubscribe(u) = push(&s) else {
        panic!()
    };
    assert_eq!((u.code, u.resubscribe), (UnsubscribeCode::Server, false));
    assert!(s.channels().is_empty());
    hub.publish("news:a", Data::from_json("1").unwrap())
        .await
        .unwrap();
    quiet(&s);
}

#[tokio::test]
async fn server_side_subscriptions_from_credentials() {
    let hub = hub().await;
    let creds = clarion_hub::Credentials {
        user: "alice".into(),
        channels: vec!["news:a".into(), "nope:x".into()],
        ttl: Some(std::time::Duration::from_secs(90)),
        ..Default::default()
    };
    let (s, reply) = connect_with(
        &hub,
        creds,
        r#"{"id":1,"method":"connect","params":{"token":"t"}}"#,
    )
    .await;
    let result: clarion_wire::ConnectResult = reply.result().unwrap();
    assert_eq!(result.client, s.id());
    assert_eq!(result.ttl, Some(90));
    assert_eq!(result.subs.keys().collect::<Vec<_>>(), ["news:a"]);
    assert!(result.subs["news:a"].recoverable);
    hub.publish("news:a", Data::from_json("1").unwrap())
        .await
        .unwrap();
    assert_eq!(publication(&s).offset, Some(1));
    // A second connect on the session is a bad request, not a crash.
    let r = call(&s, r#"{"id":2,"method":"connect"}"#).await;
    assert_eq!(r.outcome.unwrap_err().code.as_u16(), 400);
    assert!(matches!(drain(&s).as_slice(), []));
    let _ = ServerMessage::Push;
}
