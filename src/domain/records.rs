//! The broker's records: users, requests with their approvals, grants, and
//! what hangs off a grant (credentials, host tokens, failed attempts at a
//! host), with the few rules that belong to the data itself. The store keeps
//! them and the broker decides with them; neither owns them, so providers and
//! handlers read them without reaching into the store.

use chrono::{DateTime, Utc};

use crate::domain::Level;
use crate::domain::audit::{Action, NewEvent};
use crate::domain::refs::RefScope;
use crate::domain::request::RequestStatus;
use crate::domain::token::TokenHash;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// Stable for the user's life; a name reused after removal gets a new id.
    pub id: i64,
    pub name: String,
    pub groups: Vec<String>,
    pub admin: bool,
    pub created_at: DateTime<Utc>,
    /// The identity provider that vouches for this person (`None`: a local
    /// user, signed in with a token an admin issued).
    pub issuer: Option<String>,
    /// Where they are mailed (e-mail notifications), if known.
    pub email: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRecord {
    pub approver: String,
    pub comment: Option<String>,
    pub at: DateTime<Utc>,
}

/// A user to insert (the store assigns the id).
#[derive(Debug, Clone)]
pub struct NewUserRecord {
    pub name: String,
    pub groups: Vec<String>,
    pub admin: bool,
    pub email: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// What a request's rule allowed when it was made, kept on the request and
/// its grant: later changes to the policy never widen a live grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terms {
    /// The networks its grant may be used from (none: anywhere).
    pub from: Vec<ipnet::IpNet>,
    /// Whether its grant may delete refs below `admin`.
    pub allow_deletes: bool,
}

#[derive(Debug, Clone)]
pub struct NewRequest {
    pub requester_id: i64,
    pub requester: String,
    pub repo: String,
    pub level: Level,
    pub duration_secs: u64,
    pub reason: Option<String>,
    pub rule: String,
    pub approvals_required: u32,
    /// The refs its grant may update (the rule's, or narrower as asked).
    pub refs: RefScope,
    pub terms: Terms,
    pub created_at: DateTime<Utc>,
    /// The live grant this request would lengthen (`jit extend`), if any.
    pub extends_grant: Option<i64>,
    /// Granted at once under a break-glass rule, to be reviewed afterwards.
    pub break_glass: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    pub id: i64,
    /// `None` only for requests of users removed before ids existed.
    pub requester_id: Option<i64>,
    pub requester: String,
    pub repo: String,
    pub level: Level,
    pub duration_secs: u64,
    pub reason: Option<String>,
    pub rule: String,
    pub approvals_required: u32,
    pub refs: RefScope,
    /// `None` only for requests made before terms were kept.
    pub terms: Option<Terms>,
    pub status: RequestStatus,
    pub created_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decided_by: Option<String>,
    pub decision_note: Option<String>,
    pub approvals: Vec<ApprovalRecord>,
    pub grant: Option<GrantRecord>,
    /// The grant this request was made to lengthen (`jit extend`), if any.
    pub extends_grant: Option<i64>,
    /// Granted at once under a break-glass rule (`jit request --break-glass`).
    pub break_glass: bool,
    /// A break-glass request's review by an approver of its rule, once given.
    pub review: Option<Review>,
    /// When the last daily reminder of an unreviewed break-glass request was sent.
    pub reminded_at: Option<DateTime<Utc>>,
}

/// An approver's after-the-fact review of a break-glass grant (`jit review`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    pub by: String,
    pub at: DateTime<Utc>,
    pub outcome: crate::domain::request::ReviewOutcome,
    pub comment: Option<String>,
}

impl RequestRecord {
    /// Who approved so far, in order.
    pub fn approver_names(&self) -> Vec<String> {
        self.approvals.iter().map(|a| a.approver.clone()).collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRecord {
    pub id: i64,
    pub request_id: i64,
    /// `None` only for grants of users removed before ids existed.
    pub user_id: Option<i64>,
    pub user: String,
    pub repo: String,
    pub level: Level,
    /// The rule it was granted under (`None` only for grants older than this column).
    pub rule: Option<String>,
    /// The refs it may update.
    pub refs: RefScope,
    /// What it was decided under (`None` only for grants older than this:
    /// their rule is looked up by name).
    pub terms: Option<Terms>,
    pub granted_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoked_by: Option<String>,
    pub ended_at: Option<DateTime<Utc>>,
}

/// A decided change to one pending request, applied atomically.
#[derive(Debug, Clone)]
pub struct RequestChange {
    pub request_id: i64,
    /// Compare-and-set: the number of approvals the decision was made on.
    pub expect_approvals: usize,
    pub add_approval: Option<ApprovalRecord>,
    /// The new final status, with who decided and their note.
    pub decide: Option<(RequestStatus, String, Option<String>)>,
    /// Set when the request becomes approved: the grant's window.
    pub grant: Option<(DateTime<Utc>, DateTime<Utc>)>,
    pub at: DateTime<Utc>,
    /// Events to append; the store fills in the request id and the new grant's id.
    pub events: Vec<NewEvent>,
    /// Older grants the new one supersedes: each is ended (if still live) with its event.
    pub supersede: Vec<Supersede>,
}

/// An older grant that a new one supersedes.
#[derive(Debug, Clone)]
pub struct Supersede {
    pub grant_id: i64,
    /// Its `revoked` event.
    pub event: NewEvent,
    /// Its provider has nothing to undo at a host: it is marked ended in the
    /// same transaction, leaving the reaper nothing to do for it.
    pub ended: bool,
}

#[derive(Debug, Clone, Default)]
pub struct RequestFilter {
    pub requester_id: Option<i64>,
    pub status: Option<RequestStatus>,
    /// Only break-glass requests not yet reviewed.
    pub unreviewed: bool,
    pub page: Page,
}

/// One page of a listing, newest first: at most `limit` rows with ids below
/// `before` (all ids when `None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub before: Option<i64>,
    pub limit: u32,
}

impl Page {
    /// Rows per page unless the caller asks otherwise, and the most it may ask for.
    pub const DEFAULT_LIMIT: u32 = 500;
    pub const MAX_LIMIT: u32 = 1000;

    /// Where the page after `ids` (this page's ids, newest first) starts:
    /// `None` when this page was not full, so nothing older is left.
    pub fn next(&self, ids: impl DoubleEndedIterator<Item = i64> + ExactSizeIterator) -> Option<i64> {
        let full = ids.len() >= self.limit as usize;
        if full { ids.last() } else { None }
    }
}

impl Default for Page {
    fn default() -> Self {
        Page { before: None, limit: Page::DEFAULT_LIMIT }
    }
}

/// A credential the gateway will accept: the hash of its password, never the password.
#[derive(Debug, Clone)]
pub struct NewCredential {
    pub grant_id: i64,
    pub hash: TokenHash,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A credential minted at a git host: what revoking it there needs, sealed
/// by the broker (the store never sees it in clear).
#[derive(Debug, Clone)]
pub struct NewHostToken {
    pub grant_id: i64,
    pub sealed: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// For a membership: what names it, so grants sharing it end it once.
    pub shared_key: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostToken {
    pub id: i64,
    pub grant_id: i64,
    pub sealed: Vec<u8>,
    pub shared_key: Option<String>,
}

/// Which of the reaper's jobs at a host an attempt was: giving a grant its
/// access (a membership), or taking it away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostPhase {
    Start,
    End,
}

/// One failed attempt to end a grant at its host.
#[derive(Debug, Clone)]
pub struct EndFailure {
    pub error: String,
    pub at: DateTime<Utc>,
    pub retry_at: DateTime<Utc>,
}

/// A grant that ended but whose host has not yet agreed: the reaper keeps trying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailingEnd {
    pub grant: GrantRecord,
    /// Failed attempts in a row.
    pub failures: u32,
    /// The last attempt's error, as the host put it.
    pub error: String,
    /// When the reaper tries again.
    pub retry_at: DateTime<Utc>,
}

/// Fills in what only the store knows once it has written: the request id on
/// every event, and the new grant's id on the `granted` event.
pub fn attach_ids(events: &mut [NewEvent], request_id: i64, grant_id: Option<i64>) {
    for e in events {
        e.request_id.get_or_insert(request_id);
        if e.grant_id.is_none() && e.action == Some(Action::Granted) {
            e.grant_id = grant_id;
        }
    }
}

/// A sign-in the identity provider vouched for, to record: the person (made a
/// user at their first sign-in, their groups set from the IdP's at every
/// one) and the broker session it opens.
#[derive(Debug, Clone)]
pub struct SignIn {
    pub issuer: String,
    pub subject: String,
    pub name: String,
    pub groups: Vec<String>,
    /// The IdP's `email` claim (when it does not say it is unverified).
    pub email: Option<String>,
    pub token: TokenHash,
    /// The IdP's refresh token, sealed (none: the IdP gave none, and the
    /// session cannot be re-checked, so it ends at its first check).
    pub refresh_sealed: Option<Vec<u8>>,
    pub at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub next_check_at: DateTime<Utc>,
}

/// A broker session: one sign-in through the identity provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub id: i64,
    pub user_id: i64,
    pub user: String,
    pub issuer: String,
    /// The session token's hash (also what its refresh token is sealed to).
    pub token: TokenHash,
    pub refresh_sealed: Option<Vec<u8>>,
    pub created_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub next_check_at: DateTime<Utc>,
}

/// What a sign-in changed, beside the session it opened.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub user: UserRecord,
    pub session: SessionRecord,
    /// The person signed in for the first time (a user was made).
    pub created: bool,
    /// Their groups before, when the IdP's differ.
    pub groups_were: Option<Vec<String>>,
}

/// A broker on the database, as it last said it was alive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaRecord {
    /// `host:data-dir-hash`.
    pub id: String,
    pub version: String,
    pub started_at: DateTime<Utc>,
    /// When it last said it was alive.
    pub seen_at: DateTime<Utc>,
}

/// How far one notification destination is along the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyProgress {
    pub destination: String,
    /// Every event up to this one was delivered, skipped (not subscribed) or given up on.
    pub delivered_seq: i64,
    /// Failed attempts at the next event it takes.
    pub failures: u32,
    pub first_failed_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Events given up on (a day of failures, or refused by the receiver).
    pub given_up: u64,
}

/// What removing a user ended, in the same transaction.
#[derive(Debug, Clone, Default)]
pub struct Removal {
    /// Their grants that were live, now revoked (the reaper tells providers).
    pub grants: Vec<GrantRecord>,
    /// Their pending requests, now canceled.
    pub requests: Vec<i64>,
    /// Gateway credentials deleted.
    pub credentials: u64,
}
