//! `/v1/auth`: how people sign in (no login needed to ask), the device
//! sign-in through the identity provider, and signing out.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Html;

use super::{AppState, view_user};
use crate::api;
use crate::domain::records::SessionRecord;
use crate::server::auth::CallerSession;
use crate::server::broker::{CalledBack, SignInPoll};
use crate::server::error::{ApiError, ApiJson, ApiQuery};

pub fn view_session(session: &SessionRecord) -> api::SessionInfo {
    api::SessionInfo { id: session.id, issuer: session.issuer.clone(), ends_at: session.ends_at }
}

#[utoipa::path(get, path = "/v1/auth", tag = "auth", responses((status = 200, description = "how people sign in here", body = crate::api::AuthMethods)))]
pub async fn methods(State(broker): AppState) -> Json<api::AuthMethods> {
    let issuer = broker.oidc_issuer().map(str::to_string);
    let mut methods = Vec::new();
    if issuer.is_some() {
        methods.push("oidc".to_string());
    }
    methods.push("token".to_string());
    Json(api::AuthMethods { methods, issuer })
}

#[utoipa::path(post, path = "/v1/auth/device", tag = "auth", responses((status = 200, description = "a device sign-in started at the identity provider", body = crate::api::DeviceSignIn), (status = 400, description = "bad input (a malformed id, body or query)", body = crate::api::ErrorBody), (status = 404, description = "this broker does not sign people in through an identity provider", body = crate::api::ErrorBody), (status = 409, description = "the state does not allow it", body = crate::api::ErrorBody)))]
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

#[utoipa::path(post, path = "/v1/auth/device/token", tag = "auth", request_body = crate::api::DeviceLogin, responses((status = 200, description = "signed in: the token, once", body = crate::api::SignInStatus), (status = 202, description = "still pending", body = crate::api::SignInStatus), (status = 400, description = "bad input (a malformed id, body or query)", body = crate::api::ErrorBody), (status = 403, description = "not allowed", body = crate::api::ErrorBody), (status = 404, description = "not found, or not the caller's to see", body = crate::api::ErrorBody), (status = 409, description = "the state does not allow it", body = crate::api::ErrorBody)))]
pub async fn finish_device(
    State(broker): AppState,
    ApiJson(body): ApiJson<api::DeviceLogin>,
) -> Result<(StatusCode, Json<api::SignInStatus>), ApiError> {
    Ok(status_of(broker.finish_device_sign_in(&body.login).await?))
}

#[utoipa::path(post, path = "/v1/auth/browser", tag = "auth", responses((status = 200, description = "a browser sign-in started", body = crate::api::BrowserSignIn), (status = 400, description = "bad input (a malformed id, body or query)", body = crate::api::ErrorBody), (status = 404, description = "this broker does not sign people in through an identity provider", body = crate::api::ErrorBody), (status = 409, description = "the state does not allow it", body = crate::api::ErrorBody)))]
pub async fn start_browser(State(broker): AppState) -> Result<Json<api::BrowserSignIn>, ApiError> {
    let b = broker.start_browser_sign_in(None).await?;
    Ok(Json(api::BrowserSignIn { login: b.login, url: b.url, expires_in: b.expires_in }))
}

#[utoipa::path(post, path = "/v1/auth/browser/token", tag = "auth", request_body = crate::api::DeviceLogin, responses((status = 200, description = "signed in: the token, once", body = crate::api::SignInStatus), (status = 202, description = "still pending", body = crate::api::SignInStatus), (status = 400, description = "bad input (a malformed id, body or query)", body = crate::api::ErrorBody), (status = 403, description = "not allowed", body = crate::api::ErrorBody), (status = 404, description = "not found, or not the caller's to see", body = crate::api::ErrorBody), (status = 409, description = "the state does not allow it", body = crate::api::ErrorBody)))]
pub async fn finish_browser(
    State(broker): AppState,
    ApiJson(body): ApiJson<api::DeviceLogin>,
) -> Result<(StatusCode, Json<api::SignInStatus>), ApiError> {
    Ok(status_of(broker.finish_browser_sign_in(&body.login)?))
}

/// What the IdP sends the browser back with.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Callback {
    /// The sign-in this answers (what the broker sent the IdP).
    #[param(required = true, value_type = String)]
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
}

/// `GET /v1/auth/callback`: a page for the person, not JSON; the terminal
/// that started the sign-in learns the outcome by polling.
#[utoipa::path(get, path = "/v1/auth/callback", tag = "auth", params(Callback), responses((status = 200, description = "an HTML page: signed in", content_type = "text/html", body = String), (status = 400, description = "an HTML page: why not", content_type = "text/html", body = String), (status = 403, description = "an HTML page: a replayed or unknown state", content_type = "text/html", body = String), (status = 404, description = "an HTML page: this broker signs nobody in through an identity provider", content_type = "text/html", body = String)))]
pub async fn callback(State(broker): AppState, ApiQuery(q): ApiQuery<Callback>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let Some(state) = q.state else {
        return page(
            StatusCode::BAD_REQUEST,
            "Not signed in",
            "This address is missing its sign-in state; start again with `jit login --flow browser`.",
        )
        .into_response();
    };
    match broker.browser_callback(&state, q.code.as_deref(), q.error.as_deref()).await {
        // Started by the approval pages: the browser keeps the session and goes back to them.
        Ok(CalledBack { web: Some((token, next)), .. }) => crate::server::web::signed_in(&broker, &token, &next),
        Ok(CalledBack { user, web: None }) => page(
            StatusCode::OK,
            "Signed in",
            &format!("You are signed in to jit as {}. You can close this page and return to the terminal.", user.name),
        )
        .into_response(),
        Err(e) => {
            let e = ApiError::from(e);
            page(e.status, "Not signed in", &format!("{} {}", e.message, e.hint.unwrap_or_default())).into_response()
        }
    }
}

/// A one-paragraph page; the text is escaped (it may quote the IdP).
fn page(status: StatusCode, title: &str, text: &str) -> (StatusCode, Html<String>) {
    let escape = crate::domain::text::html_escape;
    let body = format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>jit: {}</title></head><body><h1>{}</h1><p>{}</p></body></html>",
        escape(title),
        escape(title),
        escape(text)
    );
    (status, Html(body))
}

fn status_of(poll: SignInPoll) -> (StatusCode, Json<api::SignInStatus>) {
    match poll {
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
    }
}

#[utoipa::path(delete, path = "/v1/auth/session", tag = "auth", security(("bearer" = [])), responses((status = 204, description = "signed out")))]
pub async fn sign_out(State(broker): AppState, CallerSession(auth): CallerSession) -> Result<StatusCode, ApiError> {
    broker.sign_out(&auth).await?;
    Ok(StatusCode::NO_CONTENT)
}
