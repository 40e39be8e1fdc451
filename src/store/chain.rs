//! The audit chain as its one writer keeps it: the head (so appending never
//! reads it back), the key that signs checkpoints of it, and what to tell
//! once a signed checkpoint is committed. No SQL here: a store reads the head
//! once, links new events onto it, and writes what this returns.

use chrono::{DateTime, Utc};
use ed25519_dalek::SigningKey;

use crate::domain::audit::{AuditEvent, Checkpoint, GENESIS, NewEvent, timestamp};

/// The last event of the chain: what the next one links to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    pub seq: i64,
    pub hash: String,
    pub at: String,
}

impl ChainHead {
    /// The head of an empty log.
    pub fn genesis() -> ChainHead {
        ChainHead { seq: 0, hash: GENESIS.to_string(), at: String::new() }
    }
}

/// Told of every checkpoint once the batch that signed it is committed.
pub type OnCommit = Box<dyn Fn(Checkpoint) + Send>;

pub struct Chain {
    key: SigningKey,
    /// `None` until read from the database, and again after a failed batch.
    head: Option<ChainHead>,
    on_commit: Option<OnCommit>,
}

impl Chain {
    pub fn new(key: SigningKey) -> Chain {
        Chain { key, head: None, on_commit: None }
    }

    /// Calls `tell` with each committed checkpoint (the high-water mark kept outside the database).
    pub fn on_commit(self, tell: OnCommit) -> Chain {
        Chain { on_commit: Some(tell), ..self }
    }

    /// The head as this writer left it; `None` when the store must read it.
    pub fn head(&self) -> Option<&ChainHead> {
        self.head.as_ref()
    }

    /// Links `events` onto `head` (the known head, or the one the store read)
    /// at time `at`; they become the new head. The caller writes them.
    pub fn link(&mut self, head: ChainHead, events: &[NewEvent], at: DateTime<Utc>) -> Vec<AuditEvent> {
        let ChainHead { mut seq, hash: mut prev, .. } = head;
        let at = timestamp(at);
        let mut chained = Vec::with_capacity(events.len());
        for event in events {
            seq += 1;
            let e = AuditEvent::chain(event, seq, at.clone(), &prev);
            prev = e.hash.clone();
            chained.push(e);
        }
        self.head = Some(ChainHead { seq, hash: prev, at });
        chained
    }

    /// Where the head is (to put it back if a job is rolled back).
    pub fn mark(&self) -> Option<ChainHead> {
        self.head.clone()
    }

    pub fn reset(&mut self, mark: Option<ChainHead>) {
        self.head = mark;
    }

    /// A signed checkpoint of the head, if it moved since `since` (the mark
    /// taken when the batch began): the store writes it in the same transaction.
    pub fn checkpoint_since(&self, since: &Option<ChainHead>) -> Option<Checkpoint> {
        let head = self.head.as_ref().filter(|h| Some(*h) != since.as_ref())?;
        Some(Checkpoint::sign(&self.key, head.seq, &head.hash, &head.at))
    }

    /// The batch that wrote `checkpoint` is committed.
    pub fn committed(&self, checkpoint: Checkpoint) {
        if let Some(tell) = &self.on_commit {
            tell(checkpoint);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::audit::{Action, verify_chain};

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[9; 32])
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn linked_events_verify_and_continue_from_the_head() {
        let mut chain = Chain::new(key());
        let first = chain.link(
            ChainHead::genesis(),
            &[NewEvent::new("a", Action::Requested), NewEvent::new("b", Action::Approved)],
            at("2026-01-01T00:00:00Z"),
        );
        let head = chain.head().cloned().unwrap();
        assert_eq!((head.seq, head.hash.as_str()), (2, first[1].hash.as_str()));
        let second = chain.link(head, &[NewEvent::new("c", Action::Granted)], at("2026-01-01T00:00:01Z"));
        let all: Vec<AuditEvent> = first.into_iter().chain(second).collect();
        verify_chain(&all, 1, GENESIS).expect("one unbroken chain");
    }

    #[test]
    fn a_checkpoint_is_signed_only_when_the_head_moved_and_reset_puts_it_back() {
        let mut chain = Chain::new(key());
        let since = chain.mark();
        assert!(chain.checkpoint_since(&since).is_none(), "nothing appended, nothing signed");
        chain.link(ChainHead::genesis(), &[NewEvent::new("a", Action::Requested)], at("2026-01-01T00:00:00Z"));
        let cp = chain.checkpoint_since(&since).expect("the head moved");
        assert_eq!(cp.seq, 1);
        cp.verify(&key().verifying_key()).unwrap();
        let moved = chain.mark();
        assert!(chain.checkpoint_since(&moved).is_none());
        chain.reset(since);
        assert!(chain.head().is_none(), "a rolled-back batch leaves the head to be read again");
    }

    #[test]
    fn committed_checkpoints_are_told() {
        let told = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = told.clone();
        let mut chain = Chain::new(key()).on_commit(Box::new(move |cp| sink.lock().unwrap().push(cp.seq)));
        chain.link(ChainHead::genesis(), &[NewEvent::new("a", Action::Requested)], at("2026-01-01T00:00:00Z"));
        let cp = chain.checkpoint_since(&None).unwrap();
        chain.committed(cp);
        assert_eq!(*told.lock().unwrap(), vec![1]);
    }
}
