//! `jit audit verify [--file F] [--key K] [--pin OLD]`: recomputes the hash
//! chain here, on the client, so a broker whose database was altered cannot
//! vouch for itself; then checks the log holds the latest checkpoint the
//! broker signed, so events cut from the end are named rather than missed.
//!
//! An export verifies only when it starts at event 1 (or right after the
//! pinned earlier export's checkpoint), runs without a gap, and holds its
//! checkpoint's event with the checkpoint's hash. Events after that
//! checkpoint are counted as not yet signed: nothing vouches for them.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use clap::Args;

use crate::api::AuditCheckpoint;
use crate::domain::audit::{AuditEvent, Checkpoint, CheckpointError, GENESIS, anchors, parse_public_key, verify_against, verify_chain};
use crate::error::{CommandError, ExitKind};

#[derive(Debug, Args)]
pub struct AuditVerifyArgs {
    /// Verify a JSON-lines export (`jit audit --json > FILE`) instead of the broker's log
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// The public key checkpoints must verify with (`jit audit key`, kept
    /// elsewhere); without it the key the log itself carries is used
    #[arg(long, value_name = "BASE64")]
    pub key: Option<String>,
    /// An earlier export: the log must still hold the event its checkpoint signed
    #[arg(long, value_name = "FILE")]
    pub pin: Option<PathBuf>,
}

/// An export read back: its events, the checkpoint line it ends with, and
/// (an archive file) the checkpoint of the event before its first.
struct Export {
    events: Vec<AuditEvent>,
    checkpoint: Option<AuditCheckpoint>,
    anchor: Option<Checkpoint>,
}

fn read_export(path: &Path) -> Result<Export, CommandError> {
    let cannot = |e: std::io::Error| CommandError::bad_input(format!("cannot read {}: {e}", path.display()));
    let file = std::fs::File::open(path).map_err(cannot)?;
    let mut export = Export { events: Vec::new(), checkpoint: None, anchor: None };
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(cannot)?;
        if line.trim().is_empty() {
            continue;
        }
        let bad = |e: serde_json::Error| CommandError::bad_input(format!("{}:{}: not an audit event: {e}", path.display(), i + 1));
        let value: serde_json::Value = serde_json::from_str(&line).map_err(bad)?;
        if let Some(anchor) = value.get("anchor") {
            export.anchor = Some(serde_json::from_value(anchor.clone()).map_err(bad)?);
        } else if value.get("public_key").is_some() {
            export.checkpoint = Some(serde_json::from_value(value).map_err(bad)?);
        } else {
            export.events.push(serde_json::from_value(value).map_err(bad)?);
        }
    }
    Ok(export)
}

pub(super) fn broken(message: impl Into<String>) -> CommandError {
    CommandError::new(ExitKind::Unexpected, message).hint("the audit log was altered; treat the broker's database as compromised")
}

pub async fn cmd_audit_verify(args: &AuditVerifyArgs) -> Result<(), CommandError> {
    let export = match &args.file {
        Some(path) => read_export(path)?,
        None => {
            let client = crate::commands::client()?;
            // The checkpoint first: events written while the pages are read come after it.
            let checkpoint = client.audit_checkpoint().await?;
            Export { events: super::fetch_all(&client, None).await?, checkpoint: Some(checkpoint), anchor: None }
        }
    };
    let events = &export.events;
    let carried = export.checkpoint.as_ref();
    let key_text = match (&args.key, carried) {
        (Some(k), _) => k.clone(),
        (None, Some(c)) => c.public_key.clone(),
        (None, None) => return Err(broken(CheckpointError::NoCheckpoint.to_string())),
    };
    let key = parse_public_key(&key_text).map_err(|e| CommandError::bad_input(format!("--key: {e}")))?;
    let Some(checkpoint) = carried.and_then(|c| c.checkpoint.clone()) else {
        return Err(broken(CheckpointError::NoCheckpoint.to_string()));
    };
    checkpoint.verify(&key).map_err(|e| broken(format!("checkpoint at event {}: {e}", checkpoint.seq)))?;
    let pinned: Option<Checkpoint> = match &args.pin {
        Some(pin) => {
            let earlier = read_export(pin)?.checkpoint.and_then(|c| c.checkpoint).ok_or_else(|| {
                CommandError::bad_input(format!("{}: no checkpoint line to pin to (an export from `jit audit --json`)", pin.display()))
            })?;
            earlier.verify(&key).map_err(|e| broken(format!("{}: {e}", pin.display())))?;
            Some(earlier)
        }
        None => None,
    };
    // An archive file's own anchor: the signed checkpoint of the event before its first.
    let anchored_on_file = match &export.anchor {
        Some(anchor) => {
            anchor.verify(&key).map_err(|e| broken(format!("the file's anchor (event {}): {e}", anchor.seq)))?;
            if !anchors(events, anchor) {
                let first = events.first().map_or(anchor.seq + 1, |e| e.seq);
                let why = if first > anchor.seq + 1 {
                    format!("expected event {} here; events are missing", anchor.seq + 1)
                } else {
                    "it does not follow from the anchor".to_string()
                };
                return Err(broken(format!(
                    "event {first}: {why} (the file's anchor signs event {}, the one before its first)",
                    anchor.seq
                )));
            }
            true
        }
        None => false,
    };
    // Where the chain starts: event 1, or right after the pinned checkpoint (or the file's anchor).
    let start = events.first().map(|e| e.seq).unwrap_or(1);
    let anchored_on_pin = pinned.as_ref().is_some_and(|p| anchors(events, p));
    if start != 1 && !anchored_on_pin && !anchored_on_file {
        return Err(broken(format!(
            "the events start at {start}, not 1, and no signed checkpoint vouches for the one before them (pin the earlier export that ends there with --pin)"
        )));
    }
    let anchor = if start == 1 { GENESIS.to_string() } else { events[0].prev_hash.clone() };
    let n = verify_chain(events, start, &anchor).map_err(|e| broken(e.to_string()))?;
    verify_against(events, &checkpoint).map_err(|e| broken(e.to_string()))?;
    if let (Some(pin), Some(earlier)) = (&args.pin, &pinned)
        && !anchored_on_pin
    {
        verify_against(events, earlier).map_err(|e| broken(format!("against {}: {e}", pin.display())))?;
    }
    let origin = match (start, anchored_on_file) {
        (1, _) => String::new(),
        (_, true) => format!(" from {start} (anchored on the file's signed checkpoint of event {})", start - 1),
        _ => format!(" from {start} (anchored on the pinned checkpoint)"),
    };
    let key_note = if args.key.is_some() { "the given key" } else { "the key the log carries; pin it with --key" };
    let unsigned = events.iter().filter(|e| e.seq > checkpoint.seq).count();
    let unsigned = if unsigned == 0 { String::new() } else { format!("; {unsigned} events after it are not signed yet") };
    println!(
        "audit chain intact: {n} events{origin}; reaches the checkpoint the broker signed at {} (event {}, {key_note}){unsigned}",
        checkpoint.at, checkpoint.seq
    );
    Ok(())
}
