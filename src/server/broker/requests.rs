//! Requests: create, list, read, long-poll, and the decisions on them
//! (approve, deny, cancel, expire), each decided on a fresh read and applied
//! with a compare-and-set.

use crate::domain::refs::RefScope;
use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Broker, BrokerError, BrokerResult, Listing, event, subject};
use crate::domain::audit::{Action, BROKER_ACTOR, NewEvent, timestamp};
use crate::domain::policy::{self, Refusal, Rule, Subject};
use crate::domain::records::{
    ApprovalRecord, GrantRecord, NewRequest, Page, RequestChange, RequestFilter, RequestRecord, Supersede, UserRecord,
};
use crate::domain::repo;
use crate::domain::request::{self, ApprovalOutcome, DecisionError, GrantWindow, RequestState, RequestStatus};
use crate::domain::{AccessDuration, Level};
use crate::store::StoreError;

const MAX_ATTEMPTS: usize = 8;

/// What `GET /v1/requests` asks for.
#[derive(Debug, Clone, Default)]
pub struct RequestQuery {
    /// Only the caller's own requests.
    pub mine: bool,
    /// Only someone else's requests the caller may decide.
    pub reviewable: bool,
    pub status: Option<RequestStatus>,
}

/// Checks a free-text field (`domain::text`): nothing that hides or reorders what approvers read.
pub(super) fn check_text(field: &str, value: Option<&str>) -> BrokerResult<Option<String>> {
    crate::domain::text::check(field, value).map_err(|e| BrokerError::InvalidInput(e.to_string()))
}

/// What a decision makes of a fresh read of a request.
#[allow(clippy::large_enum_variant)] // one short-lived value per decision
enum Step {
    Apply(RequestChange),
    Keep(RequestRecord),
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
    RequestChange {
        request_id: req.id,
        expect_approvals: req.approvals.len(),
        add_approval: None,
        decide,
        grant: None,
        at: now,
        events,
        supersede: Vec::new(),
    }
}

/// The live grants a new grant of `level` until `expires_at` makes redundant,
/// each with its `revoked` event; `ended` when their provider has nothing to
/// undo at a host.
fn superseded(live: &[GrantRecord], level: Level, refs: &RefScope, expires_at: DateTime<Utc>, ended: bool) -> Vec<Supersede> {
    let new = GrantWindow { level, expires_at, refs };
    live.iter()
        .filter(|g| request::supersedes(new, GrantWindow { level: g.level, expires_at: g.expires_at, refs: &g.refs }))
        .map(|g| {
            let mut e = event(BROKER_ACTOR, Action::Revoked, &g.repo, g.level);
            e.request_id = Some(g.request_id);
            e.grant_id = Some(g.id);
            e.detail = Some(format!("superseded by a new {level} grant until {}", timestamp(expires_at)));
            Supersede { grant_id: g.id, event: e, ended }
        })
        .collect()
}

/// What a new request is: an ordinary one, an extension of a live grant
/// (`jit extend`: the grant and the time added), or break-glass.
#[derive(Clone, Copy)]
enum Kind<'a> {
    Ordinary,
    Extends(&'a GrantRecord, AccessDuration),
    BreakGlass,
}

/// A new request, or the live grant's request that already covers it.
#[derive(Debug, Clone)]
pub struct Created {
    pub record: RequestRecord,
    /// True when nothing was created: a live grant already gives what was asked.
    pub existing: bool,
}

fn request_event(actor: &str, action: Action, req: &RequestRecord) -> NewEvent {
    event(actor, action, &req.repo, req.level)
}

impl Broker {
    /// The requester of a stored request as policy sees them now (a removed
    /// user keeps their name and no groups).
    async fn requester(&self, req: &RequestRecord) -> BrokerResult<UserRecord> {
        let current = match req.requester_id {
            Some(id) => self.store.user_by_id(id).await?,
            None => None,
        };
        Ok(current.unwrap_or(UserRecord {
            id: req.requester_id.unwrap_or_default(),
            name: req.requester.clone(),
            groups: Vec::new(),
            admin: false,
            created_at: self.now(),
            issuer: None,
            email: None,
        }))
    }

    /// The rule that governs a stored request under the current policy.
    fn rule_governing(&self, req: &RequestRecord, requester: &UserRecord) -> BrokerResult<Rule> {
        self.live().policy.rule_for(&req.repo, req.level, &subject(requester)).cloned().map_err(BrokerError::PolicyChanged)
    }

    /// What a pending request still lacks under a rule that asks several
    /// principals (`needs 1 more from group:security`); none otherwise.
    pub async fn still_needed(&self, req: &RequestRecord) -> BrokerResult<Option<String>> {
        // Every read of a request (long-polls too) asks: no store read unless a rule could need it.
        if req.status != RequestStatus::Pending || !self.live().policy.has_quorums() {
            return Ok(None);
        }
        let Some(requester) = self.store.user(&req.requester).await? else { return Ok(None) };
        let Ok(rule) = self.rule_governing(req, &requester) else { return Ok(None) };
        if rule.quorums.is_empty() {
            return Ok(None);
        }
        let mut approvers = Vec::new();
        for name in req.approver_names() {
            if let Some(user) = self.store.user(&name).await? {
                approvers.push((name, user.groups));
            }
        }
        let subjects: Vec<Subject> = approvers.iter().map(|(name, groups)| Subject { name, groups }).collect();
        let missing = policy::missing(&rule.quorums, &subjects);
        Ok((!missing.is_empty()).then(|| policy::missing_text(&missing)))
    }

    /// Whether `caller` may approve or deny `req` now: pending, someone
    /// else's, not yet approved by them, and the governing rule names them
    /// (what the approval page offers buttons for; the decision itself checks again).
    pub async fn may_decide(&self, caller: &UserRecord, req: &RequestRecord) -> BrokerResult<bool> {
        let approved_already = req.approvals.iter().any(|a| a.approver == caller.name);
        if req.status != RequestStatus::Pending || req.requester == caller.name || approved_already {
            return Ok(false);
        }
        let requester = self.requester(req).await?;
        Ok(self.rule_governing(req, &requester).is_ok_and(|rule| rule.may_approve(&subject(caller))))
    }

    /// Whether `caller` may see a request: its requester, an admin, or an approver of its repo and level.
    fn may_view(&self, caller: &UserRecord, req: &RequestRecord) -> bool {
        caller.admin || req.requester_id == Some(caller.id) || self.live().policy.is_approver_for(&req.repo, req.level, &subject(caller))
    }

    /// A request the caller may not see does not exist for them: approving,
    /// denying or cancelling it answers exactly as for a missing id, so ids
    /// cannot be probed.
    fn check_visible(&self, caller: &UserRecord, req: &RequestRecord) -> BrokerResult<()> {
        if self.may_view(caller, req) { Ok(()) } else { Err(BrokerError::NotFound(format!("request {}", req.id))) }
    }

    async fn load_visible(&self, caller: &UserRecord, id: i64) -> BrokerResult<RequestRecord> {
        match self.store.request(id).await? {
            Some(r) if self.may_view(caller, &r) => Ok(r),
            _ => Err(BrokerError::NotFound(format!("request {id}"))),
        }
    }

    /// A user's grants on `repo` that are live now.
    pub(super) async fn live_grants_on(&self, user_id: Option<i64>, repo: &str) -> BrokerResult<Vec<GrantRecord>> {
        let Some(user_id) = user_id else { return Ok(Vec::new()) };
        let now = self.now();
        let page = Page { before: None, limit: Page::MAX_LIMIT };
        Ok(self.store.grants(Some(user_id), Some(now), page).await?.into_iter().filter(|g| g.repo == repo).collect())
    }

    /// Creates a request, unless a live grant of the caller already covers it:
    /// then that grant's request comes back (`existing`) and nothing piles up.
    /// With `break_glass`, only a break-glass rule may govern it, and it is
    /// granted at once, to be reviewed afterwards by the rule's approvers.
    #[allow(clippy::too_many_arguments)] // the request's fields, as the API names them
    pub async fn create_request(
        &self,
        caller: &UserRecord,
        repo: &str,
        level: Level,
        duration: AccessDuration,
        reason: Option<&str>,
        refs: &[String],
        break_glass: bool,
    ) -> BrokerResult<Created> {
        let kind = if break_glass { Kind::BreakGlass } else { Kind::Ordinary };
        self.create(caller, repo, level, duration, reason, refs, kind).await
    }

    /// Asks to lengthen the caller's live grant `id` by `added` (`jit
    /// extend`): a request for the same repo, level and refs that lasts from
    /// now until `added` past the grant's end, decided by the policy like any
    /// other (the rule's `max_duration` counts from now). Approved, its grant
    /// supersedes this one and takes over its credentials, so git never
    /// sees a gap.
    pub async fn extend_grant(&self, caller: &UserRecord, id: i64, added: AccessDuration, reason: Option<&str>) -> BrokerResult<Created> {
        let grant = self.own_grant(caller, id).await?;
        let now = self.now();
        let status = request::grant_status(grant.expires_at, grant.revoked_at, now);
        if status != crate::domain::request::GrantStatus::Active {
            return Err(BrokerError::GrantEnded { id, status, repo: grant.repo, level: grant.level, superseded: false });
        }
        // What is left of it, to the second above, and then the time asked for.
        let left_ms = (grant.expires_at - now).num_milliseconds().max(0) as u64;
        let total = AccessDuration::from_secs(left_ms.div_ceil(1000) + added.secs())
            .map_err(|e| BrokerError::InvalidInput(format!("extending grant {id} by {added}: {e}")))?;
        let refs = grant.refs.to_vec();
        self.create(caller, &grant.repo, grant.level, total, reason, &refs, Kind::Extends(&grant, added)).await
    }

    #[allow(clippy::too_many_arguments)] // the request's fields, each named at both call sites
    async fn create(
        &self,
        caller: &UserRecord,
        repo: &str,
        level: Level,
        duration: AccessDuration,
        reason: Option<&str>,
        refs: &[String],
        kind: Kind<'_>,
    ) -> BrokerResult<Created> {
        let extends = match kind {
            Kind::Extends(grant, added) => Some((grant, added)),
            _ => None,
        };
        let break_glass = matches!(kind, Kind::BreakGlass);
        let reason = check_text("reason", reason)?;
        let asked = RefScope::parse(refs).map_err(|e| BrokerError::InvalidInput(e.to_string()))?;
        // One snapshot of the rules and repos for the whole request.
        let in_force = self.live();
        let repo = repo::resolve(repo, &in_force.repos)?.name.clone();
        let now = self.now();
        // What the grant would cover: the rule's refs, or fewer as asked.
        let governing = match break_glass {
            true => in_force.policy.break_glass_rule_for(&repo, level, &subject(caller)),
            false => in_force.policy.rule_for(&repo, level, &subject(caller)),
        };
        let scope = match governing {
            Ok(rule) => RefScope::narrow(&rule.refs, asked).map_err(|source| Refusal::Refs { rule: rule.name.clone(), source })?,
            Err(_) => asked,
        };
        let live = self.live_grants_on(Some(caller.id), &repo).await?;
        let covering = live
            .iter()
            .filter(|g| {
                let window = GrantWindow { level: g.level, expires_at: g.expires_at, refs: &g.refs };
                request::covers(window, level, &scope, duration.as_chrono(), now)
            })
            .max_by_key(|g| (g.level, g.expires_at));
        if let Some(grant) = covering {
            let record = self
                .store
                .request(grant.request_id)
                .await?
                .ok_or_else(|| BrokerError::NotFound(format!("request {}", grant.request_id)))?;
            tracing::info!(request = record.id, grant = grant.id, requester = %caller.name, %repo, "request covered by a live grant");
            return Ok(Created { record, existing: true });
        }
        let rule = match break_glass {
            true => in_force.policy.check_break_glass(&repo, level, duration, reason.as_deref(), &subject(caller))?,
            false => in_force.policy.check_request(&repo, level, duration, reason.as_deref(), &subject(caller))?,
        };
        let new = NewRequest {
            requester_id: caller.id,
            requester: caller.name.clone(),
            repo: repo.clone(),
            level,
            duration_secs: duration.secs(),
            reason: reason.clone(),
            rule: rule.name.clone(),
            approvals_required: rule.approvals_required,
            refs: scope.clone(),
            terms: crate::domain::records::Terms { from: rule.from.clone(), allow_deletes: rule.allow_deletes },
            created_at: now,
            extends_grant: extends.map(|(g, _)| g.id),
            break_glass,
        };
        let mut requested = match kind {
            Kind::Ordinary => event(&caller.name, Action::Requested, &repo, level),
            Kind::Extends(..) => event(&caller.name, Action::ExtensionRequested, &repo, level),
            Kind::BreakGlass => event(&caller.name, Action::BreakGlass, &repo, level),
        };
        let asked = match extends {
            None => format!("for {duration}"),
            Some((g, added)) => {
                format!("grant {} by {added}, to {} (for {duration} from now)", g.id, timestamp(now + duration.as_chrono()))
            }
        };
        requested.detail = Some(match &reason {
            Some(r) => format!("{asked}: {r}"),
            None => asked,
        });
        let mut events = vec![requested];
        let expires_at = now + duration.as_chrono();
        let (grant, supersede) = if rule.auto_approve || break_glass {
            let mut granted = event(BROKER_ACTOR, Action::Granted, &repo, level);
            granted.detail = Some(match break_glass {
                true => format!(
                    "break-glass, at once, by rule `{}` until {}; to be reviewed by {}",
                    rule.name,
                    timestamp(expires_at),
                    rule.approvers_display().join(", ")
                ),
                false => format!("auto-approved by rule `{}` until {}", rule.name, timestamp(expires_at)),
            });
            events.push(granted);
            (Some((now, expires_at)), superseded(&live, level, &scope, expires_at, !self.revokes_at_host(&repo)))
        } else {
            (None, Vec::new())
        };
        let host_to_tell = supersede.iter().any(|s| !s.ended);
        let record = self.store.create_request(&new, grant, events, supersede).await?;
        tracing::info!(request = record.id, requester = %caller.name, %repo, %level, status = %record.status, "request created");
        self.decided(&record, host_to_tell);
        Ok(Created { record, existing: false })
    }

    /// Requests the caller may see; with `reviewable`, only someone else's
    /// that the governing rule lets the caller decide.
    pub async fn list_requests(&self, caller: &UserRecord, query: &RequestQuery, page: Page) -> BrokerResult<Listing<RequestRecord>> {
        self.expire_stale().await?;
        let filter = RequestFilter { requester_id: query.mine.then_some(caller.id), status: query.status, unreviewed: false, page };
        let records = self.store.requests(&filter).await?;
        // The next page is decided before filtering what the caller may see,
        // so a page of someone else's requests does not end the listing.
        let next_before = page.next(records.iter().map(|r| r.id));
        // One read of everyone's groups, not one per request.
        let groups: HashMap<i64, Vec<String>> =
            if query.reviewable { self.store.users().await?.into_iter().map(|u| (u.id, u.groups)).collect() } else { HashMap::new() };
        let me = subject(caller);
        let in_force = self.live();
        let reviewable = |r: &RequestRecord| {
            let requester_groups = r.requester_id.and_then(|id| groups.get(&id)).map(Vec::as_slice).unwrap_or_default();
            let rule = in_force.policy.rule_for(&r.repo, r.level, &Subject { name: &r.requester, groups: requester_groups });
            r.requester != caller.name && rule.is_ok_and(|rule| rule.may_approve(&me))
        };
        let items = records.into_iter().filter(|r| self.may_view(caller, r) && (!query.reviewable || reviewable(r))).collect();
        Ok(Listing { items, next_before })
    }

    /// One request; a request found pending past its TTL is expired on the spot.
    pub async fn get_request(&self, caller: &UserRecord, id: i64) -> BrokerResult<RequestRecord> {
        self.expire(id).await?;
        self.load_visible(caller, id).await
    }

    /// Reads request `id` (and its requester, for policy), lets `decide` turn
    /// it into a change, applies that change and wakes the waiters; on a lost
    /// race it reads and decides again. A request found pending past its TTL
    /// is expired on the spot and the decision refused.
    async fn decide_and_apply(
        &self,
        id: i64,
        mut decide: impl FnMut(RequestRecord, &UserRecord, &[GrantRecord], DateTime<Utc>) -> BrokerResult<Step>,
    ) -> BrokerResult<RequestRecord> {
        for _ in 0..MAX_ATTEMPTS {
            let req = self.store.request(id).await?.ok_or_else(|| BrokerError::NotFound(format!("request {id}")))?;
            let requester = self.requester(&req).await?;
            let live =
                if req.status == RequestStatus::Pending { self.live_grants_on(req.requester_id, &req.repo).await? } else { Vec::new() };
            let change = match decide(req, &requester, &live, self.now()) {
                Ok(Step::Keep(unchanged)) => return Ok(unchanged),
                Ok(Step::Apply(change)) => change,
                Err(e @ BrokerError::Decision(DecisionError::PendingExpired)) => {
                    Box::pin(self.expire(id)).await?;
                    return Err(e);
                }
                Err(e) => return Err(e),
            };
            let host_to_tell = change.supersede.iter().any(|s| !s.ended);
            match self.store.apply(change).await {
                Ok(record) => {
                    self.decided(&record, host_to_tell);
                    return Ok(record);
                }
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(BrokerError::Conflict("the request kept changing; try again".into()))
    }

    pub async fn approve(&self, caller: &UserRecord, id: i64, comment: Option<&str>) -> BrokerResult<RequestRecord> {
        let comment = check_text("comment", comment)?;
        // Where a rule asks several groups, who approved before counts by
        // their groups now: one read of everyone's, only then.
        let groups: HashMap<String, Vec<String>> = if self.live().policy.has_quorums() {
            self.store.users().await?.into_iter().map(|u| (u.name, u.groups)).collect()
        } else {
            HashMap::new()
        };
        let record = self
            .decide_and_apply(id, |req, requester, live, now| {
                self.check_visible(caller, &req)?;
                let rule = self.rule_governing(&req, requester)?;
                let approvers = req.approver_names();
                let state = state_of(&req, &approvers);
                let earlier: Vec<Subject> = approvers
                    .iter()
                    .map(|name| Subject { name, groups: groups.get(name).map(Vec::as_slice).unwrap_or_default() })
                    .collect();
                let outcome = request::approve(&state, &rule, &subject(caller), &earlier, self.pending_ttl(), now)?;
                let mut vote = request_event(&caller.name, Action::Approved, &req);
                let mut change = change_for(&req, now, None, vec![]);
                change.add_approval = Some(ApprovalRecord { approver: caller.name.clone(), comment: comment.clone(), at: now });
                match outcome {
                    ApprovalOutcome::AlreadyCounted { .. } => return Ok(Step::Keep(req)),
                    ApprovalOutcome::Recorded { have, need, missing } => {
                        let note = comment.as_deref().map(|c| format!(": {c}")).unwrap_or_default();
                        let still = if missing.is_empty() { String::new() } else { format!("; {}", policy::missing_text(&missing)) };
                        vote.detail = Some(format!("approval {have} of {need}{still}{note}"));
                        change.events.push(vote);
                    }
                    ApprovalOutcome::Approved => {
                        let lasts = chrono::Duration::seconds(req.duration_secs as i64);
                        // An extension ends where it was asked to (D past the old end),
                        // however long the approval took; a request lasts from its approval.
                        let expires_at = match req.extends_grant {
                            Some(_) => (req.created_at + lasts).max(now),
                            None => now + lasts,
                        };
                        vote.detail = comment.clone();
                        let mut granted = request_event(BROKER_ACTOR, Action::Granted, &req);
                        granted.detail = Some(format!("to {} until {}", req.requester, timestamp(expires_at)));
                        change.events = vec![vote, granted];
                        change.decide = Some((RequestStatus::Approved, caller.name.clone(), comment.clone()));
                        change.grant = Some((now, expires_at));
                        change.supersede = superseded(live, req.level, &req.refs, expires_at, !self.revokes_at_host(&req.repo));
                    }
                }
                Ok(Step::Apply(change))
            })
            .await?;
        tracing::info!(request = id, approver = %caller.name, status = %record.status, "approval recorded");
        Ok(record)
    }

    pub async fn deny(&self, caller: &UserRecord, id: i64, reason: &str) -> BrokerResult<RequestRecord> {
        let reason = check_text("reason", Some(reason))?.ok_or_else(|| BrokerError::InvalidInput("a deny needs a reason".into()))?;
        let record = self
            .decide_and_apply(id, |req, requester, _, now| {
                self.check_visible(caller, &req)?;
                let rule = self.rule_governing(&req, requester)?;
                let approvers = req.approver_names();
                let state = state_of(&req, &approvers);
                request::deny(&state, &rule, &subject(caller), self.pending_ttl(), now)?;
                let mut denied = request_event(&caller.name, Action::Denied, &req);
                denied.detail = Some(reason.clone());
                let decision = (RequestStatus::Denied, caller.name.clone(), Some(reason.clone()));
                Ok(Step::Apply(change_for(&req, now, Some(decision), vec![denied])))
            })
            .await?;
        tracing::info!(request = id, by = %caller.name, "request denied");
        Ok(record)
    }

    pub async fn cancel(&self, caller: &UserRecord, id: i64) -> BrokerResult<RequestRecord> {
        self.decide_and_apply(id, |req, _, _, now| {
            self.check_visible(caller, &req)?;
            let approvers = req.approver_names();
            request::cancel(&state_of(&req, &approvers), &caller.name)?;
            let canceled = request_event(&caller.name, Action::Canceled, &req);
            Ok(Step::Apply(change_for(&req, now, Some((RequestStatus::Canceled, caller.name.clone(), None)), vec![canceled])))
        })
        .await
    }

    /// Expires a request that is still pending past the TTL; a no-op otherwise.
    pub async fn expire(&self, id: i64) -> BrokerResult<()> {
        let outcome = self
            .decide_and_apply(id, |req, _, _, now| {
                if req.status != RequestStatus::Pending || !request::is_pending_expired(req.created_at, self.pending_ttl(), now) {
                    return Ok(Step::Keep(req));
                }
                let mut expired = request_event(BROKER_ACTOR, Action::Expired, &req);
                expired.detail = Some(format!("nobody decided within {}", self.config.pending_ttl));
                tracing::info!(request = id, "pending request expired");
                Ok(Step::Apply(change_for(&req, now, Some((RequestStatus::Expired, BROKER_ACTOR.to_string(), None)), vec![expired])))
            })
            .await;
        match outcome {
            Err(BrokerError::NotFound(_)) => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// Expires every request pending past the TTL; returns how many.
    pub async fn expire_stale(&self) -> BrokerResult<usize> {
        let ids = self.store.stale_pending(self.now() - self.pending_ttl()).await?;
        for id in &ids {
            self.expire(*id).await?;
        }
        Ok(ids.len())
    }

    /// Long-poll: returns as soon as the request's status differs from
    /// `while_status`, or when `timeout` (capped by `max_wait`) passes, with
    /// the request as it is then.
    pub async fn wait(&self, caller: &UserRecord, id: i64, while_status: RequestStatus, timeout: Duration) -> BrokerResult<RequestRecord> {
        // Subscribe before the first read, so a change between the read and
        // the wait still wakes us.
        let mut changes = self.changes.subscribe();
        let mut decisions = self.waiters.subscribe(id);
        let deadline = tokio::time::Instant::now() + timeout.min(self.config.max_wait);
        let mut req = self.load_visible(caller, id).await?;
        let _open = self.metrics.long_poll();
        loop {
            if req.status != while_status || self.is_closing() {
                return Ok(req);
            }
            // Wake at the pending deadline too, so a waiter sees `expired` on time.
            let mut wake = deadline;
            let mut expires = false;
            if req.status == RequestStatus::Pending {
                let until = (req.created_at + self.pending_ttl() - self.now()).to_std().unwrap_or(Duration::ZERO);
                let at = tokio::time::Instant::now() + until;
                expires = at < wake;
                wake = wake.min(at);
            }
            // With other brokers on the database, read again now and then: a
            // decision there arrives by notification, which may be lost.
            let recheck = self.shares_database().then(|| tokio::time::Instant::now() + self.config.recheck);
            let recheck = recheck.filter(|at| *at < wake);
            if let Some(at) = recheck {
                wake = at;
            }
            tokio::select! {
                decided = decisions.next() => match decided {
                    // What the decision wrote: no read needed.
                    Some(record) => req = RequestRecord::clone(&record),
                    None => return Ok(req),
                },
                changed = changes.changed() => {
                    if changed.is_err() {
                        return Ok(req);
                    }
                    req = self.load_visible(caller, id).await?;
                }
                _ = tokio::time::sleep_until(wake) => {
                    if wake >= deadline {
                        return self.load_visible(caller, id).await;
                    }
                    if recheck.is_none() && expires {
                        self.expire(id).await?;
                    }
                    req = self.load_visible(caller, id).await?;
                }
            }
        }
    }
}
