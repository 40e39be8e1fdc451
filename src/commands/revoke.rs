//! `jit revoke GRANT|REPO`: ends a grant now (or all of yours on a repo).

use crate::cli::RevokeArgs;
use crate::domain::repo::{CloneUrl, RepoSpec, resolve};
use crate::error::CommandError;

pub async fn cmd_revoke(args: &RevokeArgs) -> Result<(), CommandError> {
    let client = super::client()?;
    let ids: Vec<i64> = if args.target.trim().chars().all(|c| c.is_ascii_digit() || c == '#') {
        vec![super::parse_id("grant", &args.target)?]
    } else {
        let repos: Vec<RepoSpec> = client
            .repos()
            .await?
            .into_iter()
            .map(|r| RepoSpec { name: r.name, url: r.clone_url.and_then(|u| CloneUrl::parse(&u).ok()), provider: None })
            .collect();
        let repo = resolve(&args.target, &repos).map_err(|e| CommandError::bad_input(e.to_string()))?;
        let live: Vec<i64> = client.grants(false, true).await?.into_iter().filter(|g| g.repo == repo.name).map(|g| g.id).collect();
        if live.is_empty() {
            return Err(
                CommandError::bad_input(format!("you have no live grant on {}", repo.name)).hint("`jit status` lists your live grants")
            );
        }
        live
    };
    let mut revoked = Vec::new();
    for id in ids {
        let grant = client.revoke(id, args.reason.as_deref()).await?;
        super::request::forget_credential(&grant);
        revoked.push(grant);
    }
    if args.json.json {
        return super::print_json(&revoked);
    }
    for g in &revoked {
        eprintln!("revoked grant {}: {} on {} (for {})", g.id, g.level, g.repo, g.user);
    }
    Ok(())
}
