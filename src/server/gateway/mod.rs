//! The git smart-HTTP gateway: `/git/NAME.git/…`, for the repos jit fronts.
//!
//! The front door here reads which repo and service a request is for
//! (`domain::smart_http`) and its Basic credentials, asks the broker one
//! question ([`Broker::admit_git`]: refuse, throttle, refuse a push's refs, or
//! admit with where it goes, the operation already audited), and acts on the
//! answer: [`cgi`] runs `git http-backend` for bare repos on this machine,
//! [`upstream`] forwards to the repo's own host, and [`push`] reads a push on
//! its way. Bodies stream both ways: a pack never sits whole in memory.

pub mod cgi;
pub mod push;
pub mod upstream;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum_extra::headers::authorization::Basic;
use axum_extra::headers::{Authorization, HeaderMapExt};

use crate::domain::records::GrantRecord;
use crate::domain::smart_http::{Endpoint, GitRoute, RouteError, Service, route};
use crate::domain::token::TokenHash;
use crate::providers::GitBackend;
use crate::server::Broker;
use crate::server::auth::ClientAddr;
use crate::server::broker::git::{Admission, Admitted, GitAsk, GitRefusal};
use crate::server::error::{challenge_for, git_message, git_rate_limited};
use crate::server::handlers::AppState;
use upstream::UpstreamError;

pub async fn serve(
    State(broker): AppState,
    ClientAddr(client): ClientAddr,
    method: Method,
    Path(path): Path<String>,
    RawQuery(query): RawQuery,
    mut headers: HeaderMap,
    body: Body,
) -> Response {
    let route = match route(&path, method == Method::POST, query.as_deref()) {
        Ok(route) => route,
        Err(e @ RouteError::Ambiguous) => return git_message(StatusCode::BAD_REQUEST, format!("jit: {e}")),
        Err(e) => return git_message(StatusCode::NOT_FOUND, format!("jit: {e}")),
    };
    // A malformed header is no credentials: git gets the challenge and asks its helpers.
    let basic: Option<Authorization<Basic>> = headers.typed_get();
    if basic.is_none() && route.endpoint == Endpoint::Rpc && is_probe_length(&headers) && broker.repo(&route.repo).is_some() {
        return answer_probe(route.service, body).await;
    }
    let credentials = basic.as_ref().map(|a| (a.username(), a.password()));
    // A push is read up to its pack, so its event says which refs it changes;
    // the broker awaits this only once the request may pass.
    let is_push = route.endpoint == Endpoint::Rpc && route.service == Service::ReceivePack;
    let read_commands = async {
        if is_push {
            push::read_push_commands(&mut headers, body).await.map(|(commands, body)| (Some(commands), body))
        } else {
            Ok((None, body))
        }
    };
    let ask = GitAsk { route: &route, credentials, client };
    let Admitted { grant, backend, push, body } = match broker.admit_git(ask, read_commands).await {
        Admission::Admitted(admitted) => *admitted,
        Admission::Refused(refusal) => return challenge_for(refusal.into_response(), route.service),
        Admission::Throttled { why, wait } => return git_rate_limited(why, wait),
        // Git reads the answer only once it has sent everything.
        Admission::RefsRefused { report, rest } => {
            push::drain(rest).await;
            return push::report_status(report);
        }
    };
    // A push lands only if its grant still stands once the client has sent all of it.
    let body = match (&push, credentials) {
        (Some(push), Some((_, password))) => {
            push::held_until_still_live(body, broker.clone(), (grant.clone(), TokenHash::of(password), push.clone()))
        }
        _ => body,
    };
    let body = counted(body, broker.metrics().git_bytes("received"));
    let answer = forward(&broker, &grant, &route, backend, (&method, &headers), body).await;
    let (parts, answer_body) = answer.into_parts();
    let answer = Response::from_parts(parts, counted(answer_body, broker.metrics().git_bytes("sent")));
    match push {
        Some(push) if answer.status().is_success() => push::with_outcome_recorded(answer, broker, grant, push),
        _ => answer,
    }
}

/// `body`, counting its bytes into `counter` as they pass (for `/metrics`).
fn counted(body: Body, counter: prometheus_client::metrics::counter::Counter) -> Body {
    use futures_util::TryStreamExt;
    Body::from_stream(body.into_data_stream().inspect_ok(move |chunk| {
        counter.inc_by(chunk.len() as u64);
    }))
}

/// Hands an admitted request to its repository: `git http-backend` here, or the repo's own host.
async fn forward(
    broker: &Broker,
    grant: &GrantRecord,
    route: &GitRoute,
    backend: GitBackend,
    (method, headers): (&Method, &HeaderMap),
    body: Body,
) -> Response {
    match backend {
        GitBackend::Local { project_root } => {
            let request = cgi::CgiRequest {
                project_root: &project_root,
                path_info: format!("/{}.git/{}", route.repo, route.rest()),
                method,
                query: route.backend_query(),
                headers,
                remote_user: &grant.user,
            };
            match cgi::run(request, body).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, "gateway: git http-backend failed");
                    git_message(StatusCode::BAD_GATEWAY, "jit: the git backend failed")
                }
            }
        }
        GitBackend::Upstream { host, url } => {
            let request =
                upstream::UpstreamRequest { repo_url: url.to_string(), rest: route.rest(), query: route.backend_query(), method, headers };
            match upstream::forward(&host, request, body).await {
                Ok(r) => r,
                Err(e) => {
                    broker.record_upstream_failure(grant, route, &e).await;
                    let status = if matches!(e, UpstreamError::Timeout) { StatusCode::GATEWAY_TIMEOUT } else { StatusCode::BAD_GATEWAY };
                    git_message(status, format!("jit: {} is out of reach: {e}; tell your jit admin", route.repo))
                }
            }
        }
    }
}

/// Whether a request could be git's probe: before streaming a request larger
/// than its post buffer, git POSTs a lone flush packet (`0000`) to check it
/// would be let through. Git sends that probe without the credential its
/// helper gave as a pre-encoded header (`authtype`), so it would fail at the
/// gateway and the push with it.
fn is_probe_length(headers: &HeaderMap) -> bool {
    headers.get(header::CONTENT_LENGTH).is_some_and(|v| v.as_bytes() == b"4")
}

/// How long an unauthenticated probe may take to send its four bytes.
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Answers a probe: `200` with nothing in it when the body is the flush
/// packet (it carries no command and reaches no repository); anything else
/// is an ordinary request without credentials, and gets the challenge. Nobody
/// is known yet, so the body gets the shortest time of any.
async fn answer_probe(service: Service, body: Body) -> Response {
    let body = tokio::time::timeout(PROBE_TIMEOUT, axum::body::to_bytes(body, 4)).await.ok().and_then(Result::ok).unwrap_or_default();
    if &body[..] != b"0000" {
        return challenge_for(GitRefusal::NoCredentials.into_response(), service);
    }
    let mut r = Response::new(Body::empty());
    let content_type = format!("application/x-{}-result", service.name());
    r.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_str(&content_type).expect("a plain name"));
    r
}
