//! The broker's operations: what happens when someone requests, approves,
//! denies, cancels, waits or revokes. Handlers parse HTTP and call these;
//! the rules come from `domain`, persistence from the [`Store`].
//!
//! Every state change is decided on a fresh read and applied with a
//! compare-and-set; on a lost race the operation re-reads and decides again, so
//! concurrent approvers end in exactly one decision. After each change the
//! broker bumps a [`watch`] counter that wakes every long-poll waiter, which
//! then re-reads its request: no waiter sleeps through a decision.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use tokio::sync::{Notify, watch};

use super::config::ServerConfig;
use super::error::ApiError;
use crate::api::{self, codes};
use crate::domain::audit::{Action, NewEvent, timestamp};
use crate::domain::policy::{Rule, Subject};
use crate::domain::repo::{self, RepoSpec};
use crate::domain::request::{self, ApprovalOutcome, RequestState, RequestStatus, grant_status};
use crate::domain::{AccessDuration, Level};
use crate::providers::Provider;
use crate::providers::gateway::Gateway;
use crate::store::{ApprovalRecord, GrantRecord, NewRequest, RequestChange, RequestRecord, Store, StoreError, UserRecord};

/// The actor name the broker itself uses in the audit log.
pub const BROKER_ACTOR: &str = "broker";

const MAX_ATTEMPTS: usize = 8;
const MAX_TEXT: usize = 2000;

pub struct Broker {
    pub store: Arc<dyn Store>,
    pub config: ServerConfig,
    pub gateway: Gateway,
    /// Names of the repos the gateway serves (found under `gateway_dir` at start).
    pub gateway_repos: Vec<String>,
    changes: watch::Sender<u64>,
    pub reaper_wake: Notify,
    /// Set at shutdown so long-polls return at once instead of holding it up.
    closing: AtomicBool,
}

fn subject(user: &UserRecord) -> Subject<'_> {
    Subject { name: &user.name, groups: &user.groups }
}

fn check_text(field: &str, value: &Option<String>) -> Result<Option<String>, ApiError> {
    match value.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) if v.len() > MAX_TEXT => Err(ApiError::bad_input(format!("{field} is too long (at most {MAX_TEXT} bytes)"))),
        Some(v) if v.chars().any(|c| c.is_control() && c != '\n' && c != '\t') => {
            Err(ApiError::bad_input(format!("{field} contains control characters")))
        }
        Some(v) => Ok(Some(v.to_string())),
    }
}

/// What a decision makes of a fresh read of a request.
enum Step {
    Apply(RequestChange),
    Keep(RequestRecord),
}

/// An audit event about `req` by `actor`.
fn event_for(actor: &str, action: Action, req: &RequestRecord) -> NewEvent {
    let mut e = NewEvent::new(actor, action);
    e.repo = Some(req.repo.clone());
    e.level = Some(req.level);
    e
}

/// The domain's view of a stored request (`approvers` from [`RequestRecord::approver_names`]).
fn state_of<'a>(req: &'a RequestRecord, approvers: &'a [String]) -> RequestState<'a> {
    RequestState { requester: &req.requester, status: req.status, created_at: req.created_at, approvals: approvers }
}

/// A change to `req` decided on what was just read (its approval count is the compare-and-set).
fn change_for(
    req: &RequestRecord,
    now: DateTime<Utc>,
    decide: Option<(RequestStatus, String, Option<String>)>,
    events: Vec<NewEvent>,
) -> RequestChange {
    RequestChange { request_id: req.id, expect_approvals: req.approvals.len(), add_approval: None, decide, grant: None, at: now, events }
}

impl Broker {
    pub fn new(store: Arc<dyn Store>, config: ServerConfig, gateway_repos: Vec<String>) -> Broker {
        Broker {
            gateway: Gateway::new(store.clone(), config.credential_ttl.as_chrono()),
            gateway_repos,
            store,
            config,
            changes: watch::Sender::new(0),
            reaper_wake: Notify::new(),
            closing: AtomicBool::new(false),
        }
    }

    pub fn now() -> DateTime<Utc> {
        Utc::now()
    }

    /// Wakes every long-poll waiter and the reaper.
    pub fn notify_change(&self) {
        self.changes.send_modify(|v| *v = v.wrapping_add(1));
        self.reaper_wake.notify_one();
    }

    /// Releases every long-poll waiter; called when the server shuts down.
    pub fn close(&self) {
        self.closing.store(true, Ordering::SeqCst);
        self.notify_change();
    }

    pub fn pending_ttl(&self) -> chrono::Duration {
        self.config.pending_ttl.as_chrono()
    }

    /// The provider that makes grants on `repo` real, if any does.
    pub fn provider_for(&self, repo: &str) -> Option<&dyn Provider> {
        self.gateway_repos.iter().any(|r| r == repo).then_some(&self.gateway as &dyn Provider)
    }

    pub fn repo(&self, name: &str) -> Option<&RepoSpec> {
        self.config.repos.iter().find(|r| r.name == name)
    }

    /// The groups of a request's requester, as policy sees them now.
    async fn requester(&self, name: &str) -> Result<UserRecord, ApiError> {
        Ok(self.store.user(name).await?.unwrap_or(UserRecord {
            name: name.to_string(),
            groups: Vec::new(),
            admin: false,
            created_at: Self::now(),
        }))
    }

    /// The rule that governs a stored request under the current policy.
    fn rule_governing(&self, req: &RequestRecord, requester: &UserRecord) -> Result<&Rule, ApiError> {
        self.config.policy.rule_for(&req.repo, req.level, &subject(requester)).map_err(|refusal| {
            ApiError::new(StatusCode::FORBIDDEN, codes::POLICY_DENIED, format!("policy no longer allows this request: {refusal}"))
        })
    }

    /// Whether `caller` may see a request: its requester, an admin, or an approver of its repo and level.
    pub fn may_view(&self, caller: &UserRecord, req: &RequestRecord) -> bool {
        caller.admin || caller.name == req.requester || self.config.policy.is_approver_for(&req.repo, req.level, &subject(caller))
    }

    pub async fn load_visible(&self, caller: &UserRecord, id: i64) -> Result<RequestRecord, ApiError> {
        match self.store.request(id).await? {
            Some(r) if self.may_view(caller, &r) => Ok(r),
            _ => Err(ApiError::not_found(format!("request {id}"))),
        }
    }

    pub async fn create_request(&self, caller: &UserRecord, body: api::CreateRequest) -> Result<RequestRecord, ApiError> {
        let level: Level = body.level.trim().parse().map_err(|e: crate::domain::level::UnknownLevel| ApiError::bad_input(e.to_string()))?;
        let duration: AccessDuration =
            body.duration.parse().map_err(|e: crate::domain::duration::DurationError| ApiError::bad_input(e.to_string()))?;
        let reason = check_text("reason", &body.reason)?;
        let repo = repo::resolve(&body.repo, &self.config.repos)?.name.clone();
        let rule = self.config.policy.check_request(&repo, level, duration, reason.as_deref(), &subject(caller))?;
        let now = Self::now();
        let new = NewRequest {
            requester: caller.name.clone(),
            repo: repo.clone(),
            level,
            duration_secs: duration.secs(),
            reason: reason.clone(),
            rule: rule.name.clone(),
            approvals_required: rule.approvals_required,
            created_at: now,
        };
        let mut requested = NewEvent::new(&caller.name, Action::Requested);
        requested.repo = Some(repo.clone());
        requested.level = Some(level);
        requested.detail = Some(match &reason {
            Some(r) => format!("for {duration}: {r}"),
            None => format!("for {duration}"),
        });
        let mut events = vec![requested];
        let grant = if rule.auto_approve {
            let mut granted = NewEvent::new(BROKER_ACTOR, Action::Granted);
            granted.repo = Some(repo.clone());
            granted.level = Some(level);
            granted.detail = Some(format!("auto-approved by rule `{}` until {}", rule.name, timestamp(now + duration.as_chrono())));
            events.push(granted);
            Some((now, now + duration.as_chrono()))
        } else {
            None
        };
        let record = self.store.create_request(&new, grant, events).await?;
        tracing::info!(request = record.id, requester = %caller.name, %repo, %level, status = %record.status, "request created");
        self.notify_change();
        Ok(record)
    }

    /// Reads request `id` (and its requester, for policy), lets `decide` turn
    /// it into a change, applies that change and wakes the waiters; on a lost
    /// race it reads and decides again. A request found pending past its TTL
    /// is expired on the spot and the decision refused.
    async fn decide_and_apply(
        &self,
        id: i64,
        mut decide: impl FnMut(RequestRecord, &UserRecord, DateTime<Utc>) -> Result<Step, ApiError>,
    ) -> Result<RequestRecord, ApiError> {
        for _ in 0..MAX_ATTEMPTS {
            let req = self.store.request(id).await?.ok_or_else(|| ApiError::not_found(format!("request {id}")))?;
            let requester = self.requester(&req.requester).await?;
            let change = match decide(req, &requester, Self::now()) {
                Ok(Step::Keep(unchanged)) => return Ok(unchanged),
                Ok(Step::Apply(change)) => change,
                Err(e) if e.code == codes::REQUEST_EXPIRED => {
                    Box::pin(self.expire(id)).await?;
                    return Err(e);
                }
                Err(e) => return Err(e),
            };
            match self.store.apply(change).await {
                Ok(record) => {
                    self.notify_change();
                    return Ok(record);
                }
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ApiError::new(StatusCode::CONFLICT, codes::CONFLICT, "the request kept changing; try again"))
    }

    pub async fn approve(&self, caller: &UserRecord, id: i64, comment: Option<String>) -> Result<RequestRecord, ApiError> {
        let comment = check_text("comment", &comment)?;
        let record = self
            .decide_and_apply(id, |req, requester, now| {
                let rule = self.rule_governing(&req, requester)?;
                let approvers = req.approver_names();
                let state = state_of(&req, &approvers);
                let outcome = request::approve(&state, rule, &subject(caller), self.pending_ttl(), now)?;
                let mut vote = event_for(&caller.name, Action::Approved, &req);
                let mut change = change_for(&req, now, None, vec![]);
                change.add_approval = Some(ApprovalRecord { approver: caller.name.clone(), comment: comment.clone(), at: now });
                match outcome {
                    ApprovalOutcome::AlreadyCounted { .. } => return Ok(Step::Keep(req)),
                    ApprovalOutcome::Recorded { have, need } => {
                        let note = comment.as_deref().map(|c| format!(": {c}")).unwrap_or_default();
                        vote.detail = Some(format!("approval {have} of {need}{note}"));
                        change.events.push(vote);
                    }
                    ApprovalOutcome::Approved => {
                        let expires_at = now + chrono::Duration::seconds(req.duration_secs as i64);
                        vote.detail = comment.clone();
                        let mut granted = event_for(BROKER_ACTOR, Action::Granted, &req);
                        granted.detail = Some(format!("to {} until {}", req.requester, timestamp(expires_at)));
                        change.events = vec![vote, granted];
                        change.decide = Some((RequestStatus::Approved, caller.name.clone(), comment.clone()));
                        change.grant = Some((now, expires_at));
                    }
                }
                Ok(Step::Apply(change))
            })
            .await?;
        tracing::info!(request = id, approver = %caller.name, status = %record.status, "approval recorded");
        Ok(record)
    }

    pub async fn deny(&self, caller: &UserRecord, id: i64, reason: String) -> Result<RequestRecord, ApiError> {
        let reason = check_text("reason", &Some(reason))?.ok_or_else(|| ApiError::bad_input("a deny needs a reason"))?;
        let record = self
            .decide_and_apply(id, |req, requester, now| {
                let rule = self.rule_governing(&req, requester)?;
                let approvers = req.approver_names();
                let state = state_of(&req, &approvers);
                request::deny(&state, rule, &subject(caller), self.pending_ttl(), now)?;
                let mut event = event_for(&caller.name, Action::Denied, &req);
                event.detail = Some(reason.clone());
                Ok(Step::Apply(change_for(
                    &req,
                    now,
                    Some((RequestStatus::Denied, caller.name.clone(), Some(reason.clone()))),
                    vec![event],
                )))
            })
            .await?;
        tracing::info!(request = id, by = %caller.name, "request denied");
        Ok(record)
    }

    pub async fn cancel(&self, caller: &UserRecord, id: i64) -> Result<RequestRecord, ApiError> {
        self.decide_and_apply(id, |req, _, now| {
            if !self.may_view(caller, &req) {
                return Err(ApiError::not_found(format!("request {id}")));
            }
            let approvers = req.approver_names();
            let state = state_of(&req, &approvers);
            request::cancel(&state, &caller.name)?;
            let event = event_for(&caller.name, Action::Canceled, &req);
            Ok(Step::Apply(change_for(&req, now, Some((RequestStatus::Canceled, caller.name.clone(), None)), vec![event])))
        })
        .await
    }

    /// Expires a request that is still pending past the TTL; a no-op otherwise.
    pub async fn expire(&self, id: i64) -> Result<(), ApiError> {
        let outcome = self
            .decide_and_apply(id, |req, _, now| {
                if req.status != RequestStatus::Pending || !request::is_pending_expired(req.created_at, self.pending_ttl(), now) {
                    return Ok(Step::Keep(req));
                }
                let mut event = event_for(BROKER_ACTOR, Action::Expired, &req);
                event.detail = Some(format!("nobody decided within {}", self.config.pending_ttl));
                tracing::info!(request = id, "pending request expired");
                Ok(Step::Apply(change_for(&req, now, Some((RequestStatus::Expired, BROKER_ACTOR.to_string(), None)), vec![event])))
            })
            .await;
        match outcome {
            Err(e) if e.status == StatusCode::NOT_FOUND => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// Long-poll: returns as soon as the request's status differs from
    /// `while_status`, or when `timeout` passes, with the request as it is then.
    pub async fn wait(
        &self,
        caller: &UserRecord,
        id: i64,
        while_status: RequestStatus,
        timeout: Duration,
    ) -> Result<RequestRecord, ApiError> {
        // Subscribe before the first read, so a change between the read and
        // the wait still wakes us.
        let mut changes = self.changes.subscribe();
        let deadline = tokio::time::Instant::now() + timeout.min(self.config.max_wait);
        loop {
            let req = self.load_visible(caller, id).await?;
            if req.status != while_status || self.closing.load(Ordering::SeqCst) {
                return Ok(req);
            }
            // Wake at the pending deadline too, so a waiter sees `expired` on time.
            let mut wake = deadline;
            if req.status == RequestStatus::Pending {
                let until = req.created_at + self.pending_ttl() - Self::now();
                let until = until.to_std().unwrap_or(Duration::ZERO);
                wake = wake.min(tokio::time::Instant::now() + until);
            }
            tokio::select! {
                changed = changes.changed() => {
                    if changed.is_err() {
                        return Ok(req);
                    }
                }
                _ = tokio::time::sleep_until(wake) => {
                    if wake >= deadline {
                        return self.load_visible(caller, id).await;
                    }
                    self.expire(id).await?;
                }
            }
        }
    }

    /// Revoke by the grantee, an approver of the repo and level, or an admin.
    pub async fn revoke(&self, caller: &UserRecord, id: i64, reason: Option<String>) -> Result<GrantRecord, ApiError> {
        let reason = check_text("reason", &reason)?;
        let grant = self.store.grant(id).await?.ok_or_else(|| ApiError::not_found(format!("grant {id}")))?;
        let allowed =
            caller.admin || caller.name == grant.user || self.config.policy.is_approver_for(&grant.repo, grant.level, &subject(caller));
        if !allowed {
            return Err(ApiError::not_found(format!("grant {id}")));
        }
        let now = Self::now();
        let mut event = NewEvent::new(&caller.name, Action::Revoked);
        event.request_id = Some(grant.request_id);
        event.grant_id = Some(id);
        event.repo = Some(grant.repo.clone());
        event.level = Some(grant.level);
        event.detail = reason;
        match self.store.revoke_grant(id, &caller.name, now, event).await {
            Ok(g) => {
                tracing::info!(grant = id, by = %caller.name, "grant revoked");
                self.notify_change();
                Ok(g)
            }
            Err(StoreError::Conflict) => Err(ApiError::new(
                StatusCode::CONFLICT,
                codes::GRANT_ENDED,
                format!("grant {id} has already ended: it {}", grant_status(grant.expires_at, grant.revoked_at, now).phrase()),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Tells providers about grants that ended and records expiries; returns
    /// how many grants were closed. Run by the reaper, safe to run anywhere.
    pub async fn end_grants(&self) -> Result<usize, StoreError> {
        let now = Self::now();
        let mut closed = 0;
        for grant in self.store.grants_to_end(now).await? {
            if let Some(provider) = self.provider_for(&grant.repo)
                && let Err(e) = provider.revoke(&grant).await
            {
                tracing::warn!(grant = grant.id, error = %e, "provider revoke failed; will retry");
                continue;
            }
            let event = grant.revoked_at.is_none().then(|| {
                let mut e = NewEvent::new(BROKER_ACTOR, Action::GrantExpired);
                e.request_id = Some(grant.request_id);
                e.grant_id = Some(grant.id);
                e.repo = Some(grant.repo.clone());
                e.level = Some(grant.level);
                e
            });
            if self.store.mark_grant_ended(grant.id, now, event).await? {
                closed += 1;
            }
        }
        Ok(closed)
    }

    /// Expires every request pending past the TTL; returns how many.
    pub async fn expire_stale(&self) -> Result<usize, ApiError> {
        let ids = self.store.stale_pending(Self::now() - self.pending_ttl()).await?;
        for id in &ids {
            self.expire(*id).await?;
        }
        Ok(ids.len())
    }

    pub fn api_grant(&self, g: &GrantRecord) -> api::Grant {
        api::Grant {
            id: g.id,
            request_id: g.request_id,
            user: g.user.clone(),
            repo: g.repo.clone(),
            level: g.level.to_string(),
            clone_url: self.repo(&g.repo).and_then(|r| r.url.as_ref()).map(|u| u.to_string()),
            granted_at: g.granted_at,
            expires_at: g.expires_at,
            status: grant_status(g.expires_at, g.revoked_at, Self::now()),
            revoked_at: g.revoked_at,
            revoked_by: g.revoked_by.clone(),
        }
    }

    pub fn api_request(&self, r: &RequestRecord) -> api::AccessRequest {
        let approvers = self.config.policy.rule(&r.rule).map(|rule| rule.approvers_display()).unwrap_or_default();
        api::AccessRequest {
            id: r.id,
            status: r.status,
            requester: r.requester.clone(),
            repo: r.repo.clone(),
            level: r.level.to_string(),
            duration: AccessDuration::from_secs(r.duration_secs).map(|d| d.to_string()).unwrap_or_else(|_| format!("{}s", r.duration_secs)),
            duration_secs: r.duration_secs,
            reason: r.reason.clone(),
            created_at: r.created_at,
            pending_until: r.created_at + self.pending_ttl(),
            rule: r.rule.clone(),
            approvals_required: r.approvals_required,
            approvers,
            approvals: r.approvals.iter().map(|a| api::Approval { by: a.approver.clone(), at: a.at, comment: a.comment.clone() }).collect(),
            decided_at: r.decided_at,
            decided_by: r.decided_by.clone(),
            decision_note: r.decision_note.clone(),
            grant: r.grant.as_ref().map(|g| self.api_grant(g)),
        }
    }
}
