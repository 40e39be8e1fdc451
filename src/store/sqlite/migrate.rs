//! Schema migrations: the files under `migrations/sqlite/`, applied in order,
//! each in its own transaction together with its row in `_sqlx_migrations`
//! (the table, columns and SHA-384 checksums sqlx wrote when it ran them, so
//! every data dir made by an earlier jit opens as it is). A migration that
//! was changed after it ran, one this jit does not know (the database is
//! newer than the binary), or one that failed midway stops the broker.

use rusqlite::{Connection, params};
use sha2::{Digest, Sha384};

use crate::store::{StoreError, StoreResult};

/// `(version, description, sql)`, in order; a test checks it lists every file.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("../../../migrations/sqlite/0001_init.sql")),
    (2, "user ids", include_str!("../../../migrations/sqlite/0002_user_ids.sql")),
    (3, "meta", include_str!("../../../migrations/sqlite/0003_meta.sql")),
    (4, "audit checkpoints", include_str!("../../../migrations/sqlite/0004_audit_checkpoints.sql")),
    (5, "grant rule", include_str!("../../../migrations/sqlite/0005_grant_rule.sql")),
    (6, "ref scopes", include_str!("../../../migrations/sqlite/0006_ref_scopes.sql")),
    (7, "host tokens", include_str!("../../../migrations/sqlite/0007_host_tokens.sql")),
    (8, "grant terms", include_str!("../../../migrations/sqlite/0008_grant_terms.sql")),
    (9, "live grants index", include_str!("../../../migrations/sqlite/0009_live_grants_index.sql")),
    (10, "sessions", include_str!("../../../migrations/sqlite/0010_sessions.sql")),
    (11, "notify progress", include_str!("../../../migrations/sqlite/0011_notify_progress.sql")),
    (12, "user email", include_str!("../../../migrations/sqlite/0012_user_email.sql")),
    (13, "grant claims", include_str!("../../../migrations/sqlite/0013_grant_claims.sql")),
    (14, "replicas", include_str!("../../../migrations/sqlite/0014_replicas.sql")),
    (15, "audit by grant", include_str!("../../../migrations/sqlite/0015_audit_by_grant.sql")),
    (16, "extensions", include_str!("../../../migrations/sqlite/0016_extensions.sql")),
    (17, "break glass", include_str!("../../../migrations/sqlite/0017_break_glass.sql")),
    (18, "grant lineage", include_str!("../../../migrations/sqlite/0018_grant_lineage.sql")),
    (19, "drop name indexes", include_str!("../../../migrations/sqlite/0019_drop_name_indexes.sql")),
];

const TABLE: &str = "CREATE TABLE IF NOT EXISTS _sqlx_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    success BOOLEAN NOT NULL,
    checksum BLOB NOT NULL,
    execution_time BIGINT NOT NULL
)";

/// Brings the schema up to date.
pub fn run(conn: &mut Connection) -> StoreResult<()> {
    run_these(conn, MIGRATIONS)
}

fn run_these(conn: &mut Connection, migrations: &[(i64, &str, &str)]) -> StoreResult<()> {
    conn.execute_batch(TABLE)?;
    let applied: Vec<(i64, bool, Vec<u8>)> = {
        let mut stmt = conn.prepare("SELECT version, success, checksum FROM _sqlx_migrations ORDER BY version")?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<Result<_, _>>()?
    };
    for (version, success, checksum) in &applied {
        let Some((_, _, sql)) = migrations.iter().find(|(v, _, _)| v == version) else {
            return Err(StoreError::Corrupt(format!(
                "the database has schema migration {version}, which this jit does not know: it was written by a newer jit"
            )));
        };
        if !success {
            return Err(StoreError::Corrupt(format!("schema migration {version} failed midway; restore the database from a backup")));
        }
        if Sha384::digest(sql.as_bytes()).as_slice() != checksum.as_slice() {
            return Err(StoreError::Corrupt(format!("schema migration {version} was changed after it was applied to this database")));
        }
    }
    for (version, description, sql) in migrations {
        if applied.iter().any(|(v, _, _)| v == version) {
            continue;
        }
        let started = std::time::Instant::now();
        let tx = conn.transaction()?;
        tx.execute_batch(sql).map_err(|e| StoreError::Corrupt(format!("schema migration {version}: {e}")))?;
        tx.execute(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (?, ?, TRUE, ?, ?)",
            params![version, description, Sha384::digest(sql.as_bytes()).as_slice(), started.elapsed().as_nanos() as i64],
        )?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// The schema as the first `n` migrations left it (for tests of upgrades).
    pub fn run_first(conn: &mut Connection, n: usize) {
        run_these(conn, &MIGRATIONS[..n]).unwrap();
    }

    #[test]
    fn every_migration_file_is_listed_in_order() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite");
        let mut files: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        files.sort();
        let listed: Vec<String> = MIGRATIONS.iter().map(|(v, d, _)| format!("{v:04}_{}.sql", d.replace(' ', "_"))).collect();
        assert_eq!(listed, files);
        for ((_, _, sql), file) in MIGRATIONS.iter().zip(&files) {
            assert_eq!(*sql, std::fs::read_to_string(format!("{dir}/{file}")).unwrap(), "{file}");
        }
    }

    #[test]
    fn applied_once_and_a_changed_unknown_or_failed_migration_stops_it() {
        let mut conn = Connection::open_in_memory().unwrap();
        let first = [(1, "one", "CREATE TABLE a (n INTEGER);")];
        run_these(&mut conn, &first).unwrap();
        run_these(&mut conn, &first).expect("already applied: nothing to do");
        let both = [(1, "one", "CREATE TABLE a (n INTEGER);"), (2, "two", "CREATE TABLE b (n INTEGER);")];
        run_these(&mut conn, &both).unwrap();
        let versions: i64 = conn.query_row("SELECT COUNT(*) FROM _sqlx_migrations WHERE success", [], |r| r.get(0)).unwrap();
        assert_eq!(versions, 2);

        let changed = [(1, "one", "CREATE TABLE a (n TEXT);"), both[1]];
        let err = run_these(&mut conn, &changed).unwrap_err();
        assert!(matches!(&err, StoreError::Corrupt(m) if m.contains("changed")), "{err:?}");
        let err = run_these(&mut conn, &first).unwrap_err();
        assert!(matches!(&err, StoreError::Corrupt(m) if m.contains("newer jit")), "{err:?}");
        conn.execute("UPDATE _sqlx_migrations SET success = FALSE WHERE version = 2", []).unwrap();
        let err = run_these(&mut conn, &both).unwrap_err();
        assert!(matches!(&err, StoreError::Corrupt(m) if m.contains("midway")), "{err:?}");
    }

    #[test]
    fn a_migration_that_fails_leaves_nothing_behind() {
        let mut conn = Connection::open_in_memory().unwrap();
        let bad = [(1, "bad", "CREATE TABLE a (n INTEGER); INSERT INTO nowhere VALUES (1);")];
        assert!(run_these(&mut conn, &bad).is_err());
        let tables: i64 = conn.query_row("SELECT COUNT(*) FROM sqlite_master WHERE name = 'a'", [], |r| r.get(0)).unwrap();
        let rows: i64 = conn.query_row("SELECT COUNT(*) FROM _sqlx_migrations", [], |r| r.get(0)).unwrap();
        assert_eq!((tables, rows), (0, 0));
    }
}
