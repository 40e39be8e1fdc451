//! The embedded SQLite store: one file under the data directory, WAL mode.
//!
//! Every write goes through one connection owned by a [`Writer`] task, which
//! group-commits what is queued: one transaction and one `fsync` for many
//! decisions, each in its own savepoint, each acknowledged only after the
//! commit. Writes still run one at a time, so the audit chain never forks and
//! each compare-and-set in [`Store::apply`] is exact; reads use a pool beside it. Rows are read into
//! `FromRow` structs and converted once into the store's records; a value that
//! does not convert is [`StoreError::Corrupt`], never a panic.

use crate::domain::refs::RefScope;
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{FromRow, SqliteConnection, SqlitePool};

use super::{
    ApprovalRecord, EndFailure, FailingEnd, GrantRecord, HostPhase, HostToken, NewCredential, NewHostToken, NewRequest, NewUserRecord,
    Page, Removal, RequestChange, RequestFilter, RequestRecord, Store, StoreError, StoreResult, Supersede, Terms, UserRecord, attach_ids,
};
use crate::domain::audit::{Action, AuditEvent, Checkpoint, GENESIS, NewEvent, timestamp};
use crate::domain::request::{POLICY_DECIDER, RequestStatus};
use crate::domain::token::TokenHash;
use ed25519_dalek::SigningKey;
use sqlx::ConnectOptions;

use super::writer::Writer;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

pub struct SqliteStore {
    /// Reads; WAL lets them run beside the writer.
    pool: SqlitePool,
    /// Every write, group-committed on the one connection that writes (it
    /// holds the key that signs a checkpoint of the audit chain's head with
    /// every committed batch).
    writer: Writer,
    /// When the last integrity check ran, and what it found (for `/healthz`).
    integrity: tokio::sync::Mutex<Option<(std::time::Instant, Result<(), String>)>>,
}

/// How often `/healthz` re-runs SQLite's integrity check; in between it reports the last result.
const INTEGRITY_EVERY: Duration = Duration::from_secs(30);

/// The marker beside the database (`jit.db.id`): the identity of the database
/// this data dir was initialised with, and the latest audit checkpoint the
/// broker signed (its high-water mark, outside the database, so deleting
/// checkpoint rows cannot lower it unseen).
fn marker_path(db: &Path) -> std::path::PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(".id");
    p.into()
}

/// What the marker holds: `ID` on its first line, then
/// `checkpoint SEQ HASH AT SIGNATURE` once the log has been signed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Marker {
    id: Option<String>,
    checkpoint: Option<Checkpoint>,
}

impl Marker {
    fn parse(text: &str) -> Result<Marker, String> {
        let mut lines = text.lines();
        let id = lines.next().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string);
        let checkpoint = match lines.next() {
            None => None,
            Some(line) => match line.split(' ').collect::<Vec<_>>().as_slice() {
                ["checkpoint", seq, hash, at, signature] => Some(Checkpoint {
                    seq: seq.parse().map_err(|_| format!("`{seq}` is not an event number"))?,
                    hash: hash.to_string(),
                    at: at.to_string(),
                    signature: signature.to_string(),
                }),
                _ => return Err("its second line is not `checkpoint SEQ HASH AT SIGNATURE`".into()),
            },
        };
        Ok(Marker { id, checkpoint })
    }

    fn text(&self) -> String {
        let mut text = format!("{}\n", self.id.as_deref().unwrap_or_default());
        if let Some(cp) = &self.checkpoint {
            text.push_str(&format!("checkpoint {} {} {} {}\n", cp.seq, cp.hash, cp.at, cp.signature));
        }
        text
    }
}

/// Keeps the marker's checkpoint at the latest one committed, beside the
/// writer rather than in its way: the writer hands each new checkpoint over
/// and goes on; a task writes the newest one (replaced atomically, synced).
/// The mark may trail the database by the writes of one sync, never lead it.
pub struct HighWater {
    latest: tokio::sync::watch::Sender<Option<Checkpoint>>,
}

impl HighWater {
    fn start(marker: std::path::PathBuf, id: String) -> HighWater {
        let (latest, mut signed) = tokio::sync::watch::channel::<Option<Checkpoint>>(None);
        tokio::spawn(async move {
            loop {
                // Once the writer is gone, the last checkpoint it handed over is still written.
                let open = signed.changed().await.is_ok();
                let Some(cp) = signed.borrow_and_update().clone() else {
                    if open {
                        continue;
                    }
                    return;
                };
                let (path, text) = (marker.clone(), Marker { id: Some(id.clone()), checkpoint: Some(cp) }.text());
                let written = tokio::task::spawn_blocking(move || crate::fsutil::replace_private(&path, text.as_bytes())).await;
                if let Ok(Err(e)) = written {
                    tracing::error!(path = %marker.display(), error = %e, "could not record the audit log's high-water mark");
                }
                if !open {
                    return;
                }
            }
        });
        HighWater { latest }
    }

    /// A checkpoint is committed: record it.
    pub fn committed(&self, checkpoint: Checkpoint) {
        self.latest.send_replace(Some(checkpoint));
    }
}

/// SQLite's `quick_check`: `Ok` or what it found wrong.
async fn quick_check(pool: &SqlitePool) -> StoreResult<Result<(), String>> {
    let rows: Vec<(String,)> = sqlx::query_as("PRAGMA quick_check(5)").fetch_all(pool).await?;
    let found: Vec<String> = rows.into_iter().map(|(r,)| r).filter(|r| r != "ok").collect();
    Ok(if found.is_empty() { Ok(()) } else { Err(found.join("; ")) })
}

/// The database and its journal readable by the broker's user only, whatever the umask made them.
fn restrict_permissions(db: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    for suffix in ["", "-wal", "-shm", ".id"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        let p = std::path::PathBuf::from(p);
        if let Ok(meta) = std::fs::metadata(&p) {
            use std::os::unix::fs::PermissionsExt;
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(file = %p.display(), "database file was readable by others; made it owner-only (0600)");
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))?;
            }
        }
    }
    let _ = db;
    Ok(())
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(db) => {
                let code = db.code().and_then(|c| c.parse::<i32>().ok()).unwrap_or(0);
                // Primary result codes are the low byte of SQLite's extended codes.
                match code & 0xff {
                    11 | 26 => StoreError::Corrupt(e.to_string()), // SQLITE_CORRUPT, SQLITE_NOTADB
                    _ if db.is_unique_violation() => StoreError::AlreadyExists(db.message().to_string()),
                    _ => StoreError::Unavailable(e.to_string()),
                }
            }
            sqlx::Error::ColumnDecode { .. }
            | sqlx::Error::Decode(_)
            | sqlx::Error::ColumnNotFound(_)
            | sqlx::Error::TypeNotFound { .. } => StoreError::Corrupt(e.to_string()),
            _ => StoreError::Unavailable(e.to_string()),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        match e {
            sqlx::migrate::MigrateError::Execute(inner) => inner.into(),
            other => StoreError::Corrupt(format!("schema migration: {other}")),
        }
    }
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn time(v: i64) -> StoreResult<DateTime<Utc>> {
    Utc.timestamp_millis_opt(v).single().ok_or_else(|| StoreError::Corrupt(format!("bad timestamp {v}")))
}

fn opt_time(v: Option<i64>) -> StoreResult<Option<DateTime<Utc>>> {
    v.map(time).transpose()
}

fn parsed<T: std::str::FromStr>(what: &str, v: &str) -> StoreResult<T> {
    v.parse().map_err(|_| StoreError::Corrupt(format!("bad {what} `{v}`")))
}

#[derive(FromRow)]
struct UserRow {
    id: i64,
    name: String,
    groups_json: String,
    is_admin: bool,
    token_hash: Option<String>,
    created_at: i64,
}

impl UserRow {
    fn into_record(self) -> StoreResult<(UserRecord, TokenHash)> {
        let groups = serde_json::from_str(&self.groups_json).map_err(|e| StoreError::Corrupt(format!("groups of {}: {e}", self.name)))?;
        let record = UserRecord { id: self.id, name: self.name, groups, admin: self.is_admin, created_at: time(self.created_at)? };
        Ok((record, TokenHash(self.token_hash.unwrap_or_default())))
    }
}

/// Active users only: a removed user is kept for history but is nobody now.
const ACTIVE_USERS: &str = "SELECT * FROM users WHERE removed_at IS NULL";

#[derive(FromRow)]
struct GrantRow {
    id: i64,
    request_id: i64,
    user_id: Option<i64>,
    user: String,
    repo: String,
    level: String,
    rule: Option<String>,
    refs: Option<String>,
    from_networks: Option<String>,
    allow_deletes: Option<i64>,
    granted_at: i64,
    expires_at: i64,
    revoked_at: Option<i64>,
    revoked_by: Option<String>,
    ended_at: Option<i64>,
}

#[derive(FromRow)]
struct FailingRow {
    #[sqlx(flatten)]
    grant: GrantRow,
    end_failures: i64,
    end_error: Option<String>,
    end_retry_at: Option<i64>,
}

/// Stored terms: both columns, or neither (decided before they were kept).
fn terms(from_networks: Option<&str>, allow_deletes: Option<i64>) -> StoreResult<Option<Terms>> {
    let (Some(from), Some(deletes)) = (from_networks, allow_deletes) else { return Ok(None) };
    let from = from
        .lines()
        .map(|n| n.parse::<ipnet::IpNet>().map_err(|_| StoreError::Corrupt(format!("from_networks: `{n}` is not a network"))))
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(Some(Terms { from, allow_deletes: deletes != 0 }))
}

fn stored_networks(terms: &Terms) -> String {
    terms.from.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
}

/// A stored ref scope; one that no longer parses is a corrupt row.
fn scope(stored: Option<&str>) -> StoreResult<RefScope> {
    RefScope::from_stored(stored).map_err(|e| StoreError::Corrupt(format!("refs: {e}")))
}

impl TryFrom<GrantRow> for GrantRecord {
    type Error = StoreError;

    fn try_from(r: GrantRow) -> StoreResult<GrantRecord> {
        Ok(GrantRecord {
            id: r.id,
            request_id: r.request_id,
            user_id: r.user_id,
            user: r.user,
            repo: r.repo,
            level: parsed("level", &r.level)?,
            rule: r.rule,
            refs: scope(r.refs.as_deref())?,
            terms: terms(r.from_networks.as_deref(), r.allow_deletes)?,
            granted_at: time(r.granted_at)?,
            expires_at: time(r.expires_at)?,
            revoked_at: opt_time(r.revoked_at)?,
            revoked_by: r.revoked_by,
            ended_at: opt_time(r.ended_at)?,
        })
    }
}

#[derive(FromRow)]
struct EventRow {
    seq: i64,
    at: String,
    actor: String,
    action: String,
    request_id: Option<i64>,
    grant_id: Option<i64>,
    repo: Option<String>,
    level: Option<String>,
    detail: Option<String>,
    prev_hash: String,
    hash: String,
}

impl From<EventRow> for AuditEvent {
    fn from(r: EventRow) -> AuditEvent {
        AuditEvent {
            seq: r.seq,
            at: r.at,
            actor: r.actor,
            action: r.action,
            request_id: r.request_id,
            grant_id: r.grant_id,
            repo: r.repo,
            level: r.level,
            detail: r.detail,
            prev_hash: r.prev_hash,
            hash: r.hash,
        }
    }
}

/// One row of a request joined with one of its approvals (if any) and its grant (if any).
#[derive(FromRow)]
struct RequestJoinRow {
    id: i64,
    requester_id: Option<i64>,
    requester: String,
    repo: String,
    level: String,
    duration_secs: i64,
    reason: Option<String>,
    rule: String,
    approvals_required: i64,
    refs: Option<String>,
    from_networks: Option<String>,
    allow_deletes: Option<i64>,
    status: String,
    created_at: i64,
    decided_at: Option<i64>,
    decided_by: Option<String>,
    decision_note: Option<String>,
    a_approver: Option<String>,
    a_comment: Option<String>,
    a_at: Option<i64>,
    g_id: Option<i64>,
    g_granted_at: Option<i64>,
    g_expires_at: Option<i64>,
    g_revoked_at: Option<i64>,
    g_revoked_by: Option<String>,
    g_ended_at: Option<i64>,
}

/// Requests with their approvals and grant, in one query. `{where}` filters
/// the requests (before the limit), so a page holds whole requests.
const REQUESTS_QUERY: &str = "
SELECT r.id, r.requester_id, r.requester, r.repo, r.level, r.duration_secs, r.reason, r.rule, r.approvals_required, r.refs,
       r.from_networks, r.allow_deletes, r.status,
       r.created_at, r.decided_at, r.decided_by, r.decision_note,
       a.approver AS a_approver, a.comment AS a_comment, a.at AS a_at,
       g.id AS g_id, g.granted_at AS g_granted_at, g.expires_at AS g_expires_at,
       g.revoked_at AS g_revoked_at, g.revoked_by AS g_revoked_by, g.ended_at AS g_ended_at
FROM (SELECT * FROM requests WHERE {where} ORDER BY id DESC LIMIT ?3) r
LEFT JOIN approvals a ON a.request_id = r.id
LEFT JOIN grants g ON g.request_id = r.id
ORDER BY r.id DESC, a.at, a.approver";

/// Folds joined rows (grouped by request, newest first) into records.
fn fold_requests(rows: Vec<RequestJoinRow>) -> StoreResult<Vec<RequestRecord>> {
    let mut out: Vec<RequestRecord> = Vec::new();
    for row in rows {
        if out.last().is_none_or(|r| r.id != row.id) {
            let level = parsed("level", &row.level)?;
            let refs = scope(row.refs.as_deref())?;
            let terms = terms(row.from_networks.as_deref(), row.allow_deletes)?;
            let grant = match row.g_id {
                Some(gid) => Some(GrantRecord {
                    id: gid,
                    request_id: row.id,
                    user_id: row.requester_id,
                    user: row.requester.clone(),
                    repo: row.repo.clone(),
                    level,
                    rule: Some(row.rule.clone()),
                    refs: refs.clone(),
                    terms: terms.clone(),
                    granted_at: time(row.g_granted_at.unwrap_or_default())?,
                    expires_at: time(row.g_expires_at.unwrap_or_default())?,
                    revoked_at: opt_time(row.g_revoked_at)?,
                    revoked_by: row.g_revoked_by.clone(),
                    ended_at: opt_time(row.g_ended_at)?,
                }),
                None => None,
            };
            out.push(RequestRecord {
                id: row.id,
                requester_id: row.requester_id,
                requester: row.requester.clone(),
                repo: row.repo.clone(),
                level,
                duration_secs: u64::try_from(row.duration_secs).map_err(|_| StoreError::Corrupt("negative duration".into()))?,
                reason: row.reason.clone(),
                rule: row.rule.clone(),
                approvals_required: u32::try_from(row.approvals_required).map_err(|_| StoreError::Corrupt("bad approval count".into()))?,
                refs,
                terms,
                status: parsed("status", &row.status)?,
                created_at: time(row.created_at)?,
                decided_at: opt_time(row.decided_at)?,
                decided_by: row.decided_by.clone(),
                decision_note: row.decision_note.clone(),
                approvals: Vec::new(),
                grant,
            });
        }
        if let (Some(approver), Some(at)) = (row.a_approver, row.a_at) {
            let record = out.last_mut().expect("pushed above");
            record.approvals.push(ApprovalRecord { approver, comment: row.a_comment, at: time(at)? });
        }
    }
    Ok(out)
}

async fn load_requests(conn: &mut SqliteConnection, filter: &RequestFilter, id: Option<i64>) -> StoreResult<Vec<RequestRecord>> {
    let query = REQUESTS_QUERY.replace(
        "{where}",
        "(?1 IS NULL OR requester_id = ?1) AND (?2 IS NULL OR status = ?2) AND (?4 IS NULL OR id = ?4) AND (?5 IS NULL OR id < ?5)",
    );
    let rows: Vec<RequestJoinRow> = sqlx::query_as(&query)
        .bind(filter.requester_id)
        .bind(filter.status.map(RequestStatus::as_str))
        .bind(i64::from(filter.page.limit))
        .bind(id)
        .bind(filter.page.before)
        .fetch_all(&mut *conn)
        .await?;
    fold_requests(rows)
}

async fn load_request(conn: &mut SqliteConnection, id: i64) -> StoreResult<Option<RequestRecord>> {
    Ok(load_requests(conn, &RequestFilter::default(), Some(id)).await?.pop())
}

async fn must_load_request(conn: &mut SqliteConnection, id: i64) -> StoreResult<RequestRecord> {
    load_request(conn, id).await?.ok_or_else(|| StoreError::NotFound(format!("request {id}")))
}

/// A time as the store keeps it (to the millisecond), so a record built in
/// memory equals the one a read would return.
fn as_stored(t: DateTime<Utc>) -> StoreResult<DateTime<Utc>> {
    time(ms(t))
}

/// The grant `insert_grant` wrote for `req`, as a read would return it.
fn grant_of(req: &RequestRecord, id: i64, (granted_at, expires_at): (DateTime<Utc>, DateTime<Utc>)) -> StoreResult<GrantRecord> {
    Ok(GrantRecord {
        id,
        request_id: req.id,
        user_id: req.requester_id,
        user: req.requester.clone(),
        repo: req.repo.clone(),
        level: req.level,
        rule: Some(req.rule.clone()),
        refs: req.refs.clone(),
        terms: req.terms.clone(),
        granted_at: as_stored(granted_at)?,
        expires_at: as_stored(expires_at)?,
        revoked_at: None,
        revoked_by: None,
        ended_at: None,
    })
}

/// What `current` became once `change` was written (the new grant, if any,
/// has id `grant_id`): the writer answers with it instead of reading it back.
fn after_change(mut req: RequestRecord, change: &RequestChange, grant_id: Option<i64>) -> StoreResult<RequestRecord> {
    if let Some(a) = &change.add_approval {
        req.approvals.push(ApprovalRecord { at: as_stored(a.at)?, ..a.clone() });
        // The order a read returns them in.
        req.approvals.sort_by(|x, y| (x.at, &x.approver).cmp(&(y.at, &y.approver)));
    }
    if let Some((status, by, note)) = &change.decide {
        req.status = *status;
        req.decided_at = Some(as_stored(change.at)?);
        req.decided_by = Some(by.clone());
        req.decision_note = note.clone();
    }
    if let (Some(id), Some(window)) = (grant_id, change.grant) {
        req.grant = Some(grant_of(&req, id, window)?);
    }
    Ok(req)
}

/// The audit chain's head as the writer left it, and the key that signs it.
/// Only the writer appends, so it need not read the head back for every
/// append; it signs one checkpoint per committed batch.
pub struct Chain {
    key: SigningKey,
    /// `None` until read from the database, and again after a failed batch.
    head: Option<ChainHead>,
    /// Where each committed checkpoint is also recorded, outside the database.
    high_water: Option<HighWater>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    seq: i64,
    hash: String,
    at: String,
}

impl Chain {
    pub fn new(key: SigningKey) -> Chain {
        Chain { key, head: None, high_water: None }
    }

    fn keeping_high_water(self, high_water: HighWater) -> Chain {
        Chain { high_water: Some(high_water), ..self }
    }

    /// The batch that signed `checkpoint` is committed.
    pub fn committed(&self, checkpoint: Checkpoint) {
        if let Some(high_water) = &self.high_water {
            high_water.committed(checkpoint);
        }
    }

    async fn head(&mut self, conn: &mut SqliteConnection) -> StoreResult<ChainHead> {
        if let Some(head) = &self.head {
            return Ok(head.clone());
        }
        let last: Option<(i64, String, String)> =
            sqlx::query_as("SELECT seq, hash, at FROM audit_events ORDER BY seq DESC LIMIT 1").fetch_optional(&mut *conn).await?;
        let (seq, hash, at) = last.unwrap_or_else(|| (0, GENESIS.to_string(), String::new()));
        Ok(ChainHead { seq, hash, at })
    }

    /// Where the head is (to put it back if a job is rolled back).
    pub fn mark(&self) -> Option<ChainHead> {
        self.head.clone()
    }

    pub fn reset(&mut self, mark: Option<ChainHead>) {
        self.head = mark;
    }

    /// Signs a checkpoint of the head, inside the batch's transaction, if it
    /// moved since `since`; returns it.
    pub async fn sign_if_moved(&self, conn: &mut SqliteConnection, since: &Option<ChainHead>) -> StoreResult<Option<Checkpoint>> {
        let Some(head) = self.head.as_ref().filter(|h| Some(*h) != since.as_ref()) else { return Ok(None) };
        let cp = Checkpoint::sign(&self.key, head.seq, &head.hash, &head.at);
        sqlx::query("INSERT INTO audit_checkpoints (seq, hash, at, signature) VALUES (?, ?, ?, ?)")
            .bind(cp.seq)
            .bind(&cp.hash)
            .bind(&cp.at)
            .bind(&cp.signature)
            .execute(&mut *conn)
            .await?;
        Ok(Some(cp))
    }
}

/// Events per `INSERT`: 11 values each, well inside SQLite's 32,766 bound parameters.
const EVENTS_PER_INSERT: usize = 256;

/// Appends events to the chain inside the writer's transaction (whose
/// commit signs a checkpoint of the new head), in one statement per
/// [`EVENTS_PER_INSERT`] events rather than one per event.
async fn insert_host_token(conn: &mut SqliteConnection, token: &NewHostToken) -> StoreResult<()> {
    sqlx::query("INSERT INTO host_tokens (grant_id, sealed, created_at, expires_at, shared_key) VALUES (?, ?, ?, ?, ?)")
        .bind(token.grant_id)
        .bind(&token.sealed)
        .bind(ms(token.created_at))
        .bind(ms(token.expires_at))
        .bind(&token.shared_key)
        .execute(conn)
        .await?;
    Ok(())
}

async fn append(conn: &mut SqliteConnection, chain: &mut Chain, events: &[NewEvent], at: DateTime<Utc>) -> StoreResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    let ChainHead { mut seq, hash: mut prev, .. } = chain.head(conn).await?;
    let at = timestamp(at);
    let mut chained = Vec::with_capacity(events.len());
    for event in events {
        seq += 1;
        let e = AuditEvent::chain(event, seq, at.clone(), &prev);
        prev = e.hash.clone();
        chained.push(e);
    }
    for part in chained.chunks(EVENTS_PER_INSERT) {
        let mut insert = sqlx::QueryBuilder::new(
            "INSERT INTO audit_events (seq, at, actor, action, request_id, grant_id, repo, level, detail, prev_hash, hash) ",
        );
        insert.push_values(part, |mut row, e| {
            row.push_bind(e.seq)
                .push_bind(&e.at)
                .push_bind(&e.actor)
                .push_bind(&e.action)
                .push_bind(e.request_id)
                .push_bind(e.grant_id)
                .push_bind(&e.repo)
                .push_bind(&e.level)
                .push_bind(&e.detail)
                .push_bind(&e.prev_hash)
                .push_bind(&e.hash);
        });
        insert.build().execute(&mut *conn).await?;
    }
    chain.head = Some(ChainHead { seq, hash: prev, at });
    Ok(())
}

async fn insert_grant(conn: &mut SqliteConnection, req: &RequestRecord, window: (DateTime<Utc>, DateTime<Utc>)) -> StoreResult<i64> {
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO grants (request_id, user_id, user, repo, level, rule, refs, from_networks, allow_deletes, granted_at, expires_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(req.id)
    .bind(req.requester_id)
    .bind(&req.requester)
    .bind(&req.repo)
    .bind(req.level.as_str())
    .bind(&req.rule)
    .bind(req.refs.to_stored())
    .bind(req.terms.as_ref().map(stored_networks))
    .bind(req.terms.as_ref().map(|t| i64::from(t.allow_deletes)))
    .bind(ms(window.0))
    .bind(ms(window.1))
    .fetch_one(&mut *conn)
    .await?;
    Ok(id)
}

/// Ends each superseded grant that is still live at `at`, with its event;
/// one that ended meanwhile is left as it is. Its gateway credentials now
/// answer to the grant `by` that covers it (same user and repo, a level at
/// least as high, ending no earlier; each keeps its own expiry), so a
/// credential git already holds keeps working, with the new level, instead
/// of failing once before git asks for another. Returns the events of the
/// grants it ended, for the caller's one append.
async fn supersede(conn: &mut SqliteConnection, grants: Vec<Supersede>, by: i64, at: DateTime<Utc>) -> StoreResult<Vec<NewEvent>> {
    let mut ended_events = Vec::new();
    for Supersede { grant_id: id, event, ended } in grants {
        let done = sqlx::query(
            "UPDATE grants SET revoked_at = ?, revoked_by = ?, ended_at = ? WHERE id = ? AND revoked_at IS NULL AND expires_at > ?",
        )
        .bind(ms(at))
        .bind(&event.actor)
        .bind(ended.then(|| ms(at)))
        .bind(id)
        .bind(ms(at))
        .execute(&mut *conn)
        .await?;
        if done.rows_affected() == 1 {
            sqlx::query("UPDATE credentials SET grant_id = ? WHERE grant_id = ?").bind(by).bind(id).execute(&mut *conn).await?;
            ended_events.push(event);
        }
    }
    Ok(ended_events)
}

async fn load_grant(conn: &mut SqliteConnection, id: i64) -> StoreResult<Option<GrantRecord>> {
    let row: Option<GrantRow> = sqlx::query_as("SELECT * FROM grants WHERE id = ?").bind(id).fetch_optional(&mut *conn).await?;
    row.map(GrantRecord::try_from).transpose()
}

impl SqliteStore {
    /// Opens (creating if needed) `path` and brings its schema up to date.
    ///
    /// Refuses, rather than start empty, when this data dir was initialised
    /// (its marker exists) but the database is missing, empty or another one;
    /// and when SQLite's integrity check finds damage.
    pub async fn open(path: &Path, key: SigningKey) -> StoreResult<SqliteStore> {
        let marker = marker_path(path);
        for suffix in ["", "-wal", "-shm"] {
            let mut file = path.as_os_str().to_owned();
            file.push(suffix);
            crate::fsutil::check_ours(Path::new(&file)).map_err(|e| StoreError::Unavailable(e.to_string()))?;
        }
        let kept = match crate::fsutil::read_private(&marker) {
            Ok(bytes) => {
                Marker::parse(&String::from_utf8_lossy(&bytes)).map_err(|e| StoreError::Corrupt(format!("{}: {e}", marker.display())))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Marker::default(),
            Err(e) => return Err(StoreError::Unavailable(format!("cannot read {}: {e}", marker.display()))),
        };
        let expected_id = kept.id.clone();
        let existing = std::fs::metadata(path).map(|m| m.len() > 0).unwrap_or(false);
        if let (Some(id), false) = (&expected_id, existing) {
            return Err(StoreError::Corrupt(format!(
                "{} is missing or empty, but this data dir held database {id} (see {}); restore it from a backup rather than start an empty broker",
                path.display(),
                marker.display()
            )));
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: an acknowledged decision survives power loss, not only a crash.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            // A local file's connection does not drop; testing it costs a
            // round trip to its thread on every read.
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await?;
        restrict_permissions(path).map_err(|e| StoreError::Unavailable(format!("cannot make {} private: {e}", path.display())))?;
        if existing && let Err(found) = quick_check(&pool).await? {
            return Err(StoreError::Corrupt(format!("{} failed SQLite's integrity check: {found}", path.display())));
        }
        MIGRATOR.run(&pool).await?;
        let fresh_id = hex::encode(rand::random::<[u8; 16]>());
        sqlx::query("INSERT OR IGNORE INTO meta (key, value) VALUES ('database_id', ?)").bind(&fresh_id).execute(&pool).await?;
        let (id,): (String,) = sqlx::query_as("SELECT value FROM meta WHERE key = 'database_id'").fetch_one(&pool).await?;
        if let Some(expected) = expected_id
            && expected != id
        {
            return Err(StoreError::Corrupt(format!(
                "{} is database {id}, but this data dir held database {expected} (see {}); put the right file back",
                path.display(),
                marker.display()
            )));
        }
        let latest = check_tail(&pool, &key.verifying_key(), kept.checkpoint.as_ref(), &marker).await?;
        if kept.id.is_none() || kept.checkpoint.is_none() {
            // A new data dir, or one from before the mark was kept: start it at the log's latest checkpoint.
            let fresh = Marker { id: Some(id.clone()), checkpoint: latest };
            crate::fsutil::replace_private(&marker, fresh.text().as_bytes())
                .map_err(|e| StoreError::Unavailable(format!("cannot write {}: {e}", marker.display())))?;
        }
        let chain = Chain::new(key).keeping_high_water(HighWater::start(marker, id));
        let writer = Writer::start(options.connect().await?, chain);
        Ok(SqliteStore { pool, writer, integrity: tokio::sync::Mutex::new(None) })
    }

    async fn latest_checkpoint_row(&self) -> StoreResult<Option<Checkpoint>> {
        latest_checkpoint_row(&self.pool).await
    }
}

async fn latest_checkpoint_row(pool: &SqlitePool) -> StoreResult<Option<Checkpoint>> {
    let row: Option<(i64, String, String, String)> =
        sqlx::query_as("SELECT seq, hash, at, signature FROM audit_checkpoints ORDER BY seq DESC LIMIT 1").fetch_optional(pool).await?;
    Ok(row.map(|(seq, hash, at, signature)| Checkpoint { seq, hash, at, signature }))
}

/// The log must hold its latest signed checkpoint, and the one the marker
/// kept (which checkpoint rows deleted from the database cannot lower):
/// each signed with this broker's key, each event there with the hash
/// signed. Events cut from its end, or rewritten, while the broker was down
/// stop it from starting (and from signing a shorter log as if it were
/// whole). Returns the database's latest checkpoint.
async fn check_tail(
    pool: &SqlitePool,
    key: &ed25519_dalek::VerifyingKey,
    kept: Option<&Checkpoint>,
    marker: &Path,
) -> StoreResult<Option<Checkpoint>> {
    let latest = latest_checkpoint_row(pool).await?;
    if let Some(cp) = &latest {
        cp.verify(key).map_err(|_| {
            StoreError::Corrupt(format!(
                "the audit log's latest checkpoint (event {}) is not signed with this broker's key: the log was rewritten",
                cp.seq
            ))
        })?;
        holds_checkpoint(pool, cp).await?;
    }
    if let Some(kept) = kept {
        kept.verify(key)
            .map_err(|_| StoreError::Corrupt(format!("{} holds a checkpoint not signed with this broker's key", marker.display())))?;
        if latest.as_ref().is_none_or(|l| l.seq < kept.seq) {
            return Err(StoreError::Corrupt(format!(
                "the broker signed at {} that the audit log reached event {} (kept in {}), but the database's signed checkpoints end {}: checkpoints were deleted",
                kept.at,
                kept.seq,
                marker.display(),
                latest.map(|l| format!("at event {}", l.seq)).unwrap_or_else(|| "before any".into())
            )));
        }
        holds_checkpoint(pool, kept).await?;
    }
    Ok(latest)
}

/// Whether the event `cp` signs is in the log with the hash signed.
async fn holds_checkpoint(pool: &SqlitePool, cp: &Checkpoint) -> StoreResult<()> {
    let signed: Option<(String,)> = sqlx::query_as("SELECT hash FROM audit_events WHERE seq = ?").bind(cp.seq).fetch_optional(pool).await?;
    match signed {
        Some((hash,)) if hash == cp.hash => Ok(()),
        Some(_) => {
            Err(StoreError::Corrupt(format!("audit event {} is not the one the broker signed at {}: the log was rewritten", cp.seq, cp.at)))
        }
        None => {
            let head: Option<(i64,)> =
                sqlx::query_as("SELECT seq FROM audit_events ORDER BY seq DESC LIMIT 1").fetch_optional(pool).await?;
            Err(StoreError::Corrupt(format!(
                "the audit log ends at event {} but the broker signed at {} that it reached event {}: events were removed from its end",
                head.map(|(s,)| s).unwrap_or(0),
                cp.at,
                cp.seq
            )))
        }
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await;
    }

    async fn check(&self) -> StoreResult<()> {
        // Every table answers a read...
        for table in ["users", "requests", "approvals", "grants", "credentials", "audit_events", "meta"] {
            sqlx::query(&format!("SELECT 1 FROM {table} LIMIT 1")).execute(&self.pool).await?;
        }
        // ...and the file passed SQLite's integrity check lately.
        let mut last = self.integrity.lock().await;
        let stale = last.as_ref().is_none_or(|(at, _)| at.elapsed() > INTEGRITY_EVERY);
        if stale {
            *last = Some((std::time::Instant::now(), quick_check(&self.pool).await?));
        }
        match last.as_ref().map(|(_, r)| r.clone()) {
            Some(Err(found)) => Err(StoreError::Corrupt(format!("integrity check: {found}"))),
            _ => Ok(()),
        }
    }

    async fn user_by_token(&self, token: &TokenHash) -> StoreResult<Option<(UserRecord, TokenHash)>> {
        let row: Option<UserRow> =
            sqlx::query_as(&format!("{ACTIVE_USERS} AND token_hash = ?")).bind(&token.0).fetch_optional(&self.pool).await?;
        row.map(UserRow::into_record).transpose()
    }

    async fn user(&self, name: &str) -> StoreResult<Option<UserRecord>> {
        let row: Option<UserRow> = sqlx::query_as(&format!("{ACTIVE_USERS} AND name = ?")).bind(name).fetch_optional(&self.pool).await?;
        Ok(row.map(UserRow::into_record).transpose()?.map(|(u, _)| u))
    }

    async fn user_by_id(&self, id: i64) -> StoreResult<Option<UserRecord>> {
        let row: Option<UserRow> = sqlx::query_as(&format!("{ACTIVE_USERS} AND id = ?")).bind(id).fetch_optional(&self.pool).await?;
        Ok(row.map(UserRow::into_record).transpose()?.map(|(u, _)| u))
    }

    async fn users(&self) -> StoreResult<Vec<UserRecord>> {
        let rows: Vec<UserRow> = sqlx::query_as(&format!("{ACTIVE_USERS} ORDER BY name")).fetch_all(&self.pool).await?;
        rows.into_iter().map(|r| r.into_record().map(|(u, _)| u)).collect()
    }

    async fn add_user(&self, user: &NewUserRecord, token: &TokenHash, only_if_no_admin: bool, event: NewEvent) -> StoreResult<UserRecord> {
        let (user, token) = (user.clone(), token.clone());
        self.writer
            .write(move |tx, chain| {
                Box::pin(async move {
                    let (user, token) = (&user, &token);
                    if only_if_no_admin {
                        let (admins,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users WHERE is_admin = 1 AND removed_at IS NULL")
                            .fetch_one(&mut *tx)
                            .await?;
                        if admins > 0 {
                            return Err(StoreError::Conflict);
                        }
                    }
                    let exists = sqlx::query("SELECT 1 FROM users WHERE name = ? AND removed_at IS NULL")
                        .bind(&user.name)
                        .fetch_optional(&mut *tx)
                        .await?;
                    if exists.is_some() {
                        return Err(StoreError::AlreadyExists(format!("user `{}`", user.name)));
                    }
                    let (id,): (i64,) = sqlx::query_as(
                        "INSERT INTO users (name, groups_json, is_admin, token_hash, created_at) VALUES (?, ?, ?, ?, ?) RETURNING id",
                    )
                    .bind(&user.name)
                    .bind(serde_json::to_string(&user.groups).expect("strings serialize"))
                    .bind(user.admin)
                    .bind(&token.0)
                    .bind(ms(user.created_at))
                    .fetch_one(&mut *tx)
                    .await?;
                    append(tx, chain, &[event], user.created_at).await?;
                    Ok(UserRecord {
                        id,
                        name: user.name.clone(),
                        groups: user.groups.clone(),
                        admin: user.admin,
                        created_at: user.created_at,
                    })
                })
            })
            .await
    }

    async fn remove_user(&self, name: &str, by: &str, why: &str, at: DateTime<Utc>, event: NewEvent) -> StoreResult<Removal> {
        let (name, by, why) = (name.to_string(), by.to_string(), why.to_string());
        self.writer
            .write(move |tx, chain| {
                Box::pin(async move {
                    let (name, by, why) = (name.as_str(), by.as_str(), why.as_str());
                    let found: Option<(i64,)> = sqlx::query_as("SELECT id FROM users WHERE name = ? AND removed_at IS NULL")
                        .bind(name)
                        .fetch_optional(&mut *tx)
                        .await?;
                    let Some((user_id,)) = found else { return Err(StoreError::NotFound(format!("user `{name}`"))) };
                    sqlx::query("UPDATE users SET removed_at = ?, token_hash = NULL WHERE id = ?")
                        .bind(ms(at))
                        .bind(user_id)
                        .execute(&mut *tx)
                        .await?;
                    let mut removal = Removal::default();
                    let mut events = Vec::new();
                    let live: Vec<GrantRow> =
                        sqlx::query_as("SELECT * FROM grants WHERE user_id = ? AND revoked_at IS NULL AND expires_at > ?")
                            .bind(user_id)
                            .bind(ms(at))
                            .fetch_all(&mut *tx)
                            .await?;
                    for row in live {
                        sqlx::query("UPDATE grants SET revoked_at = ?, revoked_by = ? WHERE id = ?")
                            .bind(ms(at))
                            .bind(by)
                            .bind(row.id)
                            .execute(&mut *tx)
                            .await?;
                        let grant = GrantRecord::try_from(row)?;
                        let mut e = NewEvent::new(by, Action::Revoked);
                        e.request_id = Some(grant.request_id);
                        e.grant_id = Some(grant.id);
                        e.repo = Some(grant.repo.clone());
                        e.level = Some(grant.level);
                        e.detail = Some(why.to_string());
                        events.push(e);
                        removal.grants.push(grant);
                    }
                    let pending: Vec<(i64, String, String)> =
                        sqlx::query_as("SELECT id, repo, level FROM requests WHERE requester_id = ? AND status = ?")
                            .bind(user_id)
                            .bind(RequestStatus::Pending.as_str())
                            .fetch_all(&mut *tx)
                            .await?;
                    for (id, repo, level) in pending {
                        sqlx::query("UPDATE requests SET status = ?, decided_at = ?, decided_by = ?, decision_note = ? WHERE id = ?")
                            .bind(RequestStatus::Canceled.as_str())
                            .bind(ms(at))
                            .bind(by)
                            .bind(why)
                            .bind(id)
                            .execute(&mut *tx)
                            .await?;
                        let mut e = NewEvent::new(by, Action::Canceled);
                        e.request_id = Some(id);
                        e.repo = Some(repo);
                        e.level = Some(parsed("level", &level)?);
                        e.detail = Some(why.to_string());
                        events.push(e);
                        removal.requests.push(id);
                    }
                    // Their votes on requests still pending no longer count toward N of M.
                    let voted: Vec<(i64, String, String)> = sqlx::query_as(
                        "SELECT r.id, r.repo, r.level FROM approvals a JOIN requests r ON r.id = a.request_id
                         WHERE a.approver = ? AND r.status = ? ORDER BY r.id",
                    )
                    .bind(name)
                    .bind(RequestStatus::Pending.as_str())
                    .fetch_all(&mut *tx)
                    .await?;
                    for (id, repo, level) in voted {
                        sqlx::query("DELETE FROM approvals WHERE request_id = ? AND approver = ?")
                            .bind(id)
                            .bind(name)
                            .execute(&mut *tx)
                            .await?;
                        let mut e = NewEvent::new(by, Action::ApprovalWithdrawn);
                        e.request_id = Some(id);
                        e.repo = Some(repo);
                        e.level = Some(parsed("level", &level)?);
                        e.detail = Some(format!("{name}'s approval no longer counts: {why}"));
                        events.push(e);
                    }
                    removal.credentials =
                        sqlx::query("DELETE FROM credentials WHERE grant_id IN (SELECT id FROM grants WHERE user_id = ?)")
                            .bind(user_id)
                            .execute(&mut *tx)
                            .await?
                            .rows_affected();
                    events.push(event);
                    append(tx, chain, &events, at).await?;
                    Ok(removal)
                })
            })
            .await
    }

    async fn set_token(&self, name: &str, token: &TokenHash, at: DateTime<Utc>, mut event: NewEvent) -> StoreResult<u64> {
        let (name, token) = (name.to_string(), token.clone());
        self.writer
            .write(move |tx, chain| {
                Box::pin(async move {
                    let (name, token) = (name.as_str(), &token);
                    let found: Option<(i64,)> = sqlx::query_as("SELECT id FROM users WHERE name = ? AND removed_at IS NULL")
                        .bind(name)
                        .fetch_optional(&mut *tx)
                        .await?;
                    let Some((user_id,)) = found else { return Err(StoreError::NotFound(format!("user `{name}`"))) };
                    sqlx::query("UPDATE users SET token_hash = ? WHERE id = ?").bind(&token.0).bind(user_id).execute(&mut *tx).await?;
                    let revoked = sqlx::query("DELETE FROM credentials WHERE grant_id IN (SELECT id FROM grants WHERE user_id = ?)")
                        .bind(user_id)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    let before = event.detail.take().unwrap_or_default();
                    event.detail = Some(format!("{before} ({revoked} git credential(s) minted under the old token revoked)"));
                    append(tx, chain, &[event], at).await?;
                    Ok(revoked)
                })
            })
            .await
    }

    async fn admin_count(&self) -> StoreResult<u64> {
        let (n,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM users WHERE is_admin = 1 AND removed_at IS NULL").fetch_one(&self.pool).await?;
        Ok(n.max(0) as u64)
    }

    async fn create_request(
        &self,
        new: &NewRequest,
        grant: Option<(DateTime<Utc>, DateTime<Utc>)>,
        mut events: Vec<NewEvent>,
        superseded: Vec<Supersede>,
    ) -> StoreResult<RequestRecord> {
        let status = if grant.is_some() { RequestStatus::Approved } else { RequestStatus::Pending };
        let new = new.clone();
        self.writer
            .write(move |tx, chain| {
                Box::pin(async move {
                    let new = &new;
                    let (id,): (i64,) = sqlx::query_as(
                        "INSERT INTO requests (requester_id, requester, repo, level, duration_secs, reason, rule, approvals_required, refs,
                                               from_networks, allow_deletes, status, created_at, decided_at, decided_by)
                         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                    )
                    .bind(new.requester_id)
                    .bind(&new.requester)
                    .bind(&new.repo)
                    .bind(new.level.as_str())
                    .bind(new.duration_secs as i64)
                    .bind(&new.reason)
                    .bind(&new.rule)
                    .bind(i64::from(new.approvals_required))
                    .bind(new.refs.to_stored())
                    .bind(stored_networks(&new.terms))
                    .bind(i64::from(new.terms.allow_deletes))
                    .bind(status.as_str())
                    .bind(ms(new.created_at))
                    .bind(grant.map(|_| ms(new.created_at)))
                    .bind(grant.map(|_| POLICY_DECIDER))
                    .fetch_one(&mut *tx)
                    .await?;
                    let mut record = RequestRecord {
                        id,
                        requester_id: Some(new.requester_id),
                        requester: new.requester.clone(),
                        repo: new.repo.clone(),
                        level: new.level,
                        duration_secs: new.duration_secs,
                        reason: new.reason.clone(),
                        rule: new.rule.clone(),
                        approvals_required: new.approvals_required,
                        refs: new.refs.clone(),
                        terms: Some(new.terms.clone()),
                        status,
                        created_at: as_stored(new.created_at)?,
                        decided_at: grant.map(|_| as_stored(new.created_at)).transpose()?,
                        decided_by: grant.map(|_| POLICY_DECIDER.to_string()),
                        decision_note: None,
                        approvals: Vec::new(),
                        grant: None,
                    };
                    let grant_id = match grant {
                        Some(window) => {
                            let grant_id = insert_grant(tx, &record, window).await?;
                            record.grant = Some(grant_of(&record, grant_id, window)?);
                            Some(grant_id)
                        }
                        None => None,
                    };
                    attach_ids(&mut events, id, grant_id);
                    if let Some(grant_id) = grant_id {
                        events.extend(supersede(tx, superseded, grant_id, new.created_at).await?);
                    }
                    append(tx, chain, &events, new.created_at).await?;
                    Ok(record)
                })
            })
            .await
    }

    async fn request(&self, id: i64) -> StoreResult<Option<RequestRecord>> {
        let mut conn = self.pool.acquire().await?;
        load_request(&mut conn, id).await
    }

    async fn requests(&self, filter: &RequestFilter) -> StoreResult<Vec<RequestRecord>> {
        let mut conn = self.pool.acquire().await?;
        load_requests(&mut conn, filter, None).await
    }

    async fn apply(&self, change: RequestChange) -> StoreResult<RequestRecord> {
        self.writer
            .write(move |tx, chain| {
                Box::pin(async move {
                    let current = must_load_request(tx, change.request_id).await?;
                    if current.status != RequestStatus::Pending || current.approvals.len() != change.expect_approvals {
                        return Err(StoreError::Conflict);
                    }
                    if let Some(a) = &change.add_approval {
                        sqlx::query("INSERT INTO approvals (request_id, approver, comment, at) VALUES (?, ?, ?, ?)")
                            .bind(change.request_id)
                            .bind(&a.approver)
                            .bind(&a.comment)
                            .bind(ms(a.at))
                            .execute(&mut *tx)
                            .await?;
                    }
                    let mut grant_id = None;
                    if let Some((status, by, note)) = &change.decide {
                        sqlx::query(
                            "UPDATE requests SET status = ?, decided_at = ?, decided_by = ?, decision_note = ? WHERE id = ? AND status = ?",
                        )
                        .bind(status.as_str())
                        .bind(ms(change.at))
                        .bind(by)
                        .bind(note)
                        .bind(change.request_id)
                        .bind(RequestStatus::Pending.as_str())
                        .execute(&mut *tx)
                        .await?;
                        if let Some(window) = change.grant {
                            grant_id = Some(insert_grant(tx, &current, window).await?);
                        }
                    }
                    let record = after_change(current, &change, grant_id)?;
                    let mut events = change.events;
                    attach_ids(&mut events, change.request_id, grant_id);
                    if let Some(grant_id) = grant_id {
                        events.extend(supersede(tx, change.supersede, grant_id, change.at).await?);
                    }
                    append(tx, chain, &events, change.at).await?;
                    Ok(record)
                })
            })
            .await
    }

    async fn stale_pending(&self, cutoff: DateTime<Utc>) -> StoreResult<Vec<i64>> {
        let ids: Vec<(i64,)> = sqlx::query_as("SELECT id FROM requests WHERE status = ? AND created_at <= ? ORDER BY id")
            .bind(RequestStatus::Pending.as_str())
            .bind(ms(cutoff))
            .fetch_all(&self.pool)
            .await?;
        Ok(ids.into_iter().map(|(id,)| id).collect())
    }

    async fn grant(&self, id: i64) -> StoreResult<Option<GrantRecord>> {
        let mut conn = self.pool.acquire().await?;
        load_grant(&mut conn, id).await
    }

    async fn grants(&self, user_id: Option<i64>, live_at: Option<DateTime<Utc>>, page: Page) -> StoreResult<Vec<GrantRecord>> {
        let rows: Vec<GrantRow> = sqlx::query_as(
            "SELECT * FROM grants WHERE (?1 IS NULL OR user_id = ?1)
               AND (?2 IS NULL OR (revoked_at IS NULL AND expires_at > ?2))
               AND (?3 IS NULL OR id < ?3)
             ORDER BY id DESC LIMIT ?4",
        )
        .bind(user_id)
        .bind(live_at.map(ms))
        .bind(page.before)
        .bind(i64::from(page.limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(GrantRecord::try_from).collect()
    }

    async fn revoke_grant(&self, id: i64, by: &str, at: DateTime<Utc>, event: NewEvent) -> StoreResult<GrantRecord> {
        let by = by.to_string();
        self.writer
            .write(move |tx, chain| {
                Box::pin(async move {
                    let by = by.as_str();
                    let done = sqlx::query(
                        "UPDATE grants SET revoked_at = ?, revoked_by = ? WHERE id = ? AND revoked_at IS NULL AND expires_at > ?",
                    )
                    .bind(ms(at))
                    .bind(by)
                    .bind(id)
                    .bind(ms(at))
                    .execute(&mut *tx)
                    .await?;
                    if done.rows_affected() == 0 {
                        let exists = load_grant(tx, id).await?.is_some();
                        return Err(if exists { StoreError::Conflict } else { StoreError::NotFound(format!("grant {id}")) });
                    }
                    append(tx, chain, &[event], at).await?;
                    let grant = load_grant(tx, id).await?.ok_or_else(|| StoreError::NotFound(format!("grant {id}")))?;
                    Ok(grant)
                })
            })
            .await
    }

    async fn grants_to_end(&self, now: DateTime<Utc>) -> StoreResult<Vec<GrantRecord>> {
        let rows: Vec<GrantRow> = sqlx::query_as(
            "SELECT * FROM grants WHERE ended_at IS NULL AND (revoked_at IS NOT NULL OR expires_at <= ?)
                 AND (end_retry_at IS NULL OR end_retry_at <= ?) ORDER BY expires_at",
        )
        .bind(ms(now))
        .bind(ms(now))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(GrantRecord::try_from).collect()
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
        self.writer
            .write(move |tx, chain| {
                Box::pin(async move {
                    for token in &revoked {
                        sqlx::query("DELETE FROM host_tokens WHERE id = ? AND grant_id = ?").bind(token).bind(id).execute(&mut *tx).await?;
                    }
                    let (left,): (i64,) =
                        sqlx::query_as("SELECT COUNT(*) FROM host_tokens WHERE grant_id = ?").bind(id).fetch_one(&mut *tx).await?;
                    if left > 0 {
                        return Ok(false);
                    }
                    let done = sqlx::query("UPDATE grants SET ended_at = ?, end_retry_at = NULL WHERE id = ? AND ended_at IS NULL")
                        .bind(ms(at))
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    if done.rows_affected() == 0 {
                        return Ok(false);
                    }
                    sqlx::query("DELETE FROM credentials WHERE grant_id = ?").bind(id).execute(&mut *tx).await?;
                    for key in &released {
                        sqlx::query(
                            "UPDATE grants SET host_started_at = NULL, start_retry_at = NULL
                                 WHERE ended_at IS NULL AND id IN (SELECT grant_id FROM host_tokens WHERE shared_key = ?)",
                        )
                        .bind(key)
                        .execute(&mut *tx)
                        .await?;
                        sqlx::query("DELETE FROM host_tokens WHERE shared_key = ?").bind(key).execute(&mut *tx).await?;
                    }
                    append(tx, chain, &events, at).await?;
                    Ok(true)
                })
            })
            .await
    }

    async fn host_failures(&self, id: i64, phase: HostPhase) -> StoreResult<u32> {
        let sql = match phase {
            HostPhase::Start => "SELECT start_failures FROM grants WHERE id = ?",
            HostPhase::End => "SELECT end_failures FROM grants WHERE id = ?",
        };
        let row: Option<(i64,)> = sqlx::query_as(sql).bind(id).fetch_optional(&self.pool).await?;
        let (failures,) = row.ok_or_else(|| StoreError::NotFound(format!("grant {id}")))?;
        Ok(u32::try_from(failures).unwrap_or(u32::MAX))
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
        self.writer
            .write(move |tx, chain| {
                Box::pin(async move {
                    for token in &revoked {
                        sqlx::query("DELETE FROM host_tokens WHERE id = ? AND grant_id = ?").bind(token).bind(id).execute(&mut *tx).await?;
                    }
                    let update = match phase {
                        HostPhase::Start => sqlx::query(
                            "UPDATE grants SET start_failures = start_failures + 1, start_retry_at = ? WHERE id = ? AND ended_at IS NULL",
                        ),
                        HostPhase::End => sqlx::query(
                            "UPDATE grants SET end_failures = end_failures + 1, end_retry_at = ?, end_error = ? WHERE id = ? AND ended_at IS NULL",
                        )
                        .bind(ms(failure.retry_at))
                        .bind(&failure.error),
                    };
                    let update = match phase {
                        HostPhase::Start => update.bind(ms(failure.retry_at)),
                        HostPhase::End => update,
                    };
                    let done = update.bind(id).execute(&mut *tx).await?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::Conflict);
                    }
                    append(tx, chain, &[event], failure.at).await
                })
            })
            .await
    }

    async fn grants_to_start(&self, repos: &[String], now: DateTime<Utc>) -> StoreResult<Vec<GrantRecord>> {
        if repos.is_empty() {
            return Ok(Vec::new());
        }
        let places = vec!["?"; repos.len()].join(", ");
        let sql = format!(
            "SELECT * FROM grants WHERE host_started_at IS NULL AND ended_at IS NULL AND revoked_at IS NULL AND expires_at > ?
                 AND (start_retry_at IS NULL OR start_retry_at <= ?) AND repo IN ({places}) ORDER BY id"
        );
        let mut query = sqlx::query_as::<_, GrantRow>(&sql).bind(ms(now)).bind(ms(now));
        for repo in repos {
            query = query.bind(repo);
        }
        query.fetch_all(&self.pool).await?.into_iter().map(GrantRecord::try_from).collect()
    }

    async fn mark_grant_started(&self, id: i64, at: DateTime<Utc>, held: Option<NewHostToken>, event: NewEvent) -> StoreResult<()> {
        self.writer
            .write(move |tx, chain| {
                Box::pin(async move {
                    let done =
                        sqlx::query("UPDATE grants SET host_started_at = ?, start_retry_at = NULL WHERE id = ? AND ended_at IS NULL")
                            .bind(ms(at))
                            .bind(id)
                            .execute(&mut *tx)
                            .await?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::Conflict);
                    }
                    if let Some(held) = &held {
                        insert_host_token(tx, held).await?;
                    }
                    append(tx, chain, &[event], at).await
                })
            })
            .await
    }

    async fn holder_of(&self, key: &str, except: i64) -> StoreResult<Option<HostToken>> {
        let row: Option<(i64, i64, Vec<u8>, Option<String>)> = sqlx::query_as(
            "SELECT t.id, t.grant_id, t.sealed, t.shared_key FROM host_tokens t JOIN grants g ON g.id = t.grant_id
                 WHERE t.shared_key = ? AND t.grant_id != ? AND g.ended_at IS NULL ORDER BY t.id LIMIT 1",
        )
        .bind(key)
        .bind(except)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(id, grant_id, sealed, shared_key)| HostToken { id, grant_id, sealed, shared_key }))
    }

    async fn failing_ends(&self) -> StoreResult<Vec<FailingEnd>> {
        let rows: Vec<FailingRow> =
            sqlx::query_as("SELECT * FROM grants WHERE ended_at IS NULL AND end_failures > 0 ORDER BY expires_at, id")
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter()
            .map(|r| {
                Ok(FailingEnd {
                    failures: u32::try_from(r.end_failures).unwrap_or(u32::MAX),
                    error: r.end_error.unwrap_or_default(),
                    retry_at: time(r.end_retry_at.unwrap_or_default())?,
                    grant: GrantRecord::try_from(r.grant)?,
                })
            })
            .collect()
    }

    async fn next_grant_expiry(&self) -> StoreResult<Option<DateTime<Utc>>> {
        // A grant's end, or its next attempt at the host (to end it, or to give it its access).
        let (t,): (Option<i64>,) = sqlx::query_as(
            "SELECT MIN(MIN(COALESCE(end_retry_at, expires_at), COALESCE(start_retry_at, end_retry_at, expires_at))) FROM grants WHERE ended_at IS NULL",
        )
        .fetch_one(&self.pool)
        .await?;
        opt_time(t)
    }

    async fn add_host_token(&self, token: &NewHostToken, event: NewEvent) -> StoreResult<()> {
        let token = token.clone();
        self.writer
            .write(move |tx, chain| {
                Box::pin(async move {
                    let token = &token;
                    let live: Option<(i64,)> =
                        sqlx::query_as("SELECT id FROM grants WHERE id = ? AND ended_at IS NULL AND revoked_at IS NULL AND expires_at > ?")
                            .bind(token.grant_id)
                            .bind(ms(token.created_at))
                            .fetch_optional(&mut *tx)
                            .await?;
                    if live.is_none() {
                        return Err(StoreError::Conflict);
                    }
                    insert_host_token(tx, token).await?;
                    append(tx, chain, &[event], token.created_at).await?;
                    Ok(())
                })
            })
            .await
    }

    async fn host_tokens(&self, grant_id: i64) -> StoreResult<Vec<HostToken>> {
        let rows: Vec<(i64, i64, Vec<u8>, Option<String>)> =
            sqlx::query_as("SELECT id, grant_id, sealed, shared_key FROM host_tokens WHERE grant_id = ? ORDER BY id")
                .bind(grant_id)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(|(id, grant_id, sealed, shared_key)| HostToken { id, grant_id, sealed, shared_key }).collect())
    }

    async fn add_credential(&self, credential: &NewCredential, event: NewEvent) -> StoreResult<()> {
        let credential = credential.clone();
        self.writer
            .write(move |tx, chain| {
                Box::pin(async move {
                    let credential = &credential;
                    sqlx::query("INSERT INTO credentials (hash, grant_id, created_at, expires_at) VALUES (?, ?, ?, ?)")
                        .bind(&credential.hash.0)
                        .bind(credential.grant_id)
                        .bind(ms(credential.created_at))
                        .bind(ms(credential.expires_at))
                        .execute(&mut *tx)
                        .await?;
                    append(tx, chain, &[event], credential.created_at).await?;
                    Ok(())
                })
            })
            .await
    }

    async fn grant_by_credential(&self, hash: &TokenHash, now: DateTime<Utc>) -> StoreResult<Option<GrantRecord>> {
        let row: Option<GrantRow> = sqlx::query_as(
            "SELECT g.* FROM credentials c JOIN grants g ON g.id = c.grant_id JOIN users u ON u.id = g.user_id
                 WHERE c.hash = ? AND c.expires_at > ? AND u.removed_at IS NULL",
        )
        .bind(&hash.0)
        .bind(ms(now))
        .fetch_optional(&self.pool)
        .await?;
        row.map(GrantRecord::try_from).transpose()
    }

    async fn append_events(&self, events: Vec<NewEvent>, at: DateTime<Utc>) -> StoreResult<()> {
        self.writer
            .write(move |tx, chain| {
                Box::pin(async move {
                    append(tx, chain, &events, at).await?;
                    Ok(())
                })
            })
            .await
    }

    async fn latest_checkpoint(&self) -> StoreResult<Option<Checkpoint>> {
        self.latest_checkpoint_row().await
    }

    async fn audit(&self, after_seq: i64, since: Option<DateTime<Utc>>, limit: u32) -> StoreResult<Vec<AuditEvent>> {
        // `at` is fixed-width RFC 3339 in UTC, so text order is time order.
        let rows: Vec<EventRow> =
            sqlx::query_as("SELECT * FROM audit_events WHERE seq > ?1 AND (?2 IS NULL OR at >= ?2) ORDER BY seq LIMIT ?3")
                .bind(after_seq)
                .bind(since.map(timestamp))
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(AuditEvent::from).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Level;
    use crate::domain::audit::Action;

    fn test_key() -> SigningKey {
        SigningKey::from_bytes(&[3u8; 32])
    }

    async fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("jit.db"), test_key()).await.unwrap();
        (dir, store)
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn new_request(n: i64) -> NewRequest {
        NewRequest {
            requester_id: 1,
            requester: "alice".into(),
            repo: "demo".into(),
            level: Level::Write,
            duration_secs: 3600,
            reason: Some(format!("r{n}")),
            rule: "demo-write".into(),
            approvals_required: 2,
            refs: RefScope::all(),
            terms: Terms { from: vec!["10.0.0.0/8".parse().unwrap()], allow_deletes: true },
            created_at: at("2026-11-25T12:00:00Z") + chrono::Duration::seconds(n),
        }
    }

    #[tokio::test]
    async fn a_superseded_grant_is_ended_at_once_only_when_no_host_must_be_told() {
        let (_dir, s) = store().await;
        let user = NewUserRecord { name: "alice".into(), groups: vec![], admin: false, created_at: at("2026-11-25T11:00:00Z") };
        s.add_user(&user, &TokenHash::of("t"), false, NewEvent::new("test", Action::UserAdded)).await.unwrap();
        let grant = |n: i64| {
            let r = new_request(n);
            (r.created_at, r.created_at + chrono::Duration::hours(1))
        };
        let first = s.create_request(&new_request(1), Some(grant(1)), vec![], vec![]).await.unwrap();
        assert_eq!(s.request(first.id).await.unwrap().unwrap(), first, "an auto-approved request comes back as a read finds it");
        let first = first.grant.unwrap();
        let second = s.create_request(&new_request(2), Some(grant(2)), vec![], vec![]).await.unwrap().grant.unwrap();
        let revoked = |id: i64, ended: bool| Supersede { grant_id: id, event: NewEvent::new("broker", Action::Revoked), ended };
        // The first is superseded where no host holds anything: ended with it.
        s.create_request(&new_request(3), Some(grant(3)), vec![], vec![revoked(first.id, true)]).await.unwrap();
        // The second, where a host must be told: left for the reaper.
        s.create_request(&new_request(4), Some(grant(4)), vec![], vec![revoked(second.id, false)]).await.unwrap();
        let now = at("2026-11-25T12:00:10Z");
        let first = s.grant(first.id).await.unwrap().unwrap();
        assert!(first.revoked_at.is_some() && first.ended_at.is_some(), "{first:?}");
        let second = s.grant(second.id).await.unwrap().unwrap();
        assert!(second.revoked_at.is_some() && second.ended_at.is_none(), "{second:?}");
        let to_end: Vec<i64> = s.grants_to_end(now).await.unwrap().iter().map(|g| g.id).collect();
        assert_eq!(to_end, vec![second.id]);
    }

    #[tokio::test]
    async fn a_grant_ends_only_once_its_host_holds_nothing_of_it() {
        let (_dir, s) = store().await;
        let user = NewUserRecord { name: "alice".into(), groups: vec![], admin: false, created_at: at("2026-11-25T11:00:00Z") };
        s.add_user(&user, &TokenHash::of("t"), false, NewEvent::new("test", Action::UserAdded)).await.unwrap();
        let start = at("2026-11-25T12:00:01Z");
        let end = start + chrono::Duration::hours(1);
        let grant = s.create_request(&new_request(1), Some((start, end)), vec![], vec![]).await.unwrap().grant.unwrap();
        let token = |sealed: &[u8], key: Option<&str>| NewHostToken {
            grant_id: grant.id,
            sealed: sealed.to_vec(),
            created_at: start,
            expires_at: end,
            shared_key: key.map(str::to_string),
        };
        let minted = NewEvent::new("alice", Action::CredentialMinted);
        s.add_host_token(&token(b"one", None), minted.clone()).await.unwrap();
        s.add_host_token(&token(b"two", Some("k")), minted.clone()).await.unwrap();
        let held = s.host_tokens(grant.id).await.unwrap();
        assert_eq!(
            held.iter().map(|t| (t.sealed.as_slice(), t.shared_key.as_deref())).collect::<Vec<_>>(),
            [(&b"one"[..], None), (&b"two"[..], Some("k"))]
        );
        assert_eq!(s.holder_of("k", grant.id).await.unwrap(), None, "its own hold is not another's");
        assert_eq!(s.holder_of("k", grant.id + 1).await.unwrap().map(|t| t.grant_id), Some(grant.id));

        // Expired: one token revoked, one left, so the grant stays for the next round.
        let later = end + chrono::Duration::seconds(1);
        assert_eq!(s.grants_to_end(later).await.unwrap().len(), 1);
        assert!(!s.mark_grant_ended(grant.id, later, &[held[0].id], &[], vec![]).await.unwrap());
        assert_eq!(s.host_tokens(grant.id).await.unwrap().len(), 1);
        // A failed attempt waits for its retry time, and is counted.
        let failure = EndFailure { error: "HTTP 503".into(), at: later, retry_at: later + chrono::Duration::seconds(5) };
        s.record_host_failure(grant.id, HostPhase::End, &[], &failure, NewEvent::new("broker", Action::HostRevokeFailed)).await.unwrap();
        assert_eq!(s.host_failures(grant.id, HostPhase::End).await.unwrap(), 1);
        assert_eq!(s.host_failures(grant.id, HostPhase::Start).await.unwrap(), 0);
        assert!(s.grants_to_end(later).await.unwrap().is_empty(), "not before its retry");
        assert_eq!(s.next_grant_expiry().await.unwrap(), Some(failure.retry_at));
        let failing = s.failing_ends().await.unwrap();
        assert_eq!((failing.len(), failing[0].failures, failing[0].error.as_str()), (1, 1, "HTTP 503"));
        // A credential minted once the grant is over is refused.
        let late = NewHostToken { created_at: later, ..token(b"three", None) };
        assert!(matches!(s.add_host_token(&late, minted).await, Err(StoreError::Conflict)));
        // The last one revoked: ended, and it is erased.
        let retry = failure.retry_at;
        assert!(s.mark_grant_ended(grant.id, retry, &[held[1].id], &["k".to_string()], vec![]).await.unwrap());
        assert!(s.host_tokens(grant.id).await.unwrap().is_empty());
        assert!(s.failing_ends().await.unwrap().is_empty());
        assert!(!s.mark_grant_ended(grant.id, retry, &[], &[], vec![]).await.unwrap(), "once");
    }

    #[tokio::test]
    async fn every_connection_writes_durably_in_wal_mode() {
        // FULL, not NORMAL or OFF: in WAL mode only FULL syncs each commit, so
        // an acknowledged decision survives power loss (a kill test cannot see this).
        let (_dir, s) = store().await;
        let mut conns = Vec::new();
        for _ in 0..3 {
            conns.push(s.pool.acquire().await.unwrap());
        }
        for conn in &mut conns {
            let (sync,): (i64,) = sqlx::query_as("PRAGMA synchronous").fetch_one(&mut **conn).await.unwrap();
            let (journal,): (String,) = sqlx::query_as("PRAGMA journal_mode").fetch_one(&mut **conn).await.unwrap();
            assert_eq!((sync, journal.as_str()), (2, "wal"));
        }
        // And the one connection that writes.
        let writer = s
            .writer
            .write(|tx, _| {
                Box::pin(async move {
                    let (sync,): (i64,) = sqlx::query_as("PRAGMA synchronous").fetch_one(&mut *tx).await?;
                    let (journal,): (String,) = sqlx::query_as("PRAGMA journal_mode").fetch_one(&mut *tx).await?;
                    Ok((sync, journal))
                })
            })
            .await
            .unwrap();
        assert_eq!((writer.0, writer.1.as_str()), (2, "wal"));
    }

    #[tokio::test]
    async fn requests_come_back_whole_in_one_listing() {
        let (_dir, s) = store().await;
        for n in 0..3 {
            let created = s.create_request(&new_request(n), None, vec![NewEvent::new("alice", Action::Requested)], vec![]).await.unwrap();
            assert_eq!(s.request(created.id).await.unwrap().unwrap(), created, "what create returns is what a read finds");
        }
        // Finer than the store keeps: what apply returns must be what a read finds.
        let now = at("2026-11-25T12:10:00.123456789Z");
        let vote = |id: i64, who: &str, expect: usize, decide: bool| RequestChange {
            request_id: id,
            expect_approvals: expect,
            add_approval: Some(ApprovalRecord { approver: who.into(), comment: Some(format!("ok {who}")), at: now }),
            decide: decide.then(|| (RequestStatus::Approved, who.to_string(), None)),
            grant: decide.then(|| (now, now + chrono::Duration::hours(1))),
            at: now,
            supersede: vec![],
            events: if decide {
                vec![NewEvent::new(who, Action::Approved), NewEvent::new("broker", Action::Granted)]
            } else {
                vec![NewEvent::new(who, Action::Approved)]
            },
        };
        for (id, who, expect, decide) in [(2, "bob", 0, false), (2, "carol", 1, true), (3, "bob", 0, false)] {
            let applied = s.apply(vote(id, who, expect, decide)).await.unwrap();
            assert_eq!(s.request(id).await.unwrap().unwrap(), applied, "what apply returns is what a read finds");
        }
        let denial = RequestChange {
            decide: Some((RequestStatus::Denied, "dave".into(), Some("no".into()))),
            add_approval: None,
            grant: None,
            ..vote(1, "dave", 0, false)
        };
        let denied = s.apply(denial).await.unwrap();
        assert_eq!((denied.status, denied.decision_note.as_deref()), (RequestStatus::Denied, Some("no")));
        assert_eq!(s.request(1).await.unwrap().unwrap(), denied);
        // A stale compare-and-set is refused.
        assert!(matches!(s.apply(vote(3, "carol", 0, true)).await, Err(StoreError::Conflict)));

        let all = s.requests(&RequestFilter::default()).await.unwrap();
        assert_eq!(all.iter().map(|r| r.id).collect::<Vec<_>>(), [3, 2, 1]);
        assert_eq!(all[0].approver_names(), ["bob"]);
        assert_eq!(all[1].approver_names(), ["bob", "carol"]);
        assert_eq!(all[1].status, RequestStatus::Approved);
        assert_eq!(all[1].grant.as_ref().unwrap().expires_at, as_stored(now + chrono::Duration::hours(1)).unwrap());
        assert!(all[2].approvals.is_empty() && all[2].grant.is_none() && all[2].status == RequestStatus::Denied);
        // The listing and the single read agree.
        for r in &all {
            assert_eq!(&s.request(r.id).await.unwrap().unwrap(), r);
        }
        let limited = s.requests(&RequestFilter { page: Page { before: None, limit: 2 }, ..Default::default() }).await.unwrap();
        assert_eq!(limited.iter().map(|r| (r.id, r.approvals.len())).collect::<Vec<_>>(), [(3, 1), (2, 2)]);
        // The next page starts below the last id and holds the rest.
        let next = Page { before: Page { before: None, limit: 2 }.next(limited.iter().map(|r| r.id)), limit: 2 };
        assert_eq!(next.before, Some(2));
        let rest = s.requests(&RequestFilter { page: next, ..Default::default() }).await.unwrap();
        assert_eq!(rest.iter().map(|r| r.id).collect::<Vec<_>>(), [1]);
        assert_eq!(next.next(rest.iter().map(|r| r.id)), None, "a short page is the last");
        let approved = s.requests(&RequestFilter { status: Some(RequestStatus::Approved), ..Default::default() }).await.unwrap();
        assert_eq!(approved.len(), 1);
        // The granted event carries the new grant's id.
        let events = s.audit(0, None, 100).await.unwrap();
        let granted = events.iter().find(|e| e.action == "granted").unwrap();
        assert_eq!((granted.request_id, granted.grant_id), (Some(2), Some(all[1].grant.as_ref().unwrap().id)));
    }

    #[tokio::test]
    async fn times_come_from_the_caller() {
        let (_dir, s) = store().await;
        let user = NewUserRecord { name: "alice".into(), groups: vec![], admin: false, created_at: at("2001-02-03T04:05:06Z") };
        s.add_user(&user, &TokenHash::of("t"), false, NewEvent::new("test", Action::UserAdded)).await.unwrap();
        s.set_token("alice", &TokenHash::of("u"), at("2002-02-03T04:05:06Z"), NewEvent::new("test", Action::TokenRotated)).await.unwrap();
        s.remove_user("alice", "test", "removed", at("2003-02-03T04:05:06Z"), NewEvent::new("test", Action::UserRemoved)).await.unwrap();
        let times: Vec<String> = s.audit(0, None, 10).await.unwrap().into_iter().map(|e| e.at).collect();
        assert_eq!(times, ["2001-02-03T04:05:06.000Z", "2002-02-03T04:05:06.000Z", "2003-02-03T04:05:06.000Z"]);
    }

    #[tokio::test]
    async fn a_rolled_back_append_leaves_the_chain_whole_and_each_batch_signs_its_head() {
        let (_dir, s) = store().await;
        let event = |n: &str| NewEvent::new(n, Action::UserAdded);
        // In one batch: an append that is kept, one rolled back with its job, one kept.
        let (kept, dropped, last) = tokio::join!(
            s.append_events(vec![event("one")], at("2001-01-01T00:00:00Z")),
            s.writer.write(move |tx, chain| {
                Box::pin(async move {
                    append(tx, chain, &[event("gone")], at("2001-01-01T00:00:01Z")).await?;
                    Err::<(), _>(StoreError::Conflict)
                })
            }),
            s.append_events(vec![event("two")], at("2001-01-01T00:00:02Z")),
        );
        kept.unwrap();
        assert!(matches!(dropped, Err(StoreError::Conflict)));
        last.unwrap();
        let events = s.audit(0, None, 10).await.unwrap();
        assert_eq!(events.iter().map(|e| e.actor.as_str()).collect::<Vec<_>>(), ["one", "two"]);
        crate::domain::audit::verify_chain(&events, 1, GENESIS).expect("the chain is whole");
        let checkpoint = s.latest_checkpoint().await.unwrap().expect("the batch signed its head");
        assert_eq!((checkpoint.seq, checkpoint.hash.as_str()), (2, events[1].hash.as_str()));
        checkpoint.verify(&test_key().verifying_key()).unwrap();
        let (signed,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM audit_checkpoints").fetch_one(&s.pool).await.unwrap();
        assert_eq!(signed, 1, "one checkpoint for the one batch");
        // A later batch chains on from the head it left.
        s.append_events(vec![event("three")], at("2001-01-01T00:00:03Z")).await.unwrap();
        let events = s.audit(0, None, 10).await.unwrap();
        crate::domain::audit::verify_chain(&events, 1, GENESIS).expect("still whole");
        assert_eq!(s.latest_checkpoint().await.unwrap().unwrap().seq, 3);
    }

    #[tokio::test]
    async fn the_first_admin_is_decided_atomically() {
        let (_dir, s) = store().await;
        let admin = |name: &str| NewUserRecord { name: name.into(), groups: vec![], admin: true, created_at: Utc::now() };
        s.add_user(&admin("root"), &TokenHash::of("a"), true, NewEvent::new("broker", Action::UserAdded)).await.unwrap();
        let again = s.add_user(&admin("root2"), &TokenHash::of("b"), true, NewEvent::new("broker", Action::UserAdded)).await;
        assert!(matches!(again, Err(StoreError::Conflict)));
        assert_eq!(s.admin_count().await.unwrap(), 1);
    }

    #[tokio::test]
    async fn a_database_of_the_first_schema_gains_user_ids_and_keeps_working() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jit.db");
        // The schema as it landed first, with data in it.
        let first = tempfile::tempdir().unwrap();
        std::fs::copy(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite/0001_init.sql"), first.path().join("0001_init.sql")).unwrap();
        let options = SqliteConnectOptions::new().filename(&path).create_if_missing(true);
        let pool = SqlitePool::connect_with(options).await.unwrap();
        sqlx::migrate::Migrator::new(first.path()).await.unwrap().run(&pool).await.unwrap();
        for statement in [
            "INSERT INTO users (name, token_hash, created_at) VALUES ('alice', 'h-alice', 1), ('bob', 'h-bob', 1)",
            "INSERT INTO requests (requester, repo, level, duration_secs, rule, approvals_required, status, created_at) VALUES ('alice', 'demo', 'read', 3600, 'r', 0, 'approved', 1)",
            "INSERT INTO grants (request_id, user, repo, level, granted_at, expires_at) VALUES (1, 'alice', 'demo', 'read', 1, 99999999999999)",
            "INSERT INTO credentials (hash, grant_id, created_at, expires_at) VALUES ('c-hash', 1, 1, 99999999999999)",
        ] {
            sqlx::query(statement).execute(&pool).await.unwrap();
        }
        pool.close().await;

        let s = SqliteStore::open(&path, test_key()).await.unwrap();
        let alice = s.user("alice").await.unwrap().unwrap();
        let request = s.request(1).await.unwrap().unwrap();
        assert_eq!(request.requester_id, Some(alice.id));
        assert_eq!(request.grant.as_ref().unwrap().user_id, Some(alice.id));
        let found = s.grant_by_credential(&TokenHash("c-hash".into()), Utc::now()).await.unwrap();
        assert_eq!(found.map(|g| g.id), Some(1));
        assert_eq!(s.grants(Some(alice.id), None, Page::default()).await.unwrap().len(), 1);
        // A removed user's credentials stop at the gateway's lookup, at once.
        s.remove_user("alice", "admin", "offboarded", Utc::now(), NewEvent::new("admin", Action::UserRemoved)).await.unwrap();
        assert!(s.grant_by_credential(&TokenHash("c-hash".into()), Utc::now()).await.unwrap().is_none());
        assert!(s.user_by_token(&TokenHash("h-alice".into())).await.unwrap().is_none());
        assert!(s.user_by_token(&TokenHash("h-bob".into())).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn an_initialised_data_dir_with_an_empty_or_other_database_is_refused() {
        let (dir, s) = store().await;
        drop(s);
        let path = dir.path().join("jit.db");
        // Regression: a zero-length jit.db started a fresh, empty broker.
        for f in ["jit.db-wal", "jit.db-shm"] {
            let _ = std::fs::remove_file(dir.path().join(f));
        }
        std::fs::write(&path, b"").unwrap();
        let err = SqliteStore::open(&path, test_key()).await.err().expect("refused");
        assert!(matches!(&err, StoreError::Corrupt(m) if m.contains("missing or empty")), "{err:?}");
        std::fs::remove_file(&path).unwrap();
        assert!(SqliteStore::open(&path, test_key()).await.is_err(), "a missing one too");
        // Another database put in its place.
        let other = tempfile::tempdir().unwrap();
        drop(SqliteStore::open(&other.path().join("jit.db"), test_key()).await.unwrap());
        std::fs::copy(other.path().join("jit.db"), &path).unwrap();
        let err = SqliteStore::open(&path, test_key()).await.err().expect("refused");
        assert!(matches!(&err, StoreError::Corrupt(m) if m.contains("but this data dir held database")), "{err:?}");
    }

    #[tokio::test]
    async fn a_database_damaged_mid_file_is_refused_at_open() {
        let (dir, s) = store().await;
        for n in 0..200 {
            s.create_request(&new_request(n), None, vec![NewEvent::new("alice", Action::Requested)], vec![]).await.unwrap();
        }
        s.pool.close().await;
        drop(s);
        let path = dir.path().join("jit.db");
        let mut bytes = std::fs::read(&path).unwrap();
        assert!(bytes.len() > 4 * 4096, "{}", bytes.len());
        // Scribble over pages 3 and 4 (b-tree pages; the file header on page 1 stays intact).
        for b in &mut bytes[2 * 4096..4 * 4096] {
            *b = 0x5a;
        }
        std::fs::write(&path, bytes).unwrap();
        let err = SqliteStore::open(&path, test_key()).await.err().expect("refused");
        assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn database_files_are_made_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let (dir, s) = store().await;
        drop(s);
        let path = dir.path().join("jit.db");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let _s = SqliteStore::open(&path, test_key()).await.unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(marker_path(&path)).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[tokio::test]
    async fn a_file_that_is_not_a_database_is_corrupt_not_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jit.db");
        std::fs::write(&path, vec![0x42u8; 8192]).unwrap();
        let err = SqliteStore::open(&path, test_key()).await.err().expect("refused");
        assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    }
}
