//! Repositories on another git host, fronted by the gateway: a real host
//! (lighttpd + `git http-backend` behind Basic auth) that only the broker
//! can use, real git through jit's credential helper and the kernel keyring.

use crate::common::upstream::TestUpstream;
use crate::common::{TestBroker, TestEnvironment, cli_env};

/// The broker fronting `acme/api` (and nothing else) on `upstream`.
fn policy(upstream: &TestUpstream) -> String {
    format!(
        r#"
[server]
pending_ttl = "1h"

{provider}
[[repo]]
name = "acme/api"
url = "{url}"
provider = "corp"

[[rule]]
name = "api-read"
repos = ["acme/api"]
levels = ["read"]
requesters = ["group:developers"]
auto_approve = true
max_duration = "8h"

[[rule]]
name = "api-write"
repos = ["acme/api"]
levels = ["write"]
requesters = ["group:developers"]
approvers = ["group:reviewers"]
max_duration = "8h"
"#,
        provider = upstream.provider_section(),
        url = upstream.repo_url("acme/api"),
    )
}

async fn fronted() -> (TestUpstream, TestBroker, TestEnvironment) {
    let upstream = TestUpstream::start(&["acme/api", "acme/api-tools", "acme/api.github"]);
    let b = TestBroker::start_with(&policy(&upstream)).await;
    let alice = cli_env(&b);
    alice.login(&b.url, b.token("alice")).success();
    alice.run(&["setup"]).success();
    (upstream, b, alice)
}

fn commit(env: &TestEnvironment, repo: &std::path::Path, file: &str) -> String {
    std::fs::write(repo.join(file), format!("{file}\n")).unwrap();
    env.git(repo, &["add", file]).success();
    env.git(repo, &["commit", "-qm", file]).success();
    env.git(repo, &["rev-parse", "HEAD"]).success().stdout.trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_fronts_a_repo_on_another_host() {
    let (upstream, b, alice) = fronted().await;
    // Nobody without an account gets in at the host itself.
    let anonymous = reqwest::get(format!("{}/info/refs?service=git-upload-pack", upstream.repo_url("acme/api"))).await.unwrap();
    assert_eq!(anonymous.status(), 401);

    let gateway = format!("{}/git/acme/api.git", b.url);
    let work = alice.work_dir();
    assert_ne!(alice.git(&work, &["clone", &gateway, "before"]).code, 0);
    alice.run(&["request", "acme/api", "--level", "read", "--for", "1h"]).success();
    alice.git(&work, &["clone", &gateway, "api"]).success();
    let repo = work.join("api");
    assert!(repo.join("README.md").exists());
    let head = commit(&alice, &repo, "CHANGE.md");
    let refused = alice.git(&repo, &["push", "origin", "main"]);
    assert!(refused.stderr.contains("pushing needs write"), "{}", refused.stderr);

    let id = b.request("alice", "acme/api", "write", "1h", None).await["id"].as_i64().unwrap();
    assert_eq!(b.approve("bob", id).await.status, 200);
    // The read credential git holds now answers to the write grant that superseded its own.
    alice.git(&repo, &["push", "origin", "main"]).success();
    assert_eq!(upstream.git_on_disk("acme/api", &["rev-parse", "main"]), head);
    let pushes: Vec<_> = b.audit().await.into_iter().filter(|e| e["action"] == "git_push").collect();
    assert_eq!(pushes.len(), 1);
    assert!(pushes[0]["detail"].as_str().unwrap().contains(&format!("→{head}")), "{}", pushes[0]);
}
