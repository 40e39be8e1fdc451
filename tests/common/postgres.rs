//! The integration suite on PostgreSQL: with `JIT_TEST_STORE=postgres`
//! (`scripts/test` runs the suite a second time so), every broker a test
//! starts keeps its state in a database of its own on the server
//! `JIT_TEST_DATABASE_URL` names, one per data directory, so a restart on the
//! same directory finds its state again.

use std::path::Path;

/// Whether this run's brokers use PostgreSQL.
pub fn enabled() -> bool {
    std::env::var("JIT_TEST_STORE").as_deref() == Ok("postgres")
}

/// A new, empty database's URL, or `None` (said on stderr) when no test
/// server was given; with `JIT_TEST_POSTGRES=required` (`scripts/test` with a
/// cluster of its own) it fails instead.
pub fn fresh_database() -> Option<String> {
    if std::env::var("JIT_TEST_DATABASE_URL").is_err() {
        assert!(
            std::env::var("JIT_TEST_POSTGRES").as_deref() != Ok("required"),
            "JIT_TEST_POSTGRES=required but JIT_TEST_DATABASE_URL is not set"
        );
        eprintln!(
            "skipped: this test needs PostgreSQL and JIT_TEST_DATABASE_URL is not set (scripts/test sets it when PostgreSQL is installed)"
        );
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    Some(database_for(dir.path()))
}

/// The URL of the database kept for `data_dir` (made on first use).
pub fn database_for(data_dir: &Path) -> String {
    let admin_url = std::env::var("JIT_TEST_DATABASE_URL").expect("JIT_TEST_STORE=postgres needs JIT_TEST_DATABASE_URL");
    use sha2::Digest;
    let name = format!("jit_it_{}", &hex::encode(sha2::Sha256::digest(data_dir.as_os_str().as_encoded_bytes()))[..16]);
    let (admin, db) = (admin_url.clone(), name.clone());
    // On a runtime of its own: callers are sync, and may be inside a test's runtime.
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let (client, connection) =
                tokio_postgres::connect(&admin, tokio_postgres::NoTls).await.expect("the test PostgreSQL server answers");
            let task = tokio::spawn(connection);
            let exists = client.query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&db]).await.unwrap().is_some();
            if !exists {
                client.batch_execute(&format!("CREATE DATABASE {db}")).await.unwrap();
            }
            drop(client);
            let _ = task.await;
        })
    })
    .join()
    .unwrap();
    let mut url = url::Url::parse(&admin_url).unwrap();
    url.set_path(&format!("/{name}"));
    url.to_string()
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.expect("the test database answers");
    tokio::spawn(connection);
    client
}

/// Rows of `sql` on the database at `url`, each column as text.
pub async fn query_text(url: &str, sql: &str) -> Vec<Vec<Option<String>>> {
    let client = connect(url).await;
    let mut rows = Vec::new();
    for message in client.simple_query(sql).await.unwrap_or_else(|e| panic!("{sql}: {e:?}")) {
        if let tokio_postgres::SimpleQueryMessage::Row(row) = message {
            rows.push((0..row.len()).map(|i| row.get(i).map(str::to_string)).collect());
        }
    }
    rows
}

/// Runs `sql` on the database at `url`.
pub async fn execute(url: &str, sql: &str) {
    connect(url).await.batch_execute(sql).await.unwrap_or_else(|e| panic!("{sql}: {e:?}"));
}

/// Runs `sql` on the database at `url`; the database's refusal, if any.
pub async fn try_execute(url: &str, sql: &str) -> Result<(), String> {
    connect(url).await.batch_execute(sql).await.map_err(|e| format!("{e:?}"))
}

/// Returns from the test when the suite runs on PostgreSQL: for the few
/// tests of SQLite's own file (its journal, its marker, its mode), which the
/// SQLite pass of the same run has just run.
#[macro_export]
macro_rules! sqlite_only {
    () => {
        if $crate::common::postgres::enabled() {
            eprintln!("about SQLite's own file: run in the SQLite pass, not this one");
            return;
        }
    };
}

/// A PostgreSQL cluster of a test's own (`scripts/test-postgres`), for what
/// the shared one must not see (TLS turned on, the server stopped); stopped
/// and removed when dropped. `None` (said) when PostgreSQL is not installed,
/// unless CI requires it.
pub struct OwnCluster {
    dir: tempfile::TempDir,
    pub url: String,
}

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/test-postgres");

impl OwnCluster {
    pub fn start() -> Option<OwnCluster> {
        if std::fs::read_dir("/usr/lib/postgresql").is_err() {
            assert!(
                std::env::var("JIT_TEST_POSTGRES").as_deref() != Ok("required"),
                "JIT_TEST_POSTGRES=required but PostgreSQL is not installed"
            );
            eprintln!("skipped: PostgreSQL is not installed");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new(SCRIPT).arg("start").arg(dir.path().join("pg")).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        Some(OwnCluster { url: String::from_utf8(out.stdout).unwrap().trim().to_string(), dir })
    }

    /// Where the cluster keeps its files.
    pub fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("pg")
    }

    /// `pause` (the server stopped, its data kept) or `resume`.
    pub fn control(&self, what: &str) {
        let out = std::process::Command::new(SCRIPT).arg(what).arg(self.path()).output().unwrap();
        assert!(out.status.success(), "{what}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// One statement through psql, its answer as text.
    pub fn psql(&self, sql: &str) -> String {
        let out = std::process::Command::new("psql").arg(&self.url).args(["-Atqc", sql]).output().unwrap();
        assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// A new database's URL.
    pub fn database(&self, name: &str) -> String {
        self.psql(&format!("CREATE DATABASE {name}"));
        self.url.replace("/postgres", &format!("/{name}"))
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        let _ = std::process::Command::new(SCRIPT).arg("stop").arg(self.path()).output();
    }
}
