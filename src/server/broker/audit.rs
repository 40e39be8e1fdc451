//! The audit log, for admins: pages of events, and the chain verified on the broker.

use chrono::{DateTime, Utc};
use ed25519_dalek::{SigningKey, VerifyingKey};

use super::{Broker, BrokerResult};
use crate::domain::audit::{AuditEvent, Checkpoint, GENESIS, verify_against, verify_chain};
use crate::domain::records::{GrantRecord, RequestRecord, UserRecord};

/// One grant's access period as the log holds it (see [`Broker::grant_report`]).
pub struct GrantReport {
    pub grant: GrantRecord,
    /// The request it came from (gone only if the database was altered).
    pub request: Option<RequestRecord>,
    pub events: Vec<AuditEvent>,
    /// Other events between the grant's and the checkpoints that sign them.
    pub links: Vec<AuditEvent>,
    pub checkpoints: Vec<Checkpoint>,
    pub public_key: VerifyingKey,
}

/// The audit signing key under the data dir, created (random, owner-only)
/// the first time. Only the broker reads it; its public half verifies exports.
pub fn load_or_create_signing_key(path: &std::path::Path) -> std::io::Result<SigningKey> {
    match crate::fsutil::read_private(path) {
        Ok(bytes) => {
            let seed: [u8; 32] = bytes.try_into().map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{} is not a 32-byte Ed25519 key", path.display()))
            })?;
            Ok(SigningKey::from_bytes(&seed))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let seed: [u8; 32] = rand::random();
            crate::fsutil::write_private(path, &seed)?;
            Ok(SigningKey::from_bytes(&seed))
        }
        Err(e) => Err(e),
    }
}

/// The signing key an operator gave (`server.audit_key_file`): 64 hex
/// digits (`openssl rand -hex 32`) or the 32 bytes themselves, never made
/// here, since every replica must read the same one.
pub fn load_signing_key_file(path: &std::path::Path) -> std::io::Result<SigningKey> {
    let bytes = crate::fsutil::read_private(path)?;
    let text = String::from_utf8_lossy(&bytes);
    let seed: Option<[u8; 32]> = match hex::decode(text.trim()) {
        Ok(decoded) => decoded.try_into().ok(),
        Err(_) => bytes.try_into().ok(),
    };
    let seed = seed.ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{} is not an Ed25519 key: give 64 hex digits (`openssl rand -hex 32`)", path.display()),
        )
    })?;
    Ok(SigningKey::from_bytes(&seed))
}

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

    /// Everything the log holds of one grant's access period — its request,
    /// decisions, credentials, git operations and end — with what proves
    /// those events are in the signed chain (admins).
    pub async fn grant_report(&self, caller: &UserRecord, id: i64) -> BrokerResult<GrantReport> {
        self.require_admin(caller)?;
        let grant = self.store.grant(id).await?.ok_or_else(|| super::BrokerError::NotFound(format!("grant {id}")))?;
        let request = self.store.request(grant.request_id).await?;
        let events = self.store.grant_events(grant.id, grant.request_id).await?;
        let mut checkpoints: Vec<Checkpoint> = Vec::new();
        for e in &events {
            if checkpoints.last().is_some_and(|c| c.seq >= e.seq) {
                continue;
            }
            // Every committed write signs one, so only an event written this instant has none yet.
            if let Some(c) = self.store.checkpoint_covering(e.seq).await? {
                checkpoints.push(c);
            }
        }
        // The other events between each of the grant's and its checkpoint (one write's others).
        let mut links: std::collections::BTreeMap<i64, AuditEvent> = std::collections::BTreeMap::new();
        for e in &events {
            let Some(c) = checkpoints.iter().find(|c| c.seq >= e.seq) else { continue };
            let between = u32::try_from(c.seq - e.seq).unwrap_or(AUDIT_PAGE).min(AUDIT_PAGE);
            if between > 0 {
                for link in self.store.audit(e.seq, None, between).await? {
                    if !events.iter().any(|g| g.seq == link.seq) {
                        links.insert(link.seq, link);
                    }
                }
            }
        }
        let links = links.into_values().collect();
        Ok(GrantReport { grant, request, events, links, checkpoints, public_key: self.audit_key })
    }

    /// Events after `after`, oldest first, at most `limit` (for the archive: no caller).
    pub async fn events_after(&self, after: i64, limit: u32) -> BrokerResult<Vec<AuditEvent>> {
        Ok(self.store.audit(after, None, limit.clamp(1, AUDIT_PAGE)).await?)
    }

    /// The signed checkpoint of event `seq` itself, when its write signed one there.
    pub async fn checkpoint_of(&self, seq: i64) -> BrokerResult<Option<Checkpoint>> {
        Ok(self.store.checkpoint_covering(seq).await?.filter(|c| c.seq == seq))
    }

    /// The key the audit log's checkpoints verify with.
    pub fn audit_public_key(&self) -> VerifyingKey {
        self.audit_key
    }

    /// The latest signed checkpoint and the key that verifies it.
    pub async fn audit_checkpoint(&self, caller: &UserRecord) -> BrokerResult<(Option<Checkpoint>, VerifyingKey)> {
        self.require_admin(caller)?;
        Ok((self.store.latest_checkpoint().await?, self.audit_key))
    }

    /// Walks the whole chain, page by page, and checks it reaches the latest
    /// signed checkpoint (taken first, so events written meanwhile are fine).
    pub async fn verify_audit(&self, caller: &UserRecord) -> BrokerResult<ChainReport> {
        self.require_admin(caller)?;
        let checkpoint = self.store.latest_checkpoint().await?;
        let (mut after, mut prev, mut total) = (0i64, GENESIS.to_string(), 0u64);
        let mut around_checkpoint: Vec<AuditEvent> = Vec::new();
        loop {
            let page = self.store.audit(after, None, AUDIT_PAGE).await?;
            let Some(last) = page.last().cloned() else { break };
            match verify_chain(&page, after + 1, &prev) {
                Ok(n) => total += n,
                Err(e) => return Ok(ChainReport { events: total, error: Some(e.to_string()) }),
            }
            if let Some(cp) = &checkpoint {
                around_checkpoint.extend(page.iter().filter(|e| e.seq == cp.seq).cloned());
            }
            after = last.seq;
            prev = last.hash;
        }
        if let Some(cp) = &checkpoint {
            let reached = if around_checkpoint.is_empty() { verify_against(&[], cp) } else { verify_against(&around_checkpoint, cp) };
            let signed = cp.verify(&self.audit_key);
            if let Err(e) = signed.and(reached) {
                return Ok(ChainReport { events: total, error: Some(e.to_string()) });
            }
        }
        Ok(ChainReport { events: total, error: None })
    }
}
