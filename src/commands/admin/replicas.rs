//! `jit admin replicas [--json]`: the brokers on this broker's database,
//! when each started and last said it was alive, and which are live.

use crate::client::Client;
use crate::error::CommandError;
use crate::output::{print_json, print_table};
use crate::ui;

pub async fn cmd_replicas(client: &Client, json: bool) -> Result<(), CommandError> {
    let all = client.replicas().await?;
    if json {
        return print_json(&all);
    }
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|r| {
            vec![
                format!("{}{}", r.id, if r.answering { " (this one)" } else { "" }),
                r.version.clone(),
                ui::local_time(r.started_at),
                ui::local_time(r.seen_at),
                if r.live { "live".into() } else { "not seen for 15 s".into() },
            ]
        })
        .collect();
    print_table(&["REPLICA", "VERSION", "STARTED", "LAST SEEN", "STATE"], &rows);
    Ok(())
}
