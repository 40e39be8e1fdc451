//! Grants on PostgreSQL and what hangs off them: their rows, listing and
//! revoking them, the reaper's queue (ends and starts at a host, with
//! retries), the credentials minted at a host (sealed) and at the gateway
//! (hashes). Every change is a conditional `UPDATE`, which PostgreSQL
//! re-checks after waiting for a row another replica holds, so two replicas
//! never both end, revoke or start the same grant.

use chrono::{DateTime, Utc};
use ed25519_dalek::SigningKey;
use tokio_postgres::Row;

use super::audit::append;
use super::db::{Filters, Sql, error, get, parsed, stored};
use super::feed::announce;
use crate::domain::audit::NewEvent;
use crate::domain::records::{
    EndFailure, FailingEnd, GrantRecord, HostPhase, HostToken, NewCredential, NewHostToken, Page, RequestRecord, Supersede,
};
use crate::domain::token::TokenHash;
use crate::store::rows::{scope, stored_networks, terms};
use crate::store::{Change, StoreError, StoreResult};

/// A row of `grants` (selected with `*`).
pub fn grant(r: &Row) -> StoreResult<GrantRecord> {
    Ok(GrantRecord {
        id: get(r, "id")?,
        request_id: get(r, "request_id")?,
        user_id: get(r, "user_id")?,
        user: get(r, "user")?,
        repo: get(r, "repo")?,
        level: parsed("level", get(r, "level")?)?,
        rule: get(r, "rule")?,
        refs: scope(get(r, "refs")?)?,
        terms: terms(get(r, "from_networks")?, get(r, "allow_deletes")?)?,
        granted_at: get(r, "granted_at")?,
        expires_at: get(r, "expires_at")?,
        revoked_at: get(r, "revoked_at")?,
        revoked_by: get(r, "revoked_by")?,
        ended_at: get(r, "ended_at")?,
    })
}

fn grants(rows: &[Row]) -> StoreResult<Vec<GrantRecord>> {
    rows.iter().map(grant).collect()
}

pub async fn load(c: &impl Sql, id: i64) -> StoreResult<Option<GrantRecord>> {
    let row = c.query_opt("SELECT * FROM grants WHERE id = $1", &[&id]).await.map_err(error)?;
    row.as_ref().map(grant).transpose()
}

/// Grants of `user_id` (all when `None`), live at `live_at` if given, newest first.
pub async fn list(c: &impl Sql, user_id: Option<i64>, live_at: Option<DateTime<Utc>>, page: Page) -> StoreResult<Vec<GrantRecord>> {
    let mut filters = Filters::default();
    filters.when("user_id = $", user_id).when("revoked_at IS NULL AND expires_at > $", live_at.map(stored)).when("id < $", page.before);
    let sql = filters.sql("SELECT * FROM grants WHERE {filters} ORDER BY id DESC LIMIT {limit}", page.limit);
    grants(&c.query(&sql, &filters.params()).await.map_err(error)?)
}

/// Writes the grant of approved request `req` for `window`; returns its id.
pub async fn insert(tx: &impl Sql, req: &RequestRecord, window: (DateTime<Utc>, DateTime<Utc>)) -> StoreResult<i64> {
    let row = tx
        .query_one(
            "INSERT INTO grants (request_id, user_id, \"user\", repo, level, rule, refs, from_networks, allow_deletes, granted_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
            &[
                &req.id,
                &req.requester_id,
                &req.requester,
                &req.repo,
                &req.level.as_str(),
                &req.rule,
                &req.refs.to_stored(),
                &req.terms.as_ref().map(stored_networks),
                &req.terms.as_ref().map(|t| t.allow_deletes),
                &stored(window.0),
                &stored(window.1),
            ],
        )
        .await
        .map_err(error)?;
    get(&row, "id")
}

/// Ends each superseded grant still live at `at`, with its event, and has
/// the grant `by` that covers it join its lineage, so the credentials it
/// minted answer to `by` (see the SQLite store's `supersede` for why).
/// Returns the events of the grants it ended.
pub async fn supersede(tx: &impl Sql, superseded: Vec<Supersede>, by: i64, at: DateTime<Utc>) -> StoreResult<Vec<NewEvent>> {
    let when = stored(at);
    let mut ended_events = Vec::new();
    let mut joined: Option<i64> = None;
    for Supersede { grant_id: id, event, ended } in superseded {
        let row = tx
            .query_opt(
                "UPDATE grants SET revoked_at = $1, revoked_by = $2, ended_at = $3
                 WHERE id = $4 AND revoked_at IS NULL AND expires_at > $1 RETURNING COALESCE(lineage, id) AS lineage",
                &[&when, &event.actor, &ended.then_some(when), &id],
            )
            .await
            .map_err(error)?;
        let Some(row) = row else { continue };
        let lineage: i64 = get(&row, "lineage")?;
        match joined {
            None => {
                tx.execute("UPDATE grants SET lineage = $1 WHERE id = $2", &[&lineage, &by]).await.map_err(error)?;
                joined = Some(lineage);
            }
            // Two lineages meet (a grant covering two): the second joins the
            // first. (Two live grants are never of one lineage: joining it
            // ends the grant joined.)
            Some(into) => {
                tx.execute("UPDATE grants SET lineage = $1 WHERE lineage = $2 OR id = $2", &[&into, &lineage]).await.map_err(error)?;
            }
        }
        ended_events.push(event);
    }
    Ok(ended_events)
}

/// Revokes grant `id` if it is still live at `at`.
pub async fn revoke(tx: &impl Sql, key: &SigningKey, id: i64, by: &str, at: DateTime<Utc>, event: NewEvent) -> StoreResult<GrantRecord> {
    let row = tx
        .query_opt(
            "UPDATE grants SET revoked_at = $1, revoked_by = $2 WHERE id = $3 AND revoked_at IS NULL AND expires_at > $1 RETURNING *",
            &[&stored(at), &by, &id],
        )
        .await
        .map_err(error)?;
    let Some(row) = row else {
        let exists = load(tx, id).await?.is_some();
        return Err(if exists { StoreError::Conflict } else { StoreError::NotFound(format!("grant {id}")) });
    };
    announce(tx, &Change::Grants).await?;
    append(tx, key, &[event], at).await?;
    grant(&row)
}

/// Ended grants (expired by `now` or revoked) whose provider was not yet told, due for an attempt.
pub async fn to_end(c: &impl Sql, now: DateTime<Utc>) -> StoreResult<Vec<GrantRecord>> {
    let rows = c
        .query(
            "SELECT * FROM grants WHERE ended_at IS NULL AND (revoked_at IS NOT NULL OR expires_at <= $1)
                 AND (end_retry_at IS NULL OR end_retry_at <= $1) ORDER BY expires_at, id",
            &[&stored(now)],
        )
        .await
        .map_err(error)?;
    grants(&rows)
}

/// See [`crate::store::Store::mark_grant_ended`].
pub async fn mark_ended(
    tx: &impl Sql,
    key: &SigningKey,
    id: i64,
    at: DateTime<Utc>,
    revoked: &[i64],
    released: &[String],
    events: Vec<NewEvent>,
) -> StoreResult<bool> {
    // The grant's row first: another replica ending it waits here, then finds it ended.
    let row = tx.query_opt("SELECT ended_at FROM grants WHERE id = $1 FOR UPDATE", &[&id]).await.map_err(error)?;
    let ended = match &row {
        Some(r) => get::<Option<DateTime<Utc>>>(r, "ended_at")?.is_some(),
        None => true,
    };
    tx.execute("DELETE FROM host_tokens WHERE grant_id = $1 AND id = ANY($2)", &[&id, &revoked]).await.map_err(error)?;
    let left = tx.query_one("SELECT COUNT(*) AS n FROM host_tokens WHERE grant_id = $1", &[&id]).await.map_err(error)?;
    if ended || get::<i64>(&left, "n")? > 0 {
        return Ok(false);
    }
    tx.execute("UPDATE grants SET ended_at = $1, end_retry_at = NULL WHERE id = $2", &[&stored(at), &id]).await.map_err(error)?;
    // The newest grant of a lineage takes its credentials with it; an older
    // one (superseded) leaves them to the grant they answer to now.
    let lineage = tx
        .query_one(
            "SELECT COALESCE(e.lineage, e.id) AS lineage,
                    NOT EXISTS (SELECT 1 FROM grants n WHERE n.lineage = COALESCE(e.lineage, e.id) AND n.id > e.id) AS newest
             FROM grants e WHERE e.id = $1",
            &[&id],
        )
        .await
        .map_err(error)?;
    if get::<bool>(&lineage, "newest")? {
        let lineage: i64 = get(&lineage, "lineage")?;
        tx.execute("DELETE FROM credentials WHERE grant_id IN (SELECT id FROM grants WHERE id = $1 OR lineage = $1)", &[&lineage])
            .await
            .map_err(error)?;
    }
    for key in released {
        tx.execute(
            "UPDATE grants SET host_started_at = NULL, start_retry_at = NULL
                 WHERE ended_at IS NULL AND id IN (SELECT grant_id FROM host_tokens WHERE shared_key = $1)",
            &[key],
        )
        .await
        .map_err(error)?;
        tx.execute("DELETE FROM host_tokens WHERE shared_key = $1", &[key]).await.map_err(error)?;
    }
    append(tx, key, &events, at).await?;
    Ok(true)
}

/// See [`crate::store::Store::claim_grant`]: the `UPDATE` waits for a
/// claim another broker is writing, then re-checks it.
pub async fn claim(tx: &impl Sql, id: i64, holder: &str, now: DateTime<Utc>, until: DateTime<Utc>) -> StoreResult<bool> {
    let done = tx
        .execute(
            "UPDATE grants SET claimed_by = $1, claimed_until = $2
             WHERE id = $3 AND ended_at IS NULL AND (claimed_until IS NULL OR claimed_until <= $4 OR claimed_by = $1)",
            &[&holder, &stored(until), &id, &stored(now)],
        )
        .await
        .map_err(error)?;
    Ok(done == 1)
}

pub async fn host_failures(c: &impl Sql, id: i64, phase: HostPhase) -> StoreResult<u32> {
    let sql = match phase {
        HostPhase::Start => "SELECT start_failures AS n FROM grants WHERE id = $1",
        HostPhase::End => "SELECT end_failures AS n FROM grants WHERE id = $1",
    };
    let row = c.query_opt(sql, &[&id]).await.map_err(error)?.ok_or_else(|| StoreError::NotFound(format!("grant {id}")))?;
    Ok(u32::try_from(get::<i32>(&row, "n")?).unwrap_or(0))
}

/// See [`crate::store::Store::record_host_failure`].
pub async fn record_host_failure(
    tx: &impl Sql,
    key: &SigningKey,
    id: i64,
    phase: HostPhase,
    revoked: &[i64],
    failure: &EndFailure,
    event: NewEvent,
) -> StoreResult<()> {
    tx.execute("DELETE FROM host_tokens WHERE grant_id = $1 AND id = ANY($2)", &[&id, &revoked]).await.map_err(error)?;
    let retry_at = stored(failure.retry_at);
    let done = match phase {
        HostPhase::Start => tx
            .execute(
                "UPDATE grants SET start_failures = start_failures + 1, start_retry_at = $1, claimed_until = NULL
                 WHERE id = $2 AND ended_at IS NULL",
                &[&retry_at, &id],
            )
            .await
            .map_err(error)?,
        HostPhase::End => tx
            .execute(
                "UPDATE grants SET end_failures = end_failures + 1, end_retry_at = $1, end_error = $2, claimed_until = NULL
                 WHERE id = $3 AND ended_at IS NULL",
                &[&retry_at, &failure.error, &id],
            )
            .await
            .map_err(error)?,
    };
    if done == 0 {
        return Err(StoreError::Conflict);
    }
    append(tx, key, &[event], failure.at).await
}

/// Live grants on `repos` not yet given their access at the host, due for an attempt.
pub async fn to_start(c: &impl Sql, repos: &[String], now: DateTime<Utc>) -> StoreResult<Vec<GrantRecord>> {
    if repos.is_empty() {
        return Ok(Vec::new());
    }
    let rows = c
        .query(
            "SELECT * FROM grants WHERE host_started_at IS NULL AND ended_at IS NULL AND revoked_at IS NULL AND expires_at > $1
                 AND (start_retry_at IS NULL OR start_retry_at <= $1) AND repo = ANY($2) ORDER BY id",
            &[&stored(now), &repos],
        )
        .await
        .map_err(error)?;
    grants(&rows)
}

pub async fn mark_started(
    tx: &impl Sql,
    key: &SigningKey,
    id: i64,
    at: DateTime<Utc>,
    held: Option<&NewHostToken>,
    event: NewEvent,
) -> StoreResult<()> {
    let done = tx
        .execute(
            "UPDATE grants SET host_started_at = $1, start_retry_at = NULL, claimed_until = NULL WHERE id = $2 AND ended_at IS NULL",
            &[&stored(at), &id],
        )
        .await
        .map_err(error)?;
    if done == 0 {
        return Err(StoreError::Conflict);
    }
    if let Some(held) = held {
        insert_host_token(tx, held).await?;
    }
    append(tx, key, &[event], at).await
}

fn host_token(r: &Row) -> StoreResult<HostToken> {
    Ok(HostToken { id: get(r, "id")?, grant_id: get(r, "grant_id")?, sealed: get(r, "sealed")?, shared_key: get(r, "shared_key")? })
}

pub async fn holder_of(c: &impl Sql, key: &str, except: i64) -> StoreResult<Option<HostToken>> {
    let row = c
        .query_opt(
            "SELECT t.id, t.grant_id, t.sealed, t.shared_key FROM host_tokens t JOIN grants g ON g.id = t.grant_id
                 WHERE t.shared_key = $1 AND t.grant_id != $2 AND g.ended_at IS NULL ORDER BY t.id LIMIT 1",
            &[&key, &except],
        )
        .await
        .map_err(error)?;
    row.as_ref().map(host_token).transpose()
}

pub async fn failing_ends(c: &impl Sql) -> StoreResult<Vec<FailingEnd>> {
    let rows =
        c.query("SELECT * FROM grants WHERE ended_at IS NULL AND end_failures > 0 ORDER BY expires_at, id", &[]).await.map_err(error)?;
    rows.iter()
        .map(|r| {
            Ok(FailingEnd {
                failures: u32::try_from(get::<i32>(r, "end_failures")?).unwrap_or(0),
                error: get::<Option<String>>(r, "end_error")?.unwrap_or_default(),
                retry_at: get::<Option<DateTime<Utc>>>(r, "end_retry_at")?.unwrap_or_default(),
                grant: grant(r)?,
            })
        })
        .collect()
}

/// The earliest end (or retry) of a grant not yet ended: its end, or its
/// next attempt at the host (to end it, or to give it its access).
pub async fn next_expiry(c: &impl Sql) -> StoreResult<Option<DateTime<Utc>>> {
    let row = c
        .query_one(
            "SELECT MIN(LEAST(COALESCE(end_retry_at, expires_at), COALESCE(start_retry_at, end_retry_at, expires_at))) AS t
             FROM grants WHERE ended_at IS NULL",
            &[],
        )
        .await
        .map_err(error)?;
    get(&row, "t")
}

async fn insert_host_token(tx: &impl Sql, token: &NewHostToken) -> StoreResult<()> {
    tx.execute(
        "INSERT INTO host_tokens (grant_id, sealed, created_at, expires_at, shared_key) VALUES ($1, $2, $3, $4, $5)",
        &[&token.grant_id, &token.sealed, &stored(token.created_at), &stored(token.expires_at), &token.shared_key],
    )
    .await
    .map_err(error)?;
    Ok(())
}

/// Records a host credential if its grant is live when it was made (the
/// grant's row held, so a revocation on another replica waits for it or wins).
pub async fn add_host_token(tx: &impl Sql, key: &SigningKey, token: &NewHostToken, event: NewEvent) -> StoreResult<()> {
    let live = tx
        .query_opt(
            "SELECT id FROM grants WHERE id = $1 AND ended_at IS NULL AND revoked_at IS NULL AND expires_at > $2 FOR UPDATE",
            &[&token.grant_id, &stored(token.created_at)],
        )
        .await
        .map_err(error)?;
    if live.is_none() {
        return Err(StoreError::Conflict);
    }
    insert_host_token(tx, token).await?;
    append(tx, key, &[event], token.created_at).await
}

pub async fn host_tokens(c: &impl Sql, grant_id: i64) -> StoreResult<Vec<HostToken>> {
    let rows = c
        .query("SELECT id, grant_id, sealed, shared_key FROM host_tokens WHERE grant_id = $1 ORDER BY id", &[&grant_id])
        .await
        .map_err(error)?;
    rows.iter().map(host_token).collect()
}

pub async fn add_credential(tx: &impl Sql, key: &SigningKey, credential: &NewCredential, event: NewEvent) -> StoreResult<()> {
    tx.execute(
        "INSERT INTO credentials (hash, grant_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        &[&credential.hash.0, &credential.grant_id, &stored(credential.created_at), &stored(credential.expires_at)],
    )
    .await
    .map_err(error)?;
    append(tx, key, &[event], credential.created_at).await
}

/// The grant a credential answers to (the newest of its minting grant's
/// lineage), if the credential exists, has not expired at `now`, and its
/// user was not removed.
pub async fn by_credential(c: &impl Sql, hash: &TokenHash, now: DateTime<Utc>) -> StoreResult<Option<GrantRecord>> {
    let row = c
        .query_opt(
            "SELECT g.* FROM credentials c JOIN grants m ON m.id = c.grant_id
                 JOIN grants g ON g.id = COALESCE((SELECT MAX(n.id) FROM grants n WHERE n.lineage = COALESCE(m.lineage, m.id)), m.id)
                 JOIN users u ON u.id = g.user_id
                 WHERE c.hash = $1 AND c.expires_at > $2 AND u.removed_at IS NULL",
            &[&hash.0, &stored(now)],
        )
        .await
        .map_err(error)?;
    row.as_ref().map(grant).transpose()
}
