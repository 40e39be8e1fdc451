//! What a new user tripped over on a first day (issue "A first day without
//! surprises"), each pinned by a test that failed before the fix.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{TestBroker, TestEnvironment, cli_env};

async fn logged_in_with_setup(b: &TestBroker, user: &str) -> TestEnvironment {
    let env = cli_env(b);
    env.login(&b.url, b.token(user)).success();
    env.run(&["setup"]).success();
    env
}

/// The `jit:` lines git showed from the helper.
fn jit_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.starts_with("jit: ")).collect()
}

fn commit(env: &TestEnvironment, repo: &std::path::Path, file: &str) {
    std::fs::write(repo.join(file), format!("{file}\n")).unwrap();
    env.git(repo, &["add", file]).success();
    env.git(repo, &["commit", "-qm", file]).success();
}

async fn pending_id(b: &TestBroker) -> i64 {
    for _ in 0..200 {
        if let Some(r) = b.get("admin", "/v1/requests?status=pending").await.body.as_array().unwrap().first() {
            return r["id"].as_i64().unwrap();
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no pending request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_wait_then_approval_then_git_push_just_works() {
    // Regression: git used the cached read grant (or its stale "ended" advice)
    // until `jit wait ID` was run.
    let b = TestBroker::start_gateway("1h").await;
    let alice = logged_in_with_setup(&b, "alice").await;
    alice.run(&["request", "demo", "--level", "read", "--for", "1h"]).success();
    let work = alice.work_dir();
    alice.git(&work, &["clone", &b.demo_url(), "demo"]).success();
    let repo = work.join("demo");
    commit(&alice, &repo, "A.md");
    let id = alice
        .run(&["request", "demo", "--level", "write", "--for", "1h", "--reason", "fix", "--no-wait"])
        .success()
        .stdout
        .trim()
        .to_string();
    assert_eq!(b.approve("bob", id.parse().unwrap()).await.status, 200);
    let pushed = alice.git(&repo, &["push", "origin", "main"]);
    pushed.success();
    // And once the request is decided, the hot path has nothing left to follow up.
    assert_eq!(alice.credential_index()["pending"], serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_grant_ended_a_newer_grant_is_found_not_the_stale_advice() {
    let b = TestBroker::start_gateway("1h").await;
    let alice = logged_in_with_setup(&b, "alice").await;
    // The helper judges its cached grant by the wall clock, so it ends for real.
    alice.run(&["request", "demo", "--level", "read", "--for", "2s"]).success();
    let granted = std::time::Instant::now();
    let work = alice.work_dir();
    alice.git(&work, &["clone", &b.demo_url(), "demo"]).success();
    tokio::time::sleep((granted + Duration::from_millis(2100)).saturating_duration_since(std::time::Instant::now())).await;
    let repo = work.join("demo");
    commit(&alice, &repo, "B.md");
    // The write grant is approved elsewhere; alice never runs `jit wait`.
    let waiting = alice.spawn_watched(&["request", "demo", "--level", "write", "--for", "1h", "--reason", "fix", "--timeout", "1m"]);
    waiting.until("waiting for approval");
    let id = pending_id(&b).await;
    // She gives up waiting (Ctrl-C); the request stays pending and is approved later.
    let _ = Command::new("sh").args(["-c", &format!("kill -INT {}", waiting.id())]).status();
    alice.finish(waiting).code(130);
    assert_eq!(b.approve("bob", id).await.status, 200);
    let pushed = alice.git(&repo, &["push", "origin", "main"]);
    pushed.success();
    assert!(jit_lines(&pushed.stderr).is_empty(), "{}", pushed.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_before_any_grant_names_the_request_to_make() {
    // Regression: git ended in its bare "could not read Username".
    let b = TestBroker::start_gateway("1h").await;
    let alice = logged_in_with_setup(&b, "alice").await;
    let clone = alice.git(&alice.work_dir(), &["clone", &b.demo_url(), "demo"]);
    assert_ne!(clone.code, 0);
    assert_eq!(
        jit_lines(&clone.stderr),
        ["jit: you have no grant on demo; ask for one: jit request demo --level read --for 1h (to fetch)"]
    );
    // git stops at jit's line: it does not go on to prompt for a username.
    assert!(clone.stderr.contains("told us to quit") && !clone.stderr.contains("Username"), "{}", clone.stderr);
    // With a request waiting, that request is named instead.
    let id = alice
        .run(&["request", "demo", "--level", "write", "--for", "1h", "--reason", "x", "--no-wait"])
        .success()
        .stdout
        .trim()
        .to_string();
    let clone = alice.git(&alice.work_dir(), &["clone", &b.demo_url(), "demo"]);
    assert_ne!(clone.code, 0);
    let expected = format!("jit: your request #{id} for write on demo is waiting for approval; follow it with `jit wait {id}`");
    assert_eq!(jit_lines(&clone.stderr), [expected.as_str()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_after_your_own_revoke_says_so() {
    let b = TestBroker::start_gateway("1h").await;
    let alice = logged_in_with_setup(&b, "alice").await;
    alice.run(&["request", "demo", "--level", "read", "--for", "1h"]).success();
    alice.git(&alice.work_dir(), &["clone", &b.demo_url(), "demo"]).success();
    alice.run(&["revoke", "demo"]).success();
    let fetch = alice.git(&alice.work_dir().join("demo"), &["fetch", "origin"]);
    assert_ne!(fetch.code, 0);
    assert_eq!(
        jit_lines(&fetch.stderr),
        ["jit: you have no grant on demo; ask for one: jit request demo --level read --for 1h (to fetch)"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unusable_keychain_is_found_before_anything_is_requested() {
    // Regression: the grant was created, then the command failed on the
    // keychain, and a retry created a second grant.
    let b = TestBroker::start_gateway("1h").await;
    let env = cli_env(&b);
    let broken = [
        ("JIT_SERVER", b.url.as_str()),
        ("JIT_TOKEN", b.token("alice")),
        ("JIT_KEYRING", "secret-service"),
        ("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus"),
    ];
    let run = env.run_with(&["request", "demo", "--level", "read", "--for", "5m"], &broken, None);
    run.code(1).stderr_has("secret-service keychain");
    assert_eq!(b.get("admin", "/v1/requests").await.body, serde_json::json!([]), "nothing was requested");
    // --no-wait keeps nothing locally, so it needs no keychain.
    env.run_with(&["request", "demo", "--level", "read", "--for", "5m", "--no-wait"], &broken, None).success();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn covered_requests_return_the_live_grant_and_longer_ones_supersede_it() {
    // Regression: every auto-approved read added another live grant.
    let b = TestBroker::start_gateway("1h").await;
    let first = b.post("alice", "/v1/requests", serde_json::json!({"repo": "demo", "level": "read", "duration": "2h"})).await;
    assert_eq!(first.status, 201);
    let grant = first.body["grant"]["id"].as_i64().unwrap();
    // Enough time left: less than the two hours just granted.
    for asked in ["1h", "90m", "30m"] {
        let again = b.post("alice", "/v1/requests", serde_json::json!({"repo": "demo", "level": "read", "duration": asked})).await;
        assert_eq!((again.status, again.body["existing"].as_bool()), (200, Some(true)), "{asked}: {}", again.body);
        assert_eq!(again.body["grant"]["id"].as_i64(), Some(grant));
    }
    // Through the CLI it says so.
    let alice = cli_env(&b);
    alice.login(&b.url, b.token("alice")).success();
    let run = alice.run(&["request", "demo", "--level", "read", "--for", "1h"]);
    assert!(
        run.success().stdout.contains("Already granted: read on demo until") && run.stdout.contains(&format!("(grant {grant}")),
        "{}",
        run.stdout
    );
    // Two hours from now is more than is left: an extension, decided by policy,
    // whose grant supersedes the old one.
    let longer = b.post("alice", "/v1/requests", serde_json::json!({"repo": "demo", "level": "read", "duration": "2h"})).await;
    assert_eq!((longer.status, longer.body["existing"].as_bool()), (201, Some(false)));
    let live = b.get("alice", "/v1/grants?live=true").await.body;
    assert_eq!(live.as_array().unwrap().len(), 1, "{live}");
    assert_eq!(live[0]["id"], longer.body["grant"]["id"]);
    let old = b.get("alice", &format!("/v1/grants/{grant}")).await.body;
    assert_eq!((old["status"].as_str(), old["revoked_by"].as_str()), (Some("revoked"), Some("broker")));
    let audit = b.audit().await;
    let superseded = audit.iter().find(|e| e["action"] == "revoked" && e["grant_id"] == grant).expect("a revoked event");
    assert!(superseded["detail"].as_str().unwrap().starts_with("superseded by a new read grant until"), "{superseded}");
    // A higher level while a lower one lives is a separate grant, needing its approval.
    let write = b.request("alice", "demo", "write", "1h", Some("fix")).await;
    assert_eq!(write["status"], "pending");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approving_twice_says_it_was_already_recorded() {
    let b = TestBroker::start().await;
    let id = b.request("alice", "demo", "admin", "1h", None).await["id"].as_i64().unwrap().to_string();
    let bob = cli_env(&b);
    bob.login(&b.url, b.token("bob")).success();
    bob.run(&["approve", &id]).success().stderr_has("recorded your approval of #1 (1 of 2 needed)");
    let again = bob.run(&["approve", &id]);
    again.success().stderr_has("you already approved #1; it still needs 1 of 2 approvals");
    assert!(!again.stderr.contains("recorded"), "{}", again.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_durations_and_broker_urls_say_what_to_type() {
    let b = TestBroker::start().await;
    let alice = cli_env(&b);
    alice.login(&b.url, b.token("alice")).success();
    for (value, says) in [
        ("-1h", "invalid duration `-1h`: must be a positive length of time, e.g. 2h"),
        ("90", "invalid duration `90`: `90` needs a unit (s, m, h or d), e.g. 90m"),
        ("2hours", "unknown unit `hours`"),
        ("1.5h", "whole numbers only, e.g. 1h30m"),
    ] {
        let run = alice.run(&["request", "demo", "--level", "read", "--for", value]);
        run.code(2).stderr_has(says).stderr_has("--for");
        assert!(!run.stderr.contains("90ms") && !run.stderr.contains("-- -1"), "{}", run.stderr);
    }
    alice.run(&["request", "demo", "--level", "READ", "--for", "1h"]).success();
    let port = b.url.rsplit(':').next().unwrap();
    let token = Some(b.token("dave"));
    alice
        .run_with(&["login", "--server", &format!("127.0.0.1:{port}")], &[], token)
        .code(2)
        .stderr_has(&format!("use http://127.0.0.1:{port}"));
    alice.run_with(&["login", "--server", &format!("{}/v1", b.url)], &[], token).code(2).stderr_has(&format!("base URL: {}", b.url));
    let tls = alice.run_with(&["login", "--server", &b.url.replace("http://", "https://")], &[], token);
    tls.code(1).stderr_has("TLS handshake failed").stderr_has(&format!("use {}", b.url));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uninstall_reports_a_helper_added_after_setup_and_keeps_it() {
    let b = TestBroker::start_gateway("1h").await;
    let env = logged_in_with_setup(&b, "alice").await;
    let key = format!("credential.{}.helper", b.url);
    env.git(&env.work_dir(), &["config", "--global", "--add", &key, "cache --timeout=30"]).success();
    env.run(&["setup", "--uninstall"]).success().stderr_has(&format!("kept `cache --timeout=30` for {}", b.url));
    assert_eq!(env.git(&env.work_dir(), &["config", "--global", "--get-all", &key]).stdout.trim(), "cache --timeout=30");
}

#[test]
fn the_dev_broker_refuses_other_interfaces_unless_told() {
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_jit"))
        .args(["server", "--dev", "--listen", "0.0.0.0:0", "--data-dir"])
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Bounded: a broker that starts serving instead of refusing fails the test, not hangs it.
    let mut guard = crate::common::ChildGuard::new(child);
    let started = Instant::now();
    let status = loop {
        if let Some(status) = guard.try_wait().unwrap() {
            break status;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "the dev broker started serving on 0.0.0.0");
        std::thread::sleep(Duration::from_millis(25));
    };
    assert_eq!(status.code(), Some(2));
    let mut stderr = String::new();
    std::io::Read::read_to_string(guard.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("refusing to serve the dev broker on 0.0.0.0:0") && stderr.contains("--allow-remote"), "{stderr}");
}

/// The TCP port process `pid` listens on, from Linux's /proc: its socket
/// descriptors' inodes matched against the listening sockets.
fn listening_port(pid: u32) -> Option<u16> {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()?
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|target| target.to_str()?.strip_prefix("socket:[")?.strip_suffix(']').map(str::to_string))
        .collect();
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    table.lines().skip(1).find_map(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        // local address, state 0A (LISTEN), inode
        let (local, state, inode) = (cols.get(1)?, cols.get(3)?, cols.get(9)?);
        (*state == "0A" && inodes.iter().any(|i| i == inode)).then(|| u16::from_str_radix(local.rsplit(':').next()?, 16).ok())?
    })
}

#[test]
fn a_closed_stdout_neither_kills_the_dev_broker_nor_keeps_it_from_stopping() {
    // Regression: printing to a closed pipe (`jit server --dev | head -1`)
    // panicked the broker, or left it deaf to SIGTERM.
    let dir = tempfile::tempdir().unwrap();
    // Port 0, and the port read from the kernel: with its output closed the
    // broker cannot say it, and a port picked beforehand may be taken first.
    let child = Command::new(env!("CARGO_BIN_EXE_jit"))
        .args(["server", "--dev", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("JIT_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = crate::common::ChildGuard::new(child);
    // Close both pipes before the broker writes anything.
    drop(child.stdout.take());
    drop(child.stderr.take());
    let started = Instant::now();
    let healthy = loop {
        let port = listening_port(child.id());
        let ok = port.is_some_and(|port| {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok_and(|mut s| {
                use std::io::{Read, Write};
                let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
                let mut reply = String::new();
                let _ = s.read_to_string(&mut reply);
                reply.starts_with("HTTP/1.1 200")
            })
        });
        if ok || started.elapsed() > Duration::from_secs(20) || child.try_wait().unwrap().is_some() {
            break ok;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(healthy, "the broker died or never served: {:?}", child.try_wait().unwrap());
    let _ = Command::new("sh").args(["-c", &format!("kill -TERM {}", child.id())]).status();
    let stopped = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(stopped.elapsed() < Duration::from_secs(10), "SIGTERM did not stop the broker");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0), "{status:?}");
}
