//! Replies and pushes: exact bytes for every type, and round trips through
//! the client-side decoder.

use std::collections::BTreeMap;

use clarion_wire::*;
use serde::de::DeserializeOwned;

fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap()
}

fn data(json: &str) -> Data {
    Data::from_json(json).unwrap()
}

fn alice() -> ClientInfo {
    ClientInfo {
        client: "c1".into(),
        user: "alice".into(),
        info: Some(data(r#"{"name":"Alice"}"#)),
        chan_info: None,
    }
}

/// Encodes `result` as a reply, checks the bytes and that a client decodes it back.
fn check_reply<T>(result: T, expect: &str)
where
    T: Into<ReplyResult> + DeserializeOwned + PartialEq + std::fmt::Debug + Clone,
{
    let bytes = encode_reply(&Reply::ok(42, result.clone()));
    assert_eq!(text(&bytes), expect);
    let ServerMessage::Reply(raw) = decode_server_message(&bytes).unwrap() else {
        panic!("not a reply")
    };
    assert_eq!(raw.id, 42);
    assert_eq!(raw.result::<T>().unwrap(), result);
}

fn check_push(push: Push, expect: &str) {
    let bytes = encode_push(&push);
    assert_eq!(text(&bytes), expect);
    assert_eq!(
        decode_server_message(&bytes).unwrap(),
        ServerMessage::Push(push)
    );
}

#[test]
fn connect_result() {
    let mut subs = BTreeMap::new();
    subs.insert(
        "news".to_owned(),
        SubscribeResult {
            recoverable: true,
            offset: Some(3),
            epoch: Some("e".into()),
            ..Default::default()
        },
    );
    check_reply(
        ConnectResult {
            client: "c1".into(),
            version: "1".into(),
            subs,
            ttl: Some(3600),
            ping: Some(25),
        },
        r#"{"id":42,"result":{"client":"c1","version":"1","subs":{"news":{"recoverable":true,"offset":3,"epoch":"e"}},"ttl":3600,"ping":25}}"#,
    );
}

#[test]
fn subscribe_results() {
    check_reply(SubscribeResult::default(), r#"{"id":42,"result":{}}"#);
    check_reply(
        SubscribeResult {
            recoverable: true,
            offset: Some(19),
            epoch: Some("a1b2".into()),
            recovered: Some(true),
            publications: vec![
                Publication {
                    offset: Some(18),
                    data: data(r#"{"t":1}"#),
                    info: None,
                },
                Publication {
                    offset: Some(19),
                    data: data(r#"{"t":2}"#),
                    info: Some(alice()),
                },
            ],
            ttl: None,
        },
        r#"{"id":42,"result":{"recoverable":true,"offset":19,"epoch":"a1b2","recovered":true,"publications":[{"offset":18,"data":{"t":1}},{"offset":19,"data":{"t":2},"info":{"client":"c1","user":"alice","info":{"name":"Alice"}}}]}}"#,
    );
    check_reply(
        SubscribeResult {
            recoverable: true,
            offset: Some(50),
            epoch: Some("new".into()),
            recovered: Some(false),
            publications: vec![],
            ttl: None,
        },
        r#"{"id":42,"result":{"recoverable":true,"offset":50,"epoch":"new","recovered":false}}"#,
    );
}

#[test]
fn other_results() {
    check_reply(
        PublishResult {
            offset: Some(7),
            epoch: Some("e".into()),
        },
        r#"{"id":42,"result":{"offset":7,"epoch":"e"}}"#,
    );
    check_reply(PublishResult::default(), r#"{"id":42,"result":{}}"#);
    check_reply(
        PresenceResult {
            clients: vec![alice()],
        },
        r#"{"id":42,"result":{"clients":[{"client":"c1","user":"alice","info":{"name":"Alice"}}]}}"#,
    );
    check_reply(
        PresenceStatsResult {
            num_clients: 3,
            num_users: 2,
        },
        r#"{"id":42,"result":{"num_clients":3,"num_users":2}}"#,
    );
    check_reply(
        HistoryResult {
            publications: vec![Publication {
                offset: Some(1),
                data: data("\"x\""),
                info: None,
            }],
            offset: 9,
            epoch: "e".into(),
        },
        r#"{"id":42,"result":{"publications":[{"offset":1,"data":"x"}],"offset":9,"epoch":"e"}}"#,
    );
    check_reply(
        RefreshResult { ttl: Some(60) },
        r#"{"id":42,"result":{"ttl":60}}"#,
    );
    check_reply(Empty {}, r#"{"id":42,"result":{}}"#);
}

#[test]
fn error_reply() {
    let reply = Reply::error(5, ReplyError::new(ErrorCode::PermissionDenied));
    let bytes = encode_reply(&reply);
    assert_eq!(
        text(&bytes),
        r#"{"id":5,"error":{"code":403,"message":"permission denied","temporary":false}}"#
    );
    let ServerMessage::Reply(raw) = decode_server_message(&bytes).unwrap() else {
        panic!()
    };
    assert_eq!(
        raw.outcome,
        Err(ReplyError::new(ErrorCode::PermissionDenied))
    );
    assert_eq!(
        raw.result::<Empty>(),
        Err(ReplyError::new(ErrorCode::PermissionDenied))
    );
    let temp = encode_reply(&Reply::error(6, ReplyError::new(ErrorCode::Unavailable)));
    assert_eq!(
        text(&temp),
        r#"{"id":6,"error":{"code":503,"message":"unavailable","temporary":true}}"#
    );
}

#[test]
fn publication_push() {
    check_push(
        Push::Publication(PublicationPush {
            channel: "chat:lobby".into(),
            offset: Some(20),
            epoch: Some("a1b2".into()),
            data: data(r#"{"text":"hello"}"#),
            info: Some(alice()),
        }),
        r#"{"push":"publication","channel":"chat:lobby","offset":20,"epoch":"a1b2","data":{"text":"hello"},"info":{"client":"c1","user":"alice","info":{"name":"Alice"}}}"#,
    );
    check_push(
        Push::Publication(PublicationPush {
            channel: "t".into(),
            offset: None,
            epoch: None,
            data: data("1"),
            info: None,
        }),
        r#"{"push":"publication","channel":"t","data":1}"#,
    );
}

#[test]
fn join_and_leave_pushes() {
    let info = ClientInfo {
        info: None,
        ..alice()
    };
    check_push(
        Push::Join(PresencePush {
            channel: "room".into(),
            info: info.clone(),
        }),
        r#"{"push":"join","channel":"room","info":{"client":"c1","user":"alice"}}"#,
    );
    check_push(
        Push::Leave(PresencePush {
            channel: "room".into(),
            info,
        }),
        r#"{"push":"leave","channel":"room","info":{"client":"c1","user":"alice"}}"#,
    );
}

#[test]
fn unsubscribe_and_disconnect_pushes() {
    check_push(
        Push::Unsubscribe(UnsubscribePush::new(
            "room",
            UnsubscribeCode::InsufficientState,
        )),
        r#"{"push":"unsubscribe","channel":"room","code":2500,"reason":"insufficient state","resubscribe":true}"#,
    );
    check_push(
        Push::Disconnect(DisconnectPush::new(DisconnectCode::SlowConsumer)),
        r#"{"push":"disconnect","code":4001,"reason":"slow consumer","reconnect":true}"#,
    );
    check_push(
        Push::Disconnect(DisconnectPush::new(DisconnectCode::ForceNoReconnect)),
        r#"{"push":"disconnect","code":4502,"reason":"force disconnect","reconnect":false}"#,
    );
}

#[test]
fn bad_server_messages_are_refused() {
    for bad in [
        r#"{"push":"teleport"}"#,
        r#"{"result":{}}"#,
        r#"{"id":1}"#,
        r#"{"id":1,"result":{},"error":{"code":500,"message":"","temporary":true}}"#,
        r#"{"id":1,"error":{"code":999,"message":"","temporary":true}}"#,
    ] {
        assert!(decode_server_message(bad.as_bytes()).is_err(), "{bad}");
    }
}
