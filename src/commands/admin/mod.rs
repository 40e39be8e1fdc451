//! `jit admin …`: users and tokens, over the broker's admin API.

mod grants;
mod notifications;
mod replicas;
mod token_rotate;
mod user_add;
mod user_list;
mod user_remove;

use crate::error::CommandError;
use clap::{Args, Subcommand};

use crate::commands::args::JsonFlag;

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Manage users
    ///
    /// Add, list and remove the people the broker knows.
    #[command(subcommand, disable_help_subcommand = true)]
    User(UserCommand),
    /// Manage tokens
    ///
    /// Issue a new token for a user; the old one stops working at once.
    #[command(subcommand, disable_help_subcommand = true)]
    Token(TokenCommand),
    /// List every user's live grants, or those failing to end at their host
    ///
    /// With --failing: grants that ended (expired or revoked) whose git host
    /// has not yet revoked what it holds; the broker retries with backoff and
    /// records each attempt in the audit log (host_revoke_failed).
    #[command(after_long_help = "Examples:\n  jit admin grants\n  jit admin grants --failing --json")]
    Grants(grants::GrantsArgs),
    /// Where each notification destination's delivery stands
    ///
    /// The audit log is the outbox: each [[notify]] destination delivers its
    /// events in order, retrying failures with backoff for up to a day. With
    /// --failing: only destinations failing now or that gave events up
    /// (notification_failed in the audit log).
    #[command(after_long_help = "Examples:\n  jit admin notifications\n  jit admin notifications --failing --json")]
    Notifications(notifications::NotificationsArgs),
    /// The brokers on this broker's database, and which are live
    ///
    /// Each broker says it is alive every 5 s; one not seen for 15 s is not
    /// live (stopped, dead, or cut off from the database). One broker on
    /// SQLite lists itself.
    #[command(after_long_help = "Examples:\n  jit admin replicas\n  jit admin replicas --json")]
    Replicas(JsonFlag),
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user and print their token (shown once)
    ///
    /// The token goes to stdout only; hand it over securely.
    #[command(after_long_help = "Example:\n  jit admin user add frank --group developers --group oncall")]
    Add(user_add::UserAddArgs),
    /// List users
    ///
    /// Names, groups, who is an admin, and when each was added.
    #[command(after_long_help = "Example:\n  jit admin user list --json")]
    List(JsonFlag),
    /// Remove a user; their token stops working at once
    ///
    /// Admins cannot remove themselves.
    #[command(after_long_help = "Example:\n  jit admin user remove frank")]
    Remove(UserNameArg),
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Issue a new token for a user, invalidating the old one (shown once)
    ///
    /// The new token goes to stdout only; hand it over securely.
    #[command(after_long_help = "Example:\n  jit admin token rotate frank")]
    Rotate(UserNameArg),
}

#[derive(Debug, Args)]
pub struct UserNameArg {
    /// The user's name
    #[arg(value_parser = crate::commands::args::name_parser("user"))]
    pub name: String,
    #[command(flatten)]
    pub json: JsonFlag,
}

pub async fn run(cmd: AdminCommand) -> Result<(), CommandError> {
    let client = super::client()?;
    match cmd {
        AdminCommand::User(UserCommand::Add(args)) => user_add::cmd_user_add(&client, &args).await,
        AdminCommand::User(UserCommand::List(json)) => user_list::cmd_user_list(&client, json.json).await,
        AdminCommand::User(UserCommand::Remove(args)) => user_remove::cmd_user_remove(&client, &args).await,
        AdminCommand::Token(TokenCommand::Rotate(args)) => token_rotate::cmd_token_rotate(&client, &args).await,
        AdminCommand::Grants(args) => grants::cmd_grants(&client, &args).await,
        AdminCommand::Notifications(args) => notifications::cmd_notifications(&client, &args).await,
        AdminCommand::Replicas(json) => replicas::cmd_replicas(&client, json.json).await,
    }
}
