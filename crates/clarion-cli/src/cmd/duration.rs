//! Durations on the command line, in Clarion's one grammar (the server
//! config's, `clarion_server::config::parse_duration`): `250ms`, `10s`,
//! `1.5s`, `2m`, `1h`, `1d`, or a bare number of seconds (`10`, `1.5`).

use std::time::Duration;

/// Parses a duration flag; clap calls it as a `value_parser`.
pub(crate) fn parse(text: &str) -> Result<Duration, String> {
    clarion_server::config::parse_duration(text).map_err(|e| e.to_string())
}

/// A duration or `off` (`None`). A type of its own: clap reads a field of
/// type `Option<T>` as "the flag may be absent", not as the value's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct OrOff(pub(crate) Option<Duration>);

/// Parses a duration or `off`.
pub(crate) fn parse_or_off(text: &str) -> Result<OrOff, String> {
    match text.trim() {
        "off" | "none" => Ok(OrOff(None)),
        other => parse(other).map(|d| OrOff(Some(d))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_one_grammar_and_off() {
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_or_off("off"), Ok(OrOff(None)));
        assert_eq!(parse_or_off("3s"), Ok(OrOff(Some(Duration::from_secs(3)))));
        for bad in ["", "s", "-1s", "1..2s", "ten", "0.0001ms"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
