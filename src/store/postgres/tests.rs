//! The PostgreSQL store as replicas use it: several stores on one database
//! deciding, ending and appending at once, each promise held exactly once.
//! (What every engine promises is in `store::contract_tests`.)

use std::sync::Arc;

use chrono::{DateTime, Utc};
use ed25519_dalek::SigningKey;

use super::testdb::{self, TestDatabase};
use super::{PostgresStore, Store};
use crate::domain::audit::{Action, GENESIS, NewEvent, verify_chain};
use crate::domain::records::{ApprovalRecord, NewRequest, NewUserRecord, RequestChange};
use crate::domain::request::RequestStatus;
use crate::domain::token::TokenHash;
use crate::store::StoreError;

fn key() -> SigningKey {
    SigningKey::from_bytes(&[5u8; 32])
}

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// `n` replicas' stores on one fresh database (none: skipped, said on stderr).
async fn replicas(n: usize) -> Option<(TestDatabase, Vec<Arc<PostgresStore>>)> {
    let db = testdb::fresh().await?;
    let opened = futures_util::future::join_all((0..n).map(|_| PostgresStore::open(&db.connect, key()))).await;
    let stores = opened.into_iter().map(|s| Arc::new(s.expect("every replica opens, migrating once"))).collect();
    Some((db, stores))
}

/// The contract tests' request, needing one approval.
fn request(n: i64) -> NewRequest {
    NewRequest { approvals_required: 1, ..crate::store::contract_tests::new_request(n) }
}

async fn whole_chain(store: &PostgresStore) -> usize {
    let events = store.audit(0, None, 100_000).await.unwrap();
    verify_chain(&events, 1, GENESIS).expect("one unbroken chain");
    let head = store.latest_checkpoint().await.unwrap().expect("signed");
    head.verify(&key().verifying_key()).unwrap();
    assert_eq!(head.seq, events.len() as i64, "the latest checkpoint signs the head");
    events.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_deciding_one_request_at_once_make_exactly_one_decision() {
    let Some((_db, stores)) = replicas(3).await else { return };
    let user = NewUserRecord { name: "alice".into(), groups: vec![], admin: false, email: None, created_at: at("2026-12-01T09:00:00Z") };
    stores[0].add_user(&user, &TokenHash::of("t"), false, NewEvent::new("test", Action::UserAdded)).await.unwrap();
    for round in 0..5 {
        let req = stores[0].create_request(&request(round), None, vec![NewEvent::new("alice", Action::Requested)], vec![]).await.unwrap();
        let now = at("2026-12-01T10:01:00Z");
        let decisions = (0..30).map(|i| {
            let store = stores[i % stores.len()].clone();
            let approve = i % 2 == 0;
            let who = format!("approver{i}");
            let change = RequestChange {
                request_id: req.id,
                expect_approvals: 0,
                add_approval: approve.then(|| ApprovalRecord { approver: who.clone(), comment: None, at: now }),
                decide: Some((if approve { RequestStatus::Approved } else { RequestStatus::Denied }, who.clone(), None)),
                grant: approve.then(|| (now, now + chrono::Duration::hours(1))),
                at: now,
                events: vec![NewEvent::new(&who, if approve { Action::Approved } else { Action::Denied })],
                supersede: vec![],
            };
            tokio::spawn(async move { store.apply(change).await })
        });
        let results = futures_util::future::join_all(decisions).await;
        let won: Vec<_> = results
            .into_iter()
            .map(|r| r.unwrap())
            .filter_map(|r| match r {
                Ok(record) => Some(record),
                Err(StoreError::Conflict) => None,
                Err(e) => panic!("a decision failed other than by losing the race: {e}"),
            })
            .collect();
        assert_eq!(won.len(), 1, "round {round}: exactly one decision wins");
        let stored = stores[1].request(req.id).await.unwrap().unwrap();
        assert_eq!(stored, won[0], "what the winner was told is what every replica reads");
        assert_eq!(stored.grant.is_some(), stored.status == RequestStatus::Approved);
    }
    let events = whole_chain(&stores[2]).await;
    assert_eq!(events, 1 + 5 * 2, "one user, then per round one request and one decision");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_from_many_replicas_make_one_gap_free_signed_chain() {
    let Some((_db, stores)) = replicas(2).await else { return };
    let appends = (0..120).map(|i| {
        let store = stores[i % 2].clone();
        tokio::spawn(async move {
            let events = vec![NewEvent::new(&format!("r{}-{i}", i % 2), Action::Requested); 1 + i % 3];
            store.append_events(events, at("2026-12-01T10:00:00Z") + chrono::Duration::milliseconds(i as i64)).await
        })
    });
    for r in futures_util::future::join_all(appends).await {
        r.unwrap().unwrap();
    }
    let expected: usize = (0..120).map(|i| 1 + i % 3).sum();
    assert_eq!(whole_chain(&stores[0]).await, expected);
    let seqs: Vec<i64> = stores[1].audit(0, None, 100_000).await.unwrap().iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=expected as i64).collect::<Vec<_>>(), "no gap, no repeat");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_ended_by_two_replicas_at_once_ends_once() {
    let Some((_db, stores)) = replicas(2).await else { return };
    let user = NewUserRecord { name: "alice".into(), groups: vec![], admin: false, email: None, created_at: at("2026-12-01T09:00:00Z") };
    stores[0].add_user(&user, &TokenHash::of("t"), false, NewEvent::new("test", Action::UserAdded)).await.unwrap();
    let start = at("2026-12-01T10:00:00Z");
    let grant = stores[0].create_request(&request(1), Some((start, start + chrono::Duration::hours(1))), vec![], vec![]).await.unwrap();
    let grant = grant.grant.unwrap();
    let later = start + chrono::Duration::hours(2);
    let ends = stores.iter().cycle().take(10).map(|s| {
        let s = s.clone();
        tokio::spawn(async move { s.mark_grant_ended(grant.id, later, &[], &[], vec![NewEvent::new("broker", Action::Expired)]).await })
    });
    let ended = futures_util::future::join_all(ends).await.into_iter().filter(|r| *r.as_ref().unwrap().as_ref().unwrap()).count();
    assert_eq!(ended, 1, "one replica ends it; the others find it ended");
    let expired = stores[1].audit(0, None, 100).await.unwrap().iter().filter(|e| e.action == "expired").count();
    assert_eq!(expired, 1, "and it is audited once");
    assert!(stores[1].grants_to_end(later).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_claiming_one_grant_at_once_give_it_to_one() {
    let Some((_db, stores)) = replicas(3).await else { return };
    let user = NewUserRecord { name: "alice".into(), groups: vec![], admin: false, email: None, created_at: at("2026-12-01T09:00:00Z") };
    stores[0].add_user(&user, &TokenHash::of("t"), false, NewEvent::new("test", Action::UserAdded)).await.unwrap();
    let start = at("2026-12-01T10:00:00Z");
    let grant = stores[0].create_request(&request(1), Some((start, start + chrono::Duration::hours(1))), vec![], vec![]).await.unwrap();
    let id = grant.grant.unwrap().id;
    let claims = (0..12).map(|i| {
        let s = stores[i % 3].clone();
        tokio::spawn(async move { s.claim_grant(id, &format!("replica{i}"), start, start + chrono::Duration::minutes(2)).await.unwrap() })
    });
    let won = futures_util::future::join_all(claims).await.into_iter().filter(|c| *c.as_ref().unwrap()).count();
    assert_eq!(won, 1, "one broker calls the host; the others skip the grant");
}

#[tokio::test]
async fn a_replica_with_another_signing_key_is_refused() {
    let Some(db) = testdb::fresh().await else { return };
    let first = PostgresStore::open(&db.connect, key()).await.unwrap();
    first.append_events(vec![NewEvent::new("a", Action::UserAdded)], at("2026-12-01T10:00:00Z")).await.unwrap();
    let other = PostgresStore::open(&db.connect, SigningKey::from_bytes(&[6u8; 32])).await;
    match other {
        Err(StoreError::Corrupt(message)) => assert!(message.contains("audit_key_file"), "{message}"),
        Err(e) => panic!("refused for the wrong reason: {e}"),
        Ok(_) => panic!("a replica with another key would sign a chain the others cannot verify"),
    }
}

#[tokio::test]
async fn the_audit_log_is_append_only_and_a_cut_tail_is_refused() {
    let Some(db) = testdb::fresh().await else { return };
    let store = PostgresStore::open(&db.connect, key()).await.unwrap();
    for n in 0..3 {
        store.append_events(vec![NewEvent::new(&format!("a{n}"), Action::UserAdded)], at("2026-12-01T10:00:00Z")).await.unwrap();
    }
    let client = store.client().await.unwrap();
    for sql in ["UPDATE audit_events SET actor = 'mallory'", "DELETE FROM audit_events WHERE seq = 3", "TRUNCATE audit_checkpoints"] {
        let e = client.batch_execute(sql).await.expect_err(sql);
        assert!(format!("{e:?}").contains("append-only"), "{sql}: {e:?}");
    }
    // Someone with the power to lift the triggers cuts the last event: the broker will not start on it.
    client
        .batch_execute(
            "ALTER TABLE audit_events DISABLE TRIGGER USER; DELETE FROM audit_events WHERE seq = 3;
             ALTER TABLE audit_events ENABLE TRIGGER USER;",
        )
        .await
        .unwrap();
    drop(client);
    match PostgresStore::open(&db.connect, key()).await {
        Err(StoreError::Corrupt(message)) => assert!(message.contains("removed from its end"), "{message}"),
        other => panic!("a cut log must be refused: {:?}", other.err()),
    }
}

#[tokio::test]
async fn an_unreachable_database_is_unavailable_and_its_password_is_not_said() {
    let connect = super::Connect {
        url: "postgres://jit:hunter2@127.0.0.1:1/jit?connect_timeout=2".to_string().into(),
        pool_size: 1,
        statement_timeout: std::time::Duration::from_secs(1),
        ca_file: None,
    };
    match PostgresStore::open(&connect, key()).await {
        Err(StoreError::Unavailable(message)) => assert!(!message.contains("hunter2"), "{message}"),
        other => panic!("expected unavailable, got {:?}", other.err()),
    }
}
