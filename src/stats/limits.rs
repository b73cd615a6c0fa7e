//! Alive is not enough: a process without a healthy heartbeat for `hang_after` is hung, and one
//! above `max_memory` for `dead_after` samples in a row uses too much. Both are alarmed through
//! the same path as a death (`deaths::Deaths::raise`) and restarted by the restarter.

use crate::alarm::TriggerSource;
use crate::config::Config;
use crate::note;

use super::deaths::Deaths;
use super::heartbeat::Beat;
use super::monitored::{Liveliness, Monitored};
use super::roster::Roster;

/// Counts a round of heartbeats against `hang_after`, and alarms the processes found hung.
/// Like a death, a hang is alarmed only with `auto_alarm`, for required processes.
pub fn after_heartbeats(
    roster: &mut Roster,
    deaths: &Deaths,
    config: &Config,
    round: &[Beat],
    now: f64,
) {
    for beat in round {
        let Some(process) = roster.get_mut(beat.process_id) else {
            continue;
        };
        if process.heartbeat(beat.ok, now) == Liveliness::Responding {
            continue;
        }
        let Some(hang_after) = process.config.hang_after else {
            continue;
        };
        if process.may_auto_alarm(config.monitor.auto_alarm) {
            deaths.raise(process, TriggerSource::Hang, &note::hung(hang_after));
        }
    }
}

/// Alarms `process` once it has been above its `max_memory` (`limit`, in bytes) for
/// `dead_after` samples in a row. A memory limit is configured for that process on purpose,
/// so it acts whether `auto_alarm` is on or not, and for processes not `required` too.
pub fn after_memory_reading(deaths: &Deaths, config: &Config, process: &mut Monitored, limit: u64) {
    let samples = process.memory_streak;
    if samples < config.monitor.dead_after || !process.may_alarm() {
        return;
    }
    let rss = process.rss_bytes.unwrap_or_default();
    let text = note::over_memory(rss, limit, samples);
    deaths.raise(process, TriggerSource::Memory, &text);
}
