//! `start`, `stop` and `restart NAME` from the command line: the process's own strategy, run by
//! the command itself, claimed like an alarm (so it never overlaps the daemon's handling of
//! the same process) and recorded in `RESTART_EVENTS` with `trigger_source = 'manual'`. The
//! operator decides: an open breaker does not stop a manual action, and a successful restart
//! closes it.

use std::fmt;
use std::time::Instant;

use chrono::{DateTime, Utc};

use crate::alarm::TriggerSource;
use crate::breaker::{BreakerPolicy, CircuitBreaker, CycleOutcome};
use crate::config::{Config, ProcessConfig, RestartStrategy};
use crate::db::claims::{self, Claim, ClaimKey};
use crate::db::events::{self, EventEnd, EventStart};
use crate::db::{Database, DbError};
use crate::note;

use super::cycle::{self, CycleReport};
use super::handle::{CLAIM_LEASE, policy};
use super::plan::Method;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Start,
    Stop,
    Restart,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Start => "start",
            Action::Stop => "stop",
            Action::Restart => "restart",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ManualError {
    #[error("{0} is being handled by {1} right now: try again when it is done")]
    Busy(String, String),
    #[error("{action} {name} failed: {reason}")]
    Failed {
        action: Action,
        name: String,
        reason: String,
    },
    #[error(transparent)]
    Database(#[from] DbError),
}

/// Carries out `action` on `process` (id `process_id` in `PROCESE`), returning what was done.
pub async fn act(
    db: &Database,
    config: &Config,
    process: &ProcessConfig,
    process_id: i32,
    action: Action,
) -> Result<String, ManualError> {
    let owner = format!(
        "cli@{}/{}/{}",
        config.monitor.host,
        std::process::id(),
        Utc::now().timestamp_micros()
    );
    let key = ClaimKey {
        process_id,
        host: &config.monitor.host,
        process_name: &process.name,
    };
    let claim = claims::claim(db, key, &owner, TriggerSource::Manual, CLAIM_LEASE).await?;
    if claim == Claim::Busy {
        let holder = claim_holder(db, key).await.unwrap_or_default();
        return Err(ManualError::Busy(process.name.clone(), holder));
    }
    let event_id = events::begin(
        db,
        &EventStart {
            process_id,
            process_name: &process.name,
            host: &config.monitor.host,
            source: TriggerSource::Manual,
            detected_ago: std::time::Duration::ZERO,
        },
    )
    .await?;
    let began = Instant::now();
    let report = match action {
        Action::Restart => cycle::run_cycle(process).await,
        Action::Start => single(process, start(process).await),
        Action::Stop => single(process, stop(process).await),
    };
    let breaker = manual_breaker(db, config, process_id, action, &report).await?;
    let host = config.monitor.host.as_str();
    let note = |now: DateTime<Utc>| manual_note(action, &report, host, now);
    events::finish(
        db,
        &EventEnd {
            event_id,
            process_id,
            success: matches!(report, CycleReport::Restarted { .. }),
            strategy: report.method().map(Method::as_str),
            attempts: report.attempts(),
            error: match &report {
                CycleReport::Failed { reason, .. } => Some(reason.as_str()),
                CycleReport::Restarted { .. } => None,
            },
            breaker,
            // A process stopped on purpose is not healthy: its alarm stays as it was.
            clear_alarm: action != Action::Stop && matches!(report, CycleReport::Restarted { .. }),
            note: &note,
            claim_owner: &owner,
        },
    )
    .await?;
    match report {
        CycleReport::Restarted { method, .. } => Ok(format!(
            "{action} {}: done via {} in {:.1} s",
            process.name,
            method.as_str(),
            began.elapsed().as_secs_f64()
        )),
        CycleReport::Failed { reason, .. } => Err(ManualError::Failed {
            action,
            name: process.name.clone(),
            reason,
        }),
    }
}

/// A successful manual restart or start closes the breaker; anything else leaves it alone.
async fn manual_breaker(
    db: &Database,
    config: &Config,
    process_id: i32,
    action: Action,
    report: &CycleReport,
) -> Result<Option<(CircuitBreaker, BreakerPolicy, CycleOutcome)>, DbError> {
    if action == Action::Stop || !matches!(report, CycleReport::Restarted { .. }) {
        return Ok(None);
    }
    let admission = crate::db::breaker::load(db, process_id).await?;
    Ok(Some((
        admission.breaker,
        policy(config),
        CycleOutcome::Succeeded,
    )))
}

fn single(process: &ProcessConfig, outcome: Result<Method, String>) -> CycleReport {
    match outcome {
        Ok(method) => CycleReport::Restarted { method, attempt: 1 },
        Err(reason) => CycleReport::Failed {
            method: Some(match process.restart_strategy {
                RestartStrategy::Service => Method::Service,
                RestartStrategy::Process | RestartStrategy::Auto => Method::Process,
            }),
            attempts: 1,
            reason,
        },
    }
}

/// `systemctl start`, or the start command, then the health check. `auto` tries the unit
/// first, as a restart would.
async fn start(process: &ProcessConfig) -> Result<Method, String> {
    if process.restart_strategy != RestartStrategy::Process {
        match cycle::systemctl("start", process)
            .await
            .and(cycle::health_check(process).await)
        {
            Ok(()) => return Ok(Method::Service),
            Err(reason) if process.restart_strategy == RestartStrategy::Service => {
                return Err(reason);
            }
            Err(reason) => {
                tracing::warn!(process = %process.name, "service: {reason}; falling back")
            }
        }
    }
    if cycle::is_running(process)? {
        return Ok(Method::Process);
    }
    cycle::start_process(process)
        .await
        .map(|()| Method::Process)
}

/// `systemctl stop`, or SIGTERM to the process group then SIGKILL after `stop_timeout`.
async fn stop(process: &ProcessConfig) -> Result<Method, String> {
    if process.restart_strategy != RestartStrategy::Process {
        match cycle::systemctl("stop", process).await {
            Ok(()) => return Ok(Method::Service),
            Err(reason) if process.restart_strategy == RestartStrategy::Service => {
                return Err(reason);
            }
            Err(reason) => {
                tracing::warn!(process = %process.name, "service: {reason}; falling back")
            }
        }
    }
    cycle::stop_process(process).await.map(|()| Method::Process)
}

fn manual_note(action: Action, report: &CycleReport, host: &str, now: DateTime<Utc>) -> String {
    match report {
        CycleReport::Restarted { method, .. } => note::fit(&format!(
            "{action} by operator via {} at {} UTC on {host}",
            method.as_str(),
            note::timestamp(now)
        )),
        CycleReport::Failed { reason, .. } => note::fit(&format!(
            "{action} by operator failed: {reason} at {} UTC on {host}",
            note::timestamp(now)
        )),
    }
}

/// Who holds the claim in the way: on the same id, or on the same name on this host.
async fn claim_holder(db: &Database, key: ClaimKey<'_>) -> Result<String, DbError> {
    use sqlx::Row;
    let row = db
        .run(
            sqlx::query(
                "SELECT owner FROM ALARM_CLAIM \
                 WHERE process_id = ? OR (host = ? AND process_name = ?) LIMIT 1",
            )
            .bind(key.process_id)
            .bind(key.host)
            .bind(key.process_name)
            .fetch_optional(db.pool()),
        )
        .await?;
    Ok(row
        .and_then(|r| r.try_get::<String, _>(0).ok())
        .unwrap_or_else(|| "another monitor".to_owned()))
}
