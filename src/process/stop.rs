//! Stopping processes: SIGTERM to their process groups, then SIGKILL after the stop timeout.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::{Pid, getpgid, getpgrp};
use tokio::time::{Instant, sleep};

use super::{FoundProcess, stat};

/// How often to look whether the processes are gone.
const POLL: Duration = Duration::from_millis(10);

/// How long SIGKILL may take: only a process stuck in the kernel survives it this long.
const KILL_GRACE: Duration = Duration::from_secs(2);

/// How a [`stop`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopOutcome {
    /// Every process ended after SIGTERM (or was already gone).
    Terminated,
    /// Some outlived the stop timeout and were killed with SIGKILL.
    Killed { after: Duration },
    /// Still alive after SIGKILL: the PIDs that would not die.
    StillAlive(Vec<i32>),
}

impl fmt::Display for StopOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopOutcome::Terminated => f.write_str("stopped with SIGTERM"),
            StopOutcome::Killed { after } => {
                write!(f, "killed with SIGKILL after {}s", after.as_secs_f64())
            }
            StopOutcome::StillAlive(pids) => {
                let pids: Vec<String> = pids.iter().map(i32::to_string).collect();
                write!(f, "still alive after SIGKILL: pid {}", pids.join(", "))
            }
        }
    }
}

/// Stops `processes`: SIGTERM (and SIGCONT) to each one's process group, SIGKILL to those
/// still alive after `stop_timeout`, then waits a little for them to go. A zombie counts as
/// gone, and so does a PID that now belongs to another process.
pub async fn stop(processes: &[FoundProcess], stop_timeout: Duration) -> StopOutcome {
    let alive = alive(processes);
    send(Signal::SIGTERM, &alive, processes);
    // A suspended process acts on SIGTERM only once continued (systemd does the same).
    send(Signal::SIGCONT, &alive, processes);
    let survivors = wait_until_gone(processes, stop_timeout).await;
    if survivors.is_empty() {
        return StopOutcome::Terminated;
    }
    let pids_left = pids(&survivors);
    tracing::info!(pids = ?pids_left, ?stop_timeout, "still alive after SIGTERM; sending SIGKILL");
    send(Signal::SIGKILL, &survivors, processes);
    let survivors = wait_until_gone(&survivors, KILL_GRACE).await;
    if survivors.is_empty() {
        StopOutcome::Killed {
            after: stop_timeout,
        }
    } else {
        StopOutcome::StillAlive(pids(&survivors))
    }
}

fn pids(processes: &[FoundProcess]) -> Vec<i32> {
    processes.iter().map(|process| process.pid).collect()
}

fn is_alive(process: &FoundProcess) -> bool {
    stat::read(process.pid)
        .is_some_and(|stat| !stat.is_dead() && stat.start_time == process.start_time)
}

fn alive(processes: &[FoundProcess]) -> Vec<FoundProcess> {
    processes.iter().copied().filter(is_alive).collect()
}

/// Polls until every process is gone or `limit` has passed; returns those still alive.
async fn wait_until_gone(processes: &[FoundProcess], limit: Duration) -> Vec<FoundProcess> {
    let end = crate::deadline::from_now(limit);
    loop {
        let survivors = alive(processes);
        if survivors.is_empty() || Instant::now() >= end {
            return survivors;
        }
        sleep(POLL).await;
    }
}

/// Who receives a signal meant for one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Recipient {
    Group(Pid),
    Process(Pid),
}

fn send(signal: Signal, recipients_of: &[FoundProcess], all_targets: &[FoundProcess]) {
    let own_group = getpgrp();
    let recipients: BTreeSet<Recipient> = recipients_of
        .iter()
        .map(|process| recipient(process, all_targets, own_group))
        .collect();
    for recipient in recipients {
        let result = match recipient {
            Recipient::Group(group) => killpg(group, signal),
            Recipient::Process(pid) => kill(pid, signal),
        };
        match result {
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(error) => tracing::warn!(%error, ?recipient, %signal, "cannot signal a process"),
        }
    }
}

/// The process's whole group, so that whatever it started goes with it, except when that group
/// holds processes that were not asked for: the service's own group, init's, or a group whose
/// leader is alive and is not one of the targets (the target was started by some other
/// program into that program's group). Then only the process itself.
fn recipient(process: &FoundProcess, targets: &[FoundProcess], own_group: Pid) -> Recipient {
    let pid = Pid::from_raw(process.pid);
    let Ok(group) = getpgid(Some(pid)) else {
        return Recipient::Process(pid);
    };
    let foreign_leader = || {
        !targets.iter().any(|target| target.pid == group.as_raw())
            && stat::read(group.as_raw()).is_some_and(|stat| !stat.is_dead())
    };
    if group.as_raw() <= 1 || group == own_group || foreign_leader() {
        Recipient::Process(pid)
    } else {
        Recipient::Group(group)
    }
}
