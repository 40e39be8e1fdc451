//! The store's promises, checked against every engine: each test runs on a
//! fresh SQLite file and then on a fresh PostgreSQL database (skipped, and
//! said so, when no test server is given; see `postgres::testdb`).

use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use ed25519_dalek::SigningKey;

use super::postgres::{PostgresStore, testdb};
use super::sqlite::SqliteStore;
use super::{Store, StoreError};
use crate::domain::Level;
use crate::domain::audit::{Action, NewEvent};
use crate::domain::records::{
    ApprovalRecord, EndFailure, HostPhase, NewCredential, NewHostToken, NewRequest, NewUserRecord, Page, RequestChange, RequestFilter,
    RequestRecord, Review, Supersede, Terms,
};
use crate::domain::refs::RefScope;
use crate::domain::request::{RequestStatus, ReviewOutcome};
use crate::domain::token::TokenHash;

fn test_key() -> SigningKey {
    SigningKey::from_bytes(&[3u8; 32])
}

/// Runs `test` on each engine, each with a store of its own.
async fn each_store<F, Fut>(test: F)
where
    F: Fn(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Arc::new(SqliteStore::open(&dir.path().join("jit.db"), test_key()).await.unwrap());
    eprintln!("on SQLite");
    test(sqlite.clone()).await;
    sqlite.close().await;
    if let Some(db) = testdb::fresh().await {
        let pg = Arc::new(PostgresStore::open(&db.connect, test_key()).await.unwrap());
        eprintln!("on PostgreSQL");
        test(pg.clone()).await;
        pg.close().await;
    }
}

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// A time as every store keeps it (to the millisecond).
fn stored(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap()
}

/// alice, the requester of [`new_request`], as the store's user 1.
async fn add_alice(s: &Arc<dyn Store>) {
    let user = NewUserRecord { name: "alice".into(), groups: vec![], admin: false, email: None, created_at: at("2026-11-25T11:00:00Z") };
    s.add_user(&user, &TokenHash::of("t"), false, NewEvent::new("test", Action::UserAdded)).await.unwrap();
}

/// A request for the demo repo's write (two approvals), `n` seconds after noon on 2026-11-25.
pub(super) fn new_request(n: i64) -> NewRequest {
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
        extends_grant: None,
        break_glass: false,
    }
}

/// The hour a grant of [`new_request`]`(n)` lasts, from its request.
fn hour_from(n: i64) -> (DateTime<Utc>, DateTime<Utc>) {
    let r = new_request(n);
    (r.created_at, r.created_at + chrono::Duration::hours(1))
}

/// Grant `id` superseded by the broker; `ended` when no host holds anything of it.
fn superseded(id: i64, ended: bool) -> Supersede {
    Supersede { grant_id: id, event: NewEvent::new("broker", Action::Revoked), ended }
}

#[tokio::test]
async fn a_superseded_grant_is_ended_at_once_only_when_no_host_must_be_told() {
    each_store(|s| async move {
        add_alice(&s).await;
        let first = s.create_request(&new_request(1), Some(hour_from(1)), vec![], vec![]).await.unwrap();
        assert_eq!(s.request(first.id).await.unwrap().unwrap(), first, "an auto-approved request comes back as a read finds it");
        let first = first.grant.unwrap();
        let second = s.create_request(&new_request(2), Some(hour_from(2)), vec![], vec![]).await.unwrap().grant.unwrap();
        // The first is superseded where no host holds anything: ended with it.
        s.create_request(&new_request(3), Some(hour_from(3)), vec![], vec![superseded(first.id, true)]).await.unwrap();
        // The second, where a host must be told: left for the reaper.
        s.create_request(&new_request(4), Some(hour_from(4)), vec![], vec![superseded(second.id, false)]).await.unwrap();
        let now = at("2026-11-25T12:00:10Z");
        let first = s.grant(first.id).await.unwrap().unwrap();
        assert!(first.revoked_at.is_some() && first.ended_at.is_some(), "{first:?}");
        let second = s.grant(second.id).await.unwrap().unwrap();
        assert!(second.revoked_at.is_some() && second.ended_at.is_none(), "{second:?}");
        let to_end: Vec<i64> = s.grants_to_end(now).await.unwrap().iter().map(|g| g.id).collect();
        assert_eq!(to_end, vec![second.id]);
    })
    .await;
}

#[tokio::test]
async fn a_credential_answers_to_the_newest_grant_of_its_lineage_until_that_one_ends() {
    each_store(|s| async move {
        add_alice(&s).await;
        let grant = |n: i64, supersede: Vec<Supersede>| {
            let s = s.clone();
            async move { s.create_request(&new_request(n), Some(hour_from(n)), vec![], supersede).await.unwrap().grant.unwrap().id }
        };
        let mint = |grant_id: i64, name: &'static str| {
            let s = s.clone();
            async move {
                let (created_at, expires_at) = hour_from(0);
                let credential = NewCredential { grant_id, hash: TokenHash::of(name), created_at, expires_at };
                s.add_credential(&credential, NewEvent::new("alice", Action::CredentialMinted)).await.unwrap();
            }
        };
        let now = at("2026-11-25T12:00:30Z");
        let answers = |name: &'static str| {
            let s = s.clone();
            async move { s.grant_by_credential(&TokenHash::of(name), now).await.unwrap().map(|g| g.id) }
        };

        let one = grant(1, vec![]).await;
        mint(one, "c1").await;
        assert_eq!(answers("c1").await, Some(one));
        let two = grant(2, vec![superseded(one, true)]).await;
        mint(two, "c2").await;
        let three = grant(3, vec![superseded(two, false)]).await;
        assert_eq!((answers("c1").await, answers("c2").await), (Some(three), Some(three)), "each answers to the newest");
        // Another lineage; then one grant covering both joins them.
        let four = grant(4, vec![]).await;
        mint(four, "c4").await;
        let five = grant(5, vec![superseded(three, true), superseded(four, true)]).await;
        for c in ["c1", "c2", "c4"] {
            assert_eq!(answers(c).await, Some(five), "{c}");
        }
        assert_eq!(answers("nobody's").await, None);
        // An older grant ending takes nothing with it...
        assert!(s.mark_grant_ended(two, now, &[], &[], vec![]).await.unwrap());
        assert_eq!(answers("c2").await, Some(five));
        // ...the newest takes every credential of its lineage.
        assert!(s.mark_grant_ended(five, now, &[], &[], vec![]).await.unwrap());
        for c in ["c1", "c2", "c4"] {
            assert_eq!(answers(c).await, None, "{c} outlived its lineage");
        }
        // A superseded grant that had expired is not joined: its credentials stay its own.
        let six = grant(6, vec![]).await;
        mint(six, "c6").await;
        let late = NewRequest { created_at: at("2026-11-25T14:00:00Z"), ..new_request(7) };
        let seven = s
            .create_request(
                &late,
                Some((late.created_at, late.created_at + chrono::Duration::hours(1))),
                vec![],
                vec![superseded(six, true)],
            )
            .await
            .unwrap()
            .grant
            .unwrap()
            .id;
        assert_ne!(seven, six);
        assert_eq!(answers("c6").await, Some(six));
    })
    .await;
}

#[tokio::test]
async fn an_extension_names_the_grant_it_lengthens_as_written_and_as_read() {
    each_store(|s| async move {
        add_alice(&s).await;
        let r = new_request(1);
        let first = s.create_request(&r, Some((r.created_at, r.created_at + chrono::Duration::hours(1))), vec![], vec![]).await.unwrap();
        let grant = first.grant.unwrap().id;
        let extension = NewRequest { extends_grant: Some(grant), ..new_request(2) };
        let written = s.create_request(&extension, None, vec![], vec![]).await.unwrap();
        assert_eq!(written.extends_grant, Some(grant));
        assert_eq!(s.request(written.id).await.unwrap().unwrap(), written);
        let listed = s.requests(&RequestFilter { page: Page { before: None, limit: 10 }, ..RequestFilter::default() }).await.unwrap();
        let extends: Vec<Option<i64>> = listed.iter().map(|r| r.extends_grant).collect();
        assert_eq!(extends, [Some(grant), None], "newest first");
    })
    .await;
}

#[tokio::test]
async fn a_break_glass_request_is_reviewed_once_and_reminded_of_once_per_turn() {
    each_store(|s| async move {
        add_alice(&s).await;
        let window = |r: &NewRequest| Some((r.created_at, r.created_at + chrono::Duration::hours(1)));
        let ordinary = new_request(1);
        let ordinary = s.create_request(&ordinary, window(&ordinary), vec![], vec![]).await.unwrap();
        let urgent = NewRequest { break_glass: true, ..new_request(2) };
        let urgent = s.create_request(&urgent, window(&urgent), vec![], vec![]).await.unwrap();
        assert!(urgent.break_glass && urgent.review.is_none());
        assert_eq!(s.request(urgent.id).await.unwrap().unwrap(), urgent, "as written, as read");
        let unreviewed = RequestFilter { unreviewed: true, page: Page { before: None, limit: 10 }, ..RequestFilter::default() };
        let ids = |list: Vec<RequestRecord>| list.iter().map(|r| r.id).collect::<Vec<_>>();
        assert_eq!(ids(s.requests(&unreviewed).await.unwrap()), [urgent.id], "only the break-glass one waits");

        // Reminded once per turn: a second broker holding the old `last` changes nothing.
        let day = at("2026-11-26T12:00:02Z");
        let remind = || NewEvent::new("broker", Action::ReviewReminder);
        assert!(s.remind(urgent.id, None, day, remind()).await.unwrap());
        assert!(!s.remind(urgent.id, None, day, remind()).await.unwrap(), "the same turn twice");
        assert_eq!(s.request(urgent.id).await.unwrap().unwrap().reminded_at, Some(stored(day)));
        assert!(!s.remind(ordinary.id, None, day, remind()).await.unwrap(), "not break-glass");

        let review = Review { by: "carol".into(), at: day, outcome: ReviewOutcome::Flagged, comment: Some("no incident".into()) };
        let reviewed = s.review(urgent.id, &review, NewEvent::new("carol", Action::BreakGlassReviewed)).await.unwrap();
        assert_eq!(reviewed.review, Some(Review { at: stored(day), ..review.clone() }));
        assert_eq!(s.request(urgent.id).await.unwrap().unwrap(), reviewed);
        assert!(s.requests(&unreviewed).await.unwrap().is_empty());
        assert!(matches!(s.review(urgent.id, &review, NewEvent::new("bob", Action::BreakGlassReviewed)).await, Err(StoreError::Conflict)));
        assert!(matches!(
            s.review(ordinary.id, &review, NewEvent::new("bob", Action::BreakGlassReviewed)).await,
            Err(StoreError::Conflict)
        ));
        assert!(matches!(s.review(999, &review, NewEvent::new("bob", Action::BreakGlassReviewed)).await, Err(StoreError::NotFound(_))));
        assert!(!s.remind(urgent.id, Some(stored(day)), day + chrono::Duration::days(1), remind()).await.unwrap(), "reviewed: no more");
        let actions: Vec<String> = s.audit(0, None, 100).await.unwrap().iter().map(|e| e.action.clone()).collect();
        assert_eq!(actions.iter().filter(|a| *a == "review_reminder").count(), 1, "{actions:?}");
        assert_eq!(actions.iter().filter(|a| *a == "break_glass_reviewed").count(), 1, "{actions:?}");
    })
    .await;
}

#[tokio::test]
async fn a_grant_ends_only_once_its_host_holds_nothing_of_it() {
    each_store(|s| async move {
        add_alice(&s).await;
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
    })
    .await;
}

#[tokio::test]
async fn requests_come_back_whole_in_one_listing() {
    each_store(|s| async move {
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
        assert_eq!(all[1].grant.as_ref().unwrap().expires_at, stored(now + chrono::Duration::hours(1)));
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
    })
    .await;
}

#[tokio::test]
async fn times_come_from_the_caller() {
    each_store(|s| async move {
        let user =
            NewUserRecord { name: "alice".into(), groups: vec![], admin: false, email: None, created_at: at("2001-02-03T04:05:06Z") };
        s.add_user(&user, &TokenHash::of("t"), false, NewEvent::new("test", Action::UserAdded)).await.unwrap();
        s.set_token("alice", &TokenHash::of("u"), at("2002-02-03T04:05:06Z"), NewEvent::new("test", Action::TokenRotated)).await.unwrap();
        s.remove_user("alice", "test", "removed", at("2003-02-03T04:05:06Z"), NewEvent::new("test", Action::UserRemoved)).await.unwrap();
        let times: Vec<String> = s.audit(0, None, 10).await.unwrap().into_iter().map(|e| e.at).collect();
        assert_eq!(times, ["2001-02-03T04:05:06.000Z", "2002-02-03T04:05:06.000Z", "2003-02-03T04:05:06.000Z"]);
    })
    .await;
}

#[tokio::test]
async fn the_first_admin_is_decided_atomically() {
    each_store(|s| async move {
        let admin = |name: &str| NewUserRecord { name: name.into(), groups: vec![], admin: true, email: None, created_at: Utc::now() };
        s.add_user(&admin("root"), &TokenHash::of("a"), true, NewEvent::new("broker", Action::UserAdded)).await.unwrap();
        let again = s.add_user(&admin("root2"), &TokenHash::of("b"), true, NewEvent::new("broker", Action::UserAdded)).await;
        assert!(matches!(again, Err(StoreError::Conflict)));
        assert_eq!(s.admin_count().await.unwrap(), 1);
    })
    .await;
}

#[tokio::test]
async fn a_grant_is_claimed_by_one_broker_at_a_time_until_its_claim_runs_out() {
    each_store(|s| async move {
        add_alice(&s).await;
        let start = at("2026-11-25T12:00:01Z");
        let grant = s.create_request(&new_request(1), Some((start, start + chrono::Duration::hours(1))), vec![], vec![]).await.unwrap();
        let id = grant.grant.unwrap().id;
        let (now, until) = (start, start + chrono::Duration::minutes(2));
        assert!(s.claim_grant(id, "a:1", now, until).await.unwrap(), "unclaimed: a takes it");
        assert!(!s.claim_grant(id, "b:2", now, until).await.unwrap(), "a holds it: b skips it");
        assert!(s.claim_grant(id, "a:1", now, until).await.unwrap(), "a's own claim is a's");
        assert!(s.claim_grant(id, "b:2", until, until + chrono::Duration::minutes(2)).await.unwrap(), "a's ran out: b takes it");
        // A failed attempt lets go at once (the retry time decides when next).
        let failure = EndFailure { error: "HTTP 503".into(), at: now, retry_at: now + chrono::Duration::seconds(5) };
        s.record_host_failure(id, HostPhase::Start, &[], &failure, NewEvent::new("broker", Action::HostRevokeFailed)).await.unwrap();
        assert!(s.claim_grant(id, "a:1", now, until).await.unwrap(), "released by the failure");
        assert!(s.mark_grant_ended(id, now, &[], &[], vec![]).await.unwrap());
        assert!(!s.claim_grant(id, "a:1", now, until).await.unwrap(), "an ended grant is nobody's to claim");
        assert!(!s.claim_grant(id + 100, "a:1", now, until).await.unwrap(), "nor is one that does not exist");
    })
    .await;
}

#[tokio::test]
async fn the_first_value_brought_for_a_key_is_the_one_every_broker_agrees_on() {
    each_store(|s| async move {
        assert_eq!(s.agree("gateway_storage", "first").await.unwrap(), "first");
        assert_eq!(s.agree("gateway_storage", "second").await.unwrap(), "first", "kept, not replaced");
        assert_eq!(s.agree("another", "second").await.unwrap(), "second", "keys are apart");
    })
    .await;
}

#[tokio::test]
async fn a_grants_events_and_the_checkpoints_that_sign_them_are_found_by_the_grant() {
    each_store(|s| async move {
        let event = |action, request: Option<i64>, grant: Option<i64>| {
            let mut e = NewEvent::new("alice", action);
            (e.request_id, e.grant_id) = (request, grant);
            e
        };
        let t = at("2026-12-06T12:00:00Z");
        // One write with two events (the request's approval and its grant), then one each.
        s.append_events(vec![event(Action::Requested, Some(4), None)], t).await.unwrap();
        s.append_events(vec![event(Action::Approved, Some(4), None), event(Action::Granted, Some(4), Some(9))], t).await.unwrap();
        s.append_events(vec![event(Action::Requested, Some(5), None)], t).await.unwrap();
        s.append_events(vec![event(Action::CredentialMinted, None, Some(9)), event(Action::GitFetch, None, Some(10))], t).await.unwrap();
        let seqs: Vec<i64> = s.grant_events(9, 4).await.unwrap().iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [1, 2, 3, 5], "by the request (1, 2, 3) or the grant (3, 5), once each, in order");
        assert!(s.grant_events(99, 99).await.unwrap().is_empty());
        let covering = |seq| {
            let s = s.clone();
            async move { s.checkpoint_covering(seq).await.unwrap().map(|c| c.seq) }
        };
        assert_eq!((covering(1).await, covering(2).await, covering(3).await), (Some(1), Some(3), Some(3)), "one per write, at its head");
        assert_eq!((covering(5).await, covering(6).await, covering(7).await), (Some(6), Some(6), None));
    })
    .await;
}
