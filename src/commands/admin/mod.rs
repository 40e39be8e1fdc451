//! `jit admin …`: users and tokens, over the broker's admin API.

mod token_rotate;
mod user_add;
mod user_list;
mod user_remove;

use crate::cli::{AdminCommand, TokenCommand, UserCommand};
use crate::error::CommandError;

pub async fn run(cmd: AdminCommand) -> Result<(), CommandError> {
    let client = super::client()?;
    match cmd {
        AdminCommand::User(UserCommand::Add(args)) => user_add::cmd_user_add(&client, &args).await,
        AdminCommand::User(UserCommand::List(json)) => user_list::cmd_user_list(&client, json.json).await,
        AdminCommand::User(UserCommand::Remove(args)) => user_remove::cmd_user_remove(&client, &args).await,
        AdminCommand::Token(TokenCommand::Rotate(args)) => token_rotate::cmd_token_rotate(&client, &args).await,
    }
}
