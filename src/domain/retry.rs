//! When the reaper tries again to end a grant at a host that failed:
//! doubling from five seconds to at most ten minutes, or later when the host
//! itself asked for longer (a rate limit's `Retry-After`).

use std::time::Duration;

/// The wait after the first failure.
pub const FIRST_RETRY: Duration = Duration::from_secs(5);
/// The longest wait between attempts the reaper chooses by itself.
pub const MAX_RETRY: Duration = Duration::from_secs(600);

/// The wait after `failures` failed attempts in a row (this one included).
pub fn retry_after(failures: u32, host_asked: Option<Duration>) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    let backoff = FIRST_RETRY.saturating_mul(1 << doublings).min(MAX_RETRY);
    host_asked.map_or(backoff, |asked| asked.max(backoff))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_cap_and_a_host_may_ask_for_more() {
        let secs = |n, asked| retry_after(n, asked).as_secs();
        assert_eq!([1, 2, 3, 4].map(|n| secs(n, None)), [5, 10, 20, 40]);
        assert_eq!(secs(8, None), 600, "5 s × 2^7 = 640 s, capped");
        assert_eq!(secs(u32::MAX, None), 600);
        assert_eq!(secs(0, None), 5);
        assert_eq!(secs(1, Some(Duration::from_secs(90))), 90, "the host's wait when longer");
        assert_eq!(secs(3, Some(Duration::from_secs(1))), 20, "never sooner than the backoff");
    }
}
