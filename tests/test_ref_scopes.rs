//! Grants scoped to refs on a repo the broker hosts: the rule's `refs`, a
//! request that narrows them, what the API refuses, and `allow_deletes`.

use serde_json::json;

use crate::common::{TestBroker, alice_with_a_write_clone, release_only_policy};

#[tokio::test]
async fn a_request_may_narrow_the_rules_refs_and_nothing_else() {
    let b = TestBroker::start_with(&release_only_policy()).await;
    let ask = |refs: serde_json::Value| json!({"repo": "demo", "level": "write", "duration": "1h", "reason": "x", "refs": refs});
    let r = b.post("alice", "/v1/requests", ask(json!(["main"]))).await;
    assert_eq!((r.status, r.code()), (403, "policy_denied"), "{}", r.body);
    assert!(r.message().contains("`refs/heads/main` is outside what the rule allows (refs/heads/release/*)"), "{}", r.message());
    for bad in [json!(["a b"]), json!(["refs/heads/x..y"]), json!([""]), json!("release/*"), json!([7])] {
        let r = b.post("alice", "/v1/requests", ask(bad.clone())).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }
    let whole = b.post("alice", "/v1/requests", ask(json!([]))).await;
    assert_eq!(whole.body["refs"], json!(["refs/heads/release/*"]), "nothing asked: the rule's refs");
    let narrow = b.post("dave", "/v1/requests", ask(json!(["release/2.*"]))).await;
    assert_eq!(narrow.body["refs"], json!(["refs/heads/release/2.*"]));
    let approved = b.approve("bob", narrow.body["id"].as_i64().unwrap()).await;
    assert_eq!(approved.body["grant"]["refs"], json!(["refs/heads/release/2.*"]));
    // Reads are not scoped by the write rule.
    assert_eq!(b.request("alice", "demo", "read", "1h", None).await["grant"]["refs"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rules_refs_bind_every_push_and_its_deletes_are_allowed() {
    let b = TestBroker::start_with(&release_only_policy()).await;
    let (alice, repo) = alice_with_a_write_clone(&b).await;
    std::fs::write(repo.join("R.md"), "r\n").unwrap();
    alice.git(&repo, &["add", "R.md"]).success();
    alice.git(&repo, &["commit", "-qm", "r"]).success();
    let refused = alice.git(&repo, &["push", "origin", "main"]);
    assert!(refused.stderr.contains("(jit: your grant allows refs/heads/release/* only)"), "{}", refused.stderr);
    alice.git(&repo, &["push", "origin", "HEAD:refs/heads/release/1"]).success();
    // The rule allows deletes, so a write grant may delete inside its refs.
    alice.git(&repo, &["push", "origin", ":release/1"]).success();
    let tags = alice.git(&repo, &["push", "origin", "HEAD:refs/tags/v1"]);
    assert!(tags.stderr.contains("[remote rejected] HEAD -> v1 (jit: your grant allows refs/heads/release/* only)"), "{}", tags.stderr);
}

/// An operator's first week, 6: the scope was hard to see. `jit status` shows
/// each grant's refs; `jit approve`'s details card (and its picker row) show
/// what the approver is approving, refs included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scope_is_in_plain_sight_where_grants_are_shown_and_approved() {
    let b = TestBroker::start_with(&release_only_policy()).await;
    let (alice, _) = alice_with_a_write_clone(&b).await;
    let status = alice.run(&["status"]);
    let status = status.success();
    let row = status.stdout.lines().find(|l| l.contains("write")).unwrap_or_else(|| panic!("no write grant in:\n{}", status.stdout));
    assert!(row.contains("refs/heads/release/*"), "{}", status.stdout);
    assert!(status.stdout.lines().next().is_some_and(|h| h.contains("REFS")), "{}", status.stdout);
    // The same grant's JSON carries its refs.
    let json = alice.run(&["status", "--json"]).success().json();
    assert_eq!(json[0]["refs"], json!(["refs/heads/release/*"]));
}
