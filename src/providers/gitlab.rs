//! The `gitlab` provider: a project access token per credential, with the
//! level's scopes and role, revoked by id when the grant ends. Git talks to
//! GitLab directly; the broker is not on the data path.
//!
//! ```toml
//! [[provider]]
//! name = "gitlab"
//! kind = "gitlab"
//! api_url = "https://gitlab.com/api/v4"      # self-managed: "https://gitlab.example.com/api/v4"
//! token_file = "/etc/jit/gitlab.token"       # or token_env = "GITLAB_TOKEN": the broker's own token
//!
//! [[repo]]
//! name = "acme/api"
//! url = "https://gitlab.com/acme/api.git"    # the project's path, any depth of groups
//! provider = "gitlab"
//! ```
//!
//! The broker's token needs the `api` scope and the Maintainer role (Owner
//! to mint Owner-level tokens, which jit never asks for) on the projects it
//! guards. Levels map to a token's scopes and role: `read` →
//! `read_repository`, Reporter (20); `write` → `read_repository` and
//! `write_repository`, Developer (30); `admin` → the same scopes, Maintainer
//! (40: pushes to protected branches as the project allows Maintainers).
//! GitLab counts a token's life in days, so it is created to expire the day
//! after the grant ends and revoked by jit at the grant's end; the credential
//! git gets ends with the grant.
//!
//! Member mode (`mode = "member"`, `logins = { alice = "alice.gl" }`) is for
//! people who use their own GitLab credentials or SSH keys: a grant makes
//! them a member of the project with the level's role (expiring at GitLab the
//! day after the grant, as a backstop), and its end removes them. Someone who
//! already has that access (their own membership, or a group's) is left as
//! they were; someone whose own membership is lower is raised, and put back
//! to it at the end.

use std::path::PathBuf;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use serde::Deserialize;

use super::host_api::{quoted, rate_limit_wait, transport};
use super::{Access, Kept, Membership, Minted, Provider, ProviderError, host_api};
use crate::domain::Level;
use crate::domain::records::GrantRecord;
use crate::domain::repo::RepoSpec;
use crate::domain::token::{AuthScheme, ExposeSecret, SecretString};

pub const KIND: &str = "gitlab";

const DEFAULT_API_URL: &str = "https://gitlab.com/api/v4";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Section {
    api_url: Option<String>,
    token_file: Option<PathBuf>,
    token_env: Option<String>,
    mode: Option<String>,
    /// Member mode: jit user → GitLab username.
    #[serde(default)]
    logins: std::collections::BTreeMap<String, String>,
    timeout: Option<String>,
    /// PEM roots trusted beside the system's (a host behind a company CA).
    ca_file: Option<PathBuf>,
    /// The instance's longest token lifetime, in days (GitLab's default 365;
    /// lower where an administrator set it).
    max_token_days: Option<u32>,
}

pub struct GitLab {
    name: String,
    max_token_days: u32,
    /// Member mode's usernames (jit user → GitLab username); `None` in token mode.
    logins: Option<std::collections::BTreeMap<String, String>>,
    api_url: String,
    token: SecretString,
    client: reqwest::Client,
}

impl std::fmt::Debug for GitLab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitLab").field("name", &self.name).field("api_url", &self.api_url).finish_non_exhaustive()
    }
}

pub fn from_section(name: &str, table: toml::Table) -> Result<std::sync::Arc<dyn Provider>, String> {
    let section: Section = table.try_into().map_err(|e: toml::de::Error| e.message().to_string())?;
    Ok(std::sync::Arc::new(GitLab::from_section(name, section, |var| std::env::var(var).ok())?))
}

/// A project access token's scopes and role for a level (see the module doc).
pub fn scopes_and_role(level: Level) -> (&'static [&'static str], u32) {
    match level {
        Level::Read => (&["read_repository"], 20),
        Level::Write => (&["read_repository", "write_repository"], 30),
        Level::Admin => (&["read_repository", "write_repository"], 40),
    }
}

/// The project a clone URL names, as GitLab's API takes it: its full path, URL-encoded.
fn project_id(repo: &RepoSpec) -> Result<String, String> {
    let url = repo.url.as_ref().ok_or("`url` is missing: the project's clone URL at GitLab")?;
    if !url.path().contains('/') {
        return Err(format!("url {url}: a GitLab project is https://HOST/GROUP/PROJECT.git"));
    }
    Ok(url::form_urlencoded::byte_serialize(url.path().as_bytes()).collect())
}

/// GitLab's default longest token lifetime (days).
const DEFAULT_MAX_TOKEN_DAYS: u32 = 365;

/// The expiry date to give GitLab for access that should last until `end`,
/// and when that access really ends. GitLab counts in dates and ends a token
/// (or a membership) at 00:00 UTC on its date: the earliest date at or after
/// `end`, so it outlives the grant by less than a day (the backstop, should
/// jit's own revocation fail) — but no later than `max_days` after `today`,
/// the instance's limit, and then the access ends at that date's midnight,
/// before the grant (git's helper mints anew while the grant lives).
pub fn expiry_date(end: DateTime<Utc>, today: NaiveDate, max_days: u32) -> (NaiveDate, DateTime<Utc>) {
    let midnight = |d: NaiveDate| d.and_time(NaiveTime::MIN).and_utc();
    let mut date = end.date_naive();
    if midnight(date) < end {
        date = date.succ_opt().expect("a date after the grant's");
    }
    let date = date.min(today + chrono::Days::new(u64::from(max_days)));
    (date, end.min(midnight(date)))
}

/// GitLab's answer, in words that say what to fix.
fn host_error(provider: &str, doing: &str, status: u16, retry_after: Option<std::time::Duration>, message: Option<&str>) -> ProviderError {
    let said = quoted(message);
    let provider = provider.to_string();
    if let (429 | 403, Some(retry_after)) = (status, retry_after) {
        return ProviderError::RateLimited { provider, retry_after };
    }
    let refused = |message: String| ProviderError::Refused { provider: provider.clone(), message };
    match status {
        401 => refused(format!(
            "GitLab refused the broker's token while {doing} (HTTP 401{said}); check token_file / token_env, and that the token has not expired"
        )),
        403 => refused(format!(
            "GitLab forbade {doing} (HTTP 403{said}); the broker's token must be a personal access token (not a project or group access token) with the api scope, of a user who is a Maintainer of the project; on GitLab.com, project access tokens also need Premium or Ultimate"
        )),
        404 => refused(format!(
            "GitLab found nothing while {doing} (HTTP 404{said}); does the project exist, and can the broker's token see it?"
        )),
        400 | 422 => refused(format!("GitLab refused {doing} (HTTP {status}{said})")),
        _ => ProviderError::Failed { provider, message: format!("GitLab answered HTTP {status} while {doing}{said}") },
    }
}

/// What ending a membership jit added or raised needs.
#[derive(Deserialize)]
struct MemberHandle {
    user_id: u64,
    /// The access level to put back (their own membership was raised); `None`: remove it.
    restore: Option<u64>,
}

#[derive(Deserialize)]
struct CreatedToken {
    id: u64,
    token: String,
}

impl GitLab {
    fn from_section(name: &str, section: Section, env: impl Fn(&str) -> Option<String>) -> Result<GitLab, String> {
        let logins = match section.mode.as_deref() {
            None | Some("token") if section.logins.is_empty() => None,
            None | Some("token") => return Err("logins are for mode = \"member\"".into()),
            Some("member") => Some(section.logins),
            Some(other) => {
                return Err(format!("mode `{other}`: expected \"token\" (project access tokens) or \"member\" (project membership)"));
            }
        };
        let api_url = host_api::api_url(section.api_url.as_deref().unwrap_or(DEFAULT_API_URL))?;
        let token = host_api::secret_from("token", section.token_file.as_ref(), section.token_env.as_deref(), env)?;
        let client = host_api::client(section.timeout.as_deref(), section.ca_file.as_deref())?;
        let max_token_days = section.max_token_days.unwrap_or(DEFAULT_MAX_TOKEN_DAYS);
        if !(1..=400).contains(&max_token_days) {
            return Err(format!("max_token_days `{max_token_days}`: between 1 and 400 (GitLab's default is 365)"));
        }
        Ok(GitLab { name: name.to_string(), logins, api_url, token, client, max_token_days })
    }

    /// The GitLab username of a grant's person (member mode).
    fn username_of(&self, grant: &GrantRecord) -> Result<&str, ProviderError> {
        self.logins.as_ref().and_then(|l| l.get(&grant.user)).map(String::as_str).ok_or_else(|| ProviderError::Refused {
            provider: self.name.clone(),
            message: format!("no GitLab username for jit user `{}`: add it to provider `{}`'s logins", grant.user, self.name),
        })
    }

    /// A GitLab user's id by username.
    async fn user_id(&self, username: &str) -> Result<u64, ProviderError> {
        let doing = format!("looking up GitLab user `{username}`");
        let query = url::form_urlencoded::Serializer::new(String::new()).append_pair("username", username).finish();
        let (_, users) = self.send(self.request(reqwest::Method::GET, &format!("/users?{query}")), &[200], &doing).await?;
        users[0]["id"].as_u64().ok_or_else(|| ProviderError::Refused {
            provider: self.name.clone(),
            message: format!("GitLab has no user `{username}` (provider `{}`'s logins)", self.name),
        })
    }

    fn failed(&self, message: String) -> ProviderError {
        ProviderError::Failed { provider: self.name.clone(), message }
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, format!("{}{path}", self.api_url)).header("PRIVATE-TOKEN", self.token.expose_secret())
    }

    /// Sends; a status in `expect` gives the answer's JSON (null when empty),
    /// any other becomes GitLab's error for `doing`.
    async fn send(&self, request: reqwest::RequestBuilder, expect: &[u16], doing: &str) -> Result<(u16, serde_json::Value), ProviderError> {
        let response = request.send().await.map_err(|e| self.failed(format!("GitLab did not answer while {doing}: {}", transport(e))))?;
        let status = response.status().as_u16();
        let retry_after = rate_limit_wait(response.headers(), "ratelimit-remaining", "ratelimit-reset");
        let body: serde_json::Value = response.json().await.unwrap_or(serde_json::Value::Null);
        if expect.contains(&status) {
            return Ok((status, body));
        }
        let message = body["message"].as_str().or_else(|| body["error"].as_str());
        Err(host_error(&self.name, doing, status, retry_after, message))
    }
}

#[async_trait]
impl Provider for GitLab {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        KIND
    }

    fn access(&self) -> Access {
        if self.logins.is_some() { Access::HostMembership } else { Access::HostToken }
    }

    async fn check_credential(&self) -> Vec<String> {
        let mut problems = Vec::new();
        // Only a personal access token may create project access tokens
        // (GitLab: "You cannot authenticate with a project access token");
        // project and group access tokens act as bot users.
        match self.send(self.request(reqwest::Method::GET, "/user"), &[200], "checking whose the broker's token is").await {
            Ok((_, user)) if user["bot"].as_bool() == Some(true) && self.logins.is_none() => problems.push(
                "the broker's token is a project or group access token (its user is a bot): creating project access tokens needs a personal access token with the api scope, of a user who is a Maintainer of the guarded projects".to_string(),
            ),
            Ok(_) => {}
            Err(e) => problems.push(format!("cannot check the broker's token: {e}")),
        }
        if let Ok((_, token)) =
            self.send(self.request(reqwest::Method::GET, "/personal_access_tokens/self"), &[200], "reading the broker's token").await
        {
            let scopes: Vec<&str> = token["scopes"].as_array().into_iter().flatten().filter_map(|s| s.as_str()).collect();
            if !scopes.contains(&"api") {
                problems.push(format!("the broker's token lacks the api scope (it has: {})", scopes.join(", ")));
            }
        }
        // A project access token acts as an internal user: it reads every
        // project whose visibility is Internal, whatever project it was made for.
        if self.logins.is_none() {
            let internal = self.request(reqwest::Method::GET, "/projects?visibility=internal&simple=true&per_page=1");
            if let Ok((_, found)) = self.send(internal, &[200], "looking for Internal projects").await
                && found.as_array().is_some_and(|a| !a.is_empty())
            {
                problems.push("this GitLab has Internal projects, and a project access token can read every one of them: a read grant on one project reaches them all (make them Private, or use mode = \"member\")".to_string());
            }
        }
        problems
    }

    fn check_repo(&self, repo: &RepoSpec) -> Result<(), String> {
        project_id(repo).map(drop)
    }

    async fn mint(&self, repo: &RepoSpec, grant: &GrantRecord, now: DateTime<Utc>) -> Result<Minted, ProviderError> {
        if self.logins.is_some() {
            return Err(ProviderError::Config { provider: self.name.clone(), message: "member mode mints no credentials".into() });
        }
        let project = project_id(repo).map_err(|message| ProviderError::Config { provider: self.name.clone(), message })?;
        let (scopes, role) = scopes_and_role(grant.level);
        // GitLab counts in dates (see `expiry_date`); jit revokes it when the grant ends.
        let (expires_on, ends) = expiry_date(grant.expires_at, now.date_naive(), self.max_token_days);
        let body = serde_json::json!({
            "name": format!("jit grant {} ({}, {})", grant.id, grant.user, grant.level),
            "scopes": scopes,
            "access_level": role,
            "expires_at": expires_on.format("%Y-%m-%d").to_string(),
        });
        let doing = format!("creating a {} project access token for {}", grant.level, repo.name);
        let (_, answer) = self
            .send(self.request(reqwest::Method::POST, &format!("/projects/{project}/access_tokens")).json(&body), &[201], &doing)
            .await?;
        let created: CreatedToken =
            serde_json::from_value(answer).map_err(|e| self.failed(format!("GitLab's answer while {doing} is not a token: {e}")))?;
        let token = SecretString::from(created.token);
        if token.expose_secret().is_empty() || token.expose_secret().chars().any(char::is_control) {
            let _ = self.revoke_minted(repo, grant, &SecretString::from(created.id.to_string())).await;
            return Err(self.failed(format!("GitLab answered {doing} with a token git cannot send; it was revoked")));
        }
        Ok(Minted {
            // GitLab takes any user name with a project access token; this one names the grant in its logs.
            username: format!("jit-grant-{}", grant.id),
            password: token,
            expires_at: ends,
            scheme: AuthScheme::Basic,
            kept: Kept::HostHandle(SecretString::from(created.id.to_string())),
        })
    }

    fn membership_key(&self, repo: &RepoSpec, grant: &GrantRecord) -> Result<String, ProviderError> {
        Ok(format!("{}:{}:{}", self.name, repo.name, self.username_of(grant)?))
    }

    async fn add_membership(&self, repo: &RepoSpec, grant: &GrantRecord, jit_holds: bool) -> Result<Membership, ProviderError> {
        let project = project_id(repo).map_err(|message| ProviderError::Config { provider: self.name.clone(), message })?;
        let username = self.username_of(grant)?;
        let user_id = self.user_id(username).await?;
        let (_, role) = scopes_and_role(grant.level);
        let members = format!("/projects/{project}/members");
        // What they can do in the project now (inherited from groups too), and their own membership of it.
        let doing = format!("reading {username}'s access to {}", repo.name);
        let (status, effective) =
            self.send(self.request(reqwest::Method::GET, &format!("{members}/all/{user_id}")), &[200, 404], &doing).await?;
        // An "awaiting" membership (a seat or an approval to come) is listed but gives no access.
        let active = effective["state"].as_str().is_none_or(|s| s == "active");
        let had = if status == 200 && active { effective["access_level"].as_u64().unwrap_or(0) } else { 0 };
        let (status, direct) = self.send(self.request(reqwest::Method::GET, &format!("{members}/{user_id}")), &[200, 404], &doing).await?;
        let direct = if status == 200 { direct["access_level"].as_u64() } else { None };
        let handle = |restore: Option<u64>| SecretString::from(serde_json::json!({ "user_id": user_id, "restore": restore }).to_string());
        if had >= u64::from(role) {
            let detail = format!("{username} already has access level {had} on {}", repo.name);
            return Ok(Membership { handle: handle(None), added: false, detail });
        }
        let (added, restore) = match direct {
            // A membership jit gave for another grant: raised, and removed at the end
            // (the other grant is given its own again). Their own, lower: raised, and put back.
            Some(level) => {
                let doing = format!("raising {username}'s membership of {} to {role}", repo.name);
                let body = serde_json::json!({ "access_level": role });
                self.send(self.request(reqwest::Method::PUT, &format!("{members}/{user_id}")).json(&body), &[200], &doing).await?;
                (format!("{username} raised from access level {level} to {role} on {}", repo.name), (!jit_holds).then_some(level))
            }
            None => {
                // GitLab also ends it by itself the day after the grant, should the broker be down then.
                let (expires_on, _) = expiry_date(grant.expires_at, Utc::now().date_naive(), self.max_token_days);
                let expires_on = expires_on.format("%Y-%m-%d").to_string();
                let body = serde_json::json!({ "user_id": user_id, "access_level": role, "expires_at": expires_on });
                let doing = format!("adding {username} to {} with access level {role}", repo.name);
                self.send(self.request(reqwest::Method::POST, &members).json(&body), &[201], &doing).await?;
                (format!("{username} added to {} with access level {role}", repo.name), None)
            }
        };
        // With administrator approval for role promotions on, GitLab queues
        // the change and answers as if it were done: only the membership as
        // it now stands says whether the person has the access.
        let doing = format!("reading {username}'s membership of {} back", repo.name);
        let (status, now) = self.send(self.request(reqwest::Method::GET, &format!("{members}/{user_id}")), &[200, 404], &doing).await?;
        let now_level = if status == 200 { now["access_level"].as_u64().unwrap_or(0) } else { 0 };
        if now_level < u64::from(role) {
            return Err(ProviderError::Refused {
                provider: self.name.clone(),
                message: format!(
                    "GitLab did not give {username} access level {role} on {} (it has {now_level}): the change is queued for an administrator's approval (role promotion management), and a queued change is not a grant; approve it at GitLab, or turn the approval off for jit's changes, then ask again",
                    repo.name
                ),
            });
        }
        Ok(Membership { handle: handle(restore), added: true, detail: added })
    }

    async fn revoke_minted(&self, repo: &RepoSpec, _grant: &GrantRecord, handle: &SecretString) -> Result<(), ProviderError> {
        let project = project_id(repo).map_err(|message| ProviderError::Config { provider: self.name.clone(), message })?;
        if let Ok(member) = serde_json::from_str::<MemberHandle>(handle.expose_secret()) {
            let path = format!("/projects/{project}/members/{}", member.user_id);
            let doing = format!("ending user {}'s membership of {}", member.user_id, repo.name);
            return match member.restore {
                Some(level) => {
                    let body = serde_json::json!({ "access_level": level });
                    self.send(self.request(reqwest::Method::PUT, &path).json(&body), &[200], &doing).await.map(drop)
                }
                // 404: not a member any more.
                None => self.send(self.request(reqwest::Method::DELETE, &path), &[204, 404], &doing).await.map(drop),
            };
        }
        let id = handle.expose_secret();
        let doing = format!("revoking project access token {id} of {}", repo.name);
        // 404: already revoked, or gone with its expiry.
        self.send(self.request(reqwest::Method::DELETE, &format!("/projects/{project}/access_tokens/{id}")), &[204, 404], &doing)
            .await
            .map(drop)
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
            provider: Some("gitlab".into()),
            upstream: None,
        }
    }

    #[test]
    fn a_token_ends_at_the_first_midnight_after_the_grant_within_the_instances_limit() {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let today = day("2026-12-06");
        // Ends mid-day: the next date (its midnight is under a day later); the access lasts the grant.
        assert_eq!(expiry_date(at("2026-12-06T14:30:00Z"), today, 365), (day("2026-12-07"), at("2026-12-06T14:30:00Z")));
        // Ends at midnight exactly: that very date.
        assert_eq!(expiry_date(at("2026-12-08T00:00:00Z"), today, 365), (day("2026-12-08"), at("2026-12-08T00:00:00Z")));
        // Longer than the instance allows: its last date, and the access ends at that midnight.
        assert_eq!(expiry_date(at("2026-12-09T10:00:00Z"), today, 1), (day("2026-12-07"), at("2026-12-07T00:00:00Z")));
        assert_eq!(expiry_date(at("2026-12-09T10:00:00Z"), today, 3), (day("2026-12-09"), at("2026-12-09T00:00:00Z")));
    }

    #[test]
    fn levels_map_to_scopes_and_roles() {
        assert_eq!(scopes_and_role(Level::Read), (&["read_repository"][..], 20));
        assert_eq!(scopes_and_role(Level::Write), (&["read_repository", "write_repository"][..], 30));
        assert_eq!(scopes_and_role(Level::Admin), (&["read_repository", "write_repository"][..], 40));
    }

    #[test]
    fn projects_are_named_by_their_encoded_path() {
        assert_eq!(project_id(&spec("https://gitlab.com/acme/api.git")).unwrap(), "acme%2Fapi");
        assert_eq!(project_id(&spec("https://gitlab.com/acme/platform/api.git")).unwrap(), "acme%2Fplatform%2Fapi");
        assert!(project_id(&spec("https://gitlab.com/api.git")).unwrap_err().contains("GROUP/PROJECT"));
        assert!(project_id(&RepoSpec { url: None, ..spec("https://gitlab.com/a/b") }).unwrap_err().contains("`url` is missing"));
    }

    #[test]
    fn each_documented_error_says_what_to_fix() {
        let message = |e: ProviderError| e.to_string();
        let e = |status, said| host_error("gl", "minting", status, None, said);
        assert!(message(e(401, Some("401 Unauthorized"))).contains("check token_file / token_env"));
        assert!(message(e(403, Some("403 Forbidden"))).contains("must be a personal access token"));
        assert!(message(e(404, Some("404 Project Not Found"))).contains("does the project exist"));
        assert!(message(e(400, Some("expires_at is invalid"))).contains("HTTP 400: \"expires_at is invalid\""));
        assert!(matches!(e(500, None), ProviderError::Failed { .. }));
        let limited = host_error("gl", "minting", 429, Some(std::time::Duration::from_secs(7)), None);
        assert_eq!(limited.retry_after(), Some(std::time::Duration::from_secs(7)));
        assert!(matches!(e(429, None), ProviderError::Failed { .. }), "429 without a wait is a failure to retry");
    }

    #[test]
    fn a_section_needs_exactly_one_token_source() {
        let err = |toml: &str| GitLab::from_section("gl", toml::from_str(toml).unwrap(), |_| None).unwrap_err();
        assert!(err("").starts_with("token_file or token_env: missing"));
        assert!(err("token_env = \"T\"\ntoken_file = \"/x\"").contains("not both"));
        assert!(err("token_env = \"T\"\napi_url = \"http://gitlab.example.com/api/v4\"").contains("over https"));
        assert!(err("token_env = \"T\"\nmode = \"magic\"").starts_with("mode `magic`"));
        let env = |_: &str| Some("glpat-x".to_string());
        let with = |toml: &str| GitLab::from_section("gl", toml::from_str(toml).unwrap(), env);
        assert!(with("token_env = \"T\"\nlogins = { a = \"b\" }").unwrap_err().contains("for mode = \"member\""));
        assert!(with("token_env = \"T\"\nmode = \"member\"\nlogins = { a = \"b\" }").unwrap().access().grants_membership());
        for bad in ["0", "401"] {
            let refused = with(&format!("token_env = \"T\"\nmax_token_days = {bad}")).unwrap_err();
            assert!(refused.starts_with(&format!("max_token_days `{bad}`: between 1 and 400")), "{refused}");
        }
        assert!(with("token_env = \"T\"\nmax_token_days = 30").is_ok());
        let token_mode = with("token_env = \"T\"").unwrap();
        assert!(!token_mode.access().grants_membership());
        assert_eq!(token_mode.kind(), "gitlab");
        assert_eq!(token_mode.check_repo(&spec("https://gitlab.com/acme/platform/api.git")), Ok(()));
        assert!(token_mode.check_repo(&spec("https://gitlab.com/api.git")).unwrap_err().contains("GROUP/PROJECT"));
        let gl = GitLab::from_section("gl", toml::from_str("token_env = \"T\"").unwrap(), |_| Some("glpat-x".into())).unwrap();
        assert_eq!(gl.api_url, "https://gitlab.com/api/v4");
        assert_eq!(format!("{gl:?}"), r#"GitLab { name: "gl", api_url: "https://gitlab.com/api/v4", .. }"#, "never the token");
    }
}
