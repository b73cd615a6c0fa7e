//! The alerts a finished cycle gives: `restart_succeeded` or `restart_failed`, `crash_loop`
//! when the cycle was refused as one, and `breaker_opened` / `breaker_closed` when its outcome
//! moved the breaker. Each carries the note as its message.

use chrono::{DateTime, Utc};

use crate::alert::{Alerts, Event};
use crate::breaker::{BreakerPolicy, BreakerState, CircuitBreaker, CycleOutcome};
use crate::config::EventKind;

use super::cycle::CycleReport;
use super::error::RestartError;

/// Sends the events of one finished cycle of `process`, whose note is `note`.
pub fn cycle_ended(
    alerts: &Alerts,
    process: &str,
    report: &CycleReport,
    breaker: Option<(CircuitBreaker, BreakerPolicy, CycleOutcome)>,
    note: &str,
) {
    if !alerts.is_on() {
        return;
    }
    for event in events(process, report, breaker, note, Utc::now()) {
        alerts.send(event);
    }
}

/// The events, pure, in the order a person should read them.
fn events(
    process: &str,
    report: &CycleReport,
    breaker: Option<(CircuitBreaker, BreakerPolicy, CycleOutcome)>,
    note: &str,
    now: DateTime<Utc>,
) -> Vec<Event> {
    let name = Some(process);
    let mut events = Vec::new();
    match report {
        CycleReport::Restarted {
            method, attempt, ..
        } => events.push(
            Event::new(EventKind::RestartSucceeded, name, note)
                .with("method", method.as_str())
                .with("attempts", *attempt),
        ),
        CycleReport::Failed {
            reason: RestartError::CrashLoop { restarts, window },
            ..
        } => events.push(
            Event::new(EventKind::CrashLoop, name, note)
                .with("restarts", *restarts)
                .with("window_seconds", window.as_secs_f64()),
        ),
        CycleReport::Failed {
            attempts, reason, ..
        } => events.push(
            Event::new(EventKind::RestartFailed, name, note)
                .with("attempts", *attempts)
                .with("error", reason.to_string()),
        ),
    }
    if let Some((before, policy, outcome)) = breaker {
        let after = before.record(policy, outcome, now);
        match (before.state, after.state) {
            (BreakerState::Open, BreakerState::Open) => {}
            (_, BreakerState::Open) => events.push(
                Event::new(EventKind::BreakerOpened, name, note)
                    .with("failures", after.consecutive_failures)
                    .with("until", after.reopens_at(policy).to_rfc3339()),
            ),
            (BreakerState::Closed, BreakerState::Closed) => {}
            (_, BreakerState::Closed) => {
                events.push(Event::new(EventKind::BreakerClosed, name, note))
            }
            _ => {}
        }
    }
    events
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::restart::plan::Method;

    fn breaker(state: BreakerState, failures: u32) -> CircuitBreaker {
        CircuitBreaker {
            state,
            consecutive_failures: failures,
            opened_at: None,
        }
    }

    const POLICY: BreakerPolicy = BreakerPolicy {
        max_failures: 2,
        reset_after: Duration::from_secs(60),
    };

    fn kinds(events: &[Event]) -> Vec<EventKind> {
        events.iter().map(|event| event.kind).collect()
    }

    #[test]
    fn the_failure_that_opens_the_breaker_says_so() {
        let report = CycleReport::Failed {
            method: None,
            attempts: 3,
            reason: RestartError::CrashLoop {
                restarts: 5,
                window: Duration::from_secs(60),
            },
        };
        let closed = breaker(BreakerState::Closed, 1);
        let with = Some((closed, POLICY, CycleOutcome::Failed));
        let events = events("a", &report, with, "note", Utc::now());
        assert_eq!(
            kinds(&events),
            [EventKind::CrashLoop, EventKind::BreakerOpened]
        );
        assert_eq!(events[1].details["failures"], 2);
    }

    #[test]
    fn a_successful_trial_closes_the_breaker() {
        let report = CycleReport::Restarted {
            method: Method::Process,
            attempt: 1,
            started: None,
        };
        let trial = Some((
            breaker(BreakerState::HalfOpen, 2),
            POLICY,
            CycleOutcome::Succeeded,
        ));
        let events = events("a", &report, trial, "restarted", Utc::now());
        assert_eq!(
            kinds(&events),
            [EventKind::RestartSucceeded, EventKind::BreakerClosed]
        );
        assert_eq!(events[0].message, "restarted");
        let plain = Some((
            breaker(BreakerState::Closed, 0),
            POLICY,
            CycleOutcome::Succeeded,
        ));
        let events = super::events("a", &report, plain, "restarted", Utc::now());
        assert_eq!(kinds(&events), [EventKind::RestartSucceeded]);
    }
}
