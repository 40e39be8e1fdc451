//! [`FakeGitLab`]: GitLab's project access tokens API as documented
//! (`/api/v4/projects/:id/access_tokens`), on loopback, stateful and strict:
//! it checks the broker's `PRIVATE-TOKEN`, that the project is named by its
//! URL-encoded path, and each token request's body (a name, scopes GitLab
//! has, a role the broker may give, an `expires_at` date within a year); it
//! answers with GitLab's shapes and errors and revokes by id. A request
//! GitLab would take but the provider should not send is a violation, and
//! dropping the fake fails the test if there is any.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use chrono::{NaiveDate, Utc};
use serde_json::{Value, json};

/// Projects the broker's token is Maintainer of.
pub const PROJECTS: &[&str] = &["acme/api", "acme/platform/tools"];

#[derive(Debug, Clone)]
pub struct Issued {
    pub id: u64,
    pub project: String,
    pub token: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub access_level: u64,
    pub expires_at: NaiveDate,
    pub revoked: bool,
}

#[derive(Default)]
struct FakeState {
    broker_token: String,
    /// What the broker's token is: `personal` (a user's), or `project` (a
    /// project or group access token: its user is a bot).
    broker_token_kind: &'static str,
    /// The broker token's scopes, as `GET /personal_access_tokens/self` shows them.
    broker_scopes: Vec<String>,
    /// Role promotions need an administrator's approval: additions and
    /// raises are queued, not made (GitLab's "Request queued for administrator approval.").
    queue_promotions: bool,
    /// Projects whose visibility is Internal (any logged-in user, and any project token, reads them).
    internal_projects: Vec<String>,
    /// Users by username: their ids.
    users: BTreeMap<String, u64>,
    /// Direct project memberships, (project, user id) → (access level, expires_at).
    members: BTreeMap<(String, u64), (u64, Option<String>)>,
    /// Access inherited from a group, (project, user id) → access level.
    inherited: BTreeMap<(String, u64), u64>,
    /// Memberships GitLab holds back ("awaiting": a seat or an approval to come): listed, no access.
    awaiting: std::collections::BTreeSet<(String, u64)>,
    tokens: Vec<Issued>,
    scripted: HashMap<&'static str, VecDeque<u16>>,
    violations: Vec<String>,
}

type Shared = Arc<Mutex<FakeState>>;

pub struct FakeGitLab {
    pub url: String,
    pub dir: tempfile::TempDir,
    state: Shared,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeGitLab {
    fn drop(&mut self) {
        self.server.abort();
        crate::common::fake_host::assert_no_violations("GitLab", &self.state.lock().unwrap().violations);
    }
}

impl FakeGitLab {
    pub async fn start() -> FakeGitLab {
        let broker_token = format!("glpat-{}", hex::encode(rand::random::<[u8; 10]>()));
        let dir = crate::common::fake_host::secrets_dir("gitlab.token", &broker_token);
        let users = BTreeMap::from([("alice.gl".to_string(), 7), ("dave.gl".to_string(), 8), ("bob.gl".to_string(), 9)]);
        let state = Arc::new(Mutex::new(FakeState {
            broker_token,
            broker_token_kind: "personal",
            broker_scopes: vec!["api".to_string()],
            users,
            ..FakeState::default()
        }));
        let app = axum::Router::new()
            .route("/api/v4/projects/{id}/access_tokens", post(create))
            .route("/api/v4/projects/{id}/access_tokens/{token_id}", delete(revoke))
            .route("/api/v4/users", get(list_users))
            .route("/api/v4/user", get(current_user))
            .route("/api/v4/projects", get(list_projects))
            .route("/api/v4/personal_access_tokens/self", get(token_self))
            .route("/api/v4/projects/{id}/members", post(add_member))
            .route("/api/v4/projects/{id}/members/all/{user_id}", get(effective_member))
            .route("/api/v4/projects/{id}/members/{user_id}", get(direct_member).put(change_member).delete(remove_member))
            .fallback(unknown)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FakeGitLab { url, dir, state, server }
    }

    /// The broker's token becomes a project (or group) access token: GitLab's
    /// bot user; creating project access tokens with it is refused, as
    /// GitLab documents ("You must use a personal access token").
    pub fn broker_token_is_a_project_token(&self) {
        self.state.lock().unwrap().broker_token_kind = "project";
    }

    /// Turns on "administrator approval for role promotions": member
    /// additions and raises are queued, answered with GitLab's message, and not made.
    pub fn queue_role_promotions(&self) {
        self.state.lock().unwrap().queue_promotions = true;
    }

    /// `path` is an Internal project on this GitLab.
    pub fn add_internal_project(&self, path: &str) {
        self.state.lock().unwrap().internal_projects.push(path.to_string());
    }

    /// The broker's token has these scopes (default: `api`).
    pub fn broker_token_scopes(&self, scopes: &[&str]) {
        self.state.lock().unwrap().broker_scopes = scopes.iter().map(|s| s.to_string()).collect();
    }

    /// A policy: `acme/api` and `acme/platform/tools` (the broker's) and
    /// `acme/other` (not) on this GitLab; reads auto-approved, the rest approved by carol.
    pub fn policy(&self) -> String {
        let repos: String = ["acme/api", "acme/platform/tools", "acme/other"]
            .iter()
            .map(|r| format!("[[repo]]\nname = \"{r}\"\nurl = \"https://gitlab.example.com/{r}.git\"\nprovider = \"gitlab\"\n\n"))
            .collect();
        format!(
            "[server]\npending_ttl = \"1h\"\nsealing_key_file = \"{}\"\n\n[[provider]]\nname = \"gitlab\"\nkind = \"gitlab\"\napi_url = \"{}/api/v4\"\ntoken_file = \"{}\"\n\n{repos}{}",
            self.dir.path().join("sealing.key").display(),
            self.url,
            self.dir.path().join("gitlab.token").display(),
            crate::common::fake_github::RULES
        )
    }

    /// [`FakeGitLab::policy`] with member mode: alice, dave and bob have GitLab usernames (`alice.gl`, …).
    pub fn member_policy(&self) -> String {
        self.policy().replace(
            "kind = \"gitlab\"\n",
            "kind = \"gitlab\"\nmode = \"member\"\nlogins = { alice = \"alice.gl\", dave = \"dave.gl\", bob = \"bob.gl\" }\n",
        )
    }

    /// A direct membership from before any grant.
    pub fn set_member(&self, project: &str, username: &str, level: u64) {
        let mut state = self.state.lock().unwrap();
        let id = state.users[username];
        state.members.insert((project.to_string(), id), (level, None));
    }

    /// Access through a group.
    pub fn set_inherited(&self, project: &str, username: &str, level: u64) {
        let mut state = self.state.lock().unwrap();
        let id = state.users[username];
        state.inherited.insert((project.to_string(), id), level);
    }

    /// Access through a group that GitLab holds back (`state: "awaiting"`):
    /// listed with its level, but it gives no access until it is activated.
    pub fn set_awaiting_inherited(&self, project: &str, username: &str, level: u64) {
        let mut state = self.state.lock().unwrap();
        let id = state.users[username];
        state.inherited.insert((project.to_string(), id), level);
        state.awaiting.insert((project.to_string(), id));
    }

    /// A direct membership now: its access level and expiry date.
    pub fn member(&self, project: &str, username: &str) -> Option<(u64, Option<String>)> {
        let state = self.state.lock().unwrap();
        state.members.get(&(project.to_string(), state.users[username])).cloned()
    }

    /// Answers the next `times` calls to `route` (`"create"` or `"revoke"`) with `status`.
    pub fn fail_next(&self, route: &'static str, times: usize, status: u16) {
        let mut state = self.state.lock().unwrap();
        state.scripted.entry(route).or_default().extend(std::iter::repeat_n(status, times));
    }

    /// Every secret of this GitLab and of the broker's config for it: the
    /// broker's token, the sealing key, every token minted.
    pub fn secrets(&self) -> Vec<String> {
        let mut all = vec![self.state.lock().unwrap().broker_token.clone()];
        all.push(crate::common::fake_host::sealing_key(&self.dir));
        all.extend(self.tokens().into_iter().map(|t| t.token));
        all
    }

    pub fn tokens(&self) -> Vec<Issued> {
        self.state.lock().unwrap().tokens.clone()
    }

    pub fn live_tokens(&self) -> Vec<Issued> {
        self.tokens().into_iter().filter(|t| !t.revoked).collect()
    }
}

fn error(status: u16, message: &str) -> Response {
    (StatusCode::from_u16(status).unwrap(), Json(json!({"message": message}))).into_response()
}

/// Checks the broker's token and the raw project id; the error to answer with, if any.
fn admit(state: &mut FakeState, headers: &HeaderMap, uri: &Uri, route: &'static str) -> Option<Response> {
    if let Some(status) = state.scripted.get_mut(route).and_then(VecDeque::pop_front) {
        return Some(error(status, &format!("{status} scripted")));
    }
    if headers.get("private-token").and_then(|v| v.to_str().ok()) != Some(state.broker_token.as_str()) {
        return Some(error(401, "401 Unauthorized"));
    }
    let project = uri.path().strip_prefix("/api/v4/projects/");
    if project.and_then(|p| p.split('/').next()).is_some_and(|id| !id.contains("%2F")) {
        state.violations.push(format!("{uri}: a project path must be URL-encoded as one segment"));
    }
    None
}

async fn current_user(State(state): State<Shared>, headers: HeaderMap, uri: Uri) -> Response {
    let mut state = state.lock().unwrap();
    if let Some(refused) = admit(&mut state, &headers, &uri, "user") {
        return refused;
    }
    let bot = state.broker_token_kind != "personal";
    let username = if bot { "project_1_bot_3f2a" } else { "jit-broker" };
    Json(json!({"id": 100, "username": username, "name": username, "state": "active", "bot": bot})).into_response()
}

async fn list_projects(State(state): State<Shared>, headers: HeaderMap, uri: Uri) -> Response {
    let mut state = state.lock().unwrap();
    if let Some(refused) = admit(&mut state, &headers, &uri, "projects") {
        return refused;
    }
    let query = uri.query().unwrap_or("");
    if !query.contains("visibility=internal") {
        state.violations.push(format!("listing projects without a visibility filter: {uri}"));
    }
    let list: Vec<Value> =
        state.internal_projects.iter().map(|p| json!({"id": 1, "path_with_namespace": p, "visibility": "internal"})).collect();
    Json(list).into_response()
}

async fn token_self(State(state): State<Shared>, headers: HeaderMap, uri: Uri) -> Response {
    let mut state = state.lock().unwrap();
    if let Some(refused) = admit(&mut state, &headers, &uri, "token_self") {
        return refused;
    }
    Json(json!({"id": 1, "name": "jit broker", "revoked": false, "active": true, "scopes": state.broker_scopes, "user_id": 100, "expires_at": null}))
        .into_response()
}

async fn create(State(state): State<Shared>, Path(project): Path<String>, headers: HeaderMap, uri: Uri, body: String) -> Response {
    let mut state = state.lock().unwrap();
    if let Some(refused) = admit(&mut state, &headers, &uri, "create") {
        return refused;
    }
    if state.broker_token_kind != "personal" {
        return error(403, "403 Forbidden");
    }
    if !PROJECTS.contains(&project.as_str()) {
        return error(404, "404 Project Not Found");
    }
    let Ok(body) = serde_json::from_str::<Value>(&body) else { return error(400, "400 Bad request") };
    let name = body["name"].as_str().unwrap_or("").to_string();
    let scopes: Vec<String> =
        body["scopes"].as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect()).unwrap_or_default();
    let access_level = body["access_level"].as_u64().unwrap_or(40);
    let Some(expires_at) = body["expires_at"].as_str().and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()) else {
        return error(400, "expires_at is missing or not a date");
    };
    if name.is_empty() || scopes.is_empty() {
        return error(400, "name, scopes is missing");
    }
    let allowed = BTreeMap::from([("read_repository", ()), ("write_repository", ()), ("api", ()), ("read_api", ())]);
    if scopes.iter().any(|s| !allowed.contains_key(s.as_str())) {
        return error(400, "scopes does not have a valid value");
    }
    if scopes.iter().any(|s| s == "api" || s == "read_api") {
        state.violations.push(format!("a git credential needs no API scope: {scopes:?}"));
    }
    if !body.as_object().unwrap().contains_key("access_level") {
        state.violations.push("no access_level: GitLab defaults to Maintainer".into());
    }
    if ![10, 20, 30, 40].contains(&access_level) {
        return error(400, "access_level does not have a valid value");
    }
    let today = Utc::now().date_naive();
    if expires_at <= today || expires_at > today + chrono::Duration::days(365) {
        return error(400, "expires_at must be in the future and within a year");
    }
    let id = 1000 + state.tokens.len() as u64;
    let token = format!("glpat-{}", hex::encode(rand::random::<[u8; 12]>()));
    crate::common::logs::secret(&token);
    let issued =
        Issued { id, project, token: token.clone(), name: name.clone(), scopes: scopes.clone(), access_level, expires_at, revoked: false };
    state.tokens.push(issued);
    (
        StatusCode::CREATED,
        Json(json!({
            "id": id, "name": name, "scopes": scopes, "access_level": access_level, "expires_at": expires_at.to_string(),
            "active": true, "revoked": false, "user_id": 166, "created_at": Utc::now().to_rfc3339(), "token": token,
        })),
    )
        .into_response()
}

async fn revoke(State(state): State<Shared>, Path((project, token_id)): Path<(String, u64)>, headers: HeaderMap, uri: Uri) -> Response {
    let mut state = state.lock().unwrap();
    if let Some(refused) = admit(&mut state, &headers, &uri, "revoke") {
        return refused;
    }
    match state.tokens.iter_mut().find(|t| t.id == token_id && t.project == project && !t.revoked) {
        Some(t) => {
            t.revoked = true;
            StatusCode::NO_CONTENT.into_response()
        }
        None => error(404, "404 Not Found"),
    }
}

async fn list_users(State(state): State<Shared>, headers: HeaderMap, uri: Uri) -> Response {
    let mut state = state.lock().unwrap();
    if let Some(refused) = admit(&mut state, &headers, &uri, "users") {
        return refused;
    }
    let username =
        uri.query().and_then(|q| url::form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "username")).map(|(_, v)| v.to_string());
    match username.and_then(|u| state.users.get(&u).map(|id| (u, *id))) {
        Some((username, id)) => Json(json!([{"id": id, "username": username, "state": "active"}])).into_response(),
        None => Json(json!([])).into_response(),
    }
}

fn member_json(id: u64, (level, expires_at): &(u64, Option<String>)) -> Response {
    Json(json!({"id": id, "access_level": level, "expires_at": expires_at, "state": "active"})).into_response()
}

async fn effective_member(State(state): State<Shared>, Path((project, id)): Path<(String, u64)>, headers: HeaderMap, uri: Uri) -> Response {
    let mut state = state.lock().unwrap();
    if let Some(refused) = admit(&mut state, &headers, &uri, "members") {
        return refused;
    }
    let direct = state.members.get(&(project.clone(), id)).map(|m| m.0).unwrap_or(0);
    let inherited = state.inherited.get(&(project.clone(), id)).copied().unwrap_or(0);
    let awaiting = direct < inherited && state.awaiting.contains(&(project, id));
    match direct.max(inherited) {
        0 => error(404, "404 Not found"),
        level if awaiting => Json(json!({"id": id, "access_level": level, "expires_at": null, "state": "awaiting"})).into_response(),
        level => member_json(id, &(level, None)),
    }
}

async fn direct_member(State(state): State<Shared>, Path((project, id)): Path<(String, u64)>, headers: HeaderMap, uri: Uri) -> Response {
    let mut state = state.lock().unwrap();
    if let Some(refused) = admit(&mut state, &headers, &uri, "members") {
        return refused;
    }
    match state.members.get(&(project, id)) {
        Some(m) => member_json(id, m),
        None => error(404, "404 Not found"),
    }
}

async fn add_member(State(state): State<Shared>, Path(project): Path<String>, headers: HeaderMap, uri: Uri, body: String) -> Response {
    let mut state = state.lock().unwrap();
    if let Some(refused) = admit(&mut state, &headers, &uri, "members") {
        return refused;
    }
    let Ok(body) = serde_json::from_str::<Value>(&body) else { return error(400, "400 Bad request") };
    let (Some(id), Some(level)) = (body["user_id"].as_u64(), body["access_level"].as_u64()) else {
        return error(400, "user_id, access_level is missing");
    };
    let expires_at = body["expires_at"].as_str().map(str::to_string);
    if expires_at.as_deref().and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()).is_none_or(|d| d <= Utc::now().date_naive()) {
        state.violations.push(format!("a membership jit adds expires at GitLab too (a date after today), got {expires_at:?}"));
    }
    if state.members.contains_key(&(project.clone(), id)) {
        return error(409, "Member already exists");
    }
    if state.queue_promotions {
        let username = state.users.iter().find(|(_, i)| **i == id).map(|(u, _)| u.clone()).unwrap_or_default();
        return (StatusCode::CREATED, Json(json!({"message": {username: "Request queued for administrator approval."}}))).into_response();
    }
    let member = (level, expires_at);
    state.members.insert((project, id), member.clone());
    let mut response = member_json(id, &member);
    *response.status_mut() = StatusCode::CREATED;
    response
}

async fn change_member(
    State(state): State<Shared>,
    Path((project, id)): Path<(String, u64)>,
    headers: HeaderMap,
    uri: Uri,
    body: String,
) -> Response {
    let mut state = state.lock().unwrap();
    if let Some(refused) = admit(&mut state, &headers, &uri, "members") {
        return refused;
    }
    let Some(level) = serde_json::from_str::<Value>(&body).ok().and_then(|b| b["access_level"].as_u64()) else {
        return error(400, "access_level is missing");
    };
    let queue = state.queue_promotions;
    match state.members.get_mut(&(project, id)) {
        Some(member) if queue && level > member.0 => Json(json!({"message": "Request queued for administrator approval."})).into_response(),
        Some(member) => {
            member.0 = level;
            let member = member.clone();
            member_json(id, &member)
        }
        None => error(404, "404 Not found"),
    }
}

async fn remove_member(State(state): State<Shared>, Path((project, id)): Path<(String, u64)>, headers: HeaderMap, uri: Uri) -> Response {
    let mut state = state.lock().unwrap();
    if let Some(refused) = admit(&mut state, &headers, &uri, "members") {
        return refused;
    }
    match state.members.remove(&(project, id)) {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => error(404, "404 Not found"),
    }
}

async fn unknown(State(state): State<Shared>, method: axum::http::Method, uri: Uri) -> Response {
    state.lock().unwrap().violations.push(format!("{method} {uri}: not an endpoint the provider should call"));
    error(404, "404 Not Found")
}
