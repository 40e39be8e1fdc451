//! Moving a one-machine broker's state into PostgreSQL: every table of the
//! SQLite database, ids kept, into an empty PostgreSQL database in one
//! transaction, the audit chain verified whole before (every event's link
//! and the signed checkpoint) and after (the same head, the same count).
//! The SQLite side is opened as a broker would open it (checked, its schema
//! brought up to date) and otherwise left as it was.

use std::path::Path;

use ed25519_dalek::SigningKey;
use rusqlite::types::Value;
use tokio_postgres::types::ToSql;

use super::db::{Sql, error};
use super::{Connect, PostgresStore};
use crate::domain::audit::{GENESIS, verify_chain};
use crate::store::sqlite::SqliteStore;
use crate::store::{Store, StoreError, StoreResult};

/// How a column is kept in each engine.
#[derive(Clone, Copy)]
enum Kind {
    Int,
    Int32,
    Text,
    Bool,
    /// Milliseconds in SQLite, `timestamptz` in PostgreSQL.
    Time,
    Blob,
    /// A JSON list of strings in SQLite (`groups_json`), `text[]` in PostgreSQL (`groups`).
    Groups,
}

use Kind::*;

/// A column: its name in SQLite, in PostgreSQL, and how it is kept.
type Column = (&'static str, &'static str, Kind);
/// A table: its name, its columns, and the column its rows are read in order of.
type Table = (&'static str, &'static [Column], &'static str);

/// Every table, in an order foreign keys allow, with its columns (the
/// SQLite name; PostgreSQL's where it differs) and the column it is ordered by.
const TABLES: &[Table] = &[
    (
        "users",
        &[
            ("id", "id", Int),
            ("name", "name", Text),
            ("groups_json", "groups", Groups),
            ("is_admin", "is_admin", Bool),
            ("token_hash", "token_hash", Text),
            ("created_at", "created_at", Time),
            ("removed_at", "removed_at", Time),
            ("issuer", "issuer", Text),
            ("subject", "subject", Text),
            ("email", "email", Text),
        ],
        "id",
    ),
    (
        "requests",
        &[
            ("id", "id", Int),
            ("requester_id", "requester_id", Int),
            ("requester", "requester", Text),
            ("repo", "repo", Text),
            ("level", "level", Text),
            ("duration_secs", "duration_secs", Int),
            ("reason", "reason", Text),
            ("rule", "rule", Text),
            ("approvals_required", "approvals_required", Int32),
            ("refs", "refs", Text),
            ("from_networks", "from_networks", Text),
            ("allow_deletes", "allow_deletes", Bool),
            ("status", "status", Text),
            ("created_at", "created_at", Time),
            ("decided_at", "decided_at", Time),
            ("decided_by", "decided_by", Text),
            ("decision_note", "decision_note", Text),
            ("extends_grant", "extends_grant", Int),
            ("break_glass", "break_glass", Bool),
            ("reviewed_by", "reviewed_by", Text),
            ("reviewed_at", "reviewed_at", Time),
            ("review", "review", Text),
            ("review_comment", "review_comment", Text),
            ("reminded_at", "reminded_at", Time),
        ],
        "id",
    ),
    (
        "approvals",
        &[("request_id", "request_id", Int), ("approver", "approver", Text), ("comment", "comment", Text), ("at", "at", Time)],
        "request_id",
    ),
    (
        "grants",
        &[
            ("id", "id", Int),
            ("request_id", "request_id", Int),
            ("user_id", "user_id", Int),
            ("user", "\"user\"", Text),
            ("repo", "repo", Text),
            ("level", "level", Text),
            ("rule", "rule", Text),
            ("refs", "refs", Text),
            ("from_networks", "from_networks", Text),
            ("allow_deletes", "allow_deletes", Bool),
            ("granted_at", "granted_at", Time),
            ("expires_at", "expires_at", Time),
            ("revoked_at", "revoked_at", Time),
            ("revoked_by", "revoked_by", Text),
            ("ended_at", "ended_at", Time),
            ("host_started_at", "host_started_at", Time),
            ("start_failures", "start_failures", Int32),
            ("start_retry_at", "start_retry_at", Time),
            ("end_failures", "end_failures", Int32),
            ("end_error", "end_error", Text),
            ("end_retry_at", "end_retry_at", Time),
            ("lineage", "lineage", Int),
        ],
        "id",
    ),
    (
        "credentials",
        &[("hash", "hash", Text), ("grant_id", "grant_id", Int), ("created_at", "created_at", Time), ("expires_at", "expires_at", Time)],
        "hash",
    ),
    (
        "host_tokens",
        &[
            ("id", "id", Int),
            ("grant_id", "grant_id", Int),
            ("sealed", "sealed", Blob),
            ("created_at", "created_at", Time),
            ("expires_at", "expires_at", Time),
            ("shared_key", "shared_key", Text),
        ],
        "id",
    ),
    (
        "sessions",
        &[
            ("id", "id", Int),
            ("user_id", "user_id", Int),
            ("token_hash", "token_hash", Text),
            ("refresh_sealed", "refresh_sealed", Blob),
            ("created_at", "created_at", Time),
            ("ends_at", "ends_at", Time),
            ("next_check_at", "next_check_at", Time),
            ("ended_at", "ended_at", Time),
            ("end_reason", "end_reason", Text),
        ],
        "id",
    ),
    (
        "notify_progress",
        &[
            ("destination", "destination", Text),
            ("delivered_seq", "delivered_seq", Int),
            ("failures", "failures", Int32),
            ("first_failed_at", "first_failed_at", Time),
            ("last_error", "last_error", Text),
            ("next_attempt_at", "next_attempt_at", Time),
            ("given_up", "given_up", Int),
        ],
        "destination",
    ),
    (
        "audit_events",
        &[
            ("seq", "seq", Int),
            ("at", "at", Text),
            ("actor", "actor", Text),
            ("action", "action", Text),
            ("request_id", "request_id", Int),
            ("grant_id", "grant_id", Int),
            ("repo", "repo", Text),
            ("level", "level", Text),
            ("detail", "detail", Text),
            ("prev_hash", "prev_hash", Text),
            ("hash", "hash", Text),
        ],
        "seq",
    ),
    ("audit_checkpoints", &[("seq", "seq", Int), ("hash", "hash", Text), ("at", "at", Text), ("signature", "signature", Text)], "seq"),
];

/// Tables whose ids PostgreSQL generates: their counters continue past the copied rows.
const IDENTITIES: &[&str] = &["users", "requests", "grants", "host_tokens", "sessions"];

/// What was moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// Rows per table, in [`TABLES`]' order.
    pub rows: Vec<(&'static str, usize)>,
    /// The audit log's head: its last event and that event's hash.
    pub head: (i64, String),
}

/// Copies the SQLite database at `sqlite` (checked as a broker opening it
/// would, its chain verified whole with `key`) into the empty PostgreSQL
/// database `connect` names, and verifies the copy.
pub async fn from_sqlite(sqlite: &Path, key: SigningKey, connect: &Connect) -> StoreResult<Imported> {
    let source = SqliteStore::open(sqlite, key.clone()).await?;
    let head = whole_chain(&source, &key, "the SQLite database").await?;
    source.close().await;

    let target = PostgresStore::open(connect, key.clone()).await?;
    let mut client = target.client().await?;
    for table in ["users", "audit_events"] {
        let row = client.query_one(&format!("SELECT COUNT(*) AS n FROM {table}"), &[]).await.map_err(error)?;
        if super::db::get::<i64>(&row, "n")? > 0 {
            return Err(StoreError::AlreadyExists(format!(
                "the PostgreSQL database already holds {table}: move into an empty database (a fresh one, or drop its tables)"
            )));
        }
    }
    let path = sqlite.to_path_buf();
    let tables = tokio::task::spawn_blocking(move || read_all(&path))
        .await
        .map_err(|e| StoreError::Unavailable(format!("reading the SQLite database failed: {e}")))??;
    let tx = client.transaction().await.map_err(error)?;
    let mut rows = Vec::new();
    for ((table, columns, _), values) in TABLES.iter().zip(tables) {
        let names: Vec<&str> = columns.iter().map(|(_, pg, _)| *pg).collect();
        let places: Vec<String> = (1..=names.len()).map(|n| format!("${n}")).collect();
        let insert = format!("INSERT INTO {table} ({}) VALUES ({})", names.join(", "), places.join(", "));
        for row in &values {
            let params: Vec<&(dyn ToSql + Sync)> = row.iter().map(|v| &**v as &(dyn ToSql + Sync)).collect();
            tx.execute(&insert, &params).await.map_err(|e| match error(e) {
                StoreError::Unavailable(m) | StoreError::Corrupt(m) | StoreError::AlreadyExists(m) => {
                    StoreError::Corrupt(format!("copying {table}: {m}"))
                }
                other => other,
            })?;
        }
        rows.push((*table, values.len()));
    }
    for table in IDENTITIES {
        tx.execute(
            &format!("SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"),
            &[],
        )
        .await
        .map_err(error)?;
    }
    tx.commit().await.map_err(error)?;
    drop(client);

    let copied = whole_chain(&target, &key, "the PostgreSQL copy").await?;
    target.close().await;
    if copied != head {
        return Err(StoreError::Corrupt(format!(
            "the copy's audit log ends at event {} ({}), the SQLite log at event {} ({})",
            copied.0, copied.1, head.0, head.1
        )));
    }
    Ok(Imported { rows, head })
}

/// Verifies every event's link and the latest signed checkpoint; the head.
async fn whole_chain(store: &dyn Store, key: &SigningKey, what: &str) -> StoreResult<(i64, String)> {
    let (mut after, mut prev) = (0, GENESIS.to_string());
    loop {
        let page = store.audit(after, None, 5000).await?;
        let Some(last) = page.last() else { break };
        verify_chain(&page, after + 1, &prev).map_err(|e| StoreError::Corrupt(format!("{what}: the audit chain is broken: {e}")))?;
        (after, prev) = (last.seq, last.hash.clone());
    }
    if let Some(cp) = store.latest_checkpoint().await? {
        cp.verify(&key.verifying_key())
            .map_err(|_| StoreError::Corrupt(format!("{what}: the latest checkpoint is not signed with the audit key")))?;
        if cp.seq != after || cp.hash != prev {
            return Err(StoreError::Corrupt(format!(
                "{what}: the latest checkpoint (event {}) is not the log's head (event {after})",
                cp.seq
            )));
        }
    } else if after > 0 {
        return Err(StoreError::Corrupt(format!("{what}: {after} audit events but no signed checkpoint")));
    }
    Ok((after, prev))
}

type Row = Vec<Box<dyn ToSql + Sync + Send>>;

/// Every row of every table in [`TABLES`], converted to PostgreSQL's types.
fn read_all(path: &Path) -> StoreResult<Vec<Vec<Row>>> {
    let conn = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| StoreError::Unavailable(format!("{}: {e}", path.display())))?;
    let mut all = Vec::new();
    for (table, columns, order) in TABLES {
        let names: Vec<String> = columns.iter().map(|(sqlite, _, _)| format!("\"{sqlite}\"")).collect();
        let mut stmt = conn.prepare(&format!("SELECT {} FROM {table} ORDER BY {order}", names.join(", ")))?;
        let mut rows = stmt.query([])?;
        let mut converted = Vec::new();
        while let Some(row) = rows.next()? {
            let mut values: Row = Vec::with_capacity(columns.len());
            for (i, (name, _, kind)) in columns.iter().enumerate() {
                values.push(convert(table, name, *kind, row.get::<_, Value>(i)?)?);
            }
            converted.push(values);
        }
        all.push(converted);
    }
    Ok(all)
}

fn convert(table: &str, column: &str, kind: Kind, value: Value) -> StoreResult<Box<dyn ToSql + Sync + Send>> {
    let bad = || StoreError::Corrupt(format!("{table}.{column}: a value that is not what jit writes there"));
    Ok(match (kind, value) {
        (Int, Value::Integer(n)) => Box::new(Some(n)),
        (Int, Value::Null) => Box::new(None::<i64>),
        (Int32, Value::Integer(n)) => Box::new(Some(i32::try_from(n).map_err(|_| bad())?)),
        (Int32, Value::Null) => Box::new(None::<i32>),
        (Text, Value::Text(s)) => Box::new(Some(s)),
        (Text, Value::Null) => Box::new(None::<String>),
        (Bool, Value::Integer(n)) => Box::new(Some(n != 0)),
        (Bool, Value::Null) => Box::new(None::<bool>),
        (Time, Value::Integer(ms)) => Box::new(Some(chrono::DateTime::from_timestamp_millis(ms).ok_or_else(bad)?)),
        (Time, Value::Null) => Box::new(None::<chrono::DateTime<chrono::Utc>>),
        (Blob, Value::Blob(b)) => Box::new(Some(b)),
        (Blob, Value::Null) => Box::new(None::<Vec<u8>>),
        (Groups, Value::Text(json)) => Box::new(serde_json::from_str::<Vec<String>>(&json).map_err(|_| bad())?),
        _ => return Err(bad()),
    })
}
