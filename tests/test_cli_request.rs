//! `jit request`, `wait`, `cancel`, `requests`, `approve`, `deny`, `status`,
//! `revoke`: exit codes, messages and JSON shapes, against a real broker.

use std::time::Duration;

use crate::common::{TestBroker, TestEnvironment, cli_env};

async fn logged_in(b: &TestBroker, user: &str) -> TestEnvironment {
    let env = cli_env(b);
    env.login(&b.url, b.token(user)).success();
    env
}

/// Waits until the broker shows a pending request by `user`, and returns its id.
async fn pending_id(b: &TestBroker, user: &str) -> i64 {
    for _ in 0..200 {
        let r = b.get("admin", "/v1/requests?status=pending").await;
        if let Some(req) = r.body.as_array().unwrap().iter().find(|r| r["requester"] == user) {
            return req["id"].as_i64().unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no pending request by {user}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_waits_and_succeeds_when_another_user_approves() {
    let b = TestBroker::start().await;
    let alice = logged_in(&b, "alice").await;
    let child = alice.spawn(&["request", "demo", "--level", "write", "--for", "2h", "--reason", "hotfix INC-42"]);
    let id = pending_id(&b, "alice").await;
    assert_eq!(b.approve("bob", id).await.status, 200);
    let run = alice.wait_child(child);
    run.success().stderr_has("waiting for approval").stderr_has("group:reviewers, alice");
    assert!(run.stdout.contains("Approved by bob: write on demo until") && run.stdout.contains("(2h)"), "{}", run.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_request_exits_3_with_the_reason() {
    let b = TestBroker::start().await;
    let alice = logged_in(&b, "alice").await;
    let child = alice.spawn(&["request", "demo", "--level", "write", "--for", "1h", "--reason", "x"]);
    let id = pending_id(&b, "alice").await;
    b.deny("carol", id, "code freeze").await;
    alice.wait_child(child).code(3).stderr_has(&format!("request #{id} was denied by carol: code freeze"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_times_out_with_exit_4_and_the_resume_hint() {
    let b = TestBroker::start().await;
    let alice = logged_in(&b, "alice").await;
    let run = alice.run(&["request", "demo", "--level", "write", "--for", "1h", "--reason", "x", "--timeout", "1s"]);
    run.code(4).stderr_has("still pending").stderr_has("jit wait 1").stderr_has("jit cancel 1");
    alice.run(&["wait", "1", "--timeout", "1s"]).code(4);
    // The request is untouched; it can still be approved and waited for.
    b.approve("bob", 1).await;
    let run = alice.run(&["wait", "1", "--json"]);
    run.success();
    assert_eq!(run.json()["status"], "approved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_leaves_the_request_pending_and_says_how_to_resume() {
    let b = TestBroker::start().await;
    let alice = logged_in(&b, "alice").await;
    let child = alice.spawn_watched(&["request", "demo", "--level", "write", "--for", "1h", "--reason", "x"]);
    child.until("waiting for approval");
    let id = pending_id(&b, "alice").await;
    // The shell's builtin kill: no procps needed.
    let sent = std::process::Command::new("sh").args(["-c", &format!("kill -INT {}", child.id())]).status().unwrap();
    assert!(sent.success());
    // 130 = 128 + SIGINT, what shells and scripts expect of an interrupt (it was 4).
    alice.finish(child).code(130).stderr_has("stopped waiting").stderr_has(&format!("jit wait {id}"));
    assert_eq!(b.get("alice", &format!("/v1/requests/{id}")).await.body["status"], "pending");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_and_canceled_requests_exit_4() {
    let b = TestBroker::start().await;
    let alice = logged_in(&b, "alice").await;
    let waiting = alice.spawn_watched(&["request", "demo", "--level", "write", "--for", "1h", "--reason", "x"]);
    waiting.until("waiting for approval");
    // Nobody decides within the pending TTL (1h).
    b.advance(Duration::from_secs(3601));
    alice.finish(waiting).code(4).stderr_has("expired").stderr_has("jit request demo --level write --for 1h");
    let id = alice
        .run(&["request", "demo", "--level", "write", "--for", "1h", "--reason", "y", "--no-wait"])
        .success()
        .stdout
        .trim()
        .to_string();
    let waiter = alice.spawn_watched(&["wait", &id]);
    waiter.until("waiting for approval");
    alice.run(&["cancel", &id]).success().stderr_has("canceled");
    alice.finish(waiter).code(4).stderr_has("canceled");
    alice.run(&["cancel", &id]).code(2).stderr_has("already canceled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_get_their_documented_exit_codes() {
    let b = TestBroker::start().await;
    let alice = logged_in(&b, "alice").await;
    let req = |args: &[&str]| {
        let mut all = vec!["request"];
        all.extend_from_slice(args);
        alice.run(&all)
    };
    req(&["demo", "--level", "write", "--for", "soon", "--reason", "x"]).code(2).stderr_has("invalid duration `soon`").stderr_has("2h");
    req(&["demo", "--level", "owner", "--for", "1h"]).code(2).stderr_has("unknown level `owner`").stderr_has("read, write, admin");
    req(&["acme/nope", "--level", "read", "--for", "1h"]).code(2).stderr_has("unknown repo `acme/nope`");
    req(&["acme/secret", "--level", "read", "--for", "1h"]).code(5).stderr_has("no policy rule allows read access to `acme/secret`");
    req(&["demo", "--level", "write", "--for", "9h", "--reason", "x"]).code(5).stderr_has("longer than the 8h");
    req(&["demo", "--level", "write", "--for", "1h"]).code(5).stderr_has("requires a reason");
    req(&["demo", "--level", "write", "--for", "1h", "--reason", "x", "--timeout", "never"]).code(2).stderr_has("--timeout");
    req(&["--level", "read", "--for", "1h"]).code(2).stderr_has("no `origin` remote");
    req(&["demo", "--for", "1h"]).code(2).stderr_has("--level");
    alice.run(&["wait", "abc"]).code(2).stderr_has("invalid request id `abc`");
    alice.run(&["wait", "999"]).code(2).stderr_has("request 999 not found");
    alice.run(&["cancel", "0"]).code(2);
    alice.run(&["deny", "1", "--reason", " "]).code(2).stderr_has("must not be empty");
    alice.run(&["revoke", "999"]).code(2).stderr_has("grant 999 not found");
    alice.run(&["revoke", "demo"]).code(2).stderr_has("no live grant on demo");
    alice.run(&["frobnicate"]).code(2);
    // Not logged in at all.
    let nobody = cli_env(&b);
    nobody.run(&["request", "demo", "--level", "read", "--for", "1h"]).code(5).stderr_has("not logged in");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_origin_remote_names_the_repo() {
    let b = TestBroker::start().await;
    let alice = logged_in(&b, "alice").await;
    let checkout = alice.work_dir().join("api");
    alice.git(&checkout, &["init", "-q"]).success();
    alice.git(&checkout, &["remote", "add", "origin", "https://github.com/acme/api.git"]).success();
    let v = alice.run_in(&checkout.join("."), &["request", "--level", "read", "--for", "30m", "--no-wait", "--json"]).success().json();
    assert_eq!(v["repo"], "acme/api");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_shapes_are_stable() {
    let b = TestBroker::start().await;
    let alice = logged_in(&b, "alice").await;
    let bob = logged_in(&b, "bob").await;
    let pending = alice.run(&["request", "demo", "--level", "write", "--for", "1h30m", "--reason", "fix", "--no-wait", "--json"]);
    let v = pending.success().json();
    // Every key, exactly: scripts break on a key removed or renamed.
    assert_eq!(
        keys_of(&v),
        [
            "approvals",
            "approvals_required",
            "approvers",
            "created_at",
            "decided_at",
            "decided_by",
            "decision_note",
            "duration",
            "duration_secs",
            "existing",
            "grant",
            "id",
            "level",
            "pending_until",
            "reason",
            "refs",
            "repo",
            "requester",
            "rule",
            "status",
        ]
    );
    assert_eq!((v["duration_secs"].as_u64(), v["requester"].as_str(), v["repo"].as_str()), (Some(5400), Some("alice"), Some("demo")));
    assert_eq!((v["level"].as_str(), v["reason"].as_str(), v["rule"].as_str()), (Some("write"), Some("fix"), Some("demo-write")));
    assert_eq!((v["status"].as_str(), v["duration"].as_str(), v["grant"].is_null()), (Some("pending"), Some("1h30m"), true));
    let id = v["id"].as_i64().unwrap().to_string();

    let list = bob.run(&["requests", "--pending", "--json"]).success().json();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"].to_string(), id);
    let approved = bob.run(&["approve", &id, "--comment", "ok", "--json"]).success().json();
    assert_eq!(approved["status"], "approved");
    assert_eq!(approved["approvals"][0]["comment"], "ok");
    assert_eq!(keys_of(&approved["approvals"][0]), ["at", "by", "comment"]);
    const GRANT_KEYS: [&str; 13] = [
        "clone_url",
        "expires_at",
        "granted_at",
        "id",
        "level",
        "refs",
        "repo",
        "request_id",
        "revoked_at",
        "revoked_by",
        "status",
        "user",
        "warn_before_secs",
    ];
    assert_eq!(keys_of(&approved["grant"]), GRANT_KEYS);
    assert_eq!((approved["grant"]["status"].as_str(), approved["grant"]["user"].as_str()), (Some("active"), Some("alice")));
    let mine = alice.run(&["requests", "--mine", "--json"]).success().json();
    assert_eq!(mine[0]["grant"]["id"], approved["grant"]["id"]);
    assert_eq!(bob.run(&["requests", "--mine", "--json"]).success().json(), serde_json::json!([]));

    let status = alice.run(&["status", "--json"]).success().json();
    assert_eq!(status.as_array().unwrap().len(), 1);
    assert_eq!(keys_of(&status[0]), GRANT_KEYS);
    // The table by meaning, not bytes: the UNTIL column widens when the grant
    // ends on another day (regression: this failed every evening after 22:30 UTC).
    let table = alice.run(&["status"]);
    let rows = table.success().table();
    assert_eq!(rows.len(), 1, "{}", table.stdout);
    let row = &rows[0];
    assert_eq!(row.keys().map(String::as_str).collect::<Vec<_>>(), ["GRANT", "LEFT", "LEVEL", "REFS", "REPO", "UNTIL"]);
    assert_eq!(
        (row["GRANT"].as_str(), row["REPO"].as_str(), row["LEVEL"].as_str(), row["REFS"].as_str()),
        (approved["grant"]["id"].to_string().as_str(), "demo", "write", "all")
    );
    assert!(row["LEFT"].starts_with("1h 29m") || row["LEFT"].starts_with("1h 30m"), "{}", table.stdout);
    assert!(!row["UNTIL"].is_empty(), "{}", table.stdout);

    let revoked = alice.run(&["revoke", "demo", "--json"]).success().json();
    assert_eq!(revoked[0]["status"], "revoked");
    assert_eq!(alice.run(&["status", "--json"]).success().json(), serde_json::json!([]));
    let repos = alice.run(&["repos", "--json"]).success().json();
    assert_eq!(repos[0]["name"], "demo");
    assert_eq!(keys_of(&repos[0]), ["clone_url", "name", "upstream_url"]);
}

fn keys_of(v: &serde_json::Value) -> Vec<&str> {
    let mut keys: Vec<&str> = v.as_object().unwrap_or_else(|| panic!("not an object: {v}")).keys().map(String::as_str).collect();
    keys.sort_unstable();
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approve_without_id_and_without_terminal_lists_the_pending_ids() {
    let b = TestBroker::start().await;
    let bob = logged_in(&b, "bob").await;
    // Nothing to review: exit 0 and a line saying so, as on a terminal.
    let none = bob.run(&["approve"]);
    none.code(0).stderr_has("no pending requests you can review");
    assert!(!none.stderr.contains("pass the id"), "no hint to pass an id when none is pending: {}", none.stderr);
    b.request("alice", "demo", "write", "1h", Some("a")).await;
    b.request("dave", "demo", "write", "1h", Some("b")).await;
    bob.run(&["approve"]).code(2).stderr_has("pending: #2, #1").stderr_has("jit approve 2");
    // With an id, no prompt is needed.
    bob.run(&["approve", "2"]).success().stderr_has("approved #2");
    // Refusals keep their codes through the CLI.
    let alice = logged_in(&b, "alice").await;
    let own = b.request("alice", "demo", "write", "1h", Some("mine")).await["id"].as_i64().unwrap();
    alice.run(&["approve", &own.to_string()]).code(5).stderr_has("your own request");
    // Someone who cannot see a request gets the same answer from approve and deny
    // (regression: deny said "not an approver", exit 5, approve "not found", exit 2).
    let mallory = logged_in(&b, "mallory").await;
    mallory.run(&["approve", "1"]).code(2).stderr_has("request 1 not found");
    mallory.run(&["deny", "1", "--reason", "x"]).code(2).stderr_has("request 1 not found");
    mallory.run(&["approve", "999"]).code(2).stderr_has("request 999 not found");
    bob.run(&["approve", "2"]).code(2).stderr_has("already approved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_table_is_for_people() {
    let b = TestBroker::start().await;
    let bob = logged_in(&b, "bob").await;
    bob.run(&["requests"]).success().stderr_has("no requests");
    b.request("alice", "demo", "write", "1h", Some("hotfix")).await;
    let run = bob.run(&["requests"]);
    let rows = run.success().table();
    assert_eq!(rows.len(), 1, "{}", run.stdout);
    let cells: Vec<(&str, &str)> = rows[0].iter().map(|(k, v)| (k.as_str(), v.as_str())).filter(|(k, _)| *k != "AGE").collect();
    assert_eq!(
        cells,
        [
            ("FOR", "1h"),
            ("ID", "1"),
            ("LEVEL", "write"),
            ("REASON", "hotfix"),
            ("REPO", "demo"),
            ("REQUESTER", "alice"),
            ("STATUS", "pending")
        ]
    );
    assert!(rows[0]["AGE"].ends_with('s'), "{}", run.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approver_can_wait_on_someone_elses_request() {
    let b = TestBroker::start_gateway("1h").await;
    let bob = logged_in(&b, "bob").await;
    let req = b.request("alice", "demo", "admin", "1h", None).await;
    let id = req["id"].as_i64().unwrap().to_string();
    let waiter = bob.spawn_watched(&["wait", &id, "--json"]);
    waiter.until("waiting for approval");
    b.approve("carol", 1).await;
    b.approve("erin", 1).await;
    let run = bob.finish(waiter);
    assert_eq!(run.success().json()["status"], "approved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_commands_refuse_bad_usage_and_missing_logins() {
    let b = TestBroker::start().await;
    let nobody = cli_env(&b);
    for args in [&["requests"][..], &["status"], &["repos"], &["whoami"], &["requests", "--pending", "--json"]] {
        nobody.run(args).code(5).stderr_has("not logged in");
    }
    for args in
        [&["requests", "--all"][..], &["status", "extra"], &["repos", "--level", "read"], &["logout", "now"], &["revoke"], &["deny", "1"]]
    {
        nobody.run(args).code(2);
    }
    // A broker that is not there: exit 1 with the URL and what to check.
    let away = [("JIT_SERVER", "http://127.0.0.1:9"), ("JIT_TOKEN", b.token("alice"))];
    for args in [&["requests"][..], &["status"], &["repos"]] {
        nobody.run_with(args, &away, None).code(1).stderr_has("cannot reach the broker at http://127.0.0.1:9");
    }
    nobody
        .run_with(&["requests"], &[("JIT_SERVER", "not a url"), ("JIT_TOKEN", b.token("alice"))], None)
        .code(2)
        .stderr_has("invalid broker URL");
}

#[test]
fn the_table_reader_finds_cells_by_column_name() {
    let rows = crate::common::parse_table(
        "GRANT  REPO  CLONE URL  UNTIL         LEFT\n1      demo  x y        Nov 26 00:26  1h 29m\n12     a/b              16:42         5m 01s\n",
    );
    assert_eq!(rows.len(), 2);
    assert_eq!((rows[0]["CLONE URL"].as_str(), rows[0]["UNTIL"].as_str(), rows[0]["LEFT"].as_str()), ("x y", "Nov 26 00:26", "1h 29m"));
    assert_eq!((rows[1]["GRANT"].as_str(), rows[1]["CLONE URL"].as_str(), rows[1]["UNTIL"].as_str()), ("12", "", "16:42"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_whose_credential_cannot_be_minted_here_says_so_and_an_approver_is_not_warned() {
    // demo read works only from 10.0.0.0/8, and this machine is 127.0.0.1.
    let policy = crate::common::gateway_policy("1h").replace("name = \"demo-read\"\n", "name = \"demo-read\"\nfrom = [\"10.0.0.0/8\"]\n");
    assert!(policy.contains("from = [\"10.0.0.0/8\"]"), "the policy names demo-read");
    let b = TestBroker::start_with(&policy).await;
    let alice = logged_in(&b, "alice").await;
    // Granted (the grant exists: exit 0), but the broker refuses the credential here, and alice is told why.
    let run = alice.run(&["request", "demo", "--level", "read", "--for", "1h"]);
    run.success().stderr_has("warning: granted, but the git credential could not be kept on this machine").stderr_has("10.0.0.0/8");
    // An approver following someone else's request hears the decision, with no warning about a credential that is not theirs.
    let child = alice.spawn(&["request", "demo", "--level", "write", "--for", "1h", "--reason", "fix"]);
    let id = pending_id(&b, "alice").await;
    let bob = logged_in(&b, "bob").await;
    bob.run(&["approve", &id.to_string(), "--yes"]).success();
    let waited = bob.run(&["wait", &id.to_string()]);
    waited.success();
    assert!(!waited.stderr.contains("warning"), "{}", waited.stderr);
    assert!(waited.stdout.contains("Approved by bob: write on demo"), "{}", waited.stdout);
    alice.wait_child(child).success();
}
