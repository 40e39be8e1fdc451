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
    let request = reqwest::Client::new()
        .post(url)
        .basic_auth(user, Some(password))
        .header("Content-Type", "application/x-git-receive-pack-request")
        .body(reqwest::Body::wrap_stream(stream))
        .send();
    let response = tokio::spawn(request);
    send.send(Ok(commands)).await.unwrap();
    between().await;
    send.send(Ok(pack)).await.unwrap();
    drop(send);
    match response.await.unwrap() {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(e) => format!("request failed: {e}"),
    }
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
