//! The decisions of a restart cycle, without I/O: which methods a strategy tries in order, and
//! what follows an attempt.

use std::time::Duration;

use crate::config::RestartStrategy;

/// One way of bringing a process back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `systemctl restart <service_name>`, then the health check.
    Service,
    /// Stop the process group, spawn `start_command`, then the health check.
    Process,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Service => "service",
            Method::Process => "process",
        }
    }
}

/// The methods an attempt tries, in order, until one brings the process back healthy.
pub fn methods(strategy: RestartStrategy) -> &'static [Method] {
    match strategy {
        RestartStrategy::Service => &[Method::Service],
        RestartStrategy::Process => &[Method::Process],
        RestartStrategy::Auto => &[Method::Service, Method::Process],
    }
}

/// What to do after attempt `attempt` (1-based) of `max_attempts` failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// Wait, then try again.
    RetryAfter(Duration),
    /// The cycle has failed.
    GiveUp,
}

pub fn after_failed_attempt(attempt: u32, max_attempts: u32, delay: Duration) -> AfterFailure {
    if attempt < max_attempts {
        AfterFailure::RetryAfter(delay)
    } else {
        AfterFailure::GiveUp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_tries_the_service_then_the_process() {
        assert_eq!(
            methods(RestartStrategy::Auto),
            &[Method::Service, Method::Process]
        );
        assert_eq!(methods(RestartStrategy::Service), &[Method::Service]);
        assert_eq!(methods(RestartStrategy::Process), &[Method::Process]);
    }

    #[test]
    fn attempts_stop_at_max_attempts() {
        let delay = Duration::from_secs(2);
        let cases = [
            (1, 1, AfterFailure::GiveUp),
            (1, 2, AfterFailure::RetryAfter(delay)),
            (2, 2, AfterFailure::GiveUp),
            (2, 3, AfterFailure::RetryAfter(delay)),
            (5, 3, AfterFailure::GiveUp),
        ];
        for (attempt, max, expected) in cases {
            assert_eq!(
                after_failed_attempt(attempt, max, delay),
                expected,
                "{attempt}/{max}"
            );
        }
    }
}
