//! Replicas behind a real load balancer: three `jit server` processes on one
//! PostgreSQL database behind Debian's haproxy (health-checking `/healthz`,
//! adding `X-Forwarded-For`), as docs/operating.md's replicated set-up has them.
//! A requester waiting on one replica hears an approval made on another; 450
//! long-polls through the balancer all succeed (more than one address's cap of
//! 128 at each replica: the balancer is a trusted proxy); concurrent approve
//! and deny races (200) end with one decision each and one verifying chain;
//! `git clone` and `git push` through the balancer keep working while a
//! replica is killed and after it is restarted;
//! and a grant that ends while its replica is dead is ended by another, once.
//!
//! It runs in `scripts/test`'s PostgreSQL pass (it needs the database and
//! haproxy, both installed by `.ci/run`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::process::{jit, spawn_broker_with};
use crate::common::{ChildGuard, Spawned, gateway_policy, init_bare_repo};

/// The replicas' config: the test policy, the gateway's repos on storage
/// they share, the balancer trusted, one audit key.
fn replica_config(shared: &Path) -> String {
    let key = shared.join("audit.key");
    std::fs::write(&key, hex::encode([7u8; 32])).unwrap();
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    gateway_policy("1h").replace("{data_dir}", &shared.display().to_string()).replacen(
        "[server]\n",
        &format!("[server]\ntrusted_proxies = [\"127.0.0.1/32\"]\naudit_key_file = \"{}\"\n", key.display()),
        1,
    )
}

fn start_replica(config: &Path, data: &Path, database: &str) -> Spawned {
    let mut command = jit();
    command.env("JIT_DATABASE_URL", database);
    spawn_broker_with(command, config, data)
}

/// haproxy in the foreground on a free loopback port, with the config
/// docs/operating.md shows (its address and brokers swapped for the test's).
struct Balancer {
    _child: ChildGuard,
    url: String,
}

fn start_haproxy(dir: &Path, backends: &[&str]) -> Balancer {
    let docs = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/operating.md")).unwrap();
    let block = docs.split("<!-- haproxy:begin -->").nth(1).and_then(|t| t.split("<!-- haproxy:end -->").next()).unwrap();
    let documented = block.trim().trim_start_matches("```").trim_end_matches("```").trim();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut config: Vec<String> = documented
        .lines()
        .filter(|l| !l.trim_start().starts_with("server "))
        .map(|l| l.replace("bind 127.0.0.1:8400", &format!("bind 127.0.0.1:{port}")))
        .collect();
    assert!(config.iter().any(|l| l.contains(&format!("bind 127.0.0.1:{port}"))), "the documented config binds 127.0.0.1:8400");
    for (i, url) in backends.iter().enumerate() {
        config.push(format!("    server r{i} {} check", url.trim_start_matches("http://")));
    }
    let path = dir.join("haproxy.cfg");
    std::fs::write(&path, config.join("\n") + "\n").unwrap();
    let child = std::process::Command::new("haproxy")
        .arg("-db")
        .arg("-f")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("haproxy (Debian: apt-get install haproxy; .ci/run installs it)");
    let child = ChildGuard::new(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "haproxy did not start listening on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
    Balancer { _child: child, url: format!("http://127.0.0.1:{port}") }
}

async fn call(url: &str, token: &str, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = reqwest::Client::new().request(method, format!("{url}{path}")).bearer_auth(token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.unwrap_or_else(|e| panic!("{path}: {e}"));
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn git(args: &[&str], dir: &Path) -> std::process::Output {
    std::process::Command::new("git").args(args).current_dir(dir).env("GIT_TERMINAL_PROMPT", "0").output().unwrap()
}

/// Every replica up, each answering `/healthz` through the balancer's checks.
async fn healthy_through(balancer: &Balancer) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(r) = reqwest::get(format!("{}/healthz", balancer.url)).await
            && r.status() == 200
        {
            return;
        }
        assert!(Instant::now() < deadline, "the balancer never found a healthy replica");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_behind_haproxy_share_decisions_survive_a_kill_and_end_grants_once() {
    if !crate::common::postgres::enabled() {
        eprintln!("runs in scripts/test's PostgreSQL pass (JIT_TEST_STORE=postgres)");
        return;
    }
    let have_haproxy = std::process::Command::new("haproxy").arg("-v").output().is_ok_and(|o| o.status.success());
    if !have_haproxy && std::env::var("JIT_TEST_POSTGRES").as_deref() != Ok("required") {
        eprintln!("skipped: haproxy is not installed (Debian: apt-get install haproxy; .ci/run installs it)");
        return;
    }
    let _turn = crate::common::MACHINE.lock().await;
    let database = crate::common::postgres::fresh_database().expect("the PostgreSQL pass has a server");
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("shared");
    std::fs::create_dir_all(shared.join("repos")).unwrap();
    init_bare_repo(&shared.join("repos/demo.git"));
    let config = dir.path().join("jit.toml");
    std::fs::write(&config, replica_config(&shared)).unwrap();
    let data = |i: usize| -> PathBuf { dir.path().join(format!("replica{i}")) };

    let init = jit()
        .args(["server", "--init-admin", "root", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(data(0))
        .env("JIT_DATABASE_URL", &database)
        .output()
        .unwrap();
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
    let root = String::from_utf8(init.stdout).unwrap().trim().to_string();
    let mut replicas: Vec<Spawned> = (0..3).map(|i| start_replica(&config, &data(i), &database)).collect();
    let urls: Vec<String> = replicas.iter().map(|r| r.url.clone()).collect();
    let balancer = start_haproxy(dir.path(), &urls.iter().map(String::as_str).collect::<Vec<_>>());
    healthy_through(&balancer).await;
    let lb = balancer.url.as_str();

    let mut tokens = std::collections::HashMap::new();
    for (name, group) in
        [("alice", "developers"), ("dave", "developers"), ("frank", "developers"), ("bob", "reviewers"), ("carol", "reviewers")]
    {
        let (status, body) = call(lb, &root, Method::POST, "/v1/users", Some(json!({"name": name, "groups": [group]}))).await;
        assert_eq!(status, 201, "{body}");
        tokens.insert(name, body["token"].as_str().unwrap().to_string());
    }

    // A requester long-polling replica 0 hears the approval made on replica 2.
    let (_, req) = call(
        lb,
        &tokens["alice"],
        Method::POST,
        "/v1/requests",
        Some(json!({"repo": "demo", "level": "write", "duration": "1h", "reason": "fix"})),
    )
    .await;
    let id = req["id"].as_i64().unwrap();
    let started = Instant::now();
    let wait_path = format!("/v1/requests/{id}?wait=20s");
    let waiter = call(&urls[0], &tokens["alice"], Method::GET, &wait_path, None);
    let approve = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (status, body) = call(&urls[2], &tokens["bob"], Method::POST, &format!("/v1/requests/{id}/approve"), Some(json!({}))).await;
        assert_eq!(status, 200, "{body}");
    };
    let ((_, waited), ()) = tokio::join!(waiter, approve);
    assert_eq!(waited["status"], "approved", "{waited}");
    assert!(started.elapsed() < Duration::from_secs(10), "the waiter on replica 0 slept through replica 2's approval");

    // 450 long-polls on one request through the balancer: 150 a replica,
    // each from the balancer's one address, all held and all answered.
    let (_, held) = call(
        lb,
        &tokens["dave"],
        Method::POST,
        "/v1/requests",
        Some(json!({"repo": "demo", "level": "write", "duration": "1h", "reason": "many"})),
    )
    .await;
    let held = held["id"].as_i64().unwrap();
    let http = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let mut polls = tokio::task::JoinSet::new();
    for _ in 0..450 {
        let (http, url, token) = (http.clone(), lb.to_string(), tokens["dave"].clone());
        polls.spawn(async move {
            let r = http.get(format!("{url}/v1/requests/{held}?wait=25s")).bearer_auth(token).send().await.expect("long-poll");
            (r.status().as_u16(), r.json::<Value>().await.unwrap_or(Value::Null))
        });
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (status, body) = call(lb, &tokens["carol"], Method::POST, &format!("/v1/requests/{held}/approve"), Some(json!({}))).await;
    assert_eq!(status, 200, "{body}");
    let mut answered = 0;
    while let Some(done) = polls.join_next().await {
        let (status, body) = done.unwrap();
        assert_eq!((status, body["status"].as_str()), (200, Some("approved")), "a long-poll through the balancer failed");
        answered += 1;
    }
    assert_eq!(answered, 450);

    // 200 requests, each approved and denied at once through the balancer
    // (the two calls landing on different replicas): one decision each.
    let mut pending = Vec::new();
    for n in 0..200 {
        let body = json!({"repo": "demo", "level": "write", "duration": "1h", "reason": format!("race {n}")});
        let (status, req) = call(lb, &tokens["alice"], Method::POST, "/v1/requests", Some(body)).await;
        assert_eq!((status, req["status"].as_str()), (201, Some("pending")), "{req}");
        pending.push(req["id"].as_i64().unwrap());
    }
    let mut races = tokio::task::JoinSet::new();
    // 32 races at a time (64 calls in flight): enough to land pairs on
    // different replicas at once, few enough for a loaded 2-core machine.
    let turns = std::sync::Arc::new(tokio::sync::Semaphore::new(32));
    for id in pending {
        let (lb, bob, carol) = (lb.to_string(), tokens["bob"].clone(), tokens["carol"].clone());
        let turns = turns.clone();
        races.spawn(async move {
            let _turn = turns.acquire_owned().await.unwrap();
            let (approve_path, deny_path) = (format!("/v1/requests/{id}/approve"), format!("/v1/requests/{id}/deny"));
            let approve = call(&lb, &bob, Method::POST, &approve_path, Some(json!({})));
            let deny = call(&lb, &carol, Method::POST, &deny_path, Some(json!({"reason": "no"})));
            let ((approved, _), (denied, _)) = tokio::join!(approve, deny);
            (id, approved, denied)
        });
    }
    while let Some(done) = races.join_next().await {
        let (id, approved, denied) = done.unwrap();
        let (_, req) = call(lb, &root, Method::GET, &format!("/v1/requests/{id}"), None).await;
        let status = req["status"].as_str().unwrap().to_string();
        let answers = (approved, denied);
        assert!(answers == (200, 409) || answers == (409, 200), "request {id}: approve {approved}, deny {denied}: one must win");
        assert_eq!(status, if approved == 200 { "approved" } else { "denied" }, "request {id}: the winner's decision stands");
    }
    let (_, verify) = call(lb, &root, Method::GET, "/v1/audit/verify", None).await;
    assert_eq!(verify["ok"], true, "one chain, whole, after writes from three replicas: {verify}");

    // git through the balancer (clone and push), while a replica is killed,
    // and after it comes back.
    let write = json!({"repo": "demo", "level": "write", "duration": "1h", "reason": "pushes through the balancer"});
    let (_, wanted) = call(lb, &tokens["dave"], Method::POST, "/v1/requests", Some(write)).await;
    let wanted = wanted["id"].as_i64().unwrap();
    let (_, approved) = call(lb, &tokens["bob"], Method::POST, &format!("/v1/requests/{wanted}/approve"), Some(json!({}))).await;
    let grant = approved["grant"]["id"].as_i64().unwrap();
    let (_, cred) = call(lb, &tokens["dave"], Method::POST, &format!("/v1/grants/{grant}/credentials"), Some(json!({}))).await;
    let clone_url = format!(
        "{}/git/demo.git",
        lb.replacen("http://", &format!("http://{}:{}@", cred["username"].as_str().unwrap(), cred["password"].as_str().unwrap()), 1)
    );
    let work = tempfile::tempdir().unwrap();
    for round in 0..14 {
        if round == 4 {
            replicas[1].kill();
        }
        if round == 9 {
            replicas[1] = start_replica(&config, &data(1), &database);
            std::thread::sleep(Duration::from_millis(600)); // two health checks: back in the rotation
        }
        let target = work.path().join(format!("clone{round}"));
        let out = git(&["clone", "-q", &clone_url, target.to_str().unwrap()], work.path());
        // A request in flight on the replica as it dies may fail; haproxy
        // retries refused connections on another, so none should here.
        assert!(out.status.success(), "clone {round} through the balancer failed: {}", String::from_utf8_lossy(&out.stderr));
        let commit = git(
            &[
                "-c",
                "user.name=dave",
                "-c",
                "user.email=dave@example.com",
                "commit",
                "-q",
                "--allow-empty",
                "-m",
                &format!("round {round}"),
            ],
            &target,
        );
        assert!(commit.status.success(), "{}", String::from_utf8_lossy(&commit.stderr));
        let push = git(&["push", "-q", "origin", &format!("HEAD:refs/heads/lb/round{round}")], &target);
        assert!(push.status.success(), "push {round} through the balancer failed: {}", String::from_utf8_lossy(&push.stderr));
    }
    let heads = git(&["ls-remote", &clone_url, "refs/heads/lb/*"], work.path());
    assert_eq!(String::from_utf8_lossy(&heads.stdout).lines().count(), 14, "every push landed on the shared storage");

    // A grant that ends while its replica is dead is ended by another, once.
    let expiring = json!({"repo": "demo", "level": "read", "duration": "2s"});
    // (frank has no other grant that would cover it)
    let (_, short) = call(&urls[0], &tokens["frank"], Method::POST, "/v1/requests", Some(expiring)).await;
    assert_eq!(short["status"], "approved", "{short}");
    let short_grant = short["grant"]["id"].as_i64().unwrap();
    replicas[0].kill();
    let deadline = Instant::now() + Duration::from_secs(20);
    let expired = loop {
        let (_, audit) = call(&urls[2], &root, Method::GET, "/v1/audit?limit=1000", None).await;
        let n = audit.as_array().unwrap().iter().filter(|e| e["action"] == "grant_expired" && e["grant_id"] == short_grant).count();
        if n > 0 || Instant::now() > deadline {
            break n;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(expired, 1, "replica 2 ended the dead replica's grant");
    // Replica 0 comes back: it does not end it again.
    replicas[0] = start_replica(&config, &data(0), &database);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (_, audit) = call(&urls[2], &root, Method::GET, "/v1/audit?limit=1000", None).await;
    let again = audit.as_array().unwrap().iter().filter(|e| e["action"] == "grant_expired" && e["grant_id"] == short_grant).count();
    assert_eq!(again, 1, "ended once");
}
