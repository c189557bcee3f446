//! Finding and splitting off an HTTP head, shared by both sides.
//!
//! Each byte is looked at once: the scanner remembers how far it got and
//! resumes three bytes back, in case `\r\n\r\n` straddles two reads. Only
//! when the terminator is found does httparse run, once, on exactly the head.
//! Rescanning the whole buffer on every read made tungstenite quadratic
//! (CVE-2023-43669).

use super::HandshakeError;
use bytes::BytesMut;
use http::{HeaderMap, HeaderName, HeaderValue};

/// The blank line that ends an HTTP head. A head whose lines end in bare LF
/// is not recognised and runs into the size limit: RFC 9112 only lets a
/// recipient accept those, and no browser or WebSocket library sends them.
const TERMINATOR: &[u8] = b"\r\n\r\n";

/// The shortest header line, `a:\r\n`; bounds the header count of a head.
const MIN_HEADER_LINE: usize = 4;

/// Where the search for the end of the head resumes.
#[derive(Clone, Debug, Default)]
pub(super) struct HeadScanner {
    /// How many bytes at the front of the buffer have been searched.
    scanned: usize,
}

impl HeadScanner {
    /// Splits the head, terminator included, off the front of `buf` once it
    /// is complete, leaving whatever follows it. `Ok(None)`: need more bytes.
    /// Fails once `max_head_bytes` bytes are buffered without a terminator.
    pub(super) fn next_head(
        &mut self,
        buf: &mut BytesMut,
        max_head_bytes: usize,
    ) -> Result<Option<BytesMut>, HandshakeError> {
        Ok(self
            .find_end(buf, max_head_bytes)?
            .map(|len| buf.split_to(len)))
    }

    /// The length of the head in `buf`, searching only what is new.
    fn find_end(
        &mut self,
        buf: &[u8],
        max_head_bytes: usize,
    ) -> Result<Option<usize>, HandshakeError> {
        if self.scanned > buf.len() {
            // The caller dropped bytes we had seen: start over rather than trust stale state.
            self.scanned = 0;
        }
        let start = self.scanned.saturating_sub(TERMINATOR.len() - 1);
        let end = buf.len().min(max_head_bytes);
        let found = buf
            .get(start..end)
            .and_then(|new| new.windows(TERMINATOR.len()).position(|w| w == TERMINATOR));
        if let Some(at) = found {
            self.scanned = 0;
            return Ok(Some(start + at + TERMINATOR.len()));
        }
        if buf.len() >= max_head_bytes {
            return Err(HandshakeError::HeadTooLarge {
                limit: max_head_bytes,
            });
        }
        self.scanned = end;
        Ok(None)
    }
}

/// How many header slots to give httparse for a head of `head_len` bytes:
/// `max_headers` (httparse reports a head with more), but never more than
/// the head could hold, so a large configured limit costs nothing for a
/// small head.
pub(super) fn header_slots(head_len: usize, max_headers: usize) -> usize {
    max_headers.min(head_len / MIN_HEADER_LINE + 1)
}

/// The httparse error for a complete `head`, as a handshake error.
fn parse_error(error: httparse::Error, head: &[u8], max_headers: usize) -> HandshakeError {
    match error {
        httparse::Error::TooManyHeaders => HandshakeError::TooManyHeaders { limit: max_headers },
        httparse::Error::Version if names_a_version(head) => HandshakeError::UnsupportedHttpVersion,
        httparse::Error::Version => HandshakeError::MalformedHttp("invalid HTTP version"),
        httparse::Error::HeaderName => HandshakeError::MalformedHttp("invalid header name"),
        httparse::Error::HeaderValue => HandshakeError::MalformedHttp("invalid header value"),
        httparse::Error::NewLine => HandshakeError::MalformedHttp("invalid line ending"),
        httparse::Error::Status => HandshakeError::MalformedHttp("invalid status code"),
        httparse::Error::Token => HandshakeError::MalformedHttp("invalid token"),
    }
}

/// Whether the first line of `head` is well formed around a version
/// httparse refused (`HTTP/2.0`, say): then the version is the problem
/// (505), not the syntax (400). The version ends a request line and starts
/// a status line.
fn names_a_version(head: &[u8]) -> bool {
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let mut parts = line.split(|&b| b == b' ');
    let version = if line.starts_with(b"HTTP/") {
        parts.next()
    } else {
        parts.nth(2).filter(|_| parts.next().is_none())
    };
    matches!(version, Some([b'H', b'T', b'T', b'P', b'/', major, b'.', minor])
        if major.is_ascii_digit() && minor.is_ascii_digit())
}

/// httparse's result on `head`, which must end where the scanner said.
pub(super) fn check_complete(
    status: Result<httparse::Status<usize>, httparse::Error>,
    head: &[u8],
    max_headers: usize,
) -> Result<(), HandshakeError> {
    match status {
        Ok(httparse::Status::Complete(len)) if len == head.len() => Ok(()),
        // httparse skips blank lines before a request line; then our
        // terminator was not the end of the head.
        Ok(_) => Err(HandshakeError::MalformedHttp("empty lines before the head")),
        Err(error) => Err(parse_error(error, head, max_headers)),
    }
}

/// The parsed headers as a `HeaderMap`, repeated names kept in order.
pub(super) fn header_map(
    parsed: &[httparse::Header<'_>],
    max_headers: usize,
) -> Result<HeaderMap, HandshakeError> {
    let mut headers = HeaderMap::new();
    for header in parsed {
        let name = HeaderName::from_bytes(header.name.as_bytes())
            .map_err(|_| HandshakeError::MalformedHttp("invalid header name"))?;
        let value = HeaderValue::from_bytes(header.value.trim_ascii())
            .map_err(|_| HandshakeError::MalformedHttp("invalid header value"))?;
        headers
            .try_append(name, value)
            .map_err(|_| HandshakeError::TooManyHeaders { limit: max_headers })?;
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &[u8] = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";

    fn feed(scanner: &mut HeadScanner, buf: &mut BytesMut, bytes: &[u8]) -> Option<BytesMut> {
        buf.extend_from_slice(bytes);
        scanner.next_head(buf, 1024).expect("under the limit")
    }

    #[test]
    fn head_is_split_off_and_the_rest_stays() {
        let mut buf = BytesMut::from(&b"GET / HTTP/1.1\r\n\r\n\x81\x80rest"[..]);
        let head = HeadScanner::default().next_head(&mut buf, 1024);
        assert_eq!(
            head,
            Ok(Some(BytesMut::from(&b"GET / HTTP/1.1\r\n\r\n"[..])))
        );
        assert_eq!(&buf[..], b"\x81\x80rest");
    }

    #[test]
    fn terminator_split_across_reads_at_every_point() {
        for split in 0..=HEAD.len() {
            let (mut scanner, mut buf) = (HeadScanner::default(), BytesMut::new());
            let first = feed(&mut scanner, &mut buf, &HEAD[..split]);
            let head = first.or_else(|| feed(&mut scanner, &mut buf, &HEAD[split..]));
            assert_eq!(head.as_deref(), Some(HEAD), "split at {split}");
        }
    }

    #[test]
    fn one_byte_at_a_time_scans_each_byte_once() {
        let (mut scanner, mut buf) = (HeadScanner::default(), BytesMut::new());
        for (i, &byte) in HEAD[..HEAD.len() - 1].iter().enumerate() {
            assert_eq!(feed(&mut scanner, &mut buf, &[byte]), None);
            assert_eq!(scanner.scanned, i + 1);
        }
        assert_eq!(feed(&mut scanner, &mut buf, b"\n").as_deref(), Some(HEAD));
    }

    #[test]
    fn over_the_limit_without_a_terminator() {
        let mut scanner = HeadScanner::default();
        let mut buf = BytesMut::from(&[b'a'; 99][..]);
        assert_eq!(scanner.next_head(&mut buf, 100), Ok(None));
        buf.extend_from_slice(b"a");
        let too_large = Err(HandshakeError::HeadTooLarge { limit: 100 });
        assert_eq!(scanner.next_head(&mut buf, 100), too_large);
    }

    #[test]
    fn a_head_of_exactly_the_limit_fits_and_one_more_byte_does_not() {
        let mut buf = BytesMut::from(HEAD);
        assert!(matches!(
            HeadScanner::default().next_head(&mut buf, HEAD.len()),
            Ok(Some(_))
        ));
        let mut buf = BytesMut::from(HEAD);
        let result = HeadScanner::default().next_head(&mut buf, HEAD.len() - 1);
        assert!(matches!(result, Err(HandshakeError::HeadTooLarge { .. })));
    }

    /// CVE-2023-43669: a quadratic rescan made a slow, large head a CPU
    /// denial of service. 256 KiB in single bytes is 256 Ki windows here,
    /// but would be ~34 billion byte comparisons with a rescan.
    #[test]
    fn cve_2023_43669_large_head_fed_byte_by_byte_is_linear() {
        let limit = 256 * 1024;
        let (mut scanner, mut buf) = (HeadScanner::default(), BytesMut::with_capacity(limit));
        for _ in 0..limit - 1 {
            buf.extend_from_slice(b"a");
            assert_eq!(scanner.next_head(&mut buf, limit), Ok(None));
        }
        buf.extend_from_slice(b"a");
        assert_eq!(
            scanner.next_head(&mut buf, limit),
            Err(HandshakeError::HeadTooLarge { limit })
        );
    }

    #[test]
    fn a_shrunk_buffer_is_rescanned_from_the_start() {
        let mut scanner = HeadScanner::default();
        let mut buf = BytesMut::from(&[b'x'; 100][..]);
        assert_eq!(scanner.next_head(&mut buf, 1024), Ok(None));
        let mut buf = BytesMut::from(HEAD);
        assert_eq!(
            scanner.next_head(&mut buf, 1024).ok().flatten().as_deref(),
            Some(HEAD)
        );
    }

    #[test]
    fn a_refused_version_is_505_only_in_a_well_formed_line() {
        let version = |head: &[u8]| parse_error(httparse::Error::Version, head, 64);
        let unsupported = HandshakeError::UnsupportedHttpVersion;
        assert_eq!(version(b"GET / HTTP/2.0\r\n\r\n"), unsupported);
        assert_eq!(version(b"HTTP/2.0 101 OK\r\n\r\n"), unsupported);
        for head in [
            &b"GET /  HTTP/1.1\r\n\r\n"[..],
            b"GET / HTTP/1.1x\r\n\r\n",
            b"GET /\r\n\r\n",
        ] {
            assert_eq!(
                version(head),
                HandshakeError::MalformedHttp("invalid HTTP version")
            );
        }
    }

    #[test]
    fn header_slots_follow_the_head_not_the_limit() {
        assert_eq!(header_slots(40, 1024), 11);
        assert_eq!(header_slots(16 * 1024, 64), 64);
    }
}
