//! The SQLite store against real files: what it writes is what a read finds,
//! and a data dir that is not what it was is refused.

use super::*;
use crate::domain::audit::{Action, GENESIS};
use crate::store::contract_tests::new_request;
use rusqlite::Connection;
use rusqlite::types::Value;

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

#[tokio::test]
async fn every_connection_writes_durably_in_wal_mode() {
    // FULL, not NORMAL or OFF: in WAL mode only FULL syncs each commit, so
    // an acknowledged decision survives power loss (a kill test cannot see this).
    // Temporary storage in memory: the writer's savepoints journal there, not in a file per batch.
    let (_dir, s) = store().await;
    let pragmas = |c: &Connection| -> StoreResult<(i64, String, i64)> {
        let read = |pragma: &str| c.query_row(&format!("PRAGMA {pragma}"), [], |r| r.get::<_, rusqlite::types::Value>(0));
        match (read("synchronous")?, read("journal_mode")?, read("temp_store")?) {
            (Value::Integer(sync), Value::Text(journal), Value::Integer(temp)) => Ok((sync, journal, temp)),
            other => panic!("{other:?}"),
        }
    };
    // Three reads at once: three connections.
    let (a, b, c) = tokio::join!(s.reads.read(pragmas), s.reads.read(pragmas), s.reads.read(pragmas));
    for (sync, journal, temp) in [a.unwrap(), b.unwrap(), c.unwrap()] {
        assert_eq!((sync, journal.as_str(), temp), (2, "wal", 2));
    }
    // And the one connection that writes.
    let writer = s.writer.write(move |tx, _| pragmas(tx)).await.unwrap();
    assert_eq!((writer.0, writer.1.as_str(), writer.2), (2, "wal", 2));
}

#[tokio::test]
async fn a_rolled_back_append_leaves_the_chain_whole_and_each_batch_signs_its_head() {
    let (_dir, s) = store().await;
    let event = |n: &str| NewEvent::new(n, Action::UserAdded);
    // In one batch: an append that is kept, one rolled back with its job, one kept.
    let (kept, dropped, last) = tokio::join!(
        s.append_events(vec![event("one")], at("2001-01-01T00:00:00Z")),
        s.writer.write(move |tx, chain| {
            audit::append(tx, chain, &[event("gone")], at("2001-01-01T00:00:01Z"))?;
            Err::<(), _>(StoreError::Conflict)
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
    let signed: i64 = s.reads.read(|c| Ok(c.query_row("SELECT COUNT(*) FROM audit_checkpoints", [], |r| r.get(0))?)).await.unwrap();
    assert_eq!(signed, 1, "one checkpoint for the one batch");
    // A later batch chains on from the head it left.
    s.append_events(vec![event("three")], at("2001-01-01T00:00:03Z")).await.unwrap();
    let events = s.audit(0, None, 10).await.unwrap();
    crate::domain::audit::verify_chain(&events, 1, GENESIS).expect("still whole");
    assert_eq!(s.latest_checkpoint().await.unwrap().unwrap().seq, 3);
}

#[tokio::test]
async fn a_database_of_the_first_schema_gains_user_ids_and_keeps_working() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jit.db");
    // The schema as it landed first, with data in it.
    let mut conn = Connection::open(&path).unwrap();
    migrate::tests::run_first(&mut conn, 1);
    conn.execute_batch(
        "INSERT INTO users (name, token_hash, created_at) VALUES ('alice', 'h-alice', 1), ('bob', 'h-bob', 1);
         INSERT INTO requests (requester, repo, level, duration_secs, rule, approvals_required, status, created_at) VALUES ('alice', 'demo', 'read', 3600, 'r', 0, 'approved', 1);
         INSERT INTO grants (request_id, user, repo, level, granted_at, expires_at) VALUES (1, 'alice', 'demo', 'read', 1, 99999999999999);
         INSERT INTO credentials (hash, grant_id, created_at, expires_at) VALUES ('c-hash', 1, 1, 99999999999999);",
    )
    .unwrap();
    drop(conn);

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
    // Closed, as a broker that stopped is: nothing of it writes to the files after this.
    s.close().await;
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
    SqliteStore::open(&other.path().join("jit.db"), test_key()).await.unwrap().close().await;
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
    s.close().await;
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

/// An operator's first week, 7: a data dir the broker had just created warned
/// that its database was readable by others.
#[cfg(unix)]
#[test]
fn a_fresh_database_is_owner_only_from_the_start() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jit.db");
    let opened = open::open(&path, &test_key()).unwrap();
    assert!(opened.tightened.is_empty(), "a fresh database needed tightening: {:?}", opened.tightened);
    opened.conn.execute_batch("CREATE TABLE probe (n INTEGER); INSERT INTO probe VALUES (1);").unwrap();
    for suffix in ["", "-wal", "-shm", ".id"] {
        let file = dir.path().join(format!("jit.db{suffix}"));
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", file.display());
    }
    drop(opened);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let reopened = open::open(&path, &test_key()).unwrap();
    // (SQLite gave the journal files it made again the database's loose mode.)
    assert!(reopened.tightened.contains(&path), "a loosened one is tightened, and said so: {:?}", reopened.tightened);
}

#[cfg(unix)]
#[tokio::test]
async fn database_files_are_made_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, s) = store().await;
    // Closed, as a broker that stopped is: nothing of it writes to the files after this.
    s.close().await;
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

#[tokio::test]
async fn statements_are_prepared_once_whatever_their_values() {
    // SQLite prepares a statement again whenever a `LIMIT ?` is bound, so
    // limits are written into the SQL.
    let (_dir, s) = store().await;
    for n in 0..3 {
        s.create_request(&new_request(n), None, vec![NewEvent::new("alice", Action::Requested)], vec![]).await.unwrap();
    }
    let reprepared = s
        .reads
        .read(|c| {
            for id in 1..=3 {
                requests::load(c, id)?;
                grants::list(c, Some(id), Some(at("2026-11-25T12:00:00Z")), Page::default())?;
                audit::events(c, id, None, 100)?;
            }
            let mut counts = Vec::new();
            for sql in [
                // The statements those reads prepared, written the way they write them.
                db::Filters::default().when("id = ?", Some(Value::Integer(1))).sql(crate::store::rows::REQUESTS_QUERY, Page::DEFAULT_LIMIT),
                db::Filters::default()
                    .when("user_id = ?", Some(Value::Integer(1)))
                    .when("revoked_at IS NULL AND expires_at > ?", Some(Value::Integer(0)))
                    .sql(grants::LIST_QUERY, Page::DEFAULT_LIMIT),
                audit::EVENTS_QUERY.replace("{limit}", "100"),
            ] {
                let stmt = c.prepare_cached(&sql)?;
                // Run three times: the very statement the reads used, not a fresh one.
                counts.push((stmt.get_status(rusqlite::StatementStatus::RePrepare), stmt.get_status(rusqlite::StatementStatus::Run)));
            }
            Ok(counts)
        })
        .await
        .unwrap();
    assert_eq!(reprepared, [(0, 3); 3], "(re-prepared, runs) of each listing: prepared again for new values? (a bound LIMIT does that)");
}
