//! The audit log's hash chain.
//!
//! Each event carries the hash of the one before it; its own hash covers its
//! sequence number, every field and that previous hash. Changing, removing or
//! reordering any stored event breaks the chain at that point, and
//! [`verify_chain`] says where. The first event links to [`GENESIS`].
//!
//! Times are stored and hashed as the exact RFC 3339 text (milliseconds, `Z`),
//! so no database round-trip can change what was hashed.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::level::Level;

/// The actor name the broker itself uses in the audit log (reserved: no user may take it).
pub const BROKER_ACTOR: &str = "broker";

/// The previous hash of the first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What happened. Serialized in snake case; the names are a stable interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Requested,
    Approved,
    Granted,
    Denied,
    Canceled,
    Expired,
    Revoked,
    GrantExpired,
    CredentialMinted,
    GitFetch,
    GitPush,
    UserAdded,
    UserRemoved,
    TokenRotated,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Requested => "requested",
            Action::Approved => "approved",
            Action::Granted => "granted",
            Action::Denied => "denied",
            Action::Canceled => "canceled",
            Action::Expired => "expired",
            Action::Revoked => "revoked",
            Action::GrantExpired => "grant_expired",
            Action::CredentialMinted => "credential_minted",
            Action::GitFetch => "git_fetch",
            Action::GitPush => "git_push",
            Action::UserAdded => "user_added",
            Action::UserRemoved => "user_removed",
            Action::TokenRotated => "token_rotated",
        }
    }
}

/// An event before it is chained: what the broker records.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewEvent {
    pub actor: String,
    pub action: Option<Action>,
    pub request_id: Option<i64>,
    pub grant_id: Option<i64>,
    pub repo: Option<String>,
    pub level: Option<Level>,
    /// Reason, comment or other detail; free text, never a secret.
    pub detail: Option<String>,
}

impl NewEvent {
    pub fn new(actor: &str, action: Action) -> Self {
        NewEvent { actor: actor.to_string(), action: Some(action), ..Default::default() }
    }
}

/// A stored event, as served by `GET /v1/audit` and exported as JSON lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub request_id: Option<i64>,
    pub grant_id: Option<i64>,
    pub repo: Option<String>,
    pub level: Option<String>,
    pub detail: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

/// The hashed content, in a fixed field order.
#[derive(Serialize)]
struct Hashed<'a> {
    seq: i64,
    at: &'a str,
    actor: &'a str,
    action: &'a str,
    request_id: Option<i64>,
    grant_id: Option<i64>,
    repo: Option<&'a str>,
    level: Option<&'a str>,
    detail: Option<&'a str>,
    prev_hash: &'a str,
}

impl AuditEvent {
    /// Chains `event` after `prev_hash` as number `seq` at time `at`.
    pub fn chain(event: &NewEvent, seq: i64, at: String, prev_hash: &str) -> AuditEvent {
        let mut e = AuditEvent {
            seq,
            at,
            actor: event.actor.clone(),
            action: event.action.map(Action::as_str).unwrap_or("unknown").to_string(),
            request_id: event.request_id,
            grant_id: event.grant_id,
            repo: event.repo.clone(),
            level: event.level.map(|l| l.as_str().to_string()),
            detail: event.detail.clone(),
            prev_hash: prev_hash.to_string(),
            hash: String::new(),
        };
        e.hash = e.compute_hash();
        e
    }

    pub fn compute_hash(&self) -> String {
        let hashed = Hashed {
            seq: self.seq,
            at: &self.at,
            actor: &self.actor,
            action: &self.action,
            request_id: self.request_id,
            grant_id: self.grant_id,
            repo: self.repo.as_deref(),
            level: self.level.as_deref(),
            detail: self.detail.as_deref(),
            prev_hash: &self.prev_hash,
        };
        let bytes = serde_json::to_vec(&hashed).expect("audit fields always serialize");
        hex::encode(Sha256::digest(&bytes))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit chain broken at event {seq}: {reason}")]
pub struct ChainBreak {
    pub seq: i64,
    pub reason: String,
}

/// Verifies events in order, starting from `start_prev` (normally [`GENESIS`])
/// and sequence number `start_seq`. Returns how many events were checked.
pub fn verify_chain<'a>(events: impl IntoIterator<Item = &'a AuditEvent>, start_seq: i64, start_prev: &str) -> Result<u64, ChainBreak> {
    let mut prev = start_prev.to_string();
    let mut count = 0;
    for (expect_seq, e) in (start_seq..).zip(events) {
        if e.seq != expect_seq {
            return Err(ChainBreak { seq: e.seq, reason: format!("expected event {expect_seq} here; events are missing or reordered") });
        }
        if e.prev_hash != prev {
            return Err(ChainBreak { seq: e.seq, reason: "its previous-hash does not match the event before it".into() });
        }
        if e.compute_hash() != e.hash {
            return Err(ChainBreak { seq: e.seq, reason: "its content does not match its hash (the event was altered)".into() });
        }
        prev = e.hash.clone();
        count += 1;
    }
    Ok(count)
}

/// The current time as the audit log writes it.
pub fn timestamp(now: chrono::DateTime<chrono::Utc>) -> String {
    now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<AuditEvent> {
        let mut out: Vec<AuditEvent> = Vec::new();
        for seq in 1..=n {
            let prev = out.last().map(|e| e.hash.clone()).unwrap_or_else(|| GENESIS.to_string());
            let mut ev = NewEvent::new("alice", Action::Requested);
            ev.request_id = Some(seq);
            ev.repo = Some("demo".into());
            ev.level = Some(Level::Write);
            ev.detail = Some(format!("reason {seq}"));
            out.push(AuditEvent::chain(&ev, seq, format!("2026-11-25T12:00:0{seq}.000Z"), &prev));
        }
        out
    }

    #[test]
    fn an_intact_chain_verifies() {
        assert_eq!(verify_chain(&chain(5), 1, GENESIS), Ok(5));
        assert_eq!(verify_chain(&[], 1, GENESIS), Ok(0));
    }

    #[test]
    fn an_altered_field_is_found() {
        let mut events = chain(5);
        events[2].detail = Some("nothing to see".into());
        assert_eq!(verify_chain(&events, 1, GENESIS).unwrap_err().seq, 3);
        let mut events = chain(5);
        events[1].actor = "mallory".into();
        assert_eq!(verify_chain(&events, 1, GENESIS).unwrap_err().seq, 2);
    }

    #[test]
    fn a_rehashed_alteration_breaks_the_next_link() {
        let mut events = chain(5);
        events[2].actor = "mallory".into();
        events[2].hash = events[2].compute_hash();
        let err = verify_chain(&events, 1, GENESIS).unwrap_err();
        assert_eq!(err.seq, 4);
        assert!(err.reason.contains("previous-hash"));
    }

    #[test]
    fn removed_or_reordered_events_are_found() {
        let mut events = chain(5);
        events.remove(1);
        assert_eq!(verify_chain(&events, 1, GENESIS).unwrap_err().seq, 3);
        let mut events = chain(5);
        events.swap(0, 1);
        assert!(verify_chain(&events, 1, GENESIS).is_err());
    }

    #[test]
    fn a_suffix_verifies_from_its_anchor() {
        let events = chain(5);
        assert_eq!(verify_chain(&events[2..], 3, &events[1].hash), Ok(3));
    }

    #[test]
    fn action_names_are_stable() {
        assert_eq!(serde_json::to_string(&Action::GrantExpired).unwrap(), "\"grant_expired\"");
        assert_eq!(Action::CredentialMinted.as_str(), "credential_minted");
    }
}
