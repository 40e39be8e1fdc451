//! `GET /v1/repos`: the repos the broker knows and their clone URLs.

use axum::Json;
use axum::extract::State;

use super::AppState;
use crate::api;
use crate::server::auth::Caller;

pub async fn list(State(broker): AppState, Caller(_): Caller) -> Json<Vec<api::Repo>> {
    let view = |r: &crate::domain::repo::RepoSpec| api::Repo {
        name: r.name.clone(),
        clone_url: r.url.as_ref().map(ToString::to_string),
        upstream_url: r.upstream.as_ref().map(ToString::to_string),
    };
    Json(broker.repos().iter().map(view).collect())
}
