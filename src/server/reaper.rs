//! The reaper: ends what time has ended.
//!
//! It expires requests nobody decided within the pending TTL, gives new
//! grants their access at hosts that grant by membership, and tells the
//! provider about every grant that expired or was revoked, recording each
//! expiry in the audit log exactly once. It runs at start-up first, so a broker
//! that was down catches up, then sleeps until the next grant expiry, a change,
//! or its interval, whichever comes first.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::broker::Broker;

pub async fn run(broker: Arc<Broker>, mut shutdown: watch::Receiver<bool>) {
    loop {
        if let Err(e) = broker.expire_stale().await {
            tracing::warn!(error = ?e, "reaper: expiring stale requests failed");
        }
        if let Err(e) = broker.summarise_auth_failures().await {
            tracing::warn!(error = %e, "reaper: summarising failed logins failed");
        }
        broker.flush_fetch_windows(false).await;
        match broker.start_grants().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(grants = n, "reaper: gave grants their access at the host"),
            Err(e) => tracing::warn!(error = %e, "reaper: starting grants at the host failed"),
        }
        match broker.recheck_sessions().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(sessions = n, "reaper: sessions ended"),
            Err(e) => tracing::warn!(error = %e, "reaper: checking sessions with the identity provider failed"),
        }
        match broker.end_grants().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(grants = n, "reaper: ended grants"),
            Err(e) => tracing::warn!(error = %e, "reaper: ending grants failed"),
        }
        let mut sleep_for = broker.config().reaper_interval;
        if let Ok(Some(next)) = broker.next_grant_expiry().await {
            let until = (next - broker.now()).to_std().unwrap_or(Duration::ZERO);
            sleep_for = sleep_for.min(until + Duration::from_millis(5));
        }
        if let Ok(Some(next)) = broker.next_session_check().await {
            let until = (next - broker.now()).to_std().unwrap_or(Duration::ZERO);
            sleep_for = sleep_for.min(until + Duration::from_millis(5));
        }
        tokio::select! {
            _ = tokio::time::sleep(sleep_for) => {}
            _ = broker.changed() => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
    }
}
