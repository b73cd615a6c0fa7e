//! What a check's finding leads to: outages opened and closed in the database, the auto alarm
//! once a dead streak reaches `dead_after`, and the quick re-checks after a watched process
//! exits. With `depends_on`, only the root cause of an outage is auto-alarmed at first
//! (`downs`): a process whose dependency is down too waits until that is back.

use std::time::Instant;

use tokio::sync::mpsc;

use crate::alarm::{Alarm, TriggerSource};
use crate::alert::{Alerts, Event};
use crate::config::{Config, EventKind};
use crate::db::Database;
use crate::db::stats as store;
use crate::note;
use crate::process::{FoundProcess, ProcessTable};

use super::downs::{DeadSet, Downs};
use super::log_failure;
use super::monitored::{Monitored, Seen};
use super::roster::{Lookup, Roster};

/// Why the sampler alarmed a process, as `auto_alarm` events say it.
#[derive(Debug, Clone, Copy)]
enum Cause {
    Dead,
    Hang,
    Memory,
    /// Found dead with a dependency, and still dead once the dependency was back.
    Dependency,
}

impl Cause {
    fn as_str(self) -> &'static str {
        match self {
            Cause::Dead => "dead",
            Cause::Hang => "hang",
            Cause::Memory => "memory",
            Cause::Dependency => "dependency",
        }
    }
}

/// Where deaths are written and their alarms sent.
pub struct Deaths {
    db: Database,
    /// The restarter's alarm channel: an auto alarm goes there at once.
    alarms: mpsc::Sender<Vec<Alarm>>,
    /// Who is down, and the auto alarms waiting for a dependency.
    pub downs: Downs,
    /// Each auto alarm is an `auto_alarm` event too.
    alerts: Alerts,
}

impl Deaths {
    pub fn new(
        db: Database,
        alarms: mpsc::Sender<Vec<Alarm>>,
        dead: tokio::sync::watch::Sender<DeadSet>,
        alerts: Alerts,
    ) -> Deaths {
        Deaths {
            db,
            alarms,
            downs: Downs::new(dead),
            alerts,
        }
    }

    /// Records what one check of `process` found: outages, and the auto alarm once the dead
    /// streak reaches `dead_after`.
    pub async fn after_check(&mut self, config: &Config, process: &mut Monitored, seen: Seen) {
        let process_id = process.process_id;
        let transition = process.check(seen, config.monitor.dead_after);
        self.downs.record(process, seen);
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
            if let Some(dependency) = self.downs.down_dependency(config, process.name()) {
                tracing::info!(process = %process.name(), "found dead, as is {dependency} it depends on: alarmed only if still down once {dependency} is back");
                self.downs.hold(process_id, process.name());
            } else {
                self.auto_alarm(config, process, Cause::Dead).await;
            }
        }
    }

    /// Alarms the held processes whose dependencies are back and that are still down; those
    /// found alive again are let go, those whose dependency is still down stay held.
    pub async fn release_held(&mut self, config: &Config, roster: &mut Roster) {
        if !self.downs.has_held() {
            return;
        }
        for (process_id, name) in self.downs.take_held() {
            let Some(process) = roster.get_mut(process_id) else {
                continue;
            };
            if process.last_seen != Some(Seen::Dead)
                || !process.may_auto_alarm(config.monitor.auto_alarm)
            {
                continue;
            }
            if self.downs.down_dependency(config, &name).is_some() {
                self.downs.hold(process_id, &name);
            } else {
                self.auto_alarm(config, process, Cause::Dependency).await;
            }
        }
    }

    async fn auto_alarm(&self, config: &Config, process: &mut Monitored, cause: Cause) {
        let taken = self.downs.taken_down(config, process.name());
        let text =
            note::found_dead_taking_down(config.monitor.dead_after, &config.monitor.host, &taken);
        self.raise_because(process, TriggerSource::Auto, &text, cause)
            .await;
    }

    /// Raises the alarm on `process` with the note `text` and hands it to the restarter at
    /// once: the one path for every alarm the sampler raises (dead, hung, over its memory).
    pub async fn raise(&self, process: &mut Monitored, source: TriggerSource, text: &str) {
        let cause = match source {
            TriggerSource::Hang => Cause::Hang,
            TriggerSource::Memory => Cause::Memory,
            _ => Cause::Dead,
        };
        self.raise_because(process, source, text, cause).await;
    }

    async fn raise_because(
        &self,
        process: &mut Monitored,
        source: TriggerSource,
        text: &str,
        cause: Cause,
    ) {
        let process_id = process.process_id;
        match store::raise_alarm(&self.db, process_id, text).await {
            Ok(true) => {
                tracing::warn!(process = %process.name(), source = source.as_str(), "alarm raised: {text}");
                let event = Event::new(EventKind::AutoAlarm, Some(process.name()), text);
                self.alerts.send(event.with("cause", cause.as_str()));
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
    deaths: &mut Deaths,
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
