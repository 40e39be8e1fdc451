//! The audit log's SQL on PostgreSQL: appending linked events under a lock
//! that every replica takes, a signed checkpoint with every append, reading
//! the log back, and the start-up check that its tail is the one signed.

use chrono::{DateTime, Utc};
use ed25519_dalek::SigningKey;
use tokio_postgres::Row;

use super::db::{Sql, error, get};
use crate::domain::audit::{AuditEvent, Checkpoint, NewEvent, timestamp};
use crate::store::chain::{Chain, ChainHead};
use crate::store::{StoreError, StoreResult};

/// The advisory lock that serialises appends across every replica: held
/// from the moment a transaction appends until it commits or rolls back, so
/// the head it read is still the head when its events land.
const APPEND_LOCK: i64 = 0x6a69_745f_6175_6474; // "jit_audt"

/// Appends `events` to the chain inside `tx` (always its last statement, so
/// the lock is held only for the append and the commit), with a signed
/// checkpoint of the new head.
pub async fn append(tx: &impl Sql, key: &SigningKey, events: &[NewEvent], at: DateTime<Utc>) -> StoreResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&APPEND_LOCK]).await.map_err(error)?;
    let head = read_head(tx).await?;
    let mut chain = Chain::new(key.clone());
    for e in chain.link(head, events, at) {
        tx.execute(
            "INSERT INTO audit_events (seq, at, actor, action, request_id, grant_id, repo, level, detail, prev_hash, hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            &[&e.seq, &e.at, &e.actor, &e.action, &e.request_id, &e.grant_id, &e.repo, &e.level, &e.detail, &e.prev_hash, &e.hash],
        )
        .await
        .map_err(error)?;
    }
    let cp = chain.checkpoint_since(&None).expect("events were linked");
    tx.execute(
        "INSERT INTO audit_checkpoints (seq, hash, at, signature) VALUES ($1, $2, $3, $4)",
        &[&cp.seq, &cp.hash, &cp.at, &cp.signature],
    )
    .await
    .map_err(error)?;
    Ok(())
}

async fn read_head(client: &impl Sql) -> StoreResult<ChainHead> {
    let row = client.query_opt("SELECT seq, hash, at FROM audit_events ORDER BY seq DESC LIMIT 1", &[]).await.map_err(error)?;
    match row {
        Some(r) => Ok(ChainHead { seq: get(&r, "seq")?, hash: get(&r, "hash")?, at: get(&r, "at")? }),
        None => Ok(ChainHead::genesis()),
    }
}

pub async fn latest_checkpoint(client: &impl Sql) -> StoreResult<Option<Checkpoint>> {
    let row =
        client.query_opt("SELECT seq, hash, at, signature FROM audit_checkpoints ORDER BY seq DESC LIMIT 1", &[]).await.map_err(error)?;
    row.map(|r| Ok(Checkpoint { seq: get(&r, "seq")?, hash: get(&r, "hash")?, at: get(&r, "at")?, signature: get(&r, "signature")? }))
        .transpose()
}

/// The first checkpoint at or after event `seq`.
pub async fn checkpoint_covering(client: &impl Sql, seq: i64) -> StoreResult<Option<Checkpoint>> {
    let row = client
        .query_opt("SELECT seq, hash, at, signature FROM audit_checkpoints WHERE seq >= $1 ORDER BY seq LIMIT 1", &[&seq])
        .await
        .map_err(error)?;
    row.map(|r| Ok(Checkpoint { seq: get(&r, "seq")?, hash: get(&r, "hash")?, at: get(&r, "at")?, signature: get(&r, "signature")? }))
        .transpose()
}

/// One grant's events, by the grant's id or its request's.
pub async fn grant_events(client: &impl Sql, grant_id: i64, request_id: i64) -> StoreResult<Vec<AuditEvent>> {
    let rows = client
        .query(
            "SELECT * FROM audit_events WHERE grant_id = $1 UNION SELECT * FROM audit_events WHERE request_id = $2 ORDER BY seq",
            &[&grant_id, &request_id],
        )
        .await
        .map_err(error)?;
    rows.iter().map(event).collect()
}

fn event(r: &Row) -> StoreResult<AuditEvent> {
    Ok(AuditEvent {
        seq: get(r, "seq")?,
        at: get(r, "at")?,
        actor: get(r, "actor")?,
        action: get(r, "action")?,
        request_id: get(r, "request_id")?,
        grant_id: get(r, "grant_id")?,
        repo: get(r, "repo")?,
        level: get(r, "level")?,
        detail: get(r, "detail")?,
        prev_hash: get(r, "prev_hash")?,
        hash: get(r, "hash")?,
    })
}

/// Events after `after_seq` (at or after `since`), oldest first, at most
/// `limit`; `at` is fixed-width RFC 3339 in UTC, so text order is time order.
pub async fn events(client: &impl Sql, after_seq: i64, since: Option<DateTime<Utc>>, limit: u32) -> StoreResult<Vec<AuditEvent>> {
    let rows = client
        .query(
            "SELECT * FROM audit_events WHERE seq > $1 AND ($2::text IS NULL OR at >= $2) ORDER BY seq LIMIT $3",
            &[&after_seq, &since.map(timestamp), &i64::from(limit)],
        )
        .await
        .map_err(error)?;
    rows.iter().map(event).collect()
}

/// The log must hold its latest signed checkpoint, signed with this
/// broker's key, and the event it signs with the hash signed: events cut
/// from its end, or rewritten, stop the broker from starting (and from
/// signing a shorter log as if it were whole). Every replica checks it.
pub async fn check_tail(client: &impl Sql, key: &ed25519_dalek::VerifyingKey) -> StoreResult<()> {
    let Some(cp) = latest_checkpoint(client).await? else {
        let head = read_head(client).await?;
        if head.seq > 0 {
            return Err(StoreError::Corrupt(format!(
                "the audit log holds {} events but no signed checkpoint: the checkpoints were deleted",
                head.seq
            )));
        }
        return Ok(());
    };
    cp.verify(key).map_err(|_| {
        StoreError::Corrupt(format!(
            "the audit log's latest checkpoint (event {}) is not signed with this broker's key: the log was rewritten, \
             or this replica's audit_key_file is not the one the others use",
            cp.seq
        ))
    })?;
    let signed = client.query_opt("SELECT hash FROM audit_events WHERE seq = $1", &[&cp.seq]).await.map_err(error)?;
    match signed {
        Some(r) if get::<String>(&r, "hash")? == cp.hash => Ok(()),
        Some(_) => {
            Err(StoreError::Corrupt(format!("audit event {} is not the one the broker signed at {}: the log was rewritten", cp.seq, cp.at)))
        }
        None => {
            let head = read_head(client).await?;
            Err(StoreError::Corrupt(format!(
                "the audit log ends at event {} but the broker signed at {} that it reached event {}: events were removed from its end",
                head.seq, cp.at, cp.seq
            )))
        }
    }
}
