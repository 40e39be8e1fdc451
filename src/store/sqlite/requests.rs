//! Requests: created (and approved at once when policy says so), read whole
//! with their approvals and grant in one query, and decided by
//! compare-and-set.

use chrono::{DateTime, Utc};
use rusqlite::types::Value;
use rusqlite::{Connection, Row, params, params_from_iter};

use super::audit::append;
use super::db::{Filters, int, ms, opt_time, parsed, time};
use super::grants::{self, terms};
use crate::domain::audit::NewEvent;
use crate::domain::records::{
    ApprovalRecord, GrantRecord, NewRequest, RequestChange, RequestFilter, RequestRecord, Review, Supersede, attach_ids,
};
use crate::domain::request::{POLICY_DECIDER, RequestStatus};
use crate::store::chain::Chain;
use crate::store::rows::{self, REQUESTS_QUERY, scope, stored_networks};
use crate::store::{StoreError, StoreResult};

/// The request of a joined row, without its approvals.
fn request(row: &Row) -> StoreResult<RequestRecord> {
    let id: i64 = row.get("id")?;
    let requester_id: Option<i64> = row.get("requester_id")?;
    let requester: String = row.get("requester")?;
    let repo: String = row.get("repo")?;
    let rule: String = row.get("rule")?;
    let level = parsed("level", &row.get::<_, String>("level")?)?;
    let refs = scope(row.get("refs")?)?;
    let terms = terms(row.get("from_networks")?, row.get("allow_deletes")?)?;
    let grant = match row.get::<_, Option<i64>>("g_id")? {
        Some(gid) => Some(GrantRecord {
            id: gid,
            request_id: id,
            user_id: requester_id,
            user: requester.clone(),
            repo: repo.clone(),
            level,
            rule: Some(rule.clone()),
            refs: refs.clone(),
            terms: terms.clone(),
            granted_at: time(row.get::<_, Option<i64>>("g_granted_at")?.unwrap_or_default())?,
            expires_at: time(row.get::<_, Option<i64>>("g_expires_at")?.unwrap_or_default())?,
            revoked_at: opt_time(row.get("g_revoked_at")?)?,
            revoked_by: row.get("g_revoked_by")?,
            ended_at: opt_time(row.get("g_ended_at")?)?,
        }),
        None => None,
    };
    Ok(RequestRecord {
        id,
        requester_id,
        requester,
        repo,
        level,
        duration_secs: u64::try_from(row.get::<_, i64>("duration_secs")?).map_err(|_| StoreError::Corrupt("negative duration".into()))?,
        reason: row.get("reason")?,
        rule,
        approvals_required: u32::try_from(row.get::<_, i64>("approvals_required")?)
            .map_err(|_| StoreError::Corrupt("bad approval count".into()))?,
        refs,
        terms,
        status: parsed("status", &row.get::<_, String>("status")?)?,
        created_at: time(row.get("created_at")?)?,
        decided_at: opt_time(row.get("decided_at")?)?,
        decided_by: row.get("decided_by")?,
        decision_note: row.get("decision_note")?,
        approvals: Vec::new(),
        grant,
        extends_grant: row.get("extends_grant")?,
        break_glass: row.get("break_glass")?,
        review: rows::review(row.get("reviewed_by")?, opt_time(row.get("reviewed_at")?)?, row.get("review")?, row.get("review_comment")?)?,
        reminded_at: opt_time(row.get("reminded_at")?)?,
    })
}

/// Requests matching `filter` (or the one with `id`), newest first, each whole.
pub fn load_many(conn: &Connection, filter: &RequestFilter, id: Option<i64>) -> StoreResult<Vec<RequestRecord>> {
    let mut filters = Filters::default();
    filters
        .when("id = ?", id.map(Value::Integer))
        .when("requester_id = ?", filter.requester_id.map(Value::Integer))
        .when("status = ?", filter.status.map(|s| Value::Text(s.as_str().to_string())))
        .when("break_glass = ? AND reviewed_at IS NULL", filter.unreviewed.then_some(Value::Integer(1)))
        .when("id < ?", filter.page.before.map(Value::Integer));
    let mut stmt = conn.prepare_cached(&filters.sql(REQUESTS_QUERY, filter.page.limit))?;
    let mut rows = stmt.query(params_from_iter(filters.values()))?;
    // Joined rows come grouped by request: one record per group.
    let mut out: Vec<RequestRecord> = Vec::new();
    while let Some(row) = rows.next()? {
        let id: i64 = row.get("id")?;
        if out.last().is_none_or(|r| r.id != id) {
            out.push(request(row)?);
        }
        let (approver, at): (Option<String>, Option<i64>) = (row.get("a_approver")?, row.get("a_at")?);
        if let (Some(approver), Some(at)) = (approver, at) {
            let record = out.last_mut().expect("pushed above");
            record.approvals.push(ApprovalRecord { approver, comment: row.get("a_comment")?, at: time(at)? });
        }
    }
    Ok(out)
}

pub fn load(conn: &Connection, id: i64) -> StoreResult<Option<RequestRecord>> {
    Ok(load_many(conn, &RequestFilter::default(), Some(id))?.pop())
}

/// Inserts a request; with `grant`, approved at once by policy, superseding
/// the grants in `superseded` that are still live.
pub fn create(
    conn: &Connection,
    chain: &mut Chain,
    new: &NewRequest,
    grant: Option<(DateTime<Utc>, DateTime<Utc>)>,
    mut events: Vec<NewEvent>,
    superseded: Vec<Supersede>,
) -> StoreResult<RequestRecord> {
    let status = if grant.is_some() { RequestStatus::Approved } else { RequestStatus::Pending };
    let id: i64 = conn
        .prepare_cached(
            "INSERT INTO requests (requester_id, requester, repo, level, duration_secs, reason, rule, approvals_required, refs,
                                   from_networks, allow_deletes, status, created_at, decided_at, decided_by, extends_grant, break_glass)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )?
        .query_row(
            params![
                new.requester_id,
                new.requester,
                new.repo,
                new.level.as_str(),
                int(new.duration_secs)?,
                new.reason,
                new.rule,
                i64::from(new.approvals_required),
                new.refs.to_stored(),
                stored_networks(&new.terms),
                i64::from(new.terms.allow_deletes),
                status.as_str(),
                ms(new.created_at),
                grant.map(|_| ms(new.created_at)),
                grant.map(|_| POLICY_DECIDER),
                new.extends_grant,
                new.break_glass
            ],
            |r| r.get(0),
        )?;
    let mut record = rows::created_request(new, id, grant.is_some());
    let grant_id = match grant {
        Some(window) => {
            let grant_id = grants::insert(conn, &record, window)?;
            record.grant = Some(rows::written_grant(&record, grant_id, window));
            Some(grant_id)
        }
        None => None,
    };
    attach_ids(&mut events, id, grant_id);
    if let Some(grant_id) = grant_id {
        events.extend(grants::supersede(conn, superseded, grant_id, new.created_at)?);
    }
    append(conn, chain, &events, new.created_at)?;
    Ok(record)
}

/// Applies a decision to a request still pending with the approvals it was
/// decided on; returns the request as a read would now find it.
pub fn apply(conn: &Connection, chain: &mut Chain, change: RequestChange) -> StoreResult<RequestRecord> {
    let current = load(conn, change.request_id)?.ok_or_else(|| StoreError::NotFound(format!("request {}", change.request_id)))?;
    if current.status != RequestStatus::Pending || current.approvals.len() != change.expect_approvals {
        return Err(StoreError::Conflict);
    }
    if let Some(a) = &change.add_approval {
        conn.prepare_cached("INSERT INTO approvals (request_id, approver, comment, at) VALUES (?, ?, ?, ?)")?.execute(params![
            change.request_id,
            a.approver,
            a.comment,
            ms(a.at)
        ])?;
    }
    let mut grant_id = None;
    if let Some((status, by, note)) = &change.decide {
        conn.prepare_cached(
            "UPDATE requests SET status = ?, decided_at = ?, decided_by = ?, decision_note = ? WHERE id = ? AND status = ?",
        )?
        .execute(params![status.as_str(), ms(change.at), by, note, change.request_id, RequestStatus::Pending.as_str()])?;
        if let Some(window) = change.grant {
            grant_id = Some(grants::insert(conn, &current, window)?);
        }
    }
    let record = rows::after_change(current, &change, grant_id);
    let mut events = change.events;
    attach_ids(&mut events, change.request_id, grant_id);
    if let Some(grant_id) = grant_id {
        events.extend(grants::supersede(conn, change.supersede, grant_id, change.at)?);
    }
    append(conn, chain, &events, change.at)?;
    Ok(record)
}

/// See [`crate::store::Store::review`].
pub fn review(conn: &Connection, chain: &mut Chain, id: i64, review: &Review, event: NewEvent) -> StoreResult<RequestRecord> {
    let done = conn
        .prepare_cached(
            "UPDATE requests SET reviewed_by = ?, reviewed_at = ?, review = ?, review_comment = ?
             WHERE id = ? AND break_glass = 1 AND reviewed_at IS NULL",
        )?
        .execute(params![review.by, ms(review.at), review.outcome.as_str(), review.comment, id])?;
    if done == 0 {
        let exists = load(conn, id)?.is_some();
        return Err(if exists { StoreError::Conflict } else { StoreError::NotFound(format!("request {id}")) });
    }
    append(conn, chain, &[event], review.at)?;
    load(conn, id)?.ok_or_else(|| StoreError::NotFound(format!("request {id}")))
}

/// See [`crate::store::Store::remind`].
pub fn remind(
    conn: &Connection,
    chain: &mut Chain,
    id: i64,
    last: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    event: NewEvent,
) -> StoreResult<bool> {
    let done = conn
        .prepare_cached(
            "UPDATE requests SET reminded_at = ? WHERE id = ? AND break_glass = 1 AND reviewed_at IS NULL AND reminded_at IS ?",
        )?
        .execute(params![ms(now), id, last.map(ms)])?;
    if done == 0 {
        return Ok(false);
    }
    append(conn, chain, &[event], now)?;
    Ok(true)
}

/// Ids of pending requests created at or before `cutoff`.
pub fn stale_pending(conn: &Connection, cutoff: DateTime<Utc>) -> StoreResult<Vec<i64>> {
    let mut stmt = conn.prepare_cached("SELECT id FROM requests WHERE status = ? AND created_at <= ? ORDER BY id")?;
    let ids = stmt.query_map(params![RequestStatus::Pending.as_str(), ms(cutoff)], |r| r.get(0))?;
    Ok(ids.collect::<Result<Vec<i64>, _>>()?)
}
