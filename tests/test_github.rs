//! The `github` provider against a stateful fake of GitHub's App API
//! (`common::fake_github`): installation tokens for the one repository and
//! the level's permissions, every token revoked at GitHub when its grant ends
//! (also after a restart, also when GitHub fails for a while), GitHub's
//! documented refusals reaching the requester, and no token kept in clear.

use std::time::Duration;

use serde_json::Value;

use crate::common::fake_github::{FakeGitHub, Route};
use crate::common::fake_host::{actions, logged_in};
use crate::common::{TestBroker, eventually};

const API_QUERY: &str = "protocol=https\nhost=github.com\npath=acme/api.git\n";

async fn github() -> (FakeGitHub, TestBroker) {
    let gh = FakeGitHub::start().await;
    let b = TestBroker::start_with(&gh.policy()).await;
    (gh, b)
}

/// A write grant on acme/api for alice, approved by carol: its id.
async fn write_grant(b: &TestBroker, duration: &str) -> i64 {
    let id = b.request("alice", "acme/api", "write", duration, Some("hotfix")).await["id"].as_i64().unwrap();
    let approved = b.approve("carol", id).await;
    assert_eq!(approved.status, 200, "{:?}", approved.body);
    approved.body["grant"]["id"].as_i64().unwrap()
}

async fn mint(b: &TestBroker, user: &str, grant: i64) -> Value {
    let r = b.post(user, &format!("/v1/grants/{grant}/credentials"), serde_json::json!({})).await;
    assert_eq!(r.status, 201, "{}", r.code());
    r.body
}

/// Every byte the broker keeps (its files: the database and its journal; on
/// PostgreSQL also every row of its tables, as text).
async fn stored_bytes(b: &TestBroker) -> Vec<u8> {
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(b.dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            bytes.extend(std::fs::read(&path).unwrap());
        }
    }
    if crate::common::postgres::enabled() {
        for table in ["users", "grants", "credentials", "host_tokens", "sessions", "audit_events"] {
            bytes.extend(format!("{:?}", b.query_text(&format!("SELECT * FROM {table}")).await).into_bytes());
        }
    }
    bytes
}

async fn host_tokens_stored(b: &TestBroker) -> i64 {
    b.query_text("SELECT COUNT(*) FROM host_tokens").await[0][0].as_deref().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_mints_tokens_for_its_one_repo_and_every_one_is_revoked_when_it_ends() {
    let (gh, b) = github().await;
    let grant = write_grant(&b, "2h").await;
    let alice = logged_in(&b, "alice");
    alice.run(&["setup"]).success();
    let config = std::fs::read_to_string(alice.home().join(".gitconfig")).unwrap();
    assert!(config.contains("[credential \"https://github.com\"]"), "git asks jit for GitHub's URLs:\n{config}");

    // git asks for github.com/acme/api: the helper answers with an installation token.
    let answer = alice.run_helper("get", API_QUERY);
    answer.success();
    assert!(answer.stderr.is_empty(), "{}", answer.stderr);
    let issued = gh.tokens();
    assert_eq!(issued.len(), 1);
    assert!(answer.stdout.contains("username=x-access-token\n"), "{}", answer.stdout);
    assert!(answer.stdout.contains(&format!("password={}\n", issued[0].token)), "{}", answer.stdout);
    assert_eq!(issued[0].repositories, ["api"]);
    assert_eq!(issued[0].permissions.iter().map(|(k, v)| format!("{k}:{v}")).collect::<Vec<_>>(), ["contents:write"]);
    // An installation token lives an hour; the grant two: the credential ends with the token.
    let expiry: i64 = answer.stdout.lines().find_map(|l| l.strip_prefix("password_expiry_utc=")).unwrap().parse().unwrap();
    assert_eq!(expiry, issued[0].expires_at.timestamp());

    // Minted again (the helper's refresh path asks the same endpoint): each a new token.
    let second = mint(&b, "alice", grant).await;
    let third = mint(&b, "alice", grant).await;
    assert_eq!(second["username"], "x-access-token");
    let issued = gh.tokens();
    assert_eq!(issued.len(), 3);
    assert_eq!((second["password"].as_str(), third["password"].as_str()), (Some(issued[1].token.as_str()), Some(issued[2].token.as_str())));
    assert_ne!(issued[0].token.len(), issued[1].token.len(), "tokens of either shape are taken as they come");
    assert!(gh.live_tokens().len() == 3);
    assert_eq!(host_tokens_stored(&b).await, 3, "what revoking each needs is kept");

    // No token in clear: not on disk, not in the audit log, not in another API answer.
    let disk = stored_bytes(&b).await;
    let audit = serde_json::to_string(&b.audit().await).unwrap();
    let grant_view = b.get("alice", &format!("/v1/grants/{grant}")).await.body.to_string();
    for t in &issued {
        assert!(!disk.windows(t.token.len()).any(|w| w == t.token.as_bytes()), "a token is on disk in clear");
        assert!(!audit.contains(&t.token) && !grant_view.contains(&t.token));
    }
    let minted = actions(&b.audit().await, "credential_minted");
    assert_eq!(minted.len(), 3);
    assert!(minted[0]["detail"].as_str().unwrap().starts_with("github credential until"), "{}", minted[0]);

    // The grant ends: every token is revoked at GitHub, and what revoking needed is erased.
    b.advance(Duration::from_secs(2 * 3600 + 1));
    let live = eventually(|| async { gh.live_tokens().len() }, |n| *n == 0).await;
    assert_eq!(live, 0, "GitHub still honours a token of an ended grant");
    let audit = eventually(|| b.audit(), |a| !actions(a, "grant_expired").is_empty()).await;
    let revoked = actions(&audit, "host_revoked");
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0]["grant_id"], grant);
    assert_eq!(revoked[0]["detail"], "github: 3 credential(s) revoked at the host");
    assert_eq!(host_tokens_stored(&b).await, 0);
    assert_eq!(gh.seen().iter().filter(|s| *s == "DELETE /installation/token").count(), 3);
    // The installation was looked up once, then remembered.
    assert_eq!(gh.seen().iter().filter(|s| s.ends_with("/installation")).count(), 1);

    // An ended grant mints nothing more.
    let refused = b.post("alice", &format!("/v1/grants/{grant}/credentials"), serde_json::json!({})).await;
    assert_eq!((refused.status, refused.code()), (409, "grant_ended"));
    assert_eq!(gh.tokens().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jit_revoke_revokes_every_token_at_github_at_once() {
    let (gh, b) = github().await;
    let grant = write_grant(&b, "2h").await;
    mint(&b, "alice", grant).await;
    mint(&b, "alice", grant).await;
    assert_eq!(gh.live_tokens().len(), 2);
    let carol = logged_in(&b, "carol");
    carol.run(&["revoke", &grant.to_string(), "--reason", "done"]).success();
    // No clock moved: the revoke itself wakes the reaper.
    let live = eventually(|| async { gh.live_tokens().len() }, |n| *n == 0).await;
    assert_eq!(live, 0);
    let audit = eventually(|| b.audit(), |a| !actions(a, "host_revoked").is_empty()).await;
    assert_eq!(actions(&audit, "host_revoked")[0]["detail"], "github: 2 credential(s) revoked at the host");
    assert!(actions(&audit, "grant_expired").is_empty(), "revoked, not expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_level_asks_for_its_permissions_and_githubs_refusals_reach_the_requester() {
    let (gh, b) = github().await;

    // read: auto-approved, a contents:read token kept for git.
    let dave = logged_in(&b, "dave");
    // Named as people type it: host/owner/name, owner/name, or the clone URL.
    dave.run(&["request", "github.com/acme/api", "--level", "read", "--for", "1h"]).success();
    assert_eq!(gh.tokens()[0].permissions.iter().map(|(k, v)| format!("{k}:{v}")).collect::<Vec<_>>(), ["contents:read"]);

    // admin asks for workflows too, which this app lacks: GitHub's 422, named.
    let alice = logged_in(&b, "alice");
    let id = alice.run(&["request", "acme/tools", "--level", "admin", "--for", "1h", "--no-wait"]).success().stdout.trim().to_string();
    assert_eq!(b.approve("carol", id.parse().unwrap()).await.status, 200);
    let refused = alice.run(&["wait", &id]);
    refused
        .code(6)
        .stderr_has("granted, but the git host did not mint its credential")
        .stderr_has("HTTP 422")
        .stderr_has("Workflows")
        .stderr_has("stands: git asks the broker for the credential again");
    assert!(refused.stdout.contains("admin on acme/tools"), "the grant is still shown: {}", refused.stdout);

    // Not installed on the repository: GitHub's 404, named.
    let erin = logged_in(&b, "erin");
    erin.run(&["request", "https://github.com/acme/web.git", "--level", "read", "--for", "1h"]).code(6).stderr_has("is the app installed");

    // A bad app credential (GitHub's 401), GitHub down (503), a rate limit (403 with Retry-After).
    let bob = logged_in(&b, "bob");
    gh.fail_next(Route::Mint, 1, 401, None);
    bob.run(&["request", "acme/tools", "--level", "read", "--for", "1h"]).code(6).stderr_has("check app_id and private_key_file");
    let mallory = logged_in(&b, "mallory");
    gh.fail_next(Route::Mint, 1, 503, None);
    mallory.run(&["request", "acme/tools", "--level", "read", "--for", "1h"]).code(6).stderr_has("GitHub answered HTTP 503");
    gh.fail_next(Route::Mint, 1, 403, Some(30));
    let limited = b.post("dave", &format!("/v1/grants/{}/credentials", first_grant(&b, "dave").await), serde_json::json!({})).await;
    assert_eq!((limited.status, limited.code()), (503, "rate_limited"));
    assert_eq!(limited.headers["retry-after"], "30");
    assert!(limited.message().contains("retry in 30s"), "{}", limited.message());
    // A secondary rate limit may come bare: a 403 with only GitHub's message. Still a wait, of a minute.
    gh.fail_next(Route::Mint, 1, 403, None);
    let limited = b.post("dave", &format!("/v1/grants/{}/credentials", first_grant(&b, "dave").await), serde_json::json!({})).await;
    assert_eq!((limited.status, limited.code()), (503, "rate_limited"), "{}", limited.message());
    assert_eq!(limited.headers["retry-after"], "60");
    // A 403 for a permission is not a wait: it names the fix.
    gh.forbid_next(Route::Mint);
    let forbidden = b.post("dave", &format!("/v1/grants/{}/credentials", first_grant(&b, "dave").await), serde_json::json!({})).await;
    assert_eq!(forbidden.status, 502, "{}", forbidden.message());
    assert!(forbidden.message().contains("check the app's permissions"), "{}", forbidden.message());

    // Each refusal is in the audit log, with GitHub's reason.
    let failed = actions(&b.audit().await, "credential_failed");
    let details: Vec<&str> = failed.iter().map(|e| e["detail"].as_str().unwrap()).collect();
    assert_eq!(failed.len(), 7, "{details:#?}");
    assert!(details[0].contains("HTTP 422") && failed[0]["actor"] == "alice", "{details:#?}");
    assert!(details[1].contains("HTTP 404") && details[2].contains("HTTP 401") && details[3].contains("HTTP 503"), "{details:#?}");
    assert!(details[4].contains("rate limiting") && details[5].contains("rate limiting"), "{details:#?}");
    assert!(details[6].contains("HTTP 403") && details[6].contains("Resource not accessible by integration"), "{details:#?}");
    // Nothing that failed left a token behind.
    assert_eq!(gh.tokens().len(), 1);
}

async fn first_grant(b: &TestBroker, user: &str) -> i64 {
    b.get(user, "/v1/grants").await.body.as_array().unwrap()[0]["id"].as_i64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_github_keeps_failing_is_retried_audited_and_listed_until_it_succeeds() {
    let (gh, b) = github().await;
    let grant = write_grant(&b, "1h").await;
    mint(&b, "alice", grant).await;
    gh.fail_next(Route::Revoke, 3, 503, None);
    let admin = logged_in(&b, "admin");

    b.advance(Duration::from_secs(3601));
    // Each failure is an audit event; the next attempt waits 5 s, then 10 s, then 20 s (the broker's clock).
    for (attempt, wait) in [(1, 5), (2, 10), (3, 20)] {
        let audit = eventually(|| b.audit(), |a| actions(a, "host_revoke_failed").len() == attempt).await;
        let failed = actions(&audit, "host_revoke_failed");
        assert_eq!(failed.len(), attempt);
        let detail = failed[attempt - 1]["detail"].as_str().unwrap();
        assert!(detail.starts_with(&format!("attempt {attempt}: ")) && detail.contains("HTTP 503"), "{detail}");
        let listed = admin.run(&["admin", "grants", "--failing", "--json"]).success().json();
        assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
        assert_eq!((listed[0]["grant"]["id"].as_i64(), listed[0]["failures"].as_u64()), (Some(grant), Some(attempt as u64)));
        assert!(listed[0]["error"].as_str().unwrap().contains("HTTP 503"));
        let health = b.get("admin", "/healthz").await;
        assert_eq!(health.status, 200, "the broker still works");
        assert!(health.body["warnings"][0].as_str().unwrap().contains("1 ended grant(s) still held"), "{}", health.body);
        assert_eq!(gh.live_tokens().len(), 1, "GitHub still honours it, and that is visible");
        // Not before its time: the attempt count holds until the wait has passed.
        b.advance(Duration::from_secs(wait - 1));
        b.reaper_caught_up().await;
        assert_eq!(actions(&b.audit().await, "host_revoke_failed").len(), attempt, "retried before its backoff");
        b.advance(Duration::from_secs(1));
    }
    let live = eventually(|| async { gh.live_tokens().len() }, |n| *n == 0).await;
    assert_eq!(live, 0);
    let audit = eventually(|| b.audit(), |a| !actions(a, "host_revoked").is_empty()).await;
    assert_eq!(actions(&audit, "host_revoked")[0]["detail"], "github: 1 credential(s) revoked at the host, after 3 failed attempts");
    assert_eq!(actions(&audit, "grant_expired").len(), 1);
    let table = admin.run(&["admin", "grants", "--failing"]).success().stdout.clone();
    assert!(table.contains("No grant is failing to end"), "{table}");
    assert!(b.get("admin", "/healthz").await.body.get("warnings").is_none());
    // Only admins see the list.
    let alice = logged_in(&b, "alice");
    alice.run(&["admin", "grants", "--failing"]).code(5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_down_when_a_grant_ends_revokes_its_tokens_on_restart() {
    let (gh, mut b) = github().await;
    let grant = write_grant(&b, "1h").await;
    mint(&b, "alice", grant).await;
    mint(&b, "alice", grant).await;
    b.handle.take().unwrap().shutdown().await.unwrap();
    b.advance(Duration::from_secs(2 * 3600));
    assert_eq!(gh.live_tokens().len(), 2, "nobody was there to revoke them");
    b.restart().await;
    let live = eventually(|| async { gh.live_tokens().len() }, |n| *n == 0).await;
    assert_eq!(live, 0, "the restarted broker caught up");
    let audit = eventually(|| b.audit(), |a| !actions(a, "host_revoked").is_empty()).await;
    assert_eq!(actions(&audit, "host_revoked")[0]["detail"], "github: 2 credential(s) revoked at the host");
}

fn details(audit: &[Value], action: &str) -> Vec<String> {
    actions(audit, action).iter().map(|e| e["detail"].as_str().unwrap_or("").to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn team_mode_adds_the_person_on_approval_and_removes_only_what_jit_added() {
    let gh = FakeGitHub::start().await;
    let b = TestBroker::start_with(&gh.team_policy()).await;
    // bob was in the write team before any grant: jit must leave him there.
    gh.add_team_member("jit-api-write", "bob-gh");

    // git uses people's own GitHub credentials: jit's helper is not set up for these repos.
    let alice = logged_in(&b, "alice");
    let repos = alice.run(&["repos", "--json"]).success().json();
    assert_eq!((repos[0]["clone_url"].as_str(), repos[0]["own_credentials_url"].as_str()), (None, Some("https://github.com/acme/api.git")));
    alice.run(&["setup"]).success();
    let config = std::fs::read_to_string(alice.home().join(".gitconfig")).unwrap_or_default();
    assert!(!config.contains("github.com"), "{config}");

    let grant = write_grant(&b, "2h").await;
    let members = eventually(|| async { gh.team_members("jit-api-write") }, |m| m.contains(&"alice-gh".to_string())).await;
    assert_eq!(members, ["alice-gh", "bob-gh"]);
    let audit = eventually(|| b.audit(), |a| !actions(a, "host_granted").is_empty()).await;
    assert_eq!(details(&audit, "host_granted"), ["github: alice-gh added to team acme/jit-api-write"]);
    let minted = b.post("alice", &format!("/v1/grants/{grant}/credentials"), serde_json::json!({})).await;
    assert_eq!((minted.status, minted.code()), (409, "conflict"));
    assert!(minted.message().contains("git uses your own credentials"), "{}", minted.message());

    // bob's grant finds him there already: left as it was.
    let id = b.request("bob", "acme/api", "write", "1h", Some("review")).await["id"].as_i64().unwrap();
    assert_eq!(b.approve("carol", id).await.status, 200);
    let audit = eventually(|| b.audit(), |a| actions(a, "host_granted").len() == 2).await;
    assert_eq!(details(&audit, "host_granted")[1], "github: bob-gh already in team acme/jit-api-write");

    // A longer write grant supersedes alice's first: the membership is kept throughout its handover.
    let id = b.request("alice", "acme/api", "write", "4h", Some("longer")).await["id"].as_i64().unwrap();
    let second = b.approve("carol", id).await.body["grant"]["id"].as_i64().unwrap();
    let audit = eventually(|| b.audit(), |a| actions(a, "host_revoked").len() == 1 && actions(a, "host_granted").len() == 4).await;
    assert_eq!(actions(&audit, "host_revoked")[0]["grant_id"], grant);
    assert!(gh.team_members("jit-api-write").contains(&"alice-gh".to_string()), "the live grant's membership was given back");
    let last = actions(&audit, "host_granted").pop().unwrap();
    assert_eq!(
        (last["grant_id"].as_i64(), last["detail"].as_str()),
        (Some(second), Some("github: alice-gh added to team acme/jit-api-write"))
    );

    // jit revoke takes alice out; bob's grant ends and he stays, as before it.
    logged_in(&b, "carol").run(&["revoke", &second.to_string()]).success();
    let members = eventually(|| async { gh.team_members("jit-api-write") }, |m| m.len() == 1).await;
    assert_eq!(members, ["bob-gh"]);
    b.advance(Duration::from_secs(3601));
    eventually(|| b.audit(), |a| actions(a, "grant_expired").len() == 1).await;
    b.reaper_caught_up().await;
    assert_eq!(gh.team_members("jit-api-write"), ["bob-gh"], "jit removes only what it added");
    assert!(!gh.seen().contains(&"DELETE /orgs/acme/teams/jit-api-write/memberships/bob-gh".to_string()));
    // Every organization token minted for a change was revoked after it.
    assert!(gh.live_tokens().is_empty(), "{:?}", gh.live_tokens().iter().map(|t| t.permissions.clone()).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn team_mode_without_a_login_or_a_team_is_retried_and_audited() {
    let gh = FakeGitHub::start().await;
    let b = TestBroker::start_with(&gh.team_policy()).await;
    // erin has no GitHub login in the config.
    let id = b.request("erin", "acme/api", "write", "1h", Some("x")).await["id"].as_i64().unwrap();
    assert_eq!(b.approve("carol", id).await.status, 200);
    let audit = eventually(|| b.audit(), |a| !actions(a, "host_grant_failed").is_empty()).await;
    let failed = details(&audit, "host_grant_failed");
    assert!(failed[0].starts_with("attempt 1: ") && failed[0].contains("no GitHub login for jit user `erin`"), "{failed:?}");
    b.advance(Duration::from_secs(5));
    let audit = eventually(|| b.audit(), |a| actions(a, "host_grant_failed").len() == 2).await;
    assert!(details(&audit, "host_grant_failed")[1].starts_with("attempt 2: "));
    // The admin level's team does not exist at GitHub: its 404 is named.
    let id = b.request("dave", "acme/tools", "admin", "1h", Some("x")).await["id"].as_i64().unwrap();
    assert_eq!(b.approve("carol", id).await.status, 200);
    let audit = eventually(|| b.audit(), |a| details(a, "host_grant_failed").iter().any(|d| d.contains("jit-tools-admin"))).await;
    let failed = details(&audit, "host_grant_failed");
    assert!(
        failed
            .iter()
            .any(|d| d.contains("team acme/jit-tools-admin has no access on acme/tools: give the team admin access, and only that")),
        "{failed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_github_secret_is_kept_in_clear_or_shown_but_where_it_is_the_point() {
    let (gh, b) = github().await;
    let alice = logged_in(&b, "alice");
    alice.run(&["setup"]).success();
    let grant = write_grant(&b, "1h").await;
    alice.run_helper("get", API_QUERY).success();
    mint(&b, "alice", grant).await;
    // A revocation that fails once, so its error is in the audit log and the failing list.
    gh.fail_next(Route::Revoke, 1, 503, None);
    logged_in(&b, "carol").run(&["revoke", &grant.to_string()]).success();
    eventually(|| b.audit(), |a| !actions(a, "host_revoke_failed").is_empty()).await;
    alice.run(&["status", "--json"]).success();
    alice.run(&["requests", "--json"]).success();
    logged_in(&b, "admin").run(&["admin", "grants", "--failing", "--json"]).success();
    let secrets = gh.secrets();
    assert_eq!(secrets.len(), FakeGitHub::secrets_of_the_app().len() + 1 + 2, "the key's lines, the sealing key, two tokens");
    b.assert_keeps_and_shows_none_of(&secrets).await;
    for secret in &secrets {
        alice.secret(secret); // and no command printed one (checked when alice's environment is dropped)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_wider_than_asked_or_that_git_cannot_send_is_revoked_and_refused() {
    let (gh, b) = github().await;
    let grant = write_grant(&b, "1h").await;
    let path = format!("/v1/grants/{grant}/credentials");
    // GitHub answers with a token for every repository of the installation.
    gh.odd_mint_next(None, Some("all"));
    let refused = b.post("alice", &path, serde_json::json!({})).await;
    assert_eq!((refused.status, refused.code()), (502, "host_failed"));
    assert!(
        refused.message().contains("more than was asked (every repository of the installation); the token was revoked"),
        "{}",
        refused.message()
    );
    // "all" echoed from the installation, with the token's one repository listed: it is that one's.
    gh.odd_mint_next(None, Some("all-echo"));
    let scoped = b.post("alice", &path, serde_json::json!({})).await;
    assert_eq!(scoped.status, 201, "{}", scoped.message());
    // A token with a line break in it would end git's credential answer early.
    gh.odd_mint_next(Some("ghs_one\nusername=evil"), None);
    let refused = b.post("alice", &path, serde_json::json!({})).await;
    assert!(
        refused.message().contains("a token git cannot send; it could not be revoked and lapses within the hour"),
        "{}",
        refused.message()
    );
    assert_eq!(gh.tokens().len(), 3);
    // The wide one is revoked at once; the scoped one lives (it is the grant's
    // credential); the last cannot even be sent back to GitHub to revoke (no
    // HTTP header carries a line break): it lapses within the hour.
    let live: Vec<String> = gh.live_tokens().iter().map(|t| t.token.clone()).collect();
    assert_eq!(live.len(), 2, "{live:?}");
    assert!(live.contains(&"ghs_one\nusername=evil".to_string()) && !gh.tokens()[0].token.is_empty() && gh.tokens()[0].revoked);
    assert_eq!(actions(&b.audit().await, "credential_failed").len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_setup_prints_the_teams_team_mode_needs_one_per_level_the_rules_grant() {
    let gh = FakeGitHub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let run = |policy: &str| {
        let config = dir.path().join("jit.toml");
        std::fs::write(&config, policy).unwrap();
        let out = crate::common::jit()
            .args(["server", "--host-setup", "--config"])
            .arg(&config)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        (String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
    };
    let (printed, _) = run(&gh.team_policy());
    let lines: Vec<&str> = printed.lines().collect();
    // Three repos, three levels each (reads at will, writes and admin approved): a team and its permission each.
    assert_eq!(lines.iter().filter(|l| l.starts_with("gh api -X POST")).count(), 9, "{printed}");
    let api = lines.iter().position(|l| l.starts_with("# acme/api (provider `github`)")).expect(&printed);
    assert_eq!(
        lines[api + 1..api + 7],
        [
            "gh api -X POST orgs/acme/teams -f name=jit-api-read -f privacy=closed",
            "gh api -X PUT orgs/acme/teams/jit-api-read/repos/acme/api -f permission=pull",
            "gh api -X POST orgs/acme/teams -f name=jit-api-write -f privacy=closed",
            "gh api -X PUT orgs/acme/teams/jit-api-write/repos/acme/api -f permission=push",
            "gh api -X POST orgs/acme/teams -f name=jit-api-admin -f privacy=closed",
            "gh api -X PUT orgs/acme/teams/jit-api-admin/repos/acme/api -f permission=admin",
        ]
    );
    // Installation tokens need nothing made at GitHub.
    let (printed, said) = run(&gh.policy());
    assert_eq!(printed, "");
    assert!(said.contains("nothing to create at the hosts"), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkout_with_an_ssh_origin_is_told_how_to_use_the_token() {
    let (_gh, b) = github().await;
    let alice = logged_in(&b, "alice");
    let checkout = alice.work_dir().join("api");
    alice.git(&checkout, &["init", "-q"]).success();
    alice.git(&checkout, &["remote", "add", "origin", "git@github.com:acme/api.git"]).success();
    let asked = alice.run_in(&checkout, &["request", "--level", "read", "--for", "1h"]);
    asked.success();
    assert!(
        asked.stderr.contains(
            "jit: your origin is SSH (git@github.com:acme/api.git), and jit's credential for acme/api works over HTTPS only; switch once: git remote set-url origin https://github.com/acme/api.git"
        ),
        "{}",
        asked.stderr
    );
    // An HTTPS origin hears nothing of it.
    alice.git(&checkout, &["remote", "set-url", "origin", "https://github.com/acme/api.git"]).success();
    let again = alice.run_in(&checkout, &["request", "--level", "read", "--for", "1h"]);
    assert!(!again.stderr.contains("origin is SSH"), "{}", again.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renamed_repository_is_followed_on_githubs_api_host_and_nowhere_else() {
    let (gh, b) = github().await;
    // acme/api was renamed: its old API URL answers 301 to /repositories/{id}/….
    gh.rename("api", "tools");
    let alice = logged_in(&b, "alice");
    alice.run(&["request", "acme/api", "--level", "read", "--for", "1h"]).success();
    assert!(gh.seen().iter().any(|r| r.starts_with("GET /repositories/")), "{:?}", gh.seen());

    // A redirect off GitHub's API host is never followed with the app's credential.
    gh.redirect("tools", "http://127.0.0.1:9/repositories/1001/installation");
    let dave = logged_in(&b, "dave");
    dave.run(&["request", "acme/tools", "--level", "read", "--for", "1h"]).code(6).stderr_has("HTTP 301");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn team_mode_never_invites_anyone_into_the_organization() {
    let gh = FakeGitHub::start().await;
    let b = TestBroker::start_with(&gh.team_policy()).await;
    // dave-gh is not in the organization: adding him to a team would invite him (GitHub's "pending").
    gh.leave_org("dave-gh");
    let id = b.request("dave", "acme/api", "write", "1h", Some("x")).await["id"].as_i64().unwrap();
    assert_eq!(b.approve("carol", id).await.status, 200);
    let audit = eventually(|| b.audit(), |a| !actions(a, "host_grant_failed").is_empty()).await;
    let failed = details(&audit, "host_grant_failed");
    assert!(failed[0].contains("dave-gh is not a member of the acme organization, and jit never invites anyone into it"), "{failed:?}");
    assert!(actions(&audit, "host_granted").is_empty(), "a grant is never audited as given while nobody has access");
    assert!(!gh.seen().iter().any(|r| r.starts_with("PUT ")), "no invitation was sent: {:?}", gh.seen());

    // alice leaves between the check and the change: GitHub invites her; jit withdraws it at once.
    gh.leave_org_when_checked("alice-gh");
    let id = b.request("alice", "acme/api", "write", "1h", Some("x")).await["id"].as_i64().unwrap();
    assert_eq!(b.approve("carol", id).await.status, 200);
    let audit = eventually(|| b.audit(), |a| details(a, "host_grant_failed").iter().any(|d| d.contains("alice-gh"))).await;
    assert!(actions(&audit, "host_granted").is_empty());
    assert!(gh.org_invitations().is_empty(), "the invitation GitHub sent was cancelled: {:?}", gh.org_invitations());
    assert!(gh.seen().iter().any(|r| r.starts_with("DELETE /orgs/acme/invitations/")), "{:?}", gh.seen());
    assert!(!gh.team_members("jit-api-write").contains(&"alice-gh".to_string()));
}
