//! `jit status [--json]`: your live grants and the time each has left.

use crate::domain::duration::format_remaining;
use crate::error::CommandError;
use crate::ui;

pub async fn cmd_status(json: bool) -> Result<(), CommandError> {
    let client = super::client()?;
    let grants = client.grants(false, true).await?;
    if json {
        return super::print_json(&grants);
    }
    if grants.is_empty() {
        eprintln!("no live grants; ask with `jit request REPO --level LEVEL --for DURATION`");
        return Ok(());
    }
    let now = chrono::Utc::now();
    let rows: Vec<Vec<String>> = grants
        .iter()
        .map(|g| {
            vec![
                g.id.to_string(),
                g.repo.clone(),
                g.level.clone(),
                ui::local_time(g.expires_at),
                format_remaining((g.expires_at - now).num_seconds()),
            ]
        })
        .collect();
    println!("{}", super::table(&["GRANT", "REPO", "LEVEL", "UNTIL", "LEFT"], &rows));
    Ok(())
}
