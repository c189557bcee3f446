//! Durations on the command line: `250ms`, `10s`, `2m`, or a bare number
//! of seconds (`1.5`).

use std::time::Duration;

/// Parses a duration flag; clap calls it as a `value_parser`.
pub(crate) fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 250ms, 10s or 2m"))?;
    let seconds = match unit {
        "ms" => number / 1000.0,
        "" | "s" => number,
        "m" => number * 60.0,
        _ => return Err(format!("unknown unit {unit:?} in {text:?} (ms, s or m)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{text:?}: {e}"))
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
    fn units_and_bare_seconds() {
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_or_off("off"), Ok(OrOff(None)));
        assert_eq!(parse_or_off("3s"), Ok(OrOff(Some(Duration::from_secs(3)))));
        for bad in ["", "s", "10h", "-1s", "1..2s", "ten"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
