//! The layers behind the main checks, each broken on purpose once and
//! caught here: the gateway's own look at a grant's end, the cap on a
//! credential's life, the database's refusal to edit the audit log, the
//! events nobody reads until they need them, what logout forgets, the
//! store's durability setting and the long-poll's cap.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::{TestBroker, cli_env, config_for};

#[tokio::test]
async fn a_credential_never_outlives_its_grant() {
    // Credentials would live 2 h; the grant lives 1 h, so they end with it.
    let b = TestBroker::start_gateway("2h").await;
    let grant = b.request("alice", "demo", "read", "1h", None).await["grant"].clone();
    let minted = b.post("alice", &format!("/v1/grants/{}/credentials", grant["id"]), json!({})).await;
    assert_eq!(minted.status, 201, "{}", minted.body);
    assert_eq!(minted.body["expires_at"], grant["expires_at"]);
}

#[tokio::test]
async fn the_gateway_checks_a_grants_end_itself() {
    // Even a credential that somehow outlived its grant (a provider's bug, a
    // hand-edited database) is refused once the grant has ended.
    let b = TestBroker::start_gateway("1h").await;
    let grant = b.request("alice", "demo", "read", "1h", None).await["grant"]["id"].as_i64().unwrap();
    let password =
        b.post("alice", &format!("/v1/grants/{grant}/credentials"), json!({})).await.body["password"].as_str().unwrap().to_string();
    let refs = format!("{}/info/refs?service=git-upload-pack", b.demo_url());
    let fetch = || reqwest::Client::new().get(&refs).basic_auth("alice", Some(&password)).send();
    assert_eq!(fetch().await.unwrap().status(), 200);
    // The grant ended an hour ago and the reaper marked it so (ended_at set,
    // so it never looks again), but its credential was left alive.
    b.execute(
        "UPDATE credentials SET expires_at = expires_at + 86400000;
         UPDATE grants SET expires_at = expires_at - 7200000, ended_at = expires_at - 7200000;",
        "UPDATE credentials SET expires_at = expires_at + interval '1 day';
         UPDATE grants SET expires_at = expires_at - interval '2 hours', ended_at = expires_at - interval '2 hours';",
    )
    .await;
    let r = fetch().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.text().await.unwrap().trim(), format!("jit: your grant {grant} on demo has expired"));
}

#[tokio::test]
async fn the_database_refuses_to_edit_the_audit_log() {
    let b = TestBroker::start().await;
    b.request("alice", "demo", "read", "1h", None).await;
    for statement in [
        "DELETE FROM audit_events WHERE seq = 1",
        "UPDATE audit_events SET actor = 'mallory' WHERE seq = 1",
        "DELETE FROM audit_checkpoints",
    ] {
        let err = b.try_execute(statement).await.expect_err(statement);
        assert!(err.contains("append-only"), "{statement}: {err}");
    }
}

#[tokio::test]
async fn every_decision_is_an_event_cancel_included() {
    let b = TestBroker::start().await;
    let id = b.request("alice", "demo", "write", "1h", Some("x")).await["id"].as_i64().unwrap();
    assert_eq!(b.post("alice", &format!("/v1/requests/{id}/cancel"), json!({})).await.status, 200);
    let events = b.audit().await;
    let canceled: Vec<_> = events.iter().filter(|e| e["request_id"] == id && e["action"] == "canceled").collect();
    assert_eq!(canceled.len(), 1, "{events:?}");
    assert_eq!(canceled[0]["actor"], "alice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_forgets_every_cached_git_credential() {
    let b = TestBroker::start_gateway("1h").await;
    let env = cli_env(&b);
    env.login(&b.url, b.token("alice")).success();
    env.run(&["setup"]).success();
    env.run(&["request", "demo", "--level", "read", "--for", "1h"]).success();
    let url = url::Url::parse(&b.demo_url()).unwrap();
    let input =
        format!("protocol=http\nhost={}:{}\npath={}\n", url.host_str().unwrap(), url.port().unwrap(), url.path().trim_start_matches('/'));
    let before = env.run_helper("get", &input);
    assert!(before.stdout.contains("password="), "the cached credential is answered: {}", before.stdout);
    // A request left pending is forgotten too: it was this user's to follow.
    env.run(&["request", "demo", "--level", "write", "--for", "1h", "--reason", "x", "--no-wait"]).success();
    assert_eq!(env.credential_index()["pending"].as_array().map(Vec::len), Some(1), "{}", env.credential_index());
    let out = env.run(&["logout", "--json"]).success().json();
    assert_eq!((out["logged_out"].as_bool(), out["credentials_removed"].as_u64()), (Some(true), Some(1)), "{out}");
    let after = env.run_helper("get", &input);
    assert_eq!(after.stdout, "quit=1\n", "a logged-out machine answers git nothing but stop");
    // Whoever logs in next is not told about that request as theirs.
    env.login(&b.url, b.token("bob")).success();
    let next = env.run_helper("get", &input);
    assert!(!next.stderr.contains("your request"), "{}", next.stderr);
    assert_eq!(env.credential_index()["pending"], serde_json::json!([]));
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_data_directories_are_private_from_the_start() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    // The broker's: created by opening a broker on a path that did not exist.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("fresh/data");
    let broker = jit::server::Broker::open(config_for(crate::common::POLICY, &data)).await.unwrap();
    assert_eq!(mode(&data), 0o700);
    if !crate::common::postgres::enabled() {
        assert_eq!(mode(&data.join("jit.db")), 0o600);
    }
    broker.close_store().await;
    // The CLI's: where the credential cache lives.
    let b = TestBroker::start_gateway("1h").await;
    let env = cli_env(&b);
    env.login(&b.url, b.token("alice")).success();
    env.run(&["request", "demo", "--level", "read", "--for", "1h"]).success();
    let jit_data = env.data_dir().join("jit");
    assert_eq!(mode(&jit_data), 0o700, "{}", jit_data.display());
    for entry in std::fs::read_dir(&jit_data).unwrap().flatten() {
        assert_eq!(mode(&entry.path()) & 0o077, 0, "{} is readable by others", entry.path().display());
    }
}

#[tokio::test]
async fn a_long_poll_is_held_no_longer_than_the_cap() {
    let b = TestBroker::start().await;
    let id = b.request("alice", "demo", "write", "1h", Some("x")).await["id"].as_i64().unwrap();
    // A broker holds a long-poll a minute at most; the test broker, a second.
    assert_eq!(jit::server::ServerConfig::new("/tmp".into()).max_wait, Duration::from_secs(60));
    let cap = Duration::from_secs(1);
    let started = Instant::now();
    let path = format!("/v1/requests/{id}?wait=3600s");
    let r = tokio::time::timeout(cap + Duration::from_secs(10), b.get("alice", &path)).await.expect("the cap did not hold");
    assert_eq!(r.body["status"], "pending");
    let held = started.elapsed();
    assert!(held >= cap && held < cap + Duration::from_secs(5), "held {held:?}");
}
