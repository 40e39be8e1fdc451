//! The embedded SQLite store: one file under the data directory, WAL mode.
//!
//! Writes run in `BEGIN IMMEDIATE` transactions, which take SQLite's write
//! lock up front; that serializes writers (so the audit chain never forks) and
//! makes each compare-and-set in [`Store::apply`] exact.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use sqlx::{Row, SqliteConnection, SqlitePool};

use super::{
    ApprovalRecord, GrantRecord, NewRequest, RequestChange, RequestFilter, RequestRecord, Store, StoreError, StoreResult, UserRecord,
};
use crate::domain::Level;
use crate::domain::audit::{AuditEvent, GENESIS, NewEvent, timestamp};
use crate::domain::request::RequestStatus;
use crate::domain::token::TokenHash;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

pub struct SqliteStore {
    pool: SqlitePool,
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

fn level(s: &str) -> StoreResult<Level> {
    s.parse().map_err(|_| StoreError::Corrupt(format!("bad level {s}")))
}

fn status(s: &str) -> StoreResult<RequestStatus> {
    s.parse().map_err(StoreError::Corrupt)
}

fn user_row(row: &SqliteRow) -> StoreResult<UserRecord> {
    let groups: String = row.try_get("groups_json")?;
    Ok(UserRecord {
        name: row.try_get("name")?,
        groups: serde_json::from_str(&groups).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        admin: row.try_get::<i64, _>("is_admin")? != 0,
        created_at: time(row.try_get("created_at")?)?,
    })
}

fn grant_row(row: &SqliteRow) -> StoreResult<GrantRecord> {
    Ok(GrantRecord {
        id: row.try_get("id")?,
        request_id: row.try_get("request_id")?,
        user: row.try_get("user")?,
        repo: row.try_get("repo")?,
        level: level(row.try_get("level")?)?,
        granted_at: time(row.try_get("granted_at")?)?,
        expires_at: time(row.try_get("expires_at")?)?,
        revoked_at: opt_time(row.try_get("revoked_at")?)?,
        revoked_by: row.try_get("revoked_by")?,
        ended_at: opt_time(row.try_get("ended_at")?)?,
    })
}

fn event_row(row: &SqliteRow) -> StoreResult<AuditEvent> {
    Ok(AuditEvent {
        seq: row.try_get("seq")?,
        at: row.try_get("at")?,
        actor: row.try_get("actor")?,
        action: row.try_get("action")?,
        request_id: row.try_get("request_id")?,
        grant_id: row.try_get("grant_id")?,
        repo: row.try_get("repo")?,
        level: row.try_get("level")?,
        detail: row.try_get("detail")?,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
}

/// Appends events to the chain inside the caller's transaction.
async fn append(conn: &mut SqliteConnection, events: &[NewEvent], at: DateTime<Utc>) -> StoreResult<()> {
    let last = sqlx::query("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1").fetch_optional(&mut *conn).await?;
    let (mut seq, mut prev) = match last {
        Some(row) => (row.try_get::<i64, _>("seq")?, row.try_get::<String, _>("hash")?),
        None => (0, GENESIS.to_string()),
    };
    let at = timestamp(at);
    for event in events {
        seq += 1;
        let e = AuditEvent::chain(event, seq, at.clone(), &prev);
        sqlx::query(
            "INSERT INTO audit_events (seq, at, actor, action, request_id, grant_id, repo, level, detail, prev_hash, hash)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(e.seq)
        .bind(&e.at)
        .bind(&e.actor)
        .bind(&e.action)
        .bind(e.request_id)
        .bind(e.grant_id)
        .bind(&e.repo)
        .bind(&e.level)
        .bind(&e.detail)
        .bind(&e.prev_hash)
        .bind(&e.hash)
        .execute(&mut *conn)
        .await?;
        prev = e.hash;
    }
    Ok(())
}

async fn load_request(conn: &mut SqliteConnection, id: i64) -> StoreResult<Option<RequestRecord>> {
    let Some(row) = sqlx::query("SELECT * FROM requests WHERE id = ?").bind(id).fetch_optional(&mut *conn).await? else {
        return Ok(None);
    };
    let mut record = request_row(&row)?;
    let approvals = sqlx::query("SELECT approver, comment, at FROM approvals WHERE request_id = ? ORDER BY at, approver")
        .bind(id)
        .fetch_all(&mut *conn)
        .await?;
    record.approvals = approvals
        .iter()
        .map(|r| Ok(ApprovalRecord { approver: r.try_get("approver")?, comment: r.try_get("comment")?, at: time(r.try_get("at")?)? }))
        .collect::<StoreResult<_>>()?;
    record.grant = sqlx::query("SELECT * FROM grants WHERE request_id = ?")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .as_ref()
        .map(grant_row)
        .transpose()?;
    Ok(Some(record))
}

fn request_row(row: &SqliteRow) -> StoreResult<RequestRecord> {
    Ok(RequestRecord {
        id: row.try_get("id")?,
        requester: row.try_get("requester")?,
        repo: row.try_get("repo")?,
        level: level(row.try_get("level")?)?,
        duration_secs: row.try_get::<i64, _>("duration_secs")? as u64,
        reason: row.try_get("reason")?,
        rule: row.try_get("rule")?,
        approvals_required: row.try_get::<i64, _>("approvals_required")? as u32,
        status: status(row.try_get("status")?)?,
        created_at: time(row.try_get("created_at")?)?,
        decided_at: opt_time(row.try_get("decided_at")?)?,
        decided_by: row.try_get("decided_by")?,
        decision_note: row.try_get("decision_note")?,
        approvals: Vec::new(),
        grant: None,
    })
}

async fn insert_grant(conn: &mut SqliteConnection, req: &RequestRecord, window: (DateTime<Utc>, DateTime<Utc>)) -> StoreResult<i64> {
    let id =
        sqlx::query("INSERT INTO grants (request_id, user, repo, level, granted_at, expires_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id")
            .bind(req.id)
            .bind(&req.requester)
            .bind(&req.repo)
            .bind(req.level.as_str())
            .bind(ms(window.0))
            .bind(ms(window.1))
            .fetch_one(&mut *conn)
            .await?
            .try_get("id")?;
    Ok(id)
}

impl SqliteStore {
    /// Opens (creating if needed) `path` and brings its schema up to date.
    pub async fn open(path: &Path) -> StoreResult<SqliteStore> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: an acknowledged decision survives power loss, not only a crash.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new().max_connections(8).connect_with(options).await?;
        MIGRATOR.run(&pool).await?;
        Ok(SqliteStore { pool })
    }

    async fn write(&self) -> StoreResult<sqlx::Transaction<'static, sqlx::Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn user_by_token(&self, token: &TokenHash) -> StoreResult<Option<(UserRecord, TokenHash)>> {
        let row = sqlx::query("SELECT * FROM users WHERE token_hash = ?").bind(&token.0).fetch_optional(&self.pool).await?;
        row.map(|r| Ok((user_row(&r)?, TokenHash(r.try_get("token_hash")?)))).transpose()
    }

    async fn user(&self, name: &str) -> StoreResult<Option<UserRecord>> {
        sqlx::query("SELECT * FROM users WHERE name = ?").bind(name).fetch_optional(&self.pool).await?.as_ref().map(user_row).transpose()
    }

    async fn users(&self) -> StoreResult<Vec<UserRecord>> {
        sqlx::query("SELECT * FROM users ORDER BY name").fetch_all(&self.pool).await?.iter().map(user_row).collect()
    }

    async fn add_user(&self, user: &UserRecord, token: &TokenHash, event: NewEvent) -> StoreResult<()> {
        let mut tx = self.write().await?;
        let exists = sqlx::query("SELECT 1 FROM users WHERE name = ?").bind(&user.name).fetch_optional(&mut *tx).await?;
        if exists.is_some() {
            return Err(StoreError::AlreadyExists(format!("user `{}`", user.name)));
        }
        sqlx::query("INSERT INTO users (name, groups_json, is_admin, token_hash, created_at) VALUES (?, ?, ?, ?, ?)")
            .bind(&user.name)
            .bind(serde_json::to_string(&user.groups).expect("strings serialize"))
            .bind(user.admin as i64)
            .bind(&token.0)
            .bind(ms(user.created_at))
            .execute(&mut *tx)
            .await?;
        append(&mut tx, &[event], user.created_at).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn remove_user(&self, name: &str, event: NewEvent) -> StoreResult<()> {
        let mut tx = self.write().await?;
        let done = sqlx::query("DELETE FROM users WHERE name = ?").bind(name).execute(&mut *tx).await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("user `{name}`")));
        }
        append(&mut tx, &[event], Utc::now()).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn set_token(&self, name: &str, token: &TokenHash, event: NewEvent) -> StoreResult<()> {
        let mut tx = self.write().await?;
        let done = sqlx::query("UPDATE users SET token_hash = ? WHERE name = ?").bind(&token.0).bind(name).execute(&mut *tx).await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("user `{name}`")));
        }
        append(&mut tx, &[event], Utc::now()).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn admin_count(&self) -> StoreResult<u64> {
        let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM users WHERE is_admin = 1").fetch_one(&self.pool).await?.try_get("n")?;
        Ok(n as u64)
    }

    async fn create_request(
        &self,
        new: &NewRequest,
        grant: Option<(DateTime<Utc>, DateTime<Utc>)>,
        mut events: Vec<NewEvent>,
    ) -> StoreResult<RequestRecord> {
        let mut tx = self.write().await?;
        let id: i64 = sqlx::query(
            "INSERT INTO requests (requester, repo, level, duration_secs, reason, rule, approvals_required, status, created_at, decided_at, decided_by)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(&new.requester)
        .bind(&new.repo)
        .bind(new.level.as_str())
        .bind(new.duration_secs as i64)
        .bind(&new.reason)
        .bind(&new.rule)
        .bind(new.approvals_required as i64)
        .bind(if grant.is_some() { "approved" } else { "pending" })
        .bind(ms(new.created_at))
        .bind(grant.map(|_| ms(new.created_at)))
        .bind(grant.map(|_| "policy"))
        .fetch_one(&mut *tx)
        .await?
        .try_get("id")?;
        let record = load_request(&mut tx, id).await?.ok_or_else(|| StoreError::NotFound(format!("request {id}")))?;
        let grant_id = match grant {
            Some(window) => Some(insert_grant(&mut tx, &record, window).await?),
            None => None,
        };
        for e in &mut events {
            e.request_id.get_or_insert(id);
            if e.grant_id.is_none() {
                e.grant_id = grant_id.filter(|_| e.action == Some(crate::domain::audit::Action::Granted));
            }
        }
        append(&mut tx, &events, new.created_at).await?;
        let record = load_request(&mut tx, id).await?.ok_or_else(|| StoreError::NotFound(format!("request {id}")))?;
        tx.commit().await?;
        Ok(record)
    }

    async fn request(&self, id: i64) -> StoreResult<Option<RequestRecord>> {
        let mut conn = self.pool.acquire().await?;
        load_request(&mut conn, id).await
    }

    async fn requests(&self, filter: &RequestFilter) -> StoreResult<Vec<RequestRecord>> {
        let mut conn = self.pool.acquire().await?;
        let ids: Vec<i64> = sqlx::query(
            "SELECT id FROM requests WHERE (?1 IS NULL OR requester = ?1) AND (?2 IS NULL OR status = ?2) ORDER BY id DESC LIMIT ?3",
        )
        .bind(&filter.requester)
        .bind(filter.status.map(|s| s.as_str()))
        .bind(filter.limit.unwrap_or(500) as i64)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| r.try_get("id"))
        .collect::<Result<_, _>>()?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(r) = load_request(&mut conn, id).await? {
                out.push(r);
            }
        }
        Ok(out)
    }

    async fn apply(&self, change: RequestChange) -> StoreResult<RequestRecord> {
        let mut tx = self.write().await?;
        let current = load_request(&mut tx, change.request_id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("request {}", change.request_id)))?;
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
                "UPDATE requests SET status = ?, decided_at = ?, decided_by = ?, decision_note = ? WHERE id = ? AND status = 'pending'",
            )
            .bind(status.as_str())
            .bind(ms(change.at))
            .bind(by)
            .bind(note)
            .bind(change.request_id)
            .execute(&mut *tx)
            .await?;
            if let Some(window) = change.grant {
                grant_id = Some(insert_grant(&mut tx, &current, window).await?);
            }
        }
        let mut events = change.events;
        for e in &mut events {
            e.request_id.get_or_insert(change.request_id);
            if e.grant_id.is_none() && e.action == Some(crate::domain::audit::Action::Granted) {
                e.grant_id = grant_id;
            }
        }
        append(&mut tx, &events, change.at).await?;
        let record = load_request(&mut tx, change.request_id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("request {}", change.request_id)))?;
        tx.commit().await?;
        Ok(record)
    }

    async fn stale_pending(&self, cutoff: DateTime<Utc>) -> StoreResult<Vec<i64>> {
        sqlx::query("SELECT id FROM requests WHERE status = 'pending' AND created_at <= ? ORDER BY id")
            .bind(ms(cutoff))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| Ok(r.try_get("id")?))
            .collect()
    }

    async fn grant(&self, id: i64) -> StoreResult<Option<GrantRecord>> {
        sqlx::query("SELECT * FROM grants WHERE id = ?").bind(id).fetch_optional(&self.pool).await?.as_ref().map(grant_row).transpose()
    }

    async fn grants(&self, user: Option<&str>, live_at: Option<DateTime<Utc>>) -> StoreResult<Vec<GrantRecord>> {
        sqlx::query(
            "SELECT * FROM grants WHERE (?1 IS NULL OR user = ?1)
               AND (?2 IS NULL OR (revoked_at IS NULL AND expires_at > ?2))
             ORDER BY id DESC LIMIT 1000",
        )
        .bind(user)
        .bind(live_at.map(ms))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(grant_row)
        .collect()
    }

    async fn revoke_grant(&self, id: i64, by: &str, at: DateTime<Utc>, event: NewEvent) -> StoreResult<GrantRecord> {
        let mut tx = self.write().await?;
        let done = sqlx::query("UPDATE grants SET revoked_at = ?, revoked_by = ? WHERE id = ? AND revoked_at IS NULL AND expires_at > ?")
            .bind(ms(at))
            .bind(by)
            .bind(id)
            .bind(ms(at))
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            let exists = sqlx::query("SELECT 1 FROM grants WHERE id = ?").bind(id).fetch_optional(&mut *tx).await?;
            return Err(if exists.is_some() { StoreError::Conflict } else { StoreError::NotFound(format!("grant {id}")) });
        }
        append(&mut tx, &[event], at).await?;
        let grant = grant_row(&sqlx::query("SELECT * FROM grants WHERE id = ?").bind(id).fetch_one(&mut *tx).await?)?;
        tx.commit().await?;
        Ok(grant)
    }

    async fn grants_to_end(&self, now: DateTime<Utc>) -> StoreResult<Vec<GrantRecord>> {
        sqlx::query("SELECT * FROM grants WHERE ended_at IS NULL AND (revoked_at IS NOT NULL OR expires_at <= ?) ORDER BY expires_at")
            .bind(ms(now))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(grant_row)
            .collect()
    }

    async fn mark_grant_ended(&self, id: i64, at: DateTime<Utc>, event: Option<NewEvent>) -> StoreResult<bool> {
        let mut tx = self.write().await?;
        let done =
            sqlx::query("UPDATE grants SET ended_at = ? WHERE id = ? AND ended_at IS NULL").bind(ms(at)).bind(id).execute(&mut *tx).await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        if let Some(event) = event {
            append(&mut tx, &[event], at).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn next_grant_expiry(&self) -> StoreResult<Option<DateTime<Utc>>> {
        let row = sqlx::query("SELECT MIN(expires_at) AS t FROM grants WHERE ended_at IS NULL").fetch_one(&self.pool).await?;
        opt_time(row.try_get("t")?)
    }

    async fn add_credential(
        &self,
        grant_id: i64,
        hash: &TokenHash,
        created_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        sqlx::query("INSERT INTO credentials (hash, grant_id, created_at, expires_at) VALUES (?, ?, ?, ?)")
            .bind(&hash.0)
            .bind(grant_id)
            .bind(ms(created_at))
            .bind(ms(expires_at))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn grant_by_credential(&self, hash: &TokenHash, now: DateTime<Utc>) -> StoreResult<Option<GrantRecord>> {
        sqlx::query("SELECT g.* FROM credentials c JOIN grants g ON g.id = c.grant_id WHERE c.hash = ? AND c.expires_at > ?")
            .bind(&hash.0)
            .bind(ms(now))
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(grant_row)
            .transpose()
    }

    async fn delete_credentials(&self, grant_id: i64) -> StoreResult<()> {
        sqlx::query("DELETE FROM credentials WHERE grant_id = ?").bind(grant_id).execute(&self.pool).await?;
        Ok(())
    }

    async fn append_events(&self, events: Vec<NewEvent>, at: DateTime<Utc>) -> StoreResult<()> {
        let mut tx = self.write().await?;
        append(&mut tx, &events, at).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn audit(&self, after_seq: i64, since: Option<DateTime<Utc>>, limit: u32) -> StoreResult<Vec<AuditEvent>> {
        // `at` is fixed-width RFC 3339 in UTC, so text order is time order.
        sqlx::query("SELECT * FROM audit_events WHERE seq > ?1 AND (?2 IS NULL OR at >= ?2) ORDER BY seq LIMIT ?3")
            .bind(after_seq)
            .bind(since.map(timestamp))
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(event_row)
            .collect()
    }
}
