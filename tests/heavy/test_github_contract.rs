//! Contract tests: every request the `github` provider sends, in both modes,
//! checked by Prism against GitHub's own OpenAPI description of its REST API
//! (`@octokit/openapi`, `generated/api.github.com.json`): paths, methods,
//! parameters and bodies. Prism runs as a validating proxy in front of the
//! stateful fake (`common::fake_github`), so whole flows run through it:
//! installation lookup, tokens per level, revocation, team memberships added
//! and removed. Both tools are pinned in `contract/package-lock.json` and
//! installed by `scripts/contract-tools` (which `scripts/test` runs). A
//! request Prism finds fault with fails the test; a deliberately wrong one
//! shows first that it would.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::fake_github::FakeGitHub;
use crate::common::{ChildGuard, TestBroker, eventually};

fn contract_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("contract")
}

/// Prism serving an OpenAPI description as a proxy to `upstream`, logging
/// every request's and answer's validation.
pub struct Prism {
    pub url: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
    _child: ChildGuard,
}

impl Prism {
    /// GitHub's description in front of `upstream`.
    fn proxy(upstream: &str) -> Prism {
        Self::proxy_with(&contract_dir().join("node_modules/@octokit/openapi/generated/api.github.com.json"), upstream)
    }

    /// The description in `spec` in front of `upstream`.
    pub fn proxy_with(spec: &std::path::Path, upstream: &str) -> Prism {
        let prism = contract_dir().join("node_modules/.bin/prism");
        assert!(prism.exists() && spec.exists(), "the contract tools are not installed: run scripts/contract-tools (scripts/test does)");
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("prism.log");
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(&prism)
            .args(["proxy", "-h", "127.0.0.1", "-p", &port.to_string()])
            .arg(spec)
            .arg(upstream)
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

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }
}

/// The requests Prism received after `mark` (bytes of its log), and its
/// complaints about them. (It also checks the fake's answers against
/// GitHub's schemas and logs `Violation: response…` lines: the fake answers
/// with the fields the provider reads, not every one GitHub sends.)
fn judged(log: &str, mark: usize) -> (Vec<String>, Vec<String>) {
    let log = &log[mark..];
    let received = log
        .lines()
        .filter(|l| l.contains("Request received"))
        .map(|l| l.split("[HTTP SERVER] ").nth(1).unwrap_or(l).split(" ℹ").next().unwrap().trim().to_string())
        .collect();
    let complaints = log
        .lines()
        .filter(|l| l.contains("did not pass the validation rules") || l.contains("Violation: request"))
        .map(str::to_string)
        .collect();
    (received, complaints)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_the_github_provider_sends_matches_githubs_openapi_description() {
    // Prism takes a core for ~10 s loading GitHub's description: not beside
    // the volume and crash tests, which need the machine.
    let _turn = crate::common::MACHINE.lock().await;
    let gh = FakeGitHub::start().await;
    gh.add_team("jit-tools-write", "tools", "push");
    let prism = Prism::proxy(&gh.url);

    // First, that a wrong request is caught: a repository list that is not a
    // list, and a permission level GitHub does not have.
    let wrong = reqwest::Client::new()
        .post(format!("{}/app/installations/77/access_tokens", prism.url))
        .json(&serde_json::json!({"repositories": "api", "permissions": {"contents": "writ"}}))
        .send()
        .await
        .unwrap();
    drop(wrong);
    let (_, complaints) = eventually(|| async { judged(&prism.log(), 0) }, |(_, c)| !c.is_empty()).await;
    assert!(complaints.iter().any(|c| c.contains("permissions.contents")), "{complaints:#?}");
    gh.forget_violations(); // the fake saw it too, forwarded
    let mark = prism.log().len();

    // acme/api through installation tokens, acme/tools through team membership.
    let policy = gh.policy().replace(&gh.url, &prism.url);
    let teams = format!(
        "[[provider]]\nname = \"github-teams\"\nkind = \"github\"\nmode = \"team\"\napi_url = \"{}\"\napp_id = 4242\nprivate_key_file = \"{}\"\nlogins = {{ dave = \"dave-gh\" }}\n\n",
        prism.url,
        gh.dir.path().join("app.pem").display()
    );
    let policy = policy.replace("[[repo]]\nname = \"acme/api\"", &format!("{teams}[[repo]]\nname = \"acme/api\"")).replace(
        "url = \"https://github.com/acme/tools.git\"\nprovider = \"github\"",
        "url = \"https://github.com/acme/tools.git\"\nprovider = \"github-teams\"",
    );
    let b = TestBroker::start_with(&policy).await;

    // Token mode: a write token, minted twice, both revoked with the grant.
    let id = b.request("alice", "acme/api", "write", "1h", Some("fix")).await["id"].as_i64().unwrap();
    let grant = b.approve("carol", id).await.body["grant"]["id"].as_i64().unwrap();
    for _ in 0..2 {
        assert_eq!(b.post("alice", &format!("/v1/grants/{grant}/credentials"), serde_json::json!({})).await.status, 201);
    }
    assert_eq!(b.post("carol", &format!("/v1/grants/{grant}/revoke"), serde_json::json!({})).await.status, 200);
    let live = eventually(|| async { gh.live_tokens().len() }, |n| *n == 0).await;
    assert_eq!(live, 0);

    // Team mode: dave added to jit-tools-write on approval, removed on revoke.
    let id = b.request("dave", "acme/tools", "write", "1h", Some("fix")).await["id"].as_i64().unwrap();
    let grant = b.approve("carol", id).await.body["grant"]["id"].as_i64().unwrap();
    let members = eventually(|| async { gh.team_members("jit-tools-write") }, |m| !m.is_empty()).await;
    assert_eq!(members, ["dave-gh"]);
    assert_eq!(b.post("carol", &format!("/v1/grants/{grant}/revoke"), serde_json::json!({})).await.status, 200);
    let members = eventually(|| async { gh.team_members("jit-tools-write") }, |m| m.is_empty()).await;
    assert!(members.is_empty());
    let all_revoked = eventually(|| async { gh.live_tokens().len() }, |n| *n == 0).await;
    assert_eq!(all_revoked, 0, "the organization tokens too");

    let (received, complaints) = judged(&prism.log(), mark);
    assert_eq!(
        received,
        [
            "get /repos/acme/api/installation",
            "post /app/installations/77/access_tokens",
            "post /app/installations/77/access_tokens",
            "delete /installation/token",
            "delete /installation/token",
            // Team mode: each change with an organization token, revoked after it.
            "get /repos/acme/tools/installation",
            "post /app/installations/77/access_tokens",
            "get /orgs/acme/teams/jit-tools-write/repos/acme/tools",
            "get /orgs/acme/teams/jit-tools-write/memberships/dave-gh",
            "get /orgs/acme/memberships/dave-gh",
            "put /orgs/acme/teams/jit-tools-write/memberships/dave-gh",
            "delete /installation/token",
            "post /app/installations/77/access_tokens",
            "delete /orgs/acme/teams/jit-tools-write/memberships/dave-gh",
            "delete /installation/token",
        ],
        "every request both modes send went through Prism"
    );
    assert!(complaints.is_empty(), "GitHub's description refuses what the provider sent: {complaints:#?}");
}

/// The API version jit sends is one GitHub's pinned description declares,
/// the fake accepts exactly the ones it declares, and no breaking change up
/// to jit's version touches a call jit makes.
#[test]
fn the_api_version_is_one_the_description_declares_and_breaks_nothing_jit_calls() {
    let spec = contract_dir().join("node_modules/@octokit/openapi/generated/api.github.com.json");
    let spec: serde_json::Value = serde_json::from_slice(&std::fs::read(&spec).expect("scripts/contract-tools installed it")).unwrap();
    // The first version is the base every path describes; later ones are declared by their breaking changes.
    let mut declared = std::collections::BTreeSet::from(["2022-11-28".to_string()]);
    let mut breaking: Vec<(String, String, String)> = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for change in op["x-github-breaking-changes"].as_array().into_iter().flatten() {
                let version = change["version"].as_str().unwrap().to_string();
                declared.insert(version.clone());
                breaking.push((path.clone(), method.clone(), version));
            }
        }
    }
    let supported: Vec<&str> = crate::common::fake_github::SUPPORTED_API_VERSIONS.to_vec();
    assert_eq!(declared.iter().map(String::as_str).collect::<Vec<_>>(), supported, "the fake accepts what the description declares");
    let ours = jit::providers::github::API_VERSION;
    assert!(declared.contains(ours), "jit sends {ours}, which the description does not declare");
    assert_eq!(declared.iter().next_back().map(String::as_str), Some(ours), "jit sends the newest version");
    let calls = [
        ("/app/installations/{installation_id}/access_tokens", "post"),
        ("/repos/{owner}/{repo}/installation", "get"),
        ("/installation/token", "delete"),
        ("/orgs/{org}/teams/{team_slug}/memberships/{username}", "get"),
        ("/orgs/{org}/teams/{team_slug}/memberships/{username}", "put"),
        ("/orgs/{org}/teams/{team_slug}/memberships/{username}", "delete"),
        ("/orgs/{org}/teams/{team_slug}/repos/{owner}/{repo}", "get"),
        ("/orgs/{org}/memberships/{username}", "get"),
        ("/orgs/{org}/invitations", "get"),
        ("/orgs/{org}/invitations/{invitation_id}", "delete"),
    ];
    for (path, method) in calls {
        assert!(spec["paths"][path][method].is_object(), "{method} {path} is not in the description");
        let touched: Vec<_> = breaking.iter().filter(|(p, m, v)| p == path && m == method && v.as_str() <= ours).collect();
        assert!(touched.is_empty(), "a breaking change up to {ours} touches {method} {path}: {touched:?}");
    }
}
