//! The flags and value parsers several commands share. Typed values are
//! parsed by clap with the domain's parsers, so an error names the flag, and
//! completions offer the values (`--level read|write|admin`).

use std::ffi::OsStr;

use clap::Args;
use clap::builder::{PossibleValue, TypedValueParser};

use crate::domain::{AccessDuration, Level};

#[derive(Debug, Clone, Copy, Args)]
pub struct JsonFlag {
    /// Print JSON for scripts instead of text
    #[arg(long)]
    pub json: bool,
}

/// How a command that asks for a decision waits for it (`jit request`, `jit extend`).
#[derive(Debug, Clone, Copy, Args)]
pub struct WaitFlags {
    /// Print the request and return without waiting
    #[arg(long)]
    pub no_wait: bool,
    /// Stop waiting after this long (the request stays pending)
    #[arg(long, value_name = "DURATION", value_parser = duration_parser(), allow_hyphen_values = true)]
    pub timeout: Option<AccessDuration>,
    /// Print JSON for scripts instead of text
    #[arg(long)]
    pub json: bool,
}

/// `--level`: `read`, `write` or `admin` (any case), with the domain's message on a typo.
#[derive(Debug, Clone, Copy)]
pub struct LevelParser;

impl TypedValueParser for LevelParser {
    type Value = Level;

    fn parse_ref(&self, cmd: &clap::Command, arg: Option<&clap::Arg>, value: &OsStr) -> Result<Level, clap::Error> {
        clap::builder::StringValueParser::new().try_map(|s| s.parse::<Level>()).parse_ref(cmd, arg, value)
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(Level::ALL.into_iter().map(|l| PossibleValue::new(l.as_str()))))
    }
}

/// A user or group name, checked here so a bad one never reaches a URL.
pub fn name_parser(kind: &'static str) -> impl TypedValueParser<Value = String> {
    clap::builder::StringValueParser::new().try_map(move |s| {
        if crate::domain::text::is_valid_name(&s) {
            Ok(s)
        } else {
            Err(format!(
                "invalid {kind} name `{}`: use 1-64 letters, digits, `-`, `_` or `.`, starting with a letter or digit",
                s.escape_debug()
            ))
        }
    })
}

/// A duration flag (`--for`, `--timeout`), parsed by the domain's rules.
pub fn duration_parser() -> impl TypedValueParser<Value = AccessDuration> {
    clap::builder::StringValueParser::new().try_map(|s| s.parse::<AccessDuration>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_values_are_offered_in_order() {
        let values: Vec<String> = LevelParser.possible_values().unwrap().map(|v| v.get_name().to_string()).collect();
        assert_eq!(values, ["read", "write", "admin"]);
    }

    #[test]
    fn a_bad_name_is_refused_with_what_a_name_may_hold() {
        let cmd = clap::Command::new("t");
        let parse = |raw: &str| name_parser("user").parse_ref(&cmd, None, OsStr::new(raw));
        assert_eq!(parse("frank.s").unwrap(), "frank.s");
        let err = parse("../admin").unwrap_err().to_string();
        assert!(err.contains("invalid user name `../admin`") && err.contains("letters, digits"), "{err}");
    }
}
