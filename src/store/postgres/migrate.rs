//! Schema migrations on PostgreSQL: the files under `migrations/postgres/`,
//! applied in order under a session advisory lock (replicas starting
//! together take turns: the first applies, the others find it done), each
//! in its own transaction with its row and SHA-384 checksum in
//! `jit_migrations`. A migration changed after it ran, or one this jit does
//! not know (the database is newer than the binary), stops the broker.

use sha2::{Digest, Sha384};
use tokio_postgres::Client;

use super::db::{error, get};
use crate::store::{StoreError, StoreResult};

/// `(version, description, sql)`, in order; a test checks it lists every file.
pub(super) const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("../../../migrations/postgres/0001_init.sql")),
    (2, "audit by grant", include_str!("../../../migrations/postgres/0002_audit_by_grant.sql")),
    (3, "extensions", include_str!("../../../migrations/postgres/0003_extensions.sql")),
    (4, "break glass", include_str!("../../../migrations/postgres/0004_break_glass.sql")),
    (5, "grant lineage", include_str!("../../../migrations/postgres/0005_grant_lineage.sql")),
];

/// Held while migrating, by whichever replica got it first.
const MIGRATE_LOCK: i64 = 0x6a69_745f_6d69_6772; // "jit_migr"

/// Brings the schema up to date.
pub async fn run(client: &mut Client) -> StoreResult<()> {
    client.execute("SELECT pg_advisory_lock($1)", &[&MIGRATE_LOCK]).await.map_err(error)?;
    let result = run_locked(client, MIGRATIONS).await;
    // Released whatever happened (a connection that failed releases it as it closes).
    let _ = client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATE_LOCK]).await;
    result
}

async fn run_locked(client: &mut Client, migrations: &[(i64, &str, &str)]) -> StoreResult<()> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS jit_migrations (
                version        BIGINT PRIMARY KEY,
                description    TEXT NOT NULL,
                installed_on   TIMESTAMPTZ NOT NULL DEFAULT now(),
                checksum       BYTEA NOT NULL,
                execution_ms   BIGINT NOT NULL
            )",
        )
        .await
        .map_err(error)?;
    let applied = client.query("SELECT version, checksum FROM jit_migrations ORDER BY version", &[]).await.map_err(error)?;
    let mut done = Vec::new();
    for row in &applied {
        let (version, checksum): (i64, Vec<u8>) = (get(row, "version")?, get(row, "checksum")?);
        let Some((_, _, sql)) = migrations.iter().find(|(v, _, _)| *v == version) else {
            return Err(StoreError::Corrupt(format!(
                "the database has schema migration {version}, which this jit does not know: it was written by a newer jit"
            )));
        };
        if Sha384::digest(sql.as_bytes()).as_slice() != checksum.as_slice() {
            return Err(StoreError::Corrupt(format!("schema migration {version} was changed after it was applied to this database")));
        }
        done.push(version);
    }
    for (version, description, sql) in migrations {
        if done.contains(version) {
            continue;
        }
        let started = std::time::Instant::now();
        let tx = client.transaction().await.map_err(error)?;
        tx.batch_execute(sql).await.map_err(|e| StoreError::Corrupt(format!("schema migration {version}: {}", error(e))))?;
        let ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        tx.execute(
            "INSERT INTO jit_migrations (version, description, checksum, execution_ms) VALUES ($1, $2, $3, $4)",
            &[version, description, &Sha384::digest(sql.as_bytes()).as_slice(), &ms],
        )
        .await
        .map_err(error)?;
        tx.commit().await.map_err(error)?;
        tracing::info!(version, description, "applied a schema migration to the PostgreSQL database");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_migration_file_is_listed_in_order() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/postgres");
        let mut files: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        files.sort();
        assert_eq!(files.len(), MIGRATIONS.len(), "{files:?}");
        for (file, (version, _, _)) in files.iter().zip(MIGRATIONS) {
            assert!(file.starts_with(&format!("{version:04}_")), "{file} is not migration {version}");
        }
    }
}
