//! The circuit breaker of one process, as a pure state machine: the state, and what it decides
//! given a policy and the time `now` (the database clock's, passed in). Persistence lives in
//! `db::breaker`; this module never does I/O.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Restarts are allowed.
    Closed,
    /// Too many cycles failed in a row: no restart until `opened_at + reset_after`.
    Open,
    /// The reset time has passed: one trial restart decides whether to close or reopen.
    HalfOpen,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

impl fmt::Display for BreakerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BreakerState {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "closed" => Ok(BreakerState::Closed),
            "open" => Ok(BreakerState::Open),
            "half_open" => Ok(BreakerState::HalfOpen),
            other => Err(format!("unknown circuit breaker state {other:?}")),
        }
    }
}

/// `max_restart_failures` and `circuit_reset_time` of `[monitor]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerPolicy {
    pub max_failures: u32,
    pub reset_after: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CircuitBreaker {
    pub state: BreakerState,
    pub consecutive_failures: u32,
    pub opened_at: Option<DateTime<Utc>>,
}

/// What the breaker says to a restart cycle about to begin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Closed: go ahead.
    Allowed,
    /// The reset time has passed: this cycle is the single trial of the half-open state.
    Trial,
    /// Open: no restart before `until`.
    Refused { until: DateTime<Utc> },
}

/// How a restart cycle ended, as far as the breaker cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CycleOutcome {
    Succeeded,
    Failed,
}

impl Default for CircuitBreaker {
    fn default() -> Self {
        CircuitBreaker {
            state: BreakerState::Closed,
            consecutive_failures: 0,
            opened_at: None,
        }
    }
}

impl CircuitBreaker {
    /// Decides whether a cycle may run now, and returns the breaker as it stands once the
    /// decision is taken (an open breaker past its reset time becomes half-open).
    pub fn admit(self, policy: BreakerPolicy, now: DateTime<Utc>) -> (Admission, CircuitBreaker) {
        match self.state {
            BreakerState::Closed => (Admission::Allowed, self),
            // A half-open breaker found at admission means the previous trial never reported
            // (its monitor died): claims guarantee no other trial runs, so this one is it.
            BreakerState::HalfOpen => (Admission::Trial, self),
            BreakerState::Open => {
                let until = self.reopens_at(policy);
                if now >= until {
                    let half_open = CircuitBreaker {
                        state: BreakerState::HalfOpen,
                        ..self
                    };
                    (Admission::Trial, half_open)
                } else {
                    (Admission::Refused { until }, self)
                }
            }
        }
    }

    /// The breaker after a cycle that ran (allowed or trial) ended with `outcome` at `now`.
    pub fn record(
        self,
        policy: BreakerPolicy,
        outcome: CycleOutcome,
        now: DateTime<Utc>,
    ) -> CircuitBreaker {
        match outcome {
            CycleOutcome::Succeeded => CircuitBreaker::default(),
            CycleOutcome::Failed => {
                let failures = self.consecutive_failures.saturating_add(1);
                let opens = self.state == BreakerState::HalfOpen || failures >= policy.max_failures;
                if opens {
                    CircuitBreaker {
                        state: BreakerState::Open,
                        consecutive_failures: failures,
                        opened_at: Some(now),
                    }
                } else {
                    CircuitBreaker {
                        state: BreakerState::Closed,
                        consecutive_failures: failures,
                        opened_at: None,
                    }
                }
            }
        }
    }

    /// When an open breaker lets a trial through.
    pub fn reopens_at(self, policy: BreakerPolicy) -> DateTime<Utc> {
        let opened = self.opened_at.unwrap_or(DateTime::<Utc>::MIN_UTC);
        let reset = chrono::Duration::from_std(policy.reset_after).unwrap_or(chrono::Duration::MAX);
        opened
            .checked_add_signed(reset)
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const POLICY: BreakerPolicy = BreakerPolicy {
        max_failures: 3,
        reset_after: Duration::from_secs(60),
    };

    fn at(second: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + second, 0)
            .single()
            .expect("valid time")
    }

    fn breaker(state: BreakerState, failures: u32, opened: Option<i64>) -> CircuitBreaker {
        CircuitBreaker {
            state,
            consecutive_failures: failures,
            opened_at: opened.map(at),
        }
    }

    #[test]
    fn admission_follows_the_state_and_the_clock() {
        use BreakerState::*;
        let cases = [
            // (breaker, now, expected admission, expected state after)
            (breaker(Closed, 0, None), 0, Admission::Allowed, Closed),
            (breaker(Closed, 2, None), 0, Admission::Allowed, Closed),
            (
                breaker(Open, 3, Some(0)),
                59,
                Admission::Refused { until: at(60) },
                Open,
            ),
            (breaker(Open, 3, Some(0)), 60, Admission::Trial, HalfOpen),
            (breaker(Open, 3, Some(0)), 3600, Admission::Trial, HalfOpen),
            (
                breaker(HalfOpen, 3, Some(0)),
                61,
                Admission::Trial,
                HalfOpen,
            ),
        ];
        for (before, now, admission, state) in cases {
            let (got, after) = before.admit(POLICY, at(now));
            assert_eq!(got, admission, "{before:?} at {now}");
            assert_eq!(after.state, state, "{before:?} at {now}");
        }
    }

    #[test]
    fn outcomes_move_the_breaker() {
        use BreakerState::*;
        use CycleOutcome::*;
        let cases = [
            // (breaker, outcome, now, expected breaker)
            (
                breaker(Closed, 0, None),
                Succeeded,
                5,
                breaker(Closed, 0, None),
            ),
            (
                breaker(Closed, 0, None),
                Failed,
                5,
                breaker(Closed, 1, None),
            ),
            (
                breaker(Closed, 1, None),
                Failed,
                5,
                breaker(Closed, 2, None),
            ),
            (
                breaker(Closed, 2, None),
                Failed,
                5,
                breaker(Open, 3, Some(5)),
            ),
            (
                breaker(Closed, 2, None),
                Succeeded,
                5,
                breaker(Closed, 0, None),
            ),
            (
                breaker(HalfOpen, 3, Some(0)),
                Succeeded,
                70,
                breaker(Closed, 0, None),
            ),
            (
                breaker(HalfOpen, 3, Some(0)),
                Failed,
                70,
                breaker(Open, 4, Some(70)),
            ),
        ];
        for (before, outcome, now, expected) in cases {
            assert_eq!(
                before.record(POLICY, outcome, at(now)),
                expected,
                "{before:?} {outcome:?}"
            );
        }
    }

    #[test]
    fn a_failed_trial_restarts_the_reset_timer() {
        let open = breaker(BreakerState::Open, 3, Some(0));
        let (_, trial) = open.admit(POLICY, at(60));
        let reopened = trial.record(POLICY, CycleOutcome::Failed, at(65));
        assert_eq!(
            reopened.admit(POLICY, at(100)).0,
            Admission::Refused { until: at(125) }
        );
        assert_eq!(reopened.admit(POLICY, at(125)).0, Admission::Trial);
    }

    #[test]
    fn one_allowed_failure_opens_when_max_is_one() {
        let policy = BreakerPolicy {
            max_failures: 1,
            ..POLICY
        };
        let after = CircuitBreaker::default().record(policy, CycleOutcome::Failed, at(1));
        assert_eq!(after.state, BreakerState::Open);
    }

    #[test]
    fn states_round_trip_through_their_database_names() {
        for state in [
            BreakerState::Closed,
            BreakerState::Open,
            BreakerState::HalfOpen,
        ] {
            assert_eq!(state.as_str().parse::<BreakerState>(), Ok(state));
        }
        assert!("ajar".parse::<BreakerState>().is_err());
    }
}
