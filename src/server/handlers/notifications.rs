//! `/v1/notifications`: where each notification destination's delivery
//! stands; `/v1/replicas`: the brokers on this database (admins).

use axum::Json;
use axum::extract::State;

use super::AppState;
use crate::api;
use crate::server::auth::Caller;
use crate::server::error::ApiError;

#[utoipa::path(get, path = "/v1/notifications", tag = "operations", security(("bearer" = [])), responses((status = 200, description = "each [[notify]] destination's delivery", body = Vec<crate::api::NotificationDestination>), (status = 403, description = "not allowed", body = crate::api::ErrorBody)))]
pub async fn list(State(broker): AppState, Caller(caller): Caller) -> Result<Json<Vec<api::NotificationDestination>>, ApiError> {
    let rows = broker.notifications(&caller).await?;
    Ok(Json(
        rows.into_iter()
            .map(|(d, p, behind)| api::NotificationDestination {
                name: d.name.clone(),
                kind: d.kind_name().to_string(),
                target: d.shown_url(),
                events: d.subscription.events.clone(),
                rules: d.subscription.rules.clone(),
                delivered_seq: p.delivered_seq,
                behind,
                failures: p.failures,
                last_error: p.last_error,
                next_attempt_at: p.next_attempt_at,
                given_up: p.given_up,
            })
            .collect(),
    ))
}

#[utoipa::path(get, path = "/v1/replicas", tag = "operations", security(("bearer" = [])), responses((status = 200, description = "the brokers on this database", body = Vec<crate::api::Replica>), (status = 403, description = "not allowed", body = crate::api::ErrorBody)))]
pub async fn replicas(State(broker): AppState, Caller(caller): Caller) -> Result<Json<Vec<api::Replica>>, ApiError> {
    let rows = broker.replicas(&caller).await?;
    Ok(Json(
        rows.into_iter()
            .map(|(r, live, answering)| api::Replica {
                id: r.id,
                version: r.version,
                started_at: r.started_at,
                seen_at: r.seen_at,
                live,
                answering,
            })
            .collect(),
    ))
}
