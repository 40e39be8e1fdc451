//! Persistent state behind one trait, so the broker never sees SQL and a
//! PostgreSQL store can sit beside the SQLite one. The records it keeps are
//! the broker's (`domain::records`); this module is only how they are kept.
//!
//! Only the broker calls the store. Every method that changes state does so in
//! one transaction together with the audit events that describe the change, so
//! the log never disagrees with the data. Decisions are compare-and-set: a
//! [`RequestChange`] names the status and approval count it was decided on, and
//! the store refuses it with [`StoreError::Conflict`] when another writer got
//! there first. The store never reads the clock: every time comes from the
//! caller.

pub mod chain;
#[cfg(test)]
mod contract_tests;
pub mod latency;
pub mod postgres;
mod rows;
pub mod sqlite;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::audit::{AuditEvent, NewEvent};
use crate::domain::records::{
    EndFailure, FailingEnd, GrantRecord, HostPhase, HostToken, NewCredential, NewHostToken, NewRequest, NewUserRecord, NotifyProgress,
    Page, Removal, ReplicaRecord, RequestChange, RequestFilter, RequestRecord, Review, SessionRecord, SignIn, SignedIn, Supersede,
    UserRecord,
};
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

/// A change other brokers on the same database must hear of, to drop what
/// they hold in memory or wake who waits on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A request was made or decided: its waiters read it again.
    Request(i64),
    /// A token, user, session or group changed: remembered sign-ins are stale.
    Identities,
    /// A grant was revoked or superseded: the reaper looks again.
    Grants,
    /// The feed was lost and is back: anything may have changed meanwhile.
    Resync,
}

#[async_trait]
pub trait Store: Send + Sync {
    /// Reads every table and reports the last integrity check: fails when the database does.
    async fn check(&self) -> StoreResult<()>;

    /// How long its reads and writes take (for `/metrics`).
    fn latency(&self) -> &latency::Latency;

    /// Waits for every connection to finish and closes them (SQLite
    /// checkpoints its journal into the file); called once the server stopped.
    async fn close(&self);

    /// What other brokers sharing this database change, as they commit it
    /// (this broker's own changes too); `None` when no other broker can
    /// share it (SQLite), so nothing needs hearing.
    fn changes(&self) -> Option<tokio::sync::broadcast::Receiver<Change>> {
        None
    }

    /// Broker `replica` (running `version` since `started_at`) is alive at `at`.
    async fn replica_seen(&self, replica: &str, version: &str, started_at: DateTime<Utc>, at: DateTime<Utc>) -> StoreResult<()>;
    /// Every broker that ever said it was alive here, the latest seen first.
    async fn replicas(&self) -> StoreResult<Vec<ReplicaRecord>>;

    /// The value every broker on this database agrees on for `key`: `value`
    /// when none was set yet (it is now), else the one set first.
    async fn agree(&self, key: &str, value: &str) -> StoreResult<String>;

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

    // Sessions of people the identity provider signs in.
    /// Records a sign-in: the person made a user the first time (a name a
    /// local user or another person holds: [`StoreError::AlreadyExists`]),
    /// their groups set to the IdP's, and a session opened, with the events.
    async fn sign_in(&self, sign_in: &SignIn) -> StoreResult<SignedIn>;
    /// The live session a token opens, and its person (its end is the caller's to check).
    async fn session_by_token(&self, token: &TokenHash) -> StoreResult<Option<(UserRecord, SessionRecord)>>;
    /// Why the session a token opened ended, and when (none: no such session, or it lives).
    async fn session_end(&self, token: &TokenHash) -> StoreResult<Option<(DateTime<Utc>, String)>>;
    /// Live sessions whose check is due at `now`.
    async fn sessions_due(&self, now: DateTime<Utc>) -> StoreResult<Vec<SessionRecord>>;
    /// The earliest check due of a live session.
    async fn next_session_check(&self) -> StoreResult<Option<DateTime<Utc>>>;
    /// A check done: the refresh token (when the IdP rotated it), the next
    /// check, and the person's groups as the IdP now has them (none: the IdP
    /// did not answer, they stay). Returns whether the groups changed (audited).
    async fn session_checked(
        &self,
        id: i64,
        refresh_sealed: Option<Vec<u8>>,
        next_check_at: DateTime<Utc>,
        groups: Option<&[String]>,
        at: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Ends a live session (else [`StoreError::Conflict`]); with
    /// `whole_person`, every session of that person and every live grant of
    /// theirs too, each with its event by `by` giving `why`.
    async fn end_session(&self, id: i64, by: &str, why: &str, whole_person: bool, at: DateTime<Utc>) -> StoreResult<Removal>;

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
    /// Records the review of break-glass request `id` with `event`, unless it
    /// is not break-glass or was reviewed already ([`StoreError::Conflict`]).
    async fn review(&self, id: i64, review: &Review, event: NewEvent) -> StoreResult<RequestRecord>;
    /// Marks unreviewed break-glass request `id` reminded of at `now` with
    /// `event`, if its last reminder is still `last` (so brokers sharing a
    /// database remind once); whether it did.
    async fn remind(&self, id: i64, last: Option<DateTime<Utc>>, now: DateTime<Utc>, event: NewEvent) -> StoreResult<bool>;
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
    /// Claims grant `id` for `holder` until `until` while it calls the
    /// grant's host: true when it is `holder`'s now (no claim, an expired
    /// one, or its own), false when another holds it or the grant ended.
    async fn claim_grant(&self, id: i64, holder: &str, now: DateTime<Utc>, until: DateTime<Utc>) -> StoreResult<bool>;
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

    // Notifications (the audit log is their outbox).
    /// Destinations not yet known start at the log's head.
    async fn notify_start(&self, destinations: &[String]) -> StoreResult<()>;
    async fn notify_progress(&self) -> StoreResult<Vec<NotifyProgress>>;
    /// Everything up to `seq` is done for `destination`; its failures are cleared.
    async fn notify_delivered(&self, destination: &str, seq: i64) -> StoreResult<()>;
    /// Another failed attempt at `destination`'s next event.
    async fn notify_failed(
        &self,
        destination: &str,
        failures: u32,
        first_failed_at: DateTime<Utc>,
        error: &str,
        next_attempt_at: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Event `seq` is given up on for `destination`, with `event` saying so.
    async fn notify_gave_up(&self, destination: &str, seq: i64, error: &str, event: NewEvent, at: DateTime<Utc>) -> StoreResult<()>;

    // Audit.
    async fn append_events(&self, events: Vec<NewEvent>, at: DateTime<Utc>) -> StoreResult<()>;
    /// The latest signed checkpoint of the chain's head (one is signed with every committed write).
    async fn latest_checkpoint(&self) -> StoreResult<Option<crate::domain::audit::Checkpoint>>;
    /// Events with `seq > after_seq` (and at or after `since`), oldest first, at most `limit`.
    async fn audit(&self, after_seq: i64, since: Option<DateTime<Utc>>, limit: u32) -> StoreResult<Vec<AuditEvent>>;
    /// One grant's events: those naming it or the request it came from, oldest first.
    async fn grant_events(&self, grant_id: i64, request_id: i64) -> StoreResult<Vec<AuditEvent>>;
    /// The first signed checkpoint at or after event `seq` (the one its write signed).
    async fn checkpoint_covering(&self, seq: i64) -> StoreResult<Option<crate::domain::audit::Checkpoint>>;
}
