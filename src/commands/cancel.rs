//! `jit cancel ID`: withdraws your pending request.

use crate::cli::IdArgs;
use crate::error::CommandError;

pub async fn cmd_cancel(args: &IdArgs) -> Result<(), CommandError> {
    let id = super::parse_id("request", &args.id)?;
    let req = super::client()?.cancel(id).await?;
    if args.json.json {
        return super::print_json(&req);
    }
    eprintln!("canceled #{}: {} on {}", req.id, req.level, req.repo);
    Ok(())
}
