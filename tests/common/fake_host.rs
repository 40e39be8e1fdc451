//! What every fake git host (`fake_github`, `fake_gitlab`, `fake_bitbucket`)
//! shares: the files the broker's config names for it, its strictness on
//! drop, and the check that none of its secrets is kept or shown.

use std::time::Duration;

use crate::common::{TestBroker, TestEnvironment, eventually};

/// `user`'s CLI environment, logged in to `b` (the host tests' usual start).
pub fn logged_in(b: &TestBroker, user: &str) -> TestEnvironment {
    let env = crate::common::cli_env(b);
    env.login(&b.url, b.token(user)).success();
    env
}

/// The audit events with `action`, in order.
pub fn actions(audit: &[serde_json::Value], action: &str) -> Vec<serde_json::Value> {
    audit.iter().filter(|e| e["action"] == action).cloned().collect()
}

/// A directory with the broker's secret for the host in `token_file` and a
/// sealing key in `sealing.key` (0600), both registered as secrets no log may show.
pub fn secrets_dir(token_file: &str, token: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    crate::common::logs::secret(token);
    std::fs::write(dir.path().join(token_file), format!("{token}\n")).unwrap();
    let key_path = dir.path().join("sealing.key");
    let sealing_key = hex::encode(rand::random::<[u8; 32]>());
    crate::common::logs::secret(&sealing_key);
    std::fs::write(&key_path, sealing_key).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    dir
}

/// The sealing key [`secrets_dir`] wrote.
pub fn sealing_key(dir: &tempfile::TempDir) -> String {
    std::fs::read_to_string(dir.path().join("sealing.key")).unwrap().trim().to_string()
}

/// Fails the test (unless it is failing already) when the broker sent `host` a request it should not have.
pub fn assert_no_violations(host: &str, violations: &[String]) {
    if !std::thread::panicking() {
        assert!(violations.is_empty(), "the broker sent {host} requests it should not have: {violations:#?}");
    }
}

/// With one live grant's credential handed to git and shown by `jit
/// status`, and again once the grant ended and the host revoked it
/// (`live_at_host` reaches 0): none of `secrets` is in the broker's files,
/// audit log or logs; the CLI side's output is checked for them as the test ends.
pub async fn assert_secrets_kept_nowhere(
    b: &TestBroker,
    cli: &TestEnvironment,
    secrets: impl Fn() -> Vec<String>,
    live_at_host: impl Fn() -> usize,
) {
    cli.run(&["status", "--json"]).success();
    let secrets = secrets();
    assert_eq!(secrets.len(), 3, "the broker's secret for the host, the sealing key, one credential");
    b.assert_keeps_and_shows_none_of(&secrets).await;
    b.advance(Duration::from_secs(3601));
    eventually(|| async { live_at_host() }, |n| *n == 0).await;
    b.assert_keeps_and_shows_none_of(&secrets).await;
    for secret in &secrets {
        cli.secret(secret);
    }
}

/// After the test scripted the host to fail the next two revocations: the
/// grant's end (an hour in) is retried, after 5 s and 10 s, until the host
/// holds nothing (`live_at_host` reaches 0), each failure audited, and the
/// grant listed by `jit admin grants --failing` (with its failure count)
/// until it has ended at the host.
pub async fn a_revocation_failing_twice_is_retried(b: &TestBroker, live_at_host: impl Fn() -> usize) {
    let failures = |a: &Vec<serde_json::Value>| a.iter().filter(|e| e["action"] == "host_revoke_failed").count();
    let admin = logged_in(b, "admin");
    let failing = || admin.run(&["admin", "grants", "--failing", "--json"]).success().json();
    b.advance(Duration::from_secs(3601));
    for (attempt, wait) in [(1, 5), (2, 10)] {
        eventually(|| b.audit(), |a| failures(a) == attempt).await;
        let listed = failing();
        assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
        assert_eq!(listed[0]["failures"].as_u64(), Some(attempt as u64), "{listed}");
        assert!(live_at_host() > 0, "the host still honours it, and that is what the list says");
        b.advance(Duration::from_secs(wait));
    }
    assert_eq!(eventually(|| async { live_at_host() }, |n| *n == 0).await, 0, "the host still honours an ended grant");
    let listed = eventually(|| async { failing() }, |l| l.as_array().is_some_and(Vec::is_empty)).await;
    assert_eq!(listed, serde_json::json!([]), "ended at the host, so no longer failing");
}
