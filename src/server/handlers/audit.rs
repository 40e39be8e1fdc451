//! `/v1/audit`: pages of the log, and the chain verified on the broker (admins).

use axum::Json;
use axum::extract::State;
use serde::Deserialize;

use super::AppState;
use crate::api;
use crate::domain::audit::AuditEvent;
use crate::server::auth::Caller;
use crate::server::broker::audit::AUDIT_PAGE;
use crate::server::error::{ApiError, ApiQuery};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Events after this sequence number (for paging); default 0.
    #[serde(default)]
    after: i64,
    /// At most this many events (default and most 1000).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// Only events at or after this RFC 3339 time.
    #[param(format = DateTime)]
    since: Option<String>,
}

#[utoipa::path(get, path = "/v1/audit", tag = "audit", security(("bearer" = [])), params(PageQuery), responses((status = 200, description = "a page of the audit log, oldest first", body = Vec<crate::domain::audit::AuditEvent>), (status = 400, description = "bad input (a malformed id, body or query)", body = crate::api::ErrorBody), (status = 403, description = "not allowed", body = crate::api::ErrorBody)))]
pub async fn page(
    State(broker): AppState,
    Caller(user): Caller,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Vec<AuditEvent>>, ApiError> {
    let since = q
        .since
        .as_deref()
        .map(|s| {
            chrono::DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&chrono::Utc))
                .map_err(|e| ApiError::bad_input(format!("invalid since `{s}`: {e}; expected an RFC 3339 time")))
        })
        .transpose()?;
    if let Some(limit) = q.limit.filter(|l| !(1..=AUDIT_PAGE).contains(l)) {
        return Err(ApiError::bad_input(format!("invalid limit {limit}: expected 1 to {AUDIT_PAGE}")));
    }
    Ok(Json(broker.audit_page(&user, q.after, since, q.limit).await?))
}

#[utoipa::path(get, path = "/v1/audit/checkpoint", tag = "audit", security(("bearer" = [])), responses((status = 200, description = "the latest signed checkpoint and the key that verifies it", body = crate::api::AuditCheckpoint), (status = 403, description = "not allowed", body = crate::api::ErrorBody)))]
pub async fn checkpoint(State(broker): AppState, Caller(user): Caller) -> Result<Json<api::AuditCheckpoint>, ApiError> {
    let (checkpoint, key) = broker.audit_checkpoint(&user).await?;
    Ok(Json(api::AuditCheckpoint { checkpoint, public_key: crate::domain::audit::public_key_text(&key) }))
}

#[utoipa::path(get, path = "/v1/audit/verify", tag = "audit", security(("bearer" = [])), responses((status = 200, description = "the chain checked on the broker", body = crate::api::AuditVerification), (status = 403, description = "not allowed", body = crate::api::ErrorBody)))]
pub async fn verify(State(broker): AppState, Caller(user): Caller) -> Result<Json<api::AuditVerification>, ApiError> {
    let report = broker.verify_audit(&user).await?;
    Ok(Json(api::AuditVerification { ok: report.error.is_none(), events: report.events, error: report.error }))
}
