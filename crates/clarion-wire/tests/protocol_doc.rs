//! Keeps `docs/protocol.md` and the types in sync: every tagged JSON example
//! decodes, every method and push type has an example, and every code table
//! row matches the code's number, text and temporary flag.

use std::collections::HashSet;

use clarion_wire::*;
use serde::de::DeserializeOwned;

const DOC: &str = include_str!("../../../docs/protocol.md");

/// A fenced block tagged ```json <kind> [<arg>].
struct Example {
    kind: String,
    arg: Option<String>,
    body: String,
    line: usize,
}

fn examples() -> Vec<Example> {
    let mut out = Vec::new();
    let mut lines = DOC.lines().enumerate();
    while let Some((n, line)) = lines.next() {
        let Some(tag) = line.strip_prefix("```json ") else {
            continue;
        };
        let mut words = tag.split_whitespace().map(str::to_owned);
        let kind = words.next().expect("a tag");
        let arg = words.next();
        let body: Vec<&str> = lines
            .by_ref()
            .map(|(_, l)| l)
            .take_while(|l| *l != "```")
            .collect();
        out.push(Example {
            kind,
            arg,
            body: body.join("\n"),
            line: n + 1,
        });
    }
    out
}

fn check_result<T: DeserializeOwned>(raw: &RawReply, ex: &Example) {
    if raw.outcome.is_ok() {
        raw.result::<T>()
            .unwrap_or_else(|e| panic!("line {}: {e}", ex.line));
    }
}

fn check_reply(ex: &Example) -> String {
    let msg = decode_server_message(ex.body.as_bytes())
        .unwrap_or_else(|e| panic!("line {}: {e}", ex.line));
    let ServerMessage::Reply(raw) = msg else {
        panic!("line {}: not a reply", ex.line)
    };
    let method = ex.arg.clone().expect("reply examples name their method");
    match method.as_str() {
        "connect" => check_result::<ConnectResult>(&raw, ex),
        "subscribe" => check_result::<SubscribeResult>(&raw, ex),
        "publish" => check_result::<PublishResult>(&raw, ex),
        "presence" => check_result::<PresenceResult>(&raw, ex),
        "presence_stats" => check_result::<PresenceStatsResult>(&raw, ex),
        "history" => check_result::<HistoryResult>(&raw, ex),
        "refresh" | "sub_refresh" => check_result::<RefreshResult>(&raw, ex),
        "unsubscribe" | "ping" => check_result::<Empty>(&raw, ex),
        "unknown" => assert!(raw.outcome.is_err(), "line {}", ex.line),
        other => panic!("line {}: unknown method {other}", ex.line),
    }
    // The example is exactly what the server would send.
    let reencoded = match &raw.outcome {
        Ok(_) => return method,
        Err(e) => encode_reply(&Reply::error(raw.id, e.clone())),
    };
    assert_eq!(
        std::str::from_utf8(&reencoded).unwrap(),
        ex.body,
        "line {}",
        ex.line
    );
    method
}

fn push_kind(push: &Push) -> &'static str {
    match push {
        Push::Publication(_) => "publication",
        Push::Join(_) => "join",
        Push::Leave(_) => "leave",
        Push::Unsubscribe(_) => "unsubscribe",
        Push::Disconnect(_) => "disconnect",
        _ => "other",
    }
}

#[test]
fn every_example_decodes_and_every_message_has_one() {
    let mut commands = HashSet::new();
    let mut replies = HashSet::new();
    let mut pushes = HashSet::new();
    let all = examples();
    assert!(all.len() > 20, "found only {} examples", all.len());
    for ex in &all {
        match ex.kind.as_str() {
            "command" => {
                let cmd = decode_command(ex.body.as_bytes())
                    .unwrap_or_else(|e| panic!("line {}: {e}", ex.line));
                commands.insert(cmd.request.method().as_str());
            }
            "batch" => {
                let cmds = decode_frame(ex.body.as_bytes(), &Limits::default()).unwrap();
                assert!(
                    cmds.len() > 1 && cmds.iter().all(Result::is_ok),
                    "line {}",
                    ex.line
                );
            }
            "reply" => {
                replies.insert(check_reply(ex));
            }
            "push" => {
                let msg = decode_server_message(ex.body.as_bytes())
                    .unwrap_or_else(|e| panic!("line {}: {e}", ex.line));
                let ServerMessage::Push(push) = msg else {
                    panic!("line {}: not a push", ex.line)
                };
                assert_eq!(
                    std::str::from_utf8(&encode_push(&push)).unwrap(),
                    ex.body,
                    "line {}",
                    ex.line
                );
                pushes.insert(push_kind(&push));
            }
            other => panic!("line {}: unknown example kind {other}", ex.line),
        }
    }
    for method in Method::ALL {
        assert!(
            commands.contains(method.as_str()),
            "no command example for {}",
            method.as_str()
        );
        assert!(
            replies.contains(method.as_str()),
            "no reply example for {}",
            method.as_str()
        );
    }
    for kind in ["publication", "join", "leave", "unsubscribe", "disconnect"] {
        assert!(pushes.contains(kind), "no push example for {kind}");
    }
}

fn row(num: u16, text: &str, temporary: bool) -> String {
    let temp = if temporary { "yes" } else { "no" };
    format!("| {num} | {text} | {temp} |")
}

fn table_rows(first_digit_range: std::ops::RangeInclusive<u16>) -> usize {
    DOC.lines()
        .filter_map(|l| l.strip_prefix("| ")?.split(' ').next()?.parse::<u16>().ok())
        .filter(|n| first_digit_range.contains(n))
        .count()
}

#[test]
fn code_tables_match_the_code() {
    for c in ErrorCode::ALL {
        let r = row(c.as_u16(), c.text(), c.is_temporary());
        assert!(DOC.contains(&r), "missing row {r}");
    }
    for c in DisconnectCode::ALL {
        let r = row(c.as_u16(), c.text(), c.is_temporary());
        assert!(DOC.contains(&r), "missing row {r}");
    }
    for c in UnsubscribeCode::ALL {
        let r = row(c.as_u16(), c.text(), c.is_temporary());
        assert!(DOC.contains(&r), "missing row {r}");
    }
    // And no row documents a code the code does not have.
    assert_eq!(table_rows(100..=999), ErrorCode::ALL.len());
    assert_eq!(table_rows(4000..=4999), DisconnectCode::ALL.len());
    assert_eq!(table_rows(2000..=2999), UnsubscribeCode::ALL.len());
}
