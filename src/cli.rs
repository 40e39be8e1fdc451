//! Command-line definitions (clap). Also the source of `completions/` and `man/`.
//!
//! Arguments are parsed here into raw values; each command validates them into
//! domain types (durations, levels) once, and nothing downstream re-validates.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "jit",
    version,
    about = "Just-in-time, approved, short-lived access to Git repositories",
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the broker
    Server(ServerArgs),
    /// Manage users and tokens (admins)
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Read and verify the audit log (admins)
    Audit(AuditArgs),
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
