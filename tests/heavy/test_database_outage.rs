//! The database going away under a running broker: `/healthz` says 503 and
//! calls fail at once with `unavailable` (nothing hangs, nothing half-done
//! is acknowledged); once the database is back the broker recovers by
//! itself, with no restart, and what it acknowledged before is all there.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;

use crate::common::POLICY;
use crate::common::process::{call, jit, spawn_broker_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_whose_database_goes_away_says_so_and_recovers_by_itself() {
    if crate::common::postgres::enabled() {
        eprintln!("runs in the SQLite pass (it starts a cluster of its own)");
        return;
    }
    let Some(cluster) = crate::common::postgres::OwnCluster::start() else { return };
    let database = cluster.database("outage");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("jit.toml");
    std::fs::write(&config, POLICY).unwrap();
    let init = jit()
        .args(["server", "--init-admin", "root", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env("JIT_DATABASE_URL", &database)
        .output()
        .unwrap();
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
    let root = String::from_utf8(init.stdout).unwrap().trim().to_string();
    let mut command = jit();
    command.env("JIT_DATABASE_URL", &database);
    let broker = spawn_broker_with(command, &config, &dir.path().join("data"));
    let url = broker.url.clone();
    let health = || async { reqwest::get(format!("{url}/healthz")).await.unwrap().status().as_u16() };
    let (status, alice) = call(&url, &root, Method::POST, "/v1/users", Some(json!({"name": "alice", "groups": ["developers"]}))).await;
    assert_eq!(status, 201, "{alice}");
    let alice = alice["token"].as_str().unwrap().to_string();
    let read = json!({"repo": "demo", "level": "read", "duration": "1h"});
    let (status, before) = call(&url, &alice, Method::POST, "/v1/requests", Some(read.clone())).await;
    assert_eq!((status, before["status"].as_str()), (201, Some("approved")), "{before}");
    assert_eq!(health().await, 200);

    cluster.control("pause");
    assert_eq!(health().await, 503, "/healthz tells a balancer the truth");
    let started = Instant::now();
    let write = json!({"repo": "demo", "level": "write", "duration": "1h", "reason": "while it is gone"});
    let (status, refused) = call(&url, &root, Method::POST, "/v1/users", Some(json!({"name": "bob", "groups": ["reviewers"]}))).await;
    assert_eq!(status, 503, "{refused}");
    assert!(started.elapsed() < Duration::from_secs(15), "a call while the database is gone fails, not hangs");
    let (status, _) = call(&url, &alice, Method::POST, "/v1/requests", Some(write.clone())).await;
    assert!(status == 503 || status == 401, "nothing is acknowledged while the database is gone: {status}");

    cluster.control("resume");
    let back = crate::common::eventually(health, |s| *s == 200).await;
    assert_eq!(back, 200, "recovered with no restart");
    let (status, after) = call(&url, &alice, Method::POST, "/v1/requests", Some(write)).await;
    assert_eq!((status, after["status"].as_str()), (201, Some("pending")), "{after}");
    let (_, listed) = call(&url, &alice, Method::GET, "/v1/requests", None).await;
    let ids: Vec<i64> = listed.as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [after["id"].as_i64().unwrap(), before["id"].as_i64().unwrap()], "what was acknowledged is there, nothing else");
    let (status, bob) = call(&url, &root, Method::GET, "/v1/users", None).await;
    assert_eq!(status, 200);
    assert!(!bob.to_string().contains("\"bob\""), "the refused user was not half-made: {bob}");
    let (_, verified) = call(&url, &root, Method::GET, "/v1/audit/verify", None).await;
    assert_eq!(verified["ok"], true, "{verified}");
}
