//! Grants: who sees them, who ends them, credentials minted for them, and
//! the reaper's side (telling providers about every grant that ended).

use chrono::{DateTime, Utc};

use super::{Broker, BrokerError, BrokerResult, Listing, event, subject};
use crate::domain::audit::{Action, BROKER_ACTOR, NewEvent, timestamp};
use crate::domain::records::{EndFailure, FailingEnd, GrantRecord, HostPhase, NewCredential, NewHostToken, Page, UserRecord};
use crate::domain::repo::RepoSpec;
use crate::domain::request::{self as request, GrantStatus, GrantWindow, grant_status};
use crate::providers::{Kept, Minted, Provider, ProviderError};
use crate::store::StoreError;

/// How long a broker's claim on a grant lasts: longer than every call one
/// start or end makes to a host (each bounded by its provider's timeout).
pub const CLAIM: std::time::Duration = std::time::Duration::from_secs(120);

impl Broker {
    /// The grantee, an admin, or an approver of the grant's repo and level.
    fn may_see_grant(&self, caller: &UserRecord, grant: &GrantRecord) -> bool {
        caller.admin || grant.user_id == Some(caller.id) || self.live().policy.is_approver_for(&grant.repo, grant.level, &subject(caller))
    }

    pub fn grant_status(&self, grant: &GrantRecord) -> GrantStatus {
        grant_status(grant.expires_at, grant.revoked_at, self.now())
    }

    /// The caller's grants (every user's with `all`, admins only); with `live`, only those live now.
    pub async fn list_grants(&self, caller: &UserRecord, all: bool, live: bool, page: Page) -> BrokerResult<Listing<GrantRecord>> {
        if all && !caller.admin {
            return Err(BrokerError::Forbidden("only admins can list every user's grants".into()));
        }
        let who = (!all).then_some(caller.id);
        let items = self.store.grants(who, live.then(|| self.now()), page).await?;
        let next_before = page.next(items.iter().map(|g| g.id));
        Ok(Listing { items, next_before })
    }

    pub async fn get_grant(&self, caller: &UserRecord, id: i64) -> BrokerResult<GrantRecord> {
        match self.store.grant(id).await? {
            Some(g) if self.may_see_grant(caller, &g) => Ok(g),
            _ => Err(BrokerError::NotFound(format!("grant {id}"))),
        }
    }

    /// Ends a live grant now. Whoever may see it may end it.
    pub async fn revoke(&self, caller: &UserRecord, id: i64, reason: Option<&str>) -> BrokerResult<GrantRecord> {
        let reason = super::requests::check_text("reason", reason)?;
        let grant = self.get_grant(caller, id).await?;
        let now = self.now();
        let mut revoked = event(&caller.name, Action::Revoked, &grant.repo, grant.level);
        revoked.request_id = Some(grant.request_id);
        revoked.grant_id = Some(id);
        revoked.detail = reason;
        match self.store.revoke_grant(id, &caller.name, now, revoked).await {
            Ok(g) => {
                tracing::info!(grant = id, by = %caller.name, "grant revoked");
                self.reaper_wake.notify_one(); // the provider is told now, not at the next tick
                Ok(g)
            }
            Err(StoreError::Conflict) => Err(BrokerError::GrantEnded {
                id,
                status: grant_status(grant.expires_at, grant.revoked_at, now),
                repo: grant.repo,
                level: grant.level,
                superseded: false,
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// The live grant of the same user on the same repo that supersedes `ended`
    /// (the highest, longest one when several do).
    async fn superseding(&self, ended: &GrantRecord) -> BrokerResult<Option<GrantRecord>> {
        let old = GrantWindow { level: ended.level, expires_at: ended.expires_at, refs: &ended.refs };
        let live = self.live_grants_on(ended.user_id, &ended.repo).await?;
        Ok(live
            .into_iter()
            .filter(|g| request::supersedes(GrantWindow { level: g.level, expires_at: g.expires_at, refs: &g.refs }, old))
            .max_by_key(|g| (g.level, g.expires_at)))
    }

    /// Grant `id` when it is the caller's own; someone else's is not found,
    /// exactly as one that does not exist.
    pub(super) async fn own_grant(&self, caller: &UserRecord, id: i64) -> BrokerResult<GrantRecord> {
        match self.store.grant(id).await? {
            Some(g) if g.user_id == Some(caller.id) => Ok(g),
            _ => Err(BrokerError::NotFound(format!("grant {id}"))),
        }
    }

    /// Mints a git credential for the caller's own live grant, through the
    /// repo's provider, and records it (hash only) with its audit event.
    pub async fn mint_credential(&self, caller: &UserRecord, id: i64, client: std::net::IpAddr) -> BrokerResult<(GrantRecord, Minted)> {
        let grant = self.own_grant(caller, id).await?;
        let now = self.now();
        let grant = match grant_status(grant.expires_at, grant.revoked_at, now) {
            GrantStatus::Active => grant,
            // Superseded (by the broker, for a grant of the same user that covers it):
            // the credential is the superseding grant's, as git's already are.
            status @ GrantStatus::Revoked if grant.revoked_by.as_deref() == Some(BROKER_ACTOR) => match self.superseding(&grant).await? {
                Some(live) => live,
                None => return Err(BrokerError::GrantEnded { id, status, repo: grant.repo, level: grant.level, superseded: true }),
            },
            status => return Err(BrokerError::GrantEnded { id, status, repo: grant.repo, level: grant.level, superseded: false }),
        };
        let id = grant.id;
        if let Some((rule, from)) = self.networks_of(&grant)
            && !crate::domain::network::allowed_from(&from, client)
        {
            let from = from.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
            let mut refused = event(&caller.name, Action::CredentialRefused, &grant.repo, grant.level);
            refused.request_id = Some(grant.request_id);
            refused.grant_id = Some(grant.id);
            refused.detail = Some(format!("from {client}, outside {from} (rule `{rule}`)"));
            self.store.append_events(vec![refused], now).await?;
            return Err(BrokerError::Forbidden(format!(
                "grant {id} can be used only from {from} (rule `{rule}`); this request came from {client}"
            )));
        }
        let (repo, provider) = self.repo_and_provider(&grant.repo).ok_or_else(|| BrokerError::NoProvider(grant.repo.clone()))?;
        if provider.access().grants_membership() {
            return Err(BrokerError::Conflict(format!(
                "grant {id} is a membership at the host: git uses your own credentials for {}, and jit mints none",
                grant.repo
            )));
        }
        let minted = match provider.mint(&repo, &grant, now).await {
            Ok(minted) => minted,
            Err(e) => {
                tracing::error!(grant = id, error = %e, "mint failed");
                let mut failed = event(&caller.name, Action::CredentialFailed, &grant.repo, grant.level);
                failed.request_id = Some(grant.request_id);
                failed.grant_id = Some(grant.id);
                failed.detail = Some(e.to_string());
                self.store.append_events(vec![failed], now).await?;
                return Err(e.into());
            }
        };
        let expires_at = minted.expires_at.min(grant.expires_at);
        let mut record = event(&caller.name, Action::CredentialMinted, &grant.repo, grant.level);
        record.request_id = Some(grant.request_id);
        record.grant_id = Some(grant.id);
        record.detail = Some(format!("{} credential until {}", provider.name(), timestamp(expires_at)));
        match &minted.kept {
            Kept::GatewayHash(hash) => {
                let credential = NewCredential { grant_id: grant.id, hash: hash.clone(), created_at: now, expires_at };
                self.store.add_credential(&credential, record).await?
            }
            Kept::HostHandle(handle) => {
                let sealed = self.seal(provider.name(), grant.id, handle)?;
                let token = NewHostToken { grant_id: grant.id, sealed, created_at: now, expires_at, shared_key: None };
                if let Err(e) = self.store.add_host_token(&token, record).await {
                    // Not recorded, so the reaper would never revoke it: revoke it now.
                    if let Err(undo) = provider.revoke_minted(&repo, &grant, handle).await {
                        tracing::error!(grant = id, error = %undo, "a credential minted for a grant that ended meanwhile could not be revoked");
                    }
                    return Err(match e {
                        StoreError::Conflict => {
                            let status = grant_status(grant.expires_at, Some(now), now);
                            BrokerError::GrantEnded { id, status, repo: grant.repo, level: grant.level, superseded: false }
                        }
                        other => other.into(),
                    });
                }
            }
        }
        Ok((grant, Minted { expires_at, ..minted }))
    }

    /// Tells providers about grants that ended and records expiries; returns
    /// how many grants were closed. A host that fails is tried again later
    /// (`domain::retry`), each attempt an audit event, until it agrees; until
    /// then the grant is listed by [`Broker::failing_ends`]. Run by the
    /// reaper, safe to run anywhere.
    pub async fn end_grants(&self) -> BrokerResult<usize> {
        let now = self.now();
        let mut closed = 0;
        for grant in self.store.grants_to_end(now).await? {
            if !self.claim(&grant, now).await? {
                continue; // another broker on this database is ending it
            }
            let (mut events, mut revoked, mut released) = (Vec::new(), Vec::new(), Vec::new());
            if let Some((repo, provider)) = self.repo_and_provider(&grant.repo) {
                match self.end_at_host(&repo, provider.as_ref(), &grant, &mut revoked, &mut released).await {
                    Ok(()) if provider.access().revokes_at_host() => {
                        let failures = self.store.host_failures(grant.id, HostPhase::End).await?;
                        let mut done = self.grant_event(&grant, Action::HostRevoked);
                        let after = if failures > 0 { format!(", after {failures} failed attempts") } else { String::new() };
                        done.detail = Some(format!("{}: {} credential(s) revoked at the host{after}", provider.name(), revoked.len()));
                        events.push(done);
                    }
                    Ok(()) => {}
                    Err(e) => {
                        self.record_host_failure(&grant, HostPhase::End, &revoked, &e, now).await?;
                        continue;
                    }
                }
            }
            if grant.revoked_at.is_none() {
                events.push(self.grant_event(&grant, Action::GrantExpired));
            }
            if self.store.mark_grant_ended(grant.id, now, &revoked, &released, events).await? {
                closed += 1;
            }
        }
        Ok(closed)
    }

    /// Revokes every credential minted for `grant` at its host and removes
    /// every membership it holds there, then whatever else the provider
    /// undoes; `revoked` collects the host tokens done, `released` the
    /// memberships removed (other live grants of the person that shared one
    /// are given theirs again by the reaper's next pass, within a second, at
    /// their own level).
    async fn end_at_host(
        &self,
        repo: &RepoSpec,
        provider: &dyn Provider,
        grant: &GrantRecord,
        revoked: &mut Vec<i64>,
        released: &mut Vec<String>,
    ) -> Result<(), ProviderError> {
        // Only providers that keep revocation data have any to read.
        let tokens = match provider.access().keeps_revocation_data() {
            true => self.store.host_tokens(grant.id).await.map_err(|e| ProviderError::Failed {
                provider: provider.name().to_string(),
                message: format!("cannot read the grant's host credentials: {e}"),
            })?,
            false => Vec::new(),
        };
        for token in tokens {
            let handle = self.unseal(provider.name(), grant.id, &token.sealed)?;
            provider.revoke_minted(repo, grant, &handle).await?;
            revoked.push(token.id);
            released.extend(token.shared_key);
        }
        provider.revoke(repo, grant).await
    }

    /// Claims `grant` for this broker while it calls the grant's host, so
    /// brokers sharing a database never call a host twice for one grant; a
    /// broker that dies mid-call leaves a claim that runs out after [`CLAIM`].
    async fn claim(&self, grant: &GrantRecord, now: DateTime<Utc>) -> BrokerResult<bool> {
        let until = now + chrono::Duration::from_std(CLAIM).expect("a short duration");
        Ok(self.store.claim_grant(grant.id, &self.replica, now, until).await?)
    }

    async fn record_host_failure(
        &self,
        grant: &GrantRecord,
        phase: HostPhase,
        revoked: &[i64],
        e: &ProviderError,
        now: DateTime<Utc>,
    ) -> BrokerResult<()> {
        let attempt = self.store.host_failures(grant.id, phase).await?.saturating_add(1);
        let wait = crate::domain::retry::retry_after(attempt, e.retry_after());
        let retry_at = now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX);
        let (action, what) = match phase {
            HostPhase::Start => (Action::HostGrantFailed, "give the grant its access"),
            HostPhase::End => (Action::HostRevokeFailed, "end the grant"),
        };
        tracing::warn!(grant = grant.id, attempt, error = %e, retry_in = ?wait, "the host did not {what}; will retry");
        let mut failed = self.grant_event(grant, action);
        failed.detail = Some(format!("attempt {attempt}: {e}; next attempt at {}", timestamp(retry_at)));
        let failure = EndFailure { error: e.to_string(), at: now, retry_at };
        match self.store.record_host_failure(grant.id, phase, revoked, &failure, failed).await {
            Err(StoreError::Conflict) => Ok(()), // ended meanwhile, by another reaper
            other => Ok(other?),
        }
    }

    /// Gives grants whose provider grants memberships their access at the
    /// host (adding the person to a team or project); returns how many were
    /// started. A membership the person already had is left as it was and
    /// never removed by jit, unless another live grant of theirs added it, in
    /// which case this grant shares it. Failures are retried like ends.
    pub async fn start_grants(&self) -> BrokerResult<usize> {
        let repos: Vec<String> = self
            .live()
            .repos
            .iter()
            .filter(|r| self.config.providers.for_repo(r).is_some_and(|p| p.access().grants_membership()))
            .map(|r| r.name.clone())
            .collect();
        let now = self.now();
        let mut started = 0;
        for grant in self.store.grants_to_start(&repos, now).await? {
            let Some((repo, provider)) = self.repo_and_provider(&grant.repo) else { continue };
            if !self.claim(&grant, now).await? {
                continue; // another broker on this database is starting it
            }
            let added = match provider.membership_key(&repo, &grant) {
                Ok(key) => {
                    let holder = self.store.holder_of(&key, grant.id).await?;
                    provider.add_membership(&repo, &grant, holder.is_some()).await.map(|m| (key, holder, m))
                }
                Err(e) => Err(e),
            };
            let (key, holder, membership) = match added {
                Ok(added) => added,
                Err(e) => {
                    self.record_host_failure(&grant, HostPhase::Start, &[], &e, now).await?;
                    continue;
                }
            };
            // Already a member: because another live grant of theirs added it
            // (this grant shares that hold, and what undoing it needs), or from
            // before (left as it was, never removed by jit).
            let holder = if membership.added { None } else { holder };
            let shared = holder.is_some();
            let handle = match &holder {
                Some(h) => match self.unseal(provider.name(), h.grant_id, &h.sealed) {
                    Ok(handle) => handle,
                    Err(e) => {
                        self.record_host_failure(&grant, HostPhase::Start, &[], &e, now).await?;
                        continue;
                    }
                },
                None => membership.handle.clone(),
            };
            let held = match membership.added || shared {
                true => Some(NewHostToken {
                    grant_id: grant.id,
                    sealed: self.seal(provider.name(), grant.id, &handle)?,
                    created_at: now,
                    expires_at: grant.expires_at,
                    shared_key: Some(key.clone()),
                }),
                false => None,
            };
            let mut event = self.grant_event(&grant, Action::HostGranted);
            let kept = if shared { "; shared with another live grant, removed when the last ends" } else { "" };
            event.detail = Some(format!("{}: {}{kept}", provider.name(), membership.detail));
            match self.store.mark_grant_started(grant.id, now, held, event).await {
                Ok(()) => started += 1,
                // Ended meanwhile: the next end pass finds nothing of it held; take back what was added.
                Err(StoreError::Conflict) if membership.added => {
                    if let Err(e) = provider.revoke_minted(&repo, &grant, &membership.handle).await {
                        tracing::error!(grant = grant.id, error = %e, "a membership added for a grant that ended meanwhile could not be removed");
                    }
                }
                Err(StoreError::Conflict) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(started)
    }

    /// Opens what [`Broker::seal`] sealed for `grant_id`.
    fn unseal(&self, provider: &str, grant_id: i64, sealed: &[u8]) -> Result<crate::domain::token::SecretString, ProviderError> {
        let config = |message: String| ProviderError::Config { provider: provider.to_string(), message };
        let key = self.config.sealing_key.as_ref().ok_or_else(|| config("no sealing key is configured".into()))?;
        key.open(grant_id, sealed).map_err(|e| config(e.to_string()))
    }

    /// Seals what taking a grant's access away at a host needs (the config
    /// requires a key for every provider that keeps such data).
    fn seal(&self, provider: &str, grant_id: i64, value: &crate::domain::token::SecretString) -> Result<Vec<u8>, ProviderError> {
        let key = self.config.sealing_key.as_ref().ok_or_else(|| ProviderError::Config {
            provider: provider.to_string(),
            message: "no sealing key to keep what revoking its credentials needs".into(),
        })?;
        Ok(key.seal(grant_id, value))
    }

    /// An event about `grant` by the broker itself.
    fn grant_event(&self, grant: &GrantRecord, action: Action) -> NewEvent {
        let mut e = event(BROKER_ACTOR, action, &grant.repo, grant.level);
        e.request_id = Some(grant.request_id);
        e.grant_id = Some(grant.id);
        e
    }

    /// Grants that ended but whose host has not yet agreed (admins only).
    pub async fn failing_ends(&self, caller: &UserRecord) -> BrokerResult<Vec<FailingEnd>> {
        if !caller.admin {
            return Err(BrokerError::Forbidden("only admins can list grants whose end is failing at the host".into()));
        }
        Ok(self.store.failing_ends().await?)
    }

    /// When the next live grant ends, for the reaper's wake-up.
    pub async fn next_grant_expiry(&self) -> BrokerResult<Option<chrono::DateTime<chrono::Utc>>> {
        Ok(self.store.next_grant_expiry().await?)
    }
}
