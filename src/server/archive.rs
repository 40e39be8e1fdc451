//! The audit archive (`[audit] archive_dir`): the log copied, as it grows,
//! into daily JSON-lines files that each verify on their own (`jit audit
//! verify --file`); the layout is `domain::audit_archive`'s.
//!
//! Progress is the files themselves: at start the newest is read back (a
//! line cut short by a crash is dropped, and its event written again), so
//! nothing is skipped or written twice. Each batch is flushed to disk
//! before the next is read. A failure (a full disk, a removed directory) is
//! logged and retried; the broker goes on serving.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::broker::Broker;
use crate::api::AuditCheckpoint;
use crate::domain::audit::{AuditEvent, public_key_text};
use crate::domain::audit_archive::{ArchiveFile, Position, Step, plan};

/// How often the archive looks for new events.
const EVERY: Duration = Duration::from_secs(1);
/// Events read per batch.
const BATCH: u32 = 1000;

pub async fn run(broker: Arc<Broker>, mut shutdown: watch::Receiver<bool>) {
    let Some(dir) = broker.config().archive_dir.clone() else { return };
    let mut failing = false;
    loop {
        match archive_new_events(&broker, &dir).await {
            Ok(()) if failing => {
                failing = false;
                tracing::info!(dir = %dir.display(), "audit archive: writing again");
            }
            Ok(()) => {}
            Err(e) if !failing => {
                failing = true;
                tracing::error!(dir = %dir.display(), error = %e, "audit archive: cannot write; retrying");
            }
            Err(_) => {}
        }
        if *shutdown.borrow() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            // One last round, so what was written before the stop is archived.
            _ = shutdown.changed() => {}
        }
    }
}

/// Copies every event not yet archived.
async fn archive_new_events(broker: &Broker, dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut position = read_position(dir)?;
    loop {
        let after = position.as_ref().map_or(0, |p| p.last_seq);
        let events = broker.events_after(after, BATCH).await.map_err(|e| e.to_string())?;
        if events.is_empty() {
            return Ok(());
        }
        position = Some(write(broker, dir, position.as_ref(), &events).await?);
    }
}

/// Writes `events` after `position`, and where the archive then stands.
async fn write(broker: &Broker, dir: &Path, position: Option<&Position>, events: &[AuditEvent]) -> Result<Position, String> {
    let key = public_key_text(&broker.audit_public_key());
    let mut out: Option<(ArchiveFile, std::fs::File)> = None;
    let mut now = position.cloned();
    for step in plan(position, events) {
        match step {
            Step::Close { file, last_seq } => {
                let checkpoint = signed(broker, last_seq).await?;
                let line = serde_json::to_string(&AuditCheckpoint { checkpoint: Some(checkpoint), public_key: key.clone() });
                let f = open(dir, &file, &mut out)?;
                writeln!(f, "{}", line.map_err(|e| e.to_string())?).map_err(|e| failed(dir, &file, e))?;
                finish(dir, out.take())?;
                now = Some(Position { file, last_seq, closed: true });
            }
            Step::Open { file } => {
                finish(dir, out.take())?;
                let path = dir.join(file.name());
                let mut f = std::fs::OpenOptions::new().create_new(true).append(true).open(&path).map_err(|e| failed(dir, &file, e))?;
                if file.first_seq > 1 {
                    let anchor = signed(broker, file.first_seq - 1).await?;
                    let line = serde_json::json!({ "anchor": anchor, "public_key": key });
                    writeln!(f, "{line}").map_err(|e| failed(dir, &file, e))?;
                }
                out = Some((file.clone(), f));
                now = Some(Position { file, last_seq: now.map_or(0, |p| p.last_seq), closed: false });
            }
            Step::Append { file, index } => {
                let e = &events[index];
                let line = serde_json::to_string(e).map_err(|e| e.to_string())?;
                let f = open(dir, &file, &mut out)?;
                writeln!(f, "{line}").map_err(|e| failed(dir, &file, e))?;
                now = Some(Position { file, last_seq: e.seq, closed: false });
            }
        }
    }
    finish(dir, out)?;
    now.ok_or_else(|| "nothing written".to_string())
}

/// The checkpoint of event `seq`: a day ends on the last event of a write, which its write signed.
async fn signed(broker: &Broker, seq: i64) -> Result<crate::domain::audit::Checkpoint, String> {
    broker
        .checkpoint_of(seq)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no signed checkpoint of event {seq} yet; the file stays open until there is"))
}

/// The open file for `file`, opening it for appending when this batch has not yet.
fn open<'a>(dir: &Path, file: &ArchiveFile, out: &'a mut Option<(ArchiveFile, std::fs::File)>) -> Result<&'a mut std::fs::File, String> {
    if out.as_ref().is_none_or(|(f, _)| f != file) {
        finish(dir, out.take())?;
        let f = std::fs::OpenOptions::new().append(true).open(dir.join(file.name())).map_err(|e| failed(dir, file, e))?;
        *out = Some((file.clone(), f));
    }
    Ok(&mut out.as_mut().expect("just opened").1)
}

/// Flushes a file to disk before the archive moves on.
fn finish(dir: &Path, out: Option<(ArchiveFile, std::fs::File)>) -> Result<(), String> {
    match out {
        Some((file, f)) => f.sync_all().map_err(|e| failed(dir, &file, e)),
        None => Ok(()),
    }
}

fn failed(dir: &Path, file: &ArchiveFile, e: std::io::Error) -> String {
    format!("{}: {e}", dir.join(file.name()).display())
}

/// The newest file and how far it goes; a last line cut short is removed.
fn read_position(dir: &Path) -> Result<Option<Position>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let newest = entries.filter_map(|e| e.ok()?.file_name().to_str().and_then(ArchiveFile::parse)).max_by_key(|f| f.first_seq);
    let Some(file) = newest else { return Ok(None) };
    let path: PathBuf = dir.join(file.name());
    let text = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    // Only whole lines count: a crash mid-line leaves a tail without its newline.
    let whole = text.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    if whole < text.len() {
        let f = std::fs::OpenOptions::new().write(true).open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        f.set_len(whole as u64).map_err(|e| format!("{}: {e}", path.display()))?;
        tracing::warn!(file = %path.display(), "audit archive: dropped a line cut short; its event is written again");
    }
    let (mut last_seq, mut closed) = (file.first_seq - 1, false);
    for line in text[..whole].lines() {
        let line = line.map_err(|e| format!("{}: {e}", path.display()))?;
        let value: serde_json::Value = serde_json::from_str(&line).map_err(|e| format!("{}: not the archive's: {e}", path.display()))?;
        if let Some(seq) = value.get("seq").and_then(|s| s.as_i64()) {
            last_seq = seq;
        } else if value.get("checkpoint").is_some() {
            closed = true;
        }
    }
    Ok(Some(Position { file, last_seq, closed }))
}
