//! The one top-level error: what went wrong, what to do about it, and the
//! exit code. Every command returns `Result<(), CommandError>`; `main` prints
//! it and exits with [`ExitKind::code`].
//!
//! | code | kind |
//! |---|---|
//! | 0 | success |
//! | 1 | unexpected error (bug, unreachable broker, I/O) |
//! | 2 | bad usage or bad input |
//! | 3 | denied |
//! | 4 | timed out, expired or canceled |
//! | 5 | not authenticated, or not allowed |
//! | 6 | the git host refused or failed what the broker asked of it |
//! | 130 | interrupted (Ctrl-C) |

use std::fmt;

use crate::api::codes;
use crate::client::ClientError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitKind {
    Unexpected,
    BadInput,
    Denied,
    TimedOut,
    NotAllowed,
    /// A git host's API (GitHub, GitLab, Bitbucket) refused or failed a mint: fixed at the host, not by the caller.
    HostFailed,
    /// Stopped by Ctrl-C (SIGINT): 128 + 2, as shells report it.
    Interrupted,
}

impl ExitKind {
    /// Every kind, in the order of their codes.
    pub const ALL: [ExitKind; 7] = [
        ExitKind::Unexpected,
        ExitKind::BadInput,
        ExitKind::Denied,
        ExitKind::TimedOut,
        ExitKind::NotAllowed,
        ExitKind::HostFailed,
        ExitKind::Interrupted,
    ];

    /// What the code means, as `--help` and `man jit` say it.
    pub fn meaning(self) -> &'static str {
        match self {
            ExitKind::Unexpected => "unexpected error (a bug, an unreachable broker, I/O)",
            ExitKind::BadInput => "bad usage or bad input (flags, durations, levels, unknown ids or repos)",
            ExitKind::Denied => "denied",
            ExitKind::TimedOut => "timed out, expired or canceled",
            ExitKind::NotAllowed => "not authenticated, or not allowed (policy, role, self-approval)",
            ExitKind::HostFailed => "the git host refused or failed what the broker asked of it",
            ExitKind::Interrupted => "interrupted (Ctrl-C)",
        }
    }

    /// The exit-status table every command's `--help` ends with, made from
    /// this enum so the two cannot drift.
    pub fn help() -> String {
        let mut text = String::from("Exit status:\n  0    success");
        for kind in ExitKind::ALL {
            text.push_str(&format!("\n  {:<4} {}", kind.code(), kind.meaning()));
        }
        text
    }

    pub fn code(self) -> i32 {
        match self {
            ExitKind::Unexpected => 1,
            ExitKind::BadInput => 2,
            ExitKind::Denied => 3,
            ExitKind::TimedOut => 4,
            ExitKind::NotAllowed => 5,
            ExitKind::HostFailed => 6,
            ExitKind::Interrupted => 130,
        }
    }
}

#[derive(Debug)]
pub struct CommandError {
    pub kind: ExitKind,
    pub message: String,
    pub hints: Vec<String>,
}

impl CommandError {
    pub fn new(kind: ExitKind, message: impl Into<String>) -> Self {
        CommandError { kind, message: message.into(), hints: Vec::new() }
    }

    pub fn bad_input(message: impl Into<String>) -> Self {
        Self::new(ExitKind::BadInput, message)
    }

    pub fn unexpected(message: impl Into<String>) -> Self {
        Self::new(ExitKind::Unexpected, message)
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hints.push(hint.into());
        self
    }
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error: {}", self.message)?;
        for hint in &self.hints {
            write!(f, "\nhint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for CommandError {}

/// The broker's error codes map to exit codes here, and only here.
impl From<ClientError> for CommandError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Api { status, code, message, hint } => {
                let kind = match code.as_str() {
                    codes::UNAUTHENTICATED | codes::FORBIDDEN | codes::POLICY_DENIED | codes::SELF_APPROVAL | codes::NOT_APPROVER => {
                        ExitKind::NotAllowed
                    }
                    codes::SIGN_IN_REFUSED => ExitKind::NotAllowed,
                    codes::SIGN_IN_DENIED => ExitKind::Denied,
                    codes::REQUEST_EXPIRED | codes::GRANT_ENDED | codes::RATE_LIMITED | codes::SIGN_IN_EXPIRED => ExitKind::TimedOut,
                    codes::INVALID_INPUT
                    | codes::INVALID_JSON
                    | codes::NOT_FOUND
                    | codes::UNKNOWN_REPO
                    | codes::NOT_PENDING
                    | codes::CONFLICT
                    | codes::BODY_TOO_LARGE
                    | codes::OIDC_NOT_CONFIGURED => ExitKind::BadInput,
                    codes::IDP_FAILED => ExitKind::Unexpected,
                    codes::HOST_REFUSED | codes::HOST_FAILED => ExitKind::HostFailed,
                    _ if status == 401 || status == 403 => ExitKind::NotAllowed,
                    _ if (400..500).contains(&status) => ExitKind::BadInput,
                    _ => ExitKind::Unexpected,
                };
                let mut err = CommandError::new(kind, message);
                if let Some(h) = hint {
                    err = err.hint(h);
                }
                err
            }
            ClientError::Unreachable { url, message } => CommandError::unexpected(format!("cannot reach the broker at {url}: {message}"))
                .hint("check JIT_SERVER / `jit login --server`, and that the broker is running"),
            ClientError::NotConfigured => CommandError::new(ExitKind::NotAllowed, "not logged in: no broker URL or token")
                .hint("run `jit login --server URL`, or set JIT_SERVER and JIT_TOKEN"),
            ClientError::BadUrl(msg) => CommandError::bad_input(msg),
            ClientError::Protocol(msg) => CommandError::unexpected(format!("unexpected answer from the broker: {msg}")),
        }
    }
}

impl From<crate::credcache::FetchError> for CommandError {
    fn from(e: crate::credcache::FetchError) -> Self {
        match e {
            crate::credcache::FetchError::Broker(e) => e.into(),
            crate::credcache::FetchError::Keychain(e) => e.into(),
        }
    }
}

impl From<std::io::Error> for CommandError {
    fn from(e: std::io::Error) -> Self {
        CommandError::unexpected(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: &str) -> CommandError {
        ClientError::Api { status, code: code.into(), message: "m".into(), hint: None }.into()
    }

    #[test]
    fn broker_codes_map_to_documented_exit_codes() {
        assert_eq!(api(401, codes::UNAUTHENTICATED).kind.code(), 5);
        assert_eq!(api(403, codes::POLICY_DENIED).kind.code(), 5);
        assert_eq!(api(403, codes::SELF_APPROVAL).kind.code(), 5);
        assert_eq!(api(400, codes::INVALID_INPUT).kind.code(), 2);
        assert_eq!(api(404, codes::NOT_FOUND).kind.code(), 2);
        assert_eq!(api(409, codes::REQUEST_EXPIRED).kind.code(), 4);
        assert_eq!(api(500, codes::INTERNAL).kind.code(), 1);
        assert_eq!(api(502, codes::HOST_REFUSED).kind.code(), 6);
        assert_eq!(api(502, codes::HOST_FAILED).kind.code(), 6);
    }

    #[test]
    fn display_carries_hints() {
        let e = CommandError::bad_input("bad").hint("do this");
        assert_eq!(e.to_string(), "error: bad\nhint: do this");
    }
}
