//! [`TestBroker`]: the real server, launched in-process, and an HTTP helper.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use jit::clock::ShiftedClock;
use jit::domain::token::ExposeSecret;
use jit::server::broker::NewUser;
use jit::server::{Broker, ServerConfig, ServerHandle, launch_with_listener};
use serde_json::Value;

/// The policy most tests run under.
pub const POLICY: &str = r#"
[server]
pending_ttl = "1h"

[[repo]]
name = "demo"
url = "http://127.0.0.1:9/git/demo.git"

[[repo]]
name = "acme/api"
url = "https://github.com/acme/api.git"

[[repo]]
name = "acme/secret"
url = "https://github.com/acme/secret.git"

[[rule]]
name = "demo-read"
repos = ["demo"]
levels = ["read"]
requesters = ["group:developers"]
auto_approve = true
max_duration = "8h"

[[rule]]
name = "demo-write"
repos = ["demo"]
levels = ["write"]
requesters = ["group:developers"]
approvers = ["group:reviewers", "alice"]
approvals = 1
reason_required = true
max_duration = "8h"

[[rule]]
name = "demo-admin"
repos = ["demo"]
levels = ["admin"]
requesters = ["group:developers"]
approvers = ["group:reviewers"]
approvals = 2
max_duration = "8h"

[[rule]]
name = "acme"
repos = ["acme/api"]
levels = ["read", "write"]
requesters = ["*"]
approvers = ["carol"]
max_duration = "1h"
"#;

/// name, groups, admin
pub const USERS: &[(&str, &[&str], bool)] = &[
    ("alice", &["developers"], false),
    ("dave", &["developers"], false),
    ("bob", &["reviewers"], false),
    ("carol", &["reviewers"], false),
    ("erin", &["reviewers"], false),
    ("mallory", &[], false),
    ("admin", &[], true),
];

/// [`POLICY`] with the demo repo served by the built-in gateway, whose
/// credentials live `credential_ttl`.
pub fn gateway_policy(credential_ttl: &str) -> String {
    let demo_repo = POLICY.split("[[repo]]\nname = \"acme/api\"").collect::<Vec<_>>();
    let rules_and_acme = format!("[[repo]]\nname = \"acme/api\"{}", demo_repo[1]);
    format!(
        "[server]\npending_ttl = \"1h\"\n\n[gateway]\nrepos_dir = \"{{data_dir}}/repos\"\ncredential_ttl = \"{credential_ttl}\"\n\n{rules_and_acme}"
    )
}

/// [`gateway_policy`] with the demo repo's write rule scoped to release
/// branches, deletes allowed there.
pub fn release_only_policy() -> String {
    let policy = gateway_policy("1h");
    let scoped = policy.replace(
        "name = \"demo-write\"\nrepos = [\"demo\"]\nlevels = [\"write\"]\n",
        "name = \"demo-write\"\nrepos = [\"demo\"]\nlevels = [\"write\"]\nrefs = [\"release/*\"]\nallow_deletes = true\n",
    );
    assert_ne!(scoped, policy);
    scoped
}

pub struct TestBroker {
    /// The broker's clock: the wall clock, jumped forward by [`TestBroker::advance`].
    pub clock: Arc<ShiftedClock>,
    pub dir: tempfile::TempDir,
    pub handle: Option<ServerHandle>,
    pub url: String,
    pub tokens: std::collections::BTreeMap<String, String>,
    pub policy: String,
    http: reqwest::Client,
    /// Where the shared log stood when this broker started: its drop searches from there.
    log_mark: usize,
    /// The PostgreSQL database this broker shares with others, if it does.
    pub shared: Option<SharedDatabase>,
}

/// A PostgreSQL database several test brokers share, with the key they all sign with.
#[derive(Clone)]
pub struct SharedDatabase {
    pub url: String,
    pub key_file: PathBuf,
    /// The brokers' `recheck`: long, so a test sees what the change feed
    /// does; short, to see the fallback when a notification never comes.
    pub recheck: std::time::Duration,
    _dir: Arc<tempfile::TempDir>,
}

impl SharedDatabase {
    /// `config` on this database, with the key and re-check its brokers share.
    pub fn apply(&self, config: &mut ServerConfig) {
        config.database = jit::server::config::Database::Postgres(jit::server::config::PostgresSettings {
            url: self.url.clone().into(),
            pool_size: 8,
            statement_timeout: std::time::Duration::from_secs(30),
            ca_file: None,
        });
        config.audit_key_file = Some(self.key_file.clone());
        config.recheck = self.recheck;
        config.max_wait = std::time::Duration::from_secs(30);
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            crate::common::logs::check_since(self.log_mark);
        }
    }
}

pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Resp {
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
    pub fn message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or("")
    }
}

pub fn config_for(policy: &str, data_dir: &Path) -> ServerConfig {
    let mut config = ServerConfig::from_toml(policy, Path::new("test.toml"), Some(data_dir.to_path_buf())).expect("test policy is valid");
    config.data_dir = data_dir.to_path_buf();
    config.reaper_interval = std::time::Duration::from_millis(100);
    // Long-polls end after a second (a broker's default is a minute), so a
    // test of the cap is quick; clients poll again, as they would anyway.
    config.max_wait = std::time::Duration::from_secs(1);
    config.auth_summary_every = std::time::Duration::from_millis(200);
    if crate::common::postgres::enabled() {
        config.database = jit::server::config::Database::Postgres(jit::server::config::PostgresSettings {
            url: crate::common::postgres::database_for(data_dir).into(),
            pool_size: 8,
            statement_timeout: std::time::Duration::from_secs(30),
            ca_file: None,
        });
    }
    config
}

impl TestBroker {
    pub async fn start() -> TestBroker {
        Self::start_with(POLICY).await
    }

    /// A broker whose gateway serves the demo repo (one commit on `main`) at
    /// `<url>/git/demo.git`, with gateway credentials living `credential_ttl`.
    pub async fn start_gateway(credential_ttl: &str) -> TestBroker {
        Self::start_with(&gateway_policy(credential_ttl)).await
    }

    pub async fn start_with(policy: &str) -> TestBroker {
        Self::start_with_repos(policy, &[]).await
    }

    /// A broker whose gateway serves the demo repo and a bare repo for each of
    /// `repos` (`team/r1` is `<repos_dir>/team/r1.git`, one commit on `main`).
    pub async fn start_with_repos(policy: &str, repos: &[&str]) -> TestBroker {
        Self::start_on(policy, repos, None, true).await
    }

    /// `n` brokers on one fresh PostgreSQL database (each with its own data
    /// dir, clock and replica id), the demo users made once through the first
    /// (`None`, said on stderr, without a test server).
    pub async fn start_replicas(n: usize, policy: &str) -> Option<Vec<TestBroker>> {
        Self::start_replicas_rechecking(n, policy, std::time::Duration::from_secs(600)).await
    }

    /// [`TestBroker::start_replicas`] whose brokers read their long-polls' requests every `recheck`.
    pub async fn start_replicas_rechecking(n: usize, policy: &str, recheck: std::time::Duration) -> Option<Vec<TestBroker>> {
        let url = crate::common::postgres::fresh_database()?;
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("audit.key");
        std::fs::write(&key_file, hex::encode(rand::random::<[u8; 32]>())).unwrap();
        std::fs::set_permissions(&key_file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        let shared = SharedDatabase { url, key_file, recheck, _dir: Arc::new(dir) };
        let mut brokers = vec![Self::start_on(policy, &[], Some(shared.clone()), true).await];
        for _ in 1..n {
            let mut b = Self::start_on(policy, &[], Some(shared.clone()), false).await;
            b.tokens = brokers[0].tokens.clone();
            brokers.push(b);
        }
        Some(brokers)
    }

    async fn start_on(policy: &str, repos: &[&str], shared: Option<SharedDatabase>, make_users: bool) -> TestBroker {
        let log_mark = crate::common::logs::mark();
        let dir = tempfile::tempdir().unwrap();
        let policy = policy.replace("{data_dir}", &dir.path().display().to_string());
        let policy = policy.as_str();
        let config = config_for(policy, dir.path());
        if let Some(root) = config.gateway_dir() {
            std::fs::create_dir_all(root).unwrap();
            jit::server::dev::create_demo_repo(&config).unwrap();
            for name in repos {
                init_bare_repo(&root.join(format!("{name}.git")));
            }
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let clock = Arc::new(ShiftedClock::new());
        let broker = Self::open(policy, dir.path(), &shared, &listener, clock.clone()).await;
        let mut tokens = std::collections::BTreeMap::new();
        for (name, groups, admin) in USERS.iter().filter(|_| make_users) {
            let new =
                NewUser { name: name.to_string(), groups: groups.iter().map(|g| g.to_string()).collect(), admin: *admin, email: None };
            let (_, token) = broker.create_user("test", new, false, None).await.unwrap();
            tokens.insert(name.to_string(), token.expose_secret().to_string());
        }
        let mut b = TestBroker {
            clock,
            dir,
            handle: None,
            url: String::new(),
            tokens,
            policy: policy.to_string(),
            http: reqwest::Client::new(),
            log_mark,
            shared,
        };
        b.launch(broker, listener).await;
        b
    }

    /// The broker on `data_dir`, its clone URLs on `listener`'s address.
    async fn open(
        policy: &str,
        data_dir: &Path,
        shared: &Option<SharedDatabase>,
        listener: &tokio::net::TcpListener,
        clock: Arc<ShiftedClock>,
    ) -> Arc<Broker> {
        let mut config = config_for(policy, data_dir);
        config.listen = listener.local_addr().unwrap();
        if let Some(shared) = shared {
            shared.apply(&mut config);
        }
        Arc::new(Broker::open_with_clock(config, clock).await.unwrap())
    }

    /// Moves the broker's time forward (the reaper and long-polls notice at
    /// once), so grants and requests can end without the test sleeping.
    pub fn advance(&self, by: std::time::Duration) {
        self.clock.advance(chrono::Duration::from_std(by).unwrap());
        if let Some(h) = &self.handle {
            h.broker.notify_change();
        }
    }

    /// Waits until the reaper has finished a whole round begun after this
    /// call (the one under way, if any, may have started before): whatever
    /// it would do about the state as it is now, it has done. How a test
    /// shows that something did *not* happen, without sleeping a guess.
    pub async fn reaper_caught_up(&self) {
        let broker = &self.handle.as_ref().expect("a running broker").broker;
        let start = broker.metrics().reaper_rounds();
        broker.notify_change();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while broker.metrics().reaper_rounds() < start + 2 {
            assert!(std::time::Instant::now() < deadline, "the reaper finished no round in 20 s");
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
    }

    /// Waits until at least `n` long-polls are held open on this broker, so
    /// what a test does next happens while they wait.
    pub async fn long_polls_open(&self, n: i64) {
        let broker = &self.handle.as_ref().expect("a running broker").broker;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while broker.metrics().long_polls() < n {
            assert!(std::time::Instant::now() < deadline, "never {n} long-polls open: {}", broker.metrics().long_polls());
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
    }

    async fn launch(&mut self, broker: Arc<Broker>, listener: tokio::net::TcpListener) {
        let handle = launch_with_listener(broker, listener).await.unwrap();
        self.url = handle.url();
        self.handle = Some(handle);
    }

    /// Stops the server and starts a new one on the same data dir (a restart).
    pub async fn restart(&mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown().await.unwrap();
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let broker = Self::open(&self.policy, self.dir.path(), &self.shared, &listener, self.clock.clone()).await;
        self.launch(broker, listener).await;
    }

    /// The demo repo's clone URL at this broker's gateway.
    pub fn demo_url(&self) -> String {
        format!("{}/git/demo.git", self.url)
    }

    /// Panics, naming where, if any of `secrets` is kept or shown where it
    /// must not be: in the broker's files (its database and journal), its
    /// audit log, or its answers (other than minting, which is the point).
    /// The broker's log is searched when it is dropped (`logs::secret`).
    pub async fn assert_keeps_and_shows_none_of(&self, secrets: &[String]) {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(self.dir.path()).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                files.push((path.display().to_string(), std::fs::read(&path).unwrap()));
            }
        }
        // On PostgreSQL what the broker keeps is in its tables: every row as
        // text (a secret in a bytea column shows as hex, looked for too).
        if self.postgres_url().is_some() {
            let tables = self.query_text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").await;
            for table in tables.iter().filter_map(|t| t[0].clone()) {
                let rows = self.query_text(&format!("SELECT * FROM {table}")).await;
                let text = format!("{rows:?}");
                let hex: String = secrets.iter().filter(|s| text.contains(&hex::encode(s.as_bytes()))).cloned().collect();
                assert!(hex.is_empty(), "a provider secret is in table {table}, hex-encoded");
                files.push((format!("PostgreSQL table {table}"), text.into_bytes()));
            }
        }
        let mut answers = vec![("the audit log".to_string(), serde_json::to_string(&self.audit().await).unwrap())];
        for path in ["/v1/grants?all=true", "/v1/requests", "/v1/repos", "/v1/grants/failing", "/healthz", "/v1/audit/verify"] {
            answers.push((path.to_string(), self.get("admin", path).await.body.to_string()));
        }
        for grant in self.get("admin", "/v1/grants?all=true").await.body.as_array().unwrap() {
            let path = format!("/v1/grants/{}", grant["id"]);
            answers.push((path.clone(), self.get("admin", &path).await.body.to_string()));
        }
        for secret in secrets.iter().filter(|s| s.len() >= 8) {
            for (name, bytes) in &files {
                assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()), "a provider secret is in {name} in clear");
            }
            for (name, text) in &answers {
                assert!(!text.contains(secret.as_str()), "a provider secret is in {name}: {text}");
            }
        }
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("jit.db")
    }

    /// The broker's database opened beside it, as an operator's `sqlite3` would be.
    pub fn db(&self) -> rusqlite::Connection {
        let conn = rusqlite::Connection::open(self.db_path()).unwrap();
        conn.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
        conn
    }

    /// The PostgreSQL database this broker is on, if it is.
    fn postgres_url(&self) -> Option<String> {
        match &self.shared {
            Some(shared) => Some(shared.url.clone()),
            None => crate::common::postgres::enabled().then(|| crate::common::postgres::database_for(self.dir.path())),
        }
    }

    /// Rows of `sql` (a query both engines read alike), each column as text,
    /// from whichever database this broker is on.
    pub async fn query_text(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        if let Some(url) = self.postgres_url() {
            return crate::common::postgres::query_text(&url, sql).await;
        }
        let db = self.db();
        let mut stmt = db.prepare(sql).unwrap();
        let columns = stmt.column_count();
        let rows = stmt.query_map([], |r| {
            (0..columns)
                .map(|i| {
                    Ok(match r.get_ref(i)? {
                        rusqlite::types::ValueRef::Null => None,
                        rusqlite::types::ValueRef::Integer(n) => Some(n.to_string()),
                        rusqlite::types::ValueRef::Real(x) => Some(x.to_string()),
                        rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => {
                            Some(String::from_utf8_lossy(t).into_owned())
                        }
                    })
                })
                .collect::<rusqlite::Result<Vec<_>>>()
        });
        rows.unwrap().map(Result::unwrap).collect()
    }

    /// Runs `sqlite` or `postgres` (whichever engine this broker is on) as
    /// the database's owner would: how tests tamper with what the broker keeps.
    pub async fn execute(&self, sqlite: &str, postgres: &str) {
        if let Some(url) = self.postgres_url() {
            crate::common::postgres::execute(&url, postgres).await;
        } else {
            self.db().execute_batch(sqlite).unwrap();
        }
    }

    /// Runs `sql` (alike on both engines); the database's refusal, if any.
    pub async fn try_execute(&self, sql: &str) -> Result<(), String> {
        if let Some(url) = self.postgres_url() {
            crate::common::postgres::try_execute(&url, sql).await
        } else {
            self.db().execute_batch(sql).map_err(|e| e.to_string())
        }
    }

    /// Rewrites audit events (`UPDATE audit_events SET {change}`) past the
    /// append-only guard, as someone with the database's keys could.
    pub async fn tamper_with_audit(&self, change: &str) {
        self.execute(
            &format!("DROP TRIGGER audit_events_no_update; UPDATE audit_events SET {change};"),
            &format!(
                "ALTER TABLE audit_events DISABLE TRIGGER USER; UPDATE audit_events SET {change};
                 ALTER TABLE audit_events ENABLE TRIGGER USER;"
            ),
        )
        .await;
    }

    pub fn token(&self, user: &str) -> &str {
        &self.tokens[user]
    }

    pub async fn send(&self, method: reqwest::Method, path: &str, token: Option<&str>, body: Option<Value>) -> Resp {
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("broker answers");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("JSON body expected, got: {text}"))
        };
        Resp { status, headers, body }
    }

    /// `user` mints a credential for `grant` as seen through a proxy that
    /// forwarded for `forwarded_for` (believed only if this broker trusts the peer).
    pub async fn mint_forwarded_for(&self, user: &str, grant: i64, forwarded_for: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/v1/grants/{grant}/credentials", self.url))
            .bearer_auth(self.token(user))
            .header("X-Forwarded-For", forwarded_for)
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, user: &str, path: &str) -> Resp {
        self.send(reqwest::Method::GET, path, Some(self.token(user)), None).await
    }

    pub async fn post(&self, user: &str, path: &str, body: Value) -> Resp {
        self.send(reqwest::Method::POST, path, Some(self.token(user)), Some(body)).await
    }

    /// Creates a request as `user`; panics unless it was accepted.
    pub async fn request(&self, user: &str, repo: &str, level: &str, duration: &str, reason: Option<&str>) -> Value {
        let r = self
            .post(user, "/v1/requests", serde_json::json!({"repo": repo, "level": level, "duration": duration, "reason": reason}))
            .await;
        assert_eq!(r.status, 201, "request refused: {}", r.body);
        r.body
    }

    pub async fn approve(&self, user: &str, id: i64) -> Resp {
        self.post(user, &format!("/v1/requests/{id}/approve"), serde_json::json!({})).await
    }

    pub async fn deny(&self, user: &str, id: i64, reason: &str) -> Resp {
        self.post(user, &format!("/v1/requests/{id}/deny"), serde_json::json!({"reason": reason})).await
    }

    pub async fn audit(&self) -> Vec<Value> {
        let r = self.get("admin", "/v1/audit").await;
        assert_eq!(r.status, 200);
        r.body.as_array().unwrap().clone()
    }

    /// The audit actions recorded for one request, in order.
    pub async fn actions_for(&self, request_id: i64) -> Vec<String> {
        self.audit().await.iter().filter(|e| e["request_id"] == request_id).map(|e| e["action"].as_str().unwrap().to_string()).collect()
    }
}

/// A bare repository with one commit on `main`.
pub fn init_bare_repo(path: &Path) {
    let mut opts = git2::RepositoryInitOptions::new();
    opts.bare(true).initial_head("main");
    let repo = git2::Repository::init_opts(path, &opts).unwrap();
    let readme = repo.blob(format!("# {}\n", path.display()).as_bytes()).unwrap();
    let mut tree = repo.treebuilder(None).unwrap();
    tree.insert("README.md", readme, 0o100644).unwrap();
    let tree = repo.find_tree(tree.write().unwrap()).unwrap();
    let sig = git2::Signature::now("test", "test@localhost").unwrap();
    repo.commit(Some("refs/heads/main"), &sig, &sig, "Initial commit", &tree, &[]).unwrap();
}

/// A sealed CLI environment that knows every token of `b` as a secret.
pub fn cli_env(b: &TestBroker) -> crate::common::TestEnvironment {
    let env = crate::common::TestEnvironment::new();
    for token in b.tokens.values() {
        env.secret(token);
    }
    env
}

/// Alice, logged in and set up, with bob's approval of a write grant on the
/// demo repo, and her clone of it: the environment and the clone's path.
pub async fn alice_with_a_write_clone(b: &TestBroker) -> (crate::common::TestEnvironment, std::path::PathBuf) {
    let alice = cli_env(b);
    alice.login(&b.url, b.token("alice")).success();
    alice.run(&["setup"]).success();
    let id = b.request("alice", "demo", "write", "1h", Some("release")).await["id"].as_i64().unwrap();
    assert_eq!(b.approve("bob", id).await.status, 200);
    let work = alice.work_dir();
    alice.git(&work, &["clone", &b.demo_url(), "demo"]).success();
    (alice, work.join("demo"))
}
