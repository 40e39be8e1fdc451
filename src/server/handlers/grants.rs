//! `/v1/grants`: list, read, revoke, and mint a git credential.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::Uri;
use axum::response::Response;
use serde::Deserialize;

use super::{AppState, listed, page, parse_id, view_grant, view_request};
use crate::api;
use crate::domain::AccessDuration;
use crate::server::auth::{Caller, ClientAddr};
use crate::server::error::{ApiError, ApiJson, ApiPath, ApiQuery, OptionalJson};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Admins only: every user's grants.
    #[serde(default)]
    all: bool,
    /// Only grants live now.
    #[serde(default)]
    live: bool,
    /// Paging: grants older than this id (from the `Link` header).
    #[param(minimum = 1)]
    before: Option<i64>,
    /// At most this many (default 500).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

#[utoipa::path(get, path = "/v1/grants", tag = "grants", security(("bearer" = [])), params(ListQuery), responses((status = 200, description = "grants the caller may see, newest first (next page in the Link header)", body = Vec<crate::api::Grant>), (status = 400, description = "bad input (a malformed id, body or query)", body = crate::api::ErrorBody), (status = 403, description = "not allowed", body = crate::api::ErrorBody)))]
pub async fn list(State(broker): AppState, Caller(user): Caller, uri: Uri, ApiQuery(q): ApiQuery<ListQuery>) -> Result<Response, ApiError> {
    let listing = broker.list_grants(&user, q.all, q.live, page(q.before, q.limit)?).await?;
    Ok(listed(&uri, listing.next_before, listing.items.iter().map(|g| view_grant(&broker, g)).collect()))
}

/// Admins: grants that ended but whose host has not yet agreed.
#[utoipa::path(get, path = "/v1/grants/failing", tag = "grants", security(("bearer" = [])), responses((status = 200, description = "grants whose end a host has not yet agreed to", body = Vec<crate::api::FailingGrant>), (status = 403, description = "not allowed", body = crate::api::ErrorBody)))]
pub async fn failing(State(broker): AppState, Caller(user): Caller) -> Result<Json<Vec<api::FailingGrant>>, ApiError> {
    let failing = broker.failing_ends(&user).await?;
    Ok(Json(
        failing
            .iter()
            .map(|f| api::FailingGrant {
                grant: view_grant(&broker, &f.grant),
                failures: f.failures,
                error: f.error.clone(),
                next_attempt_at: f.retry_at,
            })
            .collect(),
    ))
}

#[utoipa::path(get, path = "/v1/grants/{id}", tag = "grants", security(("bearer" = [])), params(("id" = i64, Path, minimum = 1, description = "its id")), responses((status = 200, description = "the grant", body = crate::api::Grant), (status = 400, description = "bad input (a malformed id, body or query)", body = crate::api::ErrorBody), (status = 404, description = "not found, or not the caller's to see", body = crate::api::ErrorBody)))]
pub async fn get(State(broker): AppState, Caller(user): Caller, ApiPath(id): ApiPath<String>) -> Result<Json<api::Grant>, ApiError> {
    let id = parse_id("grant", &id)?;
    Ok(Json(view_grant(&broker, &broker.get_grant(&user, id).await?)))
}

/// One grant's access period with its proof (admins).
#[utoipa::path(get, path = "/v1/grants/{id}/report", tag = "grants", security(("bearer" = [])), params(("id" = i64, Path, minimum = 1, description = "its id")), responses((status = 200, description = "the grant's access period with its proof", body = crate::api::GrantReport), (status = 400, description = "bad input (a malformed id, body or query)", body = crate::api::ErrorBody), (status = 403, description = "not allowed", body = crate::api::ErrorBody), (status = 404, description = "not found, or not the caller's to see", body = crate::api::ErrorBody)))]
pub async fn report(
    State(broker): AppState,
    Caller(user): Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<api::GrantReport>, ApiError> {
    let id = parse_id("grant", &id)?;
    let report = broker.grant_report(&user, id).await?;
    Ok(Json(api::GrantReport {
        grant: view_grant(&broker, &report.grant),
        request: report.request.as_ref().map(|r| super::view_request(&broker, r)),
        events: report.events,
        proof: api::ReportProof {
            public_key: crate::domain::audit::public_key_text(&report.public_key),
            checkpoints: report.checkpoints,
            links: report.links,
        },
    }))
}

#[utoipa::path(post, path = "/v1/grants/{id}/revoke", tag = "grants", security(("bearer" = [])), params(("id" = i64, Path, minimum = 1, description = "its id")), request_body(content = Option<crate::api::RevokeBody>, description = "optional"), responses((status = 200, description = "the grant, ended", body = crate::api::Grant), (status = 400, description = "bad input (a malformed id, body or query)", body = crate::api::ErrorBody), (status = 404, description = "not found, or not the caller's to see", body = crate::api::ErrorBody), (status = 409, description = "the state does not allow it", body = crate::api::ErrorBody)))]
pub async fn revoke(
    State(broker): AppState,
    Caller(user): Caller,
    ApiPath(id): ApiPath<String>,
    OptionalJson(body): OptionalJson<api::RevokeBody>,
) -> Result<Json<api::Grant>, ApiError> {
    let id = parse_id("grant", &id)?;
    let grant = broker.revoke(&user, id, body.reason.as_deref()).await?;
    Ok(Json(view_grant(&broker, &grant)))
}

/// Asks to lengthen the caller's own live grant (`jit extend`): a request
/// decided by the policy like any other; approved, its grant takes the old
/// one's place and credentials.
#[utoipa::path(post, path = "/v1/grants/{id}/extend", tag = "grants", security(("bearer" = [])), params(("id" = i64, Path, minimum = 1, description = "its id")), request_body = crate::api::ExtendBody, responses((status = 201, description = "the extension request (approved at once when the policy says so)", body = crate::api::AccessRequest), (status = 200, description = "a live grant already covers it: that grant's request", body = crate::api::AccessRequest), (status = 400, description = "bad input (a malformed id, body or query)", body = crate::api::ErrorBody), (status = 403, description = "not allowed", body = crate::api::ErrorBody), (status = 404, description = "not found, or not the caller's to see", body = crate::api::ErrorBody), (status = 409, description = "the grant has ended", body = crate::api::ErrorBody)))]
pub async fn extend(
    State(broker): AppState,
    Caller(user): Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<api::ExtendBody>,
) -> Result<(StatusCode, Json<api::AccessRequest>), ApiError> {
    let id = parse_id("grant", &id)?;
    let added: AccessDuration =
        body.duration.parse().map_err(|e: crate::domain::duration::DurationError| ApiError::bad_input(e.to_string()))?;
    let created = broker.extend_grant(&user, id, added, body.reason.as_deref()).await?;
    let mut view = view_request(&broker, &created.record);
    view.existing = created.existing;
    let status = if created.existing { StatusCode::OK } else { StatusCode::CREATED };
    Ok((status, Json(view)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UnreviewedQuery {
    /// Admins only: every unreviewed break-glass grant, not only those the caller may review.
    #[serde(default)]
    all: bool,
    /// Paging: older than this request id (from the `Link` header).
    #[param(minimum = 1)]
    before: Option<i64>,
    /// At most this many (default 500).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// Break-glass grants not yet reviewed, as their requests: those the caller
/// may review (`jit review`), or every one (`all`, admins: `jit admin grants --unreviewed`).
#[utoipa::path(get, path = "/v1/grants/unreviewed", tag = "grants", security(("bearer" = [])), params(UnreviewedQuery), responses((status = 200, description = "unreviewed break-glass requests with their grants, newest first (next page in the Link header)", body = Vec<crate::api::AccessRequest>), (status = 400, description = "bad input (a malformed id, body or query)", body = crate::api::ErrorBody), (status = 403, description = "not allowed", body = crate::api::ErrorBody)))]
pub async fn unreviewed(
    State(broker): AppState,
    Caller(user): Caller,
    uri: Uri,
    ApiQuery(q): ApiQuery<UnreviewedQuery>,
) -> Result<Response, ApiError> {
    let listing = broker.unreviewed(&user, q.all, page(q.before, q.limit)?).await?;
    Ok(listed(&uri, listing.next_before, listing.items.iter().map(|r| view_request(&broker, r)).collect()))
}

/// Records an approver's review of a break-glass grant: approved, or
/// flagged with a comment saying what was wrong.
#[utoipa::path(post, path = "/v1/grants/{id}/review", tag = "grants", security(("bearer" = [])), params(("id" = i64, Path, minimum = 1, description = "its id")), request_body = crate::api::ReviewBody, responses((status = 200, description = "the grant's request, with its review", body = crate::api::AccessRequest), (status = 400, description = "bad input (a malformed id, body or query; a flag without a comment)", body = crate::api::ErrorBody), (status = 403, description = "not a reviewer of this grant, or the caller's own", body = crate::api::ErrorBody), (status = 404, description = "not found, or not the caller's to see", body = crate::api::ErrorBody), (status = 409, description = "not break-glass, or reviewed already", body = crate::api::ErrorBody)))]
pub async fn review(
    State(broker): AppState,
    Caller(user): Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<api::ReviewBody>,
) -> Result<Json<api::AccessRequest>, ApiError> {
    let id = parse_id("grant", &id)?;
    let record = broker.review_grant(&user, id, body.outcome, body.comment.as_deref()).await?;
    Ok(Json(view_request(&broker, &record)))
}

/// Mints a git credential for the caller's own live grant.
#[utoipa::path(post, path = "/v1/grants/{id}/credentials", tag = "grants", security(("bearer" = [])), params(("id" = i64, Path, minimum = 1, description = "its id")), responses((status = 201, description = "a git credential for the caller's live grant", body = crate::api::Credential), (status = 400, description = "bad input (a malformed id, body or query)", body = crate::api::ErrorBody), (status = 403, description = "not allowed", body = crate::api::ErrorBody), (status = 404, description = "not found, or not the caller's to see", body = crate::api::ErrorBody), (status = 409, description = "the state does not allow it", body = crate::api::ErrorBody), (status = 429, description = "too many requests (Retry-After)", body = crate::api::ErrorBody), (status = 502, description = "the git host refused or failed", body = crate::api::ErrorBody)))]
pub async fn mint_credential(
    State(broker): AppState,
    ClientAddr(client): ClientAddr,
    Caller(user): Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<(StatusCode, Json<api::Credential>), ApiError> {
    let id = parse_id("grant", &id)?;
    let (grant, minted) = broker.mint_credential(&user, id, client).await?;
    let credential = api::Credential {
        username: minted.username,
        password: minted.password,
        expires_at: minted.expires_at,
        authtype: minted.scheme,
        grant: view_grant(&broker, &grant),
    };
    Ok((StatusCode::CREATED, Json(credential)))
}
