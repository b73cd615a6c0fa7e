//! `start`, `stop` and `restart NAME` from the command line: the process's own strategy, run by
//! the command itself, claimed like an alarm (so it never overlaps the daemon's handling of
//! the same process) and recorded in `RESTART_EVENTS` with `trigger_source = 'manual'`. The
//! operator decides: an open breaker does not stop a manual action, and a successful restart
//! closes it.

use std::fmt;
use std::time::Instant;

use crate::alarm::TriggerSource;
use crate::breaker::{BreakerPolicy, CircuitBreaker, CycleOutcome};
use crate::config::{Config, ProcessConfig, RestartStrategy};
use crate::db::claims::{self, Claim, ClaimKey, ClaimOwner};
use crate::db::events::{self, EventStart};
use crate::db::{Database, DbError};
use crate::note;
use crate::process::launch::Launches;

use super::cycle::{self, CycleReport};
use super::error::RestartError;
use super::handle::{CLAIM_LEASE, event_end, policy};
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
        reason: RestartError,
    },
    #[error(transparent)]
    Database(#[from] DbError),
}

/// Carries out `action` on `process` (id `process_id` in `PROCESE`), returning what was done.
/// `source`: `Manual`, or `Dependency` for a follower restarted after the operator's process.
pub async fn act(
    db: &Database,
    config: &Config,
    (process, process_id): (&ProcessConfig, i32),
    action: Action,
    source: TriggerSource,
) -> Result<String, ManualError> {
    let owner = ClaimOwner::cli(&config.monitor.host);
    let key = ClaimKey {
        process_id,
        host: &config.monitor.host,
        process_name: &process.name,
    };
    let claim = claims::claim(db, key, owner.as_str(), source, CLAIM_LEASE).await?;
    if claim == Claim::Busy {
        let holder = claims::holder(db, key)
            .await
            .map(|holder| holder.unwrap_or_else(|| "another monitor".to_owned()))
            .unwrap_or_default();
        return Err(ManualError::Busy(process.name.clone(), holder));
    }
    let event_id = events::begin(
        db,
        &EventStart {
            process_id,
            process_name: &process.name,
            host: &config.monitor.host,
            source,
            detected_ago: std::time::Duration::ZERO,
        },
    )
    .await?;
    let began = Instant::now();
    // This command's own record of launches: a process it stops is recorded first, so that a
    // restart without start_command starts it again as it ran.
    let launches = Launches::default();
    let report = match action {
        Action::Restart => cycle::run_cycle(process, &launches, cycle::Before::Unknown).await,
        Action::Start => single(process, start(process, &launches).await),
        Action::Stop => single(process, stop(process, &launches).await),
    };
    let breaker = manual_breaker(db, config, process_id, action, &report).await?;
    let host = config.monitor.host.as_str();
    let action_text = action.to_string();
    let note = |now| match &report {
        CycleReport::Restarted { method, .. } => {
            note::operator_done(&action_text, method.as_str(), host, now)
        }
        CycleReport::Failed { reason, .. } => {
            note::operator_failed(&action_text, &reason.to_string(), host, now)
        }
    };
    // A process stopped on purpose is not healthy: its alarm stays as it was.
    let success_clears = action != Action::Stop;
    let end = event_end(
        event_id,
        process_id,
        &report,
        breaker,
        success_clears,
        &note,
        &owner,
    );
    events::finish(db, &end).await?;
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

fn single(process: &ProcessConfig, outcome: Result<Method, RestartError>) -> CycleReport {
    match outcome {
        Ok(method) => CycleReport::Restarted {
            method,
            attempt: 1,
            started: None,
        },
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
async fn start(process: &ProcessConfig, launches: &Launches) -> Result<Method, RestartError> {
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
    if cycle::is_running(process).await? {
        return Ok(Method::Process);
    }
    cycle::start_process(process, launches)
        .await
        .map(|_| Method::Process)
}

/// `systemctl stop`, or SIGTERM to the process group then SIGKILL after `stop_timeout`.
async fn stop(process: &ProcessConfig, launches: &Launches) -> Result<Method, RestartError> {
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
    cycle::stop_process(process, launches)
        .await
        .map(|()| Method::Process)
}
