//! Restarts and crashes: every acknowledged decision survives, and the broker
//! refuses to start on a config it cannot read.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{ChildGuard, POLICY, TestBroker, call, jit, spawn_broker};

#[tokio::test]
async fn restart_keeps_every_acknowledged_decision() {
    let mut b = TestBroker::start().await;
    let approved = b.request("alice", "demo", "write", "1h", Some("a")).await["id"].as_i64().unwrap();
    b.approve("bob", approved).await;
    let denied = b.request("alice", "demo", "write", "1h", Some("b")).await["id"].as_i64().unwrap();
    b.deny("carol", denied, "no").await;
    let half = b.request("alice", "demo", "admin", "1h", None).await["id"].as_i64().unwrap();
    b.approve("bob", half).await;
    let before = b.get("admin", "/v1/requests").await.body;

    b.restart().await;

    assert_eq!(b.get("admin", "/v1/requests").await.body, before);
    // The half-approved request goes on where it stopped.
    let r = b.approve("carol", half).await;
    assert_eq!(r.body["status"], "approved", "{}", r.body);
    assert_eq!(b.get("admin", "/v1/audit/verify").await.body["ok"], true);
}

#[tokio::test]
async fn a_killed_broker_restarts_with_every_acknowledged_decision() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("jit.toml");
    std::fs::write(&config, POLICY).unwrap();
    let data = dir.path().join("data");

    // First admin on a fresh broker: --init-admin prints its token once.
    let out = crate::common::process::server_on(&data)
        .args(["server", "--init-admin", "root", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(&data)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let root = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(root.starts_with("jit_"));
    // A second bootstrap is refused (exit 5): it would be a back door.
    let again = crate::common::process::server_on(&data)
        .args(["server", "--init-admin", "root2", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(5));

    let mut broker = spawn_broker(&config, &data);
    let mut tokens = std::collections::HashMap::new();
    // Five developers, so five approvals make five grants (one user's second
    // grant on the same repo and level would supersede the first).
    let developers: Vec<String> = (0..5).map(|i| format!("dev{i}")).collect();
    for (name, group) in developers.iter().map(|d| (d.as_str(), "developers")).chain([("bob", "reviewers")]) {
        let (status, body) =
            call(&broker.url, &root, reqwest::Method::POST, "/v1/users", Some(json!({"name": name, "groups": [group]}))).await;
        assert_eq!(status, 201);
        tokens.insert(name, body["token"].as_str().unwrap().to_string());
    }
    let mut acknowledged = vec![];
    for (i, dev) in developers.iter().enumerate() {
        let (_, req) = call(
            &broker.url,
            &tokens[dev.as_str()],
            reqwest::Method::POST,
            "/v1/requests",
            Some(json!({"repo": "demo", "level": "write", "duration": "1h", "reason": format!("r{i}")})),
        )
        .await;
        let id = req["id"].as_i64().unwrap();
        let (status, _) =
            call(&broker.url, &tokens["bob"], reqwest::Method::POST, &format!("/v1/requests/{id}/approve"), Some(json!({}))).await;
        assert_eq!(status, 200);
        acknowledged.push(id);
    }
    // SIGKILL right after the last acknowledgement: no graceful anything.
    broker.kill();

    let mut broker = spawn_broker(&config, &data);
    for id in &acknowledged {
        let (_, req) = call(&broker.url, &root, reqwest::Method::GET, &format!("/v1/requests/{id}"), None).await;
        assert_eq!(req["status"], "approved", "request {id} after restart: {req}");
        assert_eq!(req["grant"]["status"], "active");
    }
    let (_, grants) = call(&broker.url, &root, reqwest::Method::GET, "/v1/grants?all=true", None).await;
    assert_eq!(grants.as_array().unwrap().len(), 5, "no grant doubled or lost");
    let (_, verify) = call(&broker.url, &root, reqwest::Method::GET, "/v1/audit/verify", None).await;
    assert_eq!(verify["ok"], true, "{verify}");
    broker.kill();
}

#[tokio::test]
async fn the_reaper_catches_up_after_downtime() {
    let mut b = TestBroker::start().await;
    let req = b.request("alice", "demo", "read", "1h", None).await;
    let rid = req["id"].as_i64().unwrap();
    if let Some(h) = b.handle.take() {
        h.shutdown().await.unwrap();
    }
    // The grant expires while nothing runs.
    b.advance(Duration::from_secs(3601));
    b.restart().await;
    let actions = crate::common::eventually(|| b.actions_for(rid), |a| a.len() == 3).await;
    assert_eq!(actions, ["requested", "granted", "grant_expired"]);
}

#[test]
fn a_bad_policy_stops_start_up_and_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    let bad = POLICY
        .replace("levels = [\"write\"]\nrequesters = [\"group:developers\"]", "levels = [\"wrote\"]\nrequesters = [\"group:developers\"]");
    assert_ne!(bad, POLICY);
    std::fs::write(&config, &bad).unwrap();
    let line = bad.lines().position(|l| l.contains("name = \"demo-write\"")).unwrap(); // the [[rule]] header is one line above
    let out =
        jit().args(["server", "--listen", "127.0.0.1:0", "--config"]).arg(&config).arg("--data-dir").arg(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("line {line}")) && stderr.contains("`wrote`"), "{stderr}");

    std::fs::write(&config, "[server]\nlisten = 5\n").unwrap();
    let out = jit().args(["server", "--config"]).arg(&config).arg("--data-dir").arg(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 2"));

    let out = jit().args(["server", "--config"]).arg(dir.path().join("missing.toml")).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.toml"));
}

/// `jit server --dev` on `data_dir`, with its printed next steps to read.
fn spawn_dev(data_dir: &std::path::Path) -> (ChildGuard, std::io::Lines<BufReader<std::process::ChildStdout>>) {
    let mut child = jit()
        .args(["server", "--dev", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .env("JIT_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    (ChildGuard::logged(child), stdout)
}

#[test]
fn the_dev_broker_writes_a_private_dev_json() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, mut stdout) = spawn_dev(dir.path());
    let first = stdout.next().unwrap().unwrap();
    assert!(first.starts_with("jit dev broker listening on http://127.0.0.1:"), "{first}");
    let rest: Vec<String> = stdout.by_ref().take_while(|l| !l.as_ref().unwrap().contains("audit verify")).map(|l| l.unwrap()).collect();
    assert!(rest.iter().any(|l| l.contains("jit request demo --level write")), "{rest:?}");
    let path = dir.path().join("dev.json");
    let dev: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
    for user in ["alice", "bob", "carol", "admin"] {
        assert!(dev["users"][user].as_str().unwrap().starts_with("jit_"));
    }
    assert!(dev["repos"]["demo"].as_str().unwrap().ends_with("/git/demo.git"));
    assert!(first.ends_with(dev["server_url"].as_str().unwrap()));
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn the_dev_broker_serves_a_demo_repo_with_one_commit_on_main() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, mut stdout) = spawn_dev(dir.path());
    stdout.next().unwrap().unwrap();
    std::thread::spawn(move || for _ in stdout {});
    let dev: Value = serde_json::from_slice(&std::fs::read(dir.path().join("dev.json")).unwrap()).unwrap();
    let (url, alice) = (dev["server_url"].as_str().unwrap(), dev["users"]["alice"].as_str().unwrap());
    let (status, req) =
        call(url, alice, reqwest::Method::POST, "/v1/requests", Some(json!({"repo": "demo", "level": "read", "duration": "10m"}))).await;
    assert_eq!((status, req["status"].as_str()), (201, Some("approved")), "{req}");
    let grant = req["grant"]["id"].as_i64().unwrap();
    let (status, cred) = call(url, alice, reqwest::Method::POST, &format!("/v1/grants/{grant}/credentials"), Some(json!({}))).await;
    assert_eq!(status, 201, "{cred}");
    let clone_url =
        dev["repos"]["demo"].as_str().unwrap().replacen("http://", &format!("http://alice:{}@", cred["password"].as_str().unwrap()), 1);
    let target = dir.path().join("clone");
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_TERMINAL_PROMPT", "0")
            .output()
            .unwrap()
    };
    let cloned = git(&["clone", "-q", &clone_url, target.to_str().unwrap()]);
    assert!(cloned.status.success(), "{}", String::from_utf8_lossy(&cloned.stderr));
    let log = git(&["-C", target.to_str().unwrap(), "log", "--format=%s", "main"]);
    assert_eq!(String::from_utf8_lossy(&log.stdout).lines().count(), 1);
    assert!(target.join("README.md").exists());
    child.kill().unwrap();
    child.wait().unwrap();
}
