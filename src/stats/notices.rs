//! The restarter's notices: while a process is in hand its deaths are the restart's own, not
//! the auto alarm's business; when the restart ends the new process is watched at once.

use crate::alarm::RestartNotice;
use crate::config::Config;
use crate::process;

use super::deaths::{self, Deaths};
use super::monitored::Seen;
use super::rechecks::Rechecks;
use super::roster::{Lookup, Roster};

/// The notices that arrived together: `Began` at once; the processes of every `Ended` looked
/// for with one scan of the process table, so that many restarts ending together cost one
/// scan, not one each.
pub async fn restart_notices(
    roster: &mut Roster,
    deaths: &mut Deaths,
    rechecks: &mut Rechecks,
    config: &Config,
    notices: Vec<RestartNotice>,
) {
    let mut ended = Vec::new();
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
            } => {
                let Some(process) = roster.get_mut(id) else {
                    continue;
                };
                process.in_hand = false;
                if alarm_cleared {
                    process.note_alarm(false);
                }
                if restarted {
                    // A new process was started: its deaths count from here, even one before
                    // it could be seen alive (the old one's streak would otherwise never
                    // equal `dead_after` again).
                    process.dead_streak = 0;
                }
                // `hang_after` and `max_memory` count from the restart, not from before it.
                process.healthy_since = None;
                process.memory_streak = 0;
                // Watch the new process now, so that its next death is seen at once.
                if process.watched.is_none() {
                    ended.push(id);
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
