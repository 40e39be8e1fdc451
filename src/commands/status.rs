//! `jit status [--json]`: your live grants and the time each has left, from
//! the broker, or from the local credential cache when the broker is out of reach.

use crate::client::ClientError;
use crate::credcache;
use crate::domain::duration::format_remaining;
use crate::error::CommandError;
use crate::ui;

pub async fn cmd_status(json: bool) -> Result<(), CommandError> {
    let client = super::client()?;
    let grants = match client.grants(false, true).await {
        Ok(g) => g,
        // Out of reach: what the local cache knows is still true until it expires.
        Err(ClientError::Unreachable { url, message }) => {
            let cached = credcache::live_grants(client.base(), chrono::Utc::now());
            if cached.is_empty() {
                return Err(ClientError::Unreachable { url, message }.into());
            }
            eprintln!("note: {url} is out of reach; showing the grants cached on this machine");
            cached
        }
        Err(e) => return Err(e.into()),
    };
    if json {
        return crate::output::print_json(&grants);
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
                if g.refs.is_empty() { "all".to_string() } else { g.refs.join(", ") },
                ui::local_time(g.expires_at),
                format_remaining((g.expires_at - now).num_seconds()),
            ]
        })
        .collect();
    crate::output::print_table(&["GRANT", "REPO", "LEVEL", "REFS", "UNTIL", "LEFT"], &rows);
    // What git is also told, for the grants near their end.
    for g in &grants {
        let warn_before = g.warn_before_secs.unwrap_or(crate::domain::expiry::DEFAULT_WARN_BEFORE_SECS);
        if let Ok(level) = g.level.parse()
            && let Some(line) = crate::domain::expiry::ending_soon(&g.repo, level, g.expires_at, now, warn_before)
        {
            eprintln!("{line}");
        }
    }
    Ok(())
}
