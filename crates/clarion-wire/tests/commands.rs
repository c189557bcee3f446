//! Commands: byte vectors for every method, round trips, and decode errors.

use clarion_wire::*;

fn decode(json: &str) -> Command {
    decode_command(json.as_bytes()).unwrap_or_else(|e| panic!("{json}: {e}"))
}

fn round_trip(json: &str) -> Command {
    let cmd = decode(json);
    let again = decode_command(&encode_command(&cmd)).unwrap();
    assert_eq!(again, cmd, "{json}");
    cmd
}

#[test]
fn connect() {
    let cmd = round_trip(
        r#"{"id":1,"method":"connect","params":{"token":"t.o.k","name":"js","version":"0.1","subs":{"news":{"offset":4,"epoch":"e1"}}}}"#,
    );
    let Request::Connect(c) = cmd.request else {
        panic!()
    };
    assert_eq!(c.token.as_deref(), Some("t.o.k"));
    assert_eq!(
        c.subs["news"],
        StreamPosition {
            offset: 4,
            epoch: "e1".into()
        }
    );
    let anon = round_trip(r#"{"id":1,"method":"connect"}"#);
    assert_eq!(anon.request, Request::Connect(ConnectRequest::default()));
}

#[test]
fn subscribe_plain_and_recovering() {
    let cmd = round_trip(r#"{"id":2,"method":"subscribe","params":{"channel":"chat:lobby"}}"#);
    let Request::Subscribe(s) = cmd.request else {
        panic!()
    };
    assert_eq!(s.channel, "chat:lobby");
    assert_eq!(s.recover_from(), None);

    let cmd = round_trip(
        r#"{"id":3,"method":"subscribe","params":{"channel":"chat:lobby","token":"sub","recover":true,"offset":17,"epoch":"a1b2"}}"#,
    );
    let Request::Subscribe(s) = cmd.request else {
        panic!()
    };
    assert_eq!(s.token.as_deref(), Some("sub"));
    assert_eq!(
        s.recover_from(),
        Some(StreamPosition {
            offset: 17,
            epoch: "a1b2".into()
        })
    );
}

#[test]
fn channel_methods() {
    for (method, expect) in [
        ("unsubscribe", Method::Unsubscribe),
        ("presence", Method::Presence),
        ("presence_stats", Method::PresenceStats),
    ] {
        let json = format!(r#"{{"id":4,"method":"{method}","params":{{"channel":"room"}}}}"#);
        let cmd = round_trip(&json);
        assert_eq!(cmd.request.method(), expect);
    }
}

#[test]
fn publish_keeps_data_text() {
    let cmd = round_trip(
        r#"{"id":5,"method":"publish","params":{"channel":"chat:lobby","data":{"text":"hi","n":[1,2.5,null]}}}"#,
    );
    let Request::Publish(p) = cmd.request else {
        panic!()
    };
    assert_eq!(p.data.get(), r#"{"text":"hi","n":[1,2.5,null]}"#);
}

#[test]
fn history_paging() {
    let cmd = round_trip(
        r#"{"id":6,"method":"history","params":{"channel":"feed","limit":10,"since":{"offset":3,"epoch":"e"},"reverse":true}}"#,
    );
    let Request::History(h) = cmd.request else {
        panic!()
    };
    assert_eq!(h.limit, Some(10));
    assert!(h.reverse);
    assert_eq!(h.since.unwrap().offset, 3);
}

#[test]
fn ping_and_refresh() {
    assert_eq!(
        round_trip(r#"{"id":7,"method":"ping"}"#).request,
        Request::Ping
    );
    assert_eq!(
        decode(r#"{"id":7,"method":"ping","params":{}}"#).request,
        Request::Ping
    );
    let cmd = round_trip(r#"{"id":8,"method":"refresh","params":{"token":"new"}}"#);
    assert_eq!(
        cmd.request,
        Request::Refresh(RefreshRequest {
            token: "new".into()
        })
    );
}

#[test]
fn unknown_fields_are_ignored_for_forward_compatibility() {
    let cmd =
        decode(r#"{"id":9,"method":"subscribe","params":{"channel":"x","future":1},"extra":true}"#);
    assert_eq!(cmd.request.method(), Method::Subscribe);
}

#[test]
fn malformed_commands_are_fatal() {
    for bad in [
        "not json",
        "[1,2]",
        r#"{"method":"ping"}"#,
        r#"{"id":"1","method":"ping"}"#,
        r#"{"id":-1,"method":"ping"}"#,
        r#"{"id":1}"#,
        r#"{"id":1,"method":"ping"} trailing"#,
    ] {
        let err = decode_command(bad.as_bytes()).unwrap_err();
        assert!(
            matches!(err, DecodeError::Malformed { .. }),
            "{bad}: {err:?}"
        );
        assert_eq!(err.id(), None);
        assert_eq!(err.reply(), None);
        assert_eq!(err.disconnect_code(), DisconnectCode::BadRequest);
    }
}

#[test]
fn unknown_method_is_answerable() {
    let err = decode_command(br#"{"id":10,"method":"teleport"}"#).unwrap_err();
    assert_eq!(err.id(), Some(10));
    let reply = err.reply().unwrap();
    assert_eq!(
        std::str::from_utf8(&encode_reply(&reply)).unwrap(),
        r#"{"id":10,"error":{"code":405,"message":"unknown method \"teleport\"","temporary":false}}"#
    );
}

#[test]
fn invalid_params_are_answerable() {
    for bad in [
        r#"{"id":11,"method":"subscribe","params":{}}"#,
        r#"{"id":11,"method":"subscribe","params":{"channel":5}}"#,
        r#"{"id":11,"method":"subscribe","params":{"channel":"c","recover":true}}"#,
        r#"{"id":11,"method":"publish","params":{"channel":"c"}}"#,
        r#"{"id":11,"method":"history","params":{"channel":"c","limit":-1}}"#,
        r#"{"id":11,"method":"ping","params":[1]}"#,
    ] {
        let err = decode_command(bad.as_bytes()).unwrap_err();
        assert!(
            matches!(err, DecodeError::InvalidParams { id: 11, .. }),
            "{bad}: {err:?}"
        );
        assert_eq!(
            err.reply().unwrap().outcome.unwrap_err().code,
            ErrorCode::BadRequest
        );
    }
}

#[test]
fn size_limit_is_checked_before_parsing() {
    let limits = Limits {
        max_frame_bytes: 32,
        ..Limits::default()
    };
    let big = format!(
        r#"{{"id":1,"method":"publish","params":{{"channel":"c","data":"{}"}}}}"#,
        "x".repeat(40)
    );
    let err = decode_command_with(big.as_bytes(), &limits).unwrap_err();
    assert_eq!(
        err,
        DecodeError::TooLarge {
            size: big.len(),
            limit: 32
        }
    );
    assert_eq!(err.disconnect_code(), DisconnectCode::MessageTooBig);
    assert_eq!(
        err.to_string(),
        format!("frame of {} bytes exceeds the limit of 32", big.len())
    );
    // Even garbage is refused for its size, not its content.
    let err = decode_command_with(&[b'{'; 33], &limits).unwrap_err();
    assert!(matches!(err, DecodeError::TooLarge { .. }));
}

#[test]
fn frames_carry_newline_delimited_batches() {
    let frame = b"{\"id\":1,\"method\":\"ping\"}\n\r\n{\"id\":2,\"method\":\"nope\"}\n{\"id\":3,\"method\":\"presence\",\"params\":{\"channel\":\"c\"}}\n";
    let cmds = decode_frame(frame, &Limits::default()).unwrap();
    assert_eq!(cmds.len(), 3);
    assert_eq!(cmds[0].as_ref().unwrap().request, Request::Ping);
    assert_eq!(cmds[1].as_ref().unwrap_err().id(), Some(2));
    assert_eq!(cmds[2].as_ref().unwrap().id, 3);

    let limits = Limits {
        max_commands: 2,
        ..Limits::default()
    };
    assert_eq!(
        decode_frame(frame, &limits).unwrap_err(),
        DecodeError::TooManyCommands { limit: 2 }
    );
    assert!(matches!(
        decode_frame(b" \n ", &Limits::default()).unwrap_err(),
        DecodeError::Malformed { .. }
    ));
}
