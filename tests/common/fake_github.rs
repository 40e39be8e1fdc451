//! [`FakeGitHub`]: GitHub's App API as documented, on loopback, for the
//! `github` provider to talk to (these machines cannot reach GitHub).
//!
//! It is stateful and strict. It verifies the app JWT's RS256 signature with
//! the app's public key and its claims (`iss` the app id, `iat`/`exp` at most
//! ten minutes apart and current), the headers GitHub documents, and the
//! token request's body (one repository of the installation, permissions the
//! app holds); it answers with GitHub's documented shapes and errors (401,
//! 404, 422, 403 with `Retry-After`, 5xx), mints tokens of changing lengths
//! and formats, and honours `DELETE /installation/token`. What it finds wrong
//! in a request that GitHub would not refuse (a missing header) is kept as a
//! violation, and dropping the fake fails the test if there is any.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

pub const APP_ID: u64 = 4242;
pub const INSTALLATION_ID: u64 = 77;
pub const OWNER: &str = "acme";
/// Repositories the app is installed on (`acme/web` exists but is not among them).
pub const INSTALLED_REPOS: &[&str] = &["api", "tools"];

/// A route whose next answers a test can script.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    Installation,
    Mint,
    Revoke,
    RemoveMember,
}

/// A token the fake minted.
#[derive(Debug, Clone)]
pub struct Issued {
    pub token: String,
    pub repositories: Vec<String>,
    pub permissions: BTreeMap<String, String>,
    pub expires_at: DateTime<Utc>,
    pub revoked: bool,
}

#[derive(Default)]
struct FakeState {
    /// The organization's members (logins) and those invited, not yet in.
    org_members: BTreeSet<String>,
    org_invited: BTreeSet<String>,
    /// Members who leave the organization right after it is asked whether they are in it.
    leave_when_checked: BTreeSet<String>,
    /// Repositories renamed or moved since the broker's config named them:
    /// old name → the `Location` GitHub answers 301 with.
    moved: BTreeMap<String, String>,
    /// The app's own permissions: a token may ask for these or less.
    app_permissions: BTreeMap<String, String>,
    /// The organization's teams (the operator made them), by slug: their members' logins.
    teams: BTreeMap<String, std::collections::BTreeSet<String>>,
    /// What each team may do on a repository: (team, repo) → its permission (`pull`, `push`, `admin`).
    team_repos: BTreeMap<(String, String), String>,
    tokens: Vec<Issued>,
    scripted: HashMap<Route, VecDeque<(u16, Option<u64>)>>,
    /// What the next mint answers instead of the usual: a token, and `repository_selection`.
    odd_mints: VecDeque<(Option<String>, Option<String>)>,
    /// Every request, as `METHOD /path`.
    seen: Vec<String>,
    violations: Vec<String>,
}

pub struct FakeGitHub {
    pub url: String,
    /// The app's private key and the broker's sealing key, for the broker's config.
    pub dir: tempfile::TempDir,
    state: Arc<Mutex<FakeState>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeGitHub {
    fn drop(&mut self) {
        self.server.abort();
        crate::common::fake_host::assert_no_violations("GitHub", &self.state.lock().unwrap().violations);
    }
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

impl FakeGitHub {
    /// An app installed on `acme/api` and `acme/tools` with Contents read and write (no Workflows).
    pub async fn start() -> FakeGitHub {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(fixture("github-app-test.pem"), dir.path().join("app.pem")).unwrap();
        let key_path = dir.path().join("sealing.key");
        std::fs::write(&key_path, format!("{}\n", hex::encode(rand::random::<[u8; 32]>()))).unwrap();
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        for line in Self::secrets_of_the_app() {
            crate::common::logs::secret(&line);
        }
        crate::common::logs::secret(std::fs::read_to_string(&key_path).unwrap().trim());
        let state = Arc::new(Mutex::new(FakeState {
            app_permissions: BTreeMap::from([
                ("contents".into(), "write".into()),
                ("metadata".into(), "read".into()),
                ("members".into(), "write".into()),
            ]),
            org_members: ["alice-gh", "bob-gh", "dave-gh"].iter().map(|l| l.to_string()).collect(),
            teams: ["jit-api-read", "jit-api-write", "jit-api-admin"].iter().map(|t| (t.to_string(), Default::default())).collect(),
            team_repos: [("jit-api-read", "pull"), ("jit-api-write", "push"), ("jit-api-admin", "admin")]
                .iter()
                .map(|(t, p)| ((t.to_string(), "api".to_string()), p.to_string()))
                .collect(),
            ..FakeState::default()
        }));
        let app = axum::Router::new()
            .route("/repos/{owner}/{repo}/installation", get(installation))
            .route("/repositories/{id}/installation", get(installation_by_id))
            .route("/app/installations/{id}/access_tokens", post(mint))
            .route("/installation/token", delete(revoke))
            .route("/orgs/{org}/teams/{team}/memberships/{login}", get(membership).put(add_member).delete(remove_member))
            .route("/orgs/{org}/teams/{team}/repos/{owner}/{repo}", get(team_repo))
            .route("/orgs/{org}/memberships/{login}", get(org_membership))
            .route("/orgs/{org}/invitations", get(org_invitations))
            .route("/orgs/{org}/invitations/{id}", delete(cancel_invitation))
            .fallback(unknown)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FakeGitHub { url, dir, state, server }
    }

    /// The app's private key, line by line (what no log, answer or file of the broker may hold).
    pub fn secrets_of_the_app() -> Vec<String> {
        std::fs::read_to_string(fixture("github-app-test.pem"))
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .map(str::to_string)
            .collect()
    }

    /// Every secret of this GitHub and of the broker's config for it: the
    /// app's key, the sealing key, every token minted.
    pub fn secrets(&self) -> Vec<String> {
        let mut all = Self::secrets_of_the_app();
        all.push(std::fs::read_to_string(self.dir.path().join("sealing.key")).unwrap().trim().to_string());
        all.extend(self.tokens().into_iter().map(|t| t.token));
        all
    }

    /// The `[server]` line and `[[provider]]` section a broker needs for this fake.
    pub fn provider_config(&self) -> String {
        format!(
            "sealing_key_file = \"{}\"\n\n[[provider]]\nname = \"github\"\nkind = \"github\"\napi_url = \"{}\"\napp_id = {APP_ID}\nprivate_key_file = \"{}\"\n",
            self.dir.path().join("sealing.key").display(),
            self.url,
            self.dir.path().join("app.pem").display()
        )
    }

    /// A policy: `acme/api`, `acme/tools` (installed) and `acme/web` (not)
    /// on this GitHub; reads auto-approved, writes and admin approved by carol.
    pub fn policy(&self) -> String {
        let repos: String = ["api", "tools", "web"]
            .iter()
            .map(|r| format!("[[repo]]\nname = \"acme/{r}\"\nurl = \"https://github.com/acme/{r}.git\"\nprovider = \"github\"\n\n"))
            .collect();
        format!("[server]\npending_ttl = \"1h\"\n{}\n{repos}{RULES}", self.provider_config())
    }

    /// Answers the next `times` calls to `route` with `status` (and `Retry-After`).
    /// A 403 is GitHub's secondary rate limit (its documented message; with
    /// `retry_after`, the headers too, else bare, as GitHub may send it);
    /// [`FakeGitHub::forbid_next`] is the permission kind.
    pub fn fail_next(&self, route: Route, times: usize, status: u16, retry_after: Option<u64>) {
        let mut state = self.state.lock().unwrap();
        let queue = state.scripted.entry(route).or_default();
        for _ in 0..times {
            queue.push_back((status, retry_after));
        }
    }

    /// `login` leaves the organization (or was never in it).
    pub fn leave_org(&self, login: &str) {
        self.state.lock().unwrap().org_members.remove(login);
    }

    /// `login` leaves the organization just after jit checks it is in it.
    pub fn leave_org_when_checked(&self, login: &str) {
        self.state.lock().unwrap().leave_when_checked.insert(login.to_string());
    }

    /// Who GitHub has invited into the organization (and not withdrawn).
    pub fn org_invitations(&self) -> Vec<String> {
        self.state.lock().unwrap().org_invited.iter().cloned().collect()
    }

    /// `acme/{old}` was renamed to `acme/{new}` (an installed one): its old
    /// API URLs answer 301 to `/repositories/{id}/…`, as GitHub's do.
    pub fn rename(&self, old: &str, new: &str) {
        let id = repository_id(new).expect("an installed repository");
        self.state.lock().unwrap().moved.insert(old.to_string(), format!("{}/repositories/{id}/installation", self.url));
    }

    /// `acme/{old}` answers 301 to `location`, wherever that is.
    pub fn redirect(&self, old: &str, location: &str) {
        self.state.lock().unwrap().moved.insert(old.to_string(), location.to_string());
    }

    /// The next call to `route` is refused for a permission the app lacks
    /// (GitHub's 403 "Resource not accessible by integration").
    pub fn forbid_next(&self, route: Route) {
        self.state.lock().unwrap().scripted.entry(route).or_default().push_back((FORBIDDEN, None));
    }

    /// Makes the next mint answer with this token and/or `repository_selection`
    /// (GitHub misbehaving: a token git cannot send, one for every repository).
    pub fn odd_mint_next(&self, token: Option<&str>, selection: Option<&str>) {
        self.state.lock().unwrap().odd_mints.push_back((token.map(str::to_string), selection.map(str::to_string)));
    }

    pub fn tokens(&self) -> Vec<Issued> {
        self.state.lock().unwrap().tokens.clone()
    }

    /// Tokens GitHub would still honour.
    pub fn live_tokens(&self) -> Vec<Issued> {
        self.tokens().into_iter().filter(|t| !t.revoked).collect()
    }

    /// A policy like [`FakeGitHub::policy`] whose provider gives team
    /// memberships: alice, dave and bob have GitHub logins (`alice-gh`, …).
    pub fn team_policy(&self) -> String {
        self.policy().replace(
            "kind = \"github\"\n",
            "kind = \"github\"\nmode = \"team\"\nlogins = { alice = \"alice-gh\", dave = \"dave-gh\", bob = \"bob-gh\" }\n",
        )
    }

    /// Forgets what the fake found wrong so far (a test that sent a wrong request on purpose).
    pub fn forget_violations(&self) {
        self.state.lock().unwrap().violations.clear();
    }

    /// A team the operator made, with `permission` (`pull`, `push`, `admin`) on `acme/{repo}`.
    pub fn add_team(&self, team: &str, repo: &str, permission: &str) {
        let mut state = self.state.lock().unwrap();
        state.teams.entry(team.to_string()).or_default();
        state.team_repos.insert((team.to_string(), repo.to_string()), permission.to_string());
    }

    /// Someone in a team before any grant (the operator put them there).
    pub fn add_team_member(&self, team: &str, login: &str) {
        self.state.lock().unwrap().teams.get_mut(team).expect("a known team").insert(login.to_string());
    }

    pub fn team_members(&self, team: &str) -> Vec<String> {
        self.state.lock().unwrap().teams[team].iter().cloned().collect()
    }

    pub fn seen(&self) -> Vec<String> {
        self.state.lock().unwrap().seen.clone()
    }
}

pub const RULES: &str = r#"[[rule]]
name = "acme-read"
repos = ["acme/*", "acme/*/*"]
levels = ["read"]
requesters = ["*"]
auto_approve = true
max_duration = "8h"

[[rule]]
name = "acme-write"
repos = ["acme/*", "acme/*/*"]
levels = ["write", "admin"]
requesters = ["*"]
approvers = ["carol"]
max_duration = "8h"
"#;

/// GitHub's error body.
fn error(status: u16, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap();
    (status, Json(json!({"message": message, "documentation_url": "https://docs.github.com/rest", "status": status.as_str()})))
        .into_response()
}

/// A scripted status meaning GitHub's permission 403 (not a rate limit).
const FORBIDDEN: u16 = 1403;

/// A scripted answer for `route`, if one is queued: GitHub's documented shape for its status.
fn scripted(state: &mut FakeState, route: Route) -> Option<Response> {
    let (status, retry_after) = state.scripted.get_mut(&route)?.pop_front()?;
    let mut response = match status {
        401 => error(401, "A JSON web token could not be decoded"),
        403 => error(403, "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."),
        FORBIDDEN => error(403, "Resource not accessible by integration"),
        404 => error(404, "Not Found"),
        422 => error(422, "The permissions requested are not granted to this installation."),
        _ => error(status, "Service Unavailable"),
    };
    if let Some(secs) = retry_after {
        response.headers_mut().insert("retry-after", secs.to_string().parse().unwrap());
        response.headers_mut().insert("x-ratelimit-remaining", "0".parse().unwrap());
    }
    Some(response)
}

/// The REST API versions GitHub serves (its description, as the contract test
/// pins it, declares them; that test checks this list against it): the fake,
/// like GitHub, answers any of them, and refuses others.
pub const SUPPORTED_API_VERSIONS: [&str; 2] = ["2022-11-28", "2026-03-10"];

/// The headers GitHub documents for every REST call; a missing one is a violation.
fn check_headers(state: &mut FakeState, what: &str, headers: &HeaderMap) {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    if !header("accept").starts_with("application/vnd.github+json") {
        state.violations.push(format!("{what}: Accept is `{}`", header("accept")));
    }
    if !SUPPORTED_API_VERSIONS.contains(&header("x-github-api-version").as_str()) {
        state.violations.push(format!("{what}: X-GitHub-Api-Version is `{}`", header("x-github-api-version")));
    }
    if header("user-agent").is_empty() {
        state.violations.push(format!("{what}: no User-Agent (GitHub refuses requests without one)"));
    }
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    headers.get("authorization")?.to_str().ok()?.strip_prefix("Bearer ").map(str::to_string)
}

/// Verifies the app JWT as GitHub does: RS256 under the app's public key,
/// `iss` the app id, issued in the past, expiring in the future, at most ten
/// minutes apart.
fn check_jwt(headers: &HeaderMap) -> Result<(), String> {
    #[derive(serde::Deserialize)]
    struct Claims {
        iat: i64,
        exp: i64,
        iss: String,
    }
    let jwt = bearer(headers).ok_or("no Bearer token")?;
    let public = std::fs::read(fixture("github-app-test.pub.pem")).unwrap();
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(&public).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_required_spec_claims(&["exp", "iat", "iss"]);
    validation.set_issuer(&[APP_ID.to_string()]);
    validation.leeway = 0;
    let claims = jsonwebtoken::decode::<Claims>(&jwt, &key, &validation).map_err(|e| format!("bad JWT: {e}"))?.claims;
    let now = Utc::now().timestamp();
    if claims.iat > now || claims.exp - claims.iat > 600 || claims.iss != APP_ID.to_string() {
        return Err(format!("bad claims: iat {} exp {} (now {now})", claims.iat, claims.exp));
    }
    Ok(())
}

async fn installation(
    State(state): State<Arc<Mutex<FakeState>>>,
    Path((owner, repo)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let mut state = state.lock().unwrap();
    state.seen.push(format!("GET /repos/{owner}/{repo}/installation"));
    check_headers(&mut state, "GET installation", &headers);
    if let Some(answer) = scripted(&mut state, Route::Installation) {
        return answer;
    }
    if check_jwt(&headers).is_err() {
        return error(401, "A JSON web token could not be decoded");
    }
    if let Some(location) = state.moved.get(&repo).filter(|_| owner == OWNER) {
        let mut moved = error(301, "Moved Permanently");
        moved.headers_mut().insert("location", location.parse().unwrap());
        return moved;
    }
    if owner != OWNER || !INSTALLED_REPOS.contains(&repo.as_str()) {
        return error(404, "Not Found");
    }
    installation_answer()
}

/// GitHub's stable URL for a repository, by id: where a renamed one's old URLs lead.
fn repository_id(repo: &str) -> Option<u64> {
    INSTALLED_REPOS.iter().position(|r| *r == repo).map(|i| 1000 + i as u64)
}

fn installation_answer() -> Response {
    Json(json!({"id": INSTALLATION_ID, "app_id": APP_ID, "target_type": "Organization", "account": {"login": OWNER}})).into_response()
}

async fn installation_by_id(State(state): State<Arc<Mutex<FakeState>>>, Path(id): Path<u64>, headers: HeaderMap) -> Response {
    let mut state = state.lock().unwrap();
    state.seen.push(format!("GET /repositories/{id}/installation"));
    check_headers(&mut state, "GET installation by id", &headers);
    if check_jwt(&headers).is_err() {
        return error(401, "A JSON web token could not be decoded");
    }
    if !INSTALLED_REPOS.iter().any(|r| repository_id(r) == Some(id)) {
        return error(404, "Not Found");
    }
    installation_answer()
}

async fn mint(State(state): State<Arc<Mutex<FakeState>>>, Path(id): Path<u64>, headers: HeaderMap, body: String) -> Response {
    let mut state = state.lock().unwrap();
    state.seen.push(format!("POST /app/installations/{id}/access_tokens"));
    check_headers(&mut state, "POST access_tokens", &headers);
    if let Some(answer) = scripted(&mut state, Route::Mint) {
        return answer;
    }
    if check_jwt(&headers).is_err() {
        return error(401, "A JSON web token could not be decoded");
    }
    if id != INSTALLATION_ID {
        return error(404, "Not Found");
    }
    let Ok(body) = serde_json::from_str::<Value>(&body) else {
        return error(400, "Problems parsing JSON");
    };
    let repositories: Vec<String> =
        body["repositories"].as_array().map(|a| a.iter().filter_map(|r| r.as_str().map(str::to_string)).collect()).unwrap_or_default();
    if repositories.len() != 1 {
        state.violations.push(format!("a token must name exactly one repository (team changes too), got {}", body["repositories"]));
    }
    if repositories.iter().any(|r| !INSTALLED_REPOS.contains(&r.as_str())) {
        return error(422, "There is at least one repository that does not exist or is not accessible to the parent installation.");
    }
    let Some(asked) = body["permissions"].as_object() else {
        state.violations.push("a token request without permissions gets all of the app's".into());
        return error(422, "permissions: missing");
    };
    let mut permissions = BTreeMap::new();
    for (name, level) in asked {
        let level = level.as_str().unwrap_or("").to_string();
        let held = state.app_permissions.get(name).cloned().unwrap_or_default();
        if !matches!(level.as_str(), "read" | "write") || held.is_empty() || (held == "read" && level == "write") {
            return error(422, "The permissions requested are not granted to this installation.");
        }
        permissions.insert(name.clone(), level);
    }
    // Tokens change length and shape: the classic 40 characters, and the
    // longer stateless form with dots.
    let n = state.tokens.len();
    let (odd_token, selection) = state.odd_mints.pop_front().unwrap_or_default();
    let random = hex::encode(rand::random::<[u8; 32]>());
    let token = if let Some(odd) = odd_token {
        odd
    } else if n % 2 == 0 {
        format!("ghs_{}", &random[..36])
    } else {
        format!("ghs_{APP_ID}_{}.{}.{}", &random[..20], &random[20..44], &random[44..])
    };
    crate::common::logs::secret(&token);
    let expires_at = Utc::now() + chrono::Duration::hours(1);
    state.tokens.push(Issued {
        token: token.clone(),
        repositories: repositories.clone(),
        permissions: permissions.clone(),
        expires_at,
        revoked: false,
    });
    let mut shown = serde_json::Map::new();
    for (k, v) in &permissions {
        shown.insert(k.clone(), json!(v));
    }
    shown.insert("metadata".into(), json!("read"));
    // `all`: a token for every repository (no list); `all-echo`: the
    // installation's setting echoed, with the token's one repository listed.
    let (selection, listed) = match selection.as_deref() {
        Some("all") => ("all".to_string(), None),
        Some("all-echo") => ("all".to_string(), Some(&repositories)),
        other => (other.unwrap_or("selected").to_string(), Some(&repositories)),
    };
    let mut answer = json!({
        "token": token,
        "expires_at": expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "permissions": shown,
        "repository_selection": selection,
    });
    if let Some(listed) = listed {
        answer["repositories"] = listed.iter().map(|r| json!({"name": r, "full_name": format!("{OWNER}/{r}")})).collect();
    }
    (StatusCode::CREATED, Json(answer)).into_response()
}

async fn revoke(State(state): State<Arc<Mutex<FakeState>>>, headers: HeaderMap) -> Response {
    let mut state = state.lock().unwrap();
    state.seen.push("DELETE /installation/token".into());
    check_headers(&mut state, "DELETE installation/token", &headers);
    if let Some(answer) = scripted(&mut state, Route::Revoke) {
        return answer;
    }
    let token = bearer(&headers).unwrap_or_default();
    match state.tokens.iter_mut().find(|t| t.token == token && !t.revoked && t.expires_at > Utc::now()) {
        Some(t) => {
            t.revoked = true;
            StatusCode::NO_CONTENT.into_response()
        }
        None => error(401, "Bad credentials"),
    }
}

/// A live token that may manage team memberships, from the request's `Authorization`.
fn org_token(state: &FakeState, headers: &HeaderMap) -> bool {
    let token = bearer(headers).unwrap_or_default();
    state
        .tokens
        .iter()
        .any(|t| t.token == token && !t.revoked && t.expires_at > Utc::now() && t.permissions.get("members").is_some_and(|p| p == "write"))
}

type Member = Path<(String, String, String)>;

async fn team_repo(
    State(state): State<Arc<Mutex<FakeState>>>,
    Path((org, team, owner, repo)): Path<(String, String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let mut state = state.lock().unwrap();
    state.seen.push(format!("GET /orgs/{org}/teams/{team}/repos/{owner}/{repo}"));
    if !org_token(&state, &headers) {
        return error(401, "Bad credentials");
    }
    if headers.get("accept").and_then(|v| v.to_str().ok()) != Some("application/vnd.github.v3.repository+json") {
        state.violations.push("a team's permissions come only with Accept: application/vnd.github.v3.repository+json".into());
    }
    // The repositories are private: a token that does not cover this one sees nothing (GitHub's 404).
    let token = bearer(&headers).unwrap_or_default();
    if !state.tokens.iter().any(|t| t.token == token && t.repositories.contains(&repo) && t.permissions.contains_key("metadata")) {
        return error(404, "Not Found");
    }
    let Some(permission) = state.team_repos.get(&(team.clone(), repo.clone())).filter(|_| org == OWNER && owner == OWNER) else {
        return error(404, "Not Found");
    };
    let rank = ["pull", "triage", "push", "maintain", "admin"];
    let held = rank.iter().position(|p| p == permission).unwrap();
    let permissions: serde_json::Map<String, Value> = rank.iter().enumerate().map(|(i, p)| (p.to_string(), json!(i <= held))).collect();
    Json(json!({"id": 1, "name": repo, "full_name": format!("{OWNER}/{repo}"), "permissions": permissions, "role_name": permission}))
        .into_response()
}

async fn membership(State(state): State<Arc<Mutex<FakeState>>>, Path((org, team, login)): Member, headers: HeaderMap) -> Response {
    let mut state = state.lock().unwrap();
    state.seen.push(format!("GET /orgs/{org}/teams/{team}/memberships/{login}"));
    check_headers(&mut state, "GET membership", &headers);
    if !org_token(&state, &headers) {
        return error(401, "Bad credentials");
    }
    match state.teams.get(&team) {
        Some(members) if org == OWNER && members.contains(&login) => Json(json!({"role": "member", "state": "active", "url": format!("https://api.github.com/organizations/1/team/1/memberships/{login}")})).into_response(),
        _ => error(404, "Not Found"),
    }
}

async fn add_member(
    State(state): State<Arc<Mutex<FakeState>>>,
    Path((org, team, login)): Member,
    headers: HeaderMap,
    body: String,
) -> Response {
    let mut state = state.lock().unwrap();
    state.seen.push(format!("PUT /orgs/{org}/teams/{team}/memberships/{login}"));
    check_headers(&mut state, "PUT membership", &headers);
    if !org_token(&state, &headers) {
        return error(401, "Bad credentials");
    }
    if serde_json::from_str::<Value>(&body).ok().and_then(|b| b["role"].as_str().map(str::to_string)).as_deref() != Some("member") {
        state.violations.push(format!("a membership is added as a plain member, not {body}"));
    }
    if org != OWNER || !state.teams.contains_key(&team) {
        return error(404, "Not Found");
    }
    // Someone outside the organization is invited into it: pending, no access (GitHub's documented answer).
    if !state.org_members.contains(&login) {
        state.org_invited.insert(login.clone());
        return Json(json!({"role": "member", "state": "pending", "url": format!("https://api.github.com/organizations/1/team/1/memberships/{login}")}))
            .into_response();
    }
    state.teams.get_mut(&team).expect("checked").insert(login.clone());
    Json(json!({"role": "member", "state": "active", "url": format!("https://api.github.com/organizations/1/team/1/memberships/{login}")}))
        .into_response()
}

/// An invitation's id: its place among the invited, from 500.
fn invitation_id(state: &FakeState, login: &str) -> Option<u64> {
    state.org_invited.iter().position(|l| l == login).map(|i| 500 + i as u64)
}

async fn org_invitations(State(state): State<Arc<Mutex<FakeState>>>, Path(org): Path<String>, headers: HeaderMap) -> Response {
    let mut state = state.lock().unwrap();
    state.seen.push(format!("GET /orgs/{org}/invitations"));
    check_headers(&mut state, "GET invitations", &headers);
    if !org_token(&state, &headers) {
        return error(401, "Bad credentials");
    }
    let list: Vec<Value> = state
        .org_invited
        .iter()
        .map(|l| json!({"id": invitation_id(&state, l), "login": l, "role": "direct_member", "email": null}))
        .collect();
    Json(list).into_response()
}

async fn cancel_invitation(
    State(state): State<Arc<Mutex<FakeState>>>,
    Path((org, id)): Path<(String, u64)>,
    headers: HeaderMap,
) -> Response {
    let mut state = state.lock().unwrap();
    state.seen.push(format!("DELETE /orgs/{org}/invitations/{id}"));
    check_headers(&mut state, "DELETE invitation", &headers);
    if !org_token(&state, &headers) {
        return error(401, "Bad credentials");
    }
    let Some(login) = state.org_invited.iter().find(|l| invitation_id(&state, l) == Some(id)).cloned() else {
        return error(404, "Not Found");
    };
    state.org_invited.remove(&login);
    StatusCode::NO_CONTENT.into_response()
}

async fn org_membership(
    State(state): State<Arc<Mutex<FakeState>>>,
    Path((org, login)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let mut state = state.lock().unwrap();
    state.seen.push(format!("GET /orgs/{org}/memberships/{login}"));
    check_headers(&mut state, "GET org membership", &headers);
    if !org_token(&state, &headers) {
        return error(401, "Bad credentials");
    }
    let member_state = if state.org_members.contains(&login) {
        if state.leave_when_checked.remove(&login) {
            state.org_members.remove(&login);
        }
        "active"
    } else if state.org_invited.contains(&login) {
        "pending"
    } else {
        return error(404, "Not Found");
    };
    Json(json!({"state": member_state, "role": "member", "organization": {"login": OWNER}, "user": {"login": login}})).into_response()
}

async fn remove_member(State(state): State<Arc<Mutex<FakeState>>>, Path((org, team, login)): Member, headers: HeaderMap) -> Response {
    let mut state = state.lock().unwrap();
    state.seen.push(format!("DELETE /orgs/{org}/teams/{team}/memberships/{login}"));
    check_headers(&mut state, "DELETE membership", &headers);
    if !org_token(&state, &headers) {
        return error(401, "Bad credentials");
    }
    if let Some(answer) = scripted(&mut state, Route::RemoveMember) {
        return answer;
    }
    let removed = org == OWNER && state.teams.get_mut(&team).is_some_and(|members| members.remove(&login));
    if removed { StatusCode::NO_CONTENT.into_response() } else { error(404, "Not Found") }
}

async fn unknown(State(state): State<Arc<Mutex<FakeState>>>, method: axum::http::Method, uri: axum::http::Uri) -> Response {
    let mut state = state.lock().unwrap();
    state.violations.push(format!("{method} {uri}: not an endpoint the provider should call"));
    error(404, "Not Found")
}
