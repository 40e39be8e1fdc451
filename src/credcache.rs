//! The local credential cache: what the git helper answers from.
//!
//! Per grant: the password in the keychain (key `git:<url>#<grant id>`), and
//! the grant's metadata (server, repo, level, expiries, user name) in an index
//! file beside jit's data (`credentials.json`, mode 0600, no secrets), keyed by
//! the normalized clone URL. The helper can thus refuse, hint or answer
//! without any network call, and without touching the keychain for URLs jit
//! does not guard. A URL may have several grants (a read for a day, a write
//! for an hour); the helper uses the best live one.
//!
//! Concurrency: every change to the index runs under an exclusive lock
//! (`credentials.json.lock`) from its read to its atomic replace, so two
//! `jit request`s finishing at once, or a request racing the helper's
//! `erase`, never lose an entry. Readers (the helper's hot path) take no lock:
//! the file is only ever replaced whole.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::api;
use crate::client::{Client, ClientError};
use crate::domain::Level;
use crate::domain::refs::RefScope;
use crate::domain::repo::CloneUrl;
use crate::domain::request::{GrantWindow, supersedes};
use crate::domain::token::{AuthScheme, SecretString};
use crate::keychain::{Keychain, KeychainError};

impl CachedGrant {
    /// What the cache keeps of a credential `server` minted, under the grant
    /// it answered for: the one asked about, or one that superseded it.
    pub fn of(server: &str, credential: &api::Credential, login: Option<String>) -> Result<CachedGrant, ClientError> {
        let grant = &credential.grant;
        let level: Level = grant.level.parse().map_err(|e: crate::domain::level::UnknownLevel| ClientError::Protocol(e.to_string()))?;
        Ok(CachedGrant {
            server: server.to_string(),
            grant_id: grant.id,
            request_id: grant.request_id,
            repo: grant.repo.clone(),
            level,
            refs: grant.refs.clone(),
            granted_at: Some(grant.granted_at),
            grant_expires_at: grant.expires_at,
            username: credential.username.clone(),
            credential_expires_at: credential.expires_at,
            login,
            warn_before_secs: grant.warn_before_secs,
            authtype: credential.authtype,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedGrant {
    /// The broker that issued it.
    pub server: String,
    pub grant_id: i64,
    #[serde(default)]
    pub request_id: i64,
    pub repo: String,
    pub level: Level,
    /// The refs the grant may update; empty: every ref.
    #[serde(default)]
    pub refs: Vec<String>,
    #[serde(default)]
    pub granted_at: Option<DateTime<Utc>>,
    pub grant_expires_at: DateTime<Utc>,
    pub username: String,
    /// When the cached password stops working (re-minted after that).
    pub credential_expires_at: DateTime<Utc>,
    /// The login that minted it (a fingerprint of its token): git is
    /// answered with it only under that login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<String>,
    /// How long before the grant's end git is warned (the rule's `warn_before`; none: the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warn_before_secs: Option<u64>,
    /// How git sends the cached credential (Basic unless the host takes only Bearer).
    #[serde(default, skip_serializing_if = "AuthScheme::is_basic")]
    pub authtype: AuthScheme,
}

impl CachedGrant {
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        now < self.grant_expires_at
    }

    /// Whether `login` (the current one; `None`: nobody's) minted it: the
    /// only credentials git is answered with, and `jit status` shows.
    fn minted_by(&self, login: &Option<String>) -> bool {
        login.is_some() && self.login == *login
    }

    /// Whether the broker ended `older`, live until now, for this grant (the
    /// broker's own rule).
    fn supersedes(&self, older: &CachedGrant, now: DateTime<Utc>) -> bool {
        let (Ok(refs), Ok(older_refs)) = (RefScope::parse(&self.refs), RefScope::parse(&older.refs)) else { return false };
        let window = |g: &CachedGrant, refs| GrantWindow { level: g.level, expires_at: g.grant_expires_at, refs };
        older.grant_id != self.grant_id && older.is_live(now) && supersedes(window(self, &refs), window(older, &older_refs))
    }

    /// The grant as `jit status --json` shows it, from the cache alone.
    pub fn to_api(&self, url: &str) -> crate::api::Grant {
        crate::api::Grant {
            id: self.grant_id,
            request_id: self.request_id,
            user: self.username.clone(),
            repo: self.repo.clone(),
            level: self.level.to_string(),
            refs: self.refs.clone(),
            clone_url: Some(url.to_string()),
            granted_at: self.granted_at.unwrap_or(self.grant_expires_at),
            expires_at: self.grant_expires_at,
            status: crate::domain::request::GrantStatus::Active,
            revoked_at: None,
            revoked_by: None,
            warn_before_secs: self.warn_before_secs,
        }
    }
}

/// Live grants cached from `server`, for `jit status` when it is out of reach.
pub fn live_grants(server: &str, now: DateTime<Utc>) -> Vec<crate::api::Grant> {
    let index = Index::load();
    let login = index.current_login();
    let mut out: Vec<crate::api::Grant> = index
        .urls
        .iter()
        .flat_map(|(url, list)| list.iter().filter(|g| g.is_live(now) && g.server == server && g.minted_by(&login)).map(|g| g.to_api(url)))
        .collect();
    out.sort_by_key(|g| std::cmp::Reverse(g.id));
    out
}

/// A repo a broker guards, so the helper knows which URLs to ask it about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardedRepo {
    pub server: String,
    pub repo: String,
    /// Where the code lives when the broker's gateway fronts another host:
    /// jit's remote helper sends this URL's forms to the clone URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
}

/// A request of this user's that was left pending (`--no-wait`, a timeout,
/// Ctrl-C): the helper looks for its grant when git next asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRequest {
    pub server: String,
    pub repo: String,
    pub request_id: i64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Index {
    /// Keyed by the normalized clone URL.
    pub urls: BTreeMap<String, Vec<CachedGrant>>,
    /// Every clone URL the brokers guard (from `jit setup` and each grant), by URL.
    #[serde(default)]
    pub repos: BTreeMap<String, GuardedRepo>,
    #[serde(default)]
    pub pending: Vec<PendingRequest>,
    /// The stored login's fingerprint (set by `jit login`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<String>,
}

/// Whether the ending-soon warning for `repo` may be shown now (at most once
/// a minute per repo, across every git process), and if so, notes that it is.
/// Kept in `warnings.json` beside the index (no secrets); any trouble with it
/// errs on the side of warning.
pub fn warn_once(repo: &str, now: DateTime<Utc>) -> bool {
    let Some(path) = crate::fsutil::user_data_dir().map(|d| d.join("warnings.json")) else { return true };
    let mut shown: std::collections::BTreeMap<String, DateTime<Utc>> =
        std::fs::read(&path).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
    if !crate::domain::expiry::may_repeat(shown.get(repo).copied(), now) {
        return false;
    }
    shown.retain(|_, at| now - *at < chrono::Duration::hours(1));
    shown.insert(repo.to_string(), now);
    let _ = crate::fsutil::replace_private(&path, &serde_json::to_vec(&shown).unwrap_or_default());
    true
}

pub fn index_path() -> Option<PathBuf> {
    crate::fsutil::user_data_dir().map(|d| d.join("credentials.json"))
}

pub fn keychain_key(url: &str, grant_id: i64) -> String {
    format!("git:{url}#{grant_id}")
}

/// What the helper should do for a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pick {
    /// Use this live grant (highest level, then latest expiry).
    Live(CachedGrant),
    /// Every cached grant has ended; this is the last to end.
    Ended(CachedGrant),
    Nothing,
}

/// Picks the grant to answer with.
pub fn pick(grants: &[CachedGrant], now: DateTime<Utc>) -> Pick {
    let best = grants.iter().filter(|g| g.is_live(now)).max_by_key(|g| (g.level, g.grant_expires_at));
    if let Some(g) = best {
        return Pick::Live(g.clone());
    }
    match grants.iter().max_by_key(|g| g.grant_expires_at) {
        Some(g) => Pick::Ended(g.clone()),
        None => Pick::Nothing,
    }
}

/// The fingerprint of `JIT_TOKEN`, which wins over the stored login.
fn env_token_fingerprint() -> Option<String> {
    std::env::var("JIT_TOKEN").ok().filter(|t| !t.trim().is_empty()).map(|t| crate::domain::token::fingerprint(&t))
}

impl Index {
    /// Whose credentials git is answered with: `JIT_TOKEN`'s login when it
    /// is set, else the stored login's.
    pub fn current_login(&self) -> Option<String> {
        env_token_fingerprint().or_else(|| self.login.clone())
    }

    /// The grants cached for `url` under the current login (others' are not
    /// this shell's to use, nor to describe).
    pub fn grants_for(&self, url: &str) -> Vec<CachedGrant> {
        let login = self.current_login();
        self.urls.get(url).map(|l| l.iter().filter(|g| g.minted_by(&login)).cloned().collect()).unwrap_or_default()
    }

    /// The repos whose cached grants' host takes their credential only as a
    /// Bearer token (git 2.46 or later sends it).
    pub fn bearer_repos(&self) -> Vec<String> {
        let mut repos: Vec<String> =
            self.urls.values().flatten().filter(|g| g.authtype == AuthScheme::Bearer).map(|g| g.repo.clone()).collect();
        repos.sort();
        repos.dedup();
        repos
    }

    /// The repo a URL names, if a broker guards it (or a grant for it was cached).
    pub fn repo_for(&self, url: &str) -> Option<GuardedRepo> {
        self.repos
            .get(url)
            .cloned()
            .or_else(|| self.urls.get(url)?.first().map(|g| GuardedRepo { server: g.server.clone(), repo: g.repo.clone(), upstream: None }))
    }

    /// Requests left pending on `repo`.
    pub fn pending_on(&self, repo: &GuardedRepo) -> Vec<PendingRequest> {
        self.pending.iter().filter(|p| p.server == repo.server && p.repo == repo.repo).cloned().collect()
    }

    /// Reads the index; a missing or unreadable file is an empty index.
    pub fn load() -> Index {
        let Some(path) = index_path() else { return Index::default() };
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_default(),
            Err(_) => Index::default(),
        }
    }

    pub fn save(&self) -> std::io::Result<()> {
        let path = index_path().ok_or_else(|| std::io::Error::other("no user data directory"))?;
        crate::fsutil::replace_private(&path, &serde_json::to_vec_pretty(self).expect("index serializes"))
    }

    /// Replaces what is known of the repos `server` guards (by clone URL),
    /// leaving other brokers' alone.
    fn set_repos(&mut self, server: &str, repos: &[api::Repo]) {
        self.repos.retain(|_, r| r.server != server);
        for repo in repos {
            if let Some(url) = repo.clone_url.as_deref().and_then(|u| CloneUrl::parse(u).ok()) {
                let upstream = repo.upstream_url.clone();
                self.repos.insert(url.to_string(), GuardedRepo { server: server.to_string(), repo: repo.name.clone(), upstream });
            }
        }
    }

    /// Takes grant `grant_id` out of every URL's list (a URL left with none
    /// goes too); returns the URLs it was cached for, whose passwords go next.
    fn remove_grant(&mut self, grant_id: i64) -> Vec<String> {
        let mut held = Vec::new();
        for (url, list) in self.urls.iter_mut() {
            let before = list.len();
            list.retain(|g| g.grant_id != grant_id);
            if list.len() < before {
                held.push(url.clone());
            }
        }
        self.urls.retain(|_, l| !l.is_empty());
        held
    }

    /// Stops following request `request_id` of `server` (ids are per broker).
    fn drop_pending(&mut self, server: &str, request_id: i64) {
        self.pending.retain(|p| !(p.server == server && p.request_id == request_id));
    }

    /// Adds or refreshes a grant; keeps the live ones and the last ended one (for hints).
    fn upsert(&mut self, url: &str, grant: CachedGrant, now: DateTime<Utc>) -> Vec<CachedGrant> {
        let list = self.urls.entry(url.to_string()).or_default();
        // The broker ended every grant this one supersedes (its credentials
        // answer to this one now): the cache forgets them, so git is never
        // told about a grant that no longer decides anything.
        let (superseded, mut kept): (Vec<_>, Vec<_>) = list
            .drain(..)
            .filter(|g| g.grant_id != grant.grant_id || g.server != grant.server)
            .partition(|g| g.server == grant.server && g.login == grant.login && grant.supersedes(g, now));
        kept.push(grant);
        *list = kept;
        let last_ended = list.iter().filter(|g| !g.is_live(now)).max_by_key(|g| g.grant_expires_at).map(|g| g.grant_id);
        let (keep, mut dropped): (Vec<_>, Vec<_>) = list.drain(..).partition(|g| g.is_live(now) || Some(g.grant_id) == last_ended);
        *list = keep;
        dropped.extend(superseded);
        dropped
    }
}

fn io_error(e: std::io::Error) -> KeychainError {
    KeychainError::File { path: index_path().unwrap_or_default(), message: e.to_string() }
}

/// Runs `change` on the index under the lock, then saves it.
fn update<T>(change: impl FnOnce(&mut Index) -> Result<T, KeychainError>) -> Result<T, KeychainError> {
    let path = index_path().ok_or_else(|| io_error(std::io::Error::other("no user data directory")))?;
    let _guard = crate::fsutil::lock(&path).map_err(io_error)?;
    let mut index = Index::load();
    let out = change(&mut index)?;
    index.save().map_err(io_error)?;
    Ok(out)
}

/// Stores a grant's credential for `url`.
pub fn store(keychain: &Keychain, url: &str, grant: CachedGrant, password: &SecretString) -> Result<(), KeychainError> {
    update(|index| {
        keychain.set(&keychain_key(url, grant.grant_id), password)?;
        // A cache from before logins were recorded learns the stored one here.
        if index.login.is_none() && env_token_fingerprint().is_none() {
            index.login.clone_from(&grant.login);
        }
        for old in index.upsert(url, grant, Utc::now()) {
            let _ = keychain.delete(&keychain_key(url, old.grant_id));
        }
        Ok(())
    })
}

/// Why a grant's credential could not be kept.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(transparent)]
    Broker(#[from] ClientError),
    #[error(transparent)]
    Keychain(#[from] KeychainError),
}

/// The fronted repos `url` could be one of, as `jit setup` last learnt them:
/// what jit's remote helper routes by. Only entries whose path appears in
/// `url` are parsed (the helper runs for every network command on a routed
/// host, and an index may hold thousands); [`url_rewrite::route`] then
/// decides exactly.
///
/// [`url_rewrite::route`]: crate::domain::url_rewrite::route
pub fn fronted_like(url: &str) -> Vec<crate::domain::url_rewrite::Fronted> {
    use std::borrow::Cow;
    /// The index's `repos`, borrowed from the file's bytes (the rest skipped).
    #[derive(Deserialize)]
    struct Routes<'a> {
        #[serde(default, borrow)]
        repos: BTreeMap<Cow<'a, str>, Route<'a>>,
    }
    #[derive(Deserialize)]
    struct Route<'a> {
        #[serde(default, borrow)]
        upstream: Option<Cow<'a, str>>,
    }
    let Some(bytes) = index_path().and_then(|p| std::fs::read(p).ok()) else { return Vec::new() };
    let Ok(routes) = serde_json::from_slice::<Routes>(&bytes) else { return Vec::new() };
    routes
        .repos
        .into_iter()
        .filter_map(|(gateway, r)| {
            let upstream = r.upstream?;
            let path = upstream.split_once("://")?.1.split_once('/')?.1.trim_end_matches('/').trim_end_matches(".git");
            if !url.contains(path) {
                return None;
            }
            Some(crate::domain::url_rewrite::Fronted { upstream: CloneUrl::parse(&upstream).ok()?, gateway: gateway.into_owned() })
        })
        .collect()
}

/// Records the repos `server` guards (replacing what was known of it), so the
/// helper knows which URLs to ask that broker about.
pub fn remember_repos(server: &str, repos: &[api::Repo]) -> Result<(), KeychainError> {
    update(|index| {
        index.set_repos(server, repos);
        Ok(())
    })
}

/// Records a request left pending, for the helper to follow up.
pub fn remember_pending(server: &str, repo: &str, request_id: i64) -> Result<(), KeychainError> {
    update(|index| {
        let entry = PendingRequest { server: server.to_string(), repo: repo.to_string(), request_id };
        if !index.pending.contains(&entry) {
            index.pending.push(entry);
        }
        Ok(())
    })
}

/// Drops a request from the pending list once it was decided.
pub fn forget_pending(server: &str, request_id: i64) -> Result<(), KeychainError> {
    update(|index| {
        index.drop_pending(server, request_id);
        Ok(())
    })
}

/// Mints a credential for the caller's `grant` and keeps it where git's
/// helper finds it. Returns the clone URL it was kept for, with the
/// credential, or `None` when there is nothing to keep: a repo without a clone
/// URL, a host jit does not mint for (the grant alone is the access), or
/// someone else's grant (an approver waiting on a request).
pub async fn fetch_and_store(
    client: &Client,
    keychain: &Keychain,
    grant: &api::Grant,
) -> Result<Option<(CloneUrl, api::Credential)>, FetchError> {
    let Some(url) = grant.clone_url.as_deref().and_then(|u| CloneUrl::parse(u).ok()) else { return Ok(None) };
    let credential = match client.mint_credential(grant.id).await {
        Ok(c) => c,
        Err(ClientError::Api { code, .. }) if code == api::codes::CONFLICT || code == api::codes::NOT_FOUND => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let cached = CachedGrant::of(client.base(), &credential, client.login_fingerprint())?;
    store(keychain, &url.to_string(), cached, &credential.password)?;
    update(|index| {
        let upstream = index.repos.get(&url.to_string()).and_then(|r| r.upstream.clone());
        index.repos.insert(url.to_string(), GuardedRepo { server: client.base().to_string(), repo: grant.repo.clone(), upstream });
        index.drop_pending(client.base(), grant.request_id);
        Ok(())
    })?;
    Ok(Some((url, credential)))
}

pub fn password(keychain: &Keychain, url: &str, grant_id: i64) -> Result<Option<SecretString>, KeychainError> {
    keychain.get(&keychain_key(url, grant_id))
}

/// Drops a grant's password but keeps its metadata (so the helper can still
/// explain that it ended, or re-mint while it lives: with no password to
/// read, the next `get` mints a fresh one).
pub fn drop_password(keychain: &Keychain, url: &str, grant_id: i64) -> Result<(), KeychainError> {
    keychain.delete(&keychain_key(url, grant_id)).map(|_| ())
}

/// Forgets whatever is cached for grant `grant_id`.
pub fn forget_grant(keychain: &Keychain, grant_id: i64) -> Result<(), KeychainError> {
    update(|index| {
        for url in index.remove_grant(grant_id) {
            keychain.delete(&keychain_key(&url, grant_id))?;
        }
        Ok(())
    })
}

/// Records the stored login (`jit login`), by fingerprint; the credentials
/// cached under `same_person` (the same person's previous token) carry over.
pub fn adopt_login(login: String, same_person: Option<String>) -> Result<(), KeychainError> {
    update(|index| {
        if let Some(old) = same_person {
            index
                .urls
                .values_mut()
                .flatten()
                .filter(|g| g.login.as_deref() == Some(old.as_str()))
                .for_each(|g| g.login = Some(login.clone()));
        }
        index.login = Some(login);
        Ok(())
    })
}

/// Forgets the credentials cached under `login` (and, the stored login
/// being replaced, the requests it left pending); returns how many.
pub fn forget_login(keychain: &Keychain, login: Option<&str>) -> Result<usize, KeychainError> {
    update(|index| {
        index.pending.clear();
        let mut n = 0;
        for (url, list) in index.urls.iter_mut() {
            let (gone, kept): (Vec<_>, Vec<_>) = list.drain(..).partition(|g| g.login.as_deref() == login);
            for g in gone {
                keychain.delete(&keychain_key(url, g.grant_id))?;
                n += 1;
            }
            *list = kept;
        }
        index.urls.retain(|_, l| !l.is_empty());
        Ok(n)
    })
}

/// Forgets every cached credential (logout), and the requests left pending
/// (they were the logged-out user's to follow); returns how many credentials.
pub fn forget_all(keychain: &Keychain) -> Result<usize, KeychainError> {
    update(|index| {
        index.pending.clear();
        index.login = None;
        let mut n = 0;
        for (url, list) in std::mem::take(&mut index.urls) {
            for g in list {
                keychain.delete(&keychain_key(&url, g.grant_id))?;
                n += 1;
            }
        }
        Ok(n)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(id: i64, level: Level, expires_in: i64) -> CachedGrant {
        let now = Utc::now();
        CachedGrant {
            server: "http://b".into(),
            grant_id: id,
            request_id: id,
            repo: "demo".into(),
            level,
            refs: Vec::new(),
            granted_at: Some(now),
            grant_expires_at: now + chrono::Duration::seconds(expires_in),
            username: "alice".into(),
            credential_expires_at: now + chrono::Duration::seconds(expires_in),
            login: Some("a1".into()),
            warn_before_secs: None,
            authtype: AuthScheme::Basic,
        }
    }

    #[test]
    fn the_best_live_grant_answers() {
        let now = Utc::now();
        let read_day = grant(1, Level::Read, 86_400);
        let write_hour = grant(2, Level::Write, 3600);
        assert_eq!(pick(&[read_day.clone(), write_hour.clone()], now), Pick::Live(write_hour.clone()));
        // When the write grant ends, the read grant still answers.
        let write_ended = grant(2, Level::Write, -1);
        assert_eq!(pick(&[read_day.clone(), write_ended.clone()], now), Pick::Live(read_day));
        assert_eq!(pick(std::slice::from_ref(&write_ended), now), Pick::Ended(write_ended));
        assert_eq!(pick(&[], now), Pick::Nothing);
    }

    #[test]
    fn each_broker_s_repos_replace_only_its_own() {
        let repo = |name: &str, url: Option<&str>| api::Repo {
            name: name.into(),
            clone_url: url.map(Into::into),
            upstream_url: None,
            own_credentials_url: None,
        };
        let mut index = Index::default();
        index.set_repos("http://a", &[repo("r1", Some("http://a/git/r1.git")), repo("r2", Some("http://a/git/r2.git"))]);
        index.set_repos("http://b", &[repo("r3", Some("https://b/r3.git")), repo("no-url", None)]);
        // Broker a no longer guards r1: only its own list changes.
        index.set_repos("http://a", &[repo("r2", Some("HTTP://A/git/r2"))]);
        let known: Vec<(&str, &str, &str)> =
            index.repos.iter().map(|(url, r)| (url.as_str(), r.server.as_str(), r.repo.as_str())).collect();
        assert_eq!(known, [("http://a/git/r2.git", "http://a", "r2"), ("https://b/r3.git", "http://b", "r3")]);
        assert_eq!(
            index.repo_for("http://a/git/r2.git"),
            Some(GuardedRepo { server: "http://a".into(), repo: "r2".into(), upstream: None })
        );
        assert_eq!(index.repo_for("http://a/git/r1.git"), None);
    }

    #[test]
    fn pending_requests_are_found_by_broker_and_repo() {
        let mut index = Index::default();
        let p = |server: &str, repo: &str, id: i64| PendingRequest { server: server.into(), repo: repo.into(), request_id: id };
        index.pending = vec![p("http://a", "r1", 1), p("http://a", "r2", 2), p("http://b", "r1", 3), p("http://a", "r1", 4)];
        let on = |server: &str, repo: &str| -> Vec<i64> {
            index
                .pending_on(&GuardedRepo { server: server.into(), repo: repo.into(), upstream: None })
                .iter()
                .map(|p| p.request_id)
                .collect()
        };
        assert_eq!(on("http://a", "r1"), [1, 4]);
        assert_eq!(on("http://b", "r1"), [3]);
        assert!(on("http://b", "r2").is_empty());
        // Request 3 of broker a is not request 3 of broker b.
        index.pending.push(p("http://a", "r1", 3));
        index.drop_pending("http://b", 3);
        index.drop_pending("http://a", 1);
        let left: Vec<(&str, i64)> = index.pending.iter().map(|p| (p.server.as_str(), p.request_id)).collect();
        assert_eq!(left, [("http://a", 2), ("http://a", 4), ("http://a", 3)]);
    }

    #[test]
    fn removing_a_grant_leaves_every_other_one() {
        let now = Utc::now();
        let mut index = Index::default();
        // (The read outlives the write, so the write does not supersede it.)
        index.upsert("u1", grant(1, Level::Read, 120), now);
        index.upsert("u1", grant(2, Level::Write, 60), now);
        index.upsert("u2", grant(2, Level::Write, 60), now);
        index.upsert("u3", grant(3, Level::Read, 60), now);
        assert_eq!(index.remove_grant(2), ["u1", "u2"]);
        let left: Vec<(&str, Vec<i64>)> = index.urls.iter().map(|(u, l)| (u.as_str(), l.iter().map(|g| g.grant_id).collect())).collect();
        assert_eq!(left, [("u1", vec![1]), ("u3", vec![3])]);
        assert!(index.remove_grant(9).is_empty());
    }

    #[test]
    fn a_grant_has_ended_at_its_end_instant() {
        // As the broker and the gateway judge it: live strictly before its end.
        let g = grant(1, Level::Read, 60);
        assert!(g.is_live(g.grant_expires_at - chrono::Duration::nanoseconds(1)));
        assert!(!g.is_live(g.grant_expires_at));
        assert_eq!(pick(std::slice::from_ref(&g), g.grant_expires_at), Pick::Ended(g.clone()));
    }

    #[test]
    fn upsert_keeps_live_grants_and_the_last_ended_one() {
        let now = Utc::now();
        let mut index = Index::default();
        assert!(index.upsert("u", grant(1, Level::Read, -100), now).is_empty());
        assert!(index.upsert("u", grant(2, Level::Read, -10), now).iter().map(|g| g.grant_id).eq([1]));
        assert!(index.upsert("u", grant(3, Level::Write, 60), now).is_empty());
        let ids: Vec<i64> = index.urls["u"].iter().map(|g| g.grant_id).collect();
        assert_eq!(ids, [2, 3]);
        // Re-minting the same grant replaces its entry.
        index.upsert("u", grant(3, Level::Write, 120), now);
        assert_eq!(index.urls["u"].len(), 2);
    }

    #[test]
    fn a_grant_drops_the_grants_it_supersedes_and_only_those() {
        let now = Utc::now();
        let mut index = Index::default();
        index.upsert("u", grant(1, Level::Read, 60), now);
        index.upsert("u", grant(2, Level::Admin, 30), now);
        // Write until later supersedes the read (not the admin: a lower level).
        let dropped: Vec<i64> = index.upsert("u", grant(3, Level::Write, 120), now).iter().map(|g| g.grant_id).collect();
        assert_eq!(dropped, [1]);
        let ids: Vec<i64> = index.urls["u"].iter().map(|g| g.grant_id).collect();
        assert_eq!(ids, [2, 3]);
        // One ending sooner supersedes nothing; nor does another broker's.
        assert!(index.upsert("u", grant(4, Level::Admin, 10), now).is_empty());
        let mut elsewhere = grant(5, Level::Admin, 500);
        elsewhere.server = "http://other".into();
        assert!(index.upsert("u", elsewhere, now).is_empty());
        // A ref-scoped grant does not supersede one for every ref.
        let mut scoped = grant(6, Level::Admin, 900);
        scoped.refs = vec!["refs/heads/hotfix/*".into()];
        assert!(index.upsert("u", scoped, now).is_empty());
    }
}
