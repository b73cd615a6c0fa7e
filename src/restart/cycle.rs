//! One restart cycle of one process: up to `max_attempts` attempts, each the pre-restart
//! command then the strategy's methods, each method verified by the health check. Runs child
//! processes only; the database is the caller's business.

use tokio::process::Child;

use crate::alarm::Started;
use crate::command::{self, CommandOutcome, Program};
use crate::config::{ProcessConfig, RestartStrategy};
use crate::process::launch::Launches;
use crate::process::{self, StopOutcome};

use super::error::{MethodFailure, RestartError};
use super::plan::{self, AfterFailure, Method};

/// What is known of the process as its cycle begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Before {
    /// The sampler counted it dead (`dead_after` checks: the auto alarm) and has not seen it
    /// alive since: the `process` strategy's first attempt starts it without looking for
    /// instances to stop, a scan of the whole process table.
    FoundDead,
    Unknown,
}

/// How a cycle ended.
#[derive(Debug)]
pub enum CycleReport {
    Restarted {
        method: Method,
        attempt: u32,
        /// The process the `process` strategy started.
        started: Option<Started>,
    },
    Failed {
        /// The method that acted last, if any got as far as acting.
        method: Option<Method>,
        attempts: u32,
        reason: RestartError,
    },
}

impl CycleReport {
    pub fn attempts(&self) -> u32 {
        match self {
            CycleReport::Restarted { attempt, .. } => *attempt,
            CycleReport::Failed { attempts, .. } => *attempts,
        }
    }

    pub fn method(&self) -> Option<Method> {
        match self {
            CycleReport::Restarted { method, .. } => Some(*method),
            CycleReport::Failed { method, .. } => *method,
        }
    }
}

/// Runs a whole cycle for `process`; `launches` is how processes were last seen started, for
/// the `process` strategy without `start_command`.
pub async fn run_cycle(
    process: &ProcessConfig,
    launches: &Launches,
    before: Before,
) -> CycleReport {
    let mut last_method = None;
    let mut attempt = 1;
    loop {
        // A failed attempt may have left something running: later ones look.
        let known = if attempt == 1 {
            before
        } else {
            Before::Unknown
        };
        let reason = match run_attempt(process, launches, known, &mut last_method).await {
            Ok((method, started)) => {
                return CycleReport::Restarted {
                    method,
                    attempt,
                    started,
                };
            }
            Err(reason) => reason,
        };
        tracing::warn!(
            process = %process.name,
            "restart attempt {attempt}/{} failed: {reason}",
            process.max_attempts
        );
        match plan::after_failed_attempt(attempt, process.max_attempts, process.restart_delay) {
            AfterFailure::RetryAfter(delay) => {
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
            AfterFailure::GiveUp => {
                return CycleReport::Failed {
                    method: last_method,
                    attempts: attempt,
                    reason,
                };
            }
        }
    }
}

/// One attempt: the pre-restart command, then each method in turn until one works; which one,
/// and the process it started if it knows it.
async fn run_attempt(
    process: &ProcessConfig,
    launches: &Launches,
    before: Before,
    last_method: &mut Option<Method>,
) -> Result<(Method, Option<Started>), RestartError> {
    if let Some(pre) = &process.pre_restart_command {
        let program = Program::Shell {
            text: pre,
            name: &process.name,
        };
        if let CommandOutcome::Failed(failure) =
            command::run(program, process.command_timeout).await
        {
            return Err(RestartError::PreRestart(failure));
        }
    }
    let mut failures = Vec::new();
    for &method in plan::methods(process.restart_strategy) {
        *last_method = Some(method);
        let result = match method {
            Method::Service => restart_service(process).await.map(|()| None),
            // Found dead, and no service restart tried before: nothing to stop.
            Method::Process
                if before == Before::FoundDead
                    && process.restart_strategy == RestartStrategy::Process =>
            {
                start_process(process, launches).await
            }
            Method::Process => restart_process(process, launches).await,
        };
        match result {
            Ok(started) => return Ok((method, started)),
            Err(error) => {
                let failure = MethodFailure { method, error };
                if Some(&method) != plan::methods(process.restart_strategy).last() {
                    tracing::warn!(process = %process.name, "{failure}; falling back");
                }
                failures.push(failure);
            }
        }
    }
    Err(RestartError::Methods(failures))
}

/// `systemctl restart <unit>`, then the health check.
pub async fn restart_service(process: &ProcessConfig) -> Result<(), RestartError> {
    systemctl("restart", process).await?;
    health_check(process).await
}

/// `systemctl VERB -- <unit>` under `command_timeout`.
pub async fn systemctl(verb: &'static str, process: &ProcessConfig) -> Result<(), RestartError> {
    let unit = process.service_name();
    let program = Program::Exec {
        program: "systemctl",
        args: &[verb, "--", unit],
    };
    match command::run(program, process.command_timeout).await {
        CommandOutcome::Success => Ok(()),
        CommandOutcome::Failed(failure) => Err(RestartError::Systemctl {
            verb,
            unit: unit.to_owned(),
            failure,
        }),
    }
}

/// Whether an instance of the process runs now.
pub async fn is_running(process: &ProcessConfig) -> Result<bool, RestartError> {
    find(process).await.map(|found| !found.is_empty())
}

/// Stops every instance of the process, starts it again, then the health check; the process
/// started.
pub async fn restart_process(
    process: &ProcessConfig,
    launches: &Launches,
) -> Result<Option<Started>, RestartError> {
    stop_process(process, launches).await?;
    start_process(process, launches).await
}

/// Stops every running instance: SIGTERM to each process group, SIGKILL after
/// `stop_timeout`. How the first was started is recorded before, so that it can be started
/// again that way.
pub async fn stop_process(
    process: &ProcessConfig,
    launches: &Launches,
) -> Result<(), RestartError> {
    let found = find(process).await?;
    let Some(&first) = found.first() else {
        return Ok(());
    };
    launches.record_found(process, first, command::SCRUBBED_ENVIRONMENT);
    match process::stop(&found, process.stop_timeout).await {
        outcome @ StopOutcome::StillAlive(_) => Err(RestartError::Stop(outcome)),
        outcome => {
            tracing::debug!(process = %process.name, "{outcome}");
            Ok(())
        }
    }
}

/// Whether the `process` strategy has a way to start `process`: its `start_command`, or how it
/// was last seen started.
pub fn can_start(process: &ProcessConfig, launches: &Launches) -> bool {
    process.start_command.is_some() || launches.get(&process.name).is_some()
}

/// Spawns `start_command` (or, without one, the process as it was last seen started) detached
/// and waits for the health check; a start command that exits with an error before the check
/// passes fails the attempt at once with its reason. Returns the process spawned, read before
/// anything waits for it (so its PID is still its own): the process itself when the command
/// runs directly or through `exec`.
pub async fn start_process(
    process: &ProcessConfig,
    launches: &Launches,
) -> Result<Option<Started>, RestartError> {
    let launch;
    let path;
    let (program, spawned) = match &process.start_command {
        Some(start) => (
            Program::Shell {
                text: start,
                name: &process.name,
            },
            command::spawn_detached(start, &process.name),
        ),
        None => {
            launch = launches
                .get(&process.name)
                .ok_or(RestartError::NeverSeenRunning)?;
            path = launch.program.to_string_lossy();
            let program = Program::Exec {
                program: &path,
                args: &[],
            };
            (program, command::spawn_launch(&launch))
        }
    };
    // Run without a shell, a missing program is the spawn's error, not the shell's exit 127.
    let child = spawned
        .map_err(|error| RestartError::StartFailed(command::spawn_failure(&program, &error)))?;
    let started = child
        .id()
        .and_then(|pid| i32::try_from(pid).ok())
        .and_then(|pid| {
            let stat = process::stat::read(pid)?;
            Some(Started {
                pid,
                start_time: stat.start_time,
            })
        });
    await_start(process, &program, child).await?;
    Ok(started)
}

/// The health check, while watching the start command: one that daemonizes exits 0 at once
/// and the check decides; one that exits with an error first fails the attempt.
async fn await_start(
    process: &ProcessConfig,
    program: &Program<'_>,
    mut child: Child,
) -> Result<(), RestartError> {
    let check = health_check(process);
    tokio::pin!(check);
    let mut start_exited = false;
    loop {
        tokio::select! {
            result = &mut check => return result,
            status = child.wait(), if !start_exited => {
                start_exited = true;
                match status {
                    Ok(status) if status.success() => {}
                    Ok(status) => {
                        if let CommandOutcome::Failed(failure) = command::outcome(program, status, String::new()) {
                            return Err(RestartError::StartFailed(failure));
                        }
                    }
                    Err(error) => return Err(RestartError::StartIo(error)),
                }
            }
        }
    }
}

/// The health check, retried until it passes or `health_check_timeout` runs out. Without a
/// health check command, a method that completed counts as healthy.
pub async fn health_check(process: &ProcessConfig) -> Result<(), RestartError> {
    let Some(text) = &process.health_check_command else {
        return Ok(());
    };
    let program = Program::Shell {
        text,
        name: &process.name,
    };
    match command::run_until_success(program, process.health_check_timeout)
        .await
        .outcome
    {
        CommandOutcome::Success => Ok(()),
        CommandOutcome::Failed(failure) => Err(RestartError::HealthCheck(failure)),
    }
}

async fn find(process: &ProcessConfig) -> Result<Vec<process::FoundProcess>, RestartError> {
    let table = process::fresh_table().await?;
    Ok(table.find(&process.name, &process.matcher))
}
