//! `jit whoami`: the user the broker sees for the current token, and how they
//! signed in (through the identity provider, until when; or with a token).

use crate::error::CommandError;

pub async fn cmd_whoami(json: bool) -> Result<(), CommandError> {
    let client = super::client()?;
    let who = client.whoami_session().await?;
    let user = &who.user;
    if json {
        return crate::output::print_json(&serde_json::json!({"server": client.base(), "user": user, "session": who.session}));
    }
    let groups = if user.groups.is_empty() { String::new() } else { format!(" (groups: {})", user.groups.join(", ")) };
    let admin = if user.admin { ", admin" } else { "" };
    println!("{}{groups}{admin} on {}", user.name, client.base());
    match &who.session {
        Some(s) => println!("signed in through {}; the session ends {}", s.issuer, crate::ui::local_time(s.ends_at)),
        None => println!("signed in with a token"),
    }
    Ok(())
}
