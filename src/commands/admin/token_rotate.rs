//! `jit admin token rotate NAME`: a new token (shown once); the old one stops working.

use super::UserNameArg;
use crate::client::Client;
use crate::domain::token::ExposeSecret;
use crate::error::CommandError;

pub async fn cmd_token_rotate(client: &Client, args: &UserNameArg) -> Result<(), CommandError> {
    let issued = client.rotate_token(&args.name).await?;
    if args.json.json {
        return crate::output::print_json(&serde_json::json!({"user": issued.user, "token": issued.token.expose_secret()}));
    }
    eprintln!("new token for {} (shown once; the old one no longer works):", issued.user.name);
    println!("{}", issued.token.expose_secret());
    Ok(())
}
