//! The HTTP surface in one place: every route, and the layers (body limits)
//! around them. Handlers live in `handlers/`, one file per resource.

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};

use super::broker::Broker;
use super::error::ApiError;
use super::gateway;
use super::handlers::{audit, auth, grants, health, notifications, repos, requests, users};
use super::web;

pub fn router(broker: Arc<Broker>) -> Router {
    let max_body = broker.config().max_body_bytes;
    let api = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(health::metrics))
        .route("/v1/openapi.json", get(super::openapi::openapi_json))
        .route("/v1/whoami", get(users::whoami))
        .route("/v1/auth", get(auth::methods))
        .route("/v1/auth/device", post(auth::start_device))
        .route("/v1/auth/device/token", post(auth::finish_device))
        .route("/v1/auth/browser", post(auth::start_browser))
        .route("/v1/auth/browser/token", post(auth::finish_browser))
        .route("/v1/auth/callback", get(auth::callback))
        .route("/v1/auth/session", delete(auth::sign_out))
        .route("/v1/repos", get(repos::list))
        .route("/v1/users", get(users::list).post(users::add))
        .route("/v1/users/{name}", delete(users::remove))
        .route("/v1/users/{name}/token", post(users::rotate_token))
        .route("/v1/requests", get(requests::list).post(requests::create))
        .route("/v1/requests/{id}", get(requests::get))
        .route("/v1/requests/{id}/approve", post(requests::approve))
        .route("/v1/requests/{id}/deny", post(requests::deny))
        .route("/v1/requests/{id}/cancel", post(requests::cancel))
        .route("/v1/grants", get(grants::list))
        .route("/v1/grants/failing", get(grants::failing))
        .route("/v1/grants/unreviewed", get(grants::unreviewed))
        .route("/v1/grants/{id}", get(grants::get))
        .route("/v1/grants/{id}/revoke", post(grants::revoke))
        .route("/v1/grants/{id}/report", get(grants::report))
        .route("/v1/grants/{id}/credentials", post(grants::mint_credential))
        .route("/v1/grants/{id}/extend", post(grants::extend))
        .route("/v1/grants/{id}/review", post(grants::review))
        .route("/v1/notifications", get(notifications::list))
        .route("/v1/replicas", get(notifications::replicas))
        .route("/v1/audit", get(audit::page))
        .route("/v1/audit/verify", get(audit::verify))
        .route("/v1/audit/checkpoint", get(audit::checkpoint))
        .fallback(|| async { ApiError::not_found("route") })
        .layer(DefaultBodyLimit::max(max_body));
    // The approval pages: HTML for people, beside the API.
    let pages = Router::new()
        .route("/requests", get(web::list))
        .route("/requests/{id}", get(web::detail).post(web::decide))
        .route("/requests/{id}/review", post(web::review))
        .route("/sign-in", get(web::sign_in_page).post(web::sign_in_with_token))
        .route("/sign-in/idp", post(web::sign_in_with_idp))
        .route("/sign-out", post(web::sign_out))
        .layer(DefaultBodyLimit::max(16 * 1024));
    let api = pages.merge(api);
    // Git traffic streams packs of any size, so it has no body limit.
    let git = Router::new().route("/git/{*path}", get(gateway::serve).post(gateway::serve)).layer(DefaultBodyLimit::disable());
    api.merge(git).layer(axum::middleware::from_fn_with_state(broker.clone(), super::request_id::layer)).with_state(broker)
}
