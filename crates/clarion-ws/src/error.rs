//! One opaque error type with predicates (`is_closed`, `is_timeout`, ...):
//! callers ask what happened instead of matching on variants that will grow.

use std::fmt;
use std::io;

use clarion_proto::handshake::HandshakeError;
use clarion_proto::{CloseCode, LocalError, ProtocolError};

/// Why a WebSocket operation failed.
pub struct Error {
    kind: Kind,
}

#[derive(Debug)]
pub(crate) enum Kind {
    /// The transport failed.
    Io(io::Error),
    /// The peer violated RFC 6455; a close frame with its code was sent.
    Protocol(ProtocolError),
    /// The call was not valid in this state (e.g. a too-long ping payload).
    Local(LocalError),
    /// The opening handshake failed.
    Handshake(HandshakeError),
    /// Our policy refused the handshake with this HTTP status.
    Rejected(http::StatusCode),
    /// The connection is closed: nothing more can be sent.
    Closed,
    /// The peer dropped the connection without a close frame (1006).
    Abnormal,
    /// A timer ran out.
    Timeout(Timeout),
    /// The peer went over one of our limits without breaking the protocol
    /// (e.g. a ping flood); a close frame with 1008 was sent.
    Limit(&'static str),
    /// A URL we cannot connect to.
    Url(String),
    /// TLS setup or handshake failed.
    Tls(crate::tls::TlsError),
    /// The configuration is invalid.
    Config(clarion_proto::ConfigError),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Timeout {
    Handshake,
    Close,
    Pong,
    /// Nothing arrived within `Config::idle_timeout`.
    Idle,
    /// The peer accepted none of our bytes within `Config::write_timeout`.
    Write,
}

impl Error {
    pub(crate) fn new(kind: Kind) -> Self {
        Error { kind }
    }

    /// The connection is closed (normally or not): nothing more can be sent.
    pub fn is_closed(&self) -> bool {
        matches!(self.kind, Kind::Closed | Kind::Abnormal)
    }

    /// A timer ran out: handshake, close handshake, pong (heartbeat), idle
    /// or write timeout.
    pub fn is_timeout(&self) -> bool {
        matches!(self.kind, Kind::Timeout(_))
    }

    /// The peer did not answer a heartbeat ping in time.
    pub fn is_heartbeat_timeout(&self) -> bool {
        matches!(self.kind, Kind::Timeout(Timeout::Pong))
    }

    /// The peer sent nothing within the idle timeout.
    pub fn is_idle_timeout(&self) -> bool {
        matches!(self.kind, Kind::Timeout(Timeout::Idle))
    }

    /// The peer accepted none of our bytes within the write timeout (it
    /// stopped reading); the connection was dropped.
    pub fn is_write_timeout(&self) -> bool {
        matches!(self.kind, Kind::Timeout(Timeout::Write))
    }

    /// The peer went over a limit that is not a protocol rule (too many
    /// control frames per second); the connection was closed with 1008.
    pub fn is_limit(&self) -> bool {
        matches!(self.kind, Kind::Limit(_))
    }

    /// The peer violated the protocol.
    pub fn is_protocol(&self) -> bool {
        matches!(self.kind, Kind::Protocol(_))
    }

    /// The opening handshake failed or was refused.
    pub fn is_handshake(&self) -> bool {
        matches!(self.kind, Kind::Handshake(_) | Kind::Rejected(_))
    }

    /// The transport failed.
    pub fn is_io(&self) -> bool {
        matches!(self.kind, Kind::Io(_))
    }

    /// The caller misused the API (nothing was sent).
    pub fn is_local(&self) -> bool {
        matches!(self.kind, Kind::Local(_) | Kind::Config(_))
    }

    /// The close code this failure maps to: the code we sent for a protocol
    /// violation, 1006 for a dropped connection.
    pub fn close_code(&self) -> Option<CloseCode> {
        match &self.kind {
            Kind::Protocol(err) => Some(err.close_code()),
            Kind::Abnormal => Some(CloseCode::ABNORMAL),
            Kind::Timeout(Timeout::Pong) => Some(CloseCode::ABNORMAL),
            Kind::Timeout(Timeout::Idle) => Some(CloseCode::GOING_AWAY),
            Kind::Limit(_) => Some(CloseCode::POLICY),
            _ => None,
        }
    }

    /// The HTTP status of a failed or refused handshake: the one we answered
    /// with (server side) or the one we got (client side; `None` when the
    /// server answered 101 but the answer was invalid).
    pub fn http_status(&self) -> Option<http::StatusCode> {
        match &self.kind {
            Kind::Handshake(HandshakeError::UnexpectedStatus(status)) => Some(*status),
            Kind::Handshake(
                HandshakeError::MissingAcceptKey
                | HandshakeError::AcceptKeyMismatch
                | HandshakeError::UnexpectedProtocol(_)
                | HandshakeError::UnexpectedExtensions(_),
            ) => None,
            Kind::Handshake(err) => Some(err.status()),
            Kind::Rejected(status) => Some(*status),
            _ => None,
        }
    }

    /// The peer's protocol violation, if that is what this is.
    pub fn protocol_error(&self) -> Option<&ProtocolError> {
        match &self.kind {
            Kind::Protocol(err) => Some(err),
            _ => None,
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Error").field(&self.kind).finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Io(err) => write!(f, "I/O error: {err}"),
            Kind::Protocol(err) => write!(f, "protocol error ({}): {err}", err.close_code()),
            Kind::Local(err) => write!(f, "invalid use: {err}"),
            Kind::Handshake(err) => write!(f, "handshake failed: {err}"),
            Kind::Rejected(status) => write!(f, "handshake refused with HTTP {status}"),
            Kind::Closed => f.write_str("connection closed"),
            Kind::Abnormal => f.write_str("connection dropped without a close frame (1006)"),
            Kind::Timeout(Timeout::Handshake) => f.write_str("opening handshake timed out"),
            Kind::Timeout(Timeout::Close) => f.write_str("close handshake timed out"),
            Kind::Timeout(Timeout::Pong) => f.write_str("no pong within the heartbeat timeout"),
            Kind::Timeout(Timeout::Idle) => f.write_str("nothing received within the idle timeout"),
            Kind::Timeout(Timeout::Write) => {
                f.write_str("the peer read nothing within the write timeout")
            }
            Kind::Limit(what) => write!(f, "peer over a limit (1008): {what}"),
            Kind::Url(why) => write!(f, "invalid URL: {why}"),
            Kind::Tls(err) => write!(f, "{err}"),
            Kind::Config(err) => write!(f, "{err}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            Kind::Io(err) => Some(err),
            Kind::Protocol(err) => Some(err),
            Kind::Local(err) => Some(err),
            Kind::Handshake(err) => Some(err),
            Kind::Tls(err) => Some(err),
            Kind::Config(err) => Some(err),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(err: io::Error) -> Self {
        Error::new(Kind::Io(err))
    }
}

impl From<ProtocolError> for Error {
    fn from(err: ProtocolError) -> Self {
        Error::new(Kind::Protocol(err))
    }
}

impl From<LocalError> for Error {
    fn from(err: LocalError) -> Self {
        match err {
            LocalError::SendAfterClose => Error::new(Kind::Closed),
            other => Error::new(Kind::Local(other)),
        }
    }
}

impl From<HandshakeError> for Error {
    fn from(err: HandshakeError) -> Self {
        Error::new(Kind::Handshake(err))
    }
}

impl From<crate::tls::TlsError> for Error {
    fn from(err: crate::tls::TlsError) -> Self {
        Error::new(Kind::Tls(err))
    }
}

impl From<clarion_proto::ConfigError> for Error {
    fn from(err: clarion_proto::ConfigError) -> Self {
        Error::new(Kind::Config(err))
    }
}

/// Why [`try_send`](crate::WebSocket::try_send) did not queue the message;
/// the message is handed back.
#[non_exhaustive]
#[derive(Debug)]
pub enum TrySendError {
    /// The write buffer is over its limit: wait (`flush`) and retry, or drop.
    Full(clarion_proto::Message),
    /// A fragmented message is being sent; whole messages wait for its end.
    FragmentInProgress(clarion_proto::Message),
    /// The connection is closed.
    Closed(clarion_proto::Message),
}

impl fmt::Display for TrySendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("write buffer full"),
            TrySendError::FragmentInProgress(_) => {
                f.write_str("a fragmented message is being sent")
            }
            TrySendError::Closed(_) => f.write_str("connection closed"),
        }
    }
}

impl std::error::Error for TrySendError {}
