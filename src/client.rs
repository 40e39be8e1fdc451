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
    /// A client for `server`. HTTPS certificates are checked against the
    /// system's roots and, when given, the CA certificates in `ca_file` (PEM).
    /// A token is never sent over plain HTTP except to loopback, unless
    /// `JIT_ALLOW_INSECURE_HTTP=1` says so (and then with a warning).
    pub fn new(server: &str, token: Option<SecretString>, ca_file: Option<&std::path::Path>) -> Result<Client, ClientError> {
        let base_url = parse_server(server)?;
        let server = server.trim();
        let loopback = base_url
            .host_str()
            .is_some_and(|h| h == "localhost" || h.trim_matches(['[', ']']).parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback()));
        if token.is_some() && base_url.scheme() == "http" && !loopback {
            if std::env::var("JIT_ALLOW_INSECURE_HTTP").as_deref() != Ok("1") {
                return Err(ClientError::BadUrl(format!(
                    "refusing to send your token over plain HTTP to {server}: anyone on the way could read it; use https:// (or set JIT_ALLOW_INSECURE_HTTP=1 to send it anyway)"
                )));
            }
            eprintln!("warning: JIT_ALLOW_INSECURE_HTTP=1: sending your token to {server} over plain HTTP, readable on the way");
        }
        let mut builder =
            reqwest::Client::builder().connect_timeout(Duration::from_secs(10)).user_agent(concat!("jit/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = ca_file {
            let cannot = |why: String| ClientError::BadUrl(format!("CA file {}: {why}", path.display()));
            let pem = std::fs::read(path).map_err(|e| cannot(e.to_string()))?;
            let certificates = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| cannot(e.to_string()))?;
            if certificates.is_empty() {
                return Err(cannot("no PEM certificate in it".into()));
            }
            for c in certificates {
                builder = builder.add_root_certificate(c);
            }
        }
        let http = builder.build().map_err(|e| ClientError::Protocol(e.to_string()))?;
        Ok(Client { base: server.trim_end_matches('/').to_string(), base_url, token, http })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Its token's fingerprint (see `domain::token::fingerprint`), which keys the
    /// credentials cached under it.
    pub fn login_fingerprint(&self) -> Option<String> {
        self.token.as_ref().map(|t| crate::domain::token::fingerprint(t.expose_secret()))
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
        let (_, bytes) = self.exchange(method, self.url(segments), query, body, timeout).await?;
        decode(&bytes)
    }

    /// Every page of a listing, following the broker's `Link: <…>; rel="next"`.
    async fn get_all<T: DeserializeOwned>(&self, segments: &[&str], query: Query<'_>) -> Result<Vec<T>, ClientError> {
        let (mut url, mut query) = (self.url(segments), query);
        let mut all = Vec::new();
        loop {
            let (headers, bytes) = self.exchange(Method::GET, url.clone(), query, None::<&()>, CALL_TIMEOUT).await?;
            all.extend(decode::<Vec<T>>(&bytes)?);
            let Some(next) = next_link(&headers) else { return Ok(all) };
            url = url.join(&next).map_err(|e| ClientError::Protocol(format!("bad next-page link `{next}`: {e}")))?;
            query = &[];
        }
    }

    /// One HTTP exchange: the headers and body of a success, or the broker's error.
    async fn exchange(
        &self,
        method: Method,
        url: Url,
        query: Query<'_>,
        body: Option<&(impl Serialize + ?Sized)>,
        timeout: Duration,
    ) -> Result<(reqwest::header::HeaderMap, Vec<u8>), ClientError> {
        let mut req = self.http.request(method, url).timeout(timeout);
        if !query.is_empty() {
            req = req.query(query);
        }
        if let Some(token) = &self.token {
            req = req.bearer_auth(token.expose_secret());
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        let unreachable = |e: reqwest::Error| ClientError::Unreachable { url: self.base.clone(), message: describe(&e, &self.base_url) };
        let resp = req.send().await.map_err(|e| {
            // A request that cannot even be built (a URL too long for HTTP) is bad input, not an outage.
            if e.is_builder() { ClientError::BadUrl(format!("cannot send this request: {}", e.without_url())) } else { unreachable(e) }
        })?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.map_err(unreachable)?.to_vec();
        if !status.is_success() {
            return Err(match serde_json::from_slice::<ErrorBody>(&bytes) {
                // The broker's own 404 for a path it does not have: the base URL is off.
                Ok(body) if status == StatusCode::NOT_FOUND && body.error.message == "route not found" => ClientError::Api {
                    status: status.as_u16(),
                    code: body.error.code,
                    message: format!("{} has no such API route", self.base),
                    hint: Some("give the broker's base URL, the one `jit server` prints (e.g. http://127.0.0.1:8420)".into()),
                },
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
        Ok((headers, bytes))
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

    /// `/healthz` with the broker's clock (its `Date` header), for `jit doctor`.
    pub async fn health_with_date(&self) -> Result<(api::Health, Option<chrono::DateTime<chrono::Utc>>), ClientError> {
        let unreachable = |e: reqwest::Error| ClientError::Unreachable { url: self.base.clone(), message: describe(&e, &self.base_url) };
        let resp = self.http.get(self.url(&["healthz"])).timeout(CALL_TIMEOUT).send().await.map_err(unreachable)?;
        let date = resp
            .headers()
            .get(reqwest::header::DATE)
            .and_then(|d| d.to_str().ok())
            .and_then(|d| chrono::DateTime::parse_from_rfc2822(d).ok())
            .map(|d| d.with_timezone(&chrono::Utc));
        let status = resp.status();
        let health = resp.json::<api::Health>().await.map_err(|e| ClientError::Protocol(format!("{status}: {e}")))?;
        Ok((health, date))
    }

    pub async fn whoami(&self) -> Result<api::User, ClientError> {
        Ok(self.whoami_session().await?.user)
    }

    /// The caller and, when the identity provider signed them in, their session.
    pub async fn whoami_session(&self) -> Result<api::WhoAmI, ClientError> {
        self.get(&["v1", "whoami"], &[]).await
    }

    /// How people sign in to this broker (no login needed).
    pub async fn auth_methods(&self) -> Result<api::AuthMethods, ClientError> {
        self.get(&["v1", "auth"], &[]).await
    }

    pub async fn start_device_sign_in(&self) -> Result<api::DeviceSignIn, ClientError> {
        self.post(&["v1", "auth", "device"], &serde_json::json!({})).await
    }

    /// Whether the person finished the device sign-in (`pending`, `slow_down` or `signed_in`).
    pub async fn finish_device_sign_in(&self, login: &str) -> Result<api::SignInStatus, ClientError> {
        self.post(&["v1", "auth", "device", "token"], &api::DeviceLogin { login: login.to_string() }).await
    }

    pub async fn notifications(&self) -> Result<Vec<api::NotificationDestination>, ClientError> {
        self.get(&["v1", "notifications"], &[]).await
    }

    pub async fn replicas(&self) -> Result<Vec<api::Replica>, ClientError> {
        self.get(&["v1", "replicas"], &[]).await
    }

    pub async fn start_browser_sign_in(&self) -> Result<api::BrowserSignIn, ClientError> {
        self.post(&["v1", "auth", "browser"], &serde_json::json!({})).await
    }

    /// Whether the browser came back to the broker (`pending` or `signed_in`).
    pub async fn finish_browser_sign_in(&self, login: &str) -> Result<api::SignInStatus, ClientError> {
        self.post(&["v1", "auth", "browser", "token"], &api::DeviceLogin { login: login.to_string() }).await
    }

    /// Ends the caller's broker session (a token login has none: a no-op).
    pub async fn sign_out(&self) -> Result<(), ClientError> {
        self.call(Method::DELETE, &["v1", "auth", "session"], &[], None::<&()>, CALL_TIMEOUT).await
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
        self.get_all(&["v1", "requests"], &query).await
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
        self.get_all(&["v1", "grants"], &[("all", all.to_string()), ("live", live.to_string())]).await
    }

    /// Admins: grants that ended but whose host has not yet agreed.
    pub async fn failing_grants(&self) -> Result<Vec<api::FailingGrant>, ClientError> {
        self.get(&["v1", "grants", "failing"], &[]).await
    }

    /// Break-glass grants not yet reviewed (as their requests), every page.
    /// With `all` (admins), every one; else those the caller may review.
    pub async fn unreviewed(&self, all: bool) -> Result<Vec<api::AccessRequest>, ClientError> {
        self.get_all(&["v1", "grants", "unreviewed"], &[("all", all.to_string())]).await
    }

    /// Reviews break-glass grant `id` (`jit review`).
    pub async fn review(&self, id: i64, body: &api::ReviewBody) -> Result<api::AccessRequest, ClientError> {
        self.post(&["v1", "grants", &id.to_string(), "review"], body).await
    }

    pub async fn revoke(&self, id: i64, reason: Option<&str>) -> Result<api::Grant, ClientError> {
        self.post(&["v1", "grants", &id.to_string(), "revoke"], &api::RevokeBody { reason: reason.map(str::to_string) }).await
    }

    /// Asks to lengthen grant `id` (`jit extend`): the extension request.
    pub async fn extend_grant(&self, id: i64, body: &api::ExtendBody) -> Result<api::AccessRequest, ClientError> {
        self.post(&["v1", "grants", &id.to_string(), "extend"], body).await
    }

    pub async fn mint_credential(&self, grant_id: i64) -> Result<api::Credential, ClientError> {
        self.post(&["v1", "grants", &grant_id.to_string(), "credentials"], &serde_json::json!({})).await
    }

    pub async fn grant_report(&self, id: i64) -> Result<api::GrantReport, ClientError> {
        self.get(&["v1", "grants", &id.to_string(), "report"], &[]).await
    }

    pub async fn audit_checkpoint(&self) -> Result<api::AuditCheckpoint, ClientError> {
        self.get(&["v1", "audit", "checkpoint"], &[]).await
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

/// Reads a broker URL as people type it, and says what to type instead when
/// it is not one: no scheme (`127.0.0.1:8420`), the API path (`…/v1`), a query.
pub fn parse_server(input: &str) -> Result<Url, ClientError> {
    let input = input.trim();
    let bad = |why: String| ClientError::BadUrl(format!("invalid broker URL `{input}`: {why}"));
    if !input.contains("://") {
        let host = input.split(['/', ':']).next().unwrap_or("");
        let local = host == "localhost" || host.starts_with("127.") || input.starts_with("[::1]");
        let scheme = if local { "http" } else { "https" };
        return Err(bad(format!("it has no scheme; use {scheme}://{}", input.trim_end_matches('/'))));
    }
    let url = Url::parse(input).map_err(|e| bad(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("must be http or https".into()));
    }
    if url.cannot_be_a_base() || url.host_str().is_none_or(str::is_empty) {
        return Err(bad("no host".into()));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(bad("a broker URL has no query, fragment or user name".into()));
    }
    let path = url.path().trim_end_matches('/');
    if path == "/v1" || path.ends_with("/v1") || path.contains("/v1/") {
        let mut base = url.clone();
        base.set_path(&path[..path.find("/v1").unwrap_or(0)]);
        return Err(bad(format!("that is the API's path; give the broker's base URL: {}", base.as_str().trim_end_matches('/'))));
    }
    Ok(url)
}

/// A short cause for a transport error, without the URL reqwest repeats.
/// A body as JSON; an empty one (204) reads as `null`.
fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ClientError> {
    let bytes = if bytes.is_empty() { &b"null"[..] } else { bytes };
    serde_json::from_slice(bytes).map_err(|e| ClientError::Protocol(e.to_string()))
}

/// The target of a `Link` header's `rel="next"` entry.
fn next_link(headers: &reqwest::header::HeaderMap) -> Option<String> {
    headers.get_all(reqwest::header::LINK).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).find_map(|entry| {
        let (target, params) = entry.trim().strip_prefix('<')?.split_once('>')?;
        params.split(';').any(|p| matches!(p.trim(), "rel=\"next\"" | "rel=next")).then(|| target.to_string())
    })
}

fn describe(e: &reqwest::Error, base: &Url) -> String {
    let chain = {
        let mut text = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            text = format!("{text}: {s}");
            source = s.source();
        }
        text
    };
    let tls_failed = ["InvalidContentType", "corrupt message", "tls handshake", "HandshakeFailure", "WrongVersionNumber"]
        .iter()
        .any(|needle| chain.to_ascii_lowercase().contains(&needle.to_ascii_lowercase()));
    if base.scheme() == "https" && tls_failed {
        let mut plain = base.clone();
        let _ = plain.set_scheme("http");
        return format!(
            "the TLS handshake failed; is the broker serving plain HTTP there? then use {}",
            plain.as_str().trim_end_matches('/')
        );
    }
    if let Some(start) = chain.find("invalid peer certificate") {
        let what = chain[start..].split(':').next().unwrap_or("invalid peer certificate");
        return format!(
            "the broker's TLS certificate is not trusted here ({what}); if your organisation signs it, pass --ca-file or set JIT_CA_FILE to that CA"
        );
    }
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection refused or unreachable".into()
    } else {
        chain
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_page_is_the_link_marked_next() {
        let headers = |values: &[&str]| {
            let mut h = reqwest::header::HeaderMap::new();
            for v in values {
                h.append(reqwest::header::LINK, v.parse().unwrap());
            }
            h
        };
        assert_eq!(next_link(&headers(&["<?mine=true&before=7>; rel=\"next\""])).as_deref(), Some("?mine=true&before=7"));
        assert_eq!(next_link(&headers(&["<?before=1>; rel=\"prev\", <?before=9>; rel=next"])).as_deref(), Some("?before=9"));
        assert_eq!(next_link(&headers(&["<?before=1>; rel=\"prev\""])), None);
        assert_eq!(next_link(&headers(&[])), None);
        // Resolved against the page's URL, a query-only link keeps the path (and any proxy prefix).
        let page = Url::parse("https://jit.example.com/prefix/v1/requests?mine=true").unwrap();
        assert_eq!(page.join("?mine=true&before=7").unwrap().as_str(), "https://jit.example.com/prefix/v1/requests?mine=true&before=7");
    }

    #[test]
    fn broker_urls_as_people_mistype_them_say_what_to_type() {
        let err = |s: &str| parse_server(s).unwrap_err().to_string();
        assert!(err("127.0.0.1:8420").contains("use http://127.0.0.1:8420"), "{}", err("127.0.0.1:8420"));
        assert!(err("jit.example.com").contains("use https://jit.example.com"));
        assert!(err("http://127.0.0.1:8420/v1").contains("base URL: http://127.0.0.1:8420"), "{}", err("http://127.0.0.1:8420/v1"));
        assert!(err("https://example.com/jit/v1/").contains("base URL: https://example.com/jit"), "{}", err("https://example.com/jit/v1/"));
        assert!(err("ftp://x").contains("http or https"));
        assert!(err("http://x/?a=b").contains("no query"));
        assert!(parse_server(" http://127.0.0.1:8420/ ").is_ok());
    }

    #[test]
    fn a_token_never_travels_over_plain_http_beyond_loopback() {
        let token = || Some(SecretString::from("jit_x"));
        let err = Client::new("http://jit.example.com", token(), None).unwrap_err().to_string();
        assert!(err.contains("refusing to send your token over plain HTTP") && err.contains("https://"), "{err}");
        for ok in ["http://127.0.0.1:8420", "http://localhost:8420", "http://[::1]:8420", "https://jit.example.com"] {
            assert!(Client::new(ok, token(), None).is_ok(), "{ok}");
        }
        assert!(Client::new("http://jit.example.com", None, None).is_ok(), "no token, nothing to leak (health checks)");
        let missing = Client::new("https://jit.example.com", token(), Some(std::path::Path::new("/nonexistent/ca.pem"))).unwrap_err();
        assert!(missing.to_string().contains("CA file /nonexistent/ca.pem"), "{missing}");
    }

    #[test]
    fn urls_are_built_segment_by_segment() {
        let c = Client::new("https://jit.example.com/", None, None).unwrap();
        assert_eq!(c.url(&["v1", "users", "a b/../c", "token"]).as_str(), "https://jit.example.com/v1/users/a%20b%2F..%2Fc/token");
        let prefixed = Client::new("https://example.com/jit", None, None).unwrap();
        assert_eq!(prefixed.url(&["v1", "whoami"]).as_str(), "https://example.com/jit/v1/whoami");
        assert!(Client::new("mailto:x@example.com", None, None).is_err());
    }
}
