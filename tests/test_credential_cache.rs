//! The local credential cache under concurrency: several `jit` processes
//! writing at once never lose an entry or corrupt `credentials.json`.

use crate::common::{Run, TestBroker, cli_env};

const TEAM_POLICY: &str = r#"
[gateway]
repos_dir = "{data_dir}/repos"

[[rule]]
name = "team-write"
repos = ["team/*"]
levels = ["write"]
requesters = ["*"]
approvers = ["bob"]
max_duration = "8h"
"#;

fn password(run: &Run) -> Option<String> {
    run.stdout.lines().find_map(|l| l.strip_prefix("password=")).map(str::to_string)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_requests_finishing_at_once_keep_all_eight_credentials() {
    const ROUNDS: usize = 3;
    let repos: Vec<String> = (0..ROUNDS * 8).map(|i| format!("team/r{i}")).collect();
    let names: Vec<&str> = repos.iter().map(String::as_str).collect();
    let b = TestBroker::start_with_repos(TEAM_POLICY, &names).await;
    let env = cli_env(&b);
    env.login(&b.url, b.token("alice")).success();
    for round in names.chunks(8) {
        // Eight requests wait; bob approves all eight at once, so the eight
        // processes wake, mint and write the cache at the same moment.
        let children: Vec<_> =
            round.iter().map(|repo| env.spawn(&["request", repo, "--level", "write", "--for", "1h", "--reason", "race"])).collect();
        let mut pending: Vec<i64> = vec![];
        for _ in 0..400 {
            let listed = b.get("admin", "/v1/requests?status=pending").await.body;
            pending = listed.as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect();
            if pending.len() == 8 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        assert_eq!(pending.len(), 8);
        // Every waiter in its long-poll before the decisions land.
        b.long_polls_open(8).await;
        let approvals = futures_util::future::join_all(pending.iter().map(|id| b.approve("bob", *id))).await;
        assert!(approvals.iter().all(|r| r.status == 200));
        for child in children {
            env.wait_child(child).success();
        }
    }

    let index = env.credential_index();
    let urls = index["urls"].as_object().unwrap();
    assert_eq!(urls.len(), names.len(), "{index}");
    let mut answered = std::collections::HashSet::new();
    for repo in &names {
        let url = format!("{}/git/{repo}.git", b.url);
        assert_eq!(urls[&url].as_array().unwrap().len(), 1, "{url}: {index}");
        // ...and the keychain holds each one's password: the helper answers from it.
        let host = b.url.trim_start_matches("http://");
        let run = env.run_helper("get", &format!("protocol=http\nhost={host}\npath=git/{repo}.git\n\n"));
        let pw = password(&run).unwrap_or_else(|| panic!("no answer for {repo}: {}", run.stderr));
        env.secret(&pw);
        assert!(pw.starts_with("jitgw_"));
        answered.insert(pw);
    }
    // Each repo's own credential, not one entry shared by all.
    assert_eq!(answered.len(), names.len());
    assert!(
        !std::fs::read_dir(env.data_dir().join("jit")).unwrap().flatten().any(|e| e.file_name().to_string_lossy().ends_with(".tmp")),
        "no temp file left behind"
    );
}
