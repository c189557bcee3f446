//! The `Sec-WebSocket-Extensions` grammar (RFC 6455 section 9.1):
//!
//! ```text
//! extension-list = 1#extension
//! extension      = extension-token *( ";" extension-param )
//! extension-param = token [ "=" (token | quoted-string) ]
//! ```
//!
//! A quoted value must be a token once unescaped. Optional whitespace may
//! surround `,`, `;` and `=`; empty list elements are skipped (RFC 9110
//! section 5.6.1), but a header line must name at least one extension.

use std::fmt;

/// One extension of a `Sec-WebSocket-Extensions` value, with its parameters
/// in order: an item of a client's offer, or of a server's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtensionOffer {
    /// The extension's name, e.g. `permessage-deflate`.
    pub name: String,
    /// The parameters: a name and, if one was given, its value (unquoted).
    pub params: Vec<(String, Option<String>)>,
}

impl fmt::Display for ExtensionOffer {
    /// The header form: `name; param; param=value`. Names and values are
    /// tokens, so nothing needs quoting.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        for (name, value) in &self.params {
            write!(f, "; {name}")?;
            if let Some(value) = value {
                write!(f, "={value}")?;
            }
        }
        Ok(())
    }
}

/// A `Sec-WebSocket-Extensions` value that does not follow RFC 6455
/// section 9.1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MalformedExtensions {
    /// What is wrong.
    pub reason: &'static str,
    /// The byte offset in the header line where parsing stopped.
    pub offset: usize,
}

impl fmt::Display for MalformedExtensions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "malformed Sec-WebSocket-Extensions at byte {}: {}",
            self.offset, self.reason
        )
    }
}

impl std::error::Error for MalformedExtensions {}

/// Parses the `Sec-WebSocket-Extensions` header lines, in order, into one
/// list. Each line is a whole `extension-list`; the items of
/// [`Request::offered_extensions`](crate::handshake::Request::offered_extensions)
/// qualify too. Any malformed line fails the whole header.
pub fn parse_extensions<'a, I>(lines: I) -> Result<Vec<ExtensionOffer>, MalformedExtensions>
where
    I: IntoIterator<Item = &'a str>,
{
    let mut extensions = Vec::new();
    for line in lines {
        parse_line(line, &mut extensions)?;
    }
    Ok(extensions)
}

/// Appends the extensions of one header line to `out`.
fn parse_line(line: &str, out: &mut Vec<ExtensionOffer>) -> Result<(), MalformedExtensions> {
    let mut cursor = Cursor {
        bytes: line.as_bytes(),
        at: 0,
    };
    let before = out.len();
    loop {
        cursor.skip_whitespace();
        if cursor.eat(b',') {
            continue;
        }
        if cursor.at_end() {
            break;
        }
        out.push(parse_extension(&mut cursor)?);
        cursor.skip_whitespace();
        if !cursor.at_end() && !cursor.eat(b',') {
            return Err(cursor.error("expected `,` or `;` after an extension"));
        }
    }
    if out.len() == before {
        return Err(cursor.error("no extension in the header line"));
    }
    Ok(())
}

/// `extension-token *( ";" extension-param )`, the cursor on its name.
fn parse_extension(cursor: &mut Cursor<'_>) -> Result<ExtensionOffer, MalformedExtensions> {
    let name = cursor.token("expected an extension name")?;
    let mut params = Vec::new();
    loop {
        cursor.skip_whitespace();
        if !cursor.eat(b';') {
            return Ok(ExtensionOffer { name, params });
        }
        cursor.skip_whitespace();
        let param = cursor.token("expected a parameter name after `;`")?;
        cursor.skip_whitespace();
        let value = if cursor.eat(b'=') {
            cursor.skip_whitespace();
            Some(cursor.value()?)
        } else {
            None
        };
        params.push((param, value));
    }
}

/// A position in one header line.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn at_end(&self) -> bool {
        self.at == self.bytes.len()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        let found = self.peek() == Some(byte);
        self.at += usize::from(found);
        found
    }

    /// Optional whitespace: spaces and tabs.
    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.at += 1;
        }
    }

    fn error(&self, reason: &'static str) -> MalformedExtensions {
        MalformedExtensions {
            reason,
            offset: self.at,
        }
    }

    /// A non-empty token; `missing` is the reason if there is none.
    fn token(&mut self, missing: &'static str) -> Result<String, MalformedExtensions> {
        let start = self.at;
        while self.peek().is_some_and(is_tchar) {
            self.at += 1;
        }
        if self.at == start {
            return Err(self.error(missing));
        }
        Ok(ascii_string(&self.bytes[start..self.at]))
    }

    /// A parameter value: a token, or a quoted string that unquotes to one.
    fn value(&mut self) -> Result<String, MalformedExtensions> {
        if !self.eat(b'"') {
            return self.token("expected a token or a quoted string after `=`");
        }
        let start = self.at;
        let mut value = Vec::new();
        loop {
            match self.peek() {
                None => return Err(self.error("unterminated quoted string")),
                Some(b'"') => break,
                Some(b'\\') => {
                    self.at += 1;
                    match self.peek() {
                        Some(b) if is_quoted_pair_char(b) => value.push(b),
                        _ => return Err(self.error("invalid escape in a quoted string")),
                    }
                }
                Some(b) if is_qdtext(b) => value.push(b),
                Some(_) => return Err(self.error("invalid character in a quoted string")),
            }
            self.at += 1;
        }
        if value.is_empty() || !value.iter().copied().all(is_tchar) {
            self.at = start;
            return Err(self.error("quoted value is not a token"));
        }
        self.at += 1;
        Ok(ascii_string(&value))
    }
}

/// A `tchar` of RFC 9110 section 5.6.2.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// `qdtext` of RFC 9110 section 5.6.4 (obs-text included).
fn is_qdtext(b: u8) -> bool {
    matches!(b, b'\t' | b' ' | 0x21 | 0x23..=0x5B | 0x5D..=0x7E | 0x80..)
}

/// What may follow a backslash in a quoted string.
fn is_quoted_pair_char(b: u8) -> bool {
    matches!(b, b'\t' | b' ' | 0x21..=0x7E | 0x80..)
}

/// Bytes already checked to be tchars, as a `String`.
fn ascii_string(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(lines: &[&str]) -> Result<Vec<ExtensionOffer>, MalformedExtensions> {
        parse_extensions(lines.iter().copied())
    }

    fn ext(name: &str, params: &[(&str, Option<&str>)]) -> ExtensionOffer {
        ExtensionOffer {
            name: name.to_owned(),
            params: params
                .iter()
                .map(|(n, v)| ((*n).to_owned(), v.map(str::to_owned)))
                .collect(),
        }
    }

    /// RFC 6455 section 9.1 and its examples.
    mod section_9_1_grammar {
        use super::*;

        #[test]
        fn names_params_and_values() {
            let parsed = parse(&["foo, bar; baz=2"]).expect("valid");
            assert_eq!(parsed, [ext("foo", &[]), ext("bar", &[("baz", Some("2"))])]);
        }

        #[test]
        fn every_header_line_adds_to_one_list_in_order() {
            // Section 9.1: "Sec-WebSocket-Extensions: foo" and
            // "Sec-WebSocket-Extensions: bar; baz=2" equal "foo, bar; baz=2".
            let split = parse(&["foo", "bar; baz=2"]).expect("valid");
            assert_eq!(split, parse(&["foo, bar; baz=2"]).expect("valid"));
        }

        #[test]
        fn quoted_values_are_unquoted_and_unescaped() {
            let parsed = parse(&[r#"x; a="10"; b="\1\5"; c=tok"#]).expect("valid");
            let params = [("a", Some("10")), ("b", Some("15")), ("c", Some("tok"))];
            assert_eq!(parsed, [ext("x", &params)]);
        }

        #[test]
        fn whitespace_around_separators_and_empty_elements() {
            let parsed = parse(&[" ,\tdeflate ; a = 1 ;b\t, , other ,"]).expect("valid");
            let expected = [
                ext("deflate", &[("a", Some("1")), ("b", None)]),
                ext("other", &[]),
            ];
            assert_eq!(parsed, expected);
        }

        #[test]
        fn chrome_and_firefox_offers() {
            let parsed = parse(&["permessage-deflate; client_max_window_bits"]).expect("valid");
            assert_eq!(
                parsed,
                [ext(
                    "permessage-deflate",
                    &[("client_max_window_bits", None)]
                )]
            );
        }

        #[test]
        fn malformed_lines_are_rejected_with_a_reason() {
            #[rustfmt::skip]
            let cases: &[(&str, &str, usize)] = &[
                ("", "no extension in the header line", 0),
                (" , ,", "no extension in the header line", 4),
                ("; a", "expected an extension name", 0),
                ("x;", "expected a parameter name after `;`", 2),
                ("x; =1", "expected a parameter name after `;`", 3),
                ("x; a=", "expected a token or a quoted string after `=`", 5),
                ("x; a==1", "expected a token or a quoted string after `=`", 5),
                ("x y", "expected `,` or `;` after an extension", 2),
                ("x; a=1 2", "expected `,` or `;` after an extension", 7),
                ("x; a=\"1", "unterminated quoted string", 7),
                ("x; a=\"\"", "quoted value is not a token", 6),
                ("x; a=\"1 2\"", "quoted value is not a token", 6),
                ("x; a=\"a,b\"", "quoted value is not a token", 6),
                ("x; a=\"\\\u{1}\"", "invalid escape in a quoted string", 7),
                ("x; a=\"\u{1}\"", "invalid character in a quoted string", 6),
                ("x; a=\"1\"2", "expected `,` or `;` after an extension", 8),
                ("x(y)", "expected `,` or `;` after an extension", 1),
                ("é", "expected an extension name", 0),
            ];
            for &(line, reason, offset) in cases {
                assert_eq!(
                    parse(&[line]),
                    Err(MalformedExtensions { reason, offset }),
                    "{line:?}"
                );
            }
        }

        #[test]
        fn one_bad_line_fails_the_header() {
            assert!(parse(&["permessage-deflate", ""]).is_err());
        }

        #[test]
        fn display_is_the_header_form_and_parses_back() {
            let offer = ext("e", &[("a", None), ("b", Some("9"))]);
            assert_eq!(offer.to_string(), "e; a; b=9");
            assert_eq!(parse(&[&offer.to_string()]), Ok(vec![offer]));
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn token() -> impl Strategy<Value = String> {
            "[a-zA-Z0-9!#$%&'*+.^_`|~-]{1,12}"
        }

        fn extension() -> impl Strategy<Value = ExtensionOffer> {
            let param = (token(), proptest::option::of(token()));
            (token(), proptest::collection::vec(param, 0..4))
                .prop_map(|(name, params)| ExtensionOffer { name, params })
        }

        proptest! {
            #[test]
            fn display_round_trips(list in proptest::collection::vec(extension(), 1..4)) {
                let line = list.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
                prop_assert_eq!(parse(&[&line]), Ok(list));
            }

            #[test]
            fn arbitrary_input_never_panics(line in "\\PC{0,40}") {
                let _ = parse(&[&line]);
            }
        }
    }
}
