//! API errors: one type, a stable code, a human message, an HTTP status.
//!
//! Handlers return `Result<_, ApiError>`; [`ApiJson`] replaces axum's `Json`
//! extractor so malformed or oversized bodies get the same JSON error shape as
//! everything else instead of axum's plain-text rejections.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Json, http};

use crate::api::{ErrorBody, ErrorDetail, codes};
use crate::domain::policy::Refusal;
use crate::domain::repo::RepoError;
use crate::domain::request::DecisionError;
use crate::store::StoreError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub hint: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), hint: None }
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

    pub fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, codes::INTERNAL, "internal error; the broker's log has the details")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response =
            (self.status, Json(ErrorBody { error: ErrorDetail { code: self.code.to_string(), message: self.message, hint: self.hint } }))
                .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(http::header::WWW_AUTHENTICATE, http::HeaderValue::from_static("Bearer realm=\"jit\""));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ApiError::not_found(what),
            StoreError::AlreadyExists(what) => ApiError::new(StatusCode::CONFLICT, codes::CONFLICT, format!("{what} already exists")),
            StoreError::Conflict => ApiError::new(StatusCode::CONFLICT, codes::CONFLICT, "the resource changed concurrently; try again"),
            other => {
                tracing::error!(error = %other, "store failure");
                ApiError::internal()
            }
        }
    }
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        let hint = match &r {
            Refusal::NoRule { .. } => Some("ask an operator to add a policy rule for this repo and level"),
            Refusal::TooLong { .. } => Some("ask for a shorter duration with --for"),
            _ => None,
        };
        let e = ApiError::new(StatusCode::FORBIDDEN, codes::POLICY_DENIED, r.to_string());
        match hint {
            Some(h) => e.with_hint(h),
            None => e,
        }
    }
}

impl From<DecisionError> for ApiError {
    fn from(e: DecisionError) -> Self {
        let (status, code) = match &e {
            DecisionError::NotPending(_) => (StatusCode::CONFLICT, codes::NOT_PENDING),
            DecisionError::PendingExpired => (StatusCode::CONFLICT, codes::REQUEST_EXPIRED),
            DecisionError::SelfDecision => (StatusCode::FORBIDDEN, codes::SELF_APPROVAL),
            DecisionError::NotApprover(_) | DecisionError::NotRequester => (StatusCode::FORBIDDEN, codes::NOT_APPROVER),
        };
        ApiError::new(status, code, e.to_string())
    }
}

impl From<RepoError> for ApiError {
    fn from(e: RepoError) -> Self {
        let code = match e {
            RepoError::Unknown(_) | RepoError::Ambiguous { .. } => codes::UNKNOWN_REPO,
            _ => codes::INVALID_INPUT,
        };
        ApiError::new(StatusCode::BAD_REQUEST, code, e.to_string()).with_hint("`jit repos` lists the repos this broker knows")
    }
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
        serde_json::from_slice(&bytes)
            .map(OptionalJson)
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
