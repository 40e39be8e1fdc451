//! Grants and what hangs off them: their rows, listing and revoking them,
//! the reaper's queue (ends and starts at a host, with retries), the
//! credentials minted at a host (sealed) and at the gateway (hashes).

use chrono::{DateTime, Utc};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};

use super::audit::append;
use super::db::{Filters, all, first, ms, opt_time, parsed, time};
use crate::domain::audit::NewEvent;
use crate::domain::records::{
    EndFailure, FailingEnd, GrantRecord, HostPhase, HostToken, NewCredential, NewHostToken, Page, RequestRecord, Supersede, Terms,
};
use crate::domain::token::TokenHash;
use crate::store::chain::Chain;
use crate::store::rows::{self, scope, stored_networks};
use crate::store::{StoreError, StoreResult};

/// Stored terms (SQLite keeps `allow_deletes` as 0 or 1).
pub fn terms(from_networks: Option<String>, allow_deletes: Option<i64>) -> StoreResult<Option<Terms>> {
    rows::terms(from_networks, allow_deletes.map(|d| d != 0))
}

/// A row of `grants` (selected with `*`).
pub fn grant(r: &Row) -> StoreResult<GrantRecord> {
    Ok(GrantRecord {
        id: r.get("id")?,
        request_id: r.get("request_id")?,
        user_id: r.get("user_id")?,
        user: r.get("user")?,
        repo: r.get("repo")?,
        level: parsed("level", &r.get::<_, String>("level")?)?,
        rule: r.get("rule")?,
        refs: scope(r.get("refs")?)?,
        terms: terms(r.get("from_networks")?, r.get("allow_deletes")?)?,
        granted_at: time(r.get("granted_at")?)?,
        expires_at: time(r.get("expires_at")?)?,
        revoked_at: opt_time(r.get("revoked_at")?)?,
        revoked_by: r.get("revoked_by")?,
        ended_at: opt_time(r.get("ended_at")?)?,
    })
}

pub fn load(conn: &Connection, id: i64) -> StoreResult<Option<GrantRecord>> {
    let mut stmt = conn.prepare_cached("SELECT * FROM grants WHERE id = ?")?;
    first(stmt.query([id])?, grant)
}

/// A page of grants ([`Filters`] writes in the filters and the limit).
pub(super) const LIST_QUERY: &str = "SELECT * FROM grants WHERE {filters} ORDER BY id DESC LIMIT {limit}";

/// Grants of `user_id` (all when `None`), live at `live_at` if given, newest first.
pub fn list(conn: &Connection, user_id: Option<i64>, live_at: Option<DateTime<Utc>>, page: Page) -> StoreResult<Vec<GrantRecord>> {
    let mut filters = Filters::default();
    filters
        .when("user_id = ?", user_id.map(Value::Integer))
        .when("revoked_at IS NULL AND expires_at > ?", live_at.map(|t| Value::Integer(ms(t))))
        .when("id < ?", page.before.map(Value::Integer));
    let mut stmt = conn.prepare_cached(&filters.sql(LIST_QUERY, page.limit))?;
    all(stmt.query(params_from_iter(filters.values()))?, grant)
}

/// Writes the grant of approved request `req` for `window`; returns its id.
pub fn insert(conn: &Connection, req: &RequestRecord, window: (DateTime<Utc>, DateTime<Utc>)) -> StoreResult<i64> {
    let id = conn
        .prepare_cached(
            "INSERT INTO grants (request_id, user_id, user, repo, level, rule, refs, from_networks, allow_deletes, granted_at, expires_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )?
        .query_row(
            params![
                req.id,
                req.requester_id,
                req.requester,
                req.repo,
                req.level.as_str(),
                req.rule,
                req.refs.to_stored(),
                req.terms.as_ref().map(stored_networks),
                req.terms.as_ref().map(|t| i64::from(t.allow_deletes)),
                ms(window.0),
                ms(window.1)
            ],
            |r| r.get(0),
        )?;
    Ok(id)
}

/// Ends each superseded grant that is still live at `at`, with its event;
/// one that ended meanwhile is left as it is. The grant `by` that covers it
/// (same user and repo, a level at least as high, ending no earlier) joins
/// its lineage, so the gateway credentials it minted now answer to `by`
/// (each keeps its own expiry): a credential git already holds keeps
/// working, with the new level, instead of failing once before git asks for
/// another. One row is written however many credentials there are. Returns
/// the events of the grants it ended, for the caller's one append.
pub fn supersede(conn: &Connection, grants: Vec<Supersede>, by: i64, at: DateTime<Utc>) -> StoreResult<Vec<NewEvent>> {
    let mut ended_events = Vec::new();
    let mut joined: Option<i64> = None;
    for Supersede { grant_id: id, event, ended } in grants {
        let lineage: Option<i64> = conn
            .prepare_cached(
                "UPDATE grants SET revoked_at = ?, revoked_by = ?, ended_at = ? WHERE id = ? AND revoked_at IS NULL AND expires_at > ?
                 RETURNING COALESCE(lineage, id)",
            )?
            .query_row(params![ms(at), event.actor, ended.then(|| ms(at)), id, ms(at)], |r| r.get(0))
            .optional()?;
        // Expired ones stay where they are: nothing answers to them any more.
        let Some(lineage) = lineage else { continue };
        match joined {
            None => {
                conn.prepare_cached("UPDATE grants SET lineage = ? WHERE id = ?")?.execute(params![lineage, by])?;
                joined = Some(lineage);
            }
            // Two lineages meet (a grant covering two): the second joins the
            // first. (Two live grants are never of one lineage: joining it
            // ends the grant joined.)
            Some(into) => {
                conn.prepare_cached("UPDATE grants SET lineage = ? WHERE lineage = ? OR id = ?")?
                    .execute(params![into, lineage, lineage])?;
            }
        }
        ended_events.push(event);
    }
    Ok(ended_events)
}

/// A grant's lineage, and whether it is the newest grant of it.
const LINEAGE_OF: &str = "SELECT COALESCE(e.lineage, e.id),
        NOT EXISTS (SELECT 1 FROM grants n WHERE n.lineage = COALESCE(e.lineage, e.id) AND n.id > e.id)
     FROM grants e WHERE e.id = ?";

/// Revokes grant `id` if it is still live at `at`.
pub fn revoke(conn: &Connection, chain: &mut Chain, id: i64, by: &str, at: DateTime<Utc>, event: NewEvent) -> StoreResult<GrantRecord> {
    let done = conn.execute(
        "UPDATE grants SET revoked_at = ?, revoked_by = ? WHERE id = ? AND revoked_at IS NULL AND expires_at > ?",
        params![ms(at), by, id, ms(at)],
    )?;
    if done == 0 {
        let exists = load(conn, id)?.is_some();
        return Err(if exists { StoreError::Conflict } else { StoreError::NotFound(format!("grant {id}")) });
    }
    append(conn, chain, &[event], at)?;
    load(conn, id)?.ok_or_else(|| StoreError::NotFound(format!("grant {id}")))
}

/// Ended grants (expired by `now` or revoked) whose provider was not yet told, due for an attempt.
pub fn to_end(conn: &Connection, now: DateTime<Utc>) -> StoreResult<Vec<GrantRecord>> {
    let mut stmt = conn.prepare_cached(
        "SELECT * FROM grants WHERE ended_at IS NULL AND (revoked_at IS NOT NULL OR expires_at <= ?1)
             AND (end_retry_at IS NULL OR end_retry_at <= ?1) ORDER BY expires_at",
    )?;
    all(stmt.query([ms(now)])?, grant)
}

/// See [`crate::store::Store::mark_grant_ended`].
pub fn mark_ended(
    conn: &Connection,
    chain: &mut Chain,
    id: i64,
    at: DateTime<Utc>,
    revoked: &[i64],
    released: &[String],
    events: Vec<NewEvent>,
) -> StoreResult<bool> {
    delete_host_tokens(conn, id, revoked)?;
    let left: i64 = conn.query_row("SELECT COUNT(*) FROM host_tokens WHERE grant_id = ?", [id], |r| r.get(0))?;
    if left > 0 {
        return Ok(false);
    }
    let done =
        conn.execute("UPDATE grants SET ended_at = ?, end_retry_at = NULL WHERE id = ? AND ended_at IS NULL", params![ms(at), id])?;
    if done == 0 {
        return Ok(false);
    }
    // The newest grant of a lineage takes its credentials with it; an older
    // one (superseded) leaves them to the grant they answer to now.
    let (lineage, newest): (i64, bool) = conn.prepare_cached(LINEAGE_OF)?.query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    if newest {
        conn.prepare_cached("DELETE FROM credentials WHERE grant_id IN (SELECT id FROM grants WHERE id = ?1 OR lineage = ?1)")?
            .execute([lineage])?;
    }
    for key in released {
        conn.execute(
            "UPDATE grants SET host_started_at = NULL, start_retry_at = NULL
                 WHERE ended_at IS NULL AND id IN (SELECT grant_id FROM host_tokens WHERE shared_key = ?)",
            [key],
        )?;
        conn.execute("DELETE FROM host_tokens WHERE shared_key = ?", [key])?;
    }
    append(conn, chain, &events, at)?;
    Ok(true)
}

fn delete_host_tokens(conn: &Connection, grant_id: i64, ids: &[i64]) -> StoreResult<()> {
    let mut delete = conn.prepare_cached("DELETE FROM host_tokens WHERE id = ? AND grant_id = ?")?;
    for token in ids {
        delete.execute(params![token, grant_id])?;
    }
    Ok(())
}

/// See [`crate::store::Store::claim_grant`].
pub fn claim(conn: &Connection, id: i64, holder: &str, now: DateTime<Utc>, until: DateTime<Utc>) -> StoreResult<bool> {
    let done = conn.execute(
        "UPDATE grants SET claimed_by = ?1, claimed_until = ?2
         WHERE id = ?3 AND ended_at IS NULL AND (claimed_until IS NULL OR claimed_until <= ?4 OR claimed_by = ?1)",
        params![holder, ms(until), id, ms(now)],
    )?;
    Ok(done == 1)
}

pub fn host_failures(conn: &Connection, id: i64, phase: HostPhase) -> StoreResult<u32> {
    let sql = match phase {
        HostPhase::Start => "SELECT start_failures FROM grants WHERE id = ?",
        HostPhase::End => "SELECT end_failures FROM grants WHERE id = ?",
    };
    let failures: i64 = conn.query_row(sql, [id], |r| r.get(0)).optional()?.ok_or_else(|| StoreError::NotFound(format!("grant {id}")))?;
    Ok(u32::try_from(failures).unwrap_or(u32::MAX))
}

/// See [`crate::store::Store::record_host_failure`].
pub fn record_host_failure(
    conn: &Connection,
    chain: &mut Chain,
    id: i64,
    phase: HostPhase,
    revoked: &[i64],
    failure: &EndFailure,
    event: NewEvent,
) -> StoreResult<()> {
    delete_host_tokens(conn, id, revoked)?;
    let done = match phase {
        HostPhase::Start => conn.execute(
            "UPDATE grants SET start_failures = start_failures + 1, start_retry_at = ?, claimed_until = NULL WHERE id = ? AND ended_at IS NULL",
            params![ms(failure.retry_at), id],
        )?,
        HostPhase::End => conn.execute(
            "UPDATE grants SET end_failures = end_failures + 1, end_retry_at = ?, end_error = ?, claimed_until = NULL
             WHERE id = ? AND ended_at IS NULL",
            params![ms(failure.retry_at), failure.error, id],
        )?,
    };
    if done == 0 {
        return Err(StoreError::Conflict);
    }
    append(conn, chain, &[event], failure.at)
}

/// Live grants on `repos` not yet given their access at the host, due for an attempt.
pub fn to_start(conn: &Connection, repos: &[String], now: DateTime<Utc>) -> StoreResult<Vec<GrantRecord>> {
    if repos.is_empty() {
        return Ok(Vec::new());
    }
    let places = vec!["?"; repos.len()].join(", ");
    let sql = format!(
        "SELECT * FROM grants WHERE host_started_at IS NULL AND ended_at IS NULL AND revoked_at IS NULL AND expires_at > ?1
             AND (start_retry_at IS NULL OR start_retry_at <= ?1) AND repo IN ({places}) ORDER BY id"
    );
    let mut stmt = conn.prepare(&sql)?;
    let values = std::iter::once(Value::Integer(ms(now))).chain(repos.iter().map(|r| Value::Text(r.clone())));
    all(stmt.query(params_from_iter(values))?, grant)
}

pub fn mark_started(
    conn: &Connection,
    chain: &mut Chain,
    id: i64,
    at: DateTime<Utc>,
    held: Option<&NewHostToken>,
    event: NewEvent,
) -> StoreResult<()> {
    let done = conn.execute(
        "UPDATE grants SET host_started_at = ?, start_retry_at = NULL, claimed_until = NULL WHERE id = ? AND ended_at IS NULL",
        params![ms(at), id],
    )?;
    if done == 0 {
        return Err(StoreError::Conflict);
    }
    if let Some(held) = held {
        insert_host_token(conn, held)?;
    }
    append(conn, chain, &[event], at)
}

fn host_token(r: &Row) -> StoreResult<HostToken> {
    Ok(HostToken { id: r.get(0)?, grant_id: r.get(1)?, sealed: r.get(2)?, shared_key: r.get(3)? })
}

pub fn holder_of(conn: &Connection, key: &str, except: i64) -> StoreResult<Option<HostToken>> {
    let mut stmt = conn.prepare_cached(
        "SELECT t.id, t.grant_id, t.sealed, t.shared_key FROM host_tokens t JOIN grants g ON g.id = t.grant_id
             WHERE t.shared_key = ? AND t.grant_id != ? AND g.ended_at IS NULL ORDER BY t.id LIMIT 1",
    )?;
    first(stmt.query(params![key, except])?, host_token)
}

pub fn failing_ends(conn: &Connection) -> StoreResult<Vec<FailingEnd>> {
    let mut stmt = conn.prepare_cached("SELECT * FROM grants WHERE ended_at IS NULL AND end_failures > 0 ORDER BY expires_at, id")?;
    all(stmt.query([])?, |r| {
        Ok(FailingEnd {
            failures: u32::try_from(r.get::<_, i64>("end_failures")?).unwrap_or(u32::MAX),
            error: r.get::<_, Option<String>>("end_error")?.unwrap_or_default(),
            retry_at: time(r.get::<_, Option<i64>>("end_retry_at")?.unwrap_or_default())?,
            grant: grant(r)?,
        })
    })
}

/// The earliest end (or retry) of a grant not yet ended.
pub fn next_expiry(conn: &Connection) -> StoreResult<Option<DateTime<Utc>>> {
    // A grant's end, or its next attempt at the host (to end it, or to give it its access).
    let t: Option<i64> = conn.prepare_cached(
        "SELECT MIN(MIN(COALESCE(end_retry_at, expires_at), COALESCE(start_retry_at, end_retry_at, expires_at))) FROM grants WHERE ended_at IS NULL",
    )?
    .query_row([], |r| r.get(0))?;
    opt_time(t)
}

fn insert_host_token(conn: &Connection, token: &NewHostToken) -> StoreResult<()> {
    conn.prepare_cached("INSERT INTO host_tokens (grant_id, sealed, created_at, expires_at, shared_key) VALUES (?, ?, ?, ?, ?)")?
        .execute(params![token.grant_id, token.sealed, ms(token.created_at), ms(token.expires_at), token.shared_key])?;
    Ok(())
}

/// Records a host credential if its grant is live when it was made.
pub fn add_host_token(conn: &Connection, chain: &mut Chain, token: &NewHostToken, event: NewEvent) -> StoreResult<()> {
    let live: Option<i64> = conn
        .prepare_cached("SELECT id FROM grants WHERE id = ? AND ended_at IS NULL AND revoked_at IS NULL AND expires_at > ?")?
        .query_row(params![token.grant_id, ms(token.created_at)], |r| r.get(0))
        .optional()?;
    if live.is_none() {
        return Err(StoreError::Conflict);
    }
    insert_host_token(conn, token)?;
    append(conn, chain, &[event], token.created_at)
}

pub fn host_tokens(conn: &Connection, grant_id: i64) -> StoreResult<Vec<HostToken>> {
    let mut stmt = conn.prepare_cached("SELECT id, grant_id, sealed, shared_key FROM host_tokens WHERE grant_id = ? ORDER BY id")?;
    all(stmt.query([grant_id])?, host_token)
}

pub fn add_credential(conn: &Connection, chain: &mut Chain, credential: &NewCredential, event: NewEvent) -> StoreResult<()> {
    conn.prepare_cached("INSERT INTO credentials (hash, grant_id, created_at, expires_at) VALUES (?, ?, ?, ?)")?.execute(params![
        credential.hash.0,
        credential.grant_id,
        ms(credential.created_at),
        ms(credential.expires_at)
    ])?;
    append(conn, chain, &[event], credential.created_at)
}

/// The grant a credential answers to (the newest of its minting grant's
/// lineage), if the credential exists, has not expired at `now`, and its
/// user was not removed.
pub fn by_credential(conn: &Connection, hash: &TokenHash, now: DateTime<Utc>) -> StoreResult<Option<GrantRecord>> {
    let mut stmt = conn.prepare_cached(
        "SELECT g.* FROM credentials c JOIN grants m ON m.id = c.grant_id
             JOIN grants g ON g.id = COALESCE((SELECT MAX(n.id) FROM grants n WHERE n.lineage = COALESCE(m.lineage, m.id)), m.id)
             JOIN users u ON u.id = g.user_id
             WHERE c.hash = ? AND c.expires_at > ? AND u.removed_at IS NULL",
    )?;
    first(stmt.query(params![hash.0, ms(now)])?, grant)
}
