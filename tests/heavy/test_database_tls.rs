//! TLS to PostgreSQL: a cluster of its own with a certificate from a
//! throwaway CA; a broker whose URL asks for TLS (`sslmode=require`) and
//! whose `database_ca_file` holds that CA connects over TLS (the server says
//! so in `pg_stat_ssl`); without the CA it refuses to start, naming the
//! certificate, and never says the URL's password.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::common::process::jit;
use crate::common::tls::TestCa;
use crate::common::{ChildGuard, POLICY};

/// Gives `path` to the cluster's owner (the `postgres` user when the tests run as root).
fn hand_to_server(path: &Path) {
    if rustix::process::geteuid().is_root() {
        let out = Command::new("chown").arg("postgres").arg(path).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_reaches_postgresql_over_tls_only_with_the_servers_ca() {
    if crate::common::postgres::enabled() {
        eprintln!("runs in the SQLite pass (it starts a cluster of its own)");
        return;
    }
    let Some(cluster) = crate::common::postgres::OwnCluster::start() else { return };

    // The server's certificate, from a CA the system does not trust.
    let ca = TestCa::new("database CA");
    let (cert, key) = ca.issue();
    let tls = cluster.path().join("tls");
    std::fs::create_dir_all(&tls).unwrap();
    for (name, pem) in [("server.crt", &cert), ("server.key", &key)] {
        let path = tls.join(name);
        std::fs::write(&path, pem).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        hand_to_server(&path);
    }
    hand_to_server(&tls);
    cluster.psql(&format!("ALTER SYSTEM SET ssl_cert_file = '{}'", tls.join("server.crt").display()));
    cluster.psql(&format!("ALTER SYSTEM SET ssl_key_file = '{}'", tls.join("server.key").display()));
    cluster.psql("ALTER SYSTEM SET ssl = on");
    cluster.psql("SELECT pg_reload_conf()");
    // The reload is the postmaster's to do, a moment later: new sessions say when it did.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while cluster.psql("SHOW ssl") != "on" {
        assert!(std::time::Instant::now() < deadline, "the cluster never turned TLS on");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let database = cluster.database("tls_test");

    let work = tempfile::tempdir().unwrap();
    let ca_file = ca.write(work.path(), "db-ca.pem");
    // The password rides in the URL; trust auth ignores it, and nothing may show it.
    let url = format!("{database}?sslmode=require&password=hunter2-secret");
    let url_file = work.path().join("database-url");
    std::fs::write(&url_file, &url).unwrap();
    std::fs::set_permissions(&url_file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let config = |with_ca: bool| {
        let mut server = format!("[server]\ndatabase_url_file = \"{}\"\n", url_file.display());
        if with_ca {
            server.push_str(&format!("database_ca_file = \"{}\"\n", ca_file.display()));
        }
        let path = work.path().join(if with_ca { "with-ca.toml" } else { "without-ca.toml" });
        std::fs::write(&path, POLICY.replacen("[server]\n", &server, 1)).unwrap();
        path
    };

    // Without the CA: refused, the certificate named, the password not said.
    let refused = jit()
        .args(["server", "--init-admin", "root", "--config"])
        .arg(config(false))
        .arg("--data-dir")
        .arg(work.path().join("a"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{said}");
    assert!(said.to_lowercase().contains("certificate"), "{said}");
    assert!(!said.contains("hunter2-secret"), "the password was said: {said}");

    // With it: a broker on TLS, as the server sees it.
    let with_ca = config(true);
    let init = jit()
        .args(["server", "--init-admin", "root", "--config"])
        .arg(&with_ca)
        .arg("--data-dir")
        .arg(work.path().join("b"))
        .output()
        .unwrap();
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
    let child = jit()
        .args(["server", "--listen", "127.0.0.1:0", "--config"])
        .arg(&with_ca)
        .arg("--data-dir")
        .arg(work.path().join("b"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let child = ChildGuard::logged(child);
    let base = child.log().listening_url();
    let health: serde_json::Value = reqwest::get(format!("{base}/healthz")).await.unwrap().json().await.unwrap();
    assert_eq!((health["status"].as_str(), health["database"].as_str()), (Some("ok"), Some("postgresql")), "{health}");
    let over_tls =
        cluster.psql("SELECT COUNT(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'jit' AND s.ssl");
    let in_clear = cluster
        .psql("SELECT COUNT(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'jit' AND NOT s.ssl");
    assert!(over_tls.parse::<u32>().unwrap() >= 1, "the broker's connections over TLS: {over_tls}");
    assert_eq!(in_clear, "0", "none of the broker's connections in clear");
    assert!(!child.log().text().contains("hunter2-secret"), "the password is in the broker's log");
}
