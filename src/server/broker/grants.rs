//! Grants: who sees them, who ends them, credentials minted for them, and
//! the reaper's side (telling providers about every grant that ended).

use super::{Broker, BrokerError, BrokerResult, Listing, event, subject};
use crate::domain::audit::{Action, BROKER_ACTOR, timestamp};
use crate::domain::request::{GrantStatus, grant_status};
use crate::providers::Minted;
use crate::store::{GrantRecord, NewCredential, Page, StoreError, UserRecord};

impl Broker {
    /// The grantee, an admin, or an approver of the grant's repo and level.
    fn may_see_grant(&self, caller: &UserRecord, grant: &GrantRecord) -> bool {
        caller.admin || grant.user_id == Some(caller.id) || self.config.policy.is_approver_for(&grant.repo, grant.level, &subject(caller))
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
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Mints a git credential for the caller's own live grant, through the
    /// repo's provider, and records it (hash only) with its audit event.
    pub async fn mint_credential(&self, caller: &UserRecord, id: i64, client: std::net::IpAddr) -> BrokerResult<(GrantRecord, Minted)> {
        let grant = match self.store.grant(id).await? {
            Some(g) if g.user_id == Some(caller.id) => g,
            _ => return Err(BrokerError::NotFound(format!("grant {id}"))),
        };
        let now = self.now();
        let status = grant_status(grant.expires_at, grant.revoked_at, now);
        if status != GrantStatus::Active {
            return Err(BrokerError::GrantEnded { id, status, repo: grant.repo, level: grant.level });
        }
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
        let provider = self.provider_for(&grant.repo).ok_or_else(|| BrokerError::NoProvider(grant.repo.clone()))?;
        let minted = provider.mint(&grant, now).await.inspect_err(|e| tracing::error!(grant = id, error = %e, "mint failed"))?;
        let expires_at = minted.expires_at.min(grant.expires_at);
        let mut record = event(&caller.name, Action::CredentialMinted, &grant.repo, grant.level);
        record.request_id = Some(grant.request_id);
        record.grant_id = Some(grant.id);
        record.detail = Some(format!("{} credential until {}", provider.name(), timestamp(expires_at)));
        match &minted.gateway_hash {
            Some(hash) => {
                let credential = NewCredential { grant_id: grant.id, hash: hash.clone(), created_at: now, expires_at };
                self.store.add_credential(&credential, record).await?
            }
            None => self.store.append_events(vec![record], now).await?,
        }
        Ok((grant, Minted { expires_at, ..minted }))
    }

    /// Tells providers about grants that ended and records expiries; returns
    /// how many grants were closed. Run by the reaper, safe to run anywhere.
    pub async fn end_grants(&self) -> BrokerResult<usize> {
        let now = self.now();
        let mut closed = 0;
        for grant in self.store.grants_to_end(now).await? {
            if let Some(provider) = self.provider_for(&grant.repo)
                && let Err(e) = provider.revoke(&grant).await
            {
                tracing::warn!(grant = grant.id, error = %e, "provider revoke failed; will retry");
                continue;
            }
            let expired = grant.revoked_at.is_none().then(|| {
                let mut e = event(BROKER_ACTOR, Action::GrantExpired, &grant.repo, grant.level);
                e.request_id = Some(grant.request_id);
                e.grant_id = Some(grant.id);
                e
            });
            if self.store.mark_grant_ended(grant.id, now, expired).await? {
                closed += 1;
            }
        }
        Ok(closed)
    }

    /// When the next live grant ends, for the reaper's wake-up.
    pub async fn next_grant_expiry(&self) -> BrokerResult<Option<chrono::DateTime<chrono::Utc>>> {
        Ok(self.store.next_grant_expiry().await?)
    }
}
