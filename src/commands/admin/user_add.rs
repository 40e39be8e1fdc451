//! `jit admin user add NAME [--group G]… [--admin] [--service] [--email ADDRESS]`: prints the new token once.

use crate::api;
use crate::client::Client;
use crate::domain::token::ExposeSecret;
use crate::error::CommandError;
use clap::Args;

use crate::commands::args::JsonFlag;

#[derive(Debug, Args)]
pub struct UserAddArgs {
    /// The new user's name: 1-64 letters, digits, `-`, `_` or `.`
    #[arg(value_parser = crate::commands::args::name_parser("user"))]
    pub name: String,
    /// A group the user belongs to (repeatable)
    #[arg(long = "group", value_name = "GROUP", value_parser = crate::commands::args::name_parser("group"))]
    pub groups: Vec<String>,
    /// Make the user an admin
    #[arg(long)]
    pub admin: bool,
    /// A local user who signs in with this token (a service account, a
    /// break-glass admin): required where people sign in through an
    /// identity provider, so nobody is made a local user by mistake
    #[arg(long)]
    pub service: bool,
    /// Where the user is mailed (e-mail notifications to a rule's approvers)
    #[arg(long, value_name = "ADDRESS")]
    pub email: Option<String>,
    #[command(flatten)]
    pub json: JsonFlag,
}

pub async fn cmd_user_add(client: &Client, args: &UserAddArgs) -> Result<(), CommandError> {
    let issued = client
        .add_user(&api::NewUser {
            name: args.name.clone(),
            groups: args.groups.clone(),
            admin: args.admin,
            service: args.service,
            email: args.email.clone(),
        })
        .await?;
    if args.json.json {
        // The token is the point of this command: it is in the JSON on purpose.
        return crate::output::print_json(&serde_json::json!({"user": issued.user, "token": issued.token.expose_secret()}));
    }
    eprintln!("added {}; their token (shown once, hand it over securely):", issued.user.name);
    println!("{}", issued.token.expose_secret());
    Ok(())
}
