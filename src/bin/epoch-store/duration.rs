//! Durations on the command line (`gc --grace`): numbers with unambiguous
//! units only.

use std::time::Duration;

/// The units accepted, with their length in seconds. `M` (month or
/// minute?) and `y` (which year?) are left out on purpose.
const UNITS: [(&[&str], u64); 5] = [
    (&["s", "sec", "secs", "second", "seconds"], 1),
    (&["m", "min", "mins", "minute", "minutes"], 60),
    (&["h", "hr", "hrs", "hour", "hours"], 3600),
    (&["d", "day", "days"], 86_400),
    (&["w", "week", "weeks"], 604_800),
];

const EXAMPLES: &str = "examples: 0s, 90m, 24h, 7d, 2w, 1h30m";

/// Parses `24h`, `90m`, `1h 30m`, `1h30m`, `0s`, `7d`, `2w`: one or more
/// whole numbers, each followed by a unit of [`UNITS`].
///
/// # Errors
/// A sentence saying what is wrong: a negative duration, a missing or
/// unknown unit (`1M` is refused: month or minute?), an overflow.
pub fn parse(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.starts_with('-') {
        return Err(format!(
            "{text:?} is negative; a grace period is 0s or longer ({EXAMPLES})"
        ));
    }
    if s.is_empty() {
        return Err(format!("the duration is empty ({EXAMPLES})"));
    }
    let mut total: u64 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!(
                "{text:?}: expected a whole number at {rest:?} ({EXAMPLES})"
            ));
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("{text:?}: {} is too large", &rest[..digits]))?;
        rest = rest[digits..].trim_start();
        let letters = rest.bytes().take_while(|b| b.is_ascii_alphabetic()).count();
        let unit = &rest[..letters];
        let seconds = unit_seconds(unit).ok_or_else(|| match unit {
            "" => format!("{text:?}: {number} needs a unit: s, m, h, d or w ({EXAMPLES})"),
            "M" => format!(
                "{text:?}: \"M\" is ambiguous (month or minute?); use m for minutes or d for days"
            ),
            _ => format!("{text:?}: unknown unit {unit:?}; use s, m, h, d or w ({EXAMPLES})"),
        })?;
        total = number
            .checked_mul(seconds)
            .and_then(|n| total.checked_add(n))
            .ok_or_else(|| format!("{text:?} is too long a duration"))?;
        rest = rest[letters..].trim_start();
    }
    Ok(Duration::from_secs(total))
}

fn unit_seconds(unit: &str) -> Option<u64> {
    UNITS
        .iter()
        .find(|(names, _)| names.contains(&unit))
        .map(|&(_, seconds)| seconds)
}

/// A duration as [`parse`] reads it: `24h`, `1h30m`, `7d`, `0s`.
pub fn format(d: Duration) -> String {
    let mut left = d.as_secs();
    if left == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (names, seconds) in UNITS.iter().rev() {
        if left >= *seconds {
            out.push_str(&format!("{}{}", left / seconds, names[0]));
            left %= seconds;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unambiguous_units_are_read() {
        for (text, secs) in [
            ("0s", 0),
            ("90m", 5400),
            ("24h", 86_400),
            ("1h 30m", 5400),
            ("1h30m", 5400),
            ("7d", 604_800),
            ("2w", 1_209_600),
            ("3 days", 259_200),
        ] {
            assert_eq!(parse(text), Ok(Duration::from_secs(secs)), "{text}");
        }
    }

    #[test]
    fn ambiguous_negative_and_unitless_durations_are_refused() {
        for (text, says) in [
            ("-1s", "negative"),
            ("1M", "ambiguous"),
            ("10", "needs a unit"),
            ("1y", "unknown unit"),
            ("5ms", "unknown unit"),
            ("", "empty"),
            ("h", "whole number"),
            ("99999999999999999999s", "too large"),
            ("999999999999999w", "too long"),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(says), "{text}: {err}");
        }
    }

    #[test]
    fn formatting_reads_back() {
        for secs in [0, 59, 60, 5400, 86_400, 90_061, 1_209_600] {
            let d = Duration::from_secs(secs);
            assert_eq!(parse(&format(d)), Ok(d));
        }
        assert_eq!(format(Duration::from_secs(86_400)), "1d");
        assert_eq!(format(Duration::from_secs(5400)), "1h30m");
    }
}
