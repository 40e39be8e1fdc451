//! Brokers sharing one PostgreSQL database, in one process: what one decides
//! the others' waiters hear at once (the change feed, not a timer: their
//! re-check is set to ten minutes here), a token changed on one stops
//! working on all, two reapers end a grant once (and revoke each of its
//! GitHub tokens once: one claims it, the other leaves it), and a decision written
//! where no notification is sent still reaches a waiter by the re-check.

use std::time::Duration;

use serde_json::json;

use crate::common::{POLICY, TestBroker, eventually};

fn id(v: &serde_json::Value) -> i64 {
    v["id"].as_i64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_on_one_broker_hears_a_decision_made_on_another() {
    let Some(brokers) = TestBroker::start_replicas(2, POLICY).await else { return };
    let (a, b) = (&brokers[0], &brokers[1]);
    for round in 0..3 {
        let req = a.request("alice", "demo", "write", "1h", Some("fix")).await;
        let path = format!("/v1/requests/{}?wait=25s", id(&req));
        let wait = a.get("alice", &path);
        let approve = async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let r = b.approve("bob", id(&req)).await;
            assert_eq!(r.status, 200, "{}", r.body);
        };
        let started = std::time::Instant::now();
        let (waited, ()) = tokio::join!(wait, approve);
        // Without the feed the waiter would sit out its 25 s (and only then
        // read the decision): a wake-up, not a speed, is what this bounds.
        assert!(started.elapsed() < Duration::from_secs(15), "round {round}: the waiter slept through the decision");
        assert_eq!(waited.body["status"], "approved", "round {round}: {}", waited.body);
        assert!(waited.body["grant"]["id"].is_i64(), "{}", waited.body);
    }
    // Each says who it is, and on what.
    let mut replicas = std::collections::BTreeSet::new();
    for broker in &brokers {
        let health: serde_json::Value = reqwest::get(format!("{}/healthz", broker.url)).await.unwrap().json().await.unwrap();
        assert_eq!((health["status"].as_str(), health["database"].as_str()), (Some("ok"), Some("postgresql")), "{health}");
        replicas.insert(health["replica"].as_str().unwrap().to_string());
    }
    assert_eq!(replicas.len(), 2, "two brokers, two names: {replicas:?}");
    // And each is listed, live, by either (each says it is alive as it starts).
    let listed = eventually(
        || async { brokers[1].get("admin", "/v1/replicas").await.body },
        |b: &serde_json::Value| b.as_array().is_some_and(|a| a.len() == 2),
    )
    .await;
    let listed: std::collections::BTreeSet<String> = listed
        .as_array()
        .unwrap()
        .iter()
        .inspect(|r| assert_eq!(r["live"], true, "{r}"))
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed, replicas, "the brokers /healthz names are the ones listed");
    assert_eq!(brokers[0].get("alice", "/v1/replicas").await.status, 403, "admins only");
    // Both brokers wrote to one chain, and it verifies from either.
    for broker in &brokers {
        let v = broker.get("admin", "/v1/audit/verify").await;
        assert_eq!(v.body["ok"], true, "{}", v.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_rotated_on_one_broker_stops_working_on_every_broker() {
    let Some(mut brokers) = TestBroker::start_replicas(2, POLICY).await else { return };
    // Alice's token is remembered by the first broker (signed in once).
    assert_eq!(brokers[0].get("alice", "/v1/grants").await.status, 200);
    let old = brokers[0].token("alice").to_string();
    let rotated = brokers[1].post("admin", "/v1/users/alice/token", json!({})).await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let a = &brokers[0];
    let with_old =
        || async { reqwest::Client::new().get(format!("{}/v1/grants", a.url)).bearer_auth(&old).send().await.unwrap().status().as_u16() };
    // Remembered sign-ins are trusted for ten minutes here: only the feed can end this one.
    assert_eq!(eventually(with_old, |s| *s == 401).await, 401);
    let new = rotated.body["token"].as_str().unwrap().to_string();
    brokers[0].tokens.insert("alice".into(), new);
    assert_eq!(brokers[0].get("alice", "/v1/grants").await.status, 200);
    drop(brokers.pop());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_reapers_end_a_grant_once() {
    let Some(brokers) = TestBroker::start_replicas(2, POLICY).await else { return };
    let req = brokers[0].request("alice", "demo", "read", "1h", None).await;
    assert_eq!(req["status"], "approved", "{req}");
    // An hour on, both reapers find the grant ended.
    for b in &brokers {
        b.advance(Duration::from_secs(3601));
    }
    let expired = || async {
        brokers[1].audit().await.iter().filter(|e| e["action"] == "grant_expired" && e["grant_id"] == req["grant"]["id"]).count()
    };
    assert_eq!(eventually(expired, |n| *n >= 1).await, 1);
    // Another few reaper rounds on both: still once.
    for b in &brokers {
        b.advance(Duration::from_secs(5));
    }
    for b in &brokers {
        b.reaper_caught_up().await;
    }
    assert_eq!(expired().await, 1, "one broker ended it, once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_no_notification_announced_still_reaches_the_waiter() {
    let Some(brokers) = TestBroker::start_replicas_rechecking(1, POLICY, Duration::from_secs(1)).await else { return };
    let a = &brokers[0];
    let req = a.request("alice", "demo", "write", "1h", Some("fix")).await;
    let path = format!("/v1/requests/{}?wait=25s", id(&req));
    let wait = a.get("alice", &path);
    let deny_behind_its_back = async {
        a.long_polls_open(1).await;
        // Written straight to the database: no broker announced it.
        a.execute("", &format!("UPDATE requests SET status = 'denied', decided_by = 'dba' WHERE id = {}", id(&req))).await;
    };
    let started = std::time::Instant::now();
    let (waited, ()) = tokio::join!(wait, deny_behind_its_back);
    assert_eq!(waited.body["status"], "denied", "{}", waited.body);
    // Found by the one-second re-check, long before the 25 s wait ends.
    assert!(started.elapsed() < Duration::from_secs(15), "the waiter slept through the decision");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_whose_gateway_repos_are_other_storage_is_refused() {
    let Some(brokers) = TestBroker::start_replicas(1, &crate::common::gateway_policy("1h")).await else { return };
    let shared = brokers[0].shared.clone().unwrap();
    let open_with_repos_in = |repos_root: &std::path::Path, data: &std::path::Path| {
        let policy = crate::common::gateway_policy("1h").replace("{data_dir}", &repos_root.display().to_string());
        let mut config = crate::common::config_for(&policy, data);
        shared.apply(&mut config);
        jit::server::Broker::open(config)
    };
    // Its own directory, not the first broker's: it would serve other repos under the same names.
    let elsewhere = tempfile::tempdir().unwrap();
    match open_with_repos_in(elsewhere.path(), &elsewhere.path().join("data")).await {
        Err(e) => assert!(e.to_string().contains("is not the storage the other brokers on this database serve"), "{e}"),
        Ok(_) => panic!("a broker serving other storage as the same repos must not start"),
    }
    // The same storage (here: the same directory) opens.
    let data = tempfile::tempdir().unwrap();
    let same = open_with_repos_in(brokers[0].dir.path(), data.path()).await.expect("the same storage is fine");
    same.close_store().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_reapers_revoke_each_github_token_once() {
    let gh = crate::common::fake_github::FakeGitHub::start().await;
    let Some(brokers) = TestBroker::start_replicas(2, &gh.policy()).await else { return };
    let req = brokers[0].request("alice", "acme/api", "write", "1h", Some("hotfix")).await;
    let approved = brokers[1].approve("carol", id(&req)).await;
    let grant = approved.body["grant"]["id"].as_i64().unwrap();
    // Tokens minted through either broker; each kept, sealed, in the one database.
    for n in 0..4 {
        let r = brokers[n % 2].post("alice", &format!("/v1/grants/{grant}/credentials"), json!({})).await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    assert_eq!(gh.live_tokens().len(), 4);
    // The grant ends for both reapers at once; each looks every 100 ms.
    for b in &brokers {
        b.advance(Duration::from_secs(3601));
    }
    assert_eq!(eventually(|| async { gh.live_tokens().len() }, |n| *n == 0).await, 0);
    for _ in 0..5 {
        for b in &brokers {
            b.advance(Duration::from_secs(1));
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let deletes = gh.seen().iter().filter(|s| *s == "DELETE /installation/token").count();
    assert_eq!(deletes, 4, "each token revoked once: one broker claimed the grant, the other left it");
    let revoked = brokers[0].audit().await.iter().filter(|e| e["action"] == "host_revoked" && e["grant_id"] == grant).count();
    assert_eq!(revoked, 1);
}
