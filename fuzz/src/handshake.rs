//! The opening handshake: the server's `RequestParser` and the client's
//! `ResponseParser`, fed in arbitrary splits.

use base64::Engine as _;
use bytes::BytesMut;
use clarion_proto::connection::{Config, Connection, Event};
use clarion_proto::deflate::{
    client_accept, client_offer, parse_extensions, server_accept, DeflateConfig, DeflateParams,
};
use clarion_proto::handshake::{
    accept_key, accept_response, reject_response, Accept, ClientRequest, HandshakeError,
    HandshakeLimits, Request, RequestParser, Response, ResponseParser,
};
use clarion_proto::Message;
use http::StatusCode;

use crate::frames::drain;
use crate::input::{Input, Pattern};

/// The nonce of RFC 6455 section 1.3; its accept key is
/// `s3pPLMBiTxaQ9kYGzzhZRbK+xOo=`.
const NONCE: [u8; 16] = *b"the sample nonce";

/// What a parser answered, and the bytes left in the caller's buffer.
type Fed<T> = (Result<Option<T>, HandshakeError>, BytesMut);

/// Server side: `[limits] [pattern] request...`.
///
/// The `limits` byte picks the head, header-count and URI limits (small
/// ones included, to reach every limit). Checks: any split gives the same
/// answer and leaves the same bytes; an accepted head is at most
/// `max_head_bytes` and ends the head; an accepted request's 101 is
/// accepted by a client that sent its key and offers; a refused one maps to
/// a 4xx/5xx whose response a client reads as that status, with the body
/// left intact.
pub fn handshake_request(data: &[u8]) {
    let mut input = Input::new(data);
    let limits = limits(input.byte());
    let pattern = input.pattern();
    let bytes = input.rest();
    let parse = |pattern: Pattern<'_>| {
        let mut parser = RequestParser::new(limits);
        feed(bytes, pattern, |buf| parser.parse(buf))
    };
    let whole = parse(Pattern::WHOLE);
    assert_eq!(whole, parse(pattern), "a split changed the answer");
    let (result, rest) = whole;
    check_head_bounds(bytes, &result, &rest, &limits);
    match result {
        Ok(Some(request)) => check_accepted(&request),
        Ok(None) => {}
        Err(err) => check_refused(&err),
    }
}

/// Client side: `[flags] [pattern] response...`, for a request with the
/// RFC's nonce.
///
/// `flags`: bit 0 offers permessage-deflate, bit 1 offers the subprotocols
/// `chat` and `superchat`, bits 2–3 pick the limits. Checks: any split
/// gives the same answer; an accepted response is a 101 with our accept
/// key, a subprotocol we offered and extensions only if we offered; a
/// deflate agreement it carries makes two connections that understand each
/// other.
pub fn handshake_response(data: &[u8]) {
    let mut input = Input::new(data);
    let flags = input.byte();
    let limits = limits(flags >> 2);
    let pattern = input.pattern();
    let bytes = input.rest();
    let uri = "ws://example.com/chat".parse().expect("a valid URI");
    let mut request = ClientRequest::new(&uri, NONCE).expect("a ws URI");
    let deflate = DeflateConfig::default();
    if flags & 1 != 0 {
        request = request.extensions(client_offer(&deflate).expect("deflate is on"));
    }
    let offered: Vec<String> = match flags & 2 {
        0 => Vec::new(),
        _ => vec!["chat".into(), "superchat".into()],
    };
    request = request.protocols(offered.clone());
    let parse = |pattern: Pattern<'_>| {
        let mut parser = ResponseParser::new(&request, limits);
        feed(bytes, pattern, |buf| parser.parse(buf))
    };
    let whole = parse(Pattern::WHOLE);
    assert_eq!(whole, parse(pattern), "a split changed the answer");
    let (result, rest) = whole;
    check_head_bounds(bytes, &result, &rest, &limits);
    match result {
        Ok(Some(response)) => {
            check_response(&response, &request, &offered, flags & 1 != 0, &deflate)
        }
        Ok(None) => {}
        Err(HandshakeError::UnexpectedStatus(status)) => {
            assert_ne!(status, StatusCode::SWITCHING_PROTOCOLS)
        }
        Err(err) => assert!(!err.to_string().is_empty()),
    }
}

/// Limits from two bits each: head bytes, header count, URI length.
fn limits(byte: u8) -> HandshakeLimits {
    let max_head_bytes = [64, 300, 2048, 16 * 1024][usize::from(byte & 3)];
    let max_headers = [1, 4, 16, 64][usize::from((byte >> 2) & 3)];
    let max_uri_len = [1, 16, 256, 8 * 1024][usize::from((byte >> 4) & 3)].min(max_head_bytes);
    let limits = HandshakeLimits {
        max_head_bytes,
        max_headers,
        max_uri_len,
    };
    limits.validate().expect("the fuzz limits are valid");
    limits
}

/// Feeds `bytes` in the pieces of `pattern` until `parse` answers, then
/// appends the rest, as a transport would keep reading.
fn feed<T>(
    bytes: &[u8],
    pattern: Pattern<'_>,
    mut parse: impl FnMut(&mut BytesMut) -> Result<Option<T>, HandshakeError>,
) -> Fed<T> {
    let mut buf = BytesMut::new();
    let pieces = pattern.cut(bytes);
    for (i, piece) in pieces.iter().enumerate() {
        buf.extend_from_slice(piece.bytes);
        match parse(&mut buf) {
            Ok(None) => {}
            answer => {
                for later in &pieces[i + 1..] {
                    buf.extend_from_slice(later.bytes);
                }
                return (answer, buf);
            }
        }
    }
    (Ok(None), buf)
}

/// A head is consumed only whole and within the limit; an incomplete one
/// stays below the limit.
fn check_head_bounds<T>(
    bytes: &[u8],
    result: &Result<Option<T>, HandshakeError>,
    rest: &BytesMut,
    limits: &HandshakeLimits,
) {
    match result {
        Ok(Some(_)) => {
            let consumed = bytes.len() - rest.len();
            assert!(
                consumed <= limits.max_head_bytes,
                "head of {consumed} bytes"
            );
            assert!(bytes[..consumed].ends_with(b"\r\n\r\n"));
            assert_eq!(&bytes[consumed..], &rest[..], "bytes after the head lost");
        }
        Ok(None) => assert!(bytes.len() < limits.max_head_bytes),
        Err(HandshakeError::HeadTooLarge { limit }) => {
            assert_eq!(*limit, limits.max_head_bytes);
            assert!(bytes.len() >= *limit);
        }
        Err(_) => {}
    }
}

/// The 101 for an accepted request is what a client that sent this key
/// and these offers accepts.
fn check_accepted(request: &Request) {
    assert_eq!(request.method(), http::Method::GET);
    assert!(!request.host().is_empty());
    let key: [u8; 16] = base64::engine::general_purpose::STANDARD
        .decode(request.key())
        .expect("an accepted key is base64")
        .try_into()
        .expect("an accepted key is 16 bytes");
    let offers = parse_extensions(request.offered_extensions()).unwrap_or_default();
    let agreed = server_accept(&DeflateConfig::default(), &offers);
    let accept = Accept {
        protocol: request.offered_protocols().first().cloned(),
        extensions: agreed.as_ref().map(|(_, answer)| answer.clone()),
        ..Accept::default()
    };
    let uri = "ws://example.com/".parse().expect("a valid URI");
    let mut client = ClientRequest::new(&uri, key)
        .expect("a ws URI")
        .protocols(request.offered_protocols().to_vec());
    if agreed.is_some() {
        client = client.extensions("permessage-deflate".into());
    }
    let mut reply = BytesMut::from(&accept_response(request, &accept)[..]);
    let big = HandshakeLimits {
        max_head_bytes: 1 << 20,
        max_headers: 1024,
        ..HandshakeLimits::default()
    };
    let response = match ResponseParser::new(&client, big).parse(&mut reply) {
        Ok(Some(response)) => response,
        other => panic!("our 101 was refused by a client: {other:?}"),
    };
    assert!(reply.is_empty(), "a 101 has no body");
    if let Some(protocol) = response.protocol() {
        assert_eq!(Some(protocol), accept.protocol.as_deref());
    }
    if let Some((params, answer)) = &agreed {
        assert_eq!(response.extensions(), Some(answer.as_str()));
        check_params(params);
    }
}

/// A refused request answers with a server-side error status, and a client
/// reads our refusal as that status with the body intact.
fn check_refused(err: &HandshakeError) {
    let status = err.status();
    assert!(
        [400, 405, 414, 426, 431, 505].contains(&status.as_u16()),
        "{err:?} answered with {status}"
    );
    let reject = err.to_reject();
    let mut bytes = BytesMut::from(&reject_response(&reject)[..]);
    let uri = "ws://example.com/".parse().expect("a valid URI");
    let client = ClientRequest::new(&uri, NONCE).expect("a ws URI");
    let answer = ResponseParser::new(&client, HandshakeLimits::default()).parse(&mut bytes);
    assert_eq!(answer, Err(HandshakeError::UnexpectedStatus(status)));
    assert_eq!(&bytes[..], &reject.body[..], "the refusal's body");
}

/// An accepted response answers our request: our key, our offers.
fn check_response(
    response: &Response,
    request: &ClientRequest,
    offered: &[String],
    offered_deflate: bool,
    deflate: &DeflateConfig,
) {
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    let accept = response.headers().get("sec-websocket-accept");
    let expected = accept_key(request.key_base64().as_bytes());
    assert_eq!(
        accept.and_then(|v| v.to_str().ok()).map(str::trim),
        Some(expected.as_str())
    );
    if let Some(protocol) = response.protocol() {
        assert!(offered.iter().any(|p| p == protocol), "{protocol:?}");
    }
    let Some(extensions) = response.extensions() else {
        return;
    };
    assert!(
        offered_deflate,
        "extensions we did not offer: {extensions:?}"
    );
    if let Ok(params) = client_accept(deflate, extensions) {
        check_params(&params);
    }
}

/// An agreement is usable: both ends built from it understand each other,
/// both ways, over a few compressed messages.
fn check_params(params: &DeflateParams) {
    for bits in [params.server_max_window_bits, params.client_max_window_bits] {
        assert!((8..=15).contains(&bits), "window of {bits} bits");
    }
    let mut client = Connection::client(Config::default(), Box::new(|| [1, 2, 3, 4]))
        .expect("the default config is valid");
    let mut server = Connection::server(Config::default()).expect("the default config is valid");
    let mut config = DeflateConfig::default();
    config.min_size = 0;
    client.enable_deflate(params, &config);
    server.enable_deflate(params, &config);
    let text = "permessage-deflate ".repeat(40);
    for _ in 0..3 {
        round_trip(&mut client, &mut server, &text);
        round_trip(&mut server, &mut client, &text);
    }
}

/// `text` sent by `from` arrives whole at `to`.
fn round_trip(from: &mut Connection, to: &mut Connection, text: &str) {
    from.send(Message::text(text)).expect("an open connection");
    let mut wire = drain(from);
    let event = to.receive(&mut wire).expect("a valid compressed frame");
    assert_eq!(event, Some(Event::Message(Message::text(text))));
}
