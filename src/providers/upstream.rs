//! The `upstream` provider: repositories that live on another git host (GitHub,
//! GitLab, Bitbucket, Gitea, any smart-HTTP server), fronted by the broker's
//! gateway. Users' git talks to `<public_url>/git/NAME.git` with gateway
//! credentials, exactly as for local repos; the gateway checks the grant on
//! every request and forwards it to the host with the broker's own identity
//! there (`server::gateway::upstream`). Nobody but the broker has standing access
//! at the host, so a grant's end is the end of access.
//!
//! ```toml
//! [[provider]]
//! name = "corp"
//! kind = "upstream"
//! username = "jit-bot"                   # the broker's identity at the host
//! password_file = "/etc/jit/corp.token"  # or password_env = "CORP_GIT_TOKEN"
//! credential_ttl = "1h"                  # gateway credentials, as for [gateway]
//! timeout = "5m"                         # the longest silence in an answer (a host indexing a large push is quiet)
//! ca_file = "/etc/jit/corp-ca.pem"        # the host's CA, trusted beside the system's roots
//!
//! [[repo]]
//! name = "acme/api"
//! url = "https://git.example.com/acme/api.git"
//! provider = "corp"
//! ```
//!
//! The host's password is read once at start-up, kept in memory only as a
//! [`SecretString`], and never written to the database or a log.
//!
//! Connections to the host are kept for reuse at most [`POOL_IDLE`] idle,
//! less than the keep-alive limit of common servers (lighttpd's and Apache's
//! 5 s), so the broker seldom sends on a connection the host is closing. When
//! it does (a host with a shorter limit), a request whose body is small enough
//! to hold (every ref advertisement, most fetch negotiations, small pushes)
//! is sent again on a fresh connection; a larger one, already streamed,
//! fails as the host could not be reached, and git may be run again.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{Access, GitBackend, Minted, Provider, ProviderError, local_gateway};
use crate::domain::AccessDuration;
use crate::domain::records::GrantRecord;
use crate::domain::repo::{CloneUrl, RepoSpec};
use crate::domain::token::SecretString;

pub const KIND: &str = "upstream";

/// The longest a host may be silent mid-answer: it says nothing while it
/// indexes a large push.
const DEFAULT_TIMEOUT_SECS: u64 = 300;

/// How long reaching the host may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Section {
    username: Option<String>,
    password_file: Option<PathBuf>,
    password_env: Option<String>,
    credential_ttl: Option<String>,
    timeout: Option<String>,
    /// PEM roots trusted beside the system's (a host behind a company CA).
    ca_file: Option<PathBuf>,
}

/// What the gateway needs to forward a request: who the broker is at the
/// host, and one HTTP client (its connections are reused across requests).
pub struct UpstreamHost {
    pub provider: String,
    pub username: String,
    pub password: SecretString,
    pub client: reqwest::Client,
}

impl std::fmt::Debug for UpstreamHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamHost").field("provider", &self.provider).field("username", &self.username).finish_non_exhaustive()
    }
}

#[derive(Debug)]
pub struct Upstream {
    name: String,
    credential_ttl: AccessDuration,
    host: Arc<UpstreamHost>,
}

/// Builds the provider from its `[[provider]]` table; messages name the field.
pub fn from_section(name: &str, table: toml::Table) -> Result<Arc<dyn Provider>, String> {
    let section: Section = table.try_into().map_err(|e: toml::de::Error| e.message().to_string())?;
    Ok(Arc::new(Upstream::from_section(name, section, |var| std::env::var(var).ok())?))
}

impl Upstream {
    fn from_section(name: &str, section: Section, env: impl Fn(&str) -> Option<String>) -> Result<Upstream, String> {
        let username = section.username.filter(|u| !u.is_empty()).ok_or("username: missing (the broker's own login at the host)")?;
        if username.contains(':') || username.chars().any(char::is_control) {
            return Err("username: must not contain `:` or control characters".into());
        }
        let password = super::host_api::secret_from("password", section.password_file.as_ref(), section.password_env.as_deref(), env)?;
        let credential_ttl = match &section.credential_ttl {
            Some(ttl) => ttl.parse().map_err(|e| format!("credential_ttl: {e}"))?,
            None => local_gateway::default_credential_ttl(),
        };
        let timeout = match &section.timeout {
            Some(t) => t.parse::<AccessDuration>().map_err(|e| format!("timeout: {e}"))?.as_std(),
            None => Duration::from_secs(DEFAULT_TIMEOUT_SECS),
        };
        let client = super::host_api::trusting(reqwest::Client::builder(), section.ca_file.as_deref())?
            .connect_timeout(CONNECT_TIMEOUT.min(timeout))
            .read_timeout(timeout)
            // A redirect is a misconfigured URL, not something to follow with the broker's credential.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("jit/", env!("CARGO_PKG_VERSION")))
            .pool_idle_timeout(POOL_IDLE)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let host = Arc::new(UpstreamHost { provider: name.to_string(), username, password, client });
        Ok(Upstream { name: name.to_string(), credential_ttl, host })
    }
}

/// Where a fronted repo lives: plain http only on loopback, since the
/// broker's credential travels with every request.
pub fn check_url(url: &CloneUrl) -> Result<(), String> {
    if url.scheme() != "https" && !url.is_loopback() {
        return Err(format!("url {url}: an upstream is reached over https (plain http only on loopback)"));
    }
    Ok(())
}

/// How long a connection to the host may sit idle and still be reused.
pub const POOL_IDLE: Duration = Duration::from_secs(4);

#[async_trait]
impl Provider for Upstream {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        KIND
    }

    fn git_backend(&self, repo: &RepoSpec) -> Option<GitBackend> {
        Some(GitBackend::Upstream { host: self.host.clone(), url: repo.upstream.clone()? })
    }

    async fn mint(&self, _repo: &RepoSpec, grant: &GrantRecord, now: DateTime<Utc>) -> Result<Minted, ProviderError> {
        Ok(local_gateway::mint_password(grant, self.credential_ttl, now))
    }

    async fn revoke(&self, _repo: &RepoSpec, _grant: &GrantRecord) -> Result<(), ProviderError> {
        // As for local repos: the gateway checks the grant on every request,
        // and only the broker holds a credential the host accepts.
        Ok(())
    }

    fn access(&self) -> Access {
        Access::Gateway { fronts_listed_repos: true }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::token::ExposeSecret;

    fn section(toml: &str) -> Section {
        toml::from_str(toml).unwrap()
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn a_section_needs_a_username_and_exactly_one_password_source() {
        let err = |toml: &str| Upstream::from_section("corp", section(toml), no_env).unwrap_err();
        assert!(err("password_env = \"X\"").starts_with("username: missing"));
        assert!(err("username = \"bot\"").starts_with("password_file or password_env: missing"));
        assert!(err("username = \"bot\"\npassword_env = \"X\"\npassword_file = \"/x\"").contains("not both"));
        assert!(err("username = \"bot\"\npassword_env = \"NOPE\"").contains("`NOPE` is not set"));
        assert!(err("username = \"b:t\"\npassword_env = \"X\"").starts_with("username: must not contain"));
        let missing = err("username = \"bot\"\npassword_file = \"/nonexistent/corp.token\"");
        assert!(missing.starts_with("password_file /nonexistent/corp.token:"), "{missing}");
        let env = |var: &str| (var == "T").then(|| "s3cret".to_string());
        assert!(
            Upstream::from_section("corp", section("username = \"bot\"\npassword_env = \"T\"\ntimeout = \"soon\""), env)
                .unwrap_err()
                .starts_with("timeout:")
        );
        let empty = |_: &str| Some(String::new());
        assert!(Upstream::from_section("corp", section("username = \"bot\"\npassword_env = \"T\""), empty).unwrap_err().contains("empty"));
    }

    #[test]
    fn the_password_file_is_read_without_its_newline_and_never_shown() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("corp.token");
        std::fs::write(&path, "tok-123\n").unwrap();
        let toml = format!("username = \"bot\"\npassword_file = \"{}\"", path.display());
        let p = Upstream::from_section("corp", section(&toml), no_env).unwrap();
        assert_eq!(p.host.password.expose_secret(), "tok-123");
        assert_eq!(p.host.username, "bot");
        let shown = format!("{p:?}");
        assert!(!shown.contains("tok-123"), "{shown}");
        assert!(shown.contains(r#"UpstreamHost { provider: "corp", username: "bot", .. }"#), "{shown}");
        let upstream = CloneUrl::parse("https://git.example.com/acme/api.git").unwrap();
        let spec = RepoSpec { name: "acme/api".into(), url: None, provider: Some("corp".into()), upstream: Some(upstream.clone()) };
        assert!(matches!(p.git_backend(&spec), Some(GitBackend::Upstream { url, .. }) if url == upstream));
        // The host sees only the broker's identity: nothing of the grant's to undo there.
        assert!(!p.access().revokes_at_host() && p.access().fronts_listed_repos());
        assert!(
            from_section("corp", toml::from_str("username = \"bot\"\nrepos_dir = \"/x\"").unwrap()).err().unwrap().contains("repos_dir")
        );
    }

    #[test]
    fn upstreams_are_reached_over_https_except_on_loopback() {
        assert!(check_url(&CloneUrl::parse("https://git.example.com/acme/api.git").unwrap()).is_ok());
        assert!(check_url(&CloneUrl::parse("http://127.0.0.1:8080/acme/api.git").unwrap()).is_ok());
        let err = check_url(&CloneUrl::parse("http://git.example.com/acme/api.git").unwrap()).unwrap_err();
        assert!(err.contains("over https"), "{err}");
    }
}
