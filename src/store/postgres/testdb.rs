//! A fresh database per test on the PostgreSQL server that
//! `JIT_TEST_DATABASE_URL` names (`scripts/test` starts a throwaway cluster
//! and sets it when PostgreSQL is installed). Without it the PostgreSQL half
//! of a test says it was skipped, unless `JIT_TEST_POSTGRES=required`,
//! where it fails.

use std::time::Duration;

use super::Connect;

pub struct TestDatabase {
    pub connect: Connect,
    admin_url: String,
    name: String,
}

/// A new, empty database, or `None` (said on stderr) when no server was given.
pub async fn fresh() -> Option<TestDatabase> {
    let Ok(admin_url) = std::env::var("JIT_TEST_DATABASE_URL") else {
        assert!(
            std::env::var("JIT_TEST_POSTGRES").as_deref() != Ok("required"),
            "JIT_TEST_POSTGRES=required but JIT_TEST_DATABASE_URL is not set"
        );
        eprintln!("skipped the PostgreSQL half: JIT_TEST_DATABASE_URL is not set (scripts/test sets it when PostgreSQL is installed)");
        return None;
    };
    let name = format!("jit_test_{}", hex::encode(rand::random::<[u8; 6]>()));
    admin(&admin_url, &format!("CREATE DATABASE {name}")).await;
    let mut url = url::Url::parse(&admin_url).expect("JIT_TEST_DATABASE_URL is a URL");
    url.set_path(&format!("/{name}"));
    let connect = Connect { url: url.to_string().into(), pool_size: 8, statement_timeout: Duration::from_secs(30), ca_file: None };
    Some(TestDatabase { connect, admin_url, name })
}

async fn admin(url: &str, sql: &str) {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.expect("the test PostgreSQL server answers");
    let task = tokio::spawn(connection);
    client.batch_execute(sql).await.unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    drop(client);
    let _ = task.await;
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (url, sql) = (self.admin_url.clone(), format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
        // Dropped from a runtime of its own: Drop cannot wait on the test's.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
            rt.block_on(admin(&url, &sql));
        })
        .join();
    }
}
