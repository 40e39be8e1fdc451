//! `/v1/requests`: create, list, read (with long-poll), approve, deny, cancel.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use serde::Deserialize;

use super::{AppState, listed, page, parse_id, view_request};
use crate::api;
use crate::domain::request::RequestStatus;
use crate::domain::{AccessDuration, Level};
use crate::server::auth::Caller;
use crate::server::broker::RequestQuery;
use crate::server::error::{ApiError, ApiJson, ApiPath, ApiQuery, OptionalJson};

/// One request as answered on its own: with what it still lacks where its
/// rule asks several groups.
async fn view_with_needs(
    broker: &crate::server::Broker,
    record: &crate::domain::records::RequestRecord,
) -> Result<api::AccessRequest, ApiError> {
    let mut view = view_request(broker, record);
    view.needs = broker.still_needed(record).await?;
    Ok(view)
}

fn parse_status(raw: &str) -> Result<RequestStatus, ApiError> {
    raw.parse().map_err(ApiError::bad_input)
}

#[utoipa::path(post, path = "/v1/requests", tag = "requests", security(("bearer" = [])), request_body = crate::api::CreateRequest, responses((status = 201, description = "the request (approved at once when the policy says so)", body = crate::api::AccessRequest), (status = 200, description = "a live grant already covers it: that grant's request", body = crate::api::AccessRequest), (status = 400, description = "bad input (a malformed id, body or query)", body = crate::api::ErrorBody), (status = 403, description = "not allowed", body = crate::api::ErrorBody), (status = 404, description = "not found, or not the caller's to see", body = crate::api::ErrorBody)))]
pub async fn create(
    State(broker): AppState,
    Caller(user): Caller,
    ApiJson(body): ApiJson<api::CreateRequest>,
) -> Result<(StatusCode, Json<api::AccessRequest>), ApiError> {
    let level: Level = body.level.trim().parse().map_err(|e: crate::domain::level::UnknownLevel| ApiError::bad_input(e.to_string()))?;
    let duration: AccessDuration =
        body.duration.parse().map_err(|e: crate::domain::duration::DurationError| ApiError::bad_input(e.to_string()))?;
    let created = broker.create_request(&user, &body.repo, level, duration, body.reason.as_deref(), &body.refs, body.break_glass).await?;
    let mut view = view_request(&broker, &created.record);
    view.existing = created.existing;
    let status = if created.existing { StatusCode::OK } else { StatusCode::CREATED };
    Ok((status, Json(view)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    #[serde(default)]
    mine: bool,
    #[serde(default)]
    reviewable: bool,
    #[param(value_type = Option<crate::domain::request::RequestStatus>)]
    status: Option<String>,
    /// Paging: requests older than this id (from the `Link` header).
    #[param(minimum = 1)]
    before: Option<i64>,
    /// At most this many (default 500).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

#[utoipa::path(get, path = "/v1/requests", tag = "requests", security(("bearer" = [])), params(ListQuery), responses((status = 200, description = "requests the caller may see, newest first (next page in the Link header)", body = Vec<crate::api::AccessRequest>), (status = 400, description = "bad input (a malformed id, body or query)", body = crate::api::ErrorBody)))]
pub async fn list(State(broker): AppState, Caller(user): Caller, uri: Uri, ApiQuery(q): ApiQuery<ListQuery>) -> Result<Response, ApiError> {
    let status = q.status.as_deref().map(parse_status).transpose()?;
    let query = RequestQuery { mine: q.mine, reviewable: q.reviewable, status };
    let listing = broker.list_requests(&user, &query, page(q.before, q.limit)?).await?;
    Ok(listed(&uri, listing.next_before, listing.items.iter().map(|r| view_request(&broker, r)).collect()))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WaitQuery {
    /// Hold the call open up to this long (`30s`, `2m`) for the status to change.
    #[param(schema_with = crate::api::schema::duration, required = false)]
    wait: Option<String>,
    /// The status the client last saw; the call returns once it differs. Default `pending`.
    #[param(value_type = Option<crate::domain::request::RequestStatus>)]
    status: Option<String>,
}

#[utoipa::path(get, path = "/v1/requests/{id}", tag = "requests", security(("bearer" = [])), params(("id" = i64, Path, minimum = 1, description = "its id"), WaitQuery), responses((status = 200, description = "the request (with wait: once its status differs, or when the wait ends)", body = crate::api::AccessRequest), (status = 400, description = "bad input (a malformed id, body or query)", body = crate::api::ErrorBody), (status = 404, description = "not found, or not the caller's to see", body = crate::api::ErrorBody)))]
pub async fn get(
    State(broker): AppState,
    Caller(user): Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<WaitQuery>,
) -> Result<Json<api::AccessRequest>, ApiError> {
    let id = parse_id("request", &id)?;
    // A bad `status` is refused with or without a wait to go with it.
    let seen = parse_status(q.status.as_deref().unwrap_or("pending"))?;
    let record = match q.wait {
        None => broker.get_request(&user, id).await?,
        Some(wait) => {
            let timeout = wait
                .parse::<AccessDuration>()
                .map_err(|e| ApiError::bad_input(format!("invalid wait `{wait}`: {e}; expected e.g. 30s")))?
                .as_std();
            broker.wait(&user, id, seen, timeout).await?
        }
    };
    Ok(Json(view_with_needs(&broker, &record).await?))
}

#[utoipa::path(post, path = "/v1/requests/{id}/approve", tag = "requests", security(("bearer" = [])), params(("id" = i64, Path, minimum = 1, description = "its id")), request_body(content = Option<crate::api::ApproveBody>, description = "optional"), responses((status = 200, description = "the request after the approval", body = crate::api::AccessRequest), (status = 400, description = "bad input (a malformed id, body or query)", body = crate::api::ErrorBody), (status = 403, description = "not allowed", body = crate::api::ErrorBody), (status = 404, description = "not found, or not the caller's to see", body = crate::api::ErrorBody), (status = 409, description = "the state does not allow it", body = crate::api::ErrorBody)))]
pub async fn approve(
    State(broker): AppState,
    Caller(user): Caller,
    ApiPath(id): ApiPath<String>,
    OptionalJson(body): OptionalJson<api::ApproveBody>,
) -> Result<Json<api::AccessRequest>, ApiError> {
    let id = parse_id("request", &id)?;
    let record = broker.approve(&user, id, body.comment.as_deref()).await?;
    Ok(Json(view_with_needs(&broker, &record).await?))
}

#[utoipa::path(post, path = "/v1/requests/{id}/deny", tag = "requests", security(("bearer" = [])), params(("id" = i64, Path, minimum = 1, description = "its id")), request_body = crate::api::DenyBody, responses((status = 200, description = "the request, denied", body = crate::api::AccessRequest), (status = 400, description = "bad input (a malformed id, body or query)", body = crate::api::ErrorBody), (status = 403, description = "not allowed", body = crate::api::ErrorBody), (status = 404, description = "not found, or not the caller's to see", body = crate::api::ErrorBody), (status = 409, description = "the state does not allow it", body = crate::api::ErrorBody)))]
pub async fn deny(
    State(broker): AppState,
    Caller(user): Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<api::DenyBody>,
) -> Result<Json<api::AccessRequest>, ApiError> {
    let id = parse_id("request", &id)?;
    let record = broker.deny(&user, id, &body.reason).await?;
    Ok(Json(view_request(&broker, &record)))
}

#[utoipa::path(post, path = "/v1/requests/{id}/cancel", tag = "requests", security(("bearer" = [])), params(("id" = i64, Path, minimum = 1, description = "its id")), responses((status = 200, description = "the request, canceled", body = crate::api::AccessRequest), (status = 400, description = "bad input (a malformed id, body or query)", body = crate::api::ErrorBody), (status = 403, description = "not allowed", body = crate::api::ErrorBody), (status = 404, description = "not found, or not the caller's to see", body = crate::api::ErrorBody), (status = 409, description = "the state does not allow it", body = crate::api::ErrorBody)))]
pub async fn cancel(
    State(broker): AppState,
    Caller(user): Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<api::AccessRequest>, ApiError> {
    let id = parse_id("request", &id)?;
    let record = broker.cancel(&user, id).await?;
    Ok(Json(view_request(&broker, &record)))
}
