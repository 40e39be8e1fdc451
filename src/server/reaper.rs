//! The reaper: ends what time has ended.
//!
//! It expires requests nobody decided within the pending TTL, gives new
//! grants their access at hosts that grant by membership, and tells the
//! provider about every grant that expired or was revoked, recording each
//! expiry in the audit log exactly once; once a day it brings up each
//! break-glass grant still unreviewed. It runs at start-up first, so a broker
//! that was down catches up, then sleeps until the next grant expiry, a change,
//! or its interval, whichever comes first.
//!
//! Beside it, on a loop of its own, the sessions of people the identity
//! provider signed in are checked with the IdP as they fall due: an IdP that
//! is slow to answer delays those checks, never a grant's end. Notifications
//! are delivered the same way, a loop per destination (`server::notify`), and
//! what other brokers sharing the database change is heard on one more
//! (`broker::changes`).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::broker::Broker;

/// How long to sleep: until just after `next` is due, and never longer than the interval.
fn nap(broker: &Broker, next: Option<chrono::DateTime<chrono::Utc>>) -> Duration {
    let interval = broker.config().reaper_interval;
    match next {
        Some(next) => interval.min((next - broker.now()).to_std().unwrap_or(Duration::ZERO) + Duration::from_millis(5)),
        None => interval,
    }
}

pub async fn run(broker: Arc<Broker>, shutdown: watch::Receiver<bool>) {
    tokio::join!(
        end_what_time_ended(broker.clone(), shutdown.clone()),
        check_sessions(broker.clone(), shutdown.clone()),
        broker.follow_changes(shutdown.clone()),
        say_alive(broker.clone(), shutdown.clone()),
        // Not the reaper's own work, but joined with it so shutdown waits for the last of it.
        super::archive::run(broker.clone(), shutdown.clone()),
        broker.follow_audit_log(shutdown.clone()),
        super::notify::run(broker.clone(), shutdown)
    );
}

/// Tells the database this broker is alive, every `ALIVE_EVERY`.
async fn say_alive(broker: Arc<Broker>, mut shutdown: watch::Receiver<bool>) {
    loop {
        if let Err(e) = broker.say_alive().await {
            tracing::warn!(error = %e, "cannot record that this broker is alive");
        }
        tokio::select! {
            _ = tokio::time::sleep(super::broker::changes::ALIVE_EVERY) => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
    }
}

async fn check_sessions(broker: Arc<Broker>, mut shutdown: watch::Receiver<bool>) {
    loop {
        // An IdP slow to answer does not hold up shutdown either.
        let checked = tokio::select! {
            checked = broker.recheck_sessions() => checked,
            _ = shutdown.changed() => return,
        };
        match checked {
            Ok(0) => {}
            Ok(n) => tracing::info!(sessions = n, "sessions ended: the identity provider no longer vouches for their people"),
            Err(e) => tracing::warn!(error = %e, "checking sessions with the identity provider failed"),
        }
        let sleep_for = nap(&broker, broker.next_session_check().await.ok().flatten());
        tokio::select! {
            _ = tokio::time::sleep(sleep_for) => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
    }
}

async fn end_what_time_ended(broker: Arc<Broker>, mut shutdown: watch::Receiver<bool>) {
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
        match broker.end_grants().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(grants = n, "reaper: ended grants"),
            Err(e) => tracing::warn!(error = %e, "reaper: ending grants failed"),
        }
        match broker.remind_unreviewed().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(grants = n, "reaper: reminded of unreviewed break-glass grants"),
            Err(e) => tracing::warn!(error = %e, "reaper: reminding of unreviewed break-glass grants failed"),
        }
        broker.metrics().reaper_round();
        let sleep_for = nap(&broker, broker.next_grant_expiry().await.ok().flatten());
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
