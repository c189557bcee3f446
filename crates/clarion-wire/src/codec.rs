//! Turning frames into commands and replies/pushes into bytes.
//!
//! A client frame holds one command or several separated by `\n`
//! (newline-delimited JSON); blank lines are ignored. A server frame holds
//! one reply or push, but a transport may join several with `\n` (long
//! polling, SSE), so clients split on newlines too.

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::codes::{DisconnectCode, ErrorCode};
use crate::command::{Command, Method, Request};
use crate::data::Data;
use crate::push::{DisconnectPush, PresencePush, PublicationPush, Push, UnsubscribePush};
use crate::reply::{Reply, ReplyError};

/// Size limits for decoding client frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest frame accepted, in bytes. Default 64 KiB: a chat message or
    /// a state patch is far smaller, and a bigger publication belongs on
    /// the server API.
    pub max_frame_bytes: usize,
    /// Most commands in one frame. Default 64: enough to resubscribe to
    /// many channels at once, small enough that one frame cannot make the
    /// server do unbounded work.
    pub max_commands: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_frame_bytes: 64 * 1024,
            max_commands: 64,
        }
    }
}

/// Why a frame or a command could not be decoded.
///
/// Errors that carry an `id` are answered with an error reply and the
/// connection continues; the others end the connection (see
/// [`DecodeError::disconnect_code`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The frame is larger than [`Limits::max_frame_bytes`].
    TooLarge {
        /// The frame's size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The frame holds more than [`Limits::max_commands`] commands.
    TooManyCommands {
        /// The limit.
        limit: usize,
    },
    /// Not a JSON object with a numeric `id` and a string `method`.
    Malformed {
        /// What was wrong.
        message: String,
    },
    /// A well-formed command with a method this version does not know.
    UnknownMethod {
        /// The command's id.
        id: u32,
        /// The method it named.
        method: String,
    },
    /// A known method with params that are not valid.
    InvalidParams {
        /// The command's id.
        id: u32,
        /// The method.
        method: Method,
        /// What was wrong.
        message: String,
    },
}

impl DecodeError {
    /// The command id to answer, when the error can be answered with a reply.
    pub fn id(&self) -> Option<u32> {
        match self {
            DecodeError::UnknownMethod { id, .. } | DecodeError::InvalidParams { id, .. } => {
                Some(*id)
            }
            _ => None,
        }
    }

    /// The error reply for an answerable error (one with an [`id`](Self::id)).
    pub fn reply(&self) -> Option<Reply> {
        let error = match self {
            DecodeError::UnknownMethod { .. } => {
                ReplyError::with_message(ErrorCode::MethodNotFound, self.to_string())
            }
            DecodeError::InvalidParams { .. } => {
                ReplyError::with_message(ErrorCode::BadRequest, self.to_string())
            }
            _ => return None,
        };
        Some(Reply::error(self.id()?, error))
    }

    /// The code to disconnect with, for errors without an id.
    pub fn disconnect_code(&self) -> DisconnectCode {
        match self {
            DecodeError::TooLarge { .. } => DisconnectCode::MessageTooBig,
            _ => DisconnectCode::BadRequest,
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::TooLarge { size, limit } => {
                write!(f, "frame of {size} bytes exceeds the limit of {limit}")
            }
            DecodeError::TooManyCommands { limit } => {
                write!(f, "more than {limit} commands in one frame")
            }
            DecodeError::Malformed { message } => write!(f, "malformed command: {message}"),
            DecodeError::UnknownMethod { method, .. } => write!(f, "unknown method {method:?}"),
            DecodeError::InvalidParams {
                method, message, ..
            } => write!(f, "invalid {} params: {message}", method.as_str()),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Decodes one command (no newlines between commands) within the default
/// [`Limits`].
pub fn decode_command(bytes: &[u8]) -> Result<Command, DecodeError> {
    decode_command_with(bytes, &Limits::default())
}

/// Decodes one command within `limits`.
pub fn decode_command_with(bytes: &[u8], limits: &Limits) -> Result<Command, DecodeError> {
    check_size(bytes, limits)?;
    decode_one(bytes)
}

/// Decodes a frame of newline-separated commands. The outer error ends the
/// connection (the frame as a whole is refused); each command's own error
/// may be answerable (see [`DecodeError::id`]).
pub fn decode_frame(
    bytes: &[u8],
    limits: &Limits,
) -> Result<Vec<Result<Command, DecodeError>>, DecodeError> {
    check_size(bytes, limits)?;
    let lines: Vec<&[u8]> = bytes
        .split(|b| *b == b'\n')
        .map(trim)
        .filter(|line| !line.is_empty())
        .collect();
    if lines.len() > limits.max_commands {
        return Err(DecodeError::TooManyCommands {
            limit: limits.max_commands,
        });
    }
    if lines.is_empty() {
        return Err(malformed("empty frame"));
    }
    Ok(lines.into_iter().map(decode_one).collect())
}

fn check_size(bytes: &[u8], limits: &Limits) -> Result<(), DecodeError> {
    if bytes.len() > limits.max_frame_bytes {
        return Err(DecodeError::TooLarge {
            size: bytes.len(),
            limit: limits.max_frame_bytes,
        });
    }
    Ok(())
}

fn trim(line: &[u8]) -> &[u8] {
    let start = line.iter().position(|b| !b.is_ascii_whitespace());
    let end = line.iter().rposition(|b| !b.is_ascii_whitespace());
    match (start, end) {
        (Some(s), Some(e)) => &line[s..=e],
        _ => &[],
    }
}

fn malformed(message: impl Into<String>) -> DecodeError {
    DecodeError::Malformed {
        message: message.into(),
    }
}

#[derive(Deserialize)]
struct RawCommand<'a> {
    id: Option<u32>,
    #[serde(borrow)]
    method: Option<Cow<'a, str>>,
    #[serde(borrow)]
    params: Option<&'a RawValue>,
}

fn decode_one(bytes: &[u8]) -> Result<Command, DecodeError> {
    let raw: RawCommand<'_> =
        serde_json::from_slice(bytes).map_err(|e| malformed(e.to_string()))?;
    let id = raw.id.ok_or_else(|| malformed("missing id"))?;
    let name = raw.method.ok_or_else(|| malformed("missing method"))?;
    let Some(method) = Method::from_name(&name) else {
        return Err(DecodeError::UnknownMethod {
            id,
            method: name.into_owned(),
        });
    };
    let params = raw.params.map_or("{}", RawValue::get);
    let invalid = |message: String| DecodeError::InvalidParams {
        id,
        method,
        message,
    };
    if !params.starts_with('{') {
        return Err(invalid("params must be an object".into()));
    }
    let request = parse_request(method, params).map_err(|e| invalid(e.to_string()))?;
    match &request {
        Request::Subscribe(sub) => sub.validate().map_err(invalid)?,
        Request::Publish(publish) => publish.validate().map_err(invalid)?,
        _ => {}
    }
    Ok(Command { id, request })
}

fn parse_request(method: Method, params: &str) -> Result<Request, serde_json::Error> {
    fn p<T: DeserializeOwned>(params: &str) -> Result<T, serde_json::Error> {
        serde_json::from_str(params)
    }
    Ok(match method {
        Method::Connect => Request::Connect(p(params)?),
        Method::Subscribe => Request::Subscribe(p(params)?),
        Method::Unsubscribe => Request::Unsubscribe(p(params)?),
        Method::Publish => Request::Publish(p(params)?),
        Method::Presence => Request::Presence(p(params)?),
        Method::PresenceStats => Request::PresenceStats(p(params)?),
        Method::History => Request::History(p(params)?),
        Method::Ping => {
            p::<serde::de::IgnoredAny>(params)?;
            Request::Ping
        }
        Method::Refresh => Request::Refresh(p(params)?),
        Method::SubRefresh => Request::SubRefresh(p(params)?),
    })
}

/// Encodes a command (what a client sends).
pub fn encode_command(command: &Command) -> Bytes {
    #[derive(Serialize)]
    struct Out<'a, P: Serialize> {
        id: u32,
        method: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        params: Option<&'a P>,
    }
    fn out<P: Serialize>(command: &Command, params: Option<&P>) -> Bytes {
        let method = command.request.method().as_str();
        to_bytes(&Out {
            id: command.id,
            method,
            params,
        })
    }
    match &command.request {
        Request::Connect(p) => out(command, Some(p)),
        Request::Subscribe(p) => out(command, Some(p)),
        Request::Unsubscribe(p) | Request::Presence(p) | Request::PresenceStats(p) => {
            out(command, Some(p))
        }
        Request::Publish(p) => out(command, Some(p)),
        Request::History(p) => out(command, Some(p)),
        Request::Ping => out::<()>(command, None),
        Request::Refresh(p) => out(command, Some(p)),
        Request::SubRefresh(p) => out(command, Some(p)),
    }
}

/// Encodes a reply.
pub fn encode_reply(reply: &Reply) -> Bytes {
    to_bytes(reply)
}

/// Encodes a push. Encode a publication once and share the `Bytes` with
/// every subscriber.
pub fn encode_push(push: &Push) -> Bytes {
    to_bytes(push)
}

fn to_bytes<T: Serialize + ?Sized>(value: &T) -> Bytes {
    // Our types have string keys and no fallible Serialize impls, and
    // `Data` is valid JSON by construction: encoding cannot fail.
    let vec = serde_json::to_vec(value).expect("protocol types always encode");
    Bytes::from(vec)
}

/// A message from the server, as a client decodes it.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerMessage {
    /// The answer to a command.
    Reply(RawReply),
    /// A push.
    Push(Push),
}

/// A reply whose result is kept as JSON until the client, who knows which
/// method it asked for, parses it with [`RawReply::result`].
#[derive(Debug, Clone, PartialEq)]
pub struct RawReply {
    /// The command's id.
    pub id: u32,
    /// The result JSON, or the error.
    pub outcome: Result<Data, ReplyError>,
}

impl RawReply {
    /// Parses the result as `T` (for example `SubscribeResult`).
    pub fn result<T: DeserializeOwned>(&self) -> Result<T, ReplyError> {
        let data = self.outcome.as_ref().map_err(Clone::clone)?;
        serde_json::from_str(data.get())
            .map_err(|e| ReplyError::with_message(ErrorCode::BadRequest, e.to_string()))
    }
}

/// Decodes one server message (no newlines).
pub fn decode_server_message(bytes: &[u8]) -> Result<ServerMessage, serde_json::Error> {
    #[derive(Deserialize)]
    struct Head {
        id: Option<u32>,
        push: Option<String>,
        result: Option<Data>,
        error: Option<ReplyError>,
    }
    let head: Head = serde_json::from_slice(bytes)?;
    if let Some(kind) = head.push {
        return decode_push(&kind, bytes).map(ServerMessage::Push);
    }
    let id = head.id.ok_or_else(|| de_error("neither id nor push"))?;
    let outcome = match (head.result, head.error) {
        (Some(result), None) => Ok(result),
        (None, Some(error)) => Err(error),
        _ => return Err(de_error("a reply has exactly one of result and error")),
    };
    Ok(ServerMessage::Reply(RawReply { id, outcome }))
}

fn decode_push(kind: &str, bytes: &[u8]) -> Result<Push, serde_json::Error> {
    Ok(match kind {
        "publication" => Push::Publication(serde_json::from_slice::<PublicationPush>(bytes)?),
        "join" => Push::Join(serde_json::from_slice::<PresencePush>(bytes)?),
        "leave" => Push::Leave(serde_json::from_slice::<PresencePush>(bytes)?),
        "unsubscribe" => Push::Unsubscribe(serde_json::from_slice::<UnsubscribePush>(bytes)?),
        "disconnect" => Push::Disconnect(serde_json::from_slice::<DisconnectPush>(bytes)?),
        other => return Err(de_error(&format!("unknown push {other:?}"))),
    })
}

fn de_error(message: &str) -> serde_json::Error {
    <serde_json::Error as serde::de::Error>::custom(message)
}
