//! The brokers sharing a database: each says it is alive every 5 s (`jit
//! admin replicas` lists them), and hears what the others changed through the
//! store's change feed (PostgreSQL's LISTEN/NOTIFY), applied to what this
//! broker holds in memory: a decision wakes this broker's waiters on that
//! request, a changed token or session drops the remembered sign-ins, a
//! revoked grant wakes the reaper. A broker alone on its database (SQLite)
//! hears nothing and needs to.
//!
//! Nothing here is trusted to arrive: long-polls read their request again
//! every `recheck` (5 s) and remembered sign-ins last at most as long, so a
//! lost notification delays what a broker learns by that much, never more.

use chrono::{DateTime, Utc};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;

use super::{Broker, BrokerResult};
use crate::domain::records::{ReplicaRecord, UserRecord};
use crate::store::Change;

/// How often each broker says it is alive, and how long after the last time
/// it counts as live no more.
pub const ALIVE_EVERY: std::time::Duration = std::time::Duration::from_secs(5);
const LIVE_FOR: chrono::Duration = chrono::Duration::seconds(15);

impl Broker {
    /// Says this broker is alive, in the database every broker shares.
    pub async fn say_alive(&self) -> BrokerResult<()> {
        Ok(self.store.replica_seen(&self.replica, env!("CARGO_PKG_VERSION"), self.started_at, self.now()).await?)
    }

    /// `GET /v1/replicas` (admins): every broker that said it was alive on
    /// this database, whether it is live now (seen in the last 15 s), and
    /// which one is answering.
    pub async fn replicas(&self, caller: &UserRecord) -> BrokerResult<Vec<(ReplicaRecord, bool, bool)>> {
        self.require_admin(caller)?;
        let now = self.now();
        let live = |seen: DateTime<Utc>| now - seen <= LIVE_FOR;
        Ok(self
            .store
            .replicas()
            .await?
            .into_iter()
            .map(|r| {
                let (is_live, is_me) = (live(r.seen_at), r.id == self.replica);
                (r, is_live, is_me)
            })
            .collect())
    }

    /// The engine this broker keeps its state in.
    pub fn database_kind(&self) -> &'static str {
        if self.shared { "postgresql" } else { "sqlite" }
    }

    /// Whether other brokers may share this broker's database.
    pub fn shares_database(&self) -> bool {
        self.shared
    }

    /// Applies what other brokers change until `shutdown`; returns at once
    /// when the database is this broker's alone.
    pub async fn follow_changes(&self, mut shutdown: watch::Receiver<bool>) {
        let Some(mut feed) = self.store.changes() else { return };
        loop {
            let heard = tokio::select! {
                heard = feed.recv() => heard,
                _ = shutdown.changed() => return,
            };
            let change = match heard {
                Ok(change) => change,
                // Fell behind: what was missed is unknown, so all of it.
                Err(RecvError::Lagged(_)) => Change::Resync,
                Err(RecvError::Closed) => return,
            };
            if let Err(e) = self.heard(change).await {
                tracing::warn!(error = %e, "applying another broker's change failed; long-polls read their requests again soon");
            }
        }
    }

    async fn heard(&self, change: Change) -> BrokerResult<()> {
        match change {
            Change::Request(id) => {
                if self.waiters.watching(id)
                    && let Some(record) = self.store.request(id).await?
                {
                    self.waiters.publish(&record);
                }
            }
            Change::Identities => self.known_tokens.forget_all(),
            Change::Grants => self.reaper_wake.notify_one(),
            Change::Resync => {
                self.known_tokens.forget_all();
                self.notify_change();
            }
        }
        Ok(())
    }
}
