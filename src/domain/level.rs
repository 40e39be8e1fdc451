//! Access levels: `read` < `write` < `admin`.
//!
//! A higher level includes every lower one, so a rule or a grant for `write`
//! also answers a fetch. The order is the derive order of the enum.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Read,
    Write,
    Admin,
}

impl Level {
    pub const ALL: [Level; 3] = [Level::Read, Level::Write, Level::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Read => "read",
            Level::Write => "write",
            Level::Admin => "admin",
        }
    }

    /// Whether a grant at `self` covers an operation that needs `needed`.
    pub fn covers(self, needed: Level) -> bool {
        self >= needed
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown level `{0}`: expected one of read, write, admin")]
pub struct UnknownLevel(pub String);

impl FromStr for Level {
    type Err = UnknownLevel;

    /// Case-insensitive: `Write` is `write`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Level::ALL.into_iter().find(|l| l.as_str().eq_ignore_ascii_case(s)).ok_or_else(|| UnknownLevel(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_ordered() {
        assert!(Level::Read < Level::Write && Level::Write < Level::Admin);
        assert!(Level::Admin.covers(Level::Read));
        assert!(Level::Write.covers(Level::Write));
        assert!(!Level::Read.covers(Level::Write));
    }

    #[test]
    fn parses_names_in_any_case_and_nothing_else() {
        assert_eq!("write".parse::<Level>(), Ok(Level::Write));
        assert_eq!("Write".parse::<Level>(), Ok(Level::Write));
        assert_eq!("ADMIN".parse::<Level>(), Ok(Level::Admin));
        assert!("writer".parse::<Level>().is_err());
        assert!(" read".parse::<Level>().is_err());
        assert!("owner".parse::<Level>().is_err());
        let err = "rw".parse::<Level>().unwrap_err().to_string();
        assert!(err.contains("`rw`") && err.contains("read, write, admin"), "{err}");
    }

    #[test]
    fn round_trips_through_json() {
        assert_eq!(serde_json::to_string(&Level::Admin).unwrap(), "\"admin\"");
        assert_eq!(serde_json::from_str::<Level>("\"read\"").unwrap(), Level::Read);
        assert!(serde_json::from_str::<Level>("\"root\"").is_err());
    }

    #[test]
    fn displays_as_its_name() {
        let shown: Vec<String> = [Level::Read, Level::Write, Level::Admin].iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["read", "write", "admin"]);
    }
}
