//! The `Origin` check against Cross-Site WebSocket Hijacking.
//!
//! Browsers send `Origin` with every WebSocket handshake and, unlike for
//! `fetch`, apply no same-origin rule to WebSockets: any page can open a
//! socket to any server, with the user's cookies. A server that
//! authenticates with cookies must therefore check where the page came from.
//!
//! [`OriginPolicy`] is that check: an allow-list of exact origins
//! (`https://app.example.com`, `http://localhost:8080`) and wildcard
//! subdomains (`https://*.example.com`), optionally "the page's host is our
//! `Host`", and a choice for requests without `Origin` (non-browser clients,
//! allowed by default). Origins are compared as RFC 6454 serialises them:
//! scheme and host case-insensitively, a default port (80 for http/ws, 443
//! for https/wss) the same as no port. Anything that is not a bare
//! `scheme://host[:port]` (userinfo, a path, a trailing dot, `null`) matches
//! nothing but "any".

use http::header::{self, HeaderValue};
use http::StatusCode;

use super::{Reject, Request};

/// Which `Origin`s may open a WebSocket. See the [module docs](self).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OriginPolicy {
    any: bool,
    same_host: bool,
    allow_missing: bool,
    exact: Vec<Origin>,
    /// `host` holds the suffix after `*`, with its leading dot.
    wildcards: Vec<Origin>,
}

/// Why a request's `Origin` was refused.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OriginError {
    /// No `Origin` header, and the policy requires one.
    Missing,
    /// Not a `scheme://host[:port]` serialisation (includes `null`).
    Malformed,
    /// Well-formed, but on no list.
    NotAllowed,
}

/// A pattern given to [`OriginPolicy::allow`] that is not an origin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OriginPatternError {
    pattern: String,
}

/// A parsed origin: lower-case scheme and host, the port only if it is not
/// the scheme's default.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Origin {
    scheme: String,
    host: String,
    port: Option<u16>,
}

impl OriginPolicy {
    /// Allows every origin, and requests without one: no check at all (what
    /// a server that applies no policy gets).
    pub fn any() -> Self {
        OriginPolicy {
            any: true,
            ..OriginPolicy::allow_list()
        }
    }

    /// An empty allow-list: only requests without `Origin` pass until
    /// patterns are added with [`allow`](Self::allow).
    pub fn allow_list() -> Self {
        OriginPolicy {
            any: false,
            same_host: false,
            allow_missing: true,
            exact: Vec::new(),
            wildcards: Vec::new(),
        }
    }

    /// An allow-list of `patterns` (see [`allow`](Self::allow)).
    pub fn from_patterns<I, P>(patterns: I) -> Result<Self, OriginPatternError>
    where
        I: IntoIterator<Item = P>,
        P: AsRef<str>,
    {
        patterns
            .into_iter()
            .try_fold(OriginPolicy::allow_list(), |policy, p| {
                policy.allow(p.as_ref())
            })
    }

    /// Adds a pattern: `*` (any origin), an exact origin
    /// `scheme://host[:port]`, or `scheme://*.domain[:port]`, which matches
    /// every subdomain of `domain` at any depth but not `domain` itself.
    pub fn allow(mut self, pattern: &str) -> Result<Self, OriginPatternError> {
        let error = || OriginPatternError {
            pattern: pattern.to_owned(),
        };
        if pattern.trim() == "*" {
            self.any = true;
            return Ok(self);
        }
        let mut origin = Origin::parse(pattern.trim()).ok_or_else(error)?;
        match origin.host.strip_prefix('*') {
            Some(suffix) if suffix.starts_with('.') && !suffix.contains('*') => {
                origin.host = suffix.to_owned();
                self.wildcards.push(origin);
            }
            Some(_) => return Err(error()),
            None if origin.host.contains('*') => return Err(error()),
            None => self.exact.push(origin),
        }
        Ok(self)
    }

    /// Also allows an origin whose host and port are the request's `Host`
    /// (the page was served by this server). Default off.
    pub fn allow_same_host(mut self, yes: bool) -> Self {
        self.same_host = yes;
        self
    }

    /// Whether a request without `Origin` passes. Default yes: browsers
    /// always send it, so its absence means a non-browser client, which
    /// could forge any origin anyway.
    pub fn allow_missing(mut self, yes: bool) -> Self {
        self.allow_missing = yes;
        self
    }

    /// Whether this policy lets everything through.
    pub fn is_any(&self) -> bool {
        self.any
    }

    /// Checks an `Origin` value (`None`: no header) against the policy;
    /// `host` is the request's `Host`, for [`allow_same_host`](Self::allow_same_host).
    pub fn check(&self, origin: Option<&str>, host: &str) -> Result<(), OriginError> {
        if self.any {
            return Ok(());
        }
        let Some(origin) = origin else {
            return match self.allow_missing {
                true => Ok(()),
                false => Err(OriginError::Missing),
            };
        };
        let origin = Origin::parse(origin).ok_or(OriginError::Malformed)?;
        if origin.host.contains('*') {
            return Err(OriginError::Malformed);
        }
        let allowed = self.exact.contains(&origin)
            || self.wildcards.iter().any(|w| w.covers(&origin))
            || (self.same_host && origin.is_on_host(host));
        match allowed {
            true => Ok(()),
            false => Err(OriginError::NotAllowed),
        }
    }

    /// Checks a request: its `Origin` header, raw (one that is not ASCII is
    /// malformed, not missing), against its `Host`. A refusal is a 403
    /// with a short body that does not echo the origin.
    pub fn check_request(&self, request: &Request) -> Result<(), Reject> {
        let origin = request
            .headers()
            .get(header::ORIGIN)
            .map(HeaderValue::to_str);
        let result = match origin {
            None => self.check(None, request.host()),
            Some(Ok(origin)) => self.check(Some(origin.trim()), request.host()),
            Some(Err(_)) if self.any => Ok(()),
            Some(Err(_)) => Err(OriginError::Malformed),
        };
        result.map_err(|error| error.to_reject())
    }
}

impl Default for OriginPolicy {
    /// [`OriginPolicy::any`]: the library checks nothing unless asked to.
    fn default() -> Self {
        OriginPolicy::any()
    }
}

impl OriginError {
    /// HTTP 403 with a one-line plain-text body.
    pub fn to_reject(self) -> Reject {
        Reject::new(StatusCode::FORBIDDEN).with_body(format!("{self}\n"))
    }
}

impl std::fmt::Display for OriginError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OriginError::Missing => "missing Origin header",
            OriginError::Malformed => "malformed Origin header",
            OriginError::NotAllowed => "origin not allowed",
        })
    }
}

impl std::error::Error for OriginError {}

impl std::fmt::Display for OriginPatternError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:?} is not an origin pattern: expected `*`, `scheme://host[:port]` \
             or `scheme://*.domain[:port]`",
            self.pattern
        )
    }
}

impl std::error::Error for OriginPatternError {}

impl Origin {
    /// Parses `scheme://host[:port]` strictly: no userinfo, path, query,
    /// fragment, whitespace, empty labels or trailing dot. `*` is kept in the
    /// host for [`OriginPolicy::allow`] to judge.
    fn parse(text: &str) -> Option<Origin> {
        let (scheme, authority) = text.split_once("://")?;
        if !is_scheme(scheme) {
            return None;
        }
        let scheme = scheme.to_ascii_lowercase();
        let (host, port) = split_port(authority)?;
        let host = host.to_ascii_lowercase();
        if !is_host(&host) {
            return None;
        }
        let port = port.filter(|&port| Some(port) != default_port(&scheme));
        Some(Origin { scheme, host, port })
    }

    /// Whether `self`, a wildcard, covers `origin`: same scheme and port,
    /// and a host that ends with the suffix after more than nothing.
    fn covers(&self, origin: &Origin) -> bool {
        self.scheme == origin.scheme
            && self.port == origin.port
            && origin.host.len() > self.host.len()
            && origin.host.ends_with(&self.host)
    }

    /// Whether this origin's host and port are `host` (a `Host` header).
    fn is_on_host(&self, host: &str) -> bool {
        let Some((name, port)) = split_port(host) else {
            return false;
        };
        let port = port.filter(|&port| Some(port) != default_port(&self.scheme));
        name.eq_ignore_ascii_case(&self.host) && port == self.port
    }
}

/// RFC 3986 section 3.1: `ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`.
fn is_scheme(scheme: &str) -> bool {
    let mut bytes = scheme.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
}

/// A DNS name (labels of letters, digits, `-`, `_`; no empty label, so no
/// trailing dot), a `*` label for patterns, an IPv4 address (a DNS-shaped
/// name) or a bracketed IPv6 address.
fn is_host(host: &str) -> bool {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner.parse::<std::net::Ipv6Addr>().is_ok();
    }
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && (label == "*"
                    || label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        })
}

/// Splits `host[:port]` (IPv6 in brackets). `None` if the port is not
/// 1 to 5 digits up to 65535; the host is checked by the caller.
fn split_port(authority: &str) -> Option<(&str, Option<u16>)> {
    let port_at = match authority.rfind(':') {
        Some(at) if !authority[at..].contains(']') => at,
        _ => return Some((authority, None)),
    };
    let (host, port) = (&authority[..port_at], &authority[port_at + 1..]);
    let digits = !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit());
    let port: u16 = port.parse().ok().filter(|_| digits)?;
    Some((host, Some(port)))
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "chat.example.com";

    fn policy(patterns: &[&str]) -> OriginPolicy {
        OriginPolicy::from_patterns(patterns).expect("valid patterns")
    }

    fn allows(policy: &OriginPolicy, origin: &str) -> bool {
        policy.check(Some(origin), HOST).is_ok()
    }

    #[test]
    fn exact_origins_match_case_insensitively_and_with_default_ports() {
        let p = policy(&["https://app.example.com", "http://localhost:8080"]);
        for ok in [
            "https://app.example.com",
            "HTTPS://App.Example.COM",
            "https://app.example.com:443",
            "http://localhost:8080",
            "http://LOCALHOST:8080",
        ] {
            assert!(allows(&p, ok), "{ok}");
        }
        for refused in [
            "http://app.example.com",
            "https://app.example.com:8443",
            "wss://app.example.com",
            "http://localhost",
            "http://localhost:80",
            "https://app.example.co",
            "https://app.example.com.evil.net",
        ] {
            assert_eq!(
                p.check(Some(refused), HOST),
                Err(OriginError::NotAllowed),
                "{refused}"
            );
        }
    }

    #[test]
    fn wildcards_match_subdomains_only_not_look_alikes() {
        let p = policy(&["https://*.example.com"]);
        for ok in [
            "https://a.example.com",
            "https://a.b.example.com",
            "https://A.EXAMPLE.com",
        ] {
            assert!(allows(&p, ok), "{ok}");
        }
        for refused in [
            "https://example.com",
            "https://evilexample.com",
            "https://a.evilexample.com",
            "https://example.com.evil.net",
            "https://a.example.com.evil.net",
            "http://a.example.com",
            "https://a.example.com:444",
        ] {
            assert_eq!(
                p.check(Some(refused), HOST),
                Err(OriginError::NotAllowed),
                "{refused}"
            );
        }
    }

    #[test]
    fn wildcards_with_a_port_need_that_port() {
        let p = policy(&["https://*.example.com:8443"]);
        assert!(allows(&p, "https://a.example.com:8443"));
        assert!(!allows(&p, "https://a.example.com"));
    }

    #[test]
    fn tricks_with_userinfo_paths_dots_and_null_are_malformed() {
        let p = policy(&["https://example.com", "https://*.example.com"]);
        for malformed in [
            "null",
            "",
            "https://",
            "example.com",
            "//example.com",
            "https://example.com.",
            "https://a.example.com.",
            "https://example.com@evil.net",
            "https://evil.net@example.com",
            "https://evil.net#.example.com",
            "https://evil.net/.example.com",
            "https://evil.net?.example.com",
            "https://evil.net\\.example.com",
            "https://example.com/",
            "https://exa mple.com",
            "https://example..com",
            "https://example.com:",
            "https://example.com:99999",
            "https://example.com:+443",
            "https://example.com:-1",
            "https://*.example.com",
            "https://%65xample.com",
            "1https://example.com",
        ] {
            assert_eq!(
                p.check(Some(malformed), HOST),
                Err(OriginError::Malformed),
                "{malformed:?}"
            );
        }
    }

    #[test]
    fn ipv6_and_ip_origins() {
        let p = policy(&["http://[::1]:8080", "http://127.0.0.1"]);
        assert!(allows(&p, "http://[::1]:8080"));
        // Browsers serialise IPv6 canonically; other spellings do not match.
        assert!(!allows(&p, "http://[0:0::1]:8080"));
        assert!(allows(&p, "http://127.0.0.1:80"));
        assert!(!allows(&p, "http://127.0.0.2"));
        assert_eq!(
            p.check(Some("http://[::1"), HOST),
            Err(OriginError::Malformed)
        );
    }

    #[test]
    fn a_missing_origin_passes_unless_required() {
        let p = policy(&["https://example.com"]);
        assert_eq!(p.check(None, HOST), Ok(()));
        let strict = p.allow_missing(false);
        assert_eq!(strict.check(None, HOST), Err(OriginError::Missing));
    }

    #[test]
    fn any_allows_everything_even_null() {
        for p in [OriginPolicy::any(), policy(&["*"]), OriginPolicy::default()] {
            assert!(p.is_any());
            for origin in [Some("null"), Some("https://evil.net"), None] {
                assert_eq!(p.check(origin, HOST), Ok(()), "{origin:?}");
            }
        }
    }

    #[test]
    fn an_empty_allow_list_refuses_every_origin() {
        let p = OriginPolicy::allow_list();
        assert_eq!(
            p.check(Some("https://chat.example.com"), HOST),
            Err(OriginError::NotAllowed)
        );
    }

    #[test]
    fn same_host_compares_host_and_port_with_the_host_header() {
        let p = OriginPolicy::allow_list().allow_same_host(true);
        assert!(allows(&p, "https://chat.example.com"));
        assert!(allows(&p, "http://CHAT.example.com"));
        assert!(!allows(&p, "https://chat.example.com:8443"));
        assert!(!allows(&p, "https://evil.net"));
        let on_port = |origin| p.check(Some(origin), "chat.example.com:8443").is_ok();
        assert!(on_port("https://chat.example.com:8443"));
        assert!(!on_port("https://chat.example.com"));
        let default_port = |origin| p.check(Some(origin), "chat.example.com:443").is_ok();
        assert!(default_port("https://chat.example.com"));
        assert!(!default_port("http://chat.example.com"));
    }

    #[test]
    fn bad_patterns_are_errors() {
        for bad in [
            "example.com",
            "https://*",
            "https://*example.com",
            "https://a.*.example.com",
            "https://**.example.com",
            "https://example.com/path",
            "https://example.com.",
            "null",
        ] {
            let err = OriginPolicy::allow_list().allow(bad).unwrap_err();
            assert!(err.to_string().contains(bad), "{err}");
        }
    }

    #[test]
    fn requests_are_refused_with_403_and_a_body_that_does_not_echo() {
        use bytes::BytesMut;
        let parse = |origin: &[u8]| {
            let mut head = b"GET / HTTP/1.1\r\nHost: chat.example.com\r\nUpgrade: websocket\r\n\
                Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                Sec-WebSocket-Version: 13\r\n"
                .to_vec();
            head.extend_from_slice(origin);
            head.extend_from_slice(b"\r\n");
            let mut buf = BytesMut::from(&head[..]);
            let mut parser = super::super::RequestParser::new(Default::default());
            parser.parse(&mut buf).unwrap().unwrap()
        };
        let p = policy(&["https://*.example.com"]).allow_same_host(true);
        let ok = parse(b"Origin: https://chat.example.com\r\n");
        assert_eq!(p.check_request(&ok), Ok(()));
        let evil = parse(b"Origin: https://evil.net\r\n");
        let reject = p.check_request(&evil).unwrap_err();
        assert_eq!(reject.status, StatusCode::FORBIDDEN);
        assert_eq!(&reject.body[..], b"origin not allowed\n");
        let not_ascii = parse(b"Origin: https://\xe9.example.com\r\n");
        assert_eq!(
            &p.check_request(&not_ascii).unwrap_err().body[..],
            b"malformed Origin header\n"
        );
        assert_eq!(p.check_request(&parse(b"")), Ok(()));
    }
}
