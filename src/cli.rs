//! Command-line definitions (clap). Also the source of `completions/` and `man/`.
//!
//! Arguments are parsed here into raw values; each command validates them into
//! domain types (durations, levels) once, and nothing downstream re-validates.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "jit", version, about = "Just-in-time, approved, short-lived access to Git repositories", propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Store your broker token in the OS keychain
    Login(LoginArgs),
    /// Remove your stored token from the keychain
    Logout(JsonFlag),
    /// Show who the broker thinks you are
    Whoami(JsonFlag),
    /// Ask for access to a repo, and wait for the decision
    Request(RequestArgs),
    /// Wait for the decision on a request
    Wait(WaitArgs),
    /// Cancel your pending request
    Cancel(IdArgs),
    /// List requests you made or can review
    Requests(RequestsArgs),
    /// Approve a request (with no ID: pick from the pending ones)
    Approve(ApproveArgs),
    /// Deny a request
    Deny(DenyArgs),
    /// Your live grants and the time they have left
    Status(JsonFlag),
    /// End a grant now (by grant id, or every live grant of yours on a repo)
    Revoke(RevokeArgs),
    /// List the repos the broker knows
    Repos(JsonFlag),
    /// Make git use jit for the hosts jit guards (global git config)
    Setup(SetupArgs),
    /// The git credential helper (configured by `jit setup`)
    #[command(subcommand)]
    Credential(CredentialOp),
    /// Run the broker
    Server(ServerArgs),
    /// Manage users and tokens (admins)
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Read and verify the audit log (admins)
    Audit(AuditArgs),
    /// Generate shell completions and man pages
    #[command(hide = true, subcommand)]
    Util(UtilCommand),
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The broker's URL [default: JIT_SERVER]
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    #[command(flatten)]
    pub json: JsonFlag,
}

#[derive(Debug, Args)]
pub struct RequestArgs {
    /// Repo: a short name, host/owner/name or a clone URL [default: this checkout's origin]
    pub repo: Option<String>,
    /// Access level: read, write or admin
    #[arg(long, value_name = "LEVEL")]
    pub level: String,
    /// How long the access lasts once approved: 90s, 45m, 2h, 1h30m
    #[arg(long = "for", value_name = "DURATION")]
    pub duration: String,
    /// Why you need it (some policies require one)
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// Print the request and return without waiting
    #[arg(long)]
    pub no_wait: bool,
    /// Stop waiting after this long (the request stays pending)
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
    /// Print JSON for scripts instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct WaitArgs {
    /// The request id
    pub id: String,
    /// Stop waiting after this long (the request stays pending)
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
    /// Print JSON for scripts instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct IdArgs {
    /// The request id
    pub id: String,
    #[command(flatten)]
    pub json: JsonFlag,
}

#[derive(Debug, Args)]
pub struct RequestsArgs {
    /// Only pending requests
    #[arg(long)]
    pub pending: bool,
    /// Only your own requests
    #[arg(long)]
    pub mine: bool,
    #[command(flatten)]
    pub json: JsonFlag,
}

#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// The request id [default: pick from the pending requests you can review]
    pub id: Option<String>,
    /// A comment for the requester and the audit log
    #[arg(long, value_name = "TEXT")]
    pub comment: Option<String>,
    /// Do not ask for confirmation
    #[arg(long, short = 'y')]
    pub yes: bool,
    #[command(flatten)]
    pub json: JsonFlag,
}

#[derive(Debug, Args)]
pub struct DenyArgs {
    /// The request id
    pub id: String,
    /// Why (the requester sees it)
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
    #[command(flatten)]
    pub json: JsonFlag,
}

#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// A grant id, or a repo (every live grant of yours on it)
    pub target: String,
    /// Why, for the audit log
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    #[command(flatten)]
    pub json: JsonFlag,
}

#[derive(Debug, Args)]
pub struct SetupArgs {
    /// Remove exactly what `jit setup` added
    #[arg(long)]
    pub uninstall: bool,
    #[command(flatten)]
    pub json: JsonFlag,
}

#[derive(Debug, Clone, Copy, Subcommand)]
pub enum CredentialOp {
    /// Answer git with the cached credential for the URL on stdin
    Get,
    /// Accept a credential from git (jit keeps nothing it did not mint)
    Store,
    /// Forget the cached credential for the URL on stdin
    Erase,
}

#[derive(Debug, Subcommand)]
pub enum UtilCommand {
    /// Write completions for every shell into DIR
    Completions { dir: PathBuf },
    /// Write one man page per command into DIR
    Man { dir: PathBuf },
}

#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Config file (TOML): server settings, repos and policy rules
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8420]
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Where the database lives [default: the user data directory, e.g. ~/.local/share/jit]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The URL clients use to reach this broker [default: http://ADDR]
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// Try jit on one machine: demo users, repo and policy; writes DIR/dev.json
    #[arg(long, conflicts_with_all = ["config", "init_admin"])]
    pub dev: bool,
    /// Create the first admin NAME on a broker that has none, print its token once, and exit
    #[arg(long, value_name = "NAME")]
    pub init_admin: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Manage users
    #[command(subcommand)]
    User(UserCommand),
    /// Manage tokens
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user and print their token (shown once)
    Add(UserAddArgs),
    /// List users
    List(JsonFlag),
    /// Remove a user; their token stops working at once
    Remove(UserNameArg),
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Issue a new token for a user, invalidating the old one (shown once)
    Rotate(UserNameArg),
}

#[derive(Debug, Args)]
pub struct UserAddArgs {
    pub name: String,
    /// A group the user belongs to (repeatable)
    #[arg(long = "group", value_name = "GROUP")]
    pub groups: Vec<String>,
    /// Make the user an admin
    #[arg(long)]
    pub admin: bool,
    #[command(flatten)]
    pub json: JsonFlag,
}

#[derive(Debug, Args)]
pub struct UserNameArg {
    pub name: String,
    #[command(flatten)]
    pub json: JsonFlag,
}

#[derive(Debug, Clone, Copy, Args)]
pub struct JsonFlag {
    /// Print JSON for scripts instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub command: Option<AuditCommand>,
    /// Only events at or after T: an RFC 3339 time or a duration ago (`2h`)
    #[arg(long, value_name = "T")]
    pub since: Option<String>,
    /// Print events as JSON lines (one object per line)
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the audit log's hash chain, from the broker or an exported file
    Verify(AuditVerifyArgs),
}

#[derive(Debug, Args)]
pub struct AuditVerifyArgs {
    /// Verify a JSON-lines export (`jit audit --json > FILE`) instead of the broker's log
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
}
