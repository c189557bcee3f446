//! Protocol errors, permission errors and slow consumers, with their
//! documented codes.

mod common;

use std::sync::Arc;

use clarion_hub::{
    Hub, HubConfig, Outgoing, QueueLimits, RefreshCheck, SubscriptionCheck, SubscriptionGrant,
    TokenVerifier,
};
use clarion_wire::{Data, DisconnectCode, ErrorCode, PresenceResult, Push, ReplyError};
use common::*;

async fn error_code(s: &clarion_hub::Session, json: &str) -> u16 {
    let reply = call(s, json).await;
    reply.outcome.expect_err("an error reply").code.as_u16()
}

#[tokio::test]
async fn malformed_frames_disconnect_with_bad_request() {
    let hub = hub().await;
    for bad in [
        "not json",
        r#"{"method":"ping"}"#,
        "[]",
        "\n\n",
        r#"{"id":1,"method":"ping"}
{"id":"two"}"#,
    ] {
        let s = connect(&hub, "alice").await;
        let err = s.handle(bad.as_bytes()).await.unwrap_err();
        assert_eq!(err.code, DisconnectCode::BadRequest, "{bad:?}");
        let d = closed_with(&s);
        assert_eq!(d.code.close_code(), 4500);
        assert!(!d.reconnect);
    }
}

#[tokio::test]
async fn oversized_frames_disconnect_with_message_too_big() {
    let mut cfg = config();
    cfg.max_frame_bytes = 1024;
    let hub = Hub::builder(cfg).build().await.unwrap();
    let s = connect(&hub, "alice").await;
    let big = format!(
        r#"{{"id":2,"method":"publish","params":{{"channel":"chat:x","data":"{}"}}}}"#,
        "x".repeat(2000)
    );
    let err = s.handle(big.as_bytes()).await.unwrap_err();
    assert_eq!(err.code, DisconnectCode::MessageTooBig);
    assert_eq!(closed_with(&s).code.close_code(), 4503);
}

#[tokio::test]
async fn too_many_commands_in_a_frame_disconnect() {
    let mut cfg = config();
    cfg.max_commands_per_frame = 2;
    let hub = Hub::builder(cfg).build().await.unwrap();
    let s = connect(&hub, "alice").await;
    let frame = r#"{"id":1,"method":"ping"}
{"id":2,"method":"ping"}
{"id":3,"method":"ping"}"#;
    assert_eq!(
        s.handle(frame.as_bytes()).await.unwrap_err().code,
        DisconnectCode::BadRequest
    );
}

#[tokio::test]
async fn answerable_errors_keep_the_session() {
    let hub = hub().await;
    let s = connect(&hub, "alice").await;
    assert_eq!(error_code(&s, r#"{"id":2,"method":"teleport"}"#).await, 405);
    assert_eq!(
        error_code(
            &s,
            r#"{"id":3,"method":"subscribe","params":{"chanel":"x"}}"#
        )
        .await,
        400
    );
    assert_eq!(
        error_code(
            &s,
            r#"{"id":4,"method":"subscribe","params":{"channel":"x","recover":true}}"#
        )
        .await,
        400
    );
    // A batch: replies in order, the bad one in the middle answered.
    let frame = r#"{"id":5,"method":"ping"}
{"id":6,"method":"nope"}
{"id":7,"method":"ping"}"#;
    s.handle(frame.as_bytes()).await.unwrap();
    assert!(reply(&s).outcome.is_ok());
    assert_eq!(
        reply(&s).outcome.unwrap_err().code,
        ErrorCode::MethodNotFound
    );
    assert_eq!(reply(&s).id, 7);
    assert!(!s.is_closing());
}

#[tokio::test]
async fn decode_connect_accepts_only_a_lone_connect() {
    let hub = hub().await;
    assert!(hub
        .decode_connect(br#"{"id":1,"method":"connect","params":{"token":"t"}}"#)
        .is_ok());
    for bad in [
        &br#"{"id":1,"method":"ping"}"#[..],
        b"garbage",
        b"{\"id\":1,\"method\":\"connect\"}\n{\"id\":2,\"method\":\"ping\"}",
    ] {
        let err = hub.decode_connect(bad).unwrap_err();
        assert_eq!(err.code, DisconnectCode::BadRequest);
    }
}

#[tokio::test]
async fn namespace_permissions() {
    let hub = hub().await;
    let s = connect(&hub, "alice").await;
    // Unknown namespace and invalid names.
    assert_eq!(
        error_code(
            &s,
            r#"{"id":2,"method":"subscribe","params":{"channel":"nope:x"}}"#
        )
        .await,
        404
    );
    assert_eq!(
        error_code(
            &s,
            r#"{"id":2,"method":"subscribe","params":{"channel":"bad name"}}"#
        )
        .await,
        404
    );
    // news: only the server publishes.
    assert_eq!(
        error_code(
            &s,
            r#"{"id":3,"method":"publish","params":{"channel":"news:x","data":1}}"#
        )
        .await,
        403
    );
    // secret: token required.
    assert_eq!(
        error_code(
            &s,
            r#"{"id":4,"method":"subscribe","params":{"channel":"secret:x"}}"#
        )
        .await,
        403
    );
    // A token but no verifier plugged in.
    assert_eq!(
        error_code(
            &s,
            r#"{"id":5,"method":"subscribe","params":{"channel":"secret:x","token":"t"}}"#
        )
        .await,
        401
    );
    // Already subscribed.
    call(
        &s,
        r#"{"id":6,"method":"subscribe","params":{"channel":"news:x"}}"#,
    )
    .await;
    assert_eq!(
        error_code(
            &s,
            r#"{"id":7,"method":"subscribe","params":{"channel":"news:x"}}"#
        )
        .await,
        409
    );
    // Presence off in news, on in chat but not subscribed.
    assert_eq!(
        error_code(
            &s,
            r#"{"id":8,"method":"presence","params":{"channel":"news:x"}}"#
        )
        .await,
        501
    );
    assert_eq!(
        error_code(
            &s,
            r#"{"id":9,"method":"presence","params":{"channel":"chat:x"}}"#
        )
        .await,
        410
    );
    // History: news keeps it but clients may not read it.
    assert_eq!(
        error_code(
            &s,
            r#"{"id":10,"method":"history","params":{"channel":"news:x"}}"#
        )
        .await,
        403
    );
    assert_eq!(
        error_code(
            &s,
            r#"{"id":11,"method":"unsubscribe","params":{"channel":"chat:x"}}"#
        )
        .await,
        410
    );
    // Refresh without a verifier.
    assert_eq!(
        error_code(&s, r#"{"id":12,"method":"refresh","params":{"token":"t"}}"#).await,
        501
    );
}

#[tokio::test]
async fn anonymous_sessions_only_where_allowed() {
    let hub = hub().await;
    let anon = connect(&hub, "").await;
    assert_eq!(
        error_code(
            &anon,
            r#"{"id":2,"method":"subscribe","params":{"channel":"chat:x"}}"#
        )
        .await,
        403
    );
    assert_eq!(
        error_code(
            &anon,
            r#"{"id":3,"method":"publish","params":{"channel":"chat:x","data":1}}"#
        )
        .await,
        403
    );
    assert!(call(
        &anon,
        r#"{"id":4,"method":"subscribe","params":{"channel":"open:x"}}"#
    )
    .await
    .outcome
    .is_ok());
}

#[tokio::test]
async fn subscription_limit() {
    let mut cfg = config();
    cfg.max_subscriptions = 2;
    let hub = Hub::builder(cfg).build().await.unwrap();
    let s = connect(&hub, "alice").await;
    for ch in ["news:a", "news:b"] {
        let json = format!(r#"{{"id":2,"method":"subscribe","params":{{"channel":"{ch}"}}}}"#);
        assert!(call(&s, &json).await.outcome.is_ok());
    }
    assert_eq!(
        error_code(
            &s,
            r#"{"id":3,"method":"subscribe","params":{"channel":"news:c"}}"#
        )
        .await,
        413
    );
}

struct Verifier;

impl TokenVerifier for Verifier {
    fn verify_subscription(
        &self,
        check: &SubscriptionCheck<'_>,
    ) -> Result<SubscriptionGrant, ReplyError> {
        match check.token {
            "expired" => Err(ErrorCode::TokenExpired.into()),
            t if t == format!("ok:{}:{}", check.user, check.channel) => Ok(SubscriptionGrant {
                info: Some(Data::from_json(r#"{"role":"admin"}"#).unwrap()),
                ttl: None,
            }),
            _ => Err(ErrorCode::Unauthorized.into()),
        }
    }

    fn verify_refresh(
        &self,
        check: &RefreshCheck<'_>,
    ) -> Result<Option<std::time::Duration>, ReplyError> {
        match check.token {
            "fresh" => Ok(Some(std::time::Duration::from_secs(600))),
            _ => Err(ErrorCode::Unauthorized.into()),
        }
    }
}

#[tokio::test]
async fn subscription_tokens_through_the_verifier() {
    let hub = Hub::builder(config())
        .token_verifier(Arc::new(Verifier))
        .build()
        .await
        .unwrap();
    let s = connect(&hub, "alice").await;
    let sub = |token: &str| {
        format!(
            r#"{{"id":2,"method":"subscribe","params":{{"channel":"secret:x","token":"{token}"}}}}"#
        )
    };
    assert_eq!(error_code(&s, &sub("ok:bob:secret:x")).await, 401);
    let expired = call(&s, &sub("expired")).await.outcome.unwrap_err();
    assert_eq!((expired.code.as_u16(), expired.temporary), (419, true));
    assert!(call(&s, &sub("ok:alice:secret:x")).await.outcome.is_ok());
    let p: PresenceResult = call(
        &s,
        r#"{"id":3,"method":"presence","params":{"channel":"secret:x"}}"#,
    )
    .await
    .result()
    .unwrap();
    assert_eq!(
        p.clients[0].chan_info.as_ref().unwrap().get(),
        r#"{"role":"admin"}"#
    );
    let refreshed: clarion_wire::RefreshResult = call(
        &s,
        r#"{"id":4,"method":"refresh","params":{"token":"fresh"}}"#,
    )
    .await
    .result()
    .unwrap();
    assert_eq!(refreshed.ttl, Some(600));
    assert_eq!(
        error_code(
            &s,
            r#"{"id":5,"method":"refresh","params":{"token":"stale"}}"#
        )
        .await,
        401
    );
}

#[tokio::test]
async fn slow_consumer_is_disconnected_and_its_memory_freed() {
    let cfg = HubConfig {
        queue: QueueLimits {
            max_bytes: 64 * 1024,
            max_frames: 8,
        },
        ..config()
    };
    let hub = Hub::builder(cfg).build().await.unwrap();
    let slow = connect(&hub, "slow").await;
    let fast = connect(&hub, "fast").await;
    for s in [&slow, &fast] {
        call(
            s,
            r#"{"id":2,"method":"subscribe","params":{"channel":"news:x"}}"#,
        )
        .await;
    }
    for n in 0..20 {
        hub.publish("news:x", Data::from_value(&n).unwrap())
            .await
            .unwrap();
        // The fast client drains as it goes.
        while let Some(Outgoing::Frame(_)) = fast.try_recv() {}
    }
    assert_eq!(
        slow.queued().0,
        1,
        "pending frames dropped, only the disconnect left"
    );
    let d = closed_with(&slow);
    assert_eq!(
        (d.code, d.code.close_code(), d.reconnect),
        (DisconnectCode::SlowConsumer, 4001, true)
    );
    assert!(!fast.is_closing());
    assert_eq!(hub.info().slow_consumers, 1);
    // The slow session's later commands are refused with the same code.
    assert_eq!(
        slow.handle(br#"{"id":3,"method":"ping"}"#)
            .await
            .unwrap_err()
            .code,
        DisconnectCode::SlowConsumer
    );
    slow.close().await;
    assert_eq!(hub.channels()[0].num_clients, 1);
    let _ = Push::Publication;
}

#[tokio::test(start_paused = true)]
async fn an_expired_connection_token_disconnects_unless_refreshed() {
    let hub = Hub::builder(config())
        .token_verifier(Arc::new(Verifier))
        .build()
        .await
        .unwrap();
    let ttl = Some(std::time::Duration::from_secs(10));
    let creds = |user: &str| clarion_hub::Credentials {
        user: user.into(),
        ttl,
        ..Default::default()
    };
    let connect = r#"{"id":1,"method":"connect"}"#;
    let (stale, _) = connect_with(&hub, creds("stale"), connect).await;
    let (fresh, _) = connect_with(&hub, creds("fresh"), connect).await;
    let (forever, _) = connect_with(
        &hub,
        clarion_hub::Credentials {
            user: "f".into(),
            ..Default::default()
        },
        connect,
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    call(
        &fresh,
        r#"{"id":2,"method":"refresh","params":{"token":"fresh"}}"#,
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    let d = closed_with(&stale);
    assert_eq!((d.code.close_code(), d.reconnect), (4003, true));
    quiet(&fresh);
    tokio::time::sleep(std::time::Duration::from_secs(600)).await;
    assert_eq!(
        closed_with(&fresh).code,
        DisconnectCode::Expired,
        "the refreshed token expires too"
    );
    quiet(&forever);
}
