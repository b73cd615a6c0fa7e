//! Deadlines computed from durations that come from the configuration. `Instant + Duration`
//! panics when the sum passes the end of the clock; a deadline that far away only means
//! "never", so it becomes one still far beyond any run of the service instead.

use std::time::Duration;

use tokio::time::Instant;

/// What "never" comes to: thirty years, as tokio's own far future.
const FAR_FUTURE: Duration = Duration::from_secs(30 * 365 * 24 * 3600);

/// `start + wait`, or thirty years after `start` when the sum cannot be represented.
pub fn after(start: Instant, wait: Duration) -> Instant {
    start
        .checked_add(wait)
        .or_else(|| start.checked_add(FAR_FUTURE))
        // Unreachable on Linux, whose instants count from boot with 64-bit seconds; `start`
        // itself is still a valid answer, if an impatient one.
        .unwrap_or(start)
}

/// `wait` from now.
pub fn from_now(wait: Duration) -> Instant {
    after(Instant::now(), wait)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_past_the_end_of_the_clock_becomes_the_far_future() {
        let start = Instant::now();
        let never = after(start, Duration::MAX);
        assert!(never >= start + Duration::from_secs(365 * 24 * 3600));
        assert_eq!(
            after(start, Duration::from_secs(5)),
            start + Duration::from_secs(5)
        );
    }
}
