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

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderName, Method, StatusCode};
use axum::response::Response;
use futures_util::{StreamExt, TryStreamExt};

use crate::domain::token::ExposeSecret;
use crate::providers::host_api;
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
    /// The host's TLS failed: what was wrong, for the admin.
    #[error("{0}")]
    Tls(String),
    /// The client stopped sending its request before any of it reached the host.
    #[error("the request broke off before it could be sent")]
    ClientGone,
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
            UpstreamError::Tls(_) => "tls",
            UpstreamError::ClientGone => "client_gone",
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

/// The most of a request body held so it can be sent again: a request that
/// ends within it is replayed once if the host closed the pooled connection
/// under it; a longer one streams and is sent once.
const REPLAYABLE: usize = 64 * 1024;

/// A request body: whole (it can be sent again), or a start and the stream after it.
enum Outgoing {
    Whole(Bytes),
    Streaming(Bytes, axum::body::BodyDataStream),
}

impl Outgoing {
    /// Reads `body` until it ends or passes [`REPLAYABLE`] bytes.
    async fn read(body: Body) -> Result<Outgoing, UpstreamError> {
        let mut stream = body.into_data_stream();
        let mut held = Vec::new();
        while held.len() <= REPLAYABLE {
            match stream.next().await {
                Some(Ok(chunk)) => held.extend_from_slice(&chunk),
                // The client's side failed; nothing was sent to the host.
                Some(Err(_)) => return Err(UpstreamError::ClientGone),
                None => return Ok(Outgoing::Whole(Bytes::from(held))),
            }
        }
        Ok(Outgoing::Streaming(Bytes::from(held), stream))
    }
}

/// Sends `request` with `body` to the host and streams its answer back.
pub async fn forward(host: &UpstreamHost, request: UpstreamRequest<'_>, body: Body) -> Result<Response, UpstreamError> {
    let mut url = format!("{}/{}", request.repo_url, request.rest);
    if !request.query.is_empty() {
        url = format!("{url}?{}", request.query);
    }
    let send = |body: reqwest::Body| {
        let mut outgoing =
            host.client.request(request.method.clone(), &url).basic_auth(&host.username, Some(host.password.expose_secret())).body(body);
        for name in REQUEST_HEADERS {
            for value in request.headers.get_all(name) {
                outgoing = outgoing.header(name, value);
            }
        }
        outgoing.send()
    };
    let answer = match Outgoing::read(body).await? {
        Outgoing::Whole(bytes) => match send(reqwest::Body::from(bytes.clone())).await {
            Err(e) if closed_under_us(&e) => {
                tracing::info!(error = ?e, "gateway: the host closed a pooled connection under a request; sending it again on a fresh one");
                send(reqwest::Body::from(bytes)).await
            }
            sent => sent,
        },
        Outgoing::Streaming(start, rest) => {
            let start = futures_util::stream::once(async move { Ok::<_, axum::Error>(start) });
            send(reqwest::Body::wrap_stream(start.chain(rest))).await
        }
    };
    let answer = answer.map_err(|e| transport_error(&e))?;
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

/// Whether a request failed because the connection it was sent on closed
/// before any answer came: what a host does to a keep-alive connection it
/// found idle too long, just as the broker reused it.
fn closed_under_us(e: &reqwest::Error) -> bool {
    if e.is_timeout() || e.is_connect() {
        return false;
    }
    host_api::causes(e).into_iter().any(|err| {
        let closed = err.downcast_ref::<hyper::Error>().is_some_and(|h| h.is_incomplete_message() || h.is_canceled());
        let dropped = err.downcast_ref::<std::io::Error>().is_some_and(|io| {
            matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionAborted
            )
        });
        closed || dropped
    })
}

fn transport_error(e: &reqwest::Error) -> UpstreamError {
    // The error's chain names the cause (refused, reset, TLS); its URL carries no credential.
    tracing::warn!(error = ?e, "gateway: upstream transport failed");
    if let Some(problem) = host_api::tls_problem(e) {
        UpstreamError::Tls(problem)
    } else if e.is_timeout() {
        UpstreamError::Timeout
    } else {
        UpstreamError::Unreachable
    }
}
