//! The restarter's notices: while a process is in hand its deaths are the restart's own, not
//! the auto alarm's business; when the restart ends the new process is watched at once.

use crate::alarm::RestartNotice;
use crate::config::Config;
use crate::process::ProcessTable;

use super::deaths::Deaths;
use super::monitored::Seen;
use super::roster::{Lookup, Roster};

pub async fn restart_notice(
    roster: &mut Roster,
    deaths: &mut Deaths,
    config: &Config,
    notice: RestartNotice,
) {
    match notice {
        RestartNotice::Began(id) => {
            if let Some(process) = roster.get_mut(id) {
                process.in_hand = true;
            }
        }
        RestartNotice::Ended(id) => {
            let Some(process) = roster.get_mut(id) else {
                return;
            };
            process.in_hand = false;
            // The restart may have cleared the alarm and started a new process: watch it
            // now, so that its next death is seen at once.
            process.alarm_raised = false;
            // `hang_after` and `max_memory` count from the restart, not from before it.
            process.healthy_since = None;
            process.memory_streak = 0;
            if process.watched.is_some() {
                return;
            }
            let Ok(table) = ProcessTable::new() else {
                return;
            };
            if roster.find_in(&table, id) == Lookup::NotFound {
                return;
            }
            if let Some(process) = roster.get_mut(id) {
                deaths.after_check(config, process, Seen::Alive).await;
            }
        }
    }
}
