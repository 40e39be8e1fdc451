//! The broker's configuration file (TOML) and its validation.
//!
//! ```toml
//! [server]
//! listen = "127.0.0.1:8420"          # --listen overrides
//! public_url = "https://jit.example.com"  # what clients and clone URLs use
//! data_dir = "/var/lib/jit"           # --data-dir overrides
//! pending_ttl = "1h"                  # undecided requests expire after this
//! sealing_key_file = "/etc/jit/sealing.key"  # for providers that mint at a host (server::sealing)
//!
//! [gateway]                           # the built-in provider (providers::local_gateway)
//! repos_dir = "/srv/git"              # bare repos served at <public_url>/git/NAME.git
//! credential_ttl = "1h"               # git credentials are re-minted after this
//!
//! [[provider]]                        # more providers: a name, a kind, the kind's fields
//! name = "corp"
//! kind = "…"
//!
//! [[repo]]
//! name = "acme/api"
//! url = "https://github.com/acme/api.git"
//! provider = "corp"                   # optional: who makes grants on it real
//!
//! [[rule]]                            # see domain::policy for the fields
//! repos = ["acme/*"]
//! levels = ["write"]
//! requesters = ["group:developers"]
//! approvers = ["group:reviewers"]
//! max_duration = "4h"
//! reason_required = true
//! ```
//!
//! Unknown keys are errors, and every error names its line: a broker never
//! starts on a policy it misread.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::domain::AccessDuration;
use crate::domain::policy::{Policy, PolicyError, RawRule, line_of};
use crate::domain::repo::{CloneUrl, RepoSpec, validate_name};
use crate::providers::local_gateway::{self, LocalGateway};
use crate::providers::{ProviderSection, Registry};
use crate::server::listener::ConnectionLimits;
use crate::server::sealing::SealingKey;
use crate::server::tls::TlsFiles;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8420";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("{path}: {source}")]
    Policy { path: PathBuf, source: PolicyError },
    #[error("no data directory: pass --data-dir (the user data directory could not be determined)")]
    NoDataDir,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    gateway: local_gateway::Section,
    #[serde(default)]
    provider: Vec<Spanned<toml::Table>>,
    #[serde(default)]
    repo: Vec<Spanned<RawRepo>>,
    #[serde(default)]
    rule: Vec<Spanned<RawRule>>,
    oidc: Option<crate::server::oidc::Section>,
    #[serde(default)]
    notify: Vec<Spanned<crate::server::notify::destination::Section>>,
    #[serde(default)]
    audit: RawAudit,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAudit {
    archive_dir: Option<PathBuf>,
    /// Shorthand for a `[[notify]]` of kind syslog named `audit-syslog`, with every event.
    syslog: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<String>,
    public_url: Option<String>,
    data_dir: Option<PathBuf>,
    pending_ttl: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    max_connections: Option<usize>,
    connections_per_address: Option<usize>,
    header_timeout: Option<String>,
    shutdown_grace: Option<String>,
    body_idle_timeout: Option<String>,
    max_wait: Option<String>,
    body_min_rate: Option<u64>,
    health_from: Option<Vec<String>>,
    metrics_from: Option<Vec<String>>,
    trusted_proxies: Option<Vec<String>>,
    auth_failures_per_minute: Option<u32>,
    git_requests_per_second: Option<f64>,
    sealing_key_file: Option<PathBuf>,
    database_url: Option<String>,
    database_url_file: Option<PathBuf>,
    database_pool: Option<usize>,
    database_statement_timeout: Option<String>,
    database_ca_file: Option<PathBuf>,
    audit_key_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRepo {
    name: String,
    url: Option<String>,
    provider: Option<String>,
}

/// Everything the broker runs on, validated.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// The URL clients reach the broker at; defaults to `http://{listen}`.
    pub public_url: Option<String>,
    pub data_dir: PathBuf,
    pub pending_ttl: AccessDuration,
    /// How long one long-poll may hold a request open.
    pub max_wait: Duration,
    /// How often the reaper looks for work when nothing is due sooner.
    pub reaper_interval: Duration,
    /// With other brokers on the database: how often a long-poll reads its
    /// request again, and how long a remembered sign-in is trusted, in case
    /// a change notification was lost (not in the file: 5 s).
    pub recheck: Duration,
    pub max_body_bytes: usize,
    /// HTTPS: the certificate chain and key (PEM); plain HTTP without.
    pub tls: Option<TlsFiles>,
    pub limits: ConnectionLimits,
    /// Failed authentications one address (or one user name) may make per minute.
    pub auth_failures_per_minute: u32,
    /// Git requests one credential may make per second (bursts of 10 s worth).
    pub git_requests_per_second: f64,
    /// How often failed logins are summarised into the audit log (not in the file: a minute).
    pub auth_summary_every: Duration,
    /// The built-in provider (`[gateway]`): bare repos on this machine.
    pub gateway: LocalGateway,
    /// Every provider by name, the built-in gateway among them.
    pub providers: Registry,
    /// Seals what revoking a host credential needs before it is stored
    /// (`server.sealing_key_file`); required by providers that mint at a host.
    pub sealing_key: Option<Arc<SealingKey>>,
    /// The `[[repo]]` entries; the gateway's own repos are added when the broker opens.
    pub repos: Vec<RepoSpec>,
    pub policy: Policy,
    /// Sign-in through the company's identity provider (`[oidc]`); none: tokens only.
    pub oidc: Option<crate::server::oidc::OidcConfig>,
    /// Where notifications go (`[[notify]]`).
    pub notify: Vec<crate::server::notify::destination::Destination>,
    /// Where the broker keeps its state: SQLite under the data directory, or
    /// a PostgreSQL database that several replicas share.
    pub database: Database,
    /// The key that signs the audit log's checkpoints (`server.audit_key_file`);
    /// none: `audit-signing.key` in the data directory, made on first start.
    /// Replicas on one database must share it.
    pub audit_key_file: Option<PathBuf>,
    /// Where the audit log is archived as daily JSON-lines files (`[audit] archive_dir`).
    pub archive_dir: Option<PathBuf>,
    /// Who may read `/metrics` without a token (`server.metrics_from`; loopback by default).
    pub metrics_from: Vec<ipnet::IpNet>,
    /// `sha256:…` of the `[[rule]]` and `[[repo]]` entries as read (not
    /// their formatting or comments): what a `policy_changed` event names.
    pub policy_hash: String,
}

/// The destination `[audit] syslog` makes.
pub const AUDIT_SYSLOG: &str = "audit-syslog";

/// The hash of a config's policy: its `[[rule]]` and `[[repo]]` tables,
/// canonical (keys sorted), so reformatting or a comment changes nothing.
pub fn policy_hash(source: &str) -> String {
    use sha2::Digest;
    let table: toml::Table = source.parse().unwrap_or_default();
    let policy: toml::Table = table.into_iter().filter(|(k, _)| k == "rule" || k == "repo").collect();
    let canonical = serde_json::to_string(&policy).unwrap_or_default();
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(canonical.as_bytes())))
}

/// Where the broker keeps its state.
#[derive(Debug, Clone)]
pub enum Database {
    /// `jit.db` in the data directory: one broker on one machine.
    Sqlite,
    /// A PostgreSQL database (`server.database_url`, `database_url_file` or `JIT_DATABASE_URL`).
    Postgres(PostgresSettings),
}

/// How to reach the PostgreSQL database, as the operator wrote it.
#[derive(Clone)]
pub struct PostgresSettings {
    /// `postgres://user:password@host:port/db?sslmode=…`: a secret, never logged.
    pub url: secrecy::SecretString,
    /// Connections each replica keeps open at most (`database_pool`, 16).
    pub pool_size: usize,
    /// The longest a statement may run (`database_statement_timeout`, 10s).
    pub statement_timeout: Duration,
    /// Roots trusted for the database's TLS beside the system's (`database_ca_file`).
    pub ca_file: Option<PathBuf>,
}

impl PostgresSettings {
    /// The URL without its password, for messages and logs.
    pub fn shown_url(&self) -> String {
        crate::domain::text::url_without_password(secrecy::ExposeSecret::expose_secret(&self.url))
    }
}

impl std::fmt::Debug for PostgresSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresSettings")
            .field("url", &self.shown_url())
            .field("pool_size", &self.pool_size)
            .field("statement_timeout", &self.statement_timeout)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// The broker's public URL as clients reach it: http or https with a host,
/// without a trailing `/`.
pub fn check_public_url(url: &str) -> Result<String, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("`{url}`: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{url}`: must be an http or https URL with a host"));
    }
    Ok(url.trim_end_matches('/').to_string())
}

impl ServerConfig {
    /// Defaults with no repos and no rules: a broker that refuses everything.
    pub fn new(data_dir: PathBuf) -> ServerConfig {
        let gateway = LocalGateway::from_section(local_gateway::BUILTIN_NAME, local_gateway::Section::default(), "gateway.")
            .expect("the default gateway section is valid");
        let mut providers = Registry::default();
        providers.add(Arc::new(gateway.clone())).expect("the first provider has a unique name");
        ServerConfig {
            listen: DEFAULT_LISTEN.parse().expect("valid default"),
            public_url: None,
            data_dir,
            pending_ttl: AccessDuration::from_secs(3600).expect("valid default"),
            max_wait: Duration::from_secs(60),
            reaper_interval: Duration::from_secs(1),
            recheck: Duration::from_secs(5),
            max_body_bytes: 64 * 1024,
            tls: None,
            limits: ConnectionLimits::default(),
            auth_failures_per_minute: 10,
            git_requests_per_second: 10.0,
            auth_summary_every: Duration::from_secs(60),
            gateway,
            providers,
            sealing_key: None,
            repos: Vec::new(),
            policy: Policy::default(),
            oidc: None,
            notify: Vec::new(),
            database: Database::Sqlite,
            audit_key_file: None,
            archive_dir: None,
            metrics_from: vec!["127.0.0.1/32".parse().expect("valid"), "::1/128".parse().expect("valid")],
            policy_hash: policy_hash(""),
        }
    }

    /// Parses and validates a config file's text; `path` is only for messages.
    pub fn from_toml(source: &str, path: &Path, default_data_dir: Option<PathBuf>) -> Result<ServerConfig, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid { path: path.to_path_buf(), message };
        let raw: RawFile = toml::from_str(source).map_err(|e| {
            let line = e.span().map(|s| format!("line {}: ", line_of(source, s.start))).unwrap_or_default();
            invalid(format!("{line}{}", e.message()))
        })?;
        let database = database(&raw.server, |v| std::env::var(v).ok()).map_err(invalid)?;
        let data_dir = raw.server.data_dir.or(default_data_dir).ok_or(ConfigError::NoDataDir)?;
        let mut config = ServerConfig::new(data_dir);
        config.database = database;
        config.policy_hash = policy_hash(source);
        if let Some(listen) = raw.server.listen {
            config.listen = listen.parse().map_err(|e| invalid(format!("server.listen `{listen}`: {e}")))?;
        }
        if let Some(url) = raw.server.public_url {
            config.public_url = Some(check_public_url(&url).map_err(|e| invalid(format!("server.public_url {e}")))?);
        }
        if let Some(ttl) = raw.server.pending_ttl {
            config.pending_ttl = ttl.parse().map_err(|e| invalid(format!("server.pending_ttl: {e}")))?;
        }
        config.tls = match (raw.server.tls_cert, raw.server.tls_key) {
            (None, None) => None,
            (Some(cert), Some(key)) => {
                let files = TlsFiles { cert, key };
                crate::server::tls::check(&files).map_err(|e| invalid(format!("server.tls_cert/tls_key: {e}")))?;
                Some(files)
            }
            _ => return Err(invalid("server.tls_cert and server.tls_key go together".into())),
        };
        let positive = |field: &str, v: usize| if v > 0 { Ok(v) } else { Err(invalid(format!("server.{field}: must be at least 1"))) };
        if let Some(n) = raw.server.max_connections {
            config.limits.max_connections = positive("max_connections", n)?;
            config.limits.health_headroom = config.limits.health_headroom.min(n / 4);
        }
        if let Some(n) = raw.server.connections_per_address {
            config.limits.per_address = positive("connections_per_address", n)?;
        }
        if let Some(t) = raw.server.header_timeout {
            config.limits.header_timeout =
                t.parse::<AccessDuration>().map_err(|e| invalid(format!("server.header_timeout: {e}")))?.as_std();
        }
        if let Some(nets) = raw.server.trusted_proxies {
            config.limits.trusted_proxies = parse_networks("server.trusted_proxies", &nets).map_err(invalid)?;
        }
        if let Some(n) = raw.server.auth_failures_per_minute {
            config.auth_failures_per_minute = positive("auth_failures_per_minute", n as usize)? as u32;
        }
        if let Some(r) = raw.server.git_requests_per_second {
            if !(r.is_finite() && r > 0.0) {
                return Err(invalid("server.git_requests_per_second: must be more than 0".into()));
            }
            config.git_requests_per_second = r;
        }
        if let Some(nets) = raw.server.metrics_from {
            config.metrics_from = parse_networks("server.metrics_from", &nets).map_err(invalid)?;
        }
        if let Some(nets) = raw.server.health_from {
            config.limits.health_from = parse_networks("server.health_from", &nets).map_err(invalid)?;
        }
        if let Some(t) = raw.server.max_wait {
            config.max_wait = t.parse::<AccessDuration>().map_err(|e| invalid(format!("server.max_wait: {e}")))?.as_std();
        }
        if let Some(t) = raw.server.body_idle_timeout {
            config.limits.body.idle = t.parse::<AccessDuration>().map_err(|e| invalid(format!("server.body_idle_timeout: {e}")))?.as_std();
        }
        if let Some(rate) = raw.server.body_min_rate {
            config.limits.body.min_rate = positive("body_min_rate", rate as usize)? as u64;
        }
        if let Some(t) = raw.server.shutdown_grace {
            config.limits.shutdown_grace =
                t.parse::<AccessDuration>().map_err(|e| invalid(format!("server.shutdown_grace: {e}")))?.as_std();
        }
        if let Some(path) = raw.server.sealing_key_file {
            config.sealing_key = Some(Arc::new(SealingKey::from_file(&path).map_err(|e| invalid(format!("server.sealing_key_file {e}")))?));
        }
        if let Some(dir) = raw.audit.archive_dir {
            if dir.as_os_str().is_empty() || dir.is_file() {
                return Err(invalid(format!("audit.archive_dir `{}`: not a directory", dir.display())));
            }
            config.archive_dir = Some(dir);
        }
        if let Some(path) = raw.server.audit_key_file {
            crate::fsutil::check_private_file(&path).map_err(|e| invalid(format!("server.audit_key_file {e}")))?;
            config.audit_key_file = Some(path);
        }
        if let Some(section) = raw.oidc {
            let oidc = crate::server::oidc::OidcConfig::from_section(section, |v| std::env::var(v).ok()).map_err(invalid)?;
            if config.sealing_key.is_none() {
                return Err(invalid(
                    "oidc: server.sealing_key_file is missing: each person's refresh token is stored sealed with it (create one: `openssl rand -hex 32 > sealing.key; chmod 600 sealing.key`)".into(),
                ));
            }
            config.oidc = Some(oidc);
        }
        for spanned in raw.notify {
            let line = line_of(source, spanned.span().start);
            let destination =
                crate::server::notify::destination::Destination::from_section(spanned.into_inner(), |v| std::env::var(v).ok())
                    .map_err(|e| invalid(format!("notify at line {line}: {e}")))?;
            if config.notify.iter().any(|d| d.name == destination.name) {
                return Err(invalid(format!("notify at line {line}: duplicate name `{}`", destination.name)));
            }
            config.notify.push(destination);
        }
        if let Some(url) = raw.audit.syslog {
            let section = crate::server::notify::destination::Section::syslog_sink(AUDIT_SYSLOG, &url);
            let destination = crate::server::notify::destination::Destination::from_section(section, |_| None)
                .map_err(|e| invalid(format!("audit.syslog: {e}")))?;
            if config.notify.iter().any(|d| d.name == AUDIT_SYSLOG) {
                return Err(invalid(format!("audit.syslog: a [[notify]] is already named `{AUDIT_SYSLOG}`")));
            }
            config.notify.push(destination);
        }
        config.gateway = LocalGateway::from_section(local_gateway::BUILTIN_NAME, raw.gateway, "gateway.").map_err(invalid)?;
        config.providers = Registry::default();
        config.providers.add(Arc::new(config.gateway.clone())).map_err(invalid)?;
        for spanned in raw.provider {
            let line = line_of(source, spanned.span().start);
            let section = provider_section(spanned.into_inner(), line).map_err(|e| invalid(format!("provider at line {line}: {e}")))?;
            let provider =
                crate::providers::build(&section).map_err(|e| invalid(format!("provider `{}` at line {line}: {e}", section.name)))?;
            if provider.access().keeps_revocation_data() && config.sealing_key.is_none() {
                return Err(invalid(format!(
                    "provider `{}` at line {line}: server.sealing_key_file is missing: what revoking its credentials needs is stored sealed with it (create one: `openssl rand -hex 32 > sealing.key; chmod 600 sealing.key`)",
                    section.name
                )));
            }
            config.providers.add(provider).map_err(|e| invalid(format!("provider at line {line}: {e}")))?;
        }
        for spanned in raw.repo {
            let line = line_of(source, spanned.span().start);
            let repo = spanned.into_inner();
            validate_name(&repo.name).map_err(|e| invalid(format!("repo at line {line}: {e}")))?;
            let url = repo.url.map(|u| CloneUrl::parse(&u)).transpose().map_err(|e| invalid(format!("repo at line {line}: {e}")))?;
            if config.repos.iter().any(|r| r.name == repo.name) {
                return Err(invalid(format!("repo at line {line}: duplicate repo name `{}`", repo.name)));
            }
            if let Some(name) = &repo.provider {
                match config.providers.get(name) {
                    None => return Err(invalid(format!("repo at line {line}: provider `{name}` is not configured"))),
                    Some(p) if p.kind() == local_gateway::KIND => {
                        return Err(invalid(format!(
                            "repo at line {line}: the gateway's repos are found under its repos_dir; do not list them as [[repo]]"
                        )));
                    }
                    Some(p) if p.access().fronts_listed_repos() => {
                        let url = url.as_ref().ok_or_else(|| {
                            invalid(format!("repo at line {line}: `url` is missing: provider `{name}` fronts the repo where it lives"))
                        })?;
                        crate::providers::upstream::check_url(url).map_err(|e| invalid(format!("repo at line {line}: {e}")))?;
                    }
                    Some(_) => {}
                }
            }
            let spec = RepoSpec { name: repo.name, url, provider: repo.provider, upstream: None };
            if let Some(provider) = config.providers.for_repo(&spec) {
                provider.check_repo(&spec).map_err(|e| invalid(format!("repo at line {line}: {e}")))?;
            }
            config.repos.push(spec);
        }
        config.policy = Policy::from_raw(raw.rule, source).map_err(|source| ConfigError::Policy { path: path.to_path_buf(), source })?;
        Ok(config)
    }

    pub fn load(path: &Path, default_data_dir: Option<PathBuf>) -> Result<ServerConfig, ConfigError> {
        let source = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        Self::from_toml(&source, path, default_data_dir)
    }

    /// The URL clients use: `public_url`, or `http(s)://{listen}`.
    pub fn base_url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        self.public_url.clone().unwrap_or_else(|| format!("{scheme}://{}", self.listen))
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("jit.db")
    }

    /// Where the built-in gateway's bare repos live, if it serves any.
    pub fn gateway_dir(&self) -> Option<&Path> {
        self.gateway.repos_dir()
    }
}

pub use crate::domain::network::parse_networks;

/// The database `[server]` names: PostgreSQL when a URL is given (in the
/// file, in a file of its own, or in `JIT_DATABASE_URL`, which wins), else SQLite.
fn database(server: &RawServer, env: impl Fn(&str) -> Option<String>) -> Result<Database, String> {
    let url = match (&server.database_url, &server.database_url_file) {
        (Some(_), Some(_)) => return Err("server.database_url and server.database_url_file: give one, not both".into()),
        (Some(url), None) => Some(url.clone()),
        (None, Some(path)) => {
            crate::fsutil::check_private_file(path).map_err(|e| format!("server.database_url_file {e}"))?;
            let text = std::fs::read_to_string(path).map_err(|e| format!("server.database_url_file {}: {e}", path.display()))?;
            Some(text.trim().to_string())
        }
        (None, None) => None,
    };
    let Some(url) = env("JIT_DATABASE_URL").filter(|u| !u.is_empty()).or(url) else {
        let postgres_only = [
            ("database_pool", server.database_pool.is_some()),
            ("database_statement_timeout", server.database_statement_timeout.is_some()),
            ("database_ca_file", server.database_ca_file.is_some()),
        ];
        if let Some((key, _)) = postgres_only.iter().find(|(_, given)| *given) {
            return Err(format!("server.{key}: only for PostgreSQL, and no server.database_url is given"));
        }
        return Ok(Database::Sqlite);
    };
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(format!(
            "server.database_url `{}`: must be a postgres:// URL (SQLite needs none: it lives in the data directory)",
            crate::domain::text::url_without_password(&url)
        ));
    }
    url.parse::<tokio_postgres::Config>()
        .map_err(|e| format!("server.database_url `{}`: {e}", crate::domain::text::url_without_password(&url)))?;
    let pool_size = server.database_pool.unwrap_or(16);
    if pool_size == 0 {
        return Err("server.database_pool: must be at least 1".into());
    }
    let statement_timeout = match &server.database_statement_timeout {
        Some(t) => t.parse::<AccessDuration>().map_err(|e| format!("server.database_statement_timeout: {e}"))?.as_std(),
        None => Duration::from_secs(10),
    };
    if let Some(path) = &server.database_ca_file
        && !path.is_file()
    {
        return Err(format!("server.database_ca_file {}: no such file", path.display()));
    }
    Ok(Database::Postgres(PostgresSettings { url: url.into(), pool_size, statement_timeout, ca_file: server.database_ca_file.clone() }))
}

/// Splits a `[[provider]]` table into its name, kind and the kind's own fields.
fn provider_section(mut table: toml::Table, line: usize) -> Result<ProviderSection, String> {
    let mut take = |key: &str| match table.remove(key) {
        Some(toml::Value::String(s)) => Ok(s),
        Some(_) => Err(format!("`{key}` must be a string")),
        None => Err(format!("`{key}` is required")),
    };
    let name = take("name")?;
    let kind = take("kind")?;
    if !crate::domain::text::is_valid_name(&name) {
        return Err(format!("invalid provider name `{name}`: use letters, digits, `-`, `_` or `.`"));
    }
    Ok(ProviderSection { name, kind, line, table })
}

/// The default data directory: `$XDG_DATA_HOME/jit` (or the platform's equivalent).
pub fn default_data_dir() -> Option<PathBuf> {
    crate::fsutil::user_data_dir()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(src: &str) -> Result<ServerConfig, ConfigError> {
        ServerConfig::from_toml(src, Path::new("jit.toml"), Some(PathBuf::from("/tmp/x")))
    }

    /// `database()` with `[server]`'s keys from `toml` and `JIT_DATABASE_URL` as `env` gives it.
    fn database_of(toml: &str, env: Option<&str>) -> Result<Database, String> {
        let raw: RawFile = toml::from_str(toml).unwrap();
        database(&raw.server, |v| (v == "JIT_DATABASE_URL").then(|| env.map(str::to_string)).flatten())
    }

    fn private_file(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        #[cfg(unix)]
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn the_database_is_sqlite_unless_a_postgres_url_is_given_and_a_bad_one_is_named() {
        assert!(matches!(database_of("[server]\n", None), Ok(Database::Sqlite)));
        let Ok(Database::Postgres(pg)) = database_of(
            "[server]\ndatabase_url = \"postgres://jit:pw@db/jit\"\ndatabase_pool = 4\ndatabase_statement_timeout = \"3s\"\n",
            None,
        ) else {
            panic!("a postgres URL is PostgreSQL")
        };
        assert_eq!((pg.pool_size, pg.statement_timeout), (4, Duration::from_secs(3)));
        assert!(!format!("{pg:?}").contains("pw"), "the password is not in Debug: {pg:?}");
        // The environment wins over the file.
        let Ok(Database::Postgres(pg)) = database_of("[server]\ndatabase_url = \"postgres://a/file\"\n", Some("postgres://b/env")) else {
            panic!()
        };
        assert_eq!(pg.shown_url(), "postgres://b/env");
        for (toml, says) in [
            ("[server]\ndatabase_url = \"mysql://x\"\n", "must be a postgres:// URL"),
            ("[server]\ndatabase_url = \"postgres://jit:s3cret@db/jit?port=notaport\"\n", "database_url"),
            ("[server]\ndatabase_url = \"postgres://db/jit\"\ndatabase_pool = 0\n", "at least 1"),
            ("[server]\ndatabase_url = \"postgres://db/jit\"\ndatabase_statement_timeout = \"soon\"\n", "database_statement_timeout"),
            ("[server]\ndatabase_url = \"postgres://db/jit\"\ndatabase_ca_file = \"/nonexistent/ca.pem\"\n", "no such file"),
            ("[server]\ndatabase_pool = 4\n", "only for PostgreSQL"),
            ("[server]\ndatabase_url = \"postgres://db/a\"\ndatabase_url_file = \"/x\"\n", "give one, not both"),
        ] {
            let err = database_of(toml, None).expect_err(toml);
            assert!(err.contains(says), "{toml}: {err}");
            assert!(!err.contains("s3cret"), "the password is never said: {err}");
        }
    }

    #[test]
    fn the_database_url_file_and_audit_key_file_must_be_private() {
        let dir = tempfile::tempdir().unwrap();
        let open = private_file(dir.path(), "url-open", "postgres://jit:pw@db/jit\n", 0o644);
        let closed = private_file(dir.path(), "url-closed", "postgres://jit:pw@db/jit\n", 0o600);
        let err = database_of(&format!("[server]\ndatabase_url_file = \"{}\"\n", open.display()), None).unwrap_err();
        assert!(err.contains("readable by others"), "{err}");
        let Ok(Database::Postgres(pg)) = database_of(&format!("[server]\ndatabase_url_file = \"{}\"\n", closed.display()), None) else {
            panic!("a private file is read")
        };
        assert_eq!(pg.shown_url(), "postgres://jit:<redacted>@db/jit", "read and trimmed");
        let key = private_file(dir.path(), "audit.key", &"ab".repeat(32), 0o644);
        match parse(&format!("[server]\naudit_key_file = \"{}\"\n", key.display())) {
            Err(e) => assert!(e.to_string().contains("server.audit_key_file") && e.to_string().contains("readable by others"), "{e}"),
            Ok(_) => panic!("a key others may read is refused"),
        }
    }

    #[test]
    fn a_full_file_parses() {
        let c = parse(
            r#"
[server]
listen = "0.0.0.0:9000"
public_url = "https://jit.example.com/"
pending_ttl = "30m"

[[repo]]
name = "acme/api"
url = "https://github.com/acme/api.git"

[[rule]]
repos = ["acme/*"]
levels = ["write"]
requesters = ["*"]
approvers = ["bob"]
max_duration = "2h"
"#,
        )
        .unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.public_url.as_deref(), Some("https://jit.example.com"));
        assert_eq!(c.pending_ttl.secs(), 1800);
        assert_eq!(c.repos.len(), 1);
        assert_eq!(c.policy.rules().len(), 1);
    }

    #[test]
    fn errors_name_the_line() {
        let err = parse("[server]\nlisten = \"x\"\n").unwrap_err().to_string();
        assert!(err.contains("server.listen"), "{err}");
        let err = parse("[server]\nlisten = \"127.0.0.1:1\"\nbogus = 1\n").unwrap_err().to_string();
        assert!(err.contains("line 3") && err.contains("bogus"), "{err}");
        let err =
            parse("\n[[rule]]\nrepos = [\"x\"]\nlevels = [\"sudo\"]\nrequesters = [\"*\"]\nauto_approve = true\nmax_duration = \"1h\"\n")
                .unwrap_err()
                .to_string();
        assert!(err.contains("line 2") && err.contains("sudo"), "{err}");
        let err = parse("[[repo]]\nname = \"a\"\nurl = \"ftp://x/y\"\n").unwrap_err().to_string();
        assert!(err.contains("line 1") && err.contains("http"), "{err}");
        let err = parse("[gateway]\ncredential_ttl = \"forever\"\n").unwrap_err().to_string();
        assert!(err.contains("gateway.credential_ttl") && err.contains("`forever`"), "{err}");
        let err = parse("[gateway]\nrepos = \"/srv\"\n").unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("repos"), "{err}");
        let err = parse("[[repo]]\nname = \"a\"\n[[repo]]\nname = \"a\"\n").unwrap_err().to_string();
        assert!(err.contains("line 3") && err.contains("duplicate"), "{err}");
    }

    #[test]
    fn body_limits_are_read_and_bad_ones_named() {
        let c = parse("[server]\nbody_idle_timeout = \"5s\"\nbody_min_rate = 100\nmax_wait = \"25s\"\n").unwrap();
        assert_eq!((c.limits.body.idle, c.limits.body.min_rate), (std::time::Duration::from_secs(5), 100));
        assert_eq!(c.max_wait, std::time::Duration::from_secs(25));
        assert_eq!(parse("").unwrap().max_wait, std::time::Duration::from_secs(60), "the default");
        let err = parse("[server]\nmax_wait = \"0s\"\n").unwrap_err().to_string();
        assert!(err.contains("server.max_wait"), "{err}");
        let err = parse("[server]\nbody_idle_timeout = \"soon\"\n").unwrap_err().to_string();
        assert!(err.contains("server.body_idle_timeout") && err.contains("`soon`"), "{err}");
        let err = parse("[server]\nbody_min_rate = 0\n").unwrap_err().to_string();
        assert!(err.contains("server.body_min_rate: must be at least 1"), "{err}");
        let err = parse("[server]\nbody_min_rate = -1\n").unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("`-1`"), "{err}");
    }

    #[test]
    fn upstream_providers_and_their_repos_are_checked_at_start_up() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("corp.token");
        std::fs::write(&token, "s3cret\n").unwrap();
        let provider =
            format!("[[provider]]\nname = \"corp\"\nkind = \"upstream\"\nusername = \"bot\"\npassword_file = \"{}\"\n", token.display());
        let repo = |url: &str| format!("{provider}[[repo]]\nname = \"acme/api\"\n{url}provider = \"corp\"\n");
        let c = parse(&repo("url = \"https://git.example.com/acme/api.git\"\n")).unwrap();
        assert_eq!(c.providers.get("corp").unwrap().kind(), "upstream");
        let err = parse(&repo("")).unwrap_err().to_string();
        assert!(err.contains("repo at line 6") && err.contains("`url` is missing"), "{err}");
        let err = parse(&repo("url = \"http://git.example.com/acme/api.git\"\n")).unwrap_err().to_string();
        assert!(err.contains("over https"), "{err}");
        let err = parse("[[provider]]\nname = \"corp\"\nkind = \"upstream\"\npassword_env = \"X\"\n").unwrap_err().to_string();
        assert!(err.contains("provider `corp` at line 1") && err.contains("username: missing"), "{err}");
        let missing = provider.replace("corp.token", "missing.token");
        let err = parse(&missing).unwrap_err().to_string();
        assert!(err.contains("password_file") && err.contains("missing.token"), "{err}");
        assert!(!parse(&repo("url = \"https://git.example.com/acme/api.git\"\n")).map(|c| format!("{c:?}")).unwrap().contains("s3cret"));
    }

    #[test]
    fn providers_are_named_and_repos_must_name_a_known_one() {
        let c =
            parse("[gateway]\nrepos_dir = \"/srv/git\"\n[[provider]]\nname = \"local2\"\nkind = \"gateway\"\nrepos_dir = \"/srv/more\"\n")
                .unwrap();
        assert_eq!(c.gateway_dir(), Some(Path::new("/srv/git")));
        assert_eq!(c.providers.all().map(|p| p.name().to_string()).collect::<Vec<_>>(), ["gateway", "local2"]);
        let err = parse("[[repo]]\nname = \"a\"\nurl = \"https://x/a.git\"\nprovider = \"nope\"\n").unwrap_err().to_string();
        assert!(err.contains("line 1") && err.contains("provider `nope` is not configured"), "{err}");
        let err = parse("\n[[provider]]\nname = \"p\"\nkind = \"teleport\"\n").unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("unknown provider kind `teleport`") && err.contains("gateway"), "{err}");
        let err = parse("[[provider]]\nkind = \"gateway\"\n").unwrap_err().to_string();
        assert!(err.contains("`name` is required"), "{err}");
        let err = parse("[[provider]]\nname = \"gateway\"\nkind = \"gateway\"\n").unwrap_err().to_string();
        assert!(err.contains("duplicate provider name `gateway`"), "{err}");
        let err = parse("[[provider]]\nname = \"p\"\nkind = \"gateway\"\ncredential_ttl = \"never\"\n").unwrap_err().to_string();
        assert!(err.contains("provider `p` at line 1") && err.contains("credential_ttl"), "{err}");
        let err = parse("[[repo]]\nname = \"a\"\nprovider = \"gateway\"\n").unwrap_err().to_string();
        assert!(err.contains("repos_dir"), "{err}");
    }
}
