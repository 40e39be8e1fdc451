//! Prometheus metrics (`GET /metrics`, OpenMetrics text), for operators'
//! dashboards and alerts.
//!
//! The registry lives here; the broker feeds it (`server::broker::observe`).
//! Three sources, each named for what it counts:
//! - `jit_events_total{action, provider, level}` and
//!   `jit_request_decision_seconds{outcome}` follow the audit log (every
//!   request, decision, credential, git operation, host call and refusal is
//!   an event there), from this broker's start on. On a shared database
//!   every replica follows the same log, so each reports the whole
//!   cluster's events: query one, or take `max` across them, never `sum`.
//! - `jit_http_requests_total{route, method, status}` and
//!   `jit_http_request_seconds{route}` count what this broker answered;
//!   `jit_rate_limited_total` what it refused for speed;
//!   `jit_git_bytes_total{direction}` the git traffic its gateway carried.
//! - `jit_live_grants{provider, level}`, `jit_revocations_pending` and
//!   `jit_notification_backlog{destination}` are read from the store when
//!   scraped; `jit_store_seconds{op}` is the store's own timing of its reads
//!   and writes (`store::latency`).
//!
//! Labels never carry what a user typed: actions are the audit log's names,
//! providers, repos' levels, routes and destinations come from the config
//! and the code.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    action: String,
    provider: String,
    level: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: String,
    method: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BytesLabels {
    direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GrantLabels {
    provider: String,
    level: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DestinationLabels {
    destination: String,
}

/// Every metric the broker keeps, and the registry that writes them out.
pub struct Metrics {
    registry: Registry,
    events: Family<EventLabels, Counter>,
    decisions: Family<OutcomeLabels, Histogram>,
    http_requests: Family<HttpLabels, Counter>,
    http_seconds: Family<RouteLabels, Histogram>,
    rate_limited: Counter,
    git_bytes: Family<BytesLabels, Counter>,
    live_grants: Family<GrantLabels, Gauge>,
    revocations_pending: Gauge,
    notification_backlog: Family<DestinationLabels, Gauge>,
    reaper_rounds: Counter,
    long_polls: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// Seconds from a request to its decision: a second to a week.
fn decision_buckets() -> Histogram {
    Histogram::new([1.0, 10.0, 60.0, 300.0, 900.0, 3600.0, 4.0 * 3600.0, 86_400.0, 7.0 * 86_400.0])
}

/// Seconds to answer an HTTP request: a millisecond to a minute (a long-poll waits up to one).
fn http_buckets() -> Histogram {
    Histogram::new([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0])
}

impl Metrics {
    /// The registry, with the store's own histograms of how long its reads
    /// and writes take (the store observes them; they are reported here).
    pub fn new(store_seconds: impl prometheus_client::registry::Metric) -> Self {
        let mut registry = Registry::with_prefix("jit");
        let events = Family::<EventLabels, Counter>::default();
        registry.register("events", "Audit events by action, the repo's provider and level", events.clone());
        let decisions = Family::<OutcomeLabels, Histogram>::new_with_constructor(decision_buckets as fn() -> Histogram);
        registry.register(
            "request_decision_seconds",
            "From a request to its decision (granted by approval or policy, or denied)",
            decisions.clone(),
        );
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests this broker answered, by route, method and status class", http_requests.clone());
        let http_seconds = Family::<RouteLabels, Histogram>::new_with_constructor(http_buckets as fn() -> Histogram);
        registry.register("http_request_seconds", "Time to answer an HTTP request, by route", http_seconds.clone());
        let rate_limited = Counter::default();
        registry.register("rate_limited", "Requests refused with 429 (failed logins, git credentials too fast)", rate_limited.clone());
        let git_bytes = Family::<BytesLabels, Counter>::default();
        registry.register(
            "git_bytes",
            "Bytes of git traffic through the gateway: received from git clients, sent to them",
            git_bytes.clone(),
        );
        let live_grants = Family::<GrantLabels, Gauge>::default();
        registry.register("live_grants", "Grants live now, by provider and level", live_grants.clone());
        let revocations_pending = Gauge::default();
        registry.register(
            "revocations_pending",
            "Grants that ended but whose host has not yet taken the access back",
            revocations_pending.clone(),
        );
        let notification_backlog = Family::<DestinationLabels, Gauge>::default();
        registry.register(
            "notification_backlog",
            "Audit events not yet delivered to a [[notify]] destination",
            notification_backlog.clone(),
        );
        let reaper_rounds = Counter::default();
        registry.register(
            "reaper_rounds",
            "Rounds the reaper finished (expiring, starting and ending grants): flat for long means it is stuck",
            reaper_rounds.clone(),
        );
        let long_polls = Gauge::default();
        registry.register("long_polls", "Clients waiting on a request's decision now (long-polls held open)", long_polls.clone());
        registry.register(
            "store_seconds",
            "Time the database took for a read, or a write until committed (waiting for a connection included)",
            store_seconds,
        );
        Metrics {
            registry,
            events,
            decisions,
            http_requests,
            http_seconds,
            rate_limited,
            git_bytes,
            live_grants,
            revocations_pending,
            notification_backlog,
            reaper_rounds,
            long_polls,
        }
    }
}

impl Metrics {
    /// One HTTP request answered (`route`: the matched route's template, never the raw path).
    pub fn http_request(&self, route: &str, method: &str, status: u16, took: Duration) {
        let class = format!("{}xx", status / 100);
        self.http_requests.get_or_create(&HttpLabels { route: route.to_string(), method: method.to_string(), status: class }).inc();
        self.http_seconds.get_or_create(&RouteLabels { route: route.to_string() }).observe(took.as_secs_f64());
        if status == 429 {
            self.rate_limited.inc();
        }
    }
}

impl Metrics {
    /// The reaper finished a round.
    pub fn reaper_round(&self) {
        self.reaper_rounds.inc();
    }

    /// Rounds the reaper has finished since the broker started.
    pub fn reaper_rounds(&self) -> u64 {
        self.reaper_rounds.get()
    }

    /// A long-poll held open until the returned guard is dropped.
    pub fn long_poll(&self) -> LongPoll {
        self.long_polls.inc();
        LongPoll(self.long_polls.clone())
    }

    /// Long-polls open now.
    pub fn long_polls(&self) -> i64 {
        self.long_polls.get()
    }

    /// The counter of git bytes `received` from clients or `sent` to them, to count a body with as it streams.
    pub fn git_bytes(&self, direction: &'static str) -> Counter {
        self.git_bytes.get_or_create(&BytesLabels { direction }).clone()
    }

    /// One audit event (`provider` and `level`: from the config and the log, empty when none).
    pub fn event(&self, action: &str, provider: &str, level: &str) {
        let labels = EventLabels { action: counted_action(action), provider: provider.to_string(), level: level.to_string() };
        self.events.get_or_create(&labels).inc();
    }

    /// A decision, `seconds` after its request: `granted` (by approval), `auto` (by the policy) or `denied`.
    pub fn decision(&self, outcome: &'static str, seconds: f64) {
        self.decisions.get_or_create(&OutcomeLabels { outcome }).observe(seconds);
    }

    /// The store's gauges as read for this scrape, then everything in OpenMetrics text.
    pub fn encode(&self, live_grants: &[(String, String)], revocations_pending: usize, backlogs: &[(String, i64)]) -> String {
        self.live_grants.clear();
        for (provider, level) in live_grants {
            self.live_grants.get_or_create(&GrantLabels { provider: provider.clone(), level: level.clone() }).inc();
        }
        self.revocations_pending.set(i64::try_from(revocations_pending).unwrap_or(i64::MAX));
        self.notification_backlog.clear();
        for (destination, behind) in backlogs {
            self.notification_backlog.get_or_create(&DestinationLabels { destination: destination.clone() }).set(*behind);
        }
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// The audit actions counted; any other (a newer broker's, on a shared database) counts as `other`.
fn counted_action(action: &str) -> String {
    // The serialized names are the stable ones the log holds.
    let known = serde_json::from_value::<crate::domain::audit::Action>(serde_json::Value::String(action.to_string()));
    match known {
        Ok(a) => a.as_str().to_string(),
        Err(_) => "other".to_string(),
    }
}

/// One long-poll counted in `jit_long_polls` while it lives.
#[must_use = "the long-poll is counted while the guard lives"]
pub struct LongPoll(Gauge);

impl Drop for LongPoll {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_requests_are_counted_by_route_and_status_class_and_429s_as_rate_limited() {
        let m = Metrics::new(Family::<RouteLabels, Histogram>::new_with_constructor(http_buckets as fn() -> Histogram));
        m.http_request("/v1/requests/{id}", "GET", 200, Duration::from_millis(3));
        m.http_request("/v1/requests/{id}", "GET", 404, Duration::from_millis(1));
        m.http_request("/git/{*path}", "POST", 429, Duration::from_millis(1));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &m.registry).unwrap();
        assert!(text.contains("jit_http_requests_total{route=\"/v1/requests/{id}\",method=\"GET\",status=\"2xx\"} 1"), "{text}");
        assert!(text.contains("jit_http_requests_total{route=\"/v1/requests/{id}\",method=\"GET\",status=\"4xx\"} 1"), "{text}");
        assert!(text.contains("jit_rate_limited_total 1"), "{text}");
        assert!(text.contains("jit_http_request_seconds_bucket{le=\"0.005\",route=\"/v1/requests/{id}\"} 2"), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn only_the_audit_logs_own_actions_become_labels() {
        assert_eq!(counted_action("granted"), "granted");
        assert_eq!(counted_action("policy_changed"), "policy_changed");
        assert_eq!(counted_action("'; drop table"), "other");
    }
}
