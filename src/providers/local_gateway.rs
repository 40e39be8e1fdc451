//! The built-in provider: bare repositories on the broker's own disk, served by
//! its gateway, with gateway credentials.
//!
//! Config: the `[gateway]` section (this provider, named `gateway`), or any
//! number of `[[provider]]` sections with `kind = "gateway"`:
//!
//! ```toml
//! [gateway]
//! repos_dir = "/srv/git"      # bare repos NAME.git, served at <public_url>/git/NAME.git
//! credential_ttl = "1h"       # a credential lives this long (never past its grant); the helper re-mints
//! ```
//!
//! A gateway credential is a random password; the broker keeps only its hash,
//! and the gateway checks it against the grant's live state on every git
//! request. So revoking at the host is immediate: the grant's end is checked
//! by the gateway itself, and the broker drops the hashes when the grant ends.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{Access, GitBackend, Kept, Minted, Provider, ProviderError};
use crate::domain::AccessDuration;
use crate::domain::records::GrantRecord;
use crate::domain::repo::{CloneUrl, RepoSpec, validate_name};
use crate::domain::token::{AuthScheme, ExposeSecret, TokenHash, generate};

pub const KIND: &str = "gateway";

/// Which of `names` are symbolic refs in the bare repo `repo` under
/// `project_root`, each with the ref it points at. A push to a symbolic ref
/// moves its target, so the gateway must not check the name alone; a repo
/// git2 cannot open says nothing (git's own backend will fail it anyway).
pub fn symbolic_refs(project_root: &Path, repo: &str, names: &[String]) -> Vec<(String, String)> {
    let Ok(repo) = git2::Repository::open_bare(project_root.join(format!("{repo}.git"))) else { return Vec::new() };
    names
        .iter()
        .filter_map(|name| {
            let reference = repo.find_reference(name).ok()?;
            let target = reference.symbolic_target()?.to_string();
            Some((name.clone(), target))
        })
        .collect()
}

/// The name of the provider the `[gateway]` section configures.
pub const BUILTIN_NAME: &str = "gateway";

/// Prefix of gateway passwords, so a leaked one is recognisable in a scan.
pub const PASSWORD_PREFIX: &str = "jitgw_";

const DEFAULT_CREDENTIAL_TTL: u64 = 3600;

/// The config section, as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Section {
    pub repos_dir: Option<PathBuf>,
    pub credential_ttl: Option<String>,
}

#[derive(Debug, Clone)]
pub struct LocalGateway {
    name: String,
    repos_dir: Option<PathBuf>,
    credential_ttl: AccessDuration,
}

impl LocalGateway {
    /// Validates a section; `field_prefix` names it in messages (`gateway.`).
    pub fn from_section(name: &str, section: Section, field_prefix: &str) -> Result<LocalGateway, String> {
        let credential_ttl = match &section.credential_ttl {
            Some(ttl) => ttl.parse().map_err(|e| format!("{field_prefix}credential_ttl: {e}"))?,
            None => default_credential_ttl(),
        };
        Ok(LocalGateway { name: name.to_string(), repos_dir: section.repos_dir, credential_ttl })
    }

    pub fn repos_dir(&self) -> Option<&Path> {
        self.repos_dir.as_deref()
    }

    pub fn credential_ttl(&self) -> AccessDuration {
        self.credential_ttl
    }
}

/// How long a gateway credential lives when the config does not say.
pub fn default_credential_ttl() -> AccessDuration {
    AccessDuration::from_secs(DEFAULT_CREDENTIAL_TTL).expect("valid default")
}

/// The `[[provider]]` form: `kind = "gateway"` with the same fields.
pub fn from_section(name: &str, table: toml::Table) -> Result<Arc<dyn Provider>, String> {
    let section: Section = table.try_into().map_err(|e: toml::de::Error| e.message().to_string())?;
    Ok(Arc::new(LocalGateway::from_section(name, section, "")?))
}

/// A fresh gateway password for `grant`: what the grantee gets, and the hash the gateway keeps.
pub fn mint_password(grant: &GrantRecord, ttl: AccessDuration, now: DateTime<Utc>) -> Minted {
    let password = generate(PASSWORD_PREFIX);
    let kept = Kept::GatewayHash(TokenHash::of(password.expose_secret()));
    Minted {
        username: grant.user.clone(),
        password,
        expires_at: grant.expires_at.min(now + ttl.as_chrono()),
        scheme: AuthScheme::Basic,
        kept,
    }
}

/// Finds the bare repositories under `dir` (`NAME.git`, up to three levels deep).
pub fn discover_bare_repos(dir: &Path) -> std::io::Result<Vec<String>> {
    fn walk(root: &Path, dir: &Path, depth: usize, out: &mut Vec<String>) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if !path.is_dir() {
                continue;
            }
            let rel = path.strip_prefix(root).expect("walked from root").to_string_lossy().replace('\\', "/");
            if let Some(name) = rel.strip_suffix(".git") {
                if path.join("HEAD").is_file() && path.join("objects").is_dir() {
                    out.push(name.to_string());
                }
            } else if depth < 3 {
                walk(root, &path, depth + 1, out)?;
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, dir, 1, &mut out)?;
    out.sort();
    Ok(out)
}

#[async_trait]
impl Provider for LocalGateway {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        KIND
    }

    fn discover(&self, base_url: &str) -> Result<Vec<RepoSpec>, ProviderError> {
        let Some(dir) = &self.repos_dir else { return Ok(Vec::new()) };
        let config = |message: String| ProviderError::Config { provider: self.name.clone(), message };
        let names = discover_bare_repos(dir).map_err(|e| config(format!("repos_dir {}: {e}", dir.display())))?;
        names
            .into_iter()
            .map(|name| {
                validate_name(&name).map_err(|e| config(e.to_string()))?;
                let url = CloneUrl::parse(&format!("{base_url}/git/{name}.git")).map_err(|e| config(e.to_string()))?;
                Ok(RepoSpec { name, url: Some(url), provider: Some(self.name.clone()), upstream: None })
            })
            .collect()
    }

    fn git_backend(&self, _repo: &RepoSpec) -> Option<GitBackend> {
        self.repos_dir.as_ref().map(|dir| GitBackend::Local { project_root: dir.clone() })
    }

    async fn mint(&self, _repo: &RepoSpec, grant: &GrantRecord, now: DateTime<Utc>) -> Result<Minted, ProviderError> {
        Ok(mint_password(grant, self.credential_ttl, now))
    }

    async fn revoke(&self, _repo: &RepoSpec, _grant: &GrantRecord) -> Result<(), ProviderError> {
        // Nothing lives at a remote host: the gateway checks the grant on every
        // request, and the broker drops the credential hashes when it ends.
        Ok(())
    }

    fn access(&self) -> Access {
        Access::Gateway { fronts_listed_repos: false }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Level;

    fn grant(expires_in_secs: i64, now: DateTime<Utc>) -> GrantRecord {
        GrantRecord {
            id: 7,
            request_id: 3,
            user_id: Some(1),
            user: "alice".into(),
            repo: "demo".into(),
            level: Level::Read,
            rule: None,
            refs: crate::domain::refs::RefScope::all(),
            terms: None,
            granted_at: now,
            expires_at: now + chrono::Duration::seconds(expires_in_secs),
            revoked_at: None,
            revoked_by: None,
            ended_at: None,
        }
    }

    #[test]
    fn a_credential_never_outlives_its_grant_or_its_ttl() {
        let now: DateTime<Utc> = "2026-11-25T12:00:00Z".parse().unwrap();
        let hour = AccessDuration::from_secs(3600).unwrap();
        let short = mint_password(&grant(600, now), hour, now);
        assert_eq!(short.expires_at, now + chrono::Duration::seconds(600));
        let long = mint_password(&grant(86_400, now), hour, now);
        assert_eq!(long.expires_at, now + chrono::Duration::seconds(3600));
        assert_eq!(long.username, "alice");
        assert!(long.password.expose_secret().starts_with(PASSWORD_PREFIX));
        assert!(matches!(&long.kept, Kept::GatewayHash(h) if *h == TokenHash::of(long.password.expose_secret())));
        assert_ne!(mint_password(&grant(60, now), hour, now).password.expose_secret(), long.password.expose_secret());
    }

    #[test]
    fn sections_are_validated() {
        let g = LocalGateway::from_section("gateway", Section::default(), "gateway.").unwrap();
        assert_eq!(g.credential_ttl().secs(), 3600);
        assert_eq!(g.repos_dir(), None);
        let bad = Section { credential_ttl: Some("forever".into()), ..Section::default() };
        let err = LocalGateway::from_section("gateway", bad, "gateway.").unwrap_err();
        assert!(err.contains("gateway.credential_ttl") && err.contains("`forever`"), "{err}");
        let table: toml::Table = toml::from_str("repos = \"/srv\"").unwrap();
        assert!(from_section("local", table).err().unwrap().contains("repos"));
    }

    #[test]
    fn discovery_finds_bare_repos_only() {
        let dir = tempfile::tempdir().unwrap();
        // Three levels deep is found; a fourth is not looked at.
        for bare in ["demo.git", "acme/api.git", "a/b/c.git", "a/b/c/d.git"] {
            let path = dir.path().join(bare);
            std::fs::create_dir_all(path.join("objects")).unwrap();
            std::fs::write(path.join("HEAD"), "ref: refs/heads/main\n").unwrap();
        }
        std::fs::create_dir_all(dir.path().join("not-a-repo.git")).unwrap();
        std::fs::create_dir_all(dir.path().join("plain")).unwrap();
        // A HEAD without objects, or objects without a HEAD, is no repository.
        std::fs::create_dir_all(dir.path().join("head-only.git")).unwrap();
        std::fs::write(dir.path().join("head-only.git/HEAD"), "ref: refs/heads/main\n").unwrap();
        std::fs::create_dir_all(dir.path().join("objects-only.git/objects")).unwrap();
        let g = LocalGateway::from_section("gateway", Section { repos_dir: Some(dir.path().into()), credential_ttl: None }, "").unwrap();
        let found = g.discover("http://127.0.0.1:8420").unwrap();
        let names: Vec<(&str, String)> = found.iter().map(|r| (r.name.as_str(), r.url.as_ref().unwrap().to_string())).collect();
        assert_eq!(
            names,
            [
                ("a/b/c", "http://127.0.0.1:8420/git/a/b/c.git".to_string()),
                ("acme/api", "http://127.0.0.1:8420/git/acme/api.git".to_string()),
                ("demo", "http://127.0.0.1:8420/git/demo.git".to_string())
            ]
        );
        assert!(found.iter().all(|r| r.provider.as_deref() == Some("gateway")));
        // Nothing is held at a host: the gateway checks every request against
        // the grant itself, so a superseded grant can end in the approving transaction.
        assert!(!g.access().revokes_at_host());
    }
}
