//! `GET /v1/repos`: the repos the broker knows and their clone URLs.

use axum::Json;
use axum::extract::State;

use super::AppState;
use crate::api;
use crate::server::auth::Caller;

#[utoipa::path(get, path = "/v1/repos", tag = "repos", security(("bearer" = [])), responses((status = 200, description = "known repos and their clone URLs", body = Vec<crate::api::Repo>)))]
pub async fn list(State(broker): AppState, Caller(_): Caller) -> Json<Vec<api::Repo>> {
    let view = |r: &crate::domain::repo::RepoSpec| match broker.by_membership(r) {
        true => api::Repo {
            name: r.name.clone(),
            clone_url: None,
            upstream_url: None,
            own_credentials_url: r.url.as_ref().map(ToString::to_string),
        },
        false => api::Repo {
            name: r.name.clone(),
            clone_url: r.url.as_ref().map(ToString::to_string),
            upstream_url: r.upstream.as_ref().map(ToString::to_string),
            own_credentials_url: None,
        },
    };
    Json(broker.live().repos.iter().map(view).collect())
}
