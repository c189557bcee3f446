//! The client's side: send the opening handshake and check the server's
//! answer (RFC 6455 section 4.1).

use super::head::{self, HeadScanner};
use super::{
    accept_key, header_has_token, is_token, single_header, write_header, HandshakeError,
    HandshakeLimits, WEBSOCKET_VERSION,
};
use base64::Engine as _;
use bytes::BytesMut;
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, StatusCode, Uri};

/// Why a URI cannot be connected to. This is the caller's mistake, found
/// before anything is sent, so it is not a [`HandshakeError`].
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UriError {
    /// The scheme is missing or not `ws`, `wss`, `http` or `https`.
    UnsupportedScheme,
    /// The URI has no host.
    MissingHost,
}

impl std::fmt::Display for UriError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UriError::UnsupportedScheme => f.write_str("URI scheme must be ws, wss, http or https"),
            UriError::MissingHost => f.write_str("URI has no host"),
        }
    }
}

impl std::error::Error for UriError {}

/// A client's opening handshake (section 4.1), ready to encode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientRequest {
    target: String,
    host: String,
    key: String,
    protocols: Vec<String>,
    extensions: Option<String>,
    headers: HeaderMap,
}

impl ClientRequest {
    /// A handshake for `uri` (`ws`, `wss`, `http` or `https`, with a host)
    /// with the nonce `key`, which must be 16 random bytes fresh for this
    /// connection (section 4.1, point 7): the caller owns the RNG.
    pub fn new(uri: &Uri, key: [u8; 16]) -> Result<Self, UriError> {
        let scheme = uri.scheme_str().unwrap_or_default().to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "ws" | "http" => 80,
            "wss" | "https" => 443,
            _ => return Err(UriError::UnsupportedScheme),
        };
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or(UriError::MissingHost)?;
        let mut host = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host.to_owned()
        };
        if let Some(port) = uri.port_u16().filter(|&port| port != default_port) {
            host = format!("{host}:{port}");
        }
        let path = match uri.path() {
            "" => "/",
            path => path,
        };
        let target = match uri.query() {
            Some(query) => format!("{path}?{query}"),
            None => path.to_owned(),
        };
        Ok(ClientRequest {
            target,
            host,
            key: base64::engine::general_purpose::STANDARD.encode(key),
            protocols: Vec::new(),
            extensions: None,
            headers: HeaderMap::new(),
        })
    }

    /// Offers subprotocols, most preferred first. Entries that are not
    /// tokens (empty, or with spaces, commas or control characters; section
    /// 4.1, point 10) and repeats are ignored.
    pub fn protocols(mut self, protocols: impl IntoIterator<Item = String>) -> Self {
        for protocol in protocols {
            if is_token(&protocol) && !self.protocols.contains(&protocol) {
                self.protocols.push(protocol);
            }
        }
        self
    }

    /// Offers extensions: the raw `Sec-WebSocket-Extensions` value. A value
    /// that is blank or not a valid header value is ignored.
    pub fn extensions(mut self, offer: String) -> Self {
        let valid = !offer.trim().is_empty() && HeaderValue::from_str(&offer).is_ok();
        self.extensions = valid.then_some(offer);
        self
    }

    /// Adds a header (`Origin`, `Authorization`, `Cookie`, ...). A `Host`
    /// replaces the one derived from the URI; `Upgrade`, `Connection` and
    /// `Sec-WebSocket-*` are the handshake's own and are ignored.
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }

    /// The `Sec-WebSocket-Key`: the key, base64-encoded.
    pub fn key_base64(&self) -> &str {
        &self.key
    }

    /// The request head, ready to write.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(format!("GET {} HTTP/1.1\r\n", self.target).as_bytes());
        match self.headers.get(header::HOST) {
            Some(host) => write_header(&mut out, "Host", host.as_bytes()),
            None => write_header(&mut out, "Host", self.host.as_bytes()),
        }
        write_header(&mut out, "Upgrade", b"websocket");
        write_header(&mut out, "Connection", b"Upgrade");
        write_header(&mut out, "Sec-WebSocket-Key", self.key.as_bytes());
        write_header(
            &mut out,
            "Sec-WebSocket-Version",
            WEBSOCKET_VERSION.as_bytes(),
        );
        if !self.protocols.is_empty() {
            write_header(
                &mut out,
                "Sec-WebSocket-Protocol",
                self.protocols.join(", ").as_bytes(),
            );
        }
        if let Some(extensions) = &self.extensions {
            write_header(&mut out, "Sec-WebSocket-Extensions", extensions.as_bytes());
        }
        for (name, value) in &self.headers {
            let own = [header::HOST, header::UPGRADE, header::CONNECTION];
            if !own.contains(name) && !name.as_str().starts_with("sec-websocket-") {
                write_header(&mut out, name.as_str(), value.as_bytes());
            }
        }
        out.extend_from_slice(b"\r\n");
        out
    }
}

/// Reads and checks the server's handshake from the bytes a client receives.
#[derive(Clone, Debug)]
pub struct ResponseParser {
    limits: HandshakeLimits,
    scanner: HeadScanner,
    expected_accept: String,
    protocols: Vec<String>,
    offered_extensions: bool,
}

impl ResponseParser {
    /// A parser for the answer to `request`, bounded by `limits`.
    pub fn new(request: &ClientRequest, limits: HandshakeLimits) -> Self {
        ResponseParser {
            limits,
            scanner: HeadScanner::default(),
            expected_accept: accept_key(request.key.as_bytes()),
            protocols: request.protocols.clone(),
            offered_extensions: request.extensions.is_some(),
        }
    }

    /// Consumes the response head from `buf` once it is complete and checks
    /// it. `Ok(None)` means more bytes are needed; bytes after the head (the
    /// server's first frames, or the body of a refusal) stay in `buf`.
    pub fn parse(&mut self, buf: &mut BytesMut) -> Result<Option<Response>, HandshakeError> {
        match self.scanner.next_head(buf, self.limits.max_head_bytes)? {
            Some(head) => self.parse_response(&head).map(Some),
            None => Ok(None),
        }
    }

    /// Parses a complete head with httparse and checks it.
    fn parse_response(&self, head: &[u8]) -> Result<Response, HandshakeError> {
        let max_headers = self.limits.max_headers;
        let mut slots = vec![httparse::EMPTY_HEADER; head::header_slots(head.len(), max_headers)];
        let mut parsed = httparse::Response::new(&mut slots);
        head::check_complete(parsed.parse(head), head, max_headers)?;
        // A complete parse sets the code, always three digits.
        let status = StatusCode::from_u16(parsed.code.unwrap_or_default())
            .map_err(|_| HandshakeError::MalformedHttp("invalid status code"))?;
        if status != StatusCode::SWITCHING_PROTOCOLS {
            return Err(HandshakeError::UnexpectedStatus(status));
        }
        if parsed.version != Some(1) {
            return Err(HandshakeError::UnsupportedHttpVersion);
        }
        let headers = head::header_map(parsed.headers, max_headers)?;
        self.check(status, headers)
    }

    /// The checks of section 4.1 on a 101 response's headers.
    fn check(&self, status: StatusCode, headers: HeaderMap) -> Result<Response, HandshakeError> {
        if !header_has_token(&headers, header::UPGRADE, "websocket") {
            return Err(HandshakeError::MissingUpgrade);
        }
        if !header_has_token(&headers, header::CONNECTION, "upgrade") {
            return Err(HandshakeError::MissingConnectionUpgrade);
        }
        let accept = single_header(&headers, "Sec-WebSocket-Accept")?;
        match accept {
            None => return Err(HandshakeError::MissingAcceptKey),
            Some(accept) if accept != self.expected_accept => {
                return Err(HandshakeError::AcceptKeyMismatch)
            }
            Some(_) => {}
        }
        let protocol = joined(&headers, &header::SEC_WEBSOCKET_PROTOCOL);
        if let Some(protocol) = &protocol {
            if !self.protocols.contains(protocol) {
                return Err(HandshakeError::UnexpectedProtocol(protocol.clone()));
            }
        }
        let extensions = joined(&headers, &header::SEC_WEBSOCKET_EXTENSIONS);
        if let Some(extensions) = &extensions {
            if !self.offered_extensions {
                return Err(HandshakeError::UnexpectedExtensions(extensions.clone()));
            }
        }
        Ok(Response {
            status,
            headers,
            protocol,
            extensions,
        })
    }
}

/// Every `name` header's value, trimmed and joined with `, `, or `None` if
/// there are none. Bytes that are not UTF-8 become U+FFFD, which no token
/// matches.
fn joined(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    let values: Vec<_> = headers
        .get_all(name)
        .iter()
        .map(|value| String::from_utf8_lossy(value.as_bytes().trim_ascii()))
        .collect();
    (!values.is_empty()).then(|| values.join(", "))
}

/// A server's handshake that passed every check of section 4.1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    status: StatusCode,
    headers: HeaderMap,
    protocol: Option<String>,
    extensions: Option<String>,
}

impl Response {
    /// The status: always 101 Switching Protocols.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// Every header, repeated ones in order.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The subprotocol the server selected, one we offered.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// The raw `Sec-WebSocket-Extensions` value (repeated headers joined
    /// with `, `), present only if we offered extensions. Not validated
    /// here: the extension's own negotiation checks it.
    pub fn extensions(&self) -> Option<&str> {
        self.extensions.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handshake::tests::{feed_in_pieces, RFC_RESPONSE};

    /// The nonce of RFC 6455 section 1.3: "the sample nonce" is 16 bytes.
    const NONCE: [u8; 16] = *b"the sample nonce";

    fn request(uri: &str) -> Result<ClientRequest, UriError> {
        ClientRequest::new(&uri.parse().expect("a URI"), NONCE)
    }

    fn rfc_request() -> ClientRequest {
        request("ws://server.example.com/chat")
            .expect("valid")
            .protocols(["chat".to_owned(), "superchat".to_owned()])
            .header(
                header::ORIGIN,
                HeaderValue::from_static("http://example.com"),
            )
    }

    fn parse_with(
        request: &ClientRequest,
        input: &[u8],
    ) -> (Result<Option<Response>, HandshakeError>, BytesMut) {
        let mut buf = BytesMut::from(input);
        (
            ResponseParser::new(request, HandshakeLimits::default()).parse(&mut buf),
            buf,
        )
    }

    /// The RFC response with `from` replaced by `to`, answering the RFC request.
    fn edited(from: &str, to: &str) -> Result<Option<Response>, HandshakeError> {
        assert!(RFC_RESPONSE.contains(from), "{from:?}");
        parse_with(
            &rfc_request(),
            RFC_RESPONSE.replacen(from, to, 1).as_bytes(),
        )
        .0
    }

    mod section_1_3_example {
        use super::*;

        #[test]
        fn request_is_written() {
            let expected = "GET /chat HTTP/1.1\r\n\
                Host: server.example.com\r\n\
                Upgrade: websocket\r\n\
                Connection: Upgrade\r\n\
                Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                Sec-WebSocket-Version: 13\r\n\
                Sec-WebSocket-Protocol: chat, superchat\r\n\
                origin: http://example.com\r\n\r\n";
            assert_eq!(String::from_utf8_lossy(&rfc_request().encode()), expected);
        }

        #[test]
        fn response_is_read() {
            let response = edited("", "").expect("valid").expect("complete");
            assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
            assert_eq!(response.protocol(), Some("chat"));
            assert_eq!(response.extensions(), None);
            assert_eq!(response.headers().len(), 4);
        }
    }

    mod section_4_1_client_requirements {
        use super::*;

        fn host_and_target(uri: &str) -> (String, String) {
            let request = request(uri).expect("valid");
            (request.host, request.target)
        }

        #[test]
        fn host_has_the_port_only_if_it_is_not_the_default() {
            #[rustfmt::skip]
            let cases = [
                ("ws://example.com", "example.com", "/"),
                ("ws://example.com:80/a", "example.com", "/a"),
                ("WS://example.com:8080/a?b=c", "example.com:8080", "/a?b=c"),
                ("wss://example.com:443", "example.com", "/"),
                ("wss://example.com:80/", "example.com:80", "/"),
                ("http://example.com?x", "example.com", "/?x"),
                ("https://user:pw@example.com:8443/", "example.com:8443", "/"),
                ("ws://[::1]:9001/chat", "[::1]:9001", "/chat"),
                ("wss://[2001:db8::1]/", "[2001:db8::1]", "/"),
            ];
            for (uri, host, target) in cases {
                assert_eq!(host_and_target(uri), (host.into(), target.into()), "{uri}");
            }
        }

        #[test]
        fn other_schemes_and_hostless_uris_are_refused() {
            assert_eq!(
                request("ftp://example.com/"),
                Err(UriError::UnsupportedScheme)
            );
            assert_eq!(request("/chat"), Err(UriError::UnsupportedScheme));
            assert_eq!(request("ws://:80/"), Err(UriError::MissingHost));
        }

        #[test]
        fn key_is_base64_of_the_nonce() {
            assert_eq!(rfc_request().key_base64(), "dGhlIHNhbXBsZSBub25jZQ==");
        }

        #[test]
        fn protocols_must_be_unique_tokens() {
            let offers = ["a", "", "b c", "x\r\nInjected: 1", "a", "b"].map(String::from);
            let request = request("ws://h").expect("valid").protocols(offers);
            assert_eq!(request.protocols, ["a", "b"]);
        }

        #[test]
        fn extensions_host_override_and_reserved_headers() {
            let request = request("ws://10.0.0.1:9000/")
                .expect("valid")
                .extensions("permessage-deflate; client_max_window_bits".into())
                .header(header::HOST, HeaderValue::from_static("virtual.example"))
                .header(header::SEC_WEBSOCKET_KEY, HeaderValue::from_static("x"))
                .header(header::COOKIE, HeaderValue::from_static("a=b"));
            let expected = "GET / HTTP/1.1\r\n\
                Host: virtual.example\r\n\
                Upgrade: websocket\r\n\
                Connection: Upgrade\r\n\
                Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                Sec-WebSocket-Version: 13\r\n\
                Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\
                cookie: a=b\r\n\r\n";
            assert_eq!(String::from_utf8_lossy(&request.encode()), expected);
            let request = request.extensions("bad\r\n".into());
            assert_eq!(request.extensions, None);
        }
    }

    /// Section 4.1, the client's checks of the server's handshake.
    mod section_4_1_reading_the_servers_handshake {
        use super::*;
        use HandshakeError::*;

        #[test]
        fn every_rejection() {
            let accept = "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n";
            #[rustfmt::skip]
            let cases: &[(&str, &str, HandshakeError)] = &[
                ("HTTP/1.1", "HTTP/1.0", UnsupportedHttpVersion),
                ("HTTP/1.1", "HTTP/2.0", UnsupportedHttpVersion),
                ("101 Switching Protocols", "200 OK", UnexpectedStatus(StatusCode::OK)),
                ("101", "1x1", MalformedHttp("invalid status code")),
                ("Upgrade: websocket\r\n", "", MissingUpgrade),
                ("Upgrade: websocket\r\n", "Upgrade: h2c\r\n", MissingUpgrade),
                ("Connection: Upgrade\r\n", "Connection: close\r\n", MissingConnectionUpgrade),
                (accept, "", MissingAcceptKey),
                (accept, &format!("{accept}{accept}"), DuplicateHeader("Sec-WebSocket-Accept")),
                ("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "dGhlIHNhbXBsZSBub25jZQ==", AcceptKeyMismatch),
                ("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "S3PPLMBITXAQ9KYGZZHZRBK+XOO=", AcceptKeyMismatch),
                ("Protocol: chat", "Protocol: v2", UnexpectedProtocol("v2".into())),
                ("Protocol: chat", "Protocol: chat, superchat", UnexpectedProtocol("chat, superchat".into())),
                ("Protocol: chat", "Protocol: chat\r\nSec-WebSocket-Protocol: chat", UnexpectedProtocol("chat, chat".into())),
                ("\r\n\r\n", "\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n", UnexpectedExtensions("permessage-deflate".into())),
            ];
            for (from, to, error) in cases {
                assert_eq!(edited(from, to).as_ref(), Err(error), "{from:?} -> {to:?}");
            }
        }

        #[test]
        fn refusal_keeps_its_status_and_leaves_the_body() {
            let input = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 9\r\n\r\nno, thanks";
            let (result, buf) = parse_with(&rfc_request(), input);
            assert_eq!(result, Err(UnexpectedStatus(StatusCode::FORBIDDEN)));
            assert_eq!(&buf[..], b"no, thanks");
        }

        #[test]
        fn a_protocol_when_none_was_offered() {
            let request = request("ws://server.example.com/chat").expect("valid");
            let (result, _) = parse_with(&request, RFC_RESPONSE.as_bytes());
            assert_eq!(result, Err(UnexpectedProtocol("chat".into())));
        }

        #[test]
        fn offered_extensions_are_passed_through_raw() {
            let request = rfc_request().extensions("permessage-deflate".into());
            let input = RFC_RESPONSE.replacen(
                "\r\n\r\n",
                "\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n\
                 Sec-WebSocket-Extensions: x-other\r\n\r\n",
                1,
            );
            let (result, _) = parse_with(&request, input.as_bytes());
            let response = result.expect("valid").expect("complete");
            let raw = "permessage-deflate; server_no_context_takeover, x-other";
            assert_eq!(response.extensions(), Some(raw));
        }

        #[test]
        fn tokens_are_case_insensitive_lists() {
            let input = RFC_RESPONSE
                .replacen("Upgrade: websocket", "upgrade: WebSocket", 1)
                .replacen(
                    "Connection: Upgrade",
                    "Connection: keep-alive\r\nconnection: UPGRADE",
                    1,
                );
            let (result, _) = parse_with(&rfc_request(), input.as_bytes());
            assert!(matches!(result, Ok(Some(_))), "{result:?}");
        }

        #[test]
        fn first_frames_after_the_head_stay_in_the_buffer() {
            let input = [RFC_RESPONSE.as_bytes(), b"\x81\x05Hello"].concat();
            let (result, buf) = parse_with(&rfc_request(), &input);
            assert!(matches!(result, Ok(Some(_))));
            assert_eq!(&buf[..], b"\x81\x05Hello");
        }

        #[test]
        fn head_over_the_limit() {
            let limits = HandshakeLimits {
                max_head_bytes: 32,
                ..HandshakeLimits::default()
            };
            let mut buf = BytesMut::from(RFC_RESPONSE.as_bytes());
            let result = ResponseParser::new(&rfc_request(), limits).parse(&mut buf);
            assert_eq!(result, Err(HeadTooLarge { limit: 32 }));
        }
    }

    mod incremental {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn any_split_of_the_response_gives_the_same_result(
                splits in proptest::collection::vec(any::<prop::sample::Index>(), 0..12),
            ) {
                let input = [RFC_RESPONSE.as_bytes(), b"\x81\x05Hello"].concat();
                let splits = splits.iter().map(|i| i.index(input.len() + 1)).collect();
                let mut parser = ResponseParser::new(&rfc_request(), HandshakeLimits::default());
                let pieces = feed_in_pieces(&input, splits, |buf| parser.parse(buf));
                prop_assert_eq!(pieces, parse_with(&rfc_request(), &input));
            }
        }
    }
}
