//! The command line's top level (clap): the subcommands and the value parsers
//! they share. Each command's own arguments live beside its code in
//! `commands/` (jj's layout). Also the source of `completions/` and `man/`.
//!
//! Typed values are parsed by clap with the domain's parsers, so an error
//! names the flag, and completions offer the values (`--level read|write|admin`).

use clap::{CommandFactory, Parser, Subcommand};

use crate::commands::args::JsonFlag;
use crate::commands::{
    admin, approve, audit, block_on, cancel, credential, deny, doctor, extend, login, logout, policy, repos, request, requests, review,
    revoke, server, setup, status, util, wait, whoami,
};
use crate::environment::Reader;
use crate::error::{CommandError, ExitKind};

/// `--help` text after the options: examples, then environment and exit status.
fn help(examples: &str) -> String {
    format!("Examples:\n{examples}\n\n{}", after_help(Reader::Client))
}

/// The environment a command's side reads, and the exit status.
fn after_help(reader: Reader) -> String {
    format!("{}\n\n{}", crate::environment::help(reader), ExitKind::help())
}

#[derive(Debug, Parser)]
#[command(
    name = "jit",
    version,
    about = "Just-in-time, approved, short-lived access to Git repositories",
    long_about = "jit asks a broker for access to a repository, waits for approval, keeps the short-lived git \
credential in the OS keychain, and answers git through its credential helper until the grant ends. \
Start with `jit login`, `jit setup` and `jit request`; `jit doctor` checks this machine.",
    disable_help_subcommand = true,
    after_long_help = after_help(Reader::Both)
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Store your broker token in the OS keychain
    ///
    /// Reads the token hidden from a terminal, or from stdin, checks it with the
    /// broker, and keeps it in the OS keychain for this OS user.
    #[command(after_long_help = help("  jit login --server https://jit.example.com\n  jit login --server http://127.0.0.1:8420 < token-file"))]
    Login(login::LoginArgs),
    /// Remove your stored token from the keychain
    ///
    /// Also drops every cached git credential. The token stays valid on the
    /// broker; an admin rotates it to end it there.
    #[command(after_long_help = help("  jit logout"))]
    Logout(JsonFlag),
    /// Show who the broker thinks you are
    ///
    /// Your user name, groups and the broker you are logged in to.
    #[command(after_long_help = help("  jit whoami\n  JIT_SERVER=https://jit.example.com JIT_TOKEN=... jit whoami --json"))]
    Whoami(JsonFlag),
    /// Ask for access to a repo, and wait for the decision
    ///
    /// Waits with a spinner until the request is decided; on approval the git
    /// credential is kept for git's helper. A live grant that already covers
    /// the request is returned instead of a new one. Ctrl-C stops waiting
    /// (exit 130) and leaves the request pending; git picks up its grant once
    /// approved.
    #[command(after_long_help = help("  jit request acme/api --level write --for 2h --reason 'hotfix INC-42'\n  jit request --level read --for 1h            # this checkout's origin\n  jit request demo --level write --for 30m --reason x --no-wait"))]
    Request(request::RequestArgs),
    /// Wait for the decision on a request
    ///
    /// Resumes waiting on a request made with --no-wait or left by Ctrl-C;
    /// on approval the git credential is kept, as by `jit request`.
    #[command(after_long_help = help("  jit wait 12\n  jit wait 12 --timeout 10m --json"))]
    Wait(wait::WaitArgs),
    /// Cancel your pending request
    ///
    /// Only the requester cancels, and only while the request is pending.
    #[command(after_long_help = help("  jit cancel 12"))]
    Cancel(cancel::CancelArgs),
    /// List requests you made or can review
    ///
    /// Newest first: yours, and those an approver or admin may see.
    #[command(after_long_help = help("  jit requests --pending\n  jit requests --mine --json"))]
    Requests(requests::RequestsArgs),
    /// Approve a request (with no ID: pick from the pending ones)
    ///
    /// Shows the request and asks before approving when on a terminal. Only
    /// approvers named by the governing rule decide; nobody approves their
    /// own request, and admins only where a rule names them.
    #[command(after_long_help = help("  jit approve                 # pick, review, confirm\n  jit approve 12 --comment 'go ahead' --yes"))]
    Approve(approve::ApproveArgs),
    /// Deny a request
    ///
    /// One approver's denial ends the request; the requester sees the reason.
    #[command(after_long_help = help("  jit deny 12 --reason 'not during the freeze'"))]
    Deny(deny::DenyArgs),
    /// Review a break-glass grant afterwards (with no grant: list those waiting for you)
    ///
    /// A break-glass request is granted at once, without approval; the
    /// approvers of its rule look back and record approved, or flagged with
    /// a comment. Until then it is listed here and reminded of daily.
    #[command(after_long_help = help("  jit review
  jit review 41 --approve --comment 'INC-77 confirmed'
  jit review 41 --flag --comment 'no incident on record'"))]
    Review(review::ReviewArgs),
    /// Your live grants and the time they have left
    ///
    /// From the broker, or from the local cache when the broker is out of reach.
    #[command(after_long_help = help("  jit status\n  jit status --json"))]
    Status(JsonFlag),
    /// Ask to keep a live grant longer, and wait for the decision
    ///
    /// The policy decides an extension as it decides a request (the rule's
    /// longest duration counts from now). Approved, the longer grant takes
    /// the old one's place and its credentials, so git never sees a gap;
    /// denied, or undecided, the grant ends when it would have.
    #[command(after_long_help = help("  jit extend acme/api --for 1h --reason 'release still running'\n  jit extend 34 --for 30m --no-wait"))]
    Extend(extend::ExtendArgs),
    /// End a grant now (by grant id, or every live grant of yours on a repo)
    ///
    /// The credential stops working at the host at once.
    #[command(after_long_help = help("  jit revoke acme/api\n  jit revoke 34 --reason 'incident over'"))]
    Revoke(revoke::RevokeArgs),
    /// List the repos the broker knows
    ///
    /// Their short names and clone URLs; any spelling of either works in `jit request`.
    #[command(after_long_help = help("  jit repos"))]
    Repos(JsonFlag),
    /// Check this machine: keychain, git, git's config, broker, token, clock
    ///
    /// One line per check; each failure says how to fix it. Exits 1 when any fails.
    #[command(after_long_help = help("  jit doctor\n  jit doctor --json"))]
    Doctor(JsonFlag),
    /// Make git use jit for the hosts jit guards (global git config)
    ///
    /// Puts jit's credential helper first for each host the broker guards,
    /// keeps your other helpers after it, and sets useHttpPath. Running it
    /// twice changes nothing; --uninstall puts back what was there.
    #[command(after_long_help = help("  jit setup\n  jit setup --uninstall"))]
    Setup(setup::SetupArgs),
    /// The git credential helper (configured by `jit setup`)
    ///
    /// Speaks git's credential-helper protocol on stdin and stdout. It answers
    /// only for a URL that exactly matches a live grant, never prompts, waits
    /// on the broker at most 5 s, and always exits 0, as git expects.
    #[command(after_long_help = format!(
        "Examples:\n  printf 'url=https://git.example.com/acme/api.git\\n\\n' | jit credential get\n\n{}\n\nExit status: always 0, as git expects of a credential helper.",
        crate::environment::help(Reader::Client)
    ))]
    Credential(credential::CredentialArgs),
    /// Run the broker
    ///
    /// Serves the JSON API, the git gateway and the reaper. --dev runs a
    /// complete demo on one machine; --init-admin bootstraps the first admin.
    #[command(after_long_help = format!(
        "Examples:\n  jit server --dev\n  jit server --config /etc/jit.toml --data-dir /var/lib/jit\n  jit server --init-admin root --config /etc/jit.toml\n\n{}",
        after_help(Reader::Server)
    ))]
    Server(server::ServerArgs),
    /// Manage users and tokens (admins)
    ///
    /// Uses the stored login, or JIT_SERVER and JIT_TOKEN, like every client command.
    #[command(subcommand, disable_help_subcommand = true, after_long_help = help("  jit admin user add frank --group developers\n  jit admin token rotate frank"))]
    Admin(admin::AdminCommand),
    /// Read and verify the audit log (admins)
    ///
    /// Every state change and git operation, hash-chained; `verify` recomputes
    /// the chain here, on the client.
    #[command(disable_help_subcommand = true, after_long_help = help("  jit audit --since 2h\n  jit audit --json > audit.jsonl && jit audit verify --file audit.jsonl"))]
    Audit(audit::AuditArgs),
    /// Test a broker's config before shipping it (no broker needed)
    ///
    /// `check` validates it as the broker would at start-up; `explain` says
    /// which rule governs a request and why the earlier ones do not.
    #[command(subcommand, disable_help_subcommand = true, after_long_help = format!(
        "Examples:\n  jit policy check --config /etc/jit.toml\n  jit policy explain --config /etc/jit.toml --user alice --group developers --repo acme/api --level write\n\n{}",
        after_help(Reader::Server)
    ))]
    Policy(policy::PolicyCommand),
    /// Generate shell completions and man pages
    #[command(hide = true, subcommand)]
    Util(util::UtilCommand),
}

impl Cli {
    /// Runs the command asked for.
    pub fn run(self) -> Result<(), CommandError> {
        match self.command {
            Command::Login(args) => block_on(login::cmd_login(&args)),
            Command::Logout(json) => block_on(logout::cmd_logout(json.json)),
            Command::Whoami(json) => block_on(whoami::cmd_whoami(json.json)),
            Command::Request(args) => block_on(request::cmd_request(&args)),
            Command::Wait(args) => block_on(wait::cmd_wait(&args)),
            Command::Cancel(args) => block_on(cancel::cmd_cancel(&args)),
            Command::Requests(args) => block_on(requests::cmd_requests(&args)),
            Command::Approve(args) => block_on(approve::cmd_approve(&args)),
            Command::Deny(args) => block_on(deny::cmd_deny(&args)),
            Command::Review(args) => block_on(review::cmd_review(&args)),
            Command::Status(json) => block_on(status::cmd_status(json.json)),
            Command::Extend(args) => block_on(extend::cmd_extend(&args)),
            Command::Revoke(args) => block_on(revoke::cmd_revoke(&args)),
            Command::Repos(json) => block_on(repos::cmd_repos(json.json)),
            Command::Setup(args) => block_on(setup::cmd_setup(&args)),
            Command::Doctor(args) => block_on(doctor::cmd_doctor(&args)),
            Command::Credential(args) => credential::cmd_credential(&args),
            Command::Util(cmd) => util::cmd_util(&cmd, Cli::command()),
            Command::Server(args) => server::cmd_server(&args),
            Command::Admin(cmd) => block_on(admin::run(cmd)),
            Command::Audit(args) => block_on(audit::run(&args)),
            Command::Policy(cmd) => policy::cmd_policy(&cmd),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Level;

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
    }

    #[test]
    fn every_exit_code_is_in_the_help() {
        let help = Cli::command().render_long_help().to_string();
        for kind in ExitKind::ALL {
            assert!(help.contains(&format!("  {:<4} {}", kind.code(), kind.meaning())), "{kind:?} missing from:\n{help}");
        }
    }
}
