//! The broker's HTTP client, used by every command that talks to a broker.
//!
//! Thin: one method per endpoint, JSON in and out via [`crate::api`], and one
//! error type whose API variant carries the broker's stable error code.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api::{self, ErrorBody};
use crate::domain::audit::AuditEvent;
use crate::domain::token::{ExposeSecret, SecretString};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{message}")]
    Api { status: u16, code: String, message: String, hint: Option<String> },
    #[error("cannot reach {url}: {message}")]
    Unreachable { url: String, message: String },
    #[error("no broker configured")]
    NotConfigured,
    #[error("{0}")]
    BadUrl(String),
    #[error("{0}")]
    Protocol(String),
}

pub struct Client {
    base: String,
    token: Option<SecretString>,
    http: reqwest::Client,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("base", &self.base).field("token", &self.token).finish()
    }
}

/// How long a plain call may take; long-polls add their wait to this.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

impl Client {
    pub fn new(server: &str, token: Option<SecretString>) -> Result<Client, ClientError> {
        let url = url::Url::parse(server).map_err(|e| ClientError::BadUrl(format!("invalid broker URL `{server}`: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ClientError::BadUrl(format!("invalid broker URL `{server}`: must be http or https")));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("jit/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        Ok(Client { base: server.trim_end_matches('/').to_string(), token, http })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&(impl Serialize + ?Sized)>,
        timeout: Duration,
    ) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method, &url).timeout(timeout);
        if let Some(token) = &self.token {
            req = req.bearer_auth(token.expose_secret());
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        let resp = req.send().await.map_err(|e| ClientError::Unreachable { url: self.base.clone(), message: describe(&e) })?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| ClientError::Unreachable { url: self.base.clone(), message: describe(&e) })?;
        if !status.is_success() {
            return Err(match serde_json::from_slice::<ErrorBody>(&bytes) {
                Ok(body) => {
                    ClientError::Api { status: status.as_u16(), code: body.error.code, message: body.error.message, hint: body.error.hint }
                }
                Err(_) => ClientError::Api {
                    status: status.as_u16(),
                    code: String::new(),
                    message: format!("broker answered {status}"),
                    hint: None,
                },
            });
        }
        let bytes = if status == StatusCode::NO_CONTENT || bytes.is_empty() { &b"null"[..] } else { &bytes[..] };
        serde_json::from_slice(bytes).map_err(|e| ClientError::Protocol(e.to_string()))
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.call(Method::GET, path, None::<&()>, CALL_TIMEOUT).await
    }

    async fn post<T: DeserializeOwned>(&self, path: &str, body: &(impl Serialize + ?Sized)) -> Result<T, ClientError> {
        self.call(Method::POST, path, Some(body), CALL_TIMEOUT).await
    }

    pub async fn health(&self) -> Result<api::Health, ClientError> {
        self.get("/healthz").await
    }

    pub async fn whoami(&self) -> Result<api::User, ClientError> {
        self.get("/v1/whoami").await
    }

    pub async fn repos(&self) -> Result<Vec<api::Repo>, ClientError> {
        self.get("/v1/repos").await
    }

    pub async fn users(&self) -> Result<Vec<api::User>, ClientError> {
        self.get("/v1/users").await
    }

    pub async fn add_user(&self, user: &api::NewUser) -> Result<api::IssuedToken, ClientError> {
        self.post("/v1/users", user).await
    }

    pub async fn remove_user(&self, name: &str) -> Result<(), ClientError> {
        self.call(Method::DELETE, &format!("/v1/users/{}", encode(name)), None::<&()>, CALL_TIMEOUT).await
    }

    pub async fn rotate_token(&self, name: &str) -> Result<api::IssuedToken, ClientError> {
        self.post(&format!("/v1/users/{}/token", encode(name)), &serde_json::json!({})).await
    }

    pub async fn create_request(&self, body: &api::CreateRequest) -> Result<api::AccessRequest, ClientError> {
        self.post("/v1/requests", body).await
    }

    pub async fn request(&self, id: i64) -> Result<api::AccessRequest, ClientError> {
        self.get(&format!("/v1/requests/{id}")).await
    }

    /// Long-poll: returns when the request's status is no longer `seen`, or after `wait`.
    pub async fn wait_request(&self, id: i64, seen: &str, wait: Duration) -> Result<api::AccessRequest, ClientError> {
        let path = format!("/v1/requests/{id}?wait={}s&status={seen}", wait.as_secs().max(1));
        self.call(Method::GET, &path, None::<&()>, wait + CALL_TIMEOUT).await
    }

    pub async fn requests(&self, mine: bool, reviewable: bool, status: Option<&str>) -> Result<Vec<api::AccessRequest>, ClientError> {
        let mut query = vec![format!("mine={mine}"), format!("reviewable={reviewable}")];
        if let Some(s) = status {
            query.push(format!("status={s}"));
        }
        self.get(&format!("/v1/requests?{}", query.join("&"))).await
    }

    pub async fn approve(&self, id: i64, comment: Option<&str>) -> Result<api::AccessRequest, ClientError> {
        self.post(&format!("/v1/requests/{id}/approve"), &api::ApproveBody { comment: comment.map(str::to_string) }).await
    }

    pub async fn deny(&self, id: i64, reason: &str) -> Result<api::AccessRequest, ClientError> {
        self.post(&format!("/v1/requests/{id}/deny"), &api::DenyBody { reason: reason.to_string() }).await
    }

    pub async fn cancel(&self, id: i64) -> Result<api::AccessRequest, ClientError> {
        self.post(&format!("/v1/requests/{id}/cancel"), &serde_json::json!({})).await
    }

    pub async fn grants(&self, all: bool, live: bool) -> Result<Vec<api::Grant>, ClientError> {
        self.get(&format!("/v1/grants?all={all}&live={live}")).await
    }

    pub async fn revoke(&self, id: i64, reason: Option<&str>) -> Result<api::Grant, ClientError> {
        self.post(&format!("/v1/grants/{id}/revoke"), &api::RevokeBody { reason: reason.map(str::to_string) }).await
    }

    pub async fn mint_credential(&self, grant_id: i64) -> Result<api::Credential, ClientError> {
        self.post(&format!("/v1/grants/{grant_id}/credentials"), &serde_json::json!({})).await
    }

    pub async fn audit_page(
        &self,
        after: i64,
        since: Option<chrono::DateTime<chrono::Utc>>,
        limit: u32,
    ) -> Result<Vec<AuditEvent>, ClientError> {
        let since = since.map(|t| format!("&since={}", encode(&crate::domain::audit::timestamp(t)))).unwrap_or_default();
        self.get(&format!("/v1/audit?after={after}&limit={limit}{since}")).await
    }
}

fn encode(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes()).collect()
}

/// A short cause for a transport error, without the URL reqwest repeats.
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection refused or unreachable".into()
    } else {
        let mut msg = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            msg = format!("{msg}: {s}");
            source = s.source();
        }
        msg
    }
}
