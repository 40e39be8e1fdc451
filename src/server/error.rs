//! Where broker outcomes become HTTP: one type ([`ApiError`]: a status, a
//! stable code, a message and a hint), one mapping from [`BrokerError`], and
//! the plain-text answers git gets for [`GitRefusal`]s.
//!
//! [`ApiJson`], [`ApiQuery`] and [`ApiPath`] replace axum's extractors
//! so malformed or oversized input gets the same JSON error shape as
//! everything else instead of axum's plain-text rejections.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::{Json, http};

use super::broker::git::GitRefusal;
use super::broker::{BrokerError, SignInError};
use crate::api::{ErrorBody, ErrorDetail, codes};
use crate::domain::policy::Refusal;
use crate::domain::receive_pack::CommandsError;
use crate::domain::repo::RepoError;
use crate::domain::request::DecisionError;
use crate::providers::ProviderError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub hint: Option<String>,
    /// For 429: how long to wait (`Retry-After`, whole seconds, rounded up).
    pub retry_after: Option<std::time::Duration>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), hint: None, retry_after: None }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn bad_input(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, codes::INVALID_INPUT, message)
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, codes::NOT_FOUND, format!("{} not found", what.into()))
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, codes::FORBIDDEN, message)
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, codes::UNAUTHENTICATED, message)
    }

    pub fn rate_limited(message: impl Into<String>, wait: std::time::Duration) -> Self {
        let secs = retry_secs(wait);
        let mut e = Self::new(StatusCode::TOO_MANY_REQUESTS, codes::RATE_LIMITED, message).with_hint(format!("try again in {secs}s"));
        e.retry_after = Some(wait);
        e
    }

    pub fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, codes::INTERNAL, "internal error; the broker's log has the details")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let detail =
            ErrorDetail { code: self.code.to_string(), message: self.message, hint: self.hint, request_id: super::request_id::current() };
        let mut response = (self.status, Json(ErrorBody { error: detail })).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(http::header::WWW_AUTHENTICATE, http::HeaderValue::from_static("Bearer realm=\"jit\""));
        }
        if let Some(wait) = self.retry_after {
            response.headers_mut().insert(http::header::RETRY_AFTER, http::HeaderValue::from(retry_secs(wait)));
        }
        response
    }
}

/// Every broker outcome's status, stable code and hint: here and nowhere else.
impl From<BrokerError> for ApiError {
    fn from(e: BrokerError) -> Self {
        let message = e.to_string();
        match e {
            BrokerError::InvalidInput(_) => ApiError::bad_input(message),
            BrokerError::Repo(repo) => {
                // A well-formed name that names no repo is a thing not found;
                // one that could name none is bad input.
                let (status, code) = match repo {
                    RepoError::Unknown { .. } => (StatusCode::NOT_FOUND, codes::UNKNOWN_REPO),
                    RepoError::Ambiguous { .. } => (StatusCode::BAD_REQUEST, codes::UNKNOWN_REPO),
                    _ => (StatusCode::BAD_REQUEST, codes::INVALID_INPUT),
                };
                ApiError::new(status, code, message).with_hint("`jit repos` lists the repos this broker knows")
            }
            BrokerError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, codes::NOT_FOUND, message),
            BrokerError::InvalidToken => ApiError::unauthenticated(message)
                .with_hint("run `jit login` with a current token; an admin can issue one with `jit admin token rotate`"),
            BrokerError::SessionEnded(_) => ApiError::unauthenticated(message).with_hint("sign in again: `jit login`"),
            BrokerError::Forbidden(_) => ApiError::forbidden(message),
            BrokerError::Policy(refusal) => {
                let hint = match refusal {
                    Refusal::NoRule { .. } => Some("ask an operator to add a policy rule for this repo and level"),
                    Refusal::TooLong { .. } => Some("ask for a shorter duration with --for"),
                    Refusal::NoBreakGlass { .. } => Some("ask without --break-glass, or ask an operator for a break-glass rule"),
                    _ => None,
                };
                let e = ApiError::new(StatusCode::FORBIDDEN, codes::POLICY_DENIED, message);
                match hint {
                    Some(h) => e.with_hint(h),
                    None => e,
                }
            }
            BrokerError::PolicyChanged(_) => ApiError::new(StatusCode::FORBIDDEN, codes::POLICY_DENIED, message),
            BrokerError::Decision(d) => {
                let (status, code) = match d {
                    DecisionError::NotPending(_) => (StatusCode::CONFLICT, codes::NOT_PENDING),
                    DecisionError::PendingExpired => (StatusCode::CONFLICT, codes::REQUEST_EXPIRED),
                    DecisionError::SelfDecision => (StatusCode::FORBIDDEN, codes::SELF_APPROVAL),
                    DecisionError::NotApprover(_) | DecisionError::NotRequester => (StatusCode::FORBIDDEN, codes::NOT_APPROVER),
                    DecisionError::SelfReview => (StatusCode::FORBIDDEN, codes::SELF_APPROVAL),
                    DecisionError::NotBreakGlass(_) | DecisionError::AlreadyReviewed { .. } => (StatusCode::CONFLICT, codes::CONFLICT),
                    DecisionError::CommentRequired => (StatusCode::BAD_REQUEST, codes::INVALID_INPUT),
                };
                ApiError::new(status, code, message)
            }
            BrokerError::GrantEnded { repo, level, .. } => ApiError::new(StatusCode::CONFLICT, codes::GRANT_ENDED, message)
                .with_hint(format!("ask again: jit request {repo} --level {level} --for DURATION")),
            BrokerError::Conflict(_) | BrokerError::NoProvider(_) => ApiError::new(StatusCode::CONFLICT, codes::CONFLICT, message),
            BrokerError::Provider(ref inner) => {
                tracing::error!(error = %inner, "provider failure");
                // Provider messages name what the host said and what to fix; they never carry a secret.
                match inner {
                    ProviderError::Refused { .. } => ApiError::new(StatusCode::BAD_GATEWAY, codes::HOST_REFUSED, message)
                        .with_hint("the git host's setup needs fixing; tell your jit admin (the audit log has this as credential_failed)"),
                    ProviderError::RateLimited { retry_after, .. } => {
                        let mut e = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, codes::RATE_LIMITED, message);
                        e.retry_after = Some(*retry_after);
                        e
                    }
                    ProviderError::Failed { .. } => ApiError::new(StatusCode::BAD_GATEWAY, codes::HOST_FAILED, message)
                        .with_hint("the git host did not answer as expected; try again shortly"),
                    ProviderError::Config { .. } => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, codes::INTERNAL, message),
                }
            }
            BrokerError::Store(ref inner) if e.database_unavailable() => {
                tracing::error!(error = %inner, "the database is unavailable");
                let mut e =
                    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, codes::UNAVAILABLE, "the broker's database is unavailable just now")
                        .with_hint("try again shortly; if it lasts, tell your jit admin (GET /healthz says so too)");
                e.retry_after = Some(std::time::Duration::from_secs(5));
                e
            }
            BrokerError::Store(ref inner) => {
                tracing::error!(error = %inner, "store failure");
                ApiError::internal()
            }
            BrokerError::SignIn(ref inner) => match inner {
                SignInError::NotConfigured => ApiError::new(StatusCode::NOT_FOUND, codes::OIDC_NOT_CONFIGURED, message)
                    .with_hint("sign in with the token an admin gave you: `jit login --token`"),
                SignInError::Denied => ApiError::new(StatusCode::FORBIDDEN, codes::SIGN_IN_DENIED, message),
                SignInError::Expired => ApiError::new(StatusCode::GONE, codes::SIGN_IN_EXPIRED, message).with_hint("run `jit login` again"),
                SignInError::Refused(_) => ApiError::new(StatusCode::FORBIDDEN, codes::SIGN_IN_REFUSED, message)
                    .with_hint("tell your jit admin; the audit log has this as sign_in_refused"),
                SignInError::Idp(e) => {
                    tracing::warn!(error = %e, "sign-in: identity provider failure");
                    ApiError::new(StatusCode::BAD_GATEWAY, codes::IDP_FAILED, message)
                        .with_hint("try again shortly; if it persists, tell your jit admin (the broker's log has the details)")
                }
            },
        }
    }
}

/// Whole seconds to wait, never zero.
fn retry_secs(wait: std::time::Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

/// 429 for git, with `Retry-After` and a line git shows.
pub fn git_rate_limited(message: &str, wait: std::time::Duration) -> Response {
    let mut r = git_plain(StatusCode::TOO_MANY_REQUESTS, format!("jit: {message}; try again in {}s", retry_secs(wait)));
    r.headers_mut().insert(http::header::RETRY_AFTER, http::HeaderValue::from(retry_secs(wait)));
    r
}

fn git_plain(status: StatusCode, message: String) -> Response {
    (status, [(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")], format!("{message}\n")).into_response()
}

/// 401 with a Basic challenge: git then asks its credential helpers.
fn git_challenge(message: String) -> Response {
    let mut r = git_plain(StatusCode::UNAUTHORIZED, message);
    r.headers_mut().insert(http::header::WWW_AUTHENTICATE, http::HeaderValue::from_static("Basic realm=\"jit\""));
    r
}

/// `response` with its challenge (if it has one) naming `service`, so git's
/// credential helpers learn whether git is fetching or pushing.
pub fn challenge_for(mut response: Response, service: crate::domain::smart_http::Service) -> Response {
    if response.headers().contains_key(http::header::WWW_AUTHENTICATE) {
        let value = format!("Basic realm=\"{}\"", service.realm());
        response.headers_mut().insert(http::header::WWW_AUTHENTICATE, http::HeaderValue::from_str(&value).expect("a plain realm"));
    }
    response
}

/// How git is told why a request did not pass: a challenge when the
/// credential is missing or dead (so git asks its helpers), a plain line
/// git shows the user otherwise.
impl IntoResponse for GitRefusal {
    fn into_response(self) -> Response {
        match self {
            GitRefusal::NoSuchRepo(repo) => git_plain(StatusCode::NOT_FOUND, format!("jit: no repository `{repo}` here")),
            GitRefusal::NoCredentials => {
                git_challenge("jit: credentials required; run `jit setup` once, then `jit request` for access".into())
            }
            GitRefusal::UnknownCredential => git_challenge("jit: this credential is not valid (unknown or expired)".into()),
            GitRefusal::WrongRepo => git_challenge("jit: this credential is not for this repository".into()),
            GitRefusal::Ended { grant, repo, status } => git_challenge(format!("jit: your grant {grant} on {repo} {}", status.phrase())),
            GitRefusal::LevelTooLow { repo, have, service, ask } => git_plain(
                StatusCode::FORBIDDEN,
                format!("jit: your grant on {repo} is {have}; {} needs {}.\njit: {ask}", service.verb(), service.needs()),
            ),
            GitRefusal::NotFromHere { repo, from, rule, client } => git_plain(
                StatusCode::FORBIDDEN,
                format!("jit: your grant on {repo} can be used only from {from} (rule `{rule}`); this request came from {client}"),
            ),
            GitRefusal::BadPush(why) => git_plain(StatusCode::BAD_REQUEST, format!("jit: {why}")),
            GitRefusal::SignedPush => git_plain(StatusCode::BAD_REQUEST, format!("jit: {}", CommandsError::Signed)),
            GitRefusal::Unavailable => {
                git_plain(StatusCode::SERVICE_UNAVAILABLE, "jit: the broker could not check your access; try again".into())
            }
            GitRefusal::NotRecorded => {
                git_plain(StatusCode::SERVICE_UNAVAILABLE, "jit: the broker could not record this operation; try again".into())
            }
        }
    }
}

/// A plain-text answer to git (not JSON: git shows these lines to the user).
pub fn git_message(status: StatusCode, message: impl Into<String>) -> Response {
    git_plain(status, message.into())
}

/// `Json<T>` with our error shape on rejection.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

/// `Query<T>` with our error shape on rejection (`?limit=abc` is a 400 that says so).
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::try_from_uri(&parts.uri) {
            Ok(Query(v)) => Ok(ApiQuery(v)),
            Err(rejection) => Err(ApiError::bad_input(rejection.body_text())),
        }
    }
}

/// `Path<T>` with our error shape on rejection (`/v1/requests/%FF`).
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(v)) => Ok(ApiPath(v)),
            Err(rejection) => Err(ApiError::bad_input(rejection.body_text())),
        }
    }
}

/// A JSON body that may be absent (empty): then `T::default()`.
pub struct OptionalJson<T>(pub T);

impl<S, T> FromRequest<S> for OptionalJson<T>
where
    T: serde::de::DeserializeOwned + Default,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, codes::BODY_TOO_LARGE, "request body is too large")
            } else {
                ApiError::new(rejection.status(), codes::INVALID_JSON, rejection.body_text())
            }
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(T::default()));
        }
        // `null` is no body too, as the description's optional body says.
        serde_json::from_slice::<Option<T>>(&bytes)
            .map(|body| OptionalJson(body.unwrap_or_default()))
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, codes::INVALID_JSON, format!("malformed JSON: {e}")))
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            codes::INVALID_JSON,
            "expected a JSON body with `Content-Type: application/json`",
        ),
        JsonRejection::BytesRejection(b) if b.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, codes::BODY_TOO_LARGE, "request body is too large")
        }
        JsonRejection::JsonDataError(e) => {
            ApiError::new(StatusCode::BAD_REQUEST, codes::INVALID_JSON, format!("invalid request body: {}", e.body_text()))
        }
        JsonRejection::JsonSyntaxError(e) => {
            ApiError::new(StatusCode::BAD_REQUEST, codes::INVALID_JSON, format!("malformed JSON: {}", e.body_text()))
        }
        other => ApiError::new(other.status(), codes::INVALID_JSON, other.body_text()),
    }
}
