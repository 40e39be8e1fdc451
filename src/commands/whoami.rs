//! `jit whoami`: the user the broker sees for the current token.

use crate::error::CommandError;

pub async fn cmd_whoami(json: bool) -> Result<(), CommandError> {
    let client = super::client()?;
    let user = client.whoami().await?;
    if json {
        return crate::output::print_json(&serde_json::json!({"server": client.base(), "user": user}));
    }
    let groups = if user.groups.is_empty() { String::new() } else { format!(" (groups: {})", user.groups.join(", ")) };
    let admin = if user.admin { ", admin" } else { "" };
    println!("{}{groups}{admin} on {}", user.name, client.base());
    Ok(())
}
