//! The command line's top level (clap): the subcommands and the value parsers
//! they share. Each command's own arguments live beside its code in
//! `commands/` (jj's layout). Also the source of `completions/` and `man/`.
//!
//! Typed values are parsed by clap with the domain's parsers, so an error
//! names the flag, and completions offer the values (`--level read|write|admin`).

use std::ffi::OsStr;

use clap::builder::{PossibleValue, TypedValueParser};
use clap::{Args, Parser, Subcommand};

use crate::commands::{admin, approve, audit, cancel, credential, deny, login, request, requests, revoke, server, setup, util, wait};
use crate::domain::{AccessDuration, Level};

#[derive(Debug, Parser)]
#[command(name = "jit", version, about = "Just-in-time, approved, short-lived access to Git repositories")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Store your broker token in the OS keychain
    Login(login::LoginArgs),
    /// Remove your stored token from the keychain
    Logout(JsonFlag),
    /// Show who the broker thinks you are
    Whoami(JsonFlag),
    /// Ask for access to a repo, and wait for the decision
    Request(request::RequestArgs),
    /// Wait for the decision on a request
    Wait(wait::WaitArgs),
    /// Cancel your pending request
    Cancel(cancel::CancelArgs),
    /// List requests you made or can review
    Requests(requests::RequestsArgs),
    /// Approve a request (with no ID: pick from the pending ones)
    Approve(approve::ApproveArgs),
    /// Deny a request
    Deny(deny::DenyArgs),
    /// Your live grants and the time they have left
    Status(JsonFlag),
    /// End a grant now (by grant id, or every live grant of yours on a repo)
    Revoke(revoke::RevokeArgs),
    /// List the repos the broker knows
    Repos(JsonFlag),
    /// Make git use jit for the hosts jit guards (global git config)
    Setup(setup::SetupArgs),
    /// The git credential helper (configured by `jit setup`)
    Credential(credential::CredentialArgs),
    /// Run the broker
    Server(server::ServerArgs),
    /// Manage users and tokens (admins)
    #[command(subcommand)]
    Admin(admin::AdminCommand),
    /// Read and verify the audit log (admins)
    Audit(audit::AuditArgs),
    /// Generate shell completions and man pages
    #[command(hide = true, subcommand)]
    Util(util::UtilCommand),
}

#[derive(Debug, Clone, Copy, Args)]
pub struct JsonFlag {
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

/// A duration flag (`--for`, `--timeout`), parsed by the domain's rules.
pub fn duration_parser() -> impl TypedValueParser<Value = AccessDuration> {
    clap::builder::StringValueParser::new().try_map(|s| s.parse::<AccessDuration>())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn levels_and_durations_are_typed_by_clap_and_errors_name_the_flag() {
        let parse = |args: &[&str]| Cli::try_parse_from(args);
        let ok = parse(&["jit", "request", "demo", "--level", "Write", "--for", "1h30m"]).unwrap();
        let Command::Request(args) = ok.command else { panic!("not a request") };
        assert_eq!((args.level, args.duration.secs()), (Level::Write, 5400));
        let err = parse(&["jit", "request", "demo", "--level", "owner", "--for", "1h"]).unwrap_err().to_string();
        assert!(err.contains("--level") && err.contains("unknown level `owner`") && err.contains("read, write, admin"), "{err}");
        let err = parse(&["jit", "request", "demo", "--level", "read", "--for", "soon"]).unwrap_err().to_string();
        assert!(err.contains("--for") && err.contains("invalid duration `soon`"), "{err}");
        let values: Vec<String> = LevelParser.possible_values().unwrap().map(|v| v.get_name().to_string()).collect();
        assert_eq!(values, ["read", "write", "admin"]);
    }
}
