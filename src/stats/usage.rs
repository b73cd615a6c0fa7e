//! Reading what a process uses: CPU through its CPU clock, memory through its kept-open
//! `/proc/PID/statm` (`process/watch.rs`), recorded in its windows; and what the check counts.

use crate::db::stats::Sample;
use crate::process::watch::Units;

use super::monitored::{Monitored, Seen};
use super::roster::Scan;

/// One process's sample row, and the check it counts, if any.
pub struct Reading {
    pub sample: Sample,
    pub check: Option<Seen>,
    /// The process's `max_memory` in bytes, when it has one and its memory was read: its
    /// streak above it is counted, and the caller looks whether it is long enough.
    pub memory_limit: Option<u64>,
}

/// What turns a process's readings into figures.
pub struct Meter {
    units: Units,
    total_memory: u64,
}

impl Meter {
    pub fn of_this_system() -> Meter {
        Meter {
            units: Units::of_this_system(),
            total_memory: nix::sys::sysinfo::sysinfo().map_or(0, |info| info.ram_total()),
        }
    }

    /// Reads `process` if watched. A process not watched counts a check only when the process
    /// table was scanned (`scan`): `None` otherwise, as whether it lives is unknown.
    pub fn read(&self, process: &mut Monitored, scan: Scan, now: f64) -> Option<Reading> {
        if process.watched.is_none() && scan == Scan::Unreadable {
            return None;
        }
        let process_id = process.process_id;
        let usage = process.watched.as_mut().and_then(|w| w.read(self.units));
        if usage.is_none() && process.exit_task.is_some() {
            // The pidfd has seen this exit too, and its notice runs the quick re-checks:
            // counting the death here as well would leave that notice ignored and the
            // re-checks at the pace of samples.
            let sample = Sample::Usage {
                process_id,
                alive: false,
                pid: None,
                cpu_pct: None,
                mem_pct: None,
                rss_bytes: None,
            };
            return Some(Reading {
                sample,
                check: None,
                memory_limit: None,
            });
        }
        let limit = process
            .config
            .max_memory
            .map(|m| m.bytes(self.total_memory));
        let mut memory_limit = None;
        let seen = match usage {
            None if process.unwatchable.is_some() => Seen::Alive,
            Some(usage) => {
                process.rss_bytes = Some(usage.rss_bytes);
                process.memory_reading(usage.rss_bytes, limit);
                memory_limit = limit;
                let mem_pct = percent(usage.rss_bytes, self.total_memory);
                process.memory.record(now, mem_pct);
                if let Some(cpu) = usage.cpu_pct {
                    process.cpu.record(now, cpu);
                }
                Seen::Alive
            }
            None => {
                process.lose();
                Seen::Dead
            }
        };
        let sample = Sample::Usage {
            process_id,
            alive: seen == Seen::Alive,
            pid: process.pid(),
            cpu_pct: usage.and(process.cpu.last),
            mem_pct: usage.and(process.memory.last),
            rss_bytes: process.rss_bytes,
        };
        Some(Reading {
            sample,
            check: Some(seen),
            memory_limit,
        })
    }
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}
