//! The git smart-HTTP front door: `/git/NAME.git/…`.
//!
//! It reads which repo and service a request is for (`domain::smart_http`),
//! takes the Basic credentials (axum-extra's typed `Authorization`), asks the
//! broker whether the request may pass, records the operation, and hands the
//! request to the repo's backend (`server::http_backend` for bare repos on
//! this machine). Bodies stream both ways: a pack never sits whole in memory.

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum_extra::headers::authorization::Basic;
use axum_extra::headers::{Authorization, HeaderMapExt};

use super::AppState;
use crate::domain::smart_http::{RouteError, route};
use crate::providers::GitBackend;
use crate::server::auth::ClientAddr;
use crate::server::broker::git::GitRefusal;
use crate::server::error::{git_message, git_rate_limited};
use crate::server::http_backend;

pub async fn serve(
    State(broker): AppState,
    ClientAddr(client): ClientAddr,
    method: Method,
    Path(path): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let route = match route(&path, method == Method::POST, query.as_deref()) {
        Ok(route) => route,
        Err(e @ RouteError::Ambiguous) => return git_message(StatusCode::BAD_REQUEST, format!("jit: {e}")),
        Err(e) => return git_message(StatusCode::NOT_FOUND, format!("jit: {e}")),
    };
    // A malformed header is no credentials: git gets the challenge and asks its helpers.
    let basic: Option<Authorization<Basic>> = headers.typed_get();
    let credentials = basic.as_ref().map(|a| (a.username(), a.password()));
    let user = credentials.map(|(u, _)| u);
    if credentials.is_some()
        && let Some(wait) = broker.auth_wait(client, user)
    {
        return git_rate_limited("too many failed logins from this address or for this user", wait);
    }
    let access = match broker.authorize_git(&route, credentials, client).await {
        Ok(access) => access,
        Err(refusal) => {
            if matches!(refusal, GitRefusal::UnknownCredential | GitRefusal::WrongRepo) {
                broker.auth_failed(client, user, refusal.kind());
            }
            broker.record_git_refusal(&route, &refusal, user, client).await;
            return refusal.into_response();
        }
    };
    if let Err(wait) = broker.git_request_allowed(access.grant.id) {
        return git_rate_limited("too many git requests with this credential", wait);
    }
    if let Err(e) = broker.record_git_operation(&access.grant, &route).await {
        tracing::error!(error = %e, "gateway: audit append failed; refusing the git request");
        return git_message(StatusCode::SERVICE_UNAVAILABLE, "jit: the broker could not record this operation; try again");
    }
    match access.backend {
        GitBackend::Local { project_root } => {
            let request = http_backend::CgiRequest {
                project_root: &project_root,
                path_info: format!("/{}.git/{}", route.repo, route.rest()),
                method: &method,
                query: route.backend_query(),
                headers: &headers,
                remote_user: &access.grant.user,
            };
            match http_backend::run(request, body).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, "gateway: git http-backend failed");
                    git_message(StatusCode::BAD_GATEWAY, "jit: the git backend failed")
                }
            }
        }
    }
}
