//! The `gitlab` provider against a stateful fake of GitLab's project access
//! tokens API (`common::fake_gitlab`): a token per credential with the
//! level's scopes and role, expiring the day after the grant (GitLab counts
//! in days) and revoked by id when the grant ends; GitLab's refusals reach
//! the requester; no token kept in clear.

use std::time::Duration;

use serde_json::Value;

use crate::common::fake_gitlab::FakeGitLab;
use crate::common::fake_host::{actions, logged_in};
use crate::common::{TestBroker, cli_env, eventually};

async fn gitlab() -> (FakeGitLab, TestBroker) {
    let gl = FakeGitLab::start().await;
    let b = TestBroker::start_with(&gl.policy()).await;
    (gl, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_level_gets_a_project_token_with_its_scopes_and_role_revoked_when_the_grant_ends() {
    let (gl, b) = gitlab().await;
    let alice = logged_in(&b, "alice");
    alice.run(&["setup"]).success();
    // read: auto-approved; git asks for the project's URL and gets the token.
    alice.run(&["request", "gitlab.example.com/acme/api", "--level", "read", "--for", "2h"]).success();
    let answer = alice.run_helper("get", "protocol=https\nhost=gitlab.example.com\npath=acme/api.git\n");
    answer.success();
    let issued = gl.tokens();
    assert_eq!(issued.len(), 1, "{}", answer.stderr);
    assert!(answer.stdout.contains(&format!("password={}\n", issued[0].token)), "{}", answer.stdout);
    assert!(answer.stdout.contains("username=jit-grant-1\n"), "{}", answer.stdout);
    assert_eq!(
        (issued[0].project.as_str(), issued[0].scopes.clone(), issued[0].access_level),
        ("acme/api", vec!["read_repository".to_string()], 20)
    );
    assert!(issued[0].name.starts_with("jit grant 1 (alice, read)"), "{}", issued[0].name);
    let grant_end =
        chrono::DateTime::parse_from_rfc3339(b.get("alice", "/v1/grants/1").await.body["expires_at"].as_str().unwrap()).unwrap();
    let grant_end = grant_end.with_timezone(&chrono::Utc);
    let (date, _) = jit::providers::gitlab::expiry_date(grant_end, chrono::Utc::now().date_naive(), 365);
    assert_eq!(issued[0].expires_at, date, "the first date whose midnight (UTC, when GitLab ends it) is at or after the grant's end");
    assert!(
        date.and_time(chrono::NaiveTime::MIN).and_utc() - grant_end < chrono::Duration::days(1),
        "it outlives the grant by under a day"
    );

    // write and admin (approved by carol) on a project two groups deep.
    for (level, role) in [("write", 30), ("admin", 40)] {
        let id = b.request("alice", "acme/platform/tools", level, "1h", Some("release")).await["id"].as_i64().unwrap();
        let grant = b.approve("carol", id).await.body["grant"]["id"].as_i64().unwrap();
        let minted = b.post("alice", &format!("/v1/grants/{grant}/credentials"), serde_json::json!({})).await;
        assert_eq!(minted.status, 201, "{}", minted.code());
        let last = gl.tokens().pop().unwrap();
        assert_eq!((last.project.as_str(), last.access_level), ("acme/platform/tools", role));
        assert_eq!(last.scopes, ["read_repository", "write_repository"]);
    }
    // The admin grant superseded the write grant: its token is revoked at once.
    let live = eventually(|| async { gl.live_tokens() }, |t| t.len() == 2).await;
    assert_eq!(live.iter().map(|t| t.access_level).collect::<Vec<_>>(), [20, 40]);
    // No token in clear on disk or in the audit log.
    let audit = serde_json::to_string(&b.audit().await).unwrap();
    let mut disk = Vec::new();
    for entry in std::fs::read_dir(b.dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            disk.extend(std::fs::read(&path).unwrap());
        }
    }
    for t in gl.tokens() {
        assert!(!disk.windows(t.token.len()).any(|w| w == t.token.as_bytes()) && !audit.contains(&t.token));
    }

    // Every grant ends: every token is revoked at GitLab by its id.
    b.advance(Duration::from_secs(2 * 3600 + 1));
    let live = eventually(|| async { gl.live_tokens().len() }, |n| *n == 0).await;
    assert_eq!(live, 0, "GitLab still honours a token of an ended grant");
    let audit = eventually(|| b.audit(), |a| actions(a, "host_revoked").len() == 3).await;
    assert_eq!(actions(&audit, "host_revoked").len(), 3);
    assert!(actions(&audit, "host_revoked").iter().all(|e| e["detail"] == "gitlab: 1 credential(s) revoked at the host"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gitlabs_refusals_reach_the_requester_and_a_failed_revocation_is_retried() {
    let (gl, b) = gitlab().await;
    // A project the broker's token cannot see: GitLab's 404, named.
    let dave = logged_in(&b, "dave");
    dave.run(&["request", "acme/other", "--level", "read", "--for", "1h"]).code(6).stderr_has("does the project exist");
    // The broker's token refused: GitLab's 401.
    gl.fail_next("create", 1, 401);
    let erin = logged_in(&b, "erin");
    erin.run(&["request", "acme/api", "--level", "read", "--for", "1h"]).code(6).stderr_has("check token_file / token_env");
    let failed = actions(&b.audit().await, "credential_failed");
    assert_eq!(failed.len(), 2);
    assert!(failed[0]["detail"].as_str().unwrap().contains("HTTP 404"));

    // A revocation GitLab fails twice is retried until it succeeds.
    let bob = logged_in(&b, "bob");
    bob.run(&["request", "acme/api", "--level", "read", "--for", "1h"]).success();
    assert_eq!(gl.live_tokens().len(), 1);
    gl.fail_next("revoke", 2, 502);
    crate::common::fake_host::a_revocation_failing_twice_is_retried(&b, || gl.live_tokens().len()).await;
    let audit = eventually(|| b.audit(), |a| actions(a, "host_revoked").len() == 3).await;
    let revoked = actions(&audit, "host_revoked");
    let details: Vec<&str> = revoked.iter().map(|e| e["detail"].as_str().unwrap()).collect();
    // dave's and erin's grants held nothing at GitLab (their mints failed); bob's one token, after two failures.
    assert_eq!(
        details,
        [
            "gitlab: 0 credential(s) revoked at the host",
            "gitlab: 0 credential(s) revoked at the host",
            "gitlab: 1 credential(s) revoked at the host, after 2 failed attempts"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_mode_adds_raises_and_takes_back_only_what_jit_gave() {
    let gl = FakeGitLab::start().await;
    let b = TestBroker::start_with(&gl.member_policy()).await;
    // bob is a Reporter of acme/api himself; dave a Maintainer through a group.
    gl.set_member("acme/api", "bob.gl", 20);
    gl.set_inherited("acme/api", "dave.gl", 40);
    let grant_of = |body: Value| body["grant"]["id"].as_i64().unwrap();
    for user in ["alice", "bob", "dave"] {
        let id = b.request(user, "acme/api", "write", "1h", Some("fix")).await["id"].as_i64().unwrap();
        grant_of(b.approve("carol", id).await.body);
    }
    let audit = eventually(|| b.audit(), |a| actions(a, "host_granted").len() == 3).await;
    let granted: Vec<String> = actions(&audit, "host_granted").iter().map(|e| e["detail"].as_str().unwrap().to_string()).collect();
    assert_eq!(
        granted,
        [
            "gitlab: alice.gl added to acme/api with access level 30",
            "gitlab: bob.gl raised from access level 20 to 30 on acme/api",
            "gitlab: dave.gl already has access level 40 on acme/api",
        ]
    );
    let (level, expires_at) = gl.member("acme/api", "alice.gl").unwrap();
    assert_eq!(level, 30);
    assert!(expires_at.is_some(), "GitLab ends it by itself too, should the broker be down");
    assert_eq!(gl.member("acme/api", "bob.gl").unwrap().0, 30);
    assert_eq!(gl.member("acme/api", "dave.gl"), None, "dave's group access was enough: nothing added");

    // The grants end: alice is removed, bob put back to Reporter, dave untouched.
    b.advance(Duration::from_secs(3601));
    eventually(|| b.audit(), |a| actions(a, "host_revoked").len() == 3).await;
    assert_eq!(gl.member("acme/api", "alice.gl"), None);
    assert_eq!(gl.member("acme/api", "bob.gl").unwrap().0, 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_mode_keeps_a_shorter_higher_grant_from_leaving_its_level_behind() {
    let gl = FakeGitLab::start().await;
    let b = TestBroker::start_with(&gl.member_policy()).await;
    // Read for four hours (auto-approved), then admin for one: one membership, raised.
    let alice = cli_env(&b);
    alice.login(&b.url, b.token("alice")).success();
    alice.run(&["request", "acme/api", "--level", "read", "--for", "4h"]).success();
    eventually(|| async { gl.member("acme/api", "alice.gl") }, |m| m.is_some()).await;
    assert_eq!(gl.member("acme/api", "alice.gl").unwrap().0, 20);
    let id = b.request("alice", "acme/api", "admin", "1h", Some("release")).await["id"].as_i64().unwrap();
    assert_eq!(b.approve("carol", id).await.status, 200);
    let raised = eventually(|| async { gl.member("acme/api", "alice.gl") }, |m| m.as_ref().is_some_and(|m| m.0 == 40)).await;
    assert_eq!(raised.unwrap().0, 40);
    // The admin grant ends first: alice is back to what her read grant gives, not left a Maintainer.
    b.advance(Duration::from_secs(3601));
    let back = eventually(|| async { gl.member("acme/api", "alice.gl") }, |m| m.as_ref().is_some_and(|m| m.0 == 20)).await;
    assert_eq!(back.unwrap().0, 20);
    // And when the read grant ends, nothing of jit's is left.
    b.advance(Duration::from_secs(3 * 3600));
    let gone = eventually(|| async { gl.member("acme/api", "alice.gl") }, |m| m.is_none()).await;
    assert_eq!(gone, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_gitlab_secret_is_kept_in_clear_or_shown_but_where_it_is_the_point() {
    let (gl, b) = gitlab().await;
    let alice = logged_in(&b, "alice");
    alice.run(&["setup"]).success();
    alice.run(&["request", "acme/api", "--level", "read", "--for", "1h"]).success();
    alice.run_helper("get", "protocol=https\nhost=gitlab.example.com\npath=acme/api.git\n").success();
    crate::common::fake_host::assert_secrets_kept_nowhere(&b, &alice, || gl.secrets(), || gl.live_tokens().len()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_mode_does_not_count_an_awaiting_membership_as_access() {
    let gl = FakeGitLab::start().await;
    let b = TestBroker::start_with(&gl.member_policy()).await;
    // dave's Maintainer access through a group is "awaiting" at GitLab: listed, but no access yet.
    gl.set_awaiting_inherited("acme/api", "dave.gl", 40);
    let id = b.request("dave", "acme/api", "write", "1h", Some("fix")).await["id"].as_i64().unwrap();
    assert_eq!(b.approve("carol", id).await.status, 200);
    let audit = eventually(|| b.audit(), |a| !actions(a, "host_granted").is_empty()).await;
    assert_eq!(actions(&audit, "host_granted")[0]["detail"], "gitlab: dave.gl added to acme/api with access level 30");
    assert_eq!(gl.member("acme/api", "dave.gl").map(|m| m.0), Some(30));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_token_that_cannot_create_project_tokens_is_named_before_and_when_minting() {
    let gl = FakeGitLab::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("jit.toml");
    std::fs::write(&config, gl.policy()).unwrap();
    let check = || {
        crate::common::jit()
            .args(["server", "--host-setup", "--config"])
            .arg(&config)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .output()
            .unwrap()
    };
    let fine = check();
    assert!(fine.status.success(), "{}", String::from_utf8_lossy(&fine.stderr));

    // A project (or group) access token: GitLab documents that it cannot create project access tokens.
    gl.broker_token_is_a_project_token();
    let said = check();
    assert_eq!(said.status.code(), Some(6));
    let out = String::from_utf8_lossy(&said.stdout);
    assert!(out.contains("provider `gitlab`: the broker's token is a project or group access token"), "{out}");
    let b = TestBroker::start_with(&gl.policy()).await;
    let alice = logged_in(&b, "alice");
    alice.run(&["request", "acme/api", "--level", "read", "--for", "1h"]).code(6).stderr_has("must be a personal access token");

    // Without the api scope.
    gl.broker_token_scopes(&["read_api"]);
    let out = String::from_utf8(check().stdout).unwrap();
    assert!(out.contains("the broker's token lacks the api scope (it has: read_api)"), "{out}");
    assert!(!out.contains("Internal projects"), "{out}");
    // Internal projects: every project token reads them.
    gl.add_internal_project("acme/handbook");
    let out = String::from_utf8(check().stdout).unwrap();
    assert!(out.contains("this GitLab has Internal projects, and a project access token can read every one of them"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_mode_does_not_take_a_queued_role_promotion_for_a_grant() {
    let gl = FakeGitLab::start().await;
    let b = TestBroker::start_with(&gl.member_policy()).await;
    // An administrator must approve promotions: GitLab queues the addition and answers as if done.
    gl.queue_role_promotions();
    let id = b.request("alice", "acme/api", "write", "1h", Some("fix")).await["id"].as_i64().unwrap();
    assert_eq!(b.approve("carol", id).await.status, 200);
    let audit = eventually(|| b.audit(), |a| !actions(a, "host_grant_failed").is_empty()).await;
    let failed = actions(&audit, "host_grant_failed")[0]["detail"].as_str().unwrap().to_string();
    assert!(failed.contains("queued for an administrator's approval") && failed.contains("not a grant"), "{failed}");
    assert!(actions(&audit, "host_granted").is_empty(), "a queued change is never audited as given");
    assert_eq!(gl.member("acme/api", "alice.gl"), None);
    // bob's own Reporter membership raised for a grant: queued too, and refused the same way.
    gl.set_member("acme/api", "bob.gl", 20);
    let id = b.request("bob", "acme/api", "write", "1h", Some("fix")).await["id"].as_i64().unwrap();
    assert_eq!(b.approve("carol", id).await.status, 200);
    eventually(|| b.audit(), |a| actions(a, "host_grant_failed").iter().any(|e| e["detail"].as_str().unwrap().contains("bob.gl"))).await;
    assert_eq!(gl.member("acme/api", "bob.gl").map(|m| m.0), Some(20));
}
