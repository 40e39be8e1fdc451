//! `GET /healthz`: 200 when the broker can do its job, 503 with the reason
//! when it cannot (a database that fails reads or its integrity check, or
//! cannot be reached), so a load balancer or an operator sees the truth; and
//! which broker answered, on which engine. Grants whose end a host has
//! not yet agreed to are a warning (the broker still works; an admin acts).
//! `GET /metrics`: the Prometheus metrics (`server::metrics`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use super::AppState;
use crate::api;
use crate::server::auth::{Caller, ClientAddr};
use crate::server::error::ApiError;

#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "the broker can do its job", body = crate::api::Health), (status = 503, description = "it cannot, and why", body = crate::api::Health)))]
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

/// `GET /metrics`: from `metrics_from` networks (loopback by default), or
/// with an admin's token from anywhere else.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus metrics (OpenMetrics text)", content_type = "application/openmetrics-text", body = String), (status = 403, description = "not allowed", body = crate::api::ErrorBody)))]
pub async fn metrics(State(broker): AppState, request: axum::extract::Request) -> Result<axum::response::Response, ApiError> {
    use axum::extract::FromRequestParts;
    use axum::response::IntoResponse;
    let (mut parts, _) = request.into_parts();
    let ClientAddr(ip) = ClientAddr::of(&parts, &broker)?;
    if !broker.config().metrics_from.iter().any(|net| net.contains(&ip)) {
        let Caller(user) = Caller::from_request_parts(&mut parts, &broker).await?;
        if !user.admin {
            return Err(ApiError::forbidden("only admins, or clients in server.metrics_from, may read /metrics"));
        }
    }
    let text = broker.metrics_text().await?;
    Ok(([(axum::http::header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text).into_response())
}
