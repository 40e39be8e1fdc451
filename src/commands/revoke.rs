//! `jit revoke GRANT|REPO`: ends a grant now (or all of yours on a repo).

use crate::error::CommandError;
use crate::output::print_json;
use clap::Args;

use crate::commands::args::JsonFlag;

#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// A grant id, or a repo (every live grant of yours on it)
    pub target: String,
    /// Why, for the audit log
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    #[command(flatten)]
    pub json: JsonFlag,
}

pub async fn cmd_revoke(args: &RevokeArgs) -> Result<(), CommandError> {
    let client = super::client()?;
    let ids = super::my_live_grants(&client, &args.target).await?;
    let mut revoked = Vec::new();
    for id in ids {
        let grant = client.revoke(id, args.reason.as_deref()).await?;
        forget_credential(&grant);
        revoked.push(grant);
    }
    if args.json.json {
        return print_json(&revoked);
    }
    for g in &revoked {
        eprintln!("revoked grant {}: {} on {} (for {})", g.id, g.level, g.repo, g.user);
    }
    Ok(())
}

/// Drops the cached credential of a grant that ended.
fn forget_credential(grant: &crate::api::Grant) {
    if let Ok(keychain) = crate::keychain::Keychain::open() {
        let _ = crate::credcache::forget_grant(&keychain, grant.id);
    }
}
