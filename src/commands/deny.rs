//! `jit deny ID --reason TEXT`.

use crate::cli::DenyArgs;
use crate::error::CommandError;

pub async fn cmd_deny(args: &DenyArgs) -> Result<(), CommandError> {
    let id = super::parse_id("request", &args.id)?;
    if args.reason.trim().is_empty() {
        return Err(CommandError::bad_input("--reason must not be empty: the requester sees it"));
    }
    let req = super::client()?.deny(id, &args.reason).await?;
    if args.json.json {
        return super::print_json(&req);
    }
    eprintln!("denied #{}: {} on {} for {}", req.id, req.level, req.repo, req.requester);
    Ok(())
}
