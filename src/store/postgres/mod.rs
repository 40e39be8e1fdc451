//! The PostgreSQL store: the engine for more than one broker. Several
//! replicas share one database; each write is one transaction, its audit
//! events appended last under a lock every replica takes (one gap-free
//! chain, a signed checkpoint with every append), and each decision a
//! compare-and-set on a row held to the commit, so replicas deciding,
//! revoking or ending at once take turns instead of both winning. The SQL
//! is split by concern as the SQLite store's is; this file only opens the
//! database and routes the trait's calls.

mod audit;
pub mod db;
mod feed;
mod grants;
pub mod import;
mod migrate;
mod notify;
mod requests;
mod sessions;
#[cfg(test)]
pub(crate) mod testdb;
#[cfg(test)]
mod tests;
mod users;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use ed25519_dalek::SigningKey;

use super::latency::{Latency, Op};
use super::{Change, Store, StoreResult};
use crate::domain::audit::{AuditEvent, Checkpoint, NewEvent};
use crate::domain::records::{
    EndFailure, FailingEnd, GrantRecord, HostPhase, HostToken, NewCredential, NewHostToken, NewRequest, NewUserRecord, NotifyProgress,
    Page, Removal, ReplicaRecord, RequestChange, RequestFilter, RequestRecord, Review, SessionRecord, SignIn, SignedIn, Supersede,
    UserRecord,
};
use crate::domain::token::TokenHash;
pub use db::Connect;

pub struct PostgresStore {
    pool: Pool,
    /// What every broker on this database commits, heard through LISTEN.
    changes: tokio::sync::broadcast::Sender<Change>,
    /// Dropped (taken) to stop listening.
    stop_listening: std::sync::Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
    /// Signs a checkpoint with every append; the same key on every replica.
    key: SigningKey,
    /// The database's identity (`meta.database_id`), for `/healthz` and the log.
    id: String,
    latency: Latency,
}

/// Runs `$body` (an expression of the transaction `$tx`) in one transaction,
/// committed only when it succeeds.
macro_rules! in_tx {
    ($store:expr, |$tx:ident| $body:expr) => {{
        let _timer = $store.latency.time(Op::Write);
        let mut client = $store.client().await?;
        let $tx = client.transaction().await.map_err(db::error)?;
        let out = $body.await?;
        $tx.commit().await.map_err(db::error)?;
        Ok(out)
    }};
}

/// Runs `$body` (an expression of the connection `$c`) on a pooled connection.
macro_rules! read {
    ($store:expr, |$c:ident| $body:expr) => {{
        let _timer = $store.latency.time(Op::Read);
        let client = $store.client().await?;
        let $c: &deadpool_postgres::ClientWrapper = &client;
        $body.await
    }};
}

impl PostgresStore {
    /// Connects, brings the schema up to date (under a lock, so replicas
    /// starting together take turns) and checks that the audit log's tail
    /// is the one signed with `key`.
    pub async fn open(connect: &Connect, key: SigningKey) -> StoreResult<PostgresStore> {
        let (pool, connector) = db::pool(connect)?;
        let mut client = pool.get().await.map_err(db::pool_error)?;
        migrate::run(&mut client).await?;
        let fresh_id = hex::encode(rand::random::<[u8; 16]>());
        client
            .execute("INSERT INTO meta (key, value) VALUES ('database_id', $1) ON CONFLICT (key) DO NOTHING", &[&fresh_id])
            .await
            .map_err(db::error)?;
        let row = client.query_one("SELECT value FROM meta WHERE key = 'database_id'", &[]).await.map_err(db::error)?;
        let id: String = db::get(&row, "value")?;
        audit::check_tail(&*client, &key.verifying_key()).await?;
        drop(client);
        let (changes, _) = tokio::sync::broadcast::channel(1024);
        let (stop, closed) = tokio::sync::oneshot::channel();
        tokio::spawn(feed::listen(connector, changes.clone(), closed));
        Ok(PostgresStore { pool, changes, stop_listening: std::sync::Mutex::new(Some(stop)), key, id, latency: Latency::default() })
    }

    /// The database's identity.
    pub fn database_id(&self) -> &str {
        &self.id
    }

    async fn client(&self) -> StoreResult<deadpool_postgres::Object> {
        self.pool.get().await.map_err(db::pool_error)
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn check(&self) -> StoreResult<()> {
        let client = self.client().await?;
        for table in ["users", "requests", "approvals", "grants", "credentials", "audit_events", "meta"] {
            client.query(&format!("SELECT 1 FROM {table} LIMIT 1"), &[]).await.map_err(db::error)?;
        }
        Ok(())
    }

    fn latency(&self) -> &Latency {
        &self.latency
    }

    async fn close(&self) {
        self.stop_listening.lock().expect("feed").take();
        self.pool.close();
    }

    fn changes(&self) -> Option<tokio::sync::broadcast::Receiver<Change>> {
        Some(self.changes.subscribe())
    }

    async fn replica_seen(&self, replica: &str, version: &str, started_at: DateTime<Utc>, at: DateTime<Utc>) -> StoreResult<()> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO replicas (id, version, started_at, seen_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (id) DO UPDATE SET version = $2, started_at = $3, seen_at = $4",
                &[&replica, &version, &db::stored(started_at), &db::stored(at)],
            )
            .await
            .map_err(db::error)?;
        Ok(())
    }

    async fn replicas(&self) -> StoreResult<Vec<ReplicaRecord>> {
        let client = self.client().await?;
        let rows = client
            .query("SELECT id, version, started_at, seen_at FROM replicas ORDER BY seen_at DESC, id", &[])
            .await
            .map_err(db::error)?;
        rows.iter()
            .map(|r| {
                Ok(ReplicaRecord {
                    id: db::get(r, "id")?,
                    version: db::get(r, "version")?,
                    started_at: db::get(r, "started_at")?,
                    seen_at: db::get(r, "seen_at")?,
                })
            })
            .collect()
    }

    async fn agree(&self, key: &str, value: &str) -> StoreResult<String> {
        let client = self.client().await?;
        let key = format!("agreed:{key}");
        client
            .execute("INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING", &[&key, &value])
            .await
            .map_err(db::error)?;
        // A statement of its own: it sees whichever broker's value committed first.
        let row = client.query_one("SELECT value FROM meta WHERE key = $1", &[&key]).await.map_err(db::error)?;
        db::get(&row, "value")
    }

    async fn user_by_token(&self, token: &TokenHash) -> StoreResult<Option<(UserRecord, TokenHash)>> {
        read!(self, |c| users::by_token(c, token))
    }

    async fn user(&self, name: &str) -> StoreResult<Option<UserRecord>> {
        read!(self, |c| users::by_name(c, name))
    }

    async fn user_by_id(&self, id: i64) -> StoreResult<Option<UserRecord>> {
        read!(self, |c| users::by_id(c, id))
    }

    async fn users(&self) -> StoreResult<Vec<UserRecord>> {
        read!(self, |c| users::list(c))
    }

    async fn add_user(&self, user: &NewUserRecord, token: &TokenHash, only_if_no_admin: bool, event: NewEvent) -> StoreResult<UserRecord> {
        in_tx!(self, |tx| users::add(&tx, &self.key, user, token, only_if_no_admin, event))
    }

    async fn remove_user(&self, name: &str, by: &str, why: &str, at: DateTime<Utc>, event: NewEvent) -> StoreResult<Removal> {
        in_tx!(self, |tx| users::remove(&tx, &self.key, name, by, why, at, event))
    }

    async fn set_token(&self, name: &str, token: &TokenHash, at: DateTime<Utc>, event: NewEvent) -> StoreResult<u64> {
        in_tx!(self, |tx| users::set_token(&tx, &self.key, name, token, at, event))
    }

    async fn admin_count(&self) -> StoreResult<u64> {
        read!(self, |c| users::admin_count(c))
    }

    async fn sign_in(&self, sign_in: &SignIn) -> StoreResult<SignedIn> {
        in_tx!(self, |tx| sessions::sign_in(&tx, &self.key, sign_in))
    }

    async fn session_by_token(&self, token: &TokenHash) -> StoreResult<Option<(UserRecord, SessionRecord)>> {
        read!(self, |c| sessions::by_token(c, token))
    }

    async fn session_end(&self, token: &TokenHash) -> StoreResult<Option<(DateTime<Utc>, String)>> {
        read!(self, |c| sessions::end_of(c, token))
    }

    async fn sessions_due(&self, now: DateTime<Utc>) -> StoreResult<Vec<SessionRecord>> {
        read!(self, |c| sessions::due(c, now))
    }

    async fn next_session_check(&self) -> StoreResult<Option<DateTime<Utc>>> {
        read!(self, |c| sessions::next_check(c))
    }

    async fn session_checked(
        &self,
        id: i64,
        refresh_sealed: Option<Vec<u8>>,
        next_check_at: DateTime<Utc>,
        groups: Option<&[String]>,
        at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        in_tx!(self, |tx| sessions::checked(&tx, &self.key, id, refresh_sealed.as_deref(), next_check_at, groups, at))
    }

    async fn end_session(&self, id: i64, by: &str, why: &str, whole_person: bool, at: DateTime<Utc>) -> StoreResult<Removal> {
        in_tx!(self, |tx| sessions::end(&tx, &self.key, id, by, why, whole_person, at))
    }

    async fn create_request(
        &self,
        new: &NewRequest,
        grant: Option<(DateTime<Utc>, DateTime<Utc>)>,
        events: Vec<NewEvent>,
        supersede: Vec<Supersede>,
    ) -> StoreResult<RequestRecord> {
        in_tx!(self, |tx| requests::create(&tx, &self.key, new, grant, events, supersede))
    }

    async fn request(&self, id: i64) -> StoreResult<Option<RequestRecord>> {
        read!(self, |c| requests::load(c, id))
    }

    async fn requests(&self, filter: &RequestFilter) -> StoreResult<Vec<RequestRecord>> {
        read!(self, |c| requests::load_many(c, filter, None))
    }

    async fn apply(&self, change: RequestChange) -> StoreResult<RequestRecord> {
        in_tx!(self, |tx| requests::apply(&tx, &self.key, change))
    }

    async fn review(&self, id: i64, review: &Review, event: NewEvent) -> StoreResult<RequestRecord> {
        in_tx!(self, |tx| requests::review(&tx, &self.key, id, review, event))
    }

    async fn remind(&self, id: i64, last: Option<DateTime<Utc>>, now: DateTime<Utc>, event: NewEvent) -> StoreResult<bool> {
        in_tx!(self, |tx| requests::remind(&tx, &self.key, id, last, now, event))
    }

    async fn stale_pending(&self, cutoff: DateTime<Utc>) -> StoreResult<Vec<i64>> {
        read!(self, |c| requests::stale_pending(c, cutoff))
    }

    async fn grant(&self, id: i64) -> StoreResult<Option<GrantRecord>> {
        read!(self, |c| grants::load(c, id))
    }

    async fn grants(&self, user_id: Option<i64>, live_at: Option<DateTime<Utc>>, page: Page) -> StoreResult<Vec<GrantRecord>> {
        read!(self, |c| grants::list(c, user_id, live_at, page))
    }

    async fn revoke_grant(&self, id: i64, by: &str, at: DateTime<Utc>, event: NewEvent) -> StoreResult<GrantRecord> {
        in_tx!(self, |tx| grants::revoke(&tx, &self.key, id, by, at, event))
    }

    async fn grants_to_end(&self, now: DateTime<Utc>) -> StoreResult<Vec<GrantRecord>> {
        read!(self, |c| grants::to_end(c, now))
    }

    async fn mark_grant_ended(
        &self,
        id: i64,
        at: DateTime<Utc>,
        revoked: &[i64],
        released: &[String],
        events: Vec<NewEvent>,
    ) -> StoreResult<bool> {
        in_tx!(self, |tx| grants::mark_ended(&tx, &self.key, id, at, revoked, released, events))
    }

    async fn claim_grant(&self, id: i64, holder: &str, now: DateTime<Utc>, until: DateTime<Utc>) -> StoreResult<bool> {
        in_tx!(self, |tx| grants::claim(&tx, id, holder, now, until))
    }

    async fn host_failures(&self, id: i64, phase: HostPhase) -> StoreResult<u32> {
        read!(self, |c| grants::host_failures(c, id, phase))
    }

    async fn record_host_failure(
        &self,
        id: i64,
        phase: HostPhase,
        revoked: &[i64],
        failure: &EndFailure,
        event: NewEvent,
    ) -> StoreResult<()> {
        in_tx!(self, |tx| grants::record_host_failure(&tx, &self.key, id, phase, revoked, failure, event))
    }

    async fn grants_to_start(&self, repos: &[String], now: DateTime<Utc>) -> StoreResult<Vec<GrantRecord>> {
        read!(self, |c| grants::to_start(c, repos, now))
    }

    async fn mark_grant_started(&self, id: i64, at: DateTime<Utc>, held: Option<NewHostToken>, event: NewEvent) -> StoreResult<()> {
        in_tx!(self, |tx| grants::mark_started(&tx, &self.key, id, at, held.as_ref(), event))
    }

    async fn holder_of(&self, key: &str, except: i64) -> StoreResult<Option<HostToken>> {
        read!(self, |c| grants::holder_of(c, key, except))
    }

    async fn failing_ends(&self) -> StoreResult<Vec<FailingEnd>> {
        read!(self, |c| grants::failing_ends(c))
    }

    async fn next_grant_expiry(&self) -> StoreResult<Option<DateTime<Utc>>> {
        read!(self, |c| grants::next_expiry(c))
    }

    async fn add_credential(&self, credential: &NewCredential, event: NewEvent) -> StoreResult<()> {
        in_tx!(self, |tx| grants::add_credential(&tx, &self.key, credential, event))
    }

    async fn grant_by_credential(&self, hash: &TokenHash, now: DateTime<Utc>) -> StoreResult<Option<GrantRecord>> {
        read!(self, |c| grants::by_credential(c, hash, now))
    }

    async fn add_host_token(&self, token: &NewHostToken, event: NewEvent) -> StoreResult<()> {
        in_tx!(self, |tx| grants::add_host_token(&tx, &self.key, token, event))
    }

    async fn host_tokens(&self, grant_id: i64) -> StoreResult<Vec<HostToken>> {
        read!(self, |c| grants::host_tokens(c, grant_id))
    }

    async fn notify_start(&self, destinations: &[String]) -> StoreResult<()> {
        in_tx!(self, |tx| notify::start(&tx, destinations))
    }

    async fn notify_progress(&self) -> StoreResult<Vec<NotifyProgress>> {
        read!(self, |c| notify::list(c))
    }

    async fn notify_delivered(&self, destination: &str, seq: i64) -> StoreResult<()> {
        in_tx!(self, |tx| notify::delivered(&tx, destination, seq))
    }

    async fn notify_failed(
        &self,
        destination: &str,
        failures: u32,
        first_failed_at: DateTime<Utc>,
        error: &str,
        next_attempt_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        in_tx!(self, |tx| notify::failed(&tx, destination, failures, first_failed_at, error, next_attempt_at))
    }

    async fn notify_gave_up(&self, destination: &str, seq: i64, error: &str, event: NewEvent, at: DateTime<Utc>) -> StoreResult<()> {
        in_tx!(self, |tx| notify::gave_up(&tx, &self.key, destination, seq, error, event, at))
    }

    async fn append_events(&self, events: Vec<NewEvent>, at: DateTime<Utc>) -> StoreResult<()> {
        in_tx!(self, |tx| audit::append(&tx, &self.key, &events, at))
    }

    async fn latest_checkpoint(&self) -> StoreResult<Option<Checkpoint>> {
        read!(self, |c| audit::latest_checkpoint(c))
    }

    async fn audit(&self, after_seq: i64, since: Option<DateTime<Utc>>, limit: u32) -> StoreResult<Vec<AuditEvent>> {
        read!(self, |c| audit::events(c, after_seq, since, limit))
    }

    async fn grant_events(&self, grant_id: i64, request_id: i64) -> StoreResult<Vec<AuditEvent>> {
        read!(self, |c| audit::grant_events(c, grant_id, request_id))
    }

    async fn checkpoint_covering(&self, seq: i64) -> StoreResult<Option<Checkpoint>> {
        read!(self, |c| audit::checkpoint_covering(c, seq))
    }
}
