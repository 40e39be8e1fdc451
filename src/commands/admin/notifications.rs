//! `jit admin notifications [--failing] [--json]`: each notification
//! destination and where its delivery stands (the audit log is the outbox).

use clap::Args;

use crate::client::Client;
use crate::error::CommandError;
use crate::output::{print_json, print_table};
use crate::ui;

#[derive(Debug, Args)]
pub struct NotificationsArgs {
    /// Only destinations whose delivery is failing or has given events up
    #[arg(long)]
    pub failing: bool,
    #[command(flatten)]
    pub json: crate::commands::args::JsonFlag,
}

pub async fn cmd_notifications(client: &Client, args: &NotificationsArgs) -> Result<(), CommandError> {
    let mut all = client.notifications().await?;
    if args.failing {
        all.retain(|d| d.failures > 0 || d.given_up > 0);
    }
    if args.json.json {
        return print_json(&all);
    }
    if all.is_empty() {
        println!(
            "{}",
            if args.failing {
                "No notification destination is failing."
            } else {
                "No notification destinations ([[notify]] in the broker's config)."
            }
        );
        return Ok(());
    }
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|d| {
            vec![
                d.name.clone(),
                d.kind.clone(),
                d.target.clone(),
                d.delivered_seq.to_string(),
                d.behind.to_string(),
                d.failures.to_string(),
                d.next_attempt_at.map(ui::local_time).unwrap_or_else(|| "-".into()),
                d.given_up.to_string(),
                d.last_error.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    print_table(&["NAME", "KIND", "TO", "DELIVERED TO", "BEHIND", "FAILURES", "NEXT ATTEMPT", "GIVEN UP", "LAST ERROR"], &rows);
    Ok(())
}
