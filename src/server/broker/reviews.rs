//! Break-glass reviews: an approver of the break-glass rule looks back at a
//! grant that was given at once and records approved or flagged (`jit
//! review`); those not yet reviewed are listed, and brought up again daily
//! (a `review_reminder` event, which notifications carry) until they are.

use chrono::{DateTime, Utc};

use super::{Broker, BrokerError, BrokerResult, Listing, event, subject};
use crate::domain::audit::{Action, BROKER_ACTOR};
use crate::domain::policy::Refusal;
use crate::domain::records::{Page, RequestFilter, RequestRecord, Review, UserRecord};
use crate::domain::request::{self, DecisionError, ReviewOutcome, ReviewState};
use crate::store::StoreError;

/// How often the reaper looks for break-glass grants due a reminder.
const REMINDER_PASS_EVERY: chrono::Duration = chrono::Duration::minutes(1);

/// The domain's view of a stored request under review (`grant_id` names it in refusals).
fn review_state(req: &RequestRecord, grant_id: i64) -> ReviewState<'_> {
    ReviewState {
        id: grant_id,
        requester: &req.requester,
        break_glass: req.break_glass,
        reviewed: req.review.as_ref().map(|r| (r.by.as_str(), r.outcome)),
    }
}

impl Broker {
    /// Records `caller`'s review of break-glass grant `grant_id`.
    pub async fn review_grant(
        &self,
        caller: &UserRecord,
        grant_id: i64,
        outcome: ReviewOutcome,
        comment: Option<&str>,
    ) -> BrokerResult<RequestRecord> {
        let comment = super::requests::check_text("comment", comment)?;
        let grant = self.get_grant(caller, grant_id).await?;
        let req = self.store.request(grant.request_id).await?.ok_or_else(|| BrokerError::NotFound(format!("grant {grant_id}")))?;
        if !req.break_glass {
            return Err(DecisionError::NotBreakGlass(grant_id).into());
        }
        // The rule that granted it, by name: a break-glass grant is reviewed
        // by that rule's approvers as the policy names them now.
        let in_force = self.live();
        let rule = in_force
            .policy
            .rule(&req.rule)
            .filter(|r| r.break_glass)
            .ok_or_else(|| BrokerError::PolicyChanged(Refusal::NoBreakGlass { repo: req.repo.clone(), level: req.level }))?;
        request::review(&review_state(&req, grant_id), rule, &subject(caller), outcome, comment.as_deref())?;
        let now = self.now();
        let mut reviewed = event(&caller.name, Action::BreakGlassReviewed, &req.repo, req.level);
        reviewed.request_id = Some(req.id);
        reviewed.grant_id = Some(grant_id);
        reviewed.detail = Some(match &comment {
            Some(c) => format!("{outcome}: {c}"),
            None => outcome.to_string(),
        });
        let review = Review { by: caller.name.clone(), at: now, outcome, comment };
        match self.store.review(req.id, &review, reviewed).await {
            Ok(record) => {
                tracing::info!(grant = grant_id, by = %caller.name, %outcome, "break-glass grant reviewed");
                Ok(record)
            }
            // Someone reviewed it in between: say who.
            Err(StoreError::Conflict) => {
                let now_read = self.store.request(req.id).await?;
                match now_read.and_then(|r| r.review) {
                    Some(r) => Err(DecisionError::AlreadyReviewed { by: r.by, outcome: r.outcome }.into()),
                    None => Err(BrokerError::Conflict(format!("grant {grant_id} changed while it was reviewed; try again"))),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Whether `caller` may review break-glass request `req` now (what the
    /// approval page offers a review form for; the review checks again).
    pub fn may_review(&self, caller: &UserRecord, req: &RequestRecord) -> bool {
        let state = review_state(req, req.grant.as_ref().map_or(req.id, |g| g.id));
        // The review's own rule, asked of an approval (which needs no comment).
        self.live()
            .policy
            .rule(&req.rule)
            .filter(|rule| rule.break_glass)
            .is_some_and(|rule| request::review(&state, rule, &subject(caller), ReviewOutcome::Approved, None).is_ok())
    }

    /// Break-glass requests not yet reviewed: those someone else made that
    /// the caller may review, or with `all` (admins only) every one.
    pub async fn unreviewed(&self, caller: &UserRecord, all: bool, page: Page) -> BrokerResult<Listing<RequestRecord>> {
        if all && !caller.admin {
            return Err(BrokerError::Forbidden("only admins can list every unreviewed break-glass grant".into()));
        }
        let filter = RequestFilter { unreviewed: true, page, ..RequestFilter::default() };
        let records = self.store.requests(&filter).await?;
        let next_before = page.next(records.iter().map(|r| r.id));
        let items = records.into_iter().filter(|r| all || self.may_review(caller, r)).collect();
        Ok(Listing { items, next_before })
    }

    /// Brings up again every break-glass grant still unreviewed a day after
    /// it was given (or last brought up): one `review_reminder` event each,
    /// which the notifications carry. At most one pass a minute; brokers
    /// sharing a database remind once between them. How many it reminded of.
    pub async fn remind_unreviewed(&self) -> BrokerResult<usize> {
        let now = self.now();
        {
            let mut last = self.reminders_checked.lock().expect("not poisoned");
            if last.is_some_and(|at: DateTime<Utc>| now < at + REMINDER_PASS_EVERY) {
                return Ok(0);
            }
            *last = Some(now);
        }
        let mut reminded = 0;
        let mut before = None;
        loop {
            let page = Page { before, limit: Page::MAX_LIMIT };
            let filter = RequestFilter { unreviewed: true, page, ..RequestFilter::default() };
            let records = self.store.requests(&filter).await?;
            for r in &records {
                let granted_at = r.grant.as_ref().map(|g| g.granted_at).unwrap_or(r.created_at);
                if !request::review_reminder_due(granted_at, r.reminded_at, now) {
                    continue;
                }
                let mut e = event(BROKER_ACTOR, Action::ReviewReminder, &r.repo, r.level);
                e.request_id = Some(r.id);
                e.grant_id = r.grant.as_ref().map(|g| g.id);
                let days = (now - granted_at).num_days();
                e.detail = Some(format!(
                    "break-glass grant of {} unreviewed for {days} day(s): {} (rule `{}`)",
                    r.requester,
                    r.grant.as_ref().map(|g| format!("jit review {}", g.id)).unwrap_or_default(),
                    r.rule
                ));
                if self.store.remind(r.id, r.reminded_at, now, e).await? {
                    reminded += 1;
                }
            }
            match page.next(records.iter().map(|r| r.id)) {
                Some(next) => before = Some(next),
                None => break,
            }
        }
        Ok(reminded)
    }
}
