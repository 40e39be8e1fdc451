//! The `github` provider: a GitHub App mints an installation token for the one
//! repository and the level's permissions, and revokes every token it minted
//! for a grant when the grant ends. Git talks to GitHub directly (username
//! `x-access-token`); the broker is not on the data path.
//!
//! ```toml
//! [server]
//! sealing_key_file = "/etc/jit/sealing.key"     # what revoking a token needs is stored sealed
//!
//! [[provider]]
//! name = "github"
//! kind = "github"
//! api_url = "https://api.github.com"            # GHES: "https://github.example.com/api/v3"
//! app_id = "123456"                             # the App ID (or the app's client ID)
//! private_key_file = "/etc/jit/github-app.pem"  # read once at start-up, never stored or logged
//! installations = { acme = 4242 }               # optional: else found per repo (GET /repos/{owner}/{repo}/installation)
//!
//! [[repo]]
//! name = "acme/api"
//! url = "https://github.com/acme/api.git"
//! provider = "github"
//! ```
//!
//! Levels map to installation-token permissions: `read` → `contents: read`;
//! `write` → `contents: write`; `admin` → `contents: write` and `workflows:
//! write` (a push that changes `.github/workflows` needs it; it is what lets
//! a push run code with the repository's secrets, so it is kept for admin).
//! Installation tokens live an hour at most and cannot be shortened: the
//! credential's expiry is the earlier of the token's and the grant's, and a
//! longer grant is served by minting again when the helper asks.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::host_api::{quoted, rate_limit_wait, transport};
use super::{Access, Kept, Membership, Minted, Provider, ProviderError, host_api};
use crate::domain::Level;
use crate::domain::records::GrantRecord;
use crate::domain::repo::RepoSpec;
use crate::domain::token::{AuthScheme, ExposeSecret, SecretString};

pub const KIND: &str = "github";

/// The user name git sends with an installation token.
pub const TOKEN_USERNAME: &str = "x-access-token";

const DEFAULT_API_URL: &str = "https://api.github.com";
/// The REST API version jit is written against, sent with every call: the
/// newest that GitHub's description (as the contract test pins it) declares,
/// none of whose breaking changes touch a call jit makes (a test checks both).
pub const API_VERSION: &str = "2026-03-10";
/// GitHub's media type first, as it recommends; plain JSON after it, which
/// GitHub's answers also are (and what a server built from its OpenAPI
/// description, such as the contract tests' Prism, offers).
const ACCEPT: &str = "application/vnd.github+json, application/json;q=0.9";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Section {
    api_url: Option<String>,
    app_id: Option<toml::Value>,
    private_key_file: Option<PathBuf>,
    #[serde(default)]
    installations: BTreeMap<String, u64>,
    mode: Option<String>,
    /// Team mode: jit user → GitHub login.
    #[serde(default)]
    logins: BTreeMap<String, String>,
    /// Team mode: the teams are `{prefix}{repo}-{level}` (default `jit-`).
    team_prefix: Option<String>,
    timeout: Option<String>,
    /// PEM roots trusted beside the system's (a host behind a company CA).
    ca_file: Option<PathBuf>,
}

/// How grants become access at GitHub.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    /// An installation token per credential.
    Token,
    /// Membership of a per-repo, per-level team, for people who use their own GitHub credentials.
    Team { logins: BTreeMap<String, String>, prefix: String },
}

pub struct GitHub {
    name: String,
    mode: Mode,
    api_url: String,
    app_id: String,
    key: jsonwebtoken::EncodingKey,
    /// Installation ids by owner (configured), and by `owner/repo` (discovered).
    installations: Mutex<HashMap<String, u64>>,
    client: reqwest::Client,
}

impl std::fmt::Debug for GitHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHub")
            .field("name", &self.name)
            .field("api_url", &self.api_url)
            .field("app_id", &self.app_id)
            .finish_non_exhaustive()
    }
}

pub fn from_section(name: &str, table: toml::Table) -> Result<std::sync::Arc<dyn Provider>, String> {
    let section: Section = table.try_into().map_err(|e: toml::de::Error| e.message().to_string())?;
    Ok(std::sync::Arc::new(GitHub::from_section(name, section)?))
}

impl GitHub {
    fn from_section(name: &str, section: Section) -> Result<GitHub, String> {
        let mode = match section.mode.as_deref() {
            None | Some("token") if section.logins.is_empty() && section.team_prefix.is_none() => Mode::Token,
            None | Some("token") => return Err("logins and team_prefix are for mode = \"team\"".into()),
            Some("team") => {
                let prefix = section.team_prefix.unwrap_or_else(|| "jit-".into());
                if prefix.chars().any(|c| !(c.is_ascii_alphanumeric() || c == '-' || c == '_')) {
                    return Err(format!("team_prefix `{prefix}`: letters, digits, `-` and `_` only (it starts a team slug)"));
                }
                if let Some((user, login)) = section.logins.iter().find(|(_, l)| !valid_login(l)) {
                    return Err(format!("logins: `{login}` (for {user}) is not a GitHub login"));
                }
                Mode::Team { logins: section.logins, prefix }
            }
            Some(other) => return Err(format!("mode `{other}`: expected \"token\" (installation tokens) or \"team\" (team membership)")),
        };
        let api_url = host_api::api_url(section.api_url.as_deref().unwrap_or(DEFAULT_API_URL))?;
        let app_id = match section.app_id {
            Some(toml::Value::Integer(n)) if n > 0 => n.to_string(),
            Some(toml::Value::String(s)) if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '.') => s,
            Some(_) => return Err("app_id: the App ID (a number) or the app's client ID".into()),
            None => return Err("app_id: missing (the GitHub App's ID, on its settings page)".into()),
        };
        let key_file = section.private_key_file.ok_or("private_key_file: missing (the GitHub App's private key, PEM)")?;
        let pem = std::fs::read(&key_file).map_err(|e| format!("private_key_file {}: {e}", key_file.display()))?;
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(&pem)
            .map_err(|_| format!("private_key_file {}: not an RSA private key in PEM form", key_file.display()))?;
        let client = host_api::client(section.timeout.as_deref(), section.ca_file.as_deref())?;
        Ok(GitHub {
            name: name.to_string(),
            mode,
            api_url,
            app_id,
            key,
            installations: Mutex::new(section.installations.into_iter().collect()),
            client,
        })
    }

    /// The app's own credential: a JWT signed with its key, valid nine
    /// minutes, issued a minute in the past for clock drift. GitHub checks it
    /// against its own clock, so it is the wall clock's, not the broker's.
    fn app_jwt(&self) -> Result<String, ProviderError> {
        #[derive(Serialize)]
        struct Claims<'a> {
            iat: i64,
            exp: i64,
            iss: &'a str,
        }
        let now = Utc::now().timestamp();
        let claims = Claims { iat: now - 60, exp: now + 9 * 60, iss: &self.app_id };
        jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256), &claims, &self.key)
            .map_err(|e| self.failed(format!("cannot sign the app's JWT: {e}")))
    }

    fn failed(&self, message: String) -> ProviderError {
        ProviderError::Failed { provider: self.name.clone(), message }
    }

    fn request(&self, method: reqwest::Method, path: &str, bearer: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.api_url))
            .bearer_auth(bearer)
            .header("Accept", ACCEPT)
            .header("X-GitHub-Api-Version", API_VERSION)
    }

    /// `location` (absolute, or relative to the API) when it is on GitHub's
    /// API host and under its API path, where the app's credential may go.
    fn same_api_host(&self, location: &str) -> Option<reqwest::Url> {
        let api = reqwest::Url::parse(&self.api_url).ok()?;
        let url = api.join(location).ok()?;
        let same =
            url.scheme() == api.scheme() && url.host_str() == api.host_str() && url.port_or_known_default() == api.port_or_known_default();
        (same && url.path().starts_with(api.path().trim_end_matches('/'))).then_some(url)
    }

    /// Sends and reads the answer; anything but `expect` becomes the host's error for `doing`.
    async fn send(&self, request: reqwest::RequestBuilder, expect: u16, doing: &str) -> Result<serde_json::Value, ProviderError> {
        self.send_expecting(request, &[expect], doing).await.map(|(_, body)| body)
    }

    /// Sends; a status in `expect` gives it with the answer's JSON (null when
    /// empty), any other becomes GitHub's error for `doing`.
    async fn send_expecting(
        &self,
        request: reqwest::RequestBuilder,
        expect: &[u16],
        doing: &str,
    ) -> Result<(u16, serde_json::Value), ProviderError> {
        let mut request = request.build().map_err(|e| self.failed(format!("cannot build the request while {doing}: {e}")))?;
        let mut hops = 0;
        let response = loop {
            let again = request.try_clone();
            let response = self
                .client
                .execute(request)
                .await
                .map_err(|e| self.failed(format!("GitHub did not answer while {doing}: {}", transport(e))))?;
            // A renamed or transferred repository answers 301 (307 for a
            // temporary move) with its new API URL: followed, on GitHub's own
            // API host only, so the credential never goes anywhere else.
            let moved_to = matches!(response.status().as_u16(), 301 | 302 | 307 | 308)
                .then(|| response.headers().get(reqwest::header::LOCATION)?.to_str().ok().map(str::to_string))
                .flatten()
                .and_then(|location| self.same_api_host(&location));
            match (moved_to, again) {
                (Some(url), Some(mut next)) if hops < MAX_REDIRECTS => {
                    hops += 1;
                    *next.url_mut() = url;
                    request = next;
                }
                _ => break response,
            }
        };
        if hops > 0 {
            tracing::warn!(provider = %self.name, to = %response.url(), "GitHub moved the repository while {doing}: it was renamed or transferred; update its url in the config");
        }
        let status = response.status().as_u16();
        let retry_after = rate_limit_wait(response.headers(), "x-ratelimit-remaining", "x-ratelimit-reset");
        let body: serde_json::Value = response.json().await.unwrap_or(serde_json::Value::Null);
        if expect.contains(&status) {
            return Ok((status, body));
        }
        Err(host_error(&self.name, doing, status, retry_after, body["message"].as_str()))
    }

    /// An installation token for managing the organization's team
    /// memberships (`members: write`), for the length of one change.
    async fn org_token(&self, owner: &str, repo: &str) -> Result<SecretString, ProviderError> {
        let installation = self.installation(owner, repo).await?;
        let jwt = self.app_jwt()?;
        let doing = format!("minting a token to manage {owner}'s team memberships");
        // Narrowed to the one repository the change is about: its metadata is
        // what the team check reads (a private repository is a 404 to a token
        // that does not cover it), and nothing else of the installation.
        let body = serde_json::json!({ "repositories": [repo], "permissions": { "members": "write", "metadata": "read" } });
        let path = format!("/app/installations/{installation}/access_tokens");
        let answer = self.send(self.request(reqwest::Method::POST, &path, &jwt).json(&body), 201, &doing).await?;
        let token = answer["token"]
            .as_str()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| self.failed(format!("GitHub's answer while {doing} has no token")))?;
        Ok(SecretString::from(token.to_string()))
    }

    /// The organization, team and login a team-mode grant is given.
    fn team_of(&self, repo: &RepoSpec, grant: &GrantRecord) -> Result<(String, String, String), ProviderError> {
        let Mode::Team { logins, prefix } = &self.mode else {
            return Err(ProviderError::Config { provider: self.name.clone(), message: "memberships are for mode = \"team\"".into() });
        };
        let (owner, name) = owner_and_repo(repo).map_err(|message| ProviderError::Config { provider: self.name.clone(), message })?;
        let login = logins.get(&grant.user).ok_or_else(|| ProviderError::Refused {
            provider: self.name.clone(),
            message: format!("no GitHub login for jit user `{}`: add it to provider `{}`'s logins", grant.user, self.name),
        })?;
        Ok((owner.to_string(), team_slug(prefix, name, grant.level), login.clone()))
    }

    /// Cancels `login`'s pending invitation to organization `org`, if any
    /// (`GET /orgs/{org}/invitations`, then `DELETE …/invitations/{id}`).
    async fn cancel_org_invitation(&self, org: &str, login: &str, token: &SecretString) -> Result<(), ProviderError> {
        let doing = format!("listing the pending invitations to {org}");
        let pending = self
            .send(self.request(reqwest::Method::GET, &format!("/orgs/{org}/invitations?per_page=100"), token.expose_secret()), 200, &doing)
            .await?;
        let ids = pending.as_array().into_iter().flatten().filter(|i| i["login"].as_str().is_some_and(|l| l.eq_ignore_ascii_case(login)));
        for id in ids.filter_map(|i| i["id"].as_u64()) {
            let doing = format!("cancelling {login}'s invitation to {org}");
            let request = self.request(reqwest::Method::DELETE, &format!("/orgs/{org}/invitations/{id}"), token.expose_secret());
            self.send_expecting(request, &[204, 404], &doing).await?;
        }
        Ok(())
    }

    /// Why a team membership was not given: the person is not (yet) in the organization.
    fn not_a_member(&self, org: &str, login: &str, invited: bool) -> ProviderError {
        let message = if invited {
            format!(
                "{login} has a pending invitation to the {org} organization and no access until they accept it (https://github.com/orgs/{org}/invitation); ask again once they have"
            )
        } else {
            format!(
                "{login} is not a member of the {org} organization, and jit never invites anyone into it: an owner of {org} invites them once, then ask again"
            )
        };
        ProviderError::Refused { provider: self.name.clone(), message }
    }

    /// Runs `change` with an organization token, then revokes the token.
    async fn with_org_token<T>(
        &self,
        owner: &str,
        repo: &str,
        change: impl AsyncFnOnce(&SecretString) -> Result<T, ProviderError>,
    ) -> Result<T, ProviderError> {
        let token = self.org_token(owner, repo).await?;
        let result = change(&token).await;
        if let Err(e) = self.revoke_token(&token).await {
            tracing::warn!(provider = %self.name, error = %e, "could not revoke the organization token; it expires within the hour");
        }
        result
    }

    /// The installation that covers `owner/repo`: configured for the owner, or asked of GitHub once.
    async fn installation(&self, owner: &str, repo: &str) -> Result<u64, ProviderError> {
        let full = format!("{owner}/{repo}");
        if let Some(id) = {
            let known = self.installations.lock().expect("not poisoned");
            known.get(owner).or_else(|| known.get(&full)).copied()
        } {
            return Ok(id);
        }
        let jwt = self.app_jwt()?;
        let doing = format!("finding the app's installation on {full}");
        let body = self.send(self.request(reqwest::Method::GET, &format!("/repos/{owner}/{repo}/installation"), &jwt), 200, &doing).await?;
        let id = body["id"].as_u64().ok_or_else(|| self.failed(format!("GitHub's answer while {doing} has no installation id")))?;
        self.installations.lock().expect("not poisoned").insert(full, id);
        Ok(id)
    }

    /// Revokes an installation token; one GitHub no longer accepts (401:
    /// expired or already revoked) is already done.
    async fn revoke_token(&self, token: &SecretString) -> Result<(), ProviderError> {
        let request = self.request(reqwest::Method::DELETE, "/installation/token", token.expose_secret());
        self.send_expecting(request, &[204, 401], "revoking an installation token").await.map(drop)
    }
}

/// A GitHub login: letters, digits and single hyphens, at most 39 characters.
fn valid_login(login: &str) -> bool {
    !login.is_empty()
        && login.len() <= 39
        && login.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !login.starts_with('-')
        && !login.ends_with('-')
        && !login.contains("--")
}

/// The team a level's grants on `repo` are given: `{prefix}{repo}-{level}`.
pub fn team_slug(prefix: &str, repo: &str, level: Level) -> String {
    format!("{prefix}{}-{level}", repo.to_ascii_lowercase().replace('.', "-"))
}

/// The repository permission a team for `level` has, no more and no less
/// (GitHub's names, as `PUT /orgs/{org}/teams/{team}/repos/{owner}/{repo}` takes them).
fn team_permission(level: Level) -> &'static str {
    match level {
        Level::Read => "pull",
        Level::Write => "push",
        Level::Admin => "admin",
    }
}

/// The `gh api` commands that create team mode's team for `level` on
/// `owner/name` and give it exactly that level's permission.
pub fn team_setup(prefix: &str, owner: &str, name: &str, level: Level) -> Vec<String> {
    let team = team_slug(prefix, name, level);
    vec![
        format!("gh api -X POST orgs/{owner}/teams -f name={team} -f privacy=closed"),
        format!("gh api -X PUT orgs/{owner}/teams/{team}/repos/{owner}/{name} -f permission={}", team_permission(level)),
    ]
}

/// What is wrong with a team's permissions on a repository for `level`
/// (`permissions` as GitHub shows them: `pull`, `triage`, `push`,
/// `maintain`, `admin`), if anything: too little, or more than the level.
fn team_permission_problem(permissions: &serde_json::Value, level: Level) -> Option<String> {
    let has = |p: &str| permissions[p].as_bool().unwrap_or(false);
    let needs = team_permission(level);
    let beyond: &[&str] = match level {
        Level::Read => &["push", "maintain", "admin"],
        Level::Write => &["maintain", "admin"],
        Level::Admin => &[],
    };
    if !has(needs) {
        return Some(format!("lacks {needs}"));
    }
    beyond.iter().find(|p| has(p)).map(|p| format!("also has {p}"))
}

/// What removing a team membership jit added needs.
#[derive(Serialize, Deserialize)]
struct TeamHandle {
    org: String,
    team: String,
    login: String,
}

/// The owner and repository a GitHub clone URL names.
fn owner_and_repo(repo: &RepoSpec) -> Result<(&str, &str), String> {
    let url = repo.url.as_ref().ok_or("`url` is missing: the repository's clone URL at GitHub")?;
    match url.path().split('/').collect::<Vec<_>>().as_slice() {
        [owner, name] => Ok((owner, name)),
        _ => Err(format!("url {url}: a GitHub repository is https://HOST/OWNER/REPO.git")),
    }
}

/// The installation-token permissions a level needs (see the module doc).
pub fn permissions(level: Level) -> BTreeMap<&'static str, &'static str> {
    match level {
        Level::Read => BTreeMap::from([("contents", "read")]),
        Level::Write => BTreeMap::from([("contents", "write")]),
        Level::Admin => BTreeMap::from([("contents", "write"), ("workflows", "write")]),
    }
}

/// Whether GitHub gave more than was asked: a permission not asked for, or
/// `write` where `read` was.
fn exceeds(granted: &serde_json::Map<String, serde_json::Value>, asked: &BTreeMap<&str, &str>) -> Option<String> {
    granted.iter().find_map(|(name, value)| {
        let value = value.as_str().unwrap_or("?");
        let within = name == "metadata" && value == "read"
            || asked.get(name.as_str()).is_some_and(|a| *a == value || *a == "write" && value == "read");
        (!within).then(|| format!("{name}: {value}"))
    })
}

/// How many of GitHub's API redirects one call follows.
const MAX_REDIRECTS: usize = 3;

/// How long to wait after a secondary rate limit that names no time
/// (GitHub: "wait for at least one minute before retrying").
const SECONDARY_LIMIT_WAIT: Duration = Duration::from_secs(60);

/// GitHub's answer, in words that say what to fix. GitHub's own `message` is
/// quoted (bounded, printable): it never carries a credential.
fn host_error(provider: &str, doing: &str, status: u16, retry_after: Option<Duration>, message: Option<&str>) -> ProviderError {
    let said = quoted(message);
    let provider = provider.to_string();
    // A secondary rate limit can come as a bare 403 (or 429) with neither
    // `retry-after` nor `x-ratelimit-remaining: 0`, known only by its message;
    // GitHub then asks for at least a minute's wait.
    let says_rate_limit = message.is_some_and(|m| m.to_ascii_lowercase().contains("rate limit"));
    if matches!(status, 403 | 429) && (retry_after.is_some() || says_rate_limit || status == 429) {
        return ProviderError::RateLimited { provider, retry_after: retry_after.unwrap_or(SECONDARY_LIMIT_WAIT) };
    }
    let refused = |message: String| ProviderError::Refused { provider: provider.clone(), message };
    match status {
        401 => refused(format!(
            "GitHub refused the app's credentials while {doing} (HTTP 401{said}); check app_id and private_key_file, and the broker's clock"
        )),
        403 => refused(format!("GitHub forbade {doing} (HTTP 403{said}); check the app's permissions")),
        404 => refused(format!(
            "GitHub found nothing while {doing} (HTTP 404{said}); is the app installed on the repository, and does the repository exist?"
        )),
        422 => refused(format!(
            "GitHub refused {doing} (HTTP 422{said}); the app may lack the permission the level needs (Contents: read and write, and Workflows for admin), or the repository is not in its installation"
        )),
        _ => ProviderError::Failed { provider, message: format!("GitHub answered HTTP {status} while {doing}{said}") },
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    token: String,
    expires_at: DateTime<Utc>,
    #[serde(default)]
    permissions: serde_json::Map<String, serde_json::Value>,
    repository_selection: Option<String>,
    /// The repositories the token covers, when GitHub lists them.
    #[serde(default)]
    repositories: Option<Vec<NamedRepository>>,
}

#[derive(Deserialize)]
struct NamedRepository {
    name: String,
}

#[async_trait]
impl Provider for GitHub {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        KIND
    }

    fn access(&self) -> Access {
        if matches!(self.mode, Mode::Team { .. }) { Access::HostMembership } else { Access::HostToken }
    }

    fn host_setup(&self, repo: &RepoSpec, levels: &std::collections::BTreeSet<Level>) -> Vec<String> {
        let (Mode::Team { prefix, .. }, Ok((owner, name))) = (&self.mode, owner_and_repo(repo)) else { return Vec::new() };
        levels.iter().flat_map(|level| team_setup(prefix, owner, name, *level)).collect()
    }

    fn check_repo(&self, repo: &RepoSpec) -> Result<(), String> {
        owner_and_repo(repo).map(drop)
    }

    async fn mint(&self, repo: &RepoSpec, grant: &GrantRecord, _now: DateTime<Utc>) -> Result<Minted, ProviderError> {
        let (owner, name) = owner_and_repo(repo).map_err(|message| ProviderError::Config { provider: self.name.clone(), message })?;
        let installation = self.installation(owner, name).await?;
        let asked = permissions(grant.level);
        let body = serde_json::json!({ "repositories": [name], "permissions": asked });
        let jwt = self.app_jwt()?;
        let doing = format!("minting a {} token for {owner}/{name}", grant.level);
        let path = format!("/app/installations/{installation}/access_tokens");
        let answer = self.send(self.request(reqwest::Method::POST, &path, &jwt).json(&body), 201, &doing).await?;
        let answer: TokenAnswer =
            serde_json::from_value(answer).map_err(|e| self.failed(format!("GitHub's answer while {doing} is not a token: {e}")))?;
        let token = SecretString::from(answer.token);
        // A token is any non-empty text git can carry: its length and format are GitHub's to change.
        let usable = !token.expose_secret().is_empty() && !token.expose_secret().chars().any(char::is_control);
        // `repository_selection` may echo the installation's setting ("all")
        // for a token asked for one repository; the token's own list then
        // says what it covers. "all" without that list is refused.
        let only_asked = answer.repositories.as_ref().is_some_and(|r| r.len() == 1 && r[0].name.eq_ignore_ascii_case(name));
        let too_wide = match answer.repository_selection.as_deref() {
            Some("all") if !only_asked => Some("every repository of the installation".to_string()),
            _ => exceeds(&answer.permissions, &asked),
        };
        if !usable || too_wide.is_some() {
            let undone = match self.revoke_token(&token).await {
                Ok(()) => "the token was revoked".to_string(),
                Err(e) => {
                    tracing::error!(provider = %self.name, error = %e, "a token GitHub should not have minted could not be revoked");
                    "it could not be revoked and lapses within the hour".to_string()
                }
            };
            let why = too_wide.map_or("a token git cannot send".to_string(), |w| format!("more than was asked ({w})"));
            return Err(self.failed(format!("GitHub answered {doing} with {why}; {undone}")));
        }
        Ok(Minted {
            username: TOKEN_USERNAME.to_string(),
            password: token.clone(),
            expires_at: answer.expires_at.min(grant.expires_at),
            scheme: AuthScheme::Basic,
            kept: Kept::HostHandle(token),
        })
    }

    fn membership_key(&self, repo: &RepoSpec, grant: &GrantRecord) -> Result<String, ProviderError> {
        let (owner, team, login) = self.team_of(repo, grant)?;
        Ok(format!("{}:{owner}/{team}:{login}", self.name))
    }

    async fn add_membership(&self, repo: &RepoSpec, grant: &GrantRecord, _jit_holds: bool) -> Result<Membership, ProviderError> {
        let (owner, team, login) = self.team_of(repo, grant)?;
        let (owner, login) = (owner.as_str(), login.as_str());
        let (_, name) = owner_and_repo(repo).map_err(|message| ProviderError::Config { provider: self.name.clone(), message })?;
        let path = format!("/orgs/{owner}/teams/{team}/memberships/{login}");
        let added = self
            .with_org_token(owner, name, async |token| {
                // The team must give exactly the level on the repository: a
                // read team that can push would hand out more than approved.
                let doing = format!("reading team {owner}/{team}'s access to {owner}/{name}");
                let request = self
                    .request(reqwest::Method::GET, &format!("/orgs/{owner}/teams/{team}/repos/{owner}/{name}"), token.expose_secret())
                    .headers(reqwest::header::HeaderMap::from_iter([(
                        reqwest::header::ACCEPT,
                        reqwest::header::HeaderValue::from_static("application/vnd.github.v3.repository+json"),
                    )]));
                let (status, body) = self.send_expecting(request, &[200, 404], &doing).await?;
                let problem = match status {
                    404 => Some("has no access".to_string()),
                    _ => team_permission_problem(&body["permissions"], grant.level),
                };
                if let Some(problem) = problem {
                    return Err(ProviderError::Refused {
                        provider: self.name.clone(),
                        message: format!(
                            "team {owner}/{team} {problem} on {owner}/{name}: give the team {} access, and only that",
                            grant.level
                        ),
                    });
                }
                let doing = format!("reading {login}'s membership of team {owner}/{team}");
                let (status, body) =
                    self.send_expecting(self.request(reqwest::Method::GET, &path, token.expose_secret()), &[200, 404], &doing).await?;
                if status == 200 && body["state"] == "active" {
                    return Ok(false);
                }
                // Adding someone outside the organization to a team invites
                // them into it ("pending"): no access until they accept, and
                // an organization member once they do. jit never invites.
                let doing = format!("reading {login}'s membership of organization {owner}");
                let org_path = format!("/orgs/{owner}/memberships/{login}");
                let (status, body) =
                    self.send_expecting(self.request(reqwest::Method::GET, &org_path, token.expose_secret()), &[200, 404], &doing).await?;
                if status == 404 || body["state"] != "active" {
                    return Err(self.not_a_member(owner, login, status == 200));
                }
                let doing =
                    format!("adding {login} to team {owner}/{team} (does the team exist, with {} access to {owner}/{name}?)", grant.level);
                let request =
                    self.request(reqwest::Method::PUT, &path, token.expose_secret()).json(&serde_json::json!({ "role": "member" }));
                let answer = self.send(request, 200, &doing).await?;
                if answer["state"] != "active" {
                    // Left the organization since the check: GitHub has just
                    // invited them. Withdraw it (the team's and the organization's).
                    let doing = format!("withdrawing the pending invitation of {login} to team {owner}/{team}");
                    self.send_expecting(self.request(reqwest::Method::DELETE, &path, token.expose_secret()), &[204, 404], &doing).await?;
                    self.cancel_org_invitation(owner, login, token).await?;
                    return Err(self.not_a_member(owner, login, false));
                }
                Ok(true)
            })
            .await?;
        let handle = serde_json::to_string(&TeamHandle { org: owner.to_string(), team: team.clone(), login: login.to_string() })
            .expect("plain strings serialize");
        Ok(Membership {
            handle: SecretString::from(handle),
            added,
            detail: match added {
                true => format!("{login} added to team {owner}/{team}"),
                false => format!("{login} already in team {owner}/{team}"),
            },
        })
    }

    async fn revoke_minted(&self, repo: &RepoSpec, _grant: &GrantRecord, handle: &SecretString) -> Result<(), ProviderError> {
        let Ok(team) = serde_json::from_str::<TeamHandle>(handle.expose_secret()) else {
            return self.revoke_token(handle).await;
        };
        let (owner, name) = owner_and_repo(repo).map_err(|message| ProviderError::Config { provider: self.name.clone(), message })?;
        let path = format!("/orgs/{}/teams/{}/memberships/{}", team.org, team.team, team.login);
        self.with_org_token(owner, name, async |token| {
            let doing = format!("removing {} from team {}/{}", team.login, team.org, team.team);
            // 404: not a member any more.
            self.send_expecting(self.request(reqwest::Method::DELETE, &path, token.expose_secret()), &[204, 404], &doing).await.map(drop)
        })
        .await
    }

    async fn revoke(&self, _repo: &RepoSpec, _grant: &GrantRecord) -> Result<(), ProviderError> {
        // Token mode holds nothing at GitHub but the tokens, each revoked above.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused_message(e: ProviderError) -> String {
        match e {
            ProviderError::Refused { message, .. } => message,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn levels_ask_for_the_least_that_serves_them() {
        assert_eq!(permissions(Level::Read), BTreeMap::from([("contents", "read")]));
        assert_eq!(permissions(Level::Write), BTreeMap::from([("contents", "write")]));
        assert_eq!(permissions(Level::Admin), BTreeMap::from([("contents", "write"), ("workflows", "write")]));
    }

    #[test]
    fn a_token_wider_than_asked_is_named() {
        let granted = |json: serde_json::Value| json.as_object().unwrap().clone();
        let read = permissions(Level::Read);
        let write = permissions(Level::Write);
        assert_eq!(exceeds(&granted(serde_json::json!({"contents": "read", "metadata": "read"})), &read), None);
        assert_eq!(exceeds(&granted(serde_json::json!({"contents": "write"})), &read).as_deref(), Some("contents: write"));
        assert_eq!(exceeds(&granted(serde_json::json!({"issues": "read"})), &write).as_deref(), Some("issues: read"));
        assert_eq!(exceeds(&granted(serde_json::json!({"contents": "read"})), &write), None, "less than asked is not more");
        assert_eq!(exceeds(&granted(serde_json::json!({"metadata": "write"})), &write).as_deref(), Some("metadata: write"));
        assert_eq!(
            exceeds(&granted(serde_json::json!({"contents": "admin"})), &write).as_deref(),
            Some("contents: admin"),
            "not a level GitHub has"
        );
    }

    #[test]
    fn each_documented_error_says_what_to_fix() {
        let e = |status, message| host_error("gh", "minting", status, None, message);
        assert!(refused_message(e(401, Some("A JSON web token could not be decoded"))).contains("check app_id and private_key_file"));
        assert!(refused_message(e(404, None)).contains("is the app installed"));
        assert!(refused_message(e(422, Some("The permissions requested are not granted to this installation."))).contains("Contents"));
        assert!(refused_message(e(403, None)).contains("HTTP 403"));
        let limited = host_error("gh", "minting", 403, Some(Duration::from_secs(60)), None);
        assert_eq!(limited.retry_after(), Some(Duration::from_secs(60)));
        assert_eq!(host_error("gh", "minting", 429, Some(Duration::from_secs(5)), None).retry_after(), Some(Duration::from_secs(5)));
        match e(503, Some("down\nfor\tmaintenance")) {
            ProviderError::Failed { message, .. } => assert_eq!(message, "GitHub answered HTTP 503 while minting: \"downformaintenance\""),
            other => panic!("{other:?}"),
        }
        let long = "x".repeat(500);
        assert!(refused_message(e(404, Some(&long))).len() < 400, "GitHub's message is bounded");
    }

    fn test_app(extra: &str) -> Result<GitHub, String> {
        let key = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/github-app-test.pem");
        GitHub::from_section("gh", toml::from_str(&format!("private_key_file = \"{key}\"\n{extra}")).unwrap())
    }

    #[test]
    fn the_app_is_named_by_its_id_or_client_id() {
        assert_eq!(test_app("app_id = 1").unwrap().app_id, "1");
        assert_eq!(test_app("app_id = \"Iv1.a1b2\"").unwrap().app_id, "Iv1.a1b2");
        for bad in ["app_id = 0", "app_id = \"\"", "app_id = \"a b\"", "app_id = \"a/b\"", "app_id = true"] {
            assert!(test_app(bad).unwrap_err().starts_with("app_id:"), "{bad}");
        }
    }

    #[test]
    fn the_app_jwt_is_signed_issued_a_minute_back_and_valid_nine_minutes_more() {
        #[derive(Deserialize)]
        struct Claims {
            iat: i64,
            exp: i64,
            iss: String,
        }
        let jwt = test_app("app_id = 4242").unwrap().app_jwt().unwrap();
        let public = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/github-app-test.pub.pem")).unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.set_issuer(&["4242"]);
        let claims =
            jsonwebtoken::decode::<Claims>(&jwt, &jsonwebtoken::DecodingKey::from_rsa_pem(&public).unwrap(), &validation).unwrap().claims;
        let now = Utc::now().timestamp();
        assert!((now - 62..=now - 58).contains(&claims.iat), "iat {} now {now}", claims.iat);
        assert_eq!(claims.exp - claims.iat, 600, "GitHub takes at most ten minutes");
        assert_eq!(claims.iss, "4242");
    }

    #[test]
    fn logins_and_team_slugs() {
        assert!(valid_login("alice-gh") && valid_login("a") && valid_login(&"a".repeat(39)));
        for bad in ["", "-a", "a-", "a--b", "a_b", "a.b", &"a".repeat(40)] {
            assert!(!valid_login(bad), "{bad}");
        }
        assert_eq!(team_slug("jit-", "API.Service", Level::Write), "jit-api-service-write");
    }

    #[test]
    fn a_team_must_give_exactly_its_level() {
        let perms = |list: &[&str]| {
            let all = ["pull", "triage", "push", "maintain", "admin"];
            serde_json::Value::Object(all.iter().map(|p| (p.to_string(), serde_json::json!(list.contains(p)))).collect())
        };
        assert_eq!(team_permission_problem(&perms(&["pull", "triage"]), Level::Read), None);
        assert_eq!(
            team_setup("jit-", "acme", "api.v2", Level::Write),
            [
                "gh api -X POST orgs/acme/teams -f name=jit-api-v2-write -f privacy=closed",
                "gh api -X PUT orgs/acme/teams/jit-api-v2-write/repos/acme/api.v2 -f permission=push",
            ]
        );
        assert_eq!(team_permission_problem(&perms(&["pull", "push"]), Level::Read).as_deref(), Some("also has push"));
        assert_eq!(team_permission_problem(&perms(&["pull", "push"]), Level::Write), None);
        assert_eq!(team_permission_problem(&perms(&["pull", "push", "maintain"]), Level::Write).as_deref(), Some("also has maintain"));
        assert_eq!(team_permission_problem(&perms(&["pull"]), Level::Write).as_deref(), Some("lacks push"));
        assert_eq!(team_permission_problem(&perms(&["pull", "push", "maintain", "admin"]), Level::Admin), None);
        assert_eq!(team_permission_problem(&perms(&["pull", "push", "maintain"]), Level::Admin).as_deref(), Some("lacks admin"));
        assert_eq!(team_permission_problem(&serde_json::Value::Null, Level::Read).as_deref(), Some("lacks pull"));
    }

    #[test]
    fn repos_are_named_by_owner_and_name() {
        let spec = |url: &str| RepoSpec {
            name: "x".into(),
            url: Some(crate::domain::repo::CloneUrl::parse(url).unwrap()),
            provider: Some("github".into()),
            upstream: None,
        };
        assert_eq!(owner_and_repo(&spec("https://github.com/acme/api.git")).unwrap(), ("acme", "api"));
        assert!(owner_and_repo(&spec("https://github.com/acme/team/api.git")).unwrap_err().contains("OWNER/REPO"));
        assert!(owner_and_repo(&RepoSpec { url: None, ..spec("https://github.com/a/b") }).unwrap_err().contains("`url` is missing"));
    }

    #[test]
    fn a_section_is_checked_field_by_field() {
        let dir = tempfile::tempdir().unwrap();
        let err = |toml: &str| GitHub::from_section("gh", toml::from_str(toml).unwrap()).unwrap_err();
        assert!(err("private_key_file = \"/x\"").starts_with("app_id: missing"));
        assert!(err("app_id = -1").starts_with("app_id:"));
        assert!(err("app_id = 1").starts_with("private_key_file: missing"));
        assert!(err("app_id = 1\nprivate_key_file = \"/nonexistent.pem\"").starts_with("private_key_file /nonexistent.pem"));
        let not_a_key = dir.path().join("k.pem");
        std::fs::write(&not_a_key, "hello").unwrap();
        assert!(err(&format!("app_id = 1\nprivate_key_file = \"{}\"", not_a_key.display())).contains("not an RSA private key"));
        assert!(err("app_id = 1\napi_url = \"http://github.example.com\"").contains("over https"));
        assert!(err("app_id = 1\nmode = \"magic\"").starts_with("mode `magic`"));
        assert!(err("app_id = 1\nlogins = { a = \"b\" }").contains("for mode = \"team\""));
        let key = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/github-app-test.pem");
        let team = |extra: &str| format!("app_id = 1\nprivate_key_file = \"{key}\"\nmode = \"team\"\n{extra}");
        assert!(err(&team("team_prefix = \"a b\"")).starts_with("team_prefix `a b`"));
        assert!(err(&team("logins = { alice = \"-x\" }")).contains("`-x` (for alice) is not a GitHub login"));
        let gh = GitHub::from_section("gh", toml::from_str(&team("logins = { alice = \"alice-gh\" }")).unwrap()).unwrap();
        assert!(gh.access().grants_membership());
        assert_eq!(gh.kind(), "github");
        let repo = |url: &str| RepoSpec {
            name: "x".into(),
            url: Some(crate::domain::repo::CloneUrl::parse(url).unwrap()),
            provider: Some("gh".into()),
            upstream: None,
        };
        assert_eq!(gh.check_repo(&repo("https://github.com/acme/api.git")), Ok(()));
        assert!(gh.check_repo(&repo("https://github.com/acme/team/api.git")).unwrap_err().contains("OWNER/REPO"));
        assert_eq!(format!("{gh:?}"), r#"GitHub { name: "gh", api_url: "https://api.github.com", app_id: "1", .. }"#, "never the key");
    }
}
