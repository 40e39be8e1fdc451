//! Providers turn a grant into real access at a git host, and take it away.
//!
//! Each repo names its provider; the broker holds them by name in a
//! [`Registry`] and goes through it to mint credentials (when the grantee asks
//! for one) and to revoke (once the grant ended; the reaper guarantees it, also
//! after a restart). A provider never touches the store: it returns what the
//! broker must keep ([`Kept`]) and the broker records it in the same
//! transaction as the audit event. How a provider gives access at all is one
//! value, its [`Access`].
//!
//! A new provider is one file here: a type implementing [`Provider`], its
//! config section (a `[[provider]]` table with `name` and `kind`), and one line
//! in [`KINDS`].

pub mod bitbucket;
pub mod github;
pub mod gitlab;
pub mod host_api;
pub mod local_gateway;
pub mod upstream;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::records::GrantRecord;
use crate::domain::repo::RepoSpec;
use crate::domain::token::{AuthScheme, SecretString, TokenHash};

/// A credential for one grant. The password is shown to the grantee once and
/// never stored by the broker in usable form.
#[derive(Debug, Clone)]
pub struct Minted {
    pub username: String,
    pub password: SecretString,
    /// Never later than the grant's end.
    pub expires_at: DateTime<Utc>,
    /// How git must send it (Basic, but for hosts that take only Bearer).
    pub scheme: AuthScheme,
    /// What the broker keeps of it.
    pub kept: Kept,
}

/// What the broker keeps of a minted credential.
#[derive(Debug, Clone)]
pub enum Kept {
    /// Git goes through the broker's gateway: the hash it checks on every request.
    GatewayHash(TokenHash),
    /// The credential lives at a host: what revoking it there needs (a GitHub
    /// installation token, a GitLab token id). The broker seals it before
    /// storing it and erases it once the host revoked the credential.
    HostHandle(SecretString),
}

/// How a provider gives a grant its access: the one fact about a provider
/// that the broker's handling of its grants turns on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Git goes through the broker's gateway with credentials only the broker
    /// checks; nothing at a host to undo. `fronts_listed_repos`: the
    /// `[[repo]]`s naming it live on another host (the upstream proxy), and
    /// users' git goes to the gateway instead.
    Gateway { fronts_listed_repos: bool },
    /// A credential minted at the host for each mint (a GitHub installation
    /// token, a GitLab project token), revoked there when the grant ends.
    HostToken,
    /// A membership at the host (a team, a project) added when the grant
    /// starts and removed when it ends; people use their own credentials.
    HostMembership,
}

impl Access {
    /// Whether the gateway fronts the `[[repo]]`s naming this provider.
    pub fn fronts_listed_repos(self) -> bool {
        matches!(self, Access::Gateway { fronts_listed_repos: true })
    }

    /// Whether revoking its credentials needs data the broker keeps sealed
    /// (then the broker needs a sealing key).
    pub fn keeps_revocation_data(self) -> bool {
        !matches!(self, Access::Gateway { .. })
    }

    /// Whether grants give access by membership at the host; the broker then
    /// calls [`Provider::add_membership`] when a grant starts.
    pub fn grants_membership(self) -> bool {
        self == Access::HostMembership
    }

    /// Whether ending a grant has anything to undo at a host. When not, a
    /// grant superseded by another is ended in the same transaction instead
    /// of by the reaper.
    pub fn revokes_at_host(self) -> bool {
        !matches!(self, Access::Gateway { .. })
    }
}

/// A membership at a host, as [`Provider::add_membership`] found or made it.
#[derive(Debug, Clone)]
pub struct Membership {
    /// What taking it away needs, for [`Provider::revoke_minted`]: the broker
    /// seals it like a minted credential's.
    pub handle: SecretString,
    /// Whether jit added it now; `false` when the person already had it.
    pub added: bool,
    /// What happened, for the audit log (never a secret).
    pub detail: String,
}

/// Where the gateway sends the git traffic of a repo it fronts.
#[derive(Debug, Clone)]
pub enum GitBackend {
    /// A bare repository on the broker's disk, served by `git http-backend`.
    Local { project_root: PathBuf },
    /// The repo's own host, reached at `url` (its `[[repo]] url`) with the broker's identity there.
    Upstream { host: Arc<upstream::UpstreamHost>, url: crate::domain::repo::CloneUrl },
}

/// What a host did instead of what the broker asked. Messages never carry a
/// secret: they are shown to the requester and written to the audit log.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The host could not be reached or failed (a timeout, a 5xx): worth retrying.
    #[error("provider `{provider}` failed: {message}")]
    Failed { provider: String, message: String },
    #[error("provider `{provider}`: {message}")]
    Config { provider: String, message: String },
    /// The host refused: its configuration (or the app's) needs fixing; the message says what.
    #[error("provider `{provider}`: {message}")]
    Refused { provider: String, message: String },
    /// The host asks the broker to slow down, for this long.
    #[error("provider `{provider}`: the host is rate limiting the broker; retry in {}s", retry_after.as_secs())]
    RateLimited { provider: String, retry_after: std::time::Duration },
}

impl ProviderError {
    /// How long the host asked to be left alone, when it did.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            ProviderError::RateLimited { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }
}

#[async_trait]
pub trait Provider: Send + Sync {
    /// The name repos refer to it by.
    fn name(&self) -> &str;

    /// The `kind` in its config section.
    fn kind(&self) -> &'static str;

    /// Repos this provider brings by itself (found on disk), with their clone URLs under `base_url`.
    fn discover(&self, _base_url: &str) -> Result<Vec<RepoSpec>, ProviderError> {
        Ok(Vec::new())
    }

    /// How it gives a grant its access.
    fn access(&self) -> Access;

    /// Where the gateway sends git requests for `repo`; `None` when git does not go through the broker.
    fn git_backend(&self, _repo: &RepoSpec) -> Option<GitBackend> {
        None
    }

    /// What is wrong with the broker's own credential at the host, checked
    /// at start-up and by `jit server --host-setup` (empty: nothing found).
    async fn check_credential(&self) -> Vec<String> {
        Vec::new()
    }

    /// What the operator must create at the host before grants on `repo` at
    /// `levels` can work (GitHub team mode: a team per level), as commands
    /// to run; nothing for most providers.
    fn host_setup(&self, _repo: &RepoSpec, _levels: &std::collections::BTreeSet<crate::domain::Level>) -> Vec<String> {
        Vec::new()
    }

    /// Whether `repo`, listed with this provider, is one it can serve (the
    /// message names what is missing); checked when the config is read.
    fn check_repo(&self, _repo: &RepoSpec) -> Result<(), String> {
        Ok(())
    }

    /// Mints a credential for a live grant on `repo` that expires no later than the grant.
    async fn mint(&self, repo: &RepoSpec, grant: &GrantRecord, now: DateTime<Utc>) -> Result<Minted, ProviderError>;

    /// Names the membership a grant is given (host, team or project, person),
    /// so the broker knows whether another live grant of the person holds it.
    fn membership_key(&self, _repo: &RepoSpec, _grant: &GrantRecord) -> Result<String, ProviderError> {
        Err(ProviderError::Config { provider: self.name().to_string(), message: "this provider gives no memberships".into() })
    }

    /// Gives the grant's person access at the host (adds them to a team or a
    /// project), unless they already have it. `jit_holds`: the membership
    /// they have now is one jit gave for another live grant of theirs (not
    /// theirs from before). Idempotent.
    async fn add_membership(&self, _repo: &RepoSpec, _grant: &GrantRecord, _jit_holds: bool) -> Result<Membership, ProviderError> {
        Err(ProviderError::Config { provider: self.name().to_string(), message: "this provider gives no memberships".into() })
    }

    /// Revokes at the host one credential minted for `grant`, given its
    /// [`Kept::HostHandle`]. Idempotent: one the host no longer honours is done.
    async fn revoke_minted(&self, _repo: &RepoSpec, _grant: &GrantRecord, _handle: &SecretString) -> Result<(), ProviderError> {
        Ok(())
    }

    /// Makes sure `grant` gives no access at the host any more, once every
    /// credential minted for it was revoked. Idempotent.
    async fn revoke(&self, repo: &RepoSpec, grant: &GrantRecord) -> Result<(), ProviderError>;
}

/// A `[[provider]]` section as written: its name, kind and the rest of its table.
#[derive(Debug, Clone)]
pub struct ProviderSection {
    pub name: String,
    pub kind: String,
    pub line: usize,
    pub table: toml::Table,
}

type Builder = fn(&str, toml::Table) -> Result<Arc<dyn Provider>, String>;

/// Every kind of provider a `[[provider]]` section may name, and how to build it.
pub const KINDS: &[(&str, Builder)] = &[
    (local_gateway::KIND, local_gateway::from_section),
    (upstream::KIND, upstream::from_section),
    (github::KIND, github::from_section),
    (gitlab::KIND, gitlab::from_section),
    (bitbucket::KIND, bitbucket::from_section),
];

/// Builds the provider a `[[provider]]` section describes; the message names the field.
pub fn build(section: &ProviderSection) -> Result<Arc<dyn Provider>, String> {
    let Some((_, builder)) = KINDS.iter().find(|(kind, _)| *kind == section.kind) else {
        let known: Vec<&str> = KINDS.iter().map(|(k, _)| *k).collect();
        return Err(format!("unknown provider kind `{}`: expected one of {}", section.kind, known.join(", ")));
    };
    builder(&section.name, section.table.clone())
}

/// The providers a broker runs with, by name.
#[derive(Clone, Default)]
pub struct Registry {
    by_name: BTreeMap<String, Arc<dyn Provider>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.by_name.iter().map(|(n, p)| (n, p.kind()))).finish()
    }
}

impl Registry {
    /// Adds a provider; a second one with the same name is refused.
    pub fn add(&mut self, provider: Arc<dyn Provider>) -> Result<(), String> {
        let name = provider.name().to_string();
        if self.by_name.contains_key(&name) {
            return Err(format!("duplicate provider name `{name}`"));
        }
        self.by_name.insert(name, provider);
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Provider>> {
        self.by_name.get(name)
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<dyn Provider>> {
        self.by_name.values()
    }

    /// The provider of `repo`, if it names one.
    pub fn for_repo(&self, repo: &RepoSpec) -> Option<&Arc<dyn Provider>> {
        repo.provider.as_deref().and_then(|name| self.get(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A provider that states only what it must.
    struct Bare;

    #[async_trait]
    impl Provider for Bare {
        fn name(&self) -> &str {
            "bare"
        }
        fn kind(&self) -> &'static str {
            "bare"
        }
        fn access(&self) -> Access {
            Access::HostToken
        }
        async fn mint(&self, _: &RepoSpec, _: &GrantRecord, _: DateTime<Utc>) -> Result<Minted, ProviderError> {
            Err(ProviderError::Failed { provider: "bare".into(), message: "no".into() })
        }
        async fn revoke(&self, _: &RepoSpec, _: &GrantRecord) -> Result<(), ProviderError> {
            Ok(())
        }
    }

    #[test]
    fn a_provider_that_says_nothing_more_brings_no_repos_and_gets_no_git() {
        let bare = Bare;
        assert!(bare.discover("http://127.0.0.1:8420").unwrap().is_empty());
        let repo = RepoSpec { name: "demo".into(), url: None, provider: Some("bare".into()), upstream: None };
        assert!(bare.git_backend(&repo).is_none());
    }

    #[test]
    fn what_each_access_model_asks_of_the_broker() {
        let fronted = Access::Gateway { fronts_listed_repos: true };
        let local = Access::Gateway { fronts_listed_repos: false };
        // (fronts listed repos, keeps revocation data, grants membership, revokes at host)
        let facts = |a: Access| (a.fronts_listed_repos(), a.keeps_revocation_data(), a.grants_membership(), a.revokes_at_host());
        assert_eq!(facts(local), (false, false, false, false));
        assert_eq!(facts(fronted), (true, false, false, false));
        assert_eq!(facts(Access::HostToken), (false, true, false, true));
        assert_eq!(facts(Access::HostMembership), (false, true, true, true));
    }

    #[test]
    fn providers_are_held_by_unique_name() {
        let mut registry = Registry::default();
        registry.add(Arc::new(Bare)).unwrap();
        assert_eq!(registry.add(Arc::new(Bare)).unwrap_err(), "duplicate provider name `bare`");
        let repo = RepoSpec { name: "demo".into(), url: None, provider: Some("bare".into()), upstream: None };
        assert_eq!(registry.for_repo(&repo).map(|p| p.kind()), Some("bare"));
        assert!(registry.for_repo(&RepoSpec { provider: None, ..repo.clone() }).is_none());
        assert!(registry.for_repo(&RepoSpec { provider: Some("other".into()), ..repo }).is_none());
        assert_eq!(format!("{registry:?}"), r#"{"bare": "bare"}"#);
        assert_eq!(registry.all().count(), 1);
    }
}
