//! Errors as data: what the peer did wrong (with its close code) versus what
//! the caller did wrong. A normal close is an event, never an error.

use crate::close::CloseCode;

/// A violation by the peer. Each one knows the close code to fail the
/// connection with (RFC 6455 section 7.1.7).
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProtocolError {
    /// An opcode RFC 6455 reserves (3–7, 0xB–0xF).
    ReservedOpcode(u8),
    /// RSV1, RSV2 or RSV3 set without an extension that defines it.
    ReservedBits,
    /// A client sent an unmasked frame (section 5.1).
    UnmaskedFrame,
    /// A server sent a masked frame (section 5.1).
    MaskedFrame,
    /// A control frame without FIN (section 5.5).
    FragmentedControlFrame,
    /// A control frame with a payload over 125 bytes (section 5.5).
    ControlFrameTooLong(u64),
    /// A 64-bit payload length with its most significant bit set (section 5.2).
    InvalidPayloadLength,
    /// A continuation frame with no message in progress (section 5.4).
    UnexpectedContinuation,
    /// A new text or binary frame while a fragmented message is in progress.
    ExpectedContinuation,
    /// A text message or close reason that is not valid UTF-8 (section 8.1).
    InvalidUtf8,
    /// A close frame with a one-byte payload (section 5.5.1).
    InvalidClosePayload,
    /// A close code a peer may not send (section 7.4).
    InvalidCloseCode(u16),
    /// A close reason that is not valid UTF-8.
    InvalidCloseReason,
    /// A compressed control frame, or RSV1 on a continuation frame (RFC 7692).
    InvalidCompressionBit,
    /// A frame larger than the configured limit.
    FrameTooLarge {
        /// The frame's payload length.
        size: u64,
        /// The configured maximum.
        limit: usize,
    },
    /// A message larger than the configured limit.
    MessageTooLarge {
        /// The size the message reached (at least).
        size: u64,
        /// The configured maximum.
        limit: usize,
    },
    /// A compressed message that is not valid DEFLATE data (RFC 7692).
    InvalidCompressedData,
    /// A compressed message that inflates to more than the limit: a
    /// decompression bomb, stopped while inflating.
    DecompressedTooLarge {
        /// The configured maximum message size.
        limit: usize,
    },
    /// A compressed message inflating far more than real data does.
    CompressionRatioTooHigh {
        /// The configured maximum ratio.
        limit: u32,
    },
    /// A message split into more fragments than the configured limit.
    TooManyFragments {
        /// The configured maximum.
        limit: usize,
    },
}

impl ProtocolError {
    /// The close code to fail the connection with.
    pub fn close_code(&self) -> CloseCode {
        match self {
            ProtocolError::InvalidUtf8
            | ProtocolError::InvalidCloseReason
            | ProtocolError::InvalidCompressedData => CloseCode::INVALID_PAYLOAD,
            ProtocolError::FrameTooLarge { .. }
            | ProtocolError::MessageTooLarge { .. }
            | ProtocolError::DecompressedTooLarge { .. }
            | ProtocolError::CompressionRatioTooHigh { .. } => CloseCode::TOO_BIG,
            ProtocolError::TooManyFragments { .. } => CloseCode::POLICY,
            _ => CloseCode::PROTOCOL_ERROR,
        }
    }
}

impl std::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProtocolError::ReservedOpcode(op) => write!(f, "reserved opcode {op:#x}"),
            ProtocolError::ReservedBits => f.write_str("reserved bits set without an extension"),
            ProtocolError::UnmaskedFrame => f.write_str("client frame is not masked"),
            ProtocolError::MaskedFrame => f.write_str("server frame is masked"),
            ProtocolError::FragmentedControlFrame => f.write_str("fragmented control frame"),
            ProtocolError::ControlFrameTooLong(len) => {
                write!(f, "control frame payload of {len} bytes (max 125)")
            }
            ProtocolError::InvalidPayloadLength => {
                f.write_str("64-bit payload length with the most significant bit set")
            }
            ProtocolError::UnexpectedContinuation => {
                f.write_str("continuation frame without a message in progress")
            }
            ProtocolError::ExpectedContinuation => {
                f.write_str("new data frame while a fragmented message is in progress")
            }
            ProtocolError::InvalidUtf8 => f.write_str("invalid UTF-8 in a text message"),
            ProtocolError::InvalidClosePayload => f.write_str("close frame with a 1-byte payload"),
            ProtocolError::InvalidCloseCode(code) => write!(f, "invalid close code {code}"),
            ProtocolError::InvalidCloseReason => f.write_str("close reason is not valid UTF-8"),
            ProtocolError::InvalidCompressionBit => {
                f.write_str("RSV1 on a control or continuation frame")
            }
            ProtocolError::FrameTooLarge { size, limit } => {
                write!(f, "frame of {size} bytes exceeds the limit of {limit}")
            }
            ProtocolError::MessageTooLarge { size, limit } => {
                write!(
                    f,
                    "message of at least {size} bytes exceeds the limit of {limit}"
                )
            }
            ProtocolError::InvalidCompressedData => {
                f.write_str("invalid DEFLATE data in a compressed message")
            }
            ProtocolError::DecompressedTooLarge { limit } => {
                write!(f, "message decompresses to more than {limit} bytes")
            }
            ProtocolError::CompressionRatioTooHigh { limit } => {
                write!(f, "message decompresses more than {limit} times its size")
            }
            ProtocolError::TooManyFragments { limit } => {
                write!(f, "message has more than {limit} fragments")
            }
        }
    }
}

impl std::error::Error for ProtocolError {}

/// A misuse of the API by the caller: nothing was sent.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LocalError {
    /// Sending after the close handshake started (we sent a close frame).
    SendAfterClose,
    /// A ping or pong payload over 125 bytes.
    ControlPayloadTooLong(usize),
    /// A close code we may not send (1005, 1006, 1015, out of range).
    InvalidCloseCode(u16),
    /// A close reason over 123 bytes.
    CloseReasonTooLong(usize),
    /// A message part sent while no fragmented message is in progress, or a
    /// new message started while one is.
    FragmentOutOfOrder,
}

impl std::fmt::Display for LocalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LocalError::SendAfterClose => f.write_str("cannot send after the close frame"),
            LocalError::ControlPayloadTooLong(len) => {
                write!(f, "control payload of {len} bytes (max 125)")
            }
            LocalError::InvalidCloseCode(code) => write!(f, "close code {code} may not be sent"),
            LocalError::CloseReasonTooLong(len) => {
                write!(f, "close reason of {len} bytes (max 123)")
            }
            LocalError::FragmentOutOfOrder => f.write_str("message fragments sent out of order"),
        }
    }
}

impl std::error::Error for LocalError {}

/// An invalid configuration value, found when a config is validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The field at fault.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid config `{}`: {}", self.field, self.reason)
    }
}

impl std::error::Error for ConfigError {}
