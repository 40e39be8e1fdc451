//! `jit admin user add NAME [--group G]… [--admin]`: prints the new token once.

use crate::api;
use crate::cli::UserAddArgs;
use crate::client::Client;
use crate::domain::token::ExposeSecret;
use crate::error::CommandError;

pub async fn cmd_user_add(client: &Client, args: &UserAddArgs) -> Result<(), CommandError> {
    let issued = client.add_user(&api::NewUser { name: args.name.clone(), groups: args.groups.clone(), admin: args.admin }).await?;
    if args.json.json {
        // The token is the point of this command: it is in the JSON on purpose.
        return super::super::print_json(&serde_json::json!({"user": issued.user, "token": issued.token.expose_secret()}));
    }
    eprintln!("added {}; their token (shown once, hand it over securely):", issued.user.name);
    println!("{}", issued.token.expose_secret());
    Ok(())
}
