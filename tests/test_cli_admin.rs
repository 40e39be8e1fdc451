//! `jit admin …` and `jit audit …` through the binary.

use crate::common::{TestBroker, cli_env};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_commands_manage_users_and_print_tokens_once() {
    let b = TestBroker::start().await;
    let env = cli_env(&b);
    let admin = [("JIT_SERVER", b.url.as_str()), ("JIT_TOKEN", b.token("admin"))];
    let added = env.run_printing_token(&["admin", "user", "add", "frank", "--group", "developers", "--group", "oncall"], &admin);
    assert_eq!(added.code, 0, "{}", added.stderr);
    let token = added.stdout.trim().to_string();
    assert!(token.starts_with("jit_"));
    assert!(!added.stderr.contains(&token), "the token goes to stdout only");
    env.secret(&token);
    let list = env.run_with(&["admin", "user", "list", "--json"], &admin, None);
    let frank = list.success().json().as_array().unwrap().iter().find(|u| u["name"] == "frank").cloned().unwrap();
    assert_eq!(frank["groups"], serde_json::json!(["developers", "oncall"]));
    let table = env.run_with(&["admin", "user", "list"], &admin, None);
    assert!(table.success().stdout.starts_with("NAME"), "{}", table.stdout);
    let rotated = env.run_printing_token(&["admin", "token", "rotate", "frank"], &admin);
    let new_token = rotated.stdout.trim().to_string();
    env.secret(&new_token);
    assert_ne!(new_token, token);
    env.run_with(&["whoami"], &[("JIT_SERVER", b.url.as_str()), ("JIT_TOKEN", token.as_str())], None).code(5);
    env.run_with(&["admin", "user", "remove", "frank"], &admin, None).success().stderr_has("removed frank");
    env.run_with(&["admin", "user", "remove", "frank"], &admin, None).code(2).stderr_has("not found");
    env.run_with(&["admin", "user", "add", "bad name"], &admin, None).code(2).stderr_has("invalid user name");
    env.run_with(&["admin", "user", "add", "alice"], &admin, None).code(2).stderr_has("already exists");
    // Not an admin: exit 5.
    env.run_with(&["admin", "user", "list"], &[("JIT_SERVER", b.url.as_str()), ("JIT_TOKEN", b.token("alice"))], None)
        .code(5)
        .stderr_has("not an admin");
    env.run(&["admin", "user", "list"]).code(5).stderr_has("not logged in");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_lists_exports_and_verifies_and_catches_tampering() {
    let b = TestBroker::start().await;
    let env = cli_env(&b);
    let admin = [("JIT_SERVER", b.url.as_str()), ("JIT_TOKEN", b.token("admin"))];
    let req = b.request("alice", "demo", "write", "1h", Some("fix it")).await;
    b.approve("bob", req["id"].as_i64().unwrap()).await;

    let table = env.run_with(&["audit"], &admin, None);
    assert!(table.success().stdout.contains("alice   requested   demo  write  r1"), "{}", table.stdout);
    let recent = env.run_with(&["audit", "--since", "1h", "--json"], &admin, None);
    let lines: Vec<serde_json::Value> = recent.success().stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let (checkpoint, events) = lines.split_last().unwrap();
    assert_eq!(
        events.iter().map(|e| e["action"].as_str().unwrap()).filter(|a| !a.starts_with("user")).collect::<Vec<_>>(),
        ["requested", "approved", "granted"]
    );
    // An export ends with the broker's latest signed checkpoint.
    assert_eq!(checkpoint["checkpoint"]["seq"], events.last().unwrap()["seq"]);
    assert!(checkpoint["public_key"].as_str().is_some_and(|k| k.len() == 44), "{checkpoint}");
    let none = env.run_with(&["audit", "--since", "2099-01-01T00:00:00Z", "--json"], &admin, None);
    assert_eq!(none.success().stdout.lines().count(), 1, "only the checkpoint: {}", none.stdout);
    env.run_with(&["audit", "--since", "last tuesday"], &admin, None).code(2).stderr_has("invalid --since");

    let export = env.path("audit.jsonl");
    let all = env.run_with(&["audit", "--json"], &admin, None);
    std::fs::write(&export, &all.stdout).unwrap();
    env.run_with(&["audit", "verify"], &admin, None).success();
    assert!(env.run(&["audit", "verify", "--file", export.to_str().unwrap()]).success().stdout.contains("intact"));

    // An altered export fails verification (exit 1) and names the event.
    let altered = all.stdout.replacen("fix it", "routine", 1);
    std::fs::write(&export, altered).unwrap();
    env.run(&["audit", "verify", "--file", export.to_str().unwrap()]).code(1).stderr_has("altered");
    std::fs::write(&export, "not json\n").unwrap();
    env.run(&["audit", "verify", "--file", export.to_str().unwrap()]).code(2).stderr_has(":1: not an audit event");
    env.run(&["audit", "verify", "--file", "/nonexistent/x.jsonl"]).code(2);

    // Tampering in the broker's database is caught by the client's own check.
    b.tamper_with_audit("actor = 'carol' WHERE action = 'approved'").await;
    env.run_with(&["audit", "verify"], &admin, None).code(1).stderr_has("audit chain broken at event").stderr_has("altered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_replicas_lists_this_broker_as_live_and_refuses_non_admins() {
    let b = TestBroker::start().await;
    let env = cli_env(&b);
    let admin = [("JIT_SERVER", b.url.as_str()), ("JIT_TOKEN", b.token("admin"))];
    // The broker says it is alive as it starts.
    let listed = crate::common::eventually(
        || async { env.run_with(&["admin", "replicas", "--json"], &admin, None).success().stdout.clone() },
        |out: &String| out.contains("\"live\": true") || out.contains("\"live\":true"),
    )
    .await;
    let rows: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 1, "one broker: {rows}");
    assert_eq!((rows[0]["answering"].as_bool(), rows[0]["version"].as_str()), (Some(true), Some(env!("CARGO_PKG_VERSION"))));
    let table = env.run_with(&["admin", "replicas"], &admin, None).success().stdout.clone();
    assert!(table.contains("(this one)") && table.contains("live"), "{table}");
    let alice = [("JIT_SERVER", b.url.as_str()), ("JIT_TOKEN", b.token("alice"))];
    env.run_with(&["admin", "replicas"], &alice, None).code(5).stderr_has("not an admin");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grants_report_holds_its_whole_access_period_and_catches_an_altered_event() {
    let b = TestBroker::start_gateway("1h").await;
    let (alice, clone) = crate::common::alice_with_a_write_clone(&b).await;
    alice.git(&clone, &["commit", "--allow-empty", "-q", "-m", "fix"]).success();
    alice.git(&clone, &["push", "-q", "origin", "main"]).success();
    // Another grant's events in between, which the report leaves out.
    b.request("dave", "demo", "read", "1h", Some("look")).await;
    assert_eq!(b.post("bob", "/v1/grants/1/revoke", serde_json::json!({"reason": "done"})).await.status, 200);

    let env = cli_env(&b);
    let admin = [("JIT_SERVER", b.url.as_str()), ("JIT_TOKEN", b.token("admin"))];
    let json = env.run_with(&["audit", "grant", "1", "--json"], &admin, None).success().json();
    let actions: Vec<&str> = json["events"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    for expected in ["requested", "approved", "granted", "credential_minted", "git_fetch", "git_push", "revoked"] {
        assert!(actions.contains(&expected), "{expected} missing from {actions:?}");
    }
    assert!(json["events"].as_array().unwrap().iter().all(|e| e["grant_id"] == 1 || e["request_id"] == 1), "only grant 1's: {json}");
    let push = json["events"].as_array().unwrap().iter().find(|e| e["action"] == "git_push").unwrap();
    assert!(push["detail"].as_str().unwrap().contains("refs/heads/main"), "{push}");
    assert_eq!((json["grant"]["status"].as_str(), json["request"]["reason"].as_str()), (Some("revoked"), Some("release")));
    assert!(!json["proof"]["checkpoints"].as_array().unwrap().is_empty());

    let text = env.run_with(&["audit", "grant", "1"], &admin, None);
    text.success()
        .stdout_has("Grant 1: alice may write demo (every ref)")
        .stdout_has("Request 1: by alice for 1h because \"release\", under rule")
        .stdout_has("approved by bob")
        .stdout_has("Ended: revoked by bob")
        .stdout_has(&format!("Proof: all {} events are in the audit log the broker signed", actions.len()));
    // The key kept elsewhere: this broker's verifies; another's does not.
    let key = env.run_with(&["audit", "key"], &admin, None).success().stdout.trim().to_string();
    env.run_with(&["audit", "grant", "1", "--key", &key], &admin, None).success();
    let other = "A".repeat(43) + "=";
    env.run_with(&["audit", "grant", "1", "--key", &other], &admin, None).code(1).stderr_has("does not verify with this key");
    env.run_with(&["audit", "grant", "1", "--key", "not a key"], &admin, None).code(2).stderr_has("--key");
    // Bad input, and people who may not read the log.
    env.run_with(&["audit", "grant", "0"], &admin, None).code(2);
    env.run_with(&["audit", "grant", "x"], &admin, None).code(2);
    env.run_with(&["audit", "grant", "99"], &admin, None).code(2).stderr_has("grant 99 not found");
    alice.run(&["audit", "grant", "1"]).code(5);

    // A push rewritten in the database: the report no longer verifies, and says where.
    b.tamper_with_audit("detail = 'pushed nothing' WHERE action = 'git_push'").await;
    let altered = env.run_with(&["audit", "grant", "1"], &admin, None);
    altered.code(1).stderr_has("grant 1's report: event").stderr_has("altered");
}
