//! What a change of role does on this host: `fence_command`, `promote_command` and
//! `demote_command` through `command/` (deadline, process group, scrubbed environment; the
//! host and the epoch as `$1` and `$2`, never in the shell text), and the `active_on =
//! primary` processes stopped on a step-down or handed to the restarter on a promotion.

use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::alarm::{Alarm, TriggerSource};
use crate::command::{self, CommandOutcome, Program};
use crate::config::{ActiveOn, Config, HaConfig, ProcessConfig};
use crate::db::{self, Database};
use crate::process::{self, ProcessTable};

/// Runs a configured command with `arguments` as `$1`, `$2`…; `None` when it is not set.
pub async fn run(
    text: Option<&str>,
    arguments: &[&str],
    deadline: Duration,
) -> Option<CommandOutcome> {
    let text = text?;
    let mut args = vec!["-c", text, "sh"];
    args.extend_from_slice(arguments);
    let program = Program::Exec {
        program: "/bin/sh",
        args: &args,
    };
    Some(command::run(program, deadline).await)
}

/// `fence_command OLD EPOCH`: success when it exits 0, or when none is set.
pub async fn fence(ha: &HaConfig, old: &str, epoch: u64) -> Result<(), String> {
    let epoch = epoch.to_string();
    let deadline = ha.command_deadline();
    match run(ha.fence_command.as_deref(), &[old, &epoch], deadline).await {
        None | Some(CommandOutcome::Success) => Ok(()),
        Some(failed) => Err(failed.to_string()),
    }
}

/// `promote_command EPOCH`: success when it exits 0, or when none is set.
pub async fn promote(ha: &HaConfig, epoch: u64) -> Result<(), String> {
    let epoch = epoch.to_string();
    let deadline = ha.command_deadline();
    match run(ha.promote_command.as_deref(), &[&epoch], deadline).await {
        None | Some(CommandOutcome::Success) => Ok(()),
        Some(failed) => Err(failed.to_string()),
    }
}

/// `demote_command`, then the `active_on = primary` processes of this host stopped.
pub async fn demote(config: &Config, ha: &HaConfig) {
    match run(ha.demote_command.as_deref(), &[], ha.command_deadline()).await {
        None | Some(CommandOutcome::Success) => {}
        Some(failed) => tracing::error!("demote_command: {failed}"),
    }
    for process in primary_only(config) {
        let found = match find(&process).await {
            Ok(found) => found,
            Err(error) => {
                tracing::error!(process = %process.name, "stepping down: {error}");
                continue;
            }
        };
        if found.is_empty() {
            continue;
        }
        let outcome = process::stop(&found, process.stop_timeout).await;
        tracing::info!(process = %process.name, "stepped down: {outcome}");
    }
}

/// The new primary's `active_on = primary` processes that are not running: their alarms
/// raised and handed to the restarter, which starts them through their strategy.
pub async fn start_primary_processes(
    db: &Database,
    config: &Config,
    alarms: &mpsc::Sender<Vec<Alarm>>,
    epoch: u64,
) {
    let mut batch = Vec::new();
    for process in primary_only(config) {
        match find(&process).await {
            Ok(found) if !found.is_empty() => continue,
            Ok(_) => {}
            Err(error) => {
                tracing::error!(process = %process.name, "promoting: {error}");
                continue;
            }
        }
        let id = match db::ha::process_id(db, &process.name).await {
            Ok(Some(id)) => id,
            Ok(None) => continue,
            Err(error) => {
                tracing::error!(process = %process.name, "promoting: {error}");
                continue;
            }
        };
        let note = format!("primary since epoch {epoch}: starting it here");
        if let Err(error) = db::stats::raise_alarm(db, id, &note).await {
            tracing::error!(process = %process.name, "promoting: {error}");
        }
        batch.push(Alarm {
            process_id: id,
            process_name: process.name.clone(),
            source: TriggerSource::Auto,
            seen_at: Instant::now(),
        });
    }
    if !batch.is_empty() {
        let _ = alarms.send(batch).await;
    }
}

/// This host's `active_on = primary` processes.
fn primary_only(config: &Config) -> Vec<ProcessConfig> {
    config
        .processes
        .values()
        .filter(|p| p.active_on == ActiveOn::Primary && p.runs_on(&config.monitor.host))
        .cloned()
        .collect()
}

async fn find(process: &ProcessConfig) -> Result<Vec<process::FoundProcess>, String> {
    let (name, matcher) = (process.name.clone(), process.matcher.clone());
    let scan = tokio::task::spawn_blocking(move || {
        ProcessTable::new().map(|table| table.find(&name, &matcher))
    });
    match scan.await {
        Ok(Ok(found)) => Ok(found),
        Ok(Err(error)) => Err(format!("reading the process table: {error}")),
        Err(error) => Err(format!("reading the process table: {error}")),
    }
}
