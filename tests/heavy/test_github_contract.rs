//! Contract tests: every request the `github` provider sends, checked by
//! Prism against GitHub's own OpenAPI description of its REST API
//! (`@octokit/openapi`, `generated/api.github.com.json`): paths, methods,
//! parameters and bodies. Both are pinned in `contract/package-lock.json` and
//! installed by `scripts/contract-tools` (which `scripts/test` runs). A
//! request Prism finds fault with fails the test; a deliberately wrong
//! request shows first that it would.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use jit::domain::Level;
use jit::domain::refs::RefScope;
use jit::domain::repo::{CloneUrl, RepoSpec};
use jit::domain::token::SecretString;
use jit::providers::{Provider, ProviderSection};
use jit::store::GrantRecord;

use crate::common::ChildGuard;

fn contract_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("contract")
}

/// Prism serving GitHub's description, with `--errors`: a request that
/// breaks the description is answered with an error, and logged as one.
struct Prism {
    url: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
    _child: ChildGuard,
}

impl Prism {
    fn start() -> Prism {
        let prism = contract_dir().join("node_modules/.bin/prism");
        let spec = contract_dir().join("node_modules/@octokit/openapi/generated/api.github.com.json");
        assert!(prism.exists() && spec.exists(), "the contract tools are not installed: run scripts/contract-tools (scripts/test does)");
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("prism.log");
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(&prism)
            .args(["mock", "--errors", "-h", "127.0.0.1", "-p", &port.to_string()])
            .arg(&spec)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("node runs prism");
        let mut child = ChildGuard::new(child);
        // GitHub's description is 13 MB: Prism takes ~10 s to load it on two cores.
        let deadline = Instant::now() + Duration::from_secs(180);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(child.try_wait().unwrap().is_none(), "prism exited: {}", std::fs::read_to_string(&log).unwrap_or_default());
            assert!(Instant::now() < deadline, "prism did not start within 180 s");
            std::thread::sleep(Duration::from_millis(200));
        }
        Prism { url: format!("http://127.0.0.1:{port}"), log, _dir: dir, _child: child }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }
}

/// The requests Prism received after `mark` (bytes of its log), and its
/// complaints about them.
fn judged(log: &str, mark: usize) -> (Vec<String>, Vec<String>) {
    let mut received = Vec::new();
    let mut complaints = Vec::new();
    for line in log[mark..].lines() {
        if line.contains("Request received") {
            let route = line.split("[HTTP SERVER] ").nth(1).unwrap_or(line).split(" ℹ").next().unwrap().trim().to_string();
            received.push(route);
        }
        if line.contains("did not pass the validation rules")
            || line.contains("Violation:")
            || line.contains("Request terminated with error")
        {
            complaints.push(line.to_string());
        }
    }
    (received, complaints)
}

fn grant(level: Level) -> GrantRecord {
    let now = Utc::now();
    GrantRecord {
        id: 1,
        request_id: 1,
        user_id: Some(1),
        user: "alice".into(),
        repo: "acme/api".into(),
        level,
        rule: Some("acme".into()),
        refs: RefScope::all(),
        granted_at: now,
        expires_at: now + chrono::Duration::hours(2),
        revoked_at: None,
        revoked_by: None,
        ended_at: None,
    }
}

fn provider(api_url: &str, dir: &std::path::Path) -> Arc<dyn Provider> {
    let key = dir.join("app.pem");
    std::fs::copy(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/github-app-test.pem"), &key).unwrap();
    let table: toml::Table =
        toml::from_str(&format!("api_url = \"{api_url}\"\napp_id = 4242\nprivate_key_file = \"{}\"\n", key.display())).unwrap();
    jit::providers::build(&ProviderSection { name: "github".into(), kind: "github".into(), line: 1, table }).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_the_github_provider_sends_matches_githubs_openapi_description() {
    let prism = Prism::start();

    // First, that a wrong request is caught: a repository list that is not a
    // list, and a permission level GitHub does not have.
    let wrong = reqwest::Client::new()
        .post(format!("{}/app/installations/1/access_tokens", prism.url))
        .header("Accept", "application/json")
        .json(&serde_json::json!({"repositories": "api", "permissions": {"contents": "writ"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 422);
    let (received, complaints) = judged(&prism.log(), 0);
    assert_eq!(received.len(), 1);
    assert!(complaints.iter().any(|c| c.contains("permissions.contents")), "{complaints:#?}");

    let mark = prism.log().len();
    let dir = tempfile::tempdir().unwrap();
    let github = provider(&prism.url, dir.path());
    let repo = RepoSpec {
        name: "acme/api".into(),
        url: Some(CloneUrl::parse("https://github.com/acme/api.git").unwrap()),
        provider: Some("github".into()),
        upstream: None,
    };
    // Each level's token request. Prism answers with the description's
    // example, a token that also holds `issues: write`: more than asked, so
    // the provider refuses it and revokes it at once (a DELETE per mint).
    for level in Level::ALL {
        let refused = github.mint(&repo, &grant(level), Utc::now()).await.unwrap_err().to_string();
        assert!(refused.contains("more than was asked (issues: write); the token was revoked"), "{refused}");
    }
    // The revocation the reaper sends for a token a grant held.
    github
        .revoke_minted(&repo, &grant(Level::Write), &SecretString::from("ghs_16C7e42F292c6912E7710c838347Ae178B4a".to_string()))
        .await
        .unwrap();

    let (received, complaints) = judged(&prism.log(), mark);
    assert_eq!(
        received,
        [
            "get /repos/acme/api/installation",
            "post /app/installations/1/access_tokens",
            "delete /installation/token",
            "post /app/installations/1/access_tokens",
            "delete /installation/token",
            "post /app/installations/1/access_tokens",
            "delete /installation/token",
            "delete /installation/token",
        ]
    );
    assert!(complaints.is_empty(), "GitHub's description refuses what the provider sent: {complaints:#?}");
    let passed = prism.log()[mark..].matches("The request passed the validation rules").count();
    assert_eq!(passed, received.len(), "each request was validated");
}
