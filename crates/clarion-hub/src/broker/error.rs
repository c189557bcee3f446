//! [`BrokerError`]: what went wrong talking to a broker, and whether trying
//! again later can help.

use std::fmt;

use clarion_wire::{ErrorCode, ReplyError};

/// A broker failure. Opaque, with predicates: ask [`is_temporary`]
/// (answer 503 and let the client retry) rather than matching messages.
///
/// [`is_temporary`]: BrokerError::is_temporary
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerError {
    kind: BrokerErrorKind,
    message: String,
}

/// The broad class of a [`BrokerError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BrokerErrorKind {
    /// The backend cannot be reached right now: connection refused, lost
    /// or timed out, the backend loading or failing over. Temporary: the
    /// same call may succeed later (the hub answers 503).
    Unavailable,
    /// The backend answered and refused the operation (a script error, out
    /// of memory, a wrong type at a key). Retrying the same call will not
    /// help.
    Refused,
    /// The call itself is invalid for this broker (called in the wrong
    /// state, a name the backend cannot store). A bug in the caller.
    Invalid,
    /// [`send_control`](crate::Broker::send_control) named a node that is
    /// not (or no longer) live.
    NoSuchNode,
}

impl BrokerError {
    /// A temporary failure: the backend cannot be reached right now.
    pub fn unavailable(message: impl Into<String>) -> BrokerError {
        BrokerError::with_kind(BrokerErrorKind::Unavailable, message)
    }

    /// The backend refused the operation (not temporary).
    pub fn refused(message: impl Into<String>) -> BrokerError {
        BrokerError::with_kind(BrokerErrorKind::Refused, message)
    }

    /// The call is invalid for this broker (not temporary).
    pub fn invalid(message: impl Into<String>) -> BrokerError {
        BrokerError::with_kind(BrokerErrorKind::Invalid, message)
    }

    /// No live node has the id `node`.
    pub fn no_such_node(node: &str) -> BrokerError {
        BrokerError::with_kind(
            BrokerErrorKind::NoSuchNode,
            format!("no live node {node:?}"),
        )
    }

    /// An error of `kind` with a description.
    pub fn with_kind(kind: BrokerErrorKind, message: impl Into<String>) -> BrokerError {
        BrokerError {
            kind,
            message: message.into(),
        }
    }

    /// The class of the error.
    pub fn kind(&self) -> BrokerErrorKind {
        self.kind
    }

    /// The description, without the `broker:` prefix of `Display`.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether the same call may succeed later ([`BrokerErrorKind::Unavailable`]).
    pub fn is_temporary(&self) -> bool {
        self.kind == BrokerErrorKind::Unavailable
    }

    /// Whether a [`send_control`](crate::Broker::send_control) found no such node.
    pub fn is_no_such_node(&self) -> bool {
        self.kind == BrokerErrorKind::NoSuchNode
    }
}

impl fmt::Display for BrokerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            BrokerErrorKind::Unavailable => "unavailable",
            BrokerErrorKind::Refused => "refused",
            BrokerErrorKind::Invalid => "invalid call",
            BrokerErrorKind::NoSuchNode => "no such node",
        };
        write!(f, "broker {kind}: {}", self.message)
    }
}

impl std::error::Error for BrokerError {}

/// A broker failure as a client's or backend's error: `503` (temporary:
/// retry) while the broker is unavailable, `500` when it refused.
impl From<BrokerError> for ReplyError {
    fn from(e: BrokerError) -> ReplyError {
        let code = match e.is_temporary() {
            true => ErrorCode::Unavailable,
            false => ErrorCode::Internal,
        };
        ReplyError::with_message(code, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unavailable_is_temporary() {
        assert!(BrokerError::unavailable("timeout").is_temporary());
        assert!(!BrokerError::refused("OOM").is_temporary());
        assert!(!BrokerError::invalid("run twice").is_temporary());
        assert!(BrokerError::no_such_node("n1").is_no_such_node());
        let shown = BrokerError::refused("NOSCRIPT").to_string();
        assert_eq!(shown, "broker refused: NOSCRIPT");
    }

    #[test]
    fn clients_get_503_only_for_what_a_retry_can_fix() {
        let down = ReplyError::from(BrokerError::unavailable("timeout"));
        assert_eq!((down.code, down.temporary), (ErrorCode::Unavailable, true));
        let refused = ReplyError::from(BrokerError::refused("OOM"));
        assert_eq!(refused.code, ErrorCode::Internal);
    }
}
