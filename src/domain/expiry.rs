//! The warning git shows as a grant nears its end: when it is due (within the
//! rule's `warn_before`), what it says, and that it is said at most once a
//! minute per repo. The credential helper prints it; `jit status` too.

use chrono::{DateTime, Duration, Utc};

use crate::domain::Level;

/// A rule's `warn_before` when it sets none.
pub const DEFAULT_WARN_BEFORE_SECS: u64 = 600;

/// The same repo's warning is not repeated within this long.
pub const REPEAT_AFTER: Duration = Duration::seconds(60);

/// The line for a grant ending within `warn_before_secs` of `now` (none before that, nor once it has ended).
pub fn ending_soon(repo: &str, level: Level, expires_at: DateTime<Utc>, now: DateTime<Utc>, warn_before_secs: u64) -> Option<String> {
    let left = expires_at - now;
    if left <= Duration::zero() || left > Duration::seconds(warn_before_secs.min(i64::MAX as u64) as i64) {
        return None;
    }
    let when = match left.num_seconds() {
        s if s < 60 => "in under a minute".to_string(),
        s => format!("in {} min", (s + 59) / 60),
    };
    Some(format!("jit: {} access to {repo} ends {when}; to keep it, ask now: jit extend {repo} --for 1h", level.as_str()))
}

/// Whether a warning last given at `last` may be given again at `now`.
pub fn may_repeat(last: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    last.is_none_or(|last| now - last >= REPEAT_AFTER || last > now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_warning_comes_within_warn_before_and_not_before_or_after() {
        let now = Utc::now();
        let at = |secs: i64| ending_soon("acme/api", Level::Write, now + Duration::seconds(secs), now, 600);
        assert_eq!(at(601), None, "not yet");
        assert_eq!(
            at(600).as_deref(),
            Some("jit: write access to acme/api ends in 10 min; to keep it, ask now: jit extend acme/api --for 1h")
        );
        assert!(at(361).unwrap().contains("ends in 7 min"), "minutes round up");
        assert!(at(59).unwrap().contains("ends in under a minute"));
        assert!(at(60).unwrap().contains("ends in 1 min"), "a whole minute is a minute");
        assert_eq!(at(0), None, "ended: git is told by the broker instead");
        assert_eq!(ending_soon("r", Level::Read, now + Duration::seconds(100), now, 60), None, "the rule's own warn_before");
    }

    #[test]
    fn once_a_minute_per_repo() {
        let now = Utc::now();
        assert!(may_repeat(None, now));
        assert!(!may_repeat(Some(now - Duration::seconds(59)), now));
        assert!(may_repeat(Some(now - Duration::seconds(60)), now));
        assert!(may_repeat(Some(now + Duration::seconds(600)), now), "a clock set back does not silence it for long");
    }
}
