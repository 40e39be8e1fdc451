//! The `bitbucket` provider: Bitbucket Data Center (and Server) and
//! Bitbucket Cloud. Access is created at Bitbucket when a grant starts and
//! taken away there when it ends; git talks to Bitbucket directly.
//!
//! ```toml
//! [[provider]]
//! name = "bitbucket"
//! kind = "bitbucket"
//! api_url = "https://bitbucket.example.com"  # Data Center; Cloud: "https://api.bitbucket.org/2.0"
//! token_file = "/etc/jit/bitbucket.token"    # or token_env: the broker's own credential
//!
//! [[repo]]
//! name = "acme/api"
//! url = "https://bitbucket.example.com/scm/ACME/api.git"
//! provider = "bitbucket"
//! ```
//!
//! **Data Center, token mode** (the default): each credential is a
//! repository HTTP access token with the level's permission (`read` →
//! `REPO_READ`, `write` → `REPO_WRITE`, `admin` → `REPO_ADMIN`), created to
//! expire the day after the grant ends (Bitbucket counts in days: the
//! backstop should the broker be down then) and deleted by id when the grant
//! ends. Bitbucket takes repository tokens only as a Bearer header, never as
//! a Basic password, so git gets them with `authtype=Bearer` (git 2.46 or
//! later; an older git is told so, and the gateway remains the way for it).
//! The broker's credential is an HTTP access token of a bot user who is
//! project admin of the guarded repos' projects.
//!
//! **Data Center, member mode** (`mode = "member"`, `logins = { alice =
//! "alice" }`: jit users → Bitbucket user names): a grant gives the person
//! the level's repository permission, and its end removes it. Someone who
//! already has it (their own repository permission, or the project's) is
//! left as they were; someone whose own repository permission is lower is
//! raised, and put back at the end. A permission through a group is not
//! visible to a project admin, so there jit adds its own and removes it at
//! the end: the group's stays as it was.
//!
//! **Cloud** has no API to create repository access tokens, so it is member
//! mode only: `logins` maps jit users to Atlassian account ids, and a grant
//! sets the person's explicit repository permission (`read`, `write`,
//! `admin`), restored to what it was (or removed) at the end. The broker
//! authenticates with an access token (Bearer) that has `repository:admin`,
//! or with `username` and an API token (Basic).

use std::collections::BTreeMap;
use std::path::PathBuf;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::host_api::{quoted, rate_limit_wait, transport};
use super::{Access, Kept, Membership, Minted, Provider, ProviderError, host_api};
use crate::domain::Level;
use crate::domain::records::GrantRecord;
use crate::domain::repo::RepoSpec;
use crate::domain::token::{AuthScheme, ExposeSecret, SecretString};

pub const KIND: &str = "bitbucket";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Section {
    api_url: Option<String>,
    token_file: Option<PathBuf>,
    token_env: Option<String>,
    /// Cloud: the account whose API token `token_*` is (Basic); none: an access token (Bearer).
    username: Option<String>,
    mode: Option<String>,
    /// Member mode: jit user → Bitbucket user name (Data Center) or account id (Cloud).
    #[serde(default)]
    logins: BTreeMap<String, String>,
    timeout: Option<String>,
    ca_file: Option<PathBuf>,
    /// Data Center's longest token lifetime, in days, where an administrator set one.
    max_token_days: Option<u32>,
}

/// Which Bitbucket: the REST API's shapes differ entirely.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Edition {
    DataCenter,
    Cloud,
}

#[derive(Debug)]
enum Mode {
    /// A repository access token per credential (Data Center only).
    Token { max_days: Option<u32> },
    /// A repository permission per grant.
    Member { logins: BTreeMap<String, String> },
}

/// How the broker proves itself to Bitbucket.
enum BrokerAuth {
    Bearer(SecretString),
    Basic { username: String, token: SecretString },
}

pub struct Bitbucket {
    name: String,
    edition: Edition,
    mode: Mode,
    api_url: String,
    auth: BrokerAuth,
    client: reqwest::Client,
}

impl std::fmt::Debug for Bitbucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bitbucket")
            .field("name", &self.name)
            .field("edition", &self.edition)
            .field("api_url", &self.api_url)
            .finish_non_exhaustive()
    }
}

pub fn from_section(name: &str, table: toml::Table) -> Result<std::sync::Arc<dyn Provider>, String> {
    let section: Section = table.try_into().map_err(|e: toml::de::Error| e.message().to_string())?;
    Ok(std::sync::Arc::new(Bitbucket::from_section(name, section, |var| std::env::var(var).ok())?))
}

/// Data Center's repository permission for a level.
fn repo_permission(level: Level) -> &'static str {
    match level {
        Level::Read => "REPO_READ",
        Level::Write => "REPO_WRITE",
        Level::Admin => "REPO_ADMIN",
    }
}

/// Cloud's repository permission for a level.
fn cloud_permission(level: Level) -> &'static str {
    match level {
        Level::Read => "read",
        Level::Write => "write",
        Level::Admin => "admin",
    }
}

/// How much a permission (either edition's, repository or project) gives on a repository: 0 (nothing) to 3 (admin).
fn rank(permission: Option<&str>) -> u8 {
    match permission.unwrap_or("") {
        "REPO_READ" | "PROJECT_READ" | "read" => 1,
        "REPO_WRITE" | "PROJECT_WRITE" | "write" => 2,
        "REPO_ADMIN" | "PROJECT_ADMIN" | "admin" => 3,
        _ => 0,
    }
}

/// A repository at Bitbucket: its project key (Data Center) or workspace (Cloud), and its slug.
#[derive(Debug, PartialEq, Eq)]
struct Location {
    owner: String,
    slug: String,
}

/// Where a repo's clone URL says it is. Data Center: `…/scm/KEY/slug.git`
/// (the key in any case; the API's is upper-case, a personal `~user` as
/// given). Cloud: `https://bitbucket.org/WORKSPACE/slug.git`.
fn location(edition: Edition, repo: &RepoSpec) -> Result<Location, String> {
    let url = repo.url.as_ref().ok_or("`url` is missing: the repository's clone URL at Bitbucket")?;
    let parts: Vec<&str> = url.path().split('/').collect();
    let plain = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~'));
    match (edition, parts.as_slice()) {
        (Edition::DataCenter, [.., scm, key, slug]) if scm.eq_ignore_ascii_case("scm") && plain(key) && plain(slug) => {
            let owner = if key.starts_with('~') { key.to_string() } else { key.to_ascii_uppercase() };
            Ok(Location { owner, slug: slug.to_string() })
        }
        (Edition::DataCenter, _) => Err(format!("url {url}: a Bitbucket Data Center repository is https://HOST/scm/PROJECT/REPO.git")),
        (Edition::Cloud, [workspace, slug]) if plain(workspace) && plain(slug) => {
            Ok(Location { owner: workspace.to_string(), slug: slug.to_string() })
        }
        (Edition::Cloud, _) => Err(format!("url {url}: a Bitbucket Cloud repository is https://bitbucket.org/WORKSPACE/REPO.git")),
    }
}

/// Days until a token made `now` must expire to outlive the grant (the
/// day after it, as Bitbucket counts), within `max_days`; and when the
/// credential really ends.
pub fn token_days(end: DateTime<Utc>, now: DateTime<Utc>, max_days: Option<u32>) -> (u32, DateTime<Utc>) {
    let seconds = (end - now).num_seconds().max(1);
    let mut days = u32::try_from(seconds.unsigned_abs().div_ceil(86_400)).unwrap_or(u32::MAX);
    if let Some(max) = max_days {
        days = days.min(max);
    }
    (days, end.min(now + chrono::Duration::days(i64::from(days))))
}

/// What a Bitbucket error answer says: its message and (Data Center) the exception's class.
fn said(edition: Edition, body: &serde_json::Value) -> (Option<String>, String) {
    match edition {
        Edition::DataCenter => {
            let first = &body["errors"][0];
            (first["message"].as_str().map(str::to_string), first["exceptionName"].as_str().unwrap_or("").to_string())
        }
        Edition::Cloud => {
            let error = &body["error"];
            let message = error["message"].as_str().map(|m| match error["detail"].as_str() {
                Some(detail) if !detail.is_empty() => format!("{m} ({detail})"),
                _ => m.to_string(),
            });
            (message, String::new())
        }
    }
}

/// Bitbucket's answer, in words that say what to fix.
fn host_error(
    edition: Edition,
    provider: &str,
    doing: &str,
    status: u16,
    retry_after: Option<std::time::Duration>,
    body: &serde_json::Value,
) -> ProviderError {
    let (message, exception) = said(edition, body);
    let said = quoted(message.as_deref());
    let provider = provider.to_string();
    if let (429, Some(retry_after)) = (status, retry_after) {
        return ProviderError::RateLimited { provider, retry_after };
    }
    let refused = |message: String| ProviderError::Refused { provider: provider.clone(), message };
    match (edition, status) {
        // Data Center answers 401 both for a credential it does not take and for one without the permission.
        (Edition::DataCenter, 401) if exception.ends_with("AuthorisationException") => refused(format!(
            "Bitbucket forbade {doing} (HTTP 401{said}); the broker's bot user must be project admin of the repository's project"
        )),
        (_, 401) => refused(format!(
            "Bitbucket refused the broker's credential while {doing} (HTTP 401{said}); check token_file / token_env, and that the token has not expired"
        )),
        (Edition::DataCenter, 403) if exception.ends_with("FeatureDisabledException") => refused(format!(
            "Bitbucket refused {doing} (HTTP 403{said}): HTTP access tokens are turned off on this instance; an administrator turns them on, or use mode = \"member\""
        )),
        (Edition::DataCenter, 403) => refused(format!("Bitbucket forbade {doing} (HTTP 403{said})")),
        (Edition::Cloud, 403) => refused(format!(
            "Bitbucket forbade {doing} (HTTP 403{said}); the broker's credential needs the repository:admin scope and admin on the repository"
        )),
        (Edition::Cloud, 402) => {
            refused(format!("Bitbucket refused {doing} (HTTP 402{said}): the workspace's plan has no room for another user"))
        }
        (Edition::DataCenter, 404) if exception.ends_with("NoSuchUserException") => {
            refused(format!("Bitbucket has no such user while {doing} (HTTP 404{said}); check the provider's logins"))
        }
        (_, 404) => refused(format!(
            "Bitbucket found nothing while {doing} (HTTP 404{said}); does the repository exist, and can the broker's credential see it?"
        )),
        (_, 400 | 409 | 422) => refused(format!("Bitbucket refused {doing} (HTTP {status}{said})")),
        _ => ProviderError::Failed { provider, message: format!("Bitbucket answered HTTP {status} while {doing}{said}") },
    }
}

/// What ending a permission jit gave or raised needs.
#[derive(serde::Serialize, Deserialize)]
struct MemberHandle {
    /// The Data Center user name, or the Cloud account id.
    user: String,
    /// The permission to put back (their own was raised); `None`: remove it.
    restore: Option<String>,
}

impl Bitbucket {
    fn from_section(name: &str, section: Section, env: impl Fn(&str) -> Option<String>) -> Result<Bitbucket, String> {
        let api_url = section
            .api_url
            .as_deref()
            .ok_or("api_url: missing (Data Center: \"https://bitbucket.example.com\"; Cloud: \"https://api.bitbucket.org/2.0\")")?;
        let api_url = host_api::api_url(api_url)?;
        // Cloud's API lives under /2.0; Data Center's under /rest, beneath the base URL given.
        let edition = if api_url.ends_with("/2.0") { Edition::Cloud } else { Edition::DataCenter };
        let mode = match (section.mode.as_deref(), edition) {
            (None | Some("token"), Edition::DataCenter) if section.logins.is_empty() => Mode::Token { max_days: section.max_token_days },
            (None | Some("token"), Edition::DataCenter) => return Err("logins are for mode = \"member\"".into()),
            (Some("token"), Edition::Cloud) => {
                return Err("mode `token`: Bitbucket Cloud has no API to create repository access tokens; use mode = \"member\"".into());
            }
            (None | Some("member"), _) => Mode::Member { logins: section.logins },
            (Some(other), _) => {
                return Err(format!(
                    "mode `{other}`: expected \"token\" (repository access tokens) or \"member\" (repository permissions)"
                ));
            }
        };
        if section.max_token_days.is_some_and(|d| !(1..=3650).contains(&d)) {
            return Err(format!("max_token_days `{}`: between 1 and 3650", section.max_token_days.unwrap_or(0)));
        }
        if section.max_token_days.is_some() && !matches!(mode, Mode::Token { .. }) {
            return Err("max_token_days is for Data Center's token mode".into());
        }
        let token = host_api::secret_from("token", section.token_file.as_ref(), section.token_env.as_deref(), env)?;
        let auth = match section.username {
            Some(_) if edition == Edition::DataCenter => {
                return Err("username is for Bitbucket Cloud's API tokens; Data Center takes the bot's HTTP access token alone".into());
            }
            Some(username) if username.is_empty() || username.chars().any(char::is_control) => {
                return Err("username: empty or has control characters".into());
            }
            Some(username) => BrokerAuth::Basic { username, token },
            None => BrokerAuth::Bearer(token),
        };
        let client = host_api::client(section.timeout.as_deref(), section.ca_file.as_deref())?;
        Ok(Bitbucket { name: name.to_string(), edition, mode, api_url, auth, client })
    }

    /// The Bitbucket user name (Data Center) or account id (Cloud) of a grant's person.
    fn login_of(&self, grant: &GrantRecord) -> Result<&str, ProviderError> {
        let Mode::Member { logins } = &self.mode else {
            return Err(self.config("token mode gives no permissions".into()));
        };
        logins.get(&grant.user).map(String::as_str).ok_or_else(|| ProviderError::Refused {
            provider: self.name.clone(),
            message: format!("no Bitbucket account for jit user `{}`: add it to provider `{}`'s logins", grant.user, self.name),
        })
    }

    fn location(&self, repo: &RepoSpec) -> Result<Location, ProviderError> {
        location(self.edition, repo).map_err(|message| self.config(message))
    }

    fn config(&self, message: String) -> ProviderError {
        ProviderError::Config { provider: self.name.clone(), message }
    }

    fn failed(&self, message: String) -> ProviderError {
        ProviderError::Failed { provider: self.name.clone(), message }
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.client.request(method, format!("{}{path}", self.api_url)).header("accept", "application/json");
        match &self.auth {
            BrokerAuth::Bearer(token) => request.bearer_auth(token.expose_secret()),
            BrokerAuth::Basic { username, token } => request.basic_auth(username, Some(token.expose_secret())),
        }
    }

    /// Sends; a status in `expect` gives the answer's JSON (null when empty),
    /// any other becomes Bitbucket's error for `doing`.
    async fn send(&self, request: reqwest::RequestBuilder, expect: &[u16], doing: &str) -> Result<(u16, serde_json::Value), ProviderError> {
        let response =
            request.send().await.map_err(|e| self.failed(format!("Bitbucket did not answer while {doing}: {}", transport(e))))?;
        let status = response.status().as_u16();
        let retry_after = rate_limit_wait(response.headers(), "x-ratelimit-remaining", "x-ratelimit-reset");
        let body: serde_json::Value = response.json().await.unwrap_or(serde_json::Value::Null);
        if expect.contains(&status) {
            return Ok((status, body));
        }
        Err(host_error(self.edition, &self.name, doing, status, retry_after, &body))
    }

    /// The permission `login` holds in a Data Center permission list (a
    /// repository's or a project's users), found by name among its pages.
    async fn dc_permission_of(&self, list: &str, login: &str, doing: &str) -> Result<Option<String>, ProviderError> {
        let mut start = 0;
        // A name filter matches names *containing* it: a few pages at most.
        for _ in 0..20 {
            let query = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("filter", login)
                .append_pair("start", &start.to_string())
                .append_pair("limit", "100")
                .finish();
            let (_, page) = self.send(self.request(reqwest::Method::GET, &format!("{list}?{query}")), &[200], doing).await?;
            let values = page["values"].as_array().map(Vec::as_slice).unwrap_or_default();
            if let Some(found) = values.iter().find(|v| v["user"]["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(login))) {
                return Ok(found["permission"].as_str().map(str::to_string));
            }
            match page["nextPageStart"].as_u64() {
                Some(next) if page["isLastPage"] == false => start = next,
                _ => return Ok(None),
            }
        }
        Ok(None)
    }

    /// That `login` is a Data Center user (a clear error before any permission is touched).
    async fn dc_user_exists(&self, login: &str) -> Result<(), ProviderError> {
        let doing = format!("looking up Bitbucket user `{login}`");
        let query = url::form_urlencoded::Serializer::new(String::new()).append_pair("filter", login).append_pair("limit", "100").finish();
        let (_, page) = self.send(self.request(reqwest::Method::GET, &format!("/rest/api/latest/users?{query}")), &[200], &doing).await?;
        let values = page["values"].as_array().map(Vec::as_slice).unwrap_or_default();
        if values.iter().any(|u| u["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(login))) {
            return Ok(());
        }
        Err(ProviderError::Refused {
            provider: self.name.clone(),
            message: format!("Bitbucket has no user `{login}` (provider `{}`'s logins)", self.name),
        })
    }

    fn dc_repo_users(at: &Location) -> String {
        format!("/rest/api/latest/projects/{}/repos/{}/permissions/users", at.owner, at.slug)
    }

    fn cloud_user_path(at: &Location, account: &str) -> String {
        let account: String = url::form_urlencoded::byte_serialize(account.as_bytes()).collect();
        format!("/repositories/{}/{}/permissions-config/users/{account}", at.owner, at.slug)
    }

    /// Sets `login`'s own repository permission to `permission`.
    async fn set_permission(&self, at: &Location, login: &str, permission: &str, doing: &str) -> Result<(), ProviderError> {
        match self.edition {
            Edition::DataCenter => {
                let query = url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("name", login)
                    .append_pair("permission", permission)
                    .finish();
                let path = format!("{}?{query}", Self::dc_repo_users(at));
                self.send(self.request(reqwest::Method::PUT, &path), &[204], doing).await.map(drop)
            }
            Edition::Cloud => {
                let body = serde_json::json!({ "permission": permission });
                let request = self.request(reqwest::Method::PUT, &Self::cloud_user_path(at, login)).json(&body);
                self.send(request, &[200, 201], doing).await.map(drop)
            }
        }
    }

    /// Removes `login`'s own repository permission; one already gone is done.
    async fn remove_permission(&self, at: &Location, login: &str, doing: &str) -> Result<(), ProviderError> {
        let path = match self.edition {
            Edition::DataCenter => {
                let query = url::form_urlencoded::Serializer::new(String::new()).append_pair("name", login).finish();
                format!("{}?{query}", Self::dc_repo_users(at))
            }
            Edition::Cloud => Self::cloud_user_path(at, login),
        };
        self.send(self.request(reqwest::Method::DELETE, &path), &[204, 404], doing).await.map(drop)
    }
}

#[async_trait]
impl Provider for Bitbucket {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        KIND
    }

    fn access(&self) -> Access {
        match self.mode {
            Mode::Token { .. } => Access::HostToken,
            Mode::Member { .. } => Access::HostMembership,
        }
    }

    async fn check_credential(&self) -> Vec<String> {
        let (path, doing) = match (self.edition, &self.auth) {
            (Edition::DataCenter, _) => {
                ("/rest/api/latest/projects?permission=PROJECT_ADMIN&limit=1", "listing the projects the broker's bot user administers")
            }
            (Edition::Cloud, BrokerAuth::Basic { .. }) => ("/user", "checking whose the broker's API token is"),
            // An access token belongs to a repository or workspace, not a user: nothing to ask about it alone.
            (Edition::Cloud, BrokerAuth::Bearer(_)) => return Vec::new(),
        };
        match self.send(self.request(reqwest::Method::GET, path), &[200], doing).await {
            Ok((_, page)) if self.edition == Edition::DataCenter && page["values"].as_array().is_some_and(Vec::is_empty) => vec![
                "the broker's bot user is project admin of no project: it needs project admin on the guarded repositories' projects".into(),
            ],
            Ok(_) => Vec::new(),
            Err(e) => vec![format!("cannot check the broker's credential: {e}")],
        }
    }

    fn check_repo(&self, repo: &RepoSpec) -> Result<(), String> {
        location(self.edition, repo).map(drop)
    }

    async fn mint(&self, repo: &RepoSpec, grant: &GrantRecord, now: DateTime<Utc>) -> Result<Minted, ProviderError> {
        let Mode::Token { max_days } = self.mode else {
            return Err(self.config("member mode mints no credentials".into()));
        };
        let at = self.location(repo)?;
        let (days, ends) = token_days(grant.expires_at, now, max_days);
        let body = serde_json::json!({
            "name": format!("jit grant {} ({}, {}) {}", grant.id, grant.user, grant.level, now.format("%Y-%m-%dT%H:%M:%SZ")),
            "permissions": [repo_permission(grant.level)],
            "expiryDays": days,
        });
        let doing = format!("creating a {} repository access token for {}", grant.level, repo.name);
        let path = format!("/rest/access-tokens/latest/projects/{}/repos/{}", at.owner, at.slug);
        let (_, answer) = self.send(self.request(reqwest::Method::PUT, &path).json(&body), &[200, 201], &doing).await?;
        let id = match &answer["id"] {
            serde_json::Value::String(id) => id.clone(),
            serde_json::Value::Number(id) => id.to_string(),
            _ => return Err(self.failed(format!("Bitbucket's answer while {doing} has no token id"))),
        };
        let token = SecretString::from(answer["token"].as_str().unwrap_or("").to_string());
        let sendable = |t: &str| !t.is_empty() && t.chars().all(|c| c.is_ascii_graphic());
        if !sendable(token.expose_secret()) || !sendable(&id) {
            let _ = self.revoke_minted(repo, grant, &SecretString::from(id)).await;
            return Err(self.failed(format!("Bitbucket answered {doing} with a token git cannot send; it was revoked")));
        }
        Ok(Minted {
            // Not sent (a Bearer token has no user name); it names the grant in `jit status`.
            username: format!("jit-grant-{}", grant.id),
            password: token,
            expires_at: ends,
            scheme: AuthScheme::Bearer,
            kept: Kept::HostHandle(SecretString::from(id)),
        })
    }

    fn membership_key(&self, repo: &RepoSpec, grant: &GrantRecord) -> Result<String, ProviderError> {
        Ok(format!("{}:{}:{}", self.name, repo.name, self.login_of(grant)?))
    }

    async fn add_membership(&self, repo: &RepoSpec, grant: &GrantRecord, jit_holds: bool) -> Result<Membership, ProviderError> {
        let at = self.location(repo)?;
        let login = self.login_of(grant)?;
        let doing = format!("reading {login}'s permission on {}", repo.name);
        let (wanted, own, had) = match self.edition {
            Edition::DataCenter => {
                self.dc_user_exists(login).await?;
                let own = self.dc_permission_of(&Self::dc_repo_users(&at), login, &doing).await?;
                let projects = format!("/rest/api/latest/projects/{}/permissions/users", at.owner);
                let project = self.dc_permission_of(&projects, login, &doing).await?;
                let had = rank(own.as_deref()).max(rank(project.as_deref()));
                (repo_permission(grant.level), own, had)
            }
            Edition::Cloud => {
                let path = Self::cloud_user_path(&at, login);
                let (status, found) = self.send(self.request(reqwest::Method::GET, &path), &[200, 404], &doing).await?;
                let own = (status == 200).then(|| found["permission"].as_str().map(str::to_string)).flatten();
                let had = rank(own.as_deref());
                (cloud_permission(grant.level), own, had)
            }
        };
        let handle = |restore: Option<String>| {
            let handle = MemberHandle { user: login.to_string(), restore };
            SecretString::from(serde_json::to_string(&handle).expect("a handle is JSON"))
        };
        if had >= rank(Some(wanted)) {
            let detail = format!(
                "{login} already has {} on {}",
                own.as_deref().filter(|p| rank(Some(p)) == had).unwrap_or("it through the project"),
                repo.name
            );
            return Ok(Membership { handle: handle(None), added: false, detail });
        }
        let doing = format!("giving {login} {wanted} on {}", repo.name);
        self.set_permission(&at, login, wanted, &doing).await?;
        let detail = match &own {
            Some(before) => format!("{login} raised from {before} to {wanted} on {}", repo.name),
            None => format!("{login} given {wanted} on {}", repo.name),
        };
        // Their own, lower permission is put back at the end; one jit gave for another grant is not theirs.
        Ok(Membership { handle: handle(own.filter(|_| !jit_holds)), added: true, detail })
    }

    async fn revoke_minted(&self, repo: &RepoSpec, _grant: &GrantRecord, handle: &SecretString) -> Result<(), ProviderError> {
        let at = self.location(repo)?;
        if let Ok(member) = serde_json::from_str::<MemberHandle>(handle.expose_secret()) {
            let doing = format!("ending {}'s permission on {}", member.user, repo.name);
            return match member.restore {
                Some(before) => self.set_permission(&at, &member.user, &before, &doing).await,
                None => self.remove_permission(&at, &member.user, &doing).await,
            };
        }
        let id = handle.expose_secret();
        let doing = format!("deleting repository access token {id} of {}", repo.name);
        let path = format!("/rest/access-tokens/latest/projects/{}/repos/{}/{id}", at.owner, at.slug);
        // 404: already deleted, or gone with its expiry.
        self.send(self.request(reqwest::Method::DELETE, &path), &[204, 404], &doing).await.map(drop)
    }

    async fn revoke(&self, _repo: &RepoSpec, _grant: &GrantRecord) -> Result<(), ProviderError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(url: &str) -> RepoSpec {
        RepoSpec {
            name: "x".into(),
            url: Some(crate::domain::repo::CloneUrl::parse(url).unwrap()),
            provider: Some("bitbucket".into()),
            upstream: None,
        }
    }

    fn at(owner: &str, slug: &str) -> Location {
        Location { owner: owner.into(), slug: slug.into() }
    }

    #[test]
    fn repositories_are_found_in_each_editions_clone_urls() {
        let dc = |u: &str| location(Edition::DataCenter, &spec(u));
        assert_eq!(dc("https://bitbucket.example.com/scm/ACME/api.git"), Ok(at("ACME", "api")));
        assert_eq!(dc("https://bitbucket.example.com/scm/acme/api.git"), Ok(at("ACME", "api")), "keys in any case");
        assert_eq!(dc("https://git.example.com/bitbucket/scm/ACME/api.git"), Ok(at("ACME", "api")), "under a context path");
        assert_eq!(dc("https://bitbucket.example.com/scm/~jdoe/notes.git"), Ok(at("~jdoe", "notes")), "a personal repository");
        for bad in ["https://bitbucket.example.com/ACME/api.git", "https://bitbucket.example.com/scm/api.git"] {
            assert!(dc(bad).unwrap_err().contains("https://HOST/scm/PROJECT/REPO.git"), "{bad}");
        }
        let cloud = |u: &str| location(Edition::Cloud, &spec(u));
        assert_eq!(cloud("https://bitbucket.org/acme/api.git"), Ok(at("acme", "api")));
        assert!(cloud("https://bitbucket.org/acme/sub/api.git").unwrap_err().contains("WORKSPACE/REPO"));
        let none = RepoSpec { url: None, ..spec("https://bitbucket.org/a/b.git") };
        assert!(location(Edition::Cloud, &none).unwrap_err().contains("`url` is missing"));
    }

    #[test]
    fn a_token_outlives_its_grant_by_under_a_day_within_the_instances_limit() {
        let now = DateTime::parse_from_rfc3339("2026-12-06T10:00:00Z").unwrap().with_timezone(&Utc);
        let hours = |h: i64| now + chrono::Duration::hours(h);
        assert_eq!(token_days(hours(2), now, None), (1, hours(2)));
        assert_eq!(token_days(hours(24), now, None), (1, hours(24)), "exactly a day");
        assert_eq!(token_days(hours(25), now, None), (2, hours(25)));
        // The instance allows less: the token ends first, and git's helper mints anew.
        assert_eq!(token_days(hours(80), now, Some(2)), (2, hours(48)));
        assert_eq!(token_days(now, now, None), (1, now), "never zero days");
    }

    #[test]
    fn permissions_rank_across_repository_and_project() {
        assert_eq!(repo_permission(Level::Write), "REPO_WRITE");
        assert_eq!(cloud_permission(Level::Admin), "admin");
        assert!(rank(Some("PROJECT_WRITE")) >= rank(Some(repo_permission(Level::Write))));
        assert!(rank(Some("PROJECT_READ")) < rank(Some(repo_permission(Level::Write))));
        assert!(rank(Some("read")) < rank(Some("write")) && rank(Some("write")) < rank(Some("admin")));
        assert_eq!(rank(None), 0);
        assert_eq!(rank(Some("LICENSED_USER")), 0);
    }

    #[test]
    fn each_documented_error_says_what_to_fix() {
        let dc = |status, exception: &str, message: &str| {
            let body = serde_json::json!({"errors": [{"context": null, "message": message, "exceptionName": exception}]});
            host_error(Edition::DataCenter, "bb", "minting", status, None, &body).to_string()
        };
        assert!(dc(401, "com.atlassian.bitbucket.AuthorisationException", "You are not permitted").contains("must be project admin"));
        assert!(dc(401, "com.atlassian.bitbucket.auth.AuthenticationException", "Authentication failed").contains("check token_file"));
        assert!(dc(403, "com.atlassian.bitbucket.FeatureDisabledException", "off").contains("HTTP access tokens are turned off"));
        assert!(
            dc(404, "com.atlassian.bitbucket.repository.NoSuchRepositoryException", "Repository ACME/x does not exist.")
                .contains("does the repository exist")
        );
        assert!(dc(404, "com.atlassian.bitbucket.user.NoSuchUserException", "no user").contains("check the provider's logins"));
        assert!(dc(400, "", "The repository already has the maximum number of tokens").contains("maximum number of tokens"));
        let cloud = |status| {
            let body = serde_json::json!({"type": "error", "error": {"message": "Nope", "detail": "why"}});
            host_error(Edition::Cloud, "bb", "minting", status, None, &body).to_string()
        };
        assert!(cloud(403).contains("repository:admin") && cloud(403).contains("\"Nope (why)\""));
        assert!(cloud(402).contains("no room for another user"));
        assert!(cloud(401).contains("check token_file"));
        let null = serde_json::Value::Null;
        assert!(matches!(host_error(Edition::Cloud, "bb", "x", 503, None, &null), ProviderError::Failed { .. }));
        let wait = Some(std::time::Duration::from_secs(9));
        assert_eq!(host_error(Edition::DataCenter, "bb", "x", 429, wait, &null).retry_after(), wait);
        assert!(matches!(host_error(Edition::DataCenter, "bb", "x", 429, None, &null), ProviderError::Failed { .. }));
    }

    #[test]
    fn a_section_says_which_bitbucket_and_how() {
        let env = |_: &str| Some("BBDC-secret".to_string());
        let build = |toml: &str| Bitbucket::from_section("bb", toml::from_str(toml).unwrap(), env);
        let err = |toml: &str| build(toml).unwrap_err();
        assert!(err("token_env = \"T\"").starts_with("api_url: missing"));
        let dc = "api_url = \"https://bitbucket.example.com\"\ntoken_env = \"T\"\n";
        let cloud = "api_url = \"https://api.bitbucket.org/2.0\"\ntoken_env = \"T\"\n";
        let token_mode = build(dc).unwrap();
        assert_eq!((token_mode.edition, token_mode.access()), (Edition::DataCenter, Access::HostToken));
        assert_eq!(
            format!("{token_mode:?}"),
            r#"Bitbucket { name: "bb", edition: DataCenter, api_url: "https://bitbucket.example.com", .. }"#
        );
        assert!(err(&format!("{dc}logins = {{ a = \"b\" }}")).contains("for mode = \"member\""));
        assert_eq!(build(&format!("{dc}mode = \"member\"\nlogins = {{ a = \"b\" }}")).unwrap().access(), Access::HostMembership);
        assert!(err(&format!("{dc}mode = \"magic\"")).starts_with("mode `magic`"));
        assert!(err(&format!("{dc}username = \"bot\"")).contains("username is for Bitbucket Cloud"));
        assert!(err(&format!("{dc}max_token_days = 0")).starts_with("max_token_days `0`"));
        assert!(build(&format!("{dc}max_token_days = 90")).is_ok());
        let member_cloud = build(cloud).unwrap();
        assert_eq!((member_cloud.edition, member_cloud.access()), (Edition::Cloud, Access::HostMembership), "Cloud is member mode");
        assert!(err(&format!("{cloud}mode = \"token\"")).contains("no API to create repository access tokens"));
        assert!(err(&format!("{cloud}max_token_days = 9")).contains("for Data Center's token mode"));
        assert!(matches!(build(&format!("{cloud}username = \"bot@example.com\"")).unwrap().auth, BrokerAuth::Basic { .. }));
        assert!(err("api_url = \"http://bitbucket.example.com\"\ntoken_env = \"T\"").contains("over https"));
        let Err(unknown) = from_section("bb", toml::from_str(&format!("{dc}colour = \"blue\"")).unwrap()) else { panic!("taken") };
        assert!(unknown.starts_with("unknown field `colour`"), "{unknown}");
        assert_eq!(token_mode.check_repo(&spec("https://bitbucket.example.com/scm/ACME/api.git")), Ok(()));
        assert!(token_mode.check_repo(&spec("https://bitbucket.example.com/ACME/api.git")).is_err());
    }
}
