//! Persistent state behind one trait, so handlers never see SQL and a
//! PostgreSQL store can sit beside the SQLite one.
//!
//! Every method that changes state does so in one transaction together with
//! the audit events that describe the change, so the log never disagrees with
//! the data. Decisions are compare-and-set: a [`RequestChange`] names the
//! status and approval count it was decided on, and the store refuses it with
//! [`StoreError::Conflict`] when another writer got there first.

pub mod sqlite;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::Level;
use crate::domain::audit::{AuditEvent, NewEvent};
use crate::domain::request::RequestStatus;
use crate::domain::token::TokenHash;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} already exists")]
    AlreadyExists(String),
    #[error("{0} not found")]
    NotFound(String),
    /// The state changed since it was read; the caller re-reads and decides again.
    #[error("concurrent update")]
    Conflict,
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
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

#[derive(Debug, Clone)]
pub struct NewRequest {
    pub requester: String,
    pub repo: String,
    pub level: Level,
    pub duration_secs: u64,
    pub reason: Option<String>,
    pub rule: String,
    pub approvals_required: u32,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct RequestRecord {
    pub id: i64,
    pub requester: String,
    pub repo: String,
    pub level: Level,
    pub duration_secs: u64,
    pub reason: Option<String>,
    pub rule: String,
    pub approvals_required: u32,
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
    pub user: String,
    pub repo: String,
    pub level: Level,
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
}

#[derive(Debug, Clone, Default)]
pub struct RequestFilter {
    pub requester: Option<String>,
    pub status: Option<RequestStatus>,
    pub limit: Option<u32>,
}

#[async_trait]
pub trait Store: Send + Sync {
    // Users.
    async fn user_by_token(&self, token: &TokenHash) -> StoreResult<Option<(UserRecord, TokenHash)>>;
    async fn user(&self, name: &str) -> StoreResult<Option<UserRecord>>;
    async fn users(&self) -> StoreResult<Vec<UserRecord>>;
    async fn add_user(&self, user: &UserRecord, token: &TokenHash, event: NewEvent) -> StoreResult<()>;
    async fn remove_user(&self, name: &str, event: NewEvent) -> StoreResult<()>;
    async fn set_token(&self, name: &str, token: &TokenHash, event: NewEvent) -> StoreResult<()>;
    async fn admin_count(&self) -> StoreResult<u64>;

    // Requests and grants.
    /// Inserts a pending request; with `grant`, approves it at once (auto-approve).
    async fn create_request(
        &self,
        new: &NewRequest,
        grant: Option<(DateTime<Utc>, DateTime<Utc>)>,
        events: Vec<NewEvent>,
    ) -> StoreResult<RequestRecord>;
    async fn request(&self, id: i64) -> StoreResult<Option<RequestRecord>>;
    async fn requests(&self, filter: &RequestFilter) -> StoreResult<Vec<RequestRecord>>;
    /// Applies a decision to a request that must still be pending with the
    /// expected number of approvals, or fails with [`StoreError::Conflict`].
    async fn apply(&self, change: RequestChange) -> StoreResult<RequestRecord>;
    /// Ids of pending requests created before `cutoff`.
    async fn stale_pending(&self, cutoff: DateTime<Utc>) -> StoreResult<Vec<i64>>;

    async fn grant(&self, id: i64) -> StoreResult<Option<GrantRecord>>;
    /// Grants of `user` (all users when `None`); with `live_at`, only those live then.
    async fn grants(&self, user: Option<&str>, live_at: Option<DateTime<Utc>>) -> StoreResult<Vec<GrantRecord>>;
    /// Revokes a grant that is still live at `at`, or fails with [`StoreError::Conflict`].
    async fn revoke_grant(&self, id: i64, by: &str, at: DateTime<Utc>, event: NewEvent) -> StoreResult<GrantRecord>;
    /// Grants that ended (expired by `now` or revoked) but whose provider was not yet told.
    async fn grants_to_end(&self, now: DateTime<Utc>) -> StoreResult<Vec<GrantRecord>>;
    /// Marks that the provider was told; appends `event` once (the first time only).
    async fn mark_grant_ended(&self, id: i64, at: DateTime<Utc>, event: Option<NewEvent>) -> StoreResult<bool>;
    /// The earliest `expires_at` of a grant not yet ended, for the reaper's next wake-up.
    async fn next_grant_expiry(&self) -> StoreResult<Option<DateTime<Utc>>>;

    // Gateway credentials (hashes only).
    async fn add_credential(
        &self,
        grant_id: i64,
        hash: &TokenHash,
        created_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// The grant a credential belongs to, if it exists and has not expired at `now`.
    async fn grant_by_credential(&self, hash: &TokenHash, now: DateTime<Utc>) -> StoreResult<Option<GrantRecord>>;
    async fn delete_credentials(&self, grant_id: i64) -> StoreResult<()>;

    // Audit.
    async fn append_events(&self, events: Vec<NewEvent>, at: DateTime<Utc>) -> StoreResult<()>;
    /// Events with `seq > after_seq` (and at or after `since`), oldest first, at most `limit`.
    async fn audit(&self, after_seq: i64, since: Option<DateTime<Utc>>, limit: u32) -> StoreResult<Vec<AuditEvent>>;
}
