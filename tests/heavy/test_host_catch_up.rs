//! A broker killed (SIGKILL) while a grant's host tokens are live (GitHub's
//! installation tokens, Bitbucket Data Center's repository tokens), kept
//! down past the grant's end, then started again: the restarted broker finds
//! the grant ended and revokes every token at the host (the fake, on
//! loopback), from what it kept sealed on disk.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::common::fake_bitbucket::FakeBitbucket;
use crate::common::fake_github::FakeGitHub;
use crate::common::{call, eventually, init_admin, spawn_broker};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_killed_before_a_grant_ends_revokes_its_tokens_when_it_comes_back() {
    let gh = FakeGitHub::start().await;
    killed_then_restarted(gh.policy(), || gh.live_tokens().len(), "github").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_killed_before_a_grant_ends_deletes_its_bitbucket_tokens_when_it_comes_back() {
    let bb = FakeBitbucket::start().await;
    killed_then_restarted(bb.policy(), || bb.live_tokens().len(), "bitbucket").await;
}

/// `policy` (a host's, with the fakes' shared rules), `live` the tokens the
/// host still honours, `provider` the provider's name in the audit log.
async fn killed_then_restarted(policy: String, live: impl Fn() -> usize, provider: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (config, data) = (dir.path().join("jit.toml"), dir.path().join("data"));
    // Writes for five seconds, approved by carol.
    let policy = policy.replace(
        "[[rule]]\nname = \"acme-read\"",
        "[[rule]]\nname = \"short\"\nrepos = [\"acme/api\"]\nlevels = [\"write\"]\nrequesters = [\"*\"]\napprovers = [\"carol\"]\nmax_duration = \"1m\"\n\n[[rule]]\nname = \"acme-read\"",
    );
    std::fs::write(&config, policy).unwrap();
    let root = init_admin(&config, &data);
    let mut broker = spawn_broker(&config, &data);
    let mut tokens = std::collections::BTreeMap::new();
    for name in ["alice", "carol"] {
        let (status, body) = call(&broker.url, &root, Method::POST, "/v1/users", Some(json!({"name": name}))).await;
        assert_eq!(status, 201, "{body}");
        tokens.insert(name, body["token"].as_str().unwrap().to_string());
        crate::common::logs::secret(body["token"].as_str().unwrap());
    }
    let (status, request) = call(
        &broker.url,
        &tokens["alice"],
        Method::POST,
        "/v1/requests",
        Some(json!({"repo": "acme/api", "level": "write", "duration": "5s"})),
    )
    .await;
    assert_eq!(status, 201, "{request}");
    let id = request["id"].as_i64().unwrap();
    let (status, approved) =
        call(&broker.url, &tokens["carol"], Method::POST, &format!("/v1/requests/{id}/approve"), Some(json!({}))).await;
    assert_eq!(status, 200, "{approved}");
    let grant = approved["grant"]["id"].as_i64().unwrap();
    for _ in 0..2 {
        let (status, _) =
            call(&broker.url, &tokens["alice"], Method::POST, &format!("/v1/grants/{grant}/credentials"), Some(json!({}))).await;
        assert_eq!(status, 201);
    }
    assert_eq!(live(), 2);

    broker.kill();
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(live(), 2, "nobody was there to revoke them");

    let broker = spawn_broker(&config, &data);
    let left = eventually(|| async { live() }, |n| *n == 0).await;
    assert_eq!(left, 0, "the restarted broker revoked them");
    // The host hears of it before the audit event is committed: wait for the event.
    let audit = eventually(
        || async { call(&broker.url, &root, Method::GET, "/v1/audit", None).await.1 },
        |a| a.as_array().unwrap().iter().any(|e| e["action"] == "host_revoked"),
    )
    .await;
    let revoked: Vec<_> = audit.as_array().unwrap().iter().filter(|e| e["action"] == "host_revoked").collect();
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0]["detail"], format!("{provider}: 2 credential(s) revoked at the host"));
    assert_eq!(audit.as_array().unwrap().iter().filter(|e| e["action"] == "grant_expired").count(), 1);
}
