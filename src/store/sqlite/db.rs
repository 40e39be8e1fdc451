//! The thin edge under the SQLite store's SQL: opening a connection the way
//! every one must be (WAL, `synchronous=FULL`, foreign keys), the pool of
//! connections that read, SQLite's errors in the store's terms, and the
//! values as SQLite keeps them (times in milliseconds).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags, Row, Rows};

use crate::store::latency::{Latency, Op};
use crate::store::{StoreError, StoreResult};

/// Opens `path` (creating it) as every connection of the store is opened.
pub fn open_connection(path: &Path) -> StoreResult<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    // The first statement that reads the file: a file that is not a database fails here.
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Unavailable(format!("{} could not be put in WAL mode (it is in {mode} mode)", path.display())));
    }
    // FULL: an acknowledged decision survives power loss, not only a crash.
    // temp_store: the writer's savepoints (one per job of a batch) journal
    // the pages they change; on a file, each batch opened, wrote and
    // unlinked a temporary file (a quarter of the writer's CPU).
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY;")?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// Connections that read, beside the one that writes (WAL lets them), each
/// kept for the next read. Two kinds of read:
/// - [`Readers::lookup`], a read bounded by a key (a request, a grant, a
///   user, a token's hash): a few rows from an index, tens of microseconds,
///   run where it is asked. Handing it to another thread and back costs
///   more than the read (two thread wake-ups; on the request → approve →
///   mint bench, 28 % of the broker's CPU went to those hand-offs).
/// - [`Readers::read`], a listing or a scan (up to a page of rows, a check of
///   the whole file): on tokio's blocking pool, so the async threads stay
///   free; at most [`READERS`] at once, the rest wait their turn without
///   holding a thread (ten thousand long-polls arriving together would
///   otherwise be ten thousand threads, each opening a connection with its own cache).
pub struct Readers {
    path: Arc<PathBuf>,
    idle: Arc<Mutex<Option<Vec<Connection>>>>,
    turns: Arc<tokio::sync::Semaphore>,
    latency: Latency,
}

/// Listings at once, and connections kept open for reads.
const READERS: usize = 8;

const CLOSED: &str = "the database is closed";

impl Readers {
    pub fn new(path: &Path, latency: Latency) -> Readers {
        Readers {
            path: Arc::new(path.to_path_buf()),
            idle: Arc::new(Mutex::new(Some(Vec::new()))),
            turns: Arc::new(tokio::sync::Semaphore::new(READERS)),
            latency,
        }
    }

    /// Runs `read`, a listing or a scan, with a connection of its own, off the async threads.
    pub async fn read<T, F>(&self, read: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let _timer = self.latency.time(Op::Read);
        let turn = self.turns.clone().acquire_owned().await.map_err(|_| StoreError::Unavailable(CLOSED.into()))?;
        let (path, idle) = (self.path.clone(), self.idle.clone());
        let ran = tokio::task::spawn_blocking(move || {
            let _turn = turn;
            with_connection(&path, &idle, read)
        })
        .await;
        ran.map_err(|e| StoreError::Unavailable(format!("a database read failed: {e}")))?
    }

    /// Runs `read`, bounded by a key, here and now (see [`Readers`]).
    pub fn lookup<T>(&self, read: impl FnOnce(&Connection) -> StoreResult<T>) -> StoreResult<T> {
        let _timer = self.latency.time(Op::Read);
        with_connection(&self.path, &self.idle, read)
    }

    /// Connections kept for the next read (for tests of the pool).
    #[cfg(test)]
    fn kept(&self) -> usize {
        self.idle.lock().expect("readers").as_ref().map_or(0, Vec::len)
    }

    /// Closes the idle connections; reads after this are refused.
    pub fn close(&self) {
        self.idle.lock().expect("readers").take();
        self.turns.close();
    }
}

/// Runs `read` on a kept connection (or a new one), keeping it again afterwards.
fn with_connection<T>(
    path: &Path,
    idle: &Mutex<Option<Vec<Connection>>>,
    read: impl FnOnce(&Connection) -> StoreResult<T>,
) -> StoreResult<T> {
    let kept = idle.lock().expect("readers").as_mut().ok_or_else(|| StoreError::Unavailable(CLOSED.into()))?.pop();
    let conn = match kept {
        Some(conn) => conn,
        None => open_connection(path)?,
    };
    let result = read(&conn);
    if let Some(idle) = idle.lock().expect("readers").as_mut()
        && idle.len() < READERS
    {
        idle.push(conn);
    }
    result
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode;
        match &e {
            rusqlite::Error::SqliteFailure(failure, _) => match failure.code {
                ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase => StoreError::Corrupt(e.to_string()),
                ErrorCode::ConstraintViolation
                    if matches!(
                        failure.extended_code,
                        rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                    ) =>
                {
                    StoreError::AlreadyExists(e.to_string())
                }
                _ => StoreError::Unavailable(e.to_string()),
            },
            rusqlite::Error::FromSqlConversionFailure(..)
            | rusqlite::Error::IntegralValueOutOfRange(..)
            | rusqlite::Error::InvalidColumnType(..)
            | rusqlite::Error::InvalidColumnName(_)
            | rusqlite::Error::InvalidColumnIndex(_) => StoreError::Corrupt(e.to_string()),
            _ => StoreError::Unavailable(e.to_string()),
        }
    }
}

/// The filters of a listing: only those asked for are written into its SQL,
/// so SQLite can use an index for each (a `(? IS NULL OR col = ?)` keeps it
/// off every index), with the values bound to them. The limit is written in
/// too: a bound `LIMIT ?` makes SQLite prepare the statement again every time.
#[derive(Default)]
pub struct Filters {
    clauses: Vec<&'static str>,
    values: Vec<Value>,
}

impl Filters {
    /// Adds `clause` (with one `?`, bound to `value`) when there is a value.
    pub fn when(&mut self, clause: &'static str, value: Option<Value>) -> &mut Filters {
        if let Some(value) = value {
            self.clauses.push(clause);
            self.values.push(value);
        }
        self
    }

    /// `query` with its `{filters}` and `{limit}` written in.
    pub fn sql(&self, query: &str, limit: u32) -> String {
        let filters = if self.clauses.is_empty() { "1".to_string() } else { self.clauses.join(" AND ") };
        query.replace("{filters}", &filters).replace("{limit}", &limit.to_string())
    }

    /// The values, in the order of their clauses.
    pub fn values(self) -> Vec<Value> {
        self.values
    }
}

/// Every row of `rows`, each converted by `convert`.
pub fn all<T>(mut rows: Rows<'_>, convert: impl Fn(&Row) -> StoreResult<T>) -> StoreResult<Vec<T>> {
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(convert(row)?);
    }
    Ok(out)
}

/// The first row of `rows`, if any, converted by `convert`.
pub fn first<T>(mut rows: Rows<'_>, convert: impl Fn(&Row) -> StoreResult<T>) -> StoreResult<Option<T>> {
    rows.next()?.map(convert).transpose()
}

pub fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub fn time(v: i64) -> StoreResult<DateTime<Utc>> {
    Utc.timestamp_millis_opt(v).single().ok_or_else(|| StoreError::Corrupt(format!("bad timestamp {v}")))
}

pub fn opt_time(v: Option<i64>) -> StoreResult<Option<DateTime<Utc>>> {
    v.map(time).transpose()
}

pub fn parsed<T: std::str::FromStr>(what: &str, v: &str) -> StoreResult<T> {
    v.parse().map_err(|_| StoreError::Corrupt(format!("bad {what} `{v}`")))
}

/// A count or duration as SQLite keeps it (a signed 64-bit integer).
pub fn int(v: u64) -> StoreResult<i64> {
    i64::try_from(v).map_err(|_| StoreError::Unavailable(format!("{v} is too large to store")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_errors_become_the_stores_terms() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (n INTEGER PRIMARY KEY, s TEXT UNIQUE)").unwrap();
        conn.execute("INSERT INTO t (n, s) VALUES (1, 'a')", []).unwrap();
        let dup = StoreError::from(conn.execute("INSERT INTO t (n, s) VALUES (2, 'a')", []).unwrap_err());
        assert!(matches!(dup, StoreError::AlreadyExists(_)), "{dup:?}");
        let bad_type = StoreError::from(conn.query_row("SELECT s FROM t", [], |r| r.get::<_, i64>(0)).unwrap_err());
        assert!(matches!(bad_type, StoreError::Corrupt(_)), "{bad_type:?}");
        let missing = StoreError::from(conn.execute("INSERT INTO nowhere VALUES (1)", []).unwrap_err());
        assert!(matches!(missing, StoreError::Unavailable(_)), "{missing:?}");
        // Only a duplicate is "already exists"; another broken constraint is not.
        conn.execute_batch("CREATE TABLE v (x TEXT NOT NULL)").unwrap();
        let null = StoreError::from(conn.execute("INSERT INTO v (x) VALUES (NULL)", []).unwrap_err());
        assert!(matches!(null, StoreError::Unavailable(_)), "{null:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_reuse_their_connections_and_keep_at_most_eight() {
        let dir = tempfile::tempdir().unwrap();
        let readers = Arc::new(Readers::new(&dir.path().join("t.db"), Latency::default()));
        let one = |c: &Connection| -> StoreResult<i64> { Ok(c.query_row("SELECT 1", [], |r| r.get(0))?) };
        for _ in 0..3 {
            assert_eq!(readers.read(one).await.unwrap(), 1);
        }
        assert_eq!(readers.kept(), 1, "one read at a time needs one connection, kept for the next");
        let slow = |c: &Connection| -> StoreResult<i64> {
            std::thread::sleep(std::time::Duration::from_millis(20));
            Ok(c.query_row("SELECT 1", [], |r| r.get(0))?)
        };
        let many: Vec<_> = (0..20).map(|_| readers.read(slow)).collect();
        for answer in futures_util::future::join_all(many).await {
            assert_eq!(answer.unwrap(), 1);
        }
        assert_eq!(readers.kept(), READERS, "at most {READERS} at once, all kept");
        // A lookup beside eight listings is a ninth connection at once; eight are kept.
        let together = Arc::new(std::sync::Barrier::new(READERS + 1));
        let held = |together: Arc<std::sync::Barrier>| {
            move |c: &Connection| -> StoreResult<i64> {
                together.wait();
                Ok(c.query_row("SELECT 1", [], |r| r.get(0))?)
            }
        };
        let listings: Vec<_> = (0..READERS)
            .map(|_| {
                let (readers, together) = (readers.clone(), together.clone());
                tokio::spawn(async move { readers.read(held(together)).await })
            })
            .collect();
        assert_eq!(readers.lookup(held(together.clone())).unwrap(), 1);
        for listing in listings {
            assert_eq!(listing.await.unwrap().unwrap(), 1);
        }
        assert_eq!(readers.kept(), READERS, "never more than {READERS} kept");
        readers.close();
        assert!(matches!(readers.read(one).await, Err(StoreError::Unavailable(_))), "closed is closed");
    }

    #[test]
    fn a_bad_time_or_value_is_corrupt() {
        assert!(matches!(time(i64::MAX), Err(StoreError::Corrupt(_))));
        assert!(matches!(parsed::<crate::domain::Level>("level", "root"), Err(StoreError::Corrupt(_))));
    }
}
