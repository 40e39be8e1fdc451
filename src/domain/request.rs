//! The request state machine and the grant's lifetime.
//!
//! ```text
//! pending ──approve (N distinct approvers)──▶ approved ──▶ grant
//!    ├────deny (any one approver)──────────▶ denied
//!    ├────cancel (the requester)───────────▶ canceled
//!    └────nobody decided within the TTL────▶ expired
//! ```
//!
//! Every function here is pure: it takes the current state and the actor and
//! says what happens, and the broker applies that atomically. A decision is
//! only ever taken from `pending`, so a race between two approvers ends in
//! exactly one decision: the second one finds the request no longer pending.

use super::refs::RefScope;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::policy::{Rule, Subject};

/// Who `decided_by` names when a rule auto-approved a request.
pub const POLICY_DECIDER: &str = "policy";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RequestStatus {
    Pending,
    Approved,
    Denied,
    Canceled,
    Expired,
}

impl RequestStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestStatus::Pending => "pending",
            RequestStatus::Approved => "approved",
            RequestStatus::Denied => "denied",
            RequestStatus::Canceled => "canceled",
            RequestStatus::Expired => "expired",
        }
    }
}

impl fmt::Display for RequestStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RequestStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pending" => Ok(RequestStatus::Pending),
            "approved" => Ok(RequestStatus::Approved),
            "denied" => Ok(RequestStatus::Denied),
            "canceled" => Ok(RequestStatus::Canceled),
            "expired" => Ok(RequestStatus::Expired),
            other => Err(format!("unknown status `{other}`: expected pending, approved, denied, canceled or expired")),
        }
    }
}

/// What a decision needs to know about a request.
#[derive(Debug, Clone, Copy)]
pub struct RequestState<'a> {
    pub requester: &'a str,
    pub status: RequestStatus,
    pub created_at: DateTime<Utc>,
    /// Distinct users who approved so far.
    pub approvals: &'a [String],
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecisionError {
    #[error("request is already {0}")]
    NotPending(RequestStatus),
    #[error("request expired: nobody decided within the pending time limit")]
    PendingExpired,
    #[error("you cannot approve or deny your own request")]
    SelfDecision,
    #[error("you are not an approver for this request (approvers: {0})")]
    NotApprover(String),
    #[error("only the requester can cancel a request")]
    NotRequester,
    #[error("grant {0} was not break-glass: it was approved before it was given, so there is nothing to review")]
    NotBreakGlass(i64),
    #[error("already reviewed by {by} ({outcome})")]
    AlreadyReviewed { by: String, outcome: ReviewOutcome },
    #[error("you cannot review your own break-glass grant")]
    SelfReview,
    #[error("flagging a break-glass grant needs --comment saying what was wrong")]
    CommentRequired,
}

/// What an approver of a break-glass rule found, looking back at a grant
/// that was given without them (`jit review`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReviewOutcome {
    /// The emergency was real and the access fitting.
    Approved,
    /// Something was wrong: the comment says what, for whoever follows up.
    Flagged,
}

impl ReviewOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewOutcome::Approved => "approved",
            ReviewOutcome::Flagged => "flagged",
        }
    }
}

impl fmt::Display for ReviewOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ReviewOutcome {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "approved" => Ok(ReviewOutcome::Approved),
            "flagged" => Ok(ReviewOutcome::Flagged),
            other => Err(format!("unknown review `{other}`: expected approved or flagged")),
        }
    }
}

/// What a review needs to know about a break-glass request.
#[derive(Debug, Clone, Copy)]
pub struct ReviewState<'a> {
    pub id: i64,
    pub requester: &'a str,
    pub break_glass: bool,
    /// Who reviewed it already, and how.
    pub reviewed: Option<(&'a str, ReviewOutcome)>,
}

/// A review by `who` under `rule` (the break-glass rule that governs the
/// request now): only of a break-glass request, once, by one of the rule's
/// approvers who is not the requester; a flag says why.
pub fn review(state: &ReviewState, rule: &Rule, who: &Subject, outcome: ReviewOutcome, comment: Option<&str>) -> Result<(), DecisionError> {
    if !state.break_glass {
        return Err(DecisionError::NotBreakGlass(state.id));
    }
    if let Some((by, outcome)) = state.reviewed {
        return Err(DecisionError::AlreadyReviewed { by: by.to_string(), outcome });
    }
    if who.name == state.requester {
        return Err(DecisionError::SelfReview);
    }
    if !rule.may_approve(who) {
        return Err(DecisionError::NotApprover(rule.approvers_display().join(", ")));
    }
    if outcome == ReviewOutcome::Flagged && comment.is_none_or(|c| c.trim().is_empty()) {
        return Err(DecisionError::CommentRequired);
    }
    Ok(())
}

/// How often an unreviewed break-glass grant is brought up again.
pub const REVIEW_REMINDER_EVERY: chrono::Duration = chrono::Duration::hours(24);

/// Whether an unreviewed break-glass grant given at `granted_at`, last
/// reminded of at `reminded_at`, is due for its daily reminder at `now`.
pub fn review_reminder_due(granted_at: DateTime<Utc>, reminded_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    now >= reminded_at.unwrap_or(granted_at) + REVIEW_REMINDER_EVERY
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApprovalOutcome {
    /// The approval is recorded; more are needed (`missing`: from whom, for
    /// a rule that asks each of several principals; else empty).
    Recorded { have: u32, need: u32, missing: Vec<(String, u32)> },
    /// This approver had already approved; nothing changes.
    AlreadyCounted { have: u32, need: u32 },
    /// The last needed approval: the request is approved and the grant is born.
    Approved,
}

fn check_open(state: &RequestState, pending_ttl: chrono::Duration, now: DateTime<Utc>) -> Result<(), DecisionError> {
    if state.status != RequestStatus::Pending {
        return Err(DecisionError::NotPending(state.status));
    }
    if is_pending_expired(state.created_at, pending_ttl, now) {
        return Err(DecisionError::PendingExpired);
    }
    Ok(())
}

fn check_decider(state: &RequestState, rule: &Rule, who: &Subject) -> Result<(), DecisionError> {
    if who.name == state.requester {
        return Err(DecisionError::SelfDecision);
    }
    if !rule.may_approve(who) {
        return Err(DecisionError::NotApprover(rule.approvers_display().join(", ")));
    }
    Ok(())
}

/// Whether a request created at `created_at` has waited past the pending TTL.
pub fn is_pending_expired(created_at: DateTime<Utc>, pending_ttl: chrono::Duration, now: DateTime<Utc>) -> bool {
    now >= created_at + pending_ttl
}

/// An approval by `who` under `rule` (the rule that governs the request now).
/// `earlier`: who approved before, with their groups now, for a rule that
/// asks several principals (each approver counts once, in one of them).
pub fn approve(
    state: &RequestState,
    rule: &Rule,
    who: &Subject,
    earlier: &[Subject],
    pending_ttl: chrono::Duration,
    now: DateTime<Utc>,
) -> Result<ApprovalOutcome, DecisionError> {
    check_open(state, pending_ttl, now)?;
    check_decider(state, rule, who)?;
    let need = rule.approvals_required.max(1);
    if !rule.quorums.is_empty() {
        let mut all: Vec<Subject> = earlier.iter().filter(|s| s.name != state.requester).copied().collect();
        let have = |missing: &[(String, u32)]| need - missing.iter().map(|(_, n)| n).sum::<u32>();
        if state.approvals.iter().any(|a| a == who.name) {
            let before = crate::domain::policy::missing(&rule.quorums, &all);
            return Ok(ApprovalOutcome::AlreadyCounted { have: have(&before), need });
        }
        all.push(*who);
        let after = crate::domain::policy::missing(&rule.quorums, &all);
        return Ok(if after.is_empty() {
            ApprovalOutcome::Approved
        } else {
            ApprovalOutcome::Recorded { have: have(&after), need, missing: after }
        });
    }
    let distinct = |names: &[String]| {
        let mut v: Vec<&String> = names.iter().filter(|n| n.as_str() != state.requester).collect();
        v.sort();
        v.dedup();
        v.len() as u32
    };
    let have = distinct(state.approvals);
    if state.approvals.iter().any(|a| a == who.name) {
        return Ok(ApprovalOutcome::AlreadyCounted { have, need });
    }
    if have + 1 >= need {
        Ok(ApprovalOutcome::Approved)
    } else {
        Ok(ApprovalOutcome::Recorded { have: have + 1, need, missing: Vec::new() })
    }
}

/// A denial by `who`: one approver's no ends the request.
pub fn deny(
    state: &RequestState,
    rule: &Rule,
    who: &Subject,
    pending_ttl: chrono::Duration,
    now: DateTime<Utc>,
) -> Result<(), DecisionError> {
    check_open(state, pending_ttl, now)?;
    check_decider(state, rule, who)
}

/// A cancel: only the requester, only while pending.
pub fn cancel(state: &RequestState, who: &str) -> Result<(), DecisionError> {
    if state.status != RequestStatus::Pending {
        return Err(DecisionError::NotPending(state.status));
    }
    if who != state.requester {
        return Err(DecisionError::NotRequester);
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum GrantStatus {
    Active,
    Expired,
    Revoked,
}

impl fmt::Display for GrantStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GrantStatus::Active => "active",
            GrantStatus::Expired => "expired",
            GrantStatus::Revoked => "revoked",
        })
    }
}

impl GrantStatus {
    /// `has expired` / `was revoked` / `is active`, for sentences about a grant.
    pub fn phrase(self) -> &'static str {
        match self {
            GrantStatus::Active => "is active",
            GrantStatus::Expired => "has expired",
            GrantStatus::Revoked => "was revoked",
        }
    }
}

/// A grant as the pile-up rules see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrantWindow<'a> {
    pub level: super::level::Level,
    pub expires_at: DateTime<Utc>,
    pub refs: &'a RefScope,
}

/// Whether a live grant already gives what is asked (`level` on `refs` for
/// `duration` from `now`): then the request returns that grant instead of
/// piling up a second one.
pub fn covers(live: GrantWindow, level: super::level::Level, refs: &RefScope, duration: chrono::Duration, now: DateTime<Utc>) -> bool {
    live.level.covers(level) && live.refs.covers(refs) && live.expires_at >= now + duration
}

/// Whether a new grant makes an older live one of the same user on the same
/// repo redundant (no higher level, no fewer refs, ending no later): the
/// older one ends, "superseded", so one repo never holds a pile of grants. An
/// extension is such a request, approved like any other.
pub fn supersedes(new: GrantWindow, old: GrantWindow) -> bool {
    new.level.covers(old.level) && new.refs.covers(old.refs) && new.expires_at >= old.expires_at
}

/// A grant is live while `now < expires_at` and nobody revoked it; the clock,
/// not the reaper, decides, so expiry is exact.
pub fn grant_status(expires_at: DateTime<Utc>, revoked_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> GrantStatus {
    match revoked_at {
        Some(r) if r < expires_at => GrantStatus::Revoked,
        _ if now >= expires_at => GrantStatus::Expired,
        Some(_) => GrantStatus::Revoked,
        None => GrantStatus::Active,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::policy::{Policy, RawRule};

    fn rule(approvals: u32) -> Rule {
        let src = format!(
            "[[rule]]\nname = \"r\"\nrepos = [\"demo\"]\nlevels = [\"write\"]\nrequesters = [\"*\"]\napprovers = [\"group:reviewers\", \"alice\"]\napprovals = {approvals}\nmax_duration = \"8h\"\n"
        );
        #[derive(serde::Deserialize)]
        struct F {
            rule: Vec<toml::Spanned<RawRule>>,
        }
        let f: F = toml::from_str(&src).unwrap();
        Policy::from_raw(f.rule, &src).unwrap().rules()[0].clone()
    }

    fn now() -> DateTime<Utc> {
        "2026-11-25T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn a_break_glass_grant_is_reviewed_once_by_another_approver_and_a_flag_says_why() {
        let r = rule(1);
        let reviewers = vec!["reviewers".to_string()];
        let bob = Subject { name: "bob", groups: &reviewers };
        let open = ReviewState { id: 7, requester: "erin", break_glass: true, reviewed: None };
        assert_eq!(review(&open, &r, &bob, ReviewOutcome::Approved, None), Ok(()));
        assert_eq!(review(&open, &r, &bob, ReviewOutcome::Flagged, Some("no incident INC-77")), Ok(()));
        assert_eq!(review(&open, &r, &bob, ReviewOutcome::Flagged, None), Err(DecisionError::CommentRequired));
        assert_eq!(review(&open, &r, &bob, ReviewOutcome::Flagged, Some("  ")), Err(DecisionError::CommentRequired));
        let erin = Subject { name: "erin", groups: &reviewers };
        assert_eq!(review(&open, &r, &erin, ReviewOutcome::Approved, None), Err(DecisionError::SelfReview));
        let mallory = Subject { name: "mallory", groups: &[] };
        assert!(matches!(review(&open, &r, &mallory, ReviewOutcome::Approved, None), Err(DecisionError::NotApprover(_))));
        let done = ReviewState { reviewed: Some(("alice", ReviewOutcome::Flagged)), ..open };
        assert_eq!(
            review(&done, &r, &bob, ReviewOutcome::Approved, None),
            Err(DecisionError::AlreadyReviewed { by: "alice".into(), outcome: ReviewOutcome::Flagged })
        );
        let ordinary = ReviewState { break_glass: false, ..open };
        assert_eq!(review(&ordinary, &r, &bob, ReviewOutcome::Approved, None), Err(DecisionError::NotBreakGlass(7)));
    }

    #[test]
    fn an_unreviewed_break_glass_grant_is_brought_up_once_a_day() {
        let granted = now();
        let day = chrono::Duration::hours(24);
        assert!(!review_reminder_due(granted, None, granted + day - chrono::Duration::seconds(1)));
        assert!(review_reminder_due(granted, None, granted + day));
        let reminded = granted + day;
        assert!(!review_reminder_due(granted, Some(reminded), reminded + chrono::Duration::hours(23)));
        assert!(review_reminder_due(granted, Some(reminded), reminded + day));
        assert_eq!(ReviewOutcome::from_str("flagged"), Ok(ReviewOutcome::Flagged));
        assert_eq!(ReviewOutcome::Approved.to_string(), "approved");
        assert!(ReviewOutcome::from_str("ok").unwrap_err().contains("approved or flagged"));
    }

    #[test]
    fn where_a_rule_asks_several_groups_each_must_be_met() {
        let src = "[[rule]]\nname = \"prod\"\nrepos = [\"demo\"]\nlevels = [\"write\"]\nrequesters = [\"*\"]\napprovals = [{ from = \"group:reviewers\" }, { from = \"group:security\" }]\nmax_duration = \"8h\"\n";
        #[derive(serde::Deserialize)]
        struct F {
            rule: Vec<toml::Spanned<RawRule>>,
        }
        let f: F = toml::from_str(src).unwrap();
        let r = Policy::from_raw(f.rule, src).unwrap().rules()[0].clone();
        let (reviewers, security) = (vec!["reviewers".to_string()], vec!["security".to_string()]);
        let bob = Subject { name: "bob", groups: &reviewers };
        let carol = Subject { name: "carol", groups: &reviewers };
        let sam = Subject { name: "sam", groups: &security };
        let security_short = vec![("group:security".to_string(), 1)];
        assert_eq!(
            approve(&pending(&[]), &r, &bob, &[], TTL, now()),
            Ok(ApprovalOutcome::Recorded { have: 1, need: 2, missing: security_short.clone() })
        );
        let after_bob = ["bob".to_string()];
        assert_eq!(
            approve(&pending(&after_bob), &r, &carol, &[bob], TTL, now()),
            Ok(ApprovalOutcome::Recorded { have: 1, need: 2, missing: security_short.clone() }),
            "a second reviewer does not stand in for security"
        );
        assert_eq!(approve(&pending(&after_bob), &r, &sam, &[bob], TTL, now()), Ok(ApprovalOutcome::Approved));
        assert_eq!(approve(&pending(&after_bob), &r, &bob, &[bob], TTL, now()), Ok(ApprovalOutcome::AlreadyCounted { have: 1, need: 2 }));
        let nobody = Subject { name: "mallory", groups: &[] };
        assert!(matches!(approve(&pending(&[]), &r, &nobody, &[], TTL, now()), Err(DecisionError::NotApprover(_))));
    }

    const TTL: chrono::Duration = chrono::Duration::hours(1);

    fn pending<'a>(approvals: &'a [String]) -> RequestState<'a> {
        RequestState { requester: "alice", status: RequestStatus::Pending, created_at: now() - chrono::Duration::minutes(5), approvals }
    }

    fn reviewer(name: &str) -> (String, Vec<String>) {
        (name.to_string(), vec!["reviewers".to_string()])
    }

    #[test]
    fn one_approval_approves_a_one_of_m_rule() {
        let (bob, g) = reviewer("bob");
        let who = Subject { name: &bob, groups: &g };
        assert_eq!(approve(&pending(&[]), &rule(1), &who, &[], TTL, now()), Ok(ApprovalOutcome::Approved));
    }

    #[test]
    fn n_of_m_needs_distinct_approvers() {
        let r = rule(2);
        let (bob, g) = reviewer("bob");
        let (carol, _) = reviewer("carol");
        let bob_s = Subject { name: &bob, groups: &g };
        let carol_s = Subject { name: &carol, groups: &g };
        assert_eq!(
            approve(&pending(&[]), &r, &bob_s, &[], TTL, now()),
            Ok(ApprovalOutcome::Recorded { have: 1, need: 2, missing: vec![] })
        );
        let after_bob = vec!["bob".to_string()];
        assert_eq!(approve(&pending(&after_bob), &r, &bob_s, &[], TTL, now()), Ok(ApprovalOutcome::AlreadyCounted { have: 1, need: 2 }));
        assert_eq!(approve(&pending(&after_bob), &r, &carol_s, &[], TTL, now()), Ok(ApprovalOutcome::Approved));
    }

    #[test]
    fn nobody_decides_their_own_request() {
        // alice is named as an approver in the rule, and still cannot approve her own request.
        let g = vec!["reviewers".to_string()];
        let alice = Subject { name: "alice", groups: &g };
        assert_eq!(approve(&pending(&[]), &rule(1), &alice, &[], TTL, now()), Err(DecisionError::SelfDecision));
        assert_eq!(deny(&pending(&[]), &rule(1), &alice, TTL, now()), Err(DecisionError::SelfDecision));
    }

    #[test]
    fn outsiders_cannot_decide() {
        let g: Vec<String> = vec!["developers".into()];
        let dave = Subject { name: "dave", groups: &g };
        let err = approve(&pending(&[]), &rule(1), &dave, &[], TTL, now()).unwrap_err();
        assert!(matches!(err, DecisionError::NotApprover(ref who) if who.contains("group:reviewers")), "{err}");
        assert!(deny(&pending(&[]), &rule(1), &dave, TTL, now()).is_err());
    }

    #[test]
    fn decisions_only_from_pending() {
        let (bob, g) = reviewer("bob");
        let who = Subject { name: &bob, groups: &g };
        for status in [RequestStatus::Approved, RequestStatus::Denied, RequestStatus::Canceled, RequestStatus::Expired] {
            let state = RequestState { status, ..pending(&[]) };
            assert_eq!(approve(&state, &rule(1), &who, &[], TTL, now()), Err(DecisionError::NotPending(status)));
            assert_eq!(deny(&state, &rule(1), &who, TTL, now()), Err(DecisionError::NotPending(status)));
            assert_eq!(cancel(&state, "alice"), Err(DecisionError::NotPending(status)));
        }
    }

    #[test]
    fn pending_past_ttl_cannot_be_decided() {
        let (bob, g) = reviewer("bob");
        let who = Subject { name: &bob, groups: &g };
        let old = RequestState { created_at: now() - chrono::Duration::minutes(61), ..pending(&[]) };
        assert_eq!(approve(&old, &rule(1), &who, &[], TTL, now()), Err(DecisionError::PendingExpired));
        assert!(is_pending_expired(now() - TTL, TTL, now()));
        assert!(!is_pending_expired(now() - TTL + chrono::Duration::seconds(1), TTL, now()));
    }

    #[test]
    fn only_the_requester_cancels() {
        assert_eq!(cancel(&pending(&[]), "alice"), Ok(()));
        assert_eq!(cancel(&pending(&[]), "bob"), Err(DecisionError::NotRequester));
    }

    #[test]
    fn grant_lifetime_is_exact() {
        let exp = now() + chrono::Duration::hours(1);
        assert_eq!(grant_status(exp, None, now()), GrantStatus::Active);
        assert_eq!(grant_status(exp, None, exp - chrono::Duration::milliseconds(1)), GrantStatus::Active);
        assert_eq!(grant_status(exp, None, exp), GrantStatus::Expired);
        assert_eq!(grant_status(exp, Some(now()), now()), GrantStatus::Revoked);
        assert_eq!(grant_status(exp, Some(now()), exp + chrono::Duration::hours(1)), GrantStatus::Revoked);
        // A revocation at or after the end changes nothing: it had expired.
        assert_eq!(grant_status(exp, Some(exp), exp + chrono::Duration::hours(1)), GrantStatus::Expired);
        assert_eq!(grant_status(exp, Some(exp + chrono::Duration::minutes(5)), exp + chrono::Duration::hours(1)), GrantStatus::Expired);
        let words: Vec<String> =
            [GrantStatus::Active, GrantStatus::Expired, GrantStatus::Revoked].iter().map(|s| format!("{s}: {}", s.phrase())).collect();
        assert_eq!(words, ["active: is active", "expired: has expired", "revoked: was revoked"]);
    }

    #[test]
    fn a_live_grant_covers_what_it_outlasts_at_its_level_or_below() {
        use crate::domain::Level;
        let hour = chrono::Duration::hours(1);
        let all = RefScope::all();
        let hotfix = RefScope::parse(&["hotfix/*"]).unwrap();
        let write_2h = GrantWindow { level: Level::Write, expires_at: now() + chrono::Duration::hours(2), refs: &all };
        assert!(covers(write_2h, Level::Read, &all, hour, now()));
        assert!(covers(write_2h, Level::Write, &hotfix, chrono::Duration::hours(2), now()));
        assert!(!covers(write_2h, Level::Write, &all, chrono::Duration::hours(3), now()), "longer: an extension, decided by policy");
        assert!(!covers(write_2h, Level::Admin, &all, hour, now()), "higher: a new request");
        let scoped = GrantWindow { refs: &hotfix, ..write_2h };
        assert!(!covers(scoped, Level::Write, &all, hour, now()), "more refs: a new request");
    }

    #[test]
    fn a_new_grant_supersedes_only_what_it_fully_replaces() {
        use crate::domain::Level;
        let at = |h: i64| now() + chrono::Duration::hours(h);
        let all = RefScope::all();
        let hotfix = RefScope::parse(&["hotfix/*"]).unwrap();
        let new = GrantWindow { level: Level::Write, expires_at: at(4), refs: &all };
        assert!(supersedes(new, GrantWindow { level: Level::Read, expires_at: at(1), refs: &all }));
        assert!(supersedes(new, GrantWindow { level: Level::Write, expires_at: at(4), refs: &hotfix }));
        assert!(!supersedes(new, GrantWindow { level: Level::Read, expires_at: at(8), refs: &all }), "the old one lasts longer");
        assert!(!supersedes(new, GrantWindow { level: Level::Admin, expires_at: at(1), refs: &all }), "the old one is higher");
        let narrow = GrantWindow { refs: &hotfix, ..new };
        assert!(!supersedes(narrow, GrantWindow { level: Level::Read, expires_at: at(1), refs: &all }), "the old one has more refs");
    }

    #[test]
    fn statuses_parse_and_display() {
        for s in ["pending", "approved", "denied", "canceled", "expired"] {
            assert_eq!(s.parse::<RequestStatus>().unwrap().to_string(), s);
        }
        assert!("done".parse::<RequestStatus>().is_err());
    }
}
