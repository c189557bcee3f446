//! The server's side: read the client's handshake (RFC 6455 section 4.2.1).
//! The answer is written by the functions of `reply.rs`.

use super::head::{self, HeadScanner};
use super::{
    header_has_token, header_list, single_header, HandshakeError, HandshakeLimits,
    WEBSOCKET_VERSION,
};
use bytes::BytesMut;
use http::header;
use http::{HeaderMap, Method, Uri, Version};

/// Reads a client's opening handshake from the bytes a server receives.
#[derive(Clone, Debug)]
pub struct RequestParser {
    limits: HandshakeLimits,
    scanner: HeadScanner,
}

impl RequestParser {
    /// A parser bounded by `limits` (check them with
    /// [`HandshakeLimits::validate`] first; invalid ones only make every
    /// request fail).
    pub fn new(limits: HandshakeLimits) -> Self {
        RequestParser {
            limits,
            scanner: HeadScanner::default(),
        }
    }

    /// Consumes the request head from `buf` once it is complete and checks
    /// it. `Ok(None)` means more bytes are needed; bytes after the head (a
    /// client's first frames) stay in `buf`. On an error, answer with
    /// [`HandshakeError::to_reject`] and close.
    pub fn parse(&mut self, buf: &mut BytesMut) -> Result<Option<Request>, HandshakeError> {
        match self.scanner.next_head(buf, self.limits.max_head_bytes)? {
            Some(head) => parse_request(&head, &self.limits).map(Some),
            None => Ok(None),
        }
    }
}

/// Parses a complete head with httparse and checks it.
fn parse_request(head: &[u8], limits: &HandshakeLimits) -> Result<Request, HandshakeError> {
    let mut slots =
        vec![httparse::EMPTY_HEADER; head::header_slots(head.len(), limits.max_headers)];
    let mut parsed = httparse::Request::new(&mut slots);
    head::check_complete(parsed.parse(head), head, limits.max_headers)?;
    let malformed = HandshakeError::MalformedHttp;
    // A complete parse sets the method, path and version.
    let target = parsed.path.unwrap_or_default();
    if target.len() > limits.max_uri_len {
        return Err(HandshakeError::UriTooLong {
            limit: limits.max_uri_len,
        });
    }
    let (mut parts, ()) = http::Request::new(()).into_parts();
    parts.method = Method::from_bytes(parsed.method.unwrap_or_default().as_bytes())
        .map_err(|_| malformed("invalid method"))?;
    parts.uri = target
        .parse()
        .map_err(|_| malformed("invalid request target"))?;
    parts.version = match parsed.version {
        Some(1) => Version::HTTP_11,
        _ => Version::HTTP_10,
    };
    parts.headers = head::header_map(parsed.headers, limits.max_headers)?;
    Request::from_parts(parts)
}

/// A client's opening handshake that passed every check of section 4.2.1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    host: String,
    key: String,
    protocols: Vec<String>,
}

impl Request {
    /// Checks a request some HTTP server already parsed (for instance one
    /// that hyper is about to upgrade) as [`RequestParser`] checks its own.
    pub fn from_parts(parts: http::request::Parts) -> Result<Request, HandshakeError> {
        if parts.method != Method::GET {
            return Err(HandshakeError::MethodNotAllowed(parts.method));
        }
        if parts.version != Version::HTTP_11 {
            return Err(HandshakeError::UnsupportedHttpVersion);
        }
        if parts.uri.scheme().is_none() && !parts.uri.path().starts_with('/') {
            return Err(HandshakeError::MalformedHttp(
                "request target is not a path",
            ));
        }
        let headers = parts.headers;
        let host = single_header(&headers, "Host")?.ok_or(HandshakeError::MissingHost)?;
        if host.is_empty() {
            return Err(HandshakeError::MalformedHttp(
                "Host header is empty or not ASCII",
            ));
        }
        single_header(&headers, "Origin")?;
        if !header_has_token(&headers, header::UPGRADE, "websocket") {
            return Err(HandshakeError::MissingUpgrade);
        }
        if !header_has_token(&headers, header::CONNECTION, "upgrade") {
            return Err(HandshakeError::MissingConnectionUpgrade);
        }
        if single_header(&headers, "Sec-WebSocket-Version") != Ok(Some(WEBSOCKET_VERSION)) {
            return Err(HandshakeError::UnsupportedWebSocketVersion);
        }
        let key =
            single_header(&headers, "Sec-WebSocket-Key")?.ok_or(HandshakeError::MissingKey)?;
        if !is_valid_key(key) {
            return Err(HandshakeError::InvalidKey);
        }
        Ok(Request {
            method: parts.method,
            uri: parts.uri,
            host: host.to_owned(),
            key: key.to_owned(),
            protocols: header_list(&headers, &header::SEC_WEBSOCKET_PROTOCOL)
                .map(str::to_owned)
                .collect(),
            headers,
        })
    }

    /// The request method: always GET.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The request target: a path and query, or an absolute URI.
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// Every header, repeated ones in order.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The `Origin` header, if the client sent one (browsers always do):
    /// check it against an allow-list to stop cross-site WebSocket hijacking.
    pub fn origin(&self) -> Option<&str> {
        self.headers.get(header::ORIGIN)?.to_str().ok()
    }

    /// The `Host` header.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The `Sec-WebSocket-Key`, as sent (base64 of 16 bytes).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The subprotocols offered in `Sec-WebSocket-Protocol`, in the client's
    /// order of preference, from every such header.
    pub fn offered_protocols(&self) -> &[String] {
        &self.protocols
    }

    /// The extension offers in `Sec-WebSocket-Extensions`, one raw entry
    /// (name and parameters) per comma-separated item, in order.
    pub fn offered_extensions(&self) -> Vec<&str> {
        header_list(&self.headers, &header::SEC_WEBSOCKET_EXTENSIONS).collect()
    }
}

/// Whether a `Sec-WebSocket-Key` is base64 of exactly 16 bytes.
fn is_valid_key(key: &str) -> bool {
    use base64::Engine as _;
    let mut decoded = [0; 18];
    key.len() == 24
        && base64::engine::general_purpose::STANDARD.decode_slice(key, &mut decoded) == Ok(16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handshake::tests::{feed_in_pieces, RFC_REQUEST};
    use http::HeaderValue;

    fn parse(input: &[u8]) -> Result<Option<Request>, HandshakeError> {
        RequestParser::new(HandshakeLimits::default()).parse(&mut BytesMut::from(input))
    }

    /// The RFC request with `from` replaced by `to` (which may be empty).
    fn edited(from: &str, to: &str) -> Result<Option<Request>, HandshakeError> {
        assert!(RFC_REQUEST.contains(from), "{from:?}");
        parse(RFC_REQUEST.replacen(from, to, 1).as_bytes())
    }

    fn accepted(input: &[u8]) -> Request {
        match parse(input) {
            Ok(Some(request)) => request,
            other => panic!("not accepted: {other:?}"),
        }
    }

    mod section_1_3_example {
        use super::*;

        #[test]
        fn request_is_read() {
            let request = accepted(RFC_REQUEST.as_bytes());
            assert_eq!(request.method(), Method::GET);
            assert_eq!(request.uri().path(), "/chat");
            assert_eq!(request.host(), "server.example.com");
            assert_eq!(request.key(), "dGhlIHNhbXBsZSBub25jZQ==");
            assert_eq!(request.origin(), Some("http://example.com"));
            assert_eq!(request.offered_protocols(), ["chat", "superchat"]);
            assert!(request.offered_extensions().is_empty());
        }
    }

    mod section_4_2_1_reading_the_clients_handshake {
        use super::*;
        use HandshakeError::*;

        #[test]
        fn every_rejection_has_its_status() {
            let key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
            #[rustfmt::skip]
            let cases: &[(&str, &str, HandshakeError, u16)] = &[
                ("GET /chat", "POST /chat", MethodNotAllowed(Method::POST), 405),
                ("HTTP/1.1", "HTTP/1.0", UnsupportedHttpVersion, 505),
                ("HTTP/1.1", "HTTP/2.0", UnsupportedHttpVersion, 505),
                ("GET /chat", "GET *", MalformedHttp("request target is not a path"), 400),
                ("GET /chat HTTP/1.1", "GET /chat  HTTP/1.1", MalformedHttp("invalid HTTP version"), 400),
                ("Host: server.example.com\r\n", "", MissingHost, 400),
                ("Host: server.example.com\r\n", "Host: \r\n", MalformedHttp("Host header is empty or not ASCII"), 400),
                ("Host: server.example.com\r\n", "Host: a\r\nHost: b\r\n", DuplicateHeader("Host"), 400),
                ("Origin: http://example.com\r\n", "Origin: a\r\nOrigin: b\r\n", DuplicateHeader("Origin"), 400),
                ("Upgrade: websocket\r\n", "", MissingUpgrade, 426),
                ("Upgrade: websocket\r\n", "Upgrade: h2c\r\n", MissingUpgrade, 426),
                ("Connection: Upgrade\r\n", "", MissingConnectionUpgrade, 400),
                ("Connection: Upgrade\r\n", "Connection: keep-alive\r\n", MissingConnectionUpgrade, 400),
                ("Sec-WebSocket-Version: 13\r\n", "", UnsupportedWebSocketVersion, 426),
                ("Version: 13\r\n", "Version: 8\r\n", UnsupportedWebSocketVersion, 426),
                ("Version: 13\r\n", "Version: 13\r\nSec-WebSocket-Version: 13\r\n", UnsupportedWebSocketVersion, 426),
                (key, "", MissingKey, 400),
                (key, &format!("{key}{key}"), DuplicateHeader("Sec-WebSocket-Key"), 400),
                ("dGhlIHNhbXBsZSBub25jZQ==", "not base64 at all!!!!!!!", InvalidKey, 400),
                ("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25j", InvalidKey, 400),
                ("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZQ==AAAA", InvalidKey, 400),
                ("dGhlIHNhbXBsZSBub25jZQ==", "AAAAAAAAAAAAAAAAAAAAAAA=", InvalidKey, 400),
            ];
            for (from, to, error, status) in cases {
                assert_eq!(edited(from, to).as_ref(), Err(error), "{from:?} -> {to:?}");
                assert_eq!(error.status().as_u16(), *status, "{error}");
            }
        }

        #[test]
        fn uri_longer_than_the_limit_is_414() {
            let limits = HandshakeLimits {
                max_uri_len: 10,
                ..HandshakeLimits::default()
            };
            let input = RFC_REQUEST.replacen("/chat", "/chat/is/too/long", 1);
            let result = RequestParser::new(limits).parse(&mut BytesMut::from(input.as_bytes()));
            assert_eq!(result, Err(UriTooLong { limit: 10 }));
        }

        #[test]
        fn head_over_the_limit_is_431_before_any_terminator() {
            let limits = HandshakeLimits {
                max_head_bytes: 64,
                ..HandshakeLimits::default()
            };
            let mut parser = RequestParser::new(limits);
            let mut buf = BytesMut::from(&RFC_REQUEST.as_bytes()[..63]);
            assert_eq!(parser.parse(&mut buf), Ok(None));
            buf.extend_from_slice(b"X");
            let error = parser.parse(&mut buf).expect_err("over the limit");
            assert_eq!(
                (error.clone(), error.status().as_u16()),
                (HeadTooLarge { limit: 64 }, 431)
            );
        }

        #[test]
        fn too_many_headers_is_431() {
            let limits = HandshakeLimits {
                max_headers: 6,
                ..HandshakeLimits::default()
            };
            let result =
                RequestParser::new(limits).parse(&mut BytesMut::from(RFC_REQUEST.as_bytes()));
            let error = result.expect_err("seven headers");
            assert_eq!(
                (error.clone(), error.status().as_u16()),
                (TooManyHeaders { limit: 6 }, 431)
            );
            let limits = HandshakeLimits {
                max_headers: 7,
                ..limits
            };
            let mut buf = BytesMut::from(RFC_REQUEST.as_bytes());
            assert!(matches!(
                RequestParser::new(limits).parse(&mut buf),
                Ok(Some(_))
            ));
        }

        #[test]
        fn tokens_are_case_insensitive_lists_as_firefox_sends() {
            let input = RFC_REQUEST
                .replacen("Connection: Upgrade", "Connection: keep-alive, Upgrade", 1)
                .replacen("Upgrade: websocket", "upgrade: WebSocket", 1);
            accepted(input.as_bytes());
        }

        #[test]
        fn repeated_connection_and_upgrade_headers_are_one_list() {
            let input = RFC_REQUEST
                .replacen(
                    "Connection: Upgrade",
                    "Connection: keep-alive\r\nConnection: UPGRADE",
                    1,
                )
                .replacen(
                    "Upgrade: websocket",
                    "Upgrade: h2c\r\nUpgrade: websocket",
                    1,
                );
            accepted(input.as_bytes());
        }

        #[test]
        fn protocols_and_extensions_from_every_header_in_order() {
            let input = RFC_REQUEST.replacen(
                "Sec-WebSocket-Protocol: chat, superchat\r\n",
                "Sec-WebSocket-Protocol: chat ,, superchat\r\nSec-WebSocket-Protocol: v2\r\n\
                 Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits, foo\r\n\
                 Sec-WebSocket-Extensions: bar\r\n",
                1,
            );
            let request = accepted(input.as_bytes());
            assert_eq!(request.offered_protocols(), ["chat", "superchat", "v2"]);
            let extensions = ["permessage-deflate; client_max_window_bits", "foo", "bar"];
            assert_eq!(request.offered_extensions(), extensions);
        }

        #[test]
        fn absolute_form_target_is_accepted() {
            let input = RFC_REQUEST.replacen("/chat", "ws://server.example.com/chat?a=1", 1);
            let request = accepted(input.as_bytes());
            assert_eq!(
                request.uri().path_and_query().map(|p| p.as_str()),
                Some("/chat?a=1")
            );
        }

        #[test]
        fn origin_is_optional() {
            let input = RFC_REQUEST.replacen("Origin: http://example.com\r\n", "", 1);
            assert_eq!(accepted(input.as_bytes()).origin(), None);
        }

        #[test]
        fn from_parts_checks_like_the_parser() {
            let mut request = http::Request::get("/chat").body(()).expect("valid");
            assert_eq!(
                Request::from_parts(request.clone().into_parts().0),
                Err(MissingHost)
            );
            let headers = request.headers_mut();
            headers.insert(header::HOST, HeaderValue::from_static("h"));
            headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
            headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            headers.insert(
                header::SEC_WEBSOCKET_VERSION,
                HeaderValue::from_static("13"),
            );
            let key = HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ==");
            headers.insert(header::SEC_WEBSOCKET_KEY, key);
            assert_eq!(
                Request::from_parts(request.into_parts().0).map(|r| r.key),
                Ok("dGhlIHNhbXBsZSBub25jZQ==".into())
            );
        }
    }

    mod incremental {
        use super::*;
        use proptest::prelude::*;

        fn fed_in_pieces(
            input: &[u8],
            splits: Vec<usize>,
        ) -> (Result<Option<Request>, HandshakeError>, BytesMut) {
            let mut parser = RequestParser::new(HandshakeLimits::default());
            feed_in_pieces(input, splits, |buf| parser.parse(buf))
        }

        fn with_frame(request: &str) -> Vec<u8> {
            [
                request.as_bytes(),
                b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58",
            ]
            .concat()
        }

        #[test]
        fn leftover_frame_bytes_stay_in_the_buffer() {
            let input = with_frame(RFC_REQUEST);
            let mut buf = BytesMut::from(&input[..]);
            let mut parser = RequestParser::new(HandshakeLimits::default());
            assert!(matches!(parser.parse(&mut buf), Ok(Some(_))));
            assert_eq!(&buf[..], &input[RFC_REQUEST.len()..]);
        }

        #[test]
        fn one_byte_at_a_time_is_the_same_as_all_at_once() {
            let input = with_frame(RFC_REQUEST);
            let every_byte = (1..input.len()).collect();
            assert_eq!(
                fed_in_pieces(&input, every_byte),
                fed_in_pieces(&input, vec![])
            );
            assert!(matches!(fed_in_pieces(&input, vec![]).0, Ok(Some(_))));
        }

        proptest! {
            #[test]
            fn any_split_gives_the_same_result(
                which in 0..3usize,
                splits in proptest::collection::vec(any::<prop::sample::Index>(), 0..12),
            ) {
                let request = match which {
                    0 => RFC_REQUEST.to_owned(),
                    1 => RFC_REQUEST.replacen("13", "8", 1),
                    _ => RFC_REQUEST.replacen("\r\n", "\n", 1),
                };
                let input = with_frame(&request);
                let splits = splits.iter().map(|i| i.index(input.len() + 1)).collect();
                prop_assert_eq!(fed_in_pieces(&input, splits), fed_in_pieces(&input, vec![]));
            }
        }
    }
}
