//! `/v1/grants`: list, read, revoke, and mint a git credential.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::Uri;
use axum::response::Response;
use serde::Deserialize;

use super::{AppState, listed, page, parse_id, view_grant};
use crate::api;
use crate::server::auth::{Caller, ClientAddr};
use crate::server::error::{ApiError, ApiPath, ApiQuery, OptionalJson};

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// Admins only: every user's grants.
    #[serde(default)]
    all: bool,
    /// Only grants live now.
    #[serde(default)]
    live: bool,
    /// Paging: grants older than this id (from the `Link` header).
    before: Option<i64>,
    limit: Option<u32>,
}

pub async fn list(State(broker): AppState, Caller(user): Caller, uri: Uri, ApiQuery(q): ApiQuery<ListQuery>) -> Result<Response, ApiError> {
    let listing = broker.list_grants(&user, q.all, q.live, page(q.before, q.limit)?).await?;
    Ok(listed(&uri, listing.next_before, listing.items.iter().map(|g| view_grant(&broker, g)).collect()))
}

/// Admins: grants that ended but whose host has not yet agreed.
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

pub async fn get(State(broker): AppState, Caller(user): Caller, ApiPath(id): ApiPath<String>) -> Result<Json<api::Grant>, ApiError> {
    let id = parse_id("grant", &id)?;
    Ok(Json(view_grant(&broker, &broker.get_grant(&user, id).await?)))
}

/// One grant's access period with its proof (admins).
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

/// Mints a git credential for the caller's own live grant.
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
