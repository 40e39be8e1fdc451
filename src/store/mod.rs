//! Persistent state behind one trait, so the broker never sees SQL and a
//! PostgreSQL store can sit beside the SQLite one.
//!
//! Only the broker calls the store. Every method that changes state does so in
//! one transaction together with the audit events that describe the change, so
//! the log never disagrees with the data. Decisions are compare-and-set: a
//! [`RequestChange`] names the status and approval count it was decided on, and
//! the store refuses it with [`StoreError::Conflict`] when another writer got
//! there first. The store never reads the clock: every time comes from the
//! caller.

pub mod chain;
pub mod sqlite;

use crate::domain::refs::RefScope;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::Level;
use crate::domain::audit::{Action, AuditEvent, NewEvent};
use crate::domain::request::RequestStatus;
use crate::domain::token::TokenHash;

/// What went wrong in the store, in terms the broker can act on. No driver
/// types: the broker does not know which database it runs on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} already exists")]
    AlreadyExists(String),
    #[error("{0} not found")]
    NotFound(String),
    /// The state changed since it was read; the caller re-reads and decides again.
    #[error("concurrent update")]
    Conflict,
    /// The database could not be reached, read or written (I/O, locks, a full disk).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// What is stored cannot be read back: a bad value, a damaged file.
    #[error("corrupt data: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// Stable for the user's life; a name reused after removal gets a new id.
    pub id: i64,
    pub name: String,
    pub groups: Vec<String>,
    pub admin: bool,
    pub created_at: DateTime<Utc>,
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

#[async_trait]
pub trait Store: Send + Sync {
    /// Reads every table and reports the last integrity check: fails when the database does.
    async fn check(&self) -> StoreResult<()>;

    /// Waits for every connection to finish and closes them (SQLite
    /// checkpoints its journal into the file); called once the server stopped.
    async fn close(&self);

    // Users. Only users not removed are found, by token, name or id.
    async fn user_by_token(&self, token: &TokenHash) -> StoreResult<Option<(UserRecord, TokenHash)>>;
    async fn user(&self, name: &str) -> StoreResult<Option<UserRecord>>;
    async fn user_by_id(&self, id: i64) -> StoreResult<Option<UserRecord>>;
    async fn users(&self) -> StoreResult<Vec<UserRecord>>;
    /// Adds a user; with `only_if_no_admin`, refuses with [`StoreError::Conflict`]
    /// once any admin exists (the first-admin bootstrap, decided atomically).
    async fn add_user(&self, user: &NewUserRecord, token: &TokenHash, only_if_no_admin: bool, event: NewEvent) -> StoreResult<UserRecord>;
    /// Removes a user and, in the same transaction, ends everything of theirs:
    /// live grants revoked and pending requests canceled (each with an event
    /// by `by` giving `why`), gateway credentials deleted, then `event`.
    async fn remove_user(&self, name: &str, by: &str, why: &str, at: DateTime<Utc>, event: NewEvent) -> StoreResult<Removal>;
    /// A new token; every gateway credential minted under the old one stops
    /// working (`event`'s detail gets their count). Returns that count.
    async fn set_token(&self, name: &str, token: &TokenHash, at: DateTime<Utc>, event: NewEvent) -> StoreResult<u64>;
    async fn admin_count(&self) -> StoreResult<u64>;

    // Requests and grants.
    /// Inserts a pending request; with `grant`, approves it at once
    /// (auto-approve), ending the grants in `supersede` that are still live.
    async fn create_request(
        &self,
        new: &NewRequest,
        grant: Option<(DateTime<Utc>, DateTime<Utc>)>,
        events: Vec<NewEvent>,
        supersede: Vec<Supersede>,
    ) -> StoreResult<RequestRecord>;
    async fn request(&self, id: i64) -> StoreResult<Option<RequestRecord>>;
    /// Requests matching `filter`, newest first, each with its approvals and grant.
    async fn requests(&self, filter: &RequestFilter) -> StoreResult<Vec<RequestRecord>>;
    /// Applies a decision to a request that must still be pending with the
    /// expected number of approvals, or fails with [`StoreError::Conflict`].
    async fn apply(&self, change: RequestChange) -> StoreResult<RequestRecord>;
    /// Ids of pending requests created before `cutoff`.
    async fn stale_pending(&self, cutoff: DateTime<Utc>) -> StoreResult<Vec<i64>>;

    async fn grant(&self, id: i64) -> StoreResult<Option<GrantRecord>>;
    /// Grants of user `user_id` (all users when `None`); with `live_at`, only those live then.
    async fn grants(&self, user_id: Option<i64>, live_at: Option<DateTime<Utc>>, page: Page) -> StoreResult<Vec<GrantRecord>>;
    /// Revokes a grant that is still live at `at`, or fails with [`StoreError::Conflict`].
    async fn revoke_grant(&self, id: i64, by: &str, at: DateTime<Utc>, event: NewEvent) -> StoreResult<GrantRecord>;
    /// Grants that ended (expired by `now` or revoked) but whose provider was
    /// not yet told, leaving out those whose next attempt is after `now`.
    async fn grants_to_end(&self, now: DateTime<Utc>) -> StoreResult<Vec<GrantRecord>>;
    /// Erases the host tokens `revoked` (ids, revoked at the host); then, if
    /// none of the grant's is left, marks that the provider was told, drops its
    /// gateway credentials and appends `events`, and returns true. A token
    /// minted meanwhile keeps the grant for the next round. Memberships named
    /// in `released` were removed at the host: the other live grants holding
    /// them lose their hold and are to be given their access again.
    async fn mark_grant_ended(
        &self,
        id: i64,
        at: DateTime<Utc>,
        revoked: &[i64],
        released: &[String],
        events: Vec<NewEvent>,
    ) -> StoreResult<bool>;
    /// Failed attempts in a row to start or end a grant at its host.
    async fn host_failures(&self, id: i64, phase: HostPhase) -> StoreResult<u32>;
    /// Records a failed attempt to start or end a grant at its host, with its
    /// event; an end erases the host tokens it did revoke (`revoked`, ids).
    async fn record_host_failure(
        &self,
        id: i64,
        phase: HostPhase,
        revoked: &[i64],
        failure: &EndFailure,
        event: NewEvent,
    ) -> StoreResult<()>;
    /// Live grants on `repos` (whose provider gives access by membership) not
    /// yet given it at the host, leaving out those whose next attempt is after `now`.
    async fn grants_to_start(&self, repos: &[String], now: DateTime<Utc>) -> StoreResult<Vec<GrantRecord>>;
    /// Records that the host gave a grant its access, with what taking it
    /// away needs (none when the person had it before: jit leaves it) and its
    /// event; [`StoreError::Conflict`] when the grant ended meanwhile.
    async fn mark_grant_started(&self, id: i64, at: DateTime<Utc>, held: Option<NewHostToken>, event: NewEvent) -> StoreResult<()>;
    /// A hold on the membership `key` by a grant other than `except` not yet ended, if any.
    async fn holder_of(&self, key: &str, except: i64) -> StoreResult<Option<HostToken>>;
    /// Grants whose end the host has not yet agreed to, oldest first.
    async fn failing_ends(&self) -> StoreResult<Vec<FailingEnd>>;
    /// When the reaper next has something to do: the earliest end (or retry)
    /// of a grant not yet ended.
    async fn next_grant_expiry(&self) -> StoreResult<Option<DateTime<Utc>>>;

    // Gateway credentials (hashes only).
    /// Records a minted credential together with its `credential_minted` event.
    async fn add_credential(&self, credential: &NewCredential, event: NewEvent) -> StoreResult<()>;
    /// The grant a credential belongs to, if the credential exists, has not
    /// expired at `now`, and its user has not been removed.
    async fn grant_by_credential(&self, hash: &TokenHash, now: DateTime<Utc>) -> StoreResult<Option<GrantRecord>>;

    // Credentials minted at a host (sealed revocation data only).
    /// Records a host credential with its `credential_minted` event, if the
    /// grant is live at its `created_at` (else [`StoreError::Conflict`]: the caller revokes
    /// the credential at the host itself).
    async fn add_host_token(&self, token: &NewHostToken, event: NewEvent) -> StoreResult<()>;
    /// The host credentials of a grant not yet revoked there.
    async fn host_tokens(&self, grant_id: i64) -> StoreResult<Vec<HostToken>>;

    // Audit.
    async fn append_events(&self, events: Vec<NewEvent>, at: DateTime<Utc>) -> StoreResult<()>;
    /// The latest signed checkpoint of the chain's head (one is signed with every committed write).
    async fn latest_checkpoint(&self) -> StoreResult<Option<crate::domain::audit::Checkpoint>>;
    /// Events with `seq > after_seq` (and at or after `since`), oldest first, at most `limit`.
    async fn audit(&self, after_seq: i64, since: Option<DateTime<Utc>>, limit: u32) -> StoreResult<Vec<AuditEvent>>;
}
