//! The hub's command decoder: `clarion_wire::decode_frame`, one WebSocket
//! message of newline-separated JSON commands.

use clarion_proto::CloseCode;
use clarion_wire::{
    decode_command_with, decode_frame, decode_server_message, encode_command, encode_reply,
    DecodeError, Limits, ServerMessage,
};

use crate::input::Input;

/// No limits: for decoding what we encoded ourselves.
const UNBOUNDED: Limits = Limits {
    max_frame_bytes: usize::MAX,
    max_commands: usize::MAX,
};

/// `[limits] frame...`: bits 0–1 of `limits` pick the frame size limit
/// (16, 256, 4096 or 64 Ki bytes), bits 2–3 the command count (1, 2, 8, 64).
///
/// Checks: a frame is refused as too large exactly when it is over the
/// limit, and for too many commands only when it has more non-blank lines;
/// a frame is decoded line by line as each line alone decodes; every
/// decoded command encodes to one line that decodes to the same command;
/// an error with a command id has an error reply a client decodes with
/// that id and code, and one without disconnects with a close code a server
/// may send.
pub fn wire_commands(data: &[u8]) {
    let mut input = Input::new(data);
    let limits_byte = input.byte();
    let limits = Limits {
        max_frame_bytes: [16, 256, 4096, 64 * 1024][usize::from(limits_byte & 3)],
        max_commands: [1, 2, 8, 64][usize::from((limits_byte >> 2) & 3)],
    };
    let frame = input.rest();
    let lines: Vec<&[u8]> = frame
        .split(|&b| b == b'\n')
        .map(<[u8]>::trim_ascii)
        .filter(|line| !line.is_empty())
        .collect();
    match decode_frame(frame, &limits) {
        Err(DecodeError::TooLarge { size, limit }) => {
            assert_eq!((size, limit), (frame.len(), limits.max_frame_bytes));
            assert!(size > limit);
        }
        Err(DecodeError::TooManyCommands { limit }) => {
            assert!(frame.len() <= limits.max_frame_bytes);
            assert!(lines.len() > limit);
        }
        Err(err) => {
            assert!(
                lines.is_empty(),
                "a frame with commands refused whole: {err:?}"
            );
            check_error(&err);
        }
        Ok(results) => {
            assert!(frame.len() <= limits.max_frame_bytes);
            assert_eq!(results.len(), lines.len());
            assert!(!results.is_empty() && results.len() <= limits.max_commands);
            for (line, result) in lines.iter().zip(&results) {
                assert_eq!(&decode_command_with(line, &UNBOUNDED), result);
                match result {
                    Ok(command) => {
                        let encoded = encode_command(command);
                        assert!(!encoded.contains(&b'\n'), "a command over two lines");
                        let again = decode_command_with(&encoded, &UNBOUNDED);
                        assert_eq!(
                            again.as_ref(),
                            Ok(command),
                            "{:?}",
                            String::from_utf8_lossy(&encoded)
                        );
                    }
                    Err(err) => check_error(err),
                }
            }
        }
    }
}

/// An answerable error has a reply a client reads back; any other one
/// disconnects with a close code we may send.
fn check_error(err: &DecodeError) {
    assert!(!err.to_string().is_empty());
    let Some(id) = err.id() else {
        assert_eq!(err.reply(), None);
        let code = CloseCode(err.disconnect_code().close_code());
        assert!(code.is_sendable(), "{err:?} disconnects with {code}");
        return;
    };
    let reply = err.reply().expect("an error with an id has a reply");
    let encoded = encode_reply(&reply);
    assert!(!encoded.contains(&b'\n'), "a reply over two lines");
    let Ok(ServerMessage::Reply(raw)) = decode_server_message(&encoded) else {
        panic!("our error reply does not decode: {encoded:?}");
    };
    assert_eq!(raw.id, id);
    let expected = reply.outcome.err().map(|e| e.code);
    assert_eq!(raw.outcome.err().map(|e| e.code), expected);
}
