//! The restarter's notices: while a process is in hand its deaths are the restart's own, not
//! the auto alarm's business; when the restart ends the new process is watched at once: the
//! one it started when the notice names it, else the one a scan finds.

use crate::alarm::RestartNotice;
use crate::config::Config;
use crate::process::{self, FoundProcess};

use super::deaths::{self, Deaths};
use super::monitored::{Monitored, Seen};
use super::rechecks::Rechecks;
use super::roster::{Lookup, Roster};

/// What a restart's end changes in its process's state.
fn restart_ended(process: &mut Monitored, restarted: bool, alarm_cleared: bool) {
    process.in_hand = false;
    if alarm_cleared {
        process.note_alarm(false);
    }
    if restarted {
        // A new process was started: its deaths count from here, even one before it could be
        // seen alive (the old one's streak would otherwise never equal `dead_after` again).
        process.dead_streak = 0;
    }
    // `hang_after` and `max_memory` count from the restart, not from before it.
    process.healthy_since = None;
    process.memory_streak = 0;
}

/// The notices that arrived together: `Began` at once; the process an `Ended` names watched
/// directly, and those of the others looked for with one scan of the process table, so that
/// many restarts ending together cost one scan at most, not one each.
pub async fn restart_notices(
    roster: &mut Roster,
    deaths: &mut Deaths,
    rechecks: &mut Rechecks,
    config: &Config,
    notices: Vec<RestartNotice>,
) {
    let mut ended = Vec::new();
    let mut started = Vec::new();
    for notice in notices {
        match notice {
            RestartNotice::Began(id) => {
                if let Some(process) = roster.get_mut(id) {
                    process.in_hand = true;
                }
            }
            RestartNotice::Ended {
                process_id: id,
                restarted,
                alarm_cleared,
                started: restart_started,
            } => {
                let Some(process) = roster.get_mut(id) else {
                    continue;
                };
                restart_ended(process, restarted, alarm_cleared);
                // Watch the new process now, so that its next death is seen at once.
                if process.watched.is_none() {
                    match restart_started {
                        Some(s) => started.push((id, s)),
                        None => ended.push(id),
                    }
                }
            }
        }
    }
    for (id, s) in started {
        let found = FoundProcess {
            pid: s.pid,
            start_time: s.start_time,
        };
        match roster.watch_started(id, found) {
            // Not it (a daemonizing command, a shell not done yet): the scan decides.
            Lookup::NotFound => ended.push(id),
            Lookup::Watching | Lookup::AliveUnwatched => {
                if let Some(process) = roster.get_mut(id) {
                    deaths.after_check(config, process, Seen::Alive);
                }
            }
        }
    }
    if ended.is_empty() {
        return;
    }
    let Ok(table) = process::fresh_table().await else {
        return;
    };
    for id in ended {
        let lookup = roster.find_in(&table, id);
        let Some(process) = roster.get_mut(id) else {
            continue;
        };
        match lookup {
            Lookup::NotFound => {
                // Gone already: it died right after its restart, before it could be
                // watched. Counted as an exit, so that its death is not left to the next
                // sample.
                deaths::gone(deaths, rechecks, config, process);
            }
            Lookup::Watching | Lookup::AliveUnwatched => {
                deaths.after_check(config, process, Seen::Alive);
            }
        }
    }
}
