//! `jit audit verify [--file F]`: recomputes the hash chain here, on the
//! client, so a broker whose database was altered cannot vouch for itself.

use std::io::BufRead;

use crate::domain::audit::{AuditEvent, GENESIS, verify_chain};
use crate::error::{CommandError, ExitKind};
use std::path::PathBuf;

use clap::Args;

#[derive(Debug, Args)]
pub struct AuditVerifyArgs {
    /// Verify a JSON-lines export (`jit audit --json > FILE`) instead of the broker's log
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
}

pub async fn cmd_audit_verify(args: &AuditVerifyArgs) -> Result<(), CommandError> {
    let events = match &args.file {
        Some(path) => read_export(path)?,
        None => super::fetch_all(&crate::commands::client()?, None).await?,
    };
    let start = events.first().map(|e| e.seq).unwrap_or(1);
    let anchor = if start == 1 { GENESIS.to_string() } else { events[0].prev_hash.clone() };
    match verify_chain(&events, start, &anchor) {
        Ok(n) => {
            if start == 1 {
                println!("audit chain intact: {n} events");
            } else {
                println!("audit chain intact: {n} events from {start} (anchored on the export's first event)");
            }
            Ok(())
        }
        Err(e) => Err(CommandError::new(ExitKind::Unexpected, e.to_string())
            .hint("the audit log was altered; treat the broker's database as compromised")),
    }
}

fn read_export(path: &std::path::Path) -> Result<Vec<AuditEvent>, CommandError> {
    let file = std::fs::File::open(path).map_err(|e| CommandError::bad_input(format!("cannot read {}: {e}", path.display())))?;
    let mut events = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| CommandError::bad_input(format!("cannot read {}: {e}", path.display())))?;
        if line.trim().is_empty() {
            continue;
        }
        let event = serde_json::from_str(&line)
            .map_err(|e| CommandError::bad_input(format!("{}:{}: not an audit event: {e}", path.display(), i + 1)))?;
        events.push(event);
    }
    Ok(events)
}
