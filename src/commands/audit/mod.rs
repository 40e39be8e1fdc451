//! `jit audit [--since T] [--json]`, `jit audit verify` and `jit audit grant`.

mod grant;
mod list;
mod verify;

use crate::client::Client;
use crate::domain::audit::AuditEvent;
use crate::error::CommandError;
use clap::{Args, Subcommand};

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub command: Option<AuditCommand>,
    /// Only events at or after T: an RFC 3339 time or a duration ago (`2h`)
    #[arg(long, value_name = "T")]
    pub since: Option<String>,
    /// Print events as JSON lines (one object per line)
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the audit log's hash chain, from the broker or an exported file
    ///
    /// Recomputes every event's hash here, so a broker whose database was
    /// altered cannot vouch for itself; names the first event that breaks.
    /// Then checks the log reaches the broker's latest signed checkpoint, so a
    /// cut tail (or an empty export) is named, not passed.
    #[command(
        after_long_help = "Examples:\n  jit audit verify\n  jit audit verify --file audit.jsonl --key \"$(cat audit.pub)\"\n  jit audit verify --file today.jsonl --pin yesterday.jsonl"
    )]
    Verify(verify::AuditVerifyArgs),
    /// Everything that happened during one grant, checked against the signed log
    ///
    /// Its request, approvals, every credential minted, every fetch and push
    /// with its refs, and how it ended, as the audit log holds them (admins).
    /// The events are checked here against the checkpoints the broker signed;
    /// a report that does not verify exits 1 naming the event.
    #[command(after_long_help = "Examples:\n  jit audit grant 42\n  jit audit grant 42 --json --key \"$(cat audit.pub)\" > grant-42.json")]
    Grant(grant::AuditGrantArgs),
    /// Print the public key that verifies the broker's signed checkpoints
    ///
    /// Keep it somewhere the broker cannot change, and pass it to
    /// `jit audit verify --key`.
    #[command(after_long_help = "Example:\n  jit audit key > audit.pub")]
    Key,
}

pub async fn run(args: &AuditArgs) -> Result<(), CommandError> {
    match &args.command {
        None => list::cmd_audit(&super::client()?, args).await,
        Some(AuditCommand::Verify(v)) => verify::cmd_audit_verify(v).await,
        Some(AuditCommand::Grant(g)) => grant::cmd_audit_grant(g).await,
        Some(AuditCommand::Key) => {
            println!("{}", super::client()?.audit_checkpoint().await?.public_key);
            Ok(())
        }
    }
}

/// Every event (at or after `since`), oldest first, page by page.
pub async fn fetch_all(client: &Client, since: Option<chrono::DateTime<chrono::Utc>>) -> Result<Vec<AuditEvent>, CommandError> {
    const PAGE: u32 = 1000;
    let mut all: Vec<AuditEvent> = Vec::new();
    loop {
        let after = all.last().map(|e| e.seq).unwrap_or(0);
        let page = client.audit_page(after, since, PAGE).await?;
        let done = page.len() < PAGE as usize;
        all.extend(page);
        if done {
            return Ok(all);
        }
    }
}
