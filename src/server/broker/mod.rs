//! The broker: the one door to the store. Every rule about who may do what
//! lives in one method here; HTTP handlers parse, call one method and render.
//!
//! Every state change is decided on a fresh read and applied with a
//! compare-and-set; on a lost race the operation re-reads and decides again, so
//! concurrent approvers end in exactly one decision. After each decision the
//! broker hands the new record to that request's long-poll waiters
//! ([`waiters`]); changes it cannot name by request (a removed user, a clock
//! a test moved, shutdown) bump a [`watch`] counter that wakes every waiter to
//! re-read. No waiter sleeps through a decision.
//!
//! Nothing here knows about HTTP: outcomes are [`BrokerError`]s and git
//! refusals are [`git::GitRefusal`]s, mapped to responses in `server::error`.

pub mod audit;
pub mod changes;
mod error;
pub mod git;
mod grants;
mod guard;
mod notify;
mod observe;
mod requests;
mod reviews;
mod sessions;
mod users;
mod waiters;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};
use tokio::sync::{Notify, watch};

pub use self::error::{BrokerError, BrokerResult, SignInError};
pub use self::notify::{DueNotice, NextNotice, Outcome};
pub use self::requests::RequestQuery;
pub use self::sessions::{Authenticated, CalledBack, DeviceSignIn, SignInPoll};
pub use self::users::NewUser;
use super::config::ServerConfig;
use crate::clock::{Clock, SystemClock};
use crate::domain::audit::{BROKER_ACTOR, NewEvent};
use crate::domain::policy::{Rule, Subject};
use crate::domain::records::UserRecord;
use crate::domain::repo::{CloneUrl, RepoSpec};
use crate::domain::{AccessDuration, Level};
use crate::providers::{Provider, ProviderError};
use crate::server::config::Database;
use crate::store::postgres::import::Imported;
use crate::store::postgres::{Connect, PostgresStore};
use crate::store::sqlite::SqliteStore;
use crate::store::{Store, StoreError};

/// Why a broker could not open.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot create the data directory {path}: {source}")]
    DataDir { path: PathBuf, source: std::io::Error },
    #[error("the database {path}: {source}")]
    Store { path: PathBuf, source: StoreError },
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error("{0}")]
    Repos(String),
    #[error("oidc: {0}")]
    Oidc(String),
}

impl OpenError {
    /// Whether the database is damaged or not a jit database (not merely unreachable).
    pub fn database_damaged(&self) -> bool {
        matches!(self, OpenError::Store { source: StoreError::Corrupt(_), .. })
    }

    /// Whether the database holds what was to be written anew (a migration's target is not empty).
    pub fn already_there(&self) -> bool {
        matches!(self, OpenError::Store { source: StoreError::AlreadyExists(_), .. })
    }
}

/// One page of a listing, and where the next one starts (`None`: this was the last).
#[derive(Debug)]
pub struct Listing<T> {
    pub items: Vec<T>,
    pub next_before: Option<i64>,
}

pub struct Broker {
    store: Arc<dyn Store>,
    /// What `/metrics` reports.
    metrics: crate::server::metrics::Metrics,
    /// The rules and repos in force: swapped whole when the config is re-read (SIGHUP).
    live: std::sync::RwLock<Arc<Live>>,
    /// Verifies the checkpoints the store signs (the private half stays in the store).
    audit_key: ed25519_dalek::VerifyingKey,
    config: ServerConfig,
    clock: Arc<dyn Clock>,
    changes: watch::Sender<u64>,
    /// Long-poll waiters by request, woken with the record a decision wrote.
    waiters: waiters::Waiters,
    /// Bearer tokens already checked against the store, and whose they are.
    known_tokens: users::KnownTokens,
    reaper_wake: Notify,
    /// Set at shutdown so long-polls return at once instead of holding it up.
    closing: AtomicBool,
    /// Per grant, the fetch window that folds repeated fetches into one audit event.
    fetch_windows: std::sync::Mutex<std::collections::HashMap<i64, git::FetchWindow>>,
    /// When the reaper last looked for unreviewed break-glass grants due a reminder.
    reminders_checked: std::sync::Mutex<Option<DateTime<Utc>>>,
    /// Per (source, kind of refusal), when a git refusal was last audited.
    refusal_windows: std::sync::Mutex<std::collections::HashMap<git::RefusalKey, DateTime<Utc>>>,
    /// Failed-login limits, per-credential git limits, and the failure tally.
    guard: std::sync::Mutex<guard::Guard>,
    /// The identity provider people sign in with (`[oidc]`), if any.
    idp: Option<crate::server::oidc::Idp>,
    /// Browser sign-ins between their start and the CLI collecting them.
    browser_sign_ins: sessions::BrowserSignIns,
    /// This broker among those sharing a database (`host:data-dir-hash`), for claims and `/healthz`.
    replica: String,
    /// When this broker opened (for `jit admin replicas`).
    started_at: DateTime<Utc>,
    /// The audit log's head when this broker opened, before it served
    /// anything: `/metrics` counts the events after it, every one of them.
    head_at_start: i64,
    /// Whether other brokers may share the database (PostgreSQL): then what
    /// they change is heard through the store's change feed (`changes`).
    shared: bool,
}

/// What re-reading the config changes while the broker runs: the policy
/// and the repos (with those the providers bring), and the policy's hash.
/// Everything else in the config is read once, at start.
#[derive(Debug)]
pub struct Live {
    pub policy: crate::domain::policy::Policy,
    pub repos: Vec<RepoSpec>,
    pub policy_hash: String,
}

impl Live {
    pub fn repo(&self, name: &str) -> Option<&RepoSpec> {
        self.repos.iter().find(|r| r.name == name)
    }
}

/// What a reload did.
#[derive(Debug)]
pub struct Reloaded {
    /// Whether the policy differs from the one in force (else nothing was done).
    pub changed: bool,
    /// Whether the file's providers differ from the running ones (which stay until a restart).
    pub providers_differ: bool,
    pub hash: String,
}

/// The repos a broker serves: the `[[repo]]`s (those the gateway fronts
/// cloned from the gateway, their `url` kept as where the code lives), and
/// the repos the providers bring.
fn effective_repos(mut repos: Vec<RepoSpec>, providers: &crate::providers::Registry, base: &str) -> Result<Vec<RepoSpec>, OpenError> {
    for repo in &mut repos {
        if providers.for_repo(repo).is_some_and(|p| p.access().fronts_listed_repos()) {
            let gateway_url = CloneUrl::parse(&format!("{base}/git/{}.git", repo.name)).map_err(|e| OpenError::Repos(e.to_string()))?;
            repo.upstream = repo.url.replace(gateway_url);
        }
    }
    for provider in providers.all() {
        for repo in provider.discover(base)? {
            if repos.iter().any(|r| r.name == repo.name) {
                return Err(OpenError::Repos(format!(
                    "repo `{}` is both a [[repo]] and a repo of provider `{}`",
                    repo.name,
                    provider.name()
                )));
            }
            repos.push(repo);
        }
    }
    Ok(repos)
}

fn subject(user: &UserRecord) -> Subject<'_> {
    Subject { name: &user.name, groups: &user.groups }
}

/// An audit event about `repo` at `level` by `actor`.
fn event(actor: &str, action: crate::domain::audit::Action, repo: &str, level: Level) -> NewEvent {
    let mut e = NewEvent::new(actor, action);
    e.repo = Some(repo.to_string());
    e.level = Some(level);
    e
}

/// Moves the one-machine broker's state in `sqlite_dir` (its `jit.db`,
/// signed with its `audit-signing.key`) into the empty PostgreSQL database
/// `config` names; the brokers that will run on it must sign with that same
/// key (`server.audit_key_file`), so the chain goes on unbroken.
pub async fn import_sqlite(config: &ServerConfig, sqlite_dir: &std::path::Path) -> Result<Imported, OpenError> {
    let Database::Postgres(settings) = &config.database else {
        return Err(OpenError::Repos(
            "--migrate-from-sqlite needs the PostgreSQL database to move into: server.database_url_file (or JIT_DATABASE_URL)".into(),
        ));
    };
    let key_path = sqlite_dir.join("audit-signing.key");
    let key = audit::load_signing_key_file(&key_path).map_err(|source| OpenError::DataDir { path: key_path.clone(), source })?;
    let Some(shared) = &config.audit_key_file else {
        return Err(OpenError::Repos(format!(
            "server.audit_key_file is missing: the brokers on PostgreSQL must go on signing the chain {} began (copy it, mode 0600, and name it there)",
            key_path.display()
        )));
    };
    let theirs = audit::load_signing_key_file(shared).map_err(|source| OpenError::DataDir { path: shared.clone(), source })?;
    if theirs.verifying_key() != key.verifying_key() {
        return Err(OpenError::Repos(format!(
            "server.audit_key_file {} is not the key that signed {}'s audit log ({}): the chain would not verify",
            shared.display(),
            sqlite_dir.display(),
            key_path.display()
        )));
    }
    let connect = Connect {
        url: settings.url.clone(),
        pool_size: 2,
        statement_timeout: std::time::Duration::from_secs(600),
        ca_file: settings.ca_file.clone(),
    };
    crate::store::postgres::import::from_sqlite(&sqlite_dir.join("jit.db"), key, &connect)
        .await
        .map_err(|source| OpenError::Store { path: settings.shown_url().into(), source })
}

/// Called with other brokers on the database: the gateway's `repos_dir` must be the
/// same storage on each, or a repo would be one thing here and another
/// there. The storage carries an id (`.jit-storage-id`, made by the first
/// broker to see it) and the database keeps the first id any broker
/// brought: a broker whose `repos_dir` holds another refuses to start.
/// Returns whether there was anything to check.
async fn shared_store_guard(store: &Arc<dyn Store>, config: &ServerConfig) -> Result<bool, OpenError> {
    let Some(dir) = config.gateway_dir() else { return Ok(false) };
    let marker = dir.join(".jit-storage-id");
    let fresh = hex::encode(rand::random::<[u8; 16]>());
    let unreadable = |e: std::io::Error| OpenError::Repos(format!("gateway.repos_dir: {}: {e}", marker.display()));
    std::fs::create_dir_all(dir).map_err(unreadable)?;
    let ours = match std::fs::OpenOptions::new().write(true).create_new(true).open(&marker) {
        Ok(mut file) => {
            std::io::Write::write_all(&mut file, fresh.as_bytes()).map_err(unreadable)?;
            fresh
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => std::fs::read_to_string(&marker).map_err(unreadable)?.trim().to_string(),
        Err(e) => return Err(unreadable(e)),
    };
    let agreed = store
        .agree("gateway_storage", &ours)
        .await
        .map_err(|source| OpenError::Store { path: "(the gateway's storage id)".into(), source })?;
    if agreed != ours {
        return Err(OpenError::Repos(format!(
            "gateway.repos_dir {} is not the storage the other brokers on this database serve (it is {ours}, theirs is {agreed}): \
             mount the same storage at repos_dir on every broker, so each serves the same repos",
            dir.display()
        )));
    }
    Ok(true)
}

/// `host:data-dir-hash`: which broker this is, among those sharing a
/// database. The same after a restart, so a broker killed mid-call takes its
/// own claims straight back instead of waiting for them to run out.
fn replica_id(data_dir: &std::path::Path) -> String {
    use sha2::Digest;
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    let dir = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    format!("{host}:{}", &hex::encode(sha2::Sha256::digest(dir.as_os_str().as_encoded_bytes()))[..8])
}

impl Broker {
    /// Opens the broker on `config`'s data directory with the system clock.
    pub async fn open(config: ServerConfig) -> Result<Broker, OpenError> {
        Self::open_with_clock(config, Arc::new(SystemClock)).await
    }

    /// Opens the SQLite store under the data directory (created owner-only),
    /// and adds the repos the providers bring (the gateway's bare repos).
    pub async fn open_with_clock(mut config: ServerConfig, clock: Arc<dyn Clock>) -> Result<Broker, OpenError> {
        let widened = crate::fsutil::make_private_dir(&config.data_dir)
            .map_err(|source| OpenError::DataDir { path: config.data_dir.clone(), source })?;
        if widened {
            tracing::warn!(dir = %config.data_dir.display(), "the data directory was readable by others; made it owner-only (0700)");
        }
        let key = match &config.audit_key_file {
            Some(path) => audit::load_signing_key_file(path).map_err(|source| OpenError::DataDir { path: path.clone(), source })?,
            None => {
                let path = config.data_dir.join("audit-signing.key");
                audit::load_or_create_signing_key(&path).map_err(|source| OpenError::DataDir { path, source })?
            }
        };
        let audit_key = key.verifying_key();
        let store: Arc<dyn Store> = match &config.database {
            Database::Sqlite => {
                let path = config.database_path();
                Arc::new(SqliteStore::open(&path, key).await.map_err(|source| OpenError::Store { path, source })?)
            }
            Database::Postgres(settings) => {
                let connect = Connect {
                    url: settings.url.clone(),
                    pool_size: settings.pool_size,
                    statement_timeout: settings.statement_timeout,
                    ca_file: settings.ca_file.clone(),
                };
                let store = PostgresStore::open(&connect, key)
                    .await
                    .map_err(|source| OpenError::Store { path: settings.shown_url().into(), source })?;
                tracing::info!(database = store.database_id(), "opened the PostgreSQL database");
                Arc::new(store)
            }
        };
        // Other brokers may share this database: what they change is heard (`changes`).
        let shared = store.changes().is_some();
        if shared && shared_store_guard(&store, &config).await? {
            tracing::info!("the gateway's repos_dir is the storage every broker on this database serves");
        }
        let repos = effective_repos(std::mem::take(&mut config.repos), &config.providers, &config.base_url())?;
        // The policy lives in `live` from here on, where SIGHUP may replace it.
        let policy = std::mem::take(&mut config.policy);
        let live = Live { policy, repos, policy_hash: config.policy_hash.clone() };
        // A destination new to the store gets what happens from this start on
        // (not the history), so it is placed before anything can happen.
        let destinations: Vec<String> = config.notify.iter().map(|d| d.name.clone()).collect();
        if !destinations.is_empty() {
            store
                .notify_start(&destinations)
                .await
                .map_err(|source| OpenError::Store { path: "(notification progress)".into(), source })?;
        }
        let recheck = config.recheck;
        let guard = std::sync::Mutex::new(guard::Guard::new(config.auth_failures_per_minute, config.git_requests_per_second));
        let idp = config.oidc.clone().map(crate::server::oidc::Idp::new).transpose().map_err(OpenError::Oidc)?;
        let head_at_start = store
            .latest_checkpoint()
            .await
            .map_err(|source| OpenError::Store { path: "(the audit log's head)".into(), source })?
            .map_or(0, |c| c.seq);
        Ok(Broker {
            head_at_start,
            metrics: crate::server::metrics::Metrics::new(store.latency().family()),
            live: std::sync::RwLock::new(Arc::new(live)),
            idp,
            browser_sign_ins: Default::default(),
            replica: replica_id(&config.data_dir),
            started_at: clock.now(),
            audit_key,
            store,
            config,
            clock,
            changes: watch::Sender::new(0),
            waiters: Default::default(),
            known_tokens: users::KnownTokens::trusted_for(shared.then_some(recheck)),
            shared,
            reaper_wake: Notify::new(),
            closing: AtomicBool::new(false),
            fetch_windows: Default::default(),
            reminders_checked: Default::default(),
            refusal_windows: Default::default(),
            guard,
        })
    }

    /// This broker's name among replicas sharing its database.
    pub fn replica(&self) -> &str {
        &self.replica
    }

    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Wakes every long-poll waiter and the reaper (after a change, or when a test moves the clock).
    pub fn notify_change(&self) {
        self.changes.send_modify(|v| *v = v.wrapping_add(1));
        self.reaper_wake.notify_one();
    }

    /// After a decision on one request: its waiters get the new record, and
    /// when grants it superseded must be ended at a host, the reaper goes
    /// now (a new grant's end it finds on its next tick, every
    /// `reaper_interval`).
    fn decided(&self, record: &crate::domain::records::RequestRecord, host_to_tell: bool) {
        self.waiters.publish(record);
        if host_to_tell {
            self.reaper_wake.notify_one();
        }
    }

    /// Whether ending a grant on `repo` has anything to undo at a host.
    fn revokes_at_host(&self, repo: &str) -> bool {
        self.provider_for(repo).is_some_and(|p| p.access().revokes_at_host())
    }

    /// Releases every long-poll waiter; called when the server shuts down.
    pub fn close(&self) {
        self.closing.store(true, Ordering::SeqCst);
        self.notify_change();
    }

    fn is_closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

    /// Resolves once something changed (for the reaper).
    pub async fn changed(&self) {
        self.reaper_wake.notified().await
    }

    pub fn pending_ttl(&self) -> chrono::Duration {
        self.config.pending_ttl.as_chrono()
    }

    /// Puts `config`'s rules and repos in force in place of the running ones
    /// (SIGHUP re-read `source`), after recording it as a `policy_changed`
    /// event. Only those change: everything else is read at start, and a
    /// repo naming a provider this broker did not start with is refused.
    /// Requests still pending are decided under the policy in force when
    /// they are decided; live grants keep the terms they were granted with.
    pub async fn reload_policy(&self, mut config: ServerConfig, source: &str) -> Result<Reloaded, String> {
        let running = &self.config.providers;
        if let Some(repo) = config.repos.iter().find(|r| r.provider.as_deref().is_some_and(|p| running.get(p).is_none())) {
            return Err(format!(
                "repo `{}` names provider `{}`, which this broker did not start with: providers are read at start-up; restart to add one",
                repo.name,
                repo.provider.as_deref().unwrap_or_default()
            ));
        }
        let providers_differ = {
            let kinds = |r: &crate::providers::Registry| r.all().map(|p| (p.name().to_string(), p.kind())).collect::<Vec<_>>();
            kinds(running) != kinds(&config.providers)
        };
        let repos = effective_repos(std::mem::take(&mut config.repos), running, &self.config.base_url()).map_err(|e| e.to_string())?;
        let old = self.live();
        if old.policy_hash == config.policy_hash {
            return Ok(Reloaded { changed: false, providers_differ, hash: old.policy_hash.clone() });
        }
        let policy = std::mem::take(&mut config.policy);
        let mut event = NewEvent::new(BROKER_ACTOR, crate::domain::audit::Action::PolicyChanged);
        event.detail = Some(format!(
            "{} ({} rules, {} repos) re-read from {source} on SIGHUP; was {}",
            config.policy_hash,
            policy.rules().len(),
            repos.len(),
            old.policy_hash
        ));
        // Recorded first: a change the log does not hold never takes effect.
        self.store.append_events(vec![event], self.now()).await.map_err(|e| format!("cannot record the change: {e}"))?;
        let hash = config.policy_hash.clone();
        *self.live.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(Live { policy, repos, policy_hash: hash.clone() });
        Ok(Reloaded { changed: true, providers_differ, hash })
    }

    pub fn metrics(&self) -> &crate::server::metrics::Metrics {
        &self.metrics
    }

    /// Every grant live now (for `/metrics`), page by page.
    pub async fn live_grants_now(&self) -> BrokerResult<Vec<crate::domain::records::GrantRecord>> {
        use crate::domain::records::Page;
        let now = self.now();
        let mut all: Vec<crate::domain::records::GrantRecord> = Vec::new();
        loop {
            let page = Page { before: all.last().map(|g| g.id), limit: Page::MAX_LIMIT };
            let rows = self.store.grants(None, Some(now), page).await?;
            let done = rows.len() < Page::MAX_LIMIT as usize;
            all.extend(rows);
            if done {
                return Ok(all);
            }
        }
    }

    /// How many ended grants a host has not yet agreed to end (for `/metrics`).
    pub async fn failing_ends_count(&self) -> BrokerResult<usize> {
        Ok(self.store.failing_ends().await?.len())
    }

    /// How far behind the log each `[[notify]]` destination is (for `/metrics`).
    pub async fn notification_backlogs(&self) -> BrokerResult<Vec<(String, i64)>> {
        Ok(self.delivery_progress().await?.into_iter().map(|(d, _, behind)| (d.name, behind)).collect())
    }

    /// The sequence number of the audit log's last signed event (0: empty).
    /// The audit log's head when this broker opened.
    pub fn head_at_start(&self) -> i64 {
        self.head_at_start
    }

    pub async fn audit_head(&self) -> BrokerResult<i64> {
        Ok(self.store.latest_checkpoint().await?.map_or(0, |c| c.seq))
    }

    /// When request `id` was made, and whether the policy granted it alone (for `/metrics`).
    pub async fn request_created(&self, id: i64) -> BrokerResult<Option<(DateTime<Utc>, bool)>> {
        Ok(self.store.request(id).await?.map(|r| (r.created_at, r.approvals.is_empty())))
    }

    /// The rules and repos in force now (a snapshot: a reload swaps in new ones).
    pub fn live(&self) -> Arc<Live> {
        self.live.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    pub fn repo(&self, name: &str) -> Option<RepoSpec> {
        self.live().repo(name).cloned()
    }

    /// The clone URL of a known repo for which git uses jit's credentials;
    /// `None` where grants are memberships at the host (git uses the
    /// person's own credentials there, and jit's helper stays out of the way).
    pub fn clone_url(&self, repo: &str) -> Option<String> {
        self.repo(repo).filter(|r| !self.by_membership(r)).and_then(|r| r.url).map(|u| u.to_string())
    }

    /// Whether grants on `repo` are memberships at its host.
    pub fn by_membership(&self, repo: &RepoSpec) -> bool {
        self.config.providers.for_repo(repo).is_some_and(|p| p.access().grants_membership())
    }

    /// The provider that makes grants on `repo` real, if any does.
    fn provider_for(&self, repo: &str) -> Option<Arc<dyn Provider>> {
        self.repo_and_provider(repo).map(|(_, p)| p)
    }

    /// A known repo and the provider that makes grants on it real.
    fn repo_and_provider(&self, repo: &str) -> Option<(RepoSpec, Arc<dyn Provider>)> {
        let spec = self.repo(repo)?;
        let provider = self.config.providers.for_repo(&spec)?.clone();
        Some((spec, provider))
    }

    /// The approvers a rule names (users and `group:NAME`), for "who can approve".
    pub fn approvers_of(&self, rule: &str) -> Vec<String> {
        self.live().policy.rule(rule).map(Rule::approvers_display).unwrap_or_default()
    }

    /// A request's canonical duration text (`1h30m`).
    pub fn duration_text(secs: u64) -> String {
        AccessDuration::from_secs(secs).map(|d| d.to_string()).unwrap_or_else(|_| format!("{secs}s"))
    }

    /// Closes the store once nothing uses it any more (after the server stopped).
    /// Writes out what is still held in memory for the audit log (folded
    /// fetch counts), then closes the store.
    pub async fn close_store(&self) {
        self.flush_fetch_windows(true).await;
        self.store.close().await;
    }

    /// Whether the store answers (for `/healthz`), and what an operator
    /// should look at meanwhile. Counts only: `/healthz` needs no login.
    pub async fn health(&self) -> BrokerResult<Vec<String>> {
        self.store.check().await?;
        let failing = self.store.failing_ends().await?.len();
        Ok(match failing {
            0 => Vec::new(),
            n => vec![format!("{n} ended grant(s) still held at their git host: the broker keeps retrying (jit admin grants --failing)")],
        })
    }
}
