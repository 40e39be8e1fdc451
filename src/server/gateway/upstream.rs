//! The HTTP bridge to a repo's own host, for repos the gateway fronts.
//!
//! One git smart-HTTP request goes to `<upstream>/info/refs?service=…` or
//! `<upstream>/git-…-pack` with the broker's credential; both bodies stream
//! (a pack never sits whole in memory). Only the headers git's protocol needs
//! cross in either direction: never the user's `Authorization`, never the
//! host's cookies or challenges. A host that fails (refuses the broker's
//! credential, answers 5xx, redirects, times out, cannot be reached) is an
//! [`UpstreamError`] whose text is safe to show a user: it carries neither
//! the credential nor the host's own body.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, Method, StatusCode};
use axum::response::Response;
use futures_util::TryStreamExt;

use crate::domain::token::ExposeSecret;
use crate::providers::upstream::UpstreamHost;

/// Request headers the host gets from git's request.
const REQUEST_HEADERS: [&str; 7] =
    ["content-type", "content-encoding", "content-length", "accept", "accept-encoding", "user-agent", "git-protocol"];

/// Response headers git gets from the host's answer.
const RESPONSE_HEADERS: [&str; 6] = ["content-type", "content-encoding", "content-length", "cache-control", "expires", "pragma"];

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("the host refused the broker's credential (HTTP {0})")]
    Refused(u16),
    #[error("the host has no repository at {0}")]
    NotFound(String),
    #[error("the host answered HTTP {0}")]
    Status(u16),
    #[error("the host redirected elsewhere (HTTP {0}); the repo's url in the broker's config is out of date")]
    Redirected(u16),
    #[error("the host did not answer in time")]
    Timeout,
    #[error("the host could not be reached")]
    Unreachable,
}

impl UpstreamError {
    /// A short, stable name for the audit log.
    pub fn kind(&self) -> &'static str {
        match self {
            UpstreamError::Refused(_) => "credential_refused",
            UpstreamError::NotFound(_) => "not_found",
            UpstreamError::Status(_) => "error_status",
            UpstreamError::Redirected(_) => "redirected",
            UpstreamError::Timeout => "timeout",
            UpstreamError::Unreachable => "unreachable",
        }
    }
}

/// One request for the host.
pub struct UpstreamRequest<'a> {
    /// The repo at the host, `https://host/acme/api.git`.
    pub repo_url: String,
    /// `info/refs` or the service's name.
    pub rest: &'static str,
    /// Only what the gateway validated (`GitRoute::backend_query`).
    pub query: String,
    pub method: &'a Method,
    pub headers: &'a HeaderMap,
}

/// Sends `request` with `body` to the host and streams its answer back.
pub async fn forward(host: &UpstreamHost, request: UpstreamRequest<'_>, body: Body) -> Result<Response, UpstreamError> {
    let mut url = format!("{}/{}", request.repo_url, request.rest);
    if !request.query.is_empty() {
        url = format!("{url}?{}", request.query);
    }
    let mut outgoing = host
        .client
        .request(request.method.clone(), &url)
        .basic_auth(&host.username, Some(host.password.expose_secret()))
        .body(reqwest::Body::wrap_stream(body.into_data_stream()));
    for name in REQUEST_HEADERS {
        for value in request.headers.get_all(name) {
            outgoing = outgoing.header(name, value);
        }
    }
    let answer = outgoing.send().await.map_err(|e| transport_error(&e))?;
    let status = answer.status();
    match status.as_u16() {
        200..=299 => {}
        401 | 403 => return Err(UpstreamError::Refused(status.as_u16())),
        404 => return Err(UpstreamError::NotFound(request.repo_url)),
        300..=399 => return Err(UpstreamError::Redirected(status.as_u16())),
        code => return Err(UpstreamError::Status(code)),
    }
    let mut response_headers = HeaderMap::new();
    for name in RESPONSE_HEADERS {
        for value in answer.headers().get_all(name) {
            response_headers.append(HeaderName::from_static(name), value.clone());
        }
    }
    let stream = answer.bytes_stream().map_err(|e| std::io::Error::other(transport_error(&e).to_string()));
    let mut response = Response::new(Body::from_stream(stream));
    *response.status_mut() = StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::OK);
    *response.headers_mut() = response_headers;
    Ok(response)
}

fn transport_error(e: &reqwest::Error) -> UpstreamError {
    // The error's chain names the cause (refused, reset, TLS); its URL carries no credential.
    tracing::warn!(error = ?e, "gateway: upstream transport failed");
    if e.is_timeout() { UpstreamError::Timeout } else { UpstreamError::Unreachable }
}
