//! Opening the database: refusing, rather than starting empty, a data dir
//! whose database is missing, replaced, damaged or cut short; making its
//! files private; bringing its schema up to date.

use std::path::Path;

use ed25519_dalek::SigningKey;
use rusqlite::Connection;

use super::marker::{Marker, marker_path};
use super::{audit, db, migrate};
use crate::store::{StoreError, StoreResult};

/// What opening found: the writer's connection, the database's id, and the
/// files it had to make owner-only (for the log: a fresh data dir has none).
pub struct Opened {
    pub conn: Connection,
    pub id: String,
    pub tightened: Vec<std::path::PathBuf>,
}

/// Opens (creating if needed) `path` and brings its schema up to date; runs
/// on a blocking thread.
pub fn open(path: &Path, key: &SigningKey) -> StoreResult<Opened> {
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
    let existing = std::fs::metadata(path).map(|m| m.len() > 0).unwrap_or(false);
    if let (Some(id), false) = (&kept.id, existing) {
        return Err(StoreError::Corrupt(format!(
            "{} is missing or empty, but this data dir held database {id} (see {}); restore it from a backup rather than start an empty broker",
            path.display(),
            marker.display()
        )));
    }
    if !existing {
        // Made owner-only from the start (SQLite gives its journal files the
        // same mode), so a fresh data dir has nothing to tighten.
        create_private(path).map_err(|e| StoreError::Unavailable(format!("cannot create {}: {e}", path.display())))?;
    }
    let mut conn = db::open_connection(path)?;
    let tightened =
        restrict_permissions(path).map_err(|e| StoreError::Unavailable(format!("cannot make {} private: {e}", path.display())))?;
    if existing && let Err(found) = quick_check(&conn)? {
        return Err(StoreError::Corrupt(format!("{} failed SQLite's integrity check: {found}", path.display())));
    }
    migrate::run(&mut conn)?;
    let fresh_id = hex::encode(rand::random::<[u8; 16]>());
    conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('database_id', ?)", [&fresh_id])?;
    let id: String = conn.query_row("SELECT value FROM meta WHERE key = 'database_id'", [], |r| r.get(0))?;
    if let Some(expected) = &kept.id
        && *expected != id
    {
        return Err(StoreError::Corrupt(format!(
            "{} is database {id}, but this data dir held database {expected} (see {}); put the right file back",
            path.display(),
            marker.display()
        )));
    }
    let latest = audit::check_tail(&conn, &key.verifying_key(), kept.checkpoint.as_ref(), &marker)?;
    if kept.id.is_none() || kept.checkpoint.is_none() {
        // A new data dir, or one from before the mark was kept: start it at the log's latest checkpoint.
        let fresh = Marker { id: Some(id.clone()), checkpoint: latest };
        crate::fsutil::replace_private(&marker, fresh.text().as_bytes())
            .map_err(|e| StoreError::Unavailable(format!("cannot write {}: {e}", marker.display())))?;
    }
    Ok(Opened { conn, id, tightened })
}

/// SQLite's `quick_check`: `Ok` or what it found wrong.
pub fn quick_check(conn: &Connection) -> StoreResult<Result<(), String>> {
    let mut stmt = conn.prepare("PRAGMA quick_check(5)")?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?.collect::<Result<Vec<_>, _>>()?;
    let found: Vec<String> = rows.into_iter().filter(|r| r != "ok").collect();
    Ok(if found.is_empty() { Ok(()) } else { Err(found.join("; ")) })
}

/// Every table answers a read.
pub fn tables_answer(conn: &Connection) -> StoreResult<()> {
    for table in ["users", "requests", "approvals", "grants", "credentials", "audit_events", "meta"] {
        conn.prepare_cached(&format!("SELECT 1 FROM {table} LIMIT 1"))?.query([])?.next()?;
    }
    Ok(())
}

/// An empty database file, owner-only (an empty file is a new SQLite database).
fn create_private(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map(drop)
}

/// The database and its journal readable by the broker's user only, whatever
/// the umask made them; returns the files it had to change.
fn restrict_permissions(db: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut tightened = Vec::new();
    #[cfg(unix)]
    for suffix in ["", "-wal", "-shm", ".id"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        let p = std::path::PathBuf::from(p);
        if let Ok(meta) = std::fs::metadata(&p) {
            use std::os::unix::fs::PermissionsExt;
            if meta.permissions().mode() & 0o077 != 0 {
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))?;
                tightened.push(p);
            }
        }
    }
    let _ = db;
    Ok(tightened)
}
