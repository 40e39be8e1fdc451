//! Requests on PostgreSQL: created (and approved at once when policy says
//! so), read whole with their approvals and grant in one query, and decided
//! by compare-and-set on the request's row, held for the decision so two
//! replicas deciding at once take turns.

use chrono::{DateTime, Utc};
use ed25519_dalek::SigningKey;
use tokio_postgres::Row;

use super::audit::append;
use super::db::{Filters, Sql, count, error, get, int, parsed, stored};
use super::feed::announce;
use super::grants;
use crate::domain::audit::NewEvent;
use crate::domain::records::{
    ApprovalRecord, GrantRecord, NewRequest, RequestChange, RequestFilter, RequestRecord, Review, Supersede, attach_ids,
};
use crate::domain::request::{POLICY_DECIDER, RequestStatus};
use crate::store::rows::{self, REQUESTS_QUERY, scope, stored_networks, terms};
use crate::store::{Change, StoreError, StoreResult};

/// The request of a joined row, without its approvals.
fn request(row: &Row) -> StoreResult<RequestRecord> {
    let id: i64 = get(row, "id")?;
    let requester_id: Option<i64> = get(row, "requester_id")?;
    let requester: String = get(row, "requester")?;
    let repo: String = get(row, "repo")?;
    let rule: String = get(row, "rule")?;
    let level = parsed("level", get(row, "level")?)?;
    let refs = scope(get(row, "refs")?)?;
    let terms = terms(get(row, "from_networks")?, get(row, "allow_deletes")?)?;
    let grant = match get::<Option<i64>>(row, "g_id")? {
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
            granted_at: get(row, "g_granted_at")?,
            expires_at: get(row, "g_expires_at")?,
            revoked_at: get(row, "g_revoked_at")?,
            revoked_by: get(row, "g_revoked_by")?,
            ended_at: get(row, "g_ended_at")?,
        }),
        None => None,
    };
    Ok(RequestRecord {
        id,
        requester_id,
        requester,
        repo,
        level,
        duration_secs: u64::try_from(get::<i64>(row, "duration_secs")?).map_err(|_| StoreError::Corrupt("negative duration".into()))?,
        reason: get(row, "reason")?,
        rule,
        approvals_required: count("approval count", get::<i32>(row, "approvals_required")?.into())?,
        refs,
        terms,
        status: parsed("status", get(row, "status")?)?,
        created_at: get(row, "created_at")?,
        decided_at: get(row, "decided_at")?,
        decided_by: get(row, "decided_by")?,
        decision_note: get(row, "decision_note")?,
        approvals: Vec::new(),
        grant,
        extends_grant: get(row, "extends_grant")?,
        break_glass: get(row, "break_glass")?,
        review: rows::review(get(row, "reviewed_by")?, get(row, "reviewed_at")?, get(row, "review")?, get(row, "review_comment")?)?,
        reminded_at: get(row, "reminded_at")?,
    })
}

/// Requests matching `filter` (or the one with `id`), newest first, each whole.
pub async fn load_many(c: &impl Sql, filter: &RequestFilter, id: Option<i64>) -> StoreResult<Vec<RequestRecord>> {
    let mut filters = Filters::default();
    filters
        .when("id = $", id)
        .when("requester_id = $", filter.requester_id)
        .when("status = $", filter.status.map(|s| s.as_str().to_string()))
        .when("break_glass = $ AND reviewed_at IS NULL", filter.unreviewed.then_some(true))
        .when("id < $", filter.page.before);
    let rows = c.query(&filters.sql(REQUESTS_QUERY, filter.page.limit), &filters.params()).await.map_err(error)?;
    // Joined rows come grouped by request: one record per group.
    let mut out: Vec<RequestRecord> = Vec::new();
    for row in &rows {
        let id: i64 = get(row, "id")?;
        if out.last().is_none_or(|r| r.id != id) {
            out.push(request(row)?);
        }
        let (approver, at): (Option<String>, Option<DateTime<Utc>>) = (get(row, "a_approver")?, get(row, "a_at")?);
        if let (Some(approver), Some(at)) = (approver, at) {
            let record = out.last_mut().expect("pushed above");
            record.approvals.push(ApprovalRecord { approver, comment: get(row, "a_comment")?, at });
        }
    }
    Ok(out)
}

pub async fn load(c: &impl Sql, id: i64) -> StoreResult<Option<RequestRecord>> {
    Ok(load_many(c, &RequestFilter::default(), Some(id)).await?.pop())
}

/// Inserts a request; with `grant`, approved at once by policy, superseding
/// the grants in `superseded` that are still live.
pub async fn create(
    tx: &impl Sql,
    key: &SigningKey,
    new: &NewRequest,
    grant: Option<(DateTime<Utc>, DateTime<Utc>)>,
    mut events: Vec<NewEvent>,
    superseded: Vec<Supersede>,
) -> StoreResult<RequestRecord> {
    let status = if grant.is_some() { RequestStatus::Approved } else { RequestStatus::Pending };
    let created_at = stored(new.created_at);
    let decided_at = grant.map(|_| created_at);
    let row = tx
        .query_one(
            "INSERT INTO requests (requester_id, requester, repo, level, duration_secs, reason, rule, approvals_required, refs,
                                   from_networks, allow_deletes, status, created_at, decided_at, decided_by, extends_grant, break_glass)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) RETURNING id",
            &[
                &new.requester_id,
                &new.requester,
                &new.repo,
                &new.level.as_str(),
                &int(new.duration_secs)?,
                &new.reason,
                &new.rule,
                &i32::try_from(new.approvals_required).map_err(|_| StoreError::Unavailable("too many approvals to store".into()))?,
                &new.refs.to_stored(),
                &stored_networks(&new.terms),
                &new.terms.allow_deletes,
                &status.as_str(),
                &created_at,
                &decided_at,
                &grant.map(|_| POLICY_DECIDER),
                &new.extends_grant,
                &new.break_glass,
            ],
        )
        .await
        .map_err(error)?;
    let id: i64 = get(&row, "id")?;
    let mut record = rows::created_request(new, id, grant.is_some());
    let grant_id = match grant {
        Some(window) => {
            let grant_id = grants::insert(tx, &record, window).await?;
            record.grant = Some(rows::written_grant(&record, grant_id, window));
            Some(grant_id)
        }
        None => None,
    };
    attach_ids(&mut events, id, grant_id);
    if let Some(grant_id) = grant_id {
        events.extend(grants::supersede(tx, superseded, grant_id, new.created_at).await?);
    }
    announce(tx, &Change::Request(id)).await?;
    append(tx, key, &events, new.created_at).await?;
    Ok(record)
}

/// Applies a decision to a request still pending with the approvals it was
/// decided on; returns the request as a read would now find it.
pub async fn apply(tx: &impl Sql, key: &SigningKey, change: RequestChange) -> StoreResult<RequestRecord> {
    // Held to the commit: a decision on another replica waits, then sees this one.
    let held = tx.query_opt("SELECT id FROM requests WHERE id = $1 FOR UPDATE", &[&change.request_id]).await.map_err(error)?;
    if held.is_none() {
        return Err(StoreError::NotFound(format!("request {}", change.request_id)));
    }
    let current = load(tx, change.request_id).await?.ok_or_else(|| StoreError::NotFound(format!("request {}", change.request_id)))?;
    if current.status != RequestStatus::Pending || current.approvals.len() != change.expect_approvals {
        return Err(StoreError::Conflict);
    }
    if let Some(a) = &change.add_approval {
        tx.execute(
            "INSERT INTO approvals (request_id, approver, comment, at) VALUES ($1, $2, $3, $4)",
            &[&change.request_id, &a.approver, &a.comment, &stored(a.at)],
        )
        .await
        .map_err(error)?;
    }
    let mut grant_id = None;
    if let Some((status, by, note)) = &change.decide {
        tx.execute(
            "UPDATE requests SET status = $1, decided_at = $2, decided_by = $3, decision_note = $4 WHERE id = $5",
            &[&status.as_str(), &stored(change.at), by, note, &change.request_id],
        )
        .await
        .map_err(error)?;
        if let Some(window) = change.grant {
            grant_id = Some(grants::insert(tx, &current, window).await?);
        }
    }
    let record = rows::after_change(current, &change, grant_id);
    let mut events = change.events;
    attach_ids(&mut events, change.request_id, grant_id);
    if let Some(grant_id) = grant_id {
        events.extend(grants::supersede(tx, change.supersede, grant_id, change.at).await?);
    }
    announce(tx, &Change::Request(change.request_id)).await?;
    append(tx, key, &events, change.at).await?;
    Ok(record)
}

/// See [`crate::store::Store::review`].
pub async fn review(tx: &impl Sql, key: &SigningKey, id: i64, review: &Review, event: NewEvent) -> StoreResult<RequestRecord> {
    let done = tx
        .execute(
            "UPDATE requests SET reviewed_by = $1, reviewed_at = $2, review = $3, review_comment = $4
             WHERE id = $5 AND break_glass AND reviewed_at IS NULL",
            &[&review.by, &stored(review.at), &review.outcome.as_str(), &review.comment, &id],
        )
        .await
        .map_err(error)?;
    if done == 0 {
        let exists = load(tx, id).await?.is_some();
        return Err(if exists { StoreError::Conflict } else { StoreError::NotFound(format!("request {id}")) });
    }
    announce(tx, &Change::Request(id)).await?;
    append(tx, key, &[event], review.at).await?;
    load(tx, id).await?.ok_or_else(|| StoreError::NotFound(format!("request {id}")))
}

/// See [`crate::store::Store::remind`].
pub async fn remind(
    tx: &impl Sql,
    key: &SigningKey,
    id: i64,
    last: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    event: NewEvent,
) -> StoreResult<bool> {
    let done = tx
        .execute(
            "UPDATE requests SET reminded_at = $1
             WHERE id = $2 AND break_glass AND reviewed_at IS NULL AND reminded_at IS NOT DISTINCT FROM $3",
            &[&stored(now), &id, &last.map(stored)],
        )
        .await
        .map_err(error)?;
    if done == 0 {
        return Ok(false);
    }
    append(tx, key, &[event], now).await?;
    Ok(true)
}

/// Ids of pending requests created at or before `cutoff`.
pub async fn stale_pending(c: &impl Sql, cutoff: DateTime<Utc>) -> StoreResult<Vec<i64>> {
    let rows = c
        .query(
            "SELECT id FROM requests WHERE status = $1 AND created_at <= $2 ORDER BY id",
            &[&RequestStatus::Pending.as_str(), &stored(cutoff)],
        )
        .await
        .map_err(error)?;
    rows.iter().map(|r| get(r, "id")).collect()
}
