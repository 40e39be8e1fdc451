//! HTTP handlers, one file per resource (as atuin's `handlers/`). Each handler
//! parses its input, calls one [`Broker`] method and renders the result with
//! the views below; rules and errors live in the broker and `server::error`.

pub mod audit;
pub mod auth;
pub mod grants;
pub mod health;
pub mod notifications;
pub mod repos;
pub mod requests;
pub mod users;

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::broker::Broker;
use super::error::ApiError;
use crate::api;
use crate::domain::records::{GrantRecord, Page, RequestRecord, UserRecord};

pub type AppState = State<Arc<Broker>>;

/// Path ids are numbers; anything else is a 400 that says so, not axum's text.
pub fn parse_id(kind: &str, raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::bad_input(format!("invalid {kind} id `{raw}`: expected a positive number")))
}

/// `?before=ID&limit=N` on a listing: rows older than `before`, at most `limit`.
pub fn page(before: Option<i64>, limit: Option<u32>) -> Result<Page, ApiError> {
    if before.is_some_and(|b| b < 1) {
        return Err(ApiError::bad_input("invalid before: expected a positive id"));
    }
    let limit = limit.unwrap_or(Page::DEFAULT_LIMIT);
    if !(1..=Page::MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_input(format!("invalid limit {limit}: expected 1 to {}", Page::MAX_LIMIT)));
    }
    Ok(Page { before, limit })
}

/// A listing as JSON, with a `Link: <?...>; rel="next"` header (as GitHub's
/// API pages) when an older page may follow: the same query with `before`
/// set, as a query-only reference so it resolves right behind a proxy that
/// adds a path prefix.
pub fn listed<T: Serialize>(uri: &Uri, next_before: Option<i64>, items: Vec<T>) -> Response {
    let mut response = Json(items).into_response();
    if let Some(before) = next_before {
        let pairs = url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes()).filter(|(k, _)| k != "before");
        let query =
            url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).append_pair("before", &before.to_string()).finish();
        let link = format!("<?{query}>; rel=\"next\"");
        if let Ok(value) = HeaderValue::from_str(&link) {
            response.headers_mut().insert(header::LINK, value);
        }
    }
    response
}

pub fn view_user(u: &UserRecord) -> api::User {
    api::User { name: u.name.clone(), groups: u.groups.clone(), admin: u.admin, created_at: u.created_at, email: u.email.clone() }
}

pub fn view_grant(broker: &Broker, g: &GrantRecord) -> api::Grant {
    api::Grant {
        id: g.id,
        request_id: g.request_id,
        user: g.user.clone(),
        repo: g.repo.clone(),
        level: g.level.to_string(),
        refs: g.refs.to_vec(),
        clone_url: broker.clone_url(&g.repo),
        granted_at: g.granted_at,
        expires_at: g.expires_at,
        status: broker.grant_status(g),
        revoked_at: g.revoked_at,
        revoked_by: g.revoked_by.clone(),
        warn_before_secs: g.rule.as_deref().and_then(|r| broker.live().policy.rule(r).map(|r| r.warn_before.as_std().as_secs())),
    }
}

pub fn view_request(broker: &Broker, r: &RequestRecord) -> api::AccessRequest {
    api::AccessRequest {
        id: r.id,
        status: r.status,
        requester: r.requester.clone(),
        repo: r.repo.clone(),
        level: r.level.to_string(),
        duration: Broker::duration_text(r.duration_secs),
        duration_secs: r.duration_secs,
        reason: r.reason.clone(),
        created_at: r.created_at,
        pending_until: r.created_at + broker.pending_ttl(),
        rule: r.rule.clone(),
        refs: r.refs.to_vec(),
        approvals_required: r.approvals_required,
        approvers: broker.approvers_of(&r.rule),
        approvals: r.approvals.iter().map(|a| api::Approval { by: a.approver.clone(), at: a.at, comment: a.comment.clone() }).collect(),
        decided_at: r.decided_at,
        decided_by: r.decided_by.clone(),
        decision_note: r.decision_note.clone(),
        grant: r.grant.as_ref().map(|g| view_grant(broker, g)),
        existing: false,
        extends_grant: r.extends_grant,
        needs: None,
        break_glass: r.break_glass,
        review: r.review.as_ref().map(|v| api::Review { by: v.by.clone(), at: v.at, outcome: v.outcome, comment: v.comment.clone() }),
    }
}
