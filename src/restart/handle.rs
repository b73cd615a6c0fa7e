//! Handling one alarm end to end: claim the process, ask its breaker, record the event, run
//! the cycle, then write the outcome (event, breaker, alarm and note, claim) in one
//! transaction, retried until the database takes it so that a finished restart is never
//! lost nor done again.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

use crate::alarm::{Alarm, RaisedHere, Started, TriggerSource};
use crate::breaker::{Admission, BreakerPolicy, BreakerState, CircuitBreaker, CycleOutcome};
use crate::config::{Config, ProcessConfig, RestartStrategy};
use crate::db::claims::{self, Claim, ClaimKey, ClaimOwner};
use crate::db::events::{self, EventEnd, EventStart};
use crate::db::{self, Database, DbError};
use crate::note;
use crate::process::launch::Launches;

use super::cycle::{self, Before, CycleReport};
use super::error::RestartError;
use super::plan::Method;

/// How long a claim lives without renewal: long enough to ride out a short database outage,
/// short enough that a dead monitor's alarm is retried soon.
pub const CLAIM_LEASE: Duration = Duration::from_secs(60);

/// What became of an alarm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    /// Another monitor (or a manual command) holds the process.
    Busy,
    /// The alarm was cleared before we got to it.
    AlreadyCleared,
    /// The breaker is open: nothing tried.
    BreakerOpen {
        until: DateTime<Utc>,
    },
    Restarted,
    Failed,
    /// The `process` strategy has no way to start it (no `start_command`, never seen
    /// running): noted, the alarm stays raised, the breaker is not charged.
    NothingToStart,
    /// The database did not answer; the alarm stays raised for the next poll.
    Deferred,
}

/// What every handling task shares.
#[derive(Debug, Clone)]
pub struct RestartContext {
    pub db: Database,
    /// Identifies this monitor's claims.
    pub owner: ClaimOwner,
    pub shutdown: CancellationToken,
    /// How processes were last seen started (written by the sampler and by restarts).
    pub launches: Launches,
    /// The alarms the sampler is raising, so that one the poll brings first keeps its reason.
    pub raised_here: RaisedHere,
    /// Where the cycles' events go (`[alert]`).
    pub alerts: crate::alert::Alerts,
}

pub fn policy(config: &Config) -> BreakerPolicy {
    BreakerPolicy {
        max_failures: config.monitor.max_restart_failures,
        reset_after: config.monitor.circuit_reset_time,
    }
}

/// Handles one alarm for a process this host is responsible for: what became of it, and the
/// process its restart started, when it knows it.
pub async fn handle(
    context: &RestartContext,
    config: &Config,
    process: &ProcessConfig,
    (alarm, before): (&Alarm, Before),
) -> (Handled, Option<Started>) {
    match handle_claimed(context, config, process, (alarm, before)).await {
        Ok(handled) => handled,
        Err(error) => {
            if !error.is_unavailable() {
                tracing::error!(process = %alarm.process_name, "handling the alarm: {error}");
            }
            // Best effort: an unreleased claim expires on its own.
            let _ = claims::release(&context.db, alarm.process_id, context.owner.as_str()).await;
            (Handled::Deferred, None)
        }
    }
}

async fn handle_claimed(
    context: &RestartContext,
    config: &Config,
    process: &ProcessConfig,
    (alarm, before): (&Alarm, Before),
) -> Result<(Handled, Option<Started>), DbError> {
    let db = &context.db;
    let key = ClaimKey {
        process_id: alarm.process_id,
        host: &config.monitor.host,
        process_name: &alarm.process_name,
    };
    let claim = claims::claim(db, key, context.owner.as_str(), alarm.source, CLAIM_LEASE).await?;
    if !claim.is_ours() {
        return Ok((Handled::Busy, None));
    }
    if claim == Claim::TakenOver {
        tracing::warn!(process = %alarm.process_name, "took over a claim its monitor left expired: retrying");
    }
    let _lease = renew_lease(context, alarm.process_id);
    let policy = policy(config);
    let breaker = match admit(context, alarm, policy).await? {
        Ok(breaker) => breaker,
        Err(handled) => return Ok((handled, None)),
    };
    if nothing_to_start(context, process).await {
        let text = RestartError::NeverSeenRunning.to_string();
        if crate::db::alarms::write_note_if_changed(db, alarm.process_id, &text).await? {
            tracing::warn!(process = %alarm.process_name, "{text}: the alarm stays raised");
        }
        claims::release(db, alarm.process_id, context.owner.as_str()).await?;
        return Ok((Handled::NothingToStart, None));
    }
    let crash_loop = crash_loop(db, config, process, alarm).await?;
    let event_id = events::begin(
        db,
        &EventStart {
            process_id: alarm.process_id,
            process_name: &alarm.process_name,
            host: &config.monitor.host,
            source: alarm.source,
            detected_ago: alarm.seen_at.elapsed(),
        },
    )
    .await?;
    let report = match crash_loop {
        // Refused as a failed cycle, so that the breaker is charged and ends open.
        Some(reason) => CycleReport::Failed {
            method: None,
            attempts: 0,
            reason,
        },
        None => {
            tracing::info!(process = %alarm.process_name, strategy = %process.restart_strategy, source = alarm.source.as_str(), "restarting");
            cycle::run_cycle(process, &context.launches, before).await
        }
    };
    let (outcome, started) = match report {
        CycleReport::Restarted { started, .. } => (CycleOutcome::Succeeded, started),
        CycleReport::Failed { .. } => (CycleOutcome::Failed, None),
    };
    let breaker = Some((breaker, policy, outcome));
    finish(context, config, process, alarm, event_id, &report, breaker).await;
    Ok(match outcome {
        CycleOutcome::Succeeded => (Handled::Restarted, started),
        CycleOutcome::Failed => (Handled::Failed, None),
    })
}

/// Reads the alarm and the breaker: the breaker to run the cycle under, or why not to run it.
async fn admit(
    context: &RestartContext,
    alarm: &Alarm,
    policy: BreakerPolicy,
) -> Result<Result<CircuitBreaker, Handled>, DbError> {
    let db = &context.db;
    let admission = db::breaker::load(db, alarm.process_id).await?;
    // A manual restart, and one that follows a dependency's, have no alarm of their own.
    let needs_alarm = !matches!(
        alarm.source,
        TriggerSource::Manual | TriggerSource::Dependency
    );
    if !admission.alarm_raised && needs_alarm {
        claims::release(db, alarm.process_id, context.owner.as_str()).await?;
        return Ok(Err(Handled::AlreadyCleared));
    }
    let (decision, breaker) = admission.breaker.admit(policy, admission.now);
    match decision {
        Admission::Refused { until } => {
            refuse(context, alarm, admission.breaker, until).await?;
            return Ok(Err(Handled::BreakerOpen { until }));
        }
        Admission::Trial if breaker != admission.breaker => {
            db.run_retrying(|| db::breaker::save(db.pool(), alarm.process_id, breaker))
                .await?;
            tracing::info!(process = %alarm.process_name, "circuit breaker half-open: one trial restart");
        }
        Admission::Trial | Admission::Allowed => {}
    }
    Ok(Ok(breaker))
}

/// The `process` strategy alone, without `start_command`, for a process that is not running and
/// was never seen running: no attempt could start it, so none is made (nor charged).
async fn nothing_to_start(context: &RestartContext, process: &ProcessConfig) -> bool {
    if process.restart_strategy != RestartStrategy::Process
        || cycle::can_start(process, &context.launches)
    {
        return false;
    }
    // Running now but never recorded (the sampler is off, say): the stop records it.
    !cycle::is_running(process).await.unwrap_or(true)
}

/// A crash loop: the process already restarted successfully `max_restarts` times within
/// `restart_window` on this host (any trigger; the database clock), so this restart is
/// refused. `None` when it may go ahead.
async fn crash_loop(
    db: &Database,
    config: &Config,
    process: &ProcessConfig,
    alarm: &Alarm,
) -> Result<Option<RestartError>, DbError> {
    if process.max_restarts == 0 {
        return Ok(None);
    }
    let window = process.restart_window;
    let host = &config.monitor.host;
    let restarts = events::successful_restarts_within(db, host, alarm.process_id, window).await?;
    if restarts < process.max_restarts {
        return Ok(None);
    }
    tracing::warn!(process = %alarm.process_name, "crash loop: {restarts} restarts in {} s: restart refused", window.as_secs_f64());
    Ok(Some(RestartError::CrashLoop { restarts, window }))
}

/// Leaves the alarm raised with a note saying until when the breaker holds, written only when
/// the note would change so that a long-open breaker costs no write per poll.
async fn refuse(
    context: &RestartContext,
    alarm: &Alarm,
    breaker: CircuitBreaker,
    until: DateTime<Utc>,
) -> Result<(), DbError> {
    let text = note::breaker_open(until, breaker.consecutive_failures);
    let changed = crate::db::alarms::write_breaker_note(
        &context.db,
        alarm.process_id,
        &text,
        note::CRASH_LOOP,
    )
    .await?;
    if changed {
        tracing::warn!(process = %alarm.process_name, "circuit breaker open until {} UTC: restart not tried", note::timestamp(until));
    }
    claims::release(&context.db, alarm.process_id, context.owner.as_str()).await
}

/// Writes the end of a cycle, retrying while the database is unreachable: the restart has
/// happened, so its outcome must land rather than the alarm be handled again.
pub async fn finish(
    context: &RestartContext,
    config: &Config,
    process: &ProcessConfig,
    alarm: &Alarm,
    event_id: u64,
    report: &CycleReport,
    breaker: Option<(CircuitBreaker, BreakerPolicy, CycleOutcome)>,
) {
    let host = config.monitor.host.as_str();
    let max_attempts = process.max_attempts;
    match report {
        CycleReport::Restarted {
            method, attempt, ..
        } => {
            tracing::info!(process = %alarm.process_name, "restarted via {} (attempt {attempt}/{max_attempts})", method.as_str())
        }
        CycleReport::Failed {
            attempts, reason, ..
        } => {
            tracing::error!(process = %alarm.process_name, "restart failed after {attempts} attempts: {reason}")
        }
    }
    let note = |now: DateTime<Utc>| match report {
        CycleReport::Restarted {
            method, attempt, ..
        } => note::restarted(method.as_str(), *attempt, max_attempts, host, now),
        CycleReport::Failed {
            reason: RestartError::CrashLoop { restarts, window },
            ..
        } => note::crash_loop(*restarts, *window, opened_until(breaker, now)),
        CycleReport::Failed {
            attempts, reason, ..
        } => note::failed(&reason.to_string(), *attempts, host, now),
    };
    let end = event_end(
        event_id,
        alarm.process_id,
        report,
        breaker,
        true,
        &note,
        &context.owner,
    );
    super::alerts::cycle_ended(
        &context.alerts,
        &alarm.process_name,
        report,
        breaker,
        &note(Utc::now()),
    );
    let mut failures = 0;
    loop {
        match events::finish(&context.db, &end).await {
            Ok(()) => return,
            Err(error) if error.is_unavailable() => {
                failures += 1;
                tokio::time::sleep(db::backoff(failures, Duration::from_secs(30))).await;
            }
            Err(error) => {
                tracing::error!(process = %alarm.process_name, "recording the restart outcome: {error}");
                return;
            }
        }
    }
}

/// The end of event `event_id` for a cycle's `report`: the one mapping of a report to
/// `RESTART_EVENTS`, the alarm and the claim, for the daemon and the manual commands alike.
/// A success clears the alarm when `success_clears` (a manual stop leaves it as it was).
pub fn event_end<'a>(
    event_id: u64,
    process_id: i32,
    report: &CycleReport,
    breaker: Option<(CircuitBreaker, BreakerPolicy, CycleOutcome)>,
    success_clears: bool,
    note: &'a (dyn Fn(DateTime<Utc>) -> String + Sync),
    owner: &'a ClaimOwner,
) -> EventEnd<'a> {
    let success = matches!(report, CycleReport::Restarted { .. });
    EventEnd {
        event_id,
        process_id,
        success,
        strategy: report.method().map(Method::as_str),
        attempts: report.attempts(),
        error: match report {
            CycleReport::Failed { reason, .. } => Some(reason.to_string()),
            CycleReport::Restarted { .. } => None,
        },
        breaker,
        clear_alarm: success && success_clears,
        note,
        claim_owner: owner.as_str(),
    }
}

/// When the breaker reopens, if this cycle's failure leaves it open.
fn opened_until(
    breaker: Option<(CircuitBreaker, BreakerPolicy, CycleOutcome)>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let (breaker, policy, outcome) = breaker?;
    let after = breaker.record(policy, outcome, now);
    (after.state == BreakerState::Open).then(|| after.reopens_at(policy))
}

/// Renews a claim in the background while its holder works; stops when dropped.
fn renew_lease(context: &RestartContext, process_id: i32) -> AbortOnDropHandle<()> {
    let db = context.db.clone();
    let owner: Arc<str> = context.owner.as_str().into();
    AbortOnDropHandle::new(tokio::spawn(async move {
        let mut ticks = tokio::time::interval(CLAIM_LEASE / 3);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            // A failed renewal is retried at the next tick; the lease has room for two.
            let _ = claims::renew(&db, process_id, &owner, CLAIM_LEASE).await;
        }
    }))
}
