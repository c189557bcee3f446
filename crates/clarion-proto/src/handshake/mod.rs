//! The opening handshake (RFC 6455 section 4), for both sides, sans-IO.
//!
//! A server feeds the bytes it reads into a [`RequestParser`] until it yields
//! a [`Request`], decides, then writes [`accept_response`] or
//! [`reject_response`]. A client writes [`ClientRequest::encode`] and feeds
//! what it reads into a [`ResponseParser`] until it yields a [`Response`].
//!
//! Both parsers are incremental and bounded by [`HandshakeLimits`]: each new
//! byte is scanned once for the end of the head, and the HTTP parser runs once,
//! on the complete head (tungstenite's CVE-2023-43669 was a reparse of the
//! whole buffer on every read). They consume exactly the head from the
//! caller's buffer; any bytes after it (early frames, a response body) stay
//! there.

mod client;
mod head;
mod origin;
mod reply;
mod server;

pub use client::{ClientRequest, Response, ResponseParser, UriError};
pub use origin::{OriginError, OriginPatternError, OriginPolicy};
pub use reply::{accept_response, reject_response, select_protocol, Accept, Reject};
pub use server::{Request, RequestParser};

use crate::error::ConfigError;
use base64::Engine as _;
use http::StatusCode;
use sha1::{Digest, Sha1};

/// The GUID appended to the client's key before hashing (RFC 6455 section 1.3).
const ACCEPT_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The only protocol version RFC 6455 defines (section 4.1, point 9).
const WEBSOCKET_VERSION: &str = "13";

/// The `Sec-WebSocket-Accept` value for a `Sec-WebSocket-Key` (section 4.2.2,
/// point 5.4): base64 of the SHA-1 of the key followed by the RFC's GUID.
pub fn accept_key(key: &[u8]) -> String {
    let mut sha1 = Sha1::new();
    sha1.update(key);
    sha1.update(ACCEPT_GUID);
    base64::engine::general_purpose::STANDARD.encode(sha1.finalize())
}

/// Whether any `name` header of `headers` lists `token` in its comma-separated
/// value, compared case-insensitively (`Connection: keep-alive, Upgrade`
/// has the token `upgrade`). Repeated headers count as one list, as RFC 9110
/// section 5.3 says they must.
pub fn header_has_token(
    headers: &http::HeaderMap,
    name: impl http::header::AsHeaderName,
    token: &str,
) -> bool {
    headers.get_all(name).iter().any(|value| {
        value
            .as_bytes()
            .split(|&b| b == b',')
            .any(|item| item.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    })
}

/// Bounds on what a peer may make us buffer and parse before the handshake is
/// done. One value serves both sides; `max_uri_len` only matters to a server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HandshakeLimits {
    /// The most bytes the head (request or status line, headers and the blank
    /// line) may take. Default 16 KiB: browsers send 0.5–2 KiB and cookies can
    /// add a few more, so this leaves room while capping what a connection
    /// that never finishes its head can hold.
    pub max_head_bytes: usize,
    /// The most header lines the head may have. Default 64: browsers send
    /// about 15, and each allowed header costs a slot in the parser's array.
    pub max_headers: usize,
    /// The longest request target (path and query) a server accepts.
    /// Default 8 KiB: RFC 9110 section 4.1 asks for at least 8000 octets, and
    /// common proxies stop near there anyway.
    pub max_uri_len: usize,
}

impl HandshakeLimits {
    /// The ceiling on `max_head_bytes`: a head bigger than 1 MiB is an attack.
    const MAX_HEAD_BYTES: usize = 1 << 20;
    /// The ceiling on `max_headers`.
    const MAX_HEADERS: usize = 1024;

    /// Rejects zero limits, absurd ones, and a URI limit the head limit could
    /// never let through.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |field, reason| Err(ConfigError { field, reason });
        if self.max_head_bytes == 0 || self.max_head_bytes > Self::MAX_HEAD_BYTES {
            return err("max_head_bytes", "must be between 1 and 1 MiB");
        }
        if self.max_headers == 0 || self.max_headers > Self::MAX_HEADERS {
            return err("max_headers", "must be between 1 and 1024");
        }
        if self.max_uri_len == 0 {
            return err("max_uri_len", "must be greater than zero");
        }
        if self.max_uri_len > self.max_head_bytes {
            return err("max_uri_len", "must not exceed max_head_bytes");
        }
        Ok(())
    }
}

impl Default for HandshakeLimits {
    fn default() -> Self {
        HandshakeLimits {
            max_head_bytes: 16 * 1024,
            max_headers: 64,
            max_uri_len: 8 * 1024,
        }
    }
}

/// Why an opening handshake failed. Most variants describe a client's request
/// and map to the HTTP status a server answers with ([`HandshakeError::status`],
/// [`HandshakeError::to_reject`]); the rest describe a server's response, as
/// seen by a client.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HandshakeError {
    /// The head grew past `max_head_bytes` before its blank line arrived.
    HeadTooLarge {
        /// The configured maximum.
        limit: usize,
    },
    /// The head has more header lines than `max_headers`.
    TooManyHeaders {
        /// The configured maximum.
        limit: usize,
    },
    /// The request target is longer than `max_uri_len`.
    UriTooLong {
        /// The configured maximum.
        limit: usize,
    },
    /// The head is not valid HTTP/1.x; the text says where it broke.
    MalformedHttp(&'static str),
    /// The request method is not GET (section 4.1, point 2).
    MethodNotAllowed(http::Method),
    /// The request or response is not HTTP/1.1 (section 4.1, point 2).
    UnsupportedHttpVersion,
    /// The request has no `Host` header (section 4.2.1, point 2).
    MissingHost,
    /// A header that may appear once appeared more than once (`Host`,
    /// `Origin`, `Sec-WebSocket-Key`, `Sec-WebSocket-Accept`).
    DuplicateHeader(&'static str),
    /// No `Upgrade` header with the `websocket` token (section 4.2.1, point 3;
    /// section 4.1, point 2 of the client's checks).
    MissingUpgrade,
    /// No `Connection` header with the `upgrade` token (section 4.2.1, point 4).
    MissingConnectionUpgrade,
    /// `Sec-WebSocket-Version` is missing, repeated or not 13 (section 4.2.1,
    /// point 6).
    UnsupportedWebSocketVersion,
    /// The request has no `Sec-WebSocket-Key` (section 4.2.1, point 5).
    MissingKey,
    /// `Sec-WebSocket-Key` is not the base64 of exactly 16 bytes.
    InvalidKey,
    /// The server answered with a status other than 101 (section 4.1). The
    /// head was consumed; a body, if any, is left in the caller's buffer.
    UnexpectedStatus(StatusCode),
    /// The response has no `Sec-WebSocket-Accept` (section 4.1).
    MissingAcceptKey,
    /// `Sec-WebSocket-Accept` is not the hash of our key (section 4.1).
    AcceptKeyMismatch,
    /// The response selects a subprotocol we did not offer, or more than one,
    /// or any while we offered none (section 4.1, point 6).
    UnexpectedProtocol(String),
    /// The response carries `Sec-WebSocket-Extensions` though we offered none
    /// (section 4.1, point 5).
    UnexpectedExtensions(String),
}

impl HandshakeError {
    /// The status a server answers this failure with. Variants only a client
    /// can see map to 502 Bad Gateway, what a proxy would send upstream.
    pub fn status(&self) -> StatusCode {
        use HandshakeError::*;
        match self {
            HeadTooLarge { .. } | TooManyHeaders { .. } => {
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
            }
            UriTooLong { .. } => StatusCode::URI_TOO_LONG,
            MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            UnsupportedHttpVersion => StatusCode::HTTP_VERSION_NOT_SUPPORTED,
            MissingUpgrade | UnsupportedWebSocketVersion => StatusCode::UPGRADE_REQUIRED,
            MalformedHttp(_)
            | MissingHost
            | DuplicateHeader(_)
            | MissingConnectionUpgrade
            | MissingKey
            | InvalidKey => StatusCode::BAD_REQUEST,
            UnexpectedStatus(_)
            | MissingAcceptKey
            | AcceptKeyMismatch
            | UnexpectedProtocol(_)
            | UnexpectedExtensions(_) => StatusCode::BAD_GATEWAY,
        }
    }
}

impl std::fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use HandshakeError::*;
        match self {
            HeadTooLarge { limit } => write!(f, "HTTP head larger than {limit} bytes"),
            TooManyHeaders { limit } => write!(f, "more than {limit} header lines"),
            UriTooLong { limit } => write!(f, "request target longer than {limit} bytes"),
            MalformedHttp(what) => write!(f, "malformed HTTP: {what}"),
            MethodNotAllowed(method) => write!(f, "method {method} is not GET"),
            UnsupportedHttpVersion => f.write_str("HTTP version is not HTTP/1.1"),
            MissingHost => f.write_str("missing Host header"),
            DuplicateHeader(name) => write!(f, "repeated {name} header"),
            MissingUpgrade => f.write_str("missing `Upgrade: websocket` header"),
            MissingConnectionUpgrade => f.write_str("missing `Connection: Upgrade` header"),
            UnsupportedWebSocketVersion => f.write_str("Sec-WebSocket-Version must be 13"),
            MissingKey => f.write_str("missing Sec-WebSocket-Key header"),
            InvalidKey => f.write_str("Sec-WebSocket-Key is not base64 of 16 bytes"),
            UnexpectedStatus(status) => write!(f, "server answered {status}, not 101"),
            MissingAcceptKey => f.write_str("missing Sec-WebSocket-Accept header"),
            AcceptKeyMismatch => f.write_str("Sec-WebSocket-Accept does not match our key"),
            UnexpectedProtocol(p) => write!(f, "server selected subprotocol {p:?} not offered"),
            UnexpectedExtensions(e) => write!(f, "server sent extensions {e:?} not offered"),
        }
    }
}

impl std::error::Error for HandshakeError {}

/// Whether `s` is a non-empty RFC 9110 token: what a subprotocol name must be
/// (section 4.1, point 10).
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// The comma-separated items of every `name` header, trimmed, empty ones and
/// values that are not UTF-8 skipped, in order.
fn header_list<'a>(
    headers: &'a http::HeaderMap,
    name: &http::HeaderName,
) -> impl Iterator<Item = &'a str> {
    headers
        .get_all(name)
        .into_iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|item| !item.is_empty())
}

/// The value of a header that may appear at most once, as trimmed UTF-8.
/// `Ok(None)` if absent; `Err` if repeated. A value that is not UTF-8 comes
/// back as `Some("")`, which every caller rejects.
fn single_header<'a>(
    headers: &'a http::HeaderMap,
    name: &'static str,
) -> Result<Option<&'a str>, HandshakeError> {
    let mut values = headers.get_all(name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(HandshakeError::DuplicateHeader(name));
    }
    Ok(Some(first.to_str().map(str::trim).unwrap_or("")))
}

/// Appends `name: value\r\n`.
fn write_header(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;

    /// The client's handshake from RFC 6455 section 1.3.
    pub(super) const RFC_REQUEST: &str = "GET /chat HTTP/1.1\r\n\
        Host: server.example.com\r\n\
        Upgrade: websocket\r\n\
        Connection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Origin: http://example.com\r\n\
        Sec-WebSocket-Protocol: chat, superchat\r\n\
        Sec-WebSocket-Version: 13\r\n\r\n";

    /// The server's handshake from RFC 6455 section 1.3.
    pub(super) const RFC_RESPONSE: &str = "HTTP/1.1 101 Switching Protocols\r\n\
        Upgrade: websocket\r\n\
        Connection: Upgrade\r\n\
        Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
        Sec-WebSocket-Protocol: chat\r\n\r\n";

    /// Feeds `input` to `parse` in pieces cut at `splits` until it answers;
    /// returns the answer and the buffer with the rest of the input appended.
    pub(super) fn feed_in_pieces<T: PartialEq>(
        input: &[u8],
        mut splits: Vec<usize>,
        mut parse: impl FnMut(&mut BytesMut) -> Result<Option<T>, HandshakeError>,
    ) -> (Result<Option<T>, HandshakeError>, BytesMut) {
        splits.sort_unstable();
        splits.push(input.len());
        let (mut buf, mut from) = (BytesMut::new(), 0);
        for to in splits {
            buf.extend_from_slice(&input[from..to]);
            from = to;
            let result = parse(&mut buf);
            if result != Ok(None) {
                buf.extend_from_slice(&input[from..]);
                return (result, buf);
            }
        }
        (Ok(None), buf)
    }

    mod section_1_3_example {
        use super::*;

        #[test]
        fn accept_key_of_the_sample_nonce() {
            assert_eq!(
                accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
                "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
            );
        }
    }

    mod header_tokens {
        use super::*;
        use http::header::{HeaderValue, CONNECTION, UPGRADE};

        fn map(pairs: &[(http::HeaderName, &'static str)]) -> http::HeaderMap {
            let mut headers = http::HeaderMap::new();
            for (name, value) in pairs {
                headers.append(name.clone(), HeaderValue::from_static(value));
            }
            headers
        }

        #[test]
        fn token_in_a_list_is_found_case_insensitively() {
            let headers = map(&[(CONNECTION, "keep-alive, Upgrade")]);
            assert!(header_has_token(&headers, CONNECTION, "upgrade"));
            assert!(header_has_token(&headers, "connection", "KEEP-ALIVE"));
        }

        #[test]
        fn repeated_headers_form_one_list() {
            let headers = map(&[(CONNECTION, "keep-alive"), (CONNECTION, " UPGRADE ")]);
            assert!(header_has_token(&headers, CONNECTION, "upgrade"));
        }

        #[test]
        fn substrings_and_other_headers_do_not_count() {
            let headers = map(&[(CONNECTION, "upgraded, x-upgrade"), (UPGRADE, "upgrade")]);
            assert!(!header_has_token(&headers, CONNECTION, "upgrade"));
            assert!(!header_has_token(&headers, UPGRADE, "websocket"));
        }
    }

    mod limits {
        use super::*;

        #[test]
        fn defaults_are_valid() {
            let limits = HandshakeLimits::default();
            assert_eq!(limits.max_head_bytes, 16 * 1024);
            assert_eq!(limits.validate(), Ok(()));
        }

        #[test]
        fn zero_and_absurd_values_are_rejected() {
            let field_at_fault = |edit: fn(&mut HandshakeLimits)| {
                let mut limits = HandshakeLimits::default();
                edit(&mut limits);
                limits.validate().map_err(|e| e.field)
            };
            let head = Err("max_head_bytes");
            assert_eq!(field_at_fault(|l| l.max_head_bytes = 0), head);
            assert_eq!(field_at_fault(|l| l.max_head_bytes = usize::MAX), head);
            assert_eq!(field_at_fault(|l| l.max_headers = 0), Err("max_headers"));
            assert_eq!(
                field_at_fault(|l| l.max_headers = 1 << 20),
                Err("max_headers")
            );
            assert_eq!(field_at_fault(|l| l.max_uri_len = 0), Err("max_uri_len"));
            assert_eq!(
                field_at_fault(|l| l.max_uri_len = 32 * 1024),
                Err("max_uri_len")
            );
        }
    }

    mod errors {
        use super::*;

        #[test]
        fn statuses() {
            use HandshakeError::*;
            let cases = [
                (HeadTooLarge { limit: 1 }, 431),
                (TooManyHeaders { limit: 1 }, 431),
                (UriTooLong { limit: 1 }, 414),
                (MalformedHttp("x"), 400),
                (MethodNotAllowed(http::Method::POST), 405),
                (UnsupportedHttpVersion, 505),
                (MissingHost, 400),
                (MissingUpgrade, 426),
                (MissingConnectionUpgrade, 400),
                (UnsupportedWebSocketVersion, 426),
                (MissingKey, 400),
                (InvalidKey, 400),
                (AcceptKeyMismatch, 502),
            ];
            for (error, status) in cases {
                assert_eq!(error.status().as_u16(), status, "{error}");
            }
        }
    }

    mod round_trip {
        use super::*;
        use http::header::{self, HeaderValue};

        #[test]
        fn client_request_through_server_and_back() {
            let uri = "wss://[::1]:8443/live?room=7".parse().expect("a URI");
            let client = ClientRequest::new(&uri, *b"0123456789abcdef")
                .expect("valid")
                .protocols(["v2.clarion".to_owned(), "v1.clarion".to_owned()])
                .extensions("permessage-deflate".into())
                .header(
                    header::ORIGIN,
                    HeaderValue::from_static("https://app.example"),
                );
            let mut buf = BytesMut::from(&client.encode()[..]);
            let limits = HandshakeLimits::default();
            let server_side = RequestParser::new(limits)
                .parse(&mut buf)
                .expect("valid")
                .expect("complete");
            assert_eq!(server_side.host(), "[::1]:8443");
            assert_eq!(
                server_side.uri().path_and_query().map(|p| p.as_str()),
                Some("/live?room=7")
            );
            assert_eq!(server_side.origin(), Some("https://app.example"));
            assert_eq!(server_side.offered_extensions(), ["permessage-deflate"]);
            let accept = Accept {
                protocol: select_protocol(server_side.offered_protocols(), &["v1.clarion"]),
                extensions: Some("permessage-deflate".into()),
                ..Accept::default()
            };
            let mut buf = BytesMut::from(&accept_response(&server_side, &accept)[..]);
            let response = ResponseParser::new(&client, limits)
                .parse(&mut buf)
                .expect("valid")
                .expect("complete");
            assert_eq!(response.protocol(), Some("v1.clarion"));
            assert_eq!(response.extensions(), Some("permessage-deflate"));
            assert!(buf.is_empty());
        }
    }
}
