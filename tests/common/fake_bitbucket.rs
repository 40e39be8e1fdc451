//! [`FakeBitbucket`]: Bitbucket Data Center's and Bitbucket Cloud's REST
//! APIs as Atlassian documents them, on loopback, stateful and strict, plus
//! Data Center's git over HTTP (`/scm/KEY/slug.git`, real `git
//! http-backend`) behind its repository tokens.
//!
//! Data Center (`/rest/…`): repository HTTP access tokens (`PUT
//! /rest/access-tokens/latest/projects/{key}/repos/{slug}` with a name, one
//! `REPO_*` permission and `expiryDays`; `DELETE …/{tokenId}`), user and
//! project/repository permissions; errors as `{"errors": [{"message",
//! "exceptionName"}]}`, 401 for an unknown credential *and* for one without
//! the permission, as Bitbucket answers. Git takes a repository token only
//! as `Authorization: Bearer`; one sent as a Basic password is refused (and
//! is a violation: Atlassian says not to).
//!
//! Cloud (`/2.0/…`): explicit repository user permissions
//! (`permissions-config/users/{account_id}`), errors as `{"type": "error",
//! "error": {"message"}}`.
//!
//! A request the provider should not send is a violation, and dropping the
//! fake fails the test if there is any.
//!
//! No registry (npm, PyPI, crates.io, Debian) carries an official
//! machine-readable description of either API — Atlassian publishes Data
//! Center's OpenAPI and Cloud's on its own sites only — so no contract test
//! validates against one. The shapes here follow Atlassian's reference pages;
//! the token request (`name`, `permissions`, `expiryDays`) and the permission
//! paths were cross-checked by hand against the types generated from Data
//! Center's description in the npm package `@coderabbitai/bitbucket` 1.1.4.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, put};
use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

/// Data Center repositories (`KEY/slug`); the bot is project admin of ACME only.
pub const DC_REPOS: &[&str] = &["ACME/api", "ACME/tools", "OPS/secret"];
const ADMIN_OF: &[&str] = &["ACME"];
/// Data Center users, and Cloud account ids by the same people.
const DC_USERS: &[&str] = &["alice", "bob", "dave"];
pub const CLOUD_ACCOUNTS: &[(&str, &str)] = &[("alice", "557058:a11ce"), ("bob", "{b0b-uuid}"), ("dave", "557058:dave")];
const CLOUD_REPOS: &[&str] = &["acme/web"];

#[derive(Debug, Clone)]
pub struct Issued {
    pub id: String,
    pub repo: String,
    pub token: String,
    pub name: String,
    pub permissions: Vec<String>,
    pub expiry_days: i64,
    pub created: DateTime<Utc>,
    pub deleted: bool,
}

#[derive(Default)]
struct FakeState {
    broker_token: String,
    /// Where the bare repositories are (`KEY/slug.git`).
    git_root: std::path::PathBuf,
    /// Cloud: the account name of a Basic API token; `None`: the token is a Bearer access token.
    cloud_username: Option<String>,
    tokens_disabled: bool,
    /// Explicit repository permissions, (`KEY/slug` or `workspace/slug`, user or account) → permission.
    repo_perms: BTreeMap<(String, String), String>,
    /// Data Center project permissions, (KEY, user) → permission.
    project_perms: BTreeMap<(String, String), String>,
    tokens: Vec<Issued>,
    /// Git requests seen, as (service, the scheme of their Authorization).
    git_auth: Vec<(String, String)>,
    scripted: HashMap<&'static str, VecDeque<u16>>,
    violations: Vec<String>,
}

type Shared = Arc<Mutex<FakeState>>;

pub struct FakeBitbucket {
    /// `http://127.0.0.1:PORT`: Data Center's base URL, and Cloud's API at `<url>/2.0`.
    pub url: String,
    pub dir: tempfile::TempDir,
    state: Shared,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeBitbucket {
    fn drop(&mut self) {
        self.server.abort();
        crate::common::fake_host::assert_no_violations("Bitbucket", &self.state.lock().unwrap().violations);
    }
}

impl FakeBitbucket {
    pub async fn start() -> FakeBitbucket {
        let broker_token = format!("BBDC-{}", hex::encode(rand::random::<[u8; 16]>()));
        let dir = crate::common::fake_host::secrets_dir("bitbucket.token", &broker_token);
        for repo in DC_REPOS {
            crate::common::init_bare_repo(&dir.path().join("git").join(format!("{repo}.git")));
        }
        let git_root = dir.path().join("git");
        let state = Arc::new(Mutex::new(FakeState { broker_token, git_root, ..FakeState::default() }));
        let app = axum::Router::new()
            .route("/rest/access-tokens/latest/projects/{key}/repos/{slug}", put(create_token))
            .route("/rest/access-tokens/latest/projects/{key}/repos/{slug}/{id}", axum::routing::delete(delete_token))
            .route("/rest/api/latest/users", get(dc_users))
            .route("/rest/api/latest/projects", get(dc_projects))
            .route("/rest/api/latest/projects/{key}/permissions/users", get(dc_project_users))
            .route("/rest/api/latest/projects/{key}/repos/{slug}/permissions/users", get(dc_repo_users).put(dc_set).delete(dc_revoke))
            .route("/scm/{key}/{repo}/{*rest}", any(git))
            .route("/2.0/user", get(cloud_user))
            .route(
                "/2.0/repositories/{workspace}/{slug}/permissions-config/users/{account}",
                get(cloud_get).put(cloud_put).delete(cloud_delete),
            )
            .fallback(unknown)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FakeBitbucket { url, dir, state, server }
    }

    /// A Data Center policy in token mode: `acme/api` (`scm/ACME/api`),
    /// `acme/tools` (written as Bitbucket's clone URL shows it, lower-case),
    /// `acme/gone` (no such repository) and `acme/secret` (in a project the
    /// bot does not administer); reads auto-approved, the rest by carol.
    pub fn policy(&self) -> String {
        let repos: String =
            [("acme/api", "ACME/api"), ("acme/tools", "acme/tools"), ("acme/gone", "ACME/gone"), ("acme/secret", "OPS/secret")]
                .iter()
                .map(|(name, path)| {
                    format!("[[repo]]\nname = \"{name}\"\nurl = \"{}/scm/{path}.git\"\nprovider = \"bitbucket\"\n\n", self.url)
                })
                .collect();
        format!(
            "[server]\npending_ttl = \"1h\"\nsealing_key_file = \"{}\"\n\n[[provider]]\nname = \"bitbucket\"\nkind = \"bitbucket\"\napi_url = \"{}\"\ntoken_file = \"{}\"\n\n{repos}{}",
            self.dir.path().join("sealing.key").display(),
            self.url,
            self.dir.path().join("bitbucket.token").display(),
            crate::common::fake_github::RULES
        )
    }

    /// [`FakeBitbucket::policy`] in member mode: alice, bob and dave have Bitbucket user names.
    pub fn member_policy(&self) -> String {
        self.policy().replace(
            "kind = \"bitbucket\"\n",
            "kind = \"bitbucket\"\nmode = \"member\"\nlogins = { alice = \"alice\", bob = \"bob\", dave = \"dave\", erin = \"erin\" }\n",
        )
    }

    /// A Cloud policy: `acme/web` at bitbucket.org, the broker with an
    /// access token, or with `username` and an API token (Basic).
    pub fn cloud_policy(&self, username: Option<&str>) -> String {
        self.state.lock().unwrap().cloud_username = username.map(str::to_string);
        let logins: Vec<String> = CLOUD_ACCOUNTS.iter().map(|(user, id)| format!("{user} = \"{id}\"")).collect();
        let username = username.map(|u| format!("username = \"{u}\"\n")).unwrap_or_default();
        format!(
            "[server]\npending_ttl = \"1h\"\nsealing_key_file = \"{}\"\n\n[[provider]]\nname = \"bitbucket-cloud\"\nkind = \"bitbucket\"\napi_url = \"{}/2.0\"\ntoken_file = \"{}\"\n{username}logins = {{ {}, erin = \"557058:nobody\" }}\n\n[[repo]]\nname = \"acme/web\"\nurl = \"https://bitbucket.org/acme/web.git\"\nprovider = \"bitbucket-cloud\"\n\n{}",
            self.dir.path().join("sealing.key").display(),
            self.url,
            self.dir.path().join("bitbucket.token").display(),
            logins.join(", "),
            crate::common::fake_github::RULES
        )
    }

    /// An administrator turned HTTP access tokens off.
    pub fn disable_tokens(&self) {
        self.state.lock().unwrap().tokens_disabled = true;
    }

    /// A permission from before any grant: on a repository (`KEY/slug`,
    /// `workspace/slug`) or, for a bare key, on a Data Center project.
    pub fn set_permission(&self, at: &str, user: &str, permission: &str) {
        let mut state = self.state.lock().unwrap();
        let key = (at.to_string(), user.to_string());
        if at.contains('/') {
            state.repo_perms.insert(key, permission.into())
        } else {
            state.project_perms.insert(key, permission.into())
        };
    }

    /// The explicit repository permission `user` holds now.
    pub fn permission(&self, repo: &str, user: &str) -> Option<String> {
        self.state.lock().unwrap().repo_perms.get(&(repo.to_string(), user.to_string())).cloned()
    }

    /// Answers the next `times` calls to `route` (`"create"`, `"delete"`, `"permissions"`) with `status`.
    pub fn fail_next(&self, route: &'static str, times: usize, status: u16) {
        let mut state = self.state.lock().unwrap();
        state.scripted.entry(route).or_default().extend(std::iter::repeat_n(status, times));
    }

    /// Every secret of this Bitbucket and of the broker's config for it.
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
        self.tokens().into_iter().filter(|t| !t.deleted).collect()
    }

    /// The git requests that carried credentials: (service, auth scheme).
    pub fn git_auth(&self) -> Vec<(String, String)> {
        self.state.lock().unwrap().git_auth.clone()
    }
}

fn dc_error(status: u16, exception: &str, message: &str) -> Response {
    let body = json!({"errors": [{"context": null, "message": message, "exceptionName": format!("com.atlassian.bitbucket.{exception}")}]});
    (StatusCode::from_u16(status).unwrap(), Json(body)).into_response()
}

fn cloud_error(status: u16, message: &str) -> Response {
    (StatusCode::from_u16(status).unwrap(), Json(json!({"type": "error", "error": {"message": message}}))).into_response()
}

fn query(uri: &Uri) -> BTreeMap<String, String> {
    url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()).into_owned().collect()
}

/// Data Center: a scripted failure, the bot's Bearer token, and admin of the project. The error to answer with, if any.
fn admit_dc(state: &mut FakeState, headers: &HeaderMap, route: &'static str, key: Option<&str>) -> Option<Response> {
    if let Some(status) = state.scripted.get_mut(route).and_then(VecDeque::pop_front) {
        return Some(dc_error(status, "ServiceException", &format!("{status} scripted")));
    }
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
    if auth != format!("Bearer {}", state.broker_token) {
        return Some(dc_error(
            401,
            "auth.IncorrectPasswordAuthenticationException",
            "Authentication failed. Please check your credentials and try again.",
        ));
    }
    if let Some(key) = key {
        if key != key.to_ascii_uppercase() {
            state.violations.push(format!("project key `{key}`: the API's keys are upper-case"));
        }
        if !ADMIN_OF.contains(&key.to_ascii_uppercase().as_str()) {
            return Some(dc_error(401, "AuthorisationException", "You are not permitted to access this resource"));
        }
    }
    None
}

fn dc_repo(key: &str, slug: &str) -> Option<String> {
    let repo = format!("{}/{slug}", key.to_ascii_uppercase());
    DC_REPOS.iter().any(|r| r.eq_ignore_ascii_case(&repo)).then_some(repo)
}

fn no_repo(key: &str, slug: &str) -> Response {
    dc_error(404, "repository.NoSuchRepositoryException", &format!("Repository {key}/{slug} does not exist."))
}

async fn create_token(
    State(state): State<Shared>,
    Path((key, slug)): Path<(String, String)>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let mut state = state.lock().unwrap();
    if let Some(refused) = admit_dc(&mut state, &headers, "create", Some(&key)) {
        return refused;
    }
    let Some(repo) = dc_repo(&key, &slug) else { return no_repo(&key, &slug) };
    if state.tokens_disabled {
        return dc_error(403, "FeatureDisabledException", "HTTP access tokens are disabled.");
    }
    let Ok(body) = serde_json::from_str::<Value>(&body) else { return dc_error(400, "validation.ArgumentValidationException", "bad JSON") };
    let name = body["name"].as_str().unwrap_or("").to_string();
    let permissions: Vec<String> =
        body["permissions"].as_array().into_iter().flatten().filter_map(|p| p.as_str().map(str::to_string)).collect();
    if name.is_empty() {
        return dc_error(400, "validation.ArgumentValidationException", "The request does not contain a token name");
    }
    if permissions.is_empty() {
        return dc_error(400, "validation.ArgumentValidationException", "The request does not contain a list of permissions");
    }
    let known = ["REPO_READ", "REPO_WRITE", "REPO_ADMIN", "PROJECT_READ", "PROJECT_WRITE", "PROJECT_ADMIN"];
    if permissions.iter().any(|p| !known.contains(&p.as_str())) {
        return dc_error(400, "validation.ArgumentValidationException", "One of the provided permission levels are unknown");
    }
    if permissions.len() != 1 || !permissions[0].starts_with("REPO_") {
        state.violations.push(format!("a git credential needs one repository permission, not {permissions:?}"));
    }
    let Some(expiry_days) = body["expiryDays"].as_i64() else {
        state.violations.push("a token without expiryDays never expires at Bitbucket".into());
        return dc_error(400, "validation.ArgumentValidationException", "expiryDays is missing");
    };
    if !(1..=366).contains(&expiry_days) {
        return dc_error(400, "validation.ArgumentValidationException", "expiryDays must be between 1 and 366");
    }
    let id = format!("{}", 252_973_515_069u64 + state.tokens.len() as u64);
    let token = format!("{id}{}", hex::encode(rand::random::<[u8; 16]>()));
    crate::common::logs::secret(&token);
    let created = Utc::now();
    state.tokens.push(Issued {
        id: id.clone(),
        repo,
        token: token.clone(),
        name: name.clone(),
        permissions,
        expiry_days,
        created,
        deleted: false,
    });
    Json(json!({"id": id, "createdDate": created.timestamp_millis(), "name": name, "token": token})).into_response()
}

async fn delete_token(State(state): State<Shared>, Path((key, slug, id)): Path<(String, String, String)>, headers: HeaderMap) -> Response {
    let mut state = state.lock().unwrap();
    if let Some(refused) = admit_dc(&mut state, &headers, "delete", Some(&key)) {
        return refused;
    }
    let Some(repo) = dc_repo(&key, &slug) else { return no_repo(&key, &slug) };
    match state.tokens.iter_mut().find(|t| t.id == id && t.repo == repo && !t.deleted) {
        Some(t) => {
            t.deleted = true;
            StatusCode::NO_CONTENT.into_response()
        }
        None => dc_error(404, "NoSuchEntityException", "The specified token does not exist"),
    }
}

fn page(values: Vec<Value>) -> Response {
    Json(json!({"size": values.len(), "limit": 100, "isLastPage": true, "start": 0, "values": values})).into_response()
}

fn dc_user(name: &str) -> Value {
    json!({"name": name, "slug": name, "id": 1, "displayName": name, "active": true, "type": "NORMAL"})
}

async fn dc_users(State(state): State<Shared>, headers: HeaderMap, uri: Uri) -> Response {
    let mut state = state.lock().unwrap();
    if let Some(refused) = admit_dc(&mut state, &headers, "users", None) {
        return refused;
    }
    let filter = query(&uri).get("filter").cloned().unwrap_or_default();
    page(DC_USERS.iter().filter(|u| u.contains(filter.as_str())).map(|u| dc_user(u)).collect())
}

async fn dc_projects(State(state): State<Shared>, headers: HeaderMap, uri: Uri) -> Response {
    let mut state = state.lock().unwrap();
    if let Some(refused) = admit_dc(&mut state, &headers, "projects", None) {
        return refused;
    }
    if query(&uri).get("permission").map(String::as_str) != Some("PROJECT_ADMIN") {
        state.violations.push(format!("{uri}: listing projects without asking which the bot administers"));
    }
    page(ADMIN_OF.iter().map(|k| json!({"key": k, "id": 1, "name": k})).collect())
}

/// The permitted users of a project's or repository's list whose names contain the filter.
fn permitted(perms: &BTreeMap<(String, String), String>, at: &str, filter: &str) -> Response {
    let values = perms
        .iter()
        .filter(|((on, user), _)| on == at && user.contains(filter))
        .map(|((_, user), permission)| json!({"user": dc_user(user), "permission": permission}))
        .collect();
    page(values)
}

async fn dc_project_users(State(state): State<Shared>, Path(key): Path<String>, headers: HeaderMap, uri: Uri) -> Response {
    let mut state = state.lock().unwrap();
    if let Some(refused) = admit_dc(&mut state, &headers, "permissions", Some(&key)) {
        return refused;
    }
    let filter = query(&uri).get("filter").cloned().unwrap_or_default();
    permitted(&state.project_perms, &key, &filter)
}

async fn dc_repo_users(State(state): State<Shared>, Path((key, slug)): Path<(String, String)>, headers: HeaderMap, uri: Uri) -> Response {
    let mut state = state.lock().unwrap();
    if let Some(refused) = admit_dc(&mut state, &headers, "permissions", Some(&key)) {
        return refused;
    }
    let Some(repo) = dc_repo(&key, &slug) else { return no_repo(&key, &slug) };
    let filter = query(&uri).get("filter").cloned().unwrap_or_default();
    permitted(&state.repo_perms, &repo, &filter)
}

async fn dc_set(State(state): State<Shared>, Path((key, slug)): Path<(String, String)>, headers: HeaderMap, uri: Uri) -> Response {
    let mut state = state.lock().unwrap();
    if let Some(refused) = admit_dc(&mut state, &headers, "permissions", Some(&key)) {
        return refused;
    }
    let Some(repo) = dc_repo(&key, &slug) else { return no_repo(&key, &slug) };
    let q = query(&uri);
    let (Some(name), Some(permission)) = (q.get("name"), q.get("permission")) else {
        return dc_error(400, "validation.ArgumentValidationException", "name and permission are required");
    };
    if !["REPO_READ", "REPO_WRITE", "REPO_ADMIN"].contains(&permission.as_str()) {
        return dc_error(400, "validation.ArgumentValidationException", "The specified permission does not exist");
    }
    if !DC_USERS.contains(&name.as_str()) {
        return dc_error(404, "user.NoSuchUserException", &format!("User {name} does not exist."));
    }
    state.repo_perms.insert((repo, name.clone()), permission.clone());
    StatusCode::NO_CONTENT.into_response()
}

async fn dc_revoke(State(state): State<Shared>, Path((key, slug)): Path<(String, String)>, headers: HeaderMap, uri: Uri) -> Response {
    let mut state = state.lock().unwrap();
    if let Some(refused) = admit_dc(&mut state, &headers, "permissions", Some(&key)) {
        return refused;
    }
    let Some(repo) = dc_repo(&key, &slug) else { return no_repo(&key, &slug) };
    let Some(name) = query(&uri).get("name").cloned() else {
        return dc_error(400, "validation.ArgumentValidationException", "name is required");
    };
    // Bitbucket answers 204 whether or not the user had a permission.
    state.repo_perms.remove(&(repo, name));
    StatusCode::NO_CONTENT.into_response()
}

/// Data Center's git over HTTP: a repository token as Bearer, with the permission the service needs.
async fn git(
    State(state): State<Shared>,
    Path((key, repo, rest)): Path<(String, String, String)>,
    method: Method,
    headers: HeaderMap,
    uri: Uri,
    body: Body,
) -> Response {
    let slug = repo.strip_suffix(".git").unwrap_or(&repo).to_string();
    let Some(at) = dc_repo(&key, &slug) else { return StatusCode::NOT_FOUND.into_response() };
    let q = uri.query().unwrap_or("").to_string();
    let service = if rest.ends_with("git-receive-pack") || q.contains("service=git-receive-pack") { "receive-pack" } else { "upload-pack" };
    let challenge = || {
        let mut refused = (StatusCode::UNAUTHORIZED, "Authentication failed").into_response();
        refused.headers_mut().insert("www-authenticate", "Basic realm=\"Atlassian Bitbucket\"".parse().unwrap());
        refused
    };
    let root = {
        let mut state = state.lock().unwrap();
        let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let Some((scheme, credential)) = auth.split_once(' ') else { return challenge() };
        state.git_auth.push((service.to_string(), scheme.to_string()));
        if scheme.eq_ignore_ascii_case("basic") {
            let decoded = base64::engine::general_purpose::STANDARD.decode(credential).unwrap_or_default();
            let decoded = String::from_utf8_lossy(&decoded).to_string();
            if state.tokens.iter().any(|t| decoded.ends_with(&format!(":{}", t.token))) {
                state.violations.push("a repository token sent as a Basic password (Bitbucket takes it only as Bearer)".into());
            }
            return challenge();
        }
        let now = Utc::now();
        let Some(token) = state
            .tokens
            .iter()
            .find(|t| t.token == credential && !t.deleted && t.repo == at && now < t.created + chrono::Duration::days(t.expiry_days))
        else {
            return challenge();
        };
        if service == "receive-pack" && token.permissions.iter().all(|p| p == "REPO_READ") {
            return (StatusCode::FORBIDDEN, "Repository write permission is required").into_response();
        }
        state.git_root.clone()
    };
    let request = jit::server::gateway::cgi::CgiRequest {
        project_root: &root,
        path_info: format!("/{at}.git/{rest}"),
        method: &method,
        query: q,
        headers: &headers,
        remote_user: "jit-grant",
    };
    jit::server::gateway::cgi::run(request, body).await.unwrap_or_else(|e| (StatusCode::BAD_GATEWAY, e.to_string()).into_response())
}

fn admit_cloud(state: &mut FakeState, headers: &HeaderMap, route: &'static str) -> Option<Response> {
    if let Some(status) = state.scripted.get_mut(route).and_then(VecDeque::pop_front) {
        return Some(cloud_error(status, &format!("{status} scripted")));
    }
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
    let expected = match &state.cloud_username {
        Some(user) => {
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{}", state.broker_token)))
        }
        None => format!("Bearer {}", state.broker_token),
    };
    (auth != expected).then(|| cloud_error(401, "Unauthorized"))
}

/// The (repository, account) a permissions-config request is about, once the broker's credential is checked.
fn cloud_target(
    state: &mut FakeState,
    headers: &HeaderMap,
    workspace: &str,
    slug: &str,
    account: &str,
) -> Result<(String, String), Box<Response>> {
    if let Some(refused) = admit_cloud(state, headers, "permissions") {
        return Err(Box::new(refused));
    }
    let repo = format!("{workspace}/{slug}");
    if !CLOUD_REPOS.contains(&repo.as_str()) {
        return Err(Box::new(cloud_error(404, &format!("Repository {repo} not found"))));
    }
    if !CLOUD_ACCOUNTS.iter().any(|(_, id)| *id == account) {
        return Err(Box::new(cloud_error(404, &format!("User {account} not found"))));
    }
    Ok((repo, account.to_string()))
}

fn cloud_permission(repo: &str, account: &str, permission: &str) -> Value {
    json!({"type": "repository_user_permission", "permission": permission, "user": {"type": "user", "account_id": account},
           "repository": {"type": "repository", "full_name": repo}})
}

async fn cloud_user(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let mut state = state.lock().unwrap();
    if let Some(refused) = admit_cloud(&mut state, &headers, "user") {
        return refused;
    }
    Json(json!({"type": "user", "account_id": "557058:jit-bot", "display_name": "jit bot"})).into_response()
}

async fn cloud_get(State(state): State<Shared>, Path((ws, slug, account)): Path<(String, String, String)>, headers: HeaderMap) -> Response {
    let mut state = state.lock().unwrap();
    let key = match cloud_target(&mut state, &headers, &ws, &slug, &account) {
        Ok(key) => key,
        Err(refused) => return *refused,
    };
    match state.repo_perms.get(&key) {
        Some(p) => Json(cloud_permission(&key.0, &account, p)).into_response(),
        None => cloud_error(404, "No permission found for this user"),
    }
}

async fn cloud_put(
    State(state): State<Shared>,
    Path((ws, slug, account)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let mut state = state.lock().unwrap();
    let key = match cloud_target(&mut state, &headers, &ws, &slug, &account) {
        Ok(key) => key,
        Err(refused) => return *refused,
    };
    let permission = serde_json::from_str::<Value>(&body).ok().and_then(|b| b["permission"].as_str().map(str::to_string));
    let Some(permission) = permission.filter(|p| ["read", "write", "admin"].contains(&p.as_str())) else {
        return cloud_error(400, "permission must be one of read, write, admin");
    };
    let created = state.repo_perms.insert(key.clone(), permission.clone()).is_none();
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    (status, Json(cloud_permission(&key.0, &account, &permission))).into_response()
}

async fn cloud_delete(
    State(state): State<Shared>,
    Path((ws, slug, account)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let mut state = state.lock().unwrap();
    let key = match cloud_target(&mut state, &headers, &ws, &slug, &account) {
        Ok(key) => key,
        Err(refused) => return *refused,
    };
    match state.repo_perms.remove(&key) {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => cloud_error(404, "No permission found for this user"),
    }
}

async fn unknown(State(state): State<Shared>, method: Method, uri: Uri) -> Response {
    state.lock().unwrap().violations.push(format!("{method} {uri}: not an endpoint the provider should call"));
    StatusCode::NOT_FOUND.into_response()
}
