//! Close codes and close frames (RFC 6455 section 7.4).

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{LocalError, ProtocolError};

/// A close status code (RFC 6455 section 7.4).
///
/// Any `u16` can be held; [`CloseCode::is_valid_on_wire`] says whether a peer
/// may send it, and [`CloseCode::is_sendable`] whether we may.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: the purpose of the connection has been fulfilled.
    pub const NORMAL: CloseCode = CloseCode(1000);
    /// 1001: the endpoint is going away (server shutdown, page navigation).
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    /// 1002: the peer violated the protocol.
    pub const PROTOCOL_ERROR: CloseCode = CloseCode(1002);
    /// 1003: a data type the endpoint cannot accept.
    pub const UNSUPPORTED_DATA: CloseCode = CloseCode(1003);
    /// 1005: no status code was present. Never sent on the wire.
    pub const NO_STATUS: CloseCode = CloseCode(1005);
    /// 1006: the connection closed without a close frame. Never sent on the wire.
    pub const ABNORMAL: CloseCode = CloseCode(1006);
    /// 1007: message data inconsistent with its type (invalid UTF-8 in text).
    pub const INVALID_PAYLOAD: CloseCode = CloseCode(1007);
    /// 1008: a message violated the endpoint's policy.
    pub const POLICY: CloseCode = CloseCode(1008);
    /// 1009: a message is too big to process.
    pub const TOO_BIG: CloseCode = CloseCode(1009);
    /// 1010: the client expected an extension the server did not negotiate.
    pub const MANDATORY_EXTENSION: CloseCode = CloseCode(1010);
    /// 1011: the server hit an unexpected condition.
    pub const INTERNAL_ERROR: CloseCode = CloseCode(1011);
    /// 1012: the service is restarting.
    pub const SERVICE_RESTART: CloseCode = CloseCode(1012);
    /// 1013: try again later (temporary overload).
    pub const TRY_AGAIN_LATER: CloseCode = CloseCode(1013);
    /// 1014: a gateway received an invalid response upstream.
    pub const BAD_GATEWAY: CloseCode = CloseCode(1014);
    /// 1015: TLS handshake failure. Never sent on the wire.
    pub const TLS_HANDSHAKE: CloseCode = CloseCode(1015);

    /// Whether a peer may put this code in a close frame.
    ///
    /// Valid: 1000–1003, 1007–1014 (1012–1014 are registered with IANA),
    /// 3000–4999. Everything else — 0–999, 1004–1006, 1015, unassigned
    /// 1016–2999 and 5000+ — makes the close frame a protocol error.
    pub fn is_valid_on_wire(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }

    /// Whether we may send this code (same set as [`is_valid_on_wire`](Self::is_valid_on_wire)).
    pub fn is_sendable(self) -> bool {
        self.is_valid_on_wire()
    }
}

impl From<u16> for CloseCode {
    fn from(code: u16) -> Self {
        CloseCode(code)
    }
}

impl From<CloseCode> for u16 {
    fn from(code: CloseCode) -> Self {
        code.0
    }
}

impl std::fmt::Display for CloseCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The code and reason of a close frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseFrame {
    /// The status code.
    pub code: CloseCode,
    /// A UTF-8 reason of at most 123 bytes, for humans (may be empty).
    pub reason: String,
}

/// Largest reason that fits a control frame: 125 bytes minus the 2-byte code.
pub const MAX_CLOSE_REASON_LEN: usize = 123;

impl CloseFrame {
    /// A close frame with `code` and `reason`.
    pub fn new(code: CloseCode, reason: impl Into<String>) -> Self {
        CloseFrame {
            code,
            reason: reason.into(),
        }
    }

    /// Parses a received close payload.
    ///
    /// Empty means "no status" (`Ok(None)`); one byte, an invalid code or a
    /// reason that is not UTF-8 are protocol errors.
    pub fn parse(payload: &[u8]) -> Result<Option<CloseFrame>, ProtocolError> {
        match payload {
            [] => Ok(None),
            [_] => Err(ProtocolError::InvalidClosePayload),
            [hi, lo, reason @ ..] => {
                let code = CloseCode(u16::from_be_bytes([*hi, *lo]));
                if !code.is_valid_on_wire() {
                    return Err(ProtocolError::InvalidCloseCode(code.0));
                }
                let reason = simdutf8::basic::from_utf8(reason)
                    .map_err(|_| ProtocolError::InvalidCloseReason)?;
                Ok(Some(CloseFrame::new(code, reason)))
            }
        }
    }

    /// Checks that this frame may be sent: a sendable code and a short enough reason.
    pub fn validate(&self) -> Result<(), LocalError> {
        if !self.code.is_sendable() {
            return Err(LocalError::InvalidCloseCode(self.code.0));
        }
        if self.reason.len() > MAX_CLOSE_REASON_LEN {
            return Err(LocalError::CloseReasonTooLong(self.reason.len()));
        }
        Ok(())
    }

    /// The wire payload: the code in network byte order, then the reason.
    pub fn to_payload(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(2 + self.reason.len());
        buf.put_u16(self.code.0);
        buf.put_slice(self.reason.as_bytes());
        buf.freeze()
    }
}

#[cfg(test)]
mod tests {
    //! RFC 6455 section 7.4: status codes, and 5.5.1: the close payload.
    use super::*;

    #[test]
    fn codes_valid_on_the_wire() {
        for code in [
            1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999,
        ] {
            assert!(CloseCode(code).is_valid_on_wire(), "{code} should be valid");
        }
    }

    #[test]
    fn codes_invalid_on_the_wire() {
        for code in [
            0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ] {
            assert!(
                !CloseCode(code).is_valid_on_wire(),
                "{code} should be invalid"
            );
        }
    }

    #[test]
    fn empty_payload_is_no_status() {
        assert_eq!(CloseFrame::parse(b""), Ok(None));
    }

    #[test]
    fn one_byte_payload_is_a_protocol_error() {
        assert_eq!(
            CloseFrame::parse(&[0x03]),
            Err(ProtocolError::InvalidClosePayload)
        );
    }

    #[test]
    fn code_and_reason_parse() {
        let frame = CloseFrame::parse(b"\x03\xe8bye").unwrap().unwrap();
        assert_eq!(frame, CloseFrame::new(CloseCode::NORMAL, "bye"));
    }

    #[test]
    fn invalid_code_is_rejected() {
        assert_eq!(
            CloseFrame::parse(&[0x03, 0xed]),
            Err(ProtocolError::InvalidCloseCode(1005))
        );
    }

    #[test]
    fn reason_must_be_utf8() {
        assert_eq!(
            CloseFrame::parse(b"\x03\xe8\xff\xfe"),
            Err(ProtocolError::InvalidCloseReason)
        );
    }

    #[test]
    fn payload_round_trips() {
        let frame = CloseFrame::new(CloseCode(4001), "custom");
        assert_eq!(CloseFrame::parse(&frame.to_payload()), Ok(Some(frame)));
    }

    #[test]
    fn sending_reserved_codes_is_refused() {
        let frame = CloseFrame::new(CloseCode::ABNORMAL, "");
        assert_eq!(frame.validate(), Err(LocalError::InvalidCloseCode(1006)));
    }

    #[test]
    fn sending_a_long_reason_is_refused() {
        let frame = CloseFrame::new(CloseCode::NORMAL, "x".repeat(124));
        assert_eq!(frame.validate(), Err(LocalError::CloseReasonTooLong(124)));
    }
}
