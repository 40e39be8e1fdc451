//! The SQLite store against real files: what it writes is what a read finds,
//! and a data dir that is not what it was is refused.

use super::*;
use crate::domain::Level;
use crate::domain::audit::{Action, GENESIS};
use crate::domain::records::{ApprovalRecord, Terms};
use crate::domain::refs::RefScope;
use crate::domain::request::RequestStatus;
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
    let user = NewUserRecord { name: "alice".into(), groups: vec![], admin: false, email: None, created_at: at("2026-11-25T11:00:00Z") };
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
    let user = NewUserRecord { name: "alice".into(), groups: vec![], admin: false, email: None, created_at: at("2026-11-25T11:00:00Z") };
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
    let pragmas = |c: &Connection| -> StoreResult<(i64, String)> {
        Ok((c.query_row("PRAGMA synchronous", [], |r| r.get(0))?, c.query_row("PRAGMA journal_mode", [], |r| r.get(0))?))
    };
    // Three reads at once: three connections.
    let (a, b, c) = tokio::join!(s.reads.read(pragmas), s.reads.read(pragmas), s.reads.read(pragmas));
    for (sync, journal) in [a.unwrap(), b.unwrap(), c.unwrap()] {
        assert_eq!((sync, journal.as_str()), (2, "wal"));
    }
    // And the one connection that writes.
    let writer = s.writer.write(move |tx, _| pragmas(tx)).await.unwrap();
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
    assert_eq!(all[1].grant.as_ref().unwrap().expires_at, db::as_stored(now + chrono::Duration::hours(1)).unwrap());
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
    let user = NewUserRecord { name: "alice".into(), groups: vec![], admin: false, email: None, created_at: at("2001-02-03T04:05:06Z") };
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
async fn the_first_admin_is_decided_atomically() {
    let (_dir, s) = store().await;
    let admin = |name: &str| NewUserRecord { name: name.into(), groups: vec![], admin: true, email: None, created_at: Utc::now() };
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
                db::Filters::default().when("id = ?", Some(Value::Integer(1))).sql(requests::REQUESTS_QUERY, Page::DEFAULT_LIMIT),
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
