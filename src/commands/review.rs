//! `jit review [GRANT --approve|--flag] [--comment TEXT]`: look back at a
//! break-glass grant, given at once without approval, and record whether it
//! was right (approved) or not (flagged, saying why). Without a grant, lists
//! those waiting for the caller's review.

use clap::Args;

use crate::api;
use crate::domain::request::ReviewOutcome;
use crate::error::CommandError;
use crate::output::{print_json, print_table};
use crate::ui;

use crate::commands::args::JsonFlag;

#[derive(Debug, Args)]
pub struct ReviewArgs {
    /// The break-glass grant to review [default: list those waiting for your review]
    pub grant: Option<i64>,
    /// The emergency and the access were right
    #[arg(long, conflicts_with = "flag", requires = "grant")]
    pub approve: bool,
    /// Something was wrong (needs --comment saying what)
    #[arg(long, requires = "grant")]
    pub flag: bool,
    /// What you found, for the audit log
    #[arg(long, value_name = "TEXT", requires = "grant")]
    pub comment: Option<String>,
    #[command(flatten)]
    pub json: JsonFlag,
}

pub async fn cmd_review(args: &ReviewArgs) -> Result<(), CommandError> {
    let client = super::client()?;
    let Some(grant) = args.grant else {
        let waiting = client.unreviewed(false).await?;
        if args.json.json {
            return print_json(&waiting);
        }
        print_unreviewed(&waiting, "Nothing waits for your review: no break-glass grant you may review is unreviewed.");
        return Ok(());
    };
    let outcome = match (args.approve, args.flag) {
        (true, false) => ReviewOutcome::Approved,
        (false, true) => ReviewOutcome::Flagged,
        _ => {
            return Err(CommandError::bad_input(format!("say how grant {grant} was: --approve, or --flag --comment TEXT"))
                .hint("`jit review` lists the break-glass grants waiting for your review"));
        }
    };
    let reviewed = client.review(grant, &api::ReviewBody { outcome, comment: args.comment.clone() }).await?;
    if args.json.json {
        return print_json(&reviewed);
    }
    eprintln!(
        "{outcome} break-glass grant {grant}: {} had {} on {} ({})",
        reviewed.requester, reviewed.level, reviewed.repo, reviewed.duration
    );
    Ok(())
}

/// The table `jit review` and `jit admin grants --unreviewed` print.
pub fn print_unreviewed(waiting: &[api::AccessRequest], none: &str) {
    if waiting.is_empty() {
        println!("{none}");
        return;
    }
    let rows: Vec<Vec<String>> = waiting
        .iter()
        .map(|r| {
            vec![
                r.grant.as_ref().map(|g| g.id.to_string()).unwrap_or_default(),
                r.requester.clone(),
                r.repo.clone(),
                r.level.clone(),
                r.grant.as_ref().map(|g| ui::local_time(g.granted_at)).unwrap_or_default(),
                r.duration.clone(),
                r.rule.clone(),
                r.reason.clone().unwrap_or_default(),
            ]
        })
        .collect();
    print_table(&["GRANT", "USER", "REPO", "LEVEL", "GRANTED", "FOR", "RULE", "REASON"], &rows);
}
