//! The embedded SQLite store: one file under the data directory, WAL mode.
//!
//! Every write goes through one connection owned by the [`Writer`] thread,
//! which group-commits what is queued: one transaction and one `fsync` for
//! many decisions, each in its own savepoint, each acknowledged only after
//! the commit. Writes still run one at a time, so the audit chain never
//! forks and each compare-and-set in [`Store::apply`] is exact; reads use
//! connections of their own beside it ([`Readers`]). The SQL is split by
//! concern (`users`, `requests`, `grants`, `audit`), each a set of plain
//! functions of a connection; this file only routes the trait's calls to
//! them. A value that does not convert is [`StoreError::Corrupt`], never a panic.

mod audit;
mod db;
mod grants;
mod marker;
mod migrate;
mod notify;
mod open;
mod requests;
pub mod sessions;
mod users;
mod writer;

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ed25519_dalek::SigningKey;

use super::chain::Chain;
use super::latency::Latency;
use super::{Store, StoreError, StoreResult};
use crate::domain::audit::{AuditEvent, Checkpoint, NewEvent};
use crate::domain::records::{
    EndFailure, FailingEnd, GrantRecord, HostPhase, HostToken, NewCredential, NewHostToken, NewRequest, NewUserRecord, NotifyProgress,
    Page, Removal, ReplicaRecord, RequestChange, RequestFilter, RequestRecord, Review, SessionRecord, SignIn, SignedIn, Supersede,
    UserRecord,
};
use crate::domain::token::TokenHash;
use db::Readers;
use marker::{HighWater, marker_path};
use writer::Writer;

pub struct SqliteStore {
    /// Reads; WAL lets them run beside the writer.
    reads: Readers,
    /// Every write, group-committed on the one connection that writes (it
    /// holds the key that signs a checkpoint of the audit chain's head with
    /// every committed batch).
    writer: Writer,
    /// When the last integrity check ran, and what it found (for `/healthz`).
    integrity: tokio::sync::Mutex<Option<(std::time::Instant, Result<(), String>)>>,
    latency: Latency,
}

/// How often `/healthz` re-runs SQLite's integrity check; in between it reports the last result.
const INTEGRITY_EVERY: Duration = Duration::from_secs(30);

impl SqliteStore {
    /// Opens (creating if needed) `path` and brings its schema up to date.
    ///
    /// Refuses, rather than start empty, when this data dir was initialised
    /// (its marker exists) but the database is missing, empty or another one;
    /// and when SQLite's integrity check finds damage or the audit log's tail
    /// is not the one this broker signed.
    pub async fn open(path: &Path, key: SigningKey) -> StoreResult<SqliteStore> {
        let (owned, signing) = (path.to_path_buf(), key.clone());
        let opened = tokio::task::spawn_blocking(move || open::open(&owned, &signing))
            .await
            .map_err(|e| StoreError::Unavailable(format!("opening the database failed: {e}")))??;
        for file in &opened.tightened {
            tracing::warn!(file = %file.display(), "database file was readable by others; made it owner-only (0600)");
        }
        let high_water = HighWater::start(marker_path(path), opened.id);
        let chain = Chain::new(key).on_commit(Box::new(move |cp| high_water.committed(cp)));
        let latency = Latency::default();
        let writer = Writer::start(opened.conn, chain, latency.clone())
            .map_err(|e| StoreError::Unavailable(format!("cannot start the database writer: {e}")))?;
        Ok(SqliteStore { reads: Readers::new(path, latency.clone()), writer, integrity: tokio::sync::Mutex::new(None), latency })
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn latency(&self) -> &Latency {
        &self.latency
    }

    async fn close(&self) {
        self.writer.close().await;
        self.reads.close();
    }

    async fn check(&self) -> StoreResult<()> {
        self.reads.read(open::tables_answer).await?;
        // ...and the file passed SQLite's integrity check lately.
        let mut last = self.integrity.lock().await;
        let stale = last.as_ref().is_none_or(|(at, _)| at.elapsed() > INTEGRITY_EVERY);
        if stale {
            *last = Some((std::time::Instant::now(), self.reads.read(open::quick_check).await?));
        }
        match last.as_ref().map(|(_, r)| r.clone()) {
            Some(Err(found)) => Err(StoreError::Corrupt(format!("integrity check: {found}"))),
            _ => Ok(()),
        }
    }

    async fn replica_seen(&self, replica: &str, version: &str, started_at: DateTime<Utc>, at: DateTime<Utc>) -> StoreResult<()> {
        let (replica, version) = (replica.to_string(), version.to_string());
        self.writer
            .write(move |tx, _| {
                tx.prepare_cached(
                    "INSERT INTO replicas (id, version, started_at, seen_at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (id) DO UPDATE SET version = ?2, started_at = ?3, seen_at = ?4",
                )?
                .execute(rusqlite::params![replica, version, db::ms(started_at), db::ms(at)])?;
                Ok(())
            })
            .await
    }

    async fn replicas(&self) -> StoreResult<Vec<ReplicaRecord>> {
        self.reads
            .read(|c| {
                let mut stmt = c.prepare_cached("SELECT id, version, started_at, seen_at FROM replicas ORDER BY seen_at DESC, id")?;
                db::all(stmt.query([])?, |r| {
                    Ok(ReplicaRecord { id: r.get(0)?, version: r.get(1)?, started_at: db::time(r.get(2)?)?, seen_at: db::time(r.get(3)?)? })
                })
            })
            .await
    }

    async fn agree(&self, key: &str, value: &str) -> StoreResult<String> {
        let (key, value) = (format!("agreed:{key}"), value.to_string());
        self.writer
            .write(move |tx, _| {
                tx.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", rusqlite::params![key, value])?;
                Ok(tx.query_row("SELECT value FROM meta WHERE key = ?", [&key], |r| r.get(0))?)
            })
            .await
    }

    async fn user_by_token(&self, token: &TokenHash) -> StoreResult<Option<(UserRecord, TokenHash)>> {
        let token = token.clone();
        self.reads.lookup(|c| users::by_token(c, &token))
    }

    async fn user(&self, name: &str) -> StoreResult<Option<UserRecord>> {
        let name = name.to_string();
        self.reads.lookup(|c| users::by_name(c, &name))
    }

    async fn user_by_id(&self, id: i64) -> StoreResult<Option<UserRecord>> {
        self.reads.lookup(|c| users::by_id(c, id))
    }

    async fn users(&self) -> StoreResult<Vec<UserRecord>> {
        self.reads.read(users::list).await
    }

    async fn add_user(&self, user: &NewUserRecord, token: &TokenHash, only_if_no_admin: bool, event: NewEvent) -> StoreResult<UserRecord> {
        let (user, token) = (user.clone(), token.clone());
        self.writer.write(move |tx, chain| users::add(tx, chain, &user, &token, only_if_no_admin, event)).await
    }

    async fn remove_user(&self, name: &str, by: &str, why: &str, at: DateTime<Utc>, event: NewEvent) -> StoreResult<Removal> {
        let (name, by, why) = (name.to_string(), by.to_string(), why.to_string());
        self.writer.write(move |tx, chain| users::remove(tx, chain, &name, &by, &why, at, event)).await
    }

    async fn set_token(&self, name: &str, token: &TokenHash, at: DateTime<Utc>, event: NewEvent) -> StoreResult<u64> {
        let (name, token) = (name.to_string(), token.clone());
        self.writer.write(move |tx, chain| users::set_token(tx, chain, &name, &token, at, event)).await
    }

    async fn admin_count(&self) -> StoreResult<u64> {
        self.reads.read(users::admin_count).await
    }

    async fn sign_in(&self, sign_in: &SignIn) -> StoreResult<SignedIn> {
        let sign_in = sign_in.clone();
        self.writer.write(move |tx, chain| sessions::sign_in(tx, chain, &sign_in)).await
    }

    async fn session_by_token(&self, token: &TokenHash) -> StoreResult<Option<(UserRecord, SessionRecord)>> {
        let token = token.clone();
        self.reads.lookup(|c| sessions::by_token(c, &token))
    }

    async fn session_end(&self, token: &TokenHash) -> StoreResult<Option<(DateTime<Utc>, String)>> {
        let token = token.clone();
        self.reads.lookup(|c| sessions::end_of(c, &token))
    }

    async fn sessions_due(&self, now: DateTime<Utc>) -> StoreResult<Vec<SessionRecord>> {
        self.reads.read(move |c| sessions::due(c, now)).await
    }

    async fn next_session_check(&self) -> StoreResult<Option<DateTime<Utc>>> {
        self.reads.read(sessions::next_check).await
    }

    async fn session_checked(
        &self,
        id: i64,
        refresh_sealed: Option<Vec<u8>>,
        next_check_at: DateTime<Utc>,
        groups: Option<&[String]>,
        at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let groups = groups.map(<[String]>::to_vec);
        self.writer
            .write(move |tx, chain| sessions::checked(tx, chain, id, refresh_sealed.as_deref(), next_check_at, groups.as_deref(), at))
            .await
    }

    async fn end_session(&self, id: i64, by: &str, why: &str, whole_person: bool, at: DateTime<Utc>) -> StoreResult<Removal> {
        let (by, why) = (by.to_string(), why.to_string());
        self.writer.write(move |tx, chain| sessions::end(tx, chain, id, &by, &why, whole_person, at)).await
    }

    async fn create_request(
        &self,
        new: &NewRequest,
        grant: Option<(DateTime<Utc>, DateTime<Utc>)>,
        events: Vec<NewEvent>,
        superseded: Vec<Supersede>,
    ) -> StoreResult<RequestRecord> {
        let new = new.clone();
        self.writer.write(move |tx, chain| requests::create(tx, chain, &new, grant, events, superseded)).await
    }

    async fn request(&self, id: i64) -> StoreResult<Option<RequestRecord>> {
        self.reads.lookup(|c| requests::load(c, id))
    }

    async fn requests(&self, filter: &RequestFilter) -> StoreResult<Vec<RequestRecord>> {
        let filter = filter.clone();
        self.reads.read(move |c| requests::load_many(c, &filter, None)).await
    }

    async fn apply(&self, change: RequestChange) -> StoreResult<RequestRecord> {
        self.writer.write(move |tx, chain| requests::apply(tx, chain, change)).await
    }

    async fn review(&self, id: i64, review: &Review, event: NewEvent) -> StoreResult<RequestRecord> {
        let review = review.clone();
        self.writer.write(move |tx, chain| requests::review(tx, chain, id, &review, event)).await
    }

    async fn remind(&self, id: i64, last: Option<DateTime<Utc>>, now: DateTime<Utc>, event: NewEvent) -> StoreResult<bool> {
        self.writer.write(move |tx, chain| requests::remind(tx, chain, id, last, now, event)).await
    }

    async fn stale_pending(&self, cutoff: DateTime<Utc>) -> StoreResult<Vec<i64>> {
        self.reads.read(move |c| requests::stale_pending(c, cutoff)).await
    }

    async fn grant(&self, id: i64) -> StoreResult<Option<GrantRecord>> {
        self.reads.lookup(|c| grants::load(c, id))
    }

    async fn grants(&self, user_id: Option<i64>, live_at: Option<DateTime<Utc>>, page: Page) -> StoreResult<Vec<GrantRecord>> {
        // One person's live grants are a handful, read by every decision: a lookup.
        if user_id.is_some() && live_at.is_some() {
            return self.reads.lookup(|c| grants::list(c, user_id, live_at, page));
        }
        self.reads.read(move |c| grants::list(c, user_id, live_at, page)).await
    }

    async fn revoke_grant(&self, id: i64, by: &str, at: DateTime<Utc>, event: NewEvent) -> StoreResult<GrantRecord> {
        let by = by.to_string();
        self.writer.write(move |tx, chain| grants::revoke(tx, chain, id, &by, at, event)).await
    }

    async fn grants_to_end(&self, now: DateTime<Utc>) -> StoreResult<Vec<GrantRecord>> {
        self.reads.read(move |c| grants::to_end(c, now)).await
    }

    async fn mark_grant_ended(
        &self,
        id: i64,
        at: DateTime<Utc>,
        revoked: &[i64],
        released: &[String],
        events: Vec<NewEvent>,
    ) -> StoreResult<bool> {
        let (revoked, released) = (revoked.to_vec(), released.to_vec());
        self.writer.write(move |tx, chain| grants::mark_ended(tx, chain, id, at, &revoked, &released, events)).await
    }

    async fn claim_grant(&self, id: i64, holder: &str, now: DateTime<Utc>, until: DateTime<Utc>) -> StoreResult<bool> {
        let holder = holder.to_string();
        self.writer.write(move |tx, _| grants::claim(tx, id, &holder, now, until)).await
    }

    async fn host_failures(&self, id: i64, phase: HostPhase) -> StoreResult<u32> {
        self.reads.lookup(|c| grants::host_failures(c, id, phase))
    }

    async fn record_host_failure(
        &self,
        id: i64,
        phase: HostPhase,
        revoked: &[i64],
        failure: &EndFailure,
        event: NewEvent,
    ) -> StoreResult<()> {
        let (revoked, failure) = (revoked.to_vec(), failure.clone());
        self.writer.write(move |tx, chain| grants::record_host_failure(tx, chain, id, phase, &revoked, &failure, event)).await
    }

    async fn grants_to_start(&self, repos: &[String], now: DateTime<Utc>) -> StoreResult<Vec<GrantRecord>> {
        let repos = repos.to_vec();
        self.reads.read(move |c| grants::to_start(c, &repos, now)).await
    }

    async fn mark_grant_started(&self, id: i64, at: DateTime<Utc>, held: Option<NewHostToken>, event: NewEvent) -> StoreResult<()> {
        self.writer.write(move |tx, chain| grants::mark_started(tx, chain, id, at, held.as_ref(), event)).await
    }

    async fn holder_of(&self, key: &str, except: i64) -> StoreResult<Option<HostToken>> {
        let key = key.to_string();
        self.reads.lookup(|c| grants::holder_of(c, &key, except))
    }

    async fn failing_ends(&self) -> StoreResult<Vec<FailingEnd>> {
        self.reads.read(grants::failing_ends).await
    }

    async fn next_grant_expiry(&self) -> StoreResult<Option<DateTime<Utc>>> {
        self.reads.read(grants::next_expiry).await
    }

    async fn add_host_token(&self, token: &NewHostToken, event: NewEvent) -> StoreResult<()> {
        let token = token.clone();
        self.writer.write(move |tx, chain| grants::add_host_token(tx, chain, &token, event)).await
    }

    async fn host_tokens(&self, grant_id: i64) -> StoreResult<Vec<HostToken>> {
        self.reads.lookup(|c| grants::host_tokens(c, grant_id))
    }

    async fn add_credential(&self, credential: &NewCredential, event: NewEvent) -> StoreResult<()> {
        let credential = credential.clone();
        self.writer.write(move |tx, chain| grants::add_credential(tx, chain, &credential, event)).await
    }

    async fn grant_by_credential(&self, hash: &TokenHash, now: DateTime<Utc>) -> StoreResult<Option<GrantRecord>> {
        let hash = hash.clone();
        self.reads.lookup(|c| grants::by_credential(c, &hash, now))
    }

    async fn notify_start(&self, destinations: &[String]) -> StoreResult<()> {
        let destinations = destinations.to_vec();
        self.writer.write(move |tx, _| notify::start(tx, &destinations)).await
    }

    async fn notify_progress(&self) -> StoreResult<Vec<NotifyProgress>> {
        self.reads.read(notify::list).await
    }

    async fn notify_delivered(&self, destination: &str, seq: i64) -> StoreResult<()> {
        let destination = destination.to_string();
        self.writer.write(move |tx, _| notify::delivered(tx, &destination, seq)).await
    }

    async fn notify_failed(
        &self,
        destination: &str,
        failures: u32,
        first_failed_at: DateTime<Utc>,
        error: &str,
        next_attempt_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let (destination, error) = (destination.to_string(), error.to_string());
        self.writer.write(move |tx, _| notify::failed(tx, &destination, failures, first_failed_at, &error, next_attempt_at)).await
    }

    async fn notify_gave_up(&self, destination: &str, seq: i64, error: &str, event: NewEvent, at: DateTime<Utc>) -> StoreResult<()> {
        let (destination, error) = (destination.to_string(), error.to_string());
        self.writer.write(move |tx, chain| notify::gave_up(tx, chain, &destination, seq, &error, event, at)).await
    }

    async fn append_events(&self, events: Vec<NewEvent>, at: DateTime<Utc>) -> StoreResult<()> {
        self.writer.write(move |tx, chain| audit::append(tx, chain, &events, at)).await
    }

    async fn latest_checkpoint(&self) -> StoreResult<Option<Checkpoint>> {
        self.reads.read(audit::latest_checkpoint).await
    }

    async fn audit(&self, after_seq: i64, since: Option<DateTime<Utc>>, limit: u32) -> StoreResult<Vec<AuditEvent>> {
        self.reads.read(move |c| audit::events(c, after_seq, since, limit)).await
    }

    async fn grant_events(&self, grant_id: i64, request_id: i64) -> StoreResult<Vec<AuditEvent>> {
        self.reads.read(move |c| audit::grant_events(c, grant_id, request_id)).await
    }

    async fn checkpoint_covering(&self, seq: i64) -> StoreResult<Option<Checkpoint>> {
        self.reads.read(move |c| audit::checkpoint_covering(c, seq)).await
    }
}

#[cfg(test)]
mod tests;
