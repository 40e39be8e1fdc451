//! What both engines keep alike: the query that reads requests whole, and
//! the text forms of a grant's terms (its networks, one a line) and of a
//! ref scope. Each engine reads its own column types; these are the shapes
//! they share.

use crate::domain::records::Terms;
use crate::domain::refs::RefScope;
use crate::store::{StoreError, StoreResult};

/// Requests with their approvals and grant, in one query. `{filters}`
/// selects the requests (before the limit), so a page holds whole requests;
/// each engine writes in its filters (with its own placeholders) and the limit.
pub const REQUESTS_QUERY: &str = "
SELECT r.id, r.requester_id, r.requester, r.repo, r.level, r.duration_secs, r.reason, r.rule, r.approvals_required, r.refs,
       r.from_networks, r.allow_deletes, r.status,
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
