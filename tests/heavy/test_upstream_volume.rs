//! The proxy to another host under git's heavier traffic: protocol v2, a
//! gzip-encoded negotiation, and a push of more than 100 MB, each end to end
//! through the gateway to the real upstream (lighttpd + git http-backend).

use crate::common::upstream::TestUpstream;
use crate::common::{TestBroker, TestEnvironment, cli_env};

/// Alice, set up and granted `level` on `acme/api`, which the gateway fronts.
async fn granted(level: &str) -> (TestUpstream, TestBroker, TestEnvironment) {
    let upstream = TestUpstream::start(&["acme/api"]);
    let b = TestBroker::start_with(&upstream.fronting_policy()).await;
    let alice = cli_env(&b);
    alice.login(&b.url, b.token("alice")).success();
    alice.run(&["setup"]).success();
    let id = b.request("alice", "acme/api", level, "1h", None).await["id"].as_i64().unwrap();
    if level != "read" {
        assert_eq!(b.approve("bob", id).await.status, 200);
    }
    (upstream, b, alice)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_v2_reaches_the_host_through_the_proxy() {
    let (upstream, _b, alice) = granted("read").await;
    let run = alice.git_with(
        &alice.work_dir(),
        &["-c", "protocol.version=2", "ls-remote", &upstream.repo_url("acme/api")],
        &[("GIT_TRACE_PACKET", "1")],
    );
    run.success();
    // The host answered in v2: it saw the Git-Protocol header the proxy passed on.
    assert!(run.stderr.contains("git< version 2"), "{}", run.stderr);
    assert!(run.stdout.contains("refs/heads/main"), "{}", run.stdout);
    let v0 = alice.git_with(
        &alice.work_dir(),
        &["-c", "protocol.version=0", "ls-remote", &upstream.repo_url("acme/api")],
        &[("GIT_TRACE_PACKET", "1")],
    );
    assert!(!v0.success().stderr.contains("version 2"), "{}", v0.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gzip_encoded_negotiation_of_many_refs_clones_through_the_proxy() {
    let (upstream, _b, alice) = granted("read").await;
    // 400 branches: git's request for them is well over the 1 kB past which it gzips.
    let head = upstream.git_on_disk("acme/api", &["rev-parse", "main"]);
    let refs: String = (0..400).map(|n| format!("create refs/heads/topic/{n:03} {head}\n")).collect();
    let mut update = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(upstream.repo_dir("acme/api"))
        .args(["update-ref", "--stdin"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(update.stdin.as_mut().unwrap(), refs.as_bytes()).unwrap();
    drop(update.stdin.take());
    assert!(update.wait().unwrap().success());
    let run = alice.git_with(
        &alice.work_dir(),
        &["-c", "protocol.version=0", "clone", "--mirror", &upstream.repo_url("acme/api"), "mirror"],
        &[("GIT_TRACE_CURL", "1"), ("GIT_TRACE_CURL_NO_DATA", "1")],
    );
    run.success();
    assert!(run.stderr.contains("Content-Encoding: gzip"), "git sent no gzip-encoded request:\n{}", tail(&run.stderr));
    let mirrored = alice.git(&alice.work_dir().join("mirror"), &["for-each-ref", "--format=%(refname)", "refs/heads/topic"]);
    assert_eq!(mirrored.success().stdout.lines().count(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_of_more_than_100_mb_lands_on_the_host() {
    let _turn = crate::common::MACHINE.lock().await;
    let (upstream, b, alice) = granted("write").await;
    let work = alice.work_dir();
    alice.git(&work, &["clone", &upstream.repo_url("acme/api"), "api"]).success();
    let repo = work.join("api");
    // Random bytes do not compress: the pack is as large as the file.
    let mut data = vec![0u8; 110 * 1024 * 1024];
    rand::fill(&mut data[..]);
    std::fs::write(repo.join("big.bin"), &data).unwrap();
    drop(data);
    alice.git(&repo, &["add", "big.bin"]).success();
    alice.git(&repo, &["commit", "-qm", "big"]).success();
    let head = alice.git(&repo, &["rev-parse", "HEAD"]).success().stdout.trim().to_string();
    // Larger than git's post buffer: git probes first, then streams it chunked.
    alice.git(&repo, &["push", "origin", "main"]).success();
    assert_eq!(upstream.git_on_disk("acme/api", &["rev-parse", "main"]), head);
    let size: u64 = upstream.git_on_disk("acme/api", &["cat-file", "-s", &format!("{head}:big.bin")]).parse().unwrap();
    assert_eq!(size, 110 * 1024 * 1024);
    let pushes = b.audit().await.into_iter().filter(|e| e["action"] == "git_push").count();
    assert_eq!(pushes, 1);
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}
