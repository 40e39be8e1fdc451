//! The audit log keeps its promises at start-up and in exports: an emptied
//! database, a cut tail (with or without its checkpoints), a checkpoint the
//! broker did not sign or a rolled-back log stop the broker or fail
//! verification, naming what is wrong; an untouched log starts; the database
//! itself refuses to edit an event; every decision is an event.

use crate::common::gateway::open_again;
use crate::common::{TestBroker, cli_env};
use serde_json::json;

pub(crate) fn serve_once(dir: &std::path::Path) -> std::process::Output {
    let config = dir.join("jit.toml");
    std::fs::write(&config, crate::common::POLICY).unwrap();
    let mut child = crate::common::process::server_on(dir)
        .args(["server", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Bounded: a broker that starts instead of refusing is killed and fails the test.
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() && started.elapsed() < std::time::Duration::from_secs(10) {
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    let _ = child.kill();
    child.wait_with_output().unwrap()
}

#[tokio::test]
async fn an_emptied_database_stops_start_up_instead_of_starting_afresh() {
    // Regression: a zero-length jit.db started a fresh, empty broker (history gone).
    crate::sqlite_only!();
    let mut b = TestBroker::start().await;
    b.request("alice", "demo", "read", "1h", None).await;
    if let Some(h) = b.handle.take() {
        h.shutdown().await.unwrap();
    }
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", b.db_path().display()));
    }
    std::fs::write(b.db_path(), b"").unwrap();
    let out = serve_once(b.dir.path());
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is missing or empty, but this data dir held database") && stderr.contains("backup"), "{stderr}");
    assert_eq!(std::fs::metadata(b.db_path()).unwrap().len(), 0, "nothing was created in its place");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_audit_tail_is_named_not_passed() {
    // Regression: delete the last events and `jit audit verify` (server or
    // --file) said intact; an empty export verified.
    let mut b = TestBroker::start().await;
    let id = b.request("alice", "demo", "write", "1h", Some("fix")).await["id"].as_i64().unwrap();
    b.approve("bob", id).await;
    let env = cli_env(&b);
    let admin = [("JIT_SERVER", b.url.as_str()), ("JIT_TOKEN", b.token("admin"))];
    let key = env.run_with(&["audit", "key"], &admin, None).success().stdout.trim().to_string();
    let export = env.run_with(&["audit", "--json"], &admin, None).success().stdout.clone();
    let whole = env.write("whole.jsonl", &export);
    let ok = env.run_with(&["audit", "verify", "--file", whole.to_str().unwrap(), "--key", &key], &[], None);
    assert!(ok.success().stdout.contains("reaches the checkpoint the broker signed"), "{}", ok.stdout);
    let total = export.lines().count() - 1;

    // The export with its last two events cut.
    let mut lines: Vec<&str> = export.lines().collect();
    let checkpoint_line = lines.pop().unwrap();
    let cut: Vec<&str> = lines[..total - 2].iter().copied().chain([checkpoint_line]).collect();
    let cut = env.write("cut.jsonl", &(cut.join("\n") + "\n"));
    env.run(&["audit", "verify", "--file", cut.to_str().unwrap()]).code(1).stderr_has(&format!(
        "events {}..={} are missing",
        total - 1,
        total
    ));
    // Empty, or with the checkpoint line gone too: nothing shows the log is whole.
    for text in ["", &(lines[..total - 2].join("\n") + "\n")] {
        let f = env.write("bare.jsonl", text);
        env.run(&["audit", "verify", "--file", f.to_str().unwrap()]).code(1).stderr_has("no signed checkpoint");
    }
    // Another key than the broker's: refused.
    let other = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    env.run(&["audit", "verify", "--file", whole.to_str().unwrap(), "--key", other]).code(1).stderr_has("does not verify");

    // The same cut in the broker's own database: verify says so, and a restart refuses.
    b.execute(
        &format!("DROP TRIGGER audit_events_no_delete; DELETE FROM audit_events WHERE seq > {};", total - 2),
        &format!(
            "ALTER TABLE audit_events DISABLE TRIGGER USER; DELETE FROM audit_events WHERE seq > {};
             ALTER TABLE audit_events ENABLE TRIGGER USER;",
            total - 2
        ),
    )
    .await;
    let v = b.get("admin", "/v1/audit/verify").await.body;
    assert_eq!(v["ok"], false);
    assert!(v["error"].as_str().unwrap().contains("are missing"), "{v}");
    env.run_with(&["audit", "verify"], &admin, None).code(1).stderr_has(&format!("events {}..={} are missing", total - 1, total));
    if let Some(h) = b.handle.take() {
        h.shutdown().await.unwrap();
    }
    let out = serve_once(b.dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("events were removed from its end"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_earlier_export_catches_a_rolled_back_log() {
    let b = TestBroker::start().await;
    let env = cli_env(&b);
    let admin = [("JIT_SERVER", b.url.as_str()), ("JIT_TOKEN", b.token("admin"))];
    b.request("alice", "demo", "read", "1h", None).await;
    let earlier = env.write("earlier.jsonl", &env.run_with(&["audit", "--json"], &admin, None).success().stdout);
    b.request("dave", "demo", "read", "1h", None).await;
    let now = env.write("now.jsonl", &env.run_with(&["audit", "--json"], &admin, None).success().stdout);
    env.run(&["audit", "verify", "--file", now.to_str().unwrap(), "--pin", earlier.to_str().unwrap()]).success();
    // Rolled back to the earlier state, the log is consistent in itself (an
    // older checkpoint still signs it)...
    env.run(&["audit", "verify", "--file", earlier.to_str().unwrap()]).success();
    // ...but not with a checkpoint kept from later.
    let n = std::fs::read_to_string(&earlier).unwrap().lines().count() - 1;
    env.run(&["audit", "verify", "--file", earlier.to_str().unwrap(), "--pin", now.to_str().unwrap()])
        .code(1)
        .stderr_has(&format!("events {}..=", n + 1))
        .stderr_has("are missing");
}

/// A broker with a few audited batches behind it, stopped once the marker
/// beside its database holds its latest checkpoint: (its dir, the checkpoint
/// seqs in order).
async fn stopped_broker_with_history() -> (TestBroker, Vec<i64>) {
    let mut b = TestBroker::start().await;
    for user in ["alice", "dave", "alice"] {
        b.request(user, "demo", "read", "1h", None).await;
    }
    let db = b.db();
    let mut stmt = db.prepare("SELECT seq FROM audit_checkpoints ORDER BY seq").unwrap();
    let seqs: Vec<i64> = stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
    let marker = b.dir.path().join("jit.db.id");
    let latest = format!("checkpoint {} ", seqs.last().unwrap());
    crate::common::eventually(|| async { std::fs::read_to_string(&marker).unwrap_or_default() }, |m: &String| m.contains(&latest)).await;
    if let Some(h) = b.handle.take() {
        h.shutdown().await.unwrap();
    }
    (b, seqs)
}

/// Regression (finding 4): with the newer checkpoint rows deleted too, a cut
/// tail matched the latest remaining checkpoint, and the broker started (and
/// then signed the shorter log).
#[tokio::test]
async fn a_cut_tail_with_its_checkpoints_deleted_stops_start_up() {
    crate::sqlite_only!();
    let (b, seqs) = stopped_broker_with_history().await;
    let keep = seqs[seqs.len() - 3];
    let db = b.db();
    for sql in [
        "DROP TRIGGER audit_events_no_delete".to_string(),
        "DROP TRIGGER audit_checkpoints_no_delete".to_string(),
        format!("DELETE FROM audit_events WHERE seq > {keep}"),
        format!("DELETE FROM audit_checkpoints WHERE seq > {keep}"),
    ] {
        db.execute_batch(&sql).unwrap();
    }
    drop(db);
    let refused = open_again(b.dir.path()).await.expect_err("a cut log must not start");
    assert!(
        refused.contains(&format!("reached event {}", seqs.last().unwrap())) && refused.contains("checkpoints were deleted"),
        "{refused}"
    );
    assert!(refused.contains("jit.db.id"), "it names where the mark is kept: {refused}");
}

/// Regression (finding 4): start-up compared the latest checkpoint with its
/// event but never checked its signature, so a re-chained log with a
/// checkpoint row written to match it started.
#[tokio::test]
async fn a_checkpoint_the_broker_did_not_sign_stops_start_up() {
    crate::sqlite_only!();
    let (b, seqs) = stopped_broker_with_history().await;
    let forged = format!("UPDATE audit_checkpoints SET signature = '{}' WHERE seq = {}", "A".repeat(86) + "==", seqs.last().unwrap());
    b.db().execute_batch(&format!("DROP TRIGGER audit_checkpoints_no_update; {forged};")).unwrap();
    let refused = open_again(b.dir.path()).await.expect_err("a forged checkpoint must not start");
    assert!(refused.contains("not signed with this broker's key"), "{refused}");
}

#[tokio::test]
async fn an_untouched_log_starts_and_keeps_its_mark() {
    crate::sqlite_only!();
    let (b, seqs) = stopped_broker_with_history().await;
    open_again(b.dir.path()).await.unwrap();
    let marker = std::fs::read_to_string(b.dir.path().join("jit.db.id")).unwrap();
    assert!(marker.lines().nth(1).unwrap().starts_with(&format!("checkpoint {} ", seqs.last().unwrap())), "{marker}");
    // A marker from before the mark was kept (its id only) is brought up to date.
    std::fs::write(b.dir.path().join("jit.db.id"), format!("{}\n", marker.lines().next().unwrap())).unwrap();
    open_again(b.dir.path()).await.unwrap();
    assert_eq!(std::fs::read_to_string(b.dir.path().join("jit.db.id")).unwrap(), marker);
}

/// Regression (finding 5): a file of invented events numbered after a
/// genuine checkpoint line "reached" it, and an export with its first events
/// removed verified.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_or_headless_export_does_not_verify() {
    use jit::domain::audit::{Action, AuditEvent, NewEvent};
    let b = TestBroker::start().await;
    for user in ["alice", "dave"] {
        b.request(user, "demo", "read", "1h", None).await;
    }
    let env = crate::common::cli_env(&b);
    let admin = [("JIT_SERVER", b.url.as_str()), ("JIT_TOKEN", b.token("admin"))];
    let export = env.run_with(&["audit", "--json"], &admin, None).success().stdout.clone();
    let mut lines: Vec<String> = export.lines().map(str::to_string).collect();
    let checkpoint_line = lines.pop().unwrap();
    let whole = env.write("whole.jsonl", &export);
    env.run(&["audit", "verify", "--file", whole.to_str().unwrap()]).success();

    // Three events chained onto the checkpoint's own hash, numbered after it.
    let checkpoint: serde_json::Value = serde_json::from_str(&checkpoint_line).unwrap();
    let (mut seq, mut prev) =
        (checkpoint["checkpoint"]["seq"].as_i64().unwrap(), checkpoint["checkpoint"]["hash"].as_str().unwrap().to_string());
    let mut invented = Vec::new();
    for _ in 0..3 {
        seq += 1;
        let e = AuditEvent::chain(&NewEvent::new("mallory", Action::Approved), seq, "2026-12-06T00:00:00.000Z".into(), &prev);
        prev = e.hash.clone();
        invented.push(serde_json::to_string(&e).unwrap());
    }
    invented.push(checkpoint_line.clone());
    let forged = env.write("forged.jsonl", &(invented.join("\n") + "\n"));
    env.run(&["audit", "verify", "--file", forged.to_str().unwrap()]).code(1).stderr_has("not 1");

    // The genuine export without its first two events.
    let headless: Vec<String> = lines[2..].iter().cloned().chain([checkpoint_line]).collect();
    let headless = env.write("headless.jsonl", &(headless.join("\n") + "\n"));
    env.run(&["audit", "verify", "--file", headless.to_str().unwrap()]).code(1).stderr_has("events start at 3, not 1");
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
