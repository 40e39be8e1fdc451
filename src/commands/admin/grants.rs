//! `jit admin grants [--failing | --unreviewed] [--json]`: every user's live
//! grants; or those that ended while their git host still holds them (the
//! broker keeps retrying the revocation; each attempt is in the audit log);
//! or the break-glass grants nobody has reviewed yet.

use clap::Args;

use crate::client::Client;
use crate::error::CommandError;
use crate::output::{print_json, print_table};
use crate::ui;

#[derive(Debug, Args)]
pub struct GrantsArgs {
    /// Only grants that ended but whose host has not yet revoked them
    #[arg(long, conflicts_with = "unreviewed")]
    pub failing: bool,
    /// Only break-glass grants not yet reviewed by an approver of their rule
    #[arg(long)]
    pub unreviewed: bool,
    #[command(flatten)]
    pub json: crate::commands::args::JsonFlag,
}

pub async fn cmd_grants(client: &Client, args: &GrantsArgs) -> Result<(), CommandError> {
    if args.unreviewed {
        let waiting = client.unreviewed(true).await?;
        if args.json.json {
            return print_json(&waiting);
        }
        crate::commands::review::print_unreviewed(&waiting, "No break-glass grant waits for review.");
        return Ok(());
    }
    if args.failing {
        let failing = client.failing_grants().await?;
        if args.json.json {
            return print_json(&failing);
        }
        if failing.is_empty() {
            println!("No grant is failing to end: every ended grant was revoked at its host.");
            return Ok(());
        }
        let rows: Vec<Vec<String>> = failing
            .iter()
            .map(|f| {
                let ended = f.grant.revoked_at.unwrap_or(f.grant.expires_at);
                vec![
                    f.grant.id.to_string(),
                    f.grant.user.clone(),
                    f.grant.repo.clone(),
                    f.grant.level.clone(),
                    ui::local_time(ended),
                    f.failures.to_string(),
                    ui::local_time(f.next_attempt_at),
                    f.error.clone(),
                ]
            })
            .collect();
        print_table(&["GRANT", "USER", "REPO", "LEVEL", "ENDED", "FAILURES", "NEXT ATTEMPT", "LAST ERROR"], &rows);
        return Ok(());
    }
    let grants = client.grants(true, true).await?;
    if args.json.json {
        return print_json(&grants);
    }
    let rows: Vec<Vec<String>> = grants
        .iter()
        .map(|g| vec![g.id.to_string(), g.user.clone(), g.repo.clone(), g.level.clone(), ui::local_time(g.expires_at)])
        .collect();
    print_table(&["GRANT", "USER", "REPO", "LEVEL", "UNTIL"], &rows);
    Ok(())
}
