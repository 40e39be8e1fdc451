//! The audit log's SQL: appending linked events, signed checkpoints, reading
//! the log back, and the start-up check that its tail is the one the broker signed.

use std::path::Path;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::db::{all, first};
use crate::domain::audit::{AuditEvent, Checkpoint, NewEvent, timestamp};
use crate::store::chain::{Chain, ChainHead};
use crate::store::{StoreError, StoreResult};

/// Appends events to the chain inside the writer's transaction (whose
/// commit signs a checkpoint of the new head).
pub fn append(conn: &Connection, chain: &mut Chain, events: &[NewEvent], at: DateTime<Utc>) -> StoreResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    let head = match chain.head() {
        Some(head) => head.clone(),
        None => read_head(conn)?,
    };
    let mut insert = conn.prepare_cached(
        "INSERT INTO audit_events (seq, at, actor, action, request_id, grant_id, repo, level, detail, prev_hash, hash)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )?;
    for e in chain.link(head, events, at) {
        insert.execute(params![
            e.seq,
            e.at,
            e.actor,
            e.action,
            e.request_id,
            e.grant_id,
            e.repo,
            e.level,
            e.detail,
            e.prev_hash,
            e.hash
        ])?;
    }
    Ok(())
}

fn read_head(conn: &Connection) -> StoreResult<ChainHead> {
    let last = conn
        .prepare_cached("SELECT seq, hash, at FROM audit_events ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| Ok(ChainHead { seq: r.get(0)?, hash: r.get(1)?, at: r.get(2)? }))
        .optional()?;
    Ok(last.unwrap_or_else(ChainHead::genesis))
}

pub fn insert_checkpoint(conn: &Connection, cp: &Checkpoint) -> StoreResult<()> {
    conn.prepare_cached("INSERT INTO audit_checkpoints (seq, hash, at, signature) VALUES (?, ?, ?, ?)")?.execute(params![
        cp.seq,
        cp.hash,
        cp.at,
        cp.signature
    ])?;
    Ok(())
}

pub fn latest_checkpoint(conn: &Connection) -> StoreResult<Option<Checkpoint>> {
    let mut stmt = conn.prepare_cached("SELECT seq, hash, at, signature FROM audit_checkpoints ORDER BY seq DESC LIMIT 1")?;
    first(stmt.query([])?, |r| Ok(Checkpoint { seq: r.get(0)?, hash: r.get(1)?, at: r.get(2)?, signature: r.get(3)? }))
}

/// The first checkpoint at or after event `seq`.
pub fn checkpoint_covering(conn: &Connection, seq: i64) -> StoreResult<Option<Checkpoint>> {
    let mut stmt = conn.prepare_cached("SELECT seq, hash, at, signature FROM audit_checkpoints WHERE seq >= ? ORDER BY seq LIMIT 1")?;
    first(stmt.query([seq])?, |r| Ok(Checkpoint { seq: r.get(0)?, hash: r.get(1)?, at: r.get(2)?, signature: r.get(3)? }))
}

/// One grant's events, by the grant's id or its request's.
pub fn grant_events(conn: &Connection, grant_id: i64, request_id: i64) -> StoreResult<Vec<AuditEvent>> {
    let mut stmt = conn.prepare_cached(
        "SELECT * FROM audit_events WHERE grant_id = ?1 UNION SELECT * FROM audit_events WHERE request_id = ?2 ORDER BY seq",
    )?;
    all(stmt.query(params![grant_id, request_id])?, event)
}

fn event(r: &Row) -> StoreResult<AuditEvent> {
    Ok(AuditEvent {
        seq: r.get("seq")?,
        at: r.get("at")?,
        actor: r.get("actor")?,
        action: r.get("action")?,
        request_id: r.get("request_id")?,
        grant_id: r.get("grant_id")?,
        repo: r.get("repo")?,
        level: r.get("level")?,
        detail: r.get("detail")?,
        prev_hash: r.get("prev_hash")?,
        hash: r.get("hash")?,
    })
}

/// A page of the log; `at` is fixed-width RFC 3339 in UTC, so text order is
/// time order. The limit is written in (a bound `LIMIT ?` makes SQLite
/// prepare the statement again every time).
pub(super) const EVENTS_QUERY: &str = "SELECT * FROM audit_events WHERE seq > ?1 AND (?2 IS NULL OR at >= ?2) ORDER BY seq LIMIT {limit}";

/// Events after `after_seq` (at or after `since`), oldest first, at most `limit`.
pub fn events(conn: &Connection, after_seq: i64, since: Option<DateTime<Utc>>, limit: u32) -> StoreResult<Vec<AuditEvent>> {
    let mut stmt = conn.prepare_cached(&EVENTS_QUERY.replace("{limit}", &limit.to_string()))?;
    all(stmt.query(params![after_seq, since.map(timestamp)])?, event)
}

/// The log must hold its latest signed checkpoint, and the one the marker
/// kept (which checkpoint rows deleted from the database cannot lower):
/// each signed with this broker's key, each event there with the hash
/// signed. Events cut from its end, or rewritten, while the broker was down
/// stop it from starting (and from signing a shorter log as if it were
/// whole). Returns the database's latest checkpoint.
pub fn check_tail(
    conn: &Connection,
    key: &ed25519_dalek::VerifyingKey,
    kept: Option<&Checkpoint>,
    marker: &Path,
) -> StoreResult<Option<Checkpoint>> {
    let latest = latest_checkpoint(conn)?;
    if let Some(cp) = &latest {
        cp.verify(key).map_err(|_| {
            StoreError::Corrupt(format!(
                "the audit log's latest checkpoint (event {}) is not signed with this broker's key: the log was rewritten",
                cp.seq
            ))
        })?;
        holds_checkpoint(conn, cp)?;
    }
    if let Some(kept) = kept {
        kept.verify(key)
            .map_err(|_| StoreError::Corrupt(format!("{} holds a checkpoint not signed with this broker's key", marker.display())))?;
        if latest.as_ref().is_none_or(|l| l.seq < kept.seq) {
            return Err(StoreError::Corrupt(format!(
                "the broker signed at {} that the audit log reached event {} (kept in {}), but the database's signed checkpoints end {}: checkpoints were deleted",
                kept.at,
                kept.seq,
                marker.display(),
                latest.map(|l| format!("at event {}", l.seq)).unwrap_or_else(|| "before any".into())
            )));
        }
        holds_checkpoint(conn, kept)?;
    }
    Ok(latest)
}

/// Whether the event `cp` signs is in the log with the hash signed.
fn holds_checkpoint(conn: &Connection, cp: &Checkpoint) -> StoreResult<()> {
    let signed: Option<String> = conn.query_row("SELECT hash FROM audit_events WHERE seq = ?", [cp.seq], |r| r.get(0)).optional()?;
    match signed {
        Some(hash) if hash == cp.hash => Ok(()),
        Some(_) => {
            Err(StoreError::Corrupt(format!("audit event {} is not the one the broker signed at {}: the log was rewritten", cp.seq, cp.at)))
        }
        None => {
            let head = read_head(conn)?;
            Err(StoreError::Corrupt(format!(
                "the audit log ends at event {} but the broker signed at {} that it reached event {}: events were removed from its end",
                head.seq, cp.at, cp.seq
            )))
        }
    }
}
