//! Helpers for hub tests: a configured hub, connected sessions, decoded output.

#![allow(dead_code, unreachable_pub)]

pub mod lossy;

use std::time::Duration;

use clarion_hub::{Credentials, Frame, Hub, HubConfig, NamespaceOptions, Outgoing, Session};
use clarion_wire::{decode_server_message, DisconnectPush, Push, RawReply, ServerMessage};

/// Namespaces: `chat` (everything on), `feed` (small, short history),
/// `secret` (token required), `news` (history, server publishes only),
/// `open` (anonymous allowed); the default namespace allows nothing extra.
pub fn config() -> HubConfig {
    let mut cfg = HubConfig::default();
    let chat = NamespaceOptions {
        allow_publish: true,
        presence: true,
        join_leave: true,
        history_size: 10,
        history_ttl: Duration::from_secs(60),
        allow_history: true,
        ..NamespaceOptions::default()
    };
    let feed = NamespaceOptions {
        allow_publish: true,
        history_size: 3,
        history_ttl: Duration::from_secs(5),
        history_meta_ttl: Duration::from_secs(30),
        ..NamespaceOptions::default()
    };
    let secret = NamespaceOptions {
        require_subscription_token: true,
        presence: true,
        ..NamespaceOptions::default()
    };
    let news = NamespaceOptions {
        history_size: 100,
        history_ttl: Duration::from_secs(60),
        ..NamespaceOptions::default()
    };
    let open = NamespaceOptions {
        allow_anonymous: true,
        allow_publish: true,
        ..NamespaceOptions::default()
    };
    for (name, ns) in [
        ("chat", chat),
        ("feed", feed),
        ("secret", secret),
        ("news", news),
        ("open", open),
    ] {
        cfg.namespaces.insert(name.to_owned(), ns);
    }
    cfg
}

pub async fn hub() -> Hub {
    Hub::builder(config()).build().await.unwrap()
}

/// Connects `user` and takes the connect reply off the queue.
pub async fn connect(hub: &Hub, user: &str) -> Session {
    connect_with(
        hub,
        Credentials {
            user: user.into(),
            ..Credentials::default()
        },
        r#"{"id":1,"method":"connect"}"#,
    )
    .await
    .0
}

pub async fn connect_with(hub: &Hub, creds: Credentials, frame: &str) -> (Session, RawReply) {
    let (id, req) = hub.decode_connect(frame.as_bytes()).unwrap();
    let session = hub.connect(creds, id, &req).await.expect("connect");
    let reply = reply(&session);
    assert_eq!(reply.id, id);
    (session, reply)
}

/// Everything queued, decoded (a `Close` ends the list as `None`).
pub fn drain(session: &Session) -> Vec<ServerMessage> {
    let mut out = Vec::new();
    while let Some(item) = session.try_recv() {
        match item {
            Outgoing::Frame(f) => out.push(decode(&f)),
            Outgoing::Close(_) => break,
        }
    }
    out
}

pub fn decode(frame: &Frame) -> ServerMessage {
    decode_server_message(frame.bytes()).unwrap_or_else(|e| panic!("{frame:?}: {e}"))
}

/// The next queued message, which must be a reply.
pub fn reply(session: &Session) -> RawReply {
    match session.try_recv() {
        Some(Outgoing::Frame(f)) => match decode(&f) {
            ServerMessage::Reply(r) => r,
            other => panic!("expected a reply, got {other:?}"),
        },
        other => panic!("expected a reply, got {other:?}"),
    }
}

/// The next queued message, which must be a push.
pub fn push(session: &Session) -> Push {
    match session.try_recv() {
        Some(Outgoing::Frame(f)) => match decode(&f) {
            ServerMessage::Push(p) => p,
            other => panic!("expected a push, got {other:?}"),
        },
        other => panic!("expected a push, got {other:?}"),
    }
}

/// Sends one command and returns its reply (which must come next).
pub async fn call(session: &Session, json: &str) -> RawReply {
    session.handle(json.as_bytes()).await.unwrap();
    reply(session)
}

/// The next push, waiting for it (deliveries from spawned tasks).
pub async fn next_push(session: &Session) -> Push {
    let next = tokio::time::timeout(Duration::from_secs(5), session.recv()).await;
    match next {
        Ok(Some(Outgoing::Frame(f))) => match decode(&f) {
            ServerMessage::Push(p) => p,
            other => panic!("expected a push, got {other:?}"),
        },
        other => panic!("expected a push, got {other:?}"),
    }
}

/// Asserts nothing is queued.
pub fn quiet(session: &Session) {
    let next = session.try_recv();
    assert!(next.is_none(), "unexpected {next:?}");
}

/// The next item must be the close with a disconnect push before it.
pub fn closed_with(session: &Session) -> DisconnectPush {
    let Push::Disconnect(d) = push(session) else {
        panic!("expected disconnect")
    };
    match session.try_recv() {
        Some(Outgoing::Close(c)) => assert_eq!(c, d),
        other => panic!("expected close, got {other:?}"),
    }
    assert!(session.try_recv().is_none());
    d
}
