//! What the broker feeds `/metrics` (`server::metrics`): the audit log
//! followed from this broker's start, each event counted and each decision
//! timed; and the store's gauges, read when scraped.

use std::time::Duration;

use tokio::sync::watch;

use super::{Broker, BrokerResult};
use crate::domain::audit::AuditEvent;

impl Broker {
    /// The metrics in OpenMetrics text, the store's gauges read now.
    pub async fn metrics_text(&self) -> BrokerResult<String> {
        let live = self.live();
        let provider_of = |repo: &str| live.repo(repo).and_then(|r| r.provider.clone()).unwrap_or_else(|| "none".into());
        let grants: Vec<(String, String)> =
            self.live_grants_now().await?.iter().map(|g| (provider_of(&g.repo), g.level.to_string())).collect();
        let pending = self.failing_ends_count().await?;
        let backlogs = self.notification_backlogs().await?;
        Ok(self.metrics().encode(&grants, pending, &backlogs))
    }

    /// Follows the audit log from this broker's start, counting each event
    /// and timing each decision, until shutdown.
    pub async fn follow_audit_log(&self, mut shutdown: watch::Receiver<bool>) {
        // From the head when the broker opened (read before it served
        // anything, so no event of this run is missed): counters begin at
        // zero, as any process's do.
        let mut after = self.head_at_start();
        loop {
            match self.events_after(after, 1000).await {
                Ok(events) if !events.is_empty() => {
                    after = events.last().map_or(after, |e| e.seq);
                    for e in &events {
                        self.count(e).await;
                    }
                    continue;
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, "metrics: cannot read the audit log"),
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    async fn count(&self, e: &AuditEvent) {
        let provider = e.repo.as_deref().and_then(|r| self.live().repo(r).map(|r| r.provider.clone().unwrap_or_else(|| "none".into())));
        let level = e.level.clone().filter(|l| l.parse::<crate::domain::Level>().is_ok()).unwrap_or_default();
        self.metrics().event(&e.action, &provider.unwrap_or_default(), &level);
        let outcome = match e.action.as_str() {
            "granted" => "granted",
            "denied" => "denied",
            _ => return,
        };
        let Some(id) = e.request_id else { return };
        let Ok(Some((created, auto))) = self.request_created(id).await else { return };
        let Ok(at) = chrono::DateTime::parse_from_rfc3339(&e.at) else { return };
        let outcome = if outcome == "granted" && auto { "auto" } else { outcome };
        let seconds = (at.with_timezone(&chrono::Utc) - created).num_milliseconds().max(0) as f64 / 1000.0;
        self.metrics().decision(outcome, seconds);
    }
}
