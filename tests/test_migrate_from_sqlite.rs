//! `jit server --migrate-from-sqlite DIR`: a one-machine broker's state,
//! audit log included, moved into PostgreSQL, and a broker on PostgreSQL
//! going on from it: the same people and tokens, the same requests and
//! grants, one chain that verifies. Refused, with nothing written, into a
//! database that is not empty, without the key that signed the log, or from
//! a directory that holds no broker.

use std::path::Path;

use reqwest::Method;
use serde_json::json;

use crate::common::process::{call, jit, spawn_broker_with};
use crate::common::{POLICY, Spawned};

fn serve(config: &Path, data: &Path, database: Option<&str>) -> Spawned {
    let mut command = jit();
    if let Some(url) = database {
        command.env("JIT_DATABASE_URL", url);
    }
    spawn_broker_with(command, config, data)
}

fn migrate(config: &Path, from: &Path, database: &str) -> std::process::Output {
    jit()
        .args(["server", "--config"])
        .arg(config)
        .arg("--migrate-from-sqlite")
        .arg(from)
        .env("JIT_DATABASE_URL", database)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_machine_broker_moves_into_postgresql_and_goes_on_there() {
    if crate::common::postgres::enabled() {
        eprintln!("runs in the SQLite pass (it starts from a SQLite broker of its own)");
        return;
    }
    let Some(database) = crate::common::postgres::fresh_database() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (config, old) = (dir.path().join("jit.toml"), dir.path().join("old"));
    std::fs::write(&config, POLICY).unwrap();

    // The one-machine broker, with some history.
    let init = jit().args(["server", "--init-admin", "root", "--config"]).arg(&config).arg("--data-dir").arg(&old).output().unwrap();
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
    let root = String::from_utf8(init.stdout).unwrap().trim().to_string();
    let mut broker = serve(&config, &old, None);
    let mut tokens = std::collections::HashMap::new();
    for (name, group) in [("alice", "developers"), ("bob", "reviewers")] {
        let (status, body) = call(&broker.url, &root, Method::POST, "/v1/users", Some(json!({"name": name, "groups": [group]}))).await;
        assert_eq!(status, 201, "{body}");
        tokens.insert(name, body["token"].as_str().unwrap().to_string());
    }
    let request = json!({"repo": "demo", "level": "write", "duration": "1h", "reason": "fix"});
    let (_, approved) = call(&broker.url, &tokens["alice"], Method::POST, "/v1/requests", Some(request.clone())).await;
    let approved_id = approved["id"].as_i64().unwrap();
    call(&broker.url, &tokens["bob"], Method::POST, &format!("/v1/requests/{approved_id}/approve"), Some(json!({}))).await;
    let (_, pending) = call(
        &broker.url,
        &tokens["alice"],
        Method::POST,
        "/v1/requests",
        Some(json!({"repo": "acme/api", "level": "write", "duration": "1h", "reason": "later"})),
    )
    .await;
    let (_, verified) = call(&broker.url, &root, Method::GET, "/v1/audit/verify", None).await;
    let events_before = verified["events"].as_u64().unwrap();
    broker.kill();

    // Refused, nothing written: no key named, then the wrong key.
    let shared = dir.path().join("postgres.toml");
    std::fs::write(&shared, POLICY).unwrap();
    let out = migrate(&shared, &old, &database);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("audit_key_file"), "{}", String::from_utf8_lossy(&out.stderr));
    let key = dir.path().join("audit.key");
    std::fs::write(&key, hex::encode([1u8; 32])).unwrap();
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    std::fs::write(&shared, POLICY.replacen("[server]\n", &format!("[server]\naudit_key_file = \"{}\"\n", key.display()), 1)).unwrap();
    let out = migrate(&shared, &old, &database);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not the key that signed"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = migrate(&shared, &dir.path().join("nowhere"), &database);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));

    // With the old broker's key: moved, and the log verified on both sides.
    std::fs::copy(old.join("audit-signing.key"), &key).unwrap();
    let out = migrate(&shared, &old, &database);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains(&format!("audit log verified before and after: {events_before} events")), "{said}");

    // A broker on PostgreSQL goes on from it: the same tokens, requests and grants, one chain.
    let moved = serve(&shared, &dir.path().join("new"), Some(&database));
    let (status, listed) = call(&moved.url, &tokens["alice"], Method::GET, "/v1/requests", None).await;
    assert_eq!(status, 200, "alice's token still works: {listed}");
    let ids: Vec<i64> = listed.as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [pending["id"].as_i64().unwrap(), approved_id]);
    let (_, grant) = call(&moved.url, &tokens["alice"], Method::GET, &format!("/v1/requests/{approved_id}"), None).await;
    assert_eq!(grant["status"], "approved");
    let pending_id = pending["id"].as_i64().unwrap();
    let cancel = format!("/v1/requests/{pending_id}/cancel");
    let (status, canceled) = call(&moved.url, &tokens["alice"], Method::POST, &cancel, Some(json!({}))).await;
    assert_eq!((status, canceled["status"].as_str()), (200, Some("canceled")), "{canceled}");
    let (_, next) = call(
        &moved.url,
        &tokens["alice"],
        Method::POST,
        "/v1/requests",
        Some(json!({"repo": "acme/api", "level": "read", "duration": "1h"})),
    )
    .await;
    assert!(next["id"].as_i64().unwrap() > pending_id, "new ids continue past the moved ones: {next}");
    let (_, verified) = call(&moved.url, &root, Method::GET, "/v1/audit/verify", None).await;
    assert_eq!(verified["ok"], true, "{verified}");
    assert!(verified["events"].as_u64().unwrap() > events_before, "{verified}");

    // Into a database that is no longer empty: refused, nothing written.
    drop(moved);
    let out = migrate(&shared, &old, &database);
    assert_eq!(out.status.code(), Some(5), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing was written"), "{}", String::from_utf8_lossy(&out.stderr));
}
