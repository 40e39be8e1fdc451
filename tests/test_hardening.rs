//! Findings of the attack pass (issue "Hardening"), each pinned by a test
//! that failed on the code before the fix.

use std::process::Command;

use reqwest::Method;
use serde_json::json;

use crate::common::{TestBroker, cli_env};

/// A read grant's gateway password for alice on demo.
async fn read_password(b: &TestBroker) -> String {
    let grant = b.request("alice", "demo", "read", "1h", None).await["grant"]["id"].as_i64().unwrap();
    let cred = b.post("alice", &format!("/v1/grants/{grant}/credentials"), json!({})).await;
    assert_eq!(cred.status, 201, "{}", cred.body);
    cred.body["password"].as_str().unwrap().to_string()
}

fn pkt(line: &str) -> String {
    format!("{:04x}{line}", line.len() + 4)
}

#[tokio::test]
async fn a_read_credential_never_gets_the_push_advertisement_however_the_query_is_spelled() {
    let b = TestBroker::start_gateway("1h").await;
    let password = read_password(&b).await;
    let http = reqwest::Client::new();
    for query in [
        "service=git-upload-pack&service=git-receive-pack",
        "service=git-upload-pack&%73ervice=git-receive-pack",
        "%73ervice=git-upload-pack&service=git-receive-pack",
    ] {
        let r = http.get(format!("{}/git/demo.git/info/refs?{query}", b.url)).basic_auth("alice", Some(&password)).send().await.unwrap();
        let status = r.status().as_u16();
        let body = r.text().await.unwrap();
        assert_eq!(status, 400, "{query}: {body}");
        assert!(!body.contains("report-status") && body.contains("ambiguous"), "{query}: {body}");
    }
    // Spelled with escapes but unambiguous, it is read as what it says, and checked as such.
    let r = http
        .get(format!("{}/git/demo.git/info/refs?%73ervice=git-receive-pack", b.url))
        .basic_auth("alice", Some(&password))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn posting_straight_to_upload_pack_is_audited() {
    // Regression: only `GET info/refs` was audited; protocol v2 `ls-refs`
    // posted straight to git-upload-pack moved data without an event.
    let b = TestBroker::start_gateway("1h").await;
    let password = read_password(&b).await;
    let body = format!("{}{}0001{}0000", pkt("command=ls-refs\n"), pkt("agent=probe\n"), pkt("peel\n"));
    let fetch = || {
        reqwest::Client::new()
            .post(format!("{}/git/demo.git/git-upload-pack", b.url))
            .basic_auth("alice", Some(&password))
            .header("Content-Type", "application/x-git-upload-pack-request")
            .header("Git-Protocol", "version=2")
            .body(body.clone())
            .send()
    };
    let r = fetch().await.unwrap();
    assert_eq!(r.status(), 200);
    let refs = r.text().await.unwrap();
    assert!(refs.contains("refs/heads/main"), "{refs}");
    let fetches: Vec<_> = b.audit().await.into_iter().filter(|e| e["action"] == "git_fetch").collect();
    assert_eq!(fetches.len(), 1, "{fetches:?}");
    assert_eq!((fetches[0]["actor"].as_str(), fetches[0]["repo"].as_str()), (Some("alice"), Some("demo")));
    // Within the coalescing window (2 s on the broker's clock) a fetch folds
    // into that event; the next one after it says how many it stood for.
    assert_eq!(fetch().await.unwrap().status(), 200);
    assert_eq!(b.audit().await.into_iter().filter(|e| e["action"] == "git_fetch").count(), 1);
    b.advance(std::time::Duration::from_secs(3));
    assert_eq!(fetch().await.unwrap().status(), 200);
    let fetches: Vec<_> = b.audit().await.into_iter().filter(|e| e["action"] == "git_fetch").collect();
    assert_eq!(fetches.len(), 2, "{fetches:?}");
    assert!(!fetches[0]["detail"].as_str().unwrap().contains("stood for"), "{}", fetches[0]);
    assert!(fetches[1]["detail"].as_str().unwrap().ends_with("(the previous event stood for 2 fetches)"), "{}", fetches[1]);
}

#[tokio::test]
async fn a_push_whose_commands_cannot_be_read_never_reaches_the_repository() {
    // The audit names every ref a push changes, so a push jit cannot read is not let through unrecorded.
    let b = TestBroker::start_gateway("1h").await;
    let (_, password) = write_password(&b, "alice").await;
    let zero = "0".repeat(40);
    let head = std::process::Command::new("git")
        .args(["--git-dir", b.dir.path().join("repos/demo.git").to_str().unwrap(), "rev-parse", "main"])
        .output()
        .unwrap();
    let head = String::from_utf8(head.stdout).unwrap().trim().to_string();
    let post = |body: Vec<u8>, encoding: Option<&'static str>| {
        let mut r = reqwest::Client::new()
            .post(format!("{}/git/demo.git/git-receive-pack", b.url))
            .basic_auth("alice", Some(&password))
            .header("Content-Type", "application/x-git-receive-pack-request")
            .body(body);
        if let Some(e) = encoding {
            r = r.header("Content-Encoding", e);
        }
        r.send()
    };
    for (body, encoding, says) in [
        (format!("{}0000", pkt(&format!("{head} {zero} main\0report-status"))).into_bytes(), None, "not a ref name"),
        (format!("{}0000", pkt(&format!("{head} {zero}\0report-status"))).into_bytes(), None, "OLD NEW REFNAME"),
        (b"zzzz".to_vec(), None, "not hex"),
        (pkt(&format!("{head} {zero} refs/heads/main\0report-status")).into_bytes(), None, "ended before its command list"),
        (format!("{}0000", pkt(&format!("{head} {zero} refs/heads/main\0report-status"))).into_bytes(), Some("gzip"), "compressed"),
    ] {
        let r = post(body, encoding).await.unwrap();
        assert_eq!(r.status(), 400);
        let text = r.text().await.unwrap();
        assert!(text.starts_with("jit: ") && text.contains(says), "{says}: {text}");
    }
    // main was never deleted, and the refusals are in the log.
    let still = std::process::Command::new("git")
        .args(["--git-dir", b.dir.path().join("repos/demo.git").to_str().unwrap(), "rev-parse", "main"])
        .output()
        .unwrap();
    assert!(still.status.success());
    let audit = b.audit().await;
    assert!(audit.iter().all(|e| e["action"] != "git_push"));
    assert!(audit.iter().any(|e| e["action"] == "git_refused" && e["detail"].as_str().unwrap().contains("unreadable push")));
}

#[tokio::test]
async fn hidden_and_direction_changing_characters_never_reach_an_approver() {
    let b = TestBroker::start().await;
    for reason in ["fix \u{202E}gnp.exe", "zero\u{200B}width", "isolate\u{2066}x\u{2069}"] {
        let r = b.post("alice", "/v1/requests", json!({"repo": "demo", "level": "write", "duration": "1h", "reason": reason})).await;
        assert_eq!((r.status, r.code()), (400, "invalid_input"), "{reason:?}");
        assert!(r.message().contains("invisible or direction-changing character (U+"), "{}", r.message());
    }
    let id = b.request("alice", "demo", "write", "1h", Some("ok")).await["id"].as_i64().unwrap();
    let r = b.post("bob", &format!("/v1/requests/{id}/approve"), json!({"comment": "looks \u{202E}doog"})).await;
    assert_eq!((r.status, r.code()), (400, "invalid_input"));
    assert_eq!(b.get("alice", "/v1/requests?status=pending").await.body.as_array().unwrap().len(), 1, "nothing decided");
}

#[tokio::test]
async fn names_that_could_confuse_are_refused_everywhere() {
    let b = TestBroker::start().await;
    for name in [".", "..", ".hidden", "-rf", "a\nb", "broker"] {
        let r = b.post("admin", "/v1/users", json!({"name": name})).await;
        assert_eq!((r.status, r.code()), (400, "invalid_input"), "{name:?}: {}", r.body);
    }
    let r = b.post("admin", "/v1/users", json!({"name": "ok", "groups": [".."]})).await;
    assert_eq!(r.status, 400);
    // --init-admin goes through the same door.
    for name in ["..", "broker", "a b"] {
        let dir = tempfile::tempdir().unwrap();
        let out =
            Command::new(env!("CARGO_BIN_EXE_jit")).args(["server", "--init-admin", name, "--data-dir"]).arg(dir.path()).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{name:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(out.stdout.is_empty(), "no token printed for {name:?}");
    }
}

#[test]
fn a_rule_that_could_never_pass_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("jit.toml");
    std::fs::write(
        &config,
        "[[repo]]\nname = \"x\"\n\n[[rule]]\nrepos = [\"x\"]\nlevels = [\"write\"]\nrequesters = [\"alice\"]\napprovers = [\"alice\"]\nmax_duration = \"1h\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_jit"))
        .args(["server", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 4") && stderr.contains("alice may request but could never be approved"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_helpers_url_key_gets_the_same_exact_match_rules_as_path() {
    let b = TestBroker::start_gateway("1h").await;
    let env = cli_env(&b);
    env.login(&b.url, b.token("alice")).success();
    env.run(&["request", "demo", "--level", "read", "--for", "1h"]).success();
    let host = b.url.trim_start_matches("http://");
    let exact = env.run_helper("get", &format!("url=http://{host}/git/demo.git\n\n"));
    let password = exact.stdout.lines().find_map(|l| l.strip_prefix("password=")).expect("the exact URL is answered").to_string();
    env.secret(&password);
    for url in [
        format!("http://{host}/git/x/../demo.git"),
        format!("http://{host}/git/./demo.git"),
        format!("http://{host}/git/%2e%2e/git/demo.git"),
        format!("http://{host}/git/demo.git?x=1"),
        format!("http://{host}/git/demo.git#x"),
        format!("http://@{host}/git/demo.git"),
        format!("http://{host}/git\\demo.git"),
        format!("http://{host}/git/demo/.git"),
    ] {
        let run = env.run_helper("get", &format!("url={url}\n\n"));
        assert_eq!((run.code, run.stdout.as_str()), (0, ""), "answered {url}");
    }
    let run = env.run_helper("get", &format!("protocol=http\nhost={host}\npath=git/demo/.git\n\n"));
    assert_eq!(run.stdout, "", "path=git/demo/.git is not demo.git");
}

/// A write grant and a gateway password for `user` on demo (bob approves).
async fn write_password(b: &TestBroker, user: &str) -> (i64, String) {
    let id = b.request(user, "demo", "write", "1h", Some("work")).await["id"].as_i64().unwrap();
    let grant = b.approve("bob", id).await.body["grant"]["id"].as_i64().unwrap();
    let cred = b.post(user, &format!("/v1/grants/{grant}/credentials"), json!({})).await;
    (grant, cred.body["password"].as_str().unwrap().to_string())
}

async fn receive_pack_status(b: &TestBroker, user: &str, password: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("{}/git/demo.git/info/refs?service=git-receive-pack", b.url))
        .basic_auth(user, Some(password))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn removing_a_user_ends_their_git_access_at_once() {
    // Regression: after DELETE /v1/users/alice her grants stayed active and a
    // credential minted before still pushed.
    let b = TestBroker::start_gateway("1h").await;
    let (grant, password) = write_password(&b, "alice").await;
    let pending = b.request("alice", "demo", "admin", "1h", None).await["id"].as_i64().unwrap();
    assert_eq!(receive_pack_status(&b, "alice", &password).await, 200);
    let r = b.send(Method::DELETE, "/v1/users/alice", Some(b.token("admin")), None).await;
    assert_eq!(r.status, 204);
    assert_eq!(receive_pack_status(&b, "alice", &password).await, 401, "the gateway checks the user on every request");
    // The same refusal from the same place again at once: still one event.
    assert_eq!(receive_pack_status(&b, "alice", &password).await, 401);
    let g = b.get("admin", &format!("/v1/grants/{grant}")).await.body;
    assert_eq!((g["status"].as_str(), g["revoked_by"].as_str()), (Some("revoked"), Some("admin")));
    assert_eq!(b.get("admin", &format!("/v1/requests/{pending}")).await.body["status"], "canceled");
    let audit = b.audit().await;
    // The refusals, and the rest without the failed-login summary (written every 200 ms here, whenever it falls).
    let (refused, audit): (Vec<_>, Vec<_>) =
        audit.into_iter().filter(|e| e["action"] != "auth_failures").partition(|e| e["action"] == "git_refused");
    let tail: Vec<(&str, &str)> =
        audit.iter().rev().take(3).rev().map(|e| (e["action"].as_str().unwrap(), e["detail"].as_str().unwrap_or(""))).collect();
    assert_eq!(tail, [("revoked", "user alice removed"), ("canceled", "user alice removed"), ("user_removed", "alice")]);
    assert!(audit.iter().all(|e| e["action"] != "git_push"));
    // The refused attempt afterwards is in the log, under the name it presented.
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["actor"], "alice");
    assert!(refused[0]["detail"].as_str().unwrap().contains("git-receive-pack from"), "{}", refused[0]);
}

#[tokio::test]
async fn rotating_a_token_revokes_the_credentials_minted_under_the_old_one() {
    let b = TestBroker::start_gateway("1h").await;
    let (_, password) = write_password(&b, "alice").await;
    let rotated = b.post("admin", "/v1/users/alice/token", json!({})).await;
    assert_eq!(rotated.status, 200);
    assert_eq!(receive_pack_status(&b, "alice", &password).await, 401);
    let event = b.audit().await.into_iter().rev().find(|e| e["action"] == "token_rotated").unwrap();
    assert!(event["detail"].as_str().unwrap().contains("1 git credential(s) minted under the old token revoked"), "{event}");
}

#[tokio::test]
async fn a_name_reused_after_removal_starts_with_nothing() {
    // Regression: a user re-added under a removed user's name inherited the
    // old grants and could mint credentials for them.
    let b = TestBroker::start_gateway("1h").await;
    let (old_grant, _) = write_password(&b, "dave").await;
    let old_request = b.get("admin", &format!("/v1/grants/{old_grant}")).await.body["request_id"].as_i64().unwrap();
    b.send(Method::DELETE, "/v1/users/dave", Some(b.token("admin")), None).await;
    let added = b.post("admin", "/v1/users", json!({"name": "dave", "groups": ["developers"]})).await;
    assert_eq!(added.status, 201);
    let token = added.body["token"].as_str().unwrap().to_string();
    let grants = b.send(Method::GET, "/v1/grants", Some(&token), None).await;
    assert_eq!(grants.body, json!([]));
    let mine = b.send(Method::GET, "/v1/requests?mine=true", Some(&token), None).await;
    assert_eq!(mine.body, json!([]));
    let old = b.send(Method::GET, &format!("/v1/requests/{old_request}"), Some(&token), None).await;
    assert_eq!(old.status, 404);
    let mint = b.send(Method::POST, &format!("/v1/grants/{old_grant}/credentials"), Some(&token), Some(json!({}))).await;
    assert_eq!((mint.status, mint.code()), (404, "not_found"));
}

pub(crate) fn serve_once(dir: &std::path::Path) -> std::process::Output {
    let config = dir.join("jit.toml");
    std::fs::write(&config, crate::common::POLICY).unwrap();
    let mut child = crate::common::process::server_on(dir)
        .args(["server", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Bounded: a broker that starts instead of refusing is killed and fails the test.
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() && started.elapsed() < std::time::Duration::from_secs(10) {
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    let _ = child.kill();
    child.wait_with_output().unwrap()
}

#[tokio::test]
async fn an_emptied_database_stops_start_up_instead_of_starting_afresh() {
    // Regression: a zero-length jit.db started a fresh, empty broker (history gone).
    crate::sqlite_only!();
    let mut b = TestBroker::start().await;
    b.request("alice", "demo", "read", "1h", None).await;
    if let Some(h) = b.handle.take() {
        h.shutdown().await.unwrap();
    }
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", b.db_path().display()));
    }
    std::fs::write(b.db_path(), b"").unwrap();
    let out = serve_once(b.dir.path());
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is missing or empty, but this data dir held database") && stderr.contains("backup"), "{stderr}");
    assert_eq!(std::fs::metadata(b.db_path()).unwrap().len(), 0, "nothing was created in its place");
}

#[cfg(unix)]
#[tokio::test]
async fn a_world_readable_data_dir_is_made_private() {
    use std::os::unix::fs::PermissionsExt;
    let mut b = TestBroker::start().await;
    std::fs::set_permissions(b.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let sqlite = !crate::common::postgres::enabled();
    if sqlite {
        std::fs::set_permissions(b.db_path(), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    b.restart().await;
    assert_eq!(std::fs::metadata(b.dir.path()).unwrap().permissions().mode() & 0o777, 0o700);
    if sqlite {
        assert_eq!(std::fs::metadata(b.db_path()).unwrap().permissions().mode() & 0o777, 0o600);
    }
}

#[tokio::test]
async fn healthz_tells_the_truth_about_the_database() {
    let b = TestBroker::start().await;
    let health = reqwest::get(format!("{}/healthz", b.url)).await.unwrap();
    assert_eq!(health.status(), 200);
    // A table lost under a running broker: /healthz must not say ok.
    b.execute("DROP TABLE approvals", "DROP TABLE approvals").await;
    let health = reqwest::get(format!("{}/healthz", b.url)).await.unwrap();
    assert_eq!(health.status(), 503);
    let body: serde_json::Value = health.json().await.unwrap();
    assert_eq!((body["status"].as_str(), body["problem"].as_str()), (Some("unhealthy"), Some("the database is unavailable")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_audit_tail_is_named_not_passed() {
    // Regression: delete the last events and `jit audit verify` (server or
    // --file) said intact; an empty export verified.
    let mut b = TestBroker::start().await;
    let id = b.request("alice", "demo", "write", "1h", Some("fix")).await["id"].as_i64().unwrap();
    b.approve("bob", id).await;
    let env = cli_env(&b);
    let admin = [("JIT_SERVER", b.url.as_str()), ("JIT_TOKEN", b.token("admin"))];
    let key = env.run_with(&["audit", "key"], &admin, None).success().stdout.trim().to_string();
    let export = env.run_with(&["audit", "--json"], &admin, None).success().stdout.clone();
    let whole = env.write("whole.jsonl", &export);
    let ok = env.run_with(&["audit", "verify", "--file", whole.to_str().unwrap(), "--key", &key], &[], None);
    assert!(ok.success().stdout.contains("reaches the checkpoint the broker signed"), "{}", ok.stdout);
    let total = export.lines().count() - 1;

    // The export with its last two events cut.
    let mut lines: Vec<&str> = export.lines().collect();
    let checkpoint_line = lines.pop().unwrap();
    let cut: Vec<&str> = lines[..total - 2].iter().copied().chain([checkpoint_line]).collect();
    let cut = env.write("cut.jsonl", &(cut.join("\n") + "\n"));
    env.run(&["audit", "verify", "--file", cut.to_str().unwrap()]).code(1).stderr_has(&format!(
        "events {}..={} are missing",
        total - 1,
        total
    ));
    // Empty, or with the checkpoint line gone too: nothing shows the log is whole.
    for text in ["", &(lines[..total - 2].join("\n") + "\n")] {
        let f = env.write("bare.jsonl", text);
        env.run(&["audit", "verify", "--file", f.to_str().unwrap()]).code(1).stderr_has("no signed checkpoint");
    }
    // Another key than the broker's: refused.
    let other = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    env.run(&["audit", "verify", "--file", whole.to_str().unwrap(), "--key", other]).code(1).stderr_has("does not verify");

    // The same cut in the broker's own database: verify says so, and a restart refuses.
    b.execute(
        &format!("DROP TRIGGER audit_events_no_delete; DELETE FROM audit_events WHERE seq > {};", total - 2),
        &format!(
            "ALTER TABLE audit_events DISABLE TRIGGER USER; DELETE FROM audit_events WHERE seq > {};
             ALTER TABLE audit_events ENABLE TRIGGER USER;",
            total - 2
        ),
    )
    .await;
    let v = b.get("admin", "/v1/audit/verify").await.body;
    assert_eq!(v["ok"], false);
    assert!(v["error"].as_str().unwrap().contains("are missing"), "{v}");
    env.run_with(&["audit", "verify"], &admin, None).code(1).stderr_has(&format!("events {}..={} are missing", total - 1, total));
    if let Some(h) = b.handle.take() {
        h.shutdown().await.unwrap();
    }
    let out = serve_once(b.dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("events were removed from its end"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_earlier_export_catches_a_rolled_back_log() {
    let b = TestBroker::start().await;
    let env = cli_env(&b);
    let admin = [("JIT_SERVER", b.url.as_str()), ("JIT_TOKEN", b.token("admin"))];
    b.request("alice", "demo", "read", "1h", None).await;
    let earlier = env.write("earlier.jsonl", &env.run_with(&["audit", "--json"], &admin, None).success().stdout);
    b.request("dave", "demo", "read", "1h", None).await;
    let now = env.write("now.jsonl", &env.run_with(&["audit", "--json"], &admin, None).success().stdout);
    env.run(&["audit", "verify", "--file", now.to_str().unwrap(), "--pin", earlier.to_str().unwrap()]).success();
    // Rolled back to the earlier state, the log is consistent in itself (an
    // older checkpoint still signs it)...
    env.run(&["audit", "verify", "--file", earlier.to_str().unwrap()]).success();
    // ...but not with a checkpoint kept from later.
    let n = std::fs::read_to_string(&earlier).unwrap().lines().count() - 1;
    env.run(&["audit", "verify", "--file", earlier.to_str().unwrap(), "--pin", now.to_str().unwrap()])
        .code(1)
        .stderr_has(&format!("events {}..=", n + 1))
        .stderr_has("are missing");
}

#[tokio::test]
async fn guessing_tokens_is_throttled_logged_and_summarised() {
    // Regression: hundreds of bad bearer or Basic attempts produced only 401s and no trace.
    let b = TestBroker::start_gateway("1h").await;
    for i in 0..10 {
        let r = b.send(Method::GET, "/v1/whoami", Some(&format!("jit_guess{i}")), None).await;
        assert_eq!(r.status, 401, "{i}");
    }
    // The eleventh guess is refused with a wait; a real token from the same
    // source still passes (hardening round two, finding 9: others' failures
    // never lock a valid credential out).
    let real = reqwest::Client::new().get(format!("{}/v1/whoami", b.url)).bearer_auth(b.token("alice")).send().await.unwrap();
    assert_eq!(real.status(), 200);
    let raw = reqwest::Client::new().get(format!("{}/v1/whoami", b.url)).bearer_auth("jit_guess10").send().await.unwrap();
    assert_eq!(raw.status(), 429);
    let retry: u64 = raw.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let body: serde_json::Value = raw.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    // An admin sees the attack in the log, summarised (at most one summary per
    // interval, here 200 ms, so a slow run may split the ten over two).
    let summarised = |events: &Vec<serde_json::Value>| -> u64 {
        events
            .iter()
            .filter(|e| e["action"] == "auth_failures")
            .map(|e| e["detail"].as_str().unwrap().split(' ').next().unwrap().parse::<u64>().unwrap())
            .sum()
    };
    let events = crate::common::eventually(|| db_audit(&b), |e| summarised(e) >= 11).await;
    assert_eq!(summarised(&events), 11, "{events:?}");
    for summary in events.iter().filter(|e| e["action"] == "auth_failures") {
        let detail = summary["detail"].as_str().unwrap();
        assert!(detail.contains("failed authentication(s) from 1 source(s)") && detail.contains("127.0.0.1: "), "{detail}");
        assert!(detail.contains("(unknown token ×"), "{detail}");
    }
    assert!(!events.iter().any(|e| e.to_string().contains("jit_guess")), "no guessed token in the log");
}

/// The audit log read straight from the database (the API is throttled for this source).
async fn db_audit(b: &TestBroker) -> Vec<serde_json::Value> {
    let rows = b.query_text("SELECT actor, action, detail FROM audit_events ORDER BY seq").await;
    rows.into_iter().map(|r| json!({"actor": r[0], "action": r[1], "detail": r[2]})).collect()
}

/// Regression (hardening round two, finding 9): ten bad passwords a minute
/// under alice's name, from anywhere, made her valid credential answer 429.
#[tokio::test]
async fn guessing_a_gateway_password_is_throttled_and_never_locks_out_the_real_one() {
    let b = TestBroker::start_gateway("1h").await;
    let password = read_password(&b).await;
    let refs = format!("{}/git/demo.git/info/refs?service=git-upload-pack", b.url);
    let from = |source: &str| reqwest::Client::builder().local_address(source.parse::<std::net::IpAddr>().unwrap()).build().unwrap();
    let (attacker, alice) = (from("127.0.0.2"), from("127.0.0.1"));
    for i in 0..10 {
        let r = attacker.get(&refs).basic_auth("alice", Some(format!("jitgw_guess{i}"))).send().await.unwrap();
        assert_eq!(r.status(), 401, "{i}");
    }
    let r = attacker.get(&refs).basic_auth("alice", Some("jitgw_guess10")).send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    assert!(r.text().await.unwrap().starts_with("jit: too many failed logins"));
    // Alice, from her own address and even from the attacker's, is let in.
    assert_eq!(alice.get(&refs).basic_auth("alice", Some(&password)).send().await.unwrap().status(), 200);
    assert_eq!(attacker.get(&refs).basic_auth("alice", Some(&password)).send().await.unwrap().status(), 200);
    // A wrong password from alice's own address is not held up by the attacker's failures.
    assert_eq!(alice.get(&refs).basic_auth("alice", Some("jitgw_typo")).send().await.unwrap().status(), 401);
}

#[tokio::test]
async fn one_credential_cannot_flood_the_gateway() {
    // Regression: a read-grant holder looping info/refs added 3,689 audit events in 20 s.
    let policy = crate::common::POLICY
        .replace("[server]\n", "[server]\ngit_requests_per_second = 1\n")
        .replace("[[repo]]\nname = \"demo\"\nurl = \"http://127.0.0.1:9/git/demo.git\"\n", "[gateway]\nrepos_dir = \"{data_dir}/repos\"\n");
    let b = TestBroker::start_with_repos(&policy, &[]).await;
    let password = read_password(&b).await;
    let http = reqwest::Client::new();
    let mut statuses = Vec::new();
    let started = std::time::Instant::now();
    for _ in 0..15 {
        let r = http
            .post(format!("{}/git/demo.git/git-upload-pack", b.url))
            .basic_auth("alice", Some(&password))
            .header("Content-Type", "application/x-git-upload-pack-request")
            .header("Git-Protocol", "version=2")
            .body(format!("{}0000", pkt("command=ls-refs\n")))
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    // A burst of ten, then the rate (1/s: a slow run earns one more a second).
    let elapsed = started.elapsed();
    let passed = statuses.iter().filter(|s| **s == 200).count();
    assert!((10..=10 + elapsed.as_secs() as usize + 1).contains(&passed), "{statuses:?} in {elapsed:?}");
    assert!(statuses[..10].iter().all(|s| *s == 200) && statuses.last() == Some(&429), "{statuses:?}");
    // Fetches within the coalescing window (2 s) are one event.
    let fetches = b.audit().await.into_iter().filter(|e| e["action"] == "git_fetch").count();
    assert!(fetches <= 1 + (elapsed.as_secs() / 2) as usize, "{fetches} events for fetches within {elapsed:?}");
}

#[tokio::test]
async fn a_rule_may_confine_its_grants_to_networks() {
    let restricted = |extra_server: &str| {
        crate::common::POLICY
            .replace("[server]\n", &format!("[server]\n{extra_server}"))
            .replace(
                "[[repo]]\nname = \"demo\"\nurl = \"http://127.0.0.1:9/git/demo.git\"\n",
                "[gateway]\nrepos_dir = \"{data_dir}/repos\"\n",
            )
            .replace("name = \"demo-read\"\n", "name = \"demo-read\"\nfrom = [\"10.0.0.0/8\"]\n")
    };
    // Directly from 127.0.0.1: outside 10.0.0.0/8.
    let b = TestBroker::start_with_repos(&restricted(""), &[]).await;
    let grant = b.request("alice", "demo", "read", "1h", None).await["grant"]["id"].as_i64().unwrap();
    let r = b.post("alice", &format!("/v1/grants/{grant}/credentials"), json!({})).await;
    assert_eq!((r.status, r.code()), (403, "forbidden"));
    assert!(
        r.message().contains("can be used only from 10.0.0.0/8 (rule `demo-read`); this request came from 127.0.0.1"),
        "{}",
        r.message()
    );
    // A forwarded-for header from a peer that is not a trusted proxy changes nothing.
    let raw = b.mint_forwarded_for("alice", grant, "10.1.2.3").await;
    assert_eq!(raw.status(), 403);
    assert_eq!(b.audit().await.into_iter().filter(|e| e["action"] == "credential_refused").count(), 2);

    // Behind a trusted proxy, the address it saw counts, on minting and on every git request.
    let b = TestBroker::start_with_repos(&restricted("trusted_proxies = [\"127.0.0.1\"]\n"), &[]).await;
    let grant = b.request("alice", "demo", "read", "1h", None).await["grant"]["id"].as_i64().unwrap();
    let http = reqwest::Client::new();
    let minted = b.mint_forwarded_for("alice", grant, "10.1.2.3").await;
    assert_eq!(minted.status(), 201);
    let password = minted.json::<serde_json::Value>().await.unwrap()["password"].as_str().unwrap().to_string();
    let refs = format!("{}/git/demo.git/info/refs?service=git-upload-pack", b.url);
    let inside = http.get(&refs).basic_auth("alice", Some(&password)).header("X-Forwarded-For", "10.1.2.3").send().await.unwrap();
    assert_eq!(inside.status(), 200);
    let outside = http.get(&refs).basic_auth("alice", Some(&password)).header("X-Forwarded-For", "192.0.2.9").send().await.unwrap();
    assert_eq!(outside.status(), 403);
    assert!(outside.text().await.unwrap().contains("this request came from 192.0.2.9"));
    let refused: Vec<_> = b.audit().await.into_iter().filter(|e| e["action"] == "git_refused").collect();
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["actor"], "alice");
    assert!(refused[0]["detail"].as_str().unwrap().contains("from 192.0.2.9: outside the rule's networks"), "{}", refused[0]);

    // Regression (hardening round two, finding 2): a client's own header line
    // ahead of the one the proxy appended was read as the address.
    let appended = http
        .get(&refs)
        .basic_auth("alice", Some(&password))
        .header("X-Forwarded-For", "10.1.2.3")
        .header("X-Forwarded-For", "192.0.2.9")
        .send()
        .await
        .unwrap();
    assert_eq!(appended.status(), 403);
    assert!(appended.text().await.unwrap().contains("this request came from 192.0.2.9"));
    // A hop that is no address is refused, never taken for the proxy's own.
    let unknown = http.get(&refs).basic_auth("alice", Some(&password)).header("X-Forwarded-For", "unknown").send().await.unwrap();
    assert_eq!(unknown.status(), 400);
    assert!(unknown.text().await.unwrap().contains("forwarded for `unknown`, which is not an IP address"));
}

#[tokio::test]
async fn gits_probe_before_a_large_push_passes_and_nothing_else_does_without_credentials() {
    // Git POSTs a lone flush packet before streaming a large push, without the
    // pre-encoded credential its helper gave; it must pass, or the push fails.
    let b = TestBroker::start_gateway("1h").await;
    let post = |path: String, body: &'static [u8]| {
        reqwest::Client::new()
            .post(format!("{}{path}", b.url))
            .header("content-type", "application/x-git-receive-pack-request")
            .body(body)
            .send()
    };
    let probe = post("/git/demo.git/git-receive-pack".into(), b"0000").await.unwrap();
    assert_eq!(probe.status(), 200);
    assert_eq!(probe.headers()["content-type"], "application/x-git-receive-pack-result");
    assert!(probe.bytes().await.unwrap().is_empty(), "a probe learns nothing");
    for (path, body) in [("/git/demo.git/git-receive-pack", &b"0001"[..]), ("/git/demo.git/git-upload-pack", b"00")] {
        assert_eq!(post(path.into(), body).await.unwrap().status(), 401, "{path} {body:?}");
    }
    assert_eq!(post("/git/nope.git/git-receive-pack".into(), b"0000").await.unwrap().status(), 404);
    assert!(b.audit().await.iter().all(|e| !e["action"].as_str().unwrap().starts_with("git_push")));
}
