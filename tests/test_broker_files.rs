//! The broker's own files: its data directory private from the start (and
//! made private when found readable), private files never reached through
//! links, and `/healthz` telling the truth about the database.

use crate::common::gateway::open_again;
use crate::common::{TestBroker, cli_env, config_for};

#[cfg(unix)]
#[tokio::test]
async fn a_world_readable_data_dir_is_made_private() {
    use std::os::unix::fs::PermissionsExt;
    let mut b = TestBroker::start().await;
    std::fs::set_permissions(b.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let sqlite = !crate::common::postgres::enabled();
    if sqlite {
        std::fs::set_permissions(b.db_path(), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    b.restart().await;
    assert_eq!(std::fs::metadata(b.dir.path()).unwrap().permissions().mode() & 0o777, 0o700);
    if sqlite {
        assert_eq!(std::fs::metadata(b.db_path()).unwrap().permissions().mode() & 0o777, 0o600);
    }
}

#[tokio::test]
async fn healthz_tells_the_truth_about_the_database() {
    let b = TestBroker::start().await;
    let health = reqwest::get(format!("{}/healthz", b.url)).await.unwrap();
    assert_eq!(health.status(), 200);
    // A table lost under a running broker: /healthz must not say ok.
    b.execute("DROP TABLE approvals", "DROP TABLE approvals").await;
    let health = reqwest::get(format!("{}/healthz", b.url)).await.unwrap();
    assert_eq!(health.status(), 503);
    let body: serde_json::Value = health.json().await.unwrap();
    assert_eq!((body["status"].as_str(), body["problem"].as_str()), (Some("unhealthy"), Some("the database is unavailable")));
}

/// Regression (finding 12): the signing key and the marker were written
/// through links planted in the data dir.
#[cfg(unix)]
#[tokio::test]
async fn private_files_are_never_reached_through_links() {
    let elsewhere = tempfile::tempdir().unwrap();
    let target = elsewhere.path().join("stolen.key");
    std::fs::write(&target, b"").unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(&target, dir.path().join("audit-signing.key")).unwrap();
    let refused = open_again(dir.path()).await.expect_err("a linked key must be refused");
    assert!(refused.contains("symbolic link"), "{refused}");
    assert_eq!(std::fs::read(&target).unwrap(), b"", "nothing was written through the link");

    // A dangling link: following it would create the key where the link points.
    let dir = tempfile::tempdir().unwrap();
    let planted = elsewhere.path().join("created-through-a-link.key");
    std::os::unix::fs::symlink(&planted, dir.path().join("audit-signing.key")).unwrap();
    assert!(open_again(dir.path()).await.is_err(), "a dangling link must be refused");
    assert!(!planted.exists(), "the key was written through the link");

    // The same for the marker beside SQLite's database, and for the data dir itself.
    crate::sqlite_only!();
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(&target, dir.path().join("jit.db.id")).unwrap();
    let refused = open_again(dir.path()).await.expect_err("a linked marker must be refused");
    assert!(refused.contains("symbolic link"), "{refused}");
    assert_eq!(std::fs::read(&target).unwrap(), b"");
    let real = tempfile::tempdir().unwrap();
    let link = elsewhere.path().join("data");
    std::os::unix::fs::symlink(real.path(), &link).unwrap();
    let refused = open_again(&link).await.expect_err("a linked data dir must be refused");
    assert!(refused.contains("symbolic link"), "{refused}");
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
