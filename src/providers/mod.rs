//! Providers turn a grant into real access at a git host, and take it away.
//!
//! The broker calls [`Provider::mint`] when the grantee asks for a credential
//! and [`Provider::revoke`] once the grant has ended (the reaper guarantees it,
//! also after a restart). Whether the host is the broker's own gateway or a
//! remote API is hidden behind this trait.

pub mod gateway;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::token::Secret;
use crate::store::GrantRecord;

/// A credential for one grant. The password is shown to the grantee once and
/// never stored by the broker in usable form.
#[derive(Debug, Clone)]
pub struct MintedCredential {
    pub username: String,
    pub password: Secret,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("provider `{provider}` failed: {message}")]
    Failed { provider: &'static str, message: String },
}

#[async_trait]
pub trait Provider: Send + Sync {
    fn name(&self) -> &'static str;

    /// Mints a credential for a live grant that expires no later than the grant.
    async fn mint(&self, grant: &GrantRecord, now: DateTime<Utc>) -> Result<MintedCredential, ProviderError>;

    /// Makes sure no credential minted for `grant` works any more. Idempotent.
    async fn revoke(&self, grant: &GrantRecord) -> Result<(), ProviderError>;
}
