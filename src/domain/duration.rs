//! Access durations in human form (`90s`, `45m`, `2h`, `1h30m`).
//!
//! Parsing is `humantime`'s; this module adds the rules that make a value a
//! valid *access* duration: whole seconds, at least one second, at most a year,
//! and a canonical compact rendering (`1h30m`) used in output and JSON.

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
    #[error("invalid duration `{input}`: {reason}; expected a form like 90s, 45m, 2h or 1h30m")]
    Malformed { input: String, reason: String },
    #[error("invalid duration `{0}`: must be at least 1s")]
    TooShort(String),
    #[error("invalid duration `{0}`: must be whole seconds")]
    Fractional(String),
    #[error("invalid duration `{0}`: must be at most 366 days")]
    TooLong(String),
}

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

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let trimmed = s.trim();
        // humantime treats a bare number as an error already, but an empty or
        // signed value gets a clearer message from us.
        if trimmed.is_empty() || trimmed.starts_with('-') || trimmed.starts_with('+') {
            return Err(DurationError::Malformed { input: s.to_string(), reason: "not a positive duration".into() });
        }
        let parsed =
            humantime::parse_duration(trimmed).map_err(|e| DurationError::Malformed { input: s.to_string(), reason: e.to_string() })?;
        Self::check(parsed, s)
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
    fn rejects_bad_forms_with_the_input_named() {
        for bad in ["", "2", "abc", "2 hours later", "-5m", "1.5s", "0s", "400d", "5x"] {
            let err = bad.parse::<AccessDuration>().unwrap_err().to_string();
            assert!(err.contains(&format!("`{bad}`")), "{bad}: {err}");
        }
        assert!(matches!("0s".parse::<AccessDuration>(), Err(DurationError::TooShort(_))));
        assert!(matches!("400d".parse::<AccessDuration>(), Err(DurationError::TooLong(_))));
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
