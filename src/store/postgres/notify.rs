//! Notification progress on PostgreSQL: per destination, how far along the
//! audit log (the outbox) it is delivered, and the failures of the event it is on.

use chrono::{DateTime, Utc};
use ed25519_dalek::SigningKey;
use tokio_postgres::Row;

use super::audit::append;
use super::db::{Sql, error, get, stored};
use crate::domain::audit::NewEvent;
use crate::domain::records::NotifyProgress;
use crate::store::StoreResult;

fn progress(r: &Row) -> StoreResult<NotifyProgress> {
    Ok(NotifyProgress {
        destination: get(r, "destination")?,
        delivered_seq: get(r, "delivered_seq")?,
        failures: u32::try_from(get::<i32>(r, "failures")?).unwrap_or(0),
        first_failed_at: get(r, "first_failed_at")?,
        last_error: get(r, "last_error")?,
        next_attempt_at: get(r, "next_attempt_at")?,
        given_up: u64::try_from(get::<i64>(r, "given_up")?).unwrap_or(0),
    })
}

/// Destinations not yet known start at the log's head: a new destination
/// gets what happens from now on, not the history.
pub async fn start(tx: &impl Sql, destinations: &[String]) -> StoreResult<()> {
    tx.execute(
        "INSERT INTO notify_progress (destination, delivered_seq)
         SELECT d, (SELECT COALESCE(MAX(seq), 0) FROM audit_events) FROM UNNEST($1::text[]) AS d
         ON CONFLICT (destination) DO NOTHING",
        &[&destinations],
    )
    .await
    .map_err(error)?;
    Ok(())
}

pub async fn list(c: &impl Sql) -> StoreResult<Vec<NotifyProgress>> {
    let rows = c.query("SELECT * FROM notify_progress ORDER BY destination", &[]).await.map_err(error)?;
    rows.iter().map(progress).collect()
}

/// Everything up to `seq` is done for `destination` (delivered or not wanted).
pub async fn delivered(tx: &impl Sql, destination: &str, seq: i64) -> StoreResult<()> {
    tx.execute(
        "UPDATE notify_progress SET delivered_seq = GREATEST(delivered_seq, $1), failures = 0, first_failed_at = NULL,
         last_error = NULL, next_attempt_at = NULL WHERE destination = $2",
        &[&seq, &destination],
    )
    .await
    .map_err(error)?;
    Ok(())
}

/// One more failed attempt at the next event; tried again at `next_attempt_at`.
pub async fn failed(
    tx: &impl Sql,
    destination: &str,
    failures: u32,
    first_failed_at: DateTime<Utc>,
    error_text: &str,
    next_attempt_at: DateTime<Utc>,
) -> StoreResult<()> {
    tx.execute(
        "UPDATE notify_progress SET failures = $1, first_failed_at = $2, last_error = $3, next_attempt_at = $4 WHERE destination = $5",
        &[&i32::try_from(failures).unwrap_or(i32::MAX), &stored(first_failed_at), &error_text, &stored(next_attempt_at), &destination],
    )
    .await
    .map_err(error)?;
    Ok(())
}

/// Event `seq` is given up on for `destination`, with its audit event.
pub async fn gave_up(
    tx: &impl Sql,
    key: &SigningKey,
    destination: &str,
    seq: i64,
    error_text: &str,
    event: NewEvent,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    tx.execute(
        "UPDATE notify_progress SET delivered_seq = GREATEST(delivered_seq, $1), failures = 0, first_failed_at = NULL,
         last_error = $2, next_attempt_at = NULL, given_up = given_up + 1 WHERE destination = $3",
        &[&seq, &error_text, &destination],
    )
    .await
    .map_err(error)?;
    append(tx, key, &[event], at).await
}
