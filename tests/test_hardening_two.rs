//! Findings of the second attack pass (issue "Hardening, round two"), each
//! pinned by a test that failed on the code before its fix.

use std::path::Path;
use std::process::Command;

use serde_json::json;

use crate::common::upstream::TestUpstream;
use crate::common::{TestBroker, release_only_policy};

const ZERO: &str = "0000000000000000000000000000000000000000";

fn pkt(payload: &str) -> Vec<u8> {
    let mut out = format!("{:04x}", payload.len() + 4).into_bytes();
    out.extend_from_slice(payload.as_bytes());
    out
}

fn git_dir(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new("git").arg("--git-dir").arg(dir).args(args).env("GIT_CONFIG_GLOBAL", "/dev/null").output().unwrap()
}

fn rev(dir: &Path, name: &str) -> Option<String> {
    let out = git_dir(dir, &["rev-parse", "--verify", "-q", name]);
    out.status.success().then(|| String::from_utf8(out.stdout).unwrap().trim().to_string())
}

/// A gateway password for `user`'s write grant on `repo`, approved by bob: (grant, password).
async fn write_grant(b: &TestBroker, user: &str, repo: &str) -> (i64, String) {
    let id = b.request(user, repo, "write", "1h", Some("work")).await["id"].as_i64().unwrap();
    let approved = b.approve("bob", id).await;
    assert_eq!(approved.status, 200, "{}", approved.body);
    let grant = approved.body["grant"]["id"].as_i64().unwrap();
    let cred = b.post(user, &format!("/v1/grants/{grant}/credentials"), json!({})).await;
    assert_eq!(cred.status, 201, "{}", cred.body);
    (grant, cred.body["password"].as_str().unwrap().to_string())
}

/// The three ways of hiding a command in a push certificate that the attack
/// pass found, each deleting `main` under cover of an update inside the grant's
/// refs (or of nothing at all).
fn certificate_pushes(main: &str, allowed: &str) -> Vec<Vec<u8>> {
    let hidden = format!("{main} {ZERO} refs/heads/main");
    let head = |extra: &str| format!("certificate version 0.1\npusher x 0 +0000\nnonce n\n{extra}");
    let encodings = [
        vec![head(&format!("\n{hidden}\n"))],
        vec![head(""), "\n".into(), format!("{ZERO} {main} {allowed}"), "-----BEGIN x\n".into(), format!("{hidden}\n")],
        vec![head(""), format!("\n{hidden}"), "\n".into()],
    ];
    encodings
        .into_iter()
        .map(|cert| {
            let mut body = pkt("push-cert\0report-status");
            for line in cert.iter().chain(&[
                "-----BEGIN PGP SIGNATURE-----\n".to_string(),
                "iQEzBAABCAAdFiEE\n".into(),
                "-----END PGP SIGNATURE-----\n".into(),
                "push-cert-end\n".into(),
            ]) {
                body.extend(pkt(line));
            }
            body.extend_from_slice(b"0000");
            body
        })
        .collect()
}

async fn post_push(url: &str, user: &str, password: &str, body: Vec<u8>) -> (u16, String) {
    let r = reqwest::Client::new()
        .post(url)
        .basic_auth(user, Some(password))
        .header("Content-Type", "application/x-git-receive-pack-request")
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn assert_certificates_refused(b: &TestBroker, push_url: &str, user: &str, password: &str, repo_dir: &Path) {
    let main = rev(repo_dir, "main").expect("main");
    for (i, body) in certificate_pushes(&main, "refs/heads/release/x").into_iter().enumerate() {
        let (status, text) = post_push(push_url, user, password, body).await;
        assert_eq!(status, 400, "encoding {i}: {text}");
        assert!(text.contains("signed pushes are not accepted"), "encoding {i}: {text}");
        assert_eq!(rev(repo_dir, "main").as_deref(), Some(main.as_str()), "encoding {i} moved main");
        assert_eq!(rev(repo_dir, "release/x"), None, "encoding {i} created a ref");
    }
    let audit = b.audit().await;
    assert!(audit.iter().all(|e| e["action"] != "git_push"), "{audit:?}");
    let refused = audit.iter().filter(|e| e["action"] == "git_refused").collect::<Vec<_>>();
    assert!(refused.iter().any(|e| e["detail"].as_str().unwrap().contains("signed push")), "{refused:?}");
}

#[tokio::test]
async fn a_push_certificate_cannot_hide_a_command_from_a_local_repos_gateway() {
    let b = TestBroker::start_with(&release_only_policy()).await;
    let (_, password) = write_grant(&b, "alice", "demo").await;
    let repo_dir = b.dir.path().join("repos/demo.git");
    assert_certificates_refused(&b, &format!("{}/git/demo.git/git-receive-pack", b.url), "alice", &password, &repo_dir).await;
}

#[tokio::test]
async fn a_push_certificate_cannot_hide_a_command_from_an_upstream_host() {
    let upstream = TestUpstream::start(&["acme/api"]);
    let scoped = upstream.fronting_policy().replace(
        "name = \"api-write\"\nrepos = [\"acme/api\"]\nlevels = [\"write\"]\n",
        "name = \"api-write\"\nrepos = [\"acme/api\"]\nlevels = [\"write\"]\nrefs = [\"release/*\"]\nallow_deletes = true\n",
    );
    assert_ne!(scoped, upstream.fronting_policy());
    let b = TestBroker::start_with(&scoped).await;
    let (_, password) = write_grant(&b, "alice", "acme/api").await;
    let url = format!("{}/git/acme/api.git/git-receive-pack", b.url);
    assert_certificates_refused(&b, &url, "alice", &password, &upstream.repo_dir("acme/api")).await;
}

/// A pack holding one new commit on top of `base` in `bare`, and the commit:
/// made in a scratch clone, so `bare` itself does not have the objects.
fn new_commit_pack(bare: &Path, scratch: &Path) -> (Vec<u8>, String) {
    let ok = |out: std::process::Output| assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    ok(Command::new("git").args(["clone", "-q"]).arg(bare).arg(scratch).output().unwrap());
    std::fs::write(scratch.join("LATE.md"), "late\n").unwrap();
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(scratch)
            .args(["-c", "user.name=t", "-c", "user.email=t@localhost"])
            .args(args)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .output()
            .unwrap()
    };
    ok(git(&["add", "LATE.md"]));
    ok(git(&["commit", "-qm", "late"]));
    let head = String::from_utf8(git(&["rev-parse", "HEAD"]).stdout).unwrap().trim().to_string();
    let mut pack = Command::new("git")
        .arg("-C")
        .arg(scratch)
        .args(["pack-objects", "--stdout", "--revs", "-q"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    pack.stdin.take().unwrap().write_all(b"HEAD\n^origin/main\n").unwrap();
    let out = pack.wait_with_output().unwrap();
    assert!(out.status.success());
    (out.stdout, head)
}

/// Sends a push's command list, then (after `between` has run) its pack, on one streaming request.
async fn push_in_two_parts(url: &str, user: &str, password: &str, commands: Vec<u8>, pack: Vec<u8>, between: impl AsyncFnOnce()) -> String {
    let (send, receive) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let stream = futures_util::stream::unfold(receive, |mut r| async move { r.recv().await.map(|item| (item, r)) });
    // With its length, as git sends a push that fits its buffer.
    let request = reqwest::Client::new()
        .post(url)
        .basic_auth(user, Some(password))
        .header("Content-Type", "application/x-git-receive-pack-request")
        .header("Content-Length", commands.len() + pack.len())
        .body(reqwest::Body::wrap_stream(stream))
        .send();
    let response = tokio::spawn(request);
    send.send(Ok(commands)).await.unwrap();
    between().await;
    send.send(Ok(pack)).await.unwrap();
    drop(send);
    // A push cut off must still be answered (the backend was once left waiting for the rest).
    let answer = async {
        match response.await.unwrap() {
            Ok(r) => r.text().await.unwrap_or_else(|e| format!("answer cut: {e}")),
            Err(e) => format!("request failed: {e}"),
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(20), answer).await.expect("the push got no answer within 20 s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_whose_grant_ends_while_its_pack_is_in_flight_does_not_land() {
    let b = TestBroker::start_with(&release_only_policy()).await;
    let bare = b.dir.path().join("repos/demo.git");
    let scratch = tempfile::tempdir().unwrap();
    let (pack, commit) = new_commit_pack(&bare, &scratch.path().join("work"));
    let url = format!("{}/git/demo.git/git-receive-pack", b.url);
    let commands = |name: &str| {
        let mut c = pkt(&format!("{ZERO} {commit} refs/heads/release/{name}\0report-status"));
        c.extend_from_slice(b"0000");
        c
    };

    // The same push with the grant standing lands: the pack is good.
    let (_, password) = write_grant(&b, "alice", "demo").await;
    let answer = push_in_two_parts(&url, "alice", &password, commands("on-time"), pack.clone(), async || {}).await;
    assert!(answer.contains("ok refs/heads/release/on-time"), "{answer}");
    assert_eq!(rev(&bare, "release/on-time").as_deref(), Some(commit.as_str()));

    // Revoked between its command list and its pack: nothing lands.
    let (grant, password) = write_grant(&b, "dave", "demo").await;
    let revoke_once_in = async || {
        // The push is in: its event is written before a byte reaches the repository.
        let pushed = |events: &Vec<serde_json::Value>| events.iter().any(|e| e["action"] == "git_push" && e["actor"] == "dave");
        crate::common::eventually(|| b.audit(), pushed).await;
        let r = b.post("admin", &format!("/v1/grants/{grant}/revoke"), json!({"reason": "mid-push"})).await;
        assert_eq!(r.status, 200, "{}", r.body);
    };
    let answer = push_in_two_parts(&url, "dave", &password, commands("late"), pack, revoke_once_in).await;
    assert!(!answer.contains("ok refs/heads/release/late"), "{answer}");
    assert_eq!(rev(&bare, "release/late"), None, "the ref was created after the grant ended: {answer}");
    let audit = b.audit().await;
    assert!(
        audit.iter().any(|e| e["action"] == "git_refused"
            && e["actor"] == "dave"
            && e["detail"].as_str().unwrap().contains("ended while the push was in flight")),
        "{audit:?}"
    );
}

/// The broker on `dir` opened again in-process: its error, if it refuses.
async fn open_again(dir: &Path) -> Result<(), String> {
    let config = crate::common::config_for(crate::common::POLICY, dir);
    jit::server::Broker::open(config)
        .await
        .map(drop)
        .map_err(|e| format!("{e}: {}", std::error::Error::source(&e).map(|s| s.to_string()).unwrap_or_default()))
}

/// A broker with a few audited batches behind it, stopped once the marker
/// beside its database holds its latest checkpoint: (its dir, the checkpoint
/// seqs in order).
async fn stopped_broker_with_history() -> (TestBroker, Vec<i64>) {
    let mut b = TestBroker::start().await;
    for user in ["alice", "dave", "alice"] {
        b.request(user, "demo", "read", "1h", None).await;
    }
    let db = b.db();
    let mut stmt = db.prepare("SELECT seq FROM audit_checkpoints ORDER BY seq").unwrap();
    let seqs: Vec<i64> = stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
    let marker = b.dir.path().join("jit.db.id");
    let latest = format!("checkpoint {} ", seqs.last().unwrap());
    crate::common::eventually(|| async { std::fs::read_to_string(&marker).unwrap_or_default() }, |m: &String| m.contains(&latest)).await;
    if let Some(h) = b.handle.take() {
        h.shutdown().await.unwrap();
    }
    (b, seqs)
}

/// Regression (finding 4): with the newer checkpoint rows deleted too, a cut
/// tail matched the latest remaining checkpoint, and the broker started (and
/// then signed the shorter log).
#[tokio::test]
async fn a_cut_tail_with_its_checkpoints_deleted_stops_start_up() {
    crate::sqlite_only!();
    let (b, seqs) = stopped_broker_with_history().await;
    let keep = seqs[seqs.len() - 3];
    let db = b.db();
    for sql in [
        "DROP TRIGGER audit_events_no_delete".to_string(),
        "DROP TRIGGER audit_checkpoints_no_delete".to_string(),
        format!("DELETE FROM audit_events WHERE seq > {keep}"),
        format!("DELETE FROM audit_checkpoints WHERE seq > {keep}"),
    ] {
        db.execute_batch(&sql).unwrap();
    }
    drop(db);
    let refused = open_again(b.dir.path()).await.expect_err("a cut log must not start");
    assert!(
        refused.contains(&format!("reached event {}", seqs.last().unwrap())) && refused.contains("checkpoints were deleted"),
        "{refused}"
    );
    assert!(refused.contains("jit.db.id"), "it names where the mark is kept: {refused}");
}

/// Regression (finding 4): start-up compared the latest checkpoint with its
/// event but never checked its signature, so a re-chained log with a
/// checkpoint row written to match it started.
#[tokio::test]
async fn a_checkpoint_the_broker_did_not_sign_stops_start_up() {
    crate::sqlite_only!();
    let (b, seqs) = stopped_broker_with_history().await;
    let forged = format!("UPDATE audit_checkpoints SET signature = '{}' WHERE seq = {}", "A".repeat(86) + "==", seqs.last().unwrap());
    b.db().execute_batch(&format!("DROP TRIGGER audit_checkpoints_no_update; {forged};")).unwrap();
    let refused = open_again(b.dir.path()).await.expect_err("a forged checkpoint must not start");
    assert!(refused.contains("not signed with this broker's key"), "{refused}");
}

#[tokio::test]
async fn an_untouched_log_starts_and_keeps_its_mark() {
    crate::sqlite_only!();
    let (b, seqs) = stopped_broker_with_history().await;
    open_again(b.dir.path()).await.unwrap();
    let marker = std::fs::read_to_string(b.dir.path().join("jit.db.id")).unwrap();
    assert!(marker.lines().nth(1).unwrap().starts_with(&format!("checkpoint {} ", seqs.last().unwrap())), "{marker}");
    // A marker from before the mark was kept (its id only) is brought up to date.
    std::fs::write(b.dir.path().join("jit.db.id"), format!("{}\n", marker.lines().next().unwrap())).unwrap();
    open_again(b.dir.path()).await.unwrap();
    assert_eq!(std::fs::read_to_string(b.dir.path().join("jit.db.id")).unwrap(), marker);
}

/// Regression (finding 12): the signing key and the marker were written
/// through links planted in the data dir.
#[cfg(unix)]
#[tokio::test]
async fn private_files_are_never_reached_through_links() {
    let elsewhere = tempfile::tempdir().unwrap();
    let target = elsewhere.path().join("stolen.key");
    std::fs::write(&target, b"").unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(&target, dir.path().join("audit-signing.key")).unwrap();
    let refused = open_again(dir.path()).await.expect_err("a linked key must be refused");
    assert!(refused.contains("symbolic link"), "{refused}");
    assert_eq!(std::fs::read(&target).unwrap(), b"", "nothing was written through the link");

    // A dangling link: following it would create the key where the link points.
    let dir = tempfile::tempdir().unwrap();
    let planted = elsewhere.path().join("created-through-a-link.key");
    std::os::unix::fs::symlink(&planted, dir.path().join("audit-signing.key")).unwrap();
    assert!(open_again(dir.path()).await.is_err(), "a dangling link must be refused");
    assert!(!planted.exists(), "the key was written through the link");

    // The same for the marker beside SQLite's database, and for the data dir itself.
    crate::sqlite_only!();
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(&target, dir.path().join("jit.db.id")).unwrap();
    let refused = open_again(dir.path()).await.expect_err("a linked marker must be refused");
    assert!(refused.contains("symbolic link"), "{refused}");
    assert_eq!(std::fs::read(&target).unwrap(), b"");
    let real = tempfile::tempdir().unwrap();
    let link = elsewhere.path().join("data");
    std::os::unix::fs::symlink(real.path(), &link).unwrap();
    let refused = open_again(&link).await.expect_err("a linked data dir must be refused");
    assert!(refused.contains("symbolic link"), "{refused}");
}

/// Regression (finding 5): a file of invented events numbered after a
/// genuine checkpoint line "reached" it, and an export with its first events
/// removed verified.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_or_headless_export_does_not_verify() {
    use jit::domain::audit::{Action, AuditEvent, NewEvent};
    let b = TestBroker::start().await;
    for user in ["alice", "dave"] {
        b.request(user, "demo", "read", "1h", None).await;
    }
    let env = crate::common::cli_env(&b);
    let admin = [("JIT_SERVER", b.url.as_str()), ("JIT_TOKEN", b.token("admin"))];
    let export = env.run_with(&["audit", "--json"], &admin, None).success().stdout.clone();
    let mut lines: Vec<String> = export.lines().map(str::to_string).collect();
    let checkpoint_line = lines.pop().unwrap();
    let whole = env.write("whole.jsonl", &export);
    env.run(&["audit", "verify", "--file", whole.to_str().unwrap()]).success();

    // Three events chained onto the checkpoint's own hash, numbered after it.
    let checkpoint: serde_json::Value = serde_json::from_str(&checkpoint_line).unwrap();
    let (mut seq, mut prev) =
        (checkpoint["checkpoint"]["seq"].as_i64().unwrap(), checkpoint["checkpoint"]["hash"].as_str().unwrap().to_string());
    let mut invented = Vec::new();
    for _ in 0..3 {
        seq += 1;
        let e = AuditEvent::chain(&NewEvent::new("mallory", Action::Approved), seq, "2026-12-06T00:00:00.000Z".into(), &prev);
        prev = e.hash.clone();
        invented.push(serde_json::to_string(&e).unwrap());
    }
    invented.push(checkpoint_line.clone());
    let forged = env.write("forged.jsonl", &(invented.join("\n") + "\n"));
    env.run(&["audit", "verify", "--file", forged.to_str().unwrap()]).code(1).stderr_has("not 1");

    // The genuine export without its first two events.
    let headless: Vec<String> = lines[2..].iter().cloned().chain([checkpoint_line]).collect();
    let headless = env.write("headless.jsonl", &(headless.join("\n") + "\n"));
    env.run(&["audit", "verify", "--file", headless.to_str().unwrap()]).code(1).stderr_has("events start at 3, not 1");
}

/// Writes a request head and part of its body, then waits for the broker to
/// answer or close: how long that took, or `None` past `limit`.
async fn held_for(url: &str, head: &str, body_part: &[u8], limit: std::time::Duration) -> Option<std::time::Duration> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(url.trim_start_matches("http://")).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body_part).await.unwrap();
    let started = std::time::Instant::now();
    let mut buf = [0u8; 1024];
    // Whatever the broker does first — answer or close — ends the hold.
    match tokio::time::timeout(limit, stream.read(&mut buf)).await {
        Ok(_) => Some(started.elapsed()),
        Err(_) => None,
    }
}

/// Regression (finding 6): git's probe path read its 4-byte body with no
/// timeout, so unauthenticated connections could be held open for nothing.
#[tokio::test]
async fn an_unauthenticated_probe_that_stops_is_not_waited_for() {
    let b = TestBroker::start_gateway("1h").await;
    let limit = std::time::Duration::from_secs(15);
    let probe = "POST /git/demo.git/git-receive-pack HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-git-receive-pack-request\r\nContent-Length: 4\r\n\r\n";
    let held = held_for(&b.url, probe, b"00", limit).await.expect("the probe's connection was held past 15 s");
    assert!(held <= std::time::Duration::from_secs(8), "unauthenticated: the shortest wait, {held:?}");
}

#[tokio::test]
async fn a_body_that_stops_coming_is_not_waited_for() {
    let policy = crate::common::gateway_policy("1h").replace("[server]\n", "[server]\nbody_idle_timeout = \"1s\"\n");
    let b = TestBroker::start_with(&policy).await;
    let limit = std::time::Duration::from_secs(15);
    // An API body that stops halfway (the idle limit here is 1 s).
    let token = b.token("alice").to_string();
    let api = format!(
        "POST /v1/requests HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    );
    let held = held_for(&b.url, &api, b"{\"repo\": \"demo\",", limit).await.expect("a stalled body was waited for past 15 s");
    assert!(held <= std::time::Duration::from_secs(8), "{held:?}");
}

/// Regression (finding 7): a grant found its rule by name, so a policy change
/// (a rule's networks dropped, deletes allowed, a rule renamed into its
/// place) widened grants already live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_grant_keeps_the_terms_it_was_decided_under() {
    let policy = release_only_policy()
        .replace("allow_deletes = true\n", "")
        .replace("[server]\n", "[server]\ntrusted_proxies = [\"127.0.0.1\"]\n")
        .replace("name = \"demo-write\"\n", "name = \"demo-write\"\nfrom = [\"10.0.0.0/8\"]\n");
    let mut b = TestBroker::start_with(&policy).await;
    let id = b.request("alice", "demo", "write", "1h", Some("work")).await["id"].as_i64().unwrap();
    let grant = b.approve("bob", id).await.body["grant"]["id"].as_i64().unwrap();
    let http = reqwest::Client::new();
    let minted = b.mint_forwarded_for("alice", grant, "10.1.2.3").await;
    assert_eq!(minted.status(), 201);
    let password = minted.json::<serde_json::Value>().await.unwrap()["password"].as_str().unwrap().to_string();
    let bare = b.dir.path().join("repos/demo.git");
    git_dir(&bare, &["branch", "release/old", "main"]);
    let main = rev(&bare, "main").unwrap();

    // The rule now allows any network and deletes: the live grant keeps what it was given.
    b.policy = b
        .policy
        .replace("from = [\"10.0.0.0/8\"]\n", "")
        .replace("refs = [\"release/*\"]\n", "refs = [\"release/*\"]\nallow_deletes = true\n");
    b.restart().await;
    let refs = format!("{}/git/demo.git/info/refs?service=git-receive-pack", b.url);
    let outside = http.get(&refs).basic_auth("alice", Some(&password)).header("X-Forwarded-For", "192.0.2.9").send().await.unwrap();
    assert_eq!(outside.status(), 403, "the grant was widened to every network");
    let inside = http.get(&refs).basic_auth("alice", Some(&password)).header("X-Forwarded-For", "10.1.2.3").send().await.unwrap();
    assert_eq!(inside.status(), 200);
    let mut delete = pkt(&format!("{main} {ZERO} refs/heads/release/old\0report-status"));
    delete.extend_from_slice(b"0000");
    let pushed = http
        .post(format!("{}/git/demo.git/git-receive-pack", b.url))
        .basic_auth("alice", Some(&password))
        .header("X-Forwarded-For", "10.1.2.3")
        .header("Content-Type", "application/x-git-receive-pack-request")
        .body(delete)
        .send()
        .await
        .unwrap();
    let report = pushed.text().await.unwrap();
    assert!(report.contains("ng refs/heads/release/old"), "the grant was widened to deletes: {report}");
    assert_eq!(rev(&bare, "release/old").as_deref(), Some(main.as_str()));
}

/// Regression (finding 14): when a later grant superseded an earlier one
/// before the earlier one's credential was minted, its requester got exit 4,
/// "granted, but the git host did not mint its credential: grant N has ended",
/// with both "ask again" and "grant N stands". Git already answers to the
/// superseding grant; so does minting, and the requester gets exit 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_superseded_grants_requester_gets_the_superseding_credential() {
    let b = TestBroker::start_gateway("1h").await;
    let first = b.request("alice", "demo", "write", "1h", Some("one")).await["id"].as_i64().unwrap();
    let second = b.request("alice", "demo", "write", "2h", Some("two")).await["id"].as_i64().unwrap();
    let superseded = b.approve("bob", first).await.body["grant"]["id"].as_i64().unwrap();
    let superseding = b.approve("bob", second).await.body["grant"]["id"].as_i64().unwrap();
    assert_ne!(superseded, superseding);
    let minted = b.post("alice", &format!("/v1/grants/{superseded}/credentials"), json!({})).await;
    assert_eq!(minted.status, 201, "{}", minted.body);
    assert_eq!(minted.body["grant"]["id"], superseding, "{}", minted.body);

    // The requester still waiting on the first request: granted, credential kept, exit 0.
    let alice = crate::common::cli_env(&b);
    alice.login(&b.url, b.token("alice")).success();
    let waited = alice.run(&["wait", &first.to_string()]);
    waited.success();
    assert!(!waited.stderr.contains("stands") && !waited.stderr.contains("did not mint"), "{}", waited.stderr);
    let index = alice.credential_index();
    assert!(index.to_string().contains(&format!("\"grant_id\":{superseding}")), "the cache holds the superseding grant: {index}");

    // A grant a person revoked is still ended: no credential, and no claim that it stands.
    let third = b.request("dave", "demo", "write", "1h", Some("three")).await["id"].as_i64().unwrap();
    let revoked = b.approve("bob", third).await.body["grant"]["id"].as_i64().unwrap();
    assert_eq!(b.post("admin", &format!("/v1/grants/{revoked}/revoke"), json!({})).await.status, 200);
    // Even with a live grant now that would have superseded it: only the broker's supersede redirects.
    let fourth = b.request("dave", "demo", "write", "2h", Some("four")).await["id"].as_i64().unwrap();
    assert_eq!(b.approve("bob", fourth).await.status, 200);
    let refused = b.post("dave", &format!("/v1/grants/{revoked}/credentials"), json!({})).await;
    assert_eq!((refused.status, refused.code()), (409, "grant_ended"), "{}", refused.body);
    let dave = crate::common::cli_env(&b);
    dave.login(&b.url, b.token("dave")).success();
    let waited = dave.run(&["wait", &third.to_string()]);
    waited.code(4).stderr_has("ended before its credential was minted").stderr_has("ask again");
    assert!(!waited.stderr.contains("stands"), "{}", waited.stderr);
}

/// Regression (finding 11): a removed approver's vote still counted toward
/// N of M, so one more approval granted the request.
#[tokio::test]
async fn a_removed_approvers_vote_no_longer_counts() {
    let b = TestBroker::start().await;
    // demo-admin needs two reviewers.
    let id = b.request("alice", "demo", "admin", "1h", None).await["id"].as_i64().unwrap();
    assert_eq!(b.approve("bob", id).await.body["status"], "pending");
    let removed = b.send(reqwest::Method::DELETE, "/v1/users/bob", Some(b.token("admin")), Some(json!({"reason": "left"}))).await;
    assert!(removed.status < 300, "{}", removed.body);
    let after = b.approve("carol", id).await;
    assert_eq!(after.body["status"], "pending", "bob's vote still counted: {}", after.body);
    assert_eq!(after.body["approvals"].as_array().map(Vec::len), Some(1), "{}", after.body);
    let withdrawn: Vec<_> = b.audit().await.into_iter().filter(|e| e["action"] == "approval_withdrawn").collect();
    assert_eq!(withdrawn.len(), 1, "{withdrawn:?}");
    assert_eq!(withdrawn[0]["request_id"], id);
    assert!(withdrawn[0]["detail"].as_str().unwrap().contains("bob's approval no longer counts"), "{}", withdrawn[0]);
    assert_eq!(b.approve("erin", id).await.body["status"], "approved", "two approvers who are still here do grant it");
}

/// A read grant's gateway password for `user` on demo (auto-approved).
async fn read_password(b: &TestBroker, user: &str) -> String {
    let grant = b.request(user, "demo", "read", "1h", None).await["grant"]["id"].as_i64().unwrap();
    let cred = b.post(user, &format!("/v1/grants/{grant}/credentials"), json!({})).await;
    cred.body["password"].as_str().unwrap().to_string()
}

/// Regression (finding 13): fetches folded into an event were counted only
/// by the next fetch's event, so with no later fetch the count was lost.
#[tokio::test]
async fn a_folded_fetch_count_is_written_even_when_no_fetch_follows() {
    let b = TestBroker::start_gateway("1h").await;
    let alice = read_password(&b, "alice").await;
    let refs = format!("{}/git/demo.git/git-upload-pack", b.url);
    let fetch = |user: &'static str, password: &str| {
        reqwest::Client::new()
            .post(&refs)
            .basic_auth(user, Some(password))
            .header("Content-Type", "application/x-git-upload-pack-request")
            .header("Git-Protocol", "version=2")
            .body(format!("{}0000", String::from_utf8(pkt("command=ls-refs\n")).unwrap()))
            .send()
    };
    for _ in 0..3 {
        assert_eq!(fetch("alice", &alice).await.unwrap().status(), 200);
    }
    // Dave fetches once: nothing folded, nothing to write out for him.
    let dave = read_password(&b, "dave").await;
    let once = fetch("dave", &dave).await.unwrap();
    assert_eq!(once.status(), 200);
    let fetches = |events: &Vec<serde_json::Value>| events.iter().filter(|e| e["action"] == "git_fetch").cloned().collect::<Vec<_>>();
    assert_eq!(fetches(&b.audit().await).len(), 2);
    // A minute on, with no fetch since, the reaper writes alice's count out, and only hers.
    b.advance(std::time::Duration::from_secs(61));
    crate::common::eventually(|| b.audit(), |events| fetches(events).len() >= 3).await;
    b.reaper_caught_up().await;
    let written = fetches(&b.audit().await);
    assert_eq!(written.len(), 3, "{written:?}");
    assert_eq!(written[2]["detail"], "git-upload-pack (the previous event stood for 3 fetches); none since");
    assert_eq!((written[2]["actor"].as_str(), written[2]["grant_id"].clone()), (Some("alice"), written[0]["grant_id"].clone()));
}

/// Regression (finding 13): refusals from one address within 2 s were one
/// event whoever they named, so a second user's refusal was never recorded.
#[tokio::test]
async fn refusals_are_coalesced_only_for_the_same_user_and_repo() {
    let b = TestBroker::start_gateway("1h").await;
    let refs = format!("{}/git/demo.git/info/refs?service=git-upload-pack", b.url);
    let http = reqwest::Client::new();
    for user in ["alice", "alice", "dave"] {
        let r = http.get(&refs).basic_auth(user, Some("jitgw_not_a_credential")).send().await.unwrap();
        assert_eq!(r.status(), 401);
    }
    let refused: Vec<_> = b.audit().await.into_iter().filter(|e| e["action"] == "git_refused").collect();
    let actors: Vec<&str> = refused.iter().map(|e| e["actor"].as_str().unwrap()).collect();
    assert_eq!(actors, ["alice", "dave"], "{refused:?}");
}

/// Regression (finding 13): `git_push` is written before git runs, so a push
/// git refused read as a move; git's own report now says what happened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_git_did_with_a_push_is_audited_from_its_report() {
    let b = TestBroker::start_gateway("1h").await;
    let (alice, repo) = crate::common::alice_with_a_write_clone(&b).await;
    let results = |events: &Vec<serde_json::Value>| {
        events.iter().filter(|e| e["action"] == "git_push_result").map(|e| e["detail"].as_str().unwrap().to_string()).collect::<Vec<_>>()
    };
    std::fs::write(repo.join("A.md"), "a\n").unwrap();
    alice.git(&repo, &["add", "A.md"]).success();
    alice.git(&repo, &["commit", "-qm", "a"]).success();
    alice.git(&repo, &["push", "origin", "HEAD:refs/heads/landed"]).success();
    let audit = crate::common::eventually(|| b.audit(), |events| results(events).len() == 1).await;
    let landed = results(&audit);
    assert!(landed[0].starts_with("git-receive-pack: refs/heads/landed created at ") && landed[0].ends_with(": done"), "{landed:?}");

    // The repository's own hook refuses the next one: the push is asked, and recorded as rejected.
    let hook = b.dir.path().join("repos/demo.git/hooks/pre-receive");
    std::fs::write(&hook, "#!/bin/sh\necho no >&2\nexit 1\n").unwrap();
    #[cfg(unix)]
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let refused = alice.git(&repo, &["push", "origin", "HEAD:refs/heads/refused"]);
    assert_ne!(refused.code, 0, "{}", refused.stderr);
    let audit = crate::common::eventually(|| b.audit(), |events| results(events).len() == 2).await;
    let rejected = results(&audit);
    assert!(
        rejected[1].contains("refs/heads/refused created at ") && rejected[1].ends_with(": rejected (pre-receive hook declined)"),
        "{rejected:?}"
    );
    assert_eq!(rev(&b.dir.path().join("repos/demo.git"), "refused"), None);
}

/// Regression (finding 10): a symbolic ref inside the grant's scope
/// (`release/current → main`) moved its target outside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symbolic_ref_inside_the_scope_cannot_move_its_target() {
    let b = TestBroker::start_with(&release_only_policy()).await;
    let bare = b.dir.path().join("repos/demo.git");
    let linked = git_dir(&bare, &["symbolic-ref", "refs/heads/release/current", "refs/heads/main"]);
    assert!(linked.status.success());
    let main = rev(&bare, "main").unwrap();
    let (alice, repo) = crate::common::alice_with_a_write_clone(&b).await;
    std::fs::write(repo.join("S.md"), "s\n").unwrap();
    alice.git(&repo, &["add", "S.md"]).success();
    alice.git(&repo, &["commit", "-qm", "s"]).success();
    let pushed = alice.git(&repo, &["push", "origin", "HEAD:refs/heads/release/current"]);
    assert_ne!(pushed.code, 0, "{}", pushed.stderr);
    assert!(pushed.stderr.contains("symbolic ref to refs/heads/main"), "{}", pushed.stderr);
    assert_eq!(rev(&bare, "main").as_deref(), Some(main.as_str()), "main moved through the symbolic ref");
    // A real ref inside the scope still takes the push.
    alice.git(&repo, &["push", "origin", "HEAD:refs/heads/release/2"]).success();
}
