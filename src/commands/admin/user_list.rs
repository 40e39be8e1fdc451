//! `jit admin user list [--json]`.

use crate::client::Client;
use crate::error::CommandError;
use crate::output::{print_json, table};

pub async fn cmd_user_list(client: &Client, json: bool) -> Result<(), CommandError> {
    let users = client.users().await?;
    if json {
        return print_json(&users);
    }
    let rows: Vec<Vec<String>> = users
        .iter()
        .map(|u| {
            vec![
                u.name.clone(),
                if u.admin { "yes".into() } else { "".into() },
                u.groups.join(","),
                u.created_at.format("%Y-%m-%d %H:%M").to_string(),
            ]
        })
        .collect();
    println!("{}", table(&["NAME", "ADMIN", "GROUPS", "CREATED"], &rows));
    Ok(())
}
