//! Where the broker reads the time.
//!
//! Every rule about time (grant expiry, the pending TTL, credential lifetimes,
//! the reaper's schedule) asks a [`Clock`], never `Utc::now()` directly. The
//! running broker uses [`SystemClock`]; tests use a [`ManualClock`] (still)
//! or a [`ShiftedClock`] (running, and jumped forward) instead of sleeping.

use std::sync::Mutex;

use chrono::{DateTime, Utc};

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that moves only when told to.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> ManualClock {
        ManualClock { now: Mutex::new(start) }
    }

    pub fn advance(&self, by: chrono::Duration) {
        *self.now.lock().expect("clock lock") += by;
    }

    pub fn set(&self, to: DateTime<Utc>) {
        *self.now.lock().expect("clock lock") = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().expect("clock lock")
    }
}

/// The wall clock plus a shift that only grows: time runs as usual and jumps
/// forward when told, so a test can end a grant without waiting for it while
/// everything else (git, the CLI's own timeouts) keeps real time.
#[derive(Debug, Default)]
pub struct ShiftedClock {
    shift: Mutex<chrono::Duration>,
}

impl ShiftedClock {
    pub fn new() -> ShiftedClock {
        ShiftedClock::default()
    }

    /// Moves this clock `by` ahead of where it would be.
    pub fn advance(&self, by: chrono::Duration) {
        *self.shift.lock().expect("clock lock") += by;
    }
}

impl Clock for ShiftedClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + *self.shift.lock().expect("clock lock")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let start: DateTime<Utc> = "2026-11-25T12:00:00Z".parse().unwrap();
        let clock = ManualClock::new(start);
        assert_eq!(clock.now(), start);
        clock.advance(chrono::Duration::minutes(90));
        assert_eq!(clock.now(), start + chrono::Duration::minutes(90));
        clock.set(start);
        assert_eq!(clock.now(), start);
    }

    #[test]
    fn a_shifted_clock_runs_and_jumps() {
        let clock = ShiftedClock::new();
        let before = Utc::now();
        assert!((clock.now() - before).num_seconds().abs() < 5);
        clock.advance(chrono::Duration::hours(2));
        let ahead = clock.now() - Utc::now();
        assert!(ahead > chrono::Duration::minutes(119) && ahead <= chrono::Duration::hours(2), "{ahead}");
    }
}
