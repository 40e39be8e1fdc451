//! The whole story with real git, a real broker serving git through its
//! gateway, the real credential helper and the real kernel keyring.

use std::time::{Duration, Instant};

use crate::common::{TestBroker, cli_env};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_works_exactly_while_a_grant_lives() {
    let b = TestBroker::start_gateway("1h").await;
    let alice = cli_env(&b);
    let work = alice.work_dir();
    // A storage helper the user already had: it must never receive jit's secrets.
    std::fs::write(alice.home().join(".gitconfig"), "[credential]\n\thelper = store\n").unwrap();
    alice.login(&b.url, b.token("alice")).success();
    alice.run(&["setup"]).success().stderr_has("git now asks jit first");

    // No grant: git gets nothing from jit and cannot clone.
    let url = b.demo_url();
    let clone = alice.git(&work, &["clone", &url, "before"]);
    assert_ne!(clone.code, 0, "clone without a grant worked");

    // This test keeps real time (git and the helper read the wall clock), so
    // its grants are a few seconds long: long enough for the steps each
    // covers, short enough to wait out.
    // Read, auto-approved: clone works; push is refused with a message.
    let read = alice.run(&["request", "demo", "--level", "read", "--for", "5s"]);
    read.success();
    let read_granted = Instant::now();
    alice.git(&work, &["clone", &url, "demo"]).success();
    let repo = work.join("demo");
    assert!(repo.join("README.md").exists());
    let ask = format!("protocol=http\nhost={}\npath=git/demo.git\n", b.url.trim_start_matches("http://"));
    // The password git used, registered with the leak check (as every helper answer is).
    assert!(alice.run_helper("get", &ask).success().stdout.contains("password=jitgw_"));
    std::fs::write(repo.join("CHANGE.md"), "a change\n").unwrap();
    alice.git(&repo, &["add", "CHANGE.md"]).success();
    alice.git(&repo, &["commit", "-qm", "a change"]).success();
    let refused = alice.git(&repo, &["push", "origin", "main"]);
    assert_ne!(refused.code, 0);
    assert!(refused.stderr.contains("403") && refused.stderr.contains("pushing needs write"), "{}", refused.stderr);

    // Write for 4 s, approved by bob while alice waits: plain git push works.
    let waiting = alice.spawn_watched(&["request", "demo", "--level", "write", "--for", "4s", "--reason", "hotfix INC-42"]);
    waiting.until("waiting for approval of #2");
    assert_eq!(b.approve("bob", 2).await.status, 200);
    alice.finish(waiting).success();
    let write_granted = Instant::now();
    assert!(alice.run_helper("get", &ask).success().stdout.contains("password=jitgw_"));
    alice.git(&repo, &["push", "origin", "main"]).success();
    alice.git(&repo, &["fetch", "origin"]).success();
    let server_head = std::process::Command::new("git")
        .args(["--git-dir", b.dir.path().join("repos/demo.git").to_str().unwrap(), "log", "-1", "--format=%s", "main"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&server_head.stdout).trim(), "a change");
    // The storage helper was asked to store, and had nothing to write.
    assert!(!alice.home().join(".git-credentials").exists(), "a jit credential reached git-credential-store");

    // After both grants end, push and fetch fail at the host, and the helper says why.
    let until = (read_granted + Duration::from_millis(5100)).max(write_granted + Duration::from_millis(4100));
    tokio::time::sleep(until.saturating_duration_since(Instant::now())).await;
    std::fs::write(repo.join("LATE.md"), "too late\n").unwrap();
    alice.git(&repo, &["add", "LATE.md"]).success();
    alice.git(&repo, &["commit", "-qm", "too late"]).success();
    for args in [&["push", "origin", "main"][..], &["fetch", "origin"][..]] {
        let run = alice.git(&repo, args);
        assert_ne!(run.code, 0, "git {args:?} worked after the grants ended");
        let hints: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with("jit: your")).collect();
        assert_eq!(hints.len(), 1, "{}", run.stderr);
        assert!(hints[0].contains("grant on demo ended") && hints[0].contains("jit request demo --level"), "{}", hints[0]);
    }

    // The broker's audit log has every fetch and push, by alice.
    let audit = b.audit().await;
    let git_ops: Vec<(String, String)> = audit
        .iter()
        .filter(|e| e["action"].as_str().unwrap().starts_with("git_"))
        .map(|e| (e["action"].as_str().unwrap().to_string(), e["actor"].as_str().unwrap().to_string()))
        .collect();
    assert!(git_ops.iter().all(|(_, actor)| actor == "alice"));
    let fetches = git_ops.iter().filter(|(a, _)| a == "git_fetch").count();
    let pushes = git_ops.iter().filter(|(a, _)| a == "git_push").count();
    assert!(fetches >= 2, "clone and fetch: {git_ops:?}");
    assert!(pushes >= 1, "{git_ops:?}");
    // One credential per grant: each lived to the end of its grant, so nothing was re-minted.
    assert_eq!(audit.iter().filter(|e| e["action"] == "credential_minted").count(), 2);
    assert_eq!(b.get("admin", "/v1/audit/verify").await.body["ok"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_grant_stops_git_at_the_host_at_once() {
    let b = TestBroker::start_gateway("1h").await;
    let alice = cli_env(&b);
    alice.login(&b.url, b.token("alice")).success();
    alice.run(&["setup"]).success();
    let req = alice.run(&["request", "demo", "--level", "read", "--for", "1h", "--json"]);
    let grant = req.success().json()["grant"]["id"].as_i64().unwrap();
    let work = alice.work_dir();
    alice.git(&work, &["clone", &b.demo_url(), "demo"]).success();
    // An approver revokes it from elsewhere; the cached credential is dead at the host.
    let r = b.post("admin", &format!("/v1/grants/{grant}/revoke"), serde_json::json!({"reason": "incident"})).await;
    assert_eq!(r.status, 200);
    let repo = work.join("demo");
    // git erases the refused credential; the helper learns why at once and says so.
    let first = alice.git(&repo, &["fetch", "origin"]);
    assert_ne!(first.code, 0);
    assert!(first.stderr.contains("jit: your read grant on demo has ended") && first.stderr.contains("revoked"), "{}", first.stderr);
    // The next try knows there is nothing, and names what to ask for.
    let second = alice.git(&repo, &["fetch", "origin"]);
    assert_ne!(second.code, 0);
    assert!(second.stderr.contains("jit: you have no grant on demo; ask for one: jit request demo --level read"), "{}", second.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_push_is_recorded_ref_by_ref() {
    let b = TestBroker::start_gateway("1h").await;
    let alice = cli_env(&b);
    alice.login(&b.url, b.token("alice")).success();
    alice.run(&["setup"]).success();
    // Admin: deleting a ref needs it.
    let id = b.request("alice", "demo", "admin", "1h", None).await["id"].as_i64().unwrap();
    assert_eq!(b.approve("bob", id).await.status, 200);
    assert_eq!(b.approve("carol", id).await.body["status"], "approved");
    let work = alice.work_dir();
    alice.git(&work, &["clone", &b.demo_url(), "demo"]).success();
    let repo = work.join("demo");
    let rev = |r: &str| alice.git(&repo, &["rev-parse", r]).success().stdout.trim().to_string();
    let before = rev("HEAD");
    std::fs::write(repo.join("CHANGE.md"), "a change\n").unwrap();
    alice.git(&repo, &["add", "CHANGE.md"]).success();
    alice.git(&repo, &["commit", "-qm", "a change"]).success();
    let after = rev("HEAD");
    alice.git(&repo, &["tag", "v1"]).success();
    // One push: main moves, a branch and a tag appear.
    alice.git(&repo, &["push", "origin", "main", "main:refs/heads/topic", "v1"]).success();
    // Another: the branch goes away.
    alice.git(&repo, &["push", "origin", ":topic"]).success();

    let pushes: Vec<String> =
        b.audit().await.iter().filter(|e| e["action"] == "git_push").map(|e| e["detail"].as_str().unwrap().to_string()).collect();
    assert_eq!(pushes.len(), 2, "{pushes:?}");
    for expected in [
        format!("refs/heads/main {before}→{after}"),
        format!("refs/heads/topic created at {after}"),
        format!("refs/tags/v1 created at {after}"),
    ] {
        assert!(pushes[0].contains(&expected), "{expected} missing from {}", pushes[0]);
    }
    assert_eq!(pushes[1], format!("git-receive-pack: refs/heads/topic deleted (was {after})"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_write_grant_that_superseded_a_read_is_revoked_every_push_says_so_and_names_write() {
    let b = TestBroker::start_gateway("1h").await;
    let alice = cli_env(&b);
    alice.login(&b.url, b.token("alice")).success();
    alice.run(&["setup"]).success();
    alice.run(&["request", "demo", "--level", "read", "--for", "1h"]).success();
    let work = alice.work_dir();
    alice.git(&work, &["clone", &b.demo_url(), "demo"]).success();
    let repo = work.join("demo");
    // A write, approved elsewhere, supersedes the read whose credential git holds.
    let id = b.request("alice", "demo", "write", "2h", Some("release")).await["id"].as_i64().unwrap();
    let approved = b.approve("bob", id).await;
    assert_eq!(approved.status, 200);
    let write_grant = approved.body["grant"]["id"].as_i64().unwrap();
    std::fs::write(repo.join("W.md"), "w\n").unwrap();
    alice.git(&repo, &["add", "W.md"]).success();
    alice.git(&repo, &["commit", "-qm", "w"]).success();
    alice.git(&repo, &["push", "origin", "HEAD:main"]).success();
    assert_eq!(b.post("admin", &format!("/v1/grants/{write_grant}/revoke"), serde_json::json!({"reason": "incident"})).await.status, 200);

    // Each push fails, and each says what is true and asks for write: never a
    // bare "Authentication failed", never a request for read.
    for attempt in 1..=3 {
        let push = alice.git(&repo, &["push", "origin", "HEAD:main"]);
        assert_ne!(push.code, 0);
        let said: Vec<&str> = push.stderr.lines().filter(|l| l.starts_with("jit: ")).collect();
        assert!(!said.is_empty(), "push {attempt} said nothing of jit's: {}", push.stderr);
        assert!(said.iter().all(|l| l.contains("jit request demo --level write --for 1h (to push)")), "push {attempt}: {said:?}");
        assert!(!push.stderr.contains("--level read"), "push {attempt}: {}", push.stderr);
    }
    // A fetch needs only read, and is told so.
    let fetch = alice.git(&repo, &["fetch", "origin"]);
    assert!(fetch.stderr.contains("jit request demo --level read --for 1h (to fetch)"), "{}", fetch.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_warns_once_a_minute_as_a_grant_nears_its_end() {
    // The demo write rule warns 10 minutes before the end (the default); its read rule 2 minutes before.
    let policy = crate::common::gateway_policy("1h").replacen(
        "name = \"demo-read\"\nrepos = [\"demo\"]\nlevels = [\"read\"]\n",
        "name = \"demo-read\"\nrepos = [\"demo\"]\nlevels = [\"read\"]\nwarn_before = \"2m\"\n",
        1,
    );
    let b = TestBroker::start_with(&policy).await;
    let alice = cli_env(&b);
    alice.login(&b.url, b.token("alice")).success();
    alice.run(&["setup"]).success();
    let work = alice.work_dir();

    // Five minutes of read: outside its rule's two-minute window, so git is quiet.
    alice.run(&["request", "demo", "--level", "read", "--for", "5m"]).success();
    let clone = alice.git(&work, &["clone", &b.demo_url(), "demo"]);
    clone.success();
    assert!(!clone.stderr.contains("ends in"), "{}", clone.stderr);

    // Five minutes of write, inside the default ten: the next git command says so, once.
    let id = b.request("alice", "demo", "write", "5m", Some("fix")).await["id"].as_i64().unwrap();
    assert_eq!(b.approve("bob", id).await.status, 200);
    alice.run(&["wait", &id.to_string()]).success();
    let repo = work.join("demo");
    let fetch = alice.git(&repo, &["fetch", "origin"]);
    fetch.success();
    assert!(
        fetch.stderr.contains("jit: write access to demo ends in 5 min; to keep it, ask now: jit extend demo --for 1h"),
        "{}",
        fetch.stderr
    );
    let again = alice.git(&repo, &["fetch", "origin"]);
    assert!(!again.stderr.contains("ends in"), "not again within the minute: {}", again.stderr);
    alice.run(&["status"]).success().stderr_has("jit: write access to demo ends in 5 min");
}
