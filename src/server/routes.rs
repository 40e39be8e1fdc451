//! The HTTP surface: routes under `/v1`, each a thin handler that parses,
//! calls the [`Broker`] and renders. See `api` for the wire types.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use super::auth::{AdminCaller, Caller};
use super::broker::Broker;
use super::error::{ApiError, ApiJson, OptionalJson};
use crate::api;
use crate::domain::audit::{Action, GENESIS, NewEvent, verify_chain};
use crate::domain::policy::Subject;
use crate::domain::request::RequestStatus;
use crate::domain::token::{TOKEN_PREFIX, TokenHash, generate};
use crate::store::{RequestFilter, UserRecord};

type AppState = State<Arc<Broker>>;

pub fn router(broker: Arc<Broker>) -> Router {
    let max_body = broker.config.max_body_bytes;
    Router::new()
        .route("/healthz", get(healthz))
        .route("/v1/whoami", get(whoami))
        .route("/v1/repos", get(repos))
        .route("/v1/users", get(list_users).post(add_user))
        .route("/v1/users/{name}", axum::routing::delete(remove_user))
        .route("/v1/users/{name}/token", post(rotate_token))
        .route("/v1/requests", get(list_requests).post(create_request))
        .route("/v1/requests/{id}", get(get_request))
        .route("/v1/requests/{id}/approve", post(approve))
        .route("/v1/requests/{id}/deny", post(deny))
        .route("/v1/requests/{id}/cancel", post(cancel))
        .route("/v1/grants", get(list_grants))
        .route("/v1/grants/{id}", get(get_grant))
        .route("/v1/grants/{id}/revoke", post(revoke))
        .route("/v1/audit", get(audit))
        .route("/v1/audit/verify", get(audit_verify))
        .route("/v1/grants/{id}/credentials", post(mint_credential))
        .fallback(|| async { ApiError::not_found("route") })
        .layer(DefaultBodyLimit::max(max_body))
        // Git traffic streams packs of any size, so it has no body limit.
        .merge(
            Router::new().route("/git/{*path}", get(super::gateway::serve).post(super::gateway::serve)).layer(DefaultBodyLimit::disable()),
        )
        .with_state(broker)
}

/// Path ids are numbers; anything else is a 400 that says so, not axum's text.
fn parse_id(kind: &str, raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::bad_input(format!("invalid {kind} id `{raw}`: expected a positive number")))
}

fn api_user(u: &UserRecord) -> api::User {
    api::User { name: u.name.clone(), groups: u.groups.clone(), admin: u.admin, created_at: u.created_at }
}

async fn healthz(State(broker): AppState) -> Result<Json<api::Health>, ApiError> {
    broker.store.admin_count().await?;
    Ok(Json(api::Health { status: "ok".into(), version: env!("CARGO_PKG_VERSION").into() }))
}

async fn whoami(Caller(user): Caller) -> Json<api::User> {
    Json(api_user(&user))
}

async fn repos(State(broker): AppState, Caller(_): Caller) -> Json<Vec<api::Repo>> {
    Json(broker.config.repos.iter().map(|r| api::Repo { name: r.name.clone(), clone_url: r.url.as_ref().map(|u| u.to_string()) }).collect())
}

async fn list_users(State(broker): AppState, AdminCaller(_): AdminCaller) -> Result<Json<Vec<api::User>>, ApiError> {
    Ok(Json(broker.store.users().await?.iter().map(api_user).collect()))
}

fn check_name(kind: &str, name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok { Ok(()) } else { Err(ApiError::bad_input(format!("invalid {kind} name `{name}`: use 1-64 letters, digits, `-`, `_` or `.`"))) }
}

async fn add_user(
    State(broker): AppState,
    AdminCaller(admin): AdminCaller,
    ApiJson(body): ApiJson<api::NewUser>,
) -> Result<(StatusCode, Json<api::IssuedToken>), ApiError> {
    check_name("user", &body.name)?;
    if body.name == super::broker::BROKER_ACTOR {
        return Err(ApiError::bad_input(format!("`{}` is reserved for the broker itself", body.name)));
    }
    for g in &body.groups {
        check_name("group", g)?;
    }
    let mut groups = body.groups.clone();
    groups.sort();
    groups.dedup();
    let user = UserRecord { name: body.name.clone(), groups, admin: body.admin, created_at: Broker::now() };
    let token = generate(TOKEN_PREFIX);
    let mut event = NewEvent::new(&admin.name, Action::UserAdded);
    event.detail = Some(format!("{} groups=[{}]{}", user.name, user.groups.join(","), if user.admin { " admin" } else { "" }));
    broker.store.add_user(&user, &TokenHash::of(token.expose()), event).await?;
    tracing::info!(user = %user.name, by = %admin.name, "user added");
    Ok((StatusCode::CREATED, Json(api::IssuedToken { user: api_user(&user), token })))
}

async fn remove_user(State(broker): AppState, AdminCaller(admin): AdminCaller, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    if name == admin.name {
        return Err(ApiError::bad_input("you cannot remove yourself; ask another admin"));
    }
    let mut event = NewEvent::new(&admin.name, Action::UserRemoved);
    event.detail = Some(name.clone());
    broker.store.remove_user(&name, event).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn rotate_token(
    State(broker): AppState,
    AdminCaller(admin): AdminCaller,
    Path(name): Path<String>,
) -> Result<Json<api::IssuedToken>, ApiError> {
    let user = broker.store.user(&name).await?.ok_or_else(|| ApiError::not_found(format!("user `{name}`")))?;
    let token = generate(TOKEN_PREFIX);
    let mut event = NewEvent::new(&admin.name, Action::TokenRotated);
    event.detail = Some(name.clone());
    broker.store.set_token(&name, &TokenHash::of(token.expose()), event).await?;
    Ok(Json(api::IssuedToken { user: api_user(&user), token }))
}

async fn create_request(
    State(broker): AppState,
    Caller(user): Caller,
    ApiJson(body): ApiJson<api::CreateRequest>,
) -> Result<(StatusCode, Json<api::AccessRequest>), ApiError> {
    let record = broker.create_request(&user, body).await?;
    Ok((StatusCode::CREATED, Json(broker.api_request(&record))))
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    #[serde(default)]
    mine: bool,
    #[serde(default)]
    reviewable: bool,
    status: Option<String>,
}

async fn list_requests(
    State(broker): AppState,
    Caller(user): Caller,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<api::AccessRequest>>, ApiError> {
    let status = q.status.as_deref().map(str::parse::<RequestStatus>).transpose().map_err(ApiError::bad_input)?;
    broker.expire_stale().await?;
    let filter = RequestFilter { requester: q.mine.then(|| user.name.clone()), status, limit: None };
    let subject = Subject { name: &user.name, groups: &user.groups };
    let records = broker.store.requests(&filter).await?;
    let mut out = Vec::new();
    for r in records.iter().filter(|r| broker.may_view(&user, r)) {
        if q.reviewable {
            // Reviewable: someone else's request whose governing rule lets me decide.
            let requester = broker.store.user(&r.requester).await?;
            let groups = requester.map(|u| u.groups).unwrap_or_default();
            let rule = broker.config.policy.rule_for(&r.repo, r.level, &Subject { name: &r.requester, groups: &groups });
            let mine_to_review = r.requester != user.name && rule.is_ok_and(|rule| rule.may_approve(&subject));
            if !mine_to_review {
                continue;
            }
        }
        out.push(broker.api_request(r));
    }
    Ok(Json(out))
}

#[derive(Debug, Deserialize)]
struct WaitQuery {
    /// Hold the call open up to this long (`30s`, `2m`) for the status to change.
    wait: Option<String>,
    /// The status the client last saw; the call returns once it differs. Default `pending`.
    status: Option<String>,
}

async fn get_request(
    State(broker): AppState,
    Caller(user): Caller,
    Path(id): Path<String>,
    Query(q): Query<WaitQuery>,
) -> Result<Json<api::AccessRequest>, ApiError> {
    let id = parse_id("request", &id)?;
    let record = match q.wait {
        None => {
            broker.expire(id).await?;
            broker.load_visible(&user, id).await?
        }
        Some(wait) => {
            let timeout = humantime::parse_duration(&wait)
                .map_err(|e| ApiError::bad_input(format!("invalid wait `{wait}`: {e}; expected e.g. 30s")))?;
            let status = q.status.as_deref().unwrap_or("pending").parse::<RequestStatus>().map_err(ApiError::bad_input)?;
            broker.wait(&user, id, status, timeout).await?
        }
    };
    Ok(Json(broker.api_request(&record)))
}

async fn approve(
    State(broker): AppState,
    Caller(user): Caller,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<api::ApproveBody>,
) -> Result<Json<api::AccessRequest>, ApiError> {
    let id = parse_id("request", &id)?;
    let comment = body.comment;
    Ok(Json(broker.api_request(&broker.approve(&user, id, comment).await?)))
}

async fn deny(
    State(broker): AppState,
    Caller(user): Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<api::DenyBody>,
) -> Result<Json<api::AccessRequest>, ApiError> {
    let id = parse_id("request", &id)?;
    Ok(Json(broker.api_request(&broker.deny(&user, id, body.reason).await?)))
}

async fn cancel(State(broker): AppState, Caller(user): Caller, Path(id): Path<String>) -> Result<Json<api::AccessRequest>, ApiError> {
    let id = parse_id("request", &id)?;
    Ok(Json(broker.api_request(&broker.cancel(&user, id).await?)))
}

#[derive(Debug, Deserialize)]
struct GrantQuery {
    /// Admins only: every user's grants.
    #[serde(default)]
    all: bool,
    /// Only grants live now.
    #[serde(default)]
    live: bool,
}

async fn list_grants(
    State(broker): AppState,
    Caller(user): Caller,
    Query(q): Query<GrantQuery>,
) -> Result<Json<Vec<api::Grant>>, ApiError> {
    if q.all && !user.admin {
        return Err(ApiError::forbidden("only admins can list every user's grants"));
    }
    let who = (!q.all).then_some(user.name.as_str());
    let grants = broker.store.grants(who, q.live.then(Broker::now)).await?;
    Ok(Json(grants.iter().map(|g| broker.api_grant(g)).collect()))
}

async fn get_grant(State(broker): AppState, Caller(user): Caller, Path(id): Path<String>) -> Result<Json<api::Grant>, ApiError> {
    let id = parse_id("grant", &id)?;
    match broker.store.grant(id).await? {
        Some(g)
            if user.admin
                || g.user == user.name
                || broker.config.policy.is_approver_for(&g.repo, g.level, &Subject { name: &user.name, groups: &user.groups }) =>
        {
            Ok(Json(broker.api_grant(&g)))
        }
        _ => Err(ApiError::not_found(format!("grant {id}"))),
    }
}

async fn revoke(
    State(broker): AppState,
    Caller(user): Caller,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<api::RevokeBody>,
) -> Result<Json<api::Grant>, ApiError> {
    let id = parse_id("grant", &id)?;
    let reason = body.reason;
    let grant = broker.revoke(&user, id, reason).await?;
    Ok(Json(broker.api_grant(&grant)))
}

/// Mints a git credential for the caller's own live grant.
async fn mint_credential(
    State(broker): AppState,
    Caller(user): Caller,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<api::Credential>), ApiError> {
    let id = parse_id("grant", &id)?;
    let grant = match broker.store.grant(id).await? {
        Some(g) if g.user == user.name => g,
        _ => return Err(ApiError::not_found(format!("grant {id}"))),
    };
    let now = Broker::now();
    let status = crate::domain::request::grant_status(grant.expires_at, grant.revoked_at, now);
    if status != crate::domain::request::GrantStatus::Active {
        return Err(ApiError::new(StatusCode::CONFLICT, api::codes::GRANT_ENDED, format!("grant {id} {}", status.phrase()))
            .with_hint(format!("ask again: jit request {} --level {} --for DURATION", grant.repo, grant.level)));
    }
    let provider = broker.provider_for(&grant.repo).ok_or_else(|| {
        ApiError::new(StatusCode::CONFLICT, api::codes::CONFLICT, format!("no provider mints credentials for `{}`", grant.repo))
    })?;
    let minted = provider.mint(&grant, now).await.map_err(|e| {
        tracing::error!(grant = id, error = %e, "mint failed");
        ApiError::internal()
    })?;
    let mut event = NewEvent::new(&user.name, Action::CredentialMinted);
    event.request_id = Some(grant.request_id);
    event.grant_id = Some(grant.id);
    event.repo = Some(grant.repo.clone());
    event.level = Some(grant.level);
    event.detail = Some(format!("{} credential until {}", provider.name(), crate::domain::audit::timestamp(minted.expires_at)));
    broker.store.append_events(vec![event], now).await?;
    Ok((
        StatusCode::CREATED,
        Json(api::Credential {
            username: minted.username,
            password: minted.password,
            expires_at: minted.expires_at,
            grant: broker.api_grant(&grant),
        }),
    ))
}

#[derive(Debug, Deserialize)]
struct AuditQuery {
    /// Events after this sequence number (for paging); default 0.
    #[serde(default)]
    after: i64,
    /// At most this many events (default and cap 1000).
    limit: Option<u32>,
    /// Only events at or after this RFC 3339 time.
    since: Option<String>,
}

pub const AUDIT_PAGE: u32 = 1000;

async fn audit(
    State(broker): AppState,
    AdminCaller(_): AdminCaller,
    Query(q): Query<AuditQuery>,
) -> Result<Json<Vec<crate::domain::audit::AuditEvent>>, ApiError> {
    let limit = q.limit.unwrap_or(AUDIT_PAGE).clamp(1, AUDIT_PAGE);
    let since = q
        .since
        .as_deref()
        .map(|s| {
            chrono::DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&chrono::Utc))
                .map_err(|e| ApiError::bad_input(format!("invalid since `{s}`: {e}; expected an RFC 3339 time")))
        })
        .transpose()?;
    Ok(Json(broker.store.audit(q.after.max(0), since, limit).await?))
}

async fn audit_verify(State(broker): AppState, AdminCaller(_): AdminCaller) -> Result<Json<api::AuditVerification>, ApiError> {
    let (mut after, mut prev, mut total) = (0i64, GENESIS.to_string(), 0u64);
    loop {
        let page = broker.store.audit(after, None, AUDIT_PAGE).await?;
        let Some(last) = page.last().cloned() else {
            break;
        };
        match verify_chain(&page, after + 1, &prev) {
            Ok(n) => total += n,
            Err(e) => {
                return Ok(Json(api::AuditVerification { ok: false, events: total, error: Some(e.to_string()) }));
            }
        }
        after = last.seq;
        prev = last.hash;
    }
    Ok(Json(api::AuditVerification { ok: true, events: total, error: None }))
}
