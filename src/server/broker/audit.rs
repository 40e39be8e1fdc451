//! The audit log, for admins: pages of events, and the chain verified on the broker.

use chrono::{DateTime, Utc};

use super::{Broker, BrokerResult};
use crate::domain::audit::{AuditEvent, GENESIS, verify_chain};
use crate::store::UserRecord;

/// The most events one page holds.
pub const AUDIT_PAGE: u32 = 1000;

/// The chain as the broker sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    pub events: u64,
    /// The first break, if any.
    pub error: Option<String>,
}

impl Broker {
    /// Events after `after` (and at or after `since`), oldest first, at most `limit` (capped).
    pub async fn audit_page(
        &self,
        caller: &UserRecord,
        after: i64,
        since: Option<DateTime<Utc>>,
        limit: Option<u32>,
    ) -> BrokerResult<Vec<AuditEvent>> {
        self.require_admin(caller)?;
        let limit = limit.unwrap_or(AUDIT_PAGE).clamp(1, AUDIT_PAGE);
        Ok(self.store.audit(after.max(0), since, limit).await?)
    }

    /// Walks the whole chain, page by page.
    pub async fn verify_audit(&self, caller: &UserRecord) -> BrokerResult<ChainReport> {
        self.require_admin(caller)?;
        let (mut after, mut prev, mut total) = (0i64, GENESIS.to_string(), 0u64);
        loop {
            let page = self.store.audit(after, None, AUDIT_PAGE).await?;
            let Some(last) = page.last().cloned() else { break };
            match verify_chain(&page, after + 1, &prev) {
                Ok(n) => total += n,
                Err(e) => return Ok(ChainReport { events: total, error: Some(e.to_string()) }),
            }
            after = last.seq;
            prev = last.hash;
        }
        Ok(ChainReport { events: total, error: None })
    }
}
