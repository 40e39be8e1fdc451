//! `jit requests [--pending] [--mine] [--json]`: requests you made or can review.

use crate::error::CommandError;
use crate::ui;
use clap::Args;

use crate::commands::args::JsonFlag;

#[derive(Debug, Args)]
pub struct RequestsArgs {
    /// Only pending requests
    #[arg(long)]
    pub pending: bool,
    /// Only your own requests
    #[arg(long)]
    pub mine: bool,
    #[command(flatten)]
    pub json: JsonFlag,
}

pub async fn cmd_requests(args: &RequestsArgs) -> Result<(), CommandError> {
    let client = super::client()?;
    let status = args.pending.then_some("pending");
    let requests = client.requests(args.mine, false, status).await?;
    if args.json.json {
        return crate::output::print_json(&requests);
    }
    if requests.is_empty() {
        eprintln!("no requests");
        return Ok(());
    }
    let now = chrono::Utc::now();
    let rows: Vec<Vec<String>> = requests
        .iter()
        .map(|r| {
            vec![
                r.id.to_string(),
                // Break-glass: granted at once, reviewed afterwards; said where the status is.
                if r.break_glass { format!("{} (break-glass)", r.status) } else { r.status.to_string() },
                r.requester.clone(),
                r.repo.clone(),
                r.level.clone(),
                r.duration.clone(),
                ui::age(r.created_at, now),
                r.reason.clone().unwrap_or_default(),
            ]
        })
        .collect();
    crate::output::print_table(&["ID", "STATUS", "REQUESTER", "REPO", "LEVEL", "FOR", "AGE", "REASON"], &rows);
    Ok(())
}
