//! Long-poll waiters, by request. A decision wakes only the waiters of the
//! request it changed and hands them the record it wrote, so ten thousand
//! clients waiting on one approval cost one write and no reads; waiters of
//! other requests sleep on.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::domain::records::RequestRecord;
use crate::domain::request::RequestStatus;

type Latest = Option<Arc<RequestRecord>>;

#[derive(Default)]
pub struct Waiters {
    by_request: Mutex<HashMap<i64, watch::Sender<Latest>>>,
}

impl Waiters {
    /// Starts listening for changes to request `id`; listen before reading
    /// the request, so a change between the read and the wait still wakes.
    pub fn subscribe(&self, id: i64) -> Subscription<'_> {
        let mut map = self.by_request.lock().expect("waiters");
        let rx = map.entry(id).or_insert_with(|| watch::Sender::new(None)).subscribe();
        Subscription { waiters: self, id, rx: Some(rx) }
    }

    /// Hands `record` to its request's waiters, unless they already hold a
    /// later state (two decisions may finish in either order).
    pub fn publish(&self, record: &RequestRecord) {
        let map = self.by_request.lock().expect("waiters");
        if let Some(tx) = map.get(&record.id) {
            tx.send_if_modified(|latest| {
                let newer = latest.as_ref().is_none_or(|held| progress(record) > progress(held));
                if newer {
                    *latest = Some(Arc::new(record.clone()));
                }
                newer
            });
        }
    }

    /// Whether anyone here waits on request `id`.
    pub fn watching(&self, id: i64) -> bool {
        self.by_request.lock().expect("waiters").contains_key(&id)
    }

    /// Requests someone is waiting on (for tests of the clean-up).
    #[cfg(test)]
    fn watched(&self) -> usize {
        self.by_request.lock().expect("waiters").len()
    }
}

/// How far a request has got: a decided request is past every pending
/// state, and a pending one only gains approvals.
fn progress(r: &RequestRecord) -> (bool, usize) {
    (r.status != RequestStatus::Pending, r.approvals.len())
}

/// One waiter's interest in one request; the entry goes when its last waiter does.
pub struct Subscription<'a> {
    waiters: &'a Waiters,
    id: i64,
    rx: Option<watch::Receiver<Latest>>,
}

impl Subscription<'_> {
    /// The request's next published state (`None` if the broker is going away).
    pub async fn next(&mut self) -> Option<Arc<RequestRecord>> {
        let rx = self.rx.as_mut()?;
        rx.changed().await.ok()?;
        rx.borrow_and_update().clone()
    }
}

impl Drop for Subscription<'_> {
    fn drop(&mut self) {
        let mut map = self.waiters.by_request.lock().expect("waiters");
        drop(self.rx.take());
        if map.get(&self.id).is_some_and(|tx| tx.receiver_count() == 0) {
            map.remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Level;
    use crate::domain::records::ApprovalRecord;
    use crate::domain::refs::RefScope;

    fn record(id: i64, status: RequestStatus, approvals: usize) -> RequestRecord {
        let at = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let approval = ApprovalRecord { approver: "bob".into(), comment: None, at };
        RequestRecord {
            id,
            requester_id: Some(1),
            requester: "alice".into(),
            repo: "demo".into(),
            level: Level::Write,
            duration_secs: 3600,
            reason: None,
            rule: "r".into(),
            approvals_required: 2,
            refs: RefScope::all(),
            terms: None,
            status,
            created_at: at,
            decided_at: None,
            decided_by: None,
            decision_note: None,
            approvals: vec![approval; approvals],
            grant: None,
            extends_grant: None,
            break_glass: false,
            review: None,
            reminded_at: None,
        }
    }

    #[tokio::test]
    async fn a_decision_reaches_only_its_own_requests_waiters() {
        let w = Waiters::default();
        let (mut one, mut two) = (w.subscribe(1), w.subscribe(2));
        w.publish(&record(1, RequestStatus::Approved, 2));
        assert_eq!(one.next().await.unwrap().status, RequestStatus::Approved);
        let quiet = tokio::time::timeout(std::time::Duration::from_millis(20), two.next()).await;
        assert!(quiet.is_err(), "request 2's waiter slept through request 1's decision");
    }

    #[tokio::test]
    async fn an_earlier_state_published_late_does_not_replace_a_later_one() {
        let w = Waiters::default();
        let mut sub = w.subscribe(1);
        w.publish(&record(1, RequestStatus::Pending, 1));
        w.publish(&record(1, RequestStatus::Approved, 2));
        w.publish(&record(1, RequestStatus::Pending, 1));
        w.publish(&record(1, RequestStatus::Pending, 0));
        assert_eq!(sub.next().await.unwrap().status, RequestStatus::Approved);
        // The same state again wakes nobody.
        w.publish(&record(1, RequestStatus::Approved, 2));
        let quiet = tokio::time::timeout(std::time::Duration::from_millis(20), sub.next()).await;
        assert!(quiet.is_err(), "a waiter was woken by a state it already had");
        // A second approval of two is later than the first.
        let mut other = w.subscribe(3);
        w.publish(&record(3, RequestStatus::Pending, 1));
        w.publish(&record(3, RequestStatus::Pending, 2));
        assert_eq!(other.next().await.unwrap().approvals.len(), 2);
    }

    #[tokio::test]
    async fn the_entry_goes_with_its_last_waiter() {
        let w = Waiters::default();
        let a = w.subscribe(1);
        let b = w.subscribe(1);
        w.publish(&record(7, RequestStatus::Approved, 1)); // nobody waits on 7: nothing kept
        assert_eq!(w.watched(), 1);
        drop(a);
        assert_eq!(w.watched(), 1, "one waiter is left");
        drop(b);
        assert_eq!(w.watched(), 0);
    }
}
