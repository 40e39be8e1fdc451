//! `jit audit [--since T] [--json]`: the log as a table, or JSON lines to export.

use chrono::{DateTime, Utc};

use super::AuditArgs;
use crate::client::Client;
use crate::domain::AccessDuration;
use crate::error::CommandError;
use crate::output::{print_json_lines, table};

/// `--since`: an RFC 3339 time, or a duration ago.
pub fn parse_since(input: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, CommandError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(input) {
        return Ok(t.with_timezone(&Utc));
    }
    match input.parse::<AccessDuration>() {
        Ok(d) => Ok(now - d.as_chrono()),
        Err(_) => Err(CommandError::bad_input(format!(
            "invalid --since `{input}`: expected an RFC 3339 time (2026-11-25T09:00:00Z) or a duration ago (2h)"
        ))),
    }
}

pub async fn cmd_audit(client: &Client, args: &AuditArgs) -> Result<(), CommandError> {
    let since = args.since.as_deref().map(|s| parse_since(s, Utc::now())).transpose()?;
    // The checkpoint first: events written while the pages are read come after it.
    let checkpoint = if args.json { Some(client.audit_checkpoint().await?) } else { None };
    let events = super::fetch_all(client, since).await?;
    if let Some(checkpoint) = checkpoint {
        // An export carries the latest signed checkpoint as its last line.
        print_json_lines(&events)?;
        return print_json_lines([&checkpoint]);
    }
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|e| {
            let ids = match (e.request_id, e.grant_id) {
                (Some(r), Some(g)) => format!("r{r} g{g}"),
                (Some(r), None) => format!("r{r}"),
                (None, Some(g)) => format!("g{g}"),
                (None, None) => String::new(),
            };
            vec![
                e.seq.to_string(),
                e.at.clone(),
                e.actor.clone(),
                e.action.clone(),
                e.repo.clone().unwrap_or_default(),
                e.level.clone().unwrap_or_default(),
                ids,
                e.detail.clone().unwrap_or_default(),
            ]
        })
        .collect();
    println!("{}", table(&["SEQ", "AT", "ACTOR", "ACTION", "REPO", "LEVEL", "IDS", "DETAIL"], &rows));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_times_and_durations() {
        let now: DateTime<Utc> = "2026-11-25T12:00:00Z".parse().unwrap();
        assert_eq!(parse_since("2h", now).unwrap(), "2026-11-25T10:00:00Z".parse::<DateTime<Utc>>().unwrap());
        assert_eq!(parse_since("2026-11-25T09:00:00+01:00", now).unwrap(), "2026-11-25T08:00:00Z".parse::<DateTime<Utc>>().unwrap());
        let err = parse_since("yesterday", now).unwrap_err();
        assert_eq!(err.kind.code(), 2);
        assert!(err.message.contains("yesterday"));
    }
}
