//! The built-in gateway provider: the broker serves git itself, so a credential
//! is a random password whose hash the broker keeps with its grant, checked on
//! every git request against the grant's live state.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{MintedCredential, Provider, ProviderError};
use crate::domain::token::{TokenHash, generate};
use crate::store::{GrantRecord, Store};

/// Prefix of gateway passwords, so a leaked one is recognisable in a scan.
pub const PASSWORD_PREFIX: &str = "jitgw_";

pub struct Gateway {
    store: Arc<dyn Store>,
    /// The longest a credential lives before the helper re-mints it.
    credential_ttl: chrono::Duration,
}

impl Gateway {
    pub fn new(store: Arc<dyn Store>, credential_ttl: chrono::Duration) -> Gateway {
        Gateway { store, credential_ttl }
    }
}

#[async_trait]
impl Provider for Gateway {
    fn name(&self) -> &'static str {
        "gateway"
    }

    async fn mint(&self, grant: &GrantRecord, now: DateTime<Utc>) -> Result<MintedCredential, ProviderError> {
        let password = generate(PASSWORD_PREFIX);
        let expires_at = grant.expires_at.min(now + self.credential_ttl);
        self.store
            .add_credential(grant.id, &TokenHash::of(password.expose()), now, expires_at)
            .await
            .map_err(|e| ProviderError::Failed { provider: "gateway", message: e.to_string() })?;
        Ok(MintedCredential { username: grant.user.clone(), password, expires_at })
    }

    async fn revoke(&self, grant: &GrantRecord) -> Result<(), ProviderError> {
        self.store.delete_credentials(grant.id).await.map_err(|e| ProviderError::Failed { provider: "gateway", message: e.to_string() })
    }
}
