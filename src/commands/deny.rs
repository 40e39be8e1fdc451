//! `jit deny ID --reason TEXT`.

use crate::error::CommandError;
use clap::Args;

use crate::commands::args::JsonFlag;

#[derive(Debug, Args)]
pub struct DenyArgs {
    /// The request id
    pub id: String,
    /// Why (the requester sees it)
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
    #[command(flatten)]
    pub json: JsonFlag,
}

pub async fn cmd_deny(args: &DenyArgs) -> Result<(), CommandError> {
    let id = super::parse_id("request", &args.id)?;
    if args.reason.trim().is_empty() {
        return Err(CommandError::bad_input("--reason must not be empty: the requester sees it"));
    }
    let req = super::client()?.deny(id, &args.reason).await?;
    if args.json.json {
        return crate::output::print_json(&req);
    }
    eprintln!("denied #{}: {} on {} for {}", req.id, req.level, req.repo, req.requester);
    Ok(())
}
