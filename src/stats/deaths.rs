//! What a check's finding leads to: outages opened and closed in the database, the auto alarm
//! once a dead streak reaches `dead_after`, and the quick re-checks after a watched process
//! exits.

use std::time::Instant;

use tokio::sync::mpsc;

use crate::alarm::{Alarm, TriggerSource};
use crate::config::Config;
use crate::db::Database;
use crate::db::stats as store;
use crate::note;
use crate::process::{FoundProcess, ProcessTable};

use super::log_failure;
use super::monitored::{Monitored, Seen};
use super::roster::{Lookup, Roster};

/// Where deaths are written and their alarms sent.
pub struct Deaths {
    db: Database,
    /// The restarter's alarm channel: an auto alarm goes there at once.
    alarms: mpsc::Sender<Vec<Alarm>>,
}

impl Deaths {
    pub fn new(db: Database, alarms: mpsc::Sender<Vec<Alarm>>) -> Deaths {
        Deaths { db, alarms }
    }

    /// Records what one check of `process` found: outages, and the auto alarm once the dead
    /// streak reaches `dead_after`.
    pub async fn after_check(&self, config: &Config, process: &mut Monitored, seen: Seen) {
        let process_id = process.process_id;
        let transition = process.check(seen, config.monitor.dead_after);
        let host = &config.monitor.host;
        let result = if transition.outage_began {
            store::outage_began(&self.db, host, process_id).await
        } else if transition.outage_ended {
            store::outage_ended(&self.db, host, process_id).await
        } else {
            Ok(())
        };
        if let Err(error) = result {
            log_failure("recording an outage", &error);
        }
        if transition.dead_enough && process.may_auto_alarm(config.monitor.auto_alarm) {
            self.auto_alarm(config, process).await;
        }
    }

    async fn auto_alarm(&self, config: &Config, process: &mut Monitored) {
        let text = note::found_dead(config.monitor.dead_after, &config.monitor.host);
        self.raise(process, TriggerSource::Auto, &text).await;
    }

    /// Raises the alarm on `process` with the note `text` and hands it to the restarter at
    /// once: the one path for every alarm the sampler raises (dead, hung, over its memory).
    pub async fn raise(&self, process: &mut Monitored, source: TriggerSource, text: &str) {
        let process_id = process.process_id;
        match store::raise_alarm(&self.db, process_id, text).await {
            Ok(true) => {
                tracing::warn!(process = %process.name(), source = source.as_str(), "alarm raised: {text}");
                process.alarm_raised = true;
                let alarm = Alarm {
                    process_id,
                    process_name: process.config.name.clone(),
                    source,
                    seen_at: Instant::now(),
                };
                // The restarter takes it now rather than at the next poll.
                let _ = self.alarms.send(vec![alarm]).await;
            }
            Ok(false) => process.alarm_raised = true,
            Err(error) => log_failure("raising an alarm", &error),
        }
    }
}

/// A watched process exited: record it now and, with `auto_alarm`, run the `dead_after`
/// re-checks at once, `dead_recheck_interval` apart.
pub async fn exited(
    roster: &mut Roster,
    deaths: &Deaths,
    config: &Config,
    process_id: i32,
    exited: FoundProcess,
) {
    let Some(process) = roster.get_mut(process_id) else {
        return;
    };
    if !process.watches(exited) {
        return;
    }
    process.lose();
    let wants_alarm = process.may_auto_alarm(config.monitor.auto_alarm);
    let checks = if wants_alarm {
        config.monitor.dead_after
    } else {
        1
    };
    // The re-checks keep their spacing from the exit itself: the time the database takes
    // to record the outage is part of the first wait, not added to it.
    let exit_seen = tokio::time::Instant::now();
    for check in 0..checks {
        if check > 0 {
            let wait = config.monitor.dead_recheck_interval.saturating_mul(check);
            tokio::time::sleep_until(crate::deadline::after(exit_seen, wait)).await;
        }
        // The first check is the exit itself; later ones look for a replacement. Where the
        // process table cannot be read, the samples that follow count instead.
        let lookup = match check {
            0 => Lookup::NotFound,
            _ => match ProcessTable::new() {
                Ok(table) => roster.find_in(&table, process_id),
                Err(error) => {
                    tracing::warn!("{error}");
                    break;
                }
            },
        };
        let Some(process) = roster.get_mut(process_id) else {
            return;
        };
        // A process the restarter is handling is dead on purpose: its outage is real,
        // and `may_auto_alarm` keeps its alarm out of it.
        deaths.after_check(config, process, lookup.seen()).await;
        if lookup.seen() == Seen::Alive {
            break;
        }
    }
}
