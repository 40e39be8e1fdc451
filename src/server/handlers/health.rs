//! `GET /healthz`: liveness and a store check.

use axum::Json;
use axum::extract::State;

use super::AppState;
use crate::api;
use crate::server::error::ApiError;

pub async fn healthz(State(broker): AppState) -> Result<Json<api::Health>, ApiError> {
    broker.health().await?;
    Ok(Json(api::Health { status: "ok".into(), version: env!("CARGO_PKG_VERSION").into() }))
}
