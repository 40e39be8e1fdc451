//! `/v1/whoami` and `/v1/users`: the caller, and users and tokens for admins.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use super::{AppState, view_user};
use crate::api;
use crate::server::auth::{Caller, CallerSession};
use crate::server::broker::NewUser;
use crate::server::error::{ApiError, ApiJson, ApiPath};

pub async fn whoami(CallerSession(auth): CallerSession) -> Json<api::WhoAmI> {
    Json(api::WhoAmI { user: view_user(&auth.user), session: auth.session.as_ref().map(super::auth::view_session) })
}

pub async fn list(State(broker): AppState, Caller(caller): Caller) -> Result<Json<Vec<api::User>>, ApiError> {
    Ok(Json(broker.users(&caller).await?.iter().map(view_user).collect()))
}

pub async fn add(
    State(broker): AppState,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<api::NewUser>,
) -> Result<(StatusCode, Json<api::IssuedToken>), ApiError> {
    let new = NewUser { name: body.name, groups: body.groups, admin: body.admin, email: body.email };
    let (user, token) = broker.add_user(&caller, new, body.service).await?;
    Ok((StatusCode::CREATED, Json(api::IssuedToken { user: view_user(&user), token })))
}

pub async fn remove(State(broker): AppState, Caller(caller): Caller, ApiPath(name): ApiPath<String>) -> Result<StatusCode, ApiError> {
    broker.remove_user(&caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn rotate_token(
    State(broker): AppState,
    Caller(caller): Caller,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<api::IssuedToken>, ApiError> {
    let (user, token) = broker.rotate_token(&caller, &name).await?;
    Ok(Json(api::IssuedToken { user: view_user(&user), token }))
}
