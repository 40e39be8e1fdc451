//! `jit extend`: a live grant kept longer. The policy decides it as a
//! request; approved, the longer grant takes the old one's place and its
//! credentials, so real `git push`es across the old end never fail; denied,
//! the grant ends on time. And what it refuses, each with its exit code.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::common::{TestBroker, TestEnvironment, cli_env};

async fn logged_in_with_setup(b: &TestBroker, user: &str) -> TestEnvironment {
    let env = cli_env(b);
    env.login(&b.url, b.token(user)).success();
    env.run(&["setup"]).success();
    env
}

fn commit(env: &TestEnvironment, repo: &std::path::Path, file: &str) {
    std::fs::write(repo.join(file), format!("{file}\n")).unwrap();
    env.git(repo, &["add", file]).success();
    env.git(repo, &["commit", "-qm", file]).success();
}

/// alice's write grant on demo for `duration`, approved by bob, its credential kept: (grant id, its end).
async fn write_grant(b: &TestBroker, alice: &TestEnvironment, duration: &str) -> (i64, DateTime<Utc>) {
    let id =
        alice.run(&["request", "demo", "--level", "write", "--for", duration, "--reason", "fix", "--no-wait"]).success().stdout.clone();
    let id = id.trim().to_string();
    assert_eq!(b.approve("bob", id.parse().unwrap()).await.status, 200);
    let req: serde_json::Value = serde_json::from_str(&alice.run(&["wait", &id, "--json"]).success().stdout).unwrap();
    let grant = &req["grant"];
    (grant["id"].as_i64().unwrap(), grant["expires_at"].as_str().unwrap().parse().unwrap())
}

async fn sleep_until(at: DateTime<Utc>) {
    tokio::time::sleep((at - Utc::now()).to_std().unwrap_or_default()).await;
}

async fn pending_id(b: &TestBroker) -> i64 {
    let listed = crate::common::eventually(
        || async { b.get("admin", "/v1/requests?status=pending").await.body },
        |l| l.as_array().is_some_and(|a| !a.is_empty()),
    )
    .await;
    listed[0]["id"].as_i64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_extension_keeps_git_pushing_across_the_old_end() {
    let b = TestBroker::start_gateway("1h").await;
    let alice = logged_in_with_setup(&b, "alice").await;
    // The helper judges the cached grant by the wall clock: a grant of a few seconds, ended for real.
    let (first, ends) = write_grant(&b, &alice, "5s").await;
    let work = alice.work_dir();
    alice.git(&work, &["clone", &b.demo_url(), "demo"]).success();
    let repo = work.join("demo");

    // Pushing all along; the extension is asked for, waited on and approved on the way.
    let mut pushed_after_the_old_end = 0;
    let mut extended = false;
    for n in 0.. {
        commit(&alice, &repo, &format!("{n}.md"));
        let push = alice.git(&repo, &["push", "-q", "origin", "main"]);
        assert_eq!(push.code, 0, "push {n} ({}s to the old end) failed:\n{}", (ends - Utc::now()).num_milliseconds(), push.stderr);
        if !extended {
            let waiting = alice.spawn_watched(&["extend", "demo", "--for", "1h", "--reason", "release still running"]);
            b.long_polls_open(1).await;
            let id = pending_id(&b).await;
            let asked = b.get("bob", &format!("/v1/requests/{id}")).await.body;
            assert_eq!(asked["extends_grant"], first, "{asked}");
            assert_eq!(asked["level"], "write");
            assert_eq!(b.approve("bob", id).await.status, 200);
            alice.finish(waiting).success().stderr_has(&format!("takes the place of grant {first}"));
            extended = true;
        }
        if Utc::now() > ends + chrono::Duration::milliseconds(1500) {
            pushed_after_the_old_end += 1;
            if pushed_after_the_old_end == 2 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await; // pushes spaced across the old end, the contract here
    }
    let audit = b.audit().await;
    let asked = audit.iter().find(|e| e["action"] == "extension_requested").expect("extension_requested");
    assert_eq!(asked["actor"], "alice");
    let detail = asked["detail"].as_str().unwrap();
    assert!(detail.starts_with(&format!("grant {first} by 1h, to ")) && detail.ends_with(": release still running"), "{detail}");
    let old = b.get("alice", &format!("/v1/grants/{first}")).await.body;
    assert_eq!((old["status"].as_str(), old["revoked_by"].as_str()), (Some("revoked"), Some("broker")), "superseded: {old}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_extension_leaves_the_grant_to_end_on_time() {
    let b = TestBroker::start_gateway("1h").await;
    let alice = logged_in_with_setup(&b, "alice").await;
    let (first, ends) = write_grant(&b, &alice, "3s").await;
    let work = alice.work_dir();
    alice.git(&work, &["clone", &b.demo_url(), "demo"]).success();
    let repo = work.join("demo");
    let id = alice.run(&["extend", &first.to_string(), "--for", "1h", "--reason", "more", "--no-wait"]).success().stdout.clone();
    let id: i64 = id.trim().parse().unwrap();
    assert_eq!(b.post("bob", &format!("/v1/requests/{id}/deny"), serde_json::json!({"reason": "not today"})).await.status, 200);
    commit(&alice, &repo, "before.md");
    alice.git(&repo, &["push", "-q", "origin", "main"]).success();
    sleep_until(ends + chrono::Duration::milliseconds(500)).await; // the grant's end, on the wall clock the helper reads
    commit(&alice, &repo, "after.md");
    let late = alice.git(&repo, &["push", "-q", "origin", "main"]);
    assert_ne!(late.code, 0, "the grant ended when it would have: {}", late.stderr);
    assert!(late.stderr.contains("jit: "), "{}", late.stderr);
}

/// However long the approval takes, the grant ends where the extension asked:
/// the time asked for past the old end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_extension_ends_where_it_was_asked_to_however_late_approved() {
    let b = TestBroker::start_gateway("1h").await;
    let first = b.request("alice", "demo", "write", "2h", Some("fix")).await;
    let approved = b.approve("bob", first["id"].as_i64().unwrap()).await.body;
    let (grant, old_end) = (approved["grant"]["id"].as_i64().unwrap(), approved["grant"]["expires_at"].as_str().unwrap().to_string());
    let old_end: DateTime<Utc> = old_end.parse().unwrap();
    let asked = b.post("alice", &format!("/v1/grants/{grant}/extend"), serde_json::json!({"duration": "1h", "reason": "more"})).await;
    assert_eq!(asked.status, 201, "{}", asked.body);
    assert_eq!(asked.body["extends_grant"], grant);
    b.advance(Duration::from_secs(20 * 60)); // the approver gets to it twenty minutes later
    let done = b.approve("bob", asked.body["id"].as_i64().unwrap()).await.body;
    let new_end: DateTime<Utc> = done["grant"]["expires_at"].as_str().unwrap().parse().unwrap();
    let past_the_old = new_end - old_end;
    assert!(
        (past_the_old - chrono::Duration::hours(1)).num_seconds().abs() <= 1,
        "an hour past the old end, not an hour and twenty minutes: {past_the_old}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extend_refuses_what_it_cannot_do_each_with_its_exit_code() {
    let b = TestBroker::start_gateway("1h").await;
    let alice = logged_in_with_setup(&b, "alice").await;
    alice.run(&["extend", "demo", "--for", "1h"]).code(2).stderr_has("you have no live grant on demo");
    let (grant, _) = write_grant(&b, &alice, "1h").await;
    let g = grant.to_string();
    alice.run(&["extend", &g, "--for", "0s"]).code(2).stderr_has("0s");
    alice.run(&["extend", &g, "--for", "soon"]).code(2);
    alice.run(&["extend", "nowhere", "--for", "1h"]).code(2).stderr_has("nowhere");
    alice.run(&["extend", "999", "--for", "1h"]).code(2).stderr_has("grant 999 not found");
    // The policy decides: demo-write needs a reason, and lasts 8 h at most from now.
    alice.run(&["extend", &g, "--for", "1h", "--no-wait"]).code(5).stderr_has("reason");
    alice.run(&["extend", &g, "--for", "7h30m", "--reason", "x", "--no-wait"]).code(5).stderr_has("8h");
    // Nobody extends another's grant: it is not found, as for one that does not exist.
    let bob = cli_env(&b);
    bob.login(&b.url, b.token("bob")).success();
    bob.run(&["extend", &g, "--for", "1h", "--reason", "x"]).code(2).stderr_has(&format!("grant {grant} not found"));
    // Two live grants on the repo: which one is asked, naming both.
    alice.run(&["request", "demo", "--level", "read", "--for", "1h"]).success();
    alice
        .run(&["extend", "demo", "--for", "1h", "--reason", "x"])
        .code(2)
        .stderr_has("2 live grants on demo")
        .stderr_has(&format!("#{grant}"));
    // An ended grant is asked anew, not extended.
    alice.run(&["revoke", &g]).success();
    alice.run(&["extend", &g, "--for", "1h", "--reason", "x"]).code(4).stderr_has("has ended");
    // None of these asked for anything.
    assert!(!b.audit().await.iter().any(|e| e["action"] == "extension_requested"));
}
