//! The audit log's hash chain.
//!
//! Each event carries the hash of the one before it; its own hash covers its
//! sequence number, every field and that previous hash. Changing, removing or
//! reordering any stored event breaks the chain at that point, and
//! [`verify_chain`] says where. The first event links to [`GENESIS`].
//!
//! Times are stored and hashed as the exact RFC 3339 text (milliseconds, `Z`),
//! so no database round-trip can change what was hashed.
//!
//! A chain proves nothing about its end: cut the last events and what is left
//! still verifies. So the broker signs **checkpoints** of the chain's head
//! (Ed25519, with a key only the broker holds): "the log reached event N,
//! whose hash is H, at time T". [`verify_against`] checks a log against a
//! checkpoint and names exactly the events missing from it.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::level::Level;

/// The actor name the broker itself uses in the audit log (reserved: no user may take it).
pub const BROKER_ACTOR: &str = "broker";

/// The actor of what sign-ins through the identity provider cause (reserved too).
pub const OIDC_ACTOR: &str = "oidc";

/// Whether `name` is an actor of jit's own, which no user may be.
pub fn is_reserved_name(name: &str) -> bool {
    name == BROKER_ACTOR || name == OIDC_ACTOR
}

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
    /// A git request the gateway refused (a dead or foreign credential, too low a level, another network).
    GitRefused,
    /// A credential the broker would not mint (another network).
    CredentialRefused,
    /// A fronted repo's host failed a git request (refused the broker, 5xx, timeout, unreachable).
    GitUpstreamFailed,
    /// A summary of failed authentications, at most one a minute.
    AuthFailures,
    /// A credential the host would not mint, or failed to (its message says why).
    CredentialFailed,
    /// A grant's end reached its host: every credential minted there revoked.
    HostRevoked,
    /// An attempt to end a grant at its host failed; the reaper tries again.
    HostRevokeFailed,
    /// A grant's access given at its host (a membership added, or found there already).
    HostGranted,
    /// An attempt to give a grant its access at the host failed; the reaper tries again.
    HostGrantFailed,
    /// A pending request's approval taken back (its approver was removed).
    ApprovalWithdrawn,
    /// What git did with a push, ref by ref, from its own report.
    GitPushResult,
    /// A person signed in through the identity provider (a new broker session).
    SignedIn,
    /// A sign-in the broker refused (a name jit cannot use, a name a local user has).
    SignInRefused,
    /// A person's groups changed at the identity provider.
    GroupsChanged,
    /// A broker session ended: signed out, or the identity provider stopped vouching for the person.
    SessionEnded,
    /// A notification given up on: a day of failed deliveries, or the receiver refused it.
    NotificationFailed,
    /// The rules and repos were re-read (SIGHUP): the new policy's hash, and the old one's.
    PolicyChanged,
    /// A request to lengthen a live grant (`jit extend`); approved, its grant
    /// takes the old one's place (and its credentials) without a gap.
    ExtensionRequested,
    /// A break-glass request, granted at once under a break-glass rule; its
    /// approvers review it afterwards.
    BreakGlass,
    /// An approver's review of a break-glass grant: approved or flagged.
    BreakGlassReviewed,
    /// A break-glass grant still unreviewed, brought up again (daily).
    ReviewReminder,
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
            Action::GitRefused => "git_refused",
            Action::CredentialRefused => "credential_refused",
            Action::GitUpstreamFailed => "git_upstream_failed",
            Action::AuthFailures => "auth_failures",
            Action::CredentialFailed => "credential_failed",
            Action::HostRevoked => "host_revoked",
            Action::HostRevokeFailed => "host_revoke_failed",
            Action::HostGranted => "host_granted",
            Action::HostGrantFailed => "host_grant_failed",
            Action::ApprovalWithdrawn => "approval_withdrawn",
            Action::GitPushResult => "git_push_result",
            Action::SignedIn => "signed_in",
            Action::SignInRefused => "sign_in_refused",
            Action::GroupsChanged => "groups_changed",
            Action::SessionEnded => "session_ended",
            Action::NotificationFailed => "notification_failed",
            Action::PolicyChanged => "policy_changed",
            Action::ExtensionRequested => "extension_requested",
            Action::BreakGlass => "break_glass",
            Action::BreakGlassReviewed => "break_glass_reviewed",
            Action::ReviewReminder => "review_reminder",
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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
        let err = verify_chain(&events, 1, GENESIS).unwrap_err();
        assert_eq!(err.seq, 2, "the first event out of place is named");
        assert!(err.reason.contains("expected event 1"), "{}", err.reason);
    }

    #[test]
    fn a_suffix_verifies_from_its_anchor() {
        let events = chain(5);
        assert_eq!(verify_chain(&events[2..], 3, &events[1].hash), Ok(3));
    }

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7u8; 32])
    }

    #[test]
    fn checkpoints_sign_the_head_and_verify_with_the_public_key() {
        let events = chain(5);
        let cp = Checkpoint::sign(&key(), 5, &events[4].hash, "2026-11-25T12:00:05.000Z");
        cp.verify(&key().verifying_key()).unwrap();
        let mut forged = cp.clone();
        forged.seq = 4;
        assert_eq!(forged.verify(&key().verifying_key()), Err(CheckpointError::BadSignature));
        let other = SigningKey::from_bytes(&[8u8; 32]);
        assert_eq!(cp.verify(&other.verifying_key()), Err(CheckpointError::BadSignature));
        let text = public_key_text(&key().verifying_key());
        assert_eq!(parse_public_key(&text).unwrap(), key().verifying_key());
        assert_eq!(parse_public_key("not a key"), Err(CheckpointError::BadKey));
    }

    #[test]
    fn a_cut_tail_is_named_exactly() {
        let events = chain(5);
        let cp = Checkpoint::sign(&key(), 5, &events[4].hash, "T");
        assert_eq!(verify_against(&events, &cp), Ok(()));
        assert_eq!(verify_against(&events[4..], &cp), Ok(()), "the checkpoint's event alone reaches it");
        // The last two events deleted: the chain alone still verifies...
        assert_eq!(verify_chain(&events[..3], 1, GENESIS), Ok(3));
        // ...the checkpoint does not.
        assert_eq!(verify_against(&events[..3], &cp), Err(CheckpointError::Missing { first: 4, last: 5, at: "T".into() }));
        assert_eq!(verify_against(&[], &cp), Err(CheckpointError::Missing { first: 1, last: 5, at: "T".into() }));
        let mut rewritten = events.clone();
        rewritten[4].detail = Some("changed".into());
        rewritten[4].hash = rewritten[4].compute_hash();
        assert_eq!(verify_against(&rewritten, &cp), Err(CheckpointError::Rewritten { seq: 5, at: "T".into() }));
        // Events written after the checkpoint are fine.
        let older = Checkpoint::sign(&key(), 3, &events[2].hash, "T");
        assert_eq!(verify_against(&events, &older), Ok(()));
        // An export that starts after a checkpoint does not reach it (hardening
        // round two, finding 5: one with its first events removed passed)...
        assert_eq!(verify_against(&events[3..], &older), Err(CheckpointError::StartsAfter { start: 4, seq: 3, at: "T".into() }));
        // ...though a checkpoint of the event right before its first anchors its start.
        assert!(anchors(&events[3..], &older));
        assert!(!anchors(&events[4..], &older) && !anchors(&events, &older) && !anchors(&[], &older));
        let elsewhere = Checkpoint::sign(&key(), 3, &events[1].hash, "T");
        assert!(!anchors(&events[3..], &elsewhere), "a checkpoint of another chain anchors nothing");
    }

    /// Regression (hardening round two, finding 5): three invented events
    /// numbered after a genuine checkpoint "reached" it although its event
    /// was not in the export.
    #[test]
    fn invented_events_after_a_checkpoint_do_not_reach_it() {
        let events = chain(30);
        let cp = Checkpoint::sign(&key(), 30, &events[29].hash, "T");
        // Chained onto the checkpoint's own hash, so the chain itself holds.
        let invented = chain(33)[30..].to_vec();
        assert_eq!(invented[0].prev_hash, cp.hash);
        assert_eq!(verify_chain(&invented, 31, &cp.hash), Ok(3));
        assert_eq!(verify_against(&invented, &cp), Err(CheckpointError::StartsAfter { start: 31, seq: 30, at: "T".into() }));
    }

    #[test]
    fn action_names_are_stable() {
        assert_eq!(serde_json::to_string(&Action::GrantExpired).unwrap(), "\"grant_expired\"");
        assert_eq!(Action::CredentialMinted.as_str(), "credential_minted");
    }
}

/// The broker's signed statement that the log reached event `seq` with hash `hash`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Checkpoint {
    pub seq: i64,
    pub hash: String,
    pub at: String,
    /// Ed25519 over [`Checkpoint::message`], base64.
    pub signature: String,
}

impl Checkpoint {
    /// What is signed: versioned, every field, no ambiguity between them.
    pub fn message(seq: i64, hash: &str, at: &str) -> String {
        format!("jit audit checkpoint v1\nseq {seq}\nhash {hash}\nat {at}\n")
    }

    pub fn sign(key: &SigningKey, seq: i64, hash: &str, at: &str) -> Checkpoint {
        let signature = key.sign(Self::message(seq, hash, at).as_bytes());
        Checkpoint { seq, hash: hash.to_string(), at: at.to_string(), signature: BASE64.encode(signature.to_bytes()) }
    }

    pub fn verify(&self, key: &VerifyingKey) -> Result<(), CheckpointError> {
        let bytes = BASE64.decode(&self.signature).map_err(|_| CheckpointError::BadSignature)?;
        let signature = Signature::from_slice(&bytes).map_err(|_| CheckpointError::BadSignature)?;
        key.verify(Self::message(self.seq, &self.hash, &self.at).as_bytes(), &signature).map_err(|_| CheckpointError::BadSignature)
    }
}

/// The public half of the signing key, as people copy it: base64 of its 32 bytes.
pub fn public_key_text(key: &VerifyingKey) -> String {
    BASE64.encode(key.to_bytes())
}

pub fn parse_public_key(text: &str) -> Result<VerifyingKey, CheckpointError> {
    let bytes: [u8; 32] = BASE64.decode(text.trim()).ok().and_then(|b| b.try_into().ok()).ok_or(CheckpointError::BadKey)?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| CheckpointError::BadKey)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("the checkpoint's signature does not verify with this key")]
    BadSignature,
    #[error("not an audit public key (expected the base64 that `jit audit key` prints)")]
    BadKey,
    #[error("events {first}..={last} are missing: the broker signed at {at} that the log reached event {last}")]
    Missing { first: i64, last: i64, at: String },
    #[error("event {seq} is not the one the broker signed at {at} (its hash differs): the log was rewritten")]
    Rewritten { seq: i64, at: String },
    #[error("there is no signed checkpoint, so nothing shows the log is whole (an empty or cut export verifies as a chain)")]
    NoCheckpoint,
    #[error(
        "the events start at {start}, after the checkpoint the broker signed at {at} (event {seq}): nothing vouches for what came before them"
    )]
    StartsAfter { start: i64, seq: i64, at: String },
}

/// Checks that `events` (verified as a chain, oldest first) reach `checkpoint`:
/// the event it names is among them with the hash it names. Events after it
/// are fine (written since, not yet signed); a checkpoint of an event the
/// events do not hold — past their end, or before their start — proves
/// nothing about them.
pub fn verify_against(events: &[AuditEvent], checkpoint: &Checkpoint) -> Result<(), CheckpointError> {
    let start = events.first().map(|e| e.seq).unwrap_or(1);
    if checkpoint.seq < start {
        return Err(CheckpointError::StartsAfter { start, seq: checkpoint.seq, at: checkpoint.at.clone() });
    }
    match events.iter().find(|e| e.seq == checkpoint.seq) {
        Some(e) if e.hash == checkpoint.hash => Ok(()),
        Some(e) => Err(CheckpointError::Rewritten { seq: e.seq, at: checkpoint.at.clone() }),
        None => {
            let last = events.last().map(|e| e.seq).unwrap_or(0);
            Err(CheckpointError::Missing { first: last + 1, last: checkpoint.seq, at: checkpoint.at.clone() })
        }
    }
}

/// Whether `checkpoint` signs the event right before the first of `events`
/// (so an export that does not start at event 1 is anchored by it).
pub fn anchors(events: &[AuditEvent], checkpoint: &Checkpoint) -> bool {
    events.first().is_some_and(|first| checkpoint.seq == first.seq - 1 && first.prev_hash == checkpoint.hash)
}
