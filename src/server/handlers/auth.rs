//! `/v1/auth`: how people sign in (no login needed to ask), the device
//! sign-in through the identity provider, and signing out.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use super::{AppState, view_user};
use crate::api;
use crate::domain::records::SessionRecord;
use crate::server::auth::CallerSession;
use crate::server::broker::SignInPoll;
use crate::server::error::{ApiError, ApiJson};

pub fn view_session(session: &SessionRecord) -> api::SessionInfo {
    api::SessionInfo { id: session.id, issuer: session.issuer.clone(), ends_at: session.ends_at }
}

pub async fn methods(State(broker): AppState) -> Json<api::AuthMethods> {
    let issuer = broker.oidc_issuer().map(str::to_string);
    let mut methods = Vec::new();
    if issuer.is_some() {
        methods.push("oidc".to_string());
    }
    methods.push("token".to_string());
    Json(api::AuthMethods { methods, issuer })
}

pub async fn start_device(State(broker): AppState) -> Result<Json<api::DeviceSignIn>, ApiError> {
    let d = broker.start_device_sign_in().await?;
    Ok(Json(api::DeviceSignIn {
        login: d.login,
        user_code: d.user_code,
        verification_uri: d.verification_uri,
        verification_uri_complete: d.verification_uri_complete,
        expires_in: d.expires_in,
        interval: d.interval,
    }))
}

pub async fn finish_device(
    State(broker): AppState,
    ApiJson(body): ApiJson<api::DeviceLogin>,
) -> Result<(StatusCode, Json<api::SignInStatus>), ApiError> {
    Ok(match broker.finish_device_sign_in(&body.login).await? {
        SignInPoll::Pending { slow_down } => {
            let status = if slow_down { "slow_down" } else { "pending" };
            (StatusCode::ACCEPTED, Json(api::SignInStatus { status: status.into(), user: None, session: None, token: None }))
        }
        SignInPoll::Done(done) => (
            StatusCode::OK,
            Json(api::SignInStatus {
                status: "signed_in".into(),
                user: Some(view_user(&done.user)),
                session: Some(view_session(&done.session)),
                token: Some(done.token),
            }),
        ),
    })
}

pub async fn sign_out(State(broker): AppState, CallerSession(auth): CallerSession) -> Result<StatusCode, ApiError> {
    broker.sign_out(&auth).await?;
    Ok(StatusCode::NO_CONTENT)
}
