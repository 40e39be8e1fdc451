//! `jit requests [--pending] [--mine] [--json]`: requests you made or can review.

use crate::cli::RequestsArgs;
use crate::error::CommandError;
use crate::ui;

pub async fn cmd_requests(args: &RequestsArgs) -> Result<(), CommandError> {
    let client = super::client()?;
    let status = args.pending.then_some("pending");
    let requests = client.requests(args.mine, false, status).await?;
    if args.json.json {
        return super::print_json(&requests);
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
                r.status.to_string(),
                r.requester.clone(),
                r.repo.clone(),
                r.level.clone(),
                r.duration.clone(),
                ui::age(r.created_at, now),
                r.reason.clone().unwrap_or_default(),
            ]
        })
        .collect();
    println!("{}", super::table(&["ID", "STATUS", "REQUESTER", "REPO", "LEVEL", "FOR", "AGE", "REASON"], &rows));
    Ok(())
}
