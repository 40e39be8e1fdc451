//! Proof that some events of the audit log — one grant's, in its report —
//! are in the chain the broker signed, without the rest of the log.
//!
//! The broker signs a checkpoint of the chain's head with every write. For
//! each event of a report the proof carries the first checkpoint at or after
//! it, and the events between the two that the report does not already hold
//! (its *links*; one write's other events, usually none). A verifier
//! recomputes every event's hash from its content, follows the chain from the
//! event to the checkpoint's event, and checks the checkpoint's signature:
//! an event altered, invented or taken from another log does not get there.

use std::collections::BTreeMap;

use ed25519_dalek::VerifyingKey;

use super::audit::{AuditEvent, Checkpoint, verify_chain};

/// Why a report's events are not shown to be in the signed log.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("event {seq} does not follow from the events before it in the proof: {reason}")]
    Broken { seq: i64, reason: String },
    #[error("event {seq} is in the proof twice, differently")]
    Twice { seq: i64 },
    #[error("no signed checkpoint in the proof reaches event {seq}")]
    Unsigned { seq: i64 },
    #[error("event {missing}, between event {seq} and the checkpoint that signs it, is not in the proof")]
    Gap { seq: i64, missing: i64 },
    #[error("the checkpoint of event {seq} does not verify with this key")]
    BadSignature { seq: i64 },
}

/// Checks that each of `events` is in the chain `key` signed: its hash from
/// its content, the chain from it through `links` to a checkpoint of
/// `checkpoints`, and that checkpoint's signature. Returns how many
/// checkpoints were needed.
pub fn verify(events: &[AuditEvent], links: &[AuditEvent], checkpoints: &[Checkpoint], key: &VerifyingKey) -> Result<usize, ProofError> {
    let mut by_seq: BTreeMap<i64, &AuditEvent> = BTreeMap::new();
    for e in events.iter().chain(links) {
        if let Some(seen) = by_seq.insert(e.seq, e)
            && seen != e
        {
            return Err(ProofError::Twice { seq: e.seq });
        }
    }
    let mut used = std::collections::BTreeSet::new();
    for e in events {
        let checkpoint = checkpoints.iter().filter(|c| c.seq >= e.seq).min_by_key(|c| c.seq).ok_or(ProofError::Unsigned { seq: e.seq })?;
        let run: Vec<&AuditEvent> = (e.seq..=checkpoint.seq)
            .map(|seq| by_seq.get(&seq).copied().ok_or(ProofError::Gap { seq: e.seq, missing: seq }))
            .collect::<Result<_, _>>()?;
        verify_chain(run.iter().copied(), e.seq, &e.prev_hash).map_err(|b| ProofError::Broken { seq: b.seq, reason: b.reason })?;
        if run.last().is_none_or(|last| last.hash != checkpoint.hash) {
            let reason = "the chain from it does not reach the hash its checkpoint signed".to_string();
            return Err(ProofError::Broken { seq: e.seq, reason });
        }
        checkpoint.verify(key).map_err(|_| ProofError::BadSignature { seq: checkpoint.seq })?;
        used.insert(checkpoint.seq);
    }
    Ok(used.len())
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;

    use super::*;
    use crate::domain::Level;
    use crate::domain::audit::{Action, GENESIS, NewEvent};

    /// A log of `n` events; odd ones are grant 7's, even ones another grant's.
    fn log(n: i64) -> Vec<AuditEvent> {
        let mut out: Vec<AuditEvent> = Vec::new();
        for seq in 1..=n {
            let prev = out.last().map(|e| e.hash.clone()).unwrap_or_else(|| GENESIS.to_string());
            let mut ev = NewEvent::new(if seq % 2 == 1 { "alice" } else { "bob" }, Action::GitPush);
            ev.grant_id = Some(if seq % 2 == 1 { 7 } else { 8 });
            ev.repo = Some("acme/api".into());
            ev.level = Some(Level::Write);
            out.push(AuditEvent::chain(&ev, seq, format!("2026-12-06T12:00:0{seq}.000Z"), &prev));
        }
        out
    }

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[9u8; 32])
    }

    fn signed(log: &[AuditEvent], seq: i64) -> Checkpoint {
        let e = &log[(seq - 1) as usize];
        Checkpoint::sign(&key(), seq, &e.hash, &e.at)
    }

    /// Grant 7's events of a 6-event log whose writes were checkpointed at 2, 3 and 6.
    fn report() -> (Vec<AuditEvent>, Vec<AuditEvent>, Vec<Checkpoint>) {
        let log = log(6);
        let all = [signed(&log, 2), signed(&log, 3), signed(&log, 6)];
        let mine: Vec<AuditEvent> = log.iter().filter(|e| e.grant_id == Some(7)).cloned().collect();
        // 1 is signed by 2's checkpoint, 3 by its own, 5 by 6's; the links are the other grant's 2 and 6.
        let links = vec![log[1].clone(), log[5].clone()];
        (mine, links, all.to_vec())
    }

    #[test]
    fn a_grants_events_are_shown_in_the_signed_chain() {
        let (events, links, checkpoints) = report();
        assert_eq!(verify(&events, &links, &checkpoints, &key().verifying_key()), Ok(3));
        assert_eq!(verify(&[], &[], &[], &key().verifying_key()), Ok(0), "nothing to show");
    }

    #[test]
    fn an_altered_event_or_link_is_found() {
        let (mut events, links, checkpoints) = report();
        events[1].detail = Some("pushed nothing".into());
        assert!(matches!(verify(&events, &links, &checkpoints, &key().verifying_key()), Err(ProofError::Broken { seq: 3, .. })));
        // Re-hashed to match its new content: it no longer reaches the signed hash.
        events[1].hash = events[1].compute_hash();
        assert!(matches!(verify(&events, &links, &checkpoints, &key().verifying_key()), Err(ProofError::Broken { seq: 3, .. })));
        let (events, mut links, checkpoints) = report();
        links[0].actor = "mallory".into();
        assert!(matches!(verify(&events, &links, &checkpoints, &key().verifying_key()), Err(ProofError::Broken { seq: 2, .. })));
    }

    #[test]
    fn a_missing_link_a_missing_checkpoint_or_a_foreign_key_is_named() {
        let (events, links, checkpoints) = report();
        assert_eq!(verify(&events, &links[..1], &checkpoints, &key().verifying_key()), Err(ProofError::Gap { seq: 5, missing: 6 }));
        assert_eq!(verify(&events, &links, &checkpoints[..2], &key().verifying_key()), Err(ProofError::Unsigned { seq: 5 }));
        let other = SigningKey::from_bytes(&[1u8; 32]).verifying_key();
        assert_eq!(verify(&events, &links, &checkpoints, &other), Err(ProofError::BadSignature { seq: 2 }));
        // An event shown twice with different content.
        let mut twice = links.clone();
        let mut forged = events[0].clone();
        forged.actor = "mallory".into();
        twice.push(forged);
        assert_eq!(verify(&events, &twice, &checkpoints, &key().verifying_key()), Err(ProofError::Twice { seq: 1 }));
    }

    #[test]
    fn an_invented_event_does_not_reach_a_checkpoint() {
        let (mut events, links, checkpoints) = report();
        let mut ev = NewEvent::new("alice", Action::GitPush);
        ev.grant_id = Some(7);
        let invented = AuditEvent::chain(&ev, 4, "2026-12-06T12:00:04.000Z".into(), &events[1].hash);
        events.insert(2, invented);
        // The real event 5 follows the real event 4, not this one.
        assert!(matches!(verify(&events, &links, &checkpoints, &key().verifying_key()), Err(ProofError::Broken { seq: 5, .. })));
    }
}
