//! The server's answer (RFC 6455 section 4.2.2): the 101 that accepts a
//! [`Request`], or an HTTP error that refuses it.

use super::{
    accept_key, header_has_token, is_token, write_header, HandshakeError, Request,
    WEBSOCKET_VERSION,
};
use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, StatusCode};

/// The first of the server's `supported` subprotocols, in its order of
/// preference, that the client offered (exact match).
pub fn select_protocol(offered: &[String], supported: &[&str]) -> Option<String> {
    supported
        .iter()
        .find(|wanted| offered.iter().any(|offer| offer == *wanted))
        .map(|wanted| (*wanted).to_owned())
}

/// What the server agrees to in its 101 response.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Accept {
    /// The selected subprotocol; use [`select_protocol`] so it is one the
    /// client offered. Left out of the response if it is not a token.
    pub protocol: Option<String>,
    /// The accepted extensions, as the `Sec-WebSocket-Extensions` value.
    /// Left out of the response if it is not a valid header value.
    pub extensions: Option<String>,
    /// Extra headers (`Set-Cookie`, ...). Ones the handshake itself writes
    /// (`Upgrade`, `Connection`, `Sec-WebSocket-*`) or a 101 may not carry
    /// (`Content-Length`, `Transfer-Encoding`) are ignored.
    pub headers: HeaderMap,
}

/// A refusal: an HTTP response that ends the connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reject {
    /// The status, normally 4xx or 5xx.
    pub status: StatusCode,
    /// Extra headers. `Content-Length` is always computed from the body, and
    /// `close` is always added to `Connection`. Boxed so that a `Reject` is
    /// small enough to travel in a `Result` cheaply.
    pub headers: Box<HeaderMap>,
    /// The body; `text/plain; charset=utf-8` unless a `Content-Type` is set.
    pub body: Bytes,
}

impl Reject {
    /// A refusal with `status`, no extra headers and no body.
    pub fn new(status: StatusCode) -> Self {
        Reject {
            status,
            headers: Box::default(),
            body: Bytes::new(),
        }
    }

    /// Sets the body.
    pub fn with_body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// Adds a header, keeping any earlier one with the same name.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }
}

impl HandshakeError {
    /// The response a server sends for this failure: [`Self::status`], a
    /// one-line plain-text body, and the headers that tell the client what to
    /// do (`Allow: GET` for 405; `Upgrade: websocket` for 426, plus
    /// `Sec-WebSocket-Version: 13` when the version was wrong).
    pub fn to_reject(&self) -> Reject {
        let reject = Reject::new(self.status()).with_body(format!("{self}\n"));
        let upgrade = |reject: Reject| {
            reject
                .with_header(header::UPGRADE, HeaderValue::from_static("websocket"))
                .with_header(header::CONNECTION, HeaderValue::from_static("Upgrade"))
        };
        match self {
            HandshakeError::MethodNotAllowed(_) => {
                reject.with_header(header::ALLOW, HeaderValue::from_static("GET"))
            }
            HandshakeError::MissingUpgrade => upgrade(reject),
            HandshakeError::UnsupportedWebSocketVersion => upgrade(reject).with_header(
                header::SEC_WEBSOCKET_VERSION,
                HeaderValue::from_static(WEBSOCKET_VERSION),
            ),
            _ => reject,
        }
    }
}

/// Headers [`accept_response`] writes itself or a 101 must not carry.
const RESERVED_IN_101: [HeaderName; 7] = [
    header::UPGRADE,
    header::CONNECTION,
    header::SEC_WEBSOCKET_ACCEPT,
    header::SEC_WEBSOCKET_PROTOCOL,
    header::SEC_WEBSOCKET_EXTENSIONS,
    header::CONTENT_LENGTH,
    header::TRANSFER_ENCODING,
];

/// The server's handshake (section 4.2.2, point 5): `101 Switching
/// Protocols` with the accept key for `request`, and what `accept` agrees to.
pub fn accept_response(request: &Request, accept: &Accept) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"HTTP/1.1 101 Switching Protocols\r\n");
    write_header(&mut out, "Upgrade", b"websocket");
    write_header(&mut out, "Connection", b"Upgrade");
    write_header(
        &mut out,
        "Sec-WebSocket-Accept",
        accept_key(request.key().as_bytes()).as_bytes(),
    );
    if let Some(protocol) = accept.protocol.as_deref().filter(|p| is_token(p)) {
        write_header(&mut out, "Sec-WebSocket-Protocol", protocol.as_bytes());
    }
    let extensions = accept.extensions.as_deref();
    if let Some(value) = extensions.and_then(|e| HeaderValue::from_str(e).ok()) {
        write_header(&mut out, "Sec-WebSocket-Extensions", value.as_bytes());
    }
    for (name, value) in &accept.headers {
        if !RESERVED_IN_101.contains(name) {
            write_header(&mut out, name.as_str(), value.as_bytes());
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// A complete HTTP/1.1 response for `reject`, with `Content-Length`,
/// `Connection: close` and the body.
pub fn reject_response(reject: &Reject) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + reject.body.len());
    let status = reject.status;
    let reason = status.canonical_reason().unwrap_or("");
    out.extend_from_slice(format!("HTTP/1.1 {} {reason}\r\n", status.as_u16()).as_bytes());
    let own = [
        header::CONTENT_LENGTH,
        header::CONNECTION,
        header::TRANSFER_ENCODING,
    ];
    for (name, value) in reject.headers.iter() {
        if !own.contains(name) {
            write_header(&mut out, name.as_str(), value.as_bytes());
        }
    }
    let mut connection: Vec<&[u8]> = reject
        .headers
        .get_all(header::CONNECTION)
        .iter()
        .map(HeaderValue::as_bytes)
        .collect();
    if !header_has_token(&reject.headers, header::CONNECTION, "close") {
        connection.push(b"close");
    }
    write_header(&mut out, "Connection", &connection.join(&b", "[..]));
    if !reject.body.is_empty() && !reject.headers.contains_key(header::CONTENT_TYPE) {
        write_header(&mut out, "Content-Type", b"text/plain; charset=utf-8");
    }
    write_header(
        &mut out,
        "Content-Length",
        reject.body.len().to_string().as_bytes(),
    );
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&reject.body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handshake::tests::RFC_REQUEST;
    use crate::handshake::{HandshakeLimits, RequestParser};
    use http::Method;

    fn parse(input: &[u8]) -> Result<Option<Request>, HandshakeError> {
        let mut buf = bytes::BytesMut::from(input);
        RequestParser::new(HandshakeLimits::default()).parse(&mut buf)
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
        fn response_is_written() {
            let request = accepted(RFC_REQUEST.as_bytes());
            let protocol = select_protocol(request.offered_protocols(), &["chat"]);
            let response = accept_response(
                &request,
                &Accept {
                    protocol,
                    ..Accept::default()
                },
            );
            let expected = "HTTP/1.1 101 Switching Protocols\r\n\
                Upgrade: websocket\r\n\
                Connection: Upgrade\r\n\
                Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
                Sec-WebSocket-Protocol: chat\r\n\r\n";
            assert_eq!(String::from_utf8_lossy(&response), expected);
        }
    }

    mod section_4_2_2_sending_the_servers_handshake {
        use super::*;

        #[test]
        fn select_protocol_follows_the_servers_preference() {
            let offered = ["chat".to_owned(), "superchat".to_owned()];
            assert_eq!(
                select_protocol(&offered, &["superchat", "chat"]),
                Some("superchat".into())
            );
            assert_eq!(select_protocol(&offered, &["Chat", "v2"]), None);
            assert_eq!(select_protocol(&[], &["chat"]), None);
        }

        #[test]
        fn extensions_and_extra_headers_but_not_reserved_ones() {
            let request = accepted(RFC_REQUEST.as_bytes());
            let mut accept = Accept {
                protocol: Some("bad\r\nInjected: yes".into()),
                extensions: Some("permessage-deflate".into()),
                ..Accept::default()
            };
            accept
                .headers
                .append(header::SET_COOKIE, HeaderValue::from_static("a=b"));
            accept
                .headers
                .append(header::CONNECTION, HeaderValue::from_static("close"));
            accept
                .headers
                .append(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
            let response = String::from_utf8(accept_response(&request, &accept)).expect("ASCII");
            assert!(
                response.ends_with(
                    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
                 Sec-WebSocket-Extensions: permessage-deflate\r\n\
                 set-cookie: a=b\r\n\r\n"
                ),
                "{response}"
            );
        }

        #[test]
        fn reject_with_a_body() {
            let reject = Reject::new(StatusCode::FORBIDDEN)
                .with_header(header::SERVER, HeaderValue::from_static("clarion"))
                .with_body("origin not allowed\n");
            let expected = "HTTP/1.1 403 Forbidden\r\n\
                server: clarion\r\n\
                Connection: close\r\n\
                Content-Type: text/plain; charset=utf-8\r\n\
                Content-Length: 19\r\n\r\n\
                origin not allowed\n";
            assert_eq!(String::from_utf8_lossy(&reject_response(&reject)), expected);
        }

        #[test]
        fn reject_without_a_body_has_no_content_type() {
            let response = reject_response(&Reject::new(StatusCode::SERVICE_UNAVAILABLE));
            let expected = "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
            assert_eq!(String::from_utf8_lossy(&response), expected);
        }

        #[test]
        fn method_not_allowed_says_allow_get() {
            let reject = HandshakeError::MethodNotAllowed(Method::POST).to_reject();
            let response = String::from_utf8(reject_response(&reject)).expect("ASCII");
            assert!(
                response.starts_with("HTTP/1.1 405 Method Not Allowed\r\nallow: GET\r\n"),
                "{response}"
            );
            assert!(
                response.ends_with("\r\n\r\nmethod POST is not GET\n"),
                "{response}"
            );
        }

        #[test]
        fn upgrade_required_tells_a_plain_http_client_what_to_do() {
            let reject = HandshakeError::UnsupportedWebSocketVersion.to_reject();
            let response = String::from_utf8(reject_response(&reject)).expect("ASCII");
            let head = "HTTP/1.1 426 Upgrade Required\r\n\
                upgrade: websocket\r\n\
                sec-websocket-version: 13\r\n\
                Connection: Upgrade, close\r\n";
            assert!(response.starts_with(head), "{response}");
        }

        #[test]
        fn a_malformed_request_gets_a_400_it_can_read() {
            let error = parse(b"GARBAGE\r\n\r\n").expect_err("malformed");
            let response = String::from_utf8(reject_response(&error.to_reject())).expect("ASCII");
            assert!(
                response.starts_with("HTTP/1.1 400 Bad Request\r\n"),
                "{response}"
            );
            assert!(
                response.ends_with("\r\n\r\nmalformed HTTP: invalid token\n"),
                "{response}"
            );
        }
    }
}
