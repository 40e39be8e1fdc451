//! Access durations in human form (`90s`, `45m`, `2h`, `1h30m`, `1d`).
//!
//! Exactly what docs/using.md documents is accepted: whole numbers each followed
//! by a unit (`s`, `m`, `h`, `d`), largest unit first, each unit once,
//! optionally separated by a space (`1h 30m`). Nothing else: not `90` (which
//! unit?), not `1.5h`, not `2hours`, not months. Every refusal names the
//! input and shows one valid value. The canonical rendering (`1h30m`) is used
//! in output and JSON.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest duration anything in jit accepts; policy caps are usually far lower.
const MAX_SECS: u64 = 366 * 24 * 3600;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AccessDuration(u64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("invalid duration `{input}`: {reason}")]
    Malformed { input: String, reason: String },
    #[error("invalid duration `{0}`: must be at least 1s, e.g. 30s")]
    TooShort(String),
    #[error("invalid duration `{0}`: whole numbers only, e.g. 1h30m rather than 1.5h")]
    Fractional(String),
    #[error("invalid duration `{0}`: must be at most 366d, e.g. 30d")]
    TooLong(String),
}

/// The units, largest first.
const UNITS: [(char, u64); 4] = [('d', 86_400), ('h', 3_600), ('m', 60), ('s', 1)];

impl AccessDuration {
    pub fn from_secs(secs: u64) -> Result<Self, DurationError> {
        Self::check(Duration::from_secs(secs), &format!("{secs}s"))
    }

    pub fn secs(self) -> u64 {
        self.0
    }

    pub fn as_chrono(self) -> chrono::Duration {
        chrono::Duration::seconds(self.0 as i64)
    }

    pub fn as_std(self) -> Duration {
        Duration::from_secs(self.0)
    }

    fn check(d: Duration, input: &str) -> Result<Self, DurationError> {
        if d.subsec_nanos() != 0 {
            return Err(DurationError::Fractional(input.to_string()));
        }
        match d.as_secs() {
            0 => Err(DurationError::TooShort(input.to_string())),
            s if s > MAX_SECS => Err(DurationError::TooLong(input.to_string())),
            s => Ok(AccessDuration(s)),
        }
    }
}

impl FromStr for AccessDuration {
    type Err = DurationError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let bad = |reason: String| DurationError::Malformed { input: input.to_string(), reason };
        let text = input.trim();
        if text.is_empty() {
            return Err(bad("expected a number and a unit, e.g. 90s, 45m, 2h or 1h30m".into()));
        }
        if text.starts_with(['-', '+']) {
            return Err(bad("must be a positive length of time, e.g. 2h".into()));
        }
        let mut total: u64 = 0;
        let mut smallest_so_far = usize::MAX; // index into UNITS of the last unit seen
        let mut rest = text;
        while !rest.is_empty() {
            let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
            if digits == 0 {
                return Err(bad("expected a number and a unit, e.g. 90s, 45m, 2h or 1h30m".into()));
            }
            let (number, after) = rest.split_at(digits);
            if after.starts_with(['.', ',']) {
                return Err(DurationError::Fractional(input.to_string()));
            }
            let unit_len = after.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(after.len());
            let (unit, after) = after.split_at(unit_len);
            if unit.is_empty() {
                return Err(bad(format!("`{number}` needs a unit (s, m, h or d), e.g. {number}m")));
            }
            let Some(index) = UNITS.iter().position(|(u, _)| unit.len() == 1 && unit.starts_with(*u)) else {
                return Err(bad(format!("unknown unit `{unit}`: use s, m, h or d, e.g. 2h")));
            };
            if smallest_so_far != usize::MAX && index <= smallest_so_far {
                return Err(bad("units go from largest to smallest, each once, e.g. 1h30m".into()));
            }
            smallest_so_far = index;
            let n: u64 = number.parse().map_err(|_| DurationError::TooLong(input.to_string()))?;
            total = n
                .checked_mul(UNITS[index].1)
                .and_then(|s| total.checked_add(s))
                .ok_or_else(|| DurationError::TooLong(input.to_string()))?;
            rest = after.strip_prefix(' ').unwrap_or(after);
            if rest.starts_with(' ') {
                return Err(bad("one space at most between parts, e.g. 1h 30m".into()));
            }
        }
        Self::check(Duration::from_secs(total), input)
    }
}

/// Renders compactly from the largest unit down: `1h30m`, `2d`, `45s`.
impl fmt::Display for AccessDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
            if rest >= size {
                write!(f, "{}{unit}", rest / size)?;
                rest %= size;
            }
        }
        Ok(())
    }
}

impl Serialize for AccessDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AccessDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Renders a remaining time for people: `1h 12m`, `42s`, `expired`.
pub fn format_remaining(secs: i64) -> String {
    if secs <= 0 {
        return "expired".to_string();
    }
    let secs = secs as u64;
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m {s:02}s"),
        _ => format!("{h}h {m:02}m"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: &str) -> u64 {
        s.parse::<AccessDuration>().unwrap().secs()
    }

    #[test]
    fn parses_human_forms() {
        assert_eq!(secs("90s"), 90);
        assert_eq!(secs("45m"), 2700);
        assert_eq!(secs("2h"), 7200);
        assert_eq!(secs("1h30m"), 5400);
        assert_eq!(secs("1h 30m"), 5400);
        assert_eq!(secs("1d"), 86_400);
    }

    #[test]
    fn rejects_bad_forms_with_the_input_named_and_an_example() {
        for bad in [
            "",
            "2",
            "90",
            "abc",
            "2 hours later",
            "2hours",
            "1.5h",
            "1.5s",
            "-5m",
            "-1h",
            "+1h",
            "0s",
            "400d",
            "5x",
            "1mo",
            "2w",
            "3y",
            "30m1h",
            "1h1h",
            "1h  30m",
            "h",
            "1 h",
            "99999999999999999999d",
            "1h30",
            "90ms",
        ] {
            let err = bad.parse::<AccessDuration>().unwrap_err().to_string();
            assert!(err.contains(&format!("`{bad}`")), "{bad}: {err}");
            assert!(err.contains("e.g. "), "no example for {bad}: {err}");
        }
        assert!(matches!("0s".parse::<AccessDuration>(), Err(DurationError::TooShort(_))));
        assert!(matches!("400d".parse::<AccessDuration>(), Err(DurationError::TooLong(_))));
        assert!(matches!("1.5h".parse::<AccessDuration>(), Err(DurationError::Fractional(_))));
        let err = "90".parse::<AccessDuration>().unwrap_err().to_string();
        assert!(err.contains("needs a unit") && err.contains("90m"), "{err}");
        assert!(!err.contains("ms"), "never suggest a unit that is then refused: {err}");
    }

    #[test]
    fn parses_every_documented_form() {
        for (input, secs) in [("1s", 1), ("59m", 3540), ("1d2h3m4s", 93_784), ("2d 1s", 172_801), (" 2h ", 7200), ("366d", 366 * 86_400)] {
            assert_eq!(input.parse::<AccessDuration>().unwrap().secs(), secs, "{input}");
        }
    }

    #[test]
    fn converts_to_std_and_chrono_durations() {
        let d = "1h30m".parse::<AccessDuration>().unwrap();
        assert_eq!(d.as_std(), Duration::from_secs(5400));
        assert_eq!(d.as_chrono(), chrono::Duration::seconds(5400));
    }

    #[test]
    fn displays_canonically() {
        for (input, shown) in [("90s", "1m30s"), ("2h", "2h"), ("1h30m", "1h30m"), ("25h", "1d1h"), ("3661s", "1h1m1s")] {
            assert_eq!(input.parse::<AccessDuration>().unwrap().to_string(), shown);
        }
    }

    #[test]
    fn serde_uses_the_human_form() {
        let d: AccessDuration = serde_json::from_str("\"1h30m\"").unwrap();
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"1h30m\"");
        assert!(serde_json::from_str::<AccessDuration>("\"soon\"").is_err());
    }

    #[test]
    fn remaining_time_is_readable() {
        assert_eq!(format_remaining(-3), "expired");
        assert_eq!(format_remaining(42), "42s");
        assert_eq!(format_remaining(125), "2m 05s");
        assert_eq!(format_remaining(4320), "1h 12m");
    }
}
