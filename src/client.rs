//! The broker's HTTP client, used by every command that talks to a broker.
//!
//! Thin: one method per endpoint, JSON in and out via [`crate::api`], and one
//! error type whose API variant carries the broker's stable error code.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use url::Url;

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
    /// The broker's URL as given (no trailing `/`), for messages.
    base: String,
    /// The same, parsed: request URLs are built from it segment by segment.
    base_url: Url,
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

type Query<'a> = &'a [(&'a str, String)];

impl Client {
    pub fn new(server: &str, token: Option<SecretString>) -> Result<Client, ClientError> {
        let base_url = Url::parse(server).map_err(|e| ClientError::BadUrl(format!("invalid broker URL `{server}`: {e}")))?;
        if !matches!(base_url.scheme(), "http" | "https") {
            return Err(ClientError::BadUrl(format!("invalid broker URL `{server}`: must be http or https")));
        }
        if base_url.cannot_be_a_base() {
            return Err(ClientError::BadUrl(format!("invalid broker URL `{server}`: not a base URL")));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("jit/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        Ok(Client { base: server.trim_end_matches('/').to_string(), base_url, token, http })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// The broker's URL with `segments` appended, each percent-encoded as one path segment.
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base_url.clone();
        url.path_segments_mut().expect("checked to be a base URL").pop_if_empty().extend(segments);
        url
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        query: Query<'_>,
        body: Option<&(impl Serialize + ?Sized)>,
        timeout: Duration,
    ) -> Result<T, ClientError> {
        let mut req = self.http.request(method, self.url(segments)).timeout(timeout);
        if !query.is_empty() {
            req = req.query(query);
        }
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

    async fn get<T: DeserializeOwned>(&self, segments: &[&str], query: Query<'_>) -> Result<T, ClientError> {
        self.call(Method::GET, segments, query, None::<&()>, CALL_TIMEOUT).await
    }

    async fn post<T: DeserializeOwned>(&self, segments: &[&str], body: &(impl Serialize + ?Sized)) -> Result<T, ClientError> {
        self.call(Method::POST, segments, &[], Some(body), CALL_TIMEOUT).await
    }

    pub async fn health(&self) -> Result<api::Health, ClientError> {
        self.get(&["healthz"], &[]).await
    }

    pub async fn whoami(&self) -> Result<api::User, ClientError> {
        self.get(&["v1", "whoami"], &[]).await
    }

    pub async fn repos(&self) -> Result<Vec<api::Repo>, ClientError> {
        self.get(&["v1", "repos"], &[]).await
    }

    pub async fn users(&self) -> Result<Vec<api::User>, ClientError> {
        self.get(&["v1", "users"], &[]).await
    }

    pub async fn add_user(&self, user: &api::NewUser) -> Result<api::IssuedToken, ClientError> {
        self.post(&["v1", "users"], user).await
    }

    pub async fn remove_user(&self, name: &str) -> Result<(), ClientError> {
        self.call(Method::DELETE, &["v1", "users", name], &[], None::<&()>, CALL_TIMEOUT).await
    }

    pub async fn rotate_token(&self, name: &str) -> Result<api::IssuedToken, ClientError> {
        self.post(&["v1", "users", name, "token"], &serde_json::json!({})).await
    }

    pub async fn create_request(&self, body: &api::CreateRequest) -> Result<api::AccessRequest, ClientError> {
        self.post(&["v1", "requests"], body).await
    }

    pub async fn request(&self, id: i64) -> Result<api::AccessRequest, ClientError> {
        self.get(&["v1", "requests", &id.to_string()], &[]).await
    }

    /// Long-poll: returns when the request's status is no longer `seen`, or after `wait`.
    pub async fn wait_request(&self, id: i64, seen: &str, wait: Duration) -> Result<api::AccessRequest, ClientError> {
        let query = [("wait", format!("{}s", wait.as_secs().max(1))), ("status", seen.to_string())];
        self.call(Method::GET, &["v1", "requests", &id.to_string()], &query, None::<&()>, wait + CALL_TIMEOUT).await
    }

    pub async fn requests(&self, mine: bool, reviewable: bool, status: Option<&str>) -> Result<Vec<api::AccessRequest>, ClientError> {
        let mut query = vec![("mine", mine.to_string()), ("reviewable", reviewable.to_string())];
        if let Some(s) = status {
            query.push(("status", s.to_string()));
        }
        self.get(&["v1", "requests"], &query).await
    }

    pub async fn approve(&self, id: i64, comment: Option<&str>) -> Result<api::AccessRequest, ClientError> {
        self.post(&["v1", "requests", &id.to_string(), "approve"], &api::ApproveBody { comment: comment.map(str::to_string) }).await
    }

    pub async fn deny(&self, id: i64, reason: &str) -> Result<api::AccessRequest, ClientError> {
        self.post(&["v1", "requests", &id.to_string(), "deny"], &api::DenyBody { reason: reason.to_string() }).await
    }

    pub async fn cancel(&self, id: i64) -> Result<api::AccessRequest, ClientError> {
        self.post(&["v1", "requests", &id.to_string(), "cancel"], &serde_json::json!({})).await
    }

    pub async fn grants(&self, all: bool, live: bool) -> Result<Vec<api::Grant>, ClientError> {
        self.get(&["v1", "grants"], &[("all", all.to_string()), ("live", live.to_string())]).await
    }

    pub async fn revoke(&self, id: i64, reason: Option<&str>) -> Result<api::Grant, ClientError> {
        self.post(&["v1", "grants", &id.to_string(), "revoke"], &api::RevokeBody { reason: reason.map(str::to_string) }).await
    }

    pub async fn mint_credential(&self, grant_id: i64) -> Result<api::Credential, ClientError> {
        self.post(&["v1", "grants", &grant_id.to_string(), "credentials"], &serde_json::json!({})).await
    }

    pub async fn audit_page(
        &self,
        after: i64,
        since: Option<chrono::DateTime<chrono::Utc>>,
        limit: u32,
    ) -> Result<Vec<AuditEvent>, ClientError> {
        let mut query = vec![("after", after.to_string()), ("limit", limit.to_string())];
        if let Some(t) = since {
            query.push(("since", crate::domain::audit::timestamp(t)));
        }
        self.get(&["v1", "audit"], &query).await
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_built_segment_by_segment() {
        let c = Client::new("https://jit.example.com/", None).unwrap();
        assert_eq!(c.url(&["v1", "users", "a b/../c", "token"]).as_str(), "https://jit.example.com/v1/users/a%20b%2F..%2Fc/token");
        let prefixed = Client::new("https://example.com/jit", None).unwrap();
        assert_eq!(prefixed.url(&["v1", "whoami"]).as_str(), "https://example.com/jit/v1/whoami");
        assert!(Client::new("mailto:x@example.com", None).is_err());
    }
}
