//! `GET /healthz`: 200 when the broker can do its job, 503 with the reason
//! when it cannot (a database that fails reads or its integrity check, or
//! cannot be reached), so a load balancer or an operator sees the truth; and
//! which broker answered, on which engine. Grants whose end a host has
//! not yet agreed to are a warning (the broker still works; an admin acts).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use super::AppState;
use crate::api;

pub async fn healthz(State(broker): AppState) -> (StatusCode, Json<api::Health>) {
    let version = env!("CARGO_PKG_VERSION").to_string();
    let (replica, database) = (broker.replica().to_string(), broker.database_kind().to_string());
    match broker.health().await {
        Ok(warnings) => (StatusCode::OK, Json(api::Health { status: "ok".into(), version, replica, database, problem: None, warnings })),
        Err(e) => {
            tracing::error!(error = %e, "health check failed");
            let problem = if e.database_damaged() { "the database is damaged" } else { "the database is unavailable" };
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(api::Health {
                    status: "unhealthy".into(),
                    version,
                    replica,
                    database,
                    problem: Some(problem.into()),
                    warnings: Vec::new(),
                }),
            )
        }
    }
}
