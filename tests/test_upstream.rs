//! Repositories on another git host, fronted by the gateway: a real host
//! (lighttpd + `git http-backend` behind Basic auth) that only the broker
//! can use, real git through jit's credential helper and the kernel keyring.

use crate::common::upstream::TestUpstream;
use crate::common::{TestBroker, TestEnvironment, cli_env};

async fn fronted() -> (TestUpstream, TestBroker, TestEnvironment) {
    let upstream = TestUpstream::start(&["acme/api", "acme/api-tools", "acme/api.github"]);
    let b = TestBroker::start_with(&upstream.fronting_policy()).await;
    let alice = cli_env(&b);
    alice.login(&b.url, b.token("alice")).success();
    alice.run(&["setup"]).success();
    (upstream, b, alice)
}

fn commit(env: &TestEnvironment, repo: &std::path::Path, file: &str) -> String {
    std::fs::write(repo.join(file), format!("{file}\n")).unwrap();
    env.git(repo, &["add", file]).success();
    env.git(repo, &["commit", "-qm", file]).success();
    env.git(repo, &["rev-parse", "HEAD"]).success().stdout.trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_fronts_a_repo_on_another_host() {
    let (upstream, b, alice) = fronted().await;
    // Nobody without an account gets in at the host itself.
    let anonymous = reqwest::get(format!("{}/info/refs?service=git-upload-pack", upstream.repo_url("acme/api"))).await.unwrap();
    assert_eq!(anonymous.status(), 401);

    let gateway = format!("{}/git/acme/api.git", b.url);
    let listed = alice.run(&["repos"]).success().table();
    assert_eq!(
        (listed[0]["NAME"].as_str(), listed[0]["CLONE URL"].as_str(), listed[0]["VIA"].as_str()),
        ("acme/api", upstream.repo_url("acme/api").as_str(), gateway.as_str())
    );
    let work = alice.work_dir();
    assert_ne!(alice.git(&work, &["clone", &gateway, "before"]).code, 0);
    alice.run(&["request", "acme/api", "--level", "read", "--for", "1h"]).success();
    alice.git(&work, &["clone", &gateway, "api"]).success();
    let repo = work.join("api");
    assert!(repo.join("README.md").exists());
    let head = commit(&alice, &repo, "CHANGE.md");
    let refused = alice.git(&repo, &["push", "origin", "main"]);
    assert!(refused.stderr.contains("pushing needs write"), "{}", refused.stderr);

    let id = b.request("alice", "acme/api", "write", "1h", None).await["id"].as_i64().unwrap();
    assert_eq!(b.approve("bob", id).await.status, 200);
    // The read credential git holds now answers to the write grant that superseded its own.
    alice.git(&repo, &["push", "origin", "main"]).success();
    assert_eq!(upstream.git_on_disk("acme/api", &["rev-parse", "main"]), head);
    let pushes: Vec<_> = b.audit().await.into_iter().filter(|e| e["action"] == "git_push").collect();
    assert_eq!(pushes.len(), 1);
    assert!(pushes[0]["detail"].as_str().unwrap().contains(&format!("→{head}")), "{}", pushes[0]);
}

/// A stand-in for ssh that runs the remote command on the host's disk (as
/// git's own tests do), and writes down how it was called.
fn fake_ssh(upstream: &TestUpstream) -> (std::path::PathBuf, std::path::PathBuf) {
    let log = upstream.dir.path().join("ssh.log");
    let script = upstream.dir.path().join("fake-ssh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n[ \"$1\" = -G ] && exit 0\necho \"args=$* GIT_PROTOCOL=$GIT_PROTOCOL GIT_DIR=$GIT_DIR\" >> '{}'\nfor last; do :; done\ncd '{}' && eval \"$(printf %s \"$last\" | sed -e \"s#'~/#'#\" -e \"s#'/#'#\")\"\n",
            log.display(),
            upstream.dir.path().join("repos").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    (script, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_urls_of_repos_jit_does_not_front_reach_the_host_as_git_would_reach_it() {
    let (upstream, b, alice) = fronted().await;
    let (ssh, log) = fake_ssh(&upstream);
    let host = upstream.url.trim_start_matches("http://").split_once(':').unwrap().0.to_string();
    let work = alice.work_dir();
    let ssh_env = [("GIT_SSH_COMMAND", ssh.to_str().unwrap())];

    // A look-alike of the fronted acme/api over SSH: jit's helper sees it
    // (the whole host is routed) and hands it to ssh, protocol v2 and all
    // (this ssh answers `-G`, so git, and jit, take it for OpenSSH).
    let url = format!("git@{host}:acme/api.github.git");
    alice.git_with(&work, &["clone", &url, "lookalike"], &ssh_env).success();
    let called = std::fs::read_to_string(&log).unwrap();
    assert!(
        called.contains(&format!(
            "args=-o SendEnv=GIT_PROTOCOL git@{host} git-upload-pack 'acme/api.github.git' GIT_PROTOCOL=version=2 GIT_DIR=\n"
        )),
        "{called}"
    );
    let repo = work.join("lookalike");
    let head = commit(&alice, &repo, "SSH.md");
    alice.git_with(&repo, &["push", "origin", "HEAD:main"], &ssh_env).success();
    assert_eq!(upstream.git_on_disk("acme/api.github", &["rev-parse", "main"]), head);
    assert!(
        std::fs::read_to_string(&log).unwrap().contains("git-receive-pack 'acme/api.github.git' GIT_PROTOCOL= "),
        "pushes speak v0, as git's own ssh does"
    );

    // ssh:// URLs, a variant that takes no options, and git's protocol rules.
    let plain = [("GIT_SSH_COMMAND", ssh.to_str().unwrap()), ("GIT_SSH_VARIANT", "simple")];
    alice.git_with(&work, &["ls-remote", &format!("ssh://git@{host}/~/acme/api-tools.git")], &plain).success();
    assert!(
        std::fs::read_to_string(&log).unwrap().contains(&format!("args=git@{host} git-upload-pack '~/acme/api-tools.git' GIT_PROTOCOL= "))
    );
    let refused = alice.git_with(&work, &["-c", "protocol.ssh.allow=never", "ls-remote", &url], &ssh_env);
    assert_ne!(refused.code, 0);
    assert!(refused.stderr.contains("transport 'ssh' not allowed"), "{}", refused.stderr);
    let strange = alice.git_with(&work, &["ls-remote", &format!("git@{host}:-oProxyCommand=x")], &ssh_env);
    assert!(strange.stderr.contains("strange pathname"), "{}", strange.stderr);

    let git_events = b.audit().await.iter().filter(|e| e["action"].as_str().unwrap().starts_with("git_")).count();
    assert_eq!(git_events, 0, "jit saw nothing of repos it does not front");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_git_with_the_hosts_own_urls_goes_through_jit_and_nothing_else_does() {
    let upstream = TestUpstream::start(&["acme/api", "acme/api-tools", "acme/api.github"]);
    let b = TestBroker::start_with(&upstream.fronting_policy()).await;
    let alice = cli_env(&b);
    alice.secret(&upstream.human_password);
    // Alice has her own account at the host, for the repos jit does not guard,
    // kept by git's own store helper.
    let (host, port) = upstream.url.trim_start_matches("http://").split_once(':').unwrap();
    std::fs::write(alice.home().join(".gitconfig"), "[credential]\n\thelper = store\n").unwrap();
    std::fs::write(
        alice.home().join(".git-credentials"),
        format!("http://{}:{}@{host}%3a{port}\n", crate::common::upstream::HUMAN_USER, upstream.human_password),
    )
    .unwrap();
    alice.login(&b.url, b.token("alice")).success();
    alice.run(&["setup"]).success().stderr_has(&format!("git reaches {} through jit's gateway", upstream.repo_url("acme/api")));
    let work = alice.work_dir();
    let api = upstream.repo_url("acme/api");

    // Before a grant: the host's URL goes to jit, which names the request to make.
    let before = alice.git(&work, &["clone", &api, "before"]);
    assert_ne!(before.code, 0);
    assert!(before.stderr.contains("jit request acme/api --level read"), "{}", before.stderr);

    // Repos jit does not guard, on the same host, are not captured: they clone
    // straight from the host with Alice's own account, and jit sees nothing.
    for other in ["acme/api-tools", "acme/api.github"] {
        alice.git(&work, &["clone", &upstream.repo_url(other), other.replace('/', "_").as_str()]).success();
    }
    let seen_before_grant = b.audit().await.iter().filter(|e| e["action"] == "git_fetch").count();
    assert_eq!(seen_before_grant, 0);

    // With a read grant, the same command clones through the gateway.
    alice.run(&["request", "acme/api", "--level", "read", "--for", "1h"]).success();
    alice.git(&work, &["clone", &api, "api"]).success();
    let repo = work.join("api");
    assert_eq!(alice.git(&repo, &["config", "remote.origin.url"]).stdout.trim(), api, "the remote keeps the host's URL");
    let fetches = b.audit().await.iter().filter(|e| e["action"] == "git_fetch" && e["actor"] == "alice").count();
    assert_eq!(fetches, 1);

    // `jit request` in that checkout knows the repo from its origin.
    let asked = alice.run_in(&repo, &["request", "--level", "write", "--for", "30m", "--no-wait", "--json"]).success().json();
    assert_eq!(asked["repo"], "acme/api");
    assert_eq!(b.approve("bob", asked["id"].as_i64().unwrap()).await.status, 200);

    // A checkout whose origin is the SSH form goes through the gateway too; no ssh runs.
    alice.git(&repo, &["remote", "set-url", "origin", &format!("git@{host}:acme/api.git")]).success();
    let head = commit(&alice, &repo, "SSH.md");
    alice.git_with(&repo, &["push", "origin", "main"], &[("GIT_SSH_COMMAND", "false")]).success();
    alice.git_with(&repo, &["fetch", "origin"], &[("GIT_SSH_COMMAND", "false")]).success();
    assert_eq!(upstream.git_on_disk("acme/api", &["rev-parse", "main"]), head);

    // The grant ends (the broker's clock): the host's URL stops working at once.
    b.advance(std::time::Duration::from_secs(3601));
    let late = alice.git(&repo, &["fetch", "origin"]);
    assert_ne!(late.code, 0, "fetch worked after every grant ended");

    // Uninstall takes the rewrites away: the host's URL is the host's again
    // (here Alice's own account still reads it; jit sees nothing).
    let git_events = |audit: Vec<serde_json::Value>| audit.iter().filter(|e| e["action"].as_str().unwrap().starts_with("git_")).count();
    let seen = git_events(b.audit().await);
    alice.run(&["setup", "--uninstall"]).success();
    alice.git(&work, &["clone", &api, "direct"]).success();
    assert_eq!(git_events(b.audit().await), seen);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_scoped_to_refs_pushes_those_and_is_refused_the_rest_in_gits_words() {
    let (upstream, b, alice) = fronted().await;
    let work = alice.work_dir();
    let api = upstream.repo_url("acme/api");
    let waiting = alice.spawn_watched(&["request", "acme/api", "--level", "write", "--for", "1h", "--ref", "hotfix/*"]);
    waiting.until("waiting for approval");
    let pending = b.get("bob", "/v1/requests?status=pending").await.body;
    assert_eq!(pending[0]["refs"], serde_json::json!(["refs/heads/hotfix/*"]), "the approver sees the scope");
    assert_eq!(b.approve("bob", pending[0]["id"].as_i64().unwrap()).await.status, 200);
    alice.finish(waiting).success().stdout_has("write (refs/heads/hotfix/* only) on acme/api until");
    alice.git(&work, &["clone", &api, "api"]).success();
    let repo = work.join("api");
    let main_before = upstream.git_on_disk("acme/api", &["rev-parse", "main"]);

    let fix = commit(&alice, &repo, "FIX.md");
    alice.git(&repo, &["push", "origin", "HEAD:refs/heads/hotfix/x"]).success();
    assert_eq!(upstream.git_on_disk("acme/api", &["rev-parse", "hotfix/x"]), fix);

    let refused = alice.git(&repo, &["push", "origin", "main"]);
    assert_ne!(refused.code, 0);
    assert!(
        refused.stderr.contains("! [remote rejected] main -> main (jit: your grant allows refs/heads/hotfix/* only)"),
        "{}",
        refused.stderr
    );
    // Nothing of a refused push lands, not even its allowed refs.
    let mixed = alice.git(&repo, &["push", "origin", "main", "HEAD:refs/heads/hotfix/y"]);
    assert!(mixed.stderr.contains("hotfix/y (jit: refused with the rest of this push)"), "{}", mixed.stderr);
    // Deleting needs admin.
    let delete = alice.git(&repo, &["push", "origin", ":hotfix/x"]);
    assert!(delete.stderr.contains("(jit: deleting a ref needs an admin grant)"), "{}", delete.stderr);
    assert_eq!(upstream.git_on_disk("acme/api", &["rev-parse", "main"]), main_before);
    assert!(upstream.git_on_disk("acme/api", &["for-each-ref", "--format=%(refname)"]).lines().all(|r| r != "refs/heads/hotfix/y"));

    let audit = b.audit().await;
    let refusals: Vec<&str> = audit.iter().filter(|e| e["action"] == "git_refused").map(|e| e["detail"].as_str().unwrap()).collect();
    assert_eq!(refusals.len(), 3, "{refusals:?}");
    assert!(refusals[0].contains("refused refs/heads/main (your grant allows refs/heads/hotfix/* only)"), "{}", refusals[0]);
    let pushes: Vec<&str> = audit.iter().filter(|e| e["action"] == "git_push").map(|e| e["detail"].as_str().unwrap()).collect();
    assert_eq!(pushes.len(), 1);
    assert!(pushes[0].contains(&format!("refs/heads/hotfix/x created at {fix}")), "{}", pushes[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_host_is_one_clear_line_an_event_and_never_the_brokers_secret() {
    let upstream = TestUpstream::start(&["acme/api"]);
    // The broker's password at the host is wrong, and a second repo's host is not there at all.
    let wrong = upstream.dir.path().join("wrong.token");
    std::fs::write(&wrong, "not-the-password\n").unwrap();
    let policy = upstream
        .fronting_policy()
        .replace(&upstream.dir.path().join("bot.token").display().to_string(), &wrong.display().to_string())
        .replace("[[rule]]\nname = \"api-read\"\nrepos = [\"acme/api\"]", "[[rule]]\nname = \"api-read\"\nrepos = [\"acme/*\"]")
        + "\n[[repo]]\nname = \"acme/gone\"\nurl = \"http://127.0.0.1:9/acme/gone.git\"\nprovider = \"corp\"\n";
    let b = TestBroker::start_with(&policy).await;
    let alice = cli_env(&b);
    alice.secret("not-the-password");
    alice.login(&b.url, b.token("alice")).success();
    alice.run(&["setup"]).success();
    alice.run(&["request", "acme/api", "--level", "read", "--for", "1h"]).success();
    alice.run(&["request", "acme/gone", "--level", "read", "--for", "1h"]).success();
    let work = alice.work_dir();
    let refused = alice.git(&work, &["clone", &upstream.repo_url("acme/api"), "api"]);
    assert_ne!(refused.code, 0);
    let remote: Vec<&str> = refused.stderr.lines().filter(|l| l.starts_with("remote: ")).collect();
    assert_eq!(remote, ["remote: jit: acme/api is out of reach: the host refused the broker's credential (HTTP 401); tell your jit admin"]);
    let gone = alice.git(&work, &["clone", &format!("{}/git/acme/gone.git", b.url), "gone"]);
    assert!(gone.stderr.contains("remote: jit: acme/gone is out of reach: the host could not be reached"), "{}", gone.stderr);
    let failures: Vec<String> = b
        .audit()
        .await
        .iter()
        .filter(|e| e["action"] == "git_upstream_failed")
        .map(|e| format!("{} {} {}", e["actor"].as_str().unwrap(), e["repo"].as_str().unwrap(), e["detail"].as_str().unwrap()))
        .collect();
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert!(failures[0].starts_with("alice acme/api git-upload-pack: credential_refused"), "{}", failures[0]);
    assert!(failures[1].starts_with("alice acme/gone git-upload-pack: unreachable"), "{}", failures[1]);
}

/// Regression (an operator's first week, 1): the proxy sent requests on a
/// pooled connection the host had just closed for sitting idle, and git
/// heard "the host could not be reached" — for a ref listing, a fetch, a
/// push. A host with a 1 s keep-alive limit, used every 1.5 s: every command
/// works, because a request small enough to hold is sent again on a fresh
/// connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_closes_idle_connections_sooner_than_the_proxy_reuses_them_is_no_failure() {
    let upstream = TestUpstream::start_with_idle_limit(&["acme/api"], 1);
    let b = TestBroker::start_with(&upstream.fronting_policy()).await;
    let alice = cli_env(&b);
    alice.login(&b.url, b.token("alice")).success();
    alice.run(&["setup"]).success();
    let id = b.request("alice", "acme/api", "write", "1h", None).await["id"].as_i64().unwrap();
    assert_eq!(b.approve("bob", id).await.status, 200);
    let work = alice.work_dir();
    alice.git(&work, &["clone", "-q", &upstream.repo_url("acme/api"), "api"]).success();
    let repo = work.join("api");
    // Longer than the host keeps an idle connection: the sleep is the contract.
    let past_the_hosts_idle_limit = || std::thread::sleep(std::time::Duration::from_millis(1500));
    for round in 0..2 {
        past_the_hosts_idle_limit();
        alice.git(&repo, &["ls-remote", "origin"]).success();
        past_the_hosts_idle_limit();
        alice.git(&repo, &["fetch", "-q", "origin"]).success();
        let head = commit(&alice, &repo, &format!("round-{round}"));
        past_the_hosts_idle_limit();
        alice.git(&repo, &["push", "-q", "origin", "main"]).success();
        assert_eq!(upstream.git_on_disk("acme/api", &["rev-parse", "main"]), head);
    }
    let failures = b.audit().await.into_iter().filter(|e| e["action"] == "git_upstream_failed").count();
    assert_eq!(failures, 0);
}

/// An operator's first week, 2: a host behind the company's own CA. Without
/// its CA the clone fails, and says it was the certificate and which fault
/// (not "could not be reached"); the provider's `ca_file` makes it work; a
/// certificate for another name says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_behind_a_private_ca_is_reached_with_its_ca_file_and_a_tls_fault_is_named() {
    use crate::common::tls::{TestCa, TlsFront};
    let upstream = TestUpstream::start(&["acme/api"]);
    let lighttpd: std::net::SocketAddr = upstream.url.trim_start_matches("http://").parse().unwrap();
    let ca = TestCa::new("Acme Corp CA");
    let ca_file = ca.write(upstream.dir.path(), "corp-ca.pem");
    let right = TlsFront::start(lighttpd, ca.issue()).await;
    let wrong_name = TlsFront::start(lighttpd, ca.issue_for(&["git.example.com"])).await;

    let clone_through = |front: &TlsFront, ca_file: Option<&std::path::Path>| {
        let policy = upstream.fronting_policy().replace(&upstream.url, &format!("https://{}", front.addr));
        let policy = match ca_file {
            Some(file) => policy.replace("kind = \"upstream\"\n", &format!("kind = \"upstream\"\nca_file = \"{}\"\n", file.display())),
            None => policy,
        };
        async move {
            let b = TestBroker::start_with(&policy).await;
            let alice = cli_env(&b);
            alice.login(&b.url, b.token("alice")).success();
            alice.run(&["setup"]).success();
            alice.run(&["request", "acme/api", "--level", "read", "--for", "1h"]).success();
            let run = alice.git(&alice.work_dir(), &["clone", "-q", &format!("{}/git/acme/api.git", b.url), "api"]);
            let failures: Vec<String> = b
                .audit()
                .await
                .iter()
                .filter(|e| e["action"] == "git_upstream_failed")
                .map(|e| e["detail"].as_str().unwrap().to_string())
                .collect();
            (run, failures)
        }
    };

    let (untrusted, failures) = clone_through(&right, None).await;
    assert_ne!(untrusted.code, 0);
    assert!(untrusted.stderr.contains("remote: jit: acme/api is out of reach: the host's TLS certificate is signed by an authority the broker does not trust (unknown issuer): give the provider a ca_file"), "{}", untrusted.stderr);
    assert!(failures.iter().any(|f| f.contains("(tls:") || f.contains(": tls (")), "{failures:?}");

    let (trusted, failures) = clone_through(&right, Some(&ca_file)).await;
    assert_eq!(trusted.code, 0, "{}", trusted.stderr);
    assert!(failures.is_empty(), "{failures:?}");

    let (mismatch, _) = clone_through(&wrong_name, Some(&ca_file)).await;
    assert!(mismatch.stderr.contains("the host's TLS certificate is not for this host name (name mismatch)"), "{}", mismatch.stderr);
}
