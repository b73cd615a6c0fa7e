//! What a check's finding leads to: outages opened and closed in the database, the auto alarm
//! once a dead streak reaches `dead_after`, and the quick re-checks after a watched process
//! exits (scheduled by `rechecks`). With `depends_on`, only the root cause of an outage is auto-alarmed at first
//! (`downs`): a process whose dependency is down too waits until that is back.

use std::time::Instant;

use tokio::sync::mpsc;

use crate::alarm::{Alarm, RaisedHere, TriggerSource};
use crate::alert::{Alerts, Event};
use crate::config::{Config, EventKind};
use crate::db::Database;
use crate::db::stats as store;
use crate::note;
use crate::process;

use super::downs::{DeadSet, Downs};
use super::log_failure;
use super::monitored::{Monitored, Seen};
use super::outages::{Change, Outages};
use super::rechecks::{self, Due, Rechecks};
use super::roster::{Exit, Roster};

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
    /// Each alarm being raised, noted before it is written, for the restarter.
    raised_here: RaisedHere,
    /// Who is down, and the auto alarms waiting for a dependency.
    pub downs: Downs,
    /// Outage rows, written beside the loop.
    pub outages: Outages,
    /// Each auto alarm is an `auto_alarm` event too.
    alerts: Alerts,
}

impl Deaths {
    /// `alarms`: the restarter's channel, and where an alarm being raised is noted for it.
    pub fn new(
        db: Database,
        (alarms, raised_here): (mpsc::Sender<Vec<Alarm>>, RaisedHere),
        dead: tokio::sync::watch::Sender<DeadSet>,
        alerts: Alerts,
    ) -> Deaths {
        Deaths {
            db: db.clone(),
            alarms,
            raised_here,
            downs: Downs::new(dead),
            outages: Outages::new(db),
            alerts,
        }
    }

    /// Records what one check of `process` found: outages, and the auto alarm once the dead
    /// streak reaches `dead_after`.
    pub fn after_check(&mut self, config: &Config, process: &mut Monitored, seen: Seen) {
        let process_id = process.process_id;
        let transition = process.check(seen, config.monitor.dead_after);
        self.downs.record(process, seen);
        let host = &config.monitor.host;
        if transition.outage_began {
            self.outages.record(Change::Began, host, process_id);
        } else if transition.outage_ended {
            self.outages.record(Change::Ended, host, process_id);
        }
        if transition.dead_enough && process.may_auto_alarm(config.monitor.auto_alarm) {
            if let Some(dependency) = self.downs.down_dependency(config, process.name()) {
                tracing::info!(process = %process.name(), "found dead, as is {dependency} it depends on: alarmed only if still down once {dependency} is back");
                self.downs.hold(process_id, process.name());
            } else {
                self.auto_alarm(config, process, Cause::Dead);
            }
        }
    }

    /// Alarms the held processes whose dependencies are back and that are still down; those
    /// found alive again are let go, those whose dependency is still down stay held.
    pub fn release_held(&mut self, config: &Config, roster: &mut Roster) {
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
                self.auto_alarm(config, process, Cause::Dependency);
            }
        }
    }

    fn auto_alarm(&self, config: &Config, process: &mut Monitored, cause: Cause) {
        let taken = self.downs.taken_down(config, process.name());
        let text =
            note::found_dead_taking_down(config.monitor.dead_after, &config.monitor.host, &taken);
        self.raise_because(process, TriggerSource::Auto, &text, cause);
    }

    /// Raises the alarm on `process` with the note `text` and hands it to the restarter: the
    /// one path for every alarm the sampler raises (dead, hung, over its memory).
    pub fn raise(&self, process: &mut Monitored, source: TriggerSource, text: &str) {
        let cause = match source {
            TriggerSource::Hang => Cause::Hang,
            TriggerSource::Memory => Cause::Memory,
            _ => Cause::Dead,
        };
        self.raise_because(process, source, text, cause);
    }

    /// The write and the hand-over run beside the loop, so that many deaths at once are
    /// alarmed together; the process counts as alarmed at once (the next sample reads back
    /// what the database holds).
    fn raise_because(
        &self,
        process: &mut Monitored,
        source: TriggerSource,
        text: &str,
        cause: Cause,
    ) {
        process.note_alarm(true);
        let process_id = process.process_id;
        let alarm = Alarm {
            process_id,
            process_name: process.config.name.clone(),
            source,
            seen_at: Instant::now(),
        };
        let (db, alarms, alerts) = (self.db.clone(), self.alarms.clone(), self.alerts.clone());
        let (text, raised_here) = (text.to_owned(), self.raised_here.clone());
        // Noted before the write: the poll may see the alarm before the hand-over does.
        raised_here.note(process_id, source, alarm.seen_at);
        tokio::spawn(async move {
            match store::raise_alarm(&db, process_id, &text).await {
                Ok(true) => {
                    tracing::warn!(process = %alarm.process_name, source = source.as_str(), "alarm raised: {text}");
                    let event = Event::new(EventKind::AutoAlarm, Some(&alarm.process_name), &text);
                    alerts.send(event.with("cause", cause.as_str()));
                    // The restarter takes it now rather than at the next poll.
                    let _ = alarms.send(vec![alarm]).await;
                }
                Ok(false) => raised_here.forget(process_id),
                Err(error) => {
                    raised_here.forget(process_id);
                    log_failure("raising an alarm", &error);
                }
            }
        });
    }
}

/// A watched process exited: record it now and, with `auto_alarm`, schedule the rest of the
/// `dead_after` checks, `dead_recheck_interval` apart from the exit ([`Rechecks`]).
pub fn exited(
    roster: &mut Roster,
    deaths: &mut Deaths,
    rechecks: &mut Rechecks,
    config: &Config,
    (process_id, exited): Exit,
) {
    let Some(process) = roster.get_mut(process_id) else {
        return;
    };
    if !process.watches(exited) {
        return;
    }
    process.lose();
    gone(deaths, rechecks, config, process);
}

/// `process` is gone (exited, or not found when its restart ended): the first dead check,
/// and with `auto_alarm` the re-checks that follow, `dead_recheck_interval` apart from now.
pub fn gone(
    deaths: &mut Deaths,
    rechecks: &mut Rechecks,
    config: &Config,
    process: &mut Monitored,
) {
    let wants_alarm = process.may_auto_alarm(config.monitor.auto_alarm);
    if wants_alarm && config.monitor.dead_after > 1 {
        // The re-checks keep their spacing from the exit itself: the time the database
        // takes to record the outage is part of the first wait, not added to it.
        let exit = Rechecks::exit_now(process.listing.clone());
        let interval = config.monitor.dead_recheck_interval;
        rechecks.schedule(process.process_id, exit, 1, interval);
    }
    // The first check is the exit itself; later ones look for a replacement.
    deaths.after_check(config, process, Seen::Dead);
}

/// Runs the re-checks that are due, all with one look at the processes started since the
/// oldest of their exits and at the other instances known ([`Rechecks`]); those still dead
/// and short of `dead_after` checks get their next one. Where that cannot be read, the
/// samples that follow count instead.
pub async fn recheck(
    roster: &mut Roster,
    deaths: &mut Deaths,
    rechecks: &mut Rechecks,
    config: &Config,
) {
    let due = rechecks.take_due(tokio::time::Instant::now());
    if due.is_empty() {
        return;
    }
    let before = rechecks::listings(&due);
    let also: Vec<i32> = due
        .iter()
        .filter_map(|d| roster.get(d.process_id))
        .flat_map(|p| p.others.iter().map(|other| other.pid))
        .collect();
    let read = move || process::ProcessTable::since(&before, &also);
    let table = match tokio::task::spawn_blocking(read).await {
        Ok(Ok(table)) => table,
        Ok(Err(error)) => return tracing::warn!("{error}"),
        Err(error) => return tracing::warn!("reading the process table: {error}"),
    };
    for Due {
        process_id,
        check,
        exit,
    } in due
    {
        // Found meanwhile (by a sample, or the restart's notice): nothing to re-check.
        if roster
            .get_mut(process_id)
            .is_none_or(|p| p.watched.is_some())
        {
            continue;
        }
        let lookup = roster.find_in(&table, process_id);
        let Some(process) = roster.get_mut(process_id) else {
            continue;
        };
        // A process the restarter is handling is dead on purpose: its outage is real,
        // and `may_auto_alarm` keeps its alarm out of it.
        deaths.after_check(config, process, lookup.seen());
        if lookup.seen() == Seen::Dead && check + 1 < config.monitor.dead_after {
            let interval = config.monitor.dead_recheck_interval;
            rechecks.schedule(process_id, exit, check + 1, interval);
        }
    }
}
