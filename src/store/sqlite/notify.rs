//! Notification progress: per destination, how far along the audit log
//! (the outbox) it is delivered, and the failures of the event it is on.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, Row, params};

use super::audit::append;
use super::db::{all, ms, time};
use crate::domain::audit::NewEvent;
use crate::domain::records::NotifyProgress;
use crate::store::StoreResult;
use crate::store::chain::Chain;

fn progress(r: &Row) -> StoreResult<NotifyProgress> {
    let opt_time = |v: Option<i64>| v.map(time).transpose();
    Ok(NotifyProgress {
        destination: r.get("destination")?,
        delivered_seq: r.get("delivered_seq")?,
        failures: r.get::<_, i64>("failures")?.max(0) as u32,
        first_failed_at: opt_time(r.get("first_failed_at")?)?,
        last_error: r.get("last_error")?,
        next_attempt_at: opt_time(r.get("next_attempt_at")?)?,
        given_up: r.get::<_, i64>("given_up")?.max(0) as u64,
    })
}

/// Destinations not yet known start at the log's head: a new destination
/// gets what happens from now on, not the history.
pub fn start(conn: &Connection, destinations: &[String]) -> StoreResult<()> {
    let head: i64 = conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM audit_events", [], |r| r.get(0))?;
    let mut insert = conn.prepare_cached("INSERT OR IGNORE INTO notify_progress (destination, delivered_seq) VALUES (?, ?)")?;
    for d in destinations {
        insert.execute(params![d, head])?;
    }
    Ok(())
}

pub fn list(conn: &Connection) -> StoreResult<Vec<NotifyProgress>> {
    let mut stmt = conn.prepare_cached("SELECT * FROM notify_progress ORDER BY destination")?;
    all(stmt.query([])?, progress)
}

/// Everything up to `seq` is done for `destination` (delivered or not wanted).
pub fn delivered(conn: &Connection, destination: &str, seq: i64) -> StoreResult<()> {
    conn.execute(
        "UPDATE notify_progress SET delivered_seq = MAX(delivered_seq, ?), failures = 0, first_failed_at = NULL,
         last_error = NULL, next_attempt_at = NULL WHERE destination = ?",
        params![seq, destination],
    )?;
    Ok(())
}

/// One more failed attempt at the next event; tried again at `next_attempt_at`.
pub fn failed(
    conn: &Connection,
    destination: &str,
    failures: u32,
    first_failed_at: DateTime<Utc>,
    error: &str,
    next_attempt_at: DateTime<Utc>,
) -> StoreResult<()> {
    conn.execute(
        "UPDATE notify_progress SET failures = ?, first_failed_at = ?, last_error = ?, next_attempt_at = ? WHERE destination = ?",
        params![failures, ms(first_failed_at), error, ms(next_attempt_at), destination],
    )?;
    Ok(())
}

/// Event `seq` is given up on for `destination`, with its audit event.
pub fn gave_up(
    conn: &Connection,
    chain: &mut Chain,
    destination: &str,
    seq: i64,
    error: &str,
    event: NewEvent,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    conn.execute(
        "UPDATE notify_progress SET delivered_seq = MAX(delivered_seq, ?), failures = 0, first_failed_at = NULL,
         last_error = ?, next_attempt_at = NULL, given_up = given_up + 1 WHERE destination = ?",
        params![seq, error, destination],
    )?;
    append(conn, chain, &[event], at)
}
