//! `jit admin user remove NAME`.

use super::UserNameArg;
use crate::client::Client;
use crate::error::CommandError;

pub async fn cmd_user_remove(client: &Client, args: &UserNameArg) -> Result<(), CommandError> {
    client.remove_user(&args.name).await?;
    if args.json.json {
        return crate::output::print_json(&serde_json::json!({"removed": args.name}));
    }
    eprintln!("removed {}; their token no longer works", args.name);
    Ok(())
}
