//! `jit cancel ID`: withdraws your pending request.

use crate::error::CommandError;
use clap::Args;

use crate::commands::args::JsonFlag;

#[derive(Debug, Args)]
pub struct CancelArgs {
    /// The request id
    pub id: String,
    #[command(flatten)]
    pub json: JsonFlag,
}

pub async fn cmd_cancel(args: &CancelArgs) -> Result<(), CommandError> {
    let id = super::parse_id("request", &args.id)?;
    let req = super::client()?.cancel(id).await?;
    if args.json.json {
        return crate::output::print_json(&req);
    }
    eprintln!("canceled #{}: {} on {}", req.id, req.level, req.repo);
    Ok(())
}
