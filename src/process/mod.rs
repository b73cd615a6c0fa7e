//! The process table: finding the processes that a configured name stands for, and stopping
//! them.
//!
//! [`ProcessTable`] owns the `sysinfo` view of the system and is refreshed once per check;
//! [`matches`] is the pure rule that says whether one process is the configured one;
//! [`stop`] ends processes with SIGTERM to their process group, then SIGKILL.

mod matching;
pub mod stat;
mod stop;
pub mod watch;

use std::path::Path;

use sysinfo::{ProcessRefreshKind, ProcessStatus, ProcessesToUpdate, System, UpdateKind};

use crate::config::ProcessMatch;

pub use matching::matches;
pub use stop::{StopOutcome, stop};

/// The process table could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("cannot read the process table")]
    Table(#[from] sysinfo::Error),
}

/// A running process found in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FoundProcess {
    pub pid: i32,
    /// The `starttime` of `/proc/PID/stat`, in clock ticks since boot: with the PID it names
    /// one process, even after the PID is reused.
    pub start_time: u64,
}

/// A snapshot of the system's processes, refreshed with one call per check.
pub struct ProcessTable {
    system: System,
    own_pid: i32,
}

impl ProcessTable {
    /// Reads the process table for the first time.
    pub fn new() -> Result<Self, ProcessError> {
        let mut table = ProcessTable {
            system: System::new()?,
            own_pid: i32::try_from(std::process::id()).unwrap_or(i32::MAX),
        };
        table.refresh();
        Ok(table)
    }

    /// Reads the process table again; processes that ended are dropped.
    pub fn refresh(&mut self) {
        self.system
            .refresh_processes_specifics(ProcessesToUpdate::All, true, refresh_kind());
    }

    /// The live processes that stand for the configured process `name`, by PID. The service
    /// itself, zombies and kernel threads are never returned.
    pub fn find(&self, name: &str, matcher: &ProcessMatch) -> Vec<FoundProcess> {
        let mut found: Vec<FoundProcess> = self
            .system
            .processes()
            .values()
            .filter(|process| is_candidate(process, self.own_pid))
            .filter(|process| {
                let cmdline: Vec<String> = process
                    .cmd()
                    .iter()
                    .map(|arg| arg.to_string_lossy().into_owned())
                    .collect();
                matches(name, matcher, &cmdline, process.exe())
            })
            .filter_map(|process| live(pid_of(process)))
            .collect();
        found.sort_unstable();
        found
    }
}

/// What each refresh reads. The command line and executable are read on every refresh, not
/// only once per process: a process that execs keeps its PID but changes both, and a process
/// first seen between fork and exec would otherwise keep its parent's command line forever.
/// Threads are not listed: they would match as copies of their process.
fn refresh_kind() -> ProcessRefreshKind {
    ProcessRefreshKind::nothing()
        .without_tasks()
        .with_cmd(UpdateKind::Always)
        .with_exe(UpdateKind::Always)
}

fn is_candidate(process: &sysinfo::Process, own_pid: i32) -> bool {
    pid_of(process) != own_pid
        && process.thread_kind().is_none()
        && !matches!(
            process.status(),
            ProcessStatus::Zombie | ProcessStatus::Dead
        )
}

fn pid_of(process: &sysinfo::Process) -> i32 {
    i32::try_from(process.pid().as_u32()).unwrap_or(i32::MAX)
}

/// The process as it is now, if it is still alive: the table may be a little old, so its
/// state and start time are read again from `/proc`.
fn live(pid: i32) -> Option<FoundProcess> {
    let stat = stat::read(pid)?;
    (!stat.is_dead()).then_some(FoundProcess {
        pid,
        start_time: stat.start_time,
    })
}

/// The base name of a path, as text.
fn base_name(path: &Path) -> Option<&str> {
    path.file_name().and_then(|name| name.to_str())
}
