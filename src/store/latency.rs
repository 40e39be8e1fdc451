//! How long the store takes to answer, as the broker waits for it: a read
//! until its rows are back, a write until its transaction has committed
//! (with SQLite, until the group commit it joined is durable; with
//! PostgreSQL, waiting for a pooled connection included). Kept as
//! histograms the broker's `/metrics` registers (`jit_store_seconds{op}`).

use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;

/// What the store did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Read,
    Write,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Read => "read",
            Op::Write => "write",
        }
    }
}

/// Seconds: a tenth of a millisecond (a cached read) to ten seconds (a
/// database that stalls; a statement times out after its own limit).
fn buckets() -> Histogram {
    Histogram::new([0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 10.0])
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpLabel {
    op: &'static str,
}

/// The store's histograms, one per [`Op`], as one labelled family; a clone shares them.
#[derive(Debug, Clone)]
pub struct Latency {
    family: Family<OpLabel, Histogram, fn() -> Histogram>,
    reads: Histogram,
    writes: Histogram,
}

impl Default for Latency {
    fn default() -> Self {
        let family = Family::<OpLabel, Histogram, fn() -> Histogram>::new_with_constructor(buckets as fn() -> Histogram);
        let reads = family.get_or_create(&OpLabel { op: Op::Read.as_str() }).clone();
        let writes = family.get_or_create(&OpLabel { op: Op::Write.as_str() }).clone();
        Latency { family, reads, writes }
    }
}

impl Latency {
    /// Times one read or write from now until the returned timer is dropped
    /// (so an early return through `?` is counted too).
    pub fn time(&self, op: Op) -> Timer<'_> {
        Timer { histogram: self.histogram(op), started: Instant::now() }
    }

    fn histogram(&self, op: Op) -> &Histogram {
        match op {
            Op::Read => &self.reads,
            Op::Write => &self.writes,
        }
    }

    /// Both histograms, labelled `op="read"` and `op="write"`, to register.
    pub fn family(&self) -> Family<OpLabel, Histogram, fn() -> Histogram> {
        self.family.clone()
    }
}

/// A read or write under way; observed when dropped.
#[must_use = "the time is taken when the timer is dropped"]
pub struct Timer<'a> {
    histogram: &'a Histogram,
    started: Instant,
}

impl Drop for Timer<'_> {
    fn drop(&mut self) {
        self.histogram.observe(self.started.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;
    use prometheus_client::registry::Registry;

    #[test]
    fn a_timer_counts_one_observation_of_its_kind_when_dropped() {
        let latency = Latency::default();
        let mut registry = Registry::default();
        registry.register("store", "", latency.family());
        {
            let _t = latency.time(Op::Write);
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let _ = latency.clone().time(Op::Write);
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        assert!(text.contains("store_count{op=\"write\"} 2\n"), "{text}");
        assert!(text.contains("store_count{op=\"read\"} 0\n"), "{text}");
        let sum: f64 = text.lines().find_map(|l| l.strip_prefix("store_sum{op=\"write\"} ")).unwrap().parse().unwrap();
        assert!(sum >= 0.002, "the sleep is in it: {sum}");
        assert!(
            text.contains("store_bucket{le=\"0.001\",op=\"write\"} 1\n"),
            "the instant one is under a millisecond, the slept one not: {text}"
        );
    }
}
