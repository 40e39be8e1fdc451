//! The `bitbucket` provider against a stateful fake of Bitbucket Data
//! Center's and Cloud's REST APIs (`common::fake_bitbucket`), with Data
//! Center's git over HTTP served by real `git http-backend`: a repository
//! token per credential, sent by real git as Bearer through jit's helper and
//! deleted at Bitbucket when the grant ends; member mode on both editions
//! adds, raises and takes back only what jit gave; Bitbucket's refusals reach
//! the requester in one line with exit 6.

use std::time::Duration;

use serde_json::Value;

use crate::common::fake_bitbucket::FakeBitbucket;
use crate::common::fake_host::{actions, assert_secrets_kept_nowhere, logged_in};
use crate::common::{TestBroker, eventually};

fn details(audit: &[Value], action: &str) -> Vec<String> {
    actions(audit, action).iter().map(|e| e["detail"].as_str().unwrap_or("").to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_git_sends_each_levels_repository_token_as_bearer_until_the_grant_ends() {
    let bb = FakeBitbucket::start().await;
    let b = TestBroker::start_with(&bb.policy()).await;
    let alice = logged_in(&b, "alice");
    alice.run(&["setup"]).success();
    let host = bb.url.trim_start_matches("http://");

    // read (auto-approved), named as Bitbucket's pages show it: git clones with a REPO_READ token, as Bearer.
    alice.run(&["request", &format!("{host}/ACME/api"), "--level", "read", "--for", "2h"]).success();
    let work = alice.work_dir();
    // Bitbucket's own clone URL shows the key in lower case.
    alice.git(&work, &["clone", &format!("{}/scm/acme/api.git", bb.url), "api"]).success();
    let issued = bb.tokens();
    assert_eq!(issued.len(), 1);
    assert_eq!((issued[0].repo.as_str(), issued[0].permissions.clone()), ("ACME/api", vec!["REPO_READ".to_string()]));
    assert!(issued[0].name.starts_with("jit grant 1 (alice, read) "), "{}", issued[0].name);
    assert_eq!(issued[0].expiry_days, 1, "a two-hour grant: the token expires at Bitbucket within a day");
    assert!(bb.git_auth().iter().all(|(_, scheme)| scheme == "Bearer"), "{:?}", bb.git_auth());
    // A read token does not push.
    let clone = work.join("api");
    alice.git(&clone, &["commit", "--allow-empty", "-q", "-m", "change"]).success();
    assert_ne!(alice.git(&clone, &["push", "-q", "origin", "main"]).code, 0);

    // write, approved by carol while alice waits: the push goes through with a REPO_WRITE token.
    let id = b.request("alice", "acme/api", "write", "1h", Some("hotfix")).await["id"].as_i64().unwrap();
    assert_eq!(b.approve("carol", id).await.status, 200);
    alice.run(&["wait", &id.to_string()]).success();
    alice.git(&clone, &["push", "-q", "origin", "main"]).success();
    let write = bb.tokens().pop().unwrap();
    assert_eq!(write.permissions, ["REPO_WRITE"]);
    assert!(bb.git_auth().iter().any(|(service, scheme)| service == "receive-pack" && scheme == "Bearer"));
    // admin on a repo written in lower case: the API is given its upper-case key.
    let id = b.request("alice", "acme/tools", "admin", "1h", Some("settings")).await["id"].as_i64().unwrap();
    let grant = b.approve("carol", id).await.body["grant"]["id"].as_i64().unwrap();
    let minted = b.post("alice", &format!("/v1/grants/{grant}/credentials"), serde_json::json!({})).await;
    assert_eq!((minted.status, minted.body["authtype"].as_str()), (201, Some("bearer")), "{:?}", minted.body);
    assert_eq!(bb.tokens().pop().unwrap().permissions, ["REPO_ADMIN"]);

    // Every grant ends: every token is deleted at Bitbucket by its id, and git no longer gets in.
    b.advance(Duration::from_secs(2 * 3600 + 1));
    let live = eventually(|| async { bb.live_tokens().len() }, |n| *n == 0).await;
    assert_eq!(live, 0, "Bitbucket still honours a token of an ended grant");
    let audit = eventually(|| b.audit(), |a| actions(a, "host_revoked").len() == 3).await;
    assert!(details(&audit, "host_revoked").iter().all(|d| d.starts_with("bitbucket: 1 credential(s) revoked at the host")));
    assert_ne!(alice.git(&clone, &["fetch", "-q", "origin"]).code, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_git_that_cannot_send_bearer_is_told_so_and_given_nothing() {
    let bb = FakeBitbucket::start().await;
    let b = TestBroker::start_with(&bb.policy()).await;
    let alice = logged_in(&b, "alice");
    alice.run(&["request", "acme/api", "--level", "read", "--for", "1h"]).success();
    let host = bb.url.trim_start_matches("http://");
    let ask = |capability: &str| format!("protocol=http\nhost={host}\npath=scm/ACME/api.git\n{capability}");
    // git ≥ 2.46 announces authtype: the token as its own Bearer header, nothing a storage helper would keep.
    let modern = alice.run_helper("get", &ask("capability[]=authtype\n"));
    modern.success();
    let token = bb.tokens()[0].token.clone();
    assert!(modern.stdout.contains(&format!("authtype=Bearer\ncredential={token}\n")), "{}", modern.stdout);
    assert!(!modern.stdout.contains("password="), "{}", modern.stdout);
    // An older git would send it as a Basic password, which Bitbucket refuses: told why, from the cache and from the broker.
    for _ in 0..2 {
        let old = alice.run_helper("get", &ask(""));
        assert!(!old.stdout.contains(&token), "{}", old.stdout);
        assert!(old.stderr.contains("git sends from version 2.46"), "{}", old.stderr);
        alice.run(&["logout"]).success();
        alice.login(&b.url, b.token("alice")).success();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_and_doctor_name_an_older_git_that_cannot_use_the_grant() {
    let bb = FakeBitbucket::start().await;
    let b = TestBroker::start_with(&bb.policy()).await;
    let alice = logged_in(&b, "alice");
    // A git 2.45 first on PATH: it answers `--version`, and nothing else is asked of it here.
    let bin = alice.home().join("old-git");
    std::fs::create_dir_all(&bin).unwrap();
    let git = bin.join("git");
    std::fs::write(&git, "#!/bin/sh\necho 'git version 2.45.2'\n").unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&git, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let old = [("PATH", path.as_str())];
    let granted = alice.run_with(&["request", "acme/api", "--level", "read", "--for", "1h"], &old, None);
    granted.success().stderr_has("takes this credential only as a Bearer token, which git sends from 2.46 on (git version 2.45.2 here)");
    let doctor = alice.run_with(&["doctor", "--json"], &old, None);
    let checks = doctor.json();
    let git = checks.as_array().unwrap().iter().find(|c| c["name"] == "git").cloned().unwrap();
    assert_eq!(git["ok"], false, "{git}");
    assert!(git["detail"].as_str().unwrap().contains("acme/api take(s) the credential only as a Bearer token"), "{git}");
    // With this machine's own git, neither says a word of it.
    alice.run(&["request", "acme/tools", "--level", "read", "--for", "1h"]).success();
    let fine = alice.run(&["request", "acme/api", "--level", "read", "--for", "2h"]);
    assert!(!fine.stderr.contains("Bearer"), "{}", fine.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bitbucket_refusals_reach_the_requester_in_one_line_and_a_failed_deletion_is_retried() {
    let bb = FakeBitbucket::start().await;
    let b = TestBroker::start_with(&bb.policy()).await;
    let dave = logged_in(&b, "dave");
    dave.run(&["request", "acme/gone", "--level", "read", "--for", "1h"]).code(6).stderr_has("does the repository exist");
    dave.run(&["request", "acme/secret", "--level", "read", "--for", "1h"]).code(6).stderr_has("must be project admin");
    bb.fail_next("create", 1, 401);
    dave.run(&["request", "acme/api", "--level", "read", "--for", "1h"]).code(6).stderr_has("check token_file / token_env");
    bb.disable_tokens();
    let erin = logged_in(&b, "erin");
    erin.run(&["request", "acme/api", "--level", "read", "--for", "1h"])
        .code(6)
        .stderr_has("HTTP access tokens are turned off on this instance");
    let failed = details(&b.audit().await, "credential_failed");
    assert_eq!(failed.len(), 4, "{failed:?}");
    assert!(failed[0].contains("HTTP 404") && failed[0].contains("Repository ACME/gone does not exist"), "{}", failed[0]);

    // A deletion Bitbucket fails twice is retried until it succeeds.
    let bb = FakeBitbucket::start().await;
    let b = TestBroker::start_with(&bb.policy()).await;
    let bob = logged_in(&b, "bob");
    bob.run(&["request", "acme/api", "--level", "read", "--for", "1h"]).success();
    assert_eq!(bb.live_tokens().len(), 1);
    bb.fail_next("delete", 2, 502);
    crate::common::fake_host::a_revocation_failing_twice_is_retried(&b, || bb.live_tokens().len()).await;
    let audit = eventually(|| b.audit(), |a| actions(a, "host_revoked").len() == 1).await;
    assert_eq!(details(&audit, "host_revoked"), ["bitbucket: 1 credential(s) revoked at the host, after 2 failed attempts"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_center_member_mode_gives_raises_and_takes_back_only_what_jit_gave() {
    let bb = FakeBitbucket::start().await;
    let b = TestBroker::start_with(&bb.member_policy()).await;
    // bob may read the repo himself; dave writes to the whole project.
    bb.set_permission("ACME/api", "bob", "REPO_READ");
    bb.set_permission("ACME", "dave", "PROJECT_WRITE");
    for user in ["alice", "bob", "dave", "erin"] {
        let id = b.request(user, "acme/api", "write", "1h", Some("fix")).await["id"].as_i64().unwrap();
        assert_eq!(b.approve("carol", id).await.status, 200);
    }
    let audit = eventually(|| b.audit(), |a| actions(a, "host_granted").len() == 3 && !actions(a, "host_grant_failed").is_empty()).await;
    assert_eq!(
        details(&audit, "host_granted"),
        [
            "bitbucket: alice given REPO_WRITE on acme/api",
            "bitbucket: bob raised from REPO_READ to REPO_WRITE on acme/api",
            "bitbucket: dave already has it through the project on acme/api",
        ]
    );
    assert!(details(&audit, "host_grant_failed")[0].contains("Bitbucket has no user `erin`"), "{audit:?}");
    assert_eq!(bb.permission("ACME/api", "alice").as_deref(), Some("REPO_WRITE"));
    assert_eq!(bb.permission("ACME/api", "bob").as_deref(), Some("REPO_WRITE"));
    assert_eq!(bb.permission("ACME/api", "dave"), None, "the project's permission was enough: nothing added");

    // The grants end: alice's permission removed, bob's put back, dave untouched.
    b.advance(Duration::from_secs(3601));
    eventually(|| b.audit(), |a| actions(a, "host_revoked").len() >= 3).await;
    assert_eq!(bb.permission("ACME/api", "alice"), None);
    assert_eq!(bb.permission("ACME/api", "bob").as_deref(), Some("REPO_READ"));
    assert!(bb.tokens().is_empty(), "member mode mints no tokens");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_sets_the_explicit_permission_and_restores_what_was_there() {
    let bb = FakeBitbucket::start().await;
    // The broker as an account with an API token (Basic); the fake checks exactly that header.
    let b = TestBroker::start_with(&bb.cloud_policy(Some("jit-bot@example.com"))).await;
    bb.set_permission("acme/web", "{b0b-uuid}", "read");
    bb.set_permission("acme/web", "557058:dave", "admin");
    for user in ["alice", "bob", "dave"] {
        let id = b.request(user, "acme/web", "write", "1h", Some("fix")).await["id"].as_i64().unwrap();
        assert_eq!(b.approve("carol", id).await.status, 200);
    }
    let audit = eventually(|| b.audit(), |a| actions(a, "host_granted").len() == 3).await;
    assert_eq!(
        details(&audit, "host_granted"),
        [
            "bitbucket-cloud: 557058:a11ce given write on acme/web",
            "bitbucket-cloud: {b0b-uuid} raised from read to write on acme/web",
            "bitbucket-cloud: 557058:dave already has admin on acme/web",
        ]
    );
    assert_eq!(bb.permission("acme/web", "557058:a11ce").as_deref(), Some("write"));
    // Its access is the person's own credentials: the helper leaves the URL alone.
    let alice = logged_in(&b, "alice");
    let repos = alice.run(&["repos", "--json"]).success().json();
    assert_eq!(repos[0]["own_credentials_url"], "https://bitbucket.org/acme/web.git", "{repos}");

    b.advance(Duration::from_secs(3601));
    eventually(|| b.audit(), |a| actions(a, "host_revoked").len() == 3).await;
    assert_eq!(bb.permission("acme/web", "557058:a11ce"), None);
    assert_eq!(bb.permission("acme/web", "{b0b-uuid}").as_deref(), Some("read"));
    assert_eq!(bb.permission("acme/web", "557058:dave").as_deref(), Some("admin"));

    // An account Bitbucket does not know: the grant is refused there, and said so.
    let id = b.request("erin", "acme/web", "write", "1h", Some("fix")).await["id"].as_i64().unwrap();
    assert_eq!(b.approve("carol", id).await.status, 200);
    let audit = eventually(|| b.audit(), |a| !actions(a, "host_grant_failed").is_empty()).await;
    let failed = &details(&audit, "host_grant_failed")[0];
    assert!(failed.contains("HTTP 404") && failed.contains("User 557058:nobody not found"), "{failed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_bitbucket_secret_is_kept_in_clear_or_shown_but_where_it_is_the_point() {
    let bb = FakeBitbucket::start().await;
    let b = TestBroker::start_with(&bb.policy()).await;
    let alice = logged_in(&b, "alice");
    alice.run(&["setup"]).success();
    alice.run(&["request", "acme/api", "--level", "read", "--for", "1h"]).success();
    let host = bb.url.trim_start_matches("http://");
    alice.run_helper("get", &format!("protocol=http\nhost={host}\npath=scm/acme/api.git\ncapability[]=authtype\n")).success();
    assert_secrets_kept_nowhere(&b, &alice, || bb.secrets(), || bb.live_tokens().len()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_brokers_credential_is_checked_before_any_grant() {
    let bb = FakeBitbucket::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("jit.toml");
    let check = |policy: String| {
        std::fs::write(&config, policy).unwrap();
        crate::common::jit()
            .args(["server", "--host-setup", "--config"])
            .arg(&config)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .output()
            .unwrap()
    };
    let fine = check(bb.policy());
    assert!(fine.status.success(), "{}", String::from_utf8_lossy(&fine.stderr));
    let cloud = check(bb.cloud_policy(Some("jit-bot@example.com")));
    assert!(cloud.status.success(), "{}", String::from_utf8_lossy(&cloud.stderr));
    // A token Bitbucket does not take.
    let wrong = bb.policy().replace("bitbucket.token", "no-such.token");
    std::fs::write(bb.dir.path().join("no-such.token"), "BBDC-not-the-one\n").unwrap();
    let said = check(wrong);
    assert_eq!(said.status.code(), Some(6), "{}", String::from_utf8_lossy(&said.stderr));
    let out = String::from_utf8_lossy(&said.stdout);
    assert!(out.contains("provider `bitbucket`: cannot check the broker's credential") && out.contains("HTTP 401"), "{out}");
}

/// A write grant for alice on `repo`, approved by carol; its id.
async fn write_grant(b: &TestBroker, repo: &str, duration: &str) -> i64 {
    let id = b.request("alice", repo, "write", duration, Some("hotfix")).await["id"].as_i64().unwrap();
    let approved = b.approve("carol", id).await;
    assert_eq!(approved.status, 200, "{:?}", approved.body);
    approved.body["grant"]["id"].as_i64().unwrap()
}

async fn mint(b: &TestBroker, grant: i64) {
    let minted = b.post("alice", &format!("/v1/grants/{grant}/credentials"), serde_json::json!({})).await;
    assert_eq!(minted.status, 201, "{:?}", minted.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jit_revoke_deletes_the_tokens_and_takes_back_the_permission_at_once() {
    // Data Center, token mode: both of the grant's tokens deleted, with no clock moved.
    let bb = FakeBitbucket::start().await;
    let b = TestBroker::start_with(&bb.policy()).await;
    let grant = write_grant(&b, "acme/api", "2h").await;
    mint(&b, grant).await;
    mint(&b, grant).await;
    assert_eq!(bb.live_tokens().len(), 2);
    let carol = logged_in(&b, "carol");
    carol.run(&["revoke", &grant.to_string(), "--reason", "done"]).success();
    assert_eq!(eventually(|| async { bb.live_tokens().len() }, |n| *n == 0).await, 0, "a revoked grant's token still works at Bitbucket");
    let audit = eventually(|| b.audit(), |a| !actions(a, "host_revoked").is_empty()).await;
    assert_eq!(details(&audit, "host_revoked"), ["bitbucket: 2 credential(s) revoked at the host"]);
    assert!(actions(&audit, "grant_expired").is_empty(), "revoked, not expired");

    // Data Center, member mode: the permission jit gave is taken back, bob's own is put back.
    let bb = FakeBitbucket::start().await;
    let b = TestBroker::start_with(&bb.member_policy()).await;
    bb.set_permission("ACME/api", "bob", "REPO_READ");
    let grant = write_grant(&b, "acme/api", "2h").await;
    let id = b.request("bob", "acme/api", "write", "2h", Some("fix")).await["id"].as_i64().unwrap();
    let bobs = b.approve("carol", id).await.body["grant"]["id"].as_i64().unwrap();
    eventually(|| b.audit(), |a| actions(a, "host_granted").len() == 2).await;
    let carol = logged_in(&b, "carol");
    for g in [grant, bobs] {
        carol.run(&["revoke", &g.to_string(), "--reason", "done"]).success();
    }
    eventually(|| b.audit(), |a| actions(a, "host_revoked").len() == 2).await;
    assert_eq!(bb.permission("ACME/api", "alice"), None);
    assert_eq!(bb.permission("ACME/api", "bob").as_deref(), Some("REPO_READ"));

    // Cloud: the same, by account id.
    let bb = FakeBitbucket::start().await;
    let b = TestBroker::start_with(&bb.cloud_policy(None)).await;
    let grant = write_grant(&b, "acme/web", "2h").await;
    eventually(|| async { bb.permission("acme/web", "557058:a11ce") }, |p| p.is_some()).await;
    logged_in(&b, "carol").run(&["revoke", &grant.to_string(), "--reason", "done"]).success();
    assert_eq!(eventually(|| async { bb.permission("acme/web", "557058:a11ce") }, Option::is_none).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_down_when_grants_end_takes_everything_back_on_restart() {
    // Token mode: the tokens of a grant that ended while no broker ran are deleted when one starts.
    let bb = FakeBitbucket::start().await;
    let mut b = TestBroker::start_with(&bb.policy()).await;
    let grant = write_grant(&b, "acme/api", "1h").await;
    mint(&b, grant).await;
    mint(&b, grant).await;
    b.handle.take().unwrap().shutdown().await.unwrap();
    b.advance(Duration::from_secs(2 * 3600));
    assert_eq!(bb.live_tokens().len(), 2, "nobody was there to delete them");
    b.restart().await;
    assert_eq!(eventually(|| async { bb.live_tokens().len() }, |n| *n == 0).await, 0, "the restarted broker caught up");
    let audit = eventually(|| b.audit(), |a| !actions(a, "host_revoked").is_empty()).await;
    assert_eq!(details(&audit, "host_revoked"), ["bitbucket: 2 credential(s) revoked at the host"]);

    // Member mode: the raise undone and the added permission removed, from what was kept on disk.
    let bb = FakeBitbucket::start().await;
    let mut b = TestBroker::start_with(&bb.member_policy()).await;
    bb.set_permission("ACME/api", "bob", "REPO_READ");
    write_grant(&b, "acme/api", "1h").await;
    let id = b.request("bob", "acme/api", "write", "1h", Some("fix")).await["id"].as_i64().unwrap();
    assert_eq!(b.approve("carol", id).await.status, 200);
    eventually(|| b.audit(), |a| actions(a, "host_granted").len() == 2).await;
    b.handle.take().unwrap().shutdown().await.unwrap();
    b.advance(Duration::from_secs(2 * 3600));
    assert_eq!(bb.permission("ACME/api", "bob").as_deref(), Some("REPO_WRITE"));
    b.restart().await;
    eventually(|| b.audit(), |a| actions(a, "host_revoked").len() == 2).await;
    assert_eq!(bb.permission("ACME/api", "alice"), None);
    assert_eq!(bb.permission("ACME/api", "bob").as_deref(), Some("REPO_READ"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_grants_each_keep_what_they_need_until_their_own_end() {
    // Token mode: a read grant for 4h and a write grant for 1h hold a token each; the first
    // to end takes only its own, and real git keeps fetching on the other.
    let bb = FakeBitbucket::start().await;
    let b = TestBroker::start_with(&bb.policy()).await;
    let alice = logged_in(&b, "alice");
    alice.run(&["setup"]).success();
    alice.run(&["request", "acme/api", "--level", "read", "--for", "4h"]).success();
    let write = write_grant(&b, "acme/api", "1h").await;
    mint(&b, write).await;
    assert_eq!(bb.live_tokens().len(), 2);
    let work = alice.work_dir();
    alice.git(&work, &["clone", &format!("{}/scm/ACME/api.git", bb.url), "api"]).success();
    b.advance(Duration::from_secs(3601));
    let live = eventually(|| async { bb.live_tokens() }, |l| l.len() == 1).await;
    assert_eq!(live[0].permissions, ["REPO_READ"], "the write grant's end deleted the read grant's token");
    alice.git(&work.join("api"), &["fetch", "-q", "origin"]).success();
    b.advance(Duration::from_secs(3 * 3600));
    assert_eq!(eventually(|| async { bb.live_tokens().len() }, |n| *n == 0).await, 0);

    // Member mode, Data Center and Cloud: read for 4h, admin for 1h — raised, lowered back to
    // what the read grant gives when the admin grant ends, and removed at the last end.
    for cloud in [false, true] {
        let bb = FakeBitbucket::start().await;
        let policy = if cloud { bb.cloud_policy(None) } else { bb.member_policy() };
        let b = TestBroker::start_with(&policy).await;
        let (repo, at, who, [read, admin]) = if cloud {
            ("acme/web", "acme/web", "557058:a11ce", ["read", "admin"])
        } else {
            ("acme/api", "ACME/api", "alice", ["REPO_READ", "REPO_ADMIN"])
        };
        b.request("alice", repo, "read", "4h", None).await;
        eventually(|| async { bb.permission(at, who) }, |p| p.as_deref() == Some(read)).await;
        let id = b.request("alice", repo, "admin", "1h", Some("settings")).await["id"].as_i64().unwrap();
        assert_eq!(b.approve("carol", id).await.status, 200);
        let raised = eventually(|| async { bb.permission(at, who) }, |p| p.as_deref() == Some(admin)).await;
        assert_eq!(raised.as_deref(), Some(admin), "cloud: {cloud}");
        b.advance(Duration::from_secs(3601));
        let back = eventually(|| async { bb.permission(at, who) }, |p| p.as_deref() == Some(read)).await;
        assert_eq!(back.as_deref(), Some(read), "cloud: {cloud}: the admin grant's end left its level behind or took the read away");
        b.advance(Duration::from_secs(3 * 3600));
        assert_eq!(eventually(|| async { bb.permission(at, who) }, Option::is_none).await, None, "cloud: {cloud}");
    }
}
