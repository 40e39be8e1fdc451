//! Rate rules, with the time passed in: how many failed logins a source may
//! make before it must wait, how fast one credential may drive git, and how
//! slowly a client may send a request body.
//!
//! Failures count in fixed windows per key (an address, or an address and a
//! user name): past the limit the key's wrong attempts are refused until its
//! window ends; the wait is what a `Retry-After` says. Requests spend tokens
//! from a bucket per credential that refills at a steady rate up to a burst.
//! A body must keep coming: no pause longer than its idle limit, and on
//! average no slower than a minimum rate once a grace period is over, so a
//! connection costs its holder bandwidth, never only patience.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// How slowly a request body may arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyPace {
    /// The longest pause between two pieces of the body.
    pub idle: Duration,
    /// Time allowed on top of what the minimum rate earns.
    pub grace: Duration,
    /// Bytes a second, on average, once the grace is spent.
    pub min_rate: u64,
}

impl BodyPace {
    /// How long the client has for its next piece, having sent `received`
    /// bytes in `elapsed`; `None` when it is already too late. The deadline
    /// grows with what has arrived: `grace + received / min_rate`.
    pub fn next_wait(&self, received: u64, elapsed: Duration) -> Option<Duration> {
        let earned = Duration::from_secs_f64(received as f64 / self.min_rate.max(1) as f64);
        let budget = self.grace.saturating_add(earned);
        let left = budget.checked_sub(elapsed).filter(|d| !d.is_zero())?;
        Some(left.min(self.idle))
    }
}

/// How much of one body has arrived, against its [`BodyPace`].
#[derive(Debug, Clone, Copy)]
pub struct BodyMeter {
    pace: BodyPace,
    received: u64,
}

impl BodyMeter {
    pub fn new(pace: BodyPace) -> BodyMeter {
        BodyMeter { pace, received: 0 }
    }

    /// Counts `bytes` more of the body.
    pub fn arrived(&mut self, bytes: usize) {
        self.received = self.received.saturating_add(bytes as u64);
    }

    /// How long the next piece may take, `elapsed` after the body began.
    pub fn next_wait(&self, elapsed: Duration) -> Option<Duration> {
        self.pace.next_wait(self.received, elapsed)
    }
}

/// A fixed window of failures for one key.
#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    failures: u32,
}

/// Failures per key and window; a key over the limit waits out its window.
#[derive(Debug)]
pub struct FailureLimit<K> {
    pub limit: u32,
    pub window: Duration,
    windows: HashMap<K, Window>,
}

impl<K: Hash + Eq + Clone> FailureLimit<K> {
    pub fn new(limit: u32, window: Duration) -> Self {
        FailureLimit { limit, window, windows: HashMap::new() }
    }

    /// How long `key` must wait before trying again, if it is over the limit now.
    pub fn blocked(&self, key: &K, now: Instant) -> Option<Duration> {
        let w = self.windows.get(key)?;
        let ends = w.started + self.window;
        (w.failures >= self.limit && now < ends).then(|| ends - now)
    }

    /// Counts one failure for `key`.
    pub fn fail(&mut self, key: &K, now: Instant) {
        if self.windows.len() > 100_000 {
            // A flood of distinct keys: forget the stale ones first.
            let window = self.window;
            self.windows.retain(|_, w| now < w.started + window);
        }
        let w = self.windows.entry(key.clone()).or_insert(Window { started: now, failures: 0 });
        if now >= w.started + self.window {
            *w = Window { started: now, failures: 0 };
        }
        w.failures = w.failures.saturating_add(1);
    }
}

/// A token bucket per key: `rate` per second, up to `burst`.
#[derive(Debug)]
pub struct RequestLimit<K> {
    pub rate: f64,
    pub burst: f64,
    buckets: HashMap<K, (Instant, f64)>,
}

impl<K: Hash + Eq + Clone> RequestLimit<K> {
    pub fn new(rate: f64, burst: f64) -> Self {
        RequestLimit { rate, burst, buckets: HashMap::new() }
    }

    /// Takes one token for `key`, or says how long until one is there.
    pub fn take(&mut self, key: &K, now: Instant) -> Result<(), Duration> {
        if self.buckets.len() > 100_000 {
            let full = Duration::from_secs_f64(self.burst / self.rate);
            self.buckets.retain(|_, (at, _)| now.duration_since(*at) < full);
        }
        let (at, tokens) = self.buckets.entry(key.clone()).or_insert((now, self.burst));
        let refilled = (*tokens + now.duration_since(*at).as_secs_f64() * self.rate).min(self.burst);
        *at = now;
        if refilled >= 1.0 {
            *tokens = refilled - 1.0;
            Ok(())
        } else {
            *tokens = refilled;
            Err(Duration::from_secs_f64((1.0 - refilled) / self.rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_must_keep_coming_and_keep_up_the_minimum_rate() {
        let pace = BodyPace { idle: Duration::from_secs(30), grace: Duration::from_secs(10), min_rate: 1000 };
        let s = Duration::from_secs;
        // At the start: the grace, capped by the idle limit.
        assert_eq!(pace.next_wait(0, s(0)), Some(s(10)));
        // 5 kB earned 5 s more; 2 s spent of 15.
        assert_eq!(pace.next_wait(5000, s(2)), Some(s(13)));
        // A fast, large body: the idle limit is the bound.
        assert_eq!(pace.next_wait(1_000_000, s(1)), Some(s(30)));
        // Too slow: 4 bytes in 10 s, or exactly at the budget.
        assert_eq!(pace.next_wait(0, s(10)), None);
        assert_eq!(pace.next_wait(4, s(11)), None);
        assert_eq!(pace.next_wait(1000, s(11)), None);
        assert!(pace.next_wait(1001, s(11)).is_some());
        // A meter adds up what arrived, piece by piece.
        let mut meter = BodyMeter::new(pace);
        assert_eq!(meter.next_wait(s(0)), Some(s(10)));
        meter.arrived(2000);
        meter.arrived(3000);
        assert_eq!(meter.next_wait(s(2)), Some(s(13)));
        assert_eq!(meter.next_wait(s(15)), None);
    }

    #[test]
    fn a_flood_of_keys_forgets_only_the_stale_ones() {
        let t0 = Instant::now();
        let window = Duration::from_secs(10);
        let mut l: FailureLimit<u32> = FailureLimit::new(1, window);
        // Exactly 100,000 keys: the next failure adds one without a purge.
        for key in 0..100_000 {
            l.fail(&key, t0);
        }
        let fresh = u32::MAX;
        l.fail(&fresh, t0 + Duration::from_secs(9));
        // Past 100,000 keys, a failure first drops the windows that are over.
        l.fail(&(u32::MAX - 1), t0 + window + Duration::from_secs(1));
        assert_eq!(l.windows.len(), 2, "only the live windows are kept");
        assert!(l.blocked(&fresh, t0 + window + Duration::from_secs(1)).is_some(), "a live window survives the purge");
    }

    #[test]
    fn failures_over_the_limit_wait_out_their_window() {
        let t0 = Instant::now();
        let mut l: FailureLimit<&str> = FailureLimit::new(3, Duration::from_secs(60));
        for i in 0..3 {
            assert_eq!(l.blocked(&"a", t0), None, "{i}");
            l.fail(&"a", t0 + Duration::from_secs(i));
        }
        assert_eq!(l.blocked(&"a", t0 + Duration::from_secs(10)), Some(Duration::from_secs(50)));
        assert_eq!(l.blocked(&"b", t0 + Duration::from_secs(10)), None, "other keys are not affected");
        assert_eq!(l.blocked(&"a", t0 + Duration::from_secs(60)), None, "the window ends");
        l.fail(&"a", t0 + Duration::from_secs(61));
        assert_eq!(l.blocked(&"a", t0 + Duration::from_secs(61)), None, "a fresh window counts from one");
    }

    #[test]
    fn a_flood_of_buckets_forgets_only_the_full_ones() {
        let t0 = Instant::now();
        // 2 a second, bursts of 10: a bucket idle for 5 s is full again.
        let mut l: RequestLimit<u32> = RequestLimit::new(2.0, 10.0);
        for key in 0..100_000 {
            l.take(&key, t0).unwrap();
        }
        let fresh = u32::MAX;
        for _ in 0..10 {
            l.take(&fresh, t0 + Duration::from_secs(4)).unwrap();
        }
        let later = t0 + Duration::from_secs(6);
        l.take(&(u32::MAX - 1), later).unwrap();
        assert_eq!(l.buckets.len(), 2, "only the buckets that are not full again are kept");
        // The drained bucket kept its state: 2 s of refill is 4 tokens, not 10.
        for _ in 0..3 {
            l.take(&fresh, later).unwrap();
        }
        assert!(l.take(&fresh, later).is_ok() && l.take(&fresh, later).is_err());
    }

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let t0 = Instant::now();
        let mut l: RequestLimit<i64> = RequestLimit::new(2.0, 5.0);
        for _ in 0..5 {
            assert_eq!(l.take(&1, t0), Ok(()));
        }
        let wait = l.take(&1, t0).unwrap_err();
        assert!((wait.as_secs_f64() - 0.5).abs() < 1e-9, "{wait:?}");
        // Half a token back after 0.25 s: the wait is for the other half.
        let mut partial: RequestLimit<i64> = RequestLimit::new(2.0, 1.0);
        partial.take(&1, t0).unwrap();
        let wait = partial.take(&1, t0 + Duration::from_millis(250)).unwrap_err();
        assert!((wait.as_secs_f64() - 0.25).abs() < 1e-9, "{wait:?}");
        assert_eq!(l.take(&2, t0), Ok(()), "per key");
        assert_eq!(l.take(&1, t0 + Duration::from_millis(500)), Ok(()));
        assert!(l.take(&1, t0 + Duration::from_millis(500)).is_err());
        // A long pause refills to the burst, not beyond.
        for _ in 0..5 {
            assert_eq!(l.take(&1, t0 + Duration::from_secs(100)), Ok(()));
        }
        assert!(l.take(&1, t0 + Duration::from_secs(100)).is_err());
    }
}
