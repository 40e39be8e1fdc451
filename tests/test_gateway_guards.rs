//! What the gateway lets through, refuses and audits, from the wire up: a
//! read credential never reaches the push service however the query is
//! spelled, unreadable or certificate-wrapped push commands never land, a
//! push whose grant ends mid-pack is refused, git's own probe is answered
//! without credentials and nothing else is, one credential cannot flood it,
//! guessed passwords are throttled without locking out the real one, and
//! what is fetched and pushed is audited (folded, coalesced, from git's own
//! report). Each test failed on the code before its fix (the attack passes
//! of the "Hardening" issues), or was broken on purpose once.

use crate::common::gateway::{ZERO, git_dir, pkt_bytes, pkt_line, read_password, rev, write_password};
use crate::common::upstream::TestUpstream;
use crate::common::{TestBroker, release_only_policy};
use serde_json::json;
use std::path::Path;
use std::process::Command;

#[tokio::test]
async fn a_read_credential_never_gets_the_push_advertisement_however_the_query_is_spelled() {
    let b = TestBroker::start_gateway("1h").await;
    let password = read_password(&b, "alice").await;
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
    let password = read_password(&b, "alice").await;
    let body = format!("{}{}0001{}0000", pkt_line("command=ls-refs\n"), pkt_line("agent=probe\n"), pkt_line("peel\n"));
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
        (format!("{}0000", pkt_line(&format!("{head} {zero} main\0report-status"))).into_bytes(), None, "not a ref name"),
        (format!("{}0000", pkt_line(&format!("{head} {zero}\0report-status"))).into_bytes(), None, "OLD NEW REFNAME"),
        (b"zzzz".to_vec(), None, "not hex"),
        (pkt_line(&format!("{head} {zero} refs/heads/main\0report-status")).into_bytes(), None, "ended before its command list"),
        (format!("{}0000", pkt_line(&format!("{head} {zero} refs/heads/main\0report-status"))).into_bytes(), Some("gzip"), "compressed"),
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

/// Regression (hardening round two, finding 9): ten bad passwords a minute
/// under alice's name, from anywhere, made her valid credential answer 429.
#[tokio::test]
async fn guessing_a_gateway_password_is_throttled_and_never_locks_out_the_real_one() {
    let b = TestBroker::start_gateway("1h").await;
    let password = read_password(&b, "alice").await;
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
    let password = read_password(&b, "alice").await;
    let http = reqwest::Client::new();
    let mut statuses = Vec::new();
    let started = std::time::Instant::now();
    for _ in 0..15 {
        let r = http
            .post(format!("{}/git/demo.git/git-upload-pack", b.url))
            .basic_auth("alice", Some(&password))
            .header("Content-Type", "application/x-git-upload-pack-request")
            .header("Git-Protocol", "version=2")
            .body(format!("{}0000", pkt_line("command=ls-refs\n")))
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
            let mut body = pkt_bytes("push-cert\0report-status");
            for line in cert.iter().chain(&[
                "-----BEGIN PGP SIGNATURE-----\n".to_string(),
                "iQEzBAABCAAdFiEE\n".into(),
                "-----END PGP SIGNATURE-----\n".into(),
                "push-cert-end\n".into(),
            ]) {
                body.extend(pkt_bytes(line));
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
        let mut c = pkt_bytes(&format!("{ZERO} {commit} refs/heads/release/{name}\0report-status"));
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
            .body(format!("{}0000", String::from_utf8(pkt_bytes("command=ls-refs\n")).unwrap()))
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

#[tokio::test]
async fn a_credential_never_outlives_its_grant() {
    // Credentials would live 2 h; the grant lives 1 h, so they end with it.
    let b = TestBroker::start_gateway("2h").await;
    let grant = b.request("alice", "demo", "read", "1h", None).await["grant"].clone();
    let minted = b.post("alice", &format!("/v1/grants/{}/credentials", grant["id"]), json!({})).await;
    assert_eq!(minted.status, 201, "{}", minted.body);
    assert_eq!(minted.body["expires_at"], grant["expires_at"]);
}

#[tokio::test]
async fn the_gateway_checks_a_grants_end_itself() {
    // Even a credential that somehow outlived its grant (a provider's bug, a
    // hand-edited database) is refused once the grant has ended.
    let b = TestBroker::start_gateway("1h").await;
    let grant = b.request("alice", "demo", "read", "1h", None).await["grant"]["id"].as_i64().unwrap();
    let password =
        b.post("alice", &format!("/v1/grants/{grant}/credentials"), json!({})).await.body["password"].as_str().unwrap().to_string();
    let refs = format!("{}/info/refs?service=git-upload-pack", b.demo_url());
    let fetch = || reqwest::Client::new().get(&refs).basic_auth("alice", Some(&password)).send();
    assert_eq!(fetch().await.unwrap().status(), 200);
    // The grant ended an hour ago and the reaper marked it so (ended_at set,
    // so it never looks again), but its credential was left alive.
    b.execute(
        "UPDATE credentials SET expires_at = expires_at + 86400000;
         UPDATE grants SET expires_at = expires_at - 7200000, ended_at = expires_at - 7200000;",
        "UPDATE credentials SET expires_at = expires_at + interval '1 day';
         UPDATE grants SET expires_at = expires_at - interval '2 hours', ended_at = expires_at - interval '2 hours';",
    )
    .await;
    let r = fetch().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.text().await.unwrap().trim(), format!("jit: your grant {grant} on demo has expired"));
}
