//! `/v1/whoami` and `/v1/users`: the caller, and users and tokens for admins.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use super::{AppState, view_user};
use crate::api;
use crate::server::auth::{Caller, CallerSession};
use crate::server::broker::NewUser;
use crate::server::error::{ApiError, ApiJson, ApiPath};

#[utoipa::path(get, path = "/v1/whoami", tag = "users", security(("bearer" = [])), responses((status = 200, description = "who the token is", body = crate::api::WhoAmI)))]
pub async fn whoami(CallerSession(auth): CallerSession) -> Json<api::WhoAmI> {
    Json(api::WhoAmI { user: view_user(&auth.user), session: auth.session.as_ref().map(super::auth::view_session) })
}

#[utoipa::path(get, path = "/v1/users", tag = "users", security(("bearer" = [])), responses((status = 200, description = "every user", body = Vec<crate::api::User>), (status = 403, description = "not allowed", body = crate::api::ErrorBody)))]
pub async fn list(State(broker): AppState, Caller(caller): Caller) -> Result<Json<Vec<api::User>>, ApiError> {
    Ok(Json(broker.users(&caller).await?.iter().map(view_user).collect()))
}

#[utoipa::path(post, path = "/v1/users", tag = "users", security(("bearer" = [])), request_body = crate::api::NewUser, responses((status = 201, description = "the user and their token, shown once", body = crate::api::IssuedToken), (status = 400, description = "bad input (a malformed id, body or query)", body = crate::api::ErrorBody), (status = 403, description = "not allowed", body = crate::api::ErrorBody), (status = 409, description = "the state does not allow it", body = crate::api::ErrorBody)))]
pub async fn add(
    State(broker): AppState,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<api::NewUser>,
) -> Result<(StatusCode, Json<api::IssuedToken>), ApiError> {
    let new = NewUser { name: body.name, groups: body.groups, admin: body.admin, email: body.email };
    let (user, token) = broker.add_user(&caller, new, body.service).await?;
    Ok((StatusCode::CREATED, Json(api::IssuedToken { user: view_user(&user), token })))
}

#[utoipa::path(delete, path = "/v1/users/{name}", tag = "users", security(("bearer" = [])), params(("name" = String, Path, description = "the user's name")), responses((status = 204, description = "removed: their grants revoked, requests canceled, credentials ended"), (status = 400, description = "bad input (a malformed id, body or query)", body = crate::api::ErrorBody), (status = 403, description = "not allowed", body = crate::api::ErrorBody), (status = 404, description = "not found, or not the caller's to see", body = crate::api::ErrorBody)))]
pub async fn remove(State(broker): AppState, Caller(caller): Caller, ApiPath(name): ApiPath<String>) -> Result<StatusCode, ApiError> {
    broker.remove_user(&caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v1/users/{name}/token", tag = "users", security(("bearer" = [])), params(("name" = String, Path, description = "the user's name")), responses((status = 200, description = "the new token, shown once", body = crate::api::IssuedToken), (status = 400, description = "bad input (a malformed id, body or query)", body = crate::api::ErrorBody), (status = 403, description = "not allowed", body = crate::api::ErrorBody), (status = 404, description = "not found, or not the caller's to see", body = crate::api::ErrorBody)))]
pub async fn rotate_token(
    State(broker): AppState,
    Caller(caller): Caller,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<api::IssuedToken>, ApiError> {
    let (user, token) = broker.rotate_token(&caller, &name).await?;
    Ok(Json(api::IssuedToken { user: view_user(&user), token }))
}
