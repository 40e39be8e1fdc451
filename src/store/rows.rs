//! What both engines keep alike: times to the millisecond, the query that
//! reads requests whole, the text forms of a grant's terms (its networks,
//! one a line) and of a ref scope, the records a write answers with instead
//! of reading them back, and the events both write the same way. Each
//! engine reads its own column types; these are the shapes they share.

use chrono::{DateTime, Utc};

use crate::domain::audit::{Action, NewEvent, OIDC_ACTOR};
use crate::domain::records::{ApprovalRecord, GrantRecord, NewRequest, RequestChange, RequestRecord, Terms};
use crate::domain::refs::RefScope;
use crate::domain::request::{POLICY_DECIDER, RequestStatus};
use crate::store::{StoreError, StoreResult};

/// A time as every store keeps it (to the millisecond), so a record built in
/// memory equals the one a read would return. (Every `DateTime` fits in
/// milliseconds since 1970 as an `i64`, so nothing is lost but the rest.)
pub fn stored(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

/// Requests with their approvals and grant, in one query. `{filters}`
/// selects the requests (before the limit), so a page holds whole requests;
/// each engine writes in its filters (with its own placeholders) and the limit.
pub const REQUESTS_QUERY: &str = "
SELECT r.id, r.requester_id, r.requester, r.repo, r.level, r.duration_secs, r.reason, r.rule, r.approvals_required, r.refs,
       r.from_networks, r.allow_deletes, r.status, r.extends_grant,
       r.break_glass, r.reviewed_by, r.reviewed_at, r.review, r.review_comment, r.reminded_at,
       r.created_at, r.decided_at, r.decided_by, r.decision_note,
       a.approver AS a_approver, a.comment AS a_comment, a.at AS a_at,
       g.id AS g_id, g.granted_at AS g_granted_at, g.expires_at AS g_expires_at,
       g.revoked_at AS g_revoked_at, g.revoked_by AS g_revoked_by, g.ended_at AS g_ended_at
FROM (SELECT * FROM requests WHERE {filters} ORDER BY id DESC LIMIT {limit}) r
LEFT JOIN approvals a ON a.request_id = r.id
LEFT JOIN grants g ON g.request_id = r.id
ORDER BY r.id DESC, a.at, a.approver";

/// Stored terms: both columns, or neither (decided before they were kept).
pub fn terms(from_networks: Option<String>, allow_deletes: Option<bool>) -> StoreResult<Option<Terms>> {
    let (Some(from), Some(allow_deletes)) = (from_networks, allow_deletes) else { return Ok(None) };
    let from = from
        .lines()
        .map(|n| n.parse::<ipnet::IpNet>().map_err(|_| StoreError::Corrupt(format!("from_networks: `{n}` is not a network"))))
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(Some(Terms { from, allow_deletes }))
}

/// The networks of `terms` as stored: one a line ('' anywhere).
pub fn stored_networks(terms: &Terms) -> String {
    terms.from.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
}

/// A stored ref scope; one that no longer parses is a corrupt row.
pub fn scope(stored: Option<String>) -> StoreResult<RefScope> {
    RefScope::from_stored(stored.as_deref()).map_err(|e| StoreError::Corrupt(format!("refs: {e}")))
}

/// The request `new` as written with `id`: approved by policy at once when
/// `decided` (its grant is the caller's to add), else pending.
pub fn created_request(new: &NewRequest, id: i64, decided: bool) -> RequestRecord {
    let created_at = stored(new.created_at);
    RequestRecord {
        id,
        requester_id: Some(new.requester_id),
        requester: new.requester.clone(),
        repo: new.repo.clone(),
        level: new.level,
        duration_secs: new.duration_secs,
        reason: new.reason.clone(),
        rule: new.rule.clone(),
        approvals_required: new.approvals_required,
        refs: new.refs.clone(),
        terms: Some(new.terms.clone()),
        status: if decided { RequestStatus::Approved } else { RequestStatus::Pending },
        created_at,
        decided_at: decided.then_some(created_at),
        decided_by: decided.then(|| POLICY_DECIDER.to_string()),
        decision_note: None,
        approvals: Vec::new(),
        grant: None,
        extends_grant: new.extends_grant,
        break_glass: new.break_glass,
        review: None,
        reminded_at: None,
    }
}

/// A stored review: its columns all set, or none (not yet reviewed).
pub fn review(
    by: Option<String>,
    at: Option<DateTime<Utc>>,
    outcome: Option<String>,
    comment: Option<String>,
) -> StoreResult<Option<crate::domain::records::Review>> {
    let (Some(by), Some(at), Some(outcome)) = (by, at, outcome) else { return Ok(None) };
    let outcome = outcome.parse().map_err(|e: String| StoreError::Corrupt(format!("review: {e}")))?;
    Ok(Some(crate::domain::records::Review { by, at, outcome, comment }))
}

/// The grant of `req` written with `id` for `granted_at..expires_at`, as a read would return it.
pub fn written_grant(req: &RequestRecord, id: i64, (granted_at, expires_at): (DateTime<Utc>, DateTime<Utc>)) -> GrantRecord {
    GrantRecord {
        id,
        request_id: req.id,
        user_id: req.requester_id,
        user: req.requester.clone(),
        repo: req.repo.clone(),
        level: req.level,
        rule: Some(req.rule.clone()),
        refs: req.refs.clone(),
        terms: req.terms.clone(),
        granted_at: stored(granted_at),
        expires_at: stored(expires_at),
        revoked_at: None,
        revoked_by: None,
        ended_at: None,
    }
}

/// What `req` became once `change` was written (the new grant, if any, has
/// id `grant_id`): a store answers with it instead of reading it back.
pub fn after_change(mut req: RequestRecord, change: &RequestChange, grant_id: Option<i64>) -> RequestRecord {
    if let Some(a) = &change.add_approval {
        req.approvals.push(ApprovalRecord { at: stored(a.at), ..a.clone() });
        // The order a read returns them in.
        req.approvals.sort_by(|x, y| (x.at, &x.approver).cmp(&(y.at, &y.approver)));
    }
    if let Some((status, by, note)) = &change.decide {
        req.status = *status;
        req.decided_at = Some(stored(change.at));
        req.decided_by = Some(by.clone());
        req.decision_note = note.clone();
    }
    if let (Some(id), Some(window)) = (grant_id, change.grant) {
        req.grant = Some(written_grant(&req, id, window));
    }
    req
}

/// A person's groups changed at the identity provider.
pub fn groups_event(name: &str, was: &[String], now: &[String]) -> NewEvent {
    let mut e = NewEvent::new(OIDC_ACTOR, Action::GroupsChanged);
    let list = |g: &[String]| if g.is_empty() { "(none)".to_string() } else { g.join(", ") };
    e.detail = Some(format!("{name}: {} → {} (from the identity provider)", list(was), list(now)));
    e
}

/// `grant` revoked by `by`, giving `why`.
pub fn revoked_event(grant: &GrantRecord, by: &str, why: &str) -> NewEvent {
    let mut e = NewEvent::new(by, Action::Revoked);
    e.request_id = Some(grant.request_id);
    e.grant_id = Some(grant.id);
    e.repo = Some(grant.repo.clone());
    e.level = Some(grant.level);
    e.detail = Some(why.to_string());
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_keep_milliseconds() {
        let t: DateTime<Utc> = "2026-11-25T12:10:00.123456789Z".parse().unwrap();
        assert_eq!(stored(t).to_rfc3339(), "2026-11-25T12:10:00.123+00:00");
    }
}
