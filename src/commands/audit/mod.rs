//! `jit audit [--since T] [--json]` and `jit audit verify`.

mod list;
mod verify;

use crate::cli::{AuditArgs, AuditCommand};
use crate::client::Client;
use crate::domain::audit::AuditEvent;
use crate::error::CommandError;

pub async fn run(args: &AuditArgs) -> Result<(), CommandError> {
    match &args.command {
        None => list::cmd_audit(&super::client()?, args).await,
        Some(AuditCommand::Verify(v)) => verify::cmd_audit_verify(v).await,
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
