//! The git smart-HTTP front door: `/git/NAME.git/…`.
//!
//! It reads which repo and service a request is for (`domain::smart_http`),
//! takes the Basic credentials (axum-extra's typed `Authorization`), asks the
//! broker whether the request may pass, records the operation, and hands the
//! request to the repo's backend (`server::http_backend` for bare repos on
//! this machine). Bodies stream both ways: a pack never sits whole in memory.

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum_extra::headers::authorization::Basic;
use axum_extra::headers::{Authorization, HeaderMapExt};
use futures_util::StreamExt;

use super::AppState;
use crate::domain::receive_pack::{self, Commands};
use crate::domain::smart_http::{Endpoint, RouteError, Service, route};
use crate::domain::token::TokenHash;
use crate::providers::GitBackend;
use crate::server::Broker;
use crate::server::auth::ClientAddr;
use crate::server::broker::git::GitRefusal;
use crate::server::error::{git_message, git_rate_limited};
use crate::server::http_backend;
use crate::server::upstream_proxy::{self, UpstreamError};
use crate::store::GrantRecord;
use std::sync::Arc;

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
    let user = credentials.map(|(u, _)| u);
    let access = match broker.authorize_git(&route, credentials, client).await {
        Ok(access) => access,
        Err(refusal) => {
            if matches!(refusal, GitRefusal::UnknownCredential | GitRefusal::WrongRepo)
                && let Some(wait) = broker.auth_failed(client, user, refusal.kind())
            {
                return git_rate_limited("too many failed logins from this address", wait);
            }
            broker.record_git_refusal(&route, &refusal, user, client).await;
            return refusal.into_response();
        }
    };
    if let Err(wait) = broker.git_request_allowed(access.grant.id) {
        return git_rate_limited("too many git requests with this credential", wait);
    }
    // A push is read up to its pack first, so its event says which refs it changes.
    let (body, push) = if route.endpoint == Endpoint::Rpc && route.service == Service::ReceivePack {
        match read_push_commands(&mut headers, body).await {
            Ok((body, commands)) => (body, Some(commands)),
            Err(refusal) => {
                broker.record_git_refusal(&route, &refusal, user, client).await;
                return refusal.into_response();
            }
        }
    } else {
        (body, None)
    };
    // Every ref a push updates must be one the grant allows; otherwise none
    // is, and git shows each as rejected, with the reason.
    if let Some(push) = &push {
        let mut refused = broker.push_refusals(&access.grant, push);
        refused.extend(symbolic_ref_refusals(&access.backend, &route.repo, push).await);
        if !refused.is_empty() {
            broker.record_push_refusal(&access.grant, &refused, client).await;
            drain(body).await;
            return report_status(receive_pack::report_refusal(push, &refused));
        }
    }
    if let Err(e) = broker.record_git_operation(&access.grant, &route, push.as_ref()).await {
        tracing::error!(error = %e, "gateway: audit append failed; refusing the git request");
        return git_message(StatusCode::SERVICE_UNAVAILABLE, "jit: the broker could not record this operation; try again");
    }
    // A push lands only if its grant still stands once the client has sent all of it.
    let body = match (&push, credentials) {
        (Some(push), Some((_, password))) => {
            held_until_still_live(body, broker.clone(), (access.grant.clone(), TokenHash::of(password), push.clone()))
        }
        _ => body,
    };
    let answer = match access.backend {
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
        GitBackend::Upstream { host, url } => {
            let request = upstream_proxy::UpstreamRequest {
                repo_url: url.to_string(),
                rest: route.rest(),
                query: route.backend_query(),
                method: &method,
                headers: &headers,
            };
            match upstream_proxy::forward(&host, request, body).await {
                Ok(r) => r,
                Err(e) => {
                    broker.record_upstream_failure(&access.grant, &route, &e).await;
                    let status = if matches!(e, UpstreamError::Timeout) { StatusCode::GATEWAY_TIMEOUT } else { StatusCode::BAD_GATEWAY };
                    git_message(status, format!("jit: {} is out of reach: {e}; tell your jit admin", route.repo))
                }
            }
        }
    };
    match push {
        Some(push) if answer.status().is_success() => with_outcome_recorded(answer, broker, access.grant, push),
        _ => answer,
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

/// Updates of `push` that name a symbolic ref in a local repo, each refused:
/// git moves the ref it points at, which the scope check never saw. (A host
/// behind the upstream proxy shows no symbolic refs but `HEAD`, which no push
/// can name; hosts let no client create one.)
async fn symbolic_ref_refusals(backend: &GitBackend, repo: &str, push: &Commands) -> Vec<(String, String)> {
    let GitBackend::Local { project_root } = backend else { return Vec::new() };
    let (root, repo, names) = (project_root.clone(), repo.to_string(), push.updates.iter().map(|u| u.name.clone()).collect::<Vec<_>>());
    let found =
        tokio::task::spawn_blocking(move || crate::providers::local_gateway::symbolic_refs(&root, &repo, &names)).await.unwrap_or_default();
    found.into_iter().map(|(name, target)| (name, format!("jit: this is a symbolic ref to {target}; push to {target} itself"))).collect()
}

/// The most of a push's answer kept to read git's report from: the report is
/// a line a ref, after whatever progress git sent on side-band channel 2.
const MAX_PUSH_ANSWER: usize = 1 << 20;

/// Streams a push's answer to the client untouched, keeping a copy; once it
/// has ended (or the client left), git's report-status in it is audited ref
/// by ref as the push's outcome.
fn with_outcome_recorded(answer: Response, broker: Arc<Broker>, grant: GrantRecord, push: Commands) -> Response {
    struct Teed {
        seen: Vec<u8>,
        record: Option<(Arc<Broker>, GrantRecord, Commands)>,
    }
    impl Teed {
        /// Audits the outcome once: from the report when the answer came whole.
        fn record(&mut self, complete: bool) {
            let Some((broker, grant, push)) = self.record.take() else { return };
            let report = (complete && self.seen.len() <= MAX_PUSH_ANSWER)
                .then(|| receive_pack::read_report(&self.seen, receive_pack::uses_sideband(&push.capabilities)))
                .flatten();
            tokio::spawn(async move { broker.record_push_outcome(&grant, &push, report).await });
        }
    }
    impl Drop for Teed {
        // The client left before the answer ended.
        fn drop(&mut self) {
            self.record(false);
        }
    }
    let (parts, body) = answer.into_parts();
    let teed = Teed { seen: Vec::new(), record: Some((broker, grant, push)) };
    let stream = futures_util::stream::unfold((body.into_data_stream(), teed), |(mut inner, mut teed)| async move {
        match inner.next().await {
            Some(Ok(chunk)) => {
                if teed.seen.len() <= MAX_PUSH_ANSWER {
                    teed.seen.extend_from_slice(&chunk);
                }
                Some((Ok(chunk), (inner, teed)))
            }
            Some(Err(e)) => Some((Err(e), (inner, teed))),
            None => {
                teed.record(true);
                None
            }
        }
    });
    Response::from_parts(parts, Body::from_stream(stream))
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
        return GitRefusal::NoCredentials.into_response();
    }
    let mut r = Response::new(Body::empty());
    let content_type = format!("application/x-{}-result", service.name());
    r.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_str(&content_type).expect("a plain name"));
    r
}

/// How long a refused push may take to send the rest of itself (its pack):
/// git reads the answer only once it has sent everything.
const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Reads and drops what is left of a request, within [`DRAIN_TIMEOUT`].
async fn drain(body: Body) {
    let mut stream = body.into_data_stream();
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, async { while let Some(Ok(_)) = stream.next().await {} }).await;
}

/// A receive-pack result git reads as its own report-status.
fn report_status(body: Vec<u8>) -> Response {
    let mut r = Response::new(Body::from(body));
    r.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/x-git-receive-pack-result"));
    r.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-cache"));
    r
}

/// How many bytes at the end of a push are held back until the grant is
/// checked again: more than a pack's trailing checksum (20 or 32 bytes), so
/// git cannot finish reading the pack (nor a delete-only list its flush)
/// before the check.
const PUSH_TAIL: usize = 64;

/// Streams a push's body on to the repository, holding back its last
/// [`PUSH_TAIL`] bytes until the client has sent everything; then, if the
/// grant ended meanwhile, ends the stream with an error instead, so the
/// repository sees a cut pack and applies nothing.
fn held_until_still_live(body: Body, broker: Arc<Broker>, pushed: (GrantRecord, TokenHash, Commands)) -> Body {
    struct Held {
        inner: axum::body::BodyDataStream,
        tail: Vec<u8>,
        /// `None` once the stream has ended.
        check: Option<(Arc<Broker>, (GrantRecord, TokenHash, Commands))>,
    }
    let start = Held { inner: body.into_data_stream(), tail: Vec::new(), check: Some((broker, pushed)) };
    let stream = futures_util::stream::unfold(start, |mut held| async move {
        let (broker, pushed) = held.check.take()?;
        loop {
            match held.inner.next().await {
                Some(Ok(chunk)) => {
                    held.tail.extend_from_slice(&chunk);
                    if held.tail.len() > PUSH_TAIL {
                        let keep = held.tail.split_off(held.tail.len() - PUSH_TAIL);
                        let out = std::mem::replace(&mut held.tail, keep);
                        held.check = Some((broker, pushed));
                        return Some((Ok(Bytes::from(out)), held));
                    }
                }
                Some(Err(e)) => return Some((Err(e), held)),
                None => {
                    let (grant, credential, commands) = &pushed;
                    if broker.push_may_land(grant, credential, commands).await {
                        let tail = std::mem::take(&mut held.tail);
                        return Some((Ok(Bytes::from(tail)), held));
                    }
                    return Some((Err(axum::Error::new("the grant ended while the push was in flight")), held));
                }
            }
        }
    });
    Body::from_stream(stream)
}

/// How long a client may take to send a push's command list.
const COMMANDS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Reads a push's body up to the end of its command list and parses it;
/// returns the commands and a body that starts with the list as parsed (never
/// the client's own bytes, so the repository applies only what was checked),
/// then streams the rest (the pack) untouched.
async fn read_push_commands(headers: &mut HeaderMap, body: Body) -> Result<(Body, Commands), GitRefusal> {
    // git never compresses a push (only fetch negotiations); an encoded one could not be read here.
    if headers.get(header::CONTENT_ENCODING).is_some_and(|v| v.as_bytes() != b"identity") {
        return Err(GitRefusal::BadPush("compressed push requests are not accepted".into()));
    }
    let mut stream = body.into_data_stream();
    let mut read = Vec::new();
    let commands = loop {
        match receive_pack::parse(&read) {
            Ok(Some(commands)) => break commands,
            Ok(None) => {}
            Err(receive_pack::CommandsError::Signed) => return Err(GitRefusal::SignedPush),
            Err(e) => return Err(GitRefusal::BadPush(e.to_string())),
        }
        match tokio::time::timeout(COMMANDS_TIMEOUT, stream.next()).await {
            Ok(Some(Ok(chunk))) => read.extend_from_slice(&chunk),
            Ok(Some(Err(e))) => return Err(GitRefusal::BadPush(format!("the push could not be read: {e}"))),
            Ok(None) => return Err(GitRefusal::BadPush("the push ended before its command list did".into())),
            Err(_) => return Err(GitRefusal::BadPush("the push's command list did not arrive in time".into())),
        }
    };
    let mut checked = commands.encode();
    checked.extend_from_slice(&read[commands.len..]);
    // The body's length changes by what the encoding changed.
    if let Some(declared) = headers.get(header::CONTENT_LENGTH) {
        let length = declared
            .to_str()
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .and_then(|n| (n + checked.len()).checked_sub(read.len()))
            .ok_or_else(|| GitRefusal::BadPush("the push's Content-Length does not match its body".into()))?;
        headers.insert(header::CONTENT_LENGTH, length.into());
    }
    let replay = futures_util::stream::once(async move { Ok::<_, axum::Error>(Bytes::from(checked)) });
    Ok((Body::from_stream(replay.chain(stream)), commands))
}
